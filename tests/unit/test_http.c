/*
 * The internal HTTP client against the fake upstream: headers passed on, concurrency, keep-alive,
 * deadlines, retries (and when not to retry), transport failures, size limits, and the callback
 * contract (exactly once, never synchronous, also on destroy). Upstreams on Unix sockets are reached
 * through a relay that accepts on a Unix socket and forwards each connection to the fake upstream.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "fake_upstream.h"
#include "http.h"
#include "log.h"
#include "loop.h"

static ls_loop_t *loop;
static ls_http_t *http;
static lst_upstream_t *up;
static int in_send; /* set around ls_http_send to catch synchronous callbacks */

typedef struct {
    int calls;
    int sync_calls;
    ls_http_outcome_t outcome;
    int status;
    int attempts;
    uint64_t duration_ms;
    char *body;
    size_t body_len;
    char *content_type;
    char *error;
} result_t;

static void result_free(result_t *r)
{
    free(r->body);
    free(r->content_type);
    free(r->error);
    memset(r, 0, sizeof(*r));
}

static void on_done(void *ud, const ls_http_response_t *resp)
{
    result_t *r = ud;
    r->calls++;
    if (in_send)
        r->sync_calls++;
    free(r->body);
    free(r->content_type);
    free(r->error);
    r->outcome = resp->outcome;
    r->status = resp->status;
    r->attempts = resp->attempts;
    r->duration_ms = resp->duration_ms;
    cr_assert_not_null(resp->body, "body is never NULL");
    cr_assert_eq(resp->body[resp->body_len], '\0', "body is NUL-terminated");
    r->body = malloc(resp->body_len + 1);
    memcpy(r->body, resp->body, resp->body_len + 1);
    r->body_len = resp->body_len;
    r->content_type = resp->content_type ? strdup(resp->content_type) : NULL;
    r->error = resp->error ? strdup(resp->error) : NULL;
}

static ls_http_t *make_client(int max_attempts, int retry_base_ms, size_t max_bytes)
{
    ls_http_config_t cfg = {
        .internal_token = "sekret-token",
        .max_attempts = max_attempts,
        .retry_base_ms = retry_base_ms,
        .max_response_bytes = max_bytes,
    };
    ls_http_t *h = ls_http_create(loop, &cfg);
    cr_assert_not_null(h);
    return h;
}

static void setup(void)
{
    ls_log_init("test_http", LS_LOG_ERROR);
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    loop = ls_loop_create();
    cr_assert_not_null(loop);
    up = lst_upstream_start();
    cr_assert_not_null(up);
    http = make_client(3, 10, 0);
}

static void teardown(void)
{
    ls_http_destroy(http);
    http = NULL;
    /* let h2o free the sockets closed above */
    for (int i = 0; i < 3; i++)
        ls_loop_run_once(loop, 0);
    cr_expect_eq(ls_loop_timer_count(loop), 0, "no timer left armed");
    ls_loop_destroy(loop);
    lst_upstream_stop(up);
    curl_global_cleanup();
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 60);

static ls_http_request_t req_for(const char *method, const char *path, uint64_t budget_ms)
{
    return (ls_http_request_t){
        .target = "fake",
        .base_url = lst_upstream_url(up),
        .method = method,
        .path = path,
        .deadline = ls_now_ms() + budget_ms,
    };
}

static void send_ok(ls_http_t *h, const ls_http_request_t *req, result_t *r)
{
    in_send = 1;
    int rc = ls_http_send(h, req, on_done, r);
    in_send = 0;
    cr_assert_eq(rc, 0, "ls_http_send accepted the request");
    cr_assert_eq(r->calls, 0, "callback not called from inside ls_http_send");
}

/* Runs the loop until *count reaches want or limit_ms passes; returns elapsed ms. */
static uint64_t run_until_count(const int *count, int want, uint64_t limit_ms)
{
    uint64_t start = ls_now_ms(), limit = start + limit_ms;
    while (*count < want && ls_now_ms() < limit)
        ls_loop_run_once(loop, 50);
    return ls_now_ms() - start;
}

static uint64_t run_until_done(result_t *r, uint64_t limit_ms)
{
    uint64_t ms = run_until_count(&r->calls, 1, limit_ms);
    cr_assert_eq(r->calls, 1, "callback called exactly once (got %d)", r->calls);
    cr_assert_eq(r->sync_calls, 0);
    return ms;
}

static json_object *parse(const result_t *r)
{
    json_object *o = json_tokener_parse(r->body);
    cr_assert_not_null(o, "JSON body: %s", r->body);
    return o;
}

static const char *jstr(json_object *o, const char *k1, const char *k2)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, k1, &v))
        return NULL;
    if (k2 != NULL && !json_object_object_get_ex(v, k2, &v))
        return NULL;
    return json_object_get_string(v);
}

/* ---- round trips and headers ---- */

#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

Test(http, get_passes_headers_on)
{
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/echo?x=1", 5000);
    req.request_id = "rid-123";
    req.traceparent = TRACEPARENT;
    req.actor = 279058397;
    req.actor_role = "teacher";
    send_ok(http, &req, &r);
    cr_assert_eq(ls_http_inflight(http), 1);
    run_until_done(&r, 5000);
    cr_assert_eq(ls_http_inflight(http), 0);

    cr_assert_eq(r.outcome, LS_HTTP_OK, "error: %s", r.error ? r.error : "");
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.attempts, 1);
    cr_assert_null(r.error);
    cr_assert_str_eq(r.content_type, "application/json");
    json_object *o = parse(&r);
    cr_assert_str_eq(jstr(o, "method", NULL), "GET");
    cr_assert_str_eq(jstr(o, "path", NULL), "/echo");
    cr_assert_str_eq(jstr(o, "query", NULL), "x=1");
    cr_assert_str_eq(jstr(o, "headers", "authorization"), "Bearer sekret-token");
    cr_assert_str_eq(jstr(o, "headers", "x-request-id"), "rid-123");
    cr_assert_str_eq(jstr(o, "headers", "traceparent"), TRACEPARENT);
    cr_assert_str_eq(jstr(o, "headers", "x-actor-telegram-id"), "279058397");
    cr_assert_str_eq(jstr(o, "headers", "x-actor-role"), "teacher");
    const char *dl = jstr(o, "headers", "x-deadline-ms");
    cr_assert_not_null(dl);
    long left = strtol(dl, NULL, 10);
    cr_assert(left > 3000 && left <= 5000, "X-Deadline-Ms is the time left: %ld", left);
    cr_assert_null(jstr(o, "headers", "content-type"), "no Content-Type without a body");
    cr_assert_null(jstr(o, "headers", "idempotency-key"));
    cr_assert_null(jstr(o, "headers", "expect"));
    cr_assert_null(jstr(o, "headers", "accept"), "no Accept on internal calls");
    json_object_put(o);

    char buf[64];
    cr_assert_eq(lst_upstream_last_header(up, "X-Request-Id", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "rid-123");
    result_free(&r);
}

Test(http, external_client_sends_no_internal_headers)
{
    ls_http_config_t cfg = {.external = 1};
    ls_http_t *ext = ls_http_create(loop, &cfg);
    cr_assert_not_null(ext);
    result_t r = {0};
    ls_http_request_t req = req_for("POST", "/echo", 5000);
    req.request_id = "rid-ext";
    req.traceparent = TRACEPARENT;
    req.actor = 42;
    req.actor_role = "admin";
    req.idempotency_key = "key-1";
    req.body = "{}";
    req.body_len = 2;
    send_ok(ext, &req, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.status, 200);
    json_object *o = parse(&r);
    static const char *const internal[] = {"authorization", "x-request-id",  "x-actor-telegram-id",
                                           "x-actor-role",  "x-deadline-ms", "idempotency-key",
                                           "traceparent"};
    for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++)
        cr_expect_null(jstr(o, "headers", internal[i]), "%s sent outside the system", internal[i]);
    cr_expect_str_eq(jstr(o, "headers", "content-type"), "application/json");
    cr_expect_str_eq(jstr(o, "headers", "accept"), "*/*", "the external client keeps curl's defaults");
    json_object_put(o);
    result_free(&r);
    ls_http_destroy(ext);
}

Test(http, post_body_and_idempotency_key)
{
    static const char body[] = "{\"name\":\"Ann\",\"n\":[1,2,3]}";
    result_t r = {0};
    ls_http_request_t req = req_for("POST", "/echo", 5000);
    req.body = body;
    req.body_len = sizeof(body) - 1;
    req.idempotency_key = "idem-7";
    req.request_id = "rid-post";
    send_ok(http, &req, &r);
    run_until_done(&r, 5000);

    cr_assert_eq(r.outcome, LS_HTTP_OK);
    cr_assert_eq(r.status, 200);
    json_object *o = parse(&r);
    cr_assert_str_eq(jstr(o, "method", NULL), "POST");
    cr_assert_str_eq(jstr(o, "body", NULL), body);
    cr_assert_str_eq(jstr(o, "headers", "content-type"), "application/json");
    cr_assert_str_eq(jstr(o, "headers", "idempotency-key"), "idem-7");
    cr_assert_str_eq(jstr(o, "headers", "authorization"), "Bearer sekret-token");
    cr_assert_null(jstr(o, "headers", "x-actor-telegram-id"), "actor 0 is not sent");
    cr_assert_null(jstr(o, "headers", "expect"), "no 100-continue handshake");
    json_object_put(o);
    result_free(&r);
}

Test(http, other_methods_on_a_reused_handle)
{
    /* One after the other so that the same pooled easy handle carries every method. */
    static const struct {
        const char *method;
        const char *body;
    } cases[] = {
        {"POST", "{\"a\":1}"},  {"GET", NULL},  {"PUT", "{\"b\":2}"}, {"DELETE", NULL},
        {"PATCH", "{\"c\":3}"}, {"HEAD", NULL}, {"GET", NULL},        {"POST", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        result_t r = {0};
        ls_http_request_t req = req_for(cases[i].method, "/echo", 5000);
        req.body = cases[i].body;
        req.body_len = cases[i].body ? strlen(cases[i].body) : 0;
        send_ok(http, &req, &r);
        run_until_done(&r, 5000);
        cr_assert_eq(r.outcome, LS_HTTP_OK, "%s: %s", cases[i].method, r.error ? r.error : "");
        cr_assert_eq(r.status, 200);
        if (strcmp(cases[i].method, "HEAD") == 0) {
            cr_assert_eq(r.body_len, 0, "HEAD has no body");
        } else {
            json_object *o = parse(&r);
            cr_assert_str_eq(jstr(o, "method", NULL), cases[i].method);
            cr_assert_str_eq(jstr(o, "body", NULL), cases[i].body ? cases[i].body : "", "%s",
                             cases[i].method);
            const char *ct = jstr(o, "headers", "content-type");
            if (cases[i].body)
                cr_assert_str_eq(ct, "application/json");
            else
                cr_assert_null(ct, "%s without body has no Content-Type", cases[i].method);
            json_object_put(o);
        }
        result_free(&r);
    }
    lst_upstream_stats_t st;
    lst_upstream_stats(up, &st);
    cr_assert_eq(st.connections, 1, "one kept-alive connection for all (got %ld)", st.connections);
}

static int custom_handler(void *ud, lst_upstream_t *u, const lst_upstream_req_t *req,
                          lst_upstream_resp_t *resp)
{
    if (strcmp(req->path, "/custom") != 0)
        return 0;
    lst_upstream_respond(resp, 201, "application/problem+json", "{\"x\":1}", 7);
    return 1;
}

Test(http, custom_responder_status_and_content_type)
{
    lst_upstream_set_handler(up, custom_handler, NULL);
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/custom", 5000);
    send_ok(http, &req, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.outcome, LS_HTTP_OK);
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(r.content_type, "application/problem+json");
    cr_assert_str_eq(r.body, "{\"x\":1}");
    result_free(&r);

    /* other paths still reach the built-ins; a 404 is an answer, not a failure */
    ls_http_request_t req2 = req_for("GET", "/nope", 5000);
    send_ok(http, &req2, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.outcome, LS_HTTP_OK);
    cr_assert_eq(r.status, 404);
    cr_assert_eq(r.attempts, 1);
    result_free(&r);
}

static int sum_handler(void *ud, lst_upstream_t *u, const lst_upstream_req_t *req, lst_upstream_resp_t *resp)
{
    if (strcmp(req->path, "/sum") != 0)
        return 0;
    unsigned long sum = 0;
    for (size_t i = 0; i < req->body_len; i++)
        sum = sum * 31 + (unsigned char)req->body[i];
    lst_upstream_respondf(resp, 200, "{\"len\":%zu,\"sum\":%lu}", req->body_len, sum);
    return 1;
}

Test(http, upload_larger_than_socket_buffers)
{
    /* Big enough that curl must wait for the socket to become writable again and again. */
    enum { LEN = 12 * 1024 * 1024 };
    char *body = malloc(LEN);
    unsigned long sum = 0;
    for (size_t i = 0; i < LEN; i++) {
        body[i] = (char)('a' + (i * 7) % 26);
        sum = sum * 31 + (unsigned char)body[i];
    }
    lst_upstream_set_handler(up, sum_handler, NULL);
    result_t r = {0};
    ls_http_request_t req = req_for("PUT", "/sum", 20000);
    req.body = body;
    req.body_len = LEN;
    send_ok(http, &req, &r);
    memset(body, 0, LEN); /* the client keeps its own copy */
    free(body);
    run_until_done(&r, 20000);
    cr_assert_eq(r.outcome, LS_HTTP_OK, "%s", r.error ? r.error : "");
    char want[96];
    snprintf(want, sizeof(want), "{\"len\":%d,\"sum\":%lu}", LEN, sum);
    cr_assert_str_eq(r.body, want);
    result_free(&r);
}

Test(http, each_call_is_logged_once)
{
    /* Log lines go to fd 1 with write(2): capture that fd in a temp file. */
    FILE *out = tmpfile();
    cr_assert_not_null(out);
    fflush(stdout);
    int saved = dup(1);
    cr_assert_eq(dup2(fileno(out), 1), 1);
    ls_log_init("test_http", LS_LOG_INFO);
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/fail?key=l&times=1&status=503", 5000);
    req.request_id = "rid-log";
    req.traceparent = TRACEPARENT;
    send_ok(http, &req, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.attempts, 2);
    result_free(&r);
    dup2(saved, 1);
    close(saved);
    ls_log_init("test_http", LS_LOG_ERROR);

    rewind(out);
    char line[LS_LOG_LINE_MAX + 1];
    int lines = 0;
    while (fgets(line, sizeof(line), out) != NULL) {
        if (strstr(line, "\"msg\":\"http call\"") == NULL)
            continue;
        lines++;
        cr_assert(strstr(line, "\"level\":\"info\""), "%s", line);
        cr_assert(
            strstr(line, "\"request_id\":\"rid-log\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""),
            "%s", line);
        cr_assert(strstr(line, "\"target\":\"fake\""), "%s", line);
        cr_assert(strstr(line, "\"method\":\"GET\""), "%s", line);
        cr_assert(strstr(line, "\"path\":\"/fail?key=l&times=1&status=503\""), "%s", line);
        cr_assert(strstr(line, "\"status\":200"), "%s", line);
        cr_assert(strstr(line, "\"attempt\":2"), "%s", line);
        cr_assert(strstr(line, "\"duration_ms\":"), "%s", line);
    }
    fclose(out);
    cr_assert_eq(lines, 1, "one line per call, not per attempt");
}

/* ---- concurrency and keep-alive ---- */

Test(http, concurrent_requests_run_at_once)
{
    enum { N = 50 };
    static result_t rs[N];
    uint64_t start = ls_now_ms();
    for (int i = 0; i < N; i++) {
        ls_http_request_t req = req_for("GET", "/sleep?ms=200", 10000);
        send_ok(http, &req, &rs[i]);
    }
    cr_assert_eq(ls_http_inflight(http), N);
    int done = 0;
    while (done < N && ls_now_ms() < start + 10000) {
        ls_loop_run_once(loop, 50);
        done = 0;
        for (int i = 0; i < N; i++)
            done += rs[i].calls;
    }
    uint64_t elapsed = ls_now_ms() - start;
    cr_assert_eq(done, N, "all %d completed (got %d)", N, done);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(rs[i].calls, 1);
        cr_assert_eq(rs[i].outcome, LS_HTTP_OK);
        cr_assert_eq(rs[i].status, 200);
        result_free(&rs[i]);
    }
    cr_assert(elapsed < 3000, "50 x 200 ms ran concurrently: %llu ms", (unsigned long long)elapsed);
    lst_upstream_stats_t st;
    lst_upstream_stats(up, &st);
    cr_assert(st.max_in_flight >= 10, "server saw many at once: %ld", st.max_in_flight);
    cr_assert_eq(ls_http_inflight(http), 0);
}

/* Rounds of `batch` (at most 16) concurrent GET /echo to base_url (NULL: the fake upstream), each
 * round waited for; every request must be answered 200. */
static void echo_batches(const char *base_url, int rounds, int batch)
{
    cr_assert(batch <= 16);
    for (int round = 0; round < rounds; round++) {
        result_t rs[16] = {{0}};
        for (int i = 0; i < batch; i++) {
            ls_http_request_t req = req_for("GET", "/echo", 5000);
            if (base_url != NULL)
                req.base_url = base_url;
            send_ok(http, &req, &rs[i]);
        }
        int done = 0;
        uint64_t limit = ls_now_ms() + 5000;
        while (done < batch && ls_now_ms() < limit) {
            ls_loop_run_once(loop, 50);
            done = 0;
            for (int i = 0; i < batch; i++)
                done += rs[i].calls;
        }
        cr_assert_eq(done, batch, "round %d", round);
        for (int i = 0; i < batch; i++) {
            cr_assert_eq(rs[i].status, 200);
            result_free(&rs[i]);
        }
    }
}

Test(http, keep_alive_reuses_connections)
{
    enum { ROUNDS = 20, BATCH = 10 };
    echo_batches(NULL, ROUNDS, BATCH);
    lst_upstream_stats_t st;
    lst_upstream_stats(up, &st);
    cr_assert_eq(st.requests, ROUNDS * BATCH);
    cr_assert(st.connections <= 2 * BATCH, "%ld connections for %d requests", st.connections, ROUNDS * BATCH);
}

/* A chain: each callback sends the next request (sending from inside a callback is allowed). */
typedef struct {
    int remaining;
    int completed;
    int failures;
    int sync_calls;
} chain_t;

static void chain_next(chain_t *ch);

static void on_chain(void *ud, const ls_http_response_t *resp)
{
    chain_t *ch = ud;
    if (in_send)
        ch->sync_calls++;
    ch->completed++;
    if (resp->outcome != LS_HTTP_OK || resp->status != 200)
        ch->failures++;
    if (ch->remaining > 0)
        chain_next(ch);
}

static void chain_next(chain_t *ch)
{
    ch->remaining--;
    ls_http_request_t req = req_for("GET", "/echo", 5000);
    in_send = 1;
    int rc = ls_http_send(http, &req, on_chain, ch);
    in_send = 0;
    cr_assert_eq(rc, 0);
}

Test(http, sequential_requests_share_one_connection)
{
    chain_t ch = {.remaining = 100};
    chain_next(&ch);
    run_until_count(&ch.completed, 100, 10000);
    cr_assert_eq(ch.completed, 100);
    cr_assert_eq(ch.failures, 0);
    cr_assert_eq(ch.sync_calls, 0);
    lst_upstream_stats_t st;
    lst_upstream_stats(up, &st);
    cr_assert(st.connections <= 2, "%ld connections for 100 sequential requests", st.connections);
}

/* ---- deadlines ---- */

Test(http, deadline_ends_a_slow_request)
{
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/sleep?ms=2000", 200);
    send_ok(http, &req, &r);
    uint64_t elapsed = run_until_done(&r, 5000);
    cr_assert_eq(r.outcome, LS_HTTP_TIMEOUT, "outcome %d (%s)", r.outcome, r.error ? r.error : "");
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(r.error);
    cr_assert(elapsed >= 150 && elapsed < 1200, "ended near the 200 ms deadline: %llu ms",
              (unsigned long long)elapsed);
    cr_assert(r.duration_ms >= 150 && r.duration_ms < 1200);
    result_free(&r);
}

Test(http, past_deadline_fails_later_without_sending)
{
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/echo", 0);
    req.deadline = ls_now_ms() > 1 ? ls_now_ms() - 1 : 1;
    send_ok(http, &req, &r);
    run_until_done(&r, 2000);
    cr_assert_eq(r.outcome, LS_HTTP_TIMEOUT);
    cr_assert_eq(r.attempts, 0);
    lst_upstream_stats_t st;
    lst_upstream_stats(up, &st);
    cr_assert_eq(st.requests, 0, "nothing was sent");
    result_free(&r);
}

/* ---- retries ---- */

/*
 * Sends method to /fail?key=<key>&<answers> (the fake answers the status named there as many times as
 * named, then 200), with a body "{}" unless it is a GET, the idempotency key (may be NULL) and the
 * `idempotent` mark. Expects an HTTP answer of status after attempts tries, every one of which reached
 * the fake.
 */
static void expect_retries_marked(const char *method, const char *key, const char *answers,
                                  const char *idempotency_key, int idempotent, int status, int attempts)
{
    char path[128];
    snprintf(path, sizeof(path), "/fail?key=%s&%s", key, answers);
    result_t r = {0};
    ls_http_request_t req = req_for(method, path, 5000);
    if (strcmp(method, "GET") != 0) {
        req.body = "{}";
        req.body_len = 2;
    }
    req.idempotency_key = idempotency_key;
    req.idempotent = idempotent;
    send_ok(http, &req, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.outcome, LS_HTTP_OK, "outcome %d (%s)", r.outcome, r.error ? r.error : "");
    cr_assert_eq(r.status, status, "%s %s", method, path);
    cr_assert_eq(r.attempts, attempts);
    cr_assert_eq(lst_upstream_fail_count(up, key), attempts);
    result_free(&r);
}

static void expect_retries(const char *method, const char *key, const char *answers,
                           const char *idempotency_key, int status, int attempts)
{
    expect_retries_marked(method, key, answers, idempotency_key, 0, status, attempts);
}

Test(http, get_is_retried_after_503)
{
    expect_retries("GET", "g", "times=2&status=503", NULL, 200, 3);
}

Test(http, retries_stop_at_max_attempts)
{
    /* The last answer is reported. */
    expect_retries("PUT", "m", "times=10&status=502", NULL, 502, 3);
}

Test(http, post_without_key_is_not_retried)
{
    expect_retries("POST", "p", "times=2&status=503", NULL, 503, 1);
}

Test(http, post_with_key_is_retried)
{
    expect_retries("POST", "pk", "times=2&status=504", "op-1", 200, 3);
    char key[32];
    cr_assert_eq(lst_upstream_last_header(up, "idempotency-key", key, sizeof(key)), 0);
    cr_assert_str_eq(key, "op-1", "the key is sent again on the retry");
}

Test(http, post_marked_idempotent_is_retried)
{
    /* A POST that only reads (the BFF's POST /batch), retried as a GET is, with no key to send. */
    expect_retries_marked("POST", "pi", "times=2&status=503", NULL, 1, 200, 3);
    char key[32];
    cr_assert_eq(lst_upstream_last_header(up, "idempotency-key", key, sizeof(key)), -1);
}

Test(http, other_statuses_are_not_retried)
{
    expect_retries("GET", "s", "times=2&status=500", NULL, 500, 1);
}

Test(http, no_retry_whose_backoff_ends_past_the_deadline)
{
    ls_http_t *slow = make_client(5, 2000, 0); /* first backoff at least 1000 ms */
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/fail?key=d&times=5&status=503", 1000);
    send_ok(slow, &req, &r);
    uint64_t elapsed = run_until_done(&r, 5000);
    cr_assert_eq(r.outcome, LS_HTTP_OK);
    cr_assert_eq(r.status, 503);
    cr_assert_eq(r.attempts, 1);
    cr_assert(elapsed < 950, "completed at once instead of waiting: %llu ms", (unsigned long long)elapsed);
    ls_http_destroy(slow);
    result_free(&r);
}

/* ---- transport failures ---- */

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd); /* bound but never listening: connecting is refused */
    return ntohs(sa.sin_port);
}

Test(http, connection_refused_is_retried_then_reported)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed_port());
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/echo", 3000);
    req.base_url = url;
    send_ok(http, &req, &r);
    uint64_t elapsed = run_until_done(&r, 5000);
    cr_assert_eq(r.outcome, LS_HTTP_CONNECT_ERROR, "outcome %d (%s)", r.outcome, r.error ? r.error : "");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(r.attempts, 3);
    cr_assert_not_null(r.error);
    cr_assert(elapsed < 3000, "within the deadline: %llu ms", (unsigned long long)elapsed);
    result_free(&r);
}

Test(http, dropped_connection_is_a_connect_error)
{
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/drop", 3000);
    send_ok(http, &req, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.outcome, LS_HTTP_CONNECT_ERROR, "outcome %d (%s)", r.outcome, r.error ? r.error : "");
    cr_assert_eq(r.attempts, 3, "GET is retried");
    result_free(&r);

    ls_http_request_t post = req_for("POST", "/drop", 3000);
    send_ok(http, &post, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.outcome, LS_HTTP_CONNECT_ERROR);
    cr_assert_eq(r.attempts, 1, "POST without a key is not");
    result_free(&r);
}

Test(http, upstream_gone_after_keep_alive)
{
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/echo", 3000);
    send_ok(http, &req, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.status, 200);
    result_free(&r);

    /* The parked keep-alive connection dies with the server; the port then refuses. */
    char url[64];
    snprintf(url, sizeof(url), "%s", lst_upstream_url(up));
    lst_upstream_stop(up);
    up = lst_upstream_start();
    cr_assert_not_null(up);
    req = req_for("GET", "/echo", 3000);
    req.base_url = url;
    send_ok(http, &req, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.outcome, LS_HTTP_CONNECT_ERROR, "outcome %d (%s)", r.outcome, r.error ? r.error : "");
    result_free(&r);

    /* and the client still works against the new server */
    req = req_for("GET", "/echo", 3000);
    send_ok(http, &req, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.status, 200);
    result_free(&r);
}

Test(http, unsupported_scheme_is_an_error)
{
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/x", 3000);
    req.base_url = "ftp://127.0.0.1:1";
    send_ok(http, &req, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.outcome, LS_HTTP_ERROR);
    cr_assert_eq(r.attempts, 1);
    result_free(&r);
}

Test(http, host_name_is_resolved)
{
    char url[64];
    snprintf(url, sizeof(url), "http://localhost:%d", lst_upstream_port(up));
    for (int i = 0; i < 3; i++) {
        result_t r = {0};
        ls_http_request_t req = req_for("GET", "/echo", 5000);
        req.base_url = url;
        send_ok(http, &req, &r);
        run_until_done(&r, 5000);
        cr_assert_eq(r.outcome, LS_HTTP_OK, "%s", r.error ? r.error : "");
        cr_assert_eq(r.status, 200);
        result_free(&r);
    }
}

/* ---- size limit ---- */

Test(http, body_over_the_limit_fails)
{
    ls_http_t *small = make_client(3, 10, 1000);
    static const char *paths[] = {"/big?bytes=5000", "/big?bytes=5000&nolen=1", "/big?bytes=1001&nolen=1"};
    for (size_t i = 0; i < 3; i++) {
        result_t r = {0};
        ls_http_request_t req = req_for("GET", paths[i], 5000);
        send_ok(small, &req, &r);
        run_until_done(&r, 5000);
        cr_assert_eq(r.outcome, LS_HTTP_TOO_LARGE, "%s: outcome %d (%s)", paths[i], r.outcome,
                     r.error ? r.error : "");
        cr_assert_eq(r.status, 0);
        cr_assert_eq(r.attempts, 1, "not retried");
        result_free(&r);
    }
    static const char *fits[] = {"/big?bytes=1000", "/big?bytes=1000&nolen=1"};
    for (size_t i = 0; i < 2; i++) {
        result_t r = {0};
        ls_http_request_t req = req_for("GET", fits[i], 5000);
        send_ok(small, &req, &r);
        run_until_done(&r, 5000);
        cr_assert_eq(r.outcome, LS_HTTP_OK, "%s", fits[i]);
        cr_assert_eq(r.body_len, 1000);
        cr_assert_eq(r.body[999], 'x');
        cr_assert_str_eq(r.content_type, "text/plain");
        result_free(&r);
    }
    ls_http_destroy(small);
}

Test(http, large_body_within_the_default_limit)
{
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/big?bytes=3000000", 10000);
    send_ok(http, &req, &r);
    run_until_done(&r, 10000);
    cr_assert_eq(r.outcome, LS_HTTP_OK);
    cr_assert_eq(r.body_len, 3000000);
    result_free(&r);
}

/* ---- callback contract ---- */

Test(http, invalid_requests_are_refused_without_callback)
{
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "no-slash", 1000);
    cr_assert_eq(ls_http_send(http, &req, on_done, &r), -1);
    req = req_for("get", "/echo", 1000);
    cr_assert_eq(ls_http_send(http, &req, on_done, &r), -1);
    req = req_for("GET", "/echo", 1000);
    req.request_id = "bad\r\nInjected: 1";
    cr_assert_eq(ls_http_send(http, &req, on_done, &r), -1);
    req = req_for("GET", "/echo", 1000);
    req.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nInjected: 1";
    cr_assert_eq(ls_http_send(http, &req, on_done, &r), -1);
    req.traceparent = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
    cr_assert_eq(ls_http_send(http, &req, on_done, &r), -1);
    req = req_for("GET", "/echo", 1000);
    req.deadline = 0;
    cr_assert_eq(ls_http_send(http, &req, on_done, &r), -1);
    req = req_for("GET", "/echo", 1000);
    cr_assert_eq(ls_http_send(http, &req, NULL, NULL), -1);
    cr_assert_eq(ls_http_inflight(http), 0);
    for (int i = 0; i < 5; i++)
        ls_loop_run_once(loop, 10);
    cr_assert_eq(r.calls, 0);
}

Test(http, destroy_calls_every_pending_callback_once)
{
    ls_http_t *h = make_client(5, 1000, 0);
    enum { SLOW = 4, WAIT = 2 };
    result_t rs[SLOW + WAIT] = {{0}};
    for (int i = 0; i < SLOW; i++) {
        ls_http_request_t req = req_for("GET", "/sleep?ms=3000", 10000);
        send_ok(h, &req, &rs[i]);
    }
    for (int i = SLOW; i < SLOW + WAIT; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/fail?key=w%d&times=10&status=503", i);
        ls_http_request_t req = req_for("GET", path, 10000);
        send_ok(h, &req, &rs[i]);
    }
    /* Wait until the slow ones are at the server and the others got their first 503. */
    uint64_t limit = ls_now_ms() + 5000;
    lst_upstream_stats_t st;
    do {
        ls_loop_run_once(loop, 20);
        lst_upstream_stats(up, &st);
    } while ((st.in_flight < SLOW || lst_upstream_fail_count(up, "w4") < 1 ||
              lst_upstream_fail_count(up, "w5") < 1) &&
             ls_now_ms() < limit);
    /* >=: a /fail answer may still be on its way out of the server */
    cr_assert(st.in_flight >= SLOW, "slow requests at the server: %ld", st.in_flight);
    cr_assert_eq(ls_http_inflight(h), SLOW + WAIT);

    ls_http_destroy(h);
    for (int i = 0; i < SLOW + WAIT; i++) {
        cr_assert_eq(rs[i].calls, 1, "request %d: %d calls", i, rs[i].calls);
        cr_assert_eq(rs[i].outcome, LS_HTTP_ERROR);
        cr_assert_not_null(rs[i].error);
    }
    /* Nothing fires later either. */
    for (int i = 0; i < 5; i++)
        ls_loop_run_once(loop, 10);
    for (int i = 0; i < SLOW + WAIT; i++) {
        cr_assert_eq(rs[i].calls, 1);
        result_free(&rs[i]);
    }
}

/* ---- Unix sockets ---- */

/*
 * A relay on its own thread: accepts on a Unix socket and copies each connection both ways to the
 * fake upstream's TCP port, so every built-in path works over a Unix socket too. It counts the
 * connections it accepted.
 */
#define RELAY_MAX_PAIRS 64

typedef struct {
    char path[108];
    int listen_fd;
    int wake[2];
    int port;
    pthread_t thread;
    atomic_long accepted;
} relay_t;

static int connect_tcp(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *relay_main(void *arg)
{
    relay_t *rl = arg;
    int from[RELAY_MAX_PAIRS], to[RELAY_MAX_PAIRS], n = 0;
    char buf[65536]; /* each relay has its thread: a static buffer would be shared by two relays */
    for (;;) {
        struct pollfd pfd[2 + 2 * RELAY_MAX_PAIRS];
        pfd[0] = (struct pollfd){.fd = rl->wake[0], .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = rl->listen_fd, .events = POLLIN};
        for (int i = 0; i < n; i++) {
            pfd[2 + 2 * i] = (struct pollfd){.fd = from[i], .events = POLLIN};
            pfd[3 + 2 * i] = (struct pollfd){.fd = to[i], .events = POLLIN};
        }
        if (poll(pfd, (nfds_t)(2 + 2 * n), -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[0].revents != 0)
            break;
        for (int i = n - 1; i >= 0; i--) {
            int broken = 0;
            for (int side = 0; side < 2 && !broken; side++) {
                if (pfd[2 + 2 * i + side].revents == 0)
                    continue;
                int src = side == 0 ? from[i] : to[i], dst = side == 0 ? to[i] : from[i];
                ssize_t r = read(src, buf, sizeof(buf));
                broken = r <= 0 || write_all(dst, buf, (size_t)r) != 0;
            }
            if (broken) {
                close(from[i]);
                close(to[i]);
                from[i] = from[n - 1];
                to[i] = to[n - 1];
                n--;
            }
        }
        if (pfd[1].revents & POLLIN) {
            int c = accept4(rl->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            int t = n < RELAY_MAX_PAIRS ? connect_tcp(rl->port) : -1;
            if (t < 0) {
                close(c);
                continue;
            }
            atomic_fetch_add(&rl->accepted, 1);
            from[n] = c;
            to[n] = t;
            n++;
        }
    }
    for (int i = 0; i < n; i++) {
        close(from[i]);
        close(to[i]);
    }
    return NULL;
}

static void relay_start(relay_t *rl)
{
    static int seq;
    memset(rl, 0, sizeof(*rl));
    snprintf(rl->path, sizeof(rl->path), "/tmp/test_http_%d_%d.sock", (int)getpid(), seq++);
    unlink(rl->path);
    rl->port = lst_upstream_port(up);
    atomic_init(&rl->accepted, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", rl->path);
    rl->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(rl->listen_fd >= 0);
    cr_assert_eq(bind(rl->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s", rl->path,
                 strerror(errno));
    cr_assert_eq(listen(rl->listen_fd, 128), 0);
    cr_assert_eq(pipe2(rl->wake, O_CLOEXEC), 0);
    cr_assert_eq(pthread_create(&rl->thread, NULL, relay_main, rl), 0);
}

static void relay_stop(relay_t *rl)
{
    cr_assert_eq(write(rl->wake[1], "x", 1), 1);
    pthread_join(rl->thread, NULL);
    close(rl->wake[0]);
    close(rl->wake[1]);
    close(rl->listen_fd);
    unlink(rl->path);
}

static const char *unix_url(const relay_t *rl)
{
    static char url[128];
    snprintf(url, sizeof(url), "unix:%s", rl->path);
    return url;
}

/* The per-upstream connection limit holds per socket: a busy socket does not hold up another one. */
Test(http, unix_sockets_have_connection_limits_of_their_own)
{
    ls_http_config_t cfg = {.internal_token = "sekret-token", .max_host_connections = 1};
    ls_http_t *h = ls_http_create(loop, &cfg);
    cr_assert_not_null(h);
    relay_t a, b;
    relay_start(&a);
    relay_start(&b);
    char url_a[128];
    snprintf(url_a, sizeof(url_a), "%s", unix_url(&a));
    result_t slow = {0}, fast = {0};
    ls_http_request_t req = req_for("GET", "/sleep?ms=1500", 5000);
    req.base_url = url_a;
    send_ok(h, &req, &slow);
    req = req_for("GET", "/echo", 5000);
    req.base_url = unix_url(&b);
    send_ok(h, &req, &fast);
    run_until_done(&fast, 5000);
    cr_assert_eq(fast.status, 200, "%s", fast.error ? fast.error : "");
    cr_assert_eq(slow.calls, 0, "the first socket's request ended first (status %d, %s)", slow.status,
                 slow.error ? slow.error : "no error");
    run_until_done(&slow, 5000);
    cr_assert_eq(slow.status, 200);
    result_free(&slow);
    result_free(&fast);
    ls_http_destroy(h);
    relay_stop(&a);
    relay_stop(&b);
}

Test(http, unix_socket_round_trip)
{
    relay_t rl;
    relay_start(&rl);
    result_t r = {0};
    static const char body[] = "{\"over\":\"unix\"}";
    ls_http_request_t req = req_for("POST", "/echo?x=1", 5000);
    req.base_url = unix_url(&rl);
    req.request_id = "rid-unix";
    req.body = body;
    req.body_len = sizeof(body) - 1;
    send_ok(http, &req, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.outcome, LS_HTTP_OK, "error: %s", r.error ? r.error : "");
    cr_assert_eq(r.status, 200);
    json_object *o = parse(&r);
    cr_expect_str_eq(jstr(o, "path", NULL), "/echo");
    cr_expect_str_eq(jstr(o, "query", NULL), "x=1");
    cr_expect_str_eq(jstr(o, "body", NULL), body);
    cr_expect_eq(strncmp(jstr(o, "headers", "host"), "unix-", 5), 0, "host: %s", jstr(o, "headers", "host"));
    cr_expect_str_eq(jstr(o, "headers", "authorization"), "Bearer sekret-token");
    cr_expect_str_eq(jstr(o, "headers", "x-request-id"), "rid-unix");
    cr_expect_null(jstr(o, "headers", "accept"));
    json_object_put(o);
    result_free(&r);
    cr_expect_eq(atomic_load(&rl.accepted), 1, "the request went through the Unix socket");
    relay_stop(&rl);
}

Test(http, unix_socket_connections_are_reused)
{
    relay_t rl;
    relay_start(&rl);

    /* one after another: one connection */
    int completed = 0;
    for (int i = 0; i < 50; i++) {
        result_t r = {0};
        ls_http_request_t req = req_for("GET", "/echo", 5000);
        req.base_url = unix_url(&rl);
        send_ok(http, &req, &r);
        run_until_done(&r, 5000);
        completed += r.status == 200;
        result_free(&r);
    }
    cr_assert_eq(completed, 50);
    cr_assert_eq(atomic_load(&rl.accepted), 1, "%ld connections for 50 sequential requests",
                 atomic_load(&rl.accepted));

    /* in concurrent batches: at most one connection per request of a batch */
    enum { ROUNDS = 10, BATCH = 8 };
    echo_batches(unix_url(&rl), ROUNDS, BATCH);
    cr_assert(atomic_load(&rl.accepted) <= BATCH, "%ld connections for %d requests",
              atomic_load(&rl.accepted), 50 + ROUNDS * BATCH);
    relay_stop(&rl);
}

/* Easy handles are recycled across upstreams: the socket path must follow each request. */
Test(http, unix_and_tcp_upstreams_on_one_client)
{
    relay_t rl;
    relay_start(&rl);
    char refused[64];
    snprintf(refused, sizeof(refused), "http://127.0.0.1:%d", closed_port());
    for (int i = 0; i < 3; i++) {
        result_t r = {0};
        ls_http_request_t req = req_for("GET", "/echo", 5000);
        req.base_url = unix_url(&rl);
        send_ok(http, &req, &r);
        run_until_done(&r, 5000);
        cr_assert_eq(r.status, 200, "unix request %d: %s", i, r.error ? r.error : "");
        result_free(&r);

        /* A TCP request on the same (recycled) handle must not go to the Unix socket. */
        req = req_for("GET", "/echo", 2000);
        req.base_url = refused;
        send_ok(http, &req, &r);
        run_until_done(&r, 5000);
        cr_assert_eq(r.outcome, LS_HTTP_CONNECT_ERROR, "round %d: a TCP request reached %s", i,
                     r.status ? "the Unix socket" : "something");
        result_free(&r);

        req = req_for("GET", "/echo", 5000);
        send_ok(http, &req, &r);
        run_until_done(&r, 5000);
        cr_assert_eq(r.status, 200);
        json_object *o = parse(&r);
        cr_expect_neq(strncmp(jstr(o, "headers", "host"), "unix-", 5), 0, "TCP request kept its host");
        json_object_put(o);
        result_free(&r);
    }
    cr_expect_eq(atomic_load(&rl.accepted), 1);
    relay_stop(&rl);
}

Test(http, unix_socket_without_listener_is_a_connect_error)
{
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/echo", 3000);
    req.base_url = "unix:/tmp/test_http_nobody_listens_here.sock";
    send_ok(http, &req, &r);
    run_until_done(&r, 5000);
    cr_assert_eq(r.outcome, LS_HTTP_CONNECT_ERROR, "outcome %d (%s)", r.outcome, r.error ? r.error : "");
    cr_assert_eq(r.attempts, 3, "GET is retried");
    result_free(&r);
}

Test(http, bad_unix_urls_are_refused)
{
    static const char *const bad[] = {
        "unix:", "unix:relative.sock",
        "unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        result_t r = {0};
        ls_http_request_t req = req_for("GET", "/echo", 3000);
        req.base_url = bad[i];
        cr_expect_eq(ls_http_send(http, &req, on_done, &r), -1, "%s", bad[i]);
    }
}

/* Internal calls ignore the proxy variables: a proxy that does not exist changes nothing. */
Test(http, internal_calls_never_use_a_proxy)
{
    char proxy[64];
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", closed_port());
    setenv("http_proxy", proxy, 1);
    setenv("no_proxy", "", 1);
    setenv("NO_PROXY", "", 1);
    result_t r = {0};
    ls_http_request_t req = req_for("GET", "/echo", 3000);
    send_ok(http, &req, &r);
    run_until_done(&r, 5000);
    cr_expect_eq(r.status, 200, "internal call went to the proxy: %s", r.error ? r.error : "");
    result_free(&r);

    /* The external client still honours it (so the variable did take effect). */
    ls_http_config_t cfg = {.external = 1, .max_attempts = 1};
    ls_http_t *ext = ls_http_create(loop, &cfg);
    req = req_for("GET", "/echo", 3000);
    send_ok(ext, &req, &r);
    run_until_done(&r, 5000);
    cr_expect_eq(r.outcome, LS_HTTP_CONNECT_ERROR, "external call ignored http_proxy (status %d)", r.status);
    result_free(&r);
    ls_http_destroy(ext);
    unsetenv("http_proxy");
}
