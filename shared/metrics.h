/*
 * metrics: the daemon's Prometheus metrics — recorded per worker thread, summed when scraped.
 *
 * Names, labels and buckets are the contract of issue #12 (README "Metrics"). A registry
 * (ls_metrics_t) belongs to the process; it holds one block per worker thread. A worker binds its
 * block to its thread (ls_metrics_bind) and every recording function below writes into the calling
 * thread's block: one writer per block, so a count is a relaxed atomic load and store (no lock, no
 * read-modify-write, no allocation), and the thread that writes the exposition reads each value
 * whole. A thread with no block bound (the main thread, a unit test) records nothing.
 *
 * Series are bounded by construction: routes by the daemon's route table (plus /healthz, /readyz,
 * /metrics, `unmatched` and /batch), statements by its statement table (plus `other`), SQLSTATE classes by
 * their two characters, targets by a table of LS_METRICS_MAX_TARGETS names (later names count as
 * `other`). A target's label is the name a call gives with "-service" appended ("students" →
 * "students-service"), except a name that already ends so and "telegram".
 *
 * The exposition (ls_metrics_write) is the text format 0.0.4: HELP and TYPE once per family, label
 * values escaped, histograms as cumulative buckets with _sum and _count. A labelled counter or
 * histogram shows the series that have counted something; the process_* gauges are read from
 * /proc/self at that moment.
 *
 * Build option -Dmetrics=false (LS_METRICS=0) compiles every recording function to nothing, so that
 * the benchmark can measure what recording costs; /metrics then shows ls_build_info and process_*.
 */
#ifndef LS_METRICS_H
#define LS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "pg.h"
#include "router.h"
#include "text.h"

#ifndef LS_METRICS
#define LS_METRICS 1
#endif

#define LS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define LS_METRICS_NBUCKETS     14 /* finite latency buckets, 0.0005 s … 10 s */
#define LS_METRICS_MAX_TARGETS  16 /* the last one is `other` */
/* How often the periodic gauge queries run (outbox backlog, notification queue). */
#define LS_METRICS_GAUGE_QUERY_MS 2000

typedef struct ls_metrics ls_metrics_t;
typedef struct ls_metrics_block ls_metrics_block_t;

/* Feature bits: which families a daemon shows even before anything was recorded. */
#define LS_METRICS_F_DB     1u /* a PostgreSQL pool: ls_pg_*, and ls_ready from its connections */
#define LS_METRICS_F_OUTBOX 2u /* ls_outbox_pending_rows, ls_outbox_oldest_pending_age_seconds */
#define LS_METRICS_F_NOTIFY 4u /* ls_notification_queue_depth */

typedef struct {
    const char *daemon;  /* ls_build_info{daemon} */
    const char *version; /* ls_build_info{version} */
    const ls_route_t *routes;
    size_t nroutes;
    const ls_pg_stmt_t *stmts;
    size_t nstmts;
    int nworkers; /* blocks, >= 1 */
    unsigned features;
} ls_metrics_desc_t;

/* Main thread, before the workers start: the registry and its blocks (the tables must outlive it).
 * NULL when out of memory. */
ls_metrics_t *ls_metrics_create(const ls_metrics_desc_t *desc);
/* After every worker thread has ended. NULL is ignored. */
void ls_metrics_destroy(ls_metrics_t *m);
ls_metrics_block_t *ls_metrics_block(ls_metrics_t *m, int worker);
ls_metrics_t *ls_metrics_registry(ls_metrics_block_t *b);
/* The calling thread records into b from now on (NULL: records nothing). Worker index 0's thread is
 * the one ls_metrics_first_worker() names. */
void ls_metrics_bind(ls_metrics_block_t *b);
/* Appends the exposition to t (t->failed when out of memory). Any thread. */
void ls_metrics_write(ls_metrics_t *m, ls_text_t *t);
/* Appends v as a label value: backslash, double quote and line feed escaped. */
void ls_metrics_label_value(ls_text_t *t, const char *v);

/* ---- labels ---- */

enum {
    LS_M_GET,
    LS_M_HEAD,
    LS_M_POST,
    LS_M_PUT,
    LS_M_PATCH,
    LS_M_DELETE,
    LS_M_OPTIONS,
    LS_M_OTHER,
    LS_M_NMETHODS
};
/* Route slots besides the route table's indexes. */
enum {
    LS_METRICS_ROUTE_HEALTHZ = -1,
    LS_METRICS_ROUTE_READYZ = -2,
    LS_METRICS_ROUTE_METRICS = -3,
    LS_METRICS_ROUTE_UNMATCHED = -4,
    LS_METRICS_ROUTE_BATCH = -5
};
typedef enum {
    LS_UP_2XX,
    LS_UP_3XX,
    LS_UP_4XX,
    LS_UP_5XX,
    LS_UP_TIMEOUT,
    LS_UP_TRANSPORT_ERROR,
    LS_UP_BREAKER_OPEN,
    LS_UP_SHED,
    LS_UP_NOUTCOMES
} ls_metrics_upstream_outcome_t;
typedef enum { LS_OB_DELIVERED, LS_OB_RETRY, LS_OB_FAILED, LS_OB_NOUTCOMES } ls_metrics_outbox_outcome_t;
typedef enum { LS_OB_WAKE_KICK, LS_OB_WAKE_NOTIFY, LS_OB_WAKE_POLL, LS_OB_NWAKES } ls_metrics_outbox_wake_t;
typedef enum {
    LS_NT_SENT,
    LS_NT_RETRY,
    LS_NT_FAILED,
    LS_NT_STORED,
    LS_NT_NOUTCOMES
} ls_metrics_notify_outcome_t;
typedef enum {
    LS_VIEW_PROFILE,
    LS_VIEW_GROUP,
    LS_VIEW_SCHEDULE,
    LS_VIEW_CATALOGUE,
    LS_VIEW_COUNT
} ls_metrics_view_t;
/* Which of the BFF's rate limits refused a request: its client address's or its person's. */
typedef enum { LS_RL_ADDR, LS_RL_USER, LS_RL_NSCOPES } ls_metrics_rate_scope_t;
typedef enum {
    LS_PGC_READY,
    LS_PGC_BUSY,
    LS_PGC_CONNECTING,
    LS_PGC_BROKEN,
    LS_PGC_NSTATES
} ls_metrics_pg_state_t;

/* A request's part, kept in ls_req_t. */
typedef struct {
    uint64_t t0_ns; /* arrival */
    int route;      /* route table index, or an LS_METRICS_ROUTE_* */
    int method;     /* LS_M_* */
} ls_metrics_req_t;

int ls_metrics_method(const char *method, size_t len);
/* An HTTP call's outcome: by its status class when it was answered (outcome LS_HTTP_OK). */
ls_metrics_upstream_outcome_t ls_metrics_http_outcome(int http_outcome, int status);

/* ---- recording (into the calling thread's block) ---- */

#if LS_METRICS
#define LS_METRICS_FN(decl)     decl;
#define LS_METRICS_FN_INT(decl) decl;
#else
#define LS_METRICS_FN(decl)                                                                                  \
    static inline decl {}
#define LS_METRICS_FN_INT(decl)                                                                              \
    static inline decl                                                                                       \
    {                                                                                                        \
        return 0;                                                                                            \
    }
#endif

/* CLOCK_MONOTONIC in nanoseconds (0 without LS_METRICS). */
LS_METRICS_FN_INT(uint64_t ls_metrics_now_ns(void))
/* A request arrived / was answered with status (request.c, where its access log line is written). */
LS_METRICS_FN(void ls_metrics_request_start(ls_metrics_req_t *rm, const char *method, size_t method_len))
LS_METRICS_FN(void ls_metrics_request_done(const ls_metrics_req_t *rm, int status))
/* The slot of a target name (registered on first sight, under a lock; later a lookup). */
LS_METRICS_FN_INT(int ls_metrics_target(const char *name))
/* A call ended after `attempts` attempts, t0_ns its ls_metrics_now_ns() at the start. */
LS_METRICS_FN(void ls_metrics_upstream_call(int target, ls_metrics_upstream_outcome_t outcome, uint64_t t0_ns,
                                            int attempts))
/* A call refused before it started (LS_UP_BREAKER_OPEN or LS_UP_SHED). */
LS_METRICS_FN(void ls_metrics_upstream_refused(int target, ls_metrics_upstream_outcome_t outcome))
LS_METRICS_FN(void ls_metrics_bff_breaker(int target, int open))
LS_METRICS_FN(void ls_metrics_bff_partial(ls_metrics_view_t view, int target))
/* One internal batch call (shared/batch.h) carried `calls` calls to target (the BFF's coalescer). */
LS_METRICS_FN(void ls_metrics_bff_batch(int target, size_t calls))
/* A request refused with 429 by a rate limit; write: it was not a GET or HEAD. */
LS_METRICS_FN(void ls_metrics_bff_rate_limited(ls_metrics_rate_scope_t scope, int write))
/* A query ended: stmt its statement index (-1: other), status an ls_pg_status_t, sqlstate its
 * SQLSTATE for LS_PG_SQL_ERROR ("" when none). */
LS_METRICS_FN(void ls_metrics_pg_query(int stmt, int status, const char *sqlstate, uint64_t t0_ns))
/* The worker's pool now: connections by state, queries waiting. */
LS_METRICS_FN(void ls_metrics_pg_pool(const int by_state[LS_PGC_NSTATES], int waiting))
LS_METRICS_FN(void ls_metrics_pg_reconnect(void))
/* A cancel request was handed to the cancel thread (pgcancel.h) for a statement past its deadline. */
LS_METRICS_FN(void ls_metrics_pg_cancel(void))
LS_METRICS_FN(void ls_metrics_outbox_delivery(int target, ls_metrics_outbox_outcome_t outcome))
LS_METRICS_FN(void ls_metrics_outbox_pending(int64_t rows, double oldest_age_s))
/* A poller was woken: by a kick after a commit, a NOTIFY, or its poll interval (outbox.h). */
LS_METRICS_FN(void ls_metrics_outbox_wakeup(ls_metrics_outbox_wake_t source))
LS_METRICS_FN(void ls_metrics_notification_delivery(ls_metrics_notify_outcome_t outcome))
LS_METRICS_FN(void ls_metrics_notification_queue(int64_t depth))
/* 1 on the thread bound to worker 0's block: the one that runs the periodic gauge queries. */
LS_METRICS_FN_INT(int ls_metrics_first_worker(void))

#endif
