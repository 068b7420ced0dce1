-- The W3C traceparent of the request that wrote the row (shared/trace.h), sent with its delivery, so
-- the receiver's log lines carry the writer's trace id. NULL for rows written before it existed.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS traceparent TEXT;
