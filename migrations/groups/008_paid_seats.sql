-- Seats bought in paid groups (payment-service, issue 16): one row per completed payment, written
-- when payment-service seats the payer; refunded_at once the payment is refunded. A paid group is
-- joined by invitation code only with a seat that is not refunded (402 otherwise).
CREATE TABLE IF NOT EXISTS paid_seats (
    payment_id          UUID PRIMARY KEY,                -- payment-service's payment
    group_id            UUID NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    student_telegram_id BIGINT NOT NULL CHECK (student_telegram_id > 0),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    refunded_at         TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS paid_seats_live_idx ON paid_seats (group_id, student_telegram_id)
    WHERE refunded_at IS NULL;

-- The payment a membership was bought with (NULL: a free group, or joined before payments).
ALTER TABLE group_members ADD COLUMN IF NOT EXISTS payment_id UUID;
