/*
 * server: the daemon skeleton every service and the BFF run on.
 *
 * ls_daemon_main() reads the daemon's settings (exits 2 with a message on a bad one; `--help`
 * prints them), applies its migrations, then starts THREADS workers. Each worker has its own
 * event loop (ls_loop_t), its own listening socket bound with SO_REUSEPORT, its share of the
 * PostgreSQL pool and, when the daemon asks for one, its own HTTP client. Workers share nothing
 * mutable. SIGTERM/SIGINT: every worker stops accepting, lets in-flight requests finish (at most
 * LS_SHUTDOWN_GRACE_MS), and the process exits 0.
 *
 * Every request passes through the same front door before its handler runs:
 *   - `X-Request-Id` is taken when well-formed (1..64 of [A-Za-z0-9._-]) or generated, and echoed;
 *   - routing by the daemon's route table: 404 / 405 (with Allow) / 400 for a bad path parameter;
 *   - `Authorization: Bearer <INTERNAL_TOKEN>` checked in constant time (401) unless the route is
 *     LS_ROUTE_PUBLIC;
 *   - bodies over MAX_BODY_BYTES: 413;
 *   - `X-Actor-Telegram-Id` parsed (400 when present and not an id), `X-Actor-Role` likewise
 *     (student|teacher|admin);
 *   - `X-Deadline-Ms` turns into r->deadline (capped by REQUEST_TIMEOUT_MS); 503 when already 0;
 *   - one access log line per request at the end (method, path, status, duration_ms).
 * Built-in routes: GET /healthz (alive) and GET /readyz (a database round trip within 1 s
 * answers 200; otherwise 503). All errors are application/problem+json.
 *
 * Request lifetime: a handler receives an ls_req_t and must eventually answer exactly once with one
 * of the ls_reply_* functions — directly, or from a callback of work it started. The ls_req_t stays
 * valid until the reply is sent *and* every callback started through ls_req_* has run, even if the
 * client disconnects meanwhile (then r->h2o is NULL and replies are dropped). Memory from
 * ls_req_alloc() lives as long as the ls_req_t.
 */
#ifndef LS_SERVER_H
#define LS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config.h"
#include "http.h"
#include "body.h"
#include "problem.h" /* the body of every error answer */
#include "scalar.h"  /* ids in paths, headers and queries */
#include "loop.h"
#include "pg.h"
#include "router.h"

#define LS_REQUEST_ID_MAX    64
#define LS_SHUTDOWN_GRACE_MS 5000

typedef struct ls_worker ls_worker_t;
typedef struct ls_req ls_req_t;

/* The actor's role as the caller (the BFF, which read it from auth-service) states it in
 * X-Actor-Role; services trust it as they trust X-Actor-Telegram-Id, behind the internal token. */
typedef enum { LS_ROLE_NONE = 0, LS_ROLE_STUDENT, LS_ROLE_TEACHER, LS_ROLE_ADMIN } ls_role_t;
/* "student", "teacher", "admin" ("" for LS_ROLE_NONE). */
const char *ls_role_name(ls_role_t role);
typedef void (*ls_handler_t)(ls_req_t *r);

/* Route flags. */
#define LS_ROUTE_PUBLIC 1u /* no internal token required */

#define LS_ROUTE(method, pattern, handler, flags)                                                            \
    {                                                                                                        \
        (method), (pattern), (void *)(handler), (flags)                                                      \
    }

/* Settings every daemon has (DESIGN.md §7). Embed as a member of the daemon's settings struct and
 * put LS_DAEMON_CONFIG_FIELDS(struct_type, member, port, migrations) into its table. */
typedef struct {
    ls_cfg_listen_t listen;
    long long threads;
    char *database_url;
    long long pg_pool_size;
    char *internal_token;
    int log_level;
    long long max_body_bytes;
    long long request_timeout_ms;
    char *migrations_dir;
} ls_daemon_config_t;

// clang-format off
#define LS_DAEMON_CONFIG_FIELDS(type, m, default_listen, default_migrations)                                  \
    {"LISTEN", LS_CFG_LISTEN, default_listen, 0, 0, offsetof(type, m.listen),                                \
     "address to listen on"},                                                                                 \
    {"THREADS", LS_CFG_INT, "0", 0, 64, offsetof(type, m.threads),                                            \
     "worker threads, each with its own event loop (0: one per core)"},                                      \
    {"DATABASE_URL", LS_CFG_SECRET, NULL, 1, 4096, offsetof(type, m.database_url),                           \
     "libpq connection string of this service's own database"},                                              \
    {"PG_POOL_SIZE", LS_CFG_INT, "5", 1, 256, offsetof(type, m.pg_pool_size),                                \
     "PostgreSQL connections in all, shared out across threads"},                                            \
    {"INTERNAL_TOKEN", LS_CFG_SECRET, NULL, 16, 512, offsetof(type, m.internal_token),                       \
     "bearer token every internal call must carry"},                                                         \
    {"LOG_LEVEL", LS_CFG_LEVEL, "info", 0, 0, offsetof(type, m.log_level),                                   \
     "debug, info, warn or error"},                                                                          \
    {"MAX_BODY_BYTES", LS_CFG_INT, "65536", 1024, 16777216, offsetof(type, m.max_body_bytes),                \
     "largest request body accepted (413 above)"},                                                           \
    {"REQUEST_TIMEOUT_MS", LS_CFG_INT, "5000", 10, 600000, offsetof(type, m.request_timeout_ms),             \
     "longest a request may take when the caller sends no X-Deadline-Ms"},                                   \
    {"MIGRATIONS_DIR", LS_CFG_STR, default_migrations, 1, 4096, offsetof(type, m.migrations_dir),            \
     "folder of this service's NNN_name.sql migrations"}

/* The same without DATABASE_URL, PG_POOL_SIZE and MIGRATIONS_DIR, for a daemon with no_database. */
#define LS_DAEMON_CONFIG_FIELDS_NO_DB(type, m, default_listen)                                                \
    {"LISTEN", LS_CFG_LISTEN, default_listen, 0, 0, offsetof(type, m.listen),                                \
     "address to listen on"},                                                                                 \
    {"THREADS", LS_CFG_INT, "0", 0, 64, offsetof(type, m.threads),                                            \
     "worker threads, each with its own event loop (0: one per core)"},                                      \
    {"INTERNAL_TOKEN", LS_CFG_SECRET, NULL, 16, 512, offsetof(type, m.internal_token),                       \
     "bearer token every internal call must carry"},                                                         \
    {"LOG_LEVEL", LS_CFG_LEVEL, "info", 0, 0, offsetof(type, m.log_level),                                   \
     "debug, info, warn or error"},                                                                          \
    {"MAX_BODY_BYTES", LS_CFG_INT, "65536", 1024, 16777216, offsetof(type, m.max_body_bytes),                \
     "largest request body accepted (413 above)"},                                                           \
    {"REQUEST_TIMEOUT_MS", LS_CFG_INT, "5000", 10, 600000, offsetof(type, m.request_timeout_ms),             \
     "longest a request may take when the caller sends no X-Deadline-Ms"}
// clang-format on

/* One receiver of the daemon's outbox rows (outbox.h): the name the rows give as their target, and
 * the setting that holds its base URL once the settings are read (e.g. &config.students_url of an
 * LS_CFG_URL field). */
typedef struct {
    const char *name;
    char *const *base_url;
} ls_daemon_outbox_target_t;

/* The daemon's outbox poller (outbox.h), which the runner starts on every worker once its pool and
 * HTTP client exist (just before on_worker_start) and stops before it tears them down (just after
 * on_worker_stop). The daemon must set uses_http. */
typedef struct {
    const ls_daemon_outbox_target_t *targets; /* NULL: no poller */
    size_t ntargets;                          /* at most LS_OUTBOX_MAX_TARGETS */
    const long long *poll_ms;                 /* e.g. &config.outbox_poll_ms (LS_CFG_INT); NULL: default */
} ls_daemon_outbox_t;

typedef struct {
    const char *name;    /* "auth-service": logs, application_name, --help */
    const char *summary; /* one line for --help */
    const ls_cfg_field_t *config_fields;
    size_t nconfig_fields;
    void *config;               /* the daemon's settings struct, filled by ls_daemon_main */
    ls_daemon_config_t *common; /* its embedded common settings */
    const ls_route_t *routes;
    size_t nroutes;
    const ls_pg_stmt_t *stmts;
    size_t nstmts;
    int uses_http; /* give each worker an HTTP client */
    /* No database of its own (the BFF): its table uses LS_DAEMON_CONFIG_FIELDS_NO_DB, nothing is
     * migrated, workers get no pool (ls_worker_pg() is NULL) and /readyz answers 200 while serving. */
    int no_database;
    /* Optional: runs once after migrations, before serving (blocking allowed). 0 or -1 + err. */
    int (*on_start)(void *config, char *err, size_t errlen);
    /* Optional: run on each worker's own thread once its pool and client exist, and before it
     * tears them down at shutdown — for background work such as a delivery poller (an outbox poller
     * needs none: see outbox). */
    void (*on_worker_start)(ls_worker_t *w);
    void (*on_worker_stop)(ls_worker_t *w);
    /* Optional: calls to other services recorded in the daemon's outbox table and delivered from
     * every worker. */
    ls_daemon_outbox_t outbox;
    /* Optional: replaces the internal-token check for routes without LS_ROUTE_PUBLIC (the BFF checks
     * Telegram's signature instead). Returns 0 to go on (it may set r->actor and r->role), or -1
     * after answering (401). Runs before the body limit, actor and deadline headers are read. */
    int (*authenticate)(ls_req_t *r);
} ls_daemon_t;

/* Returns the process exit status. */
int ls_daemon_main(const ls_daemon_t *d, int argc, char **argv);

struct ls_req {
    h2o_req_t *h2o; /* NULL once the client has gone */
    ls_worker_t *worker;
    const ls_daemon_t *daemon;
    ls_route_match_t match;
    char request_id[LS_REQUEST_ID_MAX + 1];
    int64_t actor;     /* X-Actor-Telegram-Id, 0 when absent */
    ls_role_t role;    /* X-Actor-Role, LS_ROLE_NONE when absent */
    uint64_t started;  /* ls_now_ms() at arrival */
    uint64_t deadline; /* ls_now_ms() time by which the answer is due */
    int status;        /* status replied, 0 before */
    int refs;          /* the h2o request (until its pool is disposed) + each pending callback */
    json_object *body; /* set by ls_req_body_or_reply; released with the request */
    void *state;       /* the handler's own, e.g. from ls_req_alloc() */
    h2o_mem_pool_t pool;
};

/* Worker resources (valid on the worker's thread). */
ls_loop_t *ls_worker_loop(ls_worker_t *w);
ls_pg_pool_t *ls_worker_pg(ls_worker_t *w);
ls_http_t *ls_worker_http(ls_worker_t *w); /* NULL unless the daemon uses_http */
int ls_worker_index(ls_worker_t *w);       /* 0 .. THREADS-1 */
const ls_daemon_t *ls_worker_daemon(ls_worker_t *w);

void *ls_req_alloc(ls_req_t *r, size_t size);
char *ls_req_strdup(ls_req_t *r, const char *s, size_t len);
void *ls_req_config(ls_req_t *r); /* the daemon's settings struct */

/* Path parameters, already validated by the router. */
int64_t ls_req_param_id(ls_req_t *r, const char *name);
const char *ls_req_param_str(ls_req_t *r, const char *name); /* NUL-terminated, request memory */

/* Query string: returns the URL-decoded value (request memory) of the first `name=`, or NULL. */
const char *ls_req_query(ls_req_t *r, const char *name);

/*
 * Query parameter `name` as a comma-separated list of 1..max telegram ids. On success fills *ids
 * (request memory), *n, and *pg_array with the same list as a PostgreSQL array literal "{1,2,3}"
 * for a `$1::bigint[]` parameter, and returns 0; otherwise answers 400 naming the problem and
 * returns -1.
 */
int ls_req_id_list_or_reply(ls_req_t *r, const char *name, size_t max, int64_t **ids, size_t *n,
                            const char **pg_array);

/*
 * A whole batch read, `GET /<things>?ids=1,2,3`: parses the ids (at most max; 400 otherwise), runs
 * prepared statement stmt with their array as $1 — it must return the rows in the order asked
 * (`unnest($1::bigint[]) WITH ORDINALITY … ORDER BY ord`) with a `telegram_id` column — and answers
 * {"<key>": [row_json of each row], "missing": [ids without a row]}. Uses r->state.
 */
typedef json_object *(*ls_row_json_fn)(ls_req_t *r, const PGresult *res, int row);
void ls_req_batch(ls_req_t *r, size_t max, size_t stmt, const char *key, ls_row_json_fn row_json);

/*
 * Pagination from `limit` (1..max_limit, default def_limit) and `offset` (0..LS_MAX_OFFSET,
 * default 0) query parameters, as decimal text ready for SQL parameters. Returns 0, or answers 400
 * and returns -1.
 */
#define LS_MAX_OFFSET 100000
int ls_req_page_or_reply(ls_req_t *r, int def_limit, int max_limit, const char **limit, const char **offset);

/* r->actor as decimal text in request memory, or NULL when the request names no actor. */
const char *ls_req_actor_text(ls_req_t *r);

/* Parses the body as a JSON object and validates it; on failure answers 400 and returns NULL.
 * The object belongs to the request (freed with it). */
json_object *ls_req_body_or_reply(ls_req_t *r, const ls_json_field_t *fields, size_t n);
/* The same for a body that may be left out: an empty body counts as {} (validated like one). */
json_object *ls_req_optional_body_or_reply(ls_req_t *r, const ls_json_field_t *fields, size_t n);
/* A request header's value (name in lowercase) as a NUL-terminated copy in request memory, or NULL. */
const char *ls_req_header(ls_req_t *r, const char *name);
/* Answers 400 and returns -1 when the request names no actor. */
int ls_req_actor_or_reply(ls_req_t *r);
/* 1 when the request names an actor who is `id` or an admin. */
int ls_req_actor_is_self_or_admin(ls_req_t *r, int64_t id);

/* Replies. Each does nothing if the request was already answered or the client is gone. */
void ls_reply_json(ls_req_t *r, int status, json_object *obj); /* takes the reference */
void ls_reply_raw(ls_req_t *r, int status, const char *content_type, const char *body, size_t len);
void ls_reply_problem(ls_req_t *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ls_reply_empty(ls_req_t *r, int status);

/* Database work on behalf of a request (keeps r alive until the callback has run). */
typedef void (*ls_req_pg_cb)(ls_req_t *r, ls_pg_status_t status, PGresult *res);
typedef void (*ls_req_begin_cb)(ls_req_t *r, ls_pg_status_t status, ls_pg_txn_t *txn);
void ls_req_pg(ls_req_t *r, size_t stmt, int nparams, const char *const *params, ls_req_pg_cb cb);
void ls_req_begin(ls_req_t *r, ls_req_begin_cb cb);
void ls_req_txn_exec(ls_req_t *r, ls_pg_txn_t *txn, size_t stmt, int nparams, const char *const *params,
                     ls_req_pg_cb cb);
void ls_req_txn_finish(ls_req_t *r, ls_pg_txn_t *txn, int commit, ls_req_pg_cb cb);
/*
 * When status is not LS_PG_OK, answers the matching problem and returns -1: 503 for an unavailable,
 * busy or timed-out database; 409 for unique/exclusion violations; 400 for check or data errors;
 * 500 otherwise (logged). Returns 0 when status is LS_PG_OK.
 */
int ls_pg_ok_or_reply(ls_req_t *r, ls_pg_status_t status, PGresult *res);

/* An internal call on behalf of a request: request id, actor and deadline are passed on. */
typedef void (*ls_req_http_cb)(ls_req_t *r, const ls_http_response_t *resp);
void ls_req_http(ls_req_t *r, const char *target, const char *base_url, const char *method, const char *path,
                 const char *body, size_t body_len, ls_req_http_cb cb);
/* The same with a user-data pointer for the callback and an optional Idempotency-Key. */
typedef void (*ls_req_http_ud_cb)(ls_req_t *r, const ls_http_response_t *resp, void *ud);
void ls_req_http_ex(ls_req_t *r, const char *target, const char *base_url, const char *method,
                    const char *path, const char *body, size_t body_len, const char *idempotency_key,
                    ls_req_http_ud_cb cb, void *ud);

#endif
