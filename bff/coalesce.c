/* The coalescer: per-thread queues of GET calls, the batch call and its answer split among its items.
 * See coalesce.h. */
#include "coalesce.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <log.h>
#include <metrics.h>
#include <text.h>
#include <trace.h>

/* Room for an item besides its escaped path and request id: the member names and punctuation (about
 * 80 bytes), an actor (20 digits), a role, a traceparent and a deadline (20 digits). */
#define ITEM_ROOM (128 + 20 + 16 + LS_TRACEPARENT_LEN + 20)

/* A call waiting for its batch, or in one. */
typedef struct {
    ls_req_t *r; /* one reference held until cb has run */
    ls_req_http_ud_cb cb;
    void *ud;
    const char *path; /* request memory */
} call_t;

typedef struct {
    call_t calls[BFF_COALESCE_MAX];
    size_t n;
} queue_t;

/* An item's answer inside the batch's: its status and its body's text (NULL: none). */
typedef struct {
    int status;
    const char *body;
    size_t len;
} answer_t;

/* A batch in flight, one allocation: its calls, then their answers, then the body it sends. */
typedef struct {
    bff_upstream_id_t up;
    size_t n;
    answer_t *answers;
    call_t calls[];
} batch_t;

static size_t batch_max = 32;

/* The calling worker thread's queues. */
static __thread struct {
    ls_loop_t *loop;  /* the worker's, from the first call queued */
    ls_timer_t timer; /* sends the queues once the iteration's I/O is done */
    int stopped;
    queue_t queues[BFF_UP_COUNT];
} tl;

void bff_coalesce_configure(size_t max)
{
    batch_max = max < 1 ? 1 : max > BFF_COALESCE_MAX ? BFF_COALESCE_MAX : max;
}

/* The call's answer: its callback, then the reference it held. */
static void finish(const call_t *c, const ls_http_response_t *resp)
{
    c->cb(c->r, resp, c->ud);
    ls_req_unref(c->r);
}

/* A queued call sent as it would be without the coalescer; the queue's reference is dropped (the call
 * holds its own). */
static void send_alone(bff_upstream_id_t up, const call_t *c)
{
    ls_req_http_ex(c->r, bff_upstream_name(up), bff_upstream_url(up), "GET", c->path, NULL, 0, NULL, c->cb,
                   c->ud);
    ls_req_unref(c->r);
}

/* ---- the batch's body ---- */

/* A bounded buffer: a write that does not fit sets `full` and the rest are dropped. */
typedef struct {
    char *buf;
    size_t len, cap;
    int full;
} out_t;

/* Appends len bytes (printf was a tenth of the coalescer's cost: five calls an item). */
static void out_add(out_t *o, const char *s, size_t len)
{
    if (o->full || o->cap - o->len <= len) {
        o->full = 1;
        return;
    }
    memcpy(o->buf + o->len, s, len);
    o->len += len;
}
#define out_lit(o, s) out_add((o), (s), sizeof(s) - 1)

/* Appends v in decimal. */
static void out_num(out_t *o, uint64_t v)
{
    char digits[20];
    size_t n = sizeof(digits);
    do
        digits[--n] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    out_add(o, digits + n, sizeof(digits) - n);
}

/* s as a JSON string, escaped as json-c escapes it ('/' as it is). */
static void out_str(out_t *o, const char *s)
{
    size_t len = strlen(s), used;
    if (o->full || o->cap - o->len < 3) {
        o->full = 1;
        return;
    }
    o->buf[o->len++] = '"';
    o->len += ls_json_escape(o->buf + o->len, o->cap - o->len - 2, s, len, 0, &used);
    o->buf[o->len++] = '"';
    o->buf[o->len] = '\0';
    o->full = used < len;
}

/* The length of s as JSON string characters (escaped, without quotes). */
static size_t escaped_len(const char *s)
{
    char esc[6];
    size_t n = 0;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        n += (ls_json_escapes[c] & LS_JSON_ESC_ALWAYS) ? ls_json_escape_byte(c, esc) : 1;
    }
    return n;
}

/* {"requests":[{"path":…,"actor":…,"role":…,"request_id":…,"traceparent":…,"deadline_ms":…},…]} */
static void write_body(out_t *o, const call_t *calls, size_t n, uint64_t now)
{
    out_lit(o, "{\"requests\":[");
    for (size_t i = 0; i < n; i++) {
        const ls_req_t *r = calls[i].r;
        char tp[LS_TRACEPARENT_LEN + 1];
        ls_trace_format(&r->trace, tp);
        if (i > 0)
            out_lit(o, ",");
        out_lit(o, "{\"path\":");
        out_str(o, calls[i].path);
        if (r->actor > 0) {
            out_lit(o, ",\"actor\":");
            out_num(o, (uint64_t)r->actor);
        }
        if (r->role != LS_ROLE_NONE) {
            const char *role = ls_role_name(r->role);
            out_lit(o, ",\"role\":\"");
            out_add(o, role, strlen(role));
            out_lit(o, "\"");
        }
        out_lit(o, ",\"request_id\":");
        out_str(o, r->request_id);
        out_lit(o, ",\"traceparent\":\"");
        out_add(o, tp, LS_TRACEPARENT_LEN);
        out_lit(o, "\",\"deadline_ms\":");
        out_num(o, r->deadline > now + 1 ? r->deadline - now : 1);
        out_lit(o, "}");
    }
    out_lit(o, "]}");
}

/* ---- the batch's answer ---- */

/* Moves *p past the literal lit: 0, or -1 when the text there is not lit. */
static int take_lit(const char **p, const char *end, const char *lit, size_t len)
{
    if ((size_t)(end - *p) < len || memcmp(*p, lit, len) != 0)
        return -1;
    *p += len;
    return 0;
}
#define TAKE(p, end, lit) take_lit((p), (end), lit, sizeof(lit) - 1)

/* Moves *p past a decimal number of at most 9 digits, into *v: 0, or -1. */
static int take_num(const char **p, const char *end, size_t *v)
{
    const char *s = *p;
    size_t n = 0;
    while (*p < end && **p >= '0' && **p <= '9' && *p - s < 9)
        n = n * 10 + (size_t)(*(*p)++ - '0');
    *v = n;
    return *p > s && (*p == end || **p < '0' || **p > '9') ? 0 : -1;
}

/*
 * Reads a 200 answer into b->answers: {"responses":[{"status":S,"length":L,"body":<L bytes>},…]}
 * exactly as batch.h writes it, one per item. The bodies are only framed here, not read: each is read
 * where a call's answer always is (on_part: the scanner or json-c), so the batch's bytes are scanned once.
 * 0, or -1 when it does not read.
 */
static int read_answer(batch_t *b, const ls_http_response_t *resp)
{
    const char *p = resp->body, *end = resp->body + resp->body_len;
    if (TAKE(&p, end, "{\"responses\":[") != 0)
        return -1;
    for (size_t i = 0; i < b->n; i++) {
        answer_t *a = &b->answers[i];
        size_t status, len;
        if ((i > 0 && TAKE(&p, end, ",") != 0) || TAKE(&p, end, "{\"status\":") != 0 ||
            take_num(&p, end, &status) != 0 || status < 100 || status > 599 ||
            TAKE(&p, end, ",\"length\":") != 0 || take_num(&p, end, &len) != 0 ||
            TAKE(&p, end, ",\"body\":") != 0 || len > (size_t)(end - p))
            return -1;
        a->status = (int)status;
        a->body = len == 4 && memcmp(p, "null", 4) == 0 ? NULL : p;
        a->len = len;
        p += len;
        if (TAKE(&p, end, "}") != 0)
            return -1;
    }
    return TAKE(&p, end, "]}") == 0 && p == end ? 0 : -1;
}

/* Item i's answer as a call of its own would have had it. */
static ls_http_response_t item_response(const batch_t *b, size_t i, const ls_http_response_t *batch)
{
    const answer_t *a = &b->answers[i];
    return (ls_http_response_t){
        .outcome = LS_HTTP_OK,
        .status = a->status,
        .body = a->body != NULL ? a->body : "",
        .body_len = a->body != NULL ? a->len : 0,
        .content_type = a->body == NULL                       ? NULL
                        : a->status >= 200 && a->status < 300 ? "application/json"
                                                              : "application/problem+json",
        .attempts = batch->attempts,
        .duration_ms = batch->duration_ms,
    };
}

static void on_batch(void *ud, const ls_http_response_t *resp)
{
    batch_t *b = ud;
    const char *name = bff_upstream_name(b->up);

    if (resp->outcome == LS_HTTP_OK && resp->status == 200 && read_answer(b, resp) == 0) {
        for (size_t i = 0; i < b->n; i++) {
            ls_http_response_t each = item_response(b, i, resp);
            finish(&b->calls[i], &each);
        }
        free(b);
        return;
    }
    if (resp->outcome == LS_HTTP_TOO_LARGE ||
        (resp->outcome == LS_HTTP_OK && (resp->status == 404 || resp->status == 405))) {
        /* Together over the client's max_response_bytes: each answer may well fit alone. A service that
         * has no POST /batch (an older one, during a rolling deploy) still serves each call alone. */
        for (size_t i = 0; i < b->n; i++)
            send_alone(b->up, &b->calls[i]);
        free(b);
        return;
    }
    /* Otherwise every item ends as the batch did: a failure, another status, or a 2xx that does not read
     * (502, as a call alone whose answer came from something that is not one of the school's services). */
    ls_http_response_t each = *resp;
    char problem[256];
    if (resp->outcome == LS_HTTP_OK && resp->status >= 200 && resp->status < 300) {
        int len = snprintf(problem, sizeof(problem),
                           "{\"type\":\"about:blank\",\"title\":\"Bad Gateway\",\"status\":502,"
                           "\"detail\":\"%s-service answered a batch that cannot be read\"}",
                           name);
        each.status = 502;
        each.body = problem;
        each.body_len = (size_t)len;
        each.content_type = "application/problem+json";
        ls_log_line_t l;
        if (ls_log_begin(&l, LS_LOG_WARN, NULL, "batch answer unreadable")) {
            ls_log_str(&l, "target", name);
            ls_log_end(&l);
        }
    }
    for (size_t i = 0; i < b->n; i++)
        finish(&b->calls[i], &each);
    free(b);
}

/* Sends calls[0..n) (n >= 2, their references held) as one batch, or each alone when it cannot. */
static void send_batch(bff_upstream_id_t up, const call_t *calls, size_t n)
{
    uint64_t now = ls_now_ms(), deadline = 0;
    size_t cap = sizeof("{\"requests\":[]}");
    for (size_t i = 0; i < n; i++) {
        cap += ITEM_ROOM + escaped_len(calls[i].path) + escaped_len(calls[i].r->request_id);
        if (calls[i].r->deadline > deadline)
            deadline = calls[i].r->deadline;
    }
    batch_t *b = malloc(sizeof(*b) + n * (sizeof(call_t) + sizeof(answer_t)) + cap);
    if (b != NULL) {
        b->up = up;
        b->n = n;
        memcpy(b->calls, calls, n * sizeof(call_t));
        b->answers = (answer_t *)(b->calls + n);
        out_t body = {.buf = (char *)(b->answers + n), .cap = cap};
        write_body(&body, calls, n, now);

        const ls_req_t *first = calls[0].r;
        char rid[LS_REQUEST_ID_MAX + 1], tp[LS_TRACEPARENT_LEN + 1];
        snprintf(rid, sizeof(rid), "%.*s-b", LS_REQUEST_ID_MAX - 2, first->request_id);
        ls_trace_format(&first->trace, tp);
        ls_http_request_t spec = {
            .target = bff_upstream_name(up),
            .base_url = bff_upstream_url(up),
            .method = "POST",
            .path = "/batch",
            .body = body.buf,
            .body_len = body.len,
            .request_id = rid,
            .traceparent = tp,
            .idempotent = 1, /* a batch of GETs only reads */
            .deadline = deadline,
        };
        ls_http_t *http = ls_worker_http(first->worker);
        if (!body.full && http != NULL && ls_http_send(http, &spec, on_batch, b) == 0) {
            ls_metrics_bff_batch(ls_metrics_target(spec.target), n);
            return;
        }
        free(b);
    }
    for (size_t i = 0; i < n; i++)
        send_alone(up, &calls[i]);
}

/* ---- the queues ---- */

static void send_queue(bff_upstream_id_t up)
{
    queue_t *q = &tl.queues[up];
    size_t n = q->n;
    q->n = 0; /* sending starts no call of the coalescer's: the array stays as it is meanwhile */
    if (n == 1)
        send_alone(up, &q->calls[0]);
    else if (n > 1)
        send_batch(up, q->calls, n);
}

static void on_iteration_end(ls_timer_t *t)
{
    (void)t;
    for (int up = 0; up < BFF_UP_COUNT; up++)
        send_queue((bff_upstream_id_t)up);
}

void bff_coalesce_get(ls_req_t *r, bff_upstream_id_t up, const char *path, ls_req_http_ud_cb cb, void *ud)
{
    if (batch_max <= 1 || tl.stopped || strlen(path) > BFF_COALESCE_MAX_PATH) {
        ls_req_http_ex(r, bff_upstream_name(up), bff_upstream_url(up), "GET", path, NULL, 0, NULL, cb, ud);
        return;
    }
    if (tl.loop == NULL) {
        tl.loop = ls_worker_loop(r->worker);
        ls_timer_init(&tl.timer, on_iteration_end);
    }
    queue_t *q = &tl.queues[up];
    ls_req_ref(r);
    q->calls[q->n++] = (call_t){.r = r, .cb = cb, .ud = ud, .path = path};
    if (q->n >= batch_max)
        send_queue(up);
    else if (!ls_timer_is_active(&tl.timer))
        ls_timer_start(tl.loop, &tl.timer, 0);
}

void bff_coalesce_stop(ls_worker_t *w)
{
    (void)w;
    ls_http_response_t failed = {.outcome = LS_HTTP_ERROR, .body = "", .error = "the worker is stopping"};
    if (tl.loop != NULL)
        ls_timer_stop(tl.loop, &tl.timer);
    tl.stopped = 1;
    for (int up = 0; up < BFF_UP_COUNT; up++) {
        queue_t *q = &tl.queues[up];
        size_t n = q->n;
        q->n = 0;
        for (size_t i = 0; i < n; i++)
            finish(&q->calls[i], &failed);
    }
}
