/*
 * notification-service: the delivery worker.
 *
 * One poller per worker thread. A round claims due notifications and settles each of them; when the
 * whole round is settled the next one is scheduled: at once when the round was full or a kick came
 * meanwhile, else after NOTIFY_POLL_MS. Only one round runs at a time per poller.
 *
 * The Bot API is called through a client of its own (not the worker's internal one), so that the
 * INTERNAL_TOKEN never travels to a third party. The bot token is part of the URL; it lives only in
 * the client's base URL, which the HTTP client never logs (it logs the path "/sendMessage"), and it is
 * cut out of any error text before that is logged or stored.
 *
 * Shutdown: delivery_stop() marks the poller stopped and destroys its client (aborting sends, whose
 * rows stay leased and are retried after the lease); queries still pending complete as the pool is
 * destroyed, and the last completion frees the poller.
 */
#include "notification.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "botapi.h"
#include "log.h"
#include "metrics.h"
#include "rows.h"
#include "trace.h"

#define BATCH           32
#define CALL_TIMEOUT_MS 10000
#define SETTLE_MS       5000
#define BACKOFF_MAX_S   300
#define ERROR_TEXT_MAX  300
#define TEXT_MAX        4000 /* bytes of a message; Telegram takes at most 4096 characters */
#define RESPONSE_MAX    (64 * 1024)

typedef struct {
    ls_worker_t *worker;
    ls_loop_t *loop;
    ls_pg_pool_t *pg;
    ls_http_t *http; /* the Bot API client; NULL when notifications are only stored */
    char *base_url;  /* "{TELEGRAM_API_URL}/bot{BOT_TOKEN}": secret, never logged */
    const char *token;
    int poll_ms, max_attempts;
    ls_timer_t timer;
    int running;       /* a round is in progress */
    int again;         /* kicked during the round: run another at once */
    int round_full;    /* the round claimed a whole batch: more may be due */
    size_t round_left; /* notifications of this round not yet settled */
    size_t pending;    /* callbacks still to come (queries and calls) */
    int stopped;
    uint64_t gauges_due; /* next queue_depth_sql (worker 0), ls_now_ms() time */
} poller_t;

/* One notification being sent. */
typedef struct {
    poller_t *p;
    char id[40];
    char request_id[48];
    ls_trace_t trace;                         /* the trace the notification was created in, if any */
    char traceparent[LS_TRACEPARENT_LEN + 1]; /* logged with the call, never sent to Telegram */
    ls_log_ctx_t log;                         /* {request_id, trace.trace_id} */
    int attempt;
} send_t;

typedef enum { OUTCOME_SENT, OUTCOME_RETRY, OUTCOME_FAILED } outcome_t;

static _Thread_local poller_t *thread_poller;

/* ---- configuration ---- */

int notification_prepare_config(notification_config_t *cfg, char *err, size_t errlen)
{
    const char *url = cfg->telegram_api_url;
    int on = ls_botapi_settings(cfg->telegram_api_url, cfg->bot_token, err, errlen);
    if (on < 0)
        return -1;
    cfg->telegram_enabled = on;
    if (!cfg->telegram_enabled && (url[0] != '\0' || cfg->bot_token[0] != '\0'))
        ls_log(LS_LOG_WARN, NULL,
               "only one of TELEGRAM_API_URL and BOT_TOKEN is set: notifications are stored, not sent to "
               "Telegram");
    ls_log(LS_LOG_INFO, NULL,
           cfg->telegram_enabled ? "delivery through the Telegram Bot API"
                                 : "delivery: notifications are stored only");
    return 0;
}

/* ---- round bookkeeping ---- */

/* Called as each pending callback completes; returns 1 when the poller is stopped (and then frees it
 * once nothing is pending), so the caller must not touch it further. */
static int settle_pending(poller_t *p)
{
    p->pending--;
    if (!p->stopped)
        return 0;
    if (p->pending == 0) {
        free(p->base_url);
        free(p);
    }
    return 1;
}

static void end_round(poller_t *p)
{
    int soon = p->again || p->round_full;
    p->running = 0;
    p->again = 0;
    p->round_full = 0;
    ls_timer_start(p->loop, &p->timer, soon ? 0 : (uint64_t)p->poll_ms);
}

static void row_settled(poller_t *p)
{
    if (--p->round_left == 0)
        end_round(p);
}

/* ---- store-only delivery (seed 001's MVP) ---- */

static void on_stored(void *ud, ls_pg_status_t status, PGresult *res)
{
    poller_t *p = ud;
    if (settle_pending(p))
        return;
    if (status != LS_PG_OK) {
        ls_logf(LS_LOG_WARN, NULL, "delivery: could not store due notifications: %s",
                res != NULL ? ls_pg_errmsg(res) : "database unavailable");
        return end_round(p);
    }
    int rows = PQntuples(res);
    int id = PQfnumber(res, "id"), recipient = PQfnumber(res, "recipient_telegram_id"),
        type = PQfnumber(res, "type");
    for (int i = 0; i < rows; i++) {
        ls_metrics_notification_delivery(LS_NT_STORED);
        ls_log_line_t l;
        ls_log_ctx_t ctx = {NULL, ls_row_text(res, i, "trace_id")}; /* NULL when the row has none */
        if (ls_log_begin(&l, LS_LOG_INFO, &ctx, "notification delivered (stored)")) {
            ls_log_str(&l, "notification_id", PQgetvalue(res, i, id));
            ls_log_str(&l, "recipient_telegram_id", PQgetvalue(res, i, recipient));
            ls_log_str(&l, "type", PQgetvalue(res, i, type));
            ls_log_end(&l);
        }
    }
    p->round_full = rows >= BATCH;
    end_round(p);
}

/* ---- Telegram delivery ---- */

/* Copies src into dst (size > 0) with every occurrence of the bot token replaced. */
static void redact(const poller_t *p, char *dst, size_t size, const char *src)
{
    size_t tlen = strlen(p->token), off = 0;
    while (*src != '\0' && off + 1 < size) {
        if (tlen > 0 && strncmp(src, p->token, tlen) == 0) {
            off += (size_t)snprintf(dst + off, size - off, "<token>");
            if (off >= size)
                off = size - 1;
            src += tlen;
        } else {
            dst[off++] = *src++;
        }
    }
    dst[off] = '\0';
}

static void on_recorded(void *ud, ls_pg_status_t status, PGresult *res)
{
    send_t *s = ud;
    poller_t *p = s->p;
    if (status != LS_PG_OK) {
        /* The row stays leased and is sent again after the lease. */
        ls_log_line_t l;
        if (ls_log_begin(&l, LS_LOG_WARN, &s->log, "delivery: could not record an attempt")) {
            ls_log_str(&l, "notification_id", s->id);
            ls_log_str(&l, "error", res != NULL ? ls_pg_errmsg(res) : "database unavailable");
            ls_log_end(&l);
        }
    }
    free(s);
    if (settle_pending(p))
        return;
    row_settled(p);
}

static void record(poller_t *p, send_t *s, outcome_t outcome, int http_status, const char *error)
{
    char attempt[16], status_text[16], backoff[16];
    snprintf(attempt, sizeof(attempt), "%d", s->attempt);
    snprintf(status_text, sizeof(status_text), "%d", http_status);
    const char *status_param = http_status > 0 ? status_text : NULL;
    uint64_t deadline = ls_now_ms() + SETTLE_MS;
    ls_metrics_notification_delivery(outcome == OUTCOME_SENT     ? LS_NT_SENT
                                     : outcome == OUTCOME_FAILED ? LS_NT_FAILED
                                                                 : LS_NT_RETRY);
    p->pending++;
    if (outcome == OUTCOME_SENT) {
        const char *params[3] = {s->id, attempt, status_param};
        ls_pg_exec(p->pg, STMT_SENT, 3, params, deadline, on_recorded, s);
    } else if (outcome == OUTCOME_FAILED) {
        const char *params[4] = {s->id, attempt, status_param, error};
        ls_pg_exec(p->pg, STMT_FAILED, 4, params, deadline, on_recorded, s);
    } else {
        /* 1 s after the first attempt, doubling, at most BACKOFF_MAX_S. */
        int shift = s->attempt > 1 ? s->attempt - 1 : 0;
        long delay = shift >= 9 ? BACKOFF_MAX_S : 1L << shift;
        snprintf(backoff, sizeof(backoff), "%ld", delay > BACKOFF_MAX_S ? (long)BACKOFF_MAX_S : delay);
        const char *params[5] = {s->id, attempt, status_param, error, backoff};
        ls_pg_exec(p->pg, STMT_RETRY, 5, params, deadline, on_recorded, s);
    }
}

/* 1 when the Bot API accepted the message: a 2xx answer whose JSON says "ok": true. */
static int accepted(const ls_http_response_t *resp)
{
    if (resp->outcome != LS_HTTP_OK || resp->status < 200 || resp->status > 299)
        return 0;
    json_object *obj = json_tokener_parse(resp->body);
    json_object *ok = NULL;
    int yes = obj != NULL && json_object_object_get_ex(obj, "ok", &ok) &&
              json_object_is_type(ok, json_type_boolean) && json_object_get_boolean(ok);
    json_object_put(obj);
    return yes;
}

static void on_sent(void *ud, const ls_http_response_t *resp)
{
    send_t *s = ud;
    poller_t *p = s->p;
    if (settle_pending(p)) {
        free(s);
        return;
    }
    outcome_t outcome = OUTCOME_SENT;
    char raw[ERROR_TEXT_MAX + 1] = "", error[ERROR_TEXT_MAX + 1] = "";
    if (!accepted(resp)) {
        outcome = s->attempt >= p->max_attempts ? OUTCOME_FAILED : OUTCOME_RETRY;
        if (resp->outcome != LS_HTTP_OK)
            snprintf(raw, sizeof(raw), "%s", resp->error != NULL ? resp->error : "no answer");
        else
            snprintf(raw, sizeof(raw), "HTTP %d: %.200s", resp->status, resp->body);
        redact(p, error, sizeof(error), raw);
    }
    ls_log_line_t l;
    if (ls_log_begin(&l, outcome == OUTCOME_SENT ? LS_LOG_INFO : LS_LOG_WARN, &s->log,
                     outcome == OUTCOME_SENT    ? "notification delivered (telegram)"
                     : outcome == OUTCOME_RETRY ? "notification delivery failed; will retry"
                                                : "notification delivery failed; giving up")) {
        ls_log_str(&l, "notification_id", s->id);
        ls_log_int(&l, "attempt", s->attempt);
        ls_log_int(&l, "http_status", resp->status);
        if (error[0] != '\0')
            ls_log_str(&l, "error", error);
        ls_log_end(&l);
    }
    record(p, s, outcome, resp->status, error[0] != '\0' ? error : NULL);
}

/* "<title>\n\n<body>" cut to TEXT_MAX bytes on a UTF-8 character boundary, as a sendMessage body
 * (malloc'ed), or NULL when out of memory. */
static char *message_json(const char *chat_id, const char *title, const char *body)
{
    char *text = NULL;
    int n = asprintf(&text, "%s\n\n%s", title, body);
    if (n < 0)
        return NULL;
    size_t len = (size_t)n;
    if (len > TEXT_MAX) {
        len = TEXT_MAX;
        /* text[len] is the first byte cut off: while it continues a character, cut that one too. */
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
    }
    int64_t chat = 0;
    ls_parse_i64(chat_id, strlen(chat_id), &chat);
    json_object *obj = json_object_new_object();
    json_object_object_add(obj, "chat_id", json_object_new_int64(chat));
    json_object_object_add(obj, "text", json_object_new_string_len(text, (int)len));
    free(text);
    char *out = strdup(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
    json_object_put(obj);
    return out;
}

/* Starts sending row `row` of the claim's result: id, recipient, title, body, attempts. */
static void send_one(poller_t *p, const PGresult *res, int row)
{
    send_t *s = calloc(1, sizeof(*s));
    char *body = s != NULL ? message_json(ls_row_text(res, row, "recipient_telegram_id"),
                                          ls_row_text(res, row, "title"), ls_row_text(res, row, "body"))
                           : NULL;
    if (body == NULL) {
        /* Left leased: it is claimed again after the lease. */
        free(s);
        row_settled(p);
        return;
    }
    s->p = p;
    snprintf(s->id, sizeof(s->id), "%s", ls_row_text(res, row, "id"));
    snprintf(s->request_id, sizeof(s->request_id), "notify-%s", s->id);
    s->log.request_id = s->request_id;
    s->log.trace_id = s->trace.trace_id;
    if (ls_trace_join(&s->trace, ls_row_text(res, row, "trace_id")) == 0)
        ls_trace_format(&s->trace, s->traceparent);
    s->attempt = (int)ls_row_id(res, row, "attempts");
    ls_http_request_t req = {
        .target = "telegram",
        .base_url = p->base_url,
        .method = "POST",
        .path = "/sendMessage",
        .body = body,
        .body_len = strlen(body),
        .request_id = s->request_id,
        .traceparent = s->traceparent[0] != '\0' ? s->traceparent : NULL,
        .deadline = ls_now_ms() + CALL_TIMEOUT_MS,
    };
    p->pending++;
    int rc = ls_http_send(p->http, &req, on_sent, s);
    free(body);
    if (rc != 0) {
        p->pending--;
        record(p, s, s->attempt >= p->max_attempts ? OUTCOME_FAILED : OUTCOME_RETRY, 0,
               "could not start the request");
    }
}

static void on_claimed(void *ud, ls_pg_status_t status, PGresult *res)
{
    poller_t *p = ud;
    if (settle_pending(p))
        return;
    if (status != LS_PG_OK) {
        ls_logf(LS_LOG_WARN, NULL, "delivery: could not claim notifications: %s",
                res != NULL ? ls_pg_errmsg(res) : "database unavailable");
        return end_round(p);
    }
    int rows = PQntuples(res);
    if (rows == 0)
        return end_round(p);
    p->round_full = rows >= BATCH;
    /* Counted up front so that a row settled at once does not end the round early. */
    p->round_left = (size_t)rows;
    for (int i = 0; i < rows; i++)
        send_one(p, res, i);
}

/* ls_notification_queue_depth, from worker 0's poller now and then. */
static void on_queue_depth(void *ud, ls_pg_status_t status, PGresult *res)
{
    poller_t *p = ud;
    if (settle_pending(p))
        return;
    if (status == LS_PG_OK && PQntuples(res) == 1)
        ls_metrics_notification_queue(strtoll(PQgetvalue(res, 0, 0), NULL, 10));
}

static void query_queue_depth(poller_t *p)
{
    static const char sql[] = "SELECT count(*) FROM notifications WHERE delivery_status = 'pending'";
    uint64_t now = ls_now_ms();
    if (!LS_METRICS || !ls_metrics_first_worker() || now < p->gauges_due)
        return;
    p->gauges_due = now + LS_METRICS_GAUGE_QUERY_MS;
    p->pending++;
    ls_pg_exec_sql(p->pg, sql, 0, NULL, now + SETTLE_MS, on_queue_depth, p);
}

static void start_round(poller_t *p)
{
    query_queue_depth(p);
    char batch[16], lease[16];
    snprintf(batch, sizeof(batch), "%d", BATCH);
    snprintf(lease, sizeof(lease), "%d", NOTIFY_LEASE_S);
    p->running = 1;
    p->pending++;
    uint64_t deadline = ls_now_ms() + SETTLE_MS;
    if (p->http == NULL) {
        const char *params[1] = {batch};
        ls_pg_exec(p->pg, STMT_DELIVER_STORE, 1, params, deadline, on_stored, p);
    } else {
        const char *params[2] = {batch, lease};
        ls_pg_exec(p->pg, STMT_CLAIM, 2, params, deadline, on_claimed, p);
    }
}

static void on_timer(ls_timer_t *t)
{
    poller_t *p = (poller_t *)((char *)t - offsetof(poller_t, timer));
    if (!p->running && !p->stopped)
        start_round(p);
}

/* ---- lifecycle ---- */

void delivery_start(ls_worker_t *w)
{
    const notification_config_t *cfg = ls_worker_daemon(w)->config;
    poller_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        goto fail;
    p->worker = w;
    p->loop = ls_worker_loop(w);
    p->pg = ls_worker_pg(w);
    p->poll_ms = (int)cfg->poll_ms;
    p->max_attempts = (int)cfg->max_attempts;
    p->token = cfg->bot_token;
    if (cfg->telegram_enabled) {
        /* Telegram is outside the system: none of our internal headers go there. */
        ls_http_config_t hc = {.external = 1, .max_attempts = 1, .max_response_bytes = RESPONSE_MAX};
        if (asprintf(&p->base_url, "%s/bot%s", cfg->telegram_api_url, cfg->bot_token) < 0) {
            p->base_url = NULL;
            goto fail;
        }
        p->http = ls_http_create(p->loop, &hc);
        if (p->http == NULL)
            goto fail;
    }
    ls_timer_init(&p->timer, on_timer);
    /* Notifications left over from an earlier run are due now. */
    ls_timer_start(p->loop, &p->timer, 0);
    thread_poller = p;
    return;

fail:
    if (p != NULL)
        free(p->base_url);
    free(p);
    ls_logf(LS_LOG_ERROR, NULL, "worker %d: could not start the delivery worker", ls_worker_index(w));
}

void delivery_stop(ls_worker_t *w)
{
    poller_t *p = thread_poller;
    if (p == NULL || p->worker != w)
        return;
    thread_poller = NULL;
    ls_timer_stop(p->loop, &p->timer);
    p->stopped = 1;
    /* Held while the client aborts its sends: their callbacks settle too, and must not free p. */
    p->pending++;
    if (p->http != NULL) {
        ls_http_t *http = p->http;
        p->http = NULL;
        ls_http_destroy(http);
    }
    settle_pending(p);
}

void delivery_kick(ls_worker_t *w)
{
    poller_t *p = thread_poller;
    if (p == NULL || p->worker != w || p->stopped)
        return;
    if (p->running)
        p->again = 1;
    else
        ls_timer_start(p->loop, &p->timer, 0);
}
