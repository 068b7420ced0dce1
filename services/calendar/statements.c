/* calendar-service: every statement it runs, prepared on each connection. */
#include "calendar.h"

#include "txn.h"

#define LESSON_COLUMNS(p)                                                                                    \
    p "id, " p "teacher_telegram_id, " p "group_id, " p "starts_at, " p "ends_at, " p "duration_minutes, " p \
      "topic, " p "status, " p "created_by, " p "version, " p "created_at, " p "updated_at"

/* A time as RFC 3339 UTC text, for times that go inside JSON built in SQL (rows.h converts only
 * top-level columns). */
#define RFC3339(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* A lesson's participants as a JSON array of ids, ascending. */
#define PARTICIPANTS_OF(lesson)                                                                              \
    "(SELECT COALESCE(json_agg(pp.student_telegram_id ORDER BY pp.student_telegram_id), '[]'::json)"         \
    " FROM lesson_participants pp WHERE pp.lesson_id = " lesson ") AS participants"

/*
 * Outbox rows telling each recipient about a lesson event, from a query that yields `l` (the
 * lesson) and `rcpt` (a recipient's telegram id). The recipient is the ordering key
 * (shared/outbox.h): one person's "scheduled" is delivered before their "cancelled", while
 * different people's notifications go out in parallel. A recipient's idempotency key names the
 * lesson, its version and the event, so a redelivery (or a repeated event) makes one notification.
 * params_sql must be a json object; nulls are dropped (notification params are strings or numbers).
 * traceparent is the writing request's (ls_req_traceparent), sent with the row.
 */
#define NOTIFY_INSERT(event, params_sql, actor, traceparent, from_sql)                                       \
    "INSERT INTO outbox (target, method, path, body, actor_telegram_id, idempotency_key, ordering_key,"      \
    "  traceparent)"                                                                                         \
    " SELECT '" CAL_NOTIFY_TARGET "', 'POST', '/notifications',"                                             \
    "  json_build_object('recipient_telegram_id', rcpt, 'type', 'lesson_" event "',"                         \
    "   'params', json_strip_nulls(" params_sql "))::text,"                                                  \
    "  " actor ", 'lesson:' || l.id || ':v' || l.version || ':" event ":' || rcpt,"                          \
    "  'recipient:' || rcpt, " traceparent " " from_sql

#define LESSON_PARAMS(extra)                                                                                 \
    "json_build_object('topic', l.topic, 'starts_at', " RFC3339(                                             \
        "l.starts_at") ", 'duration_minutes', l.duration_minutes, 'group_id', l.group_id,"                   \
                       " 'group_title', l.group_title" extra ")"

/* The common tail of the lesson lists: $2 from (NULL: now), $3 to (NULL: unbounded), $4 status
 * (NULL: any), $5 limit, $6 offset. */
#define LIST_TAIL                                                                                            \
    " AND l.starts_at >= COALESCE($2::timestamptz, now())"                                                   \
    " AND ($3::timestamptz IS NULL OR l.starts_at < $3::timestamptz)"                                        \
    " AND ($4::lesson_status IS NULL OR l.status = $4::lesson_status)"                                       \
    " ORDER BY l.starts_at, l.id LIMIT $5::int OFFSET $6::int"

const ls_pg_stmt_t calendar_statements[STMT_COUNT] = {
    /* Serialises the writes that depend on one teacher's calendar until the transaction ends. It is
     * a statement of its own so that the next statement's snapshot, taken after the lock is held,
     * sees everything committed by the previous holder. */
    [STMT_TEACHER_LOCK] = {"teacher_lock", "SELECT pg_advisory_xact_lock($1::bigint)", 1},
    /*
     * $1 teacher, $2 starts_at, $3 duration, $4 the lesson to ignore (a reschedule) or NULL. One row:
     * the first overlapping lesson (or NULLs), the first overlapping unavailable period (or NULLs),
     * and the weekly schedule's time zone (NULL: no schedule, available at any time) with whether
     * the lesson fits inside one window of its weekday in that zone. end_time 24:00 is the day's
     * end, so `date + end_time` handles it.
     */
    [STMT_LESSON_CHECK] =
        {"lesson_check",
         "WITH t AS (SELECT $2::timestamptz AS s, $2::timestamptz + make_interval(mins => $3::int) AS e)"
         " SELECT c.id AS conflict_id, c.starts_at AS conflict_starts_at, c.ends_at AS conflict_ends_at,"
         "  u.starts_at AS unavailable_starts_at, u.ends_at AS unavailable_ends_at,"
         "  u.reason AS unavailable_reason, w.timezone AS schedule_timezone, w.fits AS fits_schedule"
         " FROM t"
         " LEFT JOIN LATERAL (SELECT l.id, l.starts_at, l.ends_at FROM lessons l"
         "  WHERE l.teacher_telegram_id = $1::bigint AND l.status <> 'cancelled'"
         "  AND l.id IS DISTINCT FROM $4::uuid"
         "  AND tstzrange(l.starts_at, l.ends_at) && tstzrange(t.s, t.e)"
         "  ORDER BY l.starts_at LIMIT 1) c ON true"
         " LEFT JOIN LATERAL (SELECT x.starts_at, x.ends_at, x.reason FROM teacher_unavailable x"
         "  WHERE x.teacher_telegram_id = $1::bigint AND x.starts_at < t.e AND x.ends_at > t.s"
         "  ORDER BY x.starts_at LIMIT 1) u ON true"
         " LEFT JOIN LATERAL (SELECT min(ws.timezone) AS timezone,"
         "  bool_or(ws.weekday = extract(isodow FROM t.s AT TIME ZONE ws.timezone)"
         "   AND t.s AT TIME ZONE ws.timezone >= (t.s AT TIME ZONE ws.timezone)::date + ws.start_time"
         "   AND t.e AT TIME ZONE ws.timezone <= (t.s AT TIME ZONE ws.timezone)::date + ws.end_time) AS fits"
         "  FROM teacher_schedules ws WHERE ws.teacher_telegram_id = $1::bigint) w ON true",
         4},
    /*
     * $1 teacher, $2 group or NULL, $3 starts_at, $4 duration, $5 topic or NULL, $6 actor,
     * $7 participants (bigint[], no duplicates), $8 the group's title or NULL, $9 the request body,
     * $10 traceparent.
     * The lesson, its participants, one outbox row per participant and the audit row in one
     * statement: an overlap (23P01) leaves nothing behind.
     */
    [STMT_LESSON_INSERT] =
        {"lesson_insert",
         "WITH l AS (INSERT INTO lessons (teacher_telegram_id, group_id, starts_at, ends_at,"
         "  duration_minutes, topic, created_by, group_title)"
         " VALUES ($1::bigint, $2::uuid, $3::timestamptz, $3::timestamptz + make_interval(mins => $4::int),"
         "  $4::int, COALESCE($5::text, ''), $6::bigint, $8::text) RETURNING *),"
         " p AS (INSERT INTO lesson_participants (lesson_id, student_telegram_id)"
         "  SELECT l.id, rcpt FROM l, unnest($7::bigint[]) AS rcpt),"
         " o AS (" NOTIFY_INSERT(
             "scheduled", LESSON_PARAMS(""), "$6::bigint", "$10::text",
             "FROM l, unnest($7::bigint[]) AS rcpt") "),"
                                                     " a AS (" LS_AUDIT_INSERT
                                                     "SELECT $6::bigint, 'lesson.create', 'lesson', "
                                                     "l.id::text,"
                                                     "  $9::jsonb || jsonb_build_object('participants', "
                                                     "to_jsonb($7::bigint[])) FROM l)"
                                                     " SELECT " LESSON_COLUMNS(
                                                         "l.") ","
                                                               "  (SELECT COALESCE(json_agg(x ORDER BY x), "
                                                               "'[]'::json) FROM unnest($7::bigint[]) AS x) "
                                                               "AS participants"
                                                               " FROM l",
         10},
    [STMT_LESSON_GET] = {"lesson_get",
                         "SELECT " LESSON_COLUMNS("l.") ", " PARTICIPANTS_OF(
                             "l.id") ","
                                     " (SELECT COALESCE(json_agg(json_build_object('student_telegram_id',"
                                     "  a.student_telegram_id, 'status', a.status, 'marked_by', a.marked_by,"
                                     "  'marked_at', " RFC3339(
                                         "a.marked_at") ") ORDER BY a.student_telegram_id),"
                                                        "  '[]'::json) FROM lesson_attendance a WHERE "
                                                        "a.lesson_id = l.id) AS attendance"
                                                        " FROM lessons l WHERE l.id = $1::uuid",
                         1},
    /* The row every change to one lesson starts from, locked until the transaction ends, with where
     * the database's clock stands against it (attendance's window): whether it has not started yet,
     * and the whole seconds since its end (negative before it). */
    [STMT_LESSON_LOCK] = {"lesson_lock",
                          "SELECT " LESSON_COLUMNS(
                              "") ", now() < starts_at AS not_started,"
                                  " floor(extract(epoch FROM now() - ends_at))::bigint"
                                  " AS ended_s FROM lessons WHERE id = $1::uuid FOR UPDATE",
                          1},
    /* $1 lesson, $2 actor, $3 reason or NULL, $4 traceparent. No row: the lesson is not scheduled. */
    [STMT_LESSON_CANCEL] =
        {"lesson_cancel",
         "WITH l AS (UPDATE lessons SET status = 'cancelled', updated_at = now()"
         "  WHERE id = $1::uuid AND status = 'scheduled' RETURNING *),"
         " o AS (" NOTIFY_INSERT(
             "cancelled", LESSON_PARAMS(", 'reason', $3::text"), "$2::bigint", "$4::text",
             "FROM l JOIN lesson_participants pp ON pp.lesson_id = l.id,"
             " LATERAL (SELECT pp.student_telegram_id AS rcpt) r") "),"
                                                                   " a AS (" LS_AUDIT_INSERT
                                                                   "SELECT $2::bigint, 'lesson.cancel', "
                                                                   "'lesson', l.id::text,"
                                                                   "  "
                                                                   "jsonb_strip_nulls(jsonb_build_object('"
                                                                   "status', 'cancelled', 'reason', "
                                                                   "$3::text)) FROM l)"
                                                                   " SELECT " LESSON_COLUMNS(
                                                                       "l.") ", " PARTICIPANTS_OF("l.id") " F"
                                                                                                          "RO"
                                                                                                          "M "
                                                                                                          "l",
         4},
    /*
     * $1 lesson, $2 new starts_at, $3 new duration, $4 actor, $5 traceparent. No row: the lesson is not
     * scheduled. The lesson row is locked by the transaction, so `old` is the row the update replaces.
     */
    [STMT_LESSON_RESCHEDULE] =
        {"lesson_reschedule",
         "WITH old AS (SELECT starts_at, duration_minutes, version FROM lessons WHERE id = $1::uuid),"
         " l AS (UPDATE lessons SET starts_at = $2::timestamptz,"
         "  ends_at = $2::timestamptz + make_interval(mins => $3::int), duration_minutes = $3::int,"
         "  version = version + 1, updated_at = now()"
         "  WHERE id = $1::uuid AND status = 'scheduled' RETURNING *),"
         " o AS (" NOTIFY_INSERT(
             "rescheduled", LESSON_PARAMS(", 'old_starts_at', (SELECT " RFC3339("starts_at") " FROM old)"),
             "$4::bigint", "$5::text",
             "FROM l JOIN lesson_participants pp ON pp.lesson_id = l.id,"
             " LATERAL (SELECT pp.student_telegram_id AS rcpt) r") "),"
                                                                   " a AS (" LS_AUDIT_INSERT
                                                                   "SELECT $4::bigint, 'lesson.reschedule', "
                                                                   "'lesson', l.id::text,"
                                                                   "  jsonb_build_object('old_starts_at', "
                                                                   "old.starts_at, 'old_duration_minutes', "
                                                                   "old.duration_minutes,"
                                                                   "  'starts_at', l.starts_at, "
                                                                   "'duration_minutes', l.duration_minutes, "
                                                                   "'version', l.version)"
                                                                   "  FROM l, old)"
                                                                   " SELECT " LESSON_COLUMNS(
                                                                       "l.") ", " PARTICIPANTS_OF("l.id") " F"
                                                                                                          "RO"
                                                                                                          "M "
                                                                                                          "l",
         5},
    /* $1 lesson, $2 person, $3 status, $4 actor. No row: the person is not a participant. */
    [STMT_ATTENDANCE_PUT] =
        {"attendance_put",
         "WITH x AS (INSERT INTO lesson_attendance AS t (lesson_id, student_telegram_id, status, marked_by)"
         "  SELECT lesson_id, student_telegram_id, $3::attendance_status, $4::bigint"
         "  FROM lesson_participants WHERE lesson_id = $1::uuid AND student_telegram_id = $2::bigint"
         "  ON CONFLICT (lesson_id, student_telegram_id) DO UPDATE"
         "  SET status = EXCLUDED.status, marked_by = EXCLUDED.marked_by, marked_at = now()"
         "  RETURNING t.*),"
         " a AS (" LS_AUDIT_INSERT "SELECT $4::bigint, 'lesson.attendance', 'lesson', x.lesson_id::text,"
         "  jsonb_build_object('student_telegram_id', x.student_telegram_id, 'status', x.status) FROM x)"
         " SELECT lesson_id, student_telegram_id, status, marked_by, marked_at FROM x",
         4},
    /* $1 person: the lessons they teach or take part in. */
    [STMT_LESSONS_OF_PERSON] =
        {"lessons_of_person",
         "SELECT " LESSON_COLUMNS(
             "l.") " FROM lessons l"
                   " WHERE l.id IN (SELECT id FROM lessons WHERE teacher_telegram_id = $1::bigint"
                   "  UNION ALL SELECT lesson_id FROM lesson_participants"
                   "  WHERE student_telegram_id = $1::bigint)" LIST_TAIL,
         6},
    [STMT_LESSONS_OF_TEACHER] = {"lessons_of_teacher",
                                 "SELECT " LESSON_COLUMNS(
                                     "l.") " FROM lessons l"
                                           " WHERE l.teacher_telegram_id = $1::bigint" LIST_TAIL,
                                 6},
    [STMT_LESSONS_OF_STUDENT] = {"lessons_of_student",
                                 "SELECT " LESSON_COLUMNS(
                                     "l.") " FROM lessons l"
                                           " WHERE l.id IN (SELECT lesson_id FROM lesson_participants"
                                           "  WHERE student_telegram_id = $1::bigint)" LIST_TAIL,
                                 6},
    [STMT_LESSONS_OF_GROUP] = {"lessons_of_group",
                               "SELECT " LESSON_COLUMNS("l.") " FROM lessons l"
                                                              " WHERE l.group_id = $1::uuid" LIST_TAIL,
                               6},
    /* $1 teacher. timezone is NULL and slots [] when the teacher has no weekly schedule. */
    [STMT_SCHEDULE_GET] =
        {"schedule_get",
         "SELECT $1::bigint AS teacher_telegram_id,"
         " (SELECT min(timezone) FROM teacher_schedules WHERE teacher_telegram_id = $1::bigint) AS timezone,"
         " (SELECT COALESCE(json_agg(json_build_object('weekday', weekday,"
         "   'start_time', to_char(start_time, 'HH24:MI'), 'end_time', to_char(end_time, 'HH24:MI'))"
         "   ORDER BY weekday, start_time), '[]'::json)"
         "  FROM teacher_schedules WHERE teacher_telegram_id = $1::bigint) AS slots",
         1},
    /*
     * $1 teacher, $2 time zone, $3 slots as a JSON array of {weekday, start_time, end_time}, $4 actor,
     * $5 the request body. Replaces the schedule. AT TIME ZONE rejects a zone PostgreSQL does not
     * know (22023); the audit row reads `z`, so the zone is checked even when slots is empty.
     */
    [STMT_SCHEDULE_PUT] =
        {"schedule_put",
         "WITH z AS (SELECT $2::text AS tz WHERE (now() AT TIME ZONE $2::text) IS NOT NULL),"
         " d AS (DELETE FROM teacher_schedules WHERE teacher_telegram_id = $1::bigint RETURNING id),"
         " i AS (INSERT INTO teacher_schedules (teacher_telegram_id, weekday, start_time, end_time, timezone)"
         "  SELECT $1::bigint, s.weekday, s.start_time, s.end_time, z.tz"
         "  FROM z, json_to_recordset($3::json) AS s(weekday int, start_time time, end_time time)"
         "  RETURNING id),"
         " a AS (" LS_AUDIT_INSERT "SELECT $4::bigint, 'schedule.replace', 'teacher', $1::text,"
         "  $5::jsonb || jsonb_build_object('removed', (SELECT count(*) FROM d)) FROM z)"
         " SELECT count(*) AS slots FROM i",
         5},
    /* $1 teacher, $2 starts_at, $3 ends_at, $4 reason or NULL, $5 actor. */
    [STMT_UNAVAILABLE_ADD] =
        {"unavailable_add",
         "WITH u AS (INSERT INTO teacher_unavailable (teacher_telegram_id, starts_at, ends_at, reason)"
         "  VALUES ($1::bigint, $2::timestamptz, $3::timestamptz, COALESCE($4::text, '')) RETURNING *),"
         " a AS (" LS_AUDIT_INSERT
         "SELECT $5::bigint, 'unavailable.create', 'teacher_unavailable', u.id::text,"
         "  jsonb_build_object('teacher_telegram_id', u.teacher_telegram_id, 'starts_at', u.starts_at,"
         "  'ends_at', u.ends_at, 'reason', u.reason) FROM u)"
         " SELECT id, teacher_telegram_id, starts_at, ends_at, reason, created_at FROM u",
         5},
    /* $1 teacher, $2 limit, $3 offset: periods not yet over. */
    [STMT_UNAVAILABLE_LIST] = {"unavailable_list",
                               "SELECT id, teacher_telegram_id, starts_at, ends_at, reason, created_at"
                               " FROM teacher_unavailable WHERE teacher_telegram_id = $1::bigint"
                               " AND ends_at > now() ORDER BY starts_at, id LIMIT $2::int OFFSET $3::int",
                               3},
    /* $1 teacher, $2 period, $3 actor. */
    [STMT_UNAVAILABLE_DELETE] =
        {"unavailable_delete",
         "WITH d AS (DELETE FROM teacher_unavailable"
         "  WHERE teacher_telegram_id = $1::bigint AND id = $2::uuid RETURNING *),"
         " a AS (" LS_AUDIT_INSERT
         "SELECT $3::bigint, 'unavailable.delete', 'teacher_unavailable', d.id::text,"
         "  jsonb_build_object('teacher_telegram_id', d.teacher_telegram_id, 'starts_at', d.starts_at,"
         "  'ends_at', d.ends_at, 'reason', d.reason) FROM d)"
         " SELECT id FROM d",
         3},
    /*
     * $1 from (NULL: now), $2 to (NULL: unbounded), $3 and $4 the cursor: the starts_at and id of the
     * previous page's last lesson (NULL: the first page), $5 limit. Scheduled lessons only (a
     * cancelled one is reminded of by nobody), with what a reminder names. The cursor's time is also
     * a plain bound on starts_at, so that a later page's index scan starts at the cursor instead of
     * filtering its way there from `from`.
     */
    [STMT_LESSONS_UPCOMING] =
        {"lessons_upcoming",
         "SELECT l.id, l.teacher_telegram_id, l.group_id, l.group_title, l.starts_at, l.ends_at,"
         " l.duration_minutes, l.topic, l.version, " PARTICIPANTS_OF(
             "l.id") " FROM lessons l WHERE l.status = 'scheduled'"
                     " AND l.starts_at >= COALESCE($1::timestamptz, now())"
                     " AND ($2::timestamptz IS NULL OR l.starts_at < $2::timestamptz)"
                     " AND l.starts_at >= COALESCE($3::timestamptz, '-infinity')"
                     " AND ($3::timestamptz IS NULL OR (l.starts_at, l.id) > ($3::timestamptz, $4::uuid))"
                     " ORDER BY l.starts_at, l.id LIMIT $5::int",
         5},
    /* The sweep's first statement: whether this transaction is the one sweeping now. Two int4 keys:
     * a key space apart from the teachers' single bigint keys (STMT_TEACHER_LOCK), so no teacher's id
     * can collide with it. */
    [STMT_SWEEP_LOCK] = {"sweep_lock", "SELECT pg_try_advisory_xact_lock(" CAL_SWEEP_LOCK_KEYS ") AS locked",
                         0},
    /*
     * $1 batch. Scheduled lessons whose end has passed become completed, the earliest first, with an
     * audit row each (actor NULL: the service itself). A lesson a request holds locked (a change in
     * progress) is left to the next round; a lesson rescheduled meanwhile is checked again on its
     * new row, so one that no longer ended is left alone.
     */
    [STMT_SWEEP_COMPLETE] =
        {"sweep_complete",
         "WITH due AS (SELECT id FROM lessons WHERE status = 'scheduled' AND ends_at <= now()"
         "  ORDER BY ends_at LIMIT $1::int FOR UPDATE SKIP LOCKED),"
         " l AS (UPDATE lessons SET status = 'completed', updated_at = now() FROM due"
         "  WHERE lessons.id = due.id AND lessons.status = 'scheduled' AND lessons.ends_at <= now()"
         "  RETURNING lessons.id, lessons.ends_at),"
         " a AS (" LS_AUDIT_INSERT "SELECT NULL, 'lesson.complete', 'lesson', l.id::text,"
         "  jsonb_build_object('status', 'completed', 'ends_at', l.ends_at) FROM l)"
         " SELECT count(*) AS completed FROM l",
         1},
    [STMT_IDEM] = LS_IDEM_STMTS,
};
