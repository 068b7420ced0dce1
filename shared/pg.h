/*
 * pg: an asynchronous PostgreSQL pool for one worker thread's event loop.
 *
 * pg.c is one module (about 1,200 lines) because it is one state machine: a connection's start-up,
 * host lookup, preparing, pipeline, transactions, deadlines and reconnects all move the same
 * per-connection state, and splitting them would spread that state's invariants over several files.
 *
 * Each worker owns one ls_pg_pool_t holding its share of PG_POOL_SIZE connections. Connections are
 * opened with PQconnectStartParams/PQconnectPoll and driven by the loop (PQsocket wrapped with
 * h2o_evloop_socket_create on a dup()ed fd); nothing here blocks once the pool is created.
 *
 * Host names: libpq would resolve a host name synchronously inside PQconnectPoll. When the
 * connection string (or PGHOST, when it has no host) names one host by name (not an address, not a
 * socket folder, no hostaddr nor PGHOSTADDR), the pool looks it up off the loop (resolve.h) before
 * every connection attempt (a container's address may change between attempts) and gives libpq the
 * addresses as hostaddr, keeping the name as host for TLS and messages. The lookup counts against
 * the attempt's connect timeout (10 s). A list of several hosts is left to libpq, which then
 * resolves on the loop: give such a pool addresses.
 *
 * Statements: the daemon passes a table of ls_pg_stmt_t; each is prepared on every connection as it
 * comes up, and queries name a statement by its index in that table.
 *
 * Queries run in pipeline mode: up to LS_PG_PIPELINE_DEPTH queries are in flight per connection,
 * each followed by a sync so that one query's error does not affect the next. Queries beyond that
 * wait in a FIFO of at most `queue_max` entries; when it is full the query fails at once with
 * LS_PG_BUSY.
 *
 * Metrics (metrics.h): every query's latency by statement name and its failure by SQLSTATE class,
 * the worker's connections by state and waiting queries, reconnects.
 *
 * Every session runs with TimeZone=UTC, plan_cache_mode=force_generic_plan (prepared statements are
 * planned once, not per call) and application_name set to the daemon name.
 *
 * Failure model:
 *   - A connection that breaks fails its in-flight queries with LS_PG_UNAVAILABLE and is
 *     reconnected with exponential backoff (100 ms doubling to 1 s).
 *   - While the pool has no usable connection, new queries fail at once with LS_PG_UNAVAILABLE
 *     (callers answer 503) instead of waiting.
 *   - A query whose deadline passes before its result arrives completes with LS_PG_TIMEOUT at that
 *     moment; its late result is discarded. When every statement a connection still has in flight
 *     was abandoned so (or is the pool's own ROLLBACK), the server is sent a cancel request off the
 *     loop (pgcancel.h; counted in ls_pg_cancels_total): the statement ends with 57014, its result is
 *     drained, and the connection takes new queries as soon as its ring is empty and the request has
 *     gone (or 1 s later at most). A statement still wanted by a caller is never cancelled (pipelined queries
 * wait behind it). statement_timeout_ms is the backstop should a cancel be lost or refused (queue full).
 *   - A COMMIT or ROLLBACK that fails and leaves the session in a transaction closes the connection
 *     (reconnected as above) rather than hand that state on.
 *
 * Callbacks are never called from inside the function that submitted the work (a failure detected
 * at submission is reported on the next loop iteration). Each submitted query gets exactly one
 * callback. The PGresult passed to a callback belongs to the pool and is cleared after the callback
 * returns; it is non-NULL only when status is LS_PG_OK or LS_PG_SQL_ERROR.
 *
 * Transactions: ls_pg_begin() reserves one connection (no other query is pipelined on it), sends
 * BEGIN, and calls back with an ls_pg_txn_t. The caller then runs statements with ls_pg_txn_exec()
 * one at a time and must end every successfully begun transaction with exactly one
 * ls_pg_txn_finish() (commit or rollback), also after an error. A transaction that fails to begin
 * (cb status != LS_PG_OK, txn NULL) needs no finish. The deadline given to ls_pg_begin covers the
 * whole transaction: once it has passed, statements complete with LS_PG_TIMEOUT and ls_pg_txn_finish
 * rolls back and reports LS_PG_TIMEOUT at once. If the connection breaks, pending and later
 * statements get LS_PG_UNAVAILABLE and finish (still required) reports LS_PG_UNAVAILABLE.
 *
 * Misuse that the pool detects (unknown statement index, a parameter count that differs from the
 * statement's, a second ls_pg_txn_exec while one is running) is logged and reported as
 * LS_PG_SQL_ERROR with res NULL.
 */
#ifndef LS_PG_H
#define LS_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "loop.h"
#include "resolve.h"

#define LS_PG_PIPELINE_DEPTH 16
#define LS_PG_MAX_PARAMS     32

typedef struct ls_pg_pool ls_pg_pool_t;
typedef struct ls_pg_txn ls_pg_txn_t;

typedef struct {
    const char *name; /* prepared statement name, unique in the table */
    const char *sql;
    int nparams; /* parameters are passed as text; their types come from the SQL ($1::bigint) */
} ls_pg_stmt_t;

typedef enum {
    LS_PG_OK = 0,      /* res is PGRES_TUPLES_OK or PGRES_COMMAND_OK */
    LS_PG_SQL_ERROR,   /* the server rejected the statement: res holds the error (see ls_pg_sqlstate) */
    LS_PG_UNAVAILABLE, /* no connection, or it broke while the query was in flight */
    LS_PG_TIMEOUT,     /* the deadline passed */
    LS_PG_BUSY,        /* the wait queue is full */
} ls_pg_status_t;

typedef void (*ls_pg_cb)(void *ud, ls_pg_status_t status, PGresult *res);
typedef void (*ls_pg_begin_cb)(void *ud, ls_pg_status_t status, ls_pg_txn_t *txn);

typedef struct {
    const char *conninfo; /* libpq URL or key=value string */
    const char *application_name;
    int nconns;       /* >= 1 */
    size_t queue_max; /* waiting queries beyond the pipelines; 0 means 1024 */
    const ls_pg_stmt_t *stmts;
    size_t nstmts;
    ls_resolve_fn resolve;    /* how a host name is looked up (resolve.h); NULL: getaddrinfo */
    int statement_timeout_ms; /* the sessions' statement_timeout; 0: the server's own setting */
    /* Optional, for a LISTEN connection (pglisten.h), called on the loop with hook_ud: on_ready each
     * time a connection has become ready (also after every reconnect), on_notify for each NOTIFY it
     * received. Neither may destroy the pool. */
    void (*on_ready)(void *hook_ud);
    void (*on_notify)(void *hook_ud, const char *channel);
    void *hook_ud;
    /* A side pool of the worker (the outbox's, pglisten's): its connections are left out of the
     * worker's pool gauges and its queries count as statement `other` (metrics.h). */
    int side;
} ls_pg_config_t;

/*
 * Creates the pool and starts connecting (asynchronously). The config's strings and statement table
 * must outlive the pool. Returns NULL on allocation failure.
 */
ls_pg_pool_t *ls_pg_pool_create(ls_loop_t *loop, const ls_pg_config_t *config);
/* Closes every connection; pending callbacks are called with LS_PG_UNAVAILABLE first (also for work
 * they submit meanwhile). Must not be called from inside one of this pool's callbacks. */
void ls_pg_pool_destroy(ls_pg_pool_t *pool);
/* Connections currently connected with every statement prepared. */
int ls_pg_pool_ready_count(const ls_pg_pool_t *pool);

/*
 * Runs prepared statement stmt_index with nparams text parameters (NULL entry: SQL NULL).
 * Parameter strings are copied before the call returns. deadline is absolute monotonic ms
 * (ls_now_ms() based); 0 means none.
 */
void ls_pg_exec(ls_pg_pool_t *pool, size_t stmt_index, int nparams, const char *const *params,
                uint64_t deadline, ls_pg_cb cb, void *ud);
/* Same with SQL text that is not prepared (PQsendQueryParams). */
void ls_pg_exec_sql(ls_pg_pool_t *pool, const char *sql, int nparams, const char *const *params,
                    uint64_t deadline, ls_pg_cb cb, void *ud);

void ls_pg_begin(ls_pg_pool_t *pool, uint64_t deadline, ls_pg_begin_cb cb, void *ud);
void ls_pg_txn_exec(ls_pg_txn_t *txn, size_t stmt_index, int nparams, const char *const *params, ls_pg_cb cb,
                    void *ud);
/* Commits (commit != 0) or rolls back, then returns the connection to the pool. cb may be NULL.
 * A commit on a transaction that already failed reports LS_PG_SQL_ERROR and rolls back. */
void ls_pg_txn_finish(ls_pg_txn_t *txn, int commit, ls_pg_cb cb, void *ud);

/* The five-character SQLSTATE of an error result ("23505" unique violation, …), or "" if none
 * (also for res NULL). */
const char *ls_pg_sqlstate(const PGresult *res);
/* The server's primary error message (libpq's message for errors made by libpq), or "". */
const char *ls_pg_errmsg(const PGresult *res);

#endif
