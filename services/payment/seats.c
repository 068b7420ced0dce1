/*
 * payment-service: POST /payments/{payment_id}/seat — the seat step, called by this service's own
 * outbox after a payment completed (payment.h).
 *
 * For a completed payment whose seat is requested: PUT /groups/{group}/paid_members/{payment} to
 * groups-service (its Idempotency-Key "paid-member:<payment>"). Then
 *   200/201          → seat granted                                      → 200
 *   409 (full, archived) or 404 (no such group) → the payment is refunded → 200 (or 502: tried again)
 *   anything else    → 503, so the outbox tries again later.
 * Any other payment (not completed, or its seat settled already) answers 200 without a change, so a
 * repeated step does nothing twice.
 */
#include "payment.h"

#include <stdio.h>
#include <string.h>

#include "rows.h"

typedef struct {
    refund_t what;
    char group_id[37];
    char reason[320];
} seat_t;

static void on_granted(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    json_object *out = json_object_new_object();
    json_object_object_add(out, "seat",
                           json_object_new_string(PQntuples(res) == 1 ? "granted" : "unchanged"));
    ls_txn_reply(t, 200, out);
    ls_txn_commit(t);
}

/* The detail of a problem answer, or "". */
static void problem_detail(const ls_http_response_t *resp, char *out, size_t size)
{
    json_object *obj = json_tokener_parse(resp->body), *v;
    out[0] = '\0';
    if (obj != NULL && json_object_is_type(obj, json_type_object) &&
        json_object_object_get_ex(obj, "detail", &v) && json_object_is_type(v, json_type_string))
        snprintf(out, size, "%s", json_object_get_string(v));
    json_object_put(obj);
}

static void on_paid_member(ls_req_t *r, const ls_http_response_t *resp, void *ud)
{
    seat_t *s = ud;
    int status = resp->outcome == LS_HTTP_OK ? resp->status : 0;
    if (status == 200 || status == 201) {
        const char *params[1] = {s->what.id};
        return ls_txn_write(r, STMT_SEAT_GRANTED, 1, params, on_granted, NULL);
    }
    if (status == 404 || status == 409) {
        char detail[256];
        problem_detail(resp, detail, sizeof(detail));
        snprintf(s->reason, sizeof(s->reason), "no seat: %s",
                 detail[0] != '\0' ? detail : "refused by groups-service");
        return refund_run(r, &s->what, s->reason, NULL, 0);
    }
    ls_reply_problem(r, 503, "groups-service did not settle the seat (status %d); try again later", status);
}

static void on_payment(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    const char *id = ls_req_param_str(r, "payment_id");
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0)
        return ls_reply_problem(r, 404, "payment %s not found", id);
    if (strcmp(ls_row_text(res, 0, "status"), "completed") != 0 ||
        strcmp(ls_row_text(res, 0, "seat"), "requested") != 0) {
        json_object *out = json_object_new_object();
        json_object_object_add(out, "seat", json_object_new_string(ls_row_text(res, 0, "seat")));
        return ls_reply_json(r, 200, out);
    }
    if (ls_row_id(res, 0, "telegram_id") != r->actor)
        return ls_reply_problem(r, 409, "the seat step of payment %s must name its payer as the actor", id);
    seat_t *s = ls_req_alloc(r, sizeof(*s));
    memset(s, 0, sizeof(*s));
    refund_from_row(&s->what, res);
    snprintf(s->group_id, sizeof(s->group_id), "%s", ls_row_text(res, 0, "group_id"));
    char path[160], key[64];
    snprintf(path, sizeof(path), "/groups/%s/paid_members/%s", s->group_id, s->what.id);
    snprintf(key, sizeof(key), "paid-member:%s", s->what.id);
    const payment_config_t *cfg = ls_req_config(r);
    /* The member is the actor: the outbox row names the payer as its actor. */
    ls_req_http_ex(r, "groups", cfg->groups_url, "PUT", path, NULL, 0, key, on_paid_member, s);
}

void seats_post(ls_req_t *r)
{
    const char *params[1] = {ls_req_param_str(r, "payment_id")};
    ls_req_pg(r, STMT_PAYMENT_GET, 1, params, on_payment);
}
