-- Lesson reminders (issue 16). Each person chooses how long before a lesson's start they are
-- reminded: 5 to 1440 minutes, NULL for never; 60 for everyone until they choose (also for a person
-- with no settings row: the service answers and applies NOTIFY_REMINDER_DEFAULT then).
ALTER TABLE user_notification_settings ADD COLUMN IF NOT EXISTS lesson_reminder_minutes INT DEFAULT 60
    CHECK (lesson_reminder_minutes BETWEEN 5 AND 1440);

-- One reminder per person, lesson and start time, whichever replica's sweep gets there first and
-- however often it looks again (INSERT … ON CONFLICT DO NOTHING). A moved lesson has a new start
-- time, so a reminder for it is a new row; the old time is never reminded of again once the lesson
-- has moved (calendar-service lists it at its new time only). The notification is created in the
-- same statement; the foreign key holds them together.
CREATE TABLE IF NOT EXISTS lesson_reminders (
    lesson_id       UUID NOT NULL,
    starts_at       TIMESTAMPTZ NOT NULL,
    telegram_id     BIGINT NOT NULL CHECK (telegram_id > 0),
    notification_id UUID NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (lesson_id, starts_at, telegram_id)
);

CREATE INDEX IF NOT EXISTS lesson_reminders_notification_idx ON lesson_reminders (notification_id);
