/*
 * metrics_impl: the registry's layout, shared by metrics.c (recording) and metrics_write.c (the
 * exposition). Not for other modules: they use metrics.h.
 *
 * Each block holds two flat arrays: counters (ctr_t) and per-worker gauges (gauge_t), at offsets
 * the registry computes once from the route and statement tables. A histogram is LS_METRICS_HSLOTS
 * counters: one per finite bucket (not cumulative), one for the values above the last bound, and
 * the sum in nanoseconds. The scrape sums each counter over the blocks.
 */
#ifndef LS_METRICS_IMPL_H
#define LS_METRICS_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "metrics.h"

#define LS_METRICS_HSLOTS            (LS_METRICS_NBUCKETS + 2)
#define LS_METRICS_SQLSTATE_CLASSES  (36 * 36) /* two characters of [0-9A-Z] */
#define LS_METRICS_PGERR_UNAVAILABLE (LS_METRICS_SQLSTATE_CLASSES + 0)
#define LS_METRICS_PGERR_TIMEOUT     (LS_METRICS_SQLSTATE_CLASSES + 1)
#define LS_METRICS_PGERR_BUSY        (LS_METRICS_SQLSTATE_CLASSES + 2)
#define LS_METRICS_PGERR_SLOTS       (LS_METRICS_SQLSTATE_CLASSES + 3)

typedef _Atomic uint64_t ctr_t;
typedef _Atomic int64_t gauge_t;

extern const uint64_t ls_metrics_bucket_ns[LS_METRICS_NBUCKETS];

struct ls_metrics_block {
    ls_metrics_t *m;
    int index;
    ctr_t *c;
    gauge_t *g;
};

struct ls_metrics {
    ls_metrics_desc_t d;
    ls_metrics_block_t *blocks; /* d.nworkers */
    size_t nroute_slots, nstmt_slots;
    size_t nctr, ngauge;
    /* counters */
    size_t off_req, off_req_hist, off_pg_hist, off_pg_errors, off_pg_reconnects, off_pg_cancels, off_up_calls,
        off_up_hist, off_up_retries, off_partial, off_outbox, off_outbox_wakeups, off_notify,
        off_rate_limited, off_batches;
    /* per-worker gauges */
    size_t off_breaker, off_pg_conns, off_pg_waiting;
    /* targets: names[i] as calls give them, labels[i] as shown; written under lock, published by
     * ntargets (release). The last slot is "other". */
    pthread_mutex_t lock;
    _Atomic int ntargets;
    char names[LS_METRICS_MAX_TARGETS][48];
    char labels[LS_METRICS_MAX_TARGETS][64];
    _Atomic unsigned features;
    _Atomic unsigned breaker_seen; /* bit per target: some worker has a breaker for it */
    /* process-wide gauges from the periodic queries */
    gauge_t outbox_rows, outbox_age_ms, notify_depth;
    double start_time; /* Unix time the process started */
};

/* Unix time the process started (from /proc), 0 when unknown. */
double ls_metrics_process_start_time(void);

#endif
