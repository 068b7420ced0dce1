-- The lesson sweep and the reminders' read (issue 16). The sweep finds scheduled lessons whose end
-- has passed (and marks them completed); GET /lessons/upcoming walks scheduled lessons in start
-- order, a page at a time from a (starts_at, id) cursor. Both look only at scheduled lessons, so
-- the indexes leave the (growing) completed and cancelled ones out.
CREATE INDEX IF NOT EXISTS lessons_scheduled_end_idx ON lessons (ends_at) WHERE status = 'scheduled';
CREATE INDEX IF NOT EXISTS lessons_scheduled_start_idx ON lessons (starts_at, id) WHERE status = 'scheduled';
