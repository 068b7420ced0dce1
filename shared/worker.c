/* worker: a worker thread's set-up, event loop, graceful stop and teardown. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <sodium.h>

#include "daemon.h"
#include "listen.h"
#include "log.h"
#include "outbox.h"
#include "pglisten.h"

/* The process's workers by index, for ls_worker_wake_outboxes(): written by ls_worker_init and
 * ls_worker_release on the main thread, before the threads start and after they have ended. */
#define WORKERS_MAX 64
static ls_worker_t *all_workers[WORKERS_MAX];

ls_loop_t *ls_worker_loop(ls_worker_t *w)
{
    return w->loop;
}

ls_pg_pool_t *ls_worker_pg(ls_worker_t *w)
{
    return w->pg;
}

ls_http_t *ls_worker_http(ls_worker_t *w)
{
    return w->http;
}

int ls_worker_index(ls_worker_t *w)
{
    return w->index;
}

const ls_daemon_t *ls_worker_daemon(ls_worker_t *w)
{
    return w->daemon;
}

ls_outbox_t *ls_worker_outbox(ls_worker_t *w)
{
    return w->outbox;
}

void ls_worker_wake_outboxes(void)
{
    uint64_t one = 1;
    for (int i = 0; i < WORKERS_MAX; i++) {
        ls_worker_t *w = all_workers[i];
        if (w != NULL && w->daemon->outbox.targets != NULL && !atomic_exchange(&w->outbox_woken, 1)) {
            ssize_t wr = write(w->wake_fd, &one, sizeof(one));
            (void)wr;
        }
    }
}

/* ---- the worker's thread ---- */

static void on_accept(h2o_socket_t *listener, const char *err)
{
    ls_worker_t *w = listener->data;
    if (err != NULL)
        return;
    /* Accept a bounded batch per wake-up so that one busy listener cannot starve the loop. */
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        h2o_accept(&w->accept_ctx, sock);
    }
}

static void on_wake(h2o_socket_t *sock, const char *err)
{
    ls_worker_t *w = sock->data;
    uint64_t v;
    ssize_t rd = read(w->wake_fd, &v, sizeof(v));
    (void)rd;
    h2o_buffer_consume(&sock->input, sock->input->size);
    if (atomic_exchange(&w->outbox_woken, 0))
        ls_outbox_wake(w->outbox, LS_OUTBOX_WAKE_NOTIFY);
}

/* Hands the listening sockets and the wake-up eventfd to h2o on this worker's loop. */
static void watch_sockets(ls_worker_t *w)
{
    for (int i = 0; i < w->nlisteners; i++) {
        /* A Unix listener is shared by all workers (each holds a dup()): whoever loses the race for
         * a connection gets EAGAIN from accept, which h2o_evloop_socket_accept() reports as NULL. */
        w->listeners[i] =
            h2o_evloop_socket_create(ls_loop_evloop(w->loop), w->listen_fds[i], H2O_SOCKET_FLAG_DONT_READ);
        w->listen_fds[i] = -1;
        w->listeners[i]->data = w;
        h2o_socket_read_start(w->listeners[i], on_accept);
    }
    /* A dup: other threads write to wake_fd until every worker has ended (ls_worker_release). */
    int fd = fcntl(w->wake_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        h2o_fatal("worker: cannot dup the wake-up eventfd");
    w->wake = h2o_evloop_socket_create(ls_loop_evloop(w->loop), fd, H2O_SOCKET_FLAG_DONT_READ);
    w->wake->data = w;
    h2o_socket_read_start(w->wake, on_wake);
}

static void on_outbox_notify(void *ud, ls_pglisten_event_t event)
{
    (void)ud, (void)event;
    ls_worker_wake_outboxes();
}

/* The daemon's outbox poller on this worker, its targets' URLs and interval taken from the settings;
 * on worker 0 also the LISTEN connection that wakes them all. */
static void start_outbox(ls_worker_t *w)
{
    const ls_daemon_outbox_t *o = &w->daemon->outbox;
    /* Named apart in pg_stat_activity: "calendar-service:outbox" (a round's open transaction),
     * "calendar-service:listen". */
    char claim_name[80], listen_name[80];
    snprintf(claim_name, sizeof(claim_name), "%s:outbox", w->daemon->name);
    snprintf(listen_name, sizeof(listen_name), "%s:listen", w->daemon->name);
    ls_outbox_config_t oc = {
        .ntargets = o->ntargets,
        .conninfo = w->daemon->common->database_url,
        .application_name = claim_name,
        .poll_ms = o->poll_ms != NULL ? (int)*o->poll_ms : 0,
    };
    if (o->ntargets > LS_OUTBOX_MAX_TARGETS)
        h2o_fatal("worker: too many outbox targets");
    if (w->http == NULL)
        h2o_fatal("worker: an outbox needs the HTTP client (uses_http)");
    for (size_t i = 0; i < o->ntargets; i++)
        oc.targets[i] = (ls_outbox_target_t){o->targets[i].name, *o->targets[i].base_url};
    w->outbox = ls_outbox_start(w->loop, w->pg, w->http, &oc);
    if (w->outbox == NULL)
        h2o_fatal("worker: cannot start the outbox poller");
    if (w->index == 0 &&
        (w->outbox_listen = ls_pglisten_start(w->loop, oc.conninfo, listen_name, LS_OUTBOX_CHANNEL,
                                              on_outbox_notify, w)) == NULL)
        h2o_fatal("worker: cannot start the outbox's LISTEN connection");
}

/* The pool, the HTTP client, the outbox poller, then the daemon's own on_worker_start. */
static void open_clients(ls_worker_t *w)
{
    const ls_daemon_t *d = w->daemon;
    ls_pg_config_t pgc = {
        .conninfo = d->common->database_url,
        .application_name = d->name,
        .nconns = w->pg_conns,
        .stmts = d->stmts,
        .nstmts = d->nstmts,
        .statement_timeout_ms = (int)d->common->statement_timeout_ms,
    };
    if (!d->no_database)
        w->pg = ls_pg_pool_create(w->loop, &pgc);
    if (d->uses_http) {
        ls_http_config_t hc = {.internal_token = d->common->internal_token};
        w->http = ls_http_create(w->loop, &hc);
    }
    if ((!d->no_database && w->pg == NULL) || (d->uses_http && w->http == NULL))
        h2o_fatal("worker: out of memory");
    if (d->outbox.targets != NULL)
        start_outbox(w);
    if (d->on_worker_start != NULL)
        d->on_worker_start(w);
}

/* Stops accepting; connections in use finish their requests. */
static void begin_stop(ls_worker_t *w)
{
    w->stopping = 1;
    for (int i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i] != NULL) {
            h2o_socket_read_stop(w->listeners[i]);
            h2o_socket_close(w->listeners[i]);
            w->listeners[i] = NULL;
        }
    }
    h2o_context_request_shutdown(&w->ctx);
}

/* Runs the loop until asked to stop and every request has ended (or the grace period is over). */
static void serve(ls_worker_t *w)
{
    uint64_t grace_until = 0;
    for (;;) {
        ls_loop_run_once(w->loop, 1000);
        if (!w->stopping && atomic_load(&w->stop_requested)) {
            begin_stop(w);
            grace_until = ls_now_ms() + LS_SHUTDOWN_GRACE_MS;
        }
        if (w->stopping && (w->inflight == 0 || ls_now_ms() >= grace_until))
            break;
    }
    if (w->inflight != 0)
        ls_logf(LS_LOG_WARN, NULL, "worker %d: %zu requests still running at shutdown", w->index,
                w->inflight);
}

/* open_clients() undone, in reverse. */
static void close_clients(ls_worker_t *w)
{
    if (w->daemon->on_worker_stop != NULL)
        w->daemon->on_worker_stop(w);
    ls_pglisten_stop(w->outbox_listen);
    w->outbox_listen = NULL;
    /* Before the client and the pool: they complete what the poller still has pending. */
    ls_outbox_stop(w->outbox);
    w->outbox = NULL;
    if (w->http != NULL)
        ls_http_destroy(w->http);
    if (w->pg != NULL)
        ls_pg_pool_destroy(w->pg);
    w->http = NULL;
    w->pg = NULL;
    /* close_context() runs the loop a little longer, and a keep-alive connection may still bring a
     * request then: it must not reach a handler, which would use the clients just destroyed. */
    w->closed = 1;
}

/* Closes the wake-up socket and disposes the h2o context when h2o allows it. */
static void close_context(ls_worker_t *w)
{
    h2o_socket_read_stop(w->wake);
    h2o_socket_close(w->wake);
    /* Let h2o finish closing sockets before its context goes away. */
    for (int i = 0; i < 10; i++)
        ls_loop_run_once(w->loop, 10);
    /* h2o 2.2.5 cannot close idle keep-alive connections from outside, and its context may not be
     * disposed while any is open: then the process exits with the worker left as it is (still
     * reachable, so leak checkers stay quiet) and the kernel closes those connections. */
    if (h2o_linklist_is_empty(&w->ctx.http1._conns)) {
        /* h2o_context_request_shutdown() armed HTTP/2's graceful-shutdown timer; nothing is left for it. */
        if (h2o_timeout_is_linked(&w->ctx.http2._graceful_shutdown_timeout))
            h2o_timeout_unlink(&w->ctx.http2._graceful_shutdown_timeout);
        h2o_context_dispose(&w->ctx);
        /* h2o 2.2.5's evloop h2o_multithread_destroy_queue() (called by h2o_context_dispose) closes
         * the queue's sockets but never frees the queue itself. */
        free(w->ctx.queue);
        w->disposed = 1;
    }
}

static void *worker_main(void *arg)
{
    ls_worker_t *w = arg;
    ls_metrics_bind(w->metrics);
    watch_sockets(w);
    open_clients(w);
    serve(w);
    close_clients(w);
    close_context(w);
    return NULL;
}

/* ---- the main thread's side ---- */

int ls_worker_init(ls_worker_t *w, const ls_daemon_t *d, h2o_globalconf_t *conf, int index, int pg_conns,
                   const int *unix_fds, char *err, size_t errlen)
{
    unsigned char rnd[6];

    memset(w, 0, sizeof(*w));
    w->daemon = d;
    w->index = index;
    w->pg_conns = pg_conns;
    for (int i = 0; i < LS_CFG_LISTEN_MAX; i++)
        w->listen_fds[i] = -1;
    w->wake_fd = -1;
    atomic_init(&w->stop_requested, 0);
    atomic_init(&w->outbox_woken, 0);
    if (index >= 0 && index < WORKERS_MAX)
        all_workers[index] = w;
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(w->rid_prefix, sizeof(w->rid_prefix), rnd, sizeof(rnd));
    const ls_cfg_listen_t *listen_cfg = &d->common->listen;
    for (int i = 0; i < listen_cfg->n; i++) {
        const ls_cfg_addr_t *a = &listen_cfg->addr[i];
        int fd;
        if (a->is_unix) {
            if ((fd = fcntl(unix_fds[i], F_DUPFD_CLOEXEC, 0)) < 0)
                snprintf(err, errlen, "LISTEN unix:%s: dup: %s", a->path, strerror(errno));
        } else {
            fd = ls_listen_tcp(a, err, errlen);
        }
        if (fd < 0)
            return -1;
        w->listen_fds[w->nlisteners++] = fd;
    }
    if ((w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        return -1;
    }
    if ((w->loop = ls_loop_create()) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h2o_context_init(&w->ctx, ls_loop_evloop(w->loop), conf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = conf->hosts;
    return 0;
}

int ls_worker_start(ls_worker_t *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void ls_worker_request_stop(ls_worker_t *w)
{
    uint64_t one = 1;
    atomic_store(&w->stop_requested, 1);
    ssize_t wr = write(w->wake_fd, &one, sizeof(one));
    (void)wr;
}

void ls_worker_join(ls_worker_t *w)
{
    pthread_join(w->thread, NULL);
}

int ls_worker_release(ls_worker_t *w, int started)
{
    if (!started) {
        /* never ran: its descriptors were not handed to h2o */
        for (int j = 0; j < w->nlisteners; j++)
            if (w->listen_fds[j] >= 0)
                close(w->listen_fds[j]);
        if (w->loop != NULL)
            h2o_context_dispose(&w->ctx);
        w->disposed = 1;
    }
    if (w->index >= 0 && w->index < WORKERS_MAX && all_workers[w->index] == w)
        all_workers[w->index] = NULL;
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    w->wake_fd = -1;
    if (!w->disposed)
        return 0;
    ls_loop_destroy(w->loop);
    return 1;
}
