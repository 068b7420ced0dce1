/*
 * listen: the daemon's listening sockets, one per LISTEN address (config.h).
 *
 * TCP: every worker binds its own socket to the address with SO_REUSEPORT, so the kernel spreads
 * connections across workers (TCP_NODELAY is set; accepted sockets inherit it).
 * Unix: the main thread binds the path once (mode 0660: owner and group) and every worker watches
 * a dup() of it. What is already at the path is checked first: nothing is fine, a socket nobody
 * answers on (left by a daemon that died) is removed, and a live socket or any other file is an
 * error — nothing that may be in use, or is not ours, is ever removed. At shutdown the file goes
 * only if it is still the one we bound.
 *
 * All sockets are non-blocking and close-on-exec. Errors name the LISTEN address.
 */
#ifndef LS_LISTEN_H
#define LS_LISTEN_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

/* A Unix socket bound by the main thread. */
typedef struct {
    int fd; /* -1 when not (or no longer) open */
    const char *path;
    dev_t dev; /* identity of the file we created, so that shutdown removes only ours */
    ino_t ino;
} ls_unix_listener_t;

/* A TCP listening socket of the calling worker's own; its descriptor, or -1 with err. */
int ls_listen_tcp(const ls_cfg_addr_t *a, char *err, size_t errlen);
/* Binds path once for all workers. Returns 0, or -1 with err and nothing left behind (u->fd -1). */
int ls_listen_unix(ls_unix_listener_t *u, const char *path, char *err, size_t errlen)
    __attribute__((nonnull));
/* Closes the main thread's descriptor and removes the file if it is still ours; harmless when
 * u->fd is -1. */
void ls_listen_unix_close(ls_unix_listener_t *u);

#endif
