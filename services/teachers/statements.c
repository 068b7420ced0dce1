/* teachers-service: every statement it runs, prepared on each connection. */
#include "teachers.h"

#include "txn.h"

#define TEACHER_COLUMNS(p)                                                                                   \
    p "id, " p "telegram_id, " p "bio, " p "experience_years, " p "timezone, " p "is_active, " p             \
      "created_at, " p "updated_at"

/* The teacher's languages as a JSON array column, for a teacher whose telegram_id is `tid`. */
#define LANGUAGES_OF(tid)                                                                                    \
    "COALESCE((SELECT json_agg(json_build_object('language_code', l.language_code, 'level', l.level)"        \
    " ORDER BY l.language_code) FROM teacher_languages l WHERE l.teacher_telegram_id = " tid "),"            \
    " '[]'::json) AS languages"

const ls_pg_stmt_t teachers_statements[STMT_COUNT] = {
    [STMT_TEACHER_GET] = {"teacher_get",
                          "SELECT " TEACHER_COLUMNS("t.") ", " LANGUAGES_OF(
                              "t.telegram_id") " FROM teachers t WHERE t.telegram_id = $1::bigint",
                          1},
    [STMT_TEACHER_BATCH] = {"teacher_batch",
                            "SELECT " TEACHER_COLUMNS("t.") ", " LANGUAGES_OF(
                                "t.telegram_id") " FROM unnest($1::bigint[]) WITH ORDINALITY AS q(tid, ord)"
                                                 " JOIN teachers t ON t.telegram_id = q.tid ORDER BY q.ord",
                            1},
    /* $1 language, $2 lowest level or NULL, $3 limit, $4 offset. (language, teacher) is unique, so
     * each teacher appears once. */
    [STMT_TEACHER_SEARCH] = {"teacher_search",
                             "SELECT " TEACHER_COLUMNS("t.") ", " LANGUAGES_OF(
                                 "t.telegram_id") " FROM teacher_languages s"
                                                  " JOIN teachers t ON t.telegram_id = s.teacher_telegram_id"
                                                  " WHERE s.language_code = $1::text"
                                                  " AND ($2::cefr_level IS NULL OR s.level >= $2::cefr_level)"
                                                  " AND t.is_active"
                                                  " ORDER BY t.telegram_id LIMIT $3::int OFFSET $4::int",
                             4},
    /* $1 id, $2 bio, $3 experience_years, $4 timezone, $5 is_active (NULL: keep, or the default on
     * create), $6 actor, $7 changes. The WHERE makes PostgreSQL reject a time zone it does not know
     * (SQLSTATE 22023) before anything is written. */
    [STMT_TEACHER_PUT] =
        {"teacher_put",
         "WITH u AS ("
         " INSERT INTO teachers AS t (telegram_id, bio, experience_years, timezone, is_active)"
         " SELECT $1::bigint, COALESCE($2::text, ''), COALESCE($3::int, 0), COALESCE($4::text, 'UTC'),"
         "  COALESCE($5::boolean, true)"
         " WHERE $4::text IS NULL OR (now() AT TIME ZONE $4::text) IS NOT NULL"
         " ON CONFLICT (telegram_id) DO UPDATE SET bio = COALESCE($2::text, t.bio),"
         "  experience_years = COALESCE($3::int, t.experience_years),"
         "  timezone = COALESCE($4::text, t.timezone), is_active = COALESCE($5::boolean, t.is_active),"
         "  updated_at = now()"
         " RETURNING t.*, (t.xmax = 0) AS created),"
         " a AS (" LS_AUDIT_INSERT "SELECT $6::bigint,"
         "  CASE WHEN created THEN 'teacher.create' ELSE 'teacher.update' END,"
         "  'teacher', telegram_id::text, $7::jsonb FROM u)"
         " SELECT " TEACHER_COLUMNS("u.") ", " LANGUAGES_OF("u.telegram_id") ", u.created FROM u",
         7},
    /* $1 teacher, $2 language code, $3 level, $4 actor. No row back: the teacher does not exist.
     * Every part of the statement sees the rows as they were before it, so `old` holds the
     * previous level for the audit row. */
    [STMT_LANGUAGE_PUT] =
        {"language_put",
         "WITH old AS (SELECT level FROM teacher_languages"
         "  WHERE teacher_telegram_id = $1::bigint AND language_code = $2::text),"
         " l AS ("
         " INSERT INTO teacher_languages AS x (teacher_telegram_id, language_code, level)"
         " SELECT telegram_id, $2::text, $3::cefr_level FROM teachers WHERE telegram_id = $1::bigint"
         " ON CONFLICT (teacher_telegram_id, language_code) DO UPDATE SET level = EXCLUDED.level"
         " RETURNING x.*, (x.xmax = 0) AS created),"
         " a AS (" LS_AUDIT_INSERT "SELECT $4::bigint,"
         "  CASE WHEN created THEN 'teacher.language_add' ELSE 'teacher.language_update' END,"
         "  'teacher', teacher_telegram_id::text,"
         "  jsonb_build_object('language_code', language_code, 'level', level,"
         "   'previous_level', (SELECT level FROM old)) FROM l)"
         " SELECT teacher_telegram_id, language_code, level, created_at, created FROM l",
         4},
    /* $1 teacher, $2 language code, $3 actor. Answers whether the teacher exists and the level
     * deleted (NULL when there was no such language). */
    [STMT_LANGUAGE_DELETE] =
        {"language_delete",
         "WITH d AS (DELETE FROM teacher_languages"
         "  WHERE teacher_telegram_id = $1::bigint AND language_code = $2::text"
         "  RETURNING teacher_telegram_id, language_code, level),"
         " a AS (" LS_AUDIT_INSERT "SELECT $3::bigint, 'teacher.language_remove', 'teacher',"
         "  teacher_telegram_id::text,"
         "  jsonb_build_object('language_code', language_code, 'previous_level', level) FROM d)"
         " SELECT EXISTS (SELECT 1 FROM teachers WHERE telegram_id = $1::bigint) AS teacher_exists,"
         "  (SELECT level FROM d) AS level",
         3},
    [STMT_IDEM] = LS_IDEM_STMTS,
};
