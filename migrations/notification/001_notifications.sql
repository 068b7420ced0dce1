-- notification-service: what people are told, how they want to be told, and every delivery attempt.
DO $$ BEGIN
    CREATE TYPE notification_type AS ENUM ('registration', 'enrollment', 'payment');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
-- Lesson and group events beyond seed 001's three types.
ALTER TYPE notification_type ADD VALUE IF NOT EXISTS 'lesson_scheduled';
ALTER TYPE notification_type ADD VALUE IF NOT EXISTS 'lesson_cancelled';
ALTER TYPE notification_type ADD VALUE IF NOT EXISTS 'lesson_rescheduled';
ALTER TYPE notification_type ADD VALUE IF NOT EXISTS 'lesson_reminder';
ALTER TYPE notification_type ADD VALUE IF NOT EXISTS 'group_joined';

DO $$ BEGIN
    CREATE TYPE delivery_status AS ENUM ('pending', 'sent', 'failed');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE IF NOT EXISTS notifications (
    id                    UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    recipient_telegram_id BIGINT NOT NULL CHECK (recipient_telegram_id > 0),
    type                  notification_type NOT NULL,
    title                 TEXT NOT NULL,
    body                  TEXT NOT NULL DEFAULT '',
    params                JSONB NOT NULL DEFAULT '{}'::jsonb,
    language_code         TEXT NOT NULL,
    is_read               BOOLEAN NOT NULL DEFAULT false,
    read_at               TIMESTAMPTZ,
    delivery_status       delivery_status NOT NULL DEFAULT 'pending',
    -- When the delivery worker may next take it: creation time, the end of quiet hours, or a retry.
    deliver_after         TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts              INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- The caller's Idempotency-Key: a redelivered request finds the row it created.
    idempotency_key       TEXT UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS notifications_list_idx
    ON notifications (recipient_telegram_id, is_read, created_at DESC);
CREATE INDEX IF NOT EXISTS notifications_time_idx
    ON notifications (recipient_telegram_id, created_at DESC);
CREATE INDEX IF NOT EXISTS notifications_due_idx
    ON notifications (deliver_after) WHERE delivery_status = 'pending';

CREATE TABLE IF NOT EXISTS notification_templates (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    type           notification_type NOT NULL,
    language_code  TEXT NOT NULL CHECK (language_code ~ '^[a-z]{2,3}$'),
    title_template TEXT NOT NULL,
    body_template  TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (type, language_code)
);

CREATE TABLE IF NOT EXISTS user_notification_settings (
    telegram_id    BIGINT PRIMARY KEY CHECK (telegram_id > 0),
    disabled_types notification_type[] NOT NULL DEFAULT '{}',
    quiet_from     TIME,
    quiet_to       TIME,
    timezone       TEXT NOT NULL DEFAULT 'UTC',
    language_code  TEXT CHECK (language_code ~ '^[a-z]{2,3}$'),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((quiet_from IS NULL) = (quiet_to IS NULL)),
    CHECK (quiet_from IS NULL OR quiet_from <> quiet_to)
);

CREATE TABLE IF NOT EXISTS notification_logs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id UUID NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempt         INT NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('store', 'telegram')),
    status          TEXT NOT NULL CHECK (status IN ('sent', 'failed', 'retry')),
    http_status     INT,
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS notification_logs_notification_idx ON notification_logs (notification_id, id);
