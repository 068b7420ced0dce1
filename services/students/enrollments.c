/*
 * students-service: group enrollments. groups-service owns membership and writes these through its
 * outbox, which may deliver a call more than once and at the same time as another delivery, so
 * every write here is idempotent: the same PUT or DELETE repeated leaves the same state and one
 * audit row for the change it made.
 */
#include "students.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rows.h"
#include "txn.h"

/* In the order a status may move (the ENUM's declaration order). "refunded" is last: the seat's
 * payment was refunded and the member taken out of the group; a new membership (a PUT without a
 * status) starts the enrollment again. */
static const char *const status_values[] = {"enrolled", "in_progress", "completed", "refunded", NULL};

/* An upsert that found nothing to write re-reads the row; if that row vanished meanwhile (a
 * concurrent DELETE), the upsert runs again, at most this many times in all. */
#define UPSERT_ATTEMPTS 3

static int status_rank(const char *s)
{
    for (int i = 0; status_values[i] != NULL; i++)
        if (s != NULL && strcmp(status_values[i], s) == 0)
            return i;
    return -1;
}

/* A row as an object, without the "created" flag the upsert adds. */
static json_object *enrollment_json(const PGresult *res, int row)
{
    return ls_row_object_skip(res, row, "created");
}

static void reply_list(ls_req_t *r, const PGresult *res, const char *limit, const char *offset)
{
    json_object *out = json_object_new_object();
    json_object_object_add(out, "enrollments", ls_rows_array(res));
    json_object_object_add(out, "limit", json_object_new_int(atoi(limit)));
    json_object_object_add(out, "offset", json_object_new_int(atoi(offset)));
    ls_reply_json(r, 200, out);
}

/* ---- PUT /students/{telegram_id}/enrollments/{group_id} ---- */

static const ls_json_field_t put_fields[] = {
    {"status", LS_JSON_ENUM, 0, 0, 0, 0, status_values},
    {"payment_id", LS_JSON_UUID, 0, 1, 0, 0, NULL},
};

typedef struct {
    const char *params[5]; /* student, group, status or NULL, actor, payment or NULL */
    int attempts;
} enroll_t;

static void run_upsert(ls_txn_t *t);

static void on_enrollment_reread(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    enroll_t *e = t->ctx;
    if (PQntuples(res) == 0) {
        if (e->attempts < UPSERT_ATTEMPTS)
            return run_upsert(t);
        return ls_txn_fail(t, 409, "the enrollment changed concurrently; try again");
    }
    const char *current = ls_row_text(res, 0, "status");
    const char *wanted = e->params[2];
    if (wanted != NULL && status_rank(wanted) < status_rank(current))
        return ls_txn_fail(t, 409, "enrollment status is already '%s'; it cannot go back to '%s'", current,
                           wanted);
    /* The same status, or none asked for: nothing to change. */
    ls_txn_reply(t, 200, enrollment_json(res, 0));
    ls_txn_commit(t);
}

static void on_enrollment_upserted(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    enroll_t *e = t->ctx;
    if (PQntuples(res) == 1) {
        int created = ls_row_bool(res, 0, "created");
        ls_txn_reply(t, created ? 201 : 200, enrollment_json(res, 0));
        return ls_txn_commit(t);
    }
    /* It exists with a status at or past the one asked for: a fresh statement (a fresh snapshot;
     * also inside a transaction, which is READ COMMITTED) sees it even when a concurrent call
     * created it after the upsert's snapshot was taken. */
    ls_txn_exec(t, STMT_ENROLLMENT_GET, 2, e->params, on_enrollment_reread);
}

static void run_upsert(ls_txn_t *t)
{
    enroll_t *e = t->ctx;
    e->attempts++;
    ls_txn_exec(t, STMT_ENROLLMENT_UPSERT, 5, e->params, on_enrollment_upserted);
}

void enrollments_put(ls_req_t *r)
{
    /* The body is optional: without a status a new enrollment is "enrolled". */
    json_object *body =
        ls_req_optional_body_or_reply(r, put_fields, sizeof(put_fields) / sizeof(put_fields[0]));
    if (body == NULL)
        return;
    const char *status = ls_json_get_str(body, "status");
    if (ls_req_actor_or_reply(r) != 0)
        return;
    enroll_t *e = ls_req_alloc(r, sizeof(*e));
    e->params[0] = ls_req_param_str(r, "telegram_id");
    e->params[1] = ls_req_param_str(r, "group_id");
    e->params[2] = status;
    e->params[3] = ls_req_actor_text(r);
    e->params[4] = ls_json_get_str(body, "payment_id");
    e->attempts = 1;
    r->state = e;
    /* With an Idempotency-Key (the outbox sends one) the upsert, its rereads and the answer are
     * one transaction. */
    ls_txn_write(r, STMT_ENROLLMENT_UPSERT, 5, e->params, on_enrollment_upserted, NULL);
}

/* ---- DELETE /students/{telegram_id}/enrollments/{group_id} ---- */

static void on_enrollment_deleted(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    (void)res;
    /* Absent already is the state the caller wants: 204 either way. */
    ls_txn_commit(t);
}

void enrollments_delete(ls_req_t *r)
{
    if (ls_req_actor_or_reply(r) != 0)
        return;
    const char *params[3] = {ls_req_param_str(r, "telegram_id"), ls_req_param_str(r, "group_id"),
                             ls_req_actor_text(r)};
    ls_txn_write(r, STMT_ENROLLMENT_DELETE, 3, params, on_enrollment_deleted, NULL);
}

/* ---- GET /students/{telegram_id}/enrollments and GET /enrollments?group_id= ---- */

typedef struct {
    const char *limit, *offset;
} page_t;

static void on_enrollment_list(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    page_t *p = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    reply_list(r, res, p->limit, p->offset);
}

static page_t *page_or_reply(ls_req_t *r)
{
    page_t *p = ls_req_alloc(r, sizeof(*p));
    if (ls_req_page_or_reply(r, 20, 100, &p->limit, &p->offset) != 0)
        return NULL;
    r->state = p;
    return p;
}

void enrollments_of_student(ls_req_t *r)
{
    page_t *p = page_or_reply(r);
    if (p == NULL)
        return;
    const char *params[3] = {ls_req_param_str(r, "telegram_id"), p->limit, p->offset};
    ls_req_pg(r, STMT_ENROLLMENTS_OF_STUDENT, 3, params, on_enrollment_list);
}

void enrollments_of_group(ls_req_t *r)
{
    const char *group = ls_req_query(r, "group_id");
    if (group == NULL)
        return ls_reply_problem(r, 400, "query parameter group_id is required");
    if (!ls_is_uuid(group, strlen(group)))
        return ls_reply_problem(r, 400, "query parameter group_id: must be a UUID");
    page_t *p = page_or_reply(r);
    if (p == NULL)
        return;
    const char *params[3] = {group, p->limit, p->offset};
    ls_req_pg(r, STMT_ENROLLMENTS_OF_GROUP, 3, params, on_enrollment_list);
}
