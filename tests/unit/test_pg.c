/*
 * pg: the asynchronous pool against real PostgreSQL (run through tests/run, which provides the
 * shared cluster; reconnection tests start a private one). Each test drives an ls_loop_t on its own
 * thread and waits for conditions with a bound, never with sleeps.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "loop.h"
#include "metrics.h"
#include "pg.h"
#include "text.h"

enum { S_ECHO, S_ISNULL, S_ADD, S_INS, S_COUNT, S_SLEEP };

static const ls_pg_stmt_t stmts[] = {
    {"echo", "SELECT $1::text", 1},
    {"isnull", "SELECT ($1::text IS NULL)::text", 1},
    {"add", "SELECT ($1::int + $2::int)::text", 2},
    {"ins", "INSERT INTO items (id, name) VALUES ($1::int, $2::text)", 2},
    {"count", "SELECT count(*)::text FROM items WHERE id = $1::int", 1},
    {"sleep", "SELECT pg_sleep($1::float8)::text", 1},
};

/* Statements that need no table, for the private cluster's postgres database. */
static const ls_pg_stmt_t plain_stmts[] = {
    {"echo", "SELECT $1::text", 1},
    {"isnull", "SELECT ($1::text IS NULL)::text", 1},
    {"add", "SELECT ($1::int + $2::int)::text", 2},
    {"sleep", "SELECT pg_sleep($1::float8)::text", 1},
};
enum { P_ECHO, P_ISNULL, P_ADD, P_SLEEP };

#define RUN_UNTIL(loop, cond, ms)                                                                            \
    do {                                                                                                     \
        uint64_t limit_ = ls_now_ms() + (ms);                                                                \
        while (!(cond) && ls_now_ms() < limit_)                                                              \
            ls_loop_run_once((loop), 50);                                                                    \
    } while (0)

/* What one callback saw. */
typedef struct {
    int calls;
    ls_pg_status_t status;
    char value[64];
    char sqlstate[8];
    int submitted; /* set by the test right after submitting */
    int submitted_at_call;
    uint64_t at; /* ls_now_ms() of the callback */
} res_t;

static void on_res(void *ud, ls_pg_status_t status, PGresult *res)
{
    res_t *r = ud;
    r->calls++;
    r->status = status;
    r->submitted_at_call = r->submitted;
    r->at = ls_now_ms();
    r->value[0] = '\0';
    r->sqlstate[0] = '\0';
    if (status == LS_PG_OK) {
        cr_assert_not_null(res);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
            snprintf(r->value, sizeof(r->value), "%s",
                     PQgetisnull(res, 0, 0) ? "<null>" : PQgetvalue(res, 0, 0));
    } else if (status == LS_PG_SQL_ERROR && res != NULL) {
        snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", ls_pg_sqlstate(res));
        cr_assert_neq(ls_pg_errmsg(res)[0], '\0', "an SQL error carries a message");
    } else {
        cr_assert_null(res, "no result with status %d", status);
    }
}

typedef struct {
    int calls;
    ls_pg_status_t status;
    ls_pg_txn_t *txn;
    int submitted, submitted_at_call;
    uint64_t at;
} begin_t;

static void on_begin(void *ud, ls_pg_status_t status, ls_pg_txn_t *txn)
{
    begin_t *b = ud;
    b->calls++;
    b->status = status;
    b->txn = txn;
    b->submitted_at_call = b->submitted;
    b->at = ls_now_ms();
    if (status == LS_PG_OK)
        cr_assert_not_null(txn);
    else
        cr_assert_null(txn);
}

typedef struct {
    ls_loop_t *loop;
    ls_pg_pool_t *pool;
    char *conninfo;
} fx_t;

static void blocking_exec(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

static ls_pg_pool_t *pool_open(ls_loop_t *loop, const char *conninfo, int nconns, size_t queue_max,
                               const ls_pg_stmt_t *table, size_t n)
{
    ls_pg_config_t cfg = {
        .conninfo = conninfo,
        .application_name = "test_pg",
        .nconns = nconns,
        .queue_max = queue_max,
        .stmts = table,
        .nstmts = n,
    };
    ls_pg_pool_t *pool = ls_pg_pool_create(loop, &cfg);
    cr_assert_not_null(pool);
    RUN_UNTIL(loop, ls_pg_pool_ready_count(pool) == nconns, 10000);
    cr_assert_eq(ls_pg_pool_ready_count(pool), nconns, "all connections ready within 10 s");
    return pool;
}

static void fx_open(fx_t *f, int nconns, size_t queue_max)
{
    f->loop = ls_loop_create();
    cr_assert_not_null(f->loop);
    f->conninfo = lst_db_create("pgpool", NULL);
    blocking_exec(f->conninfo, "CREATE TABLE items (id int PRIMARY KEY, name text)");
    f->pool = pool_open(f->loop, f->conninfo, nconns, queue_max, stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static void loop_close(ls_loop_t *loop)
{
    /* let the evloop free the sockets closed by the pool */
    ls_loop_run_once(loop, 0);
    cr_assert_eq(ls_loop_timer_count(loop), 0, "the pool left no timer armed");
    ls_loop_destroy(loop);
}

static void fx_close(fx_t *f)
{
    ls_pg_pool_destroy(f->pool);
    loop_close(f->loop);
    free(f->conninfo);
}

static void wait_res(ls_loop_t *loop, res_t *r)
{
    RUN_UNTIL(loop, r->calls != 0, 10000);
    cr_assert_eq(r->calls, 1, "exactly one callback");
}

/* Runs one prepared statement and waits for it. */
static res_t run_stmt(fx_t *f, size_t stmt, int n, const char *const *params)
{
    res_t r = {0};
    ls_pg_exec(f->pool, stmt, n, params, 0, on_res, &r);
    wait_res(f->loop, &r);
    return r;
}

static res_t run_txn(fx_t *f, ls_pg_txn_t *txn, size_t stmt, int n, const char *const *params)
{
    res_t r = {0};
    ls_pg_txn_exec(txn, stmt, n, params, on_res, &r);
    wait_res(f->loop, &r);
    return r;
}

static ls_pg_txn_t *begin(fx_t *f, uint64_t deadline)
{
    begin_t b = {0};
    ls_pg_begin(f->pool, deadline, on_begin, &b);
    RUN_UNTIL(f->loop, b.calls != 0, 10000);
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(b.status, LS_PG_OK);
    return b.txn;
}

static res_t finish(fx_t *f, ls_pg_txn_t *txn, int commit)
{
    res_t r = {0};
    ls_pg_txn_finish(txn, commit, on_res, &r);
    wait_res(f->loop, &r);
    return r;
}

static const char *count_of(fx_t *f, const char *id, res_t *r)
{
    const char *p[] = {id};
    *r = run_stmt(f, S_COUNT, 1, p);
    cr_assert_eq(r->status, LS_PG_OK);
    return r->value;
}

Test(pg, prepared_with_params_and_null)
{
    fx_t f;
    fx_open(&f, 2, 0);

    const char *hello[] = {"héllo 'quoted'"};
    res_t r = run_stmt(&f, S_ECHO, 1, hello);
    cr_assert_eq(r.status, LS_PG_OK);
    cr_assert_str_eq(r.value, "héllo 'quoted'");

    const char *null[] = {NULL};
    r = run_stmt(&f, S_ISNULL, 1, null);
    cr_assert_eq(r.status, LS_PG_OK);
    cr_assert_str_eq(r.value, "true");
    r = run_stmt(&f, S_ECHO, 1, null);
    cr_assert_str_eq(r.value, "<null>");

    const char *add[] = {"40", "2"};
    r = run_stmt(&f, S_ADD, 2, add);
    cr_assert_str_eq(r.value, "42");

    /* unprepared SQL with parameters */
    res_t s = {0};
    const char *p[] = {"21"};
    ls_pg_exec_sql(f.pool, "SELECT ($1::int * 2)::text", 1, p, 0, on_res, &s);
    wait_res(f.loop, &s);
    cr_assert_eq(s.status, LS_PG_OK);
    cr_assert_str_eq(s.value, "42");

    /* every session runs in UTC and names itself */
    res_t tz = {0}, app = {0};
    ls_pg_exec_sql(f.pool, "SHOW TimeZone", 0, NULL, 0, on_res, &tz);
    ls_pg_exec_sql(f.pool, "SELECT current_setting('application_name')", 0, NULL, 0, on_res, &app);
    wait_res(f.loop, &tz);
    wait_res(f.loop, &app);
    cr_assert_str_eq(tz.value, "UTC");
    cr_assert_str_eq(app.value, "test_pg");

    /* parameters are copied: the caller's buffer can change right after the call */
    char buf[16] = "first";
    const char *bp[] = {buf};
    res_t c = {0};
    ls_pg_exec(f.pool, S_ECHO, 1, bp, 0, on_res, &c);
    strcpy(buf, "second");
    wait_res(f.loop, &c);
    cr_assert_str_eq(c.value, "first");

    fx_close(&f);
}

Test(pg, many_concurrent_queries_match_their_params)
{
    fx_t f;
    fx_open(&f, 2, 0);
    enum { N = 500 };
    static res_t r[N];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        const char *p[] = {v};
        ls_pg_exec(f.pool, S_ECHO, 1, p, 0, on_res, &r[i]);
    }
    int done = 0;
    uint64_t limit = ls_now_ms() + 20000;
    while (done < N && ls_now_ms() < limit) {
        ls_loop_run_once(f.loop, 50);
        for (done = 0; done < N && r[done].calls != 0; done++)
            ;
    }
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        cr_assert_eq(r[i].calls, 1, "query %d called back once", i);
        cr_assert_eq(r[i].status, LS_PG_OK, "query %d", i);
        cr_assert_str_eq(r[i].value, v, "query %d got its own value", i);
    }
    fx_close(&f);
}

Test(pg, sql_error_does_not_disturb_pipelined_neighbours)
{
    fx_t f;
    fx_open(&f, 1, 0); /* one connection: everything shares one pipeline */
    const char *first[] = {"1", "one"};
    cr_assert_eq(run_stmt(&f, S_INS, 2, first).status, LS_PG_OK);

    res_t a = {0}, dup = {0}, b = {0}, ins2 = {0}, div = {0}, c = {0};
    const char *pa[] = {"a"}, *pdup[] = {"1", "again"}, *pb[] = {"b"}, *p2[] = {"2", "two"}, *pc[] = {"c"};
    ls_pg_exec(f.pool, S_ECHO, 1, pa, 0, on_res, &a);
    ls_pg_exec(f.pool, S_INS, 2, pdup, 0, on_res, &dup);
    ls_pg_exec(f.pool, S_ECHO, 1, pb, 0, on_res, &b);
    ls_pg_exec(f.pool, S_INS, 2, p2, 0, on_res, &ins2);
    ls_pg_exec_sql(f.pool, "SELECT 1 / 0", 0, NULL, 0, on_res, &div);
    ls_pg_exec(f.pool, S_ECHO, 1, pc, 0, on_res, &c);
    RUN_UNTIL(f.loop, c.calls != 0, 10000);

    cr_assert_eq(a.status, LS_PG_OK);
    cr_assert_str_eq(a.value, "a");
    cr_assert_eq(dup.status, LS_PG_SQL_ERROR);
    cr_assert_str_eq(dup.sqlstate, "23505");
    cr_assert_eq(b.status, LS_PG_OK);
    cr_assert_str_eq(b.value, "b");
    cr_assert_eq(ins2.status, LS_PG_OK, "a write after a failed one is not aborted");
    cr_assert_eq(div.status, LS_PG_SQL_ERROR);
    cr_assert_str_eq(div.sqlstate, "22012");
    cr_assert_eq(c.status, LS_PG_OK);
    cr_assert_str_eq(c.value, "c");

    res_t n;
    cr_assert_str_eq(count_of(&f, "2", &n), "1", "the neighbour's insert was committed");
    fx_close(&f);
}

Test(pg, full_queue_is_busy_at_once)
{
    fx_t f;
    fx_open(&f, 1, 4);
    /* one connection: LS_PG_PIPELINE_DEPTH in flight plus 4 waiting; the rest are refused */
    enum { N = LS_PG_PIPELINE_DEPTH + 4 + 3 };
    res_t r[N];
    memset(r, 0, sizeof(r));
    const char *slow[] = {"0.3"}, *fast[] = {"0.01"};
    for (int i = 0; i < N; i++)
        ls_pg_exec(f.pool, S_SLEEP, 1, i == 0 ? slow : fast, 0, on_res, &r[i]);
    for (int i = 0; i < N; i++)
        cr_assert_eq(r[i].calls, 0, "no callback inside ls_pg_exec");

    RUN_UNTIL(f.loop, r[N - 1].calls != 0, 1000);
    for (int i = LS_PG_PIPELINE_DEPTH + 4; i < N; i++) {
        cr_assert_eq(r[i].calls, 1);
        cr_assert_eq(r[i].status, LS_PG_BUSY, "query %d refused", i);
    }
    for (int i = 0; i < LS_PG_PIPELINE_DEPTH + 4; i++)
        cr_assert_eq(r[i].calls, 0, "query %d still waiting when the refusals came", i);

    RUN_UNTIL(f.loop, r[LS_PG_PIPELINE_DEPTH + 3].calls != 0, 30000);
    for (int i = 0; i < LS_PG_PIPELINE_DEPTH + 4; i++)
        cr_assert_eq(r[i].status, LS_PG_OK, "query %d", i);
    fx_close(&f);
}

Test(pg, deadline_times_out_and_connection_stays_usable)
{
    fx_t f;
    fx_open(&f, 1, 0);
    res_t slow = {0}, behind = {0}, late = {0}, past = {0};
    const char *p[] = {"1"};
    uint64_t t0 = ls_now_ms();
    ls_pg_exec(f.pool, S_SLEEP, 1, p, t0 + 200, on_res, &slow);
    const char *pb[] = {"behind"};
    ls_pg_exec(f.pool, S_ECHO, 1, pb, 0, on_res, &behind);
    /* already past: refused without touching the server */
    ls_pg_exec(f.pool, S_ECHO, 1, pb, t0 > 0 ? t0 - 1 : 1, on_res, &past);
    cr_assert_eq(past.calls, 0);

    RUN_UNTIL(f.loop, slow.calls != 0, 5000);
    uint64_t took = slow.at - t0;
    cr_assert_eq(slow.status, LS_PG_TIMEOUT);
    cr_assert(took >= 190 && took < 600, "timed out after %llu ms", (unsigned long long)took);
    cr_assert_eq(behind.calls, 0, "the query behind the sleep is still waiting for it");

    RUN_UNTIL(f.loop, behind.calls != 0, 5000);
    cr_assert_eq(behind.status, LS_PG_OK);
    cr_assert_str_eq(behind.value, "behind");
    cr_assert_eq(past.status, LS_PG_TIMEOUT);

    /* a queued query times out too: the pipeline is full of sleeps */
    res_t fill[LS_PG_PIPELINE_DEPTH];
    memset(fill, 0, sizeof(fill));
    const char *longer[] = {"0.5"}, *fast[] = {"0.01"};
    for (int i = 0; i < LS_PG_PIPELINE_DEPTH; i++)
        ls_pg_exec(f.pool, S_SLEEP, 1, i == 0 ? longer : fast, 0, on_res, &fill[i]);
    uint64_t t1 = ls_now_ms();
    ls_pg_exec(f.pool, S_ECHO, 1, pb, t1 + 150, on_res, &late);
    RUN_UNTIL(f.loop, late.calls != 0, 5000);
    cr_assert_eq(late.status, LS_PG_TIMEOUT);
    cr_assert_lt(late.at - t1, 400);
    RUN_UNTIL(f.loop, fill[LS_PG_PIPELINE_DEPTH - 1].calls != 0, 20000);
    for (int i = 0; i < LS_PG_PIPELINE_DEPTH; i++)
        cr_assert_eq(fill[i].status, LS_PG_OK);

    const char *pe[] = {"after"};
    res_t after = run_stmt(&f, S_ECHO, 1, pe);
    cr_assert_eq(after.status, LS_PG_OK);
    cr_assert_str_eq(after.value, "after");
    fx_close(&f);
}

/* Statements of db still running pg_sleep, as the server sees them. */
static int sleeps_running(const char *db)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND state = 'active' "
             "AND query LIKE '%%pg_sleep%%' AND pid <> pg_backend_pid()",
             db);
    char *v = lst_pg_admin_exec("postgres", sql);
    int n = atoi(v);
    free(v);
    return n;
}

Test(pg, statement_past_its_deadline_is_cancelled_on_the_server)
{
    fx_t f;
    fx_open(&f, 1, 0);
#if LS_METRICS
    ls_metrics_desc_t md = {.daemon = "test_pg",
                            .version = "0",
                            .stmts = stmts,
                            .nstmts = 6,
                            .nworkers = 1,
                            .features = LS_METRICS_F_DB};
    ls_metrics_t *m = ls_metrics_create(&md);
    cr_assert_not_null(m);
    ls_metrics_bind(ls_metrics_block(m, 0));
#endif
    res_t dbr = {0};
    ls_pg_exec_sql(f.pool, "SELECT current_database()::text", 0, NULL, 0, on_res, &dbr);
    wait_res(f.loop, &dbr);
    cr_assert_eq(dbr.status, LS_PG_OK);

    /* one connection: a 5 s statement past a 300 ms deadline, then a query right behind it */
    res_t slow = {0}, next = {0};
    const char *five[] = {"5"};
    uint64_t t0 = ls_now_ms();
    ls_pg_exec(f.pool, S_SLEEP, 1, five, t0 + 300, on_res, &slow);
    RUN_UNTIL(f.loop, slow.calls != 0, 5000);
    cr_assert_eq(slow.status, LS_PG_TIMEOUT);
    cr_assert(slow.at - t0 >= 290 && slow.at - t0 < 700, "answered at the deadline (%llu ms)",
              (unsigned long long)(slow.at - t0));
    const char *pn[] = {"next"};
    ls_pg_exec(f.pool, S_ECHO, 1, pn, 0, on_res, &next);
    RUN_UNTIL(f.loop, next.calls != 0, 10000);
    cr_assert_eq(next.status, LS_PG_OK);
    cr_assert_str_eq(next.value, "next");
    cr_assert_lt(next.at - t0, 1500, "the connection was free again at once, not after 5 s (%llu ms)",
                 (unsigned long long)(next.at - t0));
    cr_assert_eq(sleeps_running(dbr.value), 0, "the server runs no pg_sleep any more");

    /* the same inside a transaction: the statement is cancelled, the ROLLBACK behind it releases */
    uint64_t t1 = ls_now_ms();
    ls_pg_txn_t *txn = begin(&f, t1 + 300);
    res_t in_txn = run_txn(&f, txn, S_SLEEP, 1, five);
    cr_assert_eq(in_txn.status, LS_PG_TIMEOUT);
    cr_assert_eq(finish(&f, txn, 1).status, LS_PG_TIMEOUT);
    res_t again = run_stmt(&f, S_ECHO, 1, pn);
    cr_assert_eq(again.status, LS_PG_OK);
    cr_assert_lt(again.at - t1, 1500, "free again at once after the transaction (%llu ms)",
                 (unsigned long long)(again.at - t1));
    char sql[256];
    snprintf(
        sql, sizeof(sql),
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND state LIKE 'idle in transaction%%'",
        dbr.value);
    char *in_txn_now = lst_pg_admin_exec("postgres", sql);
    cr_assert_str_eq(in_txn_now, "0", "the session is out of the cancelled transaction");
    free(in_txn_now);
    cr_assert_eq(sleeps_running(dbr.value), 0);

#if LS_METRICS
    ls_text_t t = {0};
    ls_metrics_write(m, &t);
    ls_text_add(&t, "", 1);
    cr_assert(!t.failed);
    double cancels = 0;
    cr_assert(lst_metric_in(t.buf, "ls_pg_cancels_total", &cancels), "%s", t.buf);
    cr_assert_eq(cancels, 2, "one cancel for each abandoned statement");
    ls_text_free(&t);
    ls_metrics_bind(NULL);
    ls_metrics_destroy(m);
#endif

    /* a statement someone still waits for is never cancelled: the one behind it times out alone */
    res_t wanted = {0}, behind = {0};
    const char *half[] = {"0.5"};
    uint64_t t2 = ls_now_ms();
    ls_pg_exec(f.pool, S_SLEEP, 1, half, 0, on_res, &wanted);
    ls_pg_exec(f.pool, S_ECHO, 1, pn, t2 + 100, on_res, &behind);
    RUN_UNTIL(f.loop, wanted.calls != 0, 5000);
    cr_assert_eq(behind.status, LS_PG_TIMEOUT);
    cr_assert_eq(wanted.status, LS_PG_OK, "the statement still wanted ran to its end");

    fx_close(&f);
}

Test(pg, statement_timeout_is_the_backstop)
{
    ls_loop_t *loop = ls_loop_create();
    char *ci = lst_db_create("pgst", NULL);
    ls_pg_config_t cfg = {.conninfo = ci,
                          .application_name = "test_pg",
                          .nconns = 1,
                          .stmts = stmts + 5,
                          .nstmts = 1,
                          .statement_timeout_ms = 250};
    ls_pg_pool_t *pool = ls_pg_pool_create(loop, &cfg);
    cr_assert_not_null(pool);
    RUN_UNTIL(loop, ls_pg_pool_ready_count(pool) == 1, 10000);
    cr_assert_eq(ls_pg_pool_ready_count(pool), 1);

    res_t show = {0};
    ls_pg_exec_sql(pool, "SHOW statement_timeout", 0, NULL, 0, on_res, &show);
    RUN_UNTIL(loop, show.calls != 0, 5000);
    cr_assert_str_eq(show.value, "250ms");

    /* no deadline: the server ends the statement itself */
    res_t slow = {0};
    const char *two[] = {"2"};
    uint64_t t0 = ls_now_ms();
    ls_pg_exec(pool, 0, 1, two, 0, on_res, &slow);
    RUN_UNTIL(loop, slow.calls != 0, 5000);
    cr_assert_eq(slow.status, LS_PG_SQL_ERROR);
    cr_assert_str_eq(slow.sqlstate, "57014");
    cr_assert(slow.at - t0 >= 240 && slow.at - t0 < 1500, "ended after %llu ms",
              (unsigned long long)(slow.at - t0));

    const char *short_sleep[] = {"0.01"};
    res_t ok = {0};
    ls_pg_exec(pool, 0, 1, short_sleep, 0, on_res, &ok);
    RUN_UNTIL(loop, ok.calls != 0, 5000);
    cr_assert_eq(ok.status, LS_PG_OK, "the connection serves on");

    ls_pg_pool_destroy(pool);
    loop_close(loop);
    free(ci);
}

Test(pg, transaction_commit_rollback_and_error)
{
    fx_t f;
    fx_open(&f, 1, 0);
    res_t n;

    /* commit: visible; meanwhile the only connection is reserved and other work waits */
    ls_pg_txn_t *txn = begin(&f, 0);
    const char *p10[] = {"10", "ten"};
    cr_assert_eq(run_txn(&f, txn, S_INS, 2, p10).status, LS_PG_OK);
    res_t waiting = {0};
    const char *pw[] = {"waiting"};
    ls_pg_exec(f.pool, S_ECHO, 1, pw, 0, on_res, &waiting);
    RUN_UNTIL(f.loop, waiting.calls != 0, 200);
    cr_assert_eq(waiting.calls, 0, "a reserved connection takes no other query");
    cr_assert_eq(finish(&f, txn, 1).status, LS_PG_OK);
    RUN_UNTIL(f.loop, waiting.calls != 0, 5000);
    cr_assert_str_eq(waiting.value, "waiting");
    cr_assert_str_eq(count_of(&f, "10", &n), "1");

    /* rollback: invisible */
    txn = begin(&f, 0);
    const char *p11[] = {"11", "eleven"};
    cr_assert_eq(run_txn(&f, txn, S_INS, 2, p11).status, LS_PG_OK);
    cr_assert_eq(finish(&f, txn, 0).status, LS_PG_OK);
    cr_assert_str_eq(count_of(&f, "11", &n), "0");

    /* an error inside: later statements fail, commit reports the error and rolls back */
    txn = begin(&f, 0);
    const char *p12[] = {"12", "twelve"}, *pdup[] = {"10", "dup"}, *p13[] = {"13", "x"};
    cr_assert_eq(run_txn(&f, txn, S_INS, 2, p12).status, LS_PG_OK);
    res_t e = run_txn(&f, txn, S_INS, 2, pdup);
    cr_assert_eq(e.status, LS_PG_SQL_ERROR);
    cr_assert_str_eq(e.sqlstate, "23505");
    e = run_txn(&f, txn, S_INS, 2, p13);
    cr_assert_eq(e.status, LS_PG_SQL_ERROR);
    cr_assert_str_eq(e.sqlstate, "25P02", "in a failed transaction");
    res_t c = finish(&f, txn, 1);
    cr_assert_eq(c.status, LS_PG_SQL_ERROR, "commit of a failed transaction");
    cr_assert_str_eq(c.sqlstate, "23505", "it reports the error that failed it");
    cr_assert_str_eq(count_of(&f, "12", &n), "0");

    /* error then explicit rollback */
    txn = begin(&f, 0);
    cr_assert_eq(run_txn(&f, txn, S_INS, 2, pdup).status, LS_PG_SQL_ERROR);
    cr_assert_eq(finish(&f, txn, 0).status, LS_PG_OK);

    /* two transactions on one connection run one after the other */
    begin_t b1 = {0}, b2 = {0};
    ls_pg_begin(f.pool, 0, on_begin, &b1);
    ls_pg_begin(f.pool, 0, on_begin, &b2);
    RUN_UNTIL(f.loop, b1.calls != 0, 5000);
    RUN_UNTIL(f.loop, b2.calls != 0, 200);
    cr_assert_eq(b1.status, LS_PG_OK);
    cr_assert_eq(b2.calls, 0, "the second waits for the connection");
    cr_assert_eq(finish(&f, b1.txn, 1).status, LS_PG_OK);
    RUN_UNTIL(f.loop, b2.calls != 0, 5000);
    cr_assert_eq(b2.status, LS_PG_OK);
    cr_assert_eq(finish(&f, b2.txn, 1).status, LS_PG_OK);

    const char *pe[] = {"still fine"};
    cr_assert_str_eq(run_stmt(&f, S_ECHO, 1, pe).value, "still fine");
    fx_close(&f);
}

/* Finishing from inside the callback that received the error, then reading the error. */
typedef struct {
    ls_pg_txn_t *txn;
    res_t fin;
    char sqlstate[8];
    int calls;
} finish_in_cb_t;

static void on_exec_then_finish(void *ud, ls_pg_status_t status, PGresult *res)
{
    finish_in_cb_t *s = ud;
    s->calls++;
    ls_pg_txn_finish(s->txn, 1, on_res, &s->fin);
    snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", ls_pg_sqlstate(res)); /* res still valid */
}

Test(pg, transaction_finished_inside_callback)
{
    fx_t f;
    fx_open(&f, 1, 0);
    const char *p1[] = {"1", "one"};
    cr_assert_eq(run_stmt(&f, S_INS, 2, p1).status, LS_PG_OK);
    finish_in_cb_t s = {0};
    s.txn = begin(&f, 0);
    ls_pg_txn_exec(s.txn, S_INS, 2, p1, on_exec_then_finish, &s);
    RUN_UNTIL(f.loop, s.fin.calls != 0, 5000);
    cr_assert_eq(s.calls, 1);
    cr_assert_str_eq(s.sqlstate, "23505");
    cr_assert_eq(s.fin.status, LS_PG_SQL_ERROR);
    const char *pe[] = {"ok"};
    cr_assert_str_eq(run_stmt(&f, S_ECHO, 1, pe).value, "ok");
    fx_close(&f);
}

Test(pg, transaction_deadline)
{
    fx_t f;
    fx_open(&f, 1, 0);
    uint64_t t0 = ls_now_ms();
    ls_pg_txn_t *txn = begin(&f, t0 + 300);
    const char *p[] = {"1"};
    res_t slow = run_txn(&f, txn, S_SLEEP, 1, p);
    cr_assert_eq(slow.status, LS_PG_TIMEOUT);
    cr_assert_lt(slow.at - t0, 800);
    /* later statements are refused, and finish answers at once */
    const char *pe[] = {"x"};
    cr_assert_eq(run_txn(&f, txn, S_ECHO, 1, pe).status, LS_PG_TIMEOUT);
    res_t fin = finish(&f, txn, 1);
    cr_assert_eq(fin.status, LS_PG_TIMEOUT);
    cr_assert_lt(fin.at - t0, 800);
    /* the connection comes back once the rolled-back statement ends */
    const char *pa[] = {"again"};
    res_t r = run_stmt(&f, S_ECHO, 1, pa);
    cr_assert_eq(r.status, LS_PG_OK);
    cr_assert_str_eq(r.value, "again");
    cr_assert_eq(run_stmt(&f, S_COUNT, 1, p).status, LS_PG_OK);

    /* a BEGIN that times out while waiting for the connection */
    ls_pg_txn_t *holder = begin(&f, 0);
    begin_t b = {0};
    uint64_t t1 = ls_now_ms();
    ls_pg_begin(f.pool, t1 + 150, on_begin, &b);
    RUN_UNTIL(f.loop, b.calls != 0, 5000);
    cr_assert_eq(b.status, LS_PG_TIMEOUT);
    cr_assert_lt(b.at - t1, 500);
    cr_assert_eq(finish(&f, holder, 1).status, LS_PG_OK);
    cr_assert_str_eq(run_stmt(&f, S_ECHO, 1, pa).value, "again");
    fx_close(&f);
}

Test(pg, callbacks_are_never_synchronous)
{
    fx_t f;
    fx_open(&f, 1, 1);
    /* one connection, a queue of one: 2 + FILL fill the pipeline, `queued` waits, `busy` is refused */
    enum { FILL = LS_PG_PIPELINE_DEPTH - 2 };
    res_t ok = {0}, err = {0}, fill[FILL], queued = {0}, busy = {0}, timeout = {0}, bad = {0};
    memset(fill, 0, sizeof(fill));
    const char *p[] = {"x"};

    ls_pg_exec(f.pool, S_ECHO, 1, p, 0, on_res, &ok);
    ok.submitted = 1;
    ls_pg_exec_sql(f.pool, "SELECT nonsense", 0, NULL, 0, on_res, &err);
    err.submitted = 1;
    ls_pg_exec(f.pool, S_ECHO, 1, p, 1, on_res, &timeout); /* deadline long past */
    timeout.submitted = 1;
    ls_pg_exec(f.pool, 999, 1, p, 0, on_res, &bad); /* no such statement */
    bad.submitted = 1;
    for (int i = 0; i < FILL; i++) {
        ls_pg_exec(f.pool, S_ECHO, 1, p, 0, on_res, &fill[i]);
        fill[i].submitted = 1;
    }
    ls_pg_exec(f.pool, S_ECHO, 1, p, 0, on_res, &queued);
    queued.submitted = 1;
    ls_pg_exec(f.pool, S_ECHO, 1, p, 0, on_res, &busy);
    busy.submitted = 1;

    RUN_UNTIL(f.loop, ok.calls && err.calls && timeout.calls && bad.calls && queued.calls && busy.calls,
              5000);
    cr_assert(ok.submitted_at_call && ok.status == LS_PG_OK);
    cr_assert(err.submitted_at_call && err.status == LS_PG_SQL_ERROR);
    cr_assert_str_eq(err.sqlstate, "42703");
    cr_assert(timeout.submitted_at_call && timeout.status == LS_PG_TIMEOUT);
    cr_assert(bad.submitted_at_call && bad.status == LS_PG_SQL_ERROR);
    cr_assert(busy.submitted_at_call && busy.status == LS_PG_BUSY);
    cr_assert(queued.submitted_at_call && queued.status == LS_PG_OK);
    for (int i = 0; i < FILL; i++)
        cr_assert(fill[i].submitted_at_call && fill[i].status == LS_PG_OK);

    /* transactions too */
    begin_t b = {0};
    ls_pg_begin(f.pool, 0, on_begin, &b);
    b.submitted = 1;
    RUN_UNTIL(f.loop, b.calls != 0, 5000);
    cr_assert(b.submitted_at_call && b.status == LS_PG_OK);
    res_t te = {0}, fin = {0};
    ls_pg_txn_exec(b.txn, S_ECHO, 1, p, on_res, &te);
    te.submitted = 1;
    RUN_UNTIL(f.loop, te.calls != 0, 5000);
    cr_assert(te.submitted_at_call && te.status == LS_PG_OK);
    ls_pg_txn_finish(b.txn, 0, on_res, &fin);
    fin.submitted = 1;
    RUN_UNTIL(f.loop, fin.calls != 0, 5000);
    cr_assert(fin.submitted_at_call && fin.status == LS_PG_OK);
    fx_close(&f);
}

Test(pg, no_server_means_unavailable_at_once)
{
    ls_loop_t *loop = ls_loop_create();
    ls_pg_config_t cfg = {
        .conninfo = "host=/nonexistent-ls-test port=1 user=nobody dbname=nothing connect_timeout=1",
        .application_name = "test_pg",
        .nconns = 2,
        .stmts = plain_stmts,
        .nstmts = sizeof(plain_stmts) / sizeof(plain_stmts[0]),
    };
    ls_pg_pool_t *pool = ls_pg_pool_create(loop, &cfg);
    cr_assert_not_null(pool);
    res_t r = {0};
    begin_t b = {0};
    const char *p[] = {"x"};
    uint64_t t0 = ls_now_ms();
    ls_pg_exec(pool, P_ECHO, 1, p, 0, on_res, &r);
    r.submitted = 1;
    ls_pg_begin(pool, 0, on_begin, &b);
    b.submitted = 1;
    RUN_UNTIL(loop, r.calls && b.calls, 2000);
    cr_assert_eq(r.status, LS_PG_UNAVAILABLE);
    cr_assert(r.submitted_at_call);
    cr_assert_eq(b.status, LS_PG_UNAVAILABLE);
    cr_assert_lt(r.at - t0, 100);
    cr_assert_eq(ls_pg_pool_ready_count(pool), 0);
    /* retries keep failing quietly and the pool can still be destroyed cleanly */
    uint64_t until = ls_now_ms() + 400;
    RUN_UNTIL(loop, ls_now_ms() >= until, 1000);
    ls_pg_pool_destroy(pool);
    loop_close(loop);
}

Test(pg, server_restart, .timeout = 120)
{
    lst_cluster_t c;
    lst_cluster_create(&c);
    char *ci = lst_cluster_conninfo(&c, "postgres");
    ls_loop_t *loop = ls_loop_create();
    ls_pg_pool_t *pool = pool_open(loop, ci, 2, 0, plain_stmts, sizeof(plain_stmts) / sizeof(plain_stmts[0]));

    /* one connection holds a transaction running a slow statement, the other a full pipeline of slow
     * queries, and two more wait in the queue */
    begin_t b = {0};
    ls_pg_begin(pool, 0, on_begin, &b);
    RUN_UNTIL(loop, b.calls != 0, 5000);
    cr_assert_eq(b.status, LS_PG_OK);
    const char *long_sleep[] = {"20"};
    res_t in_txn = {0};
    ls_pg_txn_exec(b.txn, P_SLEEP, 1, long_sleep, on_res, &in_txn);
    enum { N = LS_PG_PIPELINE_DEPTH + 2 };
    res_t slow[N];
    memset(slow, 0, sizeof(slow));
    for (int i = 0; i < N; i++)
        ls_pg_exec(pool, P_SLEEP, 1, long_sleep, 0, on_res, &slow[i]);
    uint64_t settle = ls_now_ms() + 300;
    RUN_UNTIL(loop, ls_now_ms() >= settle, 1000);
    for (int i = 0; i < N; i++)
        cr_assert_eq(slow[i].calls, 0);
    cr_assert_eq(in_txn.calls, 0);

    cr_assert_eq(lst_cluster_stop(&c), 0);
    uint64_t stopped = ls_now_ms();
    RUN_UNTIL(loop, slow[N - 1].calls != 0 && in_txn.calls != 0, 5000);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(slow[i].calls, 1, "slow query %d called back", i);
        cr_assert_eq(slow[i].status, LS_PG_UNAVAILABLE, "slow query %d", i);
        cr_assert_lt(slow[i].at - stopped, 1000, "slow query %d failed within a second", i);
    }
    cr_assert_eq(in_txn.status, LS_PG_UNAVAILABLE);
    cr_assert_lt(in_txn.at - stopped, 1000);
    cr_assert_eq(ls_pg_pool_ready_count(pool), 0);

    /* the broken transaction: statements fail, finish only releases it */
    res_t te = {0}, fin = {0};
    const char *p[] = {"x"};
    ls_pg_txn_exec(b.txn, P_ECHO, 1, p, on_res, &te);
    RUN_UNTIL(loop, te.calls != 0, 2000);
    cr_assert_eq(te.status, LS_PG_UNAVAILABLE);
    ls_pg_txn_finish(b.txn, 1, on_res, &fin);
    RUN_UNTIL(loop, fin.calls != 0, 2000);
    cr_assert_eq(fin.status, LS_PG_UNAVAILABLE);

    /* while down: every new query fails at once */
    for (int k = 0; k < 3; k++) {
        res_t r = {0};
        begin_t nb = {0};
        uint64_t t0 = ls_now_ms();
        ls_pg_exec(pool, P_ECHO, 1, p, 0, on_res, &r);
        ls_pg_begin(pool, 0, on_begin, &nb);
        RUN_UNTIL(loop, r.calls != 0 && nb.calls != 0, 2000);
        cr_assert_eq(r.status, LS_PG_UNAVAILABLE);
        cr_assert_eq(nb.status, LS_PG_UNAVAILABLE);
        cr_assert_lt(r.at - t0, 100);
        uint64_t gap = ls_now_ms() + 200;
        RUN_UNTIL(loop, ls_now_ms() >= gap, 1000);
    }

    /* back up: the same pool serves again within a few seconds */
    cr_assert_eq(lst_cluster_start(&c), 0);
    uint64_t started = ls_now_ms();
    RUN_UNTIL(loop, ls_pg_pool_ready_count(pool) == 2, 15000);
    cr_assert_eq(ls_pg_pool_ready_count(pool), 2, "reconnected");
    cr_assert_lt(ls_now_ms() - started, 8000);
    const char *pb[] = {"back"};
    res_t r = {0};
    ls_pg_exec(pool, P_ECHO, 1, pb, 0, on_res, &r);
    RUN_UNTIL(loop, r.calls != 0, 5000);
    cr_assert_eq(r.status, LS_PG_OK);
    cr_assert_str_eq(r.value, "back");
    b = (begin_t){0};
    ls_pg_begin(pool, 0, on_begin, &b);
    RUN_UNTIL(loop, b.calls != 0, 5000);
    cr_assert_eq(b.status, LS_PG_OK, "transactions work again");
    fin = (res_t){0};
    ls_pg_txn_finish(b.txn, 1, on_res, &fin);
    RUN_UNTIL(loop, fin.calls != 0, 5000);
    cr_assert_eq(fin.status, LS_PG_OK);

    ls_pg_pool_destroy(pool);
    loop_close(loop);
    free(ci);
    lst_cluster_destroy(&c);
}

Test(pg, bad_statement_keeps_pool_unready)
{
    ls_loop_t *loop = ls_loop_create();
    char *ci = lst_pg_admin_conninfo("postgres");
    static const ls_pg_stmt_t broken[] = {
        {"fine", "SELECT 1", 0},
        {"broken", "SELECT * FROM no_such_table_here", 0},
    };
    ls_pg_config_t cfg = {.conninfo = ci, .nconns = 1, .stmts = broken, .nstmts = 2};
    ls_pg_pool_t *pool = ls_pg_pool_create(loop, &cfg);
    cr_assert_not_null(pool);
    uint64_t until = ls_now_ms() + 500;
    RUN_UNTIL(loop, ls_now_ms() >= until, 1000);
    cr_assert_eq(ls_pg_pool_ready_count(pool), 0, "a statement that does not prepare is not served");
    res_t r = {0};
    ls_pg_exec(pool, 0, 0, NULL, 0, on_res, &r);
    RUN_UNTIL(loop, r.calls != 0, 1000);
    cr_assert_eq(r.status, LS_PG_UNAVAILABLE);
    ls_pg_pool_destroy(pool);
    loop_close(loop);
    free(ci);
}

/* A callback that submits again when told the pool is going away. */
typedef struct {
    ls_pg_pool_t *pool;
    res_t first, second;
} resubmit_t;

static void on_resubmit(void *ud, ls_pg_status_t status, PGresult *res)
{
    resubmit_t *s = ud;
    on_res(&s->first, status, res);
    const char *p[] = {"again"};
    ls_pg_exec(s->pool, S_ECHO, 1, p, 0, on_res, &s->second);
}

Test(pg, destroy_calls_every_pending_callback)
{
    fx_t f;
    fx_open(&f, 1, 0);
    enum { NSLEEP = 3, NECHO = 20 };
    res_t sleeps[NSLEEP], echos[NECHO], deferred = {0};
    begin_t b = {0};
    resubmit_t rs = {.pool = f.pool};
    memset(sleeps, 0, sizeof(sleeps));
    memset(echos, 0, sizeof(echos));
    const char *ps[] = {"5"}, *pe[] = {"e"};
    for (int i = 0; i < NSLEEP; i++)
        ls_pg_exec(f.pool, S_SLEEP, 1, ps, 0, on_res, &sleeps[i]);
    ls_pg_exec(f.pool, S_ECHO, 1, pe, 0, on_resubmit, &rs);
    for (int i = 0; i < NECHO; i++) /* some in flight behind the sleeps, some queued */
        ls_pg_exec(f.pool, S_ECHO, 1, pe, ls_now_ms() + 60000, on_res, &echos[i]);
    ls_pg_begin(f.pool, 0, on_begin, &b);
    uint64_t settle = ls_now_ms() + 200;
    RUN_UNTIL(f.loop, ls_now_ms() >= settle, 1000);
    ls_pg_exec(f.pool, 12345, 0, NULL, 0, on_res, &deferred); /* answer still pending */

    ls_pg_pool_destroy(f.pool);
    for (int i = 0; i < NSLEEP; i++)
        cr_assert(sleeps[i].calls == 1 && sleeps[i].status == LS_PG_UNAVAILABLE, "sleep %d", i);
    for (int i = 0; i < NECHO; i++)
        cr_assert(echos[i].calls == 1 && echos[i].status == LS_PG_UNAVAILABLE, "echo %d", i);
    cr_assert(rs.first.calls == 1 && rs.first.status == LS_PG_UNAVAILABLE);
    cr_assert(rs.second.calls == 1 && rs.second.status == LS_PG_UNAVAILABLE,
              "work submitted while destroying");
    cr_assert(b.calls == 1 && b.status == LS_PG_UNAVAILABLE);
    cr_assert_eq(deferred.calls, 1);
    loop_close(f.loop);
    free(f.conninfo);
}

Test(pg, destroy_with_open_transaction)
{
    fx_t f;
    fx_open(&f, 2, 0);
    ls_pg_txn_t *txn = begin(&f, 0);
    res_t r = {0};
    const char *p[] = {"3"};
    ls_pg_txn_exec(txn, S_SLEEP, 1, p, on_res, &r);
    uint64_t settle = ls_now_ms() + 100;
    RUN_UNTIL(f.loop, ls_now_ms() >= settle, 1000);
    ls_pg_pool_destroy(f.pool);
    cr_assert(r.calls == 1 && r.status == LS_PG_UNAVAILABLE);
    loop_close(f.loop);
    free(f.conninfo);
}
