/*
 * front: the front door every request passes through before its handler runs.
 *
 *   - `X-Request-Id` is taken when well-formed (1..64 of [A-Za-z0-9._-]) or generated (the
 *     worker's random prefix and a counter), and echoed on the reply;
 *   - built-in routes, before the daemon's own: GET /healthz (alive: 200), GET /readyz (a
 *     database round trip within 1 s answers 200, otherwise 503; 200 for a daemon with no_database)
 *     and GET /metrics (metrics.h; behind the internal token on every daemon, the BFF included);
 *   - routing by the daemon's route table: 404 / 405 (with Allow) / 400 for a bad path parameter;
 *   - `Authorization: Bearer <INTERNAL_TOKEN>` checked in constant time (401) unless the route is
 *     LS_ROUTE_PUBLIC, or the daemon's own authenticate() instead when it has one;
 *   - bodies over MAX_BODY_BYTES: 413;
 *   - `X-Actor-Telegram-Id` parsed (400 when present and not an id), `X-Actor-Role` likewise
 *     (student|teacher|admin) — both ignored for a daemon with its own authenticate();
 *   - `X-Deadline-Ms` turns into r->deadline (capped by REQUEST_TIMEOUT_MS); 503 when already 0.
 * All errors are application/problem+json; each request's access log line comes with its reply
 * (request.h).
 */
#ifndef LS_FRONT_H
#define LS_FRONT_H

#include "daemon.h"

/* Initialises conf for daemon d — server name, entity limit, one host whose every path goes to the
 * front door — for the workers' h2o contexts. The caller disposes it (h2o_config_dispose). */
void ls_front_init(h2o_globalconf_t *conf, const ls_daemon_t *d);

#endif
