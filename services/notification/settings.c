/* notification-service handlers: a person's notification settings. */
#include "notification.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "rows.h"
#include "txn.h"

#define DISABLED_TYPES_MAX 16 /* more than the number of types: repeats are allowed and merged */
#define TYPES_ARRAY_MAX    (DISABLED_TYPES_MAX * 20 + 3)

static void on_settings(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    ls_reply_json(r, 200, ls_row_object(res, 0));
}

/* ---- GET /users/{telegram_id}/notification_settings ---- */

void settings_get(ls_req_t *r)
{
    if (notification_actor_or_reply(r) != 0)
        return;
    const char *params[1] = {ls_req_param_str(r, "telegram_id")};
    ls_req_pg(r, STMT_SETTINGS_GET, 1, params, on_settings);
}

/* ---- PUT /users/{telegram_id}/notification_settings ---- */

static void on_settings_put(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    ls_txn_reply(t, 200, ls_row_object(res, 0));
    ls_txn_commit(t);
}

static const ls_json_field_t put_fields[] = {
    {"telegram_id", LS_JSON_ID, 0, 0, 0, 0, NULL},
    {"disabled_types", LS_JSON_ARRAY, 0, 0, 0, DISABLED_TYPES_MAX, NULL},
    {"quiet_hours", LS_JSON_OBJECT, 0, 1, 0, 0, NULL},
    {"timezone", LS_JSON_STRING, 0, 0, 1, NOTIFY_TZ_MAX, NULL},
    {"language_code", LS_JSON_STRING, 0, 1, 2, 3, NULL},
    /* null: no lesson reminders */
    {"lesson_reminder_minutes", LS_JSON_INT, 0, 1, NOTIFY_REMINDER_MIN, NOTIFY_REMINDER_MAX_MIN, NULL},
    /* answered by GET; accepted so that a client can PUT back what it read */
    {"updated_at", LS_JSON_TIME, 0, 1, 0, 0, NULL},
};

static int is_type(const char *s)
{
    for (const char *const *t = notification_types; *t != NULL; t++)
        if (strcmp(*t, s) == 0)
            return 1;
    return 0;
}

/* "HH:MM", 00:00 .. 23:59 */
static int is_clock_time(const char *s)
{
    return s != NULL && strlen(s) == 5 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
           s[2] == ':' && isdigit((unsigned char)s[3]) && isdigit((unsigned char)s[4]) &&
           (s[0] - '0') * 10 + (s[1] - '0') < 24 && s[3] < '6';
}

/* disabled_types as a PostgreSQL array literal "{a,b}" in request memory; NULL when absent. */
static int types_or_reply(ls_req_t *r, json_object *body, const char **out)
{
    json_object *arr;
    *out = NULL;
    if (!json_object_object_get_ex(body, "disabled_types", &arr) || arr == NULL)
        return 0;
    char *lit = ls_req_alloc(r, TYPES_ARRAY_MAX);
    size_t off = 0, n = json_object_array_length(arr);
    lit[off++] = '{';
    for (size_t i = 0; i < n; i++) {
        json_object *el = json_object_array_get_idx(arr, i);
        const char *name = json_object_is_type(el, json_type_string) ? json_object_get_string(el) : NULL;
        if (name == NULL || !is_type(name)) {
            ls_reply_problem(r, 400,
                             "field 'disabled_types': element %zu must be a notification type (%s, ...)", i,
                             notification_types[0]);
            return -1;
        }
        /* Known type names are short lower-case words: no quoting needed in the literal. */
        off += (size_t)snprintf(lit + off, TYPES_ARRAY_MAX - off, "%s%s", i > 0 ? "," : "", name);
    }
    lit[off++] = '}';
    lit[off] = '\0';
    *out = lit;
    return 0;
}

/* quiet_hours: null, or {"from": "HH:MM", "to": "HH:MM"} with from != to. */
static int quiet_or_reply(ls_req_t *r, json_object *body, const char **from, const char **to)
{
    json_object *q;
    *from = *to = NULL;
    if (!json_object_object_get_ex(body, "quiet_hours", &q) || q == NULL)
        return 0;
    int keys_ok = json_object_object_length(q) == 2;
    *from = ls_json_get_str(q, "from");
    *to = ls_json_get_str(q, "to");
    json_object *v;
    if (!keys_ok || !json_object_object_get_ex(q, "from", &v) || !json_object_is_type(v, json_type_string) ||
        !json_object_object_get_ex(q, "to", &v) || !json_object_is_type(v, json_type_string) ||
        !is_clock_time(*from) || !is_clock_time(*to)) {
        ls_reply_problem(r, 400,
                         "field 'quiet_hours': must be null or {\"from\": \"HH:MM\", \"to\": \"HH:MM\"}");
        return -1;
    }
    if (strcmp(*from, *to) == 0) {
        ls_reply_problem(r, 400, "field 'quiet_hours': from and to must differ");
        return -1;
    }
    return 0;
}

/* An IANA name such as "Europe/Moscow": its characters here, its existence by PostgreSQL. */
static int timezone_or_reply(ls_req_t *r, const char *tz)
{
    int ok = tz == NULL || tz[0] != '\0';
    for (const char *p = tz; ok && p != NULL && *p != '\0'; p++)
        ok = isalnum((unsigned char)*p) || strchr("/_+-", *p) != NULL;
    if (!ok)
        ls_reply_problem(r, 400,
                         "field 'timezone': must be an IANA time zone name such as \"Europe/Moscow\"");
    return ok ? 0 : -1;
}

static int language_ok_or_reply(ls_req_t *r, const char *lang)
{
    int ok = 1;
    for (const char *p = lang; ok && p != NULL && *p != '\0'; p++)
        ok = *p >= 'a' && *p <= 'z';
    if (!ok)
        ls_reply_problem(r, 400,
                         "field 'language_code': must be 2 or 3 lower-case letters (ISO 639) or null");
    return ok ? 0 : -1;
}

void settings_put(ls_req_t *r)
{
    json_object *body = ls_req_body_or_reply(r, put_fields, sizeof(put_fields) / sizeof(put_fields[0]));
    if (body == NULL || notification_actor_or_reply(r) != 0)
        return;
    int64_t id = ls_req_param_id(r, "telegram_id");
    if (ls_json_has(body, "telegram_id") && ls_json_get_i64(body, "telegram_id", 0) != id)
        return ls_reply_problem(r, 400, "field 'telegram_id': must be %lld, the person of the path",
                                (long long)id);

    const char *types, *from, *to;
    const char *tz = ls_json_get_str(body, "timezone");
    const char *lang = ls_json_get_str(body, "language_code");
    if (types_or_reply(r, body, &types) != 0 || quiet_or_reply(r, body, &from, &to) != 0 ||
        timezone_or_reply(r, tz) != 0 || language_ok_or_reply(r, lang) != 0)
        return;

    /* The audit row records what the request asked to change. */
    json_object *changes = json_object_new_object();
    json_object_object_foreach(body, key, val)
    {
        if (strcmp(key, "telegram_id") != 0 && strcmp(key, "updated_at") != 0)
            json_object_object_add(changes, key, json_object_get(val));
    }
    const char *changes_json = json_object_to_json_string_ext(changes, JSON_C_TO_STRING_PLAIN);
    const char *changes_text = ls_req_strdup(r, changes_json, strlen(changes_json));
    json_object_put(changes);

    /* Validated by put_fields: absent, null (0 here: no reminders) or 5..1440. */
    char minutes_text[24];
    const char *minutes = NULL;
    int64_t m = ls_json_get_i64(body, "lesson_reminder_minutes", 0);
    if (m > 0) {
        snprintf(minutes_text, sizeof(minutes_text), "%lld", (long long)m);
        minutes = minutes_text;
    }
    const char *params[12] = {
        ls_req_param_str(r, "telegram_id"),
        types,
        ls_json_has(body, "quiet_hours") ? "true" : "false",
        from,
        to,
        tz,
        ls_json_has(body, "language_code") ? "true" : "false",
        lang,
        ls_req_actor_text(r),
        changes_text,
        ls_json_has(body, "lesson_reminder_minutes") ? "true" : "false",
        minutes,
    };
    ls_txn_write(r, STMT_SETTINGS_PUT, 12, params, on_settings_put,
                 ls_txn_unknown_timezone); /* the statement checks the zone by using it */
}
