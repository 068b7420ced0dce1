/*
 * pg: the asynchronous PostgreSQL pool (see pg.h for the contract).
 *
 * Every connection runs in libpq pipeline mode. Each command is followed by its own sync, so a
 * connection's results arrive as: the command's result(s), NULL, PGRES_PIPELINE_SYNC. A connection
 * keeps a ring of entries, one per command sent, in the order the server answers them.
 *
 * User callbacks are only ever called from I/O callbacks, timer callbacks or pool destruction: a
 * failure found while submitting is handed to a zero-delay timer, and a connection found broken
 * while sending is torn down at once but its queries are failed from the connection's timer.
 */
#include "pg.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "pgcancel.h"
#include "resolve.h"

#define BACKOFF_MIN_MS 100
/* A failed attempt costs little (a refused connect); a restarted server is used within a second */
#define BACKOFF_MAX_MS 1000
/* libpq does not enforce connect_timeout in asynchronous mode: a silent host would hang forever */
#define CONNECT_TIMEOUT_MS 10000
#define DEFAULT_QUEUE_MAX  1024
/* Room in a ring beyond the pipeline depth: a transaction's statement, the ROLLBACK sent behind it */
#define RING_SLACK 4
#define WHY_MAX    256
/* How often a connection whose statements have ended looks whether its cancel request has gone, and
 * for how long at most: a server that does not take the request must not keep the connection out
 * of use (the risk, past that, is one statement failing with 57014). */
#define CANCEL_POLL_MS 2
#define CANCEL_WAIT_MS 1000

typedef enum { Q_EXEC, Q_SQL, Q_BEGIN, Q_TXN_EXEC, Q_FINISH } query_kind_t;
typedef enum { AT_NONE, AT_QUEUE, AT_CONN, AT_DEFERRED } query_where_t;

typedef struct conn conn_t;

typedef struct {
    h2o_linklist_t link; /* pool->queue or pool->deferred */
    ls_timer_t timer;    /* the deadline, or the deferred callback */
    ls_pg_pool_t *pool;
    conn_t *conn;     /* while AT_CONN */
    ls_pg_txn_t *txn; /* Q_TXN_EXEC while its transaction is open */
    query_kind_t kind;
    query_where_t where;
    ls_pg_status_t deferred_status;
    PGresult *deferred_res; /* passed to the deferred callback, then cleared */
    PGresult *held_res;     /* a result the caller may still be reading; cleared with the query */
    size_t stmt_index;
    const char *sql;
    int nparams;
    const char *const *params;
    uint64_t deadline;
    ls_pg_cb cb;
    ls_pg_begin_cb begin_cb;
    void *ud;
    uint64_t t0_ns; /* submission, for ls_pg_query_duration_seconds */
} query_t;

typedef enum {
    E_PREPARE, /* statement stmt_index of the table */
    E_QUERY,
    E_BEGIN, /* reserves the connection */
    E_END,   /* COMMIT or ROLLBACK: releases the connection when done */
} entry_kind_t;

typedef struct {
    query_t *q; /* NULL when nobody waits for the result (internal, or the deadline passed) */
    entry_kind_t kind;
    int ended;     /* the NULL closing the command's results was seen; the sync comes next */
    int abandoned; /* its query's deadline passed while it was in flight */
    size_t stmt_index;
    PGresult *res;
} entry_t;

/* C_RESOLVING: waiting for the pool's host name lookup (resolve.h) before libpq may start. */
typedef enum { C_IDLE, C_RESOLVING, C_CONNECTING, C_PREPARING, C_READY, C_FAILING } conn_state_t;

struct conn {
    ls_pg_pool_t *pool;
    int index;
    conn_state_t state;
    PGconn *pg;
    h2o_socket_t *sock; /* wraps a dup() of PQsocket(pg) */
    dev_t sock_dev;
    ino_t sock_ino;
    int reading, write_armed;
    PostgresPollingStatusType want; /* while connecting */
    ls_timer_t timer;               /* backoff, connect timeout, or failure handling */
    uint32_t backoff_ms;
    unsigned failures; /* consecutive failed attempts */
    int was_ready;     /* the failure being handled hit a READY connection */
    int reserved;      /* by a transaction, from BEGIN until its E_END completes */
    ls_pg_txn_t *txn;
    /* Abandoned entries in the ring; once every entry is abandoned or internal, what the server still
     * runs is cancelled (pgcancel.h) and the connection takes nothing new until the request is gone. */
    size_t abandoned;
    ls_pgcancel_t *cancel;
    uint64_t cancel_idle_at; /* when the ring emptied while the cancel was still on its way */
    entry_t *ring;
    size_t ring_cap, head, count;
    char why[WHY_MAX];
};

struct ls_pg_txn {
    h2o_linklist_t link; /* pool->txns */
    ls_pg_pool_t *pool;
    conn_t *conn; /* NULL once the connection broke */
    uint64_t deadline;
    ls_pg_status_t failed; /* LS_PG_OK, LS_PG_SQL_ERROR or LS_PG_TIMEOUT */
    PGresult *err_res;     /* the error that failed it */
    query_t *pending;
};

struct ls_pg_pool {
    ls_loop_t *loop;
    ls_pg_config_t config;
    size_t queue_max, queue_len;
    h2o_linklist_t queue, deferred, txns;
    int nready;
    int destroying;
    int nconns;
    conn_t *conns;
    /* The DATABASE_URL host when it is a name: looked up off the loop before every connection
     * attempt, libpq then gets the address as hostaddr (and the name as host, for TLS and messages).
     * NULL when libpq resolves nothing (an address, a socket folder, several hosts, or a hostaddr). */
    ls_resolver_t *resolver;
};

static void conn_start(conn_t *conn);
static void conn_fail(conn_t *conn, const char *why);
static void pool_dispatch(ls_pg_pool_t *pool);

/* The worker's ls_pg_connections and ls_pg_waiting_requests, after anything that changes them. */
static void pool_publish(const ls_pg_pool_t *pool)
{
#if LS_METRICS
    if (pool->config.side)
        return;
    int by_state[LS_PGC_NSTATES] = {0};
    for (int i = 0; i < pool->nconns; i++) {
        const conn_t *c = &pool->conns[i];
        if (c->state == C_READY)
            by_state[c->count > 0 || c->reserved || c->cancel != NULL ? LS_PGC_BUSY : LS_PGC_READY]++;
        else
            by_state[c->state == C_RESOLVING || c->state == C_CONNECTING || c->state == C_PREPARING
                         ? LS_PGC_CONNECTING
                         : LS_PGC_BROKEN]++;
    }
    ls_metrics_pg_pool(by_state, (int)pool->queue_len);
#endif
}

/* ---- queries ---- */

static void on_deadline(ls_timer_t *timer);

static query_t *query_new(ls_pg_pool_t *pool, query_kind_t kind, int nparams, const char *const *params,
                          const char *sql, uint64_t deadline, void *ud)
{
    size_t lens[LS_PG_MAX_PARAMS];
    size_t size = sizeof(query_t) + (size_t)nparams * sizeof(char *);
    for (int i = 0; i < nparams; i++) {
        lens[i] = params[i] != NULL ? strlen(params[i]) + 1 : 0;
        size += lens[i];
    }
    size_t sql_len = sql != NULL ? strlen(sql) + 1 : 0;
    size += sql_len;

    /* One allocation holds the query, its parameter vector and every string. */
    query_t *q = h2o_mem_alloc(size);
    memset(q, 0, sizeof(*q));
    const char **pv = (const char **)(q + 1);
    char *p = (char *)(pv + nparams);
    for (int i = 0; i < nparams; i++) {
        if (params[i] == NULL) {
            pv[i] = NULL;
            continue;
        }
        memcpy(p, params[i], lens[i]);
        pv[i] = p;
        p += lens[i];
    }
    if (sql != NULL) {
        memcpy(p, sql, sql_len);
        q->sql = p;
    }
    q->pool = pool;
    q->kind = kind;
    q->where = AT_NONE;
    q->nparams = nparams;
    q->params = pv;
    q->deadline = deadline;
    q->ud = ud;
    q->t0_ns = ls_metrics_now_ns();
    ls_timer_init(&q->timer, on_deadline);
    return q;
}

static void query_free(query_t *q)
{
    ls_timer_stop(q->pool->loop, &q->timer);
    PQclear(q->deferred_res);
    PQclear(q->held_res);
    free(q);
}

/* Calls the query's callback once and frees it; res (may be NULL) is cleared afterwards. */
static void query_deliver(query_t *q, ls_pg_status_t status, PGresult *res)
{
    ls_timer_stop(q->pool->loop, &q->timer);
    q->where = AT_NONE;
    ls_metrics_pg_query(
        (q->kind == Q_EXEC || q->kind == Q_TXN_EXEC) && !q->pool->config.side ? (int)q->stmt_index : -1,
        status, status == LS_PG_SQL_ERROR ? ls_pg_sqlstate(res) : "", q->t0_ns);
    pool_publish(q->pool);

    ls_pg_txn_t *txn = q->txn;
    if (txn != NULL) {
        /* Record the failure before the callback, which may well finish (and free) the transaction. */
        txn->pending = NULL;
        q->txn = NULL;
        if (status == LS_PG_TIMEOUT) {
            txn->failed = LS_PG_TIMEOUT;
        } else if (status == LS_PG_SQL_ERROR && txn->failed == LS_PG_OK) {
            txn->failed = LS_PG_SQL_ERROR;
            if (res != NULL) {
                /* The transaction keeps the error for a later commit attempt; it stays valid during
                 * this callback because whoever takes it from the transaction holds it further. */
                PQclear(txn->err_res);
                txn->err_res = res;
                res = NULL;
                if (q->cb != NULL)
                    q->cb(q->ud, status, txn->err_res);
                query_free(q);
                return;
            }
        }
    }

    if (q->kind == Q_BEGIN)
        q->begin_cb(q->ud, status, NULL);
    else if (q->cb != NULL)
        q->cb(q->ud, status, res);
    PQclear(res);
    query_free(q);
}

static void on_deferred(ls_timer_t *timer)
{
    query_t *q = H2O_STRUCT_FROM_MEMBER(query_t, timer, timer);
    h2o_linklist_unlink(&q->link);
    PGresult *res = q->deferred_res;
    q->deferred_res = NULL;
    query_deliver(q, q->deferred_status, res);
}

/* Completes q on the next loop iteration (never inside the call that submitted it). Takes res. */
static void query_defer(query_t *q, ls_pg_status_t status, PGresult *res)
{
    ls_pg_pool_t *pool = q->pool;
    q->where = AT_DEFERRED;
    q->deferred_status = status;
    q->deferred_res = res;
    h2o_linklist_insert(&pool->deferred, &q->link);
    ls_timer_stop(pool->loop, &q->timer);
    q->timer.cb = on_deferred;
    /* While destroying, the destroy loop calls it instead. */
    if (!pool->destroying)
        ls_timer_start(pool->loop, &q->timer, 0);
}

static void query_arm_deadline(query_t *q)
{
    if (q->deadline != 0)
        ls_timer_start_at(q->pool->loop, &q->timer, q->deadline);
}

/* ---- results ---- */

static ls_pg_status_t result_status(const PGresult *res)
{
    if (res == NULL)
        return LS_PG_UNAVAILABLE;
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
        return LS_PG_OK;
    default:
        return LS_PG_SQL_ERROR;
    }
}

/* A FATAL or PANIC error ends the session (e.g. 57P01 at server shutdown): the connection is lost,
 * not the statement. */
static int result_ends_session(const PGresult *res)
{
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    return sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
}

const char *ls_pg_sqlstate(const PGresult *res)
{
    const char *s = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s != NULL ? s : "";
}

const char *ls_pg_errmsg(const PGresult *res)
{
    if (res == NULL)
        return "";
    const char *s = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (s == NULL)
        s = PQresultErrorMessage(res); /* errors made by libpq itself have no fields */
    return s != NULL ? s : "";
}

/* ---- transactions ---- */

static ls_pg_txn_t *txn_new(conn_t *conn, uint64_t deadline)
{
    ls_pg_txn_t *txn = h2o_mem_alloc(sizeof(*txn));
    memset(txn, 0, sizeof(*txn));
    txn->pool = conn->pool;
    txn->conn = conn;
    txn->deadline = deadline;
    txn->failed = LS_PG_OK;
    h2o_linklist_insert(&conn->pool->txns, &txn->link);
    conn->txn = txn;
    return txn;
}

static void txn_free(ls_pg_txn_t *txn)
{
    h2o_linklist_unlink(&txn->link);
    if (txn->conn != NULL)
        txn->conn->txn = NULL;
    if (txn->pending != NULL)
        txn->pending->txn = NULL;
    PQclear(txn->err_res);
    free(txn);
}

/* ---- connection I/O ---- */

static void on_conn_readable(h2o_socket_t *sock, const char *err);
static void on_conn_writable(h2o_socket_t *sock, const char *err);

static void conn_unwatch(conn_t *conn)
{
    if (conn->sock == NULL)
        return;
    h2o_socket_close(conn->sock); /* closes our dup; libpq's fd stays open */
    conn->sock = NULL;
    conn->reading = 0;
    conn->write_armed = 0;
}

/* Makes conn->sock wrap libpq's current socket. libpq may replace its socket while connecting (next
 * host, SSL/GSS fallback), and the new one can reuse the old fd number: compare inodes, not numbers. */
static int conn_watch(conn_t *conn)
{
    int fd = PQsocket(conn->pg);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return -1;
    if (conn->sock != NULL && st.st_dev == conn->sock_dev && st.st_ino == conn->sock_ino)
        return 0;
    conn_unwatch(conn);
    int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dupfd < 0)
        return -1;
    conn->sock = h2o_evloop_socket_create(ls_loop_evloop(conn->pool->loop), dupfd, H2O_SOCKET_FLAG_DONT_READ);
    conn->sock->data = conn;
    conn->sock_dev = st.st_dev;
    conn->sock_ino = st.st_ino;
    return 0;
}

static void conn_want_read(conn_t *conn, int on)
{
    if (on && !conn->reading)
        h2o_socket_read_start(conn->sock, on_conn_readable);
    else if (!on && conn->reading)
        h2o_socket_read_stop(conn->sock);
    conn->reading = on;
}

/* h2o_socket_notify_write fires once and asserts that none is pending: arm it at most once. */
static void conn_want_write(conn_t *conn)
{
    if (conn->write_armed)
        return;
    conn->write_armed = 1;
    h2o_socket_notify_write(conn->sock, on_conn_writable);
}

static void conn_flush(conn_t *conn)
{
    int rc = PQflush(conn->pg);
    if (rc < 0)
        conn_fail(conn, PQerrorMessage(conn->pg));
    else if (rc > 0)
        conn_want_write(conn);
}

static int conn_is_open(const conn_t *conn)
{
    return conn->state == C_PREPARING || conn->state == C_READY;
}

/* Appends an entry for a command about to be sent. The ring is sized so this cannot overflow: at most
 * LS_PG_PIPELINE_DEPTH queries, or the statement table, or a transaction's few commands. */
static entry_t *conn_push(conn_t *conn, entry_kind_t kind, query_t *q)
{
    if (conn->count == conn->ring_cap)
        h2o_fatal("pg: connection ring overflow");
    entry_t *e = &conn->ring[(conn->head + conn->count) % conn->ring_cap];
    conn->count++;
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->q = q;
    if (q != NULL) {
        q->where = AT_CONN;
        q->conn = conn;
    }
    return e;
}

/* Sends one command and its sync. The entry is pushed first, so that if sending fails the
 * connection's failure handling reports it like any other in-flight command. */
static void conn_send(conn_t *conn, entry_kind_t kind, query_t *q, const char *sql)
{
    const ls_pg_config_t *cfg = &conn->pool->config;
    conn_push(conn, kind, q);
    int ok;
    if (q != NULL && (q->kind == Q_EXEC || q->kind == Q_TXN_EXEC))
        ok = PQsendQueryPrepared(conn->pg, cfg->stmts[q->stmt_index].name, q->nparams, q->params, NULL, NULL,
                                 0);
    else if (q != NULL)
        ok = PQsendQueryParams(conn->pg, q->sql, q->nparams, NULL, q->params, NULL, NULL, 0);
    else
        ok = PQsendQueryParams(conn->pg, sql, 0, NULL, NULL, NULL, NULL, 0);
    if (ok)
        ok = PQpipelineSync(conn->pg);
    if (!ok) {
        conn_fail(conn, PQerrorMessage(conn->pg));
        return;
    }
    conn_flush(conn);
}

/* A ROLLBACK nobody waits for; releases the reservation when done. */
static void conn_send_rollback(conn_t *conn)
{
    if (conn->state == C_READY)
        conn_send(conn, E_END, NULL, "ROLLBACK");
}

/* Sends a cancel when every command the connection still runs was abandoned at its deadline or is
 * the pool's own, and one of them is a statement (the server would run it to its end for nobody),
 * and lets the connection take new queries once they have ended and the request has gone (a late
 * cancel would hit a new statement). */
static void conn_cancel_check(conn_t *conn)
{
    if (conn->state != C_READY)
        return;
    if (conn->cancel != NULL) {
        if (conn->count != 0)
            return; /* the drain calls again */
        uint64_t now = ls_now_ms();
        if (conn->cancel_idle_at == 0)
            conn->cancel_idle_at = now;
        if (!ls_pgcancel_done(conn->cancel)) {
            if (now - conn->cancel_idle_at < CANCEL_WAIT_MS) {
                ls_timer_start(conn->pool->loop, &conn->timer, CANCEL_POLL_MS);
                return;
            }
            ls_logf(LS_LOG_WARN, NULL, "pg: conn %d: cancel request not sent after %d ms; serving again",
                    conn->index, CANCEL_WAIT_MS);
        }
        ls_pgcancel_release(conn->cancel);
        conn->cancel = NULL;
        pool_publish(conn->pool);
        return;
    }
    if (conn->abandoned == 0)
        return;
    int statement = 0;
    for (size_t i = 0; i < conn->count; i++) {
        const entry_t *e = &conn->ring[(conn->head + i) % conn->ring_cap];
        if (e->q != NULL)
            return; /* someone still waits: the statements run on */
        /* a statement may run long; BEGIN, COMMIT and ROLLBACK are not worth a cancel */
        statement |= e->abandoned && e->kind == E_QUERY;
    }
    if (!statement)
        return;
    conn->cancel = ls_pgcancel_send(PQgetCancel(conn->pg));
    conn->cancel_idle_at = 0;
    if (conn->cancel != NULL)
        ls_metrics_pg_cancel();
}

static void query_send(conn_t *conn, query_t *q)
{
    if (q->kind == Q_BEGIN) {
        conn->reserved = 1;
        conn_send(conn, E_BEGIN, q, NULL);
    } else {
        conn_send(conn, q->kind == Q_FINISH ? E_END : E_QUERY, q, NULL);
    }
    pool_publish(conn->pool);
}

static void conn_ready(conn_t *conn)
{
    ls_pg_pool_t *pool = conn->pool;
    ls_timer_stop(pool->loop, &conn->timer);
    conn->state = C_READY;
    pool->nready++;
    conn->backoff_ms = BACKOFF_MIN_MS;
    ls_log_line_t l;
    if (ls_log_begin(&l, LS_LOG_INFO, NULL, "pg connection ready")) {
        ls_log_int(&l, "conn", conn->index);
        ls_log_int(&l, "failed_attempts", conn->failures);
        ls_log_end(&l);
    }
    if (conn->failures > 0)
        ls_metrics_pg_reconnect();
    conn->failures = 0;
    pool_publish(pool);
    pool_dispatch(pool);
    if (pool->config.on_ready != NULL)
        pool->config.on_ready(pool->config.hook_ud);
}

/* One command's results are complete (the sync was seen): hand them to whoever waits. */
static void entry_finish(conn_t *conn, entry_t *e)
{
    ls_pg_status_t st = result_status(e->res);
    query_t *q = e->q;

    switch (e->kind) {
    case E_PREPARE: {
        if (st != LS_PG_OK) {
            /* A statement that does not prepare is a bug or a missing migration: say which. */
            const char *name = conn->pool->config.stmts[e->stmt_index].name;
            char why[WHY_MAX];
            snprintf(why, sizeof(why), "prepare %s: %s", name, ls_pg_errmsg(e->res));
            ls_log_line_t l;
            if (ls_log_begin(&l, LS_LOG_ERROR, NULL, "pg prepare failed")) {
                ls_log_str(&l, "statement", name);
                ls_log_str(&l, "error", ls_pg_errmsg(e->res));
                ls_log_end(&l);
            }
            PQclear(e->res);
            conn_fail(conn, why);
            return;
        }
        PQclear(e->res);
        if (conn->count == 0)
            conn_ready(conn);
        return;
    }
    case E_QUERY:
        if (q != NULL)
            query_deliver(q, st, e->res);
        else
            PQclear(e->res);
        return;
    case E_BEGIN:
        if (q == NULL) {
            /* abandoned at its deadline: the ROLLBACK queued behind it releases the connection */
            PQclear(e->res);
        } else if (st == LS_PG_OK) {
            PQclear(e->res);
            ls_timer_stop(conn->pool->loop, &q->timer);
            ls_pg_txn_t *txn = txn_new(conn, q->deadline);
            ls_pg_begin_cb cb = q->begin_cb;
            void *ud = q->ud;
            query_free(q);
            cb(ud, LS_PG_OK, txn);
        } else {
            conn->reserved = 0;
            query_deliver(q, st, e->res);
        }
        return;
    case E_END:
        conn->reserved = 0;
        /* A ROLLBACK hit by a cancel meant for the statement before it leaves the session in a
         * transaction: start afresh rather than hand that on. */
        if (st != LS_PG_OK && PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
            conn_fail(conn, "the transaction did not end");
        if (q != NULL) {
            query_deliver(q, st, e->res);
        } else {
            PQclear(e->res);
            pool_publish(conn->pool);
        }
        return;
    }
}

/* Reads every complete result libpq holds, in pipeline order. Stops if a callback broke the
 * connection. */
static void conn_drain(conn_t *conn)
{
    PGconn *pg = conn->pg;
    while (conn_is_open(conn) && conn->pg == pg && conn->count != 0 && !PQisBusy(pg)) {
        entry_t *e = &conn->ring[conn->head];
        PGresult *res = PQgetResult(pg);
        if (!e->ended) {
            if (res == NULL) {
                e->ended = 1;
                continue;
            }
            if (PQstatus(pg) == CONNECTION_BAD || result_ends_session(res) ||
                PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
                char why[WHY_MAX];
                snprintf(why, sizeof(why), "%s",
                         PQresultStatus(res) == PGRES_PIPELINE_SYNC ? "pipeline out of step"
                                                                    : ls_pg_errmsg(res));
                PQclear(res);
                conn_fail(conn, why);
                return;
            }
            /* One result per command is expected; should there be more, the error wins. */
            if (e->res == NULL) {
                e->res = res;
            } else if (result_status(res) != LS_PG_OK) {
                PQclear(e->res);
                e->res = res;
            } else {
                PQclear(res);
            }
            continue;
        }
        if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
            PQclear(res);
            conn_fail(conn, "pipeline out of step");
            return;
        }
        PQclear(res);
        entry_t done = *e;
        conn->head = (conn->head + 1) % conn->ring_cap;
        conn->count--;
        conn->abandoned -= done.abandoned;
        entry_finish(conn, &done);
    }
}

/* Readable or writable: move data both ways and deliver what arrived. Output may be pending and
 * libpq may have read input while trying to write, so both events do the same work. */
static void conn_service(conn_t *conn)
{
    if (!PQconsumeInput(conn->pg)) {
        conn_fail(conn, PQerrorMessage(conn->pg));
        return;
    }
    conn_drain(conn);
    PGnotify *n;
    while (conn_is_open(conn) && conn->pool->config.on_notify != NULL && (n = PQnotifies(conn->pg)) != NULL) {
        conn->pool->config.on_notify(conn->pool->config.hook_ud, n->relname);
        PQfreemem(n);
    }
    if (conn_is_open(conn))
        conn_flush(conn);
    if (conn->abandoned > 0 || conn->cancel != NULL)
        conn_cancel_check(conn);
    pool_dispatch(conn->pool);
}

static void conn_connected(conn_t *conn)
{
    const ls_pg_config_t *cfg = &conn->pool->config;
    if (PQsetnonblocking(conn->pg, 1) != 0 || !PQenterPipelineMode(conn->pg) || conn_watch(conn) != 0) {
        conn_fail(conn, PQerrorMessage(conn->pg));
        return;
    }
    conn_want_read(conn, 1);
    conn->state = C_PREPARING;
    if (cfg->nstmts == 0) {
        conn_ready(conn);
        return;
    }
    for (size_t i = 0; i < cfg->nstmts && conn->state == C_PREPARING; i++) {
        entry_t *e = conn_push(conn, E_PREPARE, NULL);
        e->stmt_index = i;
        if (!PQsendPrepare(conn->pg, cfg->stmts[i].name, cfg->stmts[i].sql, cfg->stmts[i].nparams, NULL) ||
            !PQpipelineSync(conn->pg)) {
            conn_fail(conn, PQerrorMessage(conn->pg));
            return;
        }
    }
    conn_flush(conn);
}

static void conn_connect_step(conn_t *conn)
{
    PostgresPollingStatusType st = PQconnectPoll(conn->pg);
    switch (st) {
    case PGRES_POLLING_FAILED:
        conn_fail(conn, PQerrorMessage(conn->pg));
        return;
    case PGRES_POLLING_OK:
        conn_connected(conn);
        return;
    default:
        break;
    }
    if (conn_watch(conn) != 0) {
        conn_fail(conn, "no socket");
        return;
    }
    conn->want = st;
    /* Poll only for what libpq asked: calling PQconnectPoll early would confuse it. */
    conn_want_read(conn, st == PGRES_POLLING_READING);
    if (st == PGRES_POLLING_WRITING)
        conn_want_write(conn);
}

static void on_conn_readable(h2o_socket_t *sock, const char *err)
{
    conn_t *conn = sock->data;
    if (conn->state == C_CONNECTING) {
        if (conn->want == PGRES_POLLING_READING)
            conn_connect_step(conn);
    } else if (conn_is_open(conn)) {
        conn_service(conn);
    }
}

static void on_conn_writable(h2o_socket_t *sock, const char *err)
{
    conn_t *conn = sock->data;
    conn->write_armed = 0;
    if (conn->state == C_CONNECTING) {
        if (conn->want == PGRES_POLLING_WRITING)
            conn_connect_step(conn);
    } else if (conn_is_open(conn)) {
        conn_service(conn);
    }
}

static void conn_close(conn_t *conn)
{
    conn_unwatch(conn);
    if (conn->pg != NULL) {
        PQfinish(conn->pg);
        conn->pg = NULL;
    }
    if (conn->txn != NULL) {
        conn->txn->conn = NULL;
        conn->txn = NULL;
    }
    conn->reserved = 0;
    /* A cancel still on its way hits a session that is gone: nothing to wait for. */
    ls_pgcancel_release(conn->cancel);
    conn->cancel = NULL;
    conn->abandoned = 0;
}

/* Tears the connection down now; its waiting queries are failed from the connection's timer, so that
 * no callback runs inside whatever call noticed the failure. */
static void conn_fail(conn_t *conn, const char *why)
{
    if (conn->state == C_FAILING || conn->state == C_IDLE)
        return;
    snprintf(conn->why, sizeof(conn->why), "%s", why != NULL ? why : "");
    size_t n = strlen(conn->why);
    while (n > 0 && (conn->why[n - 1] == '\n' || conn->why[n - 1] == ' '))
        conn->why[--n] = '\0';
    conn->was_ready = conn->state == C_READY;
    if (conn->was_ready)
        conn->pool->nready--;
    conn_close(conn);
    conn->state = C_FAILING;
    pool_publish(conn->pool);
    if (!conn->pool->destroying)
        ls_timer_start(conn->pool->loop, &conn->timer, 0);
}

static void fail_entries(conn_t *conn)
{
    while (conn->count != 0) {
        entry_t e = conn->ring[conn->head];
        conn->head = (conn->head + 1) % conn->ring_cap;
        conn->count--;
        PQclear(e.res);
        if (e.q != NULL)
            query_deliver(e.q, LS_PG_UNAVAILABLE, NULL);
    }
}

/*
 * Whether a connection is still making its very first attempt (the daemon serves before its pool has
 * connected). Queries then wait for it, bounded by their deadlines, instead of failing: only a pool
 * that has tried and failed answers "unavailable" at once.
 */
static int pool_warming_up(const ls_pg_pool_t *pool)
{
    for (int i = 0; i < pool->nconns; i++) {
        const conn_t *c = &pool->conns[i];
        if ((c->state == C_RESOLVING || c->state == C_CONNECTING || c->state == C_PREPARING) &&
            c->failures == 0 && !c->was_ready)
            return 1;
    }
    return 0;
}

static void fail_queue(ls_pg_pool_t *pool)
{
    while (!h2o_linklist_is_empty(&pool->queue)) {
        query_t *q = H2O_STRUCT_FROM_MEMBER(query_t, link, pool->queue.next);
        h2o_linklist_unlink(&q->link);
        pool->queue_len--;
        query_deliver(q, LS_PG_UNAVAILABLE, NULL);
    }
}

static void conn_handle_failure(conn_t *conn)
{
    ls_pg_pool_t *pool = conn->pool;
    ls_log_level_t level = conn->was_ready || conn->failures == 0 ? LS_LOG_WARN : LS_LOG_DEBUG;
    ls_log_line_t l;
    if (ls_log_begin(&l, level, NULL, conn->was_ready ? "pg connection lost" : "pg connect failed")) {
        ls_log_int(&l, "conn", conn->index);
        ls_log_str(&l, "error", conn->why);
        ls_log_int(&l, "retry_ms", conn->backoff_ms);
        ls_log_end(&l);
    }
    conn->failures++;
    conn->state = C_IDLE;
    pool_publish(pool);
    ls_timer_start(pool->loop, &conn->timer, conn->backoff_ms);
    conn->backoff_ms = conn->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : conn->backoff_ms * 2;

    fail_entries(conn);
    if (pool->nready == 0 && !pool_warming_up(pool))
        fail_queue(pool);
}

static void on_conn_timer(ls_timer_t *timer)
{
    conn_t *conn = H2O_STRUCT_FROM_MEMBER(conn_t, timer, timer);
    switch (conn->state) {
    case C_FAILING:
        conn_handle_failure(conn);
        break;
    case C_IDLE:
        conn_start(conn);
        break;
    case C_RESOLVING:
        conn_fail(conn, "host name lookup timed out");
        break;
    case C_CONNECTING:
    case C_PREPARING:
        conn_fail(conn, "connect timeout");
        break;
    case C_READY:
        conn_cancel_check(conn);
        pool_dispatch(conn->pool);
        break;
    }
}

/* libpq prints notices to stderr by default; keep stdout/stderr for our JSON log lines. */
static void on_notice(void *arg, const char *message)
{
    conn_t *conn = arg;
    ls_log_line_t l;
    if (ls_log_begin(&l, LS_LOG_DEBUG, NULL, "pg notice")) {
        ls_log_int(&l, "conn", conn->index);
        ls_log_strn(&l, "notice", message, strcspn(message, "\n"));
        ls_log_end(&l);
    }
}

/* Starts libpq on the connection string as it is (addrs NULL), or with the pool's host name resolved:
 * addrs (comma-separated) as hostaddr, the name repeated as host. */
static void conn_connect(conn_t *conn, const char *addrs)
{
    const ls_pg_config_t *cfg = &conn->pool->config;
    /* dbname first: with expand_dbname its connection string is expanded, and the keywords after it
     * override what it says. */
    const char *keys[6], *vals[6];
    int n = 0;
    keys[n] = "dbname", vals[n++] = cfg->conninfo;
    if (cfg->application_name != NULL)
        keys[n] = "application_name", vals[n++] = cfg->application_name;
    /* Generic plans: our statements are prepared once and run with the same shapes of parameters;
     * left to choose, PostgreSQL 15 kept re-planning list queries (0.67 ms of planning for 0.20 ms
     * of execution, tests/bench/RESULTS.md). */
    char options[128];
    int len = snprintf(options, sizeof(options), "-c TimeZone=UTC -c plan_cache_mode=force_generic_plan");
    /* The backstop for a statement whose cancel request got lost (pg.h) */
    if (cfg->statement_timeout_ms > 0)
        snprintf(options + len, sizeof(options) - (size_t)len, " -c statement_timeout=%d",
                 cfg->statement_timeout_ms);
    keys[n] = "options", vals[n++] = options;
    char hosts[LS_RESOLVE_MAX_ADDRS * (LS_RESOLVE_HOST_MAX + 1)];
    if (addrs != NULL) {
        /* libpq wants as many hosts as addresses; it tries them in turn. */
        const char *name = ls_resolver_host(conn->pool->resolver);
        size_t off = 0;
        for (const char *a = addrs; a != NULL && off < sizeof(hosts); a = strchr(a + 1, ','))
            off += (size_t)snprintf(hosts + off, sizeof(hosts) - off, "%s%s", off > 0 ? "," : "", name);
        keys[n] = "host", vals[n++] = hosts;
        keys[n] = "hostaddr", vals[n++] = addrs;
    }
    keys[n] = NULL, vals[n] = NULL;

    conn->state = C_CONNECTING;
    pool_publish(conn->pool);
    conn->pg = PQconnectStartParams(keys, vals, 1);
    if (conn->pg == NULL) {
        conn_fail(conn, "out of memory");
        return;
    }
    if (PQstatus(conn->pg) == CONNECTION_BAD) {
        conn_fail(conn, PQerrorMessage(conn->pg));
        return;
    }
    PQsetNoticeProcessor(conn->pg, on_notice, conn);
    /* libpq: after a successful start, behave as if PQconnectPoll had asked for writing */
    if (conn_watch(conn) != 0) {
        conn_fail(conn, "no socket");
        return;
    }
    conn->want = PGRES_POLLING_WRITING;
    conn_want_write(conn);
}

/* One connection attempt, bounded by CONNECT_TIMEOUT_MS from here: the host name lookup (fresh for
 * every attempt, since a container's address may change; shared by the connections asking at the
 * same time), then libpq's connect. */
static void conn_start(conn_t *conn)
{
    ls_pg_pool_t *pool = conn->pool;
    ls_timer_start(pool->loop, &conn->timer, CONNECT_TIMEOUT_MS);
    if (pool->resolver == NULL) {
        conn_connect(conn, NULL);
        return;
    }
    conn->state = C_RESOLVING;
    pool_publish(pool);
    if (ls_resolver_lookup(pool->resolver) != 0)
        conn_fail(conn, "could not start a host name lookup");
}

/* The lookup ended: every connection waiting for it goes on (or fails and retries with backoff). */
static void on_resolved(void *ud, const char *addrs, const char *err)
{
    ls_pg_pool_t *pool = ud;
    ls_log_line_t l;
    if (ls_log_begin(&l, addrs != NULL ? LS_LOG_DEBUG : LS_LOG_WARN, NULL, "pg host name lookup")) {
        ls_log_str(&l, "host", ls_resolver_host(pool->resolver));
        ls_log_str(&l, addrs != NULL ? "addrs" : "error", addrs != NULL ? addrs : err);
        ls_log_end(&l);
    }
    for (int i = 0; i < pool->nconns; i++) {
        conn_t *c = &pool->conns[i];
        if (c->state != C_RESOLVING)
            continue;
        if (addrs != NULL)
            conn_connect(c, addrs);
        else
            conn_fail(c, err);
    }
}

/* The connection string's host when libpq would resolve it as a name (malloc'ed), else NULL. */
static char *conninfo_host_name(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (opts == NULL)
        return NULL; /* libpq reports a bad string when it connects */
    const char *host = NULL;
    int has_hostaddr = 0;
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            has_hostaddr = 1;
    }
    /* What the string leaves out, libpq takes from PGHOST and PGHOSTADDR (read-only here: settings are
     * read before the workers start). */
    if (host == NULL)
        host = getenv("PGHOST");
    if (!has_hostaddr && getenv("PGHOSTADDR") != NULL && getenv("PGHOSTADDR")[0] != '\0')
        has_hostaddr = 1;
    char *name = host != NULL && !has_hostaddr && ls_resolve_is_name(host) ? strdup(host) : NULL;
    PQconninfoFree(opts);
    return name;
}

/* ---- dispatch ---- */

/* The least loaded ready connection with pipeline room; a transaction needs an idle one. */
static conn_t *pool_pick(ls_pg_pool_t *pool, int for_begin)
{
    conn_t *best = NULL;
    for (int i = 0; i < pool->nconns; i++) {
        conn_t *c = &pool->conns[i];
        if (c->state != C_READY || c->reserved || c->cancel != NULL)
            continue;
        if (for_begin) {
            if (c->count == 0)
                return c;
        } else if (c->count < LS_PG_PIPELINE_DEPTH && (best == NULL || c->count < best->count)) {
            best = c;
        }
    }
    return best;
}

/* Strict FIFO: a waiting BEGIN holds back the queries behind it so that it cannot starve. */
static void pool_dispatch(ls_pg_pool_t *pool)
{
    while (!h2o_linklist_is_empty(&pool->queue)) {
        query_t *q = H2O_STRUCT_FROM_MEMBER(query_t, link, pool->queue.next);
        conn_t *conn = pool_pick(pool, q->kind == Q_BEGIN);
        if (conn == NULL)
            return;
        h2o_linklist_unlink(&q->link);
        pool->queue_len--;
        query_send(conn, q);
    }
}

static void pool_submit(ls_pg_pool_t *pool, query_t *q)
{
    if (pool->destroying) {
        query_defer(q, LS_PG_UNAVAILABLE, NULL);
        return;
    }
    if (q->deadline != 0 && q->deadline <= ls_now_ms()) {
        query_defer(q, LS_PG_TIMEOUT, NULL);
        return;
    }
    if (pool->nready == 0 && !pool_warming_up(pool)) {
        query_defer(q, LS_PG_UNAVAILABLE, NULL);
        return;
    }
    if (h2o_linklist_is_empty(&pool->queue)) {
        conn_t *conn = pool_pick(pool, q->kind == Q_BEGIN);
        if (conn != NULL) {
            query_arm_deadline(q);
            query_send(conn, q);
            return;
        }
    }
    if (pool->queue_len >= pool->queue_max) {
        query_defer(q, LS_PG_BUSY, NULL);
        return;
    }
    q->where = AT_QUEUE;
    h2o_linklist_insert(&pool->queue, &q->link);
    pool->queue_len++;
    pool_publish(pool);
    query_arm_deadline(q);
}

static void on_deadline(ls_timer_t *timer)
{
    query_t *q = H2O_STRUCT_FROM_MEMBER(query_t, timer, timer);
    if (q->where == AT_QUEUE) {
        h2o_linklist_unlink(&q->link);
        q->pool->queue_len--;
    } else if (q->where == AT_CONN) {
        /* Leave the entry in place so that the late result is read and dropped. */
        conn_t *conn = q->conn;
        for (size_t i = 0; i < conn->count; i++) {
            entry_t *e = &conn->ring[(conn->head + i) % conn->ring_cap];
            if (e->q == q) {
                e->q = NULL;
                e->abandoned = 1;
                conn->abandoned++;
            }
        }
        if (q->kind == Q_BEGIN)
            conn_send_rollback(conn); /* nobody will own this transaction */
        /* After the callback, which may queue a transaction's ROLLBACK behind the statement. */
        query_deliver(q, LS_PG_TIMEOUT, NULL);
        conn_cancel_check(conn);
        return;
    }
    query_deliver(q, LS_PG_TIMEOUT, NULL);
}

/* ---- public API ---- */

ls_pg_pool_t *ls_pg_pool_create(ls_loop_t *loop, const ls_pg_config_t *config)
{
    if (config == NULL || config->conninfo == NULL || config->nconns < 1 ||
        (config->nstmts != 0 && config->stmts == NULL))
        return NULL;
    ls_pg_pool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->loop = loop;
    pool->config = *config;
    pool->queue_max = config->queue_max != 0 ? config->queue_max : DEFAULT_QUEUE_MAX;
    h2o_linklist_init_anchor(&pool->queue);
    h2o_linklist_init_anchor(&pool->deferred);
    h2o_linklist_init_anchor(&pool->txns);
    pool->nconns = config->nconns;
    pool->conns = calloc((size_t)config->nconns, sizeof(*pool->conns));
    if (pool->conns == NULL)
        goto fail;
    size_t ring_cap =
        (config->nstmts > LS_PG_PIPELINE_DEPTH ? config->nstmts : LS_PG_PIPELINE_DEPTH) + RING_SLACK;
    for (int i = 0; i < pool->nconns; i++) {
        conn_t *c = &pool->conns[i];
        c->pool = pool;
        c->index = i;
        c->state = C_IDLE;
        c->backoff_ms = BACKOFF_MIN_MS;
        c->ring_cap = ring_cap;
        ls_timer_init(&c->timer, on_conn_timer);
        c->ring = calloc(ring_cap, sizeof(*c->ring));
        if (c->ring == NULL)
            goto fail;
    }
    char *name = conninfo_host_name(config->conninfo);
    if (name != NULL) {
        pool->resolver = ls_resolver_create(loop, name, config->resolve, on_resolved, pool);
        free(name);
        if (pool->resolver == NULL)
            goto fail;
    }
    for (int i = 0; i < pool->nconns; i++)
        conn_start(&pool->conns[i]);
    return pool;

fail:
    if (pool->conns != NULL) {
        for (int i = 0; i < pool->nconns; i++)
            free(pool->conns[i].ring);
        free(pool->conns);
    }
    free(pool);
    return NULL;
}

void ls_pg_pool_destroy(ls_pg_pool_t *pool)
{
    if (pool == NULL)
        return;
    pool->destroying = 1;
    /* A lookup still running is abandoned: its thread frees its own part when it returns. */
    ls_resolver_destroy(pool->resolver);
    pool->resolver = NULL;
    for (int i = 0; i < pool->nconns; i++) {
        conn_t *c = &pool->conns[i];
        ls_timer_stop(pool->loop, &c->timer);
        conn_close(c);
        c->state = C_IDLE;
    }
    pool->nready = 0;

    /* Callbacks may submit more work; while destroying it lands on the deferred list: repeat. */
    int again;
    do {
        again = 0;
        for (int i = 0; i < pool->nconns; i++) {
            if (pool->conns[i].count != 0) {
                fail_entries(&pool->conns[i]);
                again = 1;
            }
        }
        if (!h2o_linklist_is_empty(&pool->queue)) {
            fail_queue(pool);
            again = 1;
        }
        while (!h2o_linklist_is_empty(&pool->deferred)) {
            query_t *q = H2O_STRUCT_FROM_MEMBER(query_t, link, pool->deferred.next);
            h2o_linklist_unlink(&q->link);
            query_deliver(q, LS_PG_UNAVAILABLE, NULL);
            again = 1;
        }
    } while (again);

    while (!h2o_linklist_is_empty(&pool->txns))
        txn_free(H2O_STRUCT_FROM_MEMBER(ls_pg_txn_t, link, pool->txns.next));
    for (int i = 0; i < pool->nconns; i++)
        free(pool->conns[i].ring);
    free(pool->conns);
    free(pool);
}

int ls_pg_pool_ready_count(const ls_pg_pool_t *pool)
{
    return pool->nready;
}

static int params_valid(int nparams, const char *const *params)
{
    return nparams >= 0 && nparams <= LS_PG_MAX_PARAMS && (nparams == 0 || params != NULL);
}

/* A call the pool cannot run as given (a programming error): logged, answered with LS_PG_SQL_ERROR
 * and no result. */
static void reject_call(query_t *q, const char *why)
{
    ls_log(LS_LOG_ERROR, NULL, why);
    query_defer(q, LS_PG_SQL_ERROR, NULL);
}

void ls_pg_exec(ls_pg_pool_t *pool, size_t stmt_index, int nparams, const char *const *params,
                uint64_t deadline, ls_pg_cb cb, void *ud)
{
    int ok = params_valid(nparams, params) && stmt_index < pool->config.nstmts &&
             pool->config.stmts[stmt_index].nparams == nparams;
    query_t *q = query_new(pool, Q_EXEC, ok ? nparams : 0, params, NULL, deadline, ud);
    q->cb = cb;
    q->stmt_index = stmt_index;
    if (!ok) {
        reject_call(q, "pg: ls_pg_exec: bad statement index or parameter count");
        return;
    }
    pool_submit(pool, q);
}

void ls_pg_exec_sql(ls_pg_pool_t *pool, const char *sql, int nparams, const char *const *params,
                    uint64_t deadline, ls_pg_cb cb, void *ud)
{
    int ok = sql != NULL && params_valid(nparams, params);
    query_t *q = query_new(pool, Q_SQL, ok ? nparams : 0, params, ok ? sql : "", deadline, ud);
    q->cb = cb;
    if (!ok) {
        reject_call(q, "pg: ls_pg_exec_sql: bad arguments");
        return;
    }
    pool_submit(pool, q);
}

void ls_pg_begin(ls_pg_pool_t *pool, uint64_t deadline, ls_pg_begin_cb cb, void *ud)
{
    query_t *q = query_new(pool, Q_BEGIN, 0, NULL, NULL, deadline, ud);
    q->sql = "BEGIN";
    q->begin_cb = cb;
    pool_submit(pool, q);
}

void ls_pg_txn_exec(ls_pg_txn_t *txn, size_t stmt_index, int nparams, const char *const *params, ls_pg_cb cb,
                    void *ud)
{
    ls_pg_pool_t *pool = txn->pool;
    int ok = params_valid(nparams, params) && stmt_index < pool->config.nstmts &&
             pool->config.stmts[stmt_index].nparams == nparams;
    query_t *q = query_new(pool, Q_TXN_EXEC, ok ? nparams : 0, params, NULL, txn->deadline, ud);
    q->cb = cb;
    q->stmt_index = stmt_index;
    if (!ok) {
        reject_call(q, "pg: ls_pg_txn_exec: bad statement index or parameter count");
        return;
    }
    if (pool->destroying || txn->conn == NULL) {
        query_defer(q, LS_PG_UNAVAILABLE, NULL);
        return;
    }
    if (txn->pending != NULL) {
        reject_call(q, "pg: ls_pg_txn_exec: a statement of this transaction is still running");
        return;
    }
    if (txn->failed == LS_PG_TIMEOUT || (txn->deadline != 0 && txn->deadline <= ls_now_ms())) {
        txn->failed = LS_PG_TIMEOUT;
        query_defer(q, LS_PG_TIMEOUT, NULL);
        return;
    }
    q->txn = txn;
    txn->pending = q;
    query_arm_deadline(q);
    conn_send(txn->conn, E_QUERY, q, NULL);
}

void ls_pg_txn_finish(ls_pg_txn_t *txn, int commit, ls_pg_cb cb, void *ud)
{
    ls_pg_pool_t *pool = txn->pool;
    conn_t *conn = txn->conn;
    query_t *q = query_new(pool, Q_FINISH, 0, NULL, NULL, txn->deadline, ud);
    q->sql = commit ? "COMMIT" : "ROLLBACK";
    q->cb = cb;

    ls_pg_status_t failed = txn->failed;
    if (failed == LS_PG_OK && txn->deadline != 0 && txn->deadline <= ls_now_ms())
        failed = LS_PG_TIMEOUT;
    /* The caller may be inside the callback that received this error: keep it alive with q. */
    PGresult *err = txn->err_res;
    txn->err_res = NULL;
    txn_free(txn);

    if (pool->destroying || conn == NULL) {
        q->held_res = err;
        query_defer(q, LS_PG_UNAVAILABLE, NULL);
        return;
    }
    if (failed == LS_PG_TIMEOUT || (failed == LS_PG_SQL_ERROR && commit)) {
        /* Answer now rather than after statements that may still be running; the rollback goes on
         * in the background and releases the connection. */
        conn_send_rollback(conn);
        if (failed == LS_PG_SQL_ERROR) {
            query_defer(q, LS_PG_SQL_ERROR, err);
        } else {
            q->held_res = err;
            query_defer(q, LS_PG_TIMEOUT, NULL);
        }
        return;
    }
    q->held_res = err;
    query_arm_deadline(q);
    query_send(conn, q);
}
