/*
 * The metrics registry and its exposition: counts recorded on two workers' blocks are summed,
 * histograms are cumulative with _sum and _count, label values are escaped, series that counted
 * nothing are left out, and every family has its HELP and TYPE once.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "metrics.h"

static const ls_route_t routes[] = {
    {"GET", "/users/{telegram_id:id}", NULL, 0},
    {"POST", "/users", NULL, 0},
};
static const ls_pg_stmt_t stmts[] = {
    {"user_get", "SELECT 1", 0},
    {"user_put", "SELECT 2", 0},
};

static ls_metrics_t *m;
static ls_text_t out;

static void setup(void)
{
    ls_metrics_desc_t d = {
        .daemon = "auth-service",
        .version = "0.1.0",
        .routes = routes,
        .nroutes = 2,
        .stmts = stmts,
        .nstmts = 2,
        .nworkers = 2,
        .features = LS_METRICS_F_DB | LS_METRICS_F_OUTBOX,
    };
    m = ls_metrics_create(&d);
    cr_assert_not_null(m);
    memset(&out, 0, sizeof(out));
}

static void teardown(void)
{
    ls_metrics_bind(NULL);
    ls_metrics_destroy(m);
    ls_text_free(&out);
}

TestSuite(metrics, .init = setup, .fini = teardown);

/* The exposition as a NUL-terminated string (valid until the next call). */
static const char *scrape(void)
{
    ls_text_free(&out);
    memset(&out, 0, sizeof(out));
    ls_metrics_write(m, &out);
    cr_assert(!out.failed);
    ls_text_add(&out, "", 1);
    return out.buf;
}

static void expect_value(const char *text, const char *series, double want)
{
    double v;
    cr_assert(lst_metric_in(text, series, &v), "no series %s in:\n%s", series, text);
    cr_expect_float_eq(v, want, 1e-9, "%s is %g, want %g", series, v, want);
}

static void expect_absent(const char *text, const char *series)
{
    double v;
    cr_expect(!lst_metric_in(text, series, &v), "series %s should be absent:\n%s", series, text);
}

static int count_lines(const char *text, const char *line)
{
    int n = 0;
    size_t len = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p += len)
        if ((p == text || p[-1] == '\n') && (p[len] == '\n' || p[len] == '\0'))
            n++;
    return n;
}

/* A request of route slot `route` answered with status on the bound block. */
static void request(int route, const char *method, int status)
{
    ls_metrics_req_t rm;
    ls_metrics_request_start(&rm, method, strlen(method));
    rm.route = route;
    ls_metrics_request_done(&rm, status);
}

Test(metrics, requests_are_summed_over_the_workers_blocks)
{
    ls_metrics_bind(ls_metrics_block(m, 0));
    request(0, "GET", 200);
    request(0, "GET", 200);
    request(0, "GET", 404);
    request(LS_METRICS_ROUTE_UNMATCHED, "BREW", 405);
    ls_metrics_bind(ls_metrics_block(m, 1));
    request(0, "GET", 204);
    request(1, "POST", 503);
    request(LS_METRICS_ROUTE_HEALTHZ, "GET", 200);

    const char *t = scrape();
    expect_value(t, "ls_http_requests_total{route=\"/users/{telegram_id:id}\",method=\"GET\",status=\"2xx\"}",
                 3);
    expect_value(t, "ls_http_requests_total{route=\"/users/{telegram_id:id}\",method=\"GET\",status=\"4xx\"}",
                 1);
    expect_value(t, "ls_http_requests_total{route=\"/users\",method=\"POST\",status=\"5xx\"}", 1);
    expect_value(t, "ls_http_requests_total{route=\"unmatched\",method=\"other\",status=\"4xx\"}", 1);
    expect_value(t, "ls_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"2xx\"}", 1);
    expect_value(
        t, "ls_http_request_duration_seconds_count{route=\"/users/{telegram_id:id}\",method=\"GET\"}", 4);
    /* nothing counted: no series */
    expect_absent(t, "ls_http_requests_total{route=\"/users\",method=\"POST\",status=\"2xx\"}");
    expect_absent(t, "ls_http_request_duration_seconds_count{route=\"/readyz\",method=\"GET\"}");
    cr_expect_eq(count_lines(t, "# TYPE ls_http_requests_total counter"), 1);
    cr_expect_eq(count_lines(t, "# TYPE ls_http_request_duration_seconds histogram"), 1);
    cr_expect_eq(
        count_lines(t, "# HELP ls_http_requests_total Requests answered, by route, method and status class."),
        1);
    expect_value(t, "ls_build_info{daemon=\"auth-service\",version=\"0.1.0\"}", 1);
}

Test(metrics, histograms_have_cumulative_buckets_sum_and_count)
{
    int target;
    ls_metrics_bind(ls_metrics_block(m, 0));
    target = ls_metrics_target("students");
    ls_metrics_upstream_call(target, LS_UP_2XX, ls_metrics_now_ns() - 3000000ull, 1); /* 3 ms */
    ls_metrics_bind(ls_metrics_block(m, 1));
    cr_assert_eq(ls_metrics_target("students"), target);
    ls_metrics_upstream_call(target, LS_UP_5XX, ls_metrics_now_ns() - 30000000ull, 3); /* 30 ms, 2 retries */
    ls_metrics_upstream_call(target, LS_UP_TIMEOUT, ls_metrics_now_ns() - 20000000000ull, 1); /* 20 s */

    const char *t = scrape();
    const char *h = "ls_upstream_call_duration_seconds_bucket{target=\"students-service\",le=";
    static const struct {
        const char *le;
        double n;
    } want[] = {{"0.0005", 0}, {"0.001", 0}, {"0.0025", 0}, {"0.005", 1}, {"0.01", 1},
                {"0.025", 1},  {"0.05", 2},  {"0.1", 2},    {"0.25", 2},  {"0.5", 2},
                {"1", 2},      {"2.5", 2},   {"5", 2},      {"10", 2},    {"+Inf", 3}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char series[256];
        snprintf(series, sizeof(series), "%s\"%s\"}", h, want[i].le);
        expect_value(t, series, want[i].n);
    }
    expect_value(t, "ls_upstream_call_duration_seconds_count{target=\"students-service\"}", 3);
    double sum;
    cr_assert(lst_metric_in(t, "ls_upstream_call_duration_seconds_sum{target=\"students-service\"}", &sum));
    cr_expect(sum >= 20.033 && sum < 20.5, "sum %g", sum);
    expect_value(t, "ls_upstream_calls_total{target=\"students-service\",outcome=\"2xx\"}", 1);
    expect_value(t, "ls_upstream_calls_total{target=\"students-service\",outcome=\"5xx\"}", 1);
    expect_value(t, "ls_upstream_calls_total{target=\"students-service\",outcome=\"timeout\"}", 1);
    expect_value(t, "ls_upstream_retries_total{target=\"students-service\"}", 2);
    /* buckets come in order, before _sum and _count */
    const char *b10 = strstr(t, "le=\"10\"} 2\n"), *inf = strstr(t, "le=\"+Inf\"} 3\n"),
               *s = strstr(t, "ls_upstream_call_duration_seconds_sum{"),
               *c = strstr(t, "ls_upstream_call_duration_seconds_count{");
    cr_expect(b10 != NULL && inf != NULL && s != NULL && c != NULL && b10 < inf && inf < s && s < c, "%s", t);
}

Test(metrics, label_values_are_escaped)
{
    ls_text_t t = {0};
    ls_metrics_label_value(&t, "a\"b\\c\nd");
    ls_text_add(&t, "", 1);
    cr_expect_str_eq(t.buf, "a\\\"b\\\\c\\nd");
    ls_text_free(&t);

    static const ls_route_t odd[] = {{"GET", "/q\"uote\\d", NULL, 0}};
    ls_metrics_desc_t d = {.daemon = "x\ny", .version = "1", .routes = odd, .nroutes = 1, .nworkers = 1};
    ls_metrics_t *m2 = ls_metrics_create(&d);
    cr_assert_not_null(m2);
    ls_metrics_bind(ls_metrics_block(m2, 0));
    request(0, "GET", 200);
    ls_text_t o = {0};
    ls_metrics_write(m2, &o);
    ls_text_add(&o, "", 1);
    cr_expect(strstr(o.buf, "ls_build_info{daemon=\"x\\ny\",version=\"1\"} 1\n") != NULL, "%s", o.buf);
    cr_expect(strstr(o.buf,
                     "ls_http_requests_total{route=\"/q\\\"uote\\\\d\",method=\"GET\",status=\"2xx\"} 1\n") !=
                  NULL,
              "%s", o.buf);
    ls_text_free(&o);
    ls_metrics_bind(NULL);
    ls_metrics_destroy(m2);
}

Test(metrics, targets_are_labelled_and_bounded)
{
    ls_metrics_bind(ls_metrics_block(m, 0));
    int tg = ls_metrics_target("telegram"), st = ls_metrics_target("students-service");
    char name[32];
    int last = -1;
    for (int i = 0; i < LS_METRICS_MAX_TARGETS + 4; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        last = ls_metrics_target(name);
    }
    cr_expect_eq(last, LS_METRICS_MAX_TARGETS - 1, "names beyond the table count as other");
    ls_metrics_upstream_refused(tg, LS_UP_BREAKER_OPEN);
    ls_metrics_upstream_refused(st, LS_UP_SHED);
    ls_metrics_upstream_refused(last, LS_UP_SHED);
    ls_metrics_bff_breaker(st, 1);
    ls_metrics_bind(ls_metrics_block(m, 1));
    ls_metrics_bff_breaker(st, 0);
    ls_metrics_bff_partial(LS_VIEW_GROUP, st);
    ls_metrics_outbox_delivery(st, LS_OB_RETRY);

    const char *t = scrape();
    expect_value(t, "ls_upstream_calls_total{target=\"telegram\",outcome=\"breaker_open\"}", 1);
    expect_value(t, "ls_upstream_calls_total{target=\"students-service\",outcome=\"shed\"}", 1);
    expect_value(t, "ls_upstream_calls_total{target=\"other\",outcome=\"shed\"}", 1);
    expect_value(t, "ls_bff_breaker_open{target=\"students-service\"}", 1); /* open on one worker */
    expect_absent(t, "ls_bff_breaker_open{target=\"telegram\"}");
    expect_value(t, "ls_bff_partial_answers_total{view=\"group\",part=\"students-service\"}", 1);
    expect_value(t, "ls_outbox_deliveries_total{target=\"students-service\",outcome=\"retry\"}", 1);
}

Test(metrics, pool_gauges_errors_and_readiness)
{
    int a[LS_PGC_NSTATES] = {1, 1, 0, 0}, b[LS_PGC_NSTATES] = {0, 0, 1, 1};
    const char *t = scrape();
    expect_value(t, "ls_ready", 0); /* a database daemon with no connection yet */
    expect_value(t, "ls_outbox_pending_rows", 0);

    ls_metrics_bind(ls_metrics_block(m, 0));
    ls_metrics_pg_pool(a, 2);
    ls_metrics_pg_query(0, LS_PG_OK, "", ls_metrics_now_ns());
    ls_metrics_pg_query(0, LS_PG_SQL_ERROR, "23505", ls_metrics_now_ns());
    ls_metrics_pg_query(-1, LS_PG_SQL_ERROR, "", ls_metrics_now_ns());
    ls_metrics_pg_reconnect();
    ls_metrics_outbox_pending(7, 12.5);
    ls_metrics_bind(ls_metrics_block(m, 1));
    ls_metrics_pg_pool(b, 1);
    ls_metrics_pg_query(1, LS_PG_TIMEOUT, "", ls_metrics_now_ns());
    ls_metrics_pg_query(1, LS_PG_UNAVAILABLE, "", ls_metrics_now_ns());
    ls_metrics_pg_query(1, LS_PG_BUSY, "", ls_metrics_now_ns());
    ls_metrics_notification_delivery(LS_NT_STORED);

    t = scrape();
    expect_value(t, "ls_ready", 1);
    expect_value(t, "ls_pg_connections{state=\"ready\"}", 1);
    expect_value(t, "ls_pg_connections{state=\"busy\"}", 1);
    expect_value(t, "ls_pg_connections{state=\"connecting\"}", 1);
    expect_value(t, "ls_pg_connections{state=\"broken\"}", 1);
    expect_value(t, "ls_pg_waiting_requests", 3);
    expect_value(t, "ls_pg_reconnects_total", 1);
    expect_value(t, "ls_pg_query_duration_seconds_count{statement=\"user_get\"}", 2);
    expect_value(t, "ls_pg_query_duration_seconds_count{statement=\"user_put\"}", 3);
    expect_value(t, "ls_pg_query_duration_seconds_count{statement=\"other\"}", 1);
    expect_value(t, "ls_pg_errors_total{class=\"23\"}", 1);
    expect_value(t, "ls_pg_errors_total{class=\"XX\"}", 1);
    expect_value(t, "ls_pg_errors_total{class=\"timeout\"}", 1);
    expect_value(t, "ls_pg_errors_total{class=\"unavailable\"}", 1);
    expect_value(t, "ls_pg_errors_total{class=\"busy\"}", 1);
    expect_value(t, "ls_outbox_pending_rows", 7);
    expect_value(t, "ls_outbox_oldest_pending_age_seconds", 12.5);
    expect_value(t, "ls_notification_deliveries_total{outcome=\"stored\"}", 1);
    expect_absent(t, "ls_notification_queue_depth");
}

Test(metrics, process_gauges_come_from_proc)
{
    const char *t = scrape();
    double v;
    cr_assert(lst_metric_in(t, "process_start_time_seconds", &v));
    cr_expect(v > (double)time(NULL) - 3600 && v <= (double)time(NULL) + 1, "start %f", v);
    cr_assert(lst_metric_in(t, "process_threads", &v));
    cr_expect_geq(v, 1);
    cr_assert(lst_metric_in(t, "process_open_fds", &v));
    cr_expect_geq(v, 3);
    cr_assert(lst_metric_in(t, "process_resident_memory_bytes", &v));
    cr_expect_gt(v, 1e5);
    cr_assert(lst_metric_in(t, "process_max_fds", &v));
    cr_assert(lst_metric_in(t, "process_cpu_seconds_total", &v));
    cr_assert(lst_metric_in(t, "process_virtual_memory_bytes", &v));
}

Test(metrics, a_thread_with_no_block_records_nothing)
{
    request(0, "GET", 200);
    ls_metrics_pg_reconnect();
    const char *t = scrape();
    expect_absent(t,
                  "ls_http_requests_total{route=\"/users/{telegram_id:id}\",method=\"GET\",status=\"2xx\"}");
    expect_value(t, "ls_pg_reconnects_total", 0);
}
