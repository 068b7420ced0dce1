-- Deliveries are ordered by an explicit key instead of by target and path (shared/outbox.h): an
-- enrollment's changes keep using its path.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS ordering_key TEXT;
UPDATE outbox SET ordering_key = path WHERE ordering_key IS NULL;
DROP INDEX IF EXISTS outbox_pending_path_idx;
CREATE INDEX IF NOT EXISTS outbox_pending_order_idx ON outbox (ordering_key, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL AND ordering_key IS NOT NULL;
