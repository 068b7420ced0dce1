/*
 * daemon: what a daemon declares about itself (ls_daemon_t) and the runner that starts it from it.
 *
 * ls_daemon_main() reads the command line (`--help` prints the settings; any other argument exits
 * 2) and the daemon's settings (exits 2 with a message on a bad one), checks its route table,
 * applies its migrations, runs on_start, binds its sockets and, started as root, switches to RUN_AS,
 * then installs its seccomp filter unless SECCOMP=off (sandbox.h: exit 2 for a RUN_AS that cannot be
 * used, 1 when the switch or the filter fails), then starts THREADS workers (worker.h), each with its own
 * event loop, listening sockets (listen.h), share of the PostgreSQL pool and, when the daemon asks
 * for one, HTTP client; every request goes through the front door (front.h) to its route's
 * handler. SIGTERM/SIGINT: every worker stops accepting, lets in-flight requests finish (at most
 * LS_SHUTDOWN_GRACE_MS), and the process exits 0; a failure to start exits 1. Log lines go through
 * log.h's buffer of LOG_BUFFER_BYTES from the settings on; at exit the pending ones are flushed,
 * waiting at most LS_LOG_FLUSH_MS for stdout.
 *
 * A database that is not up yet is waited for before the migrations, up to DATABASE_WAIT_MS (dbwait.h:
 * one warning line per failed attempt); after that the daemon exits 1 with the last reason. Nothing
 * is served meanwhile, not even /healthz. At start it also warns when libcurl resolves host names
 * synchronously (resolve.h), which would block the loops of daemons that call others.
 */
#ifndef LS_DAEMON_H
#define LS_DAEMON_H

#include <stddef.h>

#include "config.h"
#include "pg.h"
#include "request.h"
#include "router.h"
#include "sandbox.h"
#include "worker.h"

typedef void (*ls_handler_t)(ls_req_t *r);

/* Route flags. */
#define LS_ROUTE_PUBLIC 1u /* no internal token required */

#define LS_LOG_FLUSH_MS 1000

#define LS_ROUTE(method, pattern, handler, flags)                                                            \
    {                                                                                                        \
        (method), (pattern), (void *)(handler), (flags)                                                      \
    }

/* Settings every daemon has (docs/ARCHITECTURE.md §8). Embed as a member of the daemon's settings struct and
 * put LS_DAEMON_CONFIG_FIELDS(struct_type, member, port, migrations) into its table. */
typedef struct {
    ls_cfg_listen_t listen;
    long long threads;
    char *database_url;
    long long pg_pool_size;
    char *internal_token;
    int log_level;
    long long log_buffer_bytes;
    long long max_body_bytes;
    long long request_timeout_ms;
    char *migrations_dir;
    long long database_wait_ms;
    long long statement_timeout_ms;
    char *run_as; /* least privilege (sandbox.h) */
    int seccomp;
} ls_daemon_config_t;

// clang-format off
#define LS_DAEMON_CONFIG_FIELDS(type, m, default_listen, default_migrations)                                 \
    LS__CFG_SERVING(type, m, default_listen), LS__CFG_DATABASE(type, m), LS__CFG_REQUESTS(type, m),          \
        LS__CFG_MIGRATIONS(type, m, default_migrations), LS__CFG_PRIVILEGES(type, m)

/* The same without DATABASE_URL, PG_POOL_SIZE, MIGRATIONS_DIR and DATABASE_WAIT_MS, for a daemon with
 * no_database. */
#define LS_DAEMON_CONFIG_FIELDS_NO_DB(type, m, default_listen)                                               \
    LS__CFG_SERVING(type, m, default_listen), LS__CFG_REQUESTS(type, m), LS__CFG_PRIVILEGES(type, m)

/* The groups of rows the two lists above are made of, in the order --help prints them. */
#define LS__CFG_SERVING(type, m, default_listen)                                                             \
    {"LISTEN", LS_CFG_LISTEN, default_listen, 0, 0, offsetof(type, m.listen),                                \
     "address to listen on"},                                                                                \
    {"THREADS", LS_CFG_INT, "0", 0, 64, offsetof(type, m.threads),                                           \
     "worker threads, each with its own event loop (0: one per core)"}
#define LS__CFG_DATABASE(type, m)                                                                            \
    {"DATABASE_URL", LS_CFG_SECRET, NULL, 1, 4096, offsetof(type, m.database_url),                           \
     "libpq connection string of this service's own database"},                                              \
    {"PG_POOL_SIZE", LS_CFG_INT, "5", 1, 256, offsetof(type, m.pg_pool_size),                                \
     "PostgreSQL connections in all, shared out across threads"},                                            \
    {"DATABASE_STATEMENT_TIMEOUT_MS", LS_CFG_INT, "30000", 0, 3600000,                                       \
     offsetof(type, m.statement_timeout_ms),                                                                 \
     "statement_timeout of every pool connection, a backstop behind the cancel at a deadline (0: off)"}
#define LS__CFG_REQUESTS(type, m)                                                                            \
    {"INTERNAL_TOKEN", LS_CFG_SECRET, NULL, 16, 512, offsetof(type, m.internal_token),                       \
     "bearer token every internal call must carry"},                                                         \
    {"LOG_LEVEL", LS_CFG_LEVEL, "info", 0, 0, offsetof(type, m.log_level),                                   \
     "debug, info, warn or error"},                                                                          \
    {"LOG_BUFFER_BYTES", LS_CFG_INT, "1048576", 65536, 268435456, offsetof(type, m.log_buffer_bytes),        \
     "log lines waiting for stdout; beyond it lines are dropped and counted, never waited for"},             \
    {"MAX_BODY_BYTES", LS_CFG_INT, "65536", 1024, 16777216, offsetof(type, m.max_body_bytes),                \
     "largest request body accepted (413 above)"},                                                           \
    {"REQUEST_TIMEOUT_MS", LS_CFG_INT, "5000", 10, 600000, offsetof(type, m.request_timeout_ms),             \
     "longest a request may take when the caller sends no X-Deadline-Ms"}
#define LS__CFG_MIGRATIONS(type, m, default_migrations)                                                      \
    {"MIGRATIONS_DIR", LS_CFG_STR, default_migrations, 1, 4096, offsetof(type, m.migrations_dir),            \
     "folder of this service's NNN_name.sql migrations"},                                                    \
    {"DATABASE_WAIT_MS", LS_CFG_INT, "60000", 0, 3600000, offsetof(type, m.database_wait_ms),                \
     "how long to wait at start for the database to accept connections (0: fail at once)"}
#define LS__CFG_PRIVILEGES(type, m)                                                                          \
    {"RUN_AS", LS_CFG_STR, "", 0, LS_SANDBOX_NAME_MAX, offsetof(type, m.run_as),                             \
     "user to switch to once the sockets are bound (required when started as root)"},                        \
    {"SECCOMP", LS_CFG_BOOL, "on", 0, 0, offsetof(type, m.seccomp),                                          \
     "refuse every system call a serving daemon does not make (off: for strace or gdb)"}
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

struct ls_daemon {
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
};

/* Returns the process exit status. */
int ls_daemon_main(const ls_daemon_t *d, int argc, char **argv);

#endif
