/* teachers-service handlers: teacher profiles — read one, read many, search, create or update. */
#include "teachers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rows.h"
#include "txn.h"
#include "vocab.h"

json_object *teachers_row_json(const PGresult *res, int row)
{
    return ls_row_object_skip(res, row, "created");
}

static json_object *batch_row_json(ls_req_t *r, const PGresult *res, int row)
{
    return teachers_row_json(res, row);
}

/* ---- GET /teachers/{telegram_id} ---- */

static void on_teacher_get(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0)
        return ls_reply_problem(r, 404, "teacher %lld not found",
                                (long long)ls_req_param_id(r, "telegram_id"));
    ls_reply_json(r, 200, teachers_row_json(res, 0));
}

void teachers_get(ls_req_t *r)
{
    const char *params[1] = {ls_req_param_str(r, "telegram_id")};
    ls_req_pg(r, STMT_TEACHER_GET, 1, params, on_teacher_get);
}

/* ---- GET /teachers?ids=1,2,3 ---- */

void teachers_batch(ls_req_t *r)
{
    ls_req_batch(r, TEACHERS_BATCH_MAX, STMT_TEACHER_BATCH, "teachers", batch_row_json);
}

/* ---- GET /teachers/search?language=en&level=B2&limit=20&offset=0 ---- */

typedef struct {
    int limit, offset;
} page_t;

static void on_teacher_search(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    page_t *p = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    json_object *out = json_object_new_object();
    json_object *teachers = json_object_new_array_ext(PQntuples(res));
    for (int row = 0; row < PQntuples(res); row++)
        json_object_array_add(teachers, teachers_row_json(res, row));
    json_object_object_add(out, "teachers", teachers);
    json_object_object_add(out, "limit", json_object_new_int(p->limit));
    json_object_object_add(out, "offset", json_object_new_int(p->offset));
    ls_reply_json(r, 200, out);
}

void teachers_search(ls_req_t *r)
{
    const char *language = ls_req_query(r, "language");
    const char *level = ls_req_query(r, "level");
    const char *limit, *offset;

    if (language == NULL)
        return ls_reply_problem(r, 400, "query parameter 'language' is required (an ISO 639 code like 'en')");
    if (!ls_is_language_code(language))
        return ls_reply_problem(r, 400,
                                "query parameter 'language': must be 2 or 3 lowercase letters (ISO 639)");
    if (level != NULL && !ls_is_cefr_level(level))
        return ls_reply_problem(r, 400, "query parameter 'level': must be one of A1, A2, B1, B2, C1, C2");
    if (ls_req_page_or_reply(r, TEACHERS_PAGE_DEF, TEACHERS_PAGE_MAX, &limit, &offset) != 0)
        return;

    page_t *p = ls_req_alloc(r, sizeof(*p));
    p->limit = atoi(limit);
    p->offset = atoi(offset);
    r->state = p;
    const char *params[4] = {language, level, limit, offset};
    ls_req_pg(r, STMT_TEACHER_SEARCH, 4, params, on_teacher_search);
}

/* ---- PUT /teachers/{telegram_id} ---- */

/* bio's limit is in characters; the table bounds its bytes (4 per character at most) and
 * valid_bio() counts the characters. */
static const ls_json_field_t put_fields[] = {
    {"bio", LS_JSON_STRING, 0, 0, 0, TEACHERS_BIO_MAX * 4, NULL},
    {"experience_years", LS_JSON_INT, 0, 0, 0, TEACHERS_YEARS_MAX, NULL},
    {"timezone", LS_JSON_STRING, 0, 0, 1, TEACHERS_TZ_MAX, NULL},
    {"is_active", LS_JSON_BOOL, 0, 0, 0, 0, NULL},
};

static int valid_bio(const char *s)
{
    size_t chars = 0;
    /* UTF-8: every byte that is not a continuation byte (10xxxxxx) starts a character. PostgreSQL
     * rejects malformed UTF-8 itself. */
    for (; *s != '\0'; s++)
        chars += ((unsigned char)*s & 0xC0) != 0x80;
    return chars <= TEACHERS_BIO_MAX;
}

/* IANA names are letters, digits and "/_+-" ("Europe/Moscow", "America/Port-au-Prince",
 * "Etc/GMT+3"); PostgreSQL then decides whether it knows the zone. */
static int valid_timezone(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr("/_+-", *s) != NULL))
            return 0;
    return 1;
}

static void on_teacher_put(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    if (PQntuples(res) != 1)
        return ls_txn_fail(t, 500, "teacher was not written");
    int created = ls_row_bool(res, 0, "created");
    ls_txn_reply(t, created ? 201 : 200, teachers_row_json(res, 0));
    ls_txn_commit(t);
}

void teachers_put(ls_req_t *r)
{
    int64_t id = ls_req_param_id(r, "telegram_id");
    if (ls_req_actor_or_reply(r) != 0)
        return;
    if (!ls_req_actor_is_self_or_admin(r, id))
        return ls_reply_problem(r, 403, "only the teacher themself or an admin may change teacher %lld",
                                (long long)id);
    json_object *body = ls_req_body_or_reply(r, put_fields, sizeof(put_fields) / sizeof(put_fields[0]));
    if (body == NULL)
        return;

    const char *bio = ls_json_get_str(body, "bio");
    const char *timezone = ls_json_get_str(body, "timezone");
    if (bio != NULL && !valid_bio(bio))
        return ls_reply_problem(r, 400, "field 'bio': at most %d characters", TEACHERS_BIO_MAX);
    if (timezone != NULL && !valid_timezone(timezone))
        return ls_reply_problem(r, 400,
                                "field 'timezone': must be an IANA time zone name like 'Europe/Moscow'");

    char years[24];
    const char *years_text = NULL;
    if (ls_json_has(body, "experience_years")) {
        snprintf(years, sizeof(years), "%lld", (long long)ls_json_get_i64(body, "experience_years", 0));
        years_text = years;
    }
    json_object *active;
    const char *active_text = NULL;
    if (json_object_object_get_ex(body, "is_active", &active))
        active_text = json_object_get_boolean(active) ? "true" : "false";

    const char *params[7] = {
        ls_req_param_str(r, "telegram_id"),
        bio,
        years_text,
        timezone,
        active_text,
        ls_req_actor_text(r),
        json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN),
    };
    ls_txn_write(r, STMT_TEACHER_PUT, 7, params, on_teacher_put, ls_txn_unknown_timezone);
}
