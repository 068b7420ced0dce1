#include "loop.h"

#include <stdlib.h>
#include <time.h>

struct ls_loop {
    h2o_evloop_t *evloop;
    ls_timer_t **heap; /* binary min-heap on ->at */
    size_t len, cap;
};

uint64_t ls_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

ls_loop_t *ls_loop_create(void)
{
    ls_loop_t *loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return NULL;
    loop->evloop = h2o_evloop_create();
    return loop;
}

void ls_loop_destroy(ls_loop_t *loop)
{
    if (loop == NULL)
        return;
    h2o_evloop_destroy(loop->evloop);
    free(loop->heap);
    free(loop);
}

h2o_evloop_t *ls_loop_evloop(ls_loop_t *loop)
{
    return loop->evloop;
}

size_t ls_loop_timer_count(const ls_loop_t *loop)
{
    return loop->len;
}

static void heap_place(ls_loop_t *loop, size_t i, ls_timer_t *t)
{
    loop->heap[i] = t;
    t->heap_idx = i;
}

static void heap_up(ls_loop_t *loop, size_t i)
{
    ls_timer_t *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (loop->heap[parent]->at <= t->at)
            break;
        heap_place(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_place(loop, i, t);
}

static void heap_down(ls_loop_t *loop, size_t i)
{
    ls_timer_t *t = loop->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->len)
            break;
        if (child + 1 < loop->len && loop->heap[child + 1]->at < loop->heap[child]->at)
            child++;
        if (t->at <= loop->heap[child]->at)
            break;
        heap_place(loop, i, loop->heap[child]);
        i = child;
    }
    heap_place(loop, i, t);
}

void ls_timer_init(ls_timer_t *timer, ls_timer_cb cb)
{
    timer->cb = cb;
    timer->at = 0;
    timer->heap_idx = SIZE_MAX;
}

void ls_timer_stop(ls_loop_t *loop, ls_timer_t *timer)
{
    size_t i = timer->heap_idx;
    if (i == SIZE_MAX)
        return;
    timer->heap_idx = SIZE_MAX;
    ls_timer_t *last = loop->heap[--loop->len];
    if (i == loop->len)
        return;
    heap_place(loop, i, last);
    heap_up(loop, i);
    heap_down(loop, last->heap_idx);
}

void ls_timer_start_at(ls_loop_t *loop, ls_timer_t *timer, uint64_t at_ms)
{
    ls_timer_stop(loop, timer);
    if (loop->len == loop->cap) {
        size_t cap = loop->cap ? loop->cap * 2 : 64;
        ls_timer_t **heap = realloc(loop->heap, cap * sizeof(*heap));
        if (heap == NULL)
            h2o_fatal("ls_timer_start: out of memory");
        loop->heap = heap;
        loop->cap = cap;
    }
    timer->at = at_ms;
    heap_place(loop, loop->len++, timer);
    heap_up(loop, timer->heap_idx);
}

void ls_timer_start(ls_loop_t *loop, ls_timer_t *timer, uint64_t delay_ms)
{
    ls_timer_start_at(loop, timer, ls_now_ms() + delay_ms);
}

int ls_loop_run_once(ls_loop_t *loop, int32_t max_wait_ms)
{
    int32_t wait = max_wait_ms;
    if (loop->len != 0) {
        uint64_t now = ls_now_ms(), at = loop->heap[0]->at;
        uint64_t until = at > now ? at - now : 0;
        if (until < (uint64_t)wait)
            wait = (int32_t)until;
    }
    if (h2o_evloop_run(loop->evloop, wait) != 0)
        return -1;

    /* Fire what is due now; timers armed by callbacks for "now" wait for the next iteration so that
     * a callback re-arming itself with delay 0 cannot starve I/O. */
    uint64_t now = ls_now_ms();
    size_t budget = loop->len;
    while (budget-- > 0 && loop->len != 0 && loop->heap[0]->at <= now) {
        ls_timer_t *t = loop->heap[0];
        ls_timer_stop(loop, t);
        t->cb(t);
    }
    return 0;
}
