/*
 * pgcancel: the cancel thread (see pgcancel.h for the contract).
 *
 * A ticket has two references, the caller's and the queue's (then the thread's); whoever drops the
 * last one frees it. The FIFO is a fixed ring of ticket pointers under one mutex; the thread sleeps
 * on a condition variable while the ring is empty. The thread is never joined: at exit it is
 * waiting on the condition variable, or inside PQcancel for a server that does not answer.
 */
#include "pgcancel.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "log.h"

struct ls_pgcancel {
    atomic_int refs;
    atomic_int done;
    PGcancel *cancel;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static ls_pgcancel_t *ring[LS_PGCANCEL_QUEUE_MAX];
static size_t head, count;
static int started; /* 1: the thread runs; -1: it could not start */

static void ticket_release(ls_pgcancel_t *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        PQfreeCancel(t->cancel);
        free(t);
    }
}

static void *cancel_thread(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (count == 0)
            pthread_cond_wait(&wake, &lock);
        ls_pgcancel_t *t = ring[head];
        ring[head] = NULL;
        head = (head + 1) % LS_PGCANCEL_QUEUE_MAX;
        count--;
        pthread_mutex_unlock(&lock);

        char err[256];
        if (!PQcancel(t->cancel, err, sizeof(err))) {
            ls_log_line_t l;
            if (ls_log_begin(&l, LS_LOG_WARN, NULL, "pg cancel request failed")) {
                ls_log_str(&l, "error", err);
                ls_log_end(&l);
            }
        }
        atomic_store_explicit(&t->done, 1, memory_order_release);
        ticket_release(t);
    }
    return NULL;
}

/* Under lock. Every signal stays blocked in the thread: the daemon's main thread waits for them. */
static int start_thread(void)
{
    if (started != 0)
        return started > 0 ? 0 : -1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_t tid;
    int ok = pthread_attr_init(&attr) == 0;
    if (ok) {
        ok = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
             pthread_create(&tid, &attr, cancel_thread, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    started = ok ? 1 : -1;
    if (!ok)
        ls_log(LS_LOG_ERROR, NULL, "pg: could not start the cancel thread; late statements run to their end");
    return ok ? 0 : -1;
}

ls_pgcancel_t *ls_pgcancel_send(PGcancel *cancel)
{
    if (cancel == NULL)
        return NULL;
    ls_pgcancel_t *t = malloc(sizeof(*t));
    if (t == NULL) {
        PQfreeCancel(cancel);
        return NULL;
    }
    t->cancel = cancel;
    atomic_init(&t->refs, 2);
    atomic_init(&t->done, 0);
    pthread_mutex_lock(&lock);
    int queued = count < LS_PGCANCEL_QUEUE_MAX && start_thread() == 0;
    if (queued) {
        ring[(head + count) % LS_PGCANCEL_QUEUE_MAX] = t;
        count++;
        pthread_cond_signal(&wake);
    }
    pthread_mutex_unlock(&lock);
    if (!queued) {
        PQfreeCancel(cancel);
        free(t);
        return NULL;
    }
    return t;
}

int ls_pgcancel_done(const ls_pgcancel_t *t)
{
    return atomic_load_explicit(&t->done, memory_order_acquire);
}

void ls_pgcancel_release(ls_pgcancel_t *t)
{
    if (t != NULL)
        ticket_release(t);
}
