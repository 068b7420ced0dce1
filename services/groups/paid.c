/*
 * groups-service handlers: paid seats — payment-service seating a payer (PUT), a refund ending a seat
 * (DELETE), and the paid seat a join by invitation code of a paid group needs.
 *
 * Both routes are called through payment-service's outbox, so each is safe to repeat: a seat is
 * keyed by its payment id, and every change holds the group row's lock (capacity holds against
 * joins by code and other payers alike).
 */
#include "groups.h"

#include <stdio.h>
#include <string.h>

#include "rows.h"

/* ---- PUT /groups/{group_id}/paid_members/{payment_id} ---- */

static void on_paid_join(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    int joined = ls_row_bool(res, 0, "joined");
    ls_txn_reply(t, joined ? 201 : 200, ls_row_object_skip(res, 0, "joined"));
    t->on_commit = group_kick_outbox;
    ls_txn_commit(t);
}

static void on_seat(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    locked_group_t *g = t->ctx;
    const char *payment = ls_req_param_str(r, "payment_id");
    if (PQntuples(res) == 1) {
        /* Seated before (a repeated call): the same seat, nothing changes. */
        if (ls_row_bool(res, 0, "refunded"))
            return ls_txn_fail(t, 409, "payment %s was refunded: it holds no seat", payment);
        if (ls_row_id(res, 0, "student_telegram_id") != r->actor ||
            strcmp(ls_row_text(res, 0, "group_id"), g->group_id) != 0)
            return ls_txn_fail(t, 409, "payment %s holds a seat for someone else", payment);
        json_object *out = json_object_new_object();
        json_object_object_add(out, "group_id", json_object_new_string(g->group_id));
        json_object_object_add(out, "student_telegram_id", json_object_new_int64(r->actor));
        json_object_object_add(out, "payment_id", json_object_new_string(payment));
        ls_txn_reply(t, 200, out);
        return ls_txn_commit(t);
    }
    if (!g->is_member) {
        if (strcmp(g->status, "active") != 0)
            return ls_txn_fail(t, 409, "group %s is archived", g->group_id);
        if (g->member_count >= g->capacity)
            return ls_txn_fail(t, 409, "group %s is full (capacity %d)", g->group_id, g->capacity);
    }
    const char *params[4] = {g->group_id, ls_req_actor_text(r), payment, ls_req_traceparent(r)};
    ls_txn_exec(t, STMT_PAID_JOIN, 4, params, on_paid_join);
}

static void seat_locked(ls_req_t *r, ls_txn_t *t, locked_group_t *g)
{
    (void)g;
    const char *params[1] = {ls_req_param_str(r, "payment_id")};
    ls_txn_exec(t, STMT_PAID_SEAT_GET, 1, params, on_seat);
}

void paid_members_put(ls_req_t *r)
{
    if (ls_req_actor_or_reply(r) != 0)
        return;
    group_lock(r, STMT_GROUP_LOCK, ls_req_param_str(r, "group_id"), 0, seat_locked);
}

/* ---- DELETE /groups/{group_id}/paid_members/{payment_id} ---- */

static void on_revoked(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    if (ls_row_id(res, 0, "removed") > 0)
        t->on_commit = group_kick_outbox;
    ls_txn_commit(t);
}

static void revoke_locked(ls_req_t *r, ls_txn_t *t, locked_group_t *g)
{
    const char *params[4] = {g->group_id, ls_req_param_str(r, "payment_id"), ls_req_actor_text(r),
                             ls_req_traceparent(r)};
    ls_txn_exec(t, STMT_PAID_REVOKE, 4, params, on_revoked);
}

void paid_members_delete(ls_req_t *r)
{
    group_lock(r, STMT_GROUP_LOCK, ls_req_param_str(r, "group_id"), 0, revoke_locked);
}

/* ---- a join by invitation code ---- */

typedef struct {
    const char *invitation_id;
    ls_txn_step_t next;
} paid_join_t;

static void insert_member(ls_req_t *r, ls_txn_t *t, const char *payment)
{
    locked_group_t *g = t->ctx;
    paid_join_t *j = g->ctx;
    const char *params[5] = {g->group_id, ls_req_actor_text(r), j->invitation_id, ls_req_traceparent(r),
                             payment};
    ls_txn_exec(t, STMT_JOIN_INSERT, 5, params, j->next);
}

static void on_live_seat(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    locked_group_t *g = t->ctx;
    if (PQntuples(res) == 0) {
        /* 402 with the route that sells a seat, as a member of the problem too. */
        char detail[256], checkout[96];
        snprintf(checkout, sizeof(checkout), "/api/groups/%s/checkout", g->group_id);
        snprintf(detail, sizeof(detail), "group %s is paid: buy a seat first with POST %s", g->group_id,
                 checkout);
        json_object *p = ls_problem_new(402, detail);
        json_object_object_add(p, "checkout", json_object_new_string(checkout));
        size_t len;
        const char *s = json_object_to_json_string_length(p, JSON_C_TO_STRING_PLAIN, &len);
        ls_reply_raw(r, 402, "application/problem+json", s, len);
        json_object_put(p);
        return ls_txn_abort(t);
    }
    const char *payment = ls_row_text(res, 0, "payment_id");
    insert_member(r, t, ls_req_strdup(r, payment, strlen(payment)));
}

void paid_join_insert(ls_req_t *r, ls_txn_t *t, locked_group_t *g, const char *invitation_id,
                      ls_txn_step_t next)
{
    paid_join_t *j = ls_req_alloc(r, sizeof(*j));
    j->invitation_id = invitation_id;
    j->next = next;
    g->ctx = j;
    if (g->is_free)
        return insert_member(r, t, NULL);
    const char *params[2] = {g->group_id, ls_req_actor_text(r)};
    ls_txn_exec(t, STMT_PAID_SEAT_LIVE, 2, params, on_live_seat);
}
