/*
 * upstream: the BFF's calls to the services — a circuit breaker and a concurrency limit per
 * service and worker thread, and a fan-out that runs several calls of one request concurrently.
 *
 * Breaker (per service, per worker thread; no sharing between threads): closed until
 * `failures` consecutive calls fail (transport error, timeout or a 5xx answer); then open for
 * `open_ms`, during which calls fail at once (503 "circuit open") without touching the network;
 * after that one call is let through as a probe (half-open) while the others still fail at once;
 * its success closes the breaker, its failure opens it again. Calls over `max_inflight` in flight to
 * one service fail at once too (503).
 *
 * Fan-out: bff_fanout_new() in request memory, bff_fanout_add() each part, bff_fanout_start(). The
 * parts go out concurrently through ls_req_http_ex() (request id, actor, X-Actor-Role from r->role and
 * the deadline r->deadline are passed on; the http client retries idempotent calls inside it), a GET
 * without a body through the coalescer (coalesce.h), which sends the GETs started to one service in
 * one loop iteration together and answers each part as if its call had gone alone. When
 * every part has finished, or r->deadline has passed, `done` runs once; the parts not finished by
 * then count as failed (504). A part's parsed JSON answer belongs to the fan-out and is released
 * right after `done` returns: take a reference (json_object_get) to keep any of it. Its raw text
 * (keep_raw or pass_through) and what the scanner found in it are request memory.
 *
 * A part a view passes on as text (pass_through) has one path: its 2xx answer is checked and read by
 * the scanner (json_scan.h) in one pass and never parsed. An answer the scanner refuses (not JSON, or
 * not in json-c's plain form, or a list longer than asked for) makes the part fail (502, "unavailable")
 * as an upstream error does: every service writes that form (json_scan.h), so such an answer comes
 * from something that is not one of the school's services, and a view cannot pass on what it cannot
 * check. Each view already answers a failed part (a partial answer, or 502 for its primary record).
 */
#ifndef BFF_UPSTREAM_H
#define BFF_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <server.h>

#include "json_scan.h"

typedef enum {
    BFF_UP_AUTH = 0,
    BFF_UP_TEACHERS,
    BFF_UP_STUDENTS,
    BFF_UP_GROUPS,
    BFF_UP_CALENDAR,
    BFF_UP_NOTIFICATION,
    BFF_UP_PAYMENT,
    BFF_UP_COUNT
} bff_upstream_id_t;

typedef struct {
    const char *base_url[BFF_UP_COUNT]; /* not copied: must outlive the process's workers */
    int breaker_failures;
    uint64_t breaker_open_ms;
    size_t max_inflight;
} bff_upstream_config_t;

/* Once, before the workers start. */
void bff_upstream_configure(const bff_upstream_config_t *config);
/* "auth", "teachers", … (the service name in logs and in a view's errors entries). */
const char *bff_upstream_name(bff_upstream_id_t up);
const char *bff_upstream_url(bff_upstream_id_t up);

/*
 * Asks the calling thread's breaker and limit for one call to up. Returns 0 (then exactly one
 * bff_upstream_release() must follow when the call ends) or -1 with *why ("circuit open", "too
 * many concurrent requests") when the call must fail at once.
 */
int bff_upstream_acquire(bff_upstream_id_t up, const char **why);
/* Records how the call ended. */
void bff_upstream_release(bff_upstream_id_t up, const ls_http_response_t *resp);

/* For tests and logs: 0 closed, 1 open, 2 half-open. */
int bff_upstream_state(bff_upstream_id_t up);

#define BFF_FANOUT_MAX_PARTS 16 /* the most a view asks at once: a 500-member group's second round, 12 */
#define BFF_DETAIL_MAX       160

typedef struct bff_fanout bff_fanout_t;

typedef struct {
    bff_fanout_t *fanout;
    bff_upstream_id_t up;
    const char *method;
    const char *path; /* already escaped */
    const char *body; /* may be NULL */
    size_t body_len;
    const char *idempotency_key; /* sent as Idempotency-Key when set (request memory) */
    /*
     * Set by the view before bff_fanout_start() for a part whose 2xx answer it passes on as text: such
     * an answer is kept as text (raw) and read with bff_json_read() instead of parsed (`json` stays
     * NULL): when the part is ok, `whole` is the answer, field[k] its member pass_keys[k], and with
     * max_items > 0 the list (pass_keys[0]'s array, or the answer when it is an array) is read item by
     * item into items[0..nitems) with their members item_keys (nitems -1: no list). Error answers are
     * parsed as for any part (for their problem detail).
     */
    int pass_through;
    const char *pass_keys[BFF_JSON_MAX_FIELDS]; /* members wanted, NULL after the last */
    const char *const *item_keys;
    size_t nitem_keys;
    size_t max_items;
    /* The outcome, valid in `done`: */
    int finished;      /* an answer or a failure was recorded */
    int ok;            /* HTTP 2xx */
    int unavailable;   /* transport error, timeout, 5xx, breaker or limit: the service is not usable */
    int status;        /* HTTP status; for failures without an answer 503 (504 for a timeout) */
    json_object *json; /* the parsed body when it is JSON, else NULL */
    const char *raw;   /* the body as received (request memory), "" when none */
    size_t raw_len;
    const char *content_type;                          /* request memory; NULL when none */
    bff_json_span_t whole, field[BFF_JSON_MAX_FIELDS]; /* pass_through and ok */
    bff_json_item_t *items;                            /* request memory */
    long nitems;
    char detail[BFF_DETAIL_MAX]; /* for failures: why (the upstream problem's detail when it sent one) */
} bff_part_t;

typedef void (*bff_fanout_cb)(ls_req_t *r, bff_fanout_t *f);

struct bff_fanout {
    ls_req_t *r;
    bff_part_t parts[BFF_FANOUT_MAX_PARTS];
    size_t nparts;
    size_t pending;
    int done;
    int keep_raw; /* also copy each body into request memory (pass-through) */
    bff_fanout_cb cb;
    void *ud;
    ls_timer_t timer;
};

bff_fanout_t *bff_fanout_new(ls_req_t *r, void *ud);
/* Returns the part (to read its outcome in `done`), or NULL when the fan-out is full. */
bff_part_t *bff_fanout_add(bff_fanout_t *f, bff_upstream_id_t up, const char *method, const char *path,
                           const char *body, size_t body_len);
/* bff_fanout_add() of a GET whose path (already escaped) is formatted into request memory. */
bff_part_t *bff_fanout_getf(bff_fanout_t *f, bff_upstream_id_t up, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Starts every part; `done` runs once (possibly before this returns, when every part failed at once). */
void bff_fanout_start(bff_fanout_t *f, bff_fanout_cb done);

/* A pass_through part's list as a view shows it: its member pass_keys[0], or the answer itself, when
 * that is an array; NULL when the part failed or there is no array. */
const bff_json_span_t *bff_part_list(const bff_part_t *p);

/* The {"service","status","detail"} entry for a failed part (a new object). */
json_object *bff_part_error(const bff_part_t *p);

#endif
