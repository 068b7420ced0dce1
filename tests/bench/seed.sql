-- The benchmark's school (tests/bench/run), written straight into each service's database after the
-- daemons applied their migrations. Run with psql as a superuser: `psql -v ON_ERROR_STOP=1 -f seed.sql`
-- (it \connects to each database in turn).
--
-- The same people and groups everywhere, derived from numbers so that no database needs another's
-- rows:
--   telegram ids 1..1000 are teachers, 1001..10000 students;
--   group g (1..1000) has id md5('bench-group-' || g)::uuid and is taught by teacher g;
--   student s is a member of group 1 + (s - 1001) % 1000, and students 1001..2000 also of a second
--   group 1 + (7 (s - 1001) + 500) % 1000: about 10 members per group;
--   group g has 20 lessons, one every 3.5 days from the next hour on (ten weeks), taken by its
--   members; every person has 5 notifications, already delivered.

\set ON_ERROR_STOP 1
\set members 'SELECT s AS student, 1 + (s - 1001) % 1000 AS grp FROM generate_series(1001, 10000) AS s UNION SELECT s, 1 + (7 * (s - 1001) + 500) % 1000 FROM generate_series(1001, 2000) AS s'
\set group_uuid 'md5(''bench-group-'' || grp)::uuid'

-- ---------------------------------------------------------------- auth
\connect auth
INSERT INTO users (telegram_id, username, first_name, last_name, language_code, role, is_verified, created_at)
SELECT u, 'user' || u, 'First' || u, 'Last' || u, (ARRAY['en', 'ru', 'de'])[1 + u % 3],
       CASE WHEN u <= 1000 THEN 'teacher' ELSE 'student' END::user_role, u <= 1000,
       now() - make_interval(mins => u)
FROM generate_series(1, 10000) AS u;
VACUUM ANALYZE;

-- ---------------------------------------------------------------- teachers
\connect teachers
INSERT INTO teachers (telegram_id, bio, experience_years, timezone)
SELECT t, 'Teacher ' || t || ': exam preparation, conversation and grammar for adults.', t % 30,
       (ARRAY['UTC', 'Europe/Moscow', 'Europe/Berlin'])[1 + t % 3]
FROM generate_series(1, 1000) AS t;
INSERT INTO teacher_languages (teacher_telegram_id, language_code, level)
SELECT t, 'en', (ARRAY['B2', 'C1', 'C2'])[1 + t % 3]::cefr_level FROM generate_series(1, 1000) AS t
UNION ALL
SELECT t, 'de', 'B2'::cefr_level FROM generate_series(2, 1000, 2) AS t;
VACUUM ANALYZE;

-- ---------------------------------------------------------------- students
\connect students
INSERT INTO students (telegram_id, goals, timezone)
SELECT s, 'IELTS ' || (5 + s % 4) || '.0 by summer', 'Europe/Moscow' FROM generate_series(1001, 10000) AS s;
INSERT INTO student_languages (student_telegram_id, language_code, level)
SELECT s, 'en', (ARRAY['A1', 'A2', 'B1', 'B2', 'C1', 'C2'])[1 + s % 6]::cefr_level
FROM generate_series(1001, 10000) AS s;
INSERT INTO group_enrollments (student_telegram_id, group_id, status)
SELECT student, :group_uuid, (ARRAY['enrolled', 'in_progress'])[1 + student % 2]::enrollment_status
FROM (:members) AS m;
VACUUM ANALYZE;

-- ---------------------------------------------------------------- groups
\connect groups
INSERT INTO groups (id, teacher_telegram_id, title, description, language_code, level, capacity, is_free,
                    price, created_at)
SELECT :group_uuid, grp, 'English ' || (ARRAY['A1', 'A2', 'B1', 'B2', 'C1', 'C2'])[1 + grp % 6] || ' group ' || grp,
       'Speaking club and grammar, two lessons a week', 'en',
       (ARRAY['A1', 'A2', 'B1', 'B2', 'C1', 'C2'])[1 + grp % 6]::cefr_level, 12, grp % 4 <> 0,
       CASE WHEN grp % 4 = 0 THEN 1500 END, now() - make_interval(hours => grp)
FROM generate_series(1, 1000) AS grp;
INSERT INTO group_members (group_id, student_telegram_id, joined_at)
SELECT :group_uuid, student, now() - make_interval(mins => student) FROM (:members) AS m;
INSERT INTO group_progress (group_id, lessons_done, current_topic, updated_by)
SELECT :group_uuid, grp % 30, 'Unit ' || (1 + grp % 12), grp FROM generate_series(2, 1000, 2) AS grp;
VACUUM ANALYZE;

-- ---------------------------------------------------------------- calendar
\connect calendar
-- One teacher per group, lessons 84 hours apart: no two lessons of a teacher overlap.
INSERT INTO lessons (id, teacher_telegram_id, group_id, starts_at, ends_at, duration_minutes, topic, created_by)
SELECT md5('bench-lesson-' || grp || '-' || k)::uuid, grp, :group_uuid, t, t + make_interval(mins => d), d,
       'Unit ' || (1 + k % 12), grp
FROM generate_series(1, 1000) AS grp, generate_series(0, 19) AS k,
     LATERAL (SELECT date_trunc('hour', now()) + make_interval(hours => 1 + grp % 12 + 84 * k) AS t,
                     CASE WHEN grp % 2 = 0 THEN 60 ELSE 90 END AS d) AS x;
INSERT INTO lesson_participants (lesson_id, student_telegram_id)
SELECT md5('bench-lesson-' || grp || '-' || k)::uuid, student
FROM (:members) AS m, generate_series(0, 19) AS k;
VACUUM ANALYZE;

-- ---------------------------------------------------------------- notification
\connect notification
INSERT INTO notifications (recipient_telegram_id, type, title, body, params, language_code, is_read, read_at,
                           delivery_status, deliver_after, attempts, created_at)
SELECT u, (ARRAY['registration', 'enrollment', 'lesson_scheduled', 'lesson_reminder', 'group_joined'])[1 + k]::notification_type,
       'Notification ' || k, 'Something happened at the school for person ' || u || '.',
       jsonb_build_object('topic', 'Unit ' || k), 'en', k > 1, CASE WHEN k > 1 THEN now() END, 'sent',
       now() - make_interval(days => k), 1, now() - make_interval(days => k)
FROM generate_series(1, 10000) AS u, generate_series(0, 4) AS k;
VACUUM ANALYZE;
