/*
 * payment-service: payments for seats in paid groups, in Telegram Stars (currency XTR) through the
 * Bot API (issue 16; README "payment-service API").
 *
 *   POST /groups/{group_id}/checkout          the actor's pending payment for the group, created
 *                                             (201) or reused (200), with its invoice link:
 *                                             {payment_id, invoice_link, amount, currency}
 *   GET  /users/{telegram_id}/payments        that payer's payments, newest first, paginated
 *   GET  /payments/{payment_id}               {"payment"}
 *   POST /payments/{payment_id}/refund        an admin: refundStarPayment, then refunded: {"payment"}
 *   POST /telegram/updates                    one Telegram Update (the BFF checked the webhook's
 *                                             secret): {"handled": "pre_checkout_query" |
 *                                             "successful_payment" | "ignored"}
 *   POST /payments/{payment_id}/seat          the outbox's own call (below), not for other callers
 *
 * A payment is pending (checkout) → completed (successful_payment) → refunded (an admin, or no seat),
 * or pending → failed (pre-checkout found the group no longer takes the payer). At most one pending
 * payment per payer and group (a partial unique index). Every change writes audit_log in its
 * statement.
 *
 * The seat. A completed payment's seat is "requested" in the completing transaction, together with an
 * outbox row (shared/outbox.h) that calls this service's own POST /payments/{id}/seat: that step puts
 * the payer into the group through groups-service (PUT /groups/{g}/paid_members/{payment}, under the
 * group row's lock there, so capacity holds) and records "granted"; when groups-service refuses (409:
 * full or archived; 404: gone) it refunds the payment (refundStarPayment) and records "refused"; any
 * other outcome answers 5xx, so the outbox tries again later. The step goes through the outbox rather
 * than straight to groups-service because the outbox takes a 409 as delivered and reads no answer:
 * this way the refusal is seen and acted on, at least once, across restarts. A refund of a seated
 * payment adds an outbox row to groups-service (DELETE /groups/{g}/paid_members/{payment}: the member
 * leaves, the enrollment says "refunded"), ordered after the seat step (ordering key "payment:<id>").
 *
 * groups-service is asked about a group (price, seats, membership) in groupinfo.c. Bot API calls
 * (botapi.c) go through a client of their own per worker, external (no internal
 * headers), with the base URL "{TELEGRAM_API_URL}/bot{BOT_TOKEN}" that is never logged.
 */
#ifndef PAYMENT_H
#define PAYMENT_H

#include "idempotency.h"
#include "server.h"
#include "txn.h"

#define PAYMENT_PAGE_DEFAULT 20
#define PAYMENT_PAGE_MAX     100
#define PAYMENT_TOKEN_MAX    256
#define PAYMENT_CURRENCY     "XTR"
#define PAYMENT_AMOUNT_MAX   100000 /* Stars in one invoice (Telegram's own limit is 10000 per item) */

typedef struct {
    ls_daemon_config_t common;
    long long idempotency_ttl_s; /* IDEMPOTENCY_TTL_S (idempotency.h) */
    char *telegram_api_url;      /* TELEGRAM_API_URL: "" (off) or an http(s) URL, no trailing '/' */
    char *bot_token;             /* BOT_TOKEN: "" (off) or the bot's token */
    char *groups_url;            /* GROUPS_URL */
    long long outbox_poll_ms;    /* OUTBOX_POLL_MS */
    long long bot_timeout_ms;    /* BOT_API_TIMEOUT_MS */
    /* derived at start-up */
    int telegram_enabled; /* both TELEGRAM_API_URL and BOT_TOKEN set */
    char *self_url;       /* this daemon's first LISTEN address as a URL: the seat step's target */
} payment_config_t;

/* Statement indices into payment_statements. */
enum {
    STMT_PAYMENT_OPEN,
    STMT_PAYMENT_SET_LINK,
    STMT_PAYMENT_GET,
    STMT_PAYMENT_LIST,
    STMT_PAYMENT_BY_PAYLOAD,
    STMT_PAYMENT_COMPLETE,
    STMT_PAYMENT_FAIL,
    STMT_PAYMENT_REFUND,
    STMT_SEAT_GRANTED,
    STMT_IDEM, /* the LS_IDEM_NSTMTS statements of idempotency.h, from here */
    STMT_IDEM_LAST = STMT_IDEM + LS_IDEM_NSTMTS - 1,
    STMT_COUNT,
};

extern const ls_pg_stmt_t payment_statements[STMT_COUNT];

/* checkout.c */
void checkout_post(ls_req_t *r);
/* payments.c */
void payments_list(ls_req_t *r);
void payments_get(ls_req_t *r);
void payments_refund(ls_req_t *r);
/* updates.c */
void updates_post(ls_req_t *r);
/* seats.c */
void seats_post(ls_req_t *r);

/* ---- refunds (payments.c): one home for "refundStarPayment, then the row says refunded" ---- */

/* What a refund needs of the payment (copied from its row). */
typedef struct {
    char id[37];
    char telegram_id[24];
    char charge_id[256];
} refund_t;

/* Refunds a completed payment: refundStarPayment (Telegram's "already refunded" counts as done), then
 * STMT_PAYMENT_REFUND with reason and actor (the audit row's; NULL: the service itself). unseat: the
 * payer may hold a seat to give back (an outbox row to groups-service); else the seat is recorded as
 * refused. Answers 200 {"payment"}, 409 when the payment is no longer completed, 502 when the Bot API
 * refused or failed. Uses r->state. */
void refund_run(ls_req_t *r, const refund_t *what, const char *reason, const char *actor, int unseat);
/* What a refund needs, from row 0 of a payments row. */
void refund_from_row(refund_t *what, const PGresult *res);

/* The columns of a payment's representation, and the object of row `row`. */
json_object *payment_json(const PGresult *res, int row);

/* ---- groups-service, as payment-service sees a group (groupinfo.c) ---- */

typedef struct {
    int found;       /* 0: groups-service answered 404 */
    int ok;          /* groups-service answered (found or not); 0: unreachable or a bad answer */
    int active;      /* status "active" */
    int is_free;     /* free, or no price */
    int is_member;   /* the member asked about is one */
    int full;        /* member_count >= capacity */
    long long price; /* whole Stars; -1 when the price is not a whole number */
    char title[256];
    char description[1024];
} group_info_t;

typedef void (*group_info_cb)(ls_req_t *r, const group_info_t *g);
/* GET /groups/{group_id}?member_id={member} (member may be NULL) from groups-service, read into a
 * group_info_t in request memory; cb runs once. */
void group_info_fetch(ls_req_t *r, const char *group_id, const char *member, group_info_cb cb);

/* ---- the Bot API (botapi.c) ---- */

typedef struct {
    int ok;                  /* a 2xx answer with "ok": true */
    int answered;            /* Telegram answered at all (ok or not) */
    int status;              /* its HTTP status, 0 when none */
    json_object *result;     /* "result" when ok (owned by the call, valid during the callback) */
    const char *description; /* Telegram's "description" when not ok, else NULL */
} botapi_result_t;

typedef void (*botapi_cb)(ls_req_t *r, const botapi_result_t *res);
/* 1 when TELEGRAM_API_URL and BOT_TOKEN are both set. */
int botapi_enabled(ls_req_t *r);
/* POSTs params (JSON object, taken) to Bot API method `method` for request r; cb runs once, later,
 * on r's worker (also when the call could not start: then answered is 0). */
void botapi_call(ls_req_t *r, const char *method, json_object *params, botapi_cb cb);
/* on_worker_start / on_worker_stop: the worker's Bot API client. */
void botapi_worker_start(ls_worker_t *w);
void botapi_worker_stop(ls_worker_t *w);
/* on_start: checks TELEGRAM_API_URL and BOT_TOKEN and derives self_url. 0, or -1 with err. */
int payment_prepare_config(payment_config_t *cfg, char *err, size_t errlen);

#endif
