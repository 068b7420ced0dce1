/* front: the h2o handler that turns each request into an ls_req_t and checks it on the way in. */
#include "front.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "batch.h"
#include "calls.h"
#include "metrics.h"
#include "problem.h"
#include "scalar.h"
#include "text.h"
#include "url.h"
#include "worker.h"

#define READYZ_TIMEOUT_MS 1000

typedef struct {
    h2o_handler_t super;
    const ls_daemon_t *daemon;
} front_handler_t;

static void set_request_id(ls_req_t *r)
{
    h2o_iovec_t v;
    if (ls_req_header_ref(r, H2O_STRLIT("x-request-id"), &v) && v.len > 0 && v.len <= LS_REQUEST_ID_MAX) {
        size_t i;
        for (i = 0; i < v.len; i++) {
            char c = v.base[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.'))
                break;
        }
        if (i == v.len) {
            memcpy(r->request_id, v.base, v.len);
            r->request_id[v.len] = '\0';
            return;
        }
    }
    snprintf(r->request_id, sizeof(r->request_id), "%s%08llx", r->worker->rid_prefix,
             (unsigned long long)++r->worker->rid_counter);
}

/* The caller's trace when its traceparent is valid, else a new one; a span of the request's own. */
static void set_trace(ls_req_t *r)
{
    h2o_iovec_t v = {NULL, 0};
    ls_req_header_ref(r, H2O_STRLIT("traceparent"), &v);
    ls_trace_begin(&r->trace, v.base, v.len);
}

/* ---- built-in routes ---- */

static void reply_ready(ls_req_t *r)
{
    static const char body[] = "{\"status\":\"ready\"}";
    ls_reply_raw(r, 200, "application/json", body, sizeof(body) - 1);
}

static void on_readyz(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (status == LS_PG_OK)
        reply_ready(r);
    else
        ls_reply_problem_str(r, 503, "database not reachable");
}

static void serve_builtin(ls_req_t *r, int readyz)
{
    if (!readyz) {
        static const char body[] = "{\"status\":\"ok\"}";
        ls_reply_raw(r, 200, "application/json", body, sizeof(body) - 1);
        return;
    }
    if (r->worker->pg == NULL) {
        reply_ready(r);
        return;
    }
    uint64_t deadline = ls_now_ms() + READYZ_TIMEOUT_MS;
    ls_req_sql(r, "SELECT 1", deadline < r->deadline ? deadline : r->deadline, on_readyz);
}

/* ---- checks ---- */

/* Answers 404, 405 or 400 and returns -1 unless the request matches one of the daemon's routes. */
static int route_or_reply(ls_req_t *r, h2o_iovec_t path)
{
    const ls_daemon_t *d = r->daemon;
    h2o_iovec_t method = r->method;
    switch (ls_router_match(d->routes, d->nroutes, method.base, method.len, path.base, path.len, &r->match)) {
    case LS_ROUTE_OK:
        r->metrics.route = (int)(r->match.route - d->routes);
        return 0;
    case LS_ROUTE_NOT_FOUND:
        ls_reply_problem(r, 404, "no route for %.*s %.*s", (int)method.len, method.base,
                         (int)(path.len > 200 ? 200 : path.len), path.base);
        return -1;
    case LS_ROUTE_BAD_METHOD:
        if (r->h2o != NULL)
            h2o_add_header(&r->h2o->pool, &r->h2o->res.headers, H2O_TOKEN_ALLOW, NULL,
                           h2o_strdup(&r->h2o->pool, r->match.allow, SIZE_MAX).base, strlen(r->match.allow));
        ls_reply_problem(r, 405, "method %.*s not allowed here; allowed: %s", (int)method.len, method.base,
                         r->match.allow);
        return -1;
    case LS_ROUTE_BAD_PARAM: {
        const ls_route_param_t *p = r->match.bad_param;
        static const char *const want[] = {"a telegram id (an integer from 1 to 9007199254740991)", "a UUID",
                                           "a non-empty segment of at most 256 bytes"};
        ls_reply_problem(r, 400, "path parameter '%.*s' must be %s", (int)p->name_len, p->name,
                         want[p->type]);
        return -1;
    }
    }
    return -1;
}

static int token_ok(ls_req_t *r)
{
    const char *token = r->daemon->common->internal_token;
    size_t token_len = strlen(token);
    h2o_iovec_t v;
    if (!ls_req_header_ref(r, H2O_STRLIT("authorization"), &v))
        return 0;
    if (v.len != token_len + 7 || strncasecmp(v.base, "Bearer ", 7) != 0)
        return 0;
    return sodium_memcmp(v.base + 7, token, token_len) == 0;
}

/* GET /metrics: behind the internal token on every daemon, the BFF included (README "Metrics"). */
static void serve_metrics(ls_req_t *r)
{
    if (!token_ok(r))
        return ls_reply_problem_str(r, 401, "missing or wrong internal token");
    ls_text_t t = {0};
    ls_metrics_write(ls_metrics_registry(r->worker->metrics), &t);
    if (t.failed)
        ls_reply_problem_str(r, 503, "out of memory");
    else
        ls_reply_raw(r, 200, LS_METRICS_CONTENT_TYPE, t.buf, t.len);
    ls_text_free(&t);
}

/* The internal token, or the daemon's own authenticate(); -1 after answering. */
static int caller_or_reply(ls_req_t *r)
{
    if (r->match.route->flags & LS_ROUTE_PUBLIC)
        return 0;
    if (r->daemon->authenticate != NULL)
        return r->daemon->authenticate(r) != 0 ? -1 : 0;
    if (token_ok(r))
        return 0;
    ls_reply_problem_str(r, 401, "missing or wrong internal token");
    return -1;
}

/* X-Actor-Telegram-Id and X-Actor-Role into r->actor and r->role; -1 after answering 400. */
static int actor_or_reply(ls_req_t *r)
{
    h2o_iovec_t v;
    if (ls_req_header_ref(r, H2O_STRLIT("x-actor-telegram-id"), &v) &&
        ls_parse_id(v.base, v.len, &r->actor) != 0) {
        ls_reply_problem_str(r, 400, "header X-Actor-Telegram-Id must be a telegram id");
        return -1;
    }
    if (ls_req_header_ref(r, H2O_STRLIT("x-actor-role"), &v)) {
        r->role = ls_role_parse(v.base, v.len);
        if (r->role == LS_ROLE_NONE) {
            ls_reply_problem_str(r, 400, "header X-Actor-Role must be student, teacher or admin");
            return -1;
        }
    }
    return 0;
}

/* X-Deadline-Ms shortens r->deadline; -1 after answering 400 (malformed) or 503 (already passed). */
static int deadline_or_reply(ls_req_t *r)
{
    h2o_iovec_t v;
    int64_t ms;
    if (!ls_req_header_ref(r, H2O_STRLIT("x-deadline-ms"), &v))
        return 0;
    if (ls_parse_i64(v.base, v.len, &ms) != 0) {
        ls_reply_problem_str(r, 400, "header X-Deadline-Ms must be an integer");
        return -1;
    }
    if (ms <= 0) {
        ls_reply_problem_str(r, 503, "deadline already passed");
        return -1;
    }
    if (r->started + (uint64_t)ms < r->deadline)
        r->deadline = r->started + (uint64_t)ms;
    return 0;
}

/* The request's path checked and decoded (url.h) into *path, and its query string's text checked;
 * -1 after answering 400. h2o's own path_normalized is not used: it decodes "%2F" to '/' and then
 * resolves "..", so that one path could name another route. */
static int target_or_reply(ls_req_t *r, h2o_iovec_t *path)
{
    h2o_iovec_t t = r->target;
    size_t len = r->query_at != SIZE_MAX ? r->query_at : t.len;
    /* Room for the decoded path and, after it, the decoded query (decoding never lengthens). */
    char *buf = ls_req_alloc(r, t.len + 2);
    const char *why;
    long n = ls_url_path(buf, t.base, len, &why);
    if (n < 0) {
        ls_reply_problem(r, 400, "bad path: %s", why);
        return -1;
    }
    *path = h2o_iovec_init(buf, (size_t)n);
    if (r->query_at == SIZE_MAX)
        return 0;
    /* Query values are decoded leniently where they are read (query.h); their text is checked here,
     * once for all: the '&' and '=' between them are ASCII, so the whole is UTF-8 without a NUL
     * exactly when every value is. */
    char *query = buf + len + 1;
    long m = ls_url_decode(query, t.base + r->query_at + 1, t.len - r->query_at - 1, 0);
    if (memchr(query, '\0', (size_t)m) != NULL || ls_utf8_span(query, (size_t)m) != (size_t)m) {
        ls_reply_problem_str(r, 400, "bad query string: a value holds a NUL or bytes that are not UTF-8");
        return -1;
    }
    return 0;
}

/* A body over MAX_BODY_BYTES: answers 413 and returns -1. */
static int body_size_or_reply(ls_req_t *r)
{
    const ls_daemon_t *d = r->daemon;
    if (ls_req_entity(r).len <= (size_t)d->common->max_body_bytes)
        return 0;
    ls_reply_problem(r, 413, "request body over %lld bytes", d->common->max_body_bytes);
    return -1;
}

/* POST /batch (batch.h): a service's, behind the internal token; the BFF authenticates its callers
 * itself and offers none. */
static void serve_batch(ls_req_t *r)
{
    if (!token_ok(r))
        return ls_reply_problem_str(r, 401, "missing or wrong internal token");
    if (body_size_or_reply(r) != 0 || deadline_or_reply(r) != 0)
        return;
    ls_batch_serve(r);
}

/* Serves the built-in routes: 1 when path is one of them (answered or under way), else 0. */
static int builtin_route(ls_req_t *r, h2o_iovec_t path)
{
    if (h2o_memis(r->method.base, r->method.len, H2O_STRLIT("GET"))) {
        if (h2o_memis(path.base, path.len, H2O_STRLIT("/healthz"))) {
            r->metrics.route = LS_METRICS_ROUTE_HEALTHZ;
            serve_builtin(r, 0);
            return 1;
        }
        if (h2o_memis(path.base, path.len, H2O_STRLIT("/readyz"))) {
            r->metrics.route = LS_METRICS_ROUTE_READYZ;
            serve_builtin(r, 1);
            return 1;
        }
        if (h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"))) {
            r->metrics.route = LS_METRICS_ROUTE_METRICS;
            serve_metrics(r);
            return 1;
        }
    } else if (r->daemon->authenticate == NULL &&
               h2o_memis(r->method.base, r->method.len, H2O_STRLIT("POST")) &&
               h2o_memis(path.base, path.len, H2O_STRLIT("/batch"))) {
        r->metrics.route = LS_METRICS_ROUTE_BATCH;
        serve_batch(r);
        return 1;
    }
    return 0;
}

/* A request from a client, or an item of a batch: the same checks but two. An item has been let in
 * with its batch (no caller check of its own), and the built-in routes are for clients only (an item
 * naming one finds no route). */
static void dispatch(ls_req_t *r)
{
    const ls_daemon_t *d = r->daemon;
    int item = r->item != NULL;
    h2o_iovec_t path;

    if (target_or_reply(r, &path) != 0)
        return;
    if (!item && builtin_route(r, path))
        return;
    if (route_or_reply(r, path) != 0 || (!item && caller_or_reply(r) != 0))
        return;
    if (body_size_or_reply(r) != 0)
        return;
    /* A daemon that authenticates its callers itself (the BFF) takes the actor from that, never
     * from the caller's headers. */
    if (d->authenticate == NULL && actor_or_reply(r) != 0)
        return;
    if (deadline_or_reply(r) != 0)
        return;
    ((ls_handler_t)r->match.route->handler)(r);
}

void ls_front_serve_item(ls_req_t *r)
{
    set_request_id(r);
    set_trace(r);
    dispatch(r);
}

/* ---- h2o's own answers ---- */

/*
 * h2o answers some requests itself, in text/plain, before any handler sees them: a body over the
 * entity limit (413), broken framing (400: Content-Length, Transfer-Encoding, chunks), an Expect
 * other than 100-continue (417), and a request no handler took (404). Every answer passes through
 * this filter, which leaves ours alone (one comparison) and rewrites those as problem+json, with
 * h2o's sentence as the detail.
 */
typedef struct {
    h2o_filter_t super;
    const ls_daemon_t *daemon;
} problem_filter_t;

typedef struct {
    h2o_ostream_t super;
    const ls_daemon_t *daemon;
    int sent;
} problem_ostream_t;

#define PROBLEM_CT "application/problem+json"

static void problem_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                         h2o_send_state_t state)
{
    problem_ostream_t *o = (problem_ostream_t *)self;
    if (o->sent) /* the document went out with the first call; h2o's later pieces are dropped */
        return h2o_ostream_send_next(self, req, NULL, 0, state);
    o->sent = 1;

    char text[160], detail[200];
    size_t tl = 0;
    for (size_t i = 0; i < bufcnt; i++) {
        size_t n = bufs[i].len < sizeof(text) - 1 - tl ? bufs[i].len : sizeof(text) - 1 - tl;
        memcpy(text + tl, bufs[i].base, n);
        tl += n;
    }
    text[tl] = '\0';
    if (req->res.status == 413)
        snprintf(detail, sizeof(detail), "request body over %lld bytes", o->daemon->common->max_body_bytes);
    else
        snprintf(detail, sizeof(detail), "%s", tl > 0 ? text : req->res.reason);
    json_object *doc = ls_problem_new(req->res.status, detail);
    size_t len;
    const char *json = json_object_to_json_string_length(doc, JSON_C_TO_STRING_PLAIN, &len);
    h2o_iovec_t body = h2o_strdup(&req->pool, json, len);
    json_object_put(doc);

    /* The headers go out with the first piece sent on, so they can still change here. */
    req->res.content_length = body.len;
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct >= 0)
        req->res.headers.entries[ct].value = h2o_iovec_init(H2O_STRLIT(PROBLEM_CT));
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT(PROBLEM_CT));
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
        h2o_ostream_send_next(self, req, NULL, 0, state);
    else
        h2o_ostream_send_next(self, req, &body, 1, state);
}

static void problem_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    if (req->res.status >= 400) {
        ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
        if (ct < 0 || !h2o_memis(req->res.headers.entries[ct].value.base,
                                 req->res.headers.entries[ct].value.len, H2O_STRLIT(PROBLEM_CT))) {
            problem_ostream_t *o = (problem_ostream_t *)h2o_add_ostream(req, sizeof(*o), slot);
            o->super.do_send = problem_send;
            o->daemon = ((problem_filter_t *)self)->daemon;
            o->sent = 0;
            slot = &o->super.next;
        }
    }
    h2o_setup_next_ostream(req, slot);
}

static void add_problem_filter(h2o_pathconf_t *pathconf, const ls_daemon_t *d)
{
    problem_filter_t *f = (problem_filter_t *)h2o_create_filter(pathconf, sizeof(*f));
    f->super.on_setup_ostream = problem_setup;
    f->daemon = d;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    front_handler_t *fh = (front_handler_t *)self;
    ls_worker_t *w = (ls_worker_t *)((char *)req->conn->ctx - offsetof(ls_worker_t, ctx));
    if (w->closed) { /* shutting down, past its clients (worker.c): the caller retries elsewhere */
        req->http1_is_persistent = 0;
        h2o_send_error_503(req, "Service Unavailable", "the daemon is stopping", 0);
        return 0;
    }
    ls_req_t *r = ls_req_new(req, w, fh->daemon);
    if (r == NULL)
        return -1;
    set_request_id(r);
    set_trace(r);
    dispatch(r);
    ls_req_unref(r);
    return 0;
}

void ls_front_init(h2o_globalconf_t *conf, const ls_daemon_t *d)
{
    h2o_config_init(conf);
    conf->server_name = h2o_iovec_init(d->name, strlen(d->name));
    /* h2o holds a body in memory until it is whole: one byte over the limit is all it takes in, so
     * that a body of MAX_BODY_BYTES + 1 reaches the front door's check and a larger one is refused
     * by h2o (filtered into problem+json) as soon as its Content-Length is read. */
    conf->max_request_entity_size = (size_t)d->common->max_body_bytes + 1;
    h2o_hostconf_t *host = h2o_config_register_host(conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    /* h2o's answers before routing use the host's fallback path; the others, the one path. */
    add_problem_filter(&host->fallback_path, d);
    add_problem_filter(pathconf, d);
    front_handler_t *fh = (front_handler_t *)h2o_create_handler(pathconf, sizeof(*fh));
    fh->super.on_req = on_req;
    fh->daemon = d;
}
