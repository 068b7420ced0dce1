-- The answers of writes sent with an Idempotency-Key (shared/idempotency.h): a retry with the same
-- key and request gets the recorded answer again. Each row is written in the transaction of its
-- write; rows older than IDEMPOTENCY_TTL_S are taken over, or deleted a few at each recorded answer.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    actor_telegram_id BIGINT NOT NULL,          -- X-Actor-Telegram-Id, 0 for none: keys are per actor
    key               TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 128),
    fingerprint       TEXT NOT NULL,            -- SHA-256 of method, path and body, hex
    status            INT NOT NULL DEFAULT 0,   -- 0 only while its transaction is open
    body              TEXT,                     -- the JSON answer, NULL for none
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (actor_telegram_id, key)
);

CREATE INDEX IF NOT EXISTS idempotency_keys_created_idx ON idempotency_keys (created_at);
