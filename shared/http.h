/*
 * http: the internal HTTP client — libcurl multi driven by a worker's event loop.
 *
 * http.c is one module (about 900 lines): curl's sockets and timer on the loop, a call's attempts,
 * retries and deadline, and the request it sends are one call's life, owned by one ls_http_t.
 *
 * One ls_http_t per worker thread. Many requests run concurrently on it; connections are kept
 * alive and reused between requests to the same upstream. An upstream is reached over TCP
 * ("http://host:port") or over a Unix stream socket ("unix:/absolute/path": same HTTP/1.1, with
 * `Host: unix-<hash of the path>`, so that each socket has its own max_host_connections), which is
 * much cheaper between daemons on one host. curl's sockets are watched through
 * h2o_evloop_socket_create() on dup()ed fds and curl's timer through an ls_timer_t, so nothing
 * blocks the loop.
 *
 * Every request:
 *   - carries `Authorization: Bearer <internal_token>`, `X-Request-Id`, `traceparent`, `X-Actor-Telegram-Id`
 *     (when actor > 0), `X-Actor-Role` (when given) and `X-Deadline-Ms` (milliseconds left until the deadline
 * at the moment each attempt is sent), plus `Content-Type: application/json` when it has a body and
 *     `Idempotency-Key` when one is given; no `Accept` header, and never a proxy (the environment's
 *     proxy variables are ignored) — an external client keeps curl's defaults for both;
 *   - ends by its deadline: curl's timeout for each attempt is the time left;
 *   - is retried with exponential backoff and jitter (base retry_base_ms, doubling) after a
 *     transport failure or a 502/503/504 answer, only when idempotent (GET, HEAD, PUT, DELETE, any
 *     method with an idempotency key, or one marked `idempotent`), at most max_attempts attempts in
 *     all, and only if the backoff still ends before the deadline;
 *   - produces one log line when it completes (target, method, path, status, duration_ms,
 *     attempt), at info level for 2xx-4xx and warn otherwise, tagged with its request id and the
 *     trace id of its traceparent (an external client logs them too, and sends neither), and
 *     counts in ls_upstream_calls_total, ls_upstream_call_duration_seconds and
 *     ls_upstream_retries_total under its target (metrics.h).
 *
 * The callback is called exactly once per ls_http_send() that returned 0, never from inside
 * ls_http_send() itself. The response and its body belong to the client and are valid only during
 * the callback. Bodies larger than max_response_bytes fail the request (status 0, LS_HTTP_TOO_LARGE).
 */
#ifndef LS_HTTP_H
#define LS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"

typedef struct ls_http ls_http_t;

typedef struct {
    const char *internal_token; /* required unless external; copied */
    /* A client for a service outside the system (the Telegram Bot API): it sends none of the internal
     * headers — no token, request id, traceparent, actor, deadline or idempotency key — and logs as
     * usual. */
    int external;
    int max_attempts;          /* attempts per request including the first; 0 means 3 */
    int retry_base_ms;         /* first backoff; 0 means 25 */
    size_t max_response_bytes; /* 0 means 8 MiB */
    int max_host_connections;  /* per upstream host; 0 means 64 */
} ls_http_config_t;

typedef enum {
    LS_HTTP_OK = 0,        /* an HTTP answer arrived (any status) */
    LS_HTTP_TIMEOUT,       /* the deadline passed */
    LS_HTTP_CONNECT_ERROR, /* could not connect, or the connection broke */
    LS_HTTP_TOO_LARGE,     /* response body over max_response_bytes */
    LS_HTTP_ERROR,         /* anything else (bad URL, out of memory) */
} ls_http_outcome_t;

typedef struct {
    const char *target;   /* logical upstream name for logs, e.g. "auth" */
    const char *base_url; /* "http://127.0.0.1:8081" or "unix:/run/ls/auth.sock", no trailing slash */
    const char *method;   /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *path;     /* "/users/42?x=1" — already escaped */
    const char *body;     /* may be NULL; copied by ls_http_send */
    size_t body_len;
    const char *request_id;      /* may be NULL */
    const char *traceparent;     /* a valid W3C traceparent (trace.h), sent as it is; NULL: none */
    int64_t actor;               /* X-Actor-Telegram-Id; 0: not sent */
    const char *actor_role;      /* X-Actor-Role: "student", "teacher" or "admin"; NULL: not sent */
    const char *idempotency_key; /* may be NULL */
    int idempotent;              /* retried as a GET is, whatever the method (a POST that only reads) */
    uint64_t deadline;           /* absolute ls_now_ms() time; required */
} ls_http_request_t;

typedef struct {
    ls_http_outcome_t outcome;
    int status;       /* HTTP status, 0 when no answer */
    const char *body; /* NUL-terminated; "" when none */
    size_t body_len;
    const char *content_type; /* may be NULL */
    int attempts;
    uint64_t duration_ms; /* from ls_http_send() to completion, retries included */
    const char *error;    /* human-readable reason when outcome != LS_HTTP_OK, else NULL */
} ls_http_response_t;

typedef void (*ls_http_cb)(void *ud, const ls_http_response_t *resp);

/* Call curl_global_init() once before creating clients on any thread. */
ls_http_t *ls_http_create(ls_loop_t *loop, const ls_http_config_t *config);
/* Aborts what is in flight (their callbacks are called with LS_HTTP_ERROR first), then frees. */
void ls_http_destroy(ls_http_t *http);
/* Returns 0 (cb will be called once) or -1 on invalid arguments/out of memory (cb never called). */
int ls_http_send(ls_http_t *http, const ls_http_request_t *req, ls_http_cb cb, void *ud);
/* Requests currently in flight or waiting for a retry. */
size_t ls_http_inflight(const ls_http_t *http);

#endif
