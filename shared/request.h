/*
 * request: one HTTP request as a handler sees it — its memory, its input, its reply.
 *
 * Lifetime: a handler receives an ls_req_t and must eventually answer exactly once with one of the
 * ls_reply_* functions — directly, or from a callback of work it started (calls.h). The ls_req_t
 * stays valid until the reply is sent *and* every callback started through ls_req_* has run, even
 * if the client disconnects meanwhile (then r->h2o is NULL and replies are dropped): it counts one
 * reference for the h2o request (until h2o disposes its pool) and one per pending callback. Memory
 * from ls_req_alloc() lives as long as the ls_req_t.
 *
 * An item of an internal batch (batch.h) is an ls_req_t too, with no h2o request: its input is what the
 * item names, and its reply goes to the batch instead of a client; handlers cannot tell the two apart.
 *
 * Replies: each ls_reply_* does nothing when the request was already answered or the client is gone.
 * The first reply sets r->status, writes the request's access log line (method, path, status,
 * duration_ms, span_id, parent_span_id; warn for 5xx), counts it in ls_http_requests_total and
 * ls_http_request_duration_seconds (metrics.h), and echoes X-Request-Id and X-Trace-Id.
 * Problems are application/problem+json.
 *
 * Logs: pass &r->log to ls_log_begin (log.h), so the line carries the request id and trace id.
 */
#ifndef LS_REQUEST_H
#define LS_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "body.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "router.h"
#include "trace.h"
#include "vocab.h" /* ls_role_t */

#define LS_REQUEST_ID_MAX 64

typedef struct ls_worker ls_worker_t;         /* worker.h */
typedef struct ls_batch_item ls_batch_item_t; /* batch.h */
typedef struct ls_daemon ls_daemon_t;         /* daemon.h */
typedef struct ls_req ls_req_t;

struct ls_req {
    h2o_req_t *h2o; /* NULL once the client has gone, and for an item of a batch */
    /* The request as it arrived, for every reader of its input: the method, the target as sent (the
     * escaped path and its query; request memory) with query_at the index of its '?' (SIZE_MAX: none),
     * and the headers (NULL once the client has gone). */
    h2o_iovec_t method, target;
    size_t query_at;
    const h2o_headers_t *headers;
    /* An item of a batch (batch.h): where its reply goes (NULL once the batch has answered), and its
     * headers, made from the item. NULL for a request from a client. */
    ls_batch_item_t *item;
    h2o_headers_t item_headers;
    ls_worker_t *worker;
    const ls_daemon_t *daemon;
    ls_route_match_t match;
    char request_id[LS_REQUEST_ID_MAX + 1];
    ls_trace_t trace;         /* traceparent: the trace, this request's span, its caller's (trace.h) */
    ls_log_ctx_t log;         /* {request_id, trace.trace_id}: the context of the request's log lines */
    int64_t actor;            /* X-Actor-Telegram-Id, 0 when absent */
    ls_role_t role;           /* X-Actor-Role, LS_ROLE_NONE when absent */
    uint64_t started;         /* ls_now_ms() at arrival */
    uint64_t deadline;        /* ls_now_ms() time by which the answer is due */
    int status;               /* status replied, 0 before */
    int refs;                 /* the h2o request (until its pool is disposed) + each pending callback */
    json_object *body;        /* set by ls_req_body_or_reply; released with the request */
    void *state;              /* the handler's own, e.g. from ls_req_alloc() */
    ls_metrics_req_t metrics; /* route slot (set by the front door), method, arrival */
    h2o_mem_pool_t pool;
};

void *ls_req_alloc(ls_req_t *r, size_t size);
char *ls_req_strdup(ls_req_t *r, const char *s, size_t len);
void *ls_req_config(ls_req_t *r); /* the daemon's settings struct */

/* Path parameters, already validated by the router. */
int64_t ls_req_param_id(ls_req_t *r, const char *name);
const char *ls_req_param_str(ls_req_t *r, const char *name); /* NUL-terminated, request memory */

/* The traceparent r's own calls send (its trace, its span as their parent), in request memory:
 * for what carries it on later, such as an outbox row. */
const char *ls_req_traceparent(ls_req_t *r);

/* r->actor as decimal text in request memory, or NULL when the request names no actor. */
const char *ls_req_actor_text(ls_req_t *r);

/* Parses the body as a JSON object and validates it; on failure answers 400 and returns NULL.
 * The object belongs to the request (freed with it). */
json_object *ls_req_body_or_reply(ls_req_t *r, const ls_json_field_t *fields, size_t n);
/* The same for a body that may be left out: an empty body counts as {} (validated like one). */
json_object *ls_req_optional_body_or_reply(ls_req_t *r, const ls_json_field_t *fields, size_t n);
/* A request header's value (name in lowercase) as a NUL-terminated copy in request memory, or NULL. */
const char *ls_req_header(ls_req_t *r, const char *name);
/* The same without copying (len bytes of name): 1 and *out, valid while the request's input is, or 0
 * when absent or the client has gone. */
int ls_req_header_ref(ls_req_t *r, const char *name, size_t len, h2o_iovec_t *out);
/* The body as received: {NULL, 0} when there is none (an item of a batch has none) or the client has
 * gone. */
h2o_iovec_t ls_req_entity(ls_req_t *r);
/* Answers 400 and returns -1 when the request names no actor. */
int ls_req_actor_or_reply(ls_req_t *r);
/* 1 when the request names an actor who is `id` or an admin. */
int ls_req_actor_is_self_or_admin(ls_req_t *r, int64_t id);

/* Replies. Each does nothing if the request was already answered or the client is gone. */
void ls_reply_json(ls_req_t *r, int status, json_object *obj); /* takes the reference */
void ls_reply_raw(ls_req_t *r, int status, const char *content_type, const char *body, size_t len);
/* ls_reply_raw without copying the body, which must stay valid until the workers stop (memory held
 * for the process's life, such as the BFF's static files). A 304 sends no body and no Content-Length. */
void ls_reply_unowned(ls_req_t *r, int status, const char *content_type, const char *body, size_t len);
void ls_reply_problem(ls_req_t *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same with the detail as it is (no format, no length limit). */
void ls_reply_problem_str(ls_req_t *r, int status, const char *detail);
void ls_reply_empty(ls_req_t *r, int status);

/* ---- for the runner's own modules (front.c, calls.c), not for handlers ---- */

/* A request arriving on worker w: counted in the worker's in-flight requests, released when h2o
 * disposes req's pool and the caller's reference (the one returned) is dropped. NULL when out of
 * memory. */
ls_req_t *ls_req_new(h2o_req_t *req, ls_worker_t *w, const ls_daemon_t *d);
/* An item of a batch on worker w (batch.c): a GET of `target` (copied) whose reply goes to item.
 * References as for ls_req_new: the batch's (instead of the h2o request's) and the caller's. */
ls_req_t *ls_req_new_item(ls_worker_t *w, const ls_daemon_t *d, ls_batch_item_t *item, const char *target,
                          size_t target_len);
/* One more / one fewer reference (a pending callback); the last frees the request. */
static inline void ls_req_ref(ls_req_t *r)
{
    r->refs++;
}
void ls_req_unref(ls_req_t *r);
/* The value of req's header `name` (lowercase, len bytes), without copying: 1, or 0 when absent. */
static inline int ls_h2o_header(h2o_req_t *req, const char *name, size_t len, h2o_iovec_t *out)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    if (i < 0)
        return 0;
    *out = req->headers.entries[i].value;
    return 1;
}

#endif
