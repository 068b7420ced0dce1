/* groups-service handlers: creating, reading, searching and changing groups; progress. */
#include "groups.h"

#include <stdio.h>
#include <string.h>

#include "rows.h"
#include "txn.h"
#include "vocab.h"

static const char *const status_values[] = {"active", "archived", NULL};

#define PRICE_MAX 9999999999LL /* NUMERIC(12, 2) */

/* The price as given (json-c keeps a parsed number's source text), in request memory. */
static const char *price_text(ls_req_t *r, json_object *body)
{
    json_object *v;
    if (!json_object_object_get_ex(body, "price", &v) || v == NULL)
        return NULL;
    const char *s = json_object_get_string(v);
    return ls_req_strdup(r, s, strlen(s));
}

static void reply_rows(ls_req_t *r, const PGresult *res, const char *limit, const char *offset)
{
    json_object *groups = json_object_new_array_ext(PQntuples(res));
    for (int i = 0; i < PQntuples(res); i++)
        json_object_array_add(groups, group_json(res, i));
    json_object *out = json_object_new_object();
    json_object_object_add(out, "groups", groups);
    if (limit != NULL) {
        int64_t l = 0, o = 0;
        ls_parse_i64(limit, strlen(limit), &l);
        ls_parse_i64(offset, strlen(offset), &o);
        json_object_object_add(out, "limit", json_object_new_int64(l));
        json_object_object_add(out, "offset", json_object_new_int64(o));
    }
    ls_reply_json(r, 200, out);
}

/* ---- POST /groups ---- */

static const ls_json_field_t create_fields[] = {
    {"title", LS_JSON_STRING, 1, 0, 1, 200, NULL},
    {"description", LS_JSON_STRING, 0, 0, 0, 4000, NULL},
    {"language_code", LS_JSON_STRING, 1, 0, 2, 3, NULL},
    {"level", LS_JSON_ENUM, 1, 0, 0, 0, ls_cefr_levels},
    {"capacity", LS_JSON_INT, 1, 0, 1, 500, NULL},
    {"is_free", LS_JSON_BOOL, 0, 0, 0, 0, NULL},
    {"price", LS_JSON_NUMBER, 0, 1, 0, PRICE_MAX, NULL},
    {"teacher_telegram_id", LS_JSON_ID, 0, 0, 0, 0, NULL},
};

/* Checks is_free and price together: a free group has no price, a paid one a positive price. */
static int price_or_reply(ls_req_t *r, int is_free, const char *price)
{
    if (is_free && price != NULL) {
        ls_reply_problem(r, 400, "field 'price': must be null or absent for a free group (is_free true)");
        return -1;
    }
    if (!is_free && (price == NULL || strspn(price, "0.") == strlen(price))) {
        ls_reply_problem(r, 400, "field 'price': a positive price is required when is_free is false");
        return -1;
    }
    return 0;
}

static void on_created(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    ls_txn_reply(t, 201, group_json(res, 0));
    ls_txn_commit(t);
}

void groups_create(ls_req_t *r)
{
    json_object *body =
        ls_req_body_or_reply(r, create_fields, sizeof(create_fields) / sizeof(create_fields[0]));
    if (body == NULL || ls_req_actor_or_reply(r) != 0)
        return;
    const char *language = ls_json_get_str(body, "language_code");
    if (!ls_is_language_code(language))
        return ls_reply_problem(r, 400, "field 'language_code': must be 2 or 3 lowercase letters (ISO 639)");
    int64_t teacher = ls_json_get_i64(body, "teacher_telegram_id", r->actor);
    if (teacher != r->actor && r->role != LS_ROLE_ADMIN)
        return ls_reply_problem(r, 403, "only an admin may create a group for another teacher");
    json_object *v;
    int is_free = !json_object_object_get_ex(body, "is_free", &v) || json_object_get_boolean(v);
    const char *price = price_text(r, body);
    if (price_or_reply(r, is_free, price) != 0)
        return;

    char teacher_text[24], capacity[24];
    snprintf(teacher_text, sizeof(teacher_text), "%lld", (long long)teacher);
    snprintf(capacity, sizeof(capacity), "%lld", (long long)ls_json_get_i64(body, "capacity", 0));
    const char *params[10] = {
        teacher_text,
        ls_json_get_str(body, "title"),
        ls_json_get_str(body, "description"),
        language,
        ls_json_get_str(body, "level"),
        capacity,
        is_free ? "true" : "false",
        price,
        ls_req_actor_text(r),
        body_text(r),
    };
    ls_txn_write(r, STMT_GROUP_CREATE, 10, params, on_created, NULL);
}

/* ---- GET /groups/{group_id} ---- */

static void on_group_get(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0)
        return ls_reply_problem(r, 404, "group %s not found", ls_req_param_str(r, "group_id"));
    ls_reply_json(r, 200, group_json(res, 0));
}

void groups_get(ls_req_t *r)
{
    const char *member = ls_req_query(r, "member_id");
    int64_t id;
    if (member == NULL) {
        const char *params[1] = {ls_req_param_str(r, "group_id")};
        return ls_req_pg(r, STMT_GROUP_GET, 1, params, on_group_get);
    }
    if (ls_parse_id(member, strlen(member), &id) != 0)
        return ls_reply_problem(r, 400, "query 'member_id': must be a telegram id");
    const char *params[2] = {ls_req_param_str(r, "group_id"), member};
    ls_req_pg(r, STMT_GROUP_GET_MEMBER, 2, params, on_group_get);
}

/* ---- GET /groups?ids= | ?teacher_id= | ?member_id= | ?person_id= ---- */

typedef struct {
    const char *ids[GROUPS_BATCH_MAX];
    size_t n;
    const char *limit, *offset;
} list_t;

/* Parses "u1,u2,…" (1..GROUPS_BATCH_MAX UUIDs) into l->ids and a "{u1,u2}" array literal. */
static const char *uuid_list_or_reply(ls_req_t *r, const char *text, list_t *l)
{
    size_t len = strlen(text);
    char *array = ls_req_alloc(r, len + 3);
    size_t off = 0;
    const char *p = text;
    array[off++] = '{';
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (!ls_is_uuid(p, n)) {
            ls_reply_problem(r, 400, "query 'ids': every element must be a UUID");
            return NULL;
        }
        if (l->n == GROUPS_BATCH_MAX) {
            ls_reply_problem(r, 400, "query 'ids': at most %d UUIDs", GROUPS_BATCH_MAX);
            return NULL;
        }
        l->ids[l->n++] = ls_req_strdup(r, p, n);
        if (off > 1)
            array[off++] = ',';
        memcpy(array + off, p, n);
        off += n;
        if (end == NULL)
            break;
        p = end + 1;
    }
    array[off++] = '}';
    array[off] = '\0';
    return array;
}

static void on_group_batch(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    list_t *l = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    json_object *groups = json_object_new_array_ext(PQntuples(res));
    json_object *missing = json_object_new_array();
    int row = 0, rows = PQntuples(res), idcol = PQfnumber(res, "id");
    /* Rows come back in the order asked; the database spells UUIDs in lowercase. */
    for (size_t i = 0; i < l->n; i++) {
        if (row < rows && strcasecmp(PQgetvalue(res, row, idcol), l->ids[i]) == 0)
            json_object_array_add(groups, group_json(res, row++));
        else
            json_object_array_add(missing, json_object_new_string(l->ids[i]));
    }
    json_object *out = json_object_new_object();
    json_object_object_add(out, "groups", groups);
    json_object_object_add(out, "missing", missing);
    ls_reply_json(r, 200, out);
}

static void on_group_list(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    list_t *l = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    reply_rows(r, res, l->limit, l->offset);
}

void groups_list(ls_req_t *r)
{
    const char *ids = ls_req_query(r, "ids");
    const char *teacher = ls_req_query(r, "teacher_id");
    const char *member = ls_req_query(r, "member_id");
    const char *person = ls_req_query(r, "person_id");
    if ((ids != NULL) + (teacher != NULL) + (member != NULL) + (person != NULL) != 1)
        return ls_reply_problem(
            r, 400, "give exactly one of the query parameters ids, teacher_id, member_id, person_id");

    list_t *l = ls_req_alloc(r, sizeof(*l));
    memset(l, 0, sizeof(*l));
    r->state = l;
    if (ids != NULL) {
        const char *array = uuid_list_or_reply(r, ids, l);
        if (array == NULL)
            return;
        const char *params[1] = {array};
        return ls_req_pg(r, STMT_GROUP_BATCH, 1, params, on_group_batch);
    }
    const char *by = teacher != NULL ? "teacher_id" : member != NULL ? "member_id" : "person_id";
    const char *id_text = teacher != NULL ? teacher : member != NULL ? member : person;
    int64_t id;
    if (ls_parse_id(id_text, strlen(id_text), &id) != 0)
        return ls_reply_problem(r, 400, "query '%s': must be a telegram id", by);
    if (ls_req_page_or_reply(r, GROUPS_PAGE_DEFAULT, person != NULL ? GROUPS_PERSON_MAX : GROUPS_PAGE_MAX,
                             &l->limit, &l->offset) != 0)
        return;
    const char *params[3] = {id_text, l->limit, l->offset};
    size_t stmt = teacher != NULL  ? STMT_GROUP_BY_TEACHER
                  : member != NULL ? STMT_GROUP_BY_MEMBER
                                   : STMT_GROUP_BY_PERSON;
    ls_req_pg(r, stmt, 3, params, on_group_list);
}

/* ---- GET /groups/search ---- */

/* "%q%" with LIKE's wildcards and escape character in q taken literally. */
static const char *ilike_pattern(ls_req_t *r, const char *q)
{
    size_t len = strlen(q), off = 0;
    char *out = ls_req_alloc(r, 2 * len + 3);
    out[off++] = '%';
    for (size_t i = 0; i < len; i++) {
        if (q[i] == '%' || q[i] == '_' || q[i] == '\\')
            out[off++] = '\\';
        out[off++] = q[i];
    }
    out[off++] = '%';
    out[off] = '\0';
    return out;
}

void groups_search(ls_req_t *r)
{
    const char *q = ls_req_query(r, "q");
    const char *language = ls_req_query(r, "language");
    const char *level = ls_req_query(r, "level");
    if (q != NULL && strlen(q) > GROUPS_Q_MAX)
        return ls_reply_problem(r, 400, "query 'q': at most %d bytes", GROUPS_Q_MAX);
    if (q != NULL && q[0] == '\0')
        q = NULL;
    if (language != NULL && !ls_is_language_code(language))
        return ls_reply_problem(r, 400, "query 'language': must be 2 or 3 lowercase letters (ISO 639)");
    if (level != NULL && !ls_is_cefr_level(level))
        return ls_reply_problem(r, 400, "query 'level': must be one of A1, A2, B1, B2, C1, C2");

    list_t *l = ls_req_alloc(r, sizeof(*l));
    memset(l, 0, sizeof(*l));
    r->state = l;
    if (ls_req_page_or_reply(r, GROUPS_PAGE_DEFAULT, GROUPS_PAGE_MAX, &l->limit, &l->offset) != 0)
        return;
    if (q != NULL) {
        const char *params[5] = {ilike_pattern(r, q), language, level, l->limit, l->offset};
        return ls_req_pg(r, STMT_GROUP_SEARCH_Q, 5, params, on_group_list);
    }
    const char *params[4] = {language, level, l->limit, l->offset};
    ls_req_pg(r, STMT_GROUP_SEARCH, 4, params, on_group_list);
}

/* ---- PATCH /groups/{group_id}: lock, check teacher, capacity and price, update + audit ---- */

static const ls_json_field_t patch_fields[] = {
    {"title", LS_JSON_STRING, 0, 0, 1, 200, NULL},       {"description", LS_JSON_STRING, 0, 0, 0, 4000, NULL},
    {"capacity", LS_JSON_INT, 0, 0, 1, 500, NULL},       {"is_free", LS_JSON_BOOL, 0, 0, 0, 0, NULL},
    {"price", LS_JSON_NUMBER, 0, 1, 0, PRICE_MAX, NULL}, {"status", LS_JSON_ENUM, 0, 0, 0, 0, status_values},
};

static void on_patched(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    ls_txn_reply(t, 200, group_json(res, 0));
    ls_txn_commit(t);
}

static void patch_locked(ls_req_t *r, ls_txn_t *t, locked_group_t *g)
{
    json_object *body = r->body, *v;
    int64_t capacity = ls_json_get_i64(body, "capacity", 0);
    if (capacity > 0 && capacity < g->member_count)
        return ls_txn_fail(t, 409, "capacity %lld is below the group's %lld members", (long long)capacity,
                           (long long)g->member_count);

    /* The final is_free and price, checked together (a price only where the group is paid). */
    int is_free = json_object_object_get_ex(body, "is_free", &v) ? json_object_get_boolean(v) : g->is_free;
    const char *price;
    if (ls_json_has(body, "price"))
        price = price_text(r, body);
    else
        price = is_free || g->price[0] == '\0' ? NULL : g->price;
    if (is_free && price != NULL)
        return ls_txn_fail(t, 400, "field 'price': must be null for a free group (is_free true)");
    if (!is_free && (price == NULL || strspn(price, "0.") == strlen(price)))
        return ls_txn_fail(t, 400, "field 'price': a positive price is required when is_free is false");

    char capacity_text[24];
    snprintf(capacity_text, sizeof(capacity_text), "%lld", (long long)capacity);
    const char *params[9] = {
        g->group_id,
        ls_json_get_str(body, "title"),
        ls_json_get_str(body, "description"),
        capacity > 0 ? capacity_text : NULL,
        is_free ? "true" : "false",
        price,
        ls_json_get_str(body, "status"),
        ls_req_actor_text(r),
        body_text(r),
    };
    ls_txn_exec(t, STMT_GROUP_PATCH, 9, params, on_patched);
}

void groups_patch(ls_req_t *r)
{
    json_object *body = ls_req_body_or_reply(r, patch_fields, sizeof(patch_fields) / sizeof(patch_fields[0]));
    if (body == NULL || ls_req_actor_or_reply(r) != 0)
        return;
    if (json_object_object_length(body) == 0)
        return ls_reply_problem(r, 400, "nothing to change: give at least one field");
    group_lock(r, STMT_GROUP_LOCK, ls_req_param_str(r, "group_id"), 1, patch_locked);
}

/* ---- PUT /groups/{group_id}/progress ---- */

static const ls_json_field_t progress_fields[] = {
    {"lessons_done", LS_JSON_INT, 1, 0, 0, 100000, NULL},
    {"current_topic", LS_JSON_STRING, 0, 1, 0, 500, NULL},
};

static void on_progress(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    ls_txn_reply(t, 200, ls_row_object(res, 0));
    ls_txn_commit(t);
}

static void progress_locked(ls_req_t *r, ls_txn_t *t, locked_group_t *g)
{
    char lessons[24];
    snprintf(lessons, sizeof(lessons), "%lld", (long long)ls_json_get_i64(r->body, "lessons_done", 0));
    const char *params[6] = {
        g->group_id,
        lessons,
        ls_json_get_str(r->body, "current_topic"),
        ls_json_has(r->body, "current_topic") ? "true" : "false",
        ls_req_actor_text(r),
        body_text(r),
    };
    ls_txn_exec(t, STMT_PROGRESS_PUT, 6, params, on_progress);
}

void groups_progress_put(ls_req_t *r)
{
    json_object *body =
        ls_req_body_or_reply(r, progress_fields, sizeof(progress_fields) / sizeof(progress_fields[0]));
    if (body == NULL || ls_req_actor_or_reply(r) != 0)
        return;
    group_lock(r, STMT_GROUP_LOCK, ls_req_param_str(r, "group_id"), 1, progress_locked);
}
