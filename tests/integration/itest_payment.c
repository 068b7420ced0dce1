/*
 * payment-service end to end (issue 16): the whole system (stack.h) on the test cluster, with
 * payment-service's TELEGRAM_API_URL pointed at an in-process fake Bot API that records every call
 * (createInvoiceLink, answerPreCheckoutQuery, refundStarPayment) and answers as Telegram does. The
 * updates Telegram would send to the BFF's webhook are posted to payment-service's
 * /telegram/updates as the BFF forwards them; groups-service and students-service are the real
 * ones, so a seat, a membership and an enrollment are what a user would find.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_upstream.h"
#include "stack.h"

#define TEACHER 6100
#define PRICE   250

static lst_stack_t st;
static lst_upstream_t *bot_api;

/* ---- the fake Bot API ---- */

#define MAX_BOT_CALLS 64

static struct {
    pthread_mutex_t lock;
    int calls;
    char method[MAX_BOT_CALLS][32];
    char body[MAX_BOT_CALLS][1024];
    int refuse_refunds; /* answer refundStarPayment with an error */
    int links;
} bot = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int bot_handler(void *ud, lst_upstream_t *u, const lst_upstream_req_t *req, lst_upstream_resp_t *resp)
{
    (void)ud;
    (void)u;
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "/bot%s/", LST_STACK_BOT_TOKEN);
    if (strncmp(req->path, prefix, strlen(prefix)) != 0 || strcmp(req->method, "POST") != 0) {
        lst_upstream_respondf(resp, 404, "{\"ok\":false,\"error_code\":404,\"description\":\"Not Found\"}");
        return 1;
    }
    const char *method = req->path + strlen(prefix);
    pthread_mutex_lock(&bot.lock);
    int i = bot.calls < MAX_BOT_CALLS ? bot.calls : MAX_BOT_CALLS - 1;
    bot.calls++;
    snprintf(bot.method[i], sizeof(bot.method[i]), "%s", method);
    snprintf(bot.body[i], sizeof(bot.body[i]), "%s", req->body);
    int refuse = bot.refuse_refunds, link = ++bot.links;
    pthread_mutex_unlock(&bot.lock);
    if (strcmp(method, "createInvoiceLink") == 0)
        lst_upstream_respondf(resp, 200, "{\"ok\":true,\"result\":\"https://t.me/$invoice%d\"}", link);
    else if (strcmp(method, "refundStarPayment") == 0 && refuse)
        lst_upstream_respondf(resp, 400,
                              "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: "
                              "REFUND_FAILED\"}");
    else
        lst_upstream_respondf(resp, 200, "{\"ok\":true,\"result\":true}");
    return 1;
}

/* How many calls of method (NULL: any) the fake has seen. */
static int bot_count(const char *method)
{
    pthread_mutex_lock(&bot.lock);
    int n = 0;
    for (int i = 0; i < bot.calls && i < MAX_BOT_CALLS; i++)
        n += method == NULL || strcmp(bot.method[i], method) == 0;
    pthread_mutex_unlock(&bot.lock);
    return n;
}

/* The body of the last call of method, parsed (the caller puts it), or NULL. */
static json_object *bot_last(const char *method)
{
    json_object *out = NULL;
    pthread_mutex_lock(&bot.lock);
    for (int i = (bot.calls < MAX_BOT_CALLS ? bot.calls : MAX_BOT_CALLS) - 1; i >= 0 && out == NULL; i--)
        if (strcmp(bot.method[i], method) == 0)
            out = json_tokener_parse(bot.body[i]);
    pthread_mutex_unlock(&bot.lock);
    return out;
}

static void setup(void)
{
    memset(bot.method, 0, sizeof(bot.method));
    bot.calls = 0;
    bot.links = 0;
    bot.refuse_refunds = 0;
    bot_api = lst_upstream_start();
    cr_assert_not_null(bot_api);
    lst_upstream_set_handler(bot_api, bot_handler, NULL);
    lst_stack_start_with(&st, NULL, lst_upstream_url(bot_api));
}

static void teardown(void)
{
    lst_stack_stop(&st);
    lst_upstream_stop(bot_api);
}

TestSuite(payment, .init = setup, .fini = teardown, .timeout = 240);

/* ---- helpers ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int svc_call(int svc, lst_resp_t *resp, const char *method, const char *path, const char *body,
                    long long actor, const char *role)
{
    char who[24];
    snprintf(who, sizeof(who), "%lld", actor);
    return lst_call_as(resp, st.services[svc].daemon.base_url, st.services[svc].token, method, path, body,
                       actor > 0 ? who : NULL, role);
}

static long long sql_num(int svc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static long long sql_num(int svc, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    char *v = lst_pg_admin_exec(st.services[svc].dbname, sql);
    long long n = atoll(v);
    free(v);
    return n;
}

/* A group of TEACHER's: paid at PRICE Stars unless price is 0; returns its id (malloc'ed). */
static char *make_group(int capacity, int price)
{
    char body[512];
    if (price > 0)
        snprintf(
            body, sizeof(body),
            "{\"title\":\"Paid English\",\"description\":\"Evening conversation\",\"language_code\":\"en\","
            "\"level\":\"B1\",\"capacity\":%d,\"is_free\":false,\"price\":%d}",
            capacity, price);
    else
        snprintf(body, sizeof(body),
                 "{\"title\":\"Free English\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":%d}",
                 capacity);
    lst_resp_t resp;
    svc_call(LST_GROUPS, &resp, "POST", "/groups", body, TEACHER, "teacher");
    cr_assert_eq(resp.status, 201, "POST /groups: %d %.300s", resp.status, resp.body);
    char *id = strdup(lst_str_field(resp.json, "id"));
    lst_resp_free(&resp);
    return id;
}

static char *make_invite(const char *group)
{
    char path[128];
    snprintf(path, sizeof(path), "/groups/%s/invitations", group);
    lst_resp_t resp;
    svc_call(LST_GROUPS, &resp, "POST", path, NULL, TEACHER, "teacher");
    cr_assert_eq(resp.status, 201, "POST %s: %d %.300s", path, resp.status, resp.body);
    char *code = strdup(lst_str_field(resp.json, "code"));
    lst_resp_free(&resp);
    return code;
}

static int join(const char *code, long long who, lst_resp_t *resp)
{
    char path[128];
    snprintf(path, sizeof(path), "/join/%s", code);
    return svc_call(LST_GROUPS, resp, "POST", path, NULL, who, "student");
}

static int checkout(const char *group, long long payer, lst_resp_t *resp)
{
    char path[128];
    snprintf(path, sizeof(path), "/groups/%s/checkout", group);
    return svc_call(LST_PAYMENT, resp, "POST", path, NULL, payer, "student");
}

/* Checks out (201) and returns the payment id and the invoice's payload, as Telegram got it. */
static void checkout_ok(const char *group, long long payer, char id[40], char payload[160])
{
    lst_resp_t resp;
    checkout(group, payer, &resp);
    cr_assert(resp.status == 201 || resp.status == 200, "checkout: %d %.300s", resp.status, resp.body);
    snprintf(id, 40, "%s", lst_str_field(resp.json, "payment_id"));
    lst_resp_free(&resp);
    json_object *inv = bot_last("createInvoiceLink");
    cr_assert_not_null(inv);
    snprintf(payload, 160, "%s", lst_str_field(inv, "payload"));
    json_object_put(inv);
}

static int update(const char *json, lst_resp_t *resp)
{
    return svc_call(LST_PAYMENT, resp, "POST", "/telegram/updates", json, 0, NULL);
}

static void pre_checkout(long long from, const char *payload, int amount, const char *query_id)
{
    char body[1024];
    snprintf(
        body, sizeof(body),
        "{\"update_id\":1,\"pre_checkout_query\":{\"id\":\"%s\",\"from\":{\"id\":%lld,\"is_bot\":false,"
        "\"first_name\":\"Payer\"},\"currency\":\"XTR\",\"total_amount\":%d,\"invoice_payload\":\"%s\"}}",
        query_id, from, amount, payload);
    lst_resp_t resp;
    update(body, &resp);
    cr_assert_eq(resp.status, 200, "pre_checkout_query: %d %.300s", resp.status, resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "handled"), "pre_checkout_query");
    lst_resp_free(&resp);
}

static void paid(long long from, const char *payload, const char *charge)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"update_id\":2,\"message\":{\"message_id\":9,\"date\":1700000000,\"from\":{\"id\":%lld,"
             "\"is_bot\":false,\"first_name\":\"Payer\"},\"chat\":{\"id\":%lld,\"type\":\"private\"},"
             "\"successful_payment\":{\"currency\":\"XTR\",\"total_amount\":%d,\"invoice_payload\":\"%s\","
             "\"telegram_payment_charge_id\":\"%s\",\"provider_payment_charge_id\":\"\"}}}",
             from, from, PRICE, payload, charge);
    lst_resp_t resp;
    update(body, &resp);
    cr_assert_eq(resp.status, 200, "successful_payment: %d %.300s", resp.status, resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "handled"), "successful_payment");
    lst_resp_free(&resp);
}

/* The last answerPreCheckoutQuery: its ok, and its error_message into msg. */
static int last_answer(char *msg, size_t size)
{
    json_object *a = bot_last("answerPreCheckoutQuery");
    cr_assert_not_null(a, "answerPreCheckoutQuery was not called");
    int ok = json_object_get_boolean(lst_field(a, "ok"));
    const char *m = lst_str_field(a, "error_message");
    snprintf(msg, size, "%s", m != NULL ? m : "");
    json_object_put(a);
    return ok;
}

/* The payment's status as GET /payments/{id} answers it, into out. */
static void payment_status(const char *id, char *out, size_t size)
{
    char path[96];
    snprintf(path, sizeof(path), "/payments/%s", id);
    lst_resp_t resp;
    svc_call(LST_PAYMENT, &resp, "GET", path, NULL, 0, NULL);
    cr_assert_eq(resp.status, 200, "GET %s: %d %.300s", path, resp.status, resp.body);
    snprintf(out, size, "%s", lst_str_field(lst_field(resp.json, "payment"), "status"));
    lst_resp_free(&resp);
}

/* Waits up to 10 s for the payment's status to be want; returns 1 when it is. */
static int wait_status(const char *id, const char *want)
{
    char status[32];
    for (int i = 0; i < 200; i++, sleep_ms(50)) {
        payment_status(id, status, sizeof(status));
        if (strcmp(status, want) == 0)
            return 1;
    }
    return 0;
}

static int is_member(const char *group, long long who)
{
    char path[160];
    snprintf(path, sizeof(path), "/groups/%s?member_id=%lld", group, who);
    lst_resp_t resp;
    svc_call(LST_GROUPS, &resp, "GET", path, NULL, 0, NULL);
    cr_assert_eq(resp.status, 200, "GET %s: %d %.300s", path, resp.status, resp.body);
    int yes = json_object_get_boolean(lst_field(resp.json, "is_member"));
    lst_resp_free(&resp);
    return yes;
}

static int wait_member(const char *group, long long who, int want)
{
    for (int i = 0; i < 200; i++, sleep_ms(50))
        if (is_member(group, who) == want)
            return 1;
    return 0;
}

/* The student's enrollment in group: its status and payment_id (empty when none), 1 when found. */
static int enrollment(long long who, const char *group, char *status, char *payment)
{
    char path[96];
    snprintf(path, sizeof(path), "/students/%lld/enrollments", who);
    lst_resp_t resp;
    svc_call(LST_STUDENTS, &resp, "GET", path, NULL, who, "student");
    cr_assert_eq(resp.status, 200, "GET %s: %d %.300s", path, resp.status, resp.body);
    json_object *list = lst_field(resp.json, "enrollments");
    int found = 0;
    for (size_t i = 0; list != NULL && i < json_object_array_length(list) && !found; i++) {
        json_object *e = json_object_array_get_idx(list, i);
        if (strcmp(lst_str_field(e, "group_id"), group) != 0)
            continue;
        found = 1;
        const char *p = lst_str_field(e, "payment_id");
        snprintf(status, 32, "%s", lst_str_field(e, "status"));
        snprintf(payment, 40, "%s", p != NULL ? p : "");
    }
    lst_resp_free(&resp);
    return found;
}

static int wait_enrollment(long long who, const char *group, const char *want_status, char payment[40])
{
    char status[32] = "";
    for (int i = 0; i < 200; i++, sleep_ms(50))
        if (enrollment(who, group, status, payment) && strcmp(status, want_status) == 0)
            return 1;
    return 0;
}

/* Checkout, pre-checkout, successful payment: the payer of group ends up a member. */
static void buy_seat(const char *group, long long payer, char id[40], const char *charge)
{
    char payload[160], msg[256];
    checkout_ok(group, payer, id, payload);
    pre_checkout(payer, payload, PRICE, "q-buy");
    cr_assert(last_answer(msg, sizeof(msg)), "pre-checkout refused: %s", msg);
    paid(payer, payload, charge);
    cr_assert(wait_status(id, "completed"));
    cr_assert(wait_member(group, payer, 1), "%lld is not a member of %s after paying", payer, group);
}

/* ---- checkout ---- */

Test(payment, checkout_makes_a_pending_payment_with_an_invoice_link_and_reuses_it)
{
    char *group = make_group(10, PRICE);
    lst_resp_t resp;
    checkout(group, 6201, &resp);
    cr_assert_eq(resp.status, 201, "%d %.300s", resp.status, resp.body);
    char id[40], link[128];
    snprintf(id, sizeof(id), "%s", lst_str_field(resp.json, "payment_id"));
    snprintf(link, sizeof(link), "%s", lst_str_field(resp.json, "invoice_link"));
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "amount")), PRICE);
    cr_expect_str_eq(lst_str_field(resp.json, "currency"), "XTR");
    cr_expect(strncmp(link, "https://t.me/$", 14) == 0, "link %s", link);
    lst_resp_free(&resp);

    /* What Telegram was asked for: XTR, one price of the group's amount, the payload, no provider. */
    cr_assert_eq(bot_count("createInvoiceLink"), 1);
    json_object *inv = bot_last("createInvoiceLink");
    cr_expect_str_eq(lst_str_field(inv, "currency"), "XTR");
    cr_expect_str_eq(lst_str_field(inv, "title"), "Paid English");
    cr_expect_str_eq(lst_str_field(inv, "description"), "Evening conversation");
    json_object *prices = lst_field(inv, "prices");
    cr_assert_eq(json_object_array_length(prices), 1);
    cr_expect_eq(json_object_get_int(lst_field(json_object_array_get_idx(prices, 0), "amount")), PRICE);
    const char *payload = lst_str_field(inv, "payload");
    cr_expect(payload != NULL && strlen(payload) >= 16);
    cr_expect_null(lst_field(inv, "provider_token"));
    json_object_put(inv);

    /* A second checkout reuses the pending payment and its link: no second invoice. */
    checkout(group, 6201, &resp);
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "payment_id"), id);
    cr_expect_str_eq(lst_str_field(resp.json, "invoice_link"), link);
    lst_resp_free(&resp);
    cr_expect_eq(bot_count("createInvoiceLink"), 1);

    /* The payer's list shows it, pending; another person may not read it. */
    svc_call(LST_PAYMENT, &resp, "GET", "/users/6201/payments", NULL, 6201, "student");
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    json_object *list = lst_field(resp.json, "payments");
    cr_assert_eq(json_object_array_length(list), 1);
    json_object *p = json_object_array_get_idx(list, 0);
    cr_expect_str_eq(lst_str_field(p, "id"), id);
    cr_expect_str_eq(lst_str_field(p, "status"), "pending");
    cr_expect_str_eq(lst_str_field(p, "group_id"), group);
    cr_expect_eq(json_object_get_int(lst_field(p, "amount")), PRICE);
    cr_expect_null(lst_field(p, "invoice_payload"), "the payload is not part of the answer");
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "limit")), 20);
    lst_resp_free(&resp);
    svc_call(LST_PAYMENT, &resp, "GET", "/users/6201/payments", NULL, 6202, "student");
    lst_expect_problem(&resp, 403, NULL);
    lst_resp_free(&resp);
    cr_expect_eq(sql_num(LST_PAYMENT, "SELECT count(*) FROM audit_log WHERE action = 'payment.create'"), 1);
    free(group);
}

Test(payment, checkout_refuses_free_archived_full_groups_and_members)
{
    lst_resp_t resp;
    char *free_group = make_group(10, 0);
    checkout(free_group, 6301, &resp);
    lst_expect_problem(&resp, 409, "is free");
    lst_resp_free(&resp);

    char *archived = make_group(10, PRICE), path[128];
    snprintf(path, sizeof(path), "/groups/%s", archived);
    svc_call(LST_GROUPS, &resp, "PATCH", path, "{\"status\":\"archived\"}", TEACHER, "teacher");
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    checkout(archived, 6301, &resp);
    lst_expect_problem(&resp, 409, "archived");
    lst_resp_free(&resp);

    /* A group of one that filled up while it was free, then became paid: full, and its member may
     * not buy a seat either. */
    char *full = make_group(1, 0), *code = make_invite(full);
    cr_assert_eq(join(code, 6302, &resp), 201, "%.300s", resp.body);
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/groups/%s", full);
    svc_call(LST_GROUPS, &resp, "PATCH", path, "{\"is_free\":false,\"price\":100}", TEACHER, "teacher");
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    checkout(full, 6301, &resp);
    lst_expect_problem(&resp, 409, "full");
    lst_resp_free(&resp);
    checkout(full, 6302, &resp);
    lst_expect_problem(&resp, 409, "already a member");
    lst_resp_free(&resp);

    checkout("00000000-0000-4000-8000-000000000000", 6301, &resp);
    lst_expect_problem(&resp, 404, NULL);
    lst_resp_free(&resp);
    cr_expect_eq(bot_count(NULL), 0, "the Bot API was called for a refused checkout");
    cr_expect_eq(sql_num(LST_PAYMENT, "SELECT count(*) FROM payments"), 0);
    free(free_group);
    free(archived);
    free(full);
    free(code);
}

Test(payment, checkout_without_the_bot_api_is_503)
{
    /* A second payment-service on its own database, without TELEGRAM_API_URL and BOT_TOKEN. */
    lst_service_t bare = {0};
    char groups_url[96];
    snprintf(groups_url, sizeof(groups_url), "GROUPS_URL=%s", st.services[LST_GROUPS].daemon.base_url);
    const char *env[] = {groups_url, "THREADS=1", NULL};
    lst_service_start(&bare, "services/payment/payment-service", "payment", env);
    char *group = make_group(10, PRICE), path[128];
    snprintf(path, sizeof(path), "/groups/%s/checkout", group);
    lst_call_expect_problem(bare.daemon.base_url, bare.token, "POST", path, NULL, "6401", 503,
                            "payments are not configured");
    lst_service_destroy(&bare);
    free(group);
}

/* ---- pre-checkout ---- */

Test(payment, pre_checkout_is_answered_ok_or_with_the_reason)
{
    char *group = make_group(10, PRICE), id[40], payload[160], msg[256], status[32];
    checkout_ok(group, 6501, id, payload);

    pre_checkout(6501, payload, PRICE, "q-ok");
    cr_expect(last_answer(msg, sizeof(msg)), "refused: %s", msg);
    json_object *a = bot_last("answerPreCheckoutQuery");
    cr_expect_str_eq(lst_str_field(a, "pre_checkout_query_id"), "q-ok");
    json_object_put(a);

    pre_checkout(6501, payload, PRICE + 1, "q-amount");
    cr_expect_not(last_answer(msg, sizeof(msg)));
    cr_expect(strstr(msg, "price") != NULL, "message: %s", msg);

    pre_checkout(6502, payload, PRICE, "q-payer");
    cr_expect_not(last_answer(msg, sizeof(msg)));
    cr_expect(strstr(msg, "another user") != NULL, "message: %s", msg);

    pre_checkout(6501, "no-such-payload", PRICE, "q-unknown");
    cr_expect_not(last_answer(msg, sizeof(msg)));

    /* None of these changed the payment. */
    payment_status(id, status, sizeof(status));
    cr_expect_str_eq(status, "pending");
    cr_expect_eq(bot_count("answerPreCheckoutQuery"), 4);

    /* A malformed update is 400; one of another kind is acknowledged and ignored. */
    lst_resp_t resp;
    update("[1,2]", &resp);
    lst_expect_problem(&resp, 400, NULL);
    lst_resp_free(&resp);
    update("{\"update_id\":3,\"pre_checkout_query\":{\"id\":\"q\"}}", &resp);
    lst_expect_problem(&resp, 400, "pre_checkout_query");
    lst_resp_free(&resp);
    update("{\"update_id\":4,\"message\":{\"message_id\":1,\"text\":\"hello\"}}", &resp);
    cr_expect_eq(resp.status, 200);
    cr_expect_str_eq(lst_str_field(resp.json, "handled"), "ignored");
    lst_resp_free(&resp);
    free(group);
}

Test(payment, pre_checkout_for_a_full_group_is_refused)
{
    char *group = make_group(1, PRICE), id[40], payload[160], msg[256], other[40];
    checkout_ok(group, 6601, id, payload);
    /* Someone else buys the only seat meanwhile. */
    buy_seat(group, 6602, other, "charge-6602");

    pre_checkout(6601, payload, PRICE, "q-full");
    cr_expect_not(last_answer(msg, sizeof(msg)));
    cr_expect(strstr(msg, "full") != NULL, "message: %s", msg);
    cr_expect(wait_status(id, "failed"));
    cr_expect_not(is_member(group, 6601));
    free(group);
}

/* ---- successful payment ---- */

Test(payment, successful_payment_completes_once_and_seats_the_payer)
{
    char *group = make_group(10, PRICE), id[40], payment[40] = "";
    buy_seat(group, 6701, id, "charge-6701");

    /* The enrollment names the payment. */
    cr_expect(wait_enrollment(6701, group, "enrolled", payment));
    cr_expect_str_eq(payment, id);
    char path[96];
    snprintf(path, sizeof(path), "/payments/%s", id);
    lst_resp_t resp;
    svc_call(LST_PAYMENT, &resp, "GET", path, NULL, 6701, "student");
    json_object *p = lst_field(resp.json, "payment");
    cr_expect_str_eq(lst_str_field(p, "telegram_payment_charge_id"), "charge-6701");
    cr_expect_not_null(lst_str_field(p, "completed_at"));
    lst_resp_free(&resp);

    /* Telegram sends the same update again: nothing changes — one member, one seat step. */
    json_object *inv = bot_last("createInvoiceLink");
    char payload[160];
    snprintf(payload, sizeof(payload), "%s", lst_str_field(inv, "payload"));
    json_object_put(inv);
    paid(6701, payload, "charge-6701");
    sleep_ms(500);
    cr_expect_eq(sql_num(LST_PAYMENT, "SELECT count(*) FROM outbox"), 1);
    cr_expect_eq(sql_num(LST_PAYMENT, "SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL"), 1);
    cr_expect_eq(sql_num(LST_PAYMENT, "SELECT count(*) FROM audit_log WHERE action = 'payment.complete'"), 1);
    cr_expect_eq(sql_num(LST_GROUPS, "SELECT count(*) FROM group_members WHERE group_id = '%s'", group), 1);
    cr_expect_eq(sql_num(LST_GROUPS,
                         "SELECT count(*) FROM group_members WHERE group_id = '%s' AND payment_id = '%s'",
                         group, id),
                 1);
    cr_expect_eq(
        sql_num(LST_GROUPS, "SELECT count(*) FROM outbox WHERE path LIKE '%%/enrollments/%s'", group), 1);
    cr_expect_eq(bot_count("refundStarPayment"), 0);
    free(group);
}

/* ---- refunds ---- */

Test(payment, refund_by_an_admin_takes_the_member_out)
{
    char *group = make_group(10, PRICE), id[40], payment[40], path[96];
    buy_seat(group, 6801, id, "charge-6801");
    cr_assert(wait_enrollment(6801, group, "enrolled", payment));

    snprintf(path, sizeof(path), "/payments/%s/refund", id);
    lst_resp_t resp;
    svc_call(LST_PAYMENT, &resp, "POST", path, NULL, 6801, "student");
    lst_expect_problem(&resp, 403, "admin");
    lst_resp_free(&resp);
    cr_expect_eq(bot_count("refundStarPayment"), 0);

    svc_call(LST_PAYMENT, &resp, "POST", path, NULL, LST_STACK_ADMIN_ID, "admin");
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    cr_expect_str_eq(lst_str_field(lst_field(resp.json, "payment"), "status"), "refunded");
    cr_expect_not_null(lst_str_field(lst_field(resp.json, "payment"), "refunded_at"));
    lst_resp_free(&resp);
    cr_assert_eq(bot_count("refundStarPayment"), 1);
    json_object *call = bot_last("refundStarPayment");
    cr_expect_eq(json_object_get_int64(lst_field(call, "user_id")), 6801);
    cr_expect_str_eq(lst_str_field(call, "telegram_payment_charge_id"), "charge-6801");
    json_object_put(call);

    /* The member leaves; the enrollment stays and says why. */
    cr_expect(wait_member(group, 6801, 0));
    cr_expect(wait_enrollment(6801, group, "refunded", payment));
    cr_expect_str_eq(payment, id);

    /* Again: nothing to refund. */
    svc_call(LST_PAYMENT, &resp, "POST", path, NULL, LST_STACK_ADMIN_ID, "admin");
    lst_expect_problem(&resp, 409, NULL);
    lst_resp_free(&resp);
    cr_expect_eq(bot_count("refundStarPayment"), 1);
    free(group);
}

Test(payment, a_refund_the_bot_api_refuses_changes_nothing)
{
    char *group = make_group(10, PRICE), id[40], path[96], status[32];
    buy_seat(group, 6851, id, "charge-6851");
    pthread_mutex_lock(&bot.lock);
    bot.refuse_refunds = 1;
    pthread_mutex_unlock(&bot.lock);
    snprintf(path, sizeof(path), "/payments/%s/refund", id);
    lst_resp_t resp;
    svc_call(LST_PAYMENT, &resp, "POST", path, NULL, LST_STACK_ADMIN_ID, "admin");
    lst_expect_problem(&resp, 502, "REFUND_FAILED");
    lst_resp_free(&resp);
    payment_status(id, status, sizeof(status));
    cr_expect_str_eq(status, "completed");
    cr_expect(is_member(group, 6851));
    free(group);
}

/* ---- joining a paid group by invitation code ---- */

Test(payment, join_by_code_of_a_paid_group_needs_a_paid_seat)
{
    char *group = make_group(10, PRICE), *code = make_invite(group), id[40], want[128];
    lst_resp_t resp;
    join(code, 6901, &resp);
    lst_expect_problem(&resp, 402, "/checkout");
    snprintf(want, sizeof(want), "/api/groups/%s/checkout", group);
    cr_expect_str_eq(lst_str_field(resp.json, "checkout"), want);
    lst_resp_free(&resp);
    cr_expect_not(is_member(group, 6901));

    /* Paid, left, back by code: the seat still holds. */
    buy_seat(group, 6901, id, "charge-6901");
    char path[128];
    snprintf(path, sizeof(path), "/groups/%s/members/6901", group);
    svc_call(LST_GROUPS, &resp, "DELETE", path, NULL, 6901, "student");
    cr_assert_eq(resp.status, 204, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    cr_assert_eq(join(code, 6901, &resp), 201, "%.300s", resp.body);
    lst_resp_free(&resp);
    cr_expect(is_member(group, 6901));
    free(group);
    free(code);
}

/* ---- the last seat ---- */

typedef struct {
    long long payer;
    const char *payload;
    char charge[32];
} racer_t;

static void *pay_now(void *arg)
{
    racer_t *p = arg;
    paid(p->payer, p->payload, p->charge);
    return NULL;
}

Test(payment, two_payers_of_the_last_seat_one_member_the_other_refunded)
{
    char *group = make_group(1, PRICE), id_a[40], id_b[40], payload_a[160], payload_b[160], msg[256];
    checkout_ok(group, 7001, id_a, payload_a);
    checkout_ok(group, 7002, id_b, payload_b);
    /* Both pass pre-checkout: the seat is free for each of them at that moment. */
    pre_checkout(7001, payload_a, PRICE, "q-a");
    cr_assert(last_answer(msg, sizeof(msg)), "%s", msg);
    pre_checkout(7002, payload_b, PRICE, "q-b");
    cr_assert(last_answer(msg, sizeof(msg)), "%s", msg);

    racer_t a = {7001, payload_a, "charge-a"}, b = {7002, payload_b, "charge-b"};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, pay_now, &a);
    pthread_create(&tb, NULL, pay_now, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);

    /* One of them holds the seat; the other's payment is refunded by itself. */
    int refunded = 0;
    char sa[32] = "", sb[32] = "";
    for (int i = 0; i < 200 && !refunded; i++, sleep_ms(50)) {
        payment_status(id_a, sa, sizeof(sa));
        payment_status(id_b, sb, sizeof(sb));
        refunded = strcmp(sa, "refunded") == 0 || strcmp(sb, "refunded") == 0;
    }
    cr_assert(refunded, "no payment was refunded: %s / %s", sa, sb);
    int a_won = strcmp(sb, "refunded") == 0;
    cr_expect_str_eq(a_won ? sa : sb, "completed");
    cr_expect(wait_member(group, a_won ? 7001 : 7002, 1));
    cr_expect_not(is_member(group, a_won ? 7002 : 7001));
    cr_expect_eq(sql_num(LST_GROUPS, "SELECT count(*) FROM group_members WHERE group_id = '%s'", group), 1);
    cr_expect_eq(bot_count("refundStarPayment"), 1);
    json_object *call = bot_last("refundStarPayment");
    cr_expect_eq(json_object_get_int64(lst_field(call, "user_id")), a_won ? 7002 : 7001);
    cr_expect_str_eq(lst_str_field(call, "telegram_payment_charge_id"), a_won ? "charge-b" : "charge-a");
    json_object_put(call);
    free(group);
}
