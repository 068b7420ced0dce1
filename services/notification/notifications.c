/* notification-service handlers: creating, listing and marking notifications. */
#include "notification.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rows.h"
#include "txn.h"

const char *const notification_types[] = {
    "registration",     "enrollment",       "payment",
    "lesson_scheduled", "lesson_cancelled", "lesson_rescheduled",
    "lesson_reminder",  "group_joined",     NULL,
};

int notification_actor_or_reply(ls_req_t *r)
{
    if (ls_req_actor_or_reply(r) != 0)
        return -1;
    if (!ls_req_actor_is_self_or_admin(r, ls_req_param_id(r, "telegram_id"))) {
        ls_reply_problem(r, 403,
                         "only the person themself or an admin may see or change their notifications");
        return -1;
    }
    return 0;
}

/* A notification from row `row`, starting at column `first` (earlier columns are the statement's
 * own flags and counts). */
/* The notification's columns of a row: from column `first` (its "id", looked up once) to the end. */
static json_object *notification_json(const PGresult *res, int row, int first)
{
    json_object *obj = json_object_new_object();
    int ncols = PQnfields(res);
    for (int col = first; col < ncols; col++)
        ls_row_add_column(obj, res, row, col);
    return obj;
}

/* ---- POST /notifications ---- */

static const ls_json_field_t create_fields[] = {
    {"recipient_telegram_id", LS_JSON_ID, 1, 0, 0, 0, NULL},
    {"type", LS_JSON_ENUM, 1, 0, 0, 0, notification_types},
    {"params", LS_JSON_OBJECT, 0, 1, 0, 0, NULL},
    {"language_code", LS_JSON_STRING, 0, 1, 2, NOTIFY_LANG_TAG_MAX, NULL},
};

/* params: at most NOTIFY_PARAMS_MAX keys of [A-Za-z0-9_], each a string or a number. */
static int params_ok_or_reply(ls_req_t *r, json_object *params)
{
    if (params == NULL)
        return 0;
    if (json_object_object_length(params) > NOTIFY_PARAMS_MAX) {
        ls_reply_problem(r, 400, "field 'params': at most %d keys", NOTIFY_PARAMS_MAX);
        return -1;
    }
    json_object_object_foreach(params, key, val)
    {
        size_t klen = strlen(key);
        int key_ok = klen >= 1 && klen <= NOTIFY_PARAM_KEY_MAX;
        for (size_t i = 0; key_ok && i < klen; i++)
            key_ok = isalnum((unsigned char)key[i]) || key[i] == '_';
        if (!key_ok) {
            ls_reply_problem(r, 400, "field 'params': key '%.64s' must be 1..%d of A-Z, a-z, 0-9 and _", key,
                             NOTIFY_PARAM_KEY_MAX);
            return -1;
        }
        json_type type = json_object_get_type(val);
        if (type == json_type_string) {
            if (json_object_get_string_len(val) > NOTIFY_PARAM_VAL_MAX) {
                ls_reply_problem(r, 400, "field 'params.%s': at most %d bytes", key, NOTIFY_PARAM_VAL_MAX);
                return -1;
            }
        } else if (type != json_type_int && type != json_type_double) {
            ls_reply_problem(r, 400, "field 'params.%s': must be a string or a number", key);
            return -1;
        }
    }
    return 0;
}

/*
 * The template language asked for: the primary subtag of an IETF tag ("pt-BR" -> "pt"), lower-cased,
 * in request memory. Telegram reports such tags; a language without templates falls back to English
 * in SQL. Answers 400 for anything that is not a tag.
 */
static int language_or_reply(ls_req_t *r, const char *tag, const char **out)
{
    *out = NULL;
    if (tag == NULL)
        return 0;
    size_t len = strlen(tag), primary = 0;
    while (primary < len && isalpha((unsigned char)tag[primary]))
        primary++;
    int ok = primary >= 2 && primary <= 3;
    for (size_t i = primary; ok && i < len; i++)
        ok = isalnum((unsigned char)tag[i]) || (tag[i] == '-' && i + 1 < len && tag[i + 1] != '-');
    if (ok && primary < len && tag[primary] != '-')
        ok = 0;
    if (!ok) {
        ls_reply_problem(r, 400, "field 'language_code': must be a language tag such as \"en\" or \"pt-br\"");
        return -1;
    }
    char *lang = ls_req_strdup(r, tag, primary);
    for (size_t i = 0; i < primary; i++)
        lang[i] = (char)tolower((unsigned char)lang[i]);
    *out = lang;
    return 0;
}

/* The Idempotency-Key header (1..NOTIFY_IDEM_KEY_MAX visible ASCII characters), or NULL when absent. */
static int idempotency_key_or_reply(ls_req_t *r, const char **out)
{
    *out = NULL;
    const char *key = ls_req_header(r, "idempotency-key");
    if (key == NULL)
        return 0;
    size_t len = strlen(key);
    int ok = len >= 1 && len <= NOTIFY_IDEM_KEY_MAX;
    for (size_t k = 0; ok && k < len; k++)
        ok = key[k] > 0x20 && key[k] < 0x7f;
    if (!ok) {
        ls_reply_problem(r, 400, "header Idempotency-Key: must be 1..%d visible ASCII characters",
                         NOTIFY_IDEM_KEY_MAX);
        return -1;
    }
    *out = key;
    return 0;
}

static void on_created(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    json_object *out = json_object_new_object();
    if (ls_row_bool(res, 0, "disabled")) {
        json_object_object_add(out, "notification", NULL);
        json_object_object_add(out, "skipped", json_object_new_string("disabled by the recipient"));
        return ls_reply_json(r, 200, out);
    }
    if (ls_row_is_null(res, 0, "created")) {
        json_object_put(out);
        ls_logf(LS_LOG_ERROR, &r->log, "no template for type %s", ls_json_get_str(r->body, "type"));
        return ls_reply_problem(r, 500, "no template for this notification type");
    }
    int created = ls_row_bool(res, 0, "created");
    json_object_object_add(out, "notification", notification_json(res, 0, PQfnumber(res, "id")));
    ls_reply_json(r, created ? 201 : 200, out);
    if (created)
        delivery_kick(r->worker);
}

void notifications_create(ls_req_t *r)
{
    json_object *body =
        ls_req_body_or_reply(r, create_fields, sizeof(create_fields) / sizeof(create_fields[0]));
    if (body == NULL)
        return;
    json_object *params = NULL;
    json_object_object_get_ex(body, "params", &params);
    const char *lang, *key;
    if (params_ok_or_reply(r, params) != 0 ||
        language_or_reply(r, ls_json_get_str(body, "language_code"), &lang) != 0 ||
        idempotency_key_or_reply(r, &key) != 0)
        return;
    const char *params_json =
        params != NULL ? json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN) : "{}";
    char recipient[24];
    snprintf(recipient, sizeof(recipient), "%lld",
             (long long)ls_json_get_i64(body, "recipient_telegram_id", 0));
    const char *type = ls_json_get_str(body, "type"), *actor = ls_req_actor_text(r);
    const char *sql_params[7] = {recipient, type, params_json, lang, key, actor, r->trace.trace_id};
    /* Not through txn.h's Idempotency-Key (idempotency.h): this route keeps its own, older rule — the
     * key names the notification whoever sends it (the outbox and the BFF send
     * "lesson:…:<recipient>", "registration:<id>"), and a repeat answers 200 with the stored row —
     * decided by STMT_CREATE in one statement. */
    ls_req_pg(r, STMT_CREATE, 7, sql_params, on_created);
}

/* ---- GET /users/{telegram_id}/notifications ---- */

static void on_list(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    const char *const *page = r->state;
    int rows = PQntuples(res), idcol = PQfnumber(res, "id");
    json_object *list = json_object_new_array_ext(rows);
    for (int i = 0; i < rows; i++)
        if (!PQgetisnull(res, i, idcol))
            json_object_array_add(list, notification_json(res, i, idcol));
    json_object *out = json_object_new_object();
    json_object_object_add(out, "notifications", list);
    json_object_object_add(out, "unread", json_object_new_int64(ls_row_id(res, 0, "unread")));
    json_object_object_add(out, "limit", json_object_new_int(atoi(page[0])));
    json_object_object_add(out, "offset", json_object_new_int(atoi(page[1])));
    ls_reply_json(r, 200, out);
}

void notifications_list(ls_req_t *r)
{
    if (notification_actor_or_reply(r) != 0)
        return;
    const char *order = ls_req_query(r, "order");
    size_t stmt;
    if (order == NULL || strcmp(order, "unread_first") == 0)
        stmt = STMT_LIST_UNREAD_FIRST;
    else if (strcmp(order, "time") == 0)
        stmt = STMT_LIST_TIME;
    else
        return ls_reply_problem(r, 400, "query 'order': must be one of unread_first, time");
    const char **page = ls_req_alloc(r, 2 * sizeof(*page));
    if (ls_req_page_or_reply(r, NOTIFY_PAGE_DEF, NOTIFY_PAGE_MAX, &page[0], &page[1]) != 0)
        return;
    r->state = page;
    const char *params[3] = {ls_req_param_str(r, "telegram_id"), page[0], page[1]};
    ls_req_pg(r, stmt, 3, params, on_list);
}

/* ---- GET /users/{telegram_id}/notifications/unread_count ---- */

static void on_unread_count(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    json_object *out = json_object_new_object();
    json_object_object_add(out, "unread", json_object_new_int64(ls_row_id(res, 0, "unread")));
    ls_reply_json(r, 200, out);
}

void notifications_unread_count(ls_req_t *r)
{
    if (notification_actor_or_reply(r) != 0)
        return;
    const char *params[1] = {ls_req_param_str(r, "telegram_id")};
    ls_req_pg(r, STMT_UNREAD_COUNT, 1, params, on_unread_count);
}

/* ---- POST /users/{telegram_id}/notifications/{id}/read ---- */

static void on_read(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    if (PQntuples(res) == 0)
        return ls_txn_fail(t, 404, "notification %s of %lld not found", ls_req_param_str(r, "id"),
                           (long long)ls_req_param_id(r, "telegram_id"));
    ls_txn_reply(t, 200, notification_json(res, 0, PQfnumber(res, "id")));
    ls_txn_commit(t);
}

void notifications_read(ls_req_t *r)
{
    if (notification_actor_or_reply(r) != 0)
        return;
    const char *params[3] = {ls_req_param_str(r, "telegram_id"), ls_req_param_str(r, "id"),
                             ls_req_actor_text(r)};
    ls_txn_write(r, STMT_MARK_READ, 3, params, on_read, NULL);
}

/* ---- POST /users/{telegram_id}/notifications/read_all ---- */

static void on_read_all(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    json_object *out = json_object_new_object();
    json_object_object_add(out, "marked", json_object_new_int64(ls_row_id(res, 0, "marked")));
    ls_txn_reply(t, 200, out);
    ls_txn_commit(t);
}

void notifications_read_all(ls_req_t *r)
{
    if (notification_actor_or_reply(r) != 0)
        return;
    const char *params[2] = {ls_req_param_str(r, "telegram_id"), ls_req_actor_text(r)};
    ls_txn_write(r, STMT_MARK_ALL_READ, 2, params, on_read_all, NULL);
}
