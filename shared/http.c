/*
 * http: libcurl multi on an ls_loop_t.
 *
 * Socket ownership. Connection sockets are created by us (CURLOPT_OPENSOCKETFUNCTION) and closed by
 * us (CURLOPT_CLOSESOCKETFUNCTION); between the two, a struct sock holds an h2o wrapper around a
 * dup() of the fd (h2o_socket_close() closes the fd it wraps). When curl says CURL_POLL_REMOVE for
 * such a socket (it does after every transfer on an idle keep-alive connection) the wrapper is
 * only parked: a pending write notification is ignored when it fires, and reading stays on, so
 * that the next transfer on the connection costs no epoll_ctl() to start it again and this one none
 * to stop it (two system calls of about ten per call). A parked socket that becomes readable (the
 * server closed the idle connection) stops reading then; curl finds the connection dead when it
 * next looks at it. Other sockets curl reports (e.g. its resolver's) are wrapped on first sight and
 * dropped on REMOVE.
 *
 * Reentrancy. curl may close a socket while we are inside curl_multi_socket_action() for that
 * same socket, and user callbacks may start new requests from inside our I/O callbacks. Closed
 * sockets therefore go to a dead list that is freed only when the outermost entry point returns
 * (http->depth back to 0).
 */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"
#include "metrics.h"
#include "trace.h"

#define DEFAULT_MAX_ATTEMPTS       3
#define DEFAULT_RETRY_BASE_MS      25
#define DEFAULT_MAX_RESPONSE_BYTES (8 * 1024 * 1024)
#define DEFAULT_MAX_HOST_CONNS     64
#define MAX_BACKOFF_MS             10000
#define MAX_URL_LEN                8192
#define MAX_HEADER_VALUE_LEN       256 /* request id, idempotency key, target */
#define MAX_METHOD_LEN             16
#define MAX_FREE_CALLS             256
#define KEEP_BUFFER_BYTES          (64 * 1024) /* larger buffers are not kept for reuse */
#define MAX_HEADERS                12
#define ACTOR_HDR_SIZE             48
#define DEADLINE_HDR_SIZE          40
#define UNIX_PATH_MAX              (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* A base URL "unix:/path" names a Unix socket. */
static const char unix_scheme[] = "unix:";

/*
 * The origin of requests on a Unix socket: a host name of its own per socket path. libcurl counts
 * CURLMOPT_MAX_HOST_CONNECTIONS per host name and port, so one name for every socket would make all
 * Unix upstreams share one upstream's connection limit, and under load close connections to one
 * socket to open them to another.
 */
static size_t unix_origin(const char *path, size_t len, char *out, size_t size)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)path[i]) * 16777619u;
    return (size_t)snprintf(out, size, "http://unix-%08x", (unsigned)h);
}

struct sock {
    ls_http_t *http;
    curl_socket_t fd;
    h2o_socket_t *h2o;  /* wraps a dup() of fd */
    int want;           /* CURL_POLL_* last asked by curl; 0 when parked */
    unsigned owned : 1; /* opened by on_opensocket, closed by on_closesocket */
    unsigned reading : 1;
    unsigned write_armed : 1; /* an h2o write notification is pending (cannot be cancelled) */
    unsigned closed : 1;
    struct sock *next_dead;
};

enum call_state {
    CALL_FREE,
    CALL_RUNNING,   /* easy handle is in the multi */
    CALL_WAITING,   /* backoff before the next attempt */
    CALL_FINISHING, /* outcome known; completion deferred to the next loop iteration */
};

typedef struct call {
    ls_http_t *http;
    CURL *easy;
    struct call *next, *prev; /* in-flight list, or free list (next only) */
    ls_timer_t timer;         /* retry backoff or deferred completion */
    enum call_state state;
    ls_http_cb cb;
    void *ud;
    uint64_t started, deadline;
    uint64_t t0_ns; /* for ls_upstream_call_duration_seconds */
    int attempts;
    int idempotent;
    int too_large;
    ls_http_outcome_t outcome;
    int status;
    const char *error;

    /* Request strings in one reusable buffer: url, target, method, header lines, body. */
    char *strs;
    size_t strs_cap;
    const char *url, *path, *target, *method, *request_id, *trace_id, *body;
    size_t body_len;
    char *deadline_hdr;
    struct curl_slist hdrs[MAX_HEADERS]; /* built by hand: curl only walks the list */

    char *resp;
    size_t resp_len, resp_cap;
    char errbuf[CURL_ERROR_SIZE];
} call_t;

struct ls_http {
    ls_loop_t *loop;
    h2o_evloop_t *evloop;
    CURLM *multi;
    ls_timer_t timer;  /* curl's timer */
    char *auth_header; /* NULL for an external client */
    int external;
    int max_attempts, retry_base_ms;
    size_t max_response_bytes;
    call_t *free_calls;
    size_t free_count;
    call_t *inflight_head;
    size_t inflight;
    struct sock **socks; /* indexed by fd */
    size_t socks_cap;
    struct sock *dead;
    int depth;
    int destroying;
    uint64_t rng;
};

static void start_attempt(call_t *c);
static void complete(call_t *c);

/* ---- entry/exit bookkeeping ---- */

static void enter(ls_http_t *http)
{
    http->depth++;
}

static void leave(ls_http_t *http)
{
    if (--http->depth != 0)
        return;
    while (http->dead != NULL) {
        struct sock *s = http->dead;
        http->dead = s->next_dead;
        free(s);
    }
}

static uint64_t next_random(ls_http_t *http)
{
    /* xorshift64: jitter only needs to spread retries, not to be unpredictable */
    uint64_t x = http->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return http->rng = x;
}

/* ---- sockets ---- */

static struct sock *sock_lookup(ls_http_t *http, curl_socket_t fd)
{
    return (fd >= 0 && (size_t)fd < http->socks_cap) ? http->socks[fd] : NULL;
}

/* Unlinks s, closes its wrapper (not curl's fd) and queues it for freeing. */
static void sock_close(ls_http_t *http, struct sock *s)
{
    if (s->closed)
        return;
    s->closed = 1;
    http->socks[s->fd] = NULL;
    h2o_socket_close(s->h2o);
    s->h2o = NULL;
    s->next_dead = http->dead;
    http->dead = s;
}

static struct sock *sock_new(ls_http_t *http, curl_socket_t fd, int owned)
{
    if ((size_t)fd >= http->socks_cap) {
        size_t cap = http->socks_cap ? http->socks_cap : 256;
        while (cap <= (size_t)fd)
            cap *= 2;
        struct sock **socks = realloc(http->socks, cap * sizeof(*socks));
        if (socks == NULL)
            return NULL;
        memset(socks + http->socks_cap, 0, (cap - http->socks_cap) * sizeof(*socks));
        http->socks = socks;
        http->socks_cap = cap;
    }
    /* A stale entry means curl closed a foreign fd without REMOVE and the number came back. */
    if (http->socks[fd] != NULL)
        sock_close(http, http->socks[fd]);

    struct sock *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dupfd < 0) {
        free(s);
        return NULL;
    }
    s->http = http;
    s->fd = fd;
    s->owned = owned != 0;
    s->h2o = h2o_evloop_socket_create(http->evloop, dupfd, H2O_SOCKET_FLAG_DONT_READ);
    s->h2o->data = s;
    http->socks[fd] = s;
    return s;
}

static void drain_done(ls_http_t *http);

static void socket_action(ls_http_t *http, curl_socket_t fd, int ev)
{
    int running;
    curl_multi_socket_action(http->multi, fd, ev, &running);
    drain_done(http);
}

static void on_writable(h2o_socket_t *h2o, const char *err);

static void arm_write(struct sock *s)
{
    if (!s->write_armed) {
        s->write_armed = 1;
        h2o_socket_notify_write(s->h2o, on_writable);
    }
}

static void on_readable(h2o_socket_t *h2o, const char *err)
{
    struct sock *s = h2o->data;
    ls_http_t *http = s->http;
    if (s->want == 0) { /* parked: nobody is waiting for this, and curl reads it when it reuses it */
        h2o_socket_read_stop(s->h2o);
        s->reading = 0;
        return;
    }
    enter(http);
    socket_action(http, s->fd, CURL_CSELECT_IN);
    leave(http);
}

static void on_writable(h2o_socket_t *h2o, const char *err)
{
    struct sock *s = h2o->data;
    ls_http_t *http = s->http;
    s->write_armed = 0;
    if ((s->want & CURL_POLL_OUT) == 0)
        return; /* stale: curl stopped wanting to write since we armed it */
    enter(http);
    socket_action(http, s->fd, CURL_CSELECT_OUT);
    /* curl reports only changes of interest, so a one-shot notification must be re-armed here. */
    if (!s->closed && (s->want & CURL_POLL_OUT) != 0)
        arm_write(s);
    leave(http);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    ls_http_t *http = userp;
    struct sock *s = sock_lookup(http, fd);

    if (what == CURL_POLL_REMOVE) {
        if (s == NULL)
            return 0;
        if (!s->owned) {
            sock_close(http, s);
            return 0;
        }
        /* Park: the connection may be reused; on_closesocket ends it. Reading stays on (above). */
        s->want = 0;
        return 0;
    }

    if (s == NULL && (s = sock_new(http, fd, 0)) == NULL)
        return -1;
    s->want = what;
    if ((what & CURL_POLL_IN) != 0) {
        if (!s->reading) {
            h2o_socket_read_start(s->h2o, on_readable);
            s->reading = 1;
        }
    } else if (s->reading) {
        h2o_socket_read_stop(s->h2o);
        s->reading = 0;
    }
    if ((what & CURL_POLL_OUT) != 0)
        arm_write(s);
    return 0;
}

static curl_socket_t on_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    ls_http_t *http = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    if (sock_new(http, fd, 1) == NULL) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    return fd;
}

static int on_closesocket(void *clientp, curl_socket_t fd)
{
    ls_http_t *http = clientp;
    struct sock *s = sock_lookup(http, fd);
    if (s != NULL)
        sock_close(http, s); /* before close(): the fd number must not be reused meanwhile */
    return close(fd);
}

/* ---- curl's timer ---- */

static void on_curl_timer(ls_timer_t *timer)
{
    ls_http_t *http = H2O_STRUCT_FROM_MEMBER(ls_http_t, timer, timer);
    enter(http);
    socket_action(http, CURL_SOCKET_TIMEOUT, 0);
    leave(http);
}

static int on_curl_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
    ls_http_t *http = userp;
    if (timeout_ms < 0)
        ls_timer_stop(http->loop, &http->timer);
    else
        ls_timer_start(http->loop, &http->timer, (uint64_t)timeout_ms);
    return 0;
}

/* ---- calls ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    call_t *c = userp;
    size_t n = size * nmemb, max = c->http->max_response_bytes;
    if (n > max - c->resp_len) {
        c->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (c->resp_len + n + 1 > c->resp_cap) {
        size_t cap = c->resp_cap ? c->resp_cap : 4096;
        while (cap < c->resp_len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        char *p = realloc(c->resp, cap);
        if (p == NULL)
            return 0;
        c->resp = p;
        c->resp_cap = cap;
    }
    memcpy(c->resp + c->resp_len, data, n);
    c->resp_len += n;
    return n;
}

static void on_call_timer(ls_timer_t *timer)
{
    call_t *c = H2O_STRUCT_FROM_MEMBER(call_t, timer, timer);
    ls_http_t *http = c->http;
    enter(http);
    if (c->state == CALL_WAITING)
        start_attempt(c);
    else
        complete(c);
    leave(http);
}

static call_t *call_get(ls_http_t *http)
{
    call_t *c = http->free_calls;
    if (c != NULL) {
        http->free_calls = c->next;
        http->free_count--;
        return c;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    if ((c->easy = curl_easy_init()) == NULL) {
        free(c);
        return NULL;
    }
    c->http = http;
    ls_timer_init(&c->timer, on_call_timer);
    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)http->max_response_bytes);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, http);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_closesocket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, http);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
    /* Internal calls never go through a proxy, and without this curl reads the proxy variables
     * from the environment on every request (getenv showed up in profiles). */
    if (!http->external)
        curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    return c;
}

static void call_free(call_t *c)
{
    curl_easy_cleanup(c->easy);
    free(c->strs);
    free(c->resp);
    free(c);
}

static void call_release(ls_http_t *http, call_t *c)
{
    c->state = CALL_FREE;
    c->cb = NULL;
    c->ud = NULL;
    if (http->free_count >= MAX_FREE_CALLS || http->destroying) {
        call_free(c);
        return;
    }
    /* One huge body must not pin its memory for the life of the worker. */
    if (c->strs_cap > KEEP_BUFFER_BYTES) {
        free(c->strs);
        c->strs = NULL;
        c->strs_cap = 0;
    }
    if (c->resp_cap > KEEP_BUFFER_BYTES) {
        free(c->resp);
        c->resp = NULL;
        c->resp_cap = 0;
    }
    c->next = http->free_calls;
    http->free_calls = c;
    http->free_count++;
}

static void inflight_unlink(ls_http_t *http, call_t *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        http->inflight_head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    http->inflight--;
}

/* Completion from a zero-delay timer, for failures found inside ls_http_send(). */
static void complete_later(call_t *c)
{
    c->state = CALL_FINISHING;
    ls_timer_start(c->http->loop, &c->timer, 0);
}

static void log_call(const call_t *c, uint64_t duration)
{
    ls_log_level_t level =
        (c->outcome == LS_HTTP_OK && c->status >= 200 && c->status < 500) ? LS_LOG_INFO : LS_LOG_WARN;
    ls_log_line_t l;
    ls_log_ctx_t ctx = {c->request_id, c->trace_id};
    if (!ls_log_begin(&l, level, &ctx, "http call"))
        return;
    ls_log_str(&l, "target", c->target);
    ls_log_str(&l, "method", c->method);
    ls_log_str(&l, "path", c->path);
    ls_log_int(&l, "status", c->status);
    ls_log_int(&l, "duration_ms", (int64_t)duration);
    ls_log_int(&l, "attempt", c->attempts);
    if (c->outcome != LS_HTTP_OK)
        ls_log_str(&l, "error", c->error);
    ls_log_end(&l);
}

/* Calls the callback and recycles c. c must not be in the multi and its timer must be stopped. */
static void complete(call_t *c)
{
    ls_http_t *http = c->http;
    uint64_t duration = ls_now_ms() - c->started;

    ls_http_response_t resp = {
        .outcome = c->outcome,
        .status = c->status,
        .body = "",
        .attempts = c->attempts,
        .duration_ms = duration,
        .error = c->outcome == LS_HTTP_OK ? NULL : c->error,
    };
    if (c->outcome == LS_HTTP_OK) {
        if (c->resp_len != 0) {
            c->resp[c->resp_len] = '\0';
            resp.body = c->resp;
            resp.body_len = c->resp_len;
        }
        char *ct = NULL;
        if (curl_easy_getinfo(c->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK)
            resp.content_type = ct;
    }
    log_call(c, duration);
    ls_metrics_upstream_call(ls_metrics_target(c->target), ls_metrics_http_outcome(c->outcome, c->status),
                             c->t0_ns, c->attempts);
    inflight_unlink(http, c);
    c->state = CALL_FREE;
    c->cb(c->ud, &resp);
    call_release(http, c);
}

static ls_http_outcome_t classify(call_t *c, CURLcode rc)
{
    if (c->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return LS_HTTP_TOO_LARGE;
    switch (rc) {
    case CURLE_OK:
        return LS_HTTP_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return LS_HTTP_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
        return LS_HTTP_CONNECT_ERROR;
    default:
        return LS_HTTP_ERROR;
    }
}

static void on_attempt_done(call_t *c, CURLcode rc)
{
    ls_http_t *http = c->http;
    curl_multi_remove_handle(http->multi, c->easy);

    c->outcome = classify(c, rc);
    c->status = 0;
    if (c->outcome == LS_HTTP_OK) {
        long code = 0;
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
        c->status = (int)code;
        c->error = NULL;
    } else if (c->outcome == LS_HTTP_TOO_LARGE) {
        c->error = "response body too large";
    } else {
        c->error = c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(rc);
    }

    int retryable = c->outcome == LS_HTTP_CONNECT_ERROR ||
                    (c->outcome == LS_HTTP_OK && c->status >= 502 && c->status <= 504);
    if (retryable && c->idempotent && c->attempts < http->max_attempts) {
        uint64_t delay = (uint64_t)http->retry_base_ms << (c->attempts - 1 < 16 ? c->attempts - 1 : 16);
        if (delay > MAX_BACKOFF_MS)
            delay = MAX_BACKOFF_MS;
        delay = delay / 2 + next_random(http) % (delay / 2 + 1);
        if (ls_now_ms() + delay < c->deadline) {
            c->state = CALL_WAITING;
            ls_timer_start(http->loop, &c->timer, delay);
            return;
        }
    }
    complete(c);
}

static void drain_done(ls_http_t *http)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(http->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result;
        call_t *c = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (c != NULL && c->state == CALL_RUNNING)
            on_attempt_done(c, rc);
    }
}

/*
 * Hands the next attempt to curl. Returns 0, or -1 with the outcome set when there is no time left
 * (the outcome of the last attempt is kept, if there was one) or curl refused the handle.
 */
static int begin_attempt(call_t *c)
{
    uint64_t now = ls_now_ms();
    if (now >= c->deadline) {
        if (c->attempts == 0) {
            c->outcome = LS_HTTP_TIMEOUT;
            c->status = 0;
            c->error = "deadline passed before sending";
        }
        return -1;
    }
    uint64_t left = c->deadline - now;
    if (left > INT32_MAX) /* a deadline days away is a caller bug; keep curl's long in range */
        left = INT32_MAX;
    if (c->deadline_hdr != NULL)
        snprintf(c->deadline_hdr, DEADLINE_HDR_SIZE, "X-Deadline-Ms: %" PRIu64, left);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)left);
    c->attempts++;
    c->too_large = 0;
    c->resp_len = 0;
    c->errbuf[0] = '\0';
    CURLMcode mc = curl_multi_add_handle(c->http->multi, c->easy);
    if (mc != CURLM_OK) {
        c->outcome = LS_HTTP_ERROR;
        c->status = 0;
        c->error = curl_multi_strerror(mc);
        return -1;
    }
    c->state = CALL_RUNNING;
    return 0;
}

/* Retry timer: the backoff is over. */
static void start_attempt(call_t *c)
{
    if (begin_attempt(c) != 0)
        complete(c);
}

/* ---- public API ---- */

ls_http_t *ls_http_create(ls_loop_t *loop, const ls_http_config_t *config)
{
    if (loop == NULL || config == NULL || (config->internal_token == NULL && !config->external))
        return NULL;
    ls_http_t *http = calloc(1, sizeof(*http));
    if (http == NULL)
        return NULL;
    http->loop = loop;
    http->evloop = ls_loop_evloop(loop);
    ls_timer_init(&http->timer, on_curl_timer);
    http->max_attempts = config->max_attempts > 0 ? config->max_attempts : DEFAULT_MAX_ATTEMPTS;
    http->retry_base_ms = config->retry_base_ms > 0 ? config->retry_base_ms : DEFAULT_RETRY_BASE_MS;
    http->max_response_bytes =
        config->max_response_bytes > 0 ? config->max_response_bytes : DEFAULT_MAX_RESPONSE_BYTES;
    long host_conns =
        config->max_host_connections > 0 ? config->max_host_connections : DEFAULT_MAX_HOST_CONNS;
    long cache = host_conns * 8;
    if (cache < 16)
        cache = 16;
    if (cache > 1024)
        cache = 1024;
    http->rng = (ls_now_ms() << 20) ^ (uint64_t)(uintptr_t)http ^ 0x9e3779b97f4a7c15ULL;

    http->external = config->external;
    if (!http->external &&
        asprintf(&http->auth_header, "Authorization: Bearer %s", config->internal_token) < 0) {
        http->auth_header = NULL;
        goto fail;
    }
    if ((http->multi = curl_multi_init()) == NULL)
        goto fail;
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer_set);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS, host_conns);
    curl_multi_setopt(http->multi, CURLMOPT_MAXCONNECTS, cache);
    return http;

fail:
    free(http->auth_header);
    free(http);
    return NULL;
}

void ls_http_destroy(ls_http_t *http)
{
    if (http == NULL)
        return;
    enter(http);
    http->destroying = 1;
    while (http->inflight_head != NULL) {
        call_t *c = http->inflight_head;
        if (c->state == CALL_RUNNING)
            curl_multi_remove_handle(http->multi, c->easy);
        ls_timer_stop(http->loop, &c->timer);
        c->outcome = LS_HTTP_ERROR;
        c->status = 0;
        c->error = "http client destroyed";
        complete(c);
    }
    curl_multi_cleanup(http->multi); /* closes cached connections through on_closesocket */
    while (http->free_calls != NULL) {
        call_t *c = http->free_calls;
        http->free_calls = c->next;
        call_free(c);
    }
    /* Whatever curl did not close through us (its resolver's sockets): drop our wrappers only. */
    for (size_t fd = 0; fd < http->socks_cap; fd++) {
        if (http->socks[fd] != NULL)
            sock_close(http, http->socks[fd]);
    }
    ls_timer_stop(http->loop, &http->timer); /* after curl_multi_cleanup: it may still set the timer */
    leave(http);
    free(http->socks);
    free(http->auth_header);
    free(http);
}

size_t ls_http_inflight(const ls_http_t *http)
{
    return http->inflight;
}

static int valid_header_value(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (n >= max || (unsigned char)s[n] < 0x20 || s[n] == 0x7f)
            return 0;
    }
    return 1;
}

static int valid_method(const char *m)
{
    size_t n = 0;
    for (; m[n] != '\0'; n++) {
        if (n >= MAX_METHOD_LEN || m[n] < 'A' || m[n] > 'Z')
            return 0;
    }
    return n != 0;
}

/* Appends s (len bytes, plus a NUL) at *pos of c->strs; returns its address. */
static char *put(call_t *c, size_t *pos, const char *s, size_t len)
{
    char *dst = c->strs + *pos;
    if (len != 0)
        memcpy(dst, s, len);
    dst[len] = '\0';
    *pos += len + 1;
    return dst;
}

static void add_header(call_t *c, size_t *n, char *line)
{
    c->hdrs[*n].data = line;
    c->hdrs[*n].next = NULL;
    if (*n != 0)
        c->hdrs[*n - 1].next = &c->hdrs[*n];
    (*n)++;
}

int ls_http_send(ls_http_t *http, const ls_http_request_t *req, ls_http_cb cb, void *ud)
{
    if (http == NULL || req == NULL || cb == NULL || http->destroying || req->base_url == NULL ||
        req->method == NULL || req->path == NULL || req->path[0] != '/' || req->deadline == 0 ||
        !valid_method(req->method))
        return -1;
    const char *target = req->target != NULL ? req->target : "";
    const char *rid = req->request_id, *ikey = req->idempotency_key, *role = req->actor_role;
    const char *tp = req->traceparent;
    ls_trace_t trace;
    if (ikey != NULL && ikey[0] == '\0')
        ikey = NULL;
    if (!valid_header_value(target, MAX_HEADER_VALUE_LEN) ||
        (rid != NULL && !valid_header_value(rid, MAX_HEADER_VALUE_LEN)) ||
        (ikey != NULL && !valid_header_value(ikey, MAX_HEADER_VALUE_LEN)) ||
        (role != NULL && !valid_header_value(role, 16)) ||
        (tp != NULL &&
         (strlen(tp) != LS_TRACEPARENT_LEN || ls_trace_parse(&trace, tp, LS_TRACEPARENT_LEN) != 0)))
        return -1;
    size_t base_len = strlen(req->base_url), path_len = strlen(req->path);
    if (base_len + path_len > MAX_URL_LEN || !valid_header_value(req->path, MAX_URL_LEN))
        return -1;
    /* "unix:/path": connect to that socket and ask for http://unix-<hash of path><path> on it. */
    const char *origin = req->base_url, *unix_path = NULL;
    char unix_host[32];
    if (strncmp(req->base_url, unix_scheme, sizeof(unix_scheme) - 1) == 0) {
        unix_path = req->base_url + sizeof(unix_scheme) - 1;
        size_t unix_len = base_len - (sizeof(unix_scheme) - 1);
        if (unix_len == 0 || unix_len > UNIX_PATH_MAX || unix_path[0] != '/' ||
            !valid_header_value(unix_path, UNIX_PATH_MAX))
            return -1;
        base_len = unix_origin(unix_path, unix_len, unix_host, sizeof(unix_host));
        origin = unix_host;
    }
    size_t body_len = req->body != NULL ? req->body_len : 0;

    size_t need = base_len + path_len + 1 + strlen(target) + 1 + strlen(req->method) + 1 +
                  (rid != NULL ? strlen(rid) + sizeof("X-Request-Id: ") : 0) + ACTOR_HDR_SIZE +
                  (role != NULL ? strlen(role) + sizeof("X-Actor-Role: ") : 0) + DEADLINE_HDR_SIZE +
                  (ikey != NULL ? strlen(ikey) + sizeof("Idempotency-Key: ") : 0) +
                  (tp != NULL ? LS_TRACEPARENT_LEN + sizeof("traceparent: ") + LS_TRACE_ID_LEN + 1 : 0) +
                  body_len + 1;
    if (need < body_len) /* overflow */
        return -1;

    call_t *c = call_get(http);
    if (c == NULL)
        return -1;
    if (c->strs_cap < need) {
        char *p = realloc(c->strs, need);
        if (p == NULL) {
            call_release(http, c);
            return -1;
        }
        c->strs = p;
        c->strs_cap = need;
    }

    size_t pos = 0, nh = 0;
    c->url = c->strs;
    memcpy(c->strs, origin, base_len);
    pos = base_len;
    c->path = put(c, &pos, req->path, path_len);
    c->target = put(c, &pos, target, strlen(target));
    c->method = put(c, &pos, req->method, strlen(req->method));
    c->request_id = NULL;
    c->trace_id = tp != NULL ? put(c, &pos, tp + 3, LS_TRACE_ID_LEN) : NULL; /* 00-<trace id>-… */
    if (http->external) {
        /* Outside the system: the request id is only for our own log line. */
        if (rid != NULL)
            c->request_id = put(c, &pos, rid, strlen(rid));
        c->deadline_hdr = NULL;
        goto headers_done;
    }
    add_header(c, &nh, http->auth_header);
    /* Daemons answer JSON whatever Accept says: curl's default Accept line is bytes on every call. */
    add_header(c, &nh, "Accept:");
    if (rid != NULL) {
        char *line = c->strs + pos;
        pos += (size_t)sprintf(line, "X-Request-Id: %s", rid) + 1;
        c->request_id = line + sizeof("X-Request-Id: ") - 1;
        add_header(c, &nh, line);
    }
    if (tp != NULL) {
        char *line = c->strs + pos;
        pos += (size_t)sprintf(line, "traceparent: %s", tp) + 1;
        add_header(c, &nh, line);
    }
    if (req->actor > 0) {
        char *line = c->strs + pos;
        pos += (size_t)snprintf(line, ACTOR_HDR_SIZE, "X-Actor-Telegram-Id: %" PRId64, req->actor) + 1;
        add_header(c, &nh, line);
    }
    if (role != NULL) {
        char *line = c->strs + pos;
        pos += (size_t)sprintf(line, "X-Actor-Role: %s", role) + 1;
        add_header(c, &nh, line);
    }
    c->deadline_hdr = c->strs + pos;
    c->deadline_hdr[0] = '\0';
    pos += DEADLINE_HDR_SIZE;
    add_header(c, &nh, c->deadline_hdr);
    if (ikey != NULL) {
        char *line = c->strs + pos;
        pos += (size_t)sprintf(line, "Idempotency-Key: %s", ikey) + 1;
        add_header(c, &nh, line);
    }
headers_done:;
    int has_body = req->body != NULL;
    int is_get = strcmp(req->method, "GET") == 0, is_head = strcmp(req->method, "HEAD") == 0;
    int is_post = strcmp(req->method, "POST") == 0;
    int sends_body =
        has_body || is_post || strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0;
    /* Without a body, a suppressed Content-Type stops curl from adding its form default. */
    add_header(c, &nh, has_body ? "Content-Type: application/json" : "Content-Type:");
    add_header(c, &nh, "Expect:");
    c->body = put(c, &pos, req->body, body_len);
    c->body_len = body_len;

    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    /* Easy handles are reused across upstreams: set or clear the socket path every time (curl
     * copies it). */
    curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, unix_path);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L); /* resets the method, NOBODY and upload of the last use */
    if (is_head) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (sends_body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
    }
    const char *custom = (is_get || is_head || is_post) ? NULL : c->method;
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, custom);

    c->cb = cb;
    c->ud = ud;
    c->started = ls_now_ms();
    c->t0_ns = ls_metrics_now_ns();
    c->deadline = req->deadline;
    c->attempts = 0;
    c->idempotent = req->idempotent || ikey != NULL || is_get || is_head || strcmp(req->method, "PUT") == 0 ||
                    strcmp(req->method, "DELETE") == 0;
    c->resp_len = 0;
    c->outcome = LS_HTTP_ERROR;
    c->status = 0;
    c->error = NULL;

    c->prev = NULL;
    c->next = http->inflight_head;
    if (c->next != NULL)
        c->next->prev = c;
    http->inflight_head = c;
    http->inflight++;

    /* curl_multi_add_handle() only arms curl's timer (with 0), so the request goes out from the
     * next loop iteration and no callback can run inside this function. */
    enter(http);
    if (begin_attempt(c) != 0)
        complete_later(c);
    leave(http);
    return 0;
}
