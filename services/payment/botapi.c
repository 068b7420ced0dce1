/*
 * payment-service: the Telegram Bot API — createInvoiceLink, answerPreCheckoutQuery and
 * refundStarPayment, called on behalf of a request.
 *
 * Each worker has a client of its own for Telegram (not the internal one), external, so the
 * INTERNAL_TOKEN never travels to a third party. The bot token is part of the base URL
 * "{TELEGRAM_API_URL}/bot{BOT_TOKEN}", which the HTTP client never logs (it logs the path, e.g.
 * "/refundStarPayment"); a transport failure is logged by its outcome, never by curl's text (which
 * may quote the URL). A call is not retried here: its caller decides (the outbox retries the seat
 * step, Telegram re-sends an update that got a 5xx).
 */
#include "payment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "botapi.h"
#include "log.h"

#define RESPONSE_MAX (64 * 1024)

/* The calling worker's client; NULL when Telegram is not configured. */
static _Thread_local struct {
    ls_worker_t *worker;
    ls_http_t *http;
    char *base_url; /* secret: holds the token */
} bot;

typedef struct {
    ls_req_t *r;
    botapi_cb cb;
    const char *method;
    ls_timer_t timer; /* a call that could not start is reported on the next loop iteration */
} bot_call_t;

/* ---- configuration ---- */

/* "http://host:port" (or the Unix socket) of the first LISTEN address, for the seat step. */
static int self_url(payment_config_t *cfg)
{
    const ls_cfg_addr_t *a = &cfg->common.listen.addr[0];
    int n;
    if (a->is_unix)
        n = asprintf(&cfg->self_url, "unix:%s", a->path);
    else if (strcmp(a->host, "0.0.0.0") == 0 || a->host[0] == '\0')
        n = asprintf(&cfg->self_url, "http://127.0.0.1:%d", a->port);
    else if (strcmp(a->host, "::") == 0)
        n = asprintf(&cfg->self_url, "http://[::1]:%d", a->port);
    else if (strchr(a->host, ':') != NULL)
        n = asprintf(&cfg->self_url, "http://[%s]:%d", a->host, a->port);
    else
        n = asprintf(&cfg->self_url, "http://%s:%d", a->host, a->port);
    if (n < 0)
        cfg->self_url = NULL;
    return n < 0 ? -1 : 0;
}

int payment_prepare_config(payment_config_t *cfg, char *err, size_t errlen)
{
    int on = ls_botapi_settings(cfg->telegram_api_url, cfg->bot_token, err, errlen);
    if (on < 0)
        return -1;
    cfg->telegram_enabled = on;
    if (!cfg->telegram_enabled)
        ls_log(LS_LOG_WARN, NULL, "TELEGRAM_API_URL or BOT_TOKEN is empty: checkouts answer 503");
    if (self_url(cfg) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- the worker's client ---- */

void botapi_worker_start(ls_worker_t *w)
{
    const payment_config_t *cfg = ls_worker_daemon(w)->config;
    if (!cfg->telegram_enabled)
        return;
    ls_http_config_t hc = {.external = 1, .max_attempts = 1, .max_response_bytes = RESPONSE_MAX};
    if (asprintf(&bot.base_url, "%s/bot%s", cfg->telegram_api_url, cfg->bot_token) < 0) {
        bot.base_url = NULL;
    } else if ((bot.http = ls_http_create(ls_worker_loop(w), &hc)) != NULL) {
        bot.worker = w;
        return;
    }
    free(bot.base_url);
    bot.base_url = NULL;
    ls_logf(LS_LOG_ERROR, NULL, "worker %d: could not start the Bot API client", ls_worker_index(w));
}

void botapi_worker_stop(ls_worker_t *w)
{
    if (bot.worker != w)
        return;
    /* Calls still in flight are called back (not answered) before the client goes. */
    ls_http_destroy(bot.http);
    free(bot.base_url);
    bot.http = NULL;
    bot.base_url = NULL;
    bot.worker = NULL;
}

int botapi_enabled(ls_req_t *r)
{
    return ((const payment_config_t *)ls_req_config(r))->telegram_enabled;
}

/* ---- a call ---- */

static void finish(bot_call_t *c, const ls_http_response_t *resp)
{
    botapi_result_t res = {0};
    json_object *obj = NULL, *v;
    if (resp != NULL && resp->outcome == LS_HTTP_OK) {
        res.answered = 1;
        res.status = resp->status;
        obj = json_tokener_parse(resp->body);
        if (obj != NULL && !json_object_is_type(obj, json_type_object)) {
            json_object_put(obj);
            obj = NULL;
        }
        if (obj != NULL && resp->status >= 200 && resp->status < 300 &&
            json_object_object_get_ex(obj, "ok", &v) && json_object_is_type(v, json_type_boolean) &&
            json_object_get_boolean(v)) {
            res.ok = 1;
            json_object_object_get_ex(obj, "result", &res.result);
        } else if (obj != NULL && json_object_object_get_ex(obj, "description", &v) &&
                   json_object_is_type(v, json_type_string)) {
            res.description = json_object_get_string(v);
        }
    }
    if (!res.ok) {
        ls_log_line_t l;
        if (ls_log_begin(&l, LS_LOG_WARN, &c->r->log, "Bot API call refused or failed")) {
            ls_log_str(&l, "bot_method", c->method);
            ls_log_int(&l, "status", res.status);
            ls_log_str(&l, "description",
                       res.description != NULL            ? res.description
                       : resp == NULL                     ? "could not start the call"
                       : res.answered                     ? "no description"
                       : resp->outcome == LS_HTTP_TIMEOUT ? "timed out"
                                                          : "no answer");
            ls_log_end(&l);
        }
    }
    c->cb(c->r, &res);
    json_object_put(obj);
    ls_req_unref(c->r);
}

static void on_answer(void *ud, const ls_http_response_t *resp)
{
    finish(ud, resp);
}

static void on_not_started(ls_timer_t *t)
{
    finish(H2O_STRUCT_FROM_MEMBER(bot_call_t, timer, t), NULL);
}

void botapi_call(ls_req_t *r, const char *method, json_object *params, botapi_cb cb)
{
    const payment_config_t *cfg = ls_req_config(r);
    bot_call_t *c = ls_req_alloc(r, sizeof(*c));
    char path[64];
    snprintf(path, sizeof(path), "/%s", method);
    c->r = r;
    c->cb = cb;
    c->method = method;
    ls_req_ref(r);
    size_t len;
    const char *body = json_object_to_json_string_length(params, JSON_C_TO_STRING_PLAIN, &len);
    uint64_t deadline = ls_now_ms() + (uint64_t)cfg->bot_timeout_ms;
    ls_http_request_t req = {
        .target = "telegram",
        .base_url = bot.base_url,
        .method = "POST",
        .path = path,
        .body = body,
        .body_len = len,
        .request_id = r->request_id,
        .deadline = deadline < r->deadline ? deadline : r->deadline,
    };
    int rc = bot.http != NULL && bot.worker == r->worker ? ls_http_send(bot.http, &req, on_answer, c) : -1;
    json_object_put(params);
    if (rc != 0) {
        ls_timer_init(&c->timer, on_not_started);
        ls_timer_start(ls_worker_loop(r->worker), &c->timer, 0);
    }
}
