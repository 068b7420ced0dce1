/*
 * resolve: host names looked up off the event loop, and the pool connecting through them (issue 13).
 *
 * The lookups that must be slow or scripted use a lookup function of the test's own (deterministic
 * and offline: no DNS server is asked); "localhost" goes through the real getaddrinfo (/etc/hosts).
 * Pool tests run against a private cluster listening on TCP 127.0.0.1. Each test drives its loop on
 * its own thread and waits for conditions with a bound.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "loop.h"
#include "pg.h"
#include "resolve.h"

#define RUN_UNTIL(loop, cond, ms)                                                                            \
    do {                                                                                                     \
        uint64_t limit_ = ls_now_ms() + (ms);                                                                \
        while (!(cond) && ls_now_ms() < limit_)                                                              \
            ls_loop_run_once((loop), 20);                                                                    \
    } while (0)

static void loop_close(ls_loop_t *loop)
{
    ls_loop_run_once(loop, 0); /* lets the evloop free the sockets closed meanwhile */
    cr_assert_eq(ls_loop_timer_count(loop), 0, "no timer left armed");
    ls_loop_destroy(loop);
}

/* ---- scripted lookups (run on the lookup thread) ---- */

static atomic_int lookups;        /* lookups started */
static atomic_int lookups_done;   /* lookups returned */
static atomic_int slow_ms;        /* how long a lookup takes */
static const char *answers[4];    /* the n-th lookup's answer; "fail": a failed lookup */
static atomic_int lookup_on_loop; /* a lookup ran on the thread that called lookup() */
static pthread_t loop_thread;

static int scripted(const char *host, char *addrs, size_t addrslen, char *err, size_t errlen)
{
    int n = atomic_fetch_add(&lookups, 1);
    if (pthread_equal(pthread_self(), loop_thread))
        atomic_store(&lookup_on_loop, 1);
    usleep((useconds_t)atomic_load(&slow_ms) * 1000);
    const char *a = NULL; /* the n-th answer, or the last one given before it */
    for (int i = n < 3 ? n : 3; i >= 0 && a == NULL; i--)
        a = answers[i];
    int rc = 0;
    if (a == NULL || strcmp(a, "fail") == 0) {
        snprintf(err, errlen, "no such host: %s", host);
        rc = -1;
    } else {
        snprintf(addrs, addrslen, "%s", a);
    }
    atomic_fetch_add(&lookups_done, 1);
    return rc;
}

static void script(int ms, const char *a0, const char *a1)
{
    atomic_store(&lookups, 0);
    atomic_store(&lookups_done, 0);
    atomic_store(&lookup_on_loop, 0);
    atomic_store(&slow_ms, ms);
    memset(answers, 0, sizeof(answers));
    answers[0] = a0;
    answers[1] = a1;
    loop_thread = pthread_self();
}

/* What the resolver's callback saw. */
typedef struct {
    int calls;
    char addrs[LS_RESOLVE_ADDRS_LEN];
    char err[LS_RESOLVE_ERR_LEN];
    uint64_t at;
} seen_t;

static void on_answer(void *ud, const char *addrs, const char *err)
{
    seen_t *s = ud;
    s->calls++;
    s->at = ls_now_ms();
    snprintf(s->addrs, sizeof(s->addrs), "%s", addrs != NULL ? addrs : "");
    snprintf(s->err, sizeof(s->err), "%s", err != NULL ? err : "");
    cr_assert((addrs == NULL) != (err == NULL), "either addresses or a reason");
}

/* A timer that fires every 10 ms while the loop runs: proof that nothing blocks it. */
typedef struct {
    ls_timer_t timer;
    ls_loop_t *loop;
    int ticks;
    uint64_t last, longest_gap;
} ticker_t;

static void on_tick(ls_timer_t *t)
{
    ticker_t *k = H2O_STRUCT_FROM_MEMBER(ticker_t, timer, t);
    uint64_t now = ls_now_ms();
    if (k->last != 0 && now - k->last > k->longest_gap)
        k->longest_gap = now - k->last;
    k->last = now;
    k->ticks++;
    ls_timer_start(k->loop, &k->timer, 10);
}

static void ticker_start(ticker_t *k, ls_loop_t *loop)
{
    memset(k, 0, sizeof(*k));
    k->loop = loop;
    ls_timer_init(&k->timer, on_tick);
    ls_timer_start(loop, &k->timer, 10);
}

/* ---- the resolver ---- */

Test(resolve, what_counts_as_a_name)
{
    cr_expect(ls_resolve_is_name("localhost"));
    cr_expect(ls_resolve_is_name("db-auth"));
    cr_expect(ls_resolve_is_name("db.school.example"));
    cr_expect_not(ls_resolve_is_name("127.0.0.1"));
    cr_expect_not(ls_resolve_is_name("::1"));
    cr_expect_not(ls_resolve_is_name("fd00::5"));
    cr_expect_not(ls_resolve_is_name("/run/postgresql"));
    cr_expect_not(ls_resolve_is_name("@abstract"));
    cr_expect_not(ls_resolve_is_name("a,b"));
    cr_expect_not(ls_resolve_is_name(""));
    cr_expect_not(ls_resolve_is_name(NULL));
}

Test(resolve, localhost_through_getaddrinfo)
{
    char addrs[LS_RESOLVE_ADDRS_LEN], err[LS_RESOLVE_ERR_LEN];
    cr_assert_eq(ls_resolve_getaddrinfo("localhost", addrs, sizeof(addrs), err, sizeof(err)), 0, "%s", err);
    cr_expect_neq(strstr(addrs, "127.0.0.1"), NULL, "%s", addrs);
    /* no repeats although getaddrinfo gives one entry per socket type */
    cr_expect_null(strstr(strstr(addrs, "127.0.0.1") + 1, "127.0.0.1"), "%s", addrs);

    ls_loop_t *loop = ls_loop_create();
    seen_t s = {0};
    ls_resolver_t *r = ls_resolver_create(loop, "localhost", NULL, on_answer, &s);
    cr_assert_not_null(r);
    cr_assert_eq(ls_resolver_lookup(r), 0);
    cr_expect_eq(s.calls, 0, "never called from inside lookup()");
    RUN_UNTIL(loop, s.calls != 0, 10000);
    cr_assert_eq(s.calls, 1);
    cr_expect_neq(strstr(s.addrs, "127.0.0.1"), NULL, "%s", s.addrs);
    cr_expect_not(ls_resolver_busy(r));
    ls_resolver_destroy(r);
    loop_close(loop);
}

Test(resolve, a_slow_lookup_does_not_stop_the_loop)
{
    script(1500, "10.1.2.3,fd00::7", NULL);
    ls_loop_t *loop = ls_loop_create();
    ticker_t k;
    ticker_start(&k, loop);
    seen_t s = {0};
    ls_resolver_t *r = ls_resolver_create(loop, "db.slow.invalid", scripted, on_answer, &s);
    uint64_t t0 = ls_now_ms();
    cr_assert_eq(ls_resolver_lookup(r), 0);
    cr_expect_lt(ls_now_ms() - t0, 100, "lookup() returns at once");
    /* asked again and again meanwhile: the running lookup answers them all */
    for (int i = 0; i < 5; i++) {
        RUN_UNTIL(loop, 0, 50);
        cr_assert_eq(ls_resolver_lookup(r), 0);
        cr_expect(ls_resolver_busy(r));
    }
    RUN_UNTIL(loop, s.calls != 0, 10000);
    cr_assert_eq(s.calls, 1);
    cr_expect_str_eq(s.addrs, "10.1.2.3,fd00::7");
    cr_expect_geq(s.at - t0, 1500);
    cr_expect_eq(atomic_load(&lookups), 1, "one lookup for every caller");
    cr_expect_not(atomic_load(&lookup_on_loop), "the lookup ran on a thread of its own");
    cr_expect_geq(k.ticks, 100, "the loop kept serving timers (%d ticks)", k.ticks);
    cr_expect_lt(k.longest_gap, 200, "no gap between ticks (longest %llu ms)",
                 (unsigned long long)k.longest_gap);

    /* the next lookup is a new one */
    script(0, "fail", NULL);
    s = (seen_t){0};
    cr_assert_eq(ls_resolver_lookup(r), 0);
    RUN_UNTIL(loop, s.calls != 0, 10000);
    cr_assert_eq(s.calls, 1);
    cr_expect_str_eq(s.err, "no such host: db.slow.invalid");
    cr_expect_eq(atomic_load(&lookups), 1);

    ls_timer_stop(loop, &k.timer);
    ls_resolver_destroy(r);
    loop_close(loop);
}

Test(resolve, destroyed_mid_lookup)
{
    script(600, "10.0.0.1", NULL);
    ls_loop_t *loop = ls_loop_create();
    seen_t s = {0};
    ls_resolver_t *r = ls_resolver_create(loop, "db.slow.invalid", scripted, on_answer, &s);
    cr_assert_eq(ls_resolver_lookup(r), 0);
    RUN_UNTIL(loop, 0, 100);
    uint64_t t0 = ls_now_ms();
    ls_resolver_destroy(r);
    cr_expect_lt(ls_now_ms() - t0, 50, "destroy does not wait for the lookup");
    /* the thread finishes on its own and frees its part (LeakSanitizer checks at exit) */
    RUN_UNTIL(loop, atomic_load(&lookups_done) == 1, 5000);
    cr_assert_eq(atomic_load(&lookups_done), 1);
    RUN_UNTIL(loop, 0, 200);
    cr_expect_eq(s.calls, 0, "no callback after destroy");
    loop_close(loop);
}

Test(resolve, libcurl_resolves_without_blocking)
{
    const char *kind = ls_resolve_curl_kind();
    cr_assert_not_null(kind, "this build's libcurl has no AsynchDNS: its lookups would block the loops");
    cr_expect(strcmp(kind, "threaded") == 0 || strcmp(kind, "c-ares") == 0, "%s", kind);
}

/* ---- the pool through a host name ---- */

static const ls_pg_stmt_t stmts[] = {
    {"server_addr", "SELECT host(inet_server_addr())", 0},
};

typedef struct {
    int calls;
    ls_pg_status_t status;
    char value[64];
} res_t;

static void on_res(void *ud, ls_pg_status_t status, PGresult *res)
{
    res_t *r = ud;
    r->calls++;
    r->status = status;
    r->value[0] = '\0';
    if (status == LS_PG_OK && PQntuples(res) > 0)
        snprintf(r->value, sizeof(r->value), "%s", PQgetisnull(res, 0, 0) ? "<null>" : PQgetvalue(res, 0, 0));
}

static ls_pg_pool_t *pool_new(ls_loop_t *loop, const char *conninfo, int nconns, ls_resolve_fn fn)
{
    ls_pg_config_t cfg = {
        .conninfo = conninfo,
        .application_name = "test_resolve",
        .nconns = nconns,
        .stmts = stmts,
        .nstmts = sizeof(stmts) / sizeof(stmts[0]),
        .resolve = fn,
    };
    ls_pg_pool_t *pool = ls_pg_pool_create(loop, &cfg);
    cr_assert_not_null(pool);
    return pool;
}

/* The address the server saw the pool's connection arrive on: TCP, never the socket folder. */
static void expect_server_addr(ls_loop_t *loop, ls_pg_pool_t *pool, const char *want)
{
    res_t r = {0};
    ls_pg_exec(pool, 0, 0, NULL, ls_now_ms() + 5000, on_res, &r);
    RUN_UNTIL(loop, r.calls != 0, 6000);
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.status, LS_PG_OK);
    cr_expect_str_eq(r.value, want);
}

/* A private cluster on TCP, reached through host, and a loop for the pool. */
typedef struct {
    lst_cluster_t c;
    char *conninfo;
    ls_loop_t *loop;
} tcp_fx_t;

static void tcp_open(tcp_fx_t *f, const char *host)
{
    lst_cluster_create_tcp(&f->c);
    f->conninfo = lst_cluster_conninfo_tcp(&f->c, host, "postgres");
    f->loop = ls_loop_create();
    cr_assert_not_null(f->loop);
}

static void tcp_close(tcp_fx_t *f, ls_pg_pool_t *pool)
{
    ls_pg_pool_destroy(pool);
    loop_close(f->loop);
    free(f->conninfo);
    lst_cluster_destroy(&f->c);
}

Test(resolve_pool, connects_through_localhost, .timeout = 120)
{
    tcp_fx_t f;
    tcp_open(&f, "localhost");
    ls_loop_t *loop = f.loop;
    ls_pg_pool_t *pool = pool_new(loop, f.conninfo, 2, NULL);
    RUN_UNTIL(loop, ls_pg_pool_ready_count(pool) == 2, 10000);
    cr_assert_eq(ls_pg_pool_ready_count(pool), 2, "both connections ready through the name");
    expect_server_addr(loop, pool, "127.0.0.1");
    tcp_close(&f, pool);
}

Test(resolve_pool, a_slow_lookup_keeps_the_loop_serving, .timeout = 120)
{
    /* A name that no DNS knows (.invalid): the pool connects only if it uses our lookup's address. */
    tcp_fx_t f;
    tcp_open(&f, "db.slow.invalid");
    script(1200, "127.0.0.1", NULL);
    ls_loop_t *loop = f.loop;
    ticker_t k;
    ticker_start(&k, loop);
    uint64_t t0 = ls_now_ms();
    ls_pg_pool_t *pool = pool_new(loop, f.conninfo, 3, scripted);
    cr_expect_lt(ls_now_ms() - t0, 100, "creating the pool does not wait for the lookup");

    /* a query submitted meanwhile waits for the first connection, bounded by its deadline */
    res_t early = {0};
    ls_pg_exec(pool, 0, 0, NULL, ls_now_ms() + 8000, on_res, &early);
    RUN_UNTIL(loop, ls_pg_pool_ready_count(pool) == 3, 10000);
    cr_assert_eq(ls_pg_pool_ready_count(pool), 3);
    cr_expect_geq(ls_now_ms() - t0, 1200);
    cr_expect_eq(atomic_load(&lookups), 1, "the three connections shared one lookup");
    cr_expect_geq(k.ticks, 80, "the loop kept serving timers during the lookup (%d ticks)", k.ticks);
    cr_expect_lt(k.longest_gap, 300, "longest gap between ticks %llu ms", (unsigned long long)k.longest_gap);
    RUN_UNTIL(loop, early.calls != 0, 6000);
    cr_expect_eq(early.status, LS_PG_OK);
    cr_expect_str_eq(early.value, "127.0.0.1");

    ls_timer_stop(loop, &k.timer);
    tcp_close(&f, pool);
}

Test(resolve_pool, every_attempt_resolves_again, .timeout = 120)
{
    tcp_fx_t f;
    tcp_open(&f, "db.moved.invalid");
    /* The first answer is an address nobody listens on (the container's old address); the next
     * attempt must ask again and get the right one. */
    script(0, "127.0.0.2", "127.0.0.1");
    ls_loop_t *loop = f.loop;
    ls_pg_pool_t *pool = pool_new(loop, f.conninfo, 1, scripted);
    RUN_UNTIL(loop, ls_pg_pool_ready_count(pool) == 1, 10000);
    cr_assert_eq(ls_pg_pool_ready_count(pool), 1, "connected after a second lookup");
    cr_expect_eq(atomic_load(&lookups), 2);
    expect_server_addr(loop, pool, "127.0.0.1");

    /* the server restarts: the reconnection looks the name up again */
    cr_assert_eq(lst_cluster_stop(&f.c), 0);
    RUN_UNTIL(loop, ls_pg_pool_ready_count(pool) == 0, 5000);
    cr_assert_eq(lst_cluster_start(&f.c), 0);
    RUN_UNTIL(loop, ls_pg_pool_ready_count(pool) == 1, 15000);
    cr_assert_eq(ls_pg_pool_ready_count(pool), 1, "reconnected");
    cr_expect_geq(atomic_load(&lookups), 3, "a lookup per reconnection attempt");
    expect_server_addr(loop, pool, "127.0.0.1");

    tcp_close(&f, pool);
}

Test(resolve_pool, a_failed_lookup_is_retried_and_destroy_mid_lookup_is_clean, .timeout = 60)
{
    /* Nothing listens: only the lookups matter. The first fails, the retries hang in a slow lookup
     * when the pool is destroyed. */
    script(0, "fail", NULL);
    ls_loop_t *loop = ls_loop_create();
    ls_pg_pool_t *pool =
        pool_new(loop, "host=db.gone.invalid port=1 dbname=x user=x connect_timeout=2", 2, scripted);
    res_t r = {0};
    RUN_UNTIL(loop, atomic_load(&lookups_done) >= 1, 5000);
    RUN_UNTIL(loop, 0, 50);
    ls_pg_exec(pool, 0, 0, NULL, 0, on_res, &r);
    RUN_UNTIL(loop, r.calls != 0, 2000);
    cr_expect_eq(r.status, LS_PG_UNAVAILABLE, "a pool whose name does not resolve answers 'unavailable'");
    atomic_store(&slow_ms, 800);
    RUN_UNTIL(loop, atomic_load(&lookups) > atomic_load(&lookups_done), 5000);
    cr_assert_gt(atomic_load(&lookups), atomic_load(&lookups_done), "a retry's lookup is running");
    int before = atomic_load(&lookups);
    ls_pg_pool_destroy(pool);
    RUN_UNTIL(loop, atomic_load(&lookups_done) == before, 5000);
    cr_expect_eq(atomic_load(&lookups_done), before, "the abandoned lookup ended on its own");
    loop_close(loop);
}
