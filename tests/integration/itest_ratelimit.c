/*
 * The BFF's rate limits and replay window (README "Rate limits and the replay window"), against the
 * real bff with one worker thread (one set of buckets) in front of a fake upstream that answers every
 * service's call with 200. Requests are signed in-process as Telegram would sign them.
 */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fake_upstream.h"
#include "harness.h"
#include "tma.h"

#define BOT_TOKEN "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
#define READ      "/api/notifications/unread_count"
#define WRITE     "/api/notifications/read_all"

static lst_upstream_t *fake;
static char *token;
static unsigned char tma_key[TMA_KEY_BYTES];
static lst_daemon_t bff;

static int answer_ok(void *ud, lst_upstream_t *u, const lst_upstream_req_t *req, lst_upstream_resp_t *resp)
{
    (void)ud, (void)u, (void)req;
    lst_upstream_respondf(resp, 200, "{\"unread\":0}");
    return 1;
}

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    tma_derive_key(BOT_TOKEN, tma_key);
    token = lst_random_hex(24);
    fake = lst_upstream_start();
    cr_assert_not_null(fake);
    lst_upstream_set_handler(fake, answer_ok, NULL);
    memset(&bff, 0, sizeof(bff));
}

static void teardown(void)
{
    lst_daemon_expect_clean_stop(&bff);
    lst_upstream_stop(fake);
    free(token);
}

TestSuite(ratelimit, .init = setup, .fini = teardown, .timeout = 120);

/* The bff on one worker, every service at the fake, with the given settings (NULL-terminated). */
static void start_bff(lst_daemon_t *d, const char *const *settings)
{
    static const char *const names[] = {"AUTH_URL",   "TEACHERS_URL", "STUDENTS_URL",
                                        "GROUPS_URL", "CALENDAR_URL", "NOTIFICATION_URL"};
    char urls[6][128], tok[128];
    const char *env[32];
    size_t n = 0;
    for (int i = 0; i < 6; i++) {
        snprintf(urls[i], sizeof(urls[i]), "%s=%s", names[i], lst_upstream_url(fake));
        env[n++] = urls[i];
    }
    snprintf(tok, sizeof(tok), "INTERNAL_TOKEN=%s", token);
    env[n++] = tok;
    env[n++] = "BOT_TOKEN=" BOT_TOKEN;
    env[n++] = "THREADS=1";
    env[n++] = "LOG_LEVEL=info";
    for (size_t i = 0; settings[i] != NULL; i++)
        env[n++] = settings[i];
    env[n] = NULL;
    cr_assert_lt(n, sizeof(env) / sizeof(env[0]));
    lst_daemon_start(d, "bff/bff", env);
}

/* "Authorization: tma …" for user id, signed `age` seconds ago. */
static void sign(char *out, size_t size, long long id, long long age)
{
    char user[128], date[24], data[TMA_MAX_LEN + 1];
    snprintf(user, sizeof(user), "{\"id\":%lld,\"first_name\":\"User%lld\"}", id, id);
    snprintf(date, sizeof(date), "%lld", (long long)time(NULL) - age);
    tma_pair_t pairs[] = {{"auth_date", date}, {"user", user}};
    cr_assert_gt(tma_sign(tma_key, pairs, 2, data, sizeof(data)), 0);
    snprintf(out, size, "Authorization: tma %s", data);
}

/* One request to d as user id (0: with forged init data), with an extra header (or NULL); its
 * status. A 429 must be problem+json with a whole-second Retry-After; *retry gets it (else 0). */
static int call(lst_daemon_t *d, const char *method, const char *path, long long id, const char *extra,
                int *retry)
{
    char auth[TMA_MAX_LEN + 64], url[256];
    if (id > 0)
        sign(auth, sizeof(auth), id, 0);
    else
        snprintf(auth, sizeof(auth), "Authorization: tma auth_date=1&user=%%7B%%7D&hash=%064d", 0);
    const char *headers[] = {auth, extra, NULL};
    snprintf(url, sizeof(url), "%s%s", d->base_url, path);
    lst_resp_t resp;
    int status = lst_http(&resp, method, url, headers, NULL);
    if (retry != NULL)
        *retry = 0;
    if (status == 429) {
        lst_expect_problem(&resp, 429, "retry in");
        char *h = lst_resp_header(&resp, "retry-after");
        cr_expect(h != NULL && atoi(h) >= 1 && strspn(h, "0123456789") == strlen(h), "Retry-After: %s",
                  h ? h : "absent");
        if (retry != NULL && h != NULL)
            *retry = atoi(h);
        free(h);
    }
    lst_resp_free(&resp);
    return status;
}

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/*
 * Sends `n` requests in a row; returns how many were refused (429). Expects the first `burst` to pass
 * (want) and no more to pass than the burst plus what `rate` a second refilled meanwhile.
 */
static int burst_of(const char *method, const char *path, long long id, int n, int burst, int rate, int want)
{
    int passed = 0, refused = 0, retry;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        int status = call(&bff, method, path, id, NULL, &retry);
        if (i < burst)
            cr_expect_eq(status, want, "request %d of the burst: %d", i + 1, status);
        if (status == 429) {
            refused++;
            cr_expect_eq(retry, 1, "at %d/s a token is never more than a second away", rate);
        } else {
            cr_expect_eq(status, want, "request %d: %d", i + 1, status);
            passed++;
        }
    }
    double took = now_s() - t0;
    cr_expect_leq(passed, burst + (int)(took * rate) + 1, "%d passed in %.2f s", passed, took);
    return refused;
}

static double limited(const char *scope, const char *kind)
{
    char series[128];
    snprintf(series, sizeof(series), "ls_bff_rate_limited_total{scope=\"%s\",kind=\"%s\"}", scope, kind);
    return lst_metric(bff.base_url, token, series);
}

Test(ratelimit, a_persons_burst_is_cut_with_429_and_the_bucket_refills)
{
    const char *settings[] = {"RATE_READ_PER_S=1", "RATE_READ_BURST=5", "RATE_WRITE_PER_S=1",
                              "RATE_WRITE_BURST=3", NULL};
    start_bff(&bff, settings);

    int reads = burst_of("GET", READ, 501, 15, 5, 1, 200);
    cr_expect_gt(reads, 0, "15 reads in a row at 1/s with a burst of 5: some must be refused");
    /* Someone else, and the same person's writes, have buckets of their own. */
    cr_expect_eq(call(&bff, "GET", READ, 502, NULL, NULL), 200);
    int writes = burst_of("POST", WRITE, 501, 13, 3, 1, 200);
    cr_expect_gt(writes, 0);
    cr_expect_eq(call(&bff, "POST", WRITE, 502, NULL, NULL), 200);

    /* After Retry-After, the bucket has a token again. */
    usleep(1100 * 1000);
    cr_expect_eq(call(&bff, "GET", READ, 501, NULL, NULL), 200, "the read bucket did not refill");
    cr_expect_eq(call(&bff, "POST", WRITE, 501, NULL, NULL), 200, "the write bucket did not refill");

    /* Counted, by scope and kind; the limits do not touch the built-in routes. */
    cr_expect_eq(limited("user", "read"), reads);
    cr_expect_eq(limited("user", "write"), writes);
    cr_expect_eq(limited("addr", "read"), 0);
    for (int i = 0; i < 20; i++) {
        char url[256];
        lst_resp_t resp;
        snprintf(url, sizeof(url), "%s/healthz", bff.base_url);
        cr_expect_eq(lst_http(&resp, "GET", url, NULL, NULL), 200);
        lst_resp_free(&resp);
    }
}

Test(ratelimit, the_address_limit_comes_before_the_signature_check)
{
    const char *settings[] = {"RATE_ADDR_PER_S=1", "RATE_ADDR_BURST=4", NULL};
    start_bff(&bff, settings);
    /* Forged init data costs a token each: once they are gone it is refused unchecked. */
    int statuses[12], refused = 0;
    for (int i = 0; i < 12; i++) {
        statuses[i] = call(&bff, "GET", READ, 0, NULL, NULL);
        refused += statuses[i] == 429;
    }
    for (int i = 0; i < 4; i++)
        cr_expect_eq(statuses[i], 401, "forged init data %d: %d", i + 1, statuses[i]);
    cr_expect_gt(refused, 0);
    /* The address is limited whoever signs, and X-Forwarded-For from a caller that is not a trusted
     * proxy changes nothing (were it believed, each of these would have a full bucket of its own). */
    int spoofed = 0;
    for (int i = 0; i < 5; i++) {
        char xff[64];
        snprintf(xff, sizeof(xff), "X-Forwarded-For: 198.51.100.%d", 10 + i);
        spoofed += call(&bff, "GET", READ, 601, xff, NULL) == 429;
    }
    cr_expect_gt(spoofed, 0);
    cr_expect_eq(limited("addr", "read"), refused + spoofed);
    cr_expect_eq(limited("user", "read"), 0);
    char url[256];
    lst_resp_t resp;
    snprintf(url, sizeof(url), "%s/healthz", bff.base_url);
    cr_expect_eq(lst_http(&resp, "GET", url, NULL, NULL), 200, "/healthz is never limited");
    lst_resp_free(&resp);
    usleep(1100 * 1000);
    cr_expect_eq(call(&bff, "GET", READ, 601, NULL, NULL), 200, "the address bucket did not refill");
}

Test(ratelimit, behind_a_trusted_proxy_the_forwarded_address_is_the_client)
{
    const char *settings[] = {"RATE_ADDR_PER_S=1", "RATE_ADDR_BURST=2", "TRUSTED_PROXY=10.0.0.0/8, 127.0.0.1",
                              NULL};
    start_bff(&bff, settings);
    const char *a = "X-Forwarded-For: 203.0.113.5, 10.1.2.3";
    const char *b = "X-Forwarded-For: 203.0.113.6";
    int refused = 0;
    for (int i = 0; i < 6; i++)
        refused += call(&bff, "GET", READ, 701, a, NULL) == 429;
    cr_expect_gt(refused, 0);
    /* Another client behind the same proxy has its own bucket; so has the proxy itself. */
    cr_expect_eq(call(&bff, "GET", READ, 701, b, NULL), 200);
    cr_expect_eq(call(&bff, "GET", READ, 701, NULL, NULL), 200);
}

Test(ratelimit, a_bad_trusted_proxy_stops_start_up)
{
    lst_daemon_t d;
    const char *env[8] = {"BOT_TOKEN=" BOT_TOKEN, "LOG_LEVEL=info", "TRUSTED_PROXY=10.0.0.0/33", NULL};
    char tok[128];
    snprintf(tok, sizeof(tok), "INTERNAL_TOKEN=%s", token);
    env[3] = tok;
    cr_expect_eq(lst_daemon_try_start(&d, "bff/bff", env), -1);
    json_object *lines = lst_log_lines(&d, (const char *const[]){"TRUSTED_PROXY", NULL});
    cr_expect_gt(json_object_array_length(lines), 0, "the log names the setting; see %s", d.log_path);
    json_object_put(lines);
}

/* ---- the replay window ---- */

static int signed_call(const char *method, const char *path, long long id, long long age)
{
    char auth[TMA_MAX_LEN + 64], url[256];
    sign(auth, sizeof(auth), id, age);
    const char *headers[] = {auth, NULL};
    snprintf(url, sizeof(url), "%s%s", bff.base_url, path);
    lst_resp_t resp;
    int status = lst_http(&resp, method, url, headers, NULL);
    if (status == 401)
        lst_expect_problem(&resp, 401, "expired");
    lst_resp_free(&resp);
    return status;
}

Test(ratelimit, writes_need_younger_init_data_than_reads)
{
    const char *settings[] = {NULL}; /* the defaults: a day for reads, an hour for writes */
    start_bff(&bff, settings);
    cr_expect_eq(signed_call("GET", READ, 801, 2 * 3600), 200, "a read with 2 h old init data");
    cr_expect_eq(signed_call("POST", WRITE, 801, 2 * 3600), 401, "a write with 2 h old init data");
    cr_expect_eq(signed_call("POST", "/api/auth/telegram", 801, 2 * 3600), 401, "a sign-in is a write");
    cr_expect_eq(signed_call("POST", WRITE, 801, 30 * 60), 200, "a write with 30 min old init data");
    cr_expect_eq(signed_call("GET", READ, 801, 2 * 86400), 401, "a read with 2 days old init data");
}

Test(ratelimit, the_write_window_is_a_setting_at_most_the_read_one)
{
    const char *settings[] = {"INIT_DATA_MAX_AGE=600", "INIT_DATA_MAX_AGE_WRITE=60", NULL};
    start_bff(&bff, settings);
    cr_expect_eq(signed_call("GET", READ, 802, 300), 200);
    cr_expect_eq(signed_call("POST", WRITE, 802, 300), 401);
    cr_expect_eq(signed_call("POST", WRITE, 802, 30), 200);
    cr_expect_eq(signed_call("GET", READ, 802, 900), 401);

    /* A write window longer than the read one is refused at start. */
    char tok[128];
    snprintf(tok, sizeof(tok), "INTERNAL_TOKEN=%s", token);
    const char *env[] = {
        tok, "BOT_TOKEN=" BOT_TOKEN, "LOG_LEVEL=info", "INIT_DATA_MAX_AGE=600", "INIT_DATA_MAX_AGE_WRITE=601",
        NULL};
    lst_daemon_t d;
    cr_expect_eq(lst_daemon_try_start(&d, "bff/bff", env), -1);
    json_object *lines = lst_log_lines(&d, (const char *const[]){"INIT_DATA_MAX_AGE_WRITE", NULL});
    cr_expect_gt(json_object_array_length(lines), 0, "the log names the setting; see %s", d.log_path);
    json_object_put(lines);
}
