/*
 * outbox: the poller that delivers a service's outbox rows after their transaction committed.
 *
 * One poller per worker. A round claims due rows (leasing them), sends each with the worker's HTTP
 * client, then records the outcome row by row; when every row of the round is settled the next
 * round is scheduled: at once when the round was full or a kick arrived meanwhile, else after
 * poll_ms. Only one round runs at a time per poller, so a kick during a round just asks for another.
 *
 * Shutdown: ls_outbox_stop() marks the poller stopped; queries and calls still pending are completed
 * by the pool and the client as they are destroyed, and the last completion frees the poller.
 */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalar.h"
#include "log.h"
#include "metrics.h"
#include "trace.h"

#define DEFAULT_POLL_MS    1000
#define DEFAULT_BATCH      32
#define DEFAULT_CALL_MS    5000
#define SETTLE_DEADLINE_MS 5000
#define BACKOFF_MAX_S      300
#define ERROR_TEXT_MAX     300

/* Rows with one ordering key are delivered in id order: a row waits while an older one with its key is
 * still pending, so a leave never overtakes its join. */
static const char claim_sql[] =
    "WITH due AS ("
    " SELECT o.id FROM outbox o"
    " WHERE o.delivered_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= now()"
    "  AND (o.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox p"
    "   WHERE p.ordering_key = o.ordering_key AND p.id < o.id"
    "   AND p.delivered_at IS NULL AND p.failed_at IS NULL))"
    " ORDER BY o.next_attempt_at, o.id LIMIT $1::int"
    " FOR UPDATE OF o SKIP LOCKED)"
    " UPDATE outbox o SET attempts = o.attempts + 1,"
    "  next_attempt_at = now() + make_interval(secs => $2::int)"
    " FROM due WHERE o.id = due.id"
    " RETURNING o.id, o.target, o.method, o.path, o.body, o.actor_telegram_id, o.idempotency_key, o.attempts,"
    " o.traceparent";

static const char delivered_sql[] =
    "UPDATE outbox SET delivered_at = now(), last_error = NULL WHERE id = $1::bigint";
static const char failed_sql[] = "UPDATE outbox SET failed_at = now(), last_error = $2 WHERE id = $1::bigint";
/* ls_outbox_pending_rows and ls_outbox_oldest_pending_age_seconds (worker 0's poller, now and then). */
static const char gauges_sql[] = "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)"
                                 " FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL";
static const char retry_sql[] = "UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $2::int),"
                                " last_error = $3 WHERE id = $1::bigint";

struct ls_outbox {
    ls_loop_t *loop;
    ls_pg_pool_t *pg;
    ls_http_t *http;
    ls_outbox_config_t config; /* names and URLs point into names[] / urls[] */
    char *names[LS_OUTBOX_MAX_TARGETS];
    char *urls[LS_OUTBOX_MAX_TARGETS];
    ls_timer_t timer;
    int running;       /* a round is in progress */
    int again;         /* kicked during the round: run another at once */
    int round_full;    /* the round claimed a whole batch: more may be due */
    size_t round_left; /* rows of this round not yet settled */
    size_t pending;    /* callbacks still to come (queries and calls) */
    int stopped;
    uint64_t gauges_due; /* next gauges_sql, ls_now_ms() time */
};

/* One row being delivered. */
typedef struct {
    ls_outbox_t *ob;
    char id[24];
    char request_id[32];
    char traceparent[LS_TRACEPARENT_LEN + 1]; /* "" when the row has none (or not a valid one) */
    ls_trace_t trace;
    ls_log_ctx_t log; /* {request_id, trace.trace_id} */
    int attempts;
    int target; /* metrics slot */
} delivery_t;

typedef enum { OUTCOME_DELIVERED, OUTCOME_FAILED, OUTCOME_RETRY } outcome_t;

static void outbox_free(ls_outbox_t *ob)
{
    for (size_t i = 0; i < LS_OUTBOX_MAX_TARGETS; i++) {
        free(ob->names[i]);
        free(ob->urls[i]);
    }
    free(ob);
}

/* Called as each pending callback completes; returns 1 when the poller is stopped (and then frees it
 * once nothing is pending), so the caller must not touch it further. */
static int settle_pending(ls_outbox_t *ob)
{
    ob->pending--;
    if (!ob->stopped)
        return 0;
    if (ob->pending == 0)
        outbox_free(ob);
    return 1;
}

static void end_round(ls_outbox_t *ob)
{
    int soon = ob->again || ob->round_full;
    ob->running = 0;
    ob->again = 0;
    ob->round_full = 0;
    ls_timer_start(ob->loop, &ob->timer, soon ? 0 : (uint64_t)ob->config.poll_ms);
}

static void row_settled(ls_outbox_t *ob)
{
    if (--ob->round_left == 0)
        end_round(ob);
}

static void on_recorded(void *ud, ls_pg_status_t status, PGresult *res)
{
    delivery_t *d = ud;
    ls_outbox_t *ob = d->ob;
    if (status != LS_PG_OK) {
        /* The row stays leased and is sent again after the lease: receivers are idempotent. */
        ls_log_line_t l;
        if (ls_log_begin(&l, LS_LOG_WARN, &d->log, "outbox: could not record a delivery outcome")) {
            ls_log_str(&l, "outbox_id", d->id);
            ls_log_str(&l, "error", res != NULL ? ls_pg_errmsg(res) : "database unavailable");
            ls_log_end(&l);
        }
    }
    free(d);
    if (settle_pending(ob))
        return;
    row_settled(ob);
}

static void record(ls_outbox_t *ob, delivery_t *d, outcome_t outcome, const char *error)
{
    char backoff[16], err[ERROR_TEXT_MAX + 1];
    uint64_t deadline = ls_now_ms() + SETTLE_DEADLINE_MS;
    snprintf(err, sizeof(err), "%s", error != NULL ? error : "");
    ob->pending++;
    ls_metrics_outbox_delivery(d->target, outcome == OUTCOME_DELIVERED ? LS_OB_DELIVERED
                                          : outcome == OUTCOME_FAILED  ? LS_OB_FAILED
                                                                       : LS_OB_RETRY);
    if (outcome == OUTCOME_DELIVERED) {
        const char *params[1] = {d->id};
        ls_pg_exec_sql(ob->pg, delivered_sql, 1, params, deadline, on_recorded, d);
    } else if (outcome == OUTCOME_FAILED) {
        const char *params[2] = {d->id, err};
        ls_pg_exec_sql(ob->pg, failed_sql, 2, params, deadline, on_recorded, d);
    } else {
        /* 1 s after the first attempt, doubling, at most BACKOFF_MAX_S. */
        int shift = d->attempts > 1 ? d->attempts - 1 : 0;
        long delay = shift >= 9 ? BACKOFF_MAX_S : 1L << shift;
        if (delay > BACKOFF_MAX_S)
            delay = BACKOFF_MAX_S;
        snprintf(backoff, sizeof(backoff), "%ld", delay);
        const char *params[3] = {d->id, backoff, err};
        ls_pg_exec_sql(ob->pg, retry_sql, 3, params, deadline, on_recorded, d);
    }
}

static outcome_t classify(const ls_http_response_t *resp)
{
    if (resp->outcome != LS_HTTP_OK)
        return OUTCOME_RETRY;
    if ((resp->status >= 200 && resp->status < 300) || resp->status == 409)
        return OUTCOME_DELIVERED;
    if (resp->status >= 400 && resp->status < 500 && resp->status != 408 && resp->status != 429)
        return OUTCOME_FAILED;
    return OUTCOME_RETRY;
}

static void on_sent(void *ud, const ls_http_response_t *resp)
{
    delivery_t *d = ud;
    ls_outbox_t *ob = d->ob;
    if (settle_pending(ob)) {
        free(d);
        return;
    }
    outcome_t outcome = classify(resp);
    char error[ERROR_TEXT_MAX + 1] = "";
    if (outcome != OUTCOME_DELIVERED) {
        if (resp->outcome != LS_HTTP_OK)
            snprintf(error, sizeof(error), "%s", resp->error != NULL ? resp->error : "no answer");
        else
            snprintf(error, sizeof(error), "HTTP %d: %.*s", resp->status, 200, resp->body);
    }
    ls_log_line_t l;
    if (ls_log_begin(&l, outcome == OUTCOME_FAILED ? LS_LOG_ERROR : LS_LOG_DEBUG, &d->log,
                     outcome == OUTCOME_FAILED ? "outbox: the receiver refused a call; giving up on it"
                                               : "outbox: delivery attempt")) {
        ls_log_str(&l, "outbox_id", d->id);
        ls_log_int(&l, "status", resp->status);
        ls_log_int(&l, "attempt", d->attempts);
        ls_log_str(&l, "outcome",
                   outcome == OUTCOME_DELIVERED ? "delivered"
                   : outcome == OUTCOME_FAILED  ? "failed"
                                                : "retry");
        if (error[0] != '\0')
            ls_log_str(&l, "error", error);
        ls_log_end(&l);
    }
    record(ob, d, outcome, error);
}

static const char *target_url(const ls_outbox_t *ob, const char *name)
{
    for (size_t i = 0; i < ob->config.ntargets; i++)
        if (strcmp(ob->config.targets[i].name, name) == 0)
            return ob->config.targets[i].base_url;
    return NULL;
}

/* Starts the delivery of row `row` of the claim's result. */
static void deliver(ls_outbox_t *ob, const PGresult *res, int row)
{
    delivery_t *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        /* Left leased: it is claimed again after the lease. */
        row_settled(ob);
        return;
    }
    d->ob = ob;
    snprintf(d->id, sizeof(d->id), "%s", PQgetvalue(res, row, 0));
    snprintf(d->request_id, sizeof(d->request_id), "outbox-%s", d->id);
    d->attempts = atoi(PQgetvalue(res, row, 7));
    d->log.request_id = d->request_id;
    d->log.trace_id = d->trace.trace_id;
    const char *traceparent = PQgetvalue(res, row, 8); /* "" when NULL */
    if (PQgetlength(res, row, 8) == LS_TRACEPARENT_LEN &&
        ls_trace_parse(&d->trace, traceparent, LS_TRACEPARENT_LEN) == 0)
        memcpy(d->traceparent, traceparent, LS_TRACEPARENT_LEN + 1);

    const char *target = PQgetvalue(res, row, 1);
    const char *base_url = target_url(ob, target);
    d->target = ls_metrics_target(target);
    if (base_url == NULL) {
        char error[128];
        snprintf(error, sizeof(error), "unknown target '%.64s'", target);
        ls_logf(LS_LOG_ERROR, &d->log, "outbox: row %s names %s", d->id, error);
        record(ob, d, OUTCOME_FAILED, error);
        return;
    }
    int64_t actor = 0;
    if (!PQgetisnull(res, row, 5))
        ls_parse_i64(PQgetvalue(res, row, 5), (size_t)PQgetlength(res, row, 5), &actor);
    ls_http_request_t req = {
        .target = target,
        .base_url = base_url,
        .method = PQgetvalue(res, row, 2),
        .path = PQgetvalue(res, row, 3),
        .body = PQgetisnull(res, row, 4) ? NULL : PQgetvalue(res, row, 4),
        .body_len = PQgetisnull(res, row, 4) ? 0 : (size_t)PQgetlength(res, row, 4),
        .request_id = d->request_id,
        .traceparent = d->traceparent[0] != '\0' ? d->traceparent : NULL,
        .actor = actor > 0 ? actor : 0,
        .idempotency_key = PQgetvalue(res, row, 6),
        .deadline = ls_now_ms() + (uint64_t)ob->config.call_timeout_ms,
    };
    ob->pending++;
    if (ls_http_send(ob->http, &req, on_sent, d) != 0) {
        ob->pending--;
        record(ob, d, OUTCOME_RETRY, "could not start the request");
    }
}

static void on_claimed(void *ud, ls_pg_status_t status, PGresult *res)
{
    ls_outbox_t *ob = ud;
    if (settle_pending(ob))
        return;
    if (status != LS_PG_OK) {
        ls_log_line_t l;
        if (ls_log_begin(&l, LS_LOG_WARN, NULL, "outbox: could not claim rows")) {
            ls_log_str(&l, "error", res != NULL ? ls_pg_errmsg(res) : "database unavailable");
            ls_log_end(&l);
        }
        end_round(ob);
        return;
    }
    int rows = PQntuples(res);
    if (rows == 0) {
        end_round(ob);
        return;
    }
    ob->round_full = rows >= ob->config.batch;
    /* Counted up front so that a row settled at once does not end the round early. */
    ob->round_left = (size_t)rows;
    for (int i = 0; i < rows; i++)
        deliver(ob, res, i);
}

static void on_gauges(void *ud, ls_pg_status_t status, PGresult *res)
{
    ls_outbox_t *ob = ud;
    if (settle_pending(ob))
        return;
    if (status == LS_PG_OK && PQntuples(res) == 1)
        ls_metrics_outbox_pending(strtoll(PQgetvalue(res, 0, 0), NULL, 10),
                                  strtod(PQgetvalue(res, 0, 1), NULL));
}

static void query_gauges(ls_outbox_t *ob)
{
    uint64_t now = ls_now_ms();
    if (!LS_METRICS || !ls_metrics_first_worker() || now < ob->gauges_due)
        return;
    ob->gauges_due = now + LS_METRICS_GAUGE_QUERY_MS;
    ob->pending++;
    ls_pg_exec_sql(ob->pg, gauges_sql, 0, NULL, now + SETTLE_DEADLINE_MS, on_gauges, ob);
}

static void start_round(ls_outbox_t *ob)
{
    query_gauges(ob);
    char batch[16], lease[16];
    ob->running = 1;
    snprintf(batch, sizeof(batch), "%d", ob->config.batch);
    snprintf(lease, sizeof(lease), "%d", LS_OUTBOX_LEASE_S);
    const char *params[2] = {batch, lease};
    ob->pending++;
    ls_pg_exec_sql(ob->pg, claim_sql, 2, params, ls_now_ms() + SETTLE_DEADLINE_MS, on_claimed, ob);
}

static void on_timer(ls_timer_t *t)
{
    ls_outbox_t *ob = (ls_outbox_t *)((char *)t - offsetof(ls_outbox_t, timer));
    if (!ob->running && !ob->stopped)
        start_round(ob);
}

ls_outbox_t *ls_outbox_start(ls_loop_t *loop, ls_pg_pool_t *pg, ls_http_t *http,
                             const ls_outbox_config_t *config)
{
    if (config->ntargets > LS_OUTBOX_MAX_TARGETS || http == NULL)
        return NULL;
    ls_outbox_t *ob = calloc(1, sizeof(*ob));
    if (ob == NULL)
        return NULL;
    ob->loop = loop;
    ob->pg = pg;
    ob->http = http;
    ob->config = *config;
    for (size_t i = 0; i < config->ntargets; i++) {
        ob->names[i] = strdup(config->targets[i].name);
        ob->urls[i] = strdup(config->targets[i].base_url);
        if (ob->names[i] == NULL || ob->urls[i] == NULL) {
            outbox_free(ob);
            return NULL;
        }
        ob->config.targets[i].name = ob->names[i];
        ob->config.targets[i].base_url = ob->urls[i];
    }
    if (ob->config.poll_ms <= 0)
        ob->config.poll_ms = DEFAULT_POLL_MS;
    if (ob->config.batch <= 0)
        ob->config.batch = DEFAULT_BATCH;
    if (ob->config.call_timeout_ms <= 0)
        ob->config.call_timeout_ms = DEFAULT_CALL_MS;
    ls_timer_init(&ob->timer, on_timer);
    /* Rows left over from an earlier run are due now. */
    ls_timer_start(ob->loop, &ob->timer, 0);
    return ob;
}

void ls_outbox_stop(ls_outbox_t *ob)
{
    if (ob == NULL)
        return;
    ls_timer_stop(ob->loop, &ob->timer);
    ob->stopped = 1;
    if (ob->pending == 0)
        outbox_free(ob);
}

void ls_outbox_kick(ls_outbox_t *ob)
{
    if (ob == NULL || ob->stopped)
        return;
    if (ob->running)
        ob->again = 1;
    else
        ls_timer_start(ob->loop, &ob->timer, 0);
}
