/*
 * The bot's webhook and the payment routes at the BFF's own edge (issue 16), on a lone bff whose
 * PAYMENT_URL (and AUTH_URL, for a caller's role) is a fake service of this file that records every
 * request it gets: the secret is required and compared whole (401, and nothing passed on, whatever
 * else the request carries), the webhook is off without the setting (404), bodies are checked (400,
 * 413), payment-service's answers and failures become what Telegram must see (its 200 passed on; 503,
 * 504, 502 so that Telegram delivers the update again), a secret Telegram would refuse stops the bff at
 * start, the secret is never logged, and the three payment routes pass the caller (and for a refund
 * the caller's role) on. The flow through the real services is itest_payflow.c's.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake_upstream.h"
#include "harness.h"
#include "stack.h"
#include "tma.h"

#define STR_(x)  #x
#define STR(x)   STR_(x)
#define SECRET   "webhook-Secret_0123456789abcdefXYZ"
#define ADMIN    1000
#define STUDENT  602
#define GROUP_ID "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define PAYMENT  "0b9e8d7c-6b5a-4f3e-9d2c-1b0a9f8e7d6c"
#define MAX_SEEN 32
#define DEADLINE 800
#define MAX_BODY 4096
#define UPDATE                                                                                               \
    "{\"update_id\":7,\"message\":{\"message_id\":1,\"date\":1,\"chat\":{\"id\":1,\"type\":\"private\"}}}"

/* ---- a fake payment-service (and auth-service, for a caller's role) that records what reaches it ---- */

enum { PAY_ANSWER, PAY_FAIL, PAY_BAD_UPDATE, PAY_REFUSE, PAY_HANG };

typedef struct {
    char method[8], path[160], query[96], body[512], authorization[96], actor[24], role[16];
} seen_t;

static struct {
    pthread_mutex_t lock;
    int mode;
    size_t n; /* requests to payment-service's routes */
    seen_t seen[MAX_SEEN];
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void copy_header(char *out, size_t size, const lst_upstream_req_t *req, const char *name)
{
    const char *v = lst_upstream_req_header(req, name);
    snprintf(out, size, "%s", v != NULL ? v : "");
}

static void problem(lst_upstream_resp_t *resp, int status, const char *detail)
{
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "{\"type\":\"about:blank\",\"title\":\"T\",\"status\":%d,\"detail\":\"%s\"}", status,
                     detail);
    lst_upstream_respond(resp, status, "application/problem+json", body, (size_t)n);
}

static int fake_handler(void *ud, lst_upstream_t *u, const lst_upstream_req_t *req, lst_upstream_resp_t *resp)
{
    (void)ud;
    long long id;
    char tail;
    /* auth-service's GET /users/{id}: the caller's role for a refund */
    if (sscanf(req->path, "/users/%lld%c", &id, &tail) == 1) {
        lst_upstream_respondf(resp, 200, "{\"telegram_id\":%lld,\"role\":\"%s\"}", id,
                              id == ADMIN ? "admin" : "student");
        return 1;
    }
    pthread_mutex_lock(&fake.lock);
    int mode = fake.mode;
    if (fake.n < MAX_SEEN) {
        seen_t *s = &fake.seen[fake.n];
        snprintf(s->method, sizeof(s->method), "%s", req->method);
        snprintf(s->path, sizeof(s->path), "%s", req->path);
        snprintf(s->query, sizeof(s->query), "%s", req->query);
        snprintf(s->body, sizeof(s->body), "%s", req->body);
        copy_header(s->authorization, sizeof(s->authorization), req, "authorization");
        copy_header(s->actor, sizeof(s->actor), req, "x-actor-telegram-id");
        copy_header(s->role, sizeof(s->role), req, "x-actor-role");
    }
    fake.n++;
    pthread_mutex_unlock(&fake.lock);

    if (mode == PAY_HANG)
        lst_upstream_sleep_ms(u, 5000);
    if (mode == PAY_FAIL)
        lst_upstream_respondf(resp, 500, "{\"status\":500,\"detail\":\"boom\"}");
    else if (mode == PAY_BAD_UPDATE)
        problem(resp, 400, "update_id must be an integer");
    else if (mode == PAY_REFUSE)
        problem(resp, 401, "missing or wrong internal token");
    else if (strcmp(req->path, "/telegram/updates") == 0)
        lst_upstream_respondf(resp, 200, "{\"handled\":\"ignored\"}");
    else
        lst_upstream_respondf(resp, strcmp(req->method, "GET") == 0 ? 200 : 201, "{\"path\":\"%s\"}",
                              req->path);
    return 1;
}

static size_t fake_count(void)
{
    pthread_mutex_lock(&fake.lock);
    size_t n = fake.n;
    pthread_mutex_unlock(&fake.lock);
    return n;
}

/* A copy of what the i-th request to payment-service carried. */
static seen_t fake_seen(size_t i)
{
    pthread_mutex_lock(&fake.lock);
    cr_assert_lt(i, fake.n < MAX_SEEN ? fake.n : MAX_SEEN, "payment-service got only %zu requests", fake.n);
    seen_t s = fake.seen[i];
    pthread_mutex_unlock(&fake.lock);
    return s;
}

/* ---- the lone bff ---- */

static lst_upstream_t *up;
static lst_daemon_t bff;
static char *token;
static unsigned char tma_key[TMA_KEY_BYTES];

/* The bff in front of the fake; secret: TELEGRAM_WEBHOOK_SECRET, or NULL for none. */
static int start_lone_bff(const char *secret, int must_start)
{
    char env_token[128], env_secret[400], urls[7][80];
    static const char *const names[7] = {"AUTH_URL",     "TEACHERS_URL",     "STUDENTS_URL", "GROUPS_URL",
                                         "CALENDAR_URL", "NOTIFICATION_URL", "PAYMENT_URL"};
    const char *env[24];
    size_t n = 0;
    int dead = lst_free_port();

    for (int i = 0; i < 7; i++) {
        if (i == 0 || i == 6)
            snprintf(urls[i], sizeof(urls[i]), "%s=%s", names[i], lst_upstream_url(up));
        else
            snprintf(urls[i], sizeof(urls[i]), "%s=http://127.0.0.1:%d", names[i], dead);
        env[n++] = urls[i];
    }
    snprintf(env_token, sizeof(env_token), "INTERNAL_TOKEN=%s", token);
    env[n++] = env_token;
    if (secret != NULL) {
        snprintf(env_secret, sizeof(env_secret), "TELEGRAM_WEBHOOK_SECRET=%s", secret);
        env[n++] = env_secret;
    }
    env[n++] = "BOT_TOKEN=" LST_STACK_BOT_TOKEN;
    env[n++] = "THREADS=1";
    env[n++] = "LOG_LEVEL=debug";
    env[n++] = "MAX_BODY_BYTES=" STR(MAX_BODY);
    env[n++] = "BFF_DEADLINE_MS=" STR(DEADLINE);
    env[n++] = "BREAKER_FAILURES=1000";
    env[n] = NULL;
    if (must_start) {
        lst_daemon_start(&bff, "bff/bff", env);
        return 0;
    }
    return lst_daemon_try_start(&bff, "bff/bff", env);
}

static void lone_setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    tma_derive_key(LST_STACK_BOT_TOKEN, tma_key);
    token = lst_random_hex(24);
    up = lst_upstream_start();
    cr_assert_not_null(up);
    lst_upstream_set_handler(up, fake_handler, NULL);
    fake.mode = PAY_ANSWER;
    fake.n = 0;
    bff.pid = 0;
}

static void lone_teardown(void)
{
    if (bff.pid > 0)
        cr_expect_eq(lst_daemon_stop(&bff), 0, "bff did not exit cleanly; see %s", bff.log_path);
    lst_upstream_stop(up);
    free(token);
}

TestSuite(webhook, .init = lone_setup, .fini = lone_teardown, .timeout = 120);

/* POST /telegram/webhook with these header lines (NULL-terminated, may be NULL) and body. */
static int webhook(lst_resp_t *resp, const lst_daemon_t *d, const char *const *headers, const char *body)
{
    char url[128];
    const char *h[8];
    size_t n = 0;
    h[n++] = "Content-Type: application/json";
    for (size_t i = 0; headers != NULL && headers[i] != NULL && n < 7; i++)
        h[n++] = headers[i];
    h[n] = NULL;
    snprintf(url, sizeof(url), "%s/telegram/webhook", d->base_url);
    return lst_http(resp, "POST", url, h, body);
}

static const char *const with_secret[] = {"X-Telegram-Bot-Api-Secret-Token: " SECRET, NULL};

/* "Authorization: tma <initData>" of the Mini App for `as`, signed now. */
static void sign(char *out, size_t size, long long as)
{
    char user[128], date[24], data[TMA_MAX_LEN + 1];
    snprintf(user, sizeof(user), "{\"id\":%lld,\"first_name\":\"U\"}", as);
    snprintf(date, sizeof(date), "%lld", (long long)time(NULL));
    tma_pair_t pairs[] = {{"auth_date", date}, {"user", user}};
    cr_assert_gt(tma_sign(tma_key, pairs, 2, data, sizeof(data)), 0);
    snprintf(out, size, "Authorization: tma %s", data);
}

/* A request to the lone bff signed for `as`. */
static int lone_api(lst_resp_t *resp, long long as, const char *method, const char *path, const char *body)
{
    char auth[TMA_MAX_LEN + 64], url[256];
    sign(auth, sizeof(auth), as);
    const char *h[] = {auth, NULL};
    snprintf(url, sizeof(url), "%s%s", bff.base_url, path);
    return lst_http(resp, method, url, h, body);
}

Test(webhook, an_update_with_the_secret_goes_to_payment_service_and_its_answer_comes_back)
{
    lst_resp_t resp;
    char bearer[96];

    start_lone_bff(SECRET, 1);
    webhook(&resp, &bff, with_secret, UPDATE);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "handled"), "ignored");
    lst_resp_free(&resp);

    cr_assert_eq(fake_count(), 1);
    seen_t s = fake_seen(0);
    snprintf(bearer, sizeof(bearer), "Bearer %s", token);
    cr_expect_str_eq(s.method, "POST");
    cr_expect_str_eq(s.path, "/telegram/updates");
    cr_expect_str_eq(s.body, UPDATE, "the update was not passed on as Telegram sent it");
    cr_expect_str_eq(s.authorization, bearer, "not sent with the internal token");
    cr_expect_str_eq(s.actor, "", "the webhook has no caller, but an actor was sent: %s", s.actor);

    /* The header's name is case-insensitive, as every HTTP header's. */
    const char *lower[] = {"x-telegram-bot-api-secret-token: " SECRET, NULL};
    webhook(&resp, &bff, lower, UPDATE);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
    cr_expect_eq(fake_count(), 2);
}

Test(webhook, without_the_secret_it_is_401_and_nothing_is_passed_on)
{
    lst_resp_t resp;
    char tma_auth[TMA_MAX_LEN + 64];

    start_lone_bff(SECRET, 1);
    /* The secret with one character changed, cut short, made longer, in another case, or empty; a
     * valid init data of the Mini App is no key to this route either. */
    char changed[] = "X-Telegram-Bot-Api-Secret-Token: " SECRET;
    changed[strlen(changed) - 1] = 'z';
    char shorter[] = "X-Telegram-Bot-Api-Secret-Token: " SECRET;
    shorter[strlen(shorter) - 1] = '\0';
    char upper[] = "X-Telegram-Bot-Api-Secret-Token: WEBHOOK-SECRET_0123456789ABCDEFXYZ";
    sign(tma_auth, sizeof(tma_auth), STUDENT);

    const char *const forged[][3] = {
        {NULL},           {changed, NULL},
        {shorter, NULL},  {"X-Telegram-Bot-Api-Secret-Token: " SECRET "0", NULL},
        {upper, NULL},    {"X-Telegram-Bot-Api-Secret-Token: ", NULL},
        {tma_auth, NULL}, {"Authorization: Bearer x", "X-Telegram-Bot-Api-Secret: " SECRET, NULL},
    };
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        webhook(&resp, &bff, forged[i], UPDATE);
        lst_expect_problem(&resp, 401, "X-Telegram-Bot-Api-Secret-Token");
        lst_resp_free(&resp);
    }
    cr_expect_eq(fake_count(), 0, "a forged update reached payment-service");

    /* The secret is never written to the log. */
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "grep -c -- '%s' '%s'", SECRET, bff.log_path);
    FILE *p = popen(cmd, "r");
    int hits = -1;
    cr_assert_not_null(p);
    cr_expect_eq(fscanf(p, "%d", &hits), 1);
    pclose(p);
    cr_expect_eq(hits, 0, "the webhook's secret is in the log %s", bff.log_path);
}

Test(webhook, is_off_without_the_setting)
{
    lst_resp_t resp;
    start_lone_bff(NULL, 1);
    webhook(&resp, &bff, with_secret, UPDATE);
    lst_expect_problem(&resp, 404, "TELEGRAM_WEBHOOK_SECRET");
    lst_resp_free(&resp);
    webhook(&resp, &bff, NULL, UPDATE);
    lst_expect_problem(&resp, 404, "TELEGRAM_WEBHOOK_SECRET");
    lst_resp_free(&resp);
    cr_expect_eq(fake_count(), 0);
}

Test(webhook, takes_one_json_object_within_the_body_limit)
{
    lst_resp_t resp;
    static const char *const bad[] = {"", "not json", "[1,2]", "{\"update_id\":1", "{} {}", "17"};
    start_lone_bff(SECRET, 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        webhook(&resp, &bff, with_secret, bad[i]);
        lst_expect_problem(&resp, 400, NULL);
        lst_resp_free(&resp);
    }
    char *big = malloc(MAX_BODY + 64);
    cr_assert_not_null(big);
    int o = snprintf(big, MAX_BODY + 64, "{\"update_id\":1,\"pad\":\"");
    memset(big + o, 'x', MAX_BODY);
    strcpy(big + MAX_BODY, "\"}");
    webhook(&resp, &bff, with_secret, big);
    lst_expect_problem(&resp, 413, NULL);
    lst_resp_free(&resp);
    free(big);
    cr_expect_eq(fake_count(), 0, "a body the bff refused reached payment-service");
}

Test(webhook, tells_telegram_to_deliver_again_while_payment_service_cannot_take_the_update)
{
    lst_resp_t resp;
    start_lone_bff(SECRET, 1);

    fake.mode = PAY_FAIL; /* its 5xx */
    webhook(&resp, &bff, with_secret, UPDATE);
    lst_expect_problem(&resp, 502, "payment");
    lst_resp_free(&resp);

    fake.mode = PAY_REFUSE; /* another refusal: its token is not the bff's */
    webhook(&resp, &bff, with_secret, UPDATE);
    lst_expect_problem(&resp, 502, "internal token");
    lst_resp_free(&resp);

    fake.mode = PAY_HANG; /* too slow for the deadline */
    webhook(&resp, &bff, with_secret, UPDATE);
    lst_expect_problem(&resp, 504, NULL);
    cr_expect_lt(resp.seconds, 3.0, "the webhook waited %.1f s", resp.seconds);
    lst_resp_free(&resp);

    fake.mode = PAY_BAD_UPDATE; /* an update it cannot read: no use sending it again */
    webhook(&resp, &bff, with_secret, UPDATE);
    lst_expect_problem(&resp, 400, "update_id must be an integer");
    lst_resp_free(&resp);

    /* unreachable */
    lst_upstream_stop(up);
    up = NULL;
    webhook(&resp, &bff, with_secret, UPDATE);
    lst_expect_problem(&resp, 503, NULL);
    lst_resp_free(&resp);
    up = lst_upstream_start(); /* for the teardown */
}

Test(webhook, a_secret_telegram_would_refuse_stops_the_bff)
{
    static const char *const bad[] = {"short-secret", "has space in it 0123456789",
                                      "dots.are.not.allowed.here"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(start_lone_bff(bad[i], 0), -1, "the bff started with TELEGRAM_WEBHOOK_SECRET=%s",
                     bad[i]);
        if (bff.pid > 0)
            lst_daemon_stop(&bff);
    }
    char *long_secret = malloc(300);
    cr_assert_not_null(long_secret);
    memset(long_secret, 'a', 257);
    long_secret[257] = '\0';
    cr_expect_eq(start_lone_bff(long_secret, 0), -1, "the bff started with a secret of 257 characters");
    if (bff.pid > 0)
        lst_daemon_stop(&bff);
    long_secret[256] = '\0';
    cr_expect_eq(start_lone_bff(long_secret, 0), 0, "the bff refused a secret of 256 characters");
    free(long_secret);
}

Test(webhook, the_payment_routes_pass_the_caller_on)
{
    lst_resp_t resp;
    start_lone_bff(NULL, 1);

    lone_api(&resp, STUDENT, "POST", "/api/groups/" GROUP_ID "/checkout", NULL);
    cr_expect_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);
    lone_api(&resp, STUDENT, "GET", "/api/payments?limit=5&offset=10", NULL);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
    lone_api(&resp, ADMIN, "POST", "/api/payments/" PAYMENT "/refund", NULL);
    cr_expect_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);
    lone_api(&resp, STUDENT, "POST", "/api/payments/" PAYMENT "/refund", NULL);
    lst_resp_free(&resp);

    cr_assert_eq(fake_count(), 4);
    seen_t s = fake_seen(0);
    cr_expect_str_eq(s.path, "/groups/" GROUP_ID "/checkout");
    cr_expect_str_eq(s.actor, STR(STUDENT));
    s = fake_seen(1);
    cr_expect_str_eq(s.path, "/users/" STR(STUDENT) "/payments",
                     "only the caller's own payments are asked for");
    cr_expect_str_eq(s.query, "limit=5&offset=10");
    s = fake_seen(2);
    cr_expect_str_eq(s.path, "/payments/" PAYMENT "/refund");
    cr_expect_str_eq(s.actor, STR(ADMIN));
    cr_expect_str_eq(s.role, "admin", "payment-service is not told that the caller is an admin");
    s = fake_seen(3);
    cr_expect_str_eq(s.role, "student");
}
