/*
 * calendar-service handlers: changes to one lesson — cancel, reschedule, attendance.
 *
 * Each runs one transaction that starts by locking the lesson row, so the checks made on it (who
 * its teacher is, its status) hold until the change commits:
 *   BEGIN; SELECT … FOR UPDATE; [reschedule: teacher lock; availability check]; the change (with
 *   its outbox rows and audit row, in one statement); COMMIT.
 */
#include "calendar.h"

#include <stdio.h>
#include <string.h>

#include "outbox.h"
#include "rows.h"

typedef enum { CHANGE_CANCEL, CHANGE_RESCHEDULE, CHANGE_ATTENDANCE } change_kind_t;

typedef struct {
    change_kind_t kind;
    ls_pg_txn_t *txn;
    const char *lesson_id;
    const char *starts_at;  /* reschedule */
    const char *duration;   /* reschedule: given, or the lesson's own once locked */
    const char *reason;     /* cancel */
    const char *attendance; /* attendance status */
    char teacher[24];
    json_object *result; /* answered after COMMIT */
} change_t;

/* Rolls back (after the caller answered). */
static void change_abort(ls_req_t *r)
{
    change_t *c = r->state;
    ls_req_txn_finish(r, c->txn, 0, NULL);
    c->txn = NULL;
    if (c->result != NULL)
        json_object_put(c->result);
    c->result = NULL;
}

static void on_change_committed(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    change_t *c = r->state;
    json_object *result = c->result;
    c->result = NULL;
    if (ls_pg_ok_or_reply(r, status, res) != 0) {
        json_object_put(result);
        return;
    }
    if (c->kind != CHANGE_ATTENDANCE)
        ls_outbox_kick(ls_worker_outbox(r->worker));
    ls_reply_json(r, 200, result);
}

static void on_changed(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    change_t *c = r->state;
    if (status == LS_PG_SQL_ERROR && strcmp(ls_pg_sqlstate(res), "23P01") == 0) {
        /* Unlikely after the check under the teacher lock, but the constraint has the last word. */
        ls_reply_problem(r, 409, "the new time overlaps another lesson of teacher %s", c->teacher);
        return change_abort(r);
    }
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return change_abort(r);
    if (PQntuples(res) != 1) {
        if (c->kind == CHANGE_ATTENDANCE)
            ls_reply_problem(r, 404, "%s is not a participant of lesson %s",
                             ls_req_param_str(r, "telegram_id"), c->lesson_id);
        else
            ls_reply_problem(r, 409, "lesson %s is no longer scheduled", c->lesson_id);
        return change_abort(r);
    }
    c->result = ls_row_object(res, 0);
    ls_pg_txn_t *txn = c->txn;
    c->txn = NULL;
    ls_req_txn_finish(r, txn, 1, on_change_committed);
}

static void on_reschedule_checked(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    change_t *c = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0 || calendar_check_or_reply(r, res, c->teacher) != 0)
        return change_abort(r);
    const char *params[4] = {c->lesson_id, c->starts_at, c->duration, ls_req_actor_text(r)};
    ls_req_txn_exec(r, c->txn, STMT_LESSON_RESCHEDULE, 4, params, on_changed);
}

static void on_teacher_locked(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    change_t *c = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return change_abort(r);
    const char *params[4] = {c->teacher, c->starts_at, c->duration, c->lesson_id};
    ls_req_txn_exec(r, c->txn, STMT_LESSON_CHECK, 4, params, on_reschedule_checked);
}

static void on_lesson_locked(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    change_t *c = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return change_abort(r);
    if (PQntuples(res) == 0) {
        ls_reply_problem(r, 404, "lesson %s not found", c->lesson_id);
        return change_abort(r);
    }
    snprintf(c->teacher, sizeof(c->teacher), "%s", PQgetvalue(res, 0, PQfnumber(res, "teacher_telegram_id")));
    int64_t teacher = 0;
    ls_parse_i64(c->teacher, strlen(c->teacher), &teacher);
    if (!ls_req_actor_is_self_or_admin(r, teacher)) {
        ls_reply_problem(r, 403, "only the lesson's teacher (%s) or an admin may change lesson %s",
                         c->teacher, c->lesson_id);
        return change_abort(r);
    }
    const char *state = PQgetvalue(res, 0, PQfnumber(res, "status"));

    switch (c->kind) {
    case CHANGE_CANCEL: {
        if (strcmp(state, "scheduled") != 0) {
            ls_reply_problem(r, 409, "lesson %s is already %s", c->lesson_id, state);
            return change_abort(r);
        }
        const char *params[3] = {c->lesson_id, ls_req_actor_text(r), c->reason};
        return ls_req_txn_exec(r, c->txn, STMT_LESSON_CANCEL, 3, params, on_changed);
    }
    case CHANGE_RESCHEDULE: {
        if (strcmp(state, "scheduled") != 0) {
            ls_reply_problem(r, 409, "lesson %s is %s: only a scheduled lesson can be rescheduled",
                             c->lesson_id, state);
            return change_abort(r);
        }
        if (c->duration == NULL) {
            const char *d = PQgetvalue(res, 0, PQfnumber(res, "duration_minutes"));
            c->duration = ls_req_strdup(r, d, strlen(d));
        }
        const char *params[1] = {c->teacher};
        return ls_req_txn_exec(r, c->txn, STMT_TEACHER_LOCK, 1, params, on_teacher_locked);
    }
    case CHANGE_ATTENDANCE: {
        if (strcmp(state, "cancelled") == 0) {
            ls_reply_problem(r, 409, "lesson %s is cancelled: attendance cannot be marked", c->lesson_id);
            return change_abort(r);
        }
        const char *params[4] = {c->lesson_id, ls_req_param_str(r, "telegram_id"), c->attendance,
                                 ls_req_actor_text(r)};
        return ls_req_txn_exec(r, c->txn, STMT_ATTENDANCE_PUT, 4, params, on_changed);
    }
    }
}

static void on_change_begun(ls_req_t *r, ls_pg_status_t status, ls_pg_txn_t *txn)
{
    change_t *c = r->state;
    if (ls_pg_ok_or_reply(r, status, NULL) != 0)
        return;
    c->txn = txn;
    const char *params[1] = {c->lesson_id};
    ls_req_txn_exec(r, txn, STMT_LESSON_LOCK, 1, params, on_lesson_locked);
}

/* The part every change shares once its body is validated: an actor, then the transaction. */
static change_t *change_new_or_reply(ls_req_t *r, change_kind_t kind)
{
    if (ls_req_actor_or_reply(r) != 0)
        return NULL;
    change_t *c = ls_req_alloc(r, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->lesson_id = ls_req_param_str(r, "lesson_id");
    r->state = c;
    return c;
}

/* ---- POST /lessons/{lesson_id}/cancel ---- */

static const ls_json_field_t cancel_fields[] = {
    {"reason", LS_JSON_STRING, 0, 1, 0, CAL_REASON_MAX * 4, NULL},
};

void lessons_cancel(ls_req_t *r)
{
    /* The body is optional. */
    const char *reason = NULL;
    if (r->h2o != NULL && r->h2o->entity.base != NULL && r->h2o->entity.len > 0) {
        json_object *body =
            ls_req_body_or_reply(r, cancel_fields, sizeof(cancel_fields) / sizeof(cancel_fields[0]));
        if (body == NULL)
            return;
        reason = ls_json_get_str(body, "reason");
        if (reason != NULL && calendar_utf8_chars(reason) > CAL_REASON_MAX)
            return ls_reply_problem(r, 400, "field 'reason': at most %d characters", CAL_REASON_MAX);
    }
    change_t *c = change_new_or_reply(r, CHANGE_CANCEL);
    if (c == NULL)
        return;
    c->reason = reason;
    ls_req_begin(r, on_change_begun);
}

/* ---- POST /lessons/{lesson_id}/reschedule ---- */

static const ls_json_field_t reschedule_fields[] = {
    {"starts_at", LS_JSON_TIME, 1, 0, 0, 0, NULL},
    {"duration_minutes", LS_JSON_INT, 0, 0, CAL_DURATION_MIN, CAL_DURATION_MAX, NULL},
};

void lessons_reschedule(ls_req_t *r)
{
    json_object *body =
        ls_req_body_or_reply(r, reschedule_fields, sizeof(reschedule_fields) / sizeof(reschedule_fields[0]));
    if (body == NULL)
        return;
    change_t *c = change_new_or_reply(r, CHANGE_RESCHEDULE);
    if (c == NULL)
        return;
    c->starts_at = ls_json_get_str(body, "starts_at");
    if (ls_json_has(body, "duration_minutes")) {
        char *d = ls_req_alloc(r, 16);
        snprintf(d, 16, "%lld", (long long)ls_json_get_i64(body, "duration_minutes", 0));
        c->duration = d;
    }
    ls_req_begin(r, on_change_begun);
}

/* ---- PUT /lessons/{lesson_id}/attendance/{telegram_id} ---- */

static const ls_json_field_t attendance_fields[] = {
    {"status", LS_JSON_ENUM, 1, 0, 0, 0, calendar_attendance_statuses},
};

void lessons_attendance_put(ls_req_t *r)
{
    json_object *body =
        ls_req_body_or_reply(r, attendance_fields, sizeof(attendance_fields) / sizeof(attendance_fields[0]));
    if (body == NULL)
        return;
    change_t *c = change_new_or_reply(r, CHANGE_ATTENDANCE);
    if (c == NULL)
        return;
    c->attendance = ls_json_get_str(body, "status");
    ls_req_begin(r, on_change_begun);
}
