/* notification-service: every statement it runs, prepared on each connection. */
#include "notification.h"

#include "txn.h"

#define NOTIFICATION_COLUMNS(p)                                                                              \
    p "id, " p "recipient_telegram_id, " p "type, " p "title, " p "body, " p "params, " p                    \
      "language_code, " p "is_read, " p "read_at, " p "delivery_status, " p "deliver_after, " p              \
      "attempts, " p "created_at"

/* Pending notifications whose time has come, oldest first, skipping rows another poller holds. */
#define DUE_ROWS(batch)                                                                                      \
    "SELECT id FROM notifications WHERE delivery_status = 'pending' AND deliver_after <= now()"              \
    " ORDER BY deliver_after, id LIMIT " batch " FOR UPDATE SKIP LOCKED"

/* The settings answer; `s` is a user_notification_settings row or all NULL, `tid` the person's id. */
#define SETTINGS_COLUMNS(tid)                                                                                \
    tid " AS telegram_id, to_jsonb(COALESCE(s.disabled_types, '{}')) AS disabled_types,"                     \
        " CASE WHEN s.quiet_from IS NULL THEN NULL ELSE jsonb_build_object("                                 \
        "'from', to_char(s.quiet_from, 'HH24:MI'), 'to', to_char(s.quiet_to, 'HH24:MI')) END AS "            \
        "quiet_hours,"                                                                                       \
        " COALESCE(s.timezone, 'UTC') AS timezone, s.language_code,"                                         \
        " " REMINDER_MINUTES_OF_S " AS lesson_reminder_minutes, s.updated_at"

/* A person's lesson_reminder_minutes; `s` is their user_notification_settings row or all NULL (no
 * row: the default). NULL: no reminders. */
#define REMINDER_MINUTES_OF_S                                                                                \
    "CASE WHEN s.telegram_id IS NULL THEN " NOTIFY_REMINDER_DEFAULT " ELSE s.lesson_reminder_minutes END"

#define LIST_SQL(order)                                                                                      \
    "SELECT c.unread, " NOTIFICATION_COLUMNS(                                                                \
        "p.") " FROM"                                                                                        \
              " (SELECT count(*) AS unread FROM notifications"                                               \
              "  WHERE recipient_telegram_id = $1::bigint AND NOT is_read) AS c"                             \
              " LEFT JOIN (SELECT * FROM notifications AS p WHERE p.recipient_telegram_id = $1::bigint"      \
              "  ORDER BY " order " LIMIT $2::int OFFSET $3::int) AS p ON true"                              \
              " ORDER BY " order

const ls_pg_stmt_t notification_statements[STMT_COUNT] = {
    /* $1 recipient, $2 type, $3 params, $4 requested language or NULL, $5 idempotency key or NULL,
     * $6 actor or NULL, $7 the request's trace id (kept for the delivery's log lines). One statement
     * decides everything, so a refused type stores nothing and identical concurrent requests meet at
     * the unique key: the loser's DO UPDATE returns the winner's row (created = false) instead of
     * failing. The language is the request's, else the recipient's
     * setting, else English; a language without a template falls back to English. */
    [STMT_CREATE] =
        {"notification_create",
         "WITH s AS (SELECT disabled_types, quiet_from, quiet_to, timezone, language_code"
         "  FROM user_notification_settings WHERE telegram_id = $1::bigint),"
         " c AS (SELECT"
         "  COALESCE((SELECT $2::notification_type = ANY(disabled_types) FROM s), false) AS disabled,"
         "  COALESCE($4::text, (SELECT language_code FROM s), 'en') AS lang,"
         "  COALESCE((SELECT notification_quiet_end(quiet_from, quiet_to, timezone, now()) FROM s), now())"
         "   AS deliver_after),"
         " t AS (SELECT tp.language_code, tp.title_template, tp.body_template"
         "  FROM notification_templates tp, c"
         "  WHERE tp.type = $2::notification_type AND tp.language_code IN (c.lang, 'en')"
         "  ORDER BY tp.language_code = c.lang DESC LIMIT 1),"
         " n AS (INSERT INTO notifications AS x (recipient_telegram_id, type, title, body, params,"
         "   language_code, deliver_after, idempotency_key, trace_id)"
         "  SELECT $1::bigint, $2::notification_type, notification_render(t.title_template, $3::jsonb),"
         "   notification_render(t.body_template, $3::jsonb), $3::jsonb, t.language_code, c.deliver_after,"
         "   $5::text, $7::text"
         "  FROM c, t WHERE NOT c.disabled"
         "  ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key"
         "  RETURNING x.*, (x.xmax = 0) AS created),"
         " a AS (" LS_AUDIT_INSERT "SELECT $6::bigint, 'notification.create', 'notification', n.id::text,"
         "  jsonb_build_object('recipient_telegram_id', n.recipient_telegram_id, 'type', n.type,"
         "   'params', n.params) FROM n WHERE n.created)"
         " SELECT c.disabled, n.created, " NOTIFICATION_COLUMNS("n.") " FROM c LEFT JOIN n ON true",
         7},
    /* $1 recipient, $2 limit, $3 offset. One row with NULL notification columns when the page is
     * empty, so the unread count always comes back. */
    [STMT_LIST_UNREAD_FIRST] = {"notification_list_unread_first",
                                LIST_SQL("p.is_read, p.created_at DESC, p.id DESC"), 3},
    [STMT_LIST_TIME] = {"notification_list_time", LIST_SQL("p.created_at DESC, p.id DESC"), 3},
    [STMT_UNREAD_COUNT] = {"notification_unread_count",
                           "SELECT count(*) AS unread FROM notifications"
                           " WHERE recipient_telegram_id = $1::bigint AND NOT is_read",
                           1},
    /* $1 recipient, $2 notification id, $3 actor. Marking a read notification again answers it
     * unchanged and audits nothing. */
    [STMT_MARK_READ] =
        {"notification_mark_read",
         "WITH u AS (UPDATE notifications SET is_read = true, read_at = now()"
         "  WHERE id = $2::uuid AND recipient_telegram_id = $1::bigint AND NOT is_read"
         "  RETURNING *),"
         " a AS (" LS_AUDIT_INSERT "SELECT $3::bigint, 'notification.read', 'notification',"
         "  u.id::text, '{}'::jsonb FROM u)"
         " SELECT " NOTIFICATION_COLUMNS(
             "") " FROM u"
                 " UNION ALL SELECT " NOTIFICATION_COLUMNS(
                     "") " FROM notifications"
                         "  WHERE id = $2::uuid AND recipient_telegram_id = $1::bigint AND is_read"
                         "  AND NOT EXISTS (SELECT 1 FROM u)",
         3},
    /* $1 recipient, $2 actor */
    [STMT_MARK_ALL_READ] =
        {"notification_mark_all_read",
         "WITH u AS (UPDATE notifications SET is_read = true, read_at = now()"
         "  WHERE recipient_telegram_id = $1::bigint AND NOT is_read RETURNING id),"
         " c AS (SELECT count(*) AS marked FROM u),"
         " a AS (" LS_AUDIT_INSERT "SELECT $2::bigint, 'notification.read_all', 'user',"
         "  $1::bigint::text, jsonb_build_object('marked', c.marked) FROM c WHERE c.marked > 0)"
         " SELECT marked FROM c",
         2},
    [STMT_SETTINGS_GET] = {"notification_settings_get",
                           "SELECT " SETTINGS_COLUMNS("q.tid") " FROM (SELECT $1::bigint AS tid) AS q"
                                                               " LEFT JOIN user_notification_settings s"
                                                               " ON s.telegram_id = q.tid",
                           1},
    /* $1 id, $2 disabled types (NULL: keep), $3 quiet hours given, $4 from, $5 to (NULL with $3:
     * none), $6 time zone (NULL: keep), $7 language given, $8 language, $9 actor, $10 changes,
     * $11 reminder minutes given, $12 minutes (NULL with $11: no reminders).
     * The WHERE makes PostgreSQL reject a time zone it does not know (SQLSTATE 22023) before
     * anything is written. */
    [STMT_SETTINGS_PUT] =
        {"notification_settings_put",
         "WITH u AS (INSERT INTO user_notification_settings AS s (telegram_id, disabled_types, quiet_from,"
         "   quiet_to, timezone, language_code, lesson_reminder_minutes)"
         "  SELECT $1::bigint, COALESCE((SELECT array_agg(DISTINCT d ORDER BY d)"
         "    FROM unnest($2::notification_type[]) AS d), '{}'),"
         "   CASE WHEN $3::boolean THEN $4::time END, CASE WHEN $3::boolean THEN $5::time END,"
         "   COALESCE($6::text, 'UTC'), CASE WHEN $7::boolean THEN $8::text END,"
         "   CASE WHEN $11::boolean THEN $12::int ELSE " NOTIFY_REMINDER_DEFAULT " END"
         "  WHERE (now() AT TIME ZONE COALESCE($6::text, 'UTC')) IS NOT NULL"
         "  ON CONFLICT (telegram_id) DO UPDATE SET"
         "   disabled_types = CASE WHEN $2::notification_type[] IS NULL THEN s.disabled_types"
         "    ELSE EXCLUDED.disabled_types END,"
         "   quiet_from = CASE WHEN $3::boolean THEN EXCLUDED.quiet_from ELSE s.quiet_from END,"
         "   quiet_to = CASE WHEN $3::boolean THEN EXCLUDED.quiet_to ELSE s.quiet_to END,"
         "   timezone = COALESCE($6::text, s.timezone),"
         "   language_code = CASE WHEN $7::boolean THEN EXCLUDED.language_code ELSE s.language_code END,"
         "   lesson_reminder_minutes = CASE WHEN $11::boolean THEN EXCLUDED.lesson_reminder_minutes"
         "    ELSE s.lesson_reminder_minutes END,"
         "   updated_at = now()"
         "  RETURNING s.*),"
         " a AS (" LS_AUDIT_INSERT "SELECT $9::bigint, 'notification_settings.update', 'user',"
         "  $1::bigint::text, $10::jsonb FROM u)"
         " SELECT " SETTINGS_COLUMNS("s.telegram_id") " FROM u AS s",
         12},
    /* The MVP channel (seed 001): a due notification is delivered by being stored. $1 batch. */
    [STMT_DELIVER_STORE] =
        {"notification_deliver_store",
         "WITH due AS (" DUE_ROWS(
             "$1::int") "),"
                        " s AS (UPDATE notifications n SET delivery_status = 'sent',"
                        "  attempts = n.attempts + 1 FROM due WHERE n.id = due.id"
                        "  RETURNING n.id, n.recipient_telegram_id, n.type, n.attempts, n.trace_id),"
                        " l AS (INSERT INTO notification_logs (notification_id, attempt, channel, status)"
                        "  SELECT id, attempts, 'store', 'sent' FROM s)"
                        " SELECT id, recipient_telegram_id, type, trace_id FROM s",
         1},
    /* $1 batch, $2 lease in seconds: the claimed rows are not due again before the lease ends, so a
     * poller that dies mid-send leaves them to be retried later, never lost. */
    [STMT_CLAIM] = {"notification_claim",
                    "WITH due AS (" DUE_ROWS(
                        "$1::int") ")"
                                   " UPDATE notifications n SET attempts = n.attempts + 1,"
                                   "  deliver_after = now() + make_interval(secs => $2::int)"
                                   " FROM due WHERE n.id = due.id"
                                   " RETURNING n.id, n.recipient_telegram_id, n.title, n.body, n.attempts,"
                                   "  n.trace_id",
                    2},
    /* Outcomes of one Telegram attempt: $1 id, $2 attempt, $3 HTTP status or NULL, then as named. */
    [STMT_SENT] = {"notification_sent",
                   "WITH u AS (UPDATE notifications SET delivery_status = 'sent'"
                   "  WHERE id = $1::uuid AND delivery_status = 'pending')"
                   " INSERT INTO notification_logs (notification_id, attempt, channel, status, http_status)"
                   " VALUES ($1::uuid, $2::int, 'telegram', 'sent', $3::int)",
                   3},
    /* $4 error, $5 backoff in seconds */
    [STMT_RETRY] =
        {"notification_retry",
         "WITH u AS (UPDATE notifications SET deliver_after = now() + make_interval(secs => $5::int)"
         "  WHERE id = $1::uuid AND delivery_status = 'pending')"
         " INSERT INTO notification_logs (notification_id, attempt, channel, status, http_status,"
         "  error) VALUES ($1::uuid, $2::int, 'telegram', 'retry', $3::int, $4::text)",
         5},
    /* $4 error */
    [STMT_FAILED] = {"notification_failed",
                     "WITH u AS (UPDATE notifications SET delivery_status = 'failed'"
                     "  WHERE id = $1::uuid AND delivery_status = 'pending')"
                     " INSERT INTO notification_logs (notification_id, attempt, channel, status, http_status,"
                     "  error) VALUES ($1::uuid, $2::int, 'telegram', 'failed', $3::int, $4::text)",
                     4},
    /*
     * The reminder sweep's step: $1 one page of calendar-service's GET /lessons/upcoming, as it came.
     * For the teacher and each participant of each lesson not yet started whose reminder time
     * (starts_at minus their lesson_reminder_minutes) has come, and who neither turned reminders off
     * nor disabled the type: one lesson_reminders row and its notification (rendered like
     * STMT_CREATE's: their language, else English; quiet hours set deliver_after) and audit row.
     * ON CONFLICT DO NOTHING makes it once per (lesson, starts_at, person) across replicas, rounds
     * and restarts: a concurrent insert of the same key waits for the other and then does nothing.
     * Answers how many it created and the page's "next".
     */
    // clang-format off
    [STMT_REMINDERS] =
        {"notification_reminders",
         "WITH page AS (SELECT $1::jsonb AS b),"
         " l AS (SELECT x.* FROM page, jsonb_to_recordset(page.b -> 'lessons') AS x(id uuid,"
         "  starts_at timestamptz, teacher_telegram_id bigint, participants jsonb, topic text,"
         "  group_id uuid, group_title text, duration_minutes int)"
         "  WHERE x.starts_at > now()),"
         " p AS (SELECT l.*, r.rcpt FROM l, LATERAL (SELECT l.teacher_telegram_id AS rcpt"
         "  UNION SELECT e.v::bigint FROM jsonb_array_elements_text(l.participants) AS e(v)) AS r),"
         " d AS (SELECT p.id AS lesson_id, p.starts_at, p.rcpt, t.language_code, t.title_template,"
         "  t.body_template, COALESCE(notification_quiet_end(s.quiet_from, s.quiet_to, s.timezone, now()),"
         "   now()) AS deliver_after,"
         "  jsonb_strip_nulls(jsonb_build_object('lesson_id', p.id, 'topic', p.topic, 'starts_at',"
         "   to_char(p.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
         "   'duration_minutes', p.duration_minutes, 'group_id', p.group_id, 'group_title', p.group_title,"
         "   'minutes', m.minutes)) AS params"
         "  FROM p LEFT JOIN user_notification_settings s ON s.telegram_id = p.rcpt,"
         "  LATERAL (SELECT " REMINDER_MINUTES_OF_S " AS minutes) AS m,"
         "  LATERAL (SELECT tp.language_code, tp.title_template, tp.body_template"
         "   FROM notification_templates tp WHERE tp.type = 'lesson_reminder'"
         "   AND tp.language_code IN (COALESCE(s.language_code, 'en'), 'en')"
         "   ORDER BY tp.language_code = COALESCE(s.language_code, 'en') DESC LIMIT 1) AS t"
         "  WHERE m.minutes IS NOT NULL"
         "  AND NOT COALESCE('lesson_reminder' = ANY(s.disabled_types), false)"
         "  AND p.starts_at - make_interval(mins => m.minutes) <= now()),"
         " r AS (INSERT INTO lesson_reminders AS lr (lesson_id, starts_at, telegram_id, notification_id)"
         "  SELECT lesson_id, starts_at, rcpt, gen_random_uuid() FROM d"
         "  ON CONFLICT DO NOTHING RETURNING lr.*),"
         " n AS (INSERT INTO notifications (id, recipient_telegram_id, type, title, body, params,"
         "   language_code, deliver_after)"
         "  SELECT r.notification_id, r.telegram_id, 'lesson_reminder',"
         "   notification_render(d.title_template, d.params), notification_render(d.body_template, d.params),"
         "   d.params, d.language_code, d.deliver_after"
         "  FROM r JOIN d ON d.lesson_id = r.lesson_id AND d.starts_at = r.starts_at"
         "   AND d.rcpt = r.telegram_id"
         "  RETURNING id, recipient_telegram_id, params),"
         " a AS (" LS_AUDIT_INSERT "SELECT NULL, 'notification.create', 'notification', n.id::text,"
         "  jsonb_build_object('recipient_telegram_id', n.recipient_telegram_id,"
         "   'type', 'lesson_reminder', 'params', n.params) FROM n)"
         " SELECT (SELECT count(*) FROM n) AS created, (SELECT b ->> 'next' FROM page) AS next",
         1},
    // clang-format on
    [STMT_IDEM] = LS_IDEM_STMTS,
};
