-- The group's title as groups-service gave it when the lesson was scheduled, so that the
-- notifications of later changes (cancelled, rescheduled) can name the group without asking again.
ALTER TABLE lessons ADD COLUMN IF NOT EXISTS group_title TEXT;
