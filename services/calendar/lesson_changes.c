/*
 * calendar-service handlers: changes to one lesson — cancel, reschedule, attendance (from the
 * lesson's start until ATTENDANCE_WINDOW_H hours after its end; a completed lesson too).
 *
 * Each runs one transaction that starts by locking the lesson row, so the checks made on it (who
 * its teacher is, its status) hold until the change commits:
 *   BEGIN; SELECT … FOR UPDATE; [reschedule: teacher lock; availability check]; the change (with
 *   its outbox rows and audit row, in one statement); COMMIT.
 */
#include "calendar.h"

#include <stdio.h>
#include <string.h>

#include "rows.h"
#include "txn.h"

typedef enum { CHANGE_CANCEL, CHANGE_RESCHEDULE, CHANGE_ATTENDANCE } change_kind_t;

typedef struct {
    change_kind_t kind;
    const char *lesson_id;
    const char *starts_at;  /* reschedule */
    const char *duration;   /* reschedule: given, or the lesson's own once locked */
    const char *reason;     /* cancel */
    const char *attendance; /* attendance status */
    char teacher[24];
} change_t;

/* Unlikely after the check under the teacher lock, but the constraint has the last word. */
static int on_change_error(ls_req_t *r, ls_txn_t *t, const char *sqlstate)
{
    change_t *c = t->ctx;
    if (strcmp(sqlstate, "23P01") != 0)
        return -1;
    ls_reply_problem(r, 409, "the new time overlaps another lesson of teacher %s", c->teacher);
    return 0;
}

static void on_changed(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    change_t *c = t->ctx;
    if (PQntuples(res) != 1) {
        if (c->kind == CHANGE_ATTENDANCE)
            return ls_txn_fail(t, 404, "%s is not a participant of lesson %s",
                               ls_req_param_str(r, "telegram_id"), c->lesson_id);
        return ls_txn_fail(t, 409, "lesson %s is no longer scheduled", c->lesson_id);
    }
    if (c->kind != CHANGE_ATTENDANCE)
        t->on_commit = calendar_kick_outbox;
    ls_txn_reply(t, 200, ls_row_object(res, 0));
    ls_txn_commit(t);
}

static void on_reschedule_checked(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    change_t *c = t->ctx;
    if (calendar_check_or_reply(r, res, c->teacher) != 0)
        return ls_txn_abort(t);
    const char *params[5] = {c->lesson_id, c->starts_at, c->duration, ls_req_actor_text(r),
                             ls_req_traceparent(r)};
    ls_txn_exec(t, STMT_LESSON_RESCHEDULE, 5, params, on_changed);
}

static void on_teacher_locked(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    change_t *c = t->ctx;
    const char *params[4] = {c->teacher, c->starts_at, c->duration, c->lesson_id};
    ls_txn_exec(t, STMT_LESSON_CHECK, 4, params, on_reschedule_checked);
}

/* Attendance is marked from the lesson's start until ATTENDANCE_WINDOW_H hours after its end, by the
 * database's clock (STMT_LESSON_LOCK's not_started and ended_s). Returns 0, or -1 after failing t. */
static int attendance_window_or_fail(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    const calendar_config_t *cfg = ls_req_config(r);
    change_t *c = t->ctx;
    char at[40];
    if (ls_row_bool(res, 0, "not_started")) {
        ls_txn_fail(t, 409, "lesson %s has not started yet: attendance can be marked from its start (%s)",
                    c->lesson_id, calendar_rfc3339_or_raw(ls_row_text(res, 0, "starts_at"), at));
        return -1;
    }
    if (ls_row_id(res, 0, "ended_s") > cfg->attendance_window_h * 3600) {
        ls_txn_fail(t, 409, "lesson %s ended at %s: attendance can be marked until %lld hours after its end",
                    c->lesson_id, calendar_rfc3339_or_raw(ls_row_text(res, 0, "ends_at"), at),
                    cfg->attendance_window_h);
        return -1;
    }
    return 0;
}

static void on_lesson_locked(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    change_t *c = t->ctx;
    if (PQntuples(res) == 0)
        return ls_txn_fail(t, 404, "lesson %s not found", c->lesson_id);
    snprintf(c->teacher, sizeof(c->teacher), "%s", ls_row_text(res, 0, "teacher_telegram_id"));
    if (!ls_req_actor_is_self_or_admin(r, ls_row_id(res, 0, "teacher_telegram_id")))
        return ls_txn_fail(t, 403, "only the lesson's teacher (%s) or an admin may change lesson %s",
                           c->teacher, c->lesson_id);
    const char *state = ls_row_text(res, 0, "status");

    switch (c->kind) {
    case CHANGE_CANCEL: {
        if (strcmp(state, "scheduled") != 0)
            return ls_txn_fail(t, 409, "lesson %s is already %s", c->lesson_id, state);
        const char *params[4] = {c->lesson_id, ls_req_actor_text(r), c->reason, ls_req_traceparent(r)};
        return ls_txn_exec(t, STMT_LESSON_CANCEL, 4, params, on_changed);
    }
    case CHANGE_RESCHEDULE: {
        if (strcmp(state, "scheduled") != 0)
            return ls_txn_fail(t, 409, "lesson %s is %s: only a scheduled lesson can be rescheduled",
                               c->lesson_id, state);
        if (c->duration == NULL) {
            const char *d = ls_row_text(res, 0, "duration_minutes");
            c->duration = ls_req_strdup(r, d, strlen(d));
        }
        const char *params[1] = {c->teacher};
        return ls_txn_exec(t, STMT_TEACHER_LOCK, 1, params, on_teacher_locked);
    }
    case CHANGE_ATTENDANCE: {
        if (strcmp(state, "cancelled") == 0)
            return ls_txn_fail(t, 409, "lesson %s is cancelled: attendance cannot be marked", c->lesson_id);
        if (attendance_window_or_fail(r, t, res) != 0)
            return;
        const char *params[4] = {c->lesson_id, ls_req_param_str(r, "telegram_id"), c->attendance,
                                 ls_req_actor_text(r)};
        return ls_txn_exec(t, STMT_ATTENDANCE_PUT, 4, params, on_changed);
    }
    }
}

static void lock_lesson(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    change_t *c = t->ctx;
    const char *params[1] = {c->lesson_id};
    ls_txn_exec(t, STMT_LESSON_LOCK, 1, params, on_lesson_locked);
}

/* Every change: BEGIN; lock the lesson; the change's own steps. */
static void change_begin(ls_req_t *r)
{
    ls_txn_t *t = ls_txn_new(r);
    t->on_error = on_change_error;
    ls_txn_begin(t, lock_lesson);
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
    change_begin(r);
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
    change_begin(r);
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
    change_begin(r);
}
