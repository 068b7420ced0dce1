/*
 * outbox: calls to other services that must happen, recorded in the same transaction as the change
 * that needs them, and delivered after the commit — at least once, with retries, surviving restarts
 * and the other service being down (docs/ARCHITECTURE.md §6.4; used by groups→students and
 * calendar→notification).
 *
 * The table lives in the calling service's own database; each service ships it as a migration with
 * exactly this shape (copy the DDL below):
 *
 *   CREATE TABLE IF NOT EXISTS outbox (
 *       id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
 *       target          TEXT NOT NULL,          -- a name from ls_outbox_config_t.targets
 *       method          TEXT NOT NULL,          -- PUT, POST, DELETE, PATCH
 *       path            TEXT NOT NULL,          -- "/students/7/enrollments/<uuid>"
 *       body            TEXT,                   -- JSON, or NULL
 *       actor_telegram_id BIGINT,               -- sent as X-Actor-Telegram-Id
 *       idempotency_key TEXT NOT NULL UNIQUE,   -- sent as Idempotency-Key; the receiver dedupes on it
 *       ordering_key    TEXT,                   -- rows with the same key go out one at a time, in id
 *                                               -- order; NULL: independent of every other row
 *       traceparent     TEXT,                   -- ls_req_traceparent() of the request that wrote the
 *                                               -- row, sent with it (trace.h); NULL: none
 *       attempts        INT NOT NULL DEFAULT 0,
 *       next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
 *       last_error      TEXT,
 *       delivered_at    TIMESTAMPTZ,
 *       failed_at       TIMESTAMPTZ,            -- given up: a permanent 4xx answer
 *       created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
 *   );
 *   CREATE INDEX IF NOT EXISTS outbox_due_idx ON outbox (next_attempt_at)
 *       WHERE delivered_at IS NULL AND failed_at IS NULL;
 *   CREATE INDEX IF NOT EXISTS outbox_pending_order_idx ON outbox (ordering_key, id)
 *       WHERE delivered_at IS NULL AND failed_at IS NULL AND ordering_key IS NOT NULL;
 *
 * A handler adds rows with its own INSERT inside its transaction (or in the same statement as the
 * change), then calls ls_outbox_kick() after the commit so delivery starts at once.
 *
 * Delivery: every worker runs a poller (started by the worker from ls_daemon_t.outbox). It claims due
 * rows with FOR UPDATE SKIP LOCKED and leases them (next_attempt_at moves LS_OUTBOX_LEASE_S into the
 * future), so pollers of several workers or replicas never send a row at the same time. Rows with the
 * same ordering_key are delivered one after the other in id order (a row is not claimed while an
 * older one with its key is neither delivered nor failed): give the changes of one resource one key
 * (groups-service: the enrollment's path, so a DELETE never overtakes the PUT it undoes; calendar: the
 * recipient, so "cancelled" never arrives before "scheduled"), and insert them in commit order (e.g.
 * under a row lock they share). Rows without a key go out independently. Each row is
 * sent with the internal HTTP client (its idempotency key, actor, traceparent and a per-call deadline),
 * and its delivery's log lines carry the trace id, so the receiver's lines and the writer's share it. Then:
 *   2xx                         -> delivered_at = now()
 *   4xx other than 408/409/429  -> failed_at = now(), last_error (logged at error: a bug, not an outage)
 *   409                         -> delivered (the receiver already has it)
 *   anything else / no answer   -> next_attempt_at = now() + backoff (1 s doubling, at most 5 min)
 * A poller wakes every poll_ms, and at once after ls_outbox_kick() on its own worker. Each outcome
 * counts in ls_outbox_deliveries_total; worker 0's poller refreshes ls_outbox_pending_rows and
 * ls_outbox_oldest_pending_age_seconds every LS_METRICS_GAUGE_QUERY_MS (metrics.h).
 */
#ifndef LS_OUTBOX_H
#define LS_OUTBOX_H

#include <stddef.h>

#include "http.h"
#include "loop.h"
#include "pg.h"

#define LS_OUTBOX_LEASE_S     30
#define LS_OUTBOX_MAX_TARGETS 8

typedef struct {
    const char *name;     /* as written in outbox.target, e.g. "students" */
    const char *base_url; /* "http://127.0.0.1:8083" */
} ls_outbox_target_t;

typedef struct {
    ls_outbox_target_t targets[LS_OUTBOX_MAX_TARGETS];
    size_t ntargets;
    int poll_ms;         /* 0 means 1000 */
    int batch;           /* rows claimed per round; 0 means 32 */
    int call_timeout_ms; /* deadline of one delivery attempt; 0 means 5000 */
} ls_outbox_config_t;

typedef struct ls_outbox ls_outbox_t;

/* Starts the poller on the calling thread's loop, with its pool and HTTP client (which must outlive
 * it until ls_outbox_stop). The config is copied. Returns NULL on allocation failure, or when http is
 * NULL or there are too many targets. A worker of a daemon with ls_daemon_t.outbox runs one:
 * ls_worker_outbox() (worker.h) gives it. */
ls_outbox_t *ls_outbox_start(ls_loop_t *loop, ls_pg_pool_t *pg, ls_http_t *http,
                             const ls_outbox_config_t *config);
/* Stops polling (NULL is ignored); rows in flight are left leased and retried after the lease (they are
 * idempotent). Call it before the client and pool are destroyed (the worker does so for
 * ls_daemon_t.outbox): calls and queries still pending are completed as they are destroyed, and the
 * poller's memory is freed with the last of them. */
void ls_outbox_stop(ls_outbox_t *outbox);
/* Runs a round now (after a commit that added rows); NULL is ignored. Only from the poller's own
 * thread, e.g. ls_outbox_kick(ls_worker_outbox(r->worker)). */
void ls_outbox_kick(ls_outbox_t *outbox);

#endif
