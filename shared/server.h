/*
 * server: the daemon skeleton every service and the BFF run on — the one header a daemon includes.
 *
 * It gathers the runner's modules, each with its own contract:
 *   daemon.h   ls_daemon_t (what a daemon declares: settings, routes, statements, hooks, outbox)
 *              and ls_daemon_main(), which reads the settings, migrates and runs the workers;
 *   worker.h   one worker thread and what it owns: loop, listeners, pool, HTTP client, outbox;
 *   request.h  ls_req_t: its memory and lifetime, input (path parameters, headers, body, actor)
 *              and replies;
 *   query.h    the query string: parameters, paging, lists of ids;
 *   calls.h    a request's PostgreSQL queries and transactions, its calls to other daemons, and
 *              the batch read.
 * The runner's inner parts — the front door every request passes through (front.h) and the
 * listening sockets (listen.h) — have headers of their own that daemons do not need.
 */
#ifndef LS_SERVER_H
#define LS_SERVER_H

#include "config.h"
#include "http.h"
#include "body.h"
#include "problem.h" /* the body of every error answer */
#include "scalar.h"  /* ids in paths, headers and queries */
#include "loop.h"
#include "pg.h"
#include "router.h"

#include "calls.h"
#include "daemon.h"
#include "query.h"
#include "request.h"
#include "worker.h"

#endif
