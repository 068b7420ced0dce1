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
 * the deadline r->deadline are passed on; the http client retries idempotent calls inside it). When
 * every part has finished, or r->deadline has passed, `done` runs once; the parts not finished by
 * then count as failed (504). A part's parsed JSON answer belongs to the fan-out and is released
 * right after `done` returns: take a reference (json_object_get) to keep any of it. Its raw text
 * (keep_raw or pass_through) is request memory.
 */
#ifndef BFF_UPSTREAM_H
#define BFF_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <server.h>

typedef enum {
    BFF_UP_AUTH = 0,
    BFF_UP_TEACHERS,
    BFF_UP_STUDENTS,
    BFF_UP_GROUPS,
    BFF_UP_CALENDAR,
    BFF_UP_NOTIFICATION,
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

#define BFF_FANOUT_MAX_PARTS 8
#define BFF_DETAIL_MAX       160

/* A JSON value found in text by bff_json_scan(): where it is and what it is. */
typedef struct {
    const char *text; /* NULL when there is none */
    size_t len;
    json_type type; /* numbers are json_type_int or json_type_double */
} bff_json_span_t;

/*
 * Checks that text[0..len) is exactly one JSON object, array or string, whitespace around it allowed,
 * without building anything: the cheap way to pass an upstream answer on as text. It accepts only
 * text in json-c's plain form (no whitespace inside, '/' escaped, \u only for control characters,
 * no repeated member names, integers of at most 18 digits, no exponents, nesting at most 12), so that
 * what it accepts, json-c parses and would write back byte for byte. Returns 0 with *whole set, or
 * -1 for anything else (the caller then parses with json-c, which decides). When key is not NULL and
 * the value is an object, *member is its member key, else member->text is NULL.
 */
int bff_json_scan(const char *text, size_t len, const char *key, bff_json_span_t *whole,
                  bff_json_span_t *member);

#define BFF_JSON_MAX_FIELDS 4

/*
 * The members keys[0..nkeys) (nkeys <= BFF_JSON_MAX_FIELDS) of the object text[0..len), under
 * bff_json_scan()'s rules: fields[k] is member keys[k]'s value, its text NULL when the object has
 * none. Returns 0, or -1 (every field cleared) when the text is not one object the scanner accepts.
 */
int bff_json_fields(const char *text, size_t len, const char *const *keys, size_t nkeys,
                    bff_json_span_t *fields);

/* One item of an array found by bff_json_items(). */
typedef struct {
    bff_json_span_t whole;
    bff_json_span_t field[BFF_JSON_MAX_FIELDS]; /* the members asked for; text NULL when absent */
} bff_json_item_t;

/*
 * The items of the array text[0..len) (e.g. a member found by bff_json_scan()), under the scanner's
 * rules, for views that merge, pick or extend items and splice them as text: each item's span and
 * the values of its members keys[0..nkeys) (nkeys <= BFF_JSON_MAX_FIELDS) in items[0..max). Returns
 * the number of items, or -1 when the text is not an array the scanner accepts, an item is not an
 * object, or there are more than max items: the caller then parses with json-c.
 */
long bff_json_items(const char *text, size_t len, const char *const *keys, size_t nkeys,
                    bff_json_item_t *items, size_t max);

/* A found value read as bff_id_of() reads one: an integer's value, else 0 (also when absent). */
int64_t bff_span_id(const bff_json_span_t *v);
/*
 * A found value read as bff_str_of() reads one: a string's characters without the quotes in *s, *len
 * (not NUL-terminated), else "" (also when absent). -1 when the string holds an escape: its text is
 * not its value, and the caller leaves it to json-c.
 */
int bff_span_str(const bff_json_span_t *v, const char **s, size_t *len);

typedef struct bff_fanout bff_fanout_t;

typedef struct {
    bff_fanout_t *fanout;
    bff_upstream_id_t up;
    const char *method;
    const char *path; /* already escaped */
    const char *body; /* may be NULL */
    size_t body_len;
    /*
     * Set by the view before bff_fanout_start() for a part whose 2xx answer it passes on unread: such an
     * answer is kept as text (raw) and checked with bff_json_scan() instead of parsed, and `json` stays
     * NULL when the check passes (raw_json 1: `whole` and `member` say where the value and its member
     * pass_member are). When it fails, the body is parsed as for any part. Error answers are always
     * parsed (for their problem detail).
     */
    int pass_through;
    const char *pass_member; /* NULL: only the whole answer is wanted */
    /* The outcome, valid in `done`: */
    int finished;      /* an answer or a failure was recorded */
    int ok;            /* HTTP 2xx */
    int unavailable;   /* transport error, timeout, 5xx, breaker or limit: the service is not usable */
    int status;        /* HTTP status; for failures without an answer 503 (504 for a timeout) */
    json_object *json; /* the parsed body when it is JSON, else NULL */
    const char *raw;   /* the body as received (request memory), "" when none */
    size_t raw_len;
    const char *content_type; /* request memory; NULL when none */
    int raw_json;             /* pass_through and the 2xx body passed bff_json_scan() */
    bff_json_span_t whole, member;
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
/* Starts every part; `done` runs once (possibly before this returns, when every part failed at once). */
void bff_fanout_start(bff_fanout_t *f, bff_fanout_cb done);

/*
 * The part's answer as json-c objects, also for a part the fan-out only checked (raw_json): then it is
 * parsed here and *owned is set to it, for the caller to release; otherwise *owned is NULL and the
 * answer belongs to the fan-out as `json` does. NULL when the answer is not JSON.
 */
json_object *bff_part_json(const bff_part_t *p, json_object **owned);

/* The {"service","status","detail"} entry for a failed part (a new object). */
json_object *bff_part_error(const bff_part_t *p);

#endif
