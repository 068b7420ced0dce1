-- The catalogue benchmark's school (tests/bench/catalogue): seed.sql's school, then groups 1001..100000
-- in the groups database, so that it holds 100,000 groups. Run with psql as a superuser after seed.sql.
--
-- Group g (as in seed.sql: id md5('bench-group-' || g)::uuid) is taught by teacher 1 + g % 1000 (all
-- of seed.sql's teachers have profiles and names), has no members, and was created 36 s before
-- group g - 1, so that seed.sql's groups (an hour apart, all alike) are spread among them. Its title and description are put together from the lists below so that the words the
-- benchmark searches for (tests/bench/bff_view.lua, BENCH_VIEW=catalogue) are found in very
-- different shares of the groups:
--   "conversation", "grammar"  about 1 in 6 descriptions each, "exam" 1 in 9 titles
--   "business"                 1 in 50 descriptions
--   "pronunciation"            1 in 500
--   "calligraphy"              1 in 10,000 (10 groups)
--   "group 4242"               the titles of groups 4242 and 42420..42429
--   "zanzibar"                 no group at all
-- Every tenth group is archived, every fourth is paid.

\set ON_ERROR_STOP 1
\connect groups
INSERT INTO groups (id, teacher_telegram_id, title, description, language_code, level, capacity, is_free,
                    price, status, created_at)
SELECT md5('bench-group-' || g)::uuid, 1 + g % 1000,
       (ARRAY['English', 'German', 'French', 'Spanish', 'Italian'])[1 + g % 5] || ' '
           || (ARRAY['A1', 'A2', 'B1', 'B2', 'C1', 'C2'])[1 + g % 6] || ' '
           || (ARRAY['evenings', 'mornings', 'weekends', 'intensive', 'for teens', 'for adults', 'online',
                     'in the office', 'exam course'])[1 + (g / 7) % 9]
           || ' group ' || g,
       (ARRAY['Conversation club: two lessons a week, small groups.',
              'Grammar from the ground up, with homework every week.',
              'Reading and writing, one text a lesson.',
              'Listening practice with films and podcasts.',
              'Vocabulary for travel, food and daily life.',
              'Speaking first: role plays and debates.'])[1 + (g / 3) % 6]
           || CASE WHEN g % 50 = 0 THEN ' Business vocabulary and e-mails.' ELSE '' END
           || CASE WHEN g % 500 = 7 THEN ' Pronunciation drills.' ELSE '' END
           || CASE WHEN g % 10000 = 13 THEN ' Calligraphy for beginners.' ELSE '' END,
       (ARRAY['en', 'de', 'fr', 'es', 'it'])[1 + g % 5],
       (ARRAY['A1', 'A2', 'B1', 'B2', 'C1', 'C2'])[1 + g % 6]::cefr_level,
       8 + g % 13, g % 4 <> 0, CASE WHEN g % 4 = 0 THEN 900 + 100 * (g % 7) END,
       CASE WHEN g % 10 = 0 THEN 'archived' ELSE 'active' END::group_status,
       now() - make_interval(secs => 36 * g)
FROM generate_series(1001, 100000) AS g;
VACUUM ANALYZE;
