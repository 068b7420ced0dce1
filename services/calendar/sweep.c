/*
 * calendar-service: the lesson sweep — scheduled lessons whose end has passed become `completed`.
 *
 * Worker 0 of every process runs it, off the request path, on its own loop with the worker's pool:
 * a round is one transaction,
 *   BEGIN; SELECT pg_try_advisory_xact_lock(CAL_SWEEP_LOCK_KEYS);
 *   [the lock was free: STMT_SWEEP_COMPLETE, at most CAL_SWEEP_BATCH lessons, an audit row each;]
 *   COMMIT (or ROLLBACK when the lock was taken: another replica is sweeping, this one skips)
 * and the next round comes LESSON_SWEEP_S later, or at once after a full batch. The first round runs
 * at start-up. The lock ends with the transaction, so a replica that dies mid-round frees it at
 * once; the UPDATE re-checks each row, so even two rounds that met would complete a lesson once.
 *
 * The rounds' timing and the sweep's life at shutdown are shared/chore.h's: a round in progress when
 * the worker stops ends as the pool is destroyed (its transaction rolls back).
 */
#include "calendar.h"

#include <stdio.h>
#include <stdlib.h>

#include "chore.h"
#include "log.h"
#include "rows.h"

#define SWEEP_DEADLINE_MS 10000 /* one round's transaction */

typedef struct {
    ls_chore_t chore;
    ls_worker_t *worker;
    ls_pg_pool_t *pg;
    ls_pg_txn_t *txn; /* the round's transaction, once begun */
    long long done;   /* lessons the round completed (counted once it commits) */
} sweep_t;

static _Thread_local sweep_t *thread_sweep;

static void on_finished(void *ud, ls_pg_status_t status, PGresult *res)
{
    sweep_t *s = ud;
    if (ls_chore_release(&s->chore))
        return;
    if (s->done > 0 && status == LS_PG_OK)
        ls_logf(LS_LOG_INFO, NULL, "lesson sweep: %lld lessons completed", s->done);
    else if (s->done > 0)
        ls_logf(LS_LOG_WARN, NULL, "lesson sweep: could not commit: %s",
                res != NULL ? ls_pg_errmsg(res) : "database unavailable");
    /* A whole batch: more may be due at once. */
    ls_chore_done(&s->chore, status == LS_PG_OK && s->done >= CAL_SWEEP_BATCH);
}

/* Every begun transaction ends here, exactly once. */
static void finish(sweep_t *s, int commit)
{
    ls_chore_hold(&s->chore);
    ls_pg_txn_finish(s->txn, commit, on_finished, s);
    s->txn = NULL;
}

static void on_completed(void *ud, ls_pg_status_t status, PGresult *res)
{
    sweep_t *s = ud;
    if (ls_chore_release(&s->chore))
        return;
    if (status != LS_PG_OK) {
        ls_logf(LS_LOG_WARN, NULL, "lesson sweep: could not complete lessons: %s",
                res != NULL ? ls_pg_errmsg(res) : "database unavailable");
        return finish(s, 0);
    }
    s->done = ls_row_id(res, 0, "completed");
    finish(s, 1);
}

static void on_locked(void *ud, ls_pg_status_t status, PGresult *res)
{
    sweep_t *s = ud;
    if (ls_chore_release(&s->chore))
        return;
    if (status != LS_PG_OK) {
        ls_logf(LS_LOG_WARN, NULL, "lesson sweep: could not try the lock: %s",
                res != NULL ? ls_pg_errmsg(res) : "database unavailable");
        return finish(s, 0);
    }
    if (!ls_row_bool(res, 0, "locked")) {
        ls_log(LS_LOG_DEBUG, NULL, "lesson sweep: another replica is sweeping; skipped");
        return finish(s, 0);
    }
    char batch[16];
    snprintf(batch, sizeof(batch), "%d", CAL_SWEEP_BATCH);
    const char *params[1] = {batch};
    ls_chore_hold(&s->chore);
    ls_pg_txn_exec(s->txn, STMT_SWEEP_COMPLETE, 1, params, on_completed, s);
}

static void on_begun(void *ud, ls_pg_status_t status, ls_pg_txn_t *txn)
{
    sweep_t *s = ud;
    if (ls_chore_release(&s->chore))
        return;
    if (status != LS_PG_OK) {
        /* Nothing begun, nothing to finish. */
        ls_logf(LS_LOG_WARN, NULL, "lesson sweep: could not begin: %s",
                status == LS_PG_UNAVAILABLE ? "database unavailable" : "database busy or slow");
        return ls_chore_done(&s->chore, 0);
    }
    s->txn = txn;
    ls_chore_hold(&s->chore);
    ls_pg_txn_exec(txn, STMT_SWEEP_LOCK, 0, NULL, on_locked, s);
}

static void round_start(ls_chore_t *c)
{
    sweep_t *s = (sweep_t *)((char *)c - offsetof(sweep_t, chore));
    s->done = 0;
    ls_chore_hold(c);
    ls_pg_begin(s->pg, ls_now_ms() + SWEEP_DEADLINE_MS, on_begun, s);
}

void calendar_sweep_start(ls_worker_t *w)
{
    if (ls_worker_index(w) != 0)
        return;
    const calendar_config_t *cfg = ls_worker_daemon(w)->config;
    sweep_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        ls_log(LS_LOG_ERROR, NULL, "could not start the lesson sweep: out of memory");
        return;
    }
    s->worker = w;
    s->pg = ls_worker_pg(w);
    /* The first round at once: lessons that ended while no replica ran are completed at start-up. */
    ls_chore_start(&s->chore, s, ls_worker_loop(w), (uint64_t)cfg->lesson_sweep_s * 1000, round_start);
    thread_sweep = s;
}

void calendar_sweep_stop(ls_worker_t *w)
{
    sweep_t *s = thread_sweep;
    if (s == NULL || s->worker != w)
        return;
    thread_sweep = NULL;
    ls_chore_stop(&s->chore);
}
