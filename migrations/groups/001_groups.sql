-- groups-service: study groups, their members, invitation codes and progress.
DO $$ BEGIN
    CREATE TYPE cefr_level AS ENUM ('A1', 'A2', 'B1', 'B2', 'C1', 'C2');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

DO $$ BEGIN
    CREATE TYPE group_status AS ENUM ('active', 'archived');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- Search by title/description substring (ILIKE) stays fast with trigram indexes (seed 001).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE IF NOT EXISTS groups (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    teacher_telegram_id BIGINT NOT NULL CHECK (teacher_telegram_id > 0),
    title               TEXT NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description         TEXT NOT NULL DEFAULT '' CHECK (char_length(description) <= 4000),
    language_code       TEXT NOT NULL CHECK (language_code ~ '^[a-z]{2,3}$'),
    level               cefr_level NOT NULL,
    capacity            INT NOT NULL CHECK (capacity BETWEEN 1 AND 500),
    is_free             BOOLEAN NOT NULL DEFAULT true,
    price               NUMERIC(12, 2),
    status              group_status NOT NULL DEFAULT 'active',
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT groups_price_check CHECK ((is_free AND price IS NULL) OR (NOT is_free AND price > 0))
);

CREATE INDEX IF NOT EXISTS groups_teacher_idx ON groups (teacher_telegram_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS groups_active_recent_idx ON groups (created_at DESC, id DESC) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS groups_search_trgm_idx ON groups USING gin (title gin_trgm_ops, description gin_trgm_ops);

CREATE TABLE IF NOT EXISTS group_members (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    group_id            UUID NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    student_telegram_id BIGINT NOT NULL CHECK (student_telegram_id > 0),
    joined_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (group_id, student_telegram_id)
);

CREATE INDEX IF NOT EXISTS group_members_student_idx ON group_members (student_telegram_id);

CREATE TABLE IF NOT EXISTS group_invitations (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    group_id   UUID NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    -- 16 random bytes (libsodium), base64url without padding.
    code       TEXT NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_-]{22}$'),
    created_by BIGINT NOT NULL CHECK (created_by > 0),
    expires_at TIMESTAMPTZ NOT NULL,
    max_uses   INT CHECK (max_uses BETWEEN 1 AND 10000), -- NULL: unlimited
    uses       INT NOT NULL DEFAULT 0 CHECK (uses >= 0),
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS group_invitations_group_idx ON group_invitations (group_id, created_at DESC);

CREATE TABLE IF NOT EXISTS group_progress (
    group_id      UUID PRIMARY KEY REFERENCES groups (id) ON DELETE CASCADE,
    lessons_done  INT NOT NULL DEFAULT 0 CHECK (lessons_done >= 0),
    current_topic TEXT CHECK (char_length(current_topic) <= 500),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by    BIGINT NOT NULL CHECK (updated_by > 0)
);
