/*
 * Paying for a group through the BFF, end to end (issue 16): the real bff, payment-service and the
 * six services (stack.h), with payment-service's Bot API a fake of this file that records each call
 * and answers as Telegram does. Updates reach the bot's webhook as Telegram sends them, with the
 * secret token given to setWebhook.
 *
 *   checkout (a pending payment, its invoice link; again: the same one) → pre_checkout_query through
 *   the webhook (answered ok) → successful_payment → the student is a member and the profile shows the
 *   completed payment; the same update again changes nothing; forged webhooks (no secret, a wrong
 *   one) are 401 and change nothing, and no Bot API method is called for them; a refund by a student
 *   is 403, by an admin 200 (refundStarPayment, the member leaves); GET /api/payments lists only the
 *   caller's own; while payment-service is down the profile is partial and the webhook is 503.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake_upstream.h"
#include "stack.h"

#define STR_(x)   #x
#define STR(x)    STR_(x)
#define SECRET    "payflow-secret-0123456789abcdef"
#define ADMIN     LST_STACK_ADMIN_ID
#define TEACHER   7201
#define STUDENT   7202
#define OTHER     7203
#define PRICE     250
#define MAX_CALLS 32
#define WAIT_MS   15000
#define INVOICE   "https://t.me/$fake-invoice"
#define CHARGE_ID "stxCharge-0001"

/* ---- the fake Bot API ---- */

enum { M_INVOICE, M_PRECHECKOUT, M_REFUND, M_OTHER, M_COUNT };
static const char *const method_names[M_COUNT] = {"createInvoiceLink", "answerPreCheckoutQuery",
                                                  "refundStarPayment", NULL};

static struct {
    pthread_mutex_t lock;
    int calls[M_COUNT];
    char last_body[M_COUNT][1024];
} bot = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int bot_handler(void *ud, lst_upstream_t *u, const lst_upstream_req_t *req, lst_upstream_resp_t *resp)
{
    (void)ud;
    (void)u;
    const char *slash = strrchr(req->path, '/');
    int m = M_OTHER;
    if (strncmp(req->path, "/bot", 4) != 0 || slash == NULL)
        return 0;
    for (int i = 0; i < M_OTHER; i++)
        if (strcmp(slash + 1, method_names[i]) == 0)
            m = i;
    pthread_mutex_lock(&bot.lock);
    bot.calls[m]++;
    snprintf(bot.last_body[m], sizeof(bot.last_body[m]), "%s", req->body);
    pthread_mutex_unlock(&bot.lock);
    if (m == M_INVOICE)
        lst_upstream_respondf(resp, 200, "{\"ok\":true,\"result\":\"" INVOICE "\"}");
    else if (m == M_OTHER)
        lst_upstream_respondf(resp, 400,
                              "{\"ok\":false,\"error_code\":400,\"description\":\"no such method\"}");
    else
        lst_upstream_respondf(resp, 200, "{\"ok\":true,\"result\":true}");
    return 1;
}

static int bot_calls(int m)
{
    pthread_mutex_lock(&bot.lock);
    int n = bot.calls[m];
    pthread_mutex_unlock(&bot.lock);
    return n;
}

/* The last call of method m, parsed (the caller puts it). */
static json_object *bot_last(int m)
{
    pthread_mutex_lock(&bot.lock);
    json_object *o = json_tokener_parse(bot.last_body[m]);
    pthread_mutex_unlock(&bot.lock);
    cr_assert_not_null(o, "the last %s call had no JSON body", method_names[m]);
    return o;
}

/* ---- the stack ---- */

static lst_stack_t st;
static lst_upstream_t *fake_bot;

static void setup(void)
{
    static const char *const bff_env[] = {"TELEGRAM_WEBHOOK_SECRET=" SECRET, NULL};
    memset(bot.calls, 0, sizeof(bot.calls));
    fake_bot = lst_upstream_start();
    cr_assert_not_null(fake_bot);
    lst_upstream_set_handler(fake_bot, bot_handler, NULL);
    lst_stack_start_with(&st, bff_env, lst_upstream_url(fake_bot));
}

static void teardown(void)
{
    lst_stack_stop(&st);
    lst_upstream_stop(fake_bot);
}

TestSuite(payflow, .init = setup, .fini = teardown, .timeout = 240);

/* ---- helpers ---- */

static void sign_in(long long id)
{
    lst_resp_t resp;
    lst_stack_api_ok(&st, &resp, id, "POST", "/api/auth/telegram", NULL, 201, 200);
    lst_resp_free(&resp);
}

/* POST /telegram/webhook with the secret header line (NULL: none) and this update. */
static int webhook(lst_resp_t *resp, const char *secret_line, const char *update)
{
    char url[128];
    const char *h[] = {"Content-Type: application/json", secret_line, NULL};
    snprintf(url, sizeof(url), "%s/telegram/webhook", st.bff.base_url);
    return lst_http(resp, "POST", url, h, update);
}

static const char *const secret_line = "X-Telegram-Bot-Api-Secret-Token: " SECRET;

static void pre_checkout(char *out, size_t size, long long from, const char *payload)
{
    snprintf(out, size,
             "{\"update_id\":1001,\"pre_checkout_query\":{\"id\":\"query-1\",\"from\":{\"id\":%lld,\"is_"
             "bot\":false,"
             "\"first_name\":\"S\"},\"currency\":\"XTR\",\"total_amount\":%d,\"invoice_payload\":\"%s\"}}",
             from, PRICE, payload);
}

static void successful_payment(char *out, size_t size, long long from, const char *payload)
{
    snprintf(
        out, size,
        "{\"update_id\":1002,\"message\":{\"message_id\":55,\"date\":%lld,\"chat\":{\"id\":%lld,\"type\":"
        "\"private\"},\"from\":{\"id\":%lld,\"is_bot\":false,\"first_name\":\"S\"},\"successful_payment\":{"
        "\"currency\":\"XTR\",\"total_amount\":%d,\"invoice_payload\":\"%s\",\"telegram_payment_charge_id\":"
        "\"" CHARGE_ID "\",\"provider_payment_charge_id\":\"\"}}}",
        (long long)time(NULL), from, from, PRICE, payload);
}

/* The caller's payments (GET /api/payments): a new reference to its array. */
static json_object *payments_of(long long id)
{
    lst_resp_t resp;
    lst_stack_api_ok(&st, &resp, id, "GET", "/api/payments", NULL, 200, 200);
    json_object *list = lst_field(resp.json, "payments");
    cr_assert(list != NULL && json_object_is_type(list, json_type_array), "%.300s", resp.body);
    json_object_get(list);
    lst_resp_free(&resp);
    return list;
}

/* The status of the caller's only payment. */
static void expect_only_payment(long long id, const char *payment_id, const char *status)
{
    json_object *list = payments_of(id);
    cr_assert_eq(json_object_array_length(list), 1, "%s", json_object_to_json_string(list));
    json_object *p = json_object_array_get_idx(list, 0);
    cr_expect_str_eq(lst_str_field(p, "id"), payment_id);
    cr_expect_str_eq(lst_str_field(p, "status"), status);
    cr_expect_eq(json_object_get_int64(lst_field(p, "telegram_id")), id);
    json_object_put(list);
}

/* The group's member count as its teacher's group view shows it (-1 when the view failed). */
static long long member_count(const char *group_path)
{
    lst_resp_t resp;
    lst_stack_api(&st, &resp, TEACHER, "GET", group_path, NULL);
    long long n = resp.status == 200
                      ? json_object_get_int64(lst_field(lst_field(resp.json, "group"), "member_count"))
                      : -1;
    lst_resp_free(&resp);
    return n;
}

/* Waits until the group has want members; returns the last count seen. */
static long long wait_members(const char *group_path, long long want)
{
    long long n = -1;
    for (int waited = 0; waited < WAIT_MS; waited += 100) {
        if ((n = member_count(group_path)) == want)
            break;
        usleep(100 * 1000);
    }
    return n;
}

/* A paid group of TEACHER's; its view's path into group_path. */
static void paid_group(char *group_id, size_t id_size, char *group_path, size_t path_size)
{
    lst_resp_t resp;
    lst_stack_api_ok(&st, &resp, TEACHER, "PUT", "/api/teachers/me", "{\"bio\":\"b\"}", 201, 200);
    lst_resp_free(&resp);
    lst_stack_api_ok(
        &st, &resp, TEACHER, "POST", "/api/groups",
        "{\"title\":\"English B1 (paid)\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":5,"
        "\"is_free\":false,\"price\":" STR(PRICE) "}",
        201, 201);
    json_object *g = lst_field(resp.json, "group") != NULL ? lst_field(resp.json, "group") : resp.json;
    snprintf(group_id, id_size, "%s", lst_str_field(g, "id"));
    snprintf(group_path, path_size, "/api/groups/%s", group_id);
    lst_resp_free(&resp);
}

/* ---- the flow ---- */

Test(payflow, checkout_then_telegram_s_updates_make_a_member_and_a_refund_undoes_it)
{
    char group_id[64], group_path[128], path[256], payment_id[64], payload[256], update[1024];
    lst_resp_t resp;

    sign_in(ADMIN);
    sign_in(TEACHER);
    sign_in(STUDENT);
    sign_in(OTHER);
    paid_group(group_id, sizeof(group_id), group_path, sizeof(group_path));

    /* Checkout: a pending payment and the invoice link for openInvoice; again: the same one. */
    snprintf(path, sizeof(path), "%s/checkout", group_path);
    lst_stack_api_ok(&st, &resp, STUDENT, "POST", path, NULL, 201, 201);
    snprintf(payment_id, sizeof(payment_id), "%s", lst_str_field(resp.json, "payment_id"));
    cr_expect_str_eq(lst_str_field(resp.json, "invoice_link"), INVOICE);
    cr_expect_str_eq(lst_str_field(resp.json, "currency"), "XTR");
    cr_expect_eq(json_object_get_int64(lst_field(resp.json, "amount")), PRICE);
    lst_resp_free(&resp);
    lst_stack_api_ok(&st, &resp, STUDENT, "POST", path, NULL, 200, 200);
    cr_expect_str_eq(lst_str_field(resp.json, "payment_id"), payment_id, "a second pending payment was made");
    lst_resp_free(&resp);
    json_object *invoice = bot_last(M_INVOICE);
    snprintf(payload, sizeof(payload), "%s", lst_str_field(invoice, "payload"));
    cr_expect_str_eq(lst_str_field(invoice, "currency"), "XTR");
    cr_assert_neq(payload[0], '\0', "createInvoiceLink had no payload");
    json_object_put(invoice);
    /* Someone else's checkout of the same group is theirs alone. */
    lst_stack_api_ok(&st, &resp, OTHER, "POST", path, NULL, 201, 201);
    char other_payment[64];
    snprintf(other_payment, sizeof(other_payment), "%s", lst_str_field(resp.json, "payment_id"));
    cr_expect_str_neq(other_payment, payment_id);
    lst_resp_free(&resp);
    expect_only_payment(STUDENT, payment_id, "pending");
    expect_only_payment(OTHER, other_payment, "pending");

    /* Forged updates: no secret, a wrong one. Nothing changes and the Bot API is not called. */
    int invoices = bot_calls(M_INVOICE);
    const char *forged[] = {NULL, "X-Telegram-Bot-Api-Secret-Token: payflow-secret-0123456789abcdeF",
                            "X-Telegram-Bot-Api-Secret-Token: " SECRET "x"};
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        pre_checkout(update, sizeof(update), STUDENT, payload);
        webhook(&resp, forged[i], update);
        lst_expect_problem(&resp, 401, NULL);
        lst_resp_free(&resp);
        successful_payment(update, sizeof(update), STUDENT, payload);
        webhook(&resp, forged[i], update);
        lst_expect_problem(&resp, 401, NULL);
        lst_resp_free(&resp);
    }
    usleep(300 * 1000); /* anything the forged updates set off would have shown by now */
    cr_expect_eq(bot_calls(M_PRECHECKOUT), 0, "a forged pre_checkout_query was answered");
    cr_expect_eq(bot_calls(M_REFUND) + bot_calls(M_OTHER), 0);
    cr_expect_eq(bot_calls(M_INVOICE), invoices);
    expect_only_payment(STUDENT, payment_id, "pending");
    cr_expect_eq(member_count(group_path), 0, "a forged successful_payment made a member");

    /* Telegram asks before taking the Stars: answered ok, within the webhook's call. */
    pre_checkout(update, sizeof(update), STUDENT, payload);
    webhook(&resp, secret_line, update);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "handled"), "pre_checkout_query");
    lst_resp_free(&resp);
    cr_assert_eq(bot_calls(M_PRECHECKOUT), 1);
    json_object *answer = bot_last(M_PRECHECKOUT);
    cr_expect_str_eq(lst_str_field(answer, "pre_checkout_query_id"), "query-1");
    cr_expect(json_object_get_boolean(lst_field(answer, "ok")), "refused: %s",
              json_object_to_json_string(answer));
    json_object_put(answer);

    /* The payment, delivered twice (Telegram may): one completed payment, one member. */
    successful_payment(update, sizeof(update), STUDENT, payload);
    for (int i = 0; i < 2; i++) {
        webhook(&resp, secret_line, update);
        cr_expect_eq(resp.status, 200, "delivery %d: %.300s", i + 1, resp.body);
        lst_resp_free(&resp);
    }
    cr_expect_eq(wait_members(group_path, 1), 1, "the payer did not become a member");
    expect_only_payment(STUDENT, payment_id, "completed");

    /* The payer's own profile shows the group and the completed payment. */
    snprintf(path, sizeof(path), "/api/user/profile/%d", STUDENT);
    lst_stack_api_ok(&st, &resp, STUDENT, "GET", path, NULL, 200, 200);
    cr_expect(!json_object_get_boolean(lst_field(resp.json, "partial")), "%.400s", resp.body);
    json_object *pays = lst_field(resp.json, "payments"), *groups = lst_field(resp.json, "groups");
    cr_assert(pays != NULL && json_object_array_length(pays) == 1, "%.600s", resp.body);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(pays, 0), "status"), "completed");
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(pays, 0), "telegram_payment_charge_id"),
                     CHARGE_ID);
    cr_expect(groups != NULL && json_object_array_length(groups) == 1 &&
                  strcmp(lst_str_field(json_object_array_get_idx(groups, 0), "id"), group_id) == 0,
              "%.600s", resp.body);
    lst_resp_free(&resp);
    /* Someone else's view of that profile (the admin's) has no payments member at all. */
    lst_stack_api_ok(&st, &resp, ADMIN, "GET", path, NULL, 200, 200);
    cr_expect_null(lst_field(resp.json, "payments"), "payments shown to another person: %.400s", resp.body);
    lst_resp_free(&resp);
    usleep(300 * 1000);
    cr_expect_eq(member_count(group_path), 1, "the second delivery added the payer again");
    expect_only_payment(OTHER, other_payment, "pending");

    /* Refunds are the admins': a student's is 403 and changes nothing. */
    snprintf(path, sizeof(path), "/api/payments/%s/refund", payment_id);
    lst_stack_api(&st, &resp, STUDENT, "POST", path, NULL);
    lst_expect_problem(&resp, 403, NULL);
    lst_resp_free(&resp);
    cr_expect_eq(bot_calls(M_REFUND), 0);
    expect_only_payment(STUDENT, payment_id, "completed");

    lst_stack_api_ok(&st, &resp, ADMIN, "POST", path, NULL, 200, 200);
    cr_expect_str_eq(lst_str_field(lst_field(resp.json, "payment"), "status"), "refunded");
    lst_resp_free(&resp);
    cr_assert_eq(bot_calls(M_REFUND), 1);
    json_object *refund = bot_last(M_REFUND);
    cr_expect_eq(json_object_get_int64(lst_field(refund, "user_id")), STUDENT);
    cr_expect_str_eq(lst_str_field(refund, "telegram_payment_charge_id"), CHARGE_ID);
    json_object_put(refund);
    expect_only_payment(STUDENT, payment_id, "refunded");
    cr_expect_eq(wait_members(group_path, 0), 0, "the refunded payer is still a member");
}

Test(payflow, while_payment_service_is_down_the_profile_is_partial_and_the_webhook_asks_telegram_to_retry)
{
    char path[64], update[1024];
    lst_resp_t resp;

    sign_in(STUDENT);
    lst_daemon_expect_clean_stop(&st.services[LST_PAYMENT].daemon);

    snprintf(path, sizeof(path), "/api/user/profile/%d", STUDENT);
    lst_stack_api_ok(&st, &resp, STUDENT, "GET", path, NULL, 200, 200);
    cr_expect(json_object_get_boolean(lst_field(resp.json, "partial")), "%.400s", resp.body);
    json_object *pays = NULL;
    cr_expect(json_object_object_get_ex(resp.json, "payments", &pays) && pays == NULL,
              "payments is not null: %.400s", resp.body);
    json_object *errors = lst_field(resp.json, "errors");
    cr_assert(errors != NULL && json_object_array_length(errors) == 1, "%.400s", resp.body);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(errors, 0), "service"), "payment");
    char *partial = lst_resp_header(&resp, "x-partial");
    cr_expect(partial != NULL && strcmp(partial, "true") == 0);
    free(partial);
    lst_resp_free(&resp);

    successful_payment(update, sizeof(update), STUDENT, "any-payload");
    webhook(&resp, secret_line, update);
    lst_expect_problem(&resp, 503, "payment");
    lst_resp_free(&resp);
}
