/*
 * daemon: ls_daemon_main(), one step per function — command line, settings, process set-up,
 * migrations, workers, the wait for a signal, and the way back down.
 */
#include "daemon.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "front.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "resolve.h"
#include "sandbox.h"

#ifndef LS_VERSION /* meson passes the project's version */
#define LS_VERSION "unknown"
#endif

/* One run of the daemon: what the steps below set up and the way down releases. */
typedef struct {
    const ls_daemon_t *d;
    const ls_sandbox_user_t *user; /* RUN_AS */
    h2o_globalconf_t globalconf;
    int nthreads;
    int pool_size; /* PostgreSQL connections in all */
    ls_worker_t *workers;
    int ninit;   /* workers to release (initialised, or tried) */
    int started; /* workers whose thread runs */
    ls_unix_listener_t unix_listeners[LS_CFG_LISTEN_MAX];
    ls_metrics_t *metrics; /* one block per worker */
    sigset_t sigs;         /* SIGINT and SIGTERM: blocked in every thread, awaited by the main one */
} run_t;

/* Static: workers whose h2o context could not be disposed at exit stay reachable from it (for leak
 * checkers) until the process exits, and so does the configuration those contexts point to. */
static run_t the_run;

/* --help: prints the settings and returns 0; another argument: 2; none: -1 (go on). */
static int read_command_line(const ls_daemon_t *d, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ls_config_print_help(stdout, d->name, d->summary, d->config_fields, d->nconfig_fields);
            return 0;
        }
        fprintf(stderr, "%s: unknown argument '%s' (settings come from the environment; see --help)\n",
                d->name, argv[i]);
        return 2;
    }
    return -1;
}

/* The settings, and RUN_AS against who we are (*user). */
static int load_settings(const ls_daemon_t *d, ls_sandbox_user_t *user)
{
    char err[512];
    if (ls_config_load(d->config_fields, d->nconfig_fields, d->config, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", d->name, err);
        return -1;
    }
    if (ls_sandbox_user(d->common->run_as, user, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", d->name, err);
        ls_config_free(d->config_fields, d->nconfig_fields, d->config);
        return -1;
    }
    ls_log_init(d->name, (ls_log_level_t)d->common->log_level);
    if (ls_log_start((size_t)d->common->log_buffer_bytes) != 0)
        ls_log(LS_LOG_WARN, NULL, "no log writer thread: log lines are written to stdout directly");
    return 0;
}

/* The route table, the libraries, SIGPIPE. */
static int prepare_process(const ls_daemon_t *d)
{
    char err[512];
    if (ls_router_check(d->routes, d->nroutes, err, sizeof(err)) != 0) {
        ls_log(LS_LOG_ERROR, NULL, err);
        return -1;
    }
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        ls_log(LS_LOG_ERROR, NULL, "library initialisation failed");
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Threaded (or c-ares): curl's lookups then stay off the loops (docs/ARCHITECTURE.md §8). */
    if (ls_resolve_curl_kind() == NULL)
        ls_log(LS_LOG_WARN, NULL,
               "libcurl resolves host names synchronously (no AsynchDNS): a slow DNS lookup of a service URL "
               "blocks a worker's event loop; use a libcurl built with the threaded resolver or c-ares");
    return 0;
}

/* The daemon's migrations, then its on_start. */
static int prepare_data(const ls_daemon_t *d)
{
    char err[512];
    if (!d->no_database && ls_migrate_run(d->common->database_url, d->common->migrations_dir,
                                          d->common->database_wait_ms, err, sizeof(err)) < 0) {
        ls_log_line_t l;
        if (ls_log_begin(&l, LS_LOG_ERROR, NULL, "migrations failed")) {
            ls_log_str(&l, "error", err);
            ls_log_str(&l, "dir", d->common->migrations_dir);
            ls_log_end(&l);
        }
        return -1;
    }
    if (d->on_start != NULL && d->on_start(d->config, err, sizeof(err)) != 0) {
        ls_log(LS_LOG_ERROR, NULL, err);
        return -1;
    }
    return 0;
}

/* THREADS (0: one per core) and the pool, at least one connection per thread. */
static void size_workers(run_t *run)
{
    const ls_daemon_t *d = run->d;
    run->nthreads = d->common->threads > 0 ? (int)d->common->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (run->nthreads < 1)
        run->nthreads = 1;
    run->pool_size = d->no_database ? 0 : (int)d->common->pg_pool_size;
    if (!d->no_database && run->pool_size < run->nthreads) {
        ls_logf(LS_LOG_WARN, NULL, "PG_POOL_SIZE=%d is below THREADS=%d: using one connection per thread",
                run->pool_size, run->nthreads);
        run->pool_size = run->nthreads;
    }
}

/* The Unix sockets, bound once here; each worker binds its own TCP ones. */
static int open_unix_listeners(run_t *run)
{
    char err[512];
    const ls_cfg_listen_t *listen_cfg = &run->d->common->listen;
    for (int i = 0; i < listen_cfg->n; i++) {
        if (listen_cfg->addr[i].is_unix &&
            ls_listen_unix(&run->unix_listeners[i], listen_cfg->addr[i].path, err, sizeof(err)) != 0) {
            ls_log(LS_LOG_ERROR, NULL, err);
            return -1;
        }
    }
    return 0;
}

static int init_workers(run_t *run)
{
    char err[512];
    int unix_fds[LS_CFG_LISTEN_MAX];
    for (int i = 0; i < LS_CFG_LISTEN_MAX; i++)
        unix_fds[i] = run->unix_listeners[i].fd;
    const ls_daemon_t *d = run->d;
    ls_metrics_desc_t md = {
        .daemon = d->name,
        .version = LS_VERSION,
        .routes = d->routes,
        .nroutes = d->nroutes,
        .stmts = d->stmts,
        .nstmts = d->nstmts,
        .nworkers = run->nthreads,
        .features =
            (d->no_database ? 0 : LS_METRICS_F_DB) | (d->outbox.targets != NULL ? LS_METRICS_F_OUTBOX : 0),
    };
    run->metrics = ls_metrics_create(&md);
    run->workers = calloc((size_t)run->nthreads, sizeof(*run->workers));
    if (run->workers == NULL || run->metrics == NULL)
        return -1;
    for (int i = 0; i < run->nthreads; i++) {
        int share = run->pool_size / run->nthreads + (i < run->pool_size % run->nthreads ? 1 : 0);
        run->ninit = i + 1;
        if (ls_worker_init(&run->workers[i], run->d, &run->globalconf, i, share, unix_fds, err,
                           sizeof(err)) != 0) {
            ls_log(LS_LOG_ERROR, NULL, err);
            return -1;
        }
        run->workers[i].metrics = ls_metrics_block(run->metrics, i);
    }
    return 0;
}

/* Root's part is over once every socket is bound: the Unix socket files go to RUN_AS, the process
 * switches to it, and then — before any worker thread runs, so that each starts under it — the
 * seccomp filter goes on. */
static int confine(run_t *run)
{
    char err[512];
    const ls_cfg_listen_t *listen_cfg = &run->d->common->listen;
    for (int i = 0; i < listen_cfg->n; i++) {
        if (run->unix_listeners[i].fd >= 0 &&
            ls_sandbox_give(run->user, run->unix_listeners[i].path, err, sizeof(err)) != 0) {
            ls_log(LS_LOG_ERROR, NULL, err);
            return -1;
        }
    }
    if (ls_sandbox_drop(run->user, err, sizeof(err)) != 0 ||
        (run->d->common->seccomp && ls_sandbox_seccomp(err, sizeof(err)) != 0)) {
        ls_log(LS_LOG_ERROR, NULL, err);
        return -1;
    }
    return 0;
}

/* Blocks the signals first, so that workers never receive them: the main thread waits for them. */
static int start_workers(run_t *run)
{
    sigemptyset(&run->sigs);
    sigaddset(&run->sigs, SIGINT);
    sigaddset(&run->sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &run->sigs, NULL);
    for (; run->started < run->nthreads; run->started++) {
        if (ls_worker_start(&run->workers[run->started]) != 0) {
            ls_log(LS_LOG_ERROR, NULL, "could not start a worker thread");
            return -1;
        }
    }
    return 0;
}

/* "listen" names every address; host and port repeat the first TCP one, which is what scripts and
 * tests wait for. */
static void log_listening(const run_t *run)
{
    const ls_cfg_listen_t *listen_cfg = &run->d->common->listen;
    ls_log_line_t l;
    if (!ls_log_begin(&l, LS_LOG_INFO, NULL, "listening"))
        return;
    char all[LS_CFG_LISTEN_MAX * (LS_CFG_UNIX_PATH_MAX + 80)];
    size_t off = 0;
    const ls_cfg_addr_t *tcp = NULL;
    for (int i = 0; i < listen_cfg->n; i++) {
        if (i > 0)
            all[off++] = ',';
        ls_cfg_addr_format(&listen_cfg->addr[i], all + off, sizeof(all) - off);
        off += strlen(all + off);
        if (tcp == NULL && !listen_cfg->addr[i].is_unix)
            tcp = &listen_cfg->addr[i];
    }
    all[off] = '\0';
    ls_log_str(&l, "listen", all);
    if (tcp != NULL) {
        ls_log_str(&l, "host", tcp->host);
        ls_log_int(&l, "port", tcp->port);
    }
    ls_log_int(&l, "threads", run->nthreads);
    ls_log_int(&l, "uid", (long long)geteuid());
    ls_log_str(&l, "seccomp", run->d->common->seccomp ? "on" : "off");
    ls_log_int(&l, "pg_connections", run->pool_size);
    ls_log_end(&l);
}

static void wait_for_signal(run_t *run)
{
    int sig = 0;
    sigwait(&run->sigs, &sig);
    ls_logf(LS_LOG_INFO, NULL, "received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* Asks every started worker to stop, all at once, then waits for each. */
static void stop_workers(run_t *run)
{
    for (int i = 0; i < run->started; i++)
        ls_worker_request_stop(&run->workers[i]);
    for (int i = 0; i < run->started; i++)
        ls_worker_join(&run->workers[i]);
}

/* The workers, the socket files and h2o's configuration — or, when a worker's h2o context had to
 * stay, the workers and the configuration are left as they are, reachable from the_run. */
static void release(run_t *run)
{
    int all_disposed = 1;
    for (int i = 0; i < run->ninit; i++)
        all_disposed &= ls_worker_release(&run->workers[i], i < run->started);
    /* Workers have stopped accepting (or never started): the socket files can go. */
    for (int i = 0; i < LS_CFG_LISTEN_MAX; i++)
        ls_listen_unix_close(&run->unix_listeners[i]);
    if (all_disposed) {
        free(run->workers);
        run->workers = NULL;
        h2o_config_dispose(&run->globalconf);
    }
}

/* Serves until SIGTERM/SIGINT; 0 after a clean stop, 1 when it could not start. */
static int run_workers(const ls_daemon_t *d, const ls_sandbox_user_t *user)
{
    int status = 1;
    run_t *run = &the_run;
    *run = (run_t){.d = d, .user = user};
    for (int i = 0; i < LS_CFG_LISTEN_MAX; i++)
        run->unix_listeners[i].fd = -1;
    size_workers(run);
    ls_front_init(&run->globalconf, d);
    if (open_unix_listeners(run) == 0 && init_workers(run) == 0 && confine(run) == 0 &&
        start_workers(run) == 0) {
        log_listening(run);
        wait_for_signal(run);
        status = 0;
    }
    stop_workers(run);
    if (status == 0)
        ls_log(LS_LOG_INFO, NULL, "stopped");
    release(run);
    /* Every worker thread has ended: nothing records any more. */
    ls_metrics_destroy(run->metrics);
    run->metrics = NULL;
    return status;
}

int ls_daemon_main(const ls_daemon_t *d, int argc, char **argv)
{
    int status = read_command_line(d, argc, argv);
    if (status >= 0)
        return status;
    ls_sandbox_user_t user;
    if (load_settings(d, &user) != 0)
        return 2;
    status = 1;
    if (prepare_process(d) == 0) {
        if (prepare_data(d) == 0)
            status = run_workers(d, &user);
        curl_global_cleanup();
    }
    ls_config_free(d->config_fields, d->nconfig_fields, d->config);
    ls_log_stop(LS_LOG_FLUSH_MS);
    return status;
}
