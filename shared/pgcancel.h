/*
 * pgcancel: PostgreSQL cancel requests sent without blocking an event loop (docs/ARCHITECTURE.md §3.4).
 *
 * When a query's deadline passes while the server still runs it, the pool (pg.h) has answered the
 * caller already, but the connection stays busy until the server is done. A cancel request ends
 * the statement early (SQLSTATE 57014) so that the connection is free again at once. PostgreSQL
 * 15's libpq can only send one with the blocking PQcancel (a new connection to the server, the
 * request, then a wait until the server closes it), so the loop hands it over here and goes on.
 *
 * One thread per process, started on the first request (with every signal blocked), sends the
 * requests one after another from a FIFO of at most LS_PGCANCEL_QUEUE_MAX. ls_pgcancel_send()
 * never blocks: it takes the PGcancel (from PQgetCancel; freed here in every case) and returns a
 * ticket, or NULL when the FIFO is full or no thread could be started — the cancel is then not
 * sent and the statement ends at statement_timeout (pg.h) or by itself.
 *
 * A ticket is shared by the loop and the thread. ls_pgcancel_done() turns 1 once the server has
 * received the request (or sending it failed): until then the connection must take no new
 * statement, which a late cancel would hit. The loop drops its ticket with ls_pgcancel_release(),
 * done or not (the thread frees it then). Failures to send are logged (warn) by the thread.
 * Tickets are polled, never waited for; the lock is taken only when a cancel is handed over.
 */
#ifndef LS_PGCANCEL_H
#define LS_PGCANCEL_H

#include <libpq-fe.h>

#define LS_PGCANCEL_QUEUE_MAX 64

typedef struct ls_pgcancel ls_pgcancel_t;

/* Takes ownership of cancel (NULL: returns NULL). The ticket, or NULL when not queued. Any thread. */
ls_pgcancel_t *ls_pgcancel_send(PGcancel *cancel);
/* 1 once the request reached the server or failed. */
int ls_pgcancel_done(const ls_pgcancel_t *t);
/* Drops the caller's reference. NULL is fine. */
void ls_pgcancel_release(ls_pgcancel_t *t);

#endif
