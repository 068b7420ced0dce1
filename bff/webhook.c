/*
 * POST /telegram/webhook: the bot's updates, as Telegram delivers them to the URL given to setWebhook,
 * passed on to payment-service's POST /telegram/updates (services/payment; the flow in README "Payments
 * and the bot's webhook"). See bff.h (bff_webhook, bff_webhook_configure).
 *
 * The route is public (LS_ROUTE_PUBLIC): Telegram sends no init data, so the tma hook never runs for it.
 * What stands in its place is the secret token given to setWebhook, which Telegram sends back in
 * X-Telegram-Bot-Api-Secret-Token with every update. Both sides are hashed (BLAKE2b) and the hashes
 * compared with sodium_memcmp: the time taken says nothing about the secret, its length included.
 *
 * Answers: 404 when TELEGRAM_WEBHOOK_SECRET is empty (the webhook is off); 401 without the header or
 * with another value, and nothing is passed on; 400 for a body that is not one JSON object (the front
 * door has already refused one over MAX_BODY_BYTES with 413). Otherwise the update goes to
 * payment-service under the BFF's deadline (BFF_DEADLINE_MS) and its answer is the webhook's: 200
 * {"handled": …} as soon as it answers, its 400 for an update it cannot read; 503 when it is
 * unreachable, 504 when it is too slow, 502 for its 5xx or another refusal (its token, its version),
 * so that Telegram delivers the update again later.
 */
#include "bff.h"

#include <string.h>

#include <sodium.h>

#define SECRET_HEADER "x-telegram-bot-api-secret-token"

/* Telegram's rule for secret_token (setWebhook): 1-256 of A-Z, a-z, 0-9, '_' and '-'. */
static int is_token_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
           ch == '-';
}

int bff_webhook_configure(bff_config_t *c, char *err, size_t errlen)
{
    size_t len = strlen(c->webhook_secret);
    c->webhook_on = len > 0;
    if (len == 0)
        return 0;
    if (len < BFF_WEBHOOK_SECRET_MIN) {
        snprintf(err, errlen, "TELEGRAM_WEBHOOK_SECRET: must be empty (webhook off) or %d to %d characters",
                 BFF_WEBHOOK_SECRET_MIN, BFF_WEBHOOK_SECRET_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if (!is_token_char(c->webhook_secret[i])) {
            snprintf(err, errlen,
                     "TELEGRAM_WEBHOOK_SECRET: may hold only A-Z, a-z, 0-9, '_' and '-' (Telegram's rule)");
            return -1;
        }
    crypto_generichash(c->webhook_digest, sizeof(c->webhook_digest), (const unsigned char *)c->webhook_secret,
                       len, NULL, 0);
    return 0;
}

/* 1 when the request carries the webhook's secret; the same work whatever it carries. */
static int secret_ok(ls_req_t *r, const bff_config_t *c)
{
    h2o_iovec_t v;
    unsigned char got[sizeof(c->webhook_digest)];
    if (r->h2o == NULL || !ls_h2o_header(r->h2o, SECRET_HEADER, sizeof(SECRET_HEADER) - 1, &v))
        return 0;
    crypto_generichash(got, sizeof(got), (const unsigned char *)v.base, v.len, NULL, 0);
    return sodium_memcmp(got, c->webhook_digest, sizeof(got)) == 0;
}

static void on_forwarded(ls_req_t *r, bff_fanout_t *f)
{
    const bff_part_t *p = &f->parts[0];
    if (p->unavailable)
        return bff_reply_upstream_failure(r, p);
    if (p->ok)
        return ls_reply_raw(r, p->status, p->content_type, p->raw, p->raw_len);
    if (p->status == 400) /* an update it cannot read: sending it again will not help */
        return ls_reply_problem(r, 400, "payment-service: %s", p->detail);
    /* Its token or its routes do not fit this BFF: a fault Telegram's next delivery may find mended. */
    ls_reply_problem(r, 502, "payment-service refused the update (%d): %s", p->status, p->detail);
}

void bff_webhook(ls_req_t *r)
{
    const bff_config_t *c = ls_req_config(r);
    char err[256];

    if (!c->webhook_on)
        return ls_reply_problem(r, 404, "the bot's webhook is off here (TELEGRAM_WEBHOOK_SECRET is not set)");
    if (!secret_ok(r, c))
        return ls_reply_problem(r, 401, "header X-Telegram-Bot-Api-Secret-Token is missing or wrong");
    if (r->h2o->entity.base == NULL || r->h2o->entity.len == 0)
        return ls_reply_problem(r, 400, "the body must be one Telegram Update (a JSON object)");
    json_object *update = ls_json_parse_object(r->h2o->entity.base, r->h2o->entity.len, err, sizeof(err));
    if (update == NULL)
        return ls_reply_problem(r, 400, "%s", err);
    json_object_put(update);

    /* The tma hook, which sets it for /api/, does not run here. */
    uint64_t deadline = r->started + (uint64_t)c->deadline_ms;
    if (deadline < r->deadline)
        r->deadline = deadline;
    bff_fanout_t *f = bff_fanout_new(r, NULL);
    f->keep_raw = 1;
    /* Copied: the h2o request may be gone (Telegram hung up) before the call goes out. */
    bff_fanout_add(f, BFF_UP_PAYMENT, "POST", "/telegram/updates",
                   ls_req_strdup(r, r->h2o->entity.base, r->h2o->entity.len), r->h2o->entity.len);
    bff_fanout_start(f, on_forwarded);
}
