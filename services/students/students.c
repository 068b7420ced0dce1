/* students-service handlers: profiles and the languages a student learns. */
#include "students.h"

#include <stdio.h>
#include <string.h>

#include "rows.h"
#include "txn.h"
#include "vocab.h"

/* A row as an object, without the "created" flag that upserts add. */
static json_object *row_json(const PGresult *res, int row)
{
    return ls_row_object_skip(res, row, "created");
}

static json_object *batch_row_json(ls_req_t *r, const PGresult *res, int row)
{
    return row_json(res, row);
}

/* The code path parameter, or NULL after answering 400. */
static const char *language_code_or_reply(ls_req_t *r)
{
    const char *code = ls_req_param_str(r, "code");
    if (!ls_is_language_code(code)) {
        ls_reply_problem(r, 400, "language code must be 2 or 3 lowercase letters (ISO 639)");
        return NULL;
    }
    return code;
}

/* Writes to a profile need an actor who is its owner or an admin: 0, or answers and -1. */
static int owner_or_reply(ls_req_t *r)
{
    if (ls_req_actor_or_reply(r) != 0)
        return -1;
    if (!ls_req_actor_is_self_or_admin(r, ls_req_param_id(r, "telegram_id"))) {
        ls_reply_problem(r, 403, "only the student themself or an admin may change this profile");
        return -1;
    }
    return 0;
}

/* ---- GET /students/{telegram_id}: the profile, then its enrollments ---- */

static void on_student_enrollments(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    json_object *student = r->state;
    r->state = NULL;
    if (ls_pg_ok_or_reply(r, status, res) != 0) {
        json_object_put(student);
        return;
    }
    json_object_object_add(student, "enrollments", ls_rows_array(res));
    ls_reply_json(r, 200, student);
}

static void on_student_get(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0)
        return ls_reply_problem(r, 404, "student %lld not found",
                                (long long)ls_req_param_id(r, "telegram_id"));
    /* Held in r->state until the second query answers; every path of that callback releases it. */
    r->state = row_json(res, 0);
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", STUDENTS_ENROLLMENTS_MAX);
    const char *params[3] = {ls_req_param_str(r, "telegram_id"), limit, "0"};
    ls_req_pg(r, STMT_ENROLLMENTS_OF_STUDENT, 3, params, on_student_enrollments);
}

void students_get(ls_req_t *r)
{
    const char *params[1] = {ls_req_param_str(r, "telegram_id")};
    ls_req_pg(r, STMT_STUDENT_GET, 1, params, on_student_get);
}

/* ---- GET /students?ids=1,2,3 ---- */

void students_batch(ls_req_t *r)
{
    ls_req_batch(r, STUDENTS_BATCH_MAX, STMT_STUDENT_BATCH, "students", batch_row_json);
}

/* ---- PUT /students/{telegram_id} ---- */

static const ls_json_field_t put_fields[] = {
    /* Bytes here (up to 4 per character); the database bounds the characters. */
    {"goals", LS_JSON_STRING, 0, 1, 0, STUDENTS_GOALS_MAX * 4, NULL},
    {"timezone", LS_JSON_STRING, 0, 1, 1, STUDENTS_TIMEZONE_MAX, NULL},
};

/* IANA names ("Europe/Moscow", "America/Argentina/Buenos_Aires", "Etc/GMT+3", "UTC") use only these;
 * whether the zone exists is PostgreSQL's to say. */
static int is_timezone_text(const char *s)
{
    for (; *s != '\0'; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '/' ||
              *s == '_' || *s == '-' || *s == '+'))
            return 0;
    return 1;
}

static void on_student_put(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    int created = ls_row_bool(res, 0, "created");
    ls_txn_reply(t, created ? 201 : 200, row_json(res, 0));
    ls_txn_commit(t);
}

void students_put(ls_req_t *r)
{
    json_object *body = ls_req_body_or_reply(r, put_fields, sizeof(put_fields) / sizeof(put_fields[0]));
    if (body == NULL || owner_or_reply(r) != 0)
        return;
    const char *timezone = ls_json_get_str(body, "timezone");
    if (timezone != NULL && !is_timezone_text(timezone))
        return ls_reply_problem(r, 400,
                                "field 'timezone': must be an IANA time zone name like Europe/Moscow");

    const char *changes = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
    const char *params[7] = {
        ls_req_param_str(r, "telegram_id"),
        ls_json_get_str(body, "goals"),
        timezone,
        ls_json_has(body, "goals") ? "true" : "false",
        ls_json_has(body, "timezone") ? "true" : "false",
        ls_req_actor_text(r),
        changes,
    };
    ls_txn_write(r, STMT_STUDENT_PUT, 7, params, on_student_put, NULL);
}

/* ---- PUT /students/{telegram_id}/languages/{code} ---- */

static const ls_json_field_t language_fields[] = {
    {"level", LS_JSON_ENUM, 1, 0, 0, 0, ls_cefr_levels},
};

static void on_language_put(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    if (PQntuples(res) == 0)
        return ls_txn_fail(t, 404, "student %lld not found: create the profile first",
                           (long long)ls_req_param_id(r, "telegram_id"));
    int created = ls_row_bool(res, 0, "created");
    ls_txn_reply(t, created ? 201 : 200, row_json(res, 0));
    ls_txn_commit(t);
}

void students_language_put(ls_req_t *r)
{
    const char *code = language_code_or_reply(r);
    if (code == NULL)
        return;
    json_object *body =
        ls_req_body_or_reply(r, language_fields, sizeof(language_fields) / sizeof(language_fields[0]));
    if (body == NULL || owner_or_reply(r) != 0)
        return;
    const char *params[4] = {ls_req_param_str(r, "telegram_id"), code, ls_json_get_str(body, "level"),
                             ls_req_actor_text(r)};
    ls_txn_write(r, STMT_LANGUAGE_PUT, 4, params, on_language_put, NULL);
}

/* ---- DELETE /students/{telegram_id}/languages/{code} ---- */

static void on_language_deleted(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    if (PQntuples(res) == 0)
        return ls_txn_fail(t, 404, "student %lld has no language '%s'",
                           (long long)ls_req_param_id(r, "telegram_id"), ls_req_param_str(r, "code"));
    ls_txn_commit(t);
}

void students_language_delete(ls_req_t *r)
{
    const char *code = language_code_or_reply(r);
    if (code == NULL || owner_or_reply(r) != 0)
        return;
    const char *params[3] = {ls_req_param_str(r, "telegram_id"), code, ls_req_actor_text(r)};
    ls_txn_write(r, STMT_LANGUAGE_DELETE, 3, params, on_language_deleted, NULL);
}
