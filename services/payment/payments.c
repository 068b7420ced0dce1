/* payment-service: reading payments, and refunds (by an admin, or by the seat step). */
#include "payment.h"

#include <stdio.h>
#include <string.h>

#include "outbox.h"
#include "rows.h"

/* A payment's representation: these columns of its row, in this order. */
static const char *const columns[] = {
    "id",         "telegram_id", "group_id",     "amount",
    "currency",   "status",      "invoice_link", "telegram_payment_charge_id",
    "created_at", "updated_at",  "completed_at", "refunded_at",
    NULL,
};

json_object *payment_json(const PGresult *res, int row)
{
    json_object *obj = json_object_new_object();
    for (size_t i = 0; columns[i] != NULL; i++) {
        int col = PQfnumber(res, columns[i]);
        if (col >= 0)
            ls_row_add_column(obj, res, row, col);
    }
    return obj;
}

static json_object *wrapped(const PGresult *res)
{
    json_object *out = json_object_new_object();
    json_object_object_add(out, "payment", payment_json(res, 0));
    return out;
}

/* ---- GET /users/{telegram_id}/payments ---- */

typedef struct {
    const char *limit, *offset;
} page_t;

static void on_list(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    page_t *p = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    json_object *list = json_object_new_array_ext(PQntuples(res));
    for (int i = 0; i < PQntuples(res); i++)
        json_object_array_add(list, payment_json(res, i));
    int64_t limit = 0, offset = 0;
    ls_parse_i64(p->limit, strlen(p->limit), &limit);
    ls_parse_i64(p->offset, strlen(p->offset), &offset);
    json_object *out = json_object_new_object();
    json_object_object_add(out, "payments", list);
    json_object_object_add(out, "limit", json_object_new_int64(limit));
    json_object_object_add(out, "offset", json_object_new_int64(offset));
    ls_reply_json(r, 200, out);
}

void payments_list(ls_req_t *r)
{
    if (ls_req_actor_or_reply(r) != 0)
        return;
    if (!ls_req_actor_is_self_or_admin(r, ls_req_param_id(r, "telegram_id")))
        return ls_reply_problem(r, 403, "only the payer or an admin may see these payments");
    page_t *p = ls_req_alloc(r, sizeof(*p));
    r->state = p;
    if (ls_req_page_or_reply(r, PAYMENT_PAGE_DEFAULT, PAYMENT_PAGE_MAX, &p->limit, &p->offset) != 0)
        return;
    const char *params[3] = {ls_req_param_str(r, "telegram_id"), p->limit, p->offset};
    ls_req_pg(r, STMT_PAYMENT_LIST, 3, params, on_list);
}

/* ---- GET /payments/{payment_id} ---- */

/* 0 when r may see the payment in row 0 (a caller without an actor is a service); else answers 403. */
static int visible_or_reply(ls_req_t *r, const PGresult *res)
{
    if (r->actor == 0 || ls_req_actor_is_self_or_admin(r, ls_row_id(res, 0, "telegram_id")))
        return 0;
    ls_reply_problem(r, 403, "only the payer or an admin may see payment %s",
                     ls_req_param_str(r, "payment_id"));
    return -1;
}

static void on_get(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0)
        return ls_reply_problem(r, 404, "payment %s not found", ls_req_param_str(r, "payment_id"));
    if (visible_or_reply(r, res) != 0)
        return;
    ls_reply_json(r, 200, wrapped(res));
}

void payments_get(ls_req_t *r)
{
    const char *params[1] = {ls_req_param_str(r, "payment_id")};
    ls_req_pg(r, STMT_PAYMENT_GET, 1, params, on_get);
}

/* ---- refunds ---- */

typedef struct {
    refund_t what;
    const char *reason, *actor;
    int unseat;
} refund_state_t;

static void kick_outbox(ls_req_t *r, ls_txn_t *t)
{
    (void)t;
    ls_outbox_kick(ls_worker_outbox(r->worker));
}

static void on_refund_written(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    refund_state_t *s = t->ctx;
    if (PQntuples(res) == 0)
        return ls_txn_fail(t, 409, "payment %s is not completed (refunded already?)", s->what.id);
    ls_txn_reply(t, 200, wrapped(res));
    t->on_commit = kick_outbox;
    ls_txn_commit(t);
}

/* The row's change (and, with an Idempotency-Key, the recorded answer) in one transaction. */
static void write_refund(ls_req_t *r)
{
    refund_state_t *s = r->state;
    const char *params[5] = {s->what.id, s->reason, s->actor, s->unseat ? "true" : "false",
                             ls_req_traceparent(r)};
    ls_txn_write(r, STMT_PAYMENT_REFUND, 5, params, on_refund_written, NULL);
}

static void on_refunded(ls_req_t *r, const botapi_result_t *res)
{
    /* A charge refunded before (an earlier attempt whose answer was lost) is as good as refunded now. */
    int done =
        res->ok || (res->description != NULL && strstr(res->description, "CHARGE_ALREADY_REFUNDED") != NULL);
    if (!done)
        return ls_reply_problem(r, 502, "the Bot API did not refund the payment: %s",
                                res->description != NULL ? res->description
                                : res->answered          ? "unexpected answer"
                                                         : "no answer");
    write_refund(r);
}

void refund_run(ls_req_t *r, const refund_t *what, const char *reason, const char *actor, int unseat)
{
    refund_state_t *s = ls_req_alloc(r, sizeof(*s));
    s->what = *what;
    s->reason = reason;
    s->actor = actor;
    s->unseat = unseat;
    r->state = s;
    int64_t user = 0;
    ls_parse_i64(what->telegram_id, strlen(what->telegram_id), &user);
    json_object *params = json_object_new_object();
    json_object_object_add(params, "user_id", json_object_new_int64(user));
    json_object_object_add(params, "telegram_payment_charge_id", json_object_new_string(what->charge_id));
    botapi_call(r, "refundStarPayment", params, on_refunded);
}

void refund_from_row(refund_t *what, const PGresult *res)
{
    snprintf(what->id, sizeof(what->id), "%s", ls_row_text(res, 0, "id"));
    snprintf(what->telegram_id, sizeof(what->telegram_id), "%s", ls_row_text(res, 0, "telegram_id"));
    const char *charge = ls_row_text(res, 0, "telegram_payment_charge_id");
    snprintf(what->charge_id, sizeof(what->charge_id), "%s", charge != NULL ? charge : "");
}

/* ---- POST /payments/{payment_id}/refund ---- */

static void on_refund_target(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    const char *id = ls_req_param_str(r, "payment_id");
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0)
        return ls_reply_problem(r, 404, "payment %s not found", id);
    const char *state = ls_row_text(res, 0, "status");
    refund_t what;
    refund_from_row(&what, res);
    if (strcmp(state, "refunded") == 0) {
        /* Nothing to ask Telegram: the same Idempotency-Key replays its answer, anything else is 409. */
        refund_state_t *s = ls_req_alloc(r, sizeof(*s));
        memset(s, 0, sizeof(*s));
        s->what = what;
        s->actor = ls_req_actor_text(r);
        s->reason = "refunded by an admin";
        s->unseat = 1;
        r->state = s;
        return write_refund(r);
    }
    if (strcmp(state, "completed") != 0)
        return ls_reply_problem(r, 409, "payment %s is %s, not completed: nothing to refund", id, state);
    refund_run(r, &what, "refunded by an admin", ls_req_actor_text(r), 1);
}

void payments_refund(ls_req_t *r)
{
    if (ls_req_actor_or_reply(r) != 0)
        return;
    if (r->role != LS_ROLE_ADMIN)
        return ls_reply_problem(r, 403, "only an admin may refund a payment");
    const char *params[1] = {ls_req_param_str(r, "payment_id")};
    ls_req_pg(r, STMT_PAYMENT_GET, 1, params, on_refund_target);
}
