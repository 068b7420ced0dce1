-- payment-service: payments for seats in paid groups, in Telegram Stars (currency XTR).
DO $$ BEGIN
    CREATE TYPE payment_status AS ENUM ('pending', 'completed', 'failed', 'refunded');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- A completed payment's seat in its group (services/payment/payment.h): none before completion,
-- requested with it, then granted by groups-service or refused (and the payment refunded).
DO $$ BEGIN
    CREATE TYPE payment_seat AS ENUM ('none', 'requested', 'granted', 'refused');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE IF NOT EXISTS payments (
    id                         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    telegram_id                BIGINT NOT NULL CHECK (telegram_id > 0),        -- the payer
    group_id                   UUID NOT NULL,                                  -- groups-service's
    amount                     BIGINT NOT NULL CHECK (amount > 0),             -- whole Stars
    currency                   TEXT NOT NULL DEFAULT 'XTR' CHECK (currency ~ '^[A-Z]{3}$'),
    status                     payment_status NOT NULL DEFAULT 'pending',
    -- What the invoice carries and Telegram sends back: 32 random hex digits, never reused.
    invoice_payload            TEXT NOT NULL UNIQUE
                               DEFAULT replace(gen_random_uuid()::text, '-', '')
                               CHECK (char_length(invoice_payload) BETWEEN 1 AND 128),
    invoice_link               TEXT CHECK (char_length(invoice_link) <= 2048),
    -- Telegram's id of the charge, once paid; what a refund names.
    telegram_payment_charge_id TEXT UNIQUE CHECK (char_length(telegram_payment_charge_id) BETWEEN 1 AND 255),
    seat                       payment_seat NOT NULL DEFAULT 'none',
    refund_reason              TEXT CHECK (char_length(refund_reason) <= 500),
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at               TIMESTAMPTZ,
    refunded_at                TIMESTAMPTZ,
    CONSTRAINT payments_charge_check CHECK (status IN ('pending', 'failed') OR telegram_payment_charge_id IS NOT NULL)
);

-- One pending payment per payer and group: a second checkout reuses it.
CREATE UNIQUE INDEX IF NOT EXISTS payments_one_pending_idx ON payments (telegram_id, group_id)
    WHERE status = 'pending';
-- GET /users/{telegram_id}/payments: newest first.
CREATE INDEX IF NOT EXISTS payments_payer_idx ON payments (telegram_id, created_at DESC, id DESC);
