/*
 * calendar-service handlers: when a teacher can teach — the weekly schedule and unavailable periods.
 *
 * Writes that narrow a teacher's availability run under the teacher's advisory lock (calendar.h),
 * the same lock lesson creation and rescheduling check availability under.
 */
#include "calendar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rows.h"
#include "txn.h"

/* Writes on a teacher's calendar need an actor who is that teacher or an admin: 0, or answers, -1. */
static int owner_or_reply(ls_req_t *r)
{
    int64_t id = ls_req_param_id(r, "telegram_id");
    if (ls_req_actor_or_reply(r) != 0)
        return -1;
    if (!ls_req_actor_is_self_or_admin(r, id)) {
        ls_reply_problem(r, 403,
                         "only the teacher themself or an admin may change the availability of teacher %lld",
                         (long long)id);
        return -1;
    }
    return 0;
}

/* ---- a transaction under the teacher's lock: lock; write; [read]; commit; answer ---- */

typedef struct {
    size_t write_stmt, read_stmt; /* read_stmt STMT_COUNT: answer the write's row */
    int nparams;
    const char *params[5];
    int status; /* answered on success */
} teacher_write_t;

/* 22023: AT TIME ZONE met a zone PostgreSQL does not know. 23514: a CHECK — the only one a validated
 * request can break is ends_at > starts_at. */
static int on_write_error(ls_req_t *r, ls_txn_t *t, const char *sqlstate)
{
    teacher_write_t *w = t->ctx;
    if (strcmp(sqlstate, "22023") == 0)
        ls_reply_problem(r, 400, "field 'timezone': unknown time zone '%s'", w->params[1]);
    else if (strcmp(sqlstate, "23514") == 0)
        ls_reply_problem(r, 400, "field 'ends_at': must be after 'starts_at'");
    else
        return -1;
    return 0;
}

static void on_write_read(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    teacher_write_t *w = t->ctx;
    ls_txn_reply(t, w->status, ls_row_object(res, 0));
    ls_txn_commit(t);
}

static void on_written(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    teacher_write_t *w = t->ctx;
    if (w->read_stmt != STMT_COUNT)
        return ls_txn_exec(t, w->read_stmt, 1, w->params, on_write_read);
    if (PQntuples(res) != 1)
        return ls_txn_fail(t, 500, "nothing was written");
    on_write_read(r, t, res);
}

static void on_teacher_locked(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    teacher_write_t *w = t->ctx;
    ls_txn_exec(t, w->write_stmt, w->nparams, w->params, on_written);
}

static void lock_teacher(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    teacher_write_t *w = t->ctx;
    ls_txn_exec(t, STMT_TEACHER_LOCK, 1, w->params, on_teacher_locked);
}

/* params[0] must be the teacher's id: the lock and the read take it. */
static teacher_write_t *teacher_write_new(ls_req_t *r, size_t write_stmt, size_t read_stmt, int status)
{
    teacher_write_t *w = ls_req_alloc(r, sizeof(*w));
    memset(w, 0, sizeof(*w));
    w->write_stmt = write_stmt;
    w->read_stmt = read_stmt;
    w->status = status;
    w->params[0] = ls_req_param_str(r, "telegram_id");
    r->state = w;
    return w;
}

static void teacher_write_begin(ls_req_t *r)
{
    ls_txn_t *t = ls_txn_new(r);
    t->on_error = on_write_error;
    ls_txn_begin(t, lock_teacher);
}

/* ---- GET /teachers/{telegram_id}/schedule ---- */

static void on_schedule_get(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    ls_reply_json(r, 200, ls_row_object(res, 0));
}

void schedule_get(ls_req_t *r)
{
    const char *params[1] = {ls_req_param_str(r, "telegram_id")};
    ls_req_pg(r, STMT_SCHEDULE_GET, 1, params, on_schedule_get);
}

/* ---- PUT /teachers/{telegram_id}/schedule ---- */

static const ls_json_field_t schedule_fields[] = {
    {"timezone", LS_JSON_STRING, 1, 0, 1, CAL_TZ_MAX, NULL},
    {"slots", LS_JSON_ARRAY, 1, 0, 0, CAL_SLOTS_MAX, NULL},
};

static const ls_json_field_t slot_fields[] = {
    {"weekday", LS_JSON_INT, 1, 0, 1, 7, NULL},
    {"start_time", LS_JSON_STRING, 1, 0, 5, 5, NULL},
    {"end_time", LS_JSON_STRING, 1, 0, 5, 5, NULL},
};

/* "HH:MM" as minutes since midnight, 0 .. 1440 ("24:00" is the end of the day), or -1. */
static int parse_hhmm(const char *s)
{
    if (strlen(s) != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return -1;
    return h * 60 + m;
}

/* IANA names ("Europe/Moscow", "America/Port-au-Prince", "Etc/GMT+3"); PostgreSQL decides whether
 * it knows the zone. */
static int is_timezone_text(const char *s)
{
    for (; *s != '\0'; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr("/_+-", *s) != NULL))
            return 0;
    return 1;
}

/* Checks every slot: its fields, HH:MM times with end after start, and no two windows of one
 * weekday overlapping. Returns 0, or answers 400 naming the slot and returns -1. */
static int slots_ok_or_reply(ls_req_t *r, json_object *slots)
{
    size_t n = json_object_array_length(slots);
    int day[CAL_SLOTS_MAX], from[CAL_SLOTS_MAX], to[CAL_SLOTS_MAX];
    char err[256];
    for (size_t i = 0; i < n; i++) {
        json_object *slot = json_object_array_get_idx(slots, i);
        if (!json_object_is_type(slot, json_type_object)) {
            ls_reply_problem(r, 400, "slots[%zu]: must be an object {weekday, start_time, end_time}", i);
            return -1;
        }
        if (ls_json_validate(slot, slot_fields, sizeof(slot_fields) / sizeof(slot_fields[0]), err,
                             sizeof(err)) != 0) {
            ls_reply_problem(r, 400, "slots[%zu]: %s", i, err);
            return -1;
        }
        day[i] = (int)ls_json_get_i64(slot, "weekday", 0);
        from[i] = parse_hhmm(ls_json_get_str(slot, "start_time"));
        to[i] = parse_hhmm(ls_json_get_str(slot, "end_time"));
        if (from[i] < 0 || from[i] >= 1440 || to[i] < 0) {
            ls_reply_problem(r, 400, "slots[%zu]: times must be HH:MM (00:00 to 23:59; end_time up to 24:00)",
                             i);
            return -1;
        }
        if (to[i] <= from[i]) {
            ls_reply_problem(r, 400, "slots[%zu]: end_time must be after start_time", i);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (day[j] == day[i] && from[i] < to[j] && from[j] < to[i]) {
                ls_reply_problem(r, 400, "slots[%zu] overlaps slots[%zu] (weekday %d)", i, j, day[i]);
                return -1;
            }
    }
    return 0;
}

void schedule_put(ls_req_t *r)
{
    json_object *body =
        ls_req_body_or_reply(r, schedule_fields, sizeof(schedule_fields) / sizeof(schedule_fields[0]));
    if (body == NULL || owner_or_reply(r) != 0)
        return;
    const char *timezone = ls_json_get_str(body, "timezone");
    if (!is_timezone_text(timezone))
        return ls_reply_problem(r, 400,
                                "field 'timezone': must be an IANA time zone name like 'Europe/Moscow'");
    json_object *slots = NULL;
    json_object_object_get_ex(body, "slots", &slots);
    if (slots_ok_or_reply(r, slots) != 0)
        return;

    teacher_write_t *w = teacher_write_new(r, STMT_SCHEDULE_PUT, STMT_SCHEDULE_GET, 200);
    w->nparams = 5;
    w->params[1] = timezone;
    w->params[2] = json_object_to_json_string_ext(slots, JSON_C_TO_STRING_PLAIN);
    w->params[3] = ls_req_actor_text(r);
    w->params[4] = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
    teacher_write_begin(r);
}

/* ---- POST /teachers/{telegram_id}/unavailable ---- */

static const ls_json_field_t unavailable_fields[] = {
    {"starts_at", LS_JSON_TIME, 1, 0, 0, 0, NULL},
    {"ends_at", LS_JSON_TIME, 1, 0, 0, 0, NULL},
    {"reason", LS_JSON_STRING, 0, 1, 0, CAL_REASON_MAX * 4, NULL},
};

void unavailable_add(ls_req_t *r)
{
    json_object *body = ls_req_body_or_reply(r, unavailable_fields,
                                             sizeof(unavailable_fields) / sizeof(unavailable_fields[0]));
    if (body == NULL || owner_or_reply(r) != 0)
        return;
    const char *reason = ls_json_get_str(body, "reason");
    if (reason != NULL && calendar_utf8_chars(reason) > CAL_REASON_MAX)
        return ls_reply_problem(r, 400, "field 'reason': at most %d characters", CAL_REASON_MAX);
    teacher_write_t *w = teacher_write_new(r, STMT_UNAVAILABLE_ADD, STMT_COUNT, 201);
    w->nparams = 5;
    w->params[1] = ls_json_get_str(body, "starts_at");
    w->params[2] = ls_json_get_str(body, "ends_at");
    w->params[3] = reason;
    w->params[4] = ls_req_actor_text(r);
    teacher_write_begin(r);
}

/* ---- GET /teachers/{telegram_id}/unavailable ---- */

typedef struct {
    const char *limit, *offset;
} page_t;

static void on_unavailable_list(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    page_t *p = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    json_object *out = json_object_new_object();
    json_object_object_add(out, "unavailable", ls_rows_array(res));
    json_object_object_add(out, "limit", json_object_new_int(atoi(p->limit)));
    json_object_object_add(out, "offset", json_object_new_int(atoi(p->offset)));
    ls_reply_json(r, 200, out);
}

void unavailable_list(ls_req_t *r)
{
    page_t *p = ls_req_alloc(r, sizeof(*p));
    if (ls_req_page_or_reply(r, CAL_PAGE_DEF, CAL_PAGE_MAX, &p->limit, &p->offset) != 0)
        return;
    r->state = p;
    const char *params[3] = {ls_req_param_str(r, "telegram_id"), p->limit, p->offset};
    ls_req_pg(r, STMT_UNAVAILABLE_LIST, 3, params, on_unavailable_list);
}

/* ---- DELETE /teachers/{telegram_id}/unavailable/{id} ---- */

static void on_unavailable_deleted(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    if (PQntuples(res) == 0)
        return ls_txn_fail(t, 404, "teacher %s has no unavailable period %s",
                           ls_req_param_str(r, "telegram_id"), ls_req_param_str(r, "id"));
    ls_txn_commit(t);
}

void unavailable_delete(ls_req_t *r)
{
    if (owner_or_reply(r) != 0)
        return;
    /* Removing a period only widens availability: no lock needed. */
    const char *params[3] = {ls_req_param_str(r, "telegram_id"), ls_req_param_str(r, "id"),
                             ls_req_actor_text(r)};
    ls_txn_write(r, STMT_UNAVAILABLE_DELETE, 3, params, on_unavailable_deleted, NULL);
}
