/*
 * bff: the public gateway (docs/ARCHITECTURE.md §7). Every request under /api/ is authenticated from
 * `Authorization: tma <initData>` (tma.h); handlers then fan out to the services (upstream.h) and
 * merge their answers into the views, or pass a write on to the owning service (proxy.c).
 *
 * Per-request state: the authenticate hook puts a bff_req_t into r->state; it holds the caller as
 * initData names them. Handlers keep their own state in request memory.
 *
 * The files: main.c (settings, route table, start-up), authenticate.c (the caller, from initData,
 * and the rate limits), ratelimit.c (token buckets, the client's address), tma.c (initData's
 * signature), upstream.c (breakers, limits, fan-out), coalesce.c (a fan-out's GETs to one service sent
 * together), json_scan.c (reading the services' answers as text), view.c (what every view uses), the
 * views profile.c, group_view.c and schedule.c, the
 * catalogue (catalogue.c: searching groups and teachers), signin.c, proxy.c (writes and passed-on
 * reads), webhook.c (the bot's webhook, the one public route outside /api/ that authenticates
 * Telegram by a secret instead), static.c (the Mini App's files under /app/, static.h), tma_sign.c
 * (the tma-sign tool).
 */
#ifndef BFF_H
#define BFF_H

#include <stdio.h>
#include <time.h>

#include <metrics.h>
#include <server.h>
#include <text.h>

#include "coalesce.h"
#include "ratelimit.h"
#include "static.h"
#include "tma.h"
#include "upstream.h"

typedef struct {
    ls_daemon_config_t common;
    char *bot_token;
    long long init_data_max_age;
    long long init_data_max_age_write; /* writes (not GET or HEAD); 0: as init_data_max_age */
    long long deadline_ms;
    char *url[BFF_UP_COUNT];
    long long breaker_failures;
    long long breaker_open_ms;
    long long max_inflight;
    long long batch_max; /* UPSTREAM_BATCH_MAX (coalesce.h) */
    /* rate limits (ratelimit.h): tokens a second (0: no limit) and burst */
    long long rate_read_per_s, rate_read_burst;   /* a person's GET and HEAD */
    long long rate_write_per_s, rate_write_burst; /* a person's other requests */
    long long rate_addr_per_s, rate_addr_burst;   /* a client address's, before the signature check */
    char *trusted_proxy;                          /* TRUSTED_PROXY */
    char *web_root;                               /* WEB_ROOT: the Mini App's files (static.h) */
    int dev_signin;                               /* DEV_SIGNIN: /app/dev (static.h) */
    char *webhook_secret;                         /* TELEGRAM_WEBHOOK_SECRET; "": the webhook is off */
    /* derived at start */
    bff_proxies_t proxies;
    unsigned char tma_key[TMA_KEY_BYTES]; /* from bot_token */
    int webhook_on;
    unsigned char webhook_digest[32]; /* BLAKE2b of webhook_secret */
} bff_config_t;

typedef struct {
    tma_user_t caller;
} bff_req_t;

/*
 * authenticate.c: the authenticate hook. In order: the client address's rate limit; the initData
 * (tma.h), at most INIT_DATA_MAX_AGE old for a read (GET, HEAD) and INIT_DATA_MAX_AGE_WRITE for
 * anything else; the person's rate limit for reads or for writes. 429 with Retry-After when a limit
 * refuses (counted in ls_bff_rate_limited_total), 401 for the initData. Then caps r->deadline at
 * BFF_DEADLINE_MS from arrival (the view's one deadline).
 */
int bff_authenticate(ls_req_t *r);

/* The limits' tables of the calling worker thread, made from the settings at its start (exits 1 when
 * out of memory) and freed at its stop: the on_worker_start and on_worker_stop hooks. */
void bff_limits_start(ls_worker_t *w);
void bff_limits_stop(ls_worker_t *w);

/* ---- view.c: what every view uses ---- */

/* Adds the given header to the response that is about to be sent (no-op once the client is gone). */
void bff_add_header(ls_req_t *r, const char *name, const char *value);

/* Answers a problem for a failed upstream part: its status when it answered, else 503/504. */
void bff_reply_upstream_failure(ls_req_t *r, const bff_part_t *p);

/* A time, or the current one, as RFC 3339 UTC ("2026-01-02T03:04:05Z"). */
void bff_format_time(time_t t, char *out, size_t size);
void bff_format_now(char *out, size_t size);

/* Reading the services' answers parsed by json-c (NULL / 0 / "" when absent or of another type). */
json_object *bff_member(json_object *obj, const char *key);
int64_t bff_id_of(json_object *obj, const char *key);
const char *bff_str_of(json_object *obj, const char *key);
json_object *bff_list_of(json_object *answer, const char *key);
ls_role_t bff_role_of(json_object *user);

/* A string found by the scanner, read as bff_str_of() reads one: *s, *len (not NUL-terminated) point
 * into the text when it holds no escape, else into request memory where it is decoded. */
void bff_span_value(ls_req_t *r, const bff_json_span_t *v, const char **s, size_t *len);

/* Views are written as text (ls_text_t, text.h) when they splice parts passed on unread (upstream.h,
 * pass_through) between pieces they write themselves.
 * Ends a view's answer with its "partial" and "errors" members (errors: a json-c array, not taken)
 * and the closing brace, and answers 200 application/json with it, with "x-partial: true" when
 * errors is not empty (counted in ls_bff_partial_answers_total for view, by each entry's service);
 * frees t's buffer either way. */
void bff_text_reply(ls_req_t *r, ls_text_t *t, json_object *errors, ls_metrics_view_t view);

/* ---- view.c: lists without silent caps (README "Views") ---- */

#define BFF_BATCH_MAX 100 /* ids in one batch read (/users?ids=, /groups?ids=), rows in one page */

/* Adds a GET part for each BFF_BATCH_MAX of ids[0..n) (already escaped): `prefix` followed by the ids,
 * comma-separated. The parts go out together, in the fan-out's one round. Returns how many it added
 * (fewer when the fan-out is full: BFF_FANOUT_MAX_PARTS). */
size_t bff_fanout_batches(bff_fanout_t *f, bff_upstream_id_t up, const char *prefix, const char *const *ids,
                          size_t n);

/* The objects of one or more lists (the answers of several batches or pages) by one member of theirs, a
 * number (telegram_id) or a string (a UUID), for lookups in O(log n). Start from {0}; request memory;
 * the objects are borrowed (the lists must outlive the lookups). */
typedef struct {
    int64_t id;      /* the key when it is a number, else 0 */
    const char *str; /* the key when it is a string, else NULL */
    json_object *obj;
} bff_keyed_t;

typedef struct {
    bff_keyed_t *v;
    size_t n, cap;
    int sorted;
} bff_index_t;

/* Adds the objects of list (an array, or NULL: nothing) that have the member key. */
void bff_index_add(ls_req_t *r, bff_index_t *ix, json_object *list, const char *key);
/* bff_index_add() of the list under `list` (e.g. "users") of each of parts[0..n), the batches or pages
 * of one read; returns the first of those parts that has no such list (it failed), or NULL. */
const bff_part_t *bff_index_parts(ls_req_t *r, bff_index_t *ix, const bff_part_t *parts, size_t n,
                                  const char *list, const char *key);
/* The object whose key is id (or s); NULL when there is none. */
json_object *bff_index_id(bff_index_t *ix, int64_t id);
json_object *bff_index_str(bff_index_t *ix, const char *s);

/* A pass_through part's list (bff_part_list) with at most its first `shown` items (shown >= 1; the part
 * read with max_items > shown, and asked for one more than it shows): returns 1 when the list had more
 * and was cut. Adds null and returns 0 when the part has no list. */
int bff_add_list(ls_text_t *t, const bff_part_t *p, size_t shown);

/* Writes ,"truncated":{"<names[i]>":<cut[i]>,…}: how every view says which of its lists it cut at their
 * documented maximum (README "Views"). */
void bff_text_truncated(ls_text_t *t, const char *const *names, const int *cut, size_t n);

/* ---- webhook.c: POST /telegram/webhook, the bot's updates passed on to payment-service ---- */

/* TELEGRAM_WEBHOOK_SECRET when set: BFF_WEBHOOK_SECRET_MIN..MAX of Telegram's secret_token characters. */
#define BFF_WEBHOOK_SECRET_MIN 16
#define BFF_WEBHOOK_SECRET_MAX 256

/* At start: checks c->webhook_secret and derives webhook_on and webhook_digest; -1 with err when it is
 * not a secret Telegram takes (or too short to be one). */
int bff_webhook_configure(bff_config_t *c, char *err, size_t errlen);

/*
 * The handler of the public route (no tma hook): 404 while the webhook is off; 401 unless
 * X-Telegram-Bot-Api-Secret-Token equals the secret (compared in constant time), and then nothing is
 * passed on; 400 unless the body is one JSON object. Then the update goes to payment-service's POST
 * /telegram/updates under BFF_DEADLINE_MS; its 2xx answer is passed on, its 400 as a problem;
 * unreachable 503, too slow 504, anything else 502 (Telegram delivers the update again).
 */
void bff_webhook(ls_req_t *r);

/* Handlers. */
void bff_signin(ls_req_t *r);
void bff_profile(ls_req_t *r);
void bff_group_view(ls_req_t *r);
void bff_schedule(ls_req_t *r);
void bff_catalogue_groups(ls_req_t *r);   /* catalogue.c */
void bff_catalogue_teachers(ls_req_t *r); /* catalogue.c */
void bff_proxy(ls_req_t *r);

/*
 * Who may see a passed-on read whose owner serves anyone (calendar's lesson reads): given the
 * owner's 2xx answer, 1 when the caller may see it. Admins always may; for the others the BFF asks
 * auth-service for the caller's role concurrently with the read.
 */
typedef int (*bff_proxy_allow_fn)(ls_req_t *r, json_object *answer);

/* The write routes (proxy.c) for the route table in main.c: method and public pattern per entry. */
typedef struct {
    const char *method;
    const char *pattern;       /* public, e.g. "/api/teachers/me/languages/{code:str}" */
    bff_upstream_id_t up;      /* owning service */
    const char *upstream_path; /* template: {me} is the caller, {name} a path parameter */
    int needs_role;            /* the owner's rule depends on the caller's role (admins) */
    int pass_query;            /* pass the query string on (list endpoints) */
    bff_proxy_allow_fn allow;  /* NULL: the owner decides alone */
} bff_proxy_route_t;

extern const bff_proxy_route_t bff_proxy_routes[];
extern const size_t bff_nproxy_routes;

/* Every route of the bff (views, writes, then /healthz and /readyz served by the shared server), as
 * "METHOD PATTERN" lines on out — for `bff --routes` and the test that keeps openapi.yaml honest. */
void bff_print_routes(FILE *out);

#endif
