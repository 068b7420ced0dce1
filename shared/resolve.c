/*
 * resolve: host names looked up off the event loop (see resolve.h for the contract).
 *
 * A lookup is a job shared by the resolver and a detached thread, with a reference each. The thread
 * runs the lookup, stores the answer, marks the job done (release) and writes to the job's eventfd;
 * the loop watches a dup() of that eventfd (h2o_socket_close closes the dup, the job's own
 * descriptor stays with the job, so the thread never writes to a descriptor that was closed and
 * reused). Whoever drops the last reference closes the eventfd and frees the job: the loop after
 * reading the answer, or the thread when the resolver was destroyed mid-lookup.
 */
#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

typedef struct {
    atomic_int refs; /* the resolver's and the thread's */
    atomic_int done; /* the answer below is complete */
    int efd;         /* the thread writes 1 here when done */
    ls_resolve_fn fn;
    int rc;
    char addrs[LS_RESOLVE_ADDRS_LEN];
    char err[LS_RESOLVE_ERR_LEN];
    char host[LS_RESOLVE_HOST_MAX + 1];
} job_t;

struct ls_resolver {
    ls_loop_t *loop;
    ls_resolve_fn fn;
    ls_resolve_cb cb;
    void *ud;
    job_t *job;         /* the running lookup, or NULL */
    h2o_socket_t *sock; /* watches a dup() of job->efd while it runs */
    char host[LS_RESOLVE_HOST_MAX + 1];
};

static void job_release(job_t *job)
{
    if (atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel) == 1) {
        close(job->efd);
        free(job);
    }
}

static void *job_run(void *arg)
{
    job_t *job = arg;
    job->err[0] = '\0';
    job->rc = job->fn(job->host, job->addrs, sizeof(job->addrs), job->err, sizeof(job->err));
    atomic_store_explicit(&job->done, 1, memory_order_release);
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(job->efd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
    job_release(job);
    return NULL;
}

int ls_resolve_getaddrinfo(const char *host, char *addrs, size_t addrslen, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "could not resolve host name \"%s\": %s", host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    char seen[LS_RESOLVE_MAX_ADDRS][INET6_ADDRSTRLEN];
    int n = 0;
    size_t off = 0;
    addrs[0] = '\0';
    for (const struct addrinfo *ai = res; ai != NULL && n < LS_RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN];
        const void *a;
        if (ai->ai_family == AF_INET)
            a = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
        else if (ai->ai_family == AF_INET6)
            a = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
        else
            continue;
        if (inet_ntop(ai->ai_family, a, text, sizeof(text)) == NULL)
            continue;
        int dup = 0;
        for (int i = 0; i < n && !dup; i++)
            dup = strcmp(seen[i], text) == 0;
        if (dup)
            continue;
        size_t len = strlen(text);
        if (off + (n > 0) + len + 1 > addrslen)
            break;
        snprintf(seen[n++], sizeof(seen[0]), "%s", text);
        off += (size_t)snprintf(addrs + off, addrslen - off, "%s%s", off > 0 ? "," : "", text);
    }
    freeaddrinfo(res);
    if (n == 0) {
        snprintf(err, errlen, "could not resolve host name \"%s\": no IPv4 or IPv6 address", host);
        return -1;
    }
    return 0;
}

int ls_resolve_is_name(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (host == NULL || host[0] == '\0' || host[0] == '/' || host[0] == '@' || strchr(host, ',') != NULL)
        return 0;
    return inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1;
}

ls_resolver_t *ls_resolver_create(ls_loop_t *loop, const char *host, ls_resolve_fn fn, ls_resolve_cb cb,
                                  void *ud)
{
    if (host == NULL || strlen(host) > LS_RESOLVE_HOST_MAX)
        return NULL;
    ls_resolver_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->loop = loop;
    r->fn = fn != NULL ? fn : ls_resolve_getaddrinfo;
    r->cb = cb;
    r->ud = ud;
    snprintf(r->host, sizeof(r->host), "%s", host);
    return r;
}

static void on_job_done(h2o_socket_t *sock, const char *why)
{
    (void)why;
    ls_resolver_t *r = sock->data;
    job_t *job = r->job;
    uint64_t count;
    while (read(h2o_socket_get_fd(sock), &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    if (!atomic_load_explicit(&job->done, memory_order_acquire))
        return;
    h2o_socket_close(sock);
    r->sock = NULL;
    r->job = NULL;
    /* Copied out so that the callback may start the next lookup. */
    int ok = job->rc == 0;
    char addrs[LS_RESOLVE_ADDRS_LEN], err[LS_RESOLVE_ERR_LEN];
    snprintf(addrs, sizeof(addrs), "%s", ok ? job->addrs : "");
    snprintf(err, sizeof(err), "%s", ok ? "" : (job->err[0] != '\0' ? job->err : "host name lookup failed"));
    job_release(job);
    r->cb(r->ud, ok ? addrs : NULL, ok ? NULL : err);
}

int ls_resolver_lookup(ls_resolver_t *r)
{
    if (r->job != NULL)
        return 0;
    job_t *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return -1;
    job->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int watch_fd = job->efd >= 0 ? fcntl(job->efd, F_DUPFD_CLOEXEC, 0) : -1;
    if (watch_fd < 0) {
        if (job->efd >= 0)
            close(job->efd);
        free(job);
        return -1;
    }
    job->fn = r->fn;
    snprintf(job->host, sizeof(job->host), "%s", r->host);
    atomic_init(&job->refs, 2);
    atomic_init(&job->done, 0);

    pthread_attr_t attr;
    pthread_t tid;
    int started = pthread_attr_init(&attr) == 0;
    if (started) {
        started = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                  pthread_create(&tid, &attr, job_run, job) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        close(watch_fd);
        close(job->efd);
        free(job);
        return -1;
    }
    r->job = job;
    r->sock = h2o_evloop_socket_create(ls_loop_evloop(r->loop), watch_fd, H2O_SOCKET_FLAG_DONT_READ);
    r->sock->data = r;
    h2o_socket_read_start(r->sock, on_job_done);
    return 0;
}

int ls_resolver_busy(const ls_resolver_t *r)
{
    return r->job != NULL;
}

const char *ls_resolver_host(const ls_resolver_t *r)
{
    return r->host;
}

void ls_resolver_destroy(ls_resolver_t *r)
{
    if (r == NULL)
        return;
    if (r->sock != NULL)
        h2o_socket_close(r->sock);
    if (r->job != NULL)
        job_release(r->job);
    free(r);
}

const char *ls_resolve_curl_kind(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (v == NULL || !(v->features & CURL_VERSION_ASYNCHDNS))
        return NULL;
    return v->ares != NULL ? "c-ares" : "threaded";
}
