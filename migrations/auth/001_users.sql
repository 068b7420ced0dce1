-- auth-service: the people of the school, keyed by their Telegram id.
DO $$ BEGIN
    CREATE TYPE user_role AS ENUM ('student', 'teacher', 'admin');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE IF NOT EXISTS users (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    telegram_id     BIGINT NOT NULL UNIQUE CHECK (telegram_id > 0),
    username        TEXT,
    first_name      TEXT NOT NULL,
    last_name       TEXT,
    language_code   TEXT,
    photo_url       TEXT,
    -- XChaCha20-Poly1305 (libsodium): 24-byte nonce || ciphertext, key from AUTH_DATA_KEY.
    phone_encrypted BYTEA,
    role            user_role NOT NULL DEFAULT 'student',
    is_verified     BOOLEAN NOT NULL DEFAULT false,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
