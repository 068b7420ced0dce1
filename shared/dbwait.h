/*
 * dbwait: the blocking connection a daemon makes at start-up (for its migrations), waiting for a
 * database that is not up yet — in a container deployment the database may well start after its
 * service, or restart while the service starts.
 *
 * ls_dbwait_connect() tries to connect; after each failure it logs one warning line (attempt
 * number, libpq's reason, which names host and port but never the password, and the time until the
 * next try) and tries again with backoff (250 ms doubling to 5 s), until wait_ms have passed since
 * the first attempt. Every failure is retried alike (refused, no such host yet, the database system
 * starting up, a role or database not yet created): the wait is bounded, and a lasting
 * misconfiguration stops the daemon with the same reason once it is over. Each attempt's
 * connect_timeout is cut to the time left (libpq's minimum is 2 s), so the whole wait overruns
 * wait_ms by at most that. wait_ms 0: one attempt, no wait.
 *
 * Blocking by design: it runs before any worker exists (docs/ARCHITECTURE.md §3.2).
 */
#ifndef LS_DBWAIT_H
#define LS_DBWAIT_H

#include <stddef.h>

#include <libpq-fe.h>

#define LS_DBWAIT_BACKOFF_MIN_MS 250
#define LS_DBWAIT_BACKOFF_MAX_MS 5000

/*
 * Connects to conninfo (a libpq URL or key=value string; client_encoding UTF8 and
 * fallback_application_name are set, the string may override them). Returns the connection
 * (the caller PQfinish()es it), or NULL with err saying why: after a wait, "PostgreSQL not reachable
 * within DATABASE_WAIT_MS=<wait_ms> ms (<n> attempts): <last reason>"; without one, "cannot connect
 * to PostgreSQL: <reason>".
 */
PGconn *ls_dbwait_connect(const char *conninfo, const char *fallback_application_name, long long wait_ms,
                          char *err, size_t errlen);

#endif
