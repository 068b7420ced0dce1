/*
 * chore: a periodic background job on one worker's loop (the lesson sweep, the reminder sweep) —
 * one round at a time, the next one `period_ms` after the last ended (at once when it asks), the
 * first at once — whose queries and calls may still be pending when the worker stops it.
 *
 * The owner embeds an ls_chore_t in a struct of its own, allocated with malloc, and gives that
 * struct as `owner`. A round starts with round(c) and ends with exactly one ls_chore_done(). Each
 * piece of work whose callback will come (ls_pg_exec, ls_pg_begin, ls_http_send, …) is preceded by
 * ls_chore_hold(), and its callback starts with `if (ls_chore_release(c)) return;`.
 *
 * Stopping (from on_worker_stop, before the worker destroys its HTTP client and pool):
 * ls_chore_stop() disarms the timer; pending callbacks then come as the client and pool are
 * destroyed, each ls_chore_release() answers 1, and the last one frees `owner` — or ls_chore_stop
 * itself does when nothing is pending. A transaction left open so is rolled back and freed by the
 * pool's destruction. Everything here runs on the loop's thread.
 */
#ifndef LS_CHORE_H
#define LS_CHORE_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"

typedef struct ls_chore ls_chore_t;

struct ls_chore {
    ls_loop_t *loop;
    ls_timer_t timer;
    uint64_t period_ms;
    void (*round)(ls_chore_t *c);
    void *owner; /* freed with free() once stopped and nothing is pending */
    size_t pending;
    int running;
    int stopped;
};

/* Arms the first round (on the loop's next iteration). c lies inside owner. */
void ls_chore_start(ls_chore_t *c, void *owner, ls_loop_t *loop, uint64_t period_ms,
                    void (*round)(ls_chore_t *c));
/* Before submitting work whose callback will come. */
void ls_chore_hold(ls_chore_t *c);
/* First thing in such a callback: 1 when the chore is stopped (owner may be freed: return at once
 * without touching it), else 0. */
int ls_chore_release(ls_chore_t *c);
/* The round is over: the next one after period_ms, or on the next iteration when again != 0. */
void ls_chore_done(ls_chore_t *c, int again);
/* No more rounds; owner is freed now or with the last pending callback. */
void ls_chore_stop(ls_chore_t *c);

#endif
