/* students-service: every statement it runs, prepared on each connection. */
#include "students.h"

#include "txn.h"

#define STUDENT_COLUMNS(p)                                                                                   \
    p "id, " p "telegram_id, " p "goals, " p "timezone, " p "created_at, " p "updated_at"

/* A profile's languages as a JSON array ordered by code; none gives []. */
#define LANGUAGES_OF(tid)                                                                                    \
    "(SELECT coalesce(json_agg(json_build_object('language_code', l.language_code, 'level', l.level)"        \
    " ORDER BY l.language_code), '[]'::json) FROM student_languages l"                                       \
    " WHERE l.student_telegram_id = " tid ") AS languages"

#define ENROLLMENT_COLUMNS(p)                                                                                \
    p "id, " p "student_telegram_id, " p "group_id, " p "status, " p "payment_id, " p "enrolled_at, " p      \
      "updated_at"

/* An upsert onto a refunded enrollment that asks for no status: a new membership. */
#define RESTART "(t.status = 'refunded' AND $3::enrollment_status IS NULL)"

const ls_pg_stmt_t students_statements[STMT_COUNT] = {
    [STMT_STUDENT_GET] = {"student_get",
                          "SELECT " STUDENT_COLUMNS("s.") ", " LANGUAGES_OF(
                              "s.telegram_id") " FROM students s WHERE s.telegram_id = $1::bigint",
                          1},
    [STMT_STUDENT_BATCH] = {"student_batch",
                            "SELECT " STUDENT_COLUMNS("s.") ", " LANGUAGES_OF(
                                "s.telegram_id") " FROM unnest($1::bigint[]) WITH ORDINALITY AS q(tid, ord)"
                                                 " JOIN students s ON s.telegram_id = q.tid ORDER BY q.ord",
                            1},
    /*
     * $1 id, $2 goals, $3 timezone, $4 goals given, $5 timezone given, $6 actor, $7 changes.
     * AT TIME ZONE rejects an unknown zone name (22023, answered 400) before anything is written;
     * with $3 NULL it is NULL and raises nothing.
     */
    [STMT_STUDENT_PUT] =
        {"student_put",
         "WITH s AS ("
         " INSERT INTO students AS t (telegram_id, goals, timezone)"
         " VALUES ($1::bigint, $2::text,"
         "  CASE WHEN $3::text IS NULL OR (now() AT TIME ZONE $3::text) IS NOT NULL THEN $3::text END)"
         " ON CONFLICT (telegram_id) DO UPDATE SET"
         "  goals = CASE WHEN $4::boolean THEN EXCLUDED.goals ELSE t.goals END,"
         "  timezone = CASE WHEN $5::boolean THEN EXCLUDED.timezone ELSE t.timezone END,"
         "  updated_at = now()"
         " RETURNING t.*, (t.xmax = 0) AS created),"
         " a AS (" LS_AUDIT_INSERT
         "  SELECT $6::bigint, CASE WHEN created THEN 'student.create' ELSE 'student.update' END,"
         "   'student', telegram_id::text, $7::jsonb FROM s)"
         " SELECT " STUDENT_COLUMNS("s.") ", " LANGUAGES_OF("s.telegram_id") ", s.created FROM s",
         7},
    /* $1 id, $2 code, $3 level, $4 actor. No row when the profile does not exist. */
    [STMT_LANGUAGE_PUT] =
        {"language_put",
         "WITH l AS ("
         " INSERT INTO student_languages AS t (student_telegram_id, language_code, level)"
         " SELECT telegram_id, $2::text, $3::cefr_level FROM students WHERE telegram_id = $1::bigint"
         " ON CONFLICT (student_telegram_id, language_code) DO UPDATE"
         "  SET level = EXCLUDED.level, updated_at = now()"
         " RETURNING t.*, (t.xmax = 0) AS created),"
         " a AS (" LS_AUDIT_INSERT "  SELECT $4::bigint,"
         "   CASE WHEN created THEN 'student_language.create' ELSE 'student_language.update' END,"
         "   'student_language', student_telegram_id || ':' || language_code,"
         "   jsonb_build_object('level', level) FROM l)"
         " SELECT student_telegram_id, language_code, level, created_at, updated_at, created FROM l",
         4},
    /* $1 id, $2 code, $3 actor. */
    [STMT_LANGUAGE_DELETE] = {"language_delete",
                              "WITH d AS (DELETE FROM student_languages"
                              "  WHERE student_telegram_id = $1::bigint AND language_code = $2::text"
                              "  RETURNING student_telegram_id, language_code, level),"
                              " a AS (" LS_AUDIT_INSERT "  SELECT $3::bigint, 'student_language.delete',"
                              "   'student_language', student_telegram_id || ':' || language_code,"
                              "   jsonb_build_object('level', level) FROM d)"
                              " SELECT language_code FROM d",
                              3},
    /*
     * $1 student, $2 group, $3 status or NULL, $4 actor, $5 payment or NULL. Creates, or moves the
     * status forward (keeping the payment unless one is given); a "refunded" enrollment asked for no
     * status starts again as "enrolled" with the payment given (a new membership). A row only comes
     * back when something was written. ON CONFLICT waits for a concurrent insert of the same pair and
     * then sees it, so concurrent identical calls create exactly one row.
     */
    [STMT_ENROLLMENT_UPSERT] =
        {"enrollment_upsert",
         "WITH e AS ("
         " INSERT INTO group_enrollments AS t (student_telegram_id, group_id, status, payment_id)"
         " VALUES ($1::bigint, $2::uuid, coalesce($3::enrollment_status, 'enrolled'), $5::uuid)"
         " ON CONFLICT (student_telegram_id, group_id) DO UPDATE"
         "  SET status = CASE WHEN " RESTART " THEN 'enrolled' ELSE greatest(t.status, EXCLUDED.status) END,"
         "   payment_id = CASE WHEN " RESTART " THEN EXCLUDED.payment_id"
         "    ELSE coalesce(EXCLUDED.payment_id, t.payment_id) END,"
         "   updated_at = now()"
         "  WHERE t.status < EXCLUDED.status OR " RESTART
         "   OR (EXCLUDED.payment_id IS DISTINCT FROM t.payment_id AND EXCLUDED.payment_id IS NOT NULL)"
         " RETURNING t.*, (t.xmax = 0) AS created),"
         " a AS (" LS_AUDIT_INSERT
         "  SELECT $4::bigint, CASE WHEN created THEN 'enrollment.create' ELSE 'enrollment.update' END,"
         "   'enrollment', id::text, jsonb_build_object('student_telegram_id', student_telegram_id,"
         "   'group_id', group_id, 'status', status, 'payment_id', payment_id) FROM e)"
         " SELECT " ENROLLMENT_COLUMNS("") ", created FROM e",
         5},
    [STMT_ENROLLMENT_GET] = {"enrollment_get",
                             "SELECT " ENROLLMENT_COLUMNS("") " FROM group_enrollments"
                                                              " WHERE student_telegram_id = $1::bigint"
                                                              " AND group_id = $2::uuid",
                             2},
    /* $1 student, $2 group, $3 actor. */
    [STMT_ENROLLMENT_DELETE] =
        {"enrollment_delete",
         "WITH d AS (DELETE FROM group_enrollments"
         "  WHERE student_telegram_id = $1::bigint AND group_id = $2::uuid"
         "  RETURNING id, student_telegram_id, group_id, status),"
         " a AS (" LS_AUDIT_INSERT "  SELECT $3::bigint, 'enrollment.delete', 'enrollment', id::text,"
         "   jsonb_build_object('student_telegram_id', student_telegram_id, 'group_id', group_id,"
         "   'status', status) FROM d)"
         " SELECT id FROM d",
         3},
    /* $1 student, $2 limit, $3 offset. */
    [STMT_ENROLLMENTS_OF_STUDENT] = {"enrollments_of_student",
                                     "SELECT " ENROLLMENT_COLUMNS(
                                         "") " FROM group_enrollments"
                                             " WHERE student_telegram_id = $1::bigint"
                                             " ORDER BY enrolled_at DESC, id DESC"
                                             " LIMIT $2::int OFFSET $3::int",
                                     3},
    /* $1 group, $2 limit, $3 offset. */
    [STMT_ENROLLMENTS_OF_GROUP] = {"enrollments_of_group",
                                   "SELECT " ENROLLMENT_COLUMNS("") " FROM group_enrollments"
                                                                    " WHERE group_id = $1::uuid"
                                                                    " ORDER BY student_telegram_id"
                                                                    " LIMIT $2::int OFFSET $3::int",
                                   3},
    [STMT_IDEM] = LS_IDEM_STMTS,
};
