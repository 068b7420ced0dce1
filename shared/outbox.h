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
 * plus the trigger that wakes the pollers (channel LS_OUTBOX_CHANNEL):
 *
 *   CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS
 *     $$ BEGIN PERFORM pg_notify('ls_outbox', ''); RETURN NULL; END $$;
 *   CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
 *
 * A handler adds rows with its own INSERT inside its transaction (or in the same statement as the
 * change), then calls ls_outbox_kick() after the commit so delivery starts at once on its worker.
 *
 * Delivery: every worker runs a poller (started by the worker from ls_daemon_t.outbox) with a
 * PostgreSQL connection of its own, the claim connection (so a slow receiver never holds one of the
 * request pool's connections; the daemon opens THREADS of them besides PG_POOL_SIZE). A round is one
 * transaction on it: it claims up to `batch` due rows with FOR UPDATE SKIP LOCKED, sends them all
 * at once, writes every outcome and commits. The claim is the row lock, so it never outlives the
 * process that made it: when a daemon dies (SIGKILL, a crash, a lost connection), PostgreSQL rolls its
 * round back and the rows are free for any poller at once, with their attempt not counted.
 * Chosen over recording the claiming backend in the row (pg_backend_pid() and its backend_start,
 * a claim free once that backend is gone): the lock needs no new column, no view of
 * pg_stat_activity (other roles' backends show NULLs there) and no lease as a backstop, and a broken
 * claim connection cannot leave a row claimed twice while the first call is still in flight. What it
 * costs: a round keeps its transaction open while its calls run, at most call_timeout_ms plus
 * 2 × 5 s for the claim and the outcomes (past that it rolls back); the round's row locks are held
 * until its slowest call ends, so one slow call delays the successors of the round's other rows; and
 * a row whose call was answered is sent again when the round is rolled back (at least once).
 *
 * Several pollers (workers, replicas) never send one row at the same time: a locked row is skipped.
 * Rows with the same ordering_key are delivered one after the other in id order (a row is not
 * claimed while an older one with its key is neither delivered nor failed, nor while it is locked by
 * another round): give the changes of one resource one key (groups-service: the enrollment's path,
 * so a DELETE never overtakes the PUT it undoes; calendar: the recipient, so "cancelled" never arrives
 * before "scheduled"), and insert them in commit order (e.g. under a row lock they share). Rows
 * without a key go out independently. Each row is sent with the internal HTTP client (its idempotency
 * key, actor, traceparent and a per-call deadline), and its delivery's log lines carry the trace id,
 * so the receiver's lines and the writer's share it. Then:
 *   2xx                         -> delivered_at = now()
 *   4xx other than 408/409/429  -> failed_at = now(), last_error (logged at error: a bug, not an outage)
 *   409                         -> delivered (the receiver already has it)
 *   anything else / no answer   -> next_attempt_at = now() + backoff: 1 s doubling, at most 5 min,
 *                                  times a random factor in [0.5, 1] (a recovering receiver is not
 *                                  hit by every row at once)
 *
 * When a round settled rows (or was full), the next one starts at once, so the successor of a
 * delivered row goes out right after it: a key with many rows pending drains at the network's pace,
 * one row per round trip, not one per poll. A poller wakes (ls_outbox_wake):
 *   - kick:   ls_outbox_kick() after a commit on its own worker;
 *   - notify: a NOTIFY on LS_OUTBOX_CHANNEL, which the daemon's one LISTEN connection (pglisten.h,
 *             on worker 0) passes to every worker's poller (worker.h), also once each time that
 *             connection has (re)started listening, for what was inserted meanwhile;
 *   - poll:   every poll_ms (OUTBOX_POLL_MS, default 5000), the fallback for lost notifications
 *             and for retries coming due; sooner when a round of this poller scheduled a retry
 *             that comes due before then.
 * Each wake-up counts in ls_outbox_wakeups_total{source}, each outcome in
 * ls_outbox_deliveries_total; worker 0's poller refreshes ls_outbox_pending_rows and
 * ls_outbox_oldest_pending_age_seconds every LS_METRICS_GAUGE_QUERY_MS (metrics.h).
 */
#ifndef LS_OUTBOX_H
#define LS_OUTBOX_H

#include <stddef.h>

#include "http.h"
#include "loop.h"
#include "pg.h"

#define LS_OUTBOX_MAX_TARGETS 8
#define LS_OUTBOX_CHANNEL     "ls_outbox" /* what the outbox tables' trigger NOTIFYs */

typedef struct {
    const char *name;     /* as written in outbox.target, e.g. "students" */
    const char *base_url; /* "http://127.0.0.1:8083" */
} ls_outbox_target_t;

typedef struct {
    ls_outbox_target_t targets[LS_OUTBOX_MAX_TARGETS];
    size_t ntargets;
    const char *conninfo;         /* the claim connection's database (the daemon's DATABASE_URL) */
    const char *application_name; /* its application_name, NULL: libpq's default */
    int poll_ms;                  /* 0 means 5000 */
    int batch;                    /* rows claimed per round; 0 means 32 */
    int call_timeout_ms;          /* deadline of one delivery attempt; 0 means 5000 */
} ls_outbox_config_t;

typedef struct ls_outbox ls_outbox_t;

/* Starts the poller on the calling thread's loop, with the worker's pool (for the gauges query) and
 * HTTP client (which must outlive it until ls_outbox_stop), and opens its claim connection on
 * config->conninfo. The config is copied. Returns NULL on allocation failure, or when http or
 * conninfo is NULL or there are too many targets. A worker of a daemon with ls_daemon_t.outbox runs one:
 * ls_worker_outbox() (worker.h) gives it. */
ls_outbox_t *ls_outbox_start(ls_loop_t *loop, ls_pg_pool_t *pg, ls_http_t *http,
                             const ls_outbox_config_t *config);
/* Stops polling (NULL is ignored) and closes the claim connection: an open round rolls back, so its rows
 * are free again at once and sent again by the next poller (receivers are idempotent). Call it before the
 * client and pool are destroyed (the worker does so for ls_daemon_t.outbox): calls and queries still pending
 * are completed as they are destroyed, and the poller's memory is freed with the last of them. */
void ls_outbox_stop(ls_outbox_t *outbox);
typedef enum { LS_OUTBOX_WAKE_KICK, LS_OUTBOX_WAKE_NOTIFY } ls_outbox_wake_t;

/* Runs a round now (or right after the running one); NULL is ignored. Only from the poller's own
 * thread: another thread wakes it through its worker (ls_worker_wake_outboxes, worker.h). */
void ls_outbox_wake(ls_outbox_t *outbox, ls_outbox_wake_t source);
/* ls_outbox_wake(outbox, LS_OUTBOX_WAKE_KICK), after a commit that added rows, e.g.
 * ls_outbox_kick(ls_worker_outbox(r->worker)). */
void ls_outbox_kick(ls_outbox_t *outbox);

#endif
