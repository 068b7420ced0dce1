-- Calls that must happen after a commit (shared/outbox.h): the seat step (this service itself) and
-- the removal of a refunded member (groups-service).
CREATE TABLE IF NOT EXISTS outbox (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target            TEXT NOT NULL,
    method            TEXT NOT NULL,
    path              TEXT NOT NULL,
    body              TEXT,
    actor_telegram_id BIGINT,
    idempotency_key   TEXT NOT NULL UNIQUE,
    ordering_key      TEXT,
    traceparent       TEXT,
    attempts          INT NOT NULL DEFAULT 0,
    next_attempt_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error        TEXT,
    delivered_at      TIMESTAMPTZ,
    failed_at         TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS outbox_due_idx ON outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_pending_order_idx ON outbox (ordering_key, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL AND ordering_key IS NOT NULL;

-- The pollers are woken on insert: NOTIFY ls_outbox, once per statement, sent at commit.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_notify('ls_outbox', ''); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
