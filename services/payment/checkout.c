/*
 * payment-service: POST /groups/{group_id}/checkout — the actor's pending payment for a seat in a
 * paid group, with an invoice link (createInvoiceLink) for the Mini App's openInvoice.
 *
 * The group is asked of groups-service first (404; free, archived, full or already joined: 409), then
 * the payment is made or found (one pending per payer and group), then, when it has no link yet, the
 * Bot API makes one. A Bot API failure leaves the payment pending without a link: the next checkout
 * tries again. Repeating a checkout is safe by construction, so no Idempotency-Key is needed.
 */
#include "payment.h"

#include <stdio.h>
#include <string.h>

#include "rows.h"

/* Telegram's limits, in characters: an invoice's title and description. */
#define TITLE_CHARS       32
#define DESCRIPTION_CHARS 255

typedef struct {
    const char *group_id;
    char title[256], description[1024];
    char id[37];
    long long amount;
    int created;
    const char *link; /* request memory */
} checkout_t;

static void reply_checkout(ls_req_t *r, int status)
{
    checkout_t *c = r->state;
    json_object *out = json_object_new_object();
    json_object_object_add(out, "payment_id", json_object_new_string(c->id));
    json_object_object_add(out, "invoice_link", json_object_new_string(c->link));
    json_object_object_add(out, "amount", json_object_new_int64(c->amount));
    json_object_object_add(out, "currency", json_object_new_string(PAYMENT_CURRENCY));
    ls_reply_json(r, status, out);
}

/* s cut in place to at most max UTF-8 characters. */
static void cut_chars(char *s, size_t max)
{
    size_t chars = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (((unsigned char)s[i] & 0xC0) == 0x80)
            continue;
        if (chars++ == max) {
            s[i] = '\0';
            return;
        }
    }
}

static void on_link_saved(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    checkout_t *c = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0)
        return ls_reply_problem(r, 409, "payment %s is no longer pending", c->id);
    reply_checkout(r, c->created ? 201 : 200);
}

static void on_invoice_link(ls_req_t *r, const botapi_result_t *res)
{
    checkout_t *c = r->state;
    if (!res->ok || !json_object_is_type(res->result, json_type_string))
        return ls_reply_problem(r, 502, "the Bot API did not make an invoice link: %s",
                                res->description != NULL ? res->description
                                : res->answered          ? "unexpected answer"
                                                         : "no answer");
    const char *link = json_object_get_string(res->result);
    c->link = ls_req_strdup(r, link, strlen(link));
    const char *params[3] = {c->id, c->link, ls_req_actor_text(r)};
    ls_req_pg(r, STMT_PAYMENT_SET_LINK, 3, params, on_link_saved);
}

static void create_invoice_link(ls_req_t *r, const char *payload)
{
    checkout_t *c = r->state;
    cut_chars(c->title, TITLE_CHARS);
    if (c->description[0] == '\0')
        snprintf(c->description, sizeof(c->description), "A seat in the group \"%s\"", c->title);
    cut_chars(c->description, DESCRIPTION_CHARS);
    json_object *price = json_object_new_object();
    json_object_object_add(price, "label", json_object_new_string("Seat"));
    json_object_object_add(price, "amount", json_object_new_int64(c->amount));
    json_object *prices = json_object_new_array();
    json_object_array_add(prices, price);
    json_object *params = json_object_new_object();
    json_object_object_add(params, "title", json_object_new_string(c->title));
    json_object_object_add(params, "description", json_object_new_string(c->description));
    json_object_object_add(params, "payload", json_object_new_string(payload));
    json_object_object_add(params, "currency", json_object_new_string(PAYMENT_CURRENCY));
    json_object_object_add(params, "prices", prices);
    botapi_call(r, "createInvoiceLink", params, on_invoice_link);
}

static void on_opened(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    checkout_t *c = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    snprintf(c->id, sizeof(c->id), "%s", ls_row_text(res, 0, "id"));
    c->created = ls_row_bool(res, 0, "created");
    if (!ls_row_is_null(res, 0, "invoice_link")) {
        const char *link = ls_row_text(res, 0, "invoice_link");
        c->link = ls_req_strdup(r, link, strlen(link));
        return reply_checkout(r, c->created ? 201 : 200);
    }
    create_invoice_link(r, ls_row_text(res, 0, "invoice_payload"));
}

static void on_group(ls_req_t *r, const group_info_t *g)
{
    checkout_t *c = r->state;
    if (!g->ok)
        return ls_reply_problem(r, 502, "groups-service did not answer about group %s", c->group_id);
    if (!g->found)
        return ls_reply_problem(r, 404, "group %s not found", c->group_id);
    if (g->is_free)
        return ls_reply_problem(r, 409, "group %s is free: join it with an invitation code", c->group_id);
    if (g->price < 0)
        return ls_reply_problem(r, 409, "group %s: its price is not a whole number of Stars (1..%d)",
                                c->group_id, PAYMENT_AMOUNT_MAX);
    if (!g->active)
        return ls_reply_problem(r, 409, "group %s is archived", c->group_id);
    if (g->is_member)
        return ls_reply_problem(r, 409, "%s is already a member of group %s", ls_req_actor_text(r),
                                c->group_id);
    if (g->full)
        return ls_reply_problem(r, 409, "group %s is full", c->group_id);
    c->amount = g->price;
    snprintf(c->title, sizeof(c->title), "%s", g->title);
    snprintf(c->description, sizeof(c->description), "%s", g->description);
    char amount[24];
    snprintf(amount, sizeof(amount), "%lld", c->amount);
    const char *params[4] = {ls_req_actor_text(r), c->group_id, amount, PAYMENT_CURRENCY};
    ls_req_pg(r, STMT_PAYMENT_OPEN, 4, params, on_opened);
}

void checkout_post(ls_req_t *r)
{
    if (ls_req_actor_or_reply(r) != 0)
        return;
    if (!botapi_enabled(r))
        return ls_reply_problem(r, 503, "payments are not configured");
    checkout_t *c = ls_req_alloc(r, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->group_id = ls_req_param_str(r, "group_id");
    r->state = c;
    group_info_fetch(r, c->group_id, ls_req_actor_text(r), on_group);
}
