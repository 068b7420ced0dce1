/*
 * front: the front door every request passes through before its handler runs.
 *
 *   - the path is checked and decoded (url.h's ls_url_path: no "." or ".." segment, no encoded '/',
 *     no '\\', NUL or control character, UTF-8) — 400 otherwise, before any route, built-in ones
 *     included; routes match the decoded path; a query string whose values, decoded, hold a NUL
 *     or bytes that are not UTF-8: 400 too;
 *   - `X-Request-Id` is taken when well-formed (1..64 of [A-Za-z0-9._-]) or generated (the
 *     worker's random prefix and a counter), and echoed on the reply;
 *   - built-in routes, before the daemon's own: GET /healthz (alive: 200), GET /readyz (a
 *     database round trip within 1 s answers 200, otherwise 503; 200 for a daemon with no_database),
 *     GET /metrics (metrics.h; behind the internal token on every daemon, the BFF included) and, on
 *     every daemon but the BFF, POST /batch (batch.h; behind the internal token);
 *   - routing by the daemon's route table: 404 / 405 (with Allow) / 400 for a bad path parameter;
 *   - `Authorization: Bearer <INTERNAL_TOKEN>` checked in constant time (401) unless the route is
 *     LS_ROUTE_PUBLIC, or the daemon's own authenticate() instead when it has one;
 *   - bodies over MAX_BODY_BYTES: 413 (h2o takes in at most one byte more; a larger declared
 *     Content-Length is refused by h2o before the body is read);
 *   - `X-Actor-Telegram-Id` parsed (400 when present and not an id), `X-Actor-Role` likewise
 *     (student|teacher|admin) — both ignored for a daemon with its own authenticate();
 *   - `X-Deadline-Ms` turns into r->deadline (capped by REQUEST_TIMEOUT_MS); 503 when already 0.
 * All errors are application/problem+json, h2o's own included (a response filter rewrites the
 * text/plain 400, 404, 413 and 417 h2o makes by itself; only its "400 Bad Request" to a request
 * line or header block it cannot parse is written straight to the socket, out of reach); each request's
 * access log line comes with its reply (request.h).
 */
#ifndef LS_FRONT_H
#define LS_FRONT_H

#include "daemon.h"

/* Initialises conf for daemon d — server name, entity limit, one host whose every path goes to the
 * front door, the problem+json filter — for the workers' h2o contexts. The caller disposes it
 * (h2o_config_dispose). */
void ls_front_init(h2o_globalconf_t *conf, const ls_daemon_t *d);

/* Serves an item of a batch (batch.c) as the front door serves a request, from its request id on:
 * the same checks and handler, without the caller check (its batch passed it) and the built-in
 * routes (an item naming one finds no route: 404). */
void ls_front_serve_item(ls_req_t *r);

#endif
