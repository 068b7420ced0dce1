/*
 * outbox: the poller that delivers a service's outbox rows after their transaction committed.
 *
 * One poller per worker, with a claim connection of its own (a side pool of one connection, so a slow
 * receiver never holds one of the request pool's connections). A round is one transaction on it:
 * BEGIN; claim due rows (row locks, FOR UPDATE SKIP LOCKED); send each with the worker's HTTP client;
 * when every call has ended, write all the outcomes in one UPDATE; COMMIT. The locks are the claim:
 * should the process die, PostgreSQL rolls the transaction back and the rows are free at once.
 *
 * The next round is scheduled when the round ends: at once when it settled a row (the successor of a
 * delivered row may be due), was full, or a wake-up arrived meanwhile; else after poll_ms. Only one
 * round runs at a time per poller, so a wake-up during a round just asks for another.
 *
 * Shutdown: ls_outbox_stop() marks the poller stopped and closes the claim connection (the open round
 * rolls back); calls and queries still pending are completed by the client and the request pool as
 * they are destroyed, and the last completion frees the poller.
 */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "metrics.h"
#include "scalar.h"
#include "text.h"
#include "trace.h"

#define DEFAULT_POLL_MS    5000
#define DEFAULT_BATCH      32
#define DEFAULT_CALL_MS    5000
#define SETTLE_DEADLINE_MS 5000
#define BACKOFF_MAX_S      300
#define ERROR_TEXT_MAX     300

/* Rows with one ordering key are delivered in id order: a row waits while an older one with its key is
 * still pending (also while another round holds it), so a leave never overtakes its join. */
static const char claim_sql[] =
    "WITH due AS ("
    " SELECT o.id FROM outbox o"
    " WHERE o.delivered_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= now()"
    "  AND (o.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox p"
    "   WHERE p.ordering_key = o.ordering_key AND p.id < o.id"
    "   AND p.delivered_at IS NULL AND p.failed_at IS NULL))"
    " ORDER BY o.next_attempt_at, o.id LIMIT $1::int"
    " FOR UPDATE OF o SKIP LOCKED)"
    " UPDATE outbox o SET attempts = o.attempts + 1"
    " FROM due WHERE o.id = due.id"
    " RETURNING o.id, o.target, o.method, o.path, o.body, o.actor_telegram_id, o.idempotency_key, o.attempts,"
    " o.traceparent";

/* The round's outcomes, one JSON array: [{"id":7,"outcome":"retry","delay_ms":730,"error":"…"}, …]. */
static const char settle_sql[] =
    "UPDATE outbox o SET"
    " delivered_at = CASE WHEN v.outcome = 'delivered' THEN now() END,"
    " failed_at = CASE WHEN v.outcome = 'failed' THEN now() END,"
    " next_attempt_at = CASE WHEN v.outcome = 'retry' THEN now() + v.delay_ms * interval '1 millisecond'"
    "  ELSE o.next_attempt_at END,"
    " last_error = NULLIF(v.error, '')"
    " FROM json_to_recordset($1::json) AS v(id bigint, outcome text, delay_ms int, error text)"
    " WHERE o.id = v.id";

enum { STMT_CLAIM, STMT_SETTLE };
static const ls_pg_stmt_t stmts[] = {
    [STMT_CLAIM] = {"outbox_claim", claim_sql, 1},
    [STMT_SETTLE] = {"outbox_settle", settle_sql, 1},
};

/* ls_outbox_pending_rows and ls_outbox_oldest_pending_age_seconds (worker 0's poller, now and then). */
static const char gauges_sql[] = "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)"
                                 " FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL";

typedef enum { OUTCOME_DELIVERED, OUTCOME_FAILED, OUTCOME_RETRY } outcome_t;
static const char *const outcome_names[] = {"delivered", "failed", "retry"};

/* One row of the round. */
typedef struct {
    ls_outbox_t *ob;
    char id[24];
    char request_id[32];
    char traceparent[LS_TRACEPARENT_LEN + 1]; /* "" when the row has none (or not a valid one) */
    ls_trace_t trace;
    ls_log_ctx_t log; /* {request_id, trace.trace_id} */
    int attempts;
    int target; /* metrics slot */
    outcome_t outcome;
    char error[ERROR_TEXT_MAX + 1];
} delivery_t;

struct ls_outbox {
    ls_loop_t *loop;
    ls_pg_pool_t *pg;     /* the worker's pool: the gauges query */
    ls_pg_pool_t *claims; /* the claim connection: the rounds */
    ls_http_t *http;
    ls_outbox_config_t config; /* strings point into names[] / urls[] / conninfo / application_name */
    char *names[LS_OUTBOX_MAX_TARGETS];
    char *urls[LS_OUTBOX_MAX_TARGETS];
    char *conninfo, *application_name;
    ls_timer_t timer;
    int timer_polls; /* the timer is the poll_ms wait (not a follow-up round) */
    int running;     /* a round is in progress */
    int again;       /* woken during the round: run another at once */
    ls_pg_txn_t *txn;
    delivery_t *round; /* the round's rows */
    size_t nrows, left;
    int round_full;   /* the round claimed a whole batch: more may be due */
    long retry_in_ms; /* the soonest retry the round scheduled, 0: none */
    size_t pending;   /* callbacks still to come (queries and calls) */
    int stopped;
    uint64_t gauges_due; /* next gauges_sql, ls_now_ms() time */
};

static void outbox_free(ls_outbox_t *ob)
{
    for (size_t i = 0; i < LS_OUTBOX_MAX_TARGETS; i++) {
        free(ob->names[i]);
        free(ob->urls[i]);
    }
    free(ob->conninfo);
    free(ob->application_name);
    free(ob->round);
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

static void warn(const char *msg, const PGresult *res)
{
    ls_log_line_t l;
    if (ls_log_begin(&l, LS_LOG_WARN, NULL, msg)) {
        ls_log_str(&l, "error", res != NULL ? ls_pg_errmsg(res) : "database unavailable or too slow");
        ls_log_end(&l);
    }
}

/* progressed: the round changed rows for good, so more may be due at once. */
static void end_round(ls_outbox_t *ob, int progressed)
{
    int soon = ob->again || (progressed && (ob->round_full || ob->nrows > 0));
    ob->running = 0;
    ob->again = 0;
    ob->round_full = 0;
    ob->txn = NULL;
    free(ob->round);
    ob->round = NULL;
    ob->nrows = ob->left = 0;
    ob->timer_polls = !soon;
    /* A retry this poller scheduled comes due before the next poll: look again then. */
    uint64_t wait = (uint64_t)ob->config.poll_ms;
    if (progressed && ob->retry_in_ms > 0 && (uint64_t)ob->retry_in_ms < wait)
        wait = (uint64_t)ob->retry_in_ms;
    ob->retry_in_ms = 0;
    ls_timer_start(ob->loop, &ob->timer, soon ? 0 : wait);
}

/* Ends the open transaction without keeping anything: the round's rows are free again at once. */
static void abandon_round(ls_outbox_t *ob)
{
    ls_pg_txn_finish(ob->txn, 0, NULL, NULL);
    end_round(ob, 0);
}

static void on_committed(void *ud, ls_pg_status_t status, PGresult *res)
{
    ls_outbox_t *ob = ud;
    if (settle_pending(ob))
        return;
    if (status != LS_PG_OK)
        warn("outbox: could not commit a round; its rows are sent again", res);
    ob->txn = NULL;
    end_round(ob, status == LS_PG_OK);
}

static void on_settled(void *ud, ls_pg_status_t status, PGresult *res)
{
    ls_outbox_t *ob = ud;
    if (settle_pending(ob))
        return;
    if (status != LS_PG_OK) {
        warn("outbox: could not record a round's outcomes; its rows are sent again", res);
        abandon_round(ob);
        return;
    }
    ob->pending++;
    ls_pg_txn_finish(ob->txn, 1, on_committed, ob);
}

/* Retry delay: 1 s after the first attempt, doubling, at most BACKOFF_MAX_S, times a random factor in
 * [0.5, 1] so that rows failed together do not all come back together. */
static long retry_delay_ms(int attempts)
{
    int shift = attempts > 1 ? attempts - 1 : 0;
    long s = shift >= 9 ? BACKOFF_MAX_S : 1L << shift;
    if (s > BACKOFF_MAX_S)
        s = BACKOFF_MAX_S;
    return s * (500 + (long)randombytes_uniform(501));
}

/* Every call of the round has ended: its outcomes in one statement, then the commit. */
static void settle_round(ls_outbox_t *ob)
{
    ls_text_t t = {0};
    ls_text_lit(&t, "[");
    for (size_t i = 0; i < ob->nrows; i++) {
        const delivery_t *d = &ob->round[i];
        long delay = d->outcome == OUTCOME_RETRY ? retry_delay_ms(d->attempts) : 0;
        if (delay > 0 && (ob->retry_in_ms == 0 || delay < ob->retry_in_ms))
            ob->retry_in_ms = delay;
        char head[128];
        int n = snprintf(head, sizeof(head),
                         "%s{\"id\":%s,\"outcome\":\"%s\",\"delay_ms\":%ld,\"error\":", i > 0 ? "," : "",
                         d->id, outcome_names[d->outcome], delay);
        ls_text_add(&t, head, (size_t)n);
        ls_text_str(&t, d->error, strlen(d->error));
        ls_text_lit(&t, "}");
    }
    ls_text_lit(&t, "]");
    ls_text_add(&t, "", 1);
    if (t.failed) {
        ls_text_free(&t);
        ls_log(LS_LOG_WARN, NULL, "outbox: out of memory recording a round; its rows are sent again");
        abandon_round(ob);
        return;
    }
    const char *params[1] = {t.buf};
    ob->pending++;
    ls_pg_txn_exec(ob->txn, STMT_SETTLE, 1, params, on_settled, ob);
    ls_text_free(&t);
}

static void row_done(ls_outbox_t *ob, delivery_t *d, outcome_t outcome, const char *error)
{
    d->outcome = outcome;
    snprintf(d->error, sizeof(d->error), "%s", error != NULL ? error : "");
    ls_metrics_outbox_delivery(d->target, outcome == OUTCOME_DELIVERED ? LS_OB_DELIVERED
                                          : outcome == OUTCOME_FAILED  ? LS_OB_FAILED
                                                                       : LS_OB_RETRY);
    if (--ob->left == 0)
        settle_round(ob);
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
    if (settle_pending(ob))
        return;
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
        ls_log_str(&l, "outcome", outcome_names[outcome]);
        if (error[0] != '\0')
            ls_log_str(&l, "error", error);
        ls_log_end(&l);
    }
    row_done(ob, d, outcome, error);
}

static const char *target_url(const ls_outbox_t *ob, const char *name)
{
    for (size_t i = 0; i < ob->config.ntargets; i++)
        if (strcmp(ob->config.targets[i].name, name) == 0)
            return ob->config.targets[i].base_url;
    return NULL;
}

/* Starts the delivery of row `row` of the claim's result into d. */
static void deliver(ls_outbox_t *ob, delivery_t *d, const PGresult *res, int row)
{
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
        row_done(ob, d, OUTCOME_FAILED, error);
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
        row_done(ob, d, OUTCOME_RETRY, "could not start the request");
    }
}

static void on_claimed(void *ud, ls_pg_status_t status, PGresult *res)
{
    ls_outbox_t *ob = ud;
    if (settle_pending(ob))
        return;
    if (status != LS_PG_OK) {
        warn("outbox: could not claim rows", res);
        abandon_round(ob);
        return;
    }
    int rows = PQntuples(res);
    if (rows > 0)
        ob->round = calloc((size_t)rows, sizeof(*ob->round));
    if (rows == 0 || ob->round == NULL) {
        /* Nothing due (or no memory: the rows are free again once this rolls back). */
        abandon_round(ob);
        return;
    }
    ob->round_full = rows >= ob->config.batch;
    /* Counted up front so that a row settled at once does not end the round early. */
    ob->nrows = ob->left = (size_t)rows;
    for (int i = 0; i < rows; i++)
        deliver(ob, &ob->round[i], res, i);
}

static void on_begun(void *ud, ls_pg_status_t status, ls_pg_txn_t *txn)
{
    ls_outbox_t *ob = ud;
    if (settle_pending(ob))
        return;
    if (status != LS_PG_OK) {
        warn("outbox: could not begin a round", NULL);
        end_round(ob, 0);
        return;
    }
    ob->txn = txn;
    char batch[16];
    snprintf(batch, sizeof(batch), "%d", ob->config.batch);
    const char *params[1] = {batch};
    ob->pending++;
    ls_pg_txn_exec(txn, STMT_CLAIM, 1, params, on_claimed, ob);
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

static void on_timer(ls_timer_t *t)
{
    ls_outbox_t *ob = H2O_STRUCT_FROM_MEMBER(ls_outbox_t, timer, t);
    if (ob->running || ob->stopped)
        return;
    if (ob->timer_polls)
        ls_metrics_outbox_wakeup(LS_OB_WAKE_POLL);
    query_gauges(ob);
    ob->running = 1;
    ob->pending++;
    /* The calls' deadlines fall within this one, with room for the claim and the outcomes. */
    uint64_t deadline = ls_now_ms() + 2 * SETTLE_DEADLINE_MS + (uint64_t)ob->config.call_timeout_ms;
    ls_pg_begin(ob->claims, deadline, on_begun, ob);
}

/* The config's strings, copied into the poller. */
static int copy_strings(ls_outbox_t *ob, const ls_outbox_config_t *config)
{
    for (size_t i = 0; i < config->ntargets; i++) {
        ob->names[i] = strdup(config->targets[i].name);
        ob->urls[i] = strdup(config->targets[i].base_url);
        if (ob->names[i] == NULL || ob->urls[i] == NULL)
            return -1;
        ob->config.targets[i].name = ob->names[i];
        ob->config.targets[i].base_url = ob->urls[i];
    }
    ob->conninfo = strdup(config->conninfo);
    ob->application_name = config->application_name != NULL ? strdup(config->application_name) : NULL;
    if (ob->conninfo == NULL || (config->application_name != NULL && ob->application_name == NULL))
        return -1;
    ob->config.conninfo = ob->conninfo;
    ob->config.application_name = ob->application_name;
    return 0;
}

ls_outbox_t *ls_outbox_start(ls_loop_t *loop, ls_pg_pool_t *pg, ls_http_t *http,
                             const ls_outbox_config_t *config)
{
    if (config->ntargets > LS_OUTBOX_MAX_TARGETS || http == NULL || config->conninfo == NULL)
        return NULL;
    ls_outbox_t *ob = calloc(1, sizeof(*ob));
    if (ob == NULL)
        return NULL;
    ob->loop = loop;
    ob->pg = pg;
    ob->http = http;
    ob->config = *config;
    if (copy_strings(ob, config) != 0) {
        outbox_free(ob);
        return NULL;
    }
    ls_pg_config_t pc = {
        .conninfo = ob->conninfo,
        .application_name = ob->application_name,
        .nconns = 1,
        .stmts = stmts,
        .nstmts = sizeof(stmts) / sizeof(stmts[0]),
        .side = 1,
    };
    if ((ob->claims = ls_pg_pool_create(loop, &pc)) == NULL) {
        outbox_free(ob);
        return NULL;
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
    /* Closing the claim connection rolls an open round back; the pool completes what it has pending
     * meanwhile, so hold the poller until it is done. */
    ob->pending++;
    ls_pg_pool_destroy(ob->claims);
    ob->claims = NULL;
    if (--ob->pending == 0)
        outbox_free(ob);
}

void ls_outbox_wake(ls_outbox_t *ob, ls_outbox_wake_t source)
{
    if (ob == NULL || ob->stopped)
        return;
    ls_metrics_outbox_wakeup(source == LS_OUTBOX_WAKE_NOTIFY ? LS_OB_WAKE_NOTIFY : LS_OB_WAKE_KICK);
    if (ob->running) {
        ob->again = 1;
    } else {
        ob->timer_polls = 0;
        ls_timer_start(ob->loop, &ob->timer, 0);
    }
}

void ls_outbox_kick(ls_outbox_t *ob)
{
    ls_outbox_wake(ob, LS_OUTBOX_WAKE_KICK);
}
