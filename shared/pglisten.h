/*
 * pglisten: one PostgreSQL connection that LISTENs on a channel and calls back, on its loop, for each
 * NOTIFY (docs/ARCHITECTURE.md §6.4: the outbox's wake-up on `ls_outbox`).
 *
 * The connection is a side pool of one connection (pg.h: connected, resolved and reconnected with
 * backoff without blocking the loop, left out of the pool gauges). Each time it has (re)connected it
 * sends `LISTEN <channel>`; when that has taken effect the callback is called with
 * LS_PGLISTEN_LISTENING, because notifications sent while no connection listened are lost and the
 * caller should look for work once. Then each notification on the channel calls it with
 * LS_PGLISTEN_NOTIFY (several sent in one transaction arrive as one, as PostgreSQL folds equal
 * payloads). A LISTEN that fails with the connection up (an SQL error) is logged and tried again
 * after LS_PGLISTEN_RETRY_MS. Polling stays the caller's fallback: a notification can be late or
 * missing while the connection is down.
 *
 * Used from the loop's thread only. The callback may not stop the listener.
 */
#ifndef LS_PGLISTEN_H
#define LS_PGLISTEN_H

#include "loop.h"

#define LS_PGLISTEN_CHANNEL_MAX 63 /* PostgreSQL's identifier length */
#define LS_PGLISTEN_RETRY_MS    5000

typedef struct ls_pglisten ls_pglisten_t;

typedef enum { LS_PGLISTEN_LISTENING, LS_PGLISTEN_NOTIFY } ls_pglisten_event_t;
typedef void (*ls_pglisten_cb)(void *ud, ls_pglisten_event_t event);

/* Starts connecting. conninfo and application_name are copied; channel must be a lowercase
 * identifier ([a-z_][a-z0-9_]*, at most LS_PGLISTEN_CHANNEL_MAX bytes). NULL when it is not, or on
 * allocation failure. */
ls_pglisten_t *ls_pglisten_start(ls_loop_t *loop, const char *conninfo, const char *application_name,
                                 const char *channel, ls_pglisten_cb cb, void *ud);
/* Closes the connection (the server forgets the LISTEN) and frees it; no callback follows. NULL is
 * ignored. Not from inside the callback. */
void ls_pglisten_stop(ls_pglisten_t *l);

#endif
