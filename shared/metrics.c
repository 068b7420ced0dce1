/*
 * metrics: the registry, the per-thread blocks and the recording functions. The exposition writer is
 * metrics_write.c; what both share is metrics_impl.h.
 */
#include "metrics_impl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"

/* Bucket bounds in nanoseconds, as the contract's seconds. */
const uint64_t ls_metrics_bucket_ns[LS_METRICS_NBUCKETS] = {
    500000ull,    1000000ull,   2500000ull,   5000000ull,    10000000ull,   25000000ull,   50000000ull,
    100000000ull, 250000000ull, 500000000ull, 1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull,
};

static __thread ls_metrics_block_t *tl_block;

int ls_metrics_method(const char *method, size_t len)
{
    static const char *const names[LS_M_OTHER] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    for (int i = 0; i < LS_M_OTHER; i++)
        if (strlen(names[i]) == len && memcmp(names[i], method, len) == 0)
            return i;
    return LS_M_OTHER;
}

ls_metrics_upstream_outcome_t ls_metrics_http_outcome(int http_outcome, int status)
{
    if (http_outcome == LS_HTTP_TIMEOUT)
        return LS_UP_TIMEOUT;
    if (http_outcome != LS_HTTP_OK || status < 100 || status > 599)
        return LS_UP_TRANSPORT_ERROR;
    /* 1xx never ends a call: count it with the 2xx */
    return status < 300 ? LS_UP_2XX : (ls_metrics_upstream_outcome_t)(LS_UP_2XX + status / 100 - 2);
}

/* ---- the registry ---- */

/* Lays the counters and gauges out in two flat arrays per block. */
static void layout(ls_metrics_t *m)
{
    size_t c = 0, g = 0;
    m->nroute_slots = m->d.nroutes + 5;
    m->nstmt_slots = m->d.nstmts + 1;
    m->off_req = c, c += m->nroute_slots * LS_M_NMETHODS * 5;
    m->off_req_hist = c, c += m->nroute_slots * LS_M_NMETHODS * LS_METRICS_HSLOTS;
    m->off_pg_hist = c, c += m->nstmt_slots * LS_METRICS_HSLOTS;
    m->off_pg_errors = c, c += LS_METRICS_PGERR_SLOTS;
    m->off_pg_reconnects = c, c += 1;
    m->off_pg_cancels = c, c += 1;
    m->off_up_calls = c, c += LS_METRICS_MAX_TARGETS * LS_UP_NOUTCOMES;
    m->off_up_hist = c, c += LS_METRICS_MAX_TARGETS * LS_METRICS_HSLOTS;
    m->off_up_retries = c, c += LS_METRICS_MAX_TARGETS;
    m->off_partial = c, c += LS_VIEW_COUNT * LS_METRICS_MAX_TARGETS;
    m->off_outbox = c, c += LS_METRICS_MAX_TARGETS * LS_OB_NOUTCOMES;
    m->off_outbox_wakeups = c, c += LS_OB_NWAKES;
    m->off_notify = c, c += LS_NT_NOUTCOMES;
    m->off_rate_limited = c, c += LS_RL_NSCOPES * 2;
    m->off_batches = c, c += LS_METRICS_MAX_TARGETS * 2;
    m->nctr = c;
    m->off_breaker = g, g += LS_METRICS_MAX_TARGETS;
    m->off_pg_conns = g, g += LS_PGC_NSTATES;
    m->off_pg_waiting = g, g += 1;
    m->ngauge = g;
}

ls_metrics_t *ls_metrics_create(const ls_metrics_desc_t *desc)
{
    if (desc->nworkers < 1)
        return NULL;
    ls_metrics_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->d = *desc;
    layout(m);
    pthread_mutex_init(&m->lock, NULL);
    atomic_init(&m->features, desc->features);
    m->blocks = calloc((size_t)desc->nworkers, sizeof(*m->blocks));
    if (m->blocks == NULL) {
        ls_metrics_destroy(m);
        return NULL;
    }
    for (int i = 0; i < desc->nworkers; i++) {
        ls_metrics_block_t *b = &m->blocks[i];
        b->m = m;
        b->index = i;
        b->c = calloc(m->nctr, sizeof(*b->c));
        b->g = calloc(m->ngauge, sizeof(*b->g));
        if (b->c == NULL || b->g == NULL) {
            ls_metrics_destroy(m);
            return NULL;
        }
    }
    snprintf(m->labels[LS_METRICS_MAX_TARGETS - 1], sizeof(m->labels[0]), "other");
    m->start_time = ls_metrics_process_start_time();
    return m;
}

void ls_metrics_destroy(ls_metrics_t *m)
{
    if (m == NULL)
        return;
    if (m->blocks != NULL) {
        for (int i = 0; i < m->d.nworkers; i++) {
            free(m->blocks[i].c);
            free(m->blocks[i].g);
        }
        free(m->blocks);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

ls_metrics_block_t *ls_metrics_block(ls_metrics_t *m, int worker)
{
    return m != NULL && worker >= 0 && worker < m->d.nworkers ? &m->blocks[worker] : NULL;
}

ls_metrics_t *ls_metrics_registry(ls_metrics_block_t *b)
{
    return b != NULL ? b->m : NULL;
}

void ls_metrics_bind(ls_metrics_block_t *b)
{
    tl_block = b;
}

/* ---- recording ---- */

#if LS_METRICS

uint64_t ls_metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One writer per block: a load and a store, each whole for the scraping thread. */
static inline void add(ctr_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

static inline void set(gauge_t *g, int64_t v)
{
    atomic_store_explicit(g, v, memory_order_relaxed);
}

/* h: LS_METRICS_HSLOTS counters (the buckets, the overflow, the sum in ns). */
static void observe(ctr_t *h, uint64_t ns)
{
    int i = 0;
    while (i < LS_METRICS_NBUCKETS && ns > ls_metrics_bucket_ns[i])
        i++;
    add(&h[i], 1);
    add(&h[LS_METRICS_HSLOTS - 1], ns);
}

static uint64_t since(uint64_t t0_ns)
{
    uint64_t now = ls_metrics_now_ns();
    return now > t0_ns ? now - t0_ns : 0;
}

void ls_metrics_request_start(ls_metrics_req_t *rm, const char *method, size_t method_len)
{
    rm->t0_ns = ls_metrics_now_ns();
    rm->route = LS_METRICS_ROUTE_UNMATCHED;
    rm->method = ls_metrics_method(method, method_len);
}

void ls_metrics_request_done(const ls_metrics_req_t *rm, int status)
{
    ls_metrics_block_t *b = tl_block;
    if (b == NULL)
        return;
    ls_metrics_t *m = b->m;
    size_t slot = rm->route >= 0 ? (size_t)rm->route : m->d.nroutes + (size_t)(-rm->route - 1);
    int cls = status / 100 - 1;
    if (slot >= m->nroute_slots || rm->method < 0 || rm->method >= LS_M_NMETHODS || cls < 0 || cls > 4)
        return;
    size_t series = slot * LS_M_NMETHODS + (size_t)rm->method;
    add(&b->c[m->off_req + series * 5 + (size_t)cls], 1);
    observe(&b->c[m->off_req_hist + series * LS_METRICS_HSLOTS], since(rm->t0_ns));
}

/* A call's name as its label: "students" -> "students-service". */
static void target_label(char *out, size_t size, const char *name)
{
    size_t n = strlen(name);
    if (strcmp(name, "telegram") == 0 || (n >= 8 && strcmp(name + n - 8, "-service") == 0))
        snprintf(out, size, "%s", name);
    else
        snprintf(out, size, "%s-service", name);
}

int ls_metrics_target(const char *name)
{
    ls_metrics_block_t *b = tl_block;
    if (b == NULL || name == NULL || name[0] == '\0')
        return LS_METRICS_MAX_TARGETS - 1;
    ls_metrics_t *m = b->m;
    int n = atomic_load_explicit(&m->ntargets, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (strcmp(m->names[i], name) == 0)
            return i;
    /* First sight of this name on any thread (a handful of times in a process's life). */
    int slot = LS_METRICS_MAX_TARGETS - 1;
    pthread_mutex_lock(&m->lock);
    n = atomic_load_explicit(&m->ntargets, memory_order_relaxed);
    for (int i = 0; i < n; i++)
        if (strcmp(m->names[i], name) == 0)
            slot = i;
    if (slot == LS_METRICS_MAX_TARGETS - 1 && n < LS_METRICS_MAX_TARGETS - 1 &&
        strlen(name) < sizeof(m->names[0])) {
        snprintf(m->names[n], sizeof(m->names[0]), "%s", name);
        target_label(m->labels[n], sizeof(m->labels[0]), name);
        atomic_store_explicit(&m->ntargets, n + 1, memory_order_release);
        slot = n;
    }
    pthread_mutex_unlock(&m->lock);
    return slot;
}

static int target_ok(int target)
{
    return target >= 0 && target < LS_METRICS_MAX_TARGETS;
}

void ls_metrics_upstream_call(int target, ls_metrics_upstream_outcome_t outcome, uint64_t t0_ns, int attempts)
{
    ls_metrics_block_t *b = tl_block;
    if (b == NULL || !target_ok(target) || outcome >= LS_UP_NOUTCOMES)
        return;
    ls_metrics_t *m = b->m;
    add(&b->c[m->off_up_calls + (size_t)target * LS_UP_NOUTCOMES + outcome], 1);
    observe(&b->c[m->off_up_hist + (size_t)target * LS_METRICS_HSLOTS], since(t0_ns));
    if (attempts > 1)
        add(&b->c[m->off_up_retries + (size_t)target], (uint64_t)(attempts - 1));
}

void ls_metrics_upstream_refused(int target, ls_metrics_upstream_outcome_t outcome)
{
    ls_metrics_block_t *b = tl_block;
    if (b == NULL || !target_ok(target) || outcome >= LS_UP_NOUTCOMES)
        return;
    add(&b->c[b->m->off_up_calls + (size_t)target * LS_UP_NOUTCOMES + outcome], 1);
}

void ls_metrics_bff_breaker(int target, int open)
{
    ls_metrics_block_t *b = tl_block;
    if (b == NULL || !target_ok(target))
        return;
    ls_metrics_t *m = b->m;
    unsigned bit = 1u << target;
    if (!(atomic_load_explicit(&m->breaker_seen, memory_order_relaxed) & bit))
        atomic_fetch_or(&m->breaker_seen, bit);
    set(&b->g[m->off_breaker + (size_t)target], open ? 1 : 0);
}

void ls_metrics_bff_partial(ls_metrics_view_t view, int target)
{
    ls_metrics_block_t *b = tl_block;
    if (b == NULL || !target_ok(target) || view >= LS_VIEW_COUNT)
        return;
    add(&b->c[b->m->off_partial + (size_t)view * LS_METRICS_MAX_TARGETS + (size_t)target], 1);
}

void ls_metrics_bff_batch(int target, size_t calls)
{
    ls_metrics_block_t *b = tl_block;
    if (b == NULL || !target_ok(target))
        return;
    add(&b->c[b->m->off_batches + (size_t)target * 2], 1);
    add(&b->c[b->m->off_batches + (size_t)target * 2 + 1], calls);
}

void ls_metrics_bff_rate_limited(ls_metrics_rate_scope_t scope, int write)
{
    ls_metrics_block_t *b = tl_block;
    if (b != NULL && scope < LS_RL_NSCOPES)
        add(&b->c[b->m->off_rate_limited + (size_t)scope * 2 + (write != 0)], 1);
}

/* "23505" -> its class's slot; an error without a SQLSTATE counts as XX (internal error). */
static size_t sqlstate_slot(const char *s)
{
    int d[2];
    if (s == NULL || s[0] == '\0' || s[1] == '\0')
        s = "XX";
    for (int i = 0; i < 2; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            d[i] = c - '0';
        else if (c >= 'A' && c <= 'Z')
            d[i] = c - 'A' + 10;
        else
            return sqlstate_slot("XX");
    }
    return (size_t)(d[0] * 36 + d[1]);
}

void ls_metrics_pg_query(int stmt, int status, const char *sqlstate, uint64_t t0_ns)
{
    ls_metrics_block_t *b = tl_block;
    if (b == NULL)
        return;
    ls_metrics_t *m = b->m;
    size_t slot = stmt >= 0 && (size_t)stmt < m->d.nstmts ? (size_t)stmt : m->d.nstmts;
    observe(&b->c[m->off_pg_hist + slot * LS_METRICS_HSLOTS], since(t0_ns));
    size_t err;
    switch (status) {
    case LS_PG_OK:
        return;
    case LS_PG_SQL_ERROR:
        err = sqlstate_slot(sqlstate);
        break;
    case LS_PG_UNAVAILABLE:
        err = LS_METRICS_PGERR_UNAVAILABLE;
        break;
    case LS_PG_TIMEOUT:
        err = LS_METRICS_PGERR_TIMEOUT;
        break;
    default:
        err = LS_METRICS_PGERR_BUSY;
        break;
    }
    add(&b->c[m->off_pg_errors + err], 1);
}

void ls_metrics_pg_pool(const int by_state[LS_PGC_NSTATES], int waiting)
{
    ls_metrics_block_t *b = tl_block;
    if (b == NULL)
        return;
    ls_metrics_t *m = b->m;
    for (int i = 0; i < LS_PGC_NSTATES; i++)
        set(&b->g[m->off_pg_conns + (size_t)i], by_state[i]);
    set(&b->g[m->off_pg_waiting], waiting);
}

void ls_metrics_pg_reconnect(void)
{
    ls_metrics_block_t *b = tl_block;
    if (b != NULL)
        add(&b->c[b->m->off_pg_reconnects], 1);
}

void ls_metrics_pg_cancel(void)
{
    ls_metrics_block_t *b = tl_block;
    if (b != NULL)
        add(&b->c[b->m->off_pg_cancels], 1);
}

void ls_metrics_outbox_delivery(int target, ls_metrics_outbox_outcome_t outcome)
{
    ls_metrics_block_t *b = tl_block;
    if (b == NULL || !target_ok(target) || outcome >= LS_OB_NOUTCOMES)
        return;
    add(&b->c[b->m->off_outbox + (size_t)target * LS_OB_NOUTCOMES + outcome], 1);
}

void ls_metrics_outbox_pending(int64_t rows, double oldest_age_s)
{
    ls_metrics_block_t *b = tl_block;
    if (b == NULL)
        return;
    set(&b->m->outbox_rows, rows);
    set(&b->m->outbox_age_ms, oldest_age_s > 0 ? (int64_t)(oldest_age_s * 1000.0) : 0);
}

void ls_metrics_outbox_wakeup(ls_metrics_outbox_wake_t source)
{
    ls_metrics_block_t *b = tl_block;
    if (b != NULL && source < LS_OB_NWAKES)
        add(&b->c[b->m->off_outbox_wakeups + source], 1);
}

void ls_metrics_notification_delivery(ls_metrics_notify_outcome_t outcome)
{
    ls_metrics_block_t *b = tl_block;
    if (b != NULL && outcome < LS_NT_NOUTCOMES)
        add(&b->c[b->m->off_notify + outcome], 1);
}

void ls_metrics_notification_queue(int64_t depth)
{
    ls_metrics_block_t *b = tl_block;
    if (b == NULL)
        return;
    set(&b->m->notify_depth, depth);
    if (!(atomic_load_explicit(&b->m->features, memory_order_relaxed) & LS_METRICS_F_NOTIFY))
        atomic_fetch_or(&b->m->features, LS_METRICS_F_NOTIFY);
}

int ls_metrics_first_worker(void)
{
    return tl_block != NULL && tl_block->index == 0;
}

#endif
