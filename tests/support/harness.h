/*
 * harness: what integration tests need to drive real PostgreSQL and real daemons.
 *
 * tests/run creates a throwaway PostgreSQL cluster and exports, for every test binary:
 *   LS_TEST_PGHOST      socket directory of the cluster
 *   LS_TEST_PGPORT      its port
 *   LS_TEST_PGUSER      a superuser name
 *   LS_TEST_PGPASSWORD  its password
 *   LS_TEST_PGBIN       folder holding initdb and pg_ctl
 *   LS_TEST_PGRUNAS     user to run pg_ctl as ("postgres" when tests run as root, else empty)
 *   LS_TEST_BUILD_DIR   the meson build folder (daemons are found under it)
 *   LS_TEST_SOURCE_DIR  the repository root
 * A test that needs one of these and finds it missing fails with a message saying to run the
 * tests through tests/run; nothing is skipped silently.
 *
 * Every process started here gets PR_SET_PDEATHSIG(SIGKILL), so a crashing test leaves no daemon
 * behind. All functions abort the test (Criterion cr_assert) on a setup failure; they return only
 * on success, except where a return value is documented.
 */
#ifndef LS_TEST_HARNESS_H
#define LS_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

/* The value of a LS_TEST_* variable; fails the test when it is unset. */
const char *lst_env(const char *name);

/* A libpq conninfo for the superuser on database dbname (malloc'ed). */
char *lst_pg_admin_conninfo(const char *dbname);
/* Runs SQL as the superuser on dbname; returns the first column of the first row (malloc'ed, "" if
 * none) and fails the test on error. */
char *lst_pg_admin_exec(const char *dbname, const char *sql);
/*
 * Creates a fresh, uniquely named database owned by a fresh role (LOGIN, random password) and
 * returns its conninfo for that role (malloc'ed). The name starts with prefix. Public CONNECT is
 * revoked, so only that role (and superusers) can connect. *dbname_out (if not NULL) receives the
 * database name (malloc'ed).
 */
char *lst_db_create(const char *prefix, char **dbname_out);

/*
 * A private PostgreSQL cluster for fault tests that stop and start the server (the shared cluster
 * must stay up for tests running in parallel). Created with initdb in a fresh temp folder (as
 * $LS_TEST_PGRUNAS when set), listening on a free port on its own socket folder only, with the
 * same superuser and password as the shared one. Destroy stops it and removes its folder.
 */
typedef struct {
    char dir[256];     /* data directory */
    char sockdir[256]; /* unix socket directory */
    int port;
    int tcp; /* also listens on 127.0.0.1:port */
} lst_cluster_t;

void lst_cluster_create(lst_cluster_t *c);
/* The same cluster, listening on TCP 127.0.0.1:port as well (for connections through a host name). */
void lst_cluster_create_tcp(lst_cluster_t *c);
/* Superuser conninfo for dbname over TCP, through host (a name such as "localhost", or an address). */
char *lst_cluster_conninfo_tcp(const lst_cluster_t *c, const char *host, const char *dbname);
/* Superuser conninfo for dbname on the private cluster (malloc'ed). */
char *lst_cluster_conninfo(const lst_cluster_t *c, const char *dbname);
/* pg_ctl stop -m fast / start -w. Return 0 or -1. */
int lst_cluster_stop(lst_cluster_t *c);
int lst_cluster_start(lst_cluster_t *c);
void lst_cluster_destroy(lst_cluster_t *c);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int lst_free_port(void);

/*
 * When the tests run as root, every daemon is started with RUN_AS=LST_DAEMON_USER (unless the test
 * sets RUN_AS), so the whole suite runs the daemons unprivileged, as a root deployment must. What a
 * daemon reaches after its switch must be open to that user: the PostgreSQL socket folders are 711
 * (tests/run, private clusters), and a folder a test makes for the daemons' Unix sockets is given to
 * the user with lst_give_to_daemons. "nobody" exists on every system and owns nothing.
 */
#define LST_DAEMON_USER "nobody"
/* chown path to LST_DAEMON_USER when the tests run as root (else nothing); fails the test on error. */
void lst_give_to_daemons(const char *path);

typedef struct {
    pid_t pid;
    int port;
    char base_url[64]; /* "http://127.0.0.1:PORT" */
    char log_path[512];
    char name[64]; /* the binary's name */
} lst_daemon_t;

/*
 * Starts $LS_TEST_BUILD_DIR/<relpath> (e.g. "services/auth/auth-service") with the current
 * environment plus env ("NAME=value" strings, NULL-terminated; LISTEN is set by the harness to a
 * free port unless env sets it, and then the first TCP address of its list is the one used). Its
 * stdout/stderr go to a log file. Waits up to 15 s for its log to
 * say it is listening on that port (so LOG_LEVEL must be info or debug) and for GET /healthz to
 * answer 200; fails the test (printing the log's tail) if it does not.
 */
void lst_daemon_start(lst_daemon_t *d, const char *relpath, const char *const *env);
/* Like lst_daemon_start, but returns -1 instead of failing when the daemon exits or is not healthy. */
int lst_daemon_try_start(lst_daemon_t *d, const char *relpath, const char *const *env);
/*
 * The two halves of lst_daemon_try_start, for tests that start several daemons at the same moment
 * (from the test's own thread: a daemon is killed when the thread that forked it ends). spawn
 * fails the test only when it cannot fork; wait_healthy returns 0, or -1 when the daemon exited or
 * did not answer in 15 s (it is then reaped and d->pid is 0).
 */
void lst_daemon_spawn(lst_daemon_t *d, const char *relpath, const char *const *env);
/* lst_daemon_spawn with the daemon's stdout on stdout_fd instead of its log file (-1: the log file),
 * which then holds stderr only: lst_daemon_wait_healthy does not apply; the caller reads the
 * "listening" line from its own end. */
void lst_daemon_spawn_stdout(lst_daemon_t *d, const char *relpath, const char *const *env, int stdout_fd);
int lst_daemon_wait_healthy(lst_daemon_t *d);
/* The lines of a daemon's log (d->log_path) that contain every one of the needles (a NULL-terminated
 * list), parsed, in order: a json-c array the caller puts. Lines that are not JSON are skipped. */
json_object *lst_log_lines(const lst_daemon_t *d, const char *const *needles);
/* The same once at least at_least lines match, or after 3 s with what there is: a daemon writes its
 * log from a writer thread (log.h), so a line may land a moment after the answer it is about. */
json_object *lst_log_wait(const lst_daemon_t *d, const char *const *needles, size_t at_least);
/* SIGTERM, waits up to 10 s (then SIGKILL). Returns the exit status (as from waitpid's
 * WEXITSTATUS), or -1 if it had to be killed or died of a signal. */
int lst_daemon_stop(lst_daemon_t *d);
/* SIGKILL, as a crash or the OOM killer would end it: no shutdown at all. Reaps it; d->pid becomes 0. */
void lst_daemon_kill(lst_daemon_t *d);
/* Stops d when it runs (d->pid > 0) and expects (cr_expect) exit status 0: under ASan a clean exit
 * also means no leak was found. */
void lst_daemon_expect_clean_stop(lst_daemon_t *d);

/*
 * A service daemon on its own fresh database of the test cluster, as most integration tests run one.
 * All fields start zeroed (a static one is); the strings are malloc'ed and lst_service_destroy frees
 * them.
 */
typedef struct {
    lst_daemon_t daemon;
    char *token;    /* its INTERNAL_TOKEN */
    char *conninfo; /* its database, for the database's own role */
    char *dbname;
} lst_service_t;

/*
 * Starts relpath (as lst_daemon_start) with DATABASE_URL=s->conninfo and INTERNAL_TOKEN=s->token, then
 * env (NULL-terminated "NAME=value" strings, may be NULL), and THREADS=2 and LOG_LEVEL=debug unless env
 * sets them. What s lacks is made first: a random token (to share another service's, set s->token to a
 * malloc'ed copy of it beforehand) and a database from lst_db_create(db_prefix). So a second start,
 * after lst_daemon_stop of s->daemon, is a restart on the same database.
 */
void lst_service_start(lst_service_t *s, const char *relpath, const char *db_prefix, const char *const *env);
/* lst_daemon_expect_clean_stop of its daemon, then frees the strings and zeroes s. */
void lst_service_destroy(lst_service_t *s);

typedef struct {
    int status; /* 0 when the request failed at transport level */
    char *body;
    size_t len;
    json_object *json; /* parsed body when it is JSON, else NULL */
    char *headers;     /* raw response header block */
    double seconds;    /* wall time of the request */
} lst_resp_t;

/*
 * One HTTP request with libcurl easy (timeout 30 s). headers: NULL-terminated list of
 * "Name: value"; body may be NULL. Returns the status (also in out->status).
 */
int lst_http(lst_resp_t *out, const char *method, const char *url, const char *const *headers,
             const char *body);
/*
 * A request to a service as another service makes it: to base_url followed by path, with
 * "Authorization: Bearer <token>", X-Actor-Telegram-Id: actor and X-Actor-Role: role (each left out
 * when NULL) and, with a body, "Content-Type: application/json". Returns the status, as lst_http; the
 * caller frees resp with lst_resp_free.
 */
int lst_call_as(lst_resp_t *resp, const char *base_url, const char *token, const char *method,
                const char *path, const char *body, const char *actor, const char *role);
/* lst_call_as (no role) of a request that must be refused: lst_expect_problem(status, needle) on the
 * answer, which is then freed. */
void lst_call_expect_problem(const char *base_url, const char *token, const char *method, const char *path,
                             const char *body, const char *actor, int status, const char *needle);
/* Value of a response header (case-insensitive name), malloc'ed, or NULL. */
char *lst_resp_header(const lst_resp_t *resp, const char *name);
void lst_resp_free(lst_resp_t *resp);

/* Reading JSON answers: NULL when obj is NULL, the key is absent, or (str) not a string. */
json_object *lst_field(json_object *obj, const char *key);
const char *lst_str_field(json_object *obj, const char *key);
/*
 * Expects (cr_expect) an RFC 9457 answer: this status, Content-Type application/problem+json, a JSON
 * body with the same "status", a "title", and a "detail" containing needle (any detail when NULL).
 */
void lst_expect_problem(const lst_resp_t *resp, int status, const char *needle);

/*
 * A daemon's GET /metrics (with the internal token), its body malloc'ed; fails the test unless it
 * answers 200 with the Prometheus text format's content type.
 */
char *lst_metrics_text(const char *base_url, const char *token);
/*
 * The value of one series in an exposition: series is the name with its labels exactly as the
 * daemon writes them, e.g. "ls_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"2xx\"}".
 * 1 and *value when the series is there, else 0.
 */
int lst_metric_in(const char *text, const char *series, double *value);
/* lst_metric_in of a fresh scrape; an absent series reads as 0. */
double lst_metric(const char *base_url, const char *token, const char *series);
/* Scrapes every 100 ms until the series reads want or timeout_ms passed; returns the last value. */
double lst_metric_wait(const char *base_url, const char *token, const char *series, double want,
                       int timeout_ms);

/* Random hex token of 2*nbytes characters (malloc'ed). */
char *lst_random_hex(size_t nbytes);

#endif
