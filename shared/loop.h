/*
 * loop: one event loop per worker thread — h2o's evloop plus a timer heap.
 *
 * h2o 2.2.5 only has fixed-duration h2o_timeout_t, and re-linking one from its own callback fires it
 * again at once. Everything in this project that needs "call me in N ms" (curl's timer, retry
 * backoff, PostgreSQL reconnects, query deadlines, deferred callbacks) uses ls_timer_t instead.
 *
 * Ownership: the caller owns every ls_timer_t (usually embedded in a larger struct) and must stop it
 * before freeing that memory. A timer may be started, re-started or stopped from anywhere on the
 * loop's thread, including its own callback. Nothing here is thread-safe: one loop, one thread.
 */
#ifndef LS_LOOP_H
#define LS_LOOP_H

#include <stddef.h>
#include <stdint.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

typedef struct ls_loop ls_loop_t;
typedef struct ls_timer ls_timer_t;
typedef void (*ls_timer_cb)(ls_timer_t *timer);

struct ls_timer {
    ls_timer_cb cb;
    uint64_t at;     /* monotonic ms at which it fires */
    size_t heap_idx; /* position in the loop's heap, SIZE_MAX when not active */
};

/* Monotonic clock in milliseconds (CLOCK_MONOTONIC); comparable across threads. */
uint64_t ls_now_ms(void);

/* Creates a loop around a new h2o_evloop_t. Returns NULL on allocation failure. */
ls_loop_t *ls_loop_create(void);
/* Frees the loop. All timers must have been stopped and all sockets closed. */
void ls_loop_destroy(ls_loop_t *loop);
h2o_evloop_t *ls_loop_evloop(ls_loop_t *loop);

/*
 * Runs one iteration: waits for I/O for at most max_wait_ms (less when a timer is due sooner), then
 * fires every timer that is due. Returns 0, or -1 if the underlying evloop failed.
 */
int ls_loop_run_once(ls_loop_t *loop, int32_t max_wait_ms);

void ls_timer_init(ls_timer_t *timer, ls_timer_cb cb);
/* Arms (or re-arms) the timer to fire after delay_ms (0: on the next iteration, never synchronously). */
void ls_timer_start(ls_loop_t *loop, ls_timer_t *timer, uint64_t delay_ms);
/* Arms the timer at an absolute monotonic time. */
void ls_timer_start_at(ls_loop_t *loop, ls_timer_t *timer, uint64_t at_ms);
/* Disarms the timer; harmless when it is not armed. */
void ls_timer_stop(ls_loop_t *loop, ls_timer_t *timer);
static inline int ls_timer_is_active(const ls_timer_t *timer)
{
    return timer->heap_idx != SIZE_MAX;
}
/* Number of armed timers (for tests and leak checks). */
size_t ls_loop_timer_count(const ls_loop_t *loop);

#endif
