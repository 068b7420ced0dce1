/*
 * worker: one thread of the daemon with everything it owns — its event loop, its listening sockets,
 * its h2o context, its share of the PostgreSQL pool, its HTTP client (when the daemon uses_http) and
 * its outbox poller (when the daemon has an outbox). Workers share nothing mutable; everything here
 * is used on the worker's own thread, except the runner's calls marked "main thread".
 *
 * A worker runs: it watches its listeners and its wake-up eventfd, opens its pool and client, starts
 * the outbox poller (worker 0 also the daemon's one LISTEN connection, pglisten.h, whose
 * notifications wake every worker's poller through the wake-up eventfds) and then on_worker_start
 * (daemon.h), and serves. Asked to stop, it closes its listeners, lets in-flight requests finish (at
 * most LS_SHUTDOWN_GRACE_MS), calls on_worker_stop, stops the listener and the poller, then closes
 * its client and pool — in that order, so the poller's pending work is completed as they go — and
 * disposes its h2o context when h2o allows it (see ls_worker_release).
 */
#ifndef LS_WORKER_H
#define LS_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http.h"
#include "loop.h"
#include "metrics.h"
#include "pg.h"

#define LS_SHUTDOWN_GRACE_MS 5000

typedef struct ls_worker ls_worker_t;
typedef struct ls_daemon ls_daemon_t;
typedef struct ls_outbox ls_outbox_t; /* outbox.h */

/* Worker resources (valid on the worker's thread). */
ls_loop_t *ls_worker_loop(ls_worker_t *w);
ls_pg_pool_t *ls_worker_pg(ls_worker_t *w);
ls_http_t *ls_worker_http(ls_worker_t *w); /* NULL unless the daemon uses_http */
int ls_worker_index(ls_worker_t *w);       /* 0 .. THREADS-1 */
const ls_daemon_t *ls_worker_daemon(ls_worker_t *w);
/* The worker's outbox poller (for ls_outbox_kick after a commit), NULL when the daemon runs none. */
ls_outbox_t *ls_worker_outbox(ls_worker_t *w);
/* Any thread: wakes the outbox poller of every worker of the process (ls_outbox_wake with
 * LS_OUTBOX_WAKE_NOTIFY, on each worker's own thread). No lock: an atomic flag and an eventfd write
 * per worker not already woken. */
void ls_worker_wake_outboxes(void);

/* ---- for the runner's own modules (daemon.c, front.c, request.c, calls.c) ---- */

/* The fields are the runner's; handlers and services use the functions above. */
struct ls_worker {
    const ls_daemon_t *daemon;
    int index;
    pthread_t thread;
    ls_loop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    int listen_fds[LS_CFG_LISTEN_MAX]; /* one per LISTEN address; -1 once handed to h2o */
    h2o_socket_t *listeners[LS_CFG_LISTEN_MAX];
    int nlisteners;
    h2o_socket_t *wake; /* wraps a dup() of wake_fd, which stays open until ls_worker_release */
    int wake_fd;
    atomic_int stop_requested;
    atomic_int outbox_woken; /* ls_worker_wake_outboxes() asked for a round */
    int stopping;
    int closed; /* its clients (pool, HTTP client) are gone: requests still arriving get 503 */
    int pg_conns;
    ls_pg_pool_t *pg;
    ls_http_t *http;
    ls_outbox_t *outbox;               /* NULL unless the daemon has one */
    struct ls_pglisten *outbox_listen; /* worker 0's LISTEN connection, when the daemon has an outbox */
    size_t inflight;                   /* live ls_req_t */
    int disposed;                      /* its h2o context and loop were torn down at exit */
    char rid_prefix[13];
    uint64_t rid_counter;
    ls_metrics_block_t *metrics; /* bound to the worker's thread; set by the runner after init */
};

/*
 * Main thread: prepares w (zeroed first) as worker `index` with pg_conns connections: its loop, its
 * h2o context on conf, a TCP socket of its own for each TCP address of LISTEN and a dup() of
 * unix_fds[i] for each Unix address i. Returns 0, or -1 with err; either way ls_worker_release()
 * must follow.
 */
int ls_worker_init(ls_worker_t *w, const ls_daemon_t *d, h2o_globalconf_t *conf, int index, int pg_conns,
                   const int *unix_fds, char *err, size_t errlen);
/* Main thread: starts the worker's thread. 0, or -1 when it could not be created. */
int ls_worker_start(ls_worker_t *w);
/* Main thread: asks a started worker to stop (it only sets a flag and wakes the worker's loop). */
void ls_worker_request_stop(ls_worker_t *w);
/* Main thread: waits until a started worker's thread has ended. */
void ls_worker_join(ls_worker_t *w);
/* Main thread, after the join (or for a worker never started): frees what is left. Returns 1, or 0
 * when h2o could not dispose the worker's context (idle keep-alive connections were still open):
 * then w must stay allocated and reachable until the process exits. */
int ls_worker_release(ls_worker_t *w, int started);

#endif
