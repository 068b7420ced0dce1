/*
 * fake_upstream: an in-process HTTP/1.1 server for tests of HTTP clients.
 *
 * It listens on 127.0.0.1 on a free port and serves every connection on its own thread (blocking
 * I/O), with keep-alive and Content-Length request bodies (no chunked requests). It counts the
 * connections it accepted, the requests it answered and the largest number of requests being
 * handled at the same moment, and keeps the headers of the last request.
 *
 * Built-in paths (a handler installed with lst_upstream_set_handler() is asked first):
 *   /echo                          200 {"method","path","query","body","headers":{lower-case name: value}}
 *   /sleep?ms=N                    200 {"slept":N} after N ms (N <= 60000; cut short by stop)
 *   /fail?key=K&times=N&status=S   S (default 503) for the first N requests carrying key K, then 200
 *                                  {"key":K,"count":C}; lst_upstream_fail_count() reads C
 *   /drop                          closes the connection without answering
 *   /big?bytes=N[&nolen=1]         200 with N bytes of 'x' (N <= 64 MiB), text/plain; with nolen the
 *                                  length is not announced and the connection closes after the body
 *   anything else                  404
 *
 * Threads: handlers run on connection threads, possibly several at once; everything else may be
 * called from any thread. lst_upstream_stop() wakes every blocked connection and joins every
 * thread before it returns.
 */
#ifndef LST_FAKE_UPSTREAM_H
#define LST_FAKE_UPSTREAM_H

#include <stddef.h>

typedef struct lst_upstream lst_upstream_t;

#define LST_UPSTREAM_MAX_HEADERS 64

/* A parsed request; valid only during the handler call. Header names are lower-cased. */
typedef struct {
    const char *method;
    const char *path;  /* without the query string */
    const char *query; /* text after '?', "" when none */
    const char *body;  /* NUL-terminated, "" when none */
    size_t body_len;
    size_t header_count;
    struct {
        const char *name;
        const char *value;
    } headers[LST_UPSTREAM_MAX_HEADERS];
} lst_upstream_req_t;

/* What a handler answers; the server starts it as 200, application/json, empty body. */
typedef struct {
    int status;
    char content_type[128];
    char extra_headers[1024]; /* raw "Name: value\r\n" lines added to the answer */
    char *body;               /* malloc'ed; the server frees it (use lst_upstream_respond*) */
    size_t body_len;
    int drop;      /* close the connection without answering */
    int close;     /* answer, then close the connection */
    int no_length; /* send no Content-Length: the body ends when the connection closes */
} lst_upstream_resp_t;

/*
 * A test's own responder. Return nonzero when it filled resp, 0 to fall through to the built-in
 * paths. It runs on a connection thread; ud must be safe to use from there.
 */
typedef int (*lst_upstream_handler_t)(void *ud, lst_upstream_t *u, const lst_upstream_req_t *req,
                                      lst_upstream_resp_t *resp);

/* Starts the server; returns NULL (after printing why) if it could not. */
lst_upstream_t *lst_upstream_start(void);
/* Stops accepting, breaks every connection, joins all threads and frees. NULL is ignored. */
void lst_upstream_stop(lst_upstream_t *u);

int lst_upstream_port(const lst_upstream_t *u);
/* "http://127.0.0.1:PORT", no trailing slash; valid until stop. */
const char *lst_upstream_url(const lst_upstream_t *u);

/* Installs (or with NULL removes) the responder; takes effect for the next request. */
void lst_upstream_set_handler(lst_upstream_t *u, lst_upstream_handler_t handler, void *ud);

typedef struct {
    long connections;   /* accepted */
    long requests;      /* fully read (answered or dropped) */
    long in_flight;     /* being handled now */
    long max_in_flight; /* most handled at once since start or the last reset */
} lst_upstream_stats_t;

void lst_upstream_stats(lst_upstream_t *u, lst_upstream_stats_t *out);
/* Zeroes the counters (max_in_flight restarts from the current in_flight) and the /fail counts. */
void lst_upstream_reset_stats(lst_upstream_t *u);

/* How many requests /fail has seen with this key. */
int lst_upstream_fail_count(lst_upstream_t *u, const char *key);

/*
 * Copies the value of header name (case-insensitive) of the last request read into out (always
 * NUL-terminated, truncated to size). Returns 0, or -1 when that request had no such header (or no
 * request came yet).
 */
int lst_upstream_last_header(lst_upstream_t *u, const char *name, char *out, size_t size);

/* Helpers for handlers. */
/* Sleeps up to ms; returns early with -1 when the server is stopping, else 0. */
int lst_upstream_sleep_ms(lst_upstream_t *u, int ms);
/* Sets status, content type (NULL: application/json) and a copy of body (NULL: empty). */
void lst_upstream_respond(lst_upstream_resp_t *resp, int status, const char *content_type, const char *body,
                          size_t body_len);
/* Like lst_upstream_respond with a printf-formatted JSON body. */
void lst_upstream_respondf(lst_upstream_resp_t *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The value of header name in req (case-insensitive), or NULL. */
const char *lst_upstream_req_header(const lst_upstream_req_t *req, const char *name);
/* Copies the value of query parameter name (not URL-decoded) into out; 0, or -1 when absent. */
int lst_upstream_query_param(const lst_upstream_req_t *req, const char *name, char *out, size_t size);

#endif
