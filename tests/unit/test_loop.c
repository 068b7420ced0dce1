/* The per-thread loop's timers: order, re-arming from a callback, stopping. */
#include <criterion/criterion.h>

#include "loop.h"

typedef struct {
    ls_timer_t timer;
    int id;
    int *order;
    int *n;
    int rearm; /* times left to re-arm itself */
    ls_loop_t *loop;
} probe_t;

static void on_fire(ls_timer_t *t)
{
    probe_t *p = (probe_t *)t;
    p->order[(*p->n)++] = p->id;
    if (p->rearm-- > 0)
        ls_timer_start(p->loop, &p->timer, 0);
}

static void run_until(ls_loop_t *loop, int *n, int want, uint64_t limit_ms)
{
    uint64_t until = ls_now_ms() + limit_ms;
    while (*n < want && ls_now_ms() < until)
        ls_loop_run_once(loop, 10);
}

Test(loop, timers_fire_in_deadline_order)
{
    ls_loop_t *loop = ls_loop_create();
    int order[16], n = 0;
    probe_t p[5];
    static const int delays[5] = {40, 10, 30, 0, 20};
    for (int i = 0; i < 5; i++) {
        p[i] = (probe_t){.id = i, .order = order, .n = &n, .loop = loop};
        ls_timer_init(&p[i].timer, on_fire);
        ls_timer_start(loop, &p[i].timer, (uint64_t)delays[i]);
    }
    cr_assert_eq(ls_loop_timer_count(loop), 5);
    run_until(loop, &n, 5, 2000);
    cr_assert_eq(n, 5);
    static const int want[5] = {3, 1, 4, 2, 0};
    for (int i = 0; i < 5; i++)
        cr_expect_eq(order[i], want[i], "position %d", i);
    cr_assert_eq(ls_loop_timer_count(loop), 0);
    ls_loop_destroy(loop);
}

Test(loop, stopped_timer_never_fires_and_restart_moves_it)
{
    ls_loop_t *loop = ls_loop_create();
    int order[16], n = 0;
    probe_t a = {.id = 1, .order = order, .n = &n, .loop = loop};
    probe_t b = {.id = 2, .order = order, .n = &n, .loop = loop};
    ls_timer_init(&a.timer, on_fire);
    ls_timer_init(&b.timer, on_fire);
    cr_assert(!ls_timer_is_active(&a.timer));
    ls_timer_start(loop, &a.timer, 5);
    ls_timer_start(loop, &b.timer, 10);
    ls_timer_stop(loop, &a.timer);
    ls_timer_stop(loop, &a.timer); /* harmless twice */
    ls_timer_start(loop, &b.timer, 30);
    cr_assert(ls_timer_is_active(&b.timer));
    uint64_t t0 = ls_now_ms();
    run_until(loop, &n, 1, 2000);
    cr_assert_eq(n, 1);
    cr_assert_eq(order[0], 2);
    cr_assert_geq(ls_now_ms() - t0, 29);
    ls_loop_destroy(loop);
}

Test(loop, rearming_from_its_own_callback_does_not_spin)
{
    ls_loop_t *loop = ls_loop_create();
    int order[64], n = 0;
    probe_t p = {.id = 7, .order = order, .n = &n, .loop = loop, .rearm = 3};
    ls_timer_init(&p.timer, on_fire);
    ls_timer_start(loop, &p.timer, 0);
    /* One iteration fires it once: a zero-delay re-arm waits for the next iteration. */
    ls_loop_run_once(loop, 0);
    cr_assert_eq(n, 1);
    run_until(loop, &n, 4, 2000);
    cr_assert_eq(n, 4);
    cr_assert_eq(ls_loop_timer_count(loop), 0);
    ls_loop_destroy(loop);
}

Test(loop, many_timers_keep_heap_order)
{
    enum { N = 1000 };
    ls_loop_t *loop = ls_loop_create();
    static probe_t p[N];
    static int order[N];
    int n = 0;
    for (int i = 0; i < N; i++) {
        p[i] = (probe_t){.id = i, .order = order, .n = &n, .loop = loop};
        ls_timer_init(&p[i].timer, on_fire);
        ls_timer_start_at(loop, &p[i].timer, ls_now_ms() + (uint64_t)((i * 7919) % 50));
    }
    for (int i = 0; i < N; i += 3)
        ls_timer_stop(loop, &p[i].timer);
    run_until(loop, &n, N - (N + 2) / 3, 3000);
    cr_assert_eq(n, N - (N + 2) / 3);
    for (int i = 1; i < n; i++)
        cr_assert_leq(p[order[i - 1]].timer.at, p[order[i]].timer.at, "fired out of order at %d", i);
    ls_loop_destroy(loop);
}
