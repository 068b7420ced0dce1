-- Calls to students-service recorded with the change that needs them (shared/outbox.h).
CREATE TABLE IF NOT EXISTS outbox (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target            TEXT NOT NULL,
    method            TEXT NOT NULL,
    path              TEXT NOT NULL,
    body              TEXT,
    actor_telegram_id BIGINT,
    idempotency_key   TEXT NOT NULL UNIQUE,
    attempts          INT NOT NULL DEFAULT 0,
    next_attempt_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error        TEXT,
    delivered_at      TIMESTAMPTZ,
    failed_at         TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS outbox_due_idx ON outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_pending_path_idx ON outbox (target, path, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
