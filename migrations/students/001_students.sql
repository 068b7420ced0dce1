-- students-service: student profiles, the languages they learn, and their group enrollments.
DO $$ BEGIN
    CREATE TYPE cefr_level AS ENUM ('A1', 'A2', 'B1', 'B2', 'C1', 'C2');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- Declaration order is the only order a status may move in (compared with < in SQL).
DO $$ BEGIN
    CREATE TYPE enrollment_status AS ENUM ('enrolled', 'in_progress', 'completed');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE IF NOT EXISTS students (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    telegram_id BIGINT NOT NULL UNIQUE CHECK (telegram_id > 0),
    goals       TEXT CHECK (char_length(goals) <= 4000),
    -- An IANA name; the service checks it with AT TIME ZONE before storing it.
    timezone    TEXT CHECK (char_length(timezone) BETWEEN 1 AND 64),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Same database, so a real foreign key: a language belongs to an existing profile.
CREATE TABLE IF NOT EXISTS student_languages (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    student_telegram_id BIGINT NOT NULL REFERENCES students (telegram_id) ON DELETE CASCADE,
    language_code       TEXT NOT NULL CHECK (language_code ~ '^[a-z]{2,3}$'),
    level               cefr_level NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (student_telegram_id, language_code)
);

-- Written by groups-service (through its outbox): no students row is required, and group_id
-- refers to another database, so neither column has a foreign key.
CREATE TABLE IF NOT EXISTS group_enrollments (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    student_telegram_id BIGINT NOT NULL CHECK (student_telegram_id > 0),
    group_id            UUID NOT NULL,
    status              enrollment_status NOT NULL DEFAULT 'enrolled',
    enrolled_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (student_telegram_id, group_id)
);

-- GET /enrollments?group_id=: a group's members ordered by student.
CREATE INDEX IF NOT EXISTS group_enrollments_group_idx ON group_enrollments (group_id, student_telegram_id);
-- GET /students/{id}/enrollments: newest first.
CREATE INDEX IF NOT EXISTS group_enrollments_student_idx
    ON group_enrollments (student_telegram_id, enrolled_at DESC, id DESC);
