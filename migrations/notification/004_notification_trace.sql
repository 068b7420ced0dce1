-- The trace id (shared/trace.h) of the request that created the notification, written on its
-- delivery's log lines, so that a delivery can be traced to the change that caused it (a lesson).
-- NULL for notifications created before it existed.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS trace_id TEXT CHECK (trace_id ~ '^[0-9a-f]{32}$');
