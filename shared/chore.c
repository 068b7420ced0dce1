/* chore: a periodic background job on one worker's loop (chore.h). */
#include "chore.h"

#include <stdlib.h>

static void on_timer(ls_timer_t *t)
{
    ls_chore_t *c = (ls_chore_t *)((char *)t - offsetof(ls_chore_t, timer));
    if (c->running || c->stopped)
        return;
    c->running = 1;
    c->round(c);
}

void ls_chore_start(ls_chore_t *c, void *owner, ls_loop_t *loop, uint64_t period_ms,
                    void (*round)(ls_chore_t *c))
{
    c->loop = loop;
    c->period_ms = period_ms;
    c->round = round;
    c->owner = owner;
    c->pending = 0;
    c->running = c->stopped = 0;
    ls_timer_init(&c->timer, on_timer);
    ls_timer_start(loop, &c->timer, 0);
}

void ls_chore_hold(ls_chore_t *c)
{
    c->pending++;
}

int ls_chore_release(ls_chore_t *c)
{
    c->pending--;
    if (!c->stopped)
        return 0;
    if (c->pending == 0)
        free(c->owner);
    return 1;
}

void ls_chore_done(ls_chore_t *c, int again)
{
    c->running = 0;
    if (!c->stopped)
        ls_timer_start(c->loop, &c->timer, again ? 0 : c->period_ms);
}

void ls_chore_stop(ls_chore_t *c)
{
    ls_timer_stop(c->loop, &c->timer);
    c->stopped = 1;
    /* Held while deciding, so that the release below frees owner only when nothing is pending. */
    c->pending++;
    ls_chore_release(c);
}
