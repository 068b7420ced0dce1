/*
 * The BFF's coalescer (bff/coalesce.h, issue 15): the GETs that views started in one loop iteration send
 * to one service go as one POST /batch, and each view answers exactly as it does alone.
 *
 * On the real stack (stack.h), with many own-profile views fetched at the same moment (curl multi):
 *   - every view answers 200, byte for byte the view fetched alone afterwards, and batches went out
 *     (the BFF's ls_bff_upstream_batched_calls_total, the services' requests on route /batch);
 *   - with UPSTREAM_BATCH_MAX=1 the same views, and no batch at all; with 4, batches of at most 4;
 *   - with a service stopped the views answer as they do alone with it down (partial, or the view's
 *     error), and the BFF still exits cleanly (under ASan: nothing leaked);
 *   - a person who does not exist (auth-service's 404 inside a batch) gets the view's 404, as alone.
 * Against a fake groups-service (tests/support/fake_upstream.h), the group view (whose first round asks
 * groups-service twice) shows what the BFF sends in a batch and how it takes each kind of answer: each
 * item's status and problem in its place, an answer that does not read (502), one too large (each call
 * sent again alone), and a failed batch (retried as a GET is, then 503).
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_upstream.h"
#include "stack.h"

#define PEOPLE      24 /* own-profile views fetched at once */
#define FIRST       7001
#define ABSENT      7501 /* people auth-service does not know */
#define MAX_ROUNDS  5    /* concurrent rounds tried until the BFF has sent a batch */
#define BATCH_ROUTE "ls_http_requests_total{route=\"/batch\",method=\"POST\",status=\"2xx\"}"

static lst_stack_t st;

static void setup_stack(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    lst_stack_start(&st, (const char *const[]){"RATE_ADDR_PER_S=0", NULL});
}

static void setup_stack_unbatched(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    lst_stack_start(&st, (const char *const[]){"RATE_ADDR_PER_S=0", "UPSTREAM_BATCH_MAX=1", NULL});
}

static void setup_stack_small_batches(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    lst_stack_start(&st, (const char *const[]){"RATE_ADDR_PER_S=0", "UPSTREAM_BATCH_MAX=4", NULL});
}

static void teardown_stack(void)
{
    lst_stack_stop(&st);
}

TestSuite(coalesce, .timeout = 300);

/* ---- the school ---- */

/* A person auth-service knows; every third one also teaches. */
static void add_person(long long id)
{
    char path[64], body[128], actor[24];
    lst_resp_t resp;
    snprintf(path, sizeof(path), "/users/%lld", id);
    snprintf(body, sizeof(body), "{\"first_name\":\"Person\",\"last_name\":\"No%lld\"}", id);
    lst_call_as(&resp, st.services[LST_AUTH].daemon.base_url, st.services[LST_AUTH].token, "PUT", path, body,
                NULL, NULL);
    cr_assert(resp.status == 201 || resp.status == 200, "PUT %s: %d %.300s", path, resp.status, resp.body);
    lst_resp_free(&resp);
    if (id % 3 != 0)
        return;
    snprintf(path, sizeof(path), "/teachers/%lld", id);
    snprintf(body, sizeof(body), "{\"bio\":\"teacher number %lld\"}", id);
    snprintf(actor, sizeof(actor), "%lld", id);
    lst_call_as(&resp, st.services[LST_TEACHERS].daemon.base_url, st.services[LST_TEACHERS].token, "PUT",
                path, body, actor, NULL);
    cr_assert(resp.status == 201 || resp.status == 200, "PUT %s: %d %.300s", path, resp.status, resp.body);
    lst_resp_free(&resp);
}

/* ---- views at the same moment ---- */

typedef struct {
    long long as; /* the person whose own profile this is */
    long status;
    char *body;
    size_t len;
    char auth[TMA_MAX_LEN + 64];
    struct curl_slist *headers;
} view_t;

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud)
{
    view_t *v = ud;
    size_t n = size * nmemb;
    char *p = realloc(v->body, v->len + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + v->len, data, n);
    v->len += n;
    p[v->len] = '\0';
    v->body = p;
    return n;
}

/* Each person's own profile, all requests sent at once; status and body into each view. */
static void fetch_together(view_t *views, size_t n)
{
    CURLM *multi = curl_multi_init();
    CURL *easy[PEOPLE];
    cr_assert(n <= PEOPLE);
    for (size_t i = 0; i < n; i++) {
        char url[256];
        view_t *v = &views[i];
        free(v->body);
        v->body = NULL;
        v->len = 0;
        v->status = 0;
        snprintf(url, sizeof(url), "%s/api/user/profile/%lld", st.bff.base_url, v->as);
        lst_stack_sign(&st, v->auth, sizeof(v->auth), v->as, NULL);
        v->headers = curl_slist_append(NULL, v->auth);
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_NOPROXY, "*");
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, v->headers);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, v);
        curl_multi_add_handle(multi, easy[i]);
    }
    int running = 1;
    while (running > 0) {
        cr_assert_eq(curl_multi_perform(multi, &running), CURLM_OK);
        if (running > 0)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &views[i].status);
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
        curl_slist_free_all(views[i].headers);
        views[i].headers = NULL;
    }
    curl_multi_cleanup(multi);
}

static void views_free(view_t *views, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(views[i].body);
}

/* A view as compared with its fetch alone: the body as it is, or with detail_free the JSON without each
 * errors entry's detail (it says how a call failed: a refused connection, or the breaker that opened). */
static char *comparable(const char *body, int detail_free)
{
    if (!detail_free)
        return strdup(body);
    json_object *v = json_tokener_parse(body);
    cr_assert_not_null(v, "not JSON: %.300s", body);
    json_object *errors = lst_field(v, "errors");
    for (size_t i = 0; errors != NULL && i < json_object_array_length(errors); i++)
        json_object_object_del(json_object_array_get_idx(errors, i), "detail");
    json_object_object_del(v, "detail"); /* a problem's */
    char *text = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    json_object_put(v);
    return text;
}

/* Each view fetched alone answers what it answered among the others. */
static void expect_same_alone(const view_t *views, size_t n, int detail_free)
{
    for (size_t i = 0; i < n; i++) {
        char path[64];
        lst_resp_t alone;
        snprintf(path, sizeof(path), "/api/user/profile/%lld", views[i].as);
        lst_stack_api(&st, &alone, views[i].as, "GET", path, NULL);
        char *together = comparable(views[i].body != NULL ? views[i].body : "", detail_free);
        char *by_itself = comparable(alone.body, detail_free);
        cr_expect_eq(views[i].status, alone.status, "%s: %ld together, %d alone", path, views[i].status,
                     alone.status);
        cr_expect_str_eq(together, by_itself, "%s differs:\ntogether %.600s\nalone    %.600s", path, together,
                         by_itself);
        free(together);
        free(by_itself);
        lst_resp_free(&alone);
    }
}

/* ---- metrics ---- */

/* The BFF's batches (calls: 0) or batched calls (1) to one service (e.g. "teachers"), or to every one
 * (NULL). */
static double bff_batched_to(int calls, const char *service)
{
    static const char *const targets[] = {"auth",     "teachers", "students",    "groups",
                                          "calendar", "payment",  "notification"};
    char *text = lst_metrics_text(st.bff.base_url, st.services[LST_AUTH].token);
    double sum = 0;
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        char series[160];
        double v;
        snprintf(series, sizeof(series), "%s{target=\"%s-service\"}",
                 calls ? "ls_bff_upstream_batched_calls_total" : "ls_bff_upstream_batches_total", targets[i]);
        if ((service == NULL || strcmp(service, targets[i]) == 0) && lst_metric_in(text, series, &v))
            sum += v;
    }
    free(text);
    return sum;
}

static double bff_batched(int calls)
{
    return bff_batched_to(calls, NULL);
}

/* POST /batch answered by the services of a profile view. */
static double services_batches(void)
{
    static const int services[] = {LST_AUTH,   LST_TEACHERS, LST_STUDENTS,
                                   LST_GROUPS, LST_CALENDAR, LST_PAYMENT};
    double sum = 0;
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
        sum +=
            lst_metric(st.services[services[i]].daemon.base_url, st.services[services[i]].token, BATCH_ROUTE);
    return sum;
}

/* Rounds of n views at once (each as it is alone, want its status) until the BFF has batched calls;
 * returns how many it batched. */
static double rounds_until_batched(view_t *views, size_t n, long want(const view_t *))
{
    double batched = 0;
    for (int round = 0; round < MAX_ROUNDS && batched == 0; round++) {
        fetch_together(views, n);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(views[i].status, want(&views[i]), "profile %lld: %ld %.300s", views[i].as,
                         views[i].status, views[i].body);
        expect_same_alone(views, n, 0);
        batched = LS_METRICS ? bff_batched(1) : 1;
    }
    return batched;
}

static long ok_status(const view_t *v)
{
    (void)v;
    return 200;
}

/* ---- the real stack ---- */

Test(coalesce, concurrent_views_go_in_batches_and_answer_as_alone, .init = setup_stack,
     .fini = teardown_stack)
{
    view_t views[PEOPLE] = {{0}};
    for (int i = 0; i < PEOPLE; i++) {
        add_person(FIRST + i);
        views[i].as = FIRST + i;
    }
    double before = LS_METRICS ? services_batches() : 0;
    cr_assert_gt(rounds_until_batched(views, PEOPLE, ok_status), 0, "no call went in a batch in %d rounds",
                 MAX_ROUNDS);
    if (LS_METRICS) {
        cr_assert_gt(bff_batched(0), 0);
        cr_assert_gt(services_batches(), before, "the services answered no POST /batch");
    }
    views_free(views, PEOPLE);
}

Test(coalesce, batch_max_1_sends_every_call_alone, .init = setup_stack_unbatched, .fini = teardown_stack)
{
    view_t views[PEOPLE] = {{0}};
    for (int i = 0; i < PEOPLE; i++) {
        add_person(FIRST + i);
        views[i].as = FIRST + i;
    }
    for (int round = 0; round < 2; round++) {
        fetch_together(views, PEOPLE);
        for (size_t i = 0; i < PEOPLE; i++)
            cr_assert_eq(views[i].status, 200, "profile %lld: %ld %.300s", views[i].as, views[i].status,
                         views[i].body);
        expect_same_alone(views, PEOPLE, 0);
    }
    if (LS_METRICS) {
        cr_assert_eq(bff_batched(0), 0);
        cr_assert_eq(bff_batched(1), 0);
        cr_assert_eq(services_batches(), 0);
    }
    views_free(views, PEOPLE);
}

Test(coalesce, a_full_queue_goes_at_once, .init = setup_stack_small_batches, .fini = teardown_stack)
{
    view_t views[PEOPLE] = {{0}};
    for (int i = 0; i < PEOPLE; i++) {
        add_person(FIRST + i);
        views[i].as = FIRST + i;
    }
    double batched = rounds_until_batched(views, PEOPLE, ok_status);
    cr_assert_gt(batched, 0, "no call went in a batch in %d rounds", MAX_ROUNDS);
    if (LS_METRICS)
        cr_assert_leq(batched, 4 * bff_batched(0), "%g calls in %g batches of at most 4", batched,
                      bff_batched(0));
    views_free(views, PEOPLE);
}

/* A view that answers partial without teachers-service, or with auth-service down the view's 503. */
static void expect_down(view_t *views, size_t n, long status, const char *service)
{
    fetch_together(views, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(views[i].status, status, "profile %lld: %ld %.300s", views[i].as, views[i].status,
                     views[i].body);
        cr_assert_not_null(strstr(views[i].body, service), "%.300s", views[i].body);
        if (status == 200)
            cr_assert_not_null(strstr(views[i].body, "\"partial\":true"), "%.300s", views[i].body);
    }
    expect_same_alone(views, n, 1);
}

Test(coalesce, a_stopped_service_fails_its_part_of_every_view, .init = setup_stack, .fini = teardown_stack)
{
    view_t views[PEOPLE] = {{0}};
    for (int i = 0; i < PEOPLE; i++) {
        add_person(FIRST + i);
        views[i].as = FIRST + i;
    }
    cr_assert_eq(lst_daemon_stop(&st.services[LST_TEACHERS].daemon), 0);
    expect_down(views, PEOPLE, 200, "\"service\":\"teachers\"");
    cr_assert_eq(lst_daemon_stop(&st.services[LST_AUTH].daemon), 0);
    expect_down(views, PEOPLE, 503, "auth-service");
    if (LS_METRICS) /* teachers-service was down from the start: its calls went in batches all the same */
        cr_assert_gt(bff_batched_to(1, "teachers"), 0);
    views_free(views, PEOPLE);
}

static long status_by_person(const view_t *v)
{
    return v->as >= ABSENT ? 404 : 200;
}

Test(coalesce, an_item_refused_inside_a_batch_reaches_its_view, .init = setup_stack, .fini = teardown_stack)
{
    view_t views[PEOPLE] = {{0}};
    for (int i = 0; i < PEOPLE; i++) {
        if (i % 2 == 0) {
            add_person(FIRST + i);
            views[i].as = FIRST + i;
        } else {
            views[i].as = ABSENT + i;
        }
    }
    cr_assert_gt(rounds_until_batched(views, PEOPLE, status_by_person), 0,
                 "no call went in a batch in %d rounds", MAX_ROUNDS);
    for (size_t i = 1; i < PEOPLE; i += 2)
        cr_assert_not_null(strstr(views[i].body, "not found"), "%.300s", views[i].body);
    views_free(views, PEOPLE);
}

/* ---- against a fake groups-service ---- */

#define GROUP  "0b6f3c1e-5d2a-4c8e-9f10-2a3b4c5d6e7f"
#define CALLER 4242
#define TRACE  "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN   "00f067aa0ba902b7"

/* How the fake answers a batch: its first item (the group) or second (its members) refused, an answer
 * that does not read, one over the BFF's 8 MiB for an answer, none (503), or as a service without the
 * route (404). */
enum { GROUP_FAILS, MEMBERS_FAIL, UNREADABLE, TOO_LARGE, UNAVAILABLE, NO_ROUTE };

#define LARGE_BYTES (9 << 20)

static struct {
    pthread_mutex_t lock;
    int mode;
    int batches;    /* POST /batch received */
    int group_gets; /* GET /groups/… received (calls sent alone) */
    char *body;     /* the last one's (malloc'ed) and some of its headers */
    char request_id[96], actor[32], traceparent[96], content_type[96];
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

static lst_upstream_t *upstream;

#define PROBLEM(status, title, detail)                                                                       \
    "{\"type\":\"about:blank\",\"title\":\"" title "\",\"status\":" #status ",\"detail\":\"" detail "\"}"

static void keep_header(const lst_upstream_req_t *req, const char *name, char *out, size_t size)
{
    const char *v = lst_upstream_req_header(req, name);
    snprintf(out, size, "%s", v != NULL ? v : "");
}

/* Every service of the BFF is this one: POST /batch as the mode says, any other call 404. */
static int on_request(void *ud, lst_upstream_t *u, const lst_upstream_req_t *req, lst_upstream_resp_t *resp)
{
    static const char not_found[] = PROBLEM(404, "Not Found", "nothing here");
    (void)ud, (void)u;
    if (strcmp(req->method, "POST") != 0 || strcmp(req->path, "/batch") != 0) {
        pthread_mutex_lock(&fake.lock);
        fake.group_gets += strncmp(req->path, "/groups/", 8) == 0;
        pthread_mutex_unlock(&fake.lock);
        lst_upstream_respond(resp, 404, "application/problem+json", not_found, sizeof(not_found) - 1);
        return 1;
    }
    pthread_mutex_lock(&fake.lock);
    fake.batches++;
    free(fake.body);
    fake.body = strdup(req->body);
    keep_header(req, "x-request-id", fake.request_id, sizeof(fake.request_id));
    keep_header(req, "x-actor-telegram-id", fake.actor, sizeof(fake.actor));
    keep_header(req, "traceparent", fake.traceparent, sizeof(fake.traceparent));
    keep_header(req, "content-type", fake.content_type, sizeof(fake.content_type));
    int mode = fake.mode;
    pthread_mutex_unlock(&fake.lock);

    switch (mode) {
    case GROUP_FAILS: {
        static const char group[] = PROBLEM(500, "Internal Server Error", "the group's own detail");
        static const char members[] = "{\"members\":[]}";
        lst_upstream_respondf(resp, 200,
                              "{\"responses\":[{\"status\":500,\"length\":%zu,\"body\":%s},"
                              "{\"status\":200,\"length\":%zu,\"body\":%s}]}",
                              sizeof(group) - 1, group, sizeof(members) - 1, members);
        break;
    }
    case MEMBERS_FAIL: {
        static const char group[] = PROBLEM(404, "Not Found", "no such group");
        static const char members[] = PROBLEM(500, "Internal Server Error", "the members' detail");
        lst_upstream_respondf(resp, 200,
                              "{\"responses\":[{\"status\":404,\"length\":%zu,\"body\":%s},"
                              "{\"status\":500,\"length\":%zu,\"body\":%s}]}",
                              sizeof(group) - 1, group, sizeof(members) - 1, members);
        break;
    }
    case UNREADABLE: /* the second body's length runs past the end of the answer */
        lst_upstream_respondf(resp, 200,
                              "{\"responses\":[{\"status\":200,\"length\":4,\"body\":null},"
                              "{\"status\":200,\"length\":40,\"body\":null}]}");
        break;
    case TOO_LARGE: {
        char *large = malloc(LARGE_BYTES); /* on a connection thread: no assertion here */
        if (large == NULL)
            return 0;
        memset(large, ' ', LARGE_BYTES);
        lst_upstream_respond(resp, 200, NULL, large, LARGE_BYTES);
        free(large);
        break;
    }
    case NO_ROUTE:
        lst_upstream_respond(resp, 404, "application/problem+json", not_found, sizeof(not_found) - 1);
        break;
    default:
        lst_upstream_respondf(resp, 503, "%s", PROBLEM(503, "Service Unavailable", "the fake is down"));
        snprintf(resp->content_type, sizeof(resp->content_type), "application/problem+json");
        break;
    }
    return 1;
}

static void setup_fake(void)
{
    static const char *const urls[] = {"AUTH_URL",     "TEACHERS_URL",     "STUDENTS_URL", "GROUPS_URL",
                                       "CALENDAR_URL", "NOTIFICATION_URL", "PAYMENT_URL"};
    char vars[7][128];
    const char *env[16];
    size_t n = 0;
    cr_assert_geq(sodium_init(), 0);
    memset(&st, 0, sizeof(st));
    tma_derive_key(LST_STACK_BOT_TOKEN, st.key);
    upstream = lst_upstream_start();
    cr_assert_not_null(upstream);
    lst_upstream_set_handler(upstream, on_request, NULL);
    for (size_t i = 0; i < 7; i++) {
        snprintf(vars[i], sizeof(vars[i]), "%s=%s", urls[i], lst_upstream_url(upstream));
        env[n++] = vars[i];
    }
    env[n++] = "INTERNAL_TOKEN=coalesce-test-token";
    env[n++] = "BOT_TOKEN=" LST_STACK_BOT_TOKEN;
    env[n++] = "THREADS=1";
    env[n++] = "LOG_LEVEL=debug";
    env[n++] = "BREAKER_FAILURES=1000"; /* every answer reaches the fake */
    env[n] = NULL;
    lst_daemon_start(&st.bff, "bff/bff", env);
}

static void teardown_fake(void)
{
    lst_daemon_expect_clean_stop(&st.bff);
    lst_upstream_stop(upstream);
    free(fake.body);
    fake.body = NULL;
}

/* The group view with our own request id and trace; its first round asks groups-service twice. */
static void group_view(lst_resp_t *resp, int mode)
{
    char auth[TMA_MAX_LEN + 64], url[256];
    const char *headers[] = {auth, "X-Request-Id: coalesce-view-1", "traceparent: 00-" TRACE "-" SPAN "-01",
                             NULL};
    pthread_mutex_lock(&fake.lock);
    fake.mode = mode;
    pthread_mutex_unlock(&fake.lock);
    lst_stack_sign(&st, auth, sizeof(auth), CALLER, NULL);
    snprintf(url, sizeof(url), "%s/api/groups/" GROUP, st.bff.base_url);
    lst_http(resp, "GET", url, headers, NULL);
}

/* POST /batch (gets: GET /groups/…) the fake received. */
static int seen(int gets)
{
    pthread_mutex_lock(&fake.lock);
    int n = gets ? fake.group_gets : fake.batches;
    pthread_mutex_unlock(&fake.lock);
    return n;
}

static int batches_seen(void)
{
    return seen(0);
}

/* The last batch: its headers, and each item as the call alone would have been sent. */
static void expect_batch_as_sent(void)
{
    pthread_mutex_lock(&fake.lock);
    cr_expect_str_eq(fake.request_id, "coalesce-view-1-b");
    cr_expect_str_eq(fake.actor, "", "a batch names no actor of its own");
    cr_expect_eq(strncmp(fake.traceparent, "00-" TRACE "-", 36), 0, "%s", fake.traceparent);
    cr_expect_str_eq(fake.content_type, "application/json");
    json_object *body = json_tokener_parse(fake.body);
    pthread_mutex_unlock(&fake.lock);

    json_object *items = lst_field(body, "requests");
    cr_assert(items != NULL && json_object_array_length(items) == 2, "%s", json_object_to_json_string(body));
    for (size_t i = 0; i < 2; i++) {
        json_object *item = json_object_array_get_idx(items, i);
        const char *tp = lst_str_field(item, "traceparent");
        int64_t deadline_ms = json_object_get_int64(lst_field(item, "deadline_ms"));
        cr_expect_eq(json_object_get_int64(lst_field(item, "actor")), CALLER);
        cr_expect_null(lst_field(item, "role"), "the caller's role is not known yet");
        cr_expect_str_eq(lst_str_field(item, "request_id"), "coalesce-view-1");
        cr_assert(tp != NULL && strlen(tp) == 55 && strncmp(tp, "00-" TRACE "-", 36) == 0, "%s", tp);
        cr_expect_neq(strncmp(tp + 36, SPAN, 16), 0, "the parent is the view's own span, not its caller's");
        cr_expect(deadline_ms >= 1 && deadline_ms <= 3000, "deadline_ms %lld", (long long)deadline_ms);
    }
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(items, 0), "path"), "/groups/" GROUP);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(items, 1), "path"),
                     "/groups/" GROUP "/members?limit=500");
    json_object_put(body);
}

Test(coalesce, a_batch_carries_each_call_and_each_answer_reaches_its_part, .init = setup_fake,
     .fini = teardown_fake)
{
    lst_resp_t resp;

    /* Each item's own status and problem, in its place. */
    group_view(&resp, GROUP_FAILS);
    lst_expect_problem(&resp, 502, "groups-service: the group's own detail");
    lst_resp_free(&resp);
    cr_assert_eq(batches_seen(), 1);
    expect_batch_as_sent();
    group_view(&resp, MEMBERS_FAIL);
    lst_expect_problem(&resp, 404, "not found");
    lst_resp_free(&resp);
    cr_assert_eq(batches_seen(), 2);

    /* An answer that does not read fails every item (502), not retried: it was an answer. */
    group_view(&resp, UNREADABLE);
    lst_expect_problem(&resp, 502, "batch that cannot be read");
    lst_resp_free(&resp);
    cr_assert_eq(batches_seen(), 3);

    /* An answer too large for the BFF: each call goes again alone, and answers as that call does. */
    cr_assert_eq(seen(1), 0);
    group_view(&resp, TOO_LARGE);
    lst_expect_problem(&resp, 404, "not found");
    lst_resp_free(&resp);
    cr_assert_eq(batches_seen(), 4);
    cr_assert_eq(seen(1), 2, "the group and its members, each alone");

    /* No answer: the batch is retried as a GET is (three attempts), then every item has the 503. */
    group_view(&resp, UNAVAILABLE);
    lst_expect_problem(&resp, 503, "the fake is down");
    lst_resp_free(&resp);
    cr_assert_eq(batches_seen(), 7);

    /* A service without POST /batch (an older one during a rolling deploy): each call goes alone. */
    group_view(&resp, NO_ROUTE);
    lst_expect_problem(&resp, 404, "not found");
    lst_resp_free(&resp);
    cr_assert_eq(batches_seen(), 8);
    cr_assert_eq(seen(1), 4, "the group and its members, each alone again");
}
