/* The BFF's calls to the services: breakers and limits, and the fan-out. See upstream.h. */
#include "upstream.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <log.h>
#include <metrics.h>

#include "coalesce.h"

enum { CLOSED = 0, OPEN = 1, HALF_OPEN = 2 };

#define DEADLINE_GRACE_MS 25

typedef struct {
    int state;
    int failures; /* consecutive, while closed */
    int probing;  /* half-open: the one probe is out */
    uint64_t open_until;
    size_t inflight;
} breaker_t;

static const char *const names[BFF_UP_COUNT] = {"auth",     "teachers",     "students", "groups",
                                                "calendar", "notification", "payment"};
static bff_upstream_config_t cfg;
/* Each worker thread has its own breakers: threads share no mutable state. */
static __thread breaker_t breakers[BFF_UP_COUNT];
/* Their metrics target slots, plus one (0: not looked up yet). */
static __thread int metric_slots[BFF_UP_COUNT];

static int metric_slot(bff_upstream_id_t up)
{
    if (metric_slots[up] == 0)
        metric_slots[up] = ls_metrics_target(names[up]) + 1;
    return metric_slots[up] - 1;
}

/* ls_bff_breaker_open: 1 while calls are refused (open, or half-open with its probe out). */
static void publish_breaker(bff_upstream_id_t up)
{
    ls_metrics_bff_breaker(metric_slot(up), breakers[up].state != CLOSED);
}

/* A call refused before it started: outcome breaker_open or shed. */
static int refuse(bff_upstream_id_t up, ls_metrics_upstream_outcome_t outcome, const char **why)
{
    *why = outcome == LS_UP_SHED ? "too many concurrent requests" : "circuit open";
    ls_metrics_upstream_refused(metric_slot(up), outcome);
    publish_breaker(up);
    return -1;
}

void bff_upstream_configure(const bff_upstream_config_t *config)
{
    cfg = *config;
}

const char *bff_upstream_name(bff_upstream_id_t up)
{
    return names[up];
}

const char *bff_upstream_url(bff_upstream_id_t up)
{
    return cfg.base_url[up];
}

int bff_upstream_state(bff_upstream_id_t up)
{
    return breakers[up].state;
}

static void log_transition(bff_upstream_id_t up, const char *what)
{
    ls_log_line_t l;
    if (ls_log_begin(&l, LS_LOG_WARN, NULL, what)) {
        ls_log_str(&l, "target", names[up]);
        ls_log_end(&l);
    }
}

int bff_upstream_acquire(bff_upstream_id_t up, const char **why)
{
    breaker_t *b = &breakers[up];

    if (b->state == OPEN) {
        if (ls_now_ms() < b->open_until)
            return refuse(up, LS_UP_BREAKER_OPEN, why);
        b->state = HALF_OPEN;
        b->probing = 0;
    }
    if (b->state == HALF_OPEN && b->probing)
        return refuse(up, LS_UP_BREAKER_OPEN, why);
    if (b->inflight >= cfg.max_inflight)
        return refuse(up, LS_UP_SHED, why);
    if (b->state == HALF_OPEN)
        b->probing = 1;
    b->inflight++;
    publish_breaker(up);
    return 0;
}

void bff_upstream_release(bff_upstream_id_t up, const ls_http_response_t *resp)
{
    breaker_t *b = &breakers[up];
    /* Only what says the service is unwell counts: not our own errors (out of memory, shutdown). */
    int failed = resp->outcome == LS_HTTP_TIMEOUT || resp->outcome == LS_HTTP_CONNECT_ERROR ||
                 (resp->outcome == LS_HTTP_OK && resp->status >= 500);

    b->inflight--;
    if (!failed && resp->outcome != LS_HTTP_OK) {
        /* Neither proof of health nor of sickness; a probe that ended so lets the next one go. */
        b->probing = 0;
        return;
    }
    if (!failed) {
        if (b->state != CLOSED)
            log_transition(up, "circuit closed");
        b->state = CLOSED;
        b->failures = 0;
        b->probing = 0;
        publish_breaker(up);
        return;
    }
    if (b->state == HALF_OPEN || (b->state == CLOSED && ++b->failures >= cfg.breaker_failures)) {
        if (b->state == CLOSED)
            log_transition(up, "circuit open");
        b->state = OPEN;
        b->open_until = ls_now_ms() + cfg.breaker_open_ms;
        b->probing = 0;
        b->failures = 0;
    }
    publish_breaker(up);
}

/* ---- fan-out ---- */

/* An upstream answer's JSON (bodies are at most the client's max_response_bytes), or NULL. */
static json_object *parse_body(const char *body, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(LS_JSON_MAX_DEPTH);
    if (tok == NULL)
        return NULL;
    json_object *obj = json_tokener_parse_ex(tok, body, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(obj);
        obj = NULL;
    }
    json_tokener_free(tok);
    return obj;
}

static void part_fail(bff_part_t *p, int status, const char *detail)
{
    p->finished = 1;
    p->ok = 0;
    p->unavailable = 1;
    p->status = status;
    snprintf(p->detail, sizeof(p->detail), "%s", detail);
}

static void fanout_finish(bff_fanout_t *f)
{
    ls_req_t *r = f->r;
    f->done = 1;
    ls_timer_stop(ls_worker_loop(r->worker), &f->timer);
    for (size_t i = 0; i < f->nparts; i++)
        if (!f->parts[i].finished)
            part_fail(&f->parts[i], 504, "deadline exceeded");
    f->cb(r, f);
    for (size_t i = 0; i < f->nparts; i++) {
        json_object_put(f->parts[i].json);
        f->parts[i].json = NULL;
    }
}

static void part_settled(bff_fanout_t *f)
{
    if (--f->pending == 0 && !f->done)
        fanout_finish(f);
}

static void on_deadline(ls_timer_t *t)
{
    bff_fanout_t *f = (bff_fanout_t *)((char *)t - offsetof(bff_fanout_t, timer));
    if (!f->done)
        fanout_finish(f);
}

/* The problem's detail from an upstream error answer, else a generic sentence. */
static void take_detail(bff_part_t *p, const ls_http_response_t *resp)
{
    json_object *d;
    if (p->json != NULL && json_object_object_get_ex(p->json, "detail", &d) &&
        json_object_is_type(d, json_type_string))
        snprintf(p->detail, sizeof(p->detail), "%s", json_object_get_string(d));
    else
        snprintf(p->detail, sizeof(p->detail), "%s-service answered %d", names[p->up], resp->status);
}

/* A pass_through part's error answer's detail into p->detail by the scanner: 0 (p->detail stays empty
 * when the answer has no string detail), or -1 when the scanner refuses the answer. */
static int scan_detail(ls_req_t *r, bff_part_t *p)
{
    bff_json_span_t whole, detail;
    if (bff_json_scan(p->raw, p->raw_len, "detail", &whole, &detail) != 0)
        return -1;
    if (detail.text != NULL && detail.type == json_type_string) {
        char *text = ls_req_alloc(r, detail.len + 1);
        size_t n = bff_span_unescape(&detail, text);
        snprintf(p->detail, sizeof(p->detail), "%.*s", (int)n, text);
    }
    return 0;
}

/* A pass_through part's 2xx answer, read by the scanner in one pass (upstream.h). */
static int read_passed(ls_req_t *r, bff_part_t *p)
{
    bff_json_want_t want = {.keys = p->pass_keys};
    while (want.nkeys < BFF_JSON_MAX_FIELDS && p->pass_keys[want.nkeys] != NULL)
        want.nkeys++;
    if (p->max_items > 0) {
        want.item_keys = p->item_keys;
        want.nitem_keys = p->nitem_keys;
        want.max_items = p->max_items;
        want.items = p->items = ls_req_alloc(r, p->max_items * sizeof(p->items[0]));
    }
    return bff_json_read(p->raw, p->raw_len, &want, &p->whole, p->field, &p->nitems);
}

static void on_part(ls_req_t *r, const ls_http_response_t *resp, void *ud)
{
    bff_part_t *p = ud;
    bff_fanout_t *f = p->fanout;

    bff_upstream_release(p->up, resp);
    if (f->done) /* answered already (deadline): nobody reads this part any more */
        return;
    p->finished = 1;
    if (resp->outcome != LS_HTTP_OK) {
        part_fail(p, resp->outcome == LS_HTTP_TIMEOUT ? 504 : 503, resp->error ? resp->error : "no answer");
        part_settled(f);
        return;
    }
    p->status = resp->status;
    p->ok = resp->status >= 200 && resp->status < 300;
    p->unavailable = resp->status >= 500;
    int is_json =
        resp->body_len > 0 && resp->content_type != NULL && strstr(resp->content_type, "json") != NULL;
    if (f->keep_raw || p->pass_through) {
        p->raw = ls_req_strdup(r, resp->body, resp->body_len);
        p->raw_len = resp->body_len;
        if (resp->content_type != NULL)
            p->content_type = ls_req_strdup(r, resp->content_type, strlen(resp->content_type));
    }
    if (p->pass_through && p->ok) {
        if (!is_json || read_passed(r, p) != 0) {
            char why[BFF_DETAIL_MAX];
            snprintf(why, sizeof(why), "%s-service answered what the BFF cannot pass on", names[p->up]);
            part_fail(p, 502, why);
        }
        return part_settled(f);
    }
    /* A pass_through part's error answer is only read for its detail (bff_part_error): the scanner
     * finds it at a fraction of json-c's cost (a view of a person with no teacher profile has one such
     * 404 every time). An answer the scanner refuses is parsed, as any other part's is. */
    if (is_json && !(p->pass_through && !p->ok && scan_detail(r, p) == 0))
        p->json = parse_body(resp->body, resp->body_len);
    if (!p->ok && p->detail[0] == '\0')
        take_detail(p, resp);
    part_settled(f);
}

bff_fanout_t *bff_fanout_new(ls_req_t *r, void *ud)
{
    bff_fanout_t *f = ls_req_alloc(r, sizeof(*f));
    memset(f, 0, sizeof(*f));
    f->r = r;
    f->ud = ud;
    ls_timer_init(&f->timer, on_deadline);
    return f;
}

bff_part_t *bff_fanout_add(bff_fanout_t *f, bff_upstream_id_t up, const char *method, const char *path,
                           const char *body, size_t body_len)
{
    if (f->nparts == BFF_FANOUT_MAX_PARTS)
        return NULL;
    bff_part_t *p = &f->parts[f->nparts++];
    p->fanout = f;
    p->up = up;
    p->method = method;
    p->path = path;
    p->body = body;
    p->body_len = body_len;
    p->raw = "";
    return p;
}

bff_part_t *bff_fanout_getf(bff_fanout_t *f, bff_upstream_id_t up, const char *fmt, ...)
{
    va_list ap;
    char buf[256];
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *path = ls_req_alloc(f->r, (size_t)n + 1);
    if ((size_t)n < sizeof(buf)) {
        memcpy(path, buf, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(path, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return bff_fanout_add(f, up, "GET", path, NULL, 0);
}

void bff_fanout_start(bff_fanout_t *f, bff_fanout_cb done)
{
    ls_req_t *r = f->r;
    const char *why;

    f->cb = done;
    /* One extra count while starting, so that parts failing at once cannot finish the fan-out
     * before every part has been started. */
    f->pending = f->nparts + 1;
    for (size_t i = 0; i < f->nparts; i++) {
        bff_part_t *p = &f->parts[i];
        if (ls_now_ms() >= r->deadline) {
            part_fail(p, 504, "deadline exceeded before the call");
            f->pending--;
        } else if (bff_upstream_acquire(p->up, &why) != 0) {
            part_fail(p, 503, why);
            f->pending--;
        } else if (strcmp(p->method, "GET") == 0 && p->body == NULL && p->idempotency_key == NULL) {
            bff_coalesce_get(r, p->up, p->path, on_part, p);
        } else {
            ls_req_http_ex(r, names[p->up], cfg.base_url[p->up], p->method, p->path, p->body, p->body_len,
                           p->idempotency_key, on_part, p);
        }
    }
    /* The http client ends every call by the deadline; this is the backstop, a little later so that a
     * call's own timeout is normally what ends it (and is counted by the breaker). */
    if (f->pending > 1)
        ls_timer_start_at(ls_worker_loop(r->worker), &f->timer, r->deadline + DEADLINE_GRACE_MS);
    part_settled(f);
}

const bff_json_span_t *bff_part_list(const bff_part_t *p)
{
    if (!p->ok || !p->pass_through)
        return NULL;
    const bff_json_span_t *v = p->pass_keys[0] != NULL && p->field[0].text != NULL ? &p->field[0] : &p->whole;
    return v->type == json_type_array ? v : NULL;
}

json_object *bff_part_error(const bff_part_t *p)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "service", json_object_new_string(names[p->up]));
    json_object_object_add(e, "status", json_object_new_int(p->status));
    json_object_object_add(e, "detail", json_object_new_string(p->detail));
    return e;
}
