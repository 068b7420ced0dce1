/*
 * resolve: host names looked up off the event loop (docs/ARCHITECTURE.md §8).
 *
 * libpq resolves a host name synchronously inside PQconnectPoll, which would stall a worker's loop
 * for as long as DNS takes (seconds when a resolver does not answer). The pool (pg.h) therefore
 * looks the name up here first and gives libpq the numeric address as `hostaddr`, keeping `host` for
 * TLS and messages.
 *
 * An ls_resolver_t belongs to one loop and one host name. ls_resolver_lookup() returns at once and
 * starts a lookup on a thread of its own (getaddrinfo, or the function given at creation) unless one
 * is already running: callers asking meanwhile share that lookup's answer, so at most one lookup
 * thread runs per resolver and connections reconnecting together cost one lookup. Each lookup ends
 * in exactly one call of the resolver's callback, on the loop's thread, never from inside
 * ls_resolver_lookup(): with the numeric addresses, comma-separated (at most LS_RESOLVE_MAX_ADDRS,
 * in getaddrinfo's order, no repeats), or with addrs NULL and a one-line reason. The strings are
 * valid during the callback only. The callback may start the next lookup.
 *
 * ls_resolver_destroy() may be called while a lookup runs (shutdown mid-lookup): the callback is then
 * never called; the thread, which cannot interrupt getaddrinfo, finishes on its own (bounded by the
 * system resolver's timeouts) and frees the little it shares with the resolver. Nothing leaks on any
 * path. A resolver is used from its loop's thread only.
 *
 * ls_resolve_curl_kind() tells whether libcurl resolves without blocking (http.h): "threaded" or
 * "c-ares", or NULL for a synchronous resolver; the daemon warns at start when it is NULL.
 */
#ifndef LS_RESOLVE_H
#define LS_RESOLVE_H

#include <stddef.h>

#include "loop.h"

#define LS_RESOLVE_MAX_ADDRS 4
#define LS_RESOLVE_HOST_MAX  255 /* longest DNS name */
/* Room for LS_RESOLVE_MAX_ADDRS IPv6 addresses (INET6_ADDRSTRLEN) and their commas. */
#define LS_RESOLVE_ADDRS_LEN (LS_RESOLVE_MAX_ADDRS * 46)
#define LS_RESOLVE_ERR_LEN   256

typedef struct ls_resolver ls_resolver_t;

/*
 * A lookup, run on the lookup thread: writes the numeric addresses (comma-separated) into addrs and
 * returns 0, or writes a reason into err and returns -1. ls_resolve_getaddrinfo is the real one;
 * tests give a slow or scripted one.
 */
typedef int (*ls_resolve_fn)(const char *host, char *addrs, size_t addrslen, char *err, size_t errlen);
typedef void (*ls_resolve_cb)(void *ud, const char *addrs, const char *err);

int ls_resolve_getaddrinfo(const char *host, char *addrs, size_t addrslen, char *err, size_t errlen);

/* 1 when host is a name to look up: not empty, not an IPv4 or IPv6 address, not a Unix socket
 * folder (libpq: a leading '/' or '@'), not a list (a comma). */
int ls_resolve_is_name(const char *host);

/* host is copied (at most LS_RESOLVE_HOST_MAX bytes); fn NULL means ls_resolve_getaddrinfo. NULL on
 * allocation failure or a host too long. */
ls_resolver_t *ls_resolver_create(ls_loop_t *loop, const char *host, ls_resolve_fn fn, ls_resolve_cb cb,
                                  void *ud);
/* Starts a lookup unless one runs. 0, or -1 when no thread could be started (no callback follows). */
int ls_resolver_lookup(ls_resolver_t *r);
/* 1 while a lookup runs. */
int ls_resolver_busy(const ls_resolver_t *r);
const char *ls_resolver_host(const ls_resolver_t *r);
/* Abandons a running lookup (its callback is never called) and frees the resolver. NULL is fine. */
void ls_resolver_destroy(ls_resolver_t *r);

/* libcurl's resolver: "threaded", "c-ares", or NULL when it resolves synchronously. */
const char *ls_resolve_curl_kind(void);

#endif
