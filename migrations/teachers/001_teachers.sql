-- teachers-service: teacher profiles and the languages each teacher teaches, keyed by telegram_id.
DO $$ BEGIN
    CREATE TYPE cefr_level AS ENUM ('A1', 'A2', 'B1', 'B2', 'C1', 'C2');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE IF NOT EXISTS teachers (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    telegram_id      BIGINT NOT NULL UNIQUE CHECK (telegram_id > 0),
    bio              TEXT NOT NULL DEFAULT '' CHECK (char_length(bio) <= 4000),
    experience_years INT NOT NULL DEFAULT 0 CHECK (experience_years BETWEEN 0 AND 80),
    -- An IANA name such as "Europe/Moscow"; the service checks that PostgreSQL knows it.
    timezone         TEXT NOT NULL DEFAULT 'UTC' CHECK (char_length(timezone) BETWEEN 1 AND 64),
    is_active        BOOLEAN NOT NULL DEFAULT true,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per language a teacher teaches; level is the highest level taught. The teacher is in the
-- same database, so a real foreign key is right here.
CREATE TABLE IF NOT EXISTS teacher_languages (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    teacher_telegram_id BIGINT NOT NULL REFERENCES teachers (telegram_id) ON DELETE CASCADE,
    language_code       TEXT NOT NULL CHECK (language_code ~ '^[a-z]{2,3}$'),
    level               cefr_level NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (teacher_telegram_id, language_code)
);

-- Search by language (and level) answers in telegram_id order: this index walks a language's
-- teachers in that order and carries the level, so a page is read without sorting.
CREATE INDEX IF NOT EXISTS teacher_languages_search_idx
    ON teacher_languages (language_code, teacher_telegram_id, level);
