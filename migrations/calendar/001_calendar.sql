-- calendar-service: lessons, who takes part, attendance, and when teachers can teach.
-- btree_gist lets one exclusion constraint combine "same teacher" (=) with "overlapping time" (&&).
-- It is a trusted extension, so the database owner may create it.
CREATE EXTENSION IF NOT EXISTS btree_gist;

DO $$ BEGIN
    CREATE TYPE lesson_status AS ENUM ('scheduled', 'cancelled', 'completed');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

DO $$ BEGIN
    CREATE TYPE attendance_status AS ENUM ('present', 'absent', 'late', 'excused');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- teacher_telegram_id and group_id name rows of other services' databases: no foreign keys.
CREATE TABLE IF NOT EXISTS lessons (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    teacher_telegram_id BIGINT NOT NULL CHECK (teacher_telegram_id > 0),
    group_id            UUID,
    starts_at           TIMESTAMPTZ NOT NULL,
    ends_at             TIMESTAMPTZ NOT NULL,
    duration_minutes    INT NOT NULL CHECK (duration_minutes BETWEEN 15 AND 480),
    topic               TEXT NOT NULL DEFAULT '' CHECK (char_length(topic) <= 500),
    status              lesson_status NOT NULL DEFAULT 'scheduled',
    created_by          BIGINT NOT NULL CHECK (created_by > 0),
    -- Bumped by every reschedule; part of the notifications' idempotency keys.
    version             INT NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT lessons_ends_after_start CHECK (ends_at > starts_at),
    CONSTRAINT lessons_ends_by_duration CHECK (ends_at = starts_at + make_interval(mins => duration_minutes)),
    -- The database, not only the service, guarantees that one teacher's lessons never overlap, also
    -- under concurrent writes (SQLSTATE 23P01). Ranges are [start, end): back-to-back lessons are fine.
    CONSTRAINT lessons_no_overlap EXCLUDE USING gist (
        teacher_telegram_id WITH =, tstzrange(starts_at, ends_at) WITH &&
    ) WHERE (status <> 'cancelled')
);

-- Reads by teacher and by group in time order; by person goes through lesson_participants.
CREATE INDEX IF NOT EXISTS lessons_teacher_idx ON lessons (teacher_telegram_id, starts_at, id);
CREATE INDEX IF NOT EXISTS lessons_group_idx ON lessons (group_id, starts_at, id) WHERE group_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS lesson_participants (
    lesson_id           UUID NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    student_telegram_id BIGINT NOT NULL CHECK (student_telegram_id > 0),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (lesson_id, student_telegram_id)
);

CREATE INDEX IF NOT EXISTS lesson_participants_student_idx ON lesson_participants (student_telegram_id, lesson_id);

CREATE TABLE IF NOT EXISTS lesson_attendance (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    lesson_id           UUID NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    student_telegram_id BIGINT NOT NULL CHECK (student_telegram_id > 0),
    status              attendance_status NOT NULL,
    marked_by           BIGINT NOT NULL CHECK (marked_by > 0),
    marked_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (lesson_id, student_telegram_id)
);

-- Weekly availability: a teacher with no rows is available at any time; with rows, a lesson must
-- lie inside one window of its weekday (ISO: Monday = 1), in local time of `timezone`. end_time may
-- be 24:00 (the end of the day).
CREATE TABLE IF NOT EXISTS teacher_schedules (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    teacher_telegram_id BIGINT NOT NULL CHECK (teacher_telegram_id > 0),
    weekday             INT NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_time          TIME NOT NULL,
    end_time            TIME NOT NULL,
    timezone            TEXT NOT NULL CHECK (char_length(timezone) BETWEEN 1 AND 64),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT teacher_schedules_end_after_start CHECK (end_time > start_time)
);

CREATE INDEX IF NOT EXISTS teacher_schedules_teacher_idx ON teacher_schedules (teacher_telegram_id, weekday, start_time);

CREATE TABLE IF NOT EXISTS teacher_unavailable (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    teacher_telegram_id BIGINT NOT NULL CHECK (teacher_telegram_id > 0),
    starts_at           TIMESTAMPTZ NOT NULL,
    ends_at             TIMESTAMPTZ NOT NULL,
    reason              TEXT NOT NULL DEFAULT '' CHECK (char_length(reason) <= 500),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT teacher_unavailable_ends_after_start CHECK (ends_at > starts_at)
);

CREATE INDEX IF NOT EXISTS teacher_unavailable_teacher_idx ON teacher_unavailable (teacher_telegram_id, ends_at);
