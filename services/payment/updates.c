/*
 * payment-service: POST /telegram/updates — one Telegram Update, as the BFF's webhook received it.
 *
 * pre_checkout_query: the pending payment named by the invoice payload is checked (payer, currency,
 * amount) and so is the group (active, a free seat, the same price, the payer not a member yet); the
 * query is answered with answerPreCheckoutQuery ok, or not ok with a message the payer sees. A group
 * that no longer takes the payer also fails the payment (the next checkout makes a new one).
 * message.successful_payment: the payment is completed once, with its seat requested through the
 * outbox (payment.h). Anything else is acknowledged and ignored.
 */
#include "payment.h"

#include <stdio.h>
#include <string.h>

#include "outbox.h"
#include "rows.h"

#define FIELD_MAX 256 /* bytes of an id, payload or currency we read from an update */

typedef struct {
    char query_id[FIELD_MAX];
    char payload[FIELD_MAX];
    char currency[FIELD_MAX];
    char charge_id[FIELD_MAX];
    int64_t from;
    int64_t total;
    /* the payment, once read */
    char payment_id[37];
    char group_id[37];
    int64_t amount;
    const char *refusal; /* the message a refused query shows; NULL: ok */
} update_t;

/* ---- reading the update ---- */

/* obj[key] as a string that fits out; 0, or -1 when absent, not a string or too long. */
static int get_str(json_object *obj, const char *key, char *out, size_t size)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return -1;
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (len == 0 || len >= size)
        return -1;
    memcpy(out, s, len + 1);
    return 0;
}

static int get_int(json_object *obj, const char *key, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
        return -1;
    *out = json_object_get_int64(v);
    return 0;
}

static json_object *get_object(json_object *obj, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_object))
        return NULL;
    return v;
}

static void reply_handled(ls_req_t *r, const char *what)
{
    json_object *out = json_object_new_object();
    json_object_object_add(out, "handled", json_object_new_string(what));
    ls_reply_json(r, 200, out);
}

/* ---- pre_checkout_query ---- */

static void on_answered(ls_req_t *r, const botapi_result_t *res)
{
    if (!res->ok)
        return ls_reply_problem(r, 502, "the Bot API did not take the pre-checkout answer: %s",
                                res->description != NULL ? res->description : "no answer");
    reply_handled(r, "pre_checkout_query");
}

static void answer_query(ls_req_t *r)
{
    update_t *u = r->state;
    json_object *params = json_object_new_object();
    json_object_object_add(params, "pre_checkout_query_id", json_object_new_string(u->query_id));
    json_object_object_add(params, "ok", json_object_new_boolean(u->refusal == NULL));
    if (u->refusal != NULL)
        json_object_object_add(params, "error_message", json_object_new_string(u->refusal));
    botapi_call(r, "answerPreCheckoutQuery", params, on_answered);
}

static void on_failed(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (status != LS_PG_OK)
        ls_logf(LS_LOG_WARN, &r->log, "could not mark a payment failed: %s",
                res != NULL ? ls_pg_errmsg(res) : "database unavailable");
    answer_query(r);
}

/* Refuses the query and fails the payment: the group no longer takes this payer. */
static void refuse_and_fail(ls_req_t *r, const char *message, const char *reason)
{
    update_t *u = r->state;
    u->refusal = message;
    const char *params[2] = {u->payment_id, reason};
    ls_req_pg(r, STMT_PAYMENT_FAIL, 2, params, on_failed);
}

static void on_group(ls_req_t *r, const group_info_t *g)
{
    update_t *u = r->state;
    if (!g->ok)
        u->refusal = "The group cannot be checked right now. Please try again in a minute.";
    else if (!g->found || !g->active || g->is_free)
        return refuse_and_fail(r, "This group no longer takes new members.", "group not open");
    else if (g->is_member)
        u->refusal = "You are already a member of this group.";
    else if (g->full)
        return refuse_and_fail(r, "Sorry, the group is full.", "group full at pre-checkout");
    else if (g->price != u->amount)
        u->refusal = "The price has changed. Please open the group and pay again.";
    answer_query(r);
}

static void on_pending(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    update_t *u = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0) {
        u->refusal = "This invoice is no longer valid.";
        return answer_query(r);
    }
    const char *state = ls_row_text(res, 0, "status");
    snprintf(u->payment_id, sizeof(u->payment_id), "%s", ls_row_text(res, 0, "id"));
    snprintf(u->group_id, sizeof(u->group_id), "%s", ls_row_text(res, 0, "group_id"));
    u->amount = ls_row_id(res, 0, "amount");
    if (strcmp(state, "completed") == 0)
        u->refusal = "This seat is paid for already.";
    else if (strcmp(state, "pending") != 0)
        u->refusal = "This invoice is no longer valid. Please open the group and pay again.";
    else if (ls_row_id(res, 0, "telegram_id") != u->from)
        u->refusal = "This invoice was made for another user.";
    else if (strcmp(u->currency, ls_row_text(res, 0, "currency")) != 0 || u->total != u->amount)
        u->refusal = "The price has changed. Please open the group and pay again.";
    if (u->refusal != NULL)
        return answer_query(r);
    char from[24];
    snprintf(from, sizeof(from), "%lld", (long long)u->from);
    group_info_fetch(r, u->group_id, ls_req_strdup(r, from, strlen(from)), on_group);
}

static void pre_checkout(ls_req_t *r, json_object *q)
{
    update_t *u = r->state;
    json_object *from = get_object(q, "from");
    if (get_str(q, "id", u->query_id, sizeof(u->query_id)) != 0 ||
        get_str(q, "invoice_payload", u->payload, sizeof(u->payload)) != 0 ||
        get_str(q, "currency", u->currency, sizeof(u->currency)) != 0 ||
        get_int(q, "total_amount", &u->total) != 0 || from == NULL || get_int(from, "id", &u->from) != 0)
        return ls_reply_problem(r, 400,
                                "pre_checkout_query: needs id, from.id, currency, total_amount and "
                                "invoice_payload");
    const char *params[1] = {u->payload};
    ls_req_pg(r, STMT_PAYMENT_BY_PAYLOAD, 1, params, on_pending);
}

/* ---- message.successful_payment ---- */

static void kick_outbox(ls_req_t *r, ls_txn_t *t)
{
    (void)t;
    ls_outbox_kick(ls_worker_outbox(r->worker));
}

static void on_completed(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    update_t *u = t->ctx;
    json_object *out = json_object_new_object();
    json_object_object_add(out, "handled", json_object_new_string("successful_payment"));
    ls_txn_reply(t, 200, out);
    if (PQntuples(res) == 1)
        t->on_commit = kick_outbox;
    else /* the same update again, or a payload we never issued: nothing changes */
        ls_logf(LS_LOG_INFO, &r->log, "successful_payment changed nothing (payload %s)", u->payload);
    ls_txn_commit(t);
}

static void successful_payment(ls_req_t *r, json_object *message, json_object *sp)
{
    update_t *u = r->state;
    json_object *from = get_object(message, "from");
    if (get_str(sp, "invoice_payload", u->payload, sizeof(u->payload)) != 0 ||
        get_str(sp, "telegram_payment_charge_id", u->charge_id, sizeof(u->charge_id)) != 0)
        return ls_reply_problem(r, 400,
                                "successful_payment: needs invoice_payload and telegram_payment_charge_id");
    char from_text[24];
    if (from != NULL && get_int(from, "id", &u->from) == 0 && u->from > 0)
        snprintf(from_text, sizeof(from_text), "%lld", (long long)u->from);
    const char *params[4] = {u->payload, u->charge_id,
                             u->from > 0 ? ls_req_strdup(r, from_text, strlen(from_text)) : NULL,
                             ls_req_traceparent(r)};
    ls_txn_write(r, STMT_PAYMENT_COMPLETE, 4, params, on_completed, NULL);
}

/* ---- POST /telegram/updates ---- */

void updates_post(ls_req_t *r)
{
    char err[256];
    if (r->h2o == NULL)
        return;
    json_object *update = ls_json_parse_object(
        r->h2o->entity.base, r->h2o->entity.base ? r->h2o->entity.len : 0, err, sizeof(err));
    if (update == NULL)
        return ls_reply_problem_str(r, 400, err);
    update_t *u = ls_req_alloc(r, sizeof(*u));
    memset(u, 0, sizeof(*u));
    r->state = u;
    json_object *q = get_object(update, "pre_checkout_query");
    json_object *message = get_object(update, "message");
    json_object *sp = message != NULL ? get_object(message, "successful_payment") : NULL;
    if (q != NULL)
        pre_checkout(r, q);
    else if (sp != NULL)
        successful_payment(r, message, sp);
    else
        reply_handled(r, "ignored");
    /* Every value used later was copied into u. */
    json_object_put(update);
}
