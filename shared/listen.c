/* listen: opening TCP and Unix listening sockets, and clearing a dead daemon's socket file. */
#include "listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define LISTEN_BACKLOG 1024

int ls_listen_tcp(const ls_cfg_addr_t *a, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[8], name[LS_CFG_UNIX_PATH_MAX + 80];
    int fd = -1, on = 1, rc;

    ls_cfg_addr_format(a, name, sizeof(name));
    snprintf(port, sizeof(port), "%d", a->port);
    if ((rc = getaddrinfo(a->host, port, &hints, &ai)) != 0) {
        snprintf(err, errlen, "LISTEN %s: %s", name, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        snprintf(err, errlen, "LISTEN %s: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* A non-blocking Unix stream socket and the address of path, or -1 with err. */
static int unix_socket(const char *path, struct sockaddr_un *sa, char *err, size_t errlen)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    /* config.c guarantees the path fits sun_path with its NUL */
    memcpy(sa->sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        snprintf(err, errlen, "LISTEN unix:%s: socket: %s", path, strerror(errno));
    return fd;
}

/*
 * What is at path before we bind: nothing (fine), a socket nobody answers on (left by a daemon that
 * died: removed), or a live socket or some other file (an error: never remove what may be in use
 * or is not ours to remove).
 */
static int clear_stale_socket(const char *path, char *err, size_t errlen)
{
    struct stat st;
    struct sockaddr_un sa;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "LISTEN unix:%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "LISTEN unix:%s: the path exists and is not a socket", path);
        return -1;
    }
    /* Non-blocking, so that a live listener with a full backlog (EAGAIN) cannot stall the start. */
    int fd = unix_socket(path, &sa, err, errlen);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)), connect_errno = errno;
    close(fd);
    if (rc == 0 || connect_errno == EAGAIN || connect_errno == EINPROGRESS) {
        snprintf(err, errlen, "LISTEN unix:%s: already in use (another process answers on it)", path);
        return -1;
    }
    if (connect_errno == ENOENT)
        return 0; /* removed meanwhile */
    if (connect_errno != ECONNREFUSED) {
        snprintf(err, errlen, "LISTEN unix:%s: cannot tell whether it is in use: %s", path,
                 strerror(connect_errno));
        return -1;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "LISTEN unix:%s: cannot remove the stale socket: %s", path, strerror(errno));
        return -1;
    }
    ls_logf(LS_LOG_INFO, NULL, "removed stale unix socket %s", path);
    return 0;
}

int ls_listen_unix(ls_unix_listener_t *u, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct stat st;

    u->fd = -1;
    u->path = path;
    if (clear_stale_socket(path, err, errlen) != 0)
        return -1;
    int fd = unix_socket(path, &sa, err, errlen);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(err, errlen, "LISTEN unix:%s: bind: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* Owner and group (the other daemons' account) only; bind() honoured the umask. */
    if (chmod(path, 0660) != 0 || lstat(path, &st) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        snprintf(err, errlen, "LISTEN unix:%s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    u->fd = fd;
    u->dev = st.st_dev;
    u->ino = st.st_ino;
    return 0;
}

void ls_listen_unix_close(ls_unix_listener_t *u)
{
    struct stat st;
    if (u->fd < 0)
        return;
    close(u->fd);
    u->fd = -1;
    if (lstat(u->path, &st) == 0 && st.st_dev == u->dev && st.st_ino == u->ino)
        unlink(u->path);
}
