/*
 * request: the request's memory and lifetime, its input (path parameters, headers, body, actor) and
 * its replies with their access log line.
 */
#include "request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "daemon.h"
#include "log.h"
#include "problem.h"
#include "worker.h"

/* ---- lifetime ---- */

void ls_req_unref(ls_req_t *r)
{
    if (--r->refs > 0)
        return;
    if (r->body != NULL)
        json_object_put(r->body);
    h2o_mem_clear_pool(&r->pool);
    r->worker->inflight--;
    free(r);
}

/* h2o disposes the request's pool when the response is done or the client went away. */
static void on_h2o_pool_dispose(void *p)
{
    ls_req_t *r = *(ls_req_t **)p;
    r->h2o = NULL;
    r->headers = NULL;
    ls_req_unref(r);
}

/* What both kinds of request start with; the input and references are the caller's to set. */
static ls_req_t *req_alloc(ls_worker_t *w, const ls_daemon_t *d, const char *method, size_t method_len)
{
    ls_req_t *r = malloc(sizeof(*r));
    if (r == NULL)
        return NULL;
    r->h2o = NULL;
    r->item = NULL;
    r->headers = NULL;
    r->worker = w;
    r->daemon = d;
    r->log.request_id = r->request_id;
    r->log.trace_id = r->trace.trace_id;
    r->actor = 0;
    r->role = LS_ROLE_NONE;
    r->started = ls_now_ms();
    r->deadline = r->started + (uint64_t)d->common->request_timeout_ms;
    r->status = 0;
    r->refs = 2; /* the h2o request (or the batch), and the caller's */
    r->body = NULL;
    r->state = NULL;
    r->match.route = NULL;
    r->match.nparams = 0;
    ls_metrics_request_start(&r->metrics, method, method_len);
    h2o_mem_init_pool(&r->pool);
    w->inflight++;
    return r;
}

/* The target copied into request memory (it outlives the h2o request), its '?' found. */
static void set_target(ls_req_t *r, const char *target, size_t len)
{
    r->target = h2o_iovec_init(ls_req_strdup(r, target, len), len);
    const char *q = memchr(target, '?', len);
    r->query_at = q != NULL ? (size_t)(q - target) : SIZE_MAX;
}

ls_req_t *ls_req_new(h2o_req_t *req, ls_worker_t *w, const ls_daemon_t *d)
{
    ls_req_t *r = req_alloc(w, d, req->method.base, req->method.len);
    if (r == NULL)
        return NULL;
    r->h2o = req;
    r->method = req->method;
    r->headers = &req->headers;
    set_target(r, req->path.base, req->path.len);
    ls_req_t **guard = h2o_mem_alloc_shared(&req->pool, sizeof(*guard), on_h2o_pool_dispose);
    *guard = r;
    return r;
}

ls_req_t *ls_req_new_item(ls_worker_t *w, const ls_daemon_t *d, ls_batch_item_t *item, const char *target,
                          size_t target_len)
{
    ls_req_t *r = req_alloc(w, d, H2O_STRLIT("GET"));
    if (r == NULL)
        return NULL;
    r->item = item;
    r->method = h2o_iovec_init(H2O_STRLIT("GET"));
    memset(&r->item_headers, 0, sizeof(r->item_headers));
    r->headers = &r->item_headers;
    set_target(r, target, target_len);
    return r;
}

void *ls_req_alloc(ls_req_t *r, size_t size)
{
    return h2o_mem_alloc_pool(&r->pool, size);
}

char *ls_req_strdup(ls_req_t *r, const char *s, size_t len)
{
    char *d = h2o_mem_alloc_pool(&r->pool, len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

void *ls_req_config(ls_req_t *r)
{
    return r->daemon->config;
}

/* ---- replies ---- */

static void log_access(ls_req_t *r)
{
    ls_log_line_t l;
    ls_log_level_t level = r->status >= 500 ? LS_LOG_WARN : LS_LOG_INFO;
    if ((r->h2o == NULL && r->item == NULL) || !ls_log_begin(&l, level, &r->log, "request"))
        return;
    ls_log_strn(&l, "method", r->method.base, r->method.len);
    ls_log_strn(&l, "path", r->target.base, r->target.len);
    ls_log_int(&l, "status", r->status);
    ls_log_int(&l, "duration_ms", (int64_t)(ls_now_ms() - r->started));
    ls_log_str(&l, "span_id", r->trace.span_id);
    if (r->trace.parent_id[0] != '\0')
        ls_log_str(&l, "parent_span_id", r->trace.parent_id);
    ls_log_end(&l);
}

/* The first reply's bookkeeping and headers (content_length len; SIZE_MAX: none); the h2o request to
 * send the body on, or NULL when the request was answered already, its client is gone, or it is an
 * item of a batch (its reply, body included, then goes to the batch here). */
static h2o_req_t *reply_begin(ls_req_t *r, int status, const char *content_type, const char *body, size_t len)
{
    if (r->status != 0)
        return NULL;
    r->status = status;
    ls_metrics_request_done(&r->metrics, status);
    log_access(r);
    if (r->item != NULL) {
        ls_batch_item_reply(r->item, status, content_type, body, len == SIZE_MAX ? 0 : len);
        return NULL;
    }
    h2o_req_t *req = r->h2o;
    if (req == NULL)
        return NULL;
    req->res.status = status;
    req->res.reason = ls_status_title(status);
    req->res.content_length = len;
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    size_t rid_len = strlen(r->request_id);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          h2o_strdup(&req->pool, r->request_id, rid_len).base, rid_len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-trace-id"), 0, NULL,
                          h2o_strdup(&req->pool, r->trace.trace_id, LS_TRACE_ID_LEN).base, LS_TRACE_ID_LEN);
    return req;
}

void ls_reply_raw(ls_req_t *r, int status, const char *content_type, const char *body, size_t len)
{
    h2o_req_t *req = reply_begin(r, status, content_type, body, len);
    if (req != NULL)
        h2o_send_inline(req, body, len);
}

void ls_reply_unowned(ls_req_t *r, int status, const char *content_type, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    int no_body = status == 304;
    h2o_req_t *req = reply_begin(r, status, content_type, body, no_body ? SIZE_MAX : len);
    if (req == NULL)
        return;
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
        no_body = 1;
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, no_body ? 0 : 1, H2O_SEND_STATE_FINAL);
}

void ls_reply_json(ls_req_t *r, int status, json_object *obj)
{
    size_t len;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
    ls_reply_raw(r, status, "application/json", s, len);
    json_object_put(obj);
}

void ls_reply_empty(ls_req_t *r, int status)
{
    ls_reply_raw(r, status, NULL, "", 0);
}

void ls_reply_problem_str(ls_req_t *r, int status, const char *detail)
{
    json_object *p = ls_problem_new(status, detail);
    size_t len;
    const char *s = json_object_to_json_string_length(p, JSON_C_TO_STRING_PLAIN, &len);
    ls_reply_raw(r, status, "application/problem+json", s, len);
    json_object_put(p);
}

void ls_reply_problem(ls_req_t *r, int status, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    ls_reply_problem_str(r, status, detail);
}

/* ---- input ---- */

int64_t ls_req_param_id(ls_req_t *r, const char *name)
{
    const ls_route_param_t *p = ls_route_param(&r->match, name);
    return p != NULL ? p->id : 0;
}

const char *ls_req_param_str(ls_req_t *r, const char *name)
{
    const ls_route_param_t *p = ls_route_param(&r->match, name);
    return p != NULL ? ls_req_strdup(r, p->value, p->value_len) : NULL;
}

int ls_req_header_ref(ls_req_t *r, const char *name, size_t len, h2o_iovec_t *out)
{
    ssize_t i = r->headers != NULL ? h2o_find_header_by_str(r->headers, name, len, -1) : -1;
    if (i < 0)
        return 0;
    *out = r->headers->entries[i].value;
    return 1;
}

const char *ls_req_header(ls_req_t *r, const char *name)
{
    h2o_iovec_t v;
    return ls_req_header_ref(r, name, strlen(name), &v) ? ls_req_strdup(r, v.base, v.len) : NULL;
}

h2o_iovec_t ls_req_entity(ls_req_t *r)
{
    return r->h2o != NULL && r->h2o->entity.base != NULL ? r->h2o->entity : h2o_iovec_init(NULL, 0);
}

/* Validates obj against the fields and makes it the request's body; NULL after answering 400. */
static json_object *keep_body(ls_req_t *r, json_object *obj, const ls_json_field_t *fields, size_t n)
{
    char err[256];
    if (ls_json_validate(obj, fields, n, err, sizeof(err)) != 0) {
        json_object_put(obj);
        ls_reply_problem_str(r, 400, err);
        return NULL;
    }
    if (r->body != NULL)
        json_object_put(r->body);
    r->body = obj;
    return obj;
}

json_object *ls_req_body_or_reply(ls_req_t *r, const ls_json_field_t *fields, size_t n)
{
    char err[256];
    if (r->h2o == NULL && r->item == NULL)
        return NULL;
    h2o_iovec_t e = ls_req_entity(r);
    json_object *obj = ls_json_parse_object(e.base, e.len, err, sizeof(err));
    if (obj == NULL) {
        ls_reply_problem_str(r, 400, err);
        return NULL;
    }
    return keep_body(r, obj, fields, n);
}

json_object *ls_req_optional_body_or_reply(ls_req_t *r, const ls_json_field_t *fields, size_t n)
{
    if (r->h2o == NULL && r->item == NULL)
        return NULL;
    if (ls_req_entity(r).len > 0)
        return ls_req_body_or_reply(r, fields, n);
    return keep_body(r, json_object_new_object(), fields, n);
}

const char *ls_req_traceparent(ls_req_t *r)
{
    char *out = ls_req_alloc(r, LS_TRACEPARENT_LEN + 1);
    ls_trace_format(&r->trace, out);
    return out;
}

const char *ls_req_actor_text(ls_req_t *r)
{
    if (r->actor <= 0)
        return NULL;
    char *out = ls_req_alloc(r, 24);
    snprintf(out, 24, "%lld", (long long)r->actor);
    return out;
}

int ls_req_actor_is_self_or_admin(ls_req_t *r, int64_t id)
{
    return r->actor > 0 && (r->actor == id || r->role == LS_ROLE_ADMIN);
}

int ls_req_actor_or_reply(ls_req_t *r)
{
    if (r->actor > 0)
        return 0;
    ls_reply_problem_str(r, 400, "header X-Actor-Telegram-Id is required");
    return -1;
}
