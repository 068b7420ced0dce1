-- Templates for every type in English and Russian, and the SQL helpers that render them.
-- Placeholders are {{name}}, filled from the notification's params; a missing one renders empty.

-- Fills each {{name}} in tpl from params ->> name in one left-to-right pass, so a value that itself
-- contains "{{...}}" is inserted as it is, never expanded again.
CREATE OR REPLACE FUNCTION notification_render(tpl TEXT, params JSONB) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    done TEXT := '';
    rest TEXT := tpl;
    open_at INT;
    close_at INT;
BEGIN
    LOOP
        open_at := strpos(rest, '{{');
        EXIT WHEN open_at = 0;
        close_at := strpos(substr(rest, open_at + 2), '}}');
        EXIT WHEN close_at = 0;
        done := done || substr(rest, 1, open_at - 1)
                || COALESCE(params ->> substr(rest, open_at + 2, close_at - 1), '');
        rest := substr(rest, open_at + close_at + 3);
    END LOOP;
    RETURN done || rest;
END $$;

-- When `at` falls inside the quiet window [q_from, q_to) of local time in zone tz (the window may
-- wrap midnight), the moment that window ends; otherwise NULL.
CREATE OR REPLACE FUNCTION notification_quiet_end(q_from TIME, q_to TIME, tz TEXT, at TIMESTAMPTZ)
RETURNS TIMESTAMPTZ
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN q_from IS NULL OR q_to IS NULL OR q_from = q_to THEN NULL
        WHEN (q_from < q_to AND l::time >= q_from AND l::time < q_to)
          OR (q_from > q_to AND (l::time >= q_from OR l::time < q_to))
        THEN ((l::date + q_to) + CASE WHEN l::time >= q_to THEN interval '1 day' ELSE interval '0' END)
             AT TIME ZONE tz
    END
    FROM (SELECT at AT TIME ZONE tz AS l) AS local_time
$$;

INSERT INTO notification_templates (type, language_code, title_template, body_template) VALUES
    ('registration', 'en', 'Welcome, {{first_name}}!',
     'Your account at the language school is ready.'),
    ('registration', 'ru', 'Добро пожаловать, {{first_name}}!',
     'Ваш аккаунт в языковой школе готов.'),
    ('enrollment', 'en', 'Enrolled in {{group_title}}',
     'You are enrolled in the group {{group_title}}.'),
    ('enrollment', 'ru', 'Запись в группу {{group_title}}',
     'Вы записаны в группу {{group_title}}.'),
    ('payment', 'en', 'Payment received',
     'We received your payment of {{amount}} for {{group_title}}.'),
    ('payment', 'ru', 'Оплата получена',
     'Мы получили вашу оплату {{amount}} за {{group_title}}.'),
    ('lesson_scheduled', 'en', 'New lesson: {{group_title}}',
     'A lesson "{{topic}}" is scheduled for {{starts_at}}.'),
    ('lesson_scheduled', 'ru', 'Новое занятие: {{group_title}}',
     'Занятие «{{topic}}» назначено на {{starts_at}}.'),
    ('lesson_cancelled', 'en', 'Lesson cancelled: {{group_title}}',
     'The lesson "{{topic}}" at {{starts_at}} is cancelled.'),
    ('lesson_cancelled', 'ru', 'Занятие отменено: {{group_title}}',
     'Занятие «{{topic}}» {{starts_at}} отменено.'),
    ('lesson_rescheduled', 'en', 'Lesson moved: {{group_title}}',
     'The lesson "{{topic}}" moved from {{old_starts_at}} to {{starts_at}}.'),
    ('lesson_rescheduled', 'ru', 'Занятие перенесено: {{group_title}}',
     'Занятие «{{topic}}» перенесено с {{old_starts_at}} на {{starts_at}}.'),
    ('lesson_reminder', 'en', 'Lesson soon: {{group_title}}',
     'Your lesson "{{topic}}" starts at {{starts_at}}.'),
    ('lesson_reminder', 'ru', 'Скоро занятие: {{group_title}}',
     'Ваше занятие «{{topic}}» начнётся в {{starts_at}}.'),
    ('group_joined', 'en', 'Welcome to {{group_title}}',
     '{{first_name}}, you joined the group {{group_title}}.'),
    ('group_joined', 'ru', 'Добро пожаловать в {{group_title}}',
     '{{first_name}}, вы вступили в группу {{group_title}}.')
ON CONFLICT (type, language_code) DO NOTHING;
