/*
 * GET /metrics of the real daemons (issue #12): exact counts under the right labels after known
 * requests, the internal token on every daemon (the BFF's Telegram check does not open it), the BFF's
 * outcome counters, breaker gauge and partial answers when an upstream fails or is gone, and
 * `promtool check metrics` accepting every daemon's exposition.
 *
 * Suite `service`: teachers-service alone. Suite `system`: the six services on fresh databases and
 * the BFF in front of them, with a fake calendar-service (that answers 500 when told) behind the
 * BFF's CALENDAR_URL.
 */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fake_upstream.h"
#include "harness.h"
#include "tma.h"

#define BOT_TOKEN  "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
#define STUDENT_ID 602

/* ---- suite service: teachers-service alone ---- */

static lst_service_t teachers;

static void service_setup(void)
{
    memset(&teachers, 0, sizeof(teachers));
    lst_service_start(&teachers, "services/teachers/teachers-service", "metrics_teachers", NULL);
}

static void service_teardown(void)
{
    lst_service_destroy(&teachers);
}

TestSuite(service, .init = service_setup, .fini = service_teardown, .timeout = 120);

static void call(lst_daemon_t *d, const char *token, const char *method, const char *path, int want)
{
    lst_resp_t resp;
    lst_call_as(&resp, d->base_url, token, method, path, NULL, NULL, NULL);
    cr_assert_eq(resp.status, want, "%s %s: %d, want %d: %.300s", method, path, resp.status, want,
                 resp.body != NULL ? resp.body : "");
    lst_resp_free(&resp);
}

static void expect_metric(const char *text, const char *series, double want)
{
    double v = -1;
    cr_expect(lst_metric_in(text, series, &v) && v == want, "%s is %g, want %g", series, v, want);
}

Test(service, counts_requests_by_route_and_queries_by_statement)
{
    const char *url = teachers.daemon.base_url, *tok = teachers.token;
    for (int i = 0; i < 3; i++)
        call(&teachers.daemon, tok, "GET", "/teachers/4242", 404);
    call(&teachers.daemon, tok, "GET", "/nothing/here", 404);
    call(&teachers.daemon, tok, "GET", "/nothing/there", 404);
    call(&teachers.daemon, tok, "DELETE", "/teachers", 405);
    call(&teachers.daemon, tok, "GET", "/readyz", 200);
    call(&teachers.daemon, tok, "GET", "/readyz", 200);

    char *t = lst_metrics_text(url, tok);
    expect_metric(
        t, "ls_http_requests_total{route=\"/teachers/{telegram_id:id}\",method=\"GET\",status=\"4xx\"}", 3);
    expect_metric(
        t, "ls_http_request_duration_seconds_count{route=\"/teachers/{telegram_id:id}\",method=\"GET\"}", 3);
    expect_metric(t, "ls_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"4xx\"}", 2);
    expect_metric(t, "ls_http_requests_total{route=\"unmatched\",method=\"DELETE\",status=\"4xx\"}", 1);
    expect_metric(t, "ls_http_requests_total{route=\"/readyz\",method=\"GET\",status=\"2xx\"}", 2);
    expect_metric(t, "ls_pg_query_duration_seconds_count{statement=\"teacher_get\"}", 3);
    expect_metric(t, "ls_build_info{daemon=\"teachers-service\",version=\"0.1.0\"}", 1);
    expect_metric(t, "ls_ready", 1);
    double v;
    cr_expect(
        !lst_metric_in(
            t, "ls_http_requests_total{route=\"/teachers/{telegram_id:id}\",method=\"GET\",status=\"2xx\"}",
            &v),
        "no 2xx was answered on that route");
    cr_expect(!lst_metric_in(t, "ls_pg_query_duration_seconds_count{statement=\"teacher_put\"}", &v));
    free(t);

    /* The scrape itself is counted once it is answered. */
    t = lst_metrics_text(url, tok);
    expect_metric(t, "ls_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"2xx\"}", 1);
    free(t);
    /* PG_POOL_SIZE 5 over 2 threads: every connection up and idle. */
    cr_expect_eq(lst_metric_wait(url, tok, "ls_pg_connections{state=\"ready\"}", 5, 5000), 5);
    cr_expect_eq(lst_metric(url, tok, "ls_pg_connections{state=\"broken\"}"), 0);
    cr_expect_eq(lst_metric(url, tok, "ls_pg_waiting_requests"), 0);
}

Test(service, metrics_need_the_internal_token)
{
    lst_resp_t resp;
    char url[256];
    snprintf(url, sizeof(url), "%s/metrics", teachers.daemon.base_url);
    lst_http(&resp, "GET", url, NULL, NULL);
    lst_expect_problem(&resp, 401, "internal token");
    lst_resp_free(&resp);
    lst_call_expect_problem(teachers.daemon.base_url, "not-the-token-0123456789", "GET", "/metrics", NULL,
                            NULL, 401, "internal token");
    char *t = lst_metrics_text(teachers.daemon.base_url, teachers.token);
    expect_metric(t, "ls_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"4xx\"}", 2);
    free(t);
}

/* ---- suite system: six services, the BFF, a fake calendar ---- */

/* In start order: a service starts after those it calls (their URLs are known then). */
enum { S_TEACHERS, S_STUDENTS, S_NOTIFICATION, S_AUTH, S_GROUPS, S_CALENDAR, S_COUNT };
static const char *const relpaths[S_COUNT] = {
    [S_AUTH] = "services/auth/auth-service",
    [S_TEACHERS] = "services/teachers/teachers-service",
    [S_STUDENTS] = "services/students/students-service",
    [S_NOTIFICATION] = "services/notification/notification-service",
    [S_GROUPS] = "services/groups/groups-service",
    [S_CALENDAR] = "services/calendar/calendar-service",
};
static lst_service_t services[S_COUNT];
static lst_daemon_t bff;
static lst_upstream_t *fake_calendar;
static atomic_int calendar_fails;
static char *token;
static unsigned char tma_key[TMA_KEY_BYTES];

static int calendar_handler(void *ud, lst_upstream_t *u, const lst_upstream_req_t *req,
                            lst_upstream_resp_t *resp)
{
    (void)ud, (void)u;
    if (strcmp(req->path, "/lessons") != 0)
        return 0;
    if (atomic_load(&calendar_fails))
        lst_upstream_respondf(resp, 500, "{\"detail\":\"calendar is broken\"}");
    else
        lst_upstream_respondf(resp, 200, "{\"lessons\":[],\"limit\":20,\"offset\":0}");
    return 1;
}

static void system_setup(void)
{
    char a[160], b[160], c[160], d[160], key[80];
    cr_assert_geq(sodium_init(), 0);
    tma_derive_key(BOT_TOKEN, tma_key);
    token = lst_random_hex(24);
    char *data_key = lst_random_hex(32);
    snprintf(key, sizeof(key), "AUTH_DATA_KEY=%s", data_key);
    free(data_key);
    memset(services, 0, sizeof(services));
    for (int i = 0; i < S_COUNT; i++) {
        const char *env[8] = {NULL};
        services[i].token = strdup(token);
        if (i == S_AUTH) {
            snprintf(a, sizeof(a), "NOTIFICATION_URL=%s", services[S_NOTIFICATION].daemon.base_url);
            env[0] = key, env[1] = a, env[2] = "OUTBOX_POLL_MS=50";
        } else if (i == S_GROUPS) {
            snprintf(a, sizeof(a), "STUDENTS_URL=%s", services[S_STUDENTS].daemon.base_url);
            env[0] = a, env[1] = "OUTBOX_POLL_MS=50";
        } else if (i == S_NOTIFICATION) {
            env[0] = "NOTIFY_POLL_MS=100";
        } else if (i == S_CALENDAR) {
            snprintf(a, sizeof(a), "TEACHERS_URL=%s", services[S_TEACHERS].daemon.base_url);
            snprintf(b, sizeof(b), "STUDENTS_URL=%s", services[S_STUDENTS].daemon.base_url);
            snprintf(c, sizeof(c), "GROUPS_URL=%s", services[S_GROUPS].daemon.base_url);
            snprintf(d, sizeof(d), "NOTIFICATION_URL=%s", services[S_NOTIFICATION].daemon.base_url);
            env[0] = a, env[1] = b, env[2] = c, env[3] = d, env[4] = "OUTBOX_POLL_MS=50";
        }
        lst_service_start(&services[i], relpaths[i], "metrics_sys", env);
    }
    atomic_store(&calendar_fails, 0);
    fake_calendar = lst_upstream_start();
    cr_assert_not_null(fake_calendar);
    lst_upstream_set_handler(fake_calendar, calendar_handler, NULL);

    char urls[6][200], tok[120];
    snprintf(urls[0], sizeof(urls[0]), "AUTH_URL=%s", services[S_AUTH].daemon.base_url);
    snprintf(urls[1], sizeof(urls[1]), "TEACHERS_URL=%s", services[S_TEACHERS].daemon.base_url);
    snprintf(urls[2], sizeof(urls[2]), "STUDENTS_URL=%s", services[S_STUDENTS].daemon.base_url);
    snprintf(urls[3], sizeof(urls[3]), "GROUPS_URL=%s", services[S_GROUPS].daemon.base_url);
    snprintf(urls[4], sizeof(urls[4]), "NOTIFICATION_URL=%s", services[S_NOTIFICATION].daemon.base_url);
    snprintf(urls[5], sizeof(urls[5]), "CALENDAR_URL=%s", lst_upstream_url(fake_calendar));
    snprintf(tok, sizeof(tok), "INTERNAL_TOKEN=%s", token);
    const char *env[] = {urls[0],
                         urls[1],
                         urls[2],
                         urls[3],
                         urls[4],
                         urls[5],
                         tok,
                         "BOT_TOKEN=" BOT_TOKEN,
                         "THREADS=1",
                         "LOG_LEVEL=debug",
                         "BFF_DEADLINE_MS=2000",
                         "BREAKER_FAILURES=3",
                         "BREAKER_OPEN_MS=600000",
                         NULL};
    memset(&bff, 0, sizeof(bff));
    lst_daemon_start(&bff, "bff/bff", env);
}

static void system_teardown(void)
{
    lst_daemon_expect_clean_stop(&bff);
    for (int i = 0; i < S_COUNT; i++)
        lst_service_destroy(&services[i]);
    lst_upstream_stop(fake_calendar);
    fake_calendar = NULL;
    free(token);
}

TestSuite(system, .init = system_setup, .fini = system_teardown, .timeout = 240);

/* "Authorization: tma <initData>" for user id, signed now. */
static void sign(char *out, size_t size, long long id)
{
    char user[160], date[24], data[TMA_MAX_LEN + 1];
    snprintf(user, sizeof(user), "{\"id\":%lld,\"first_name\":\"Metric\",\"username\":\"m%lld\"}", id, id);
    snprintf(date, sizeof(date), "%lld", (long long)time(NULL));
    tma_pair_t pairs[] = {{"auth_date", date}, {"user", user}};
    cr_assert_gt(tma_sign(tma_key, pairs, 2, data, sizeof(data)), 0);
    snprintf(out, size, "Authorization: tma %s", data);
}

/* A request to the BFF as user id; returns the status. */
static int api(long long id, const char *method, const char *path, char **partial)
{
    char auth[TMA_MAX_LEN + 64], url[512];
    const char *headers[] = {auth, NULL};
    lst_resp_t resp;
    sign(auth, sizeof(auth), id);
    snprintf(url, sizeof(url), "%s%s", bff.base_url, path);
    int status = lst_http(&resp, method, url, headers, NULL);
    if (partial != NULL)
        *partial = lst_resp_header(&resp, "x-partial");
    lst_resp_free(&resp);
    return status;
}

static void profile_expect_partial(void)
{
    char path[64], *partial = NULL;
    snprintf(path, sizeof(path), "/api/user/profile/%d", STUDENT_ID);
    cr_assert_eq(api(STUDENT_ID, "GET", path, &partial), 200);
    cr_expect(partial != NULL && strcmp(partial, "true") == 0, "x-partial: %s", partial ? partial : "none");
    free(partial);
}

#define CAL "target=\"calendar-service\""

Test(system, the_bffs_metrics_need_the_internal_token_not_telegrams)
{
    char auth[TMA_MAX_LEN + 64], url[256];
    lst_resp_t resp;
    snprintf(url, sizeof(url), "%s/metrics", bff.base_url);
    lst_http(&resp, "GET", url, NULL, NULL);
    lst_expect_problem(&resp, 401, "internal token");
    lst_resp_free(&resp);
    sign(auth, sizeof(auth), STUDENT_ID);
    const char *headers[] = {auth, NULL};
    lst_http(&resp, "GET", url, headers, NULL);
    lst_expect_problem(&resp, 401, "internal token");
    lst_resp_free(&resp);
    char *t = lst_metrics_text(bff.base_url, token);
    expect_metric(t, "ls_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"4xx\"}", 2);
    expect_metric(t, "ls_build_info{daemon=\"bff\",version=\"0.1.0\"}", 1);
    expect_metric(t, "ls_ready", 1);
    free(t);
}

Test(system, failing_and_missing_upstreams_move_the_bffs_counters)
{
    const char *url = bff.base_url;
    int status = api(STUDENT_ID, "POST", "/api/auth/telegram", NULL);
    cr_assert(status == 201, "sign-in: %d", status);
    /* The registration notification, stored (no Telegram configured) by notification-service. */
    cr_expect_eq(lst_metric_wait(services[S_NOTIFICATION].daemon.base_url, token,
                                 "ls_notification_deliveries_total{outcome=\"stored\"}", 1, 10000),
                 1);

    atomic_store(&calendar_fails, 1);
    for (int i = 0; i < 3; i++) /* BREAKER_FAILURES */
        profile_expect_partial();
    char *t = lst_metrics_text(url, token);
    expect_metric(t, "ls_upstream_calls_total{" CAL ",outcome=\"5xx\"}", 3);
    expect_metric(t, "ls_upstream_call_duration_seconds_count{" CAL "}", 3);
    expect_metric(t, "ls_bff_breaker_open{" CAL "}", 1);
    expect_metric(t, "ls_bff_breaker_open{target=\"auth-service\"}", 0);
    expect_metric(t, "ls_bff_partial_answers_total{view=\"profile\",part=\"calendar-service\"}", 3);
    free(t);

    profile_expect_partial(); /* refused by the open breaker, without a call */
    t = lst_metrics_text(url, token);
    expect_metric(t, "ls_upstream_calls_total{" CAL ",outcome=\"breaker_open\"}", 1);
    expect_metric(t, "ls_upstream_calls_total{" CAL ",outcome=\"5xx\"}", 3);
    expect_metric(t, "ls_bff_partial_answers_total{view=\"profile\",part=\"calendar-service\"}", 4);
    expect_metric(
        t,
        "ls_http_requests_total{route=\"/api/user/profile/{telegram_id:id}\",method=\"GET\",status=\"2xx\"}",
        4);
    expect_metric(t, "ls_http_requests_total{route=\"/api/auth/telegram\",method=\"POST\",status=\"2xx\"}",
                  1);
    double v;
    cr_expect(lst_metric_in(t, "ls_upstream_calls_total{target=\"auth-service\",outcome=\"2xx\"}", &v) &&
                  v >= 5,
              "auth-service answered the sign-in and four profiles");
    free(t);

    /* students-service gone: connection refused, retried (GET) within the deadline, then partial. */
    cr_assert_eq(lst_daemon_stop(&services[S_STUDENTS].daemon), 0);
    profile_expect_partial();
    t = lst_metrics_text(url, token);
    expect_metric(t, "ls_upstream_calls_total{target=\"students-service\",outcome=\"transport_error\"}", 1);
    expect_metric(t, "ls_upstream_retries_total{target=\"students-service\"}", 2);
    expect_metric(t, "ls_bff_partial_answers_total{view=\"profile\",part=\"students-service\"}", 1);
    expect_metric(t, "ls_bff_breaker_open{target=\"students-service\"}", 0); /* one failure of three */
    free(t);
}

Test(system, outbox_deliveries_count_by_outcome_and_the_backlog_is_a_gauge)
{
    const char *groups = services[S_GROUPS].daemon.base_url;
    /* A call students-service refuses (404: given up, "failed"), and one not due for an hour. */
    free(lst_pg_admin_exec(services[S_GROUPS].dbname,
                           "INSERT INTO outbox (target, method, path, idempotency_key)"
                           " VALUES ('students', 'DELETE', '/no/such/path', 'metrics-test-1')"));
    free(lst_pg_admin_exec(
        services[S_GROUPS].dbname,
        "INSERT INTO outbox (target, method, path, idempotency_key, next_attempt_at, created_at)"
        " VALUES ('students', 'DELETE', '/later', 'metrics-test-2', now() + interval '1 hour',"
        " now() - interval '100 seconds')"));
    cr_expect_eq(lst_metric_wait(groups, token,
                                 "ls_outbox_deliveries_total{target=\"students-service\",outcome=\"failed\"}",
                                 1, 10000),
                 1);
    cr_expect_eq(lst_metric_wait(groups, token, "ls_outbox_pending_rows", 1, 10000), 1);
    char *t = lst_metrics_text(groups, token);
    double age = 0;
    cr_expect(lst_metric_in(t, "ls_outbox_oldest_pending_age_seconds", &age) && age >= 100 && age < 200,
              "age %g", age);
    expect_metric(t, "ls_upstream_calls_total{target=\"students-service\",outcome=\"4xx\"}", 1);
    double v;
    cr_expect(!lst_metric_in(
        t, "ls_outbox_deliveries_total{target=\"students-service\",outcome=\"delivered\"}", &v));
    free(t);
}

/* promtool from PATH or /usr/bin, or NULL. */
static const char *find_promtool(void)
{
    static char path[512];
    const char *dirs = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s:/usr/bin:/usr/local/bin", dirs != NULL ? dirs : "");
    char *save = NULL;
    for (char *dir = strtok_r(buf, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        snprintf(path, sizeof(path), "%s/promtool", dir);
        if (access(path, X_OK) == 0)
            return path;
    }
    return NULL;
}

/* Runs `promtool check metrics` on text; expects exit 0 and not a word of complaint. */
static void expect_promtool_accepts(const char *promtool, const char *daemon, const char *text)
{
    char file[256], cmd[1024], out[4096];
    snprintf(file, sizeof(file), "%s/metrics-%s-XXXXXX", lst_env("LS_TEST_BUILD_DIR"), daemon);
    int fd = mkstemp(file);
    cr_assert_geq(fd, 0);
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    snprintf(cmd, sizeof(cmd), "'%s' check metrics < '%s' 2>&1", promtool, file);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    cr_expect(WIFEXITED(rc) && WEXITSTATUS(rc) == 0 && n == 0,
              "promtool check metrics on %s's /metrics: status %d, said:\n%s\n(exposition kept in %s)",
              daemon, WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out, file);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 0 && n == 0)
        unlink(file);
}

Test(system, promtool_accepts_every_daemons_metrics)
{
    const char *promtool = find_promtool();
    if (promtool == NULL)
        cr_skip_test("promtool is not installed (Debian package `prometheus`; tests/run installs it)");
    /* Some of everything first: requests, calls, queries, a partial answer, the periodic gauges. */
    cr_assert_eq(api(STUDENT_ID, "POST", "/api/auth/telegram", NULL), 201);
    atomic_store(&calendar_fails, 1);
    profile_expect_partial();
    cr_expect_eq(lst_metric_wait(services[S_NOTIFICATION].daemon.base_url, token,
                                 "ls_notification_deliveries_total{outcome=\"stored\"}", 1, 10000),
                 1);
    static const char *const names[S_COUNT] = {[S_AUTH] = "auth",         [S_TEACHERS] = "teachers",
                                               [S_STUDENTS] = "students", [S_NOTIFICATION] = "notification",
                                               [S_GROUPS] = "groups",     [S_CALENDAR] = "calendar"};
    for (int i = 0; i < S_COUNT; i++) {
        char *t = lst_metrics_text(services[i].daemon.base_url, token);
        double v;
        if (i == S_GROUPS || i == S_CALENDAR || i == S_AUTH)
            cr_expect(lst_metric_in(t, "ls_outbox_pending_rows", &v), "%s-service has an outbox", names[i]);
        if (i == S_NOTIFICATION)
            cr_expect(lst_metric_in(t, "ls_notification_queue_depth", &v));
        cr_expect(lst_metric_in(t, "ls_pg_connections{state=\"ready\"}", &v));
        expect_promtool_accepts(promtool, names[i], t);
        free(t);
    }
    char *t = lst_metrics_text(bff.base_url, token);
    expect_promtool_accepts(promtool, "bff", t);
    free(t);
}
