#include "fake_upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#define MAX_HEADER_BYTES (64 * 1024)
#define MAX_BODY_BYTES   (16 * 1024 * 1024)
#define MAX_BIG_BYTES    (64 * 1024 * 1024)
#define MAX_SLEEP_MS     60000

struct conn {
    struct conn *next;
    lst_upstream_t *u;
    int fd; /* -1 once the thread closed it; guarded by u->mu */
    int done;
    pthread_t thread;
};

struct fail_key {
    struct fail_key *next;
    int count;
    char key[];
};

struct lst_upstream {
    int listen_fd;
    int port;
    char url[64];
    pthread_t acceptor;

    pthread_mutex_t mu;  /* guards everything below */
    pthread_cond_t wake; /* broadcast on stop so sleeping handlers return */
    int stopping;
    struct conn *conns;
    lst_upstream_handler_t handler;
    void *handler_ud;
    lst_upstream_stats_t stats;
    struct fail_key *fails;
    char *last_headers; /* "name: value\n" lines of the last request, names lower-cased */
};

/* ---- helpers for handlers ---- */

void lst_upstream_respond(lst_upstream_resp_t *resp, int status, const char *content_type, const char *body,
                          size_t body_len)
{
    resp->status = status;
    snprintf(resp->content_type, sizeof(resp->content_type), "%s",
             content_type != NULL ? content_type : "application/json");
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    if (body != NULL && body_len != 0) {
        resp->body = malloc(body_len);
        if (resp->body == NULL)
            abort();
        memcpy(resp->body, body, body_len);
        resp->body_len = body_len;
    }
}

void lst_upstream_respondf(lst_upstream_resp_t *resp, int status, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    lst_upstream_respond(resp, status, NULL, s, (size_t)n);
    free(s);
}

const char *lst_upstream_req_header(const lst_upstream_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->header_count; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    }
    return NULL;
}

int lst_upstream_query_param(const lst_upstream_req_t *req, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    const char *p = req->query;
    while (*p != '\0') {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            size_t vlen = len - nlen - 1;
            if (size != 0) {
                if (vlen >= size)
                    vlen = size - 1;
                memcpy(out, p + nlen + 1, vlen);
                out[vlen] = '\0';
            }
            return 0;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return -1;
}

int lst_upstream_sleep_ms(lst_upstream_t *u, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    int rc = 0;
    pthread_mutex_lock(&u->mu);
    while (!u->stopping) {
        if (pthread_cond_timedwait(&u->wake, &u->mu, &until) == ETIMEDOUT)
            break;
    }
    if (u->stopping)
        rc = -1;
    pthread_mutex_unlock(&u->mu);
    return rc;
}

/* ---- state readers ---- */

int lst_upstream_port(const lst_upstream_t *u)
{
    return u->port;
}

const char *lst_upstream_url(const lst_upstream_t *u)
{
    return u->url;
}

void lst_upstream_set_handler(lst_upstream_t *u, lst_upstream_handler_t handler, void *ud)
{
    pthread_mutex_lock(&u->mu);
    u->handler = handler;
    u->handler_ud = ud;
    pthread_mutex_unlock(&u->mu);
}

void lst_upstream_stats(lst_upstream_t *u, lst_upstream_stats_t *out)
{
    pthread_mutex_lock(&u->mu);
    *out = u->stats;
    pthread_mutex_unlock(&u->mu);
}

void lst_upstream_reset_stats(lst_upstream_t *u)
{
    pthread_mutex_lock(&u->mu);
    u->stats.connections = 0;
    u->stats.requests = 0;
    u->stats.max_in_flight = u->stats.in_flight;
    while (u->fails != NULL) {
        struct fail_key *f = u->fails;
        u->fails = f->next;
        free(f);
    }
    pthread_mutex_unlock(&u->mu);
}

/* Caller holds u->mu. */
static struct fail_key *fail_key_get(lst_upstream_t *u, const char *key, int create)
{
    for (struct fail_key *f = u->fails; f != NULL; f = f->next) {
        if (strcmp(f->key, key) == 0)
            return f;
    }
    if (!create)
        return NULL;
    size_t len = strlen(key);
    struct fail_key *f = calloc(1, sizeof(*f) + len + 1);
    if (f == NULL)
        abort();
    memcpy(f->key, key, len + 1);
    f->next = u->fails;
    u->fails = f;
    return f;
}

int lst_upstream_fail_count(lst_upstream_t *u, const char *key)
{
    pthread_mutex_lock(&u->mu);
    struct fail_key *f = fail_key_get(u, key, 0);
    int n = f != NULL ? f->count : 0;
    pthread_mutex_unlock(&u->mu);
    return n;
}

int lst_upstream_last_header(lst_upstream_t *u, const char *name, char *out, size_t size)
{
    int rc = -1;
    size_t nlen = strlen(name);
    pthread_mutex_lock(&u->mu);
    for (const char *line = u->last_headers; line != NULL && *line != '\0';) {
        const char *eol = strchr(line, '\n');
        if (eol == NULL)
            break;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            if (*v == ' ')
                v++;
            size_t vlen = (size_t)(eol - v);
            if (size != 0) {
                if (vlen >= size)
                    vlen = size - 1;
                memcpy(out, v, vlen);
                out[vlen] = '\0';
            }
            rc = 0;
            break;
        }
        line = eol + 1;
    }
    pthread_mutex_unlock(&u->mu);
    return rc;
}

/* ---- built-in paths ---- */

static long query_long(const lst_upstream_req_t *req, const char *name, long dflt)
{
    char buf[32];
    if (lst_upstream_query_param(req, name, buf, sizeof(buf)) != 0)
        return dflt;
    char *end;
    long v = strtol(buf, &end, 10);
    return (end == buf || *end != '\0') ? dflt : v;
}

static void serve_echo(const lst_upstream_req_t *req, lst_upstream_resp_t *resp)
{
    json_object *o = json_object_new_object(), *h = json_object_new_object();
    json_object_object_add(o, "method", json_object_new_string(req->method));
    json_object_object_add(o, "path", json_object_new_string(req->path));
    json_object_object_add(o, "query", json_object_new_string(req->query));
    json_object_object_add(o, "body", json_object_new_string_len(req->body, (int)req->body_len));
    for (size_t i = 0; i < req->header_count; i++)
        json_object_object_add(h, req->headers[i].name, json_object_new_string(req->headers[i].value));
    json_object_object_add(o, "headers", h);
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    lst_upstream_respond(resp, 200, NULL, s, strlen(s));
    json_object_put(o);
}

static void serve_builtin(lst_upstream_t *u, const lst_upstream_req_t *req, lst_upstream_resp_t *resp)
{
    if (strcmp(req->path, "/echo") == 0) {
        serve_echo(req, resp);
    } else if (strcmp(req->path, "/sleep") == 0) {
        long ms = query_long(req, "ms", 0);
        if (ms < 0 || ms > MAX_SLEEP_MS)
            ms = MAX_SLEEP_MS;
        lst_upstream_sleep_ms(u, (int)ms);
        lst_upstream_respondf(resp, 200, "{\"slept\":%ld}", ms);
    } else if (strcmp(req->path, "/fail") == 0) {
        char key[128];
        if (lst_upstream_query_param(req, "key", key, sizeof(key)) != 0)
            snprintf(key, sizeof(key), "default");
        long times = query_long(req, "times", 1), status = query_long(req, "status", 503);
        pthread_mutex_lock(&u->mu);
        int count = ++fail_key_get(u, key, 1)->count;
        pthread_mutex_unlock(&u->mu);
        if (count <= times)
            lst_upstream_respondf(resp, (int)status, "{\"title\":\"induced failure\",\"status\":%ld}",
                                  status);
        else
            lst_upstream_respondf(resp, 200, "{\"key\":\"%s\",\"count\":%d}", key, count);
    } else if (strcmp(req->path, "/drop") == 0) {
        resp->drop = 1;
    } else if (strcmp(req->path, "/big") == 0) {
        long n = query_long(req, "bytes", 0);
        if (n < 0 || n > MAX_BIG_BYTES)
            n = MAX_BIG_BYTES;
        char *body = malloc((size_t)n + 1);
        if (body == NULL)
            abort();
        memset(body, 'x', (size_t)n);
        lst_upstream_respond(resp, 200, "text/plain", NULL, 0);
        resp->body = body;
        resp->body_len = (size_t)n;
        if (query_long(req, "nolen", 0) != 0)
            resp->no_length = resp->close = 1;
    } else {
        lst_upstream_respondf(resp, 404, "{\"title\":\"not found\",\"status\":404}");
    }
}

/* ---- connections ---- */

static int send_all(int fd, const char *p, size_t n)
{
    while (n != 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 404:
        return "Not Found";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

static int send_response(int fd, const lst_upstream_resp_t *resp)
{
    char head[2048], length[64] = "";
    if (!resp->no_length)
        snprintf(length, sizeof(length), "Content-Length: %zu\r\n", resp->body_len);
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%s%s\r\n", resp->status,
                     reason_phrase(resp->status), resp->content_type, length, resp->extra_headers,
                     resp->close ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        return -1;
    /* One send for small answers: a separate tiny write would meet delayed ACKs on the client. */
    if (resp->body_len <= sizeof(head) - (size_t)n) {
        if (resp->body_len != 0)
            memcpy(head + n, resp->body, resp->body_len);
        return send_all(fd, head, (size_t)n + resp->body_len);
    }
    if (send_all(fd, head, (size_t)n) != 0)
        return -1;
    return send_all(fd, resp->body, resp->body_len);
}

/* Parses the header block buf[0..hdr_len) in place into req; returns 0 or -1. */
static int parse_head(char *buf, size_t hdr_len, lst_upstream_req_t *req)
{
    buf[hdr_len - 2] = '\0'; /* the blank line's CRLF */
    char *line = buf, *eol = strstr(line, "\r\n");
    if (eol == NULL)
        return -1;
    *eol = '\0';
    char *sp1 = strchr(line, ' '), *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL)
        return -1;
    *sp1 = *sp2 = '\0';
    req->method = line;
    req->path = sp1 + 1;
    char *q = strchr(sp1 + 1, '?');
    if (q != NULL) {
        *q = '\0';
        req->query = q + 1;
    } else {
        req->query = "";
    }
    req->header_count = 0;
    for (line = eol + 2; *line != '\0'; line = eol + 2) {
        if ((eol = strstr(line, "\r\n")) == NULL)
            return -1;
        *eol = '\0';
        char *colon = strchr(line, ':');
        if (colon == NULL)
            return -1;
        *colon = '\0';
        for (char *c = line; *c != '\0'; c++)
            *c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (req->header_count < LST_UPSTREAM_MAX_HEADERS) {
            req->headers[req->header_count].name = line;
            req->headers[req->header_count].value = v;
            req->header_count++;
        }
    }
    return 0;
}

static void record_request(lst_upstream_t *u, const lst_upstream_req_t *req)
{
    size_t len = 1;
    for (size_t i = 0; i < req->header_count; i++)
        len += strlen(req->headers[i].name) + strlen(req->headers[i].value) + 3;
    char *s = malloc(len), *p = s;
    if (s == NULL)
        abort();
    for (size_t i = 0; i < req->header_count; i++)
        p += sprintf(p, "%s: %s\n", req->headers[i].name, req->headers[i].value);
    *p = '\0';

    pthread_mutex_lock(&u->mu);
    free(u->last_headers);
    u->last_headers = s;
    u->stats.requests++;
    if (++u->stats.in_flight > u->stats.max_in_flight)
        u->stats.max_in_flight = u->stats.in_flight;
    pthread_mutex_unlock(&u->mu);
}

/* Reads until buf holds at least want bytes; returns 0, or -1 on EOF/error/limit. */
static int fill(int fd, char **buf, size_t *cap, size_t *len, size_t want)
{
    if (want + 1 > *cap) {
        size_t ncap = *cap;
        while (ncap < want + 1)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (nb == NULL)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    while (*len < want) {
        ssize_t r = recv(fd, *buf + *len, *cap - 1 - *len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        *len += (size_t)r;
    }
    return 0;
}

static void serve_connection(lst_upstream_t *u, int fd)
{
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return;
    for (;;) {
        /* Read the header block. */
        char *end;
        for (;;) {
            buf[len] = '\0';
            if ((end = strstr(buf, "\r\n\r\n")) != NULL)
                break;
            if (len >= MAX_HEADER_BYTES || fill(fd, &buf, &cap, &len, len + 1) != 0)
                goto done;
        }
        size_t hdr_len = (size_t)(end - buf) + 4;

        /* Content-Length is looked up before parsing so that the body can be read first. */
        long clen = 0;
        for (char *p = buf; p < end; p++) {
            if ((p == buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
                clen = strtol(p + 15, NULL, 10);
                break;
            }
        }
        if (clen < 0 || clen > MAX_BODY_BYTES)
            goto done;
        if (strcasestr(buf, "\r\nexpect: 100-continue") != NULL && len < hdr_len + (size_t)clen &&
            send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0)
            goto done;
        if (fill(fd, &buf, &cap, &len, hdr_len + (size_t)clen) != 0)
            goto done;

        size_t req_end = hdr_len + (size_t)clen;
        char saved = buf[req_end]; /* first byte of a pipelined request, if any */
        buf[req_end] = '\0';
        lst_upstream_req_t req;
        if (parse_head(buf, hdr_len, &req) != 0)
            goto done;
        req.body = buf + hdr_len;
        req.body_len = (size_t)clen;
        const char *conn_hdr = lst_upstream_req_header(&req, "connection");
        int client_close = conn_hdr != NULL && strcasecmp(conn_hdr, "close") == 0;

        record_request(u, &req);
        lst_upstream_resp_t resp;
        memset(&resp, 0, sizeof(resp));
        resp.status = 200;
        snprintf(resp.content_type, sizeof(resp.content_type), "application/json");

        pthread_mutex_lock(&u->mu);
        lst_upstream_handler_t handler = u->handler;
        void *handler_ud = u->handler_ud;
        pthread_mutex_unlock(&u->mu);
        if (handler == NULL || !handler(handler_ud, u, &req, &resp))
            serve_builtin(u, &req, &resp);
        if (client_close || resp.no_length)
            resp.close = 1;

        int rc = resp.drop ? -1 : send_response(fd, &resp);
        free(resp.body);
        pthread_mutex_lock(&u->mu);
        u->stats.in_flight--;
        pthread_mutex_unlock(&u->mu);
        if (rc != 0 || resp.close)
            goto done;

        buf[req_end] = saved;
        memmove(buf, buf + req_end, len - req_end);
        len -= req_end;
    }
done:
    free(buf);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    lst_upstream_t *u = c->u;
    serve_connection(u, c->fd);
    pthread_mutex_lock(&u->mu);
    close(c->fd);
    c->fd = -1;
    c->done = 1;
    pthread_mutex_unlock(&u->mu);
    return NULL;
}

/* Joins connection threads that have finished; caller must not hold u->mu. */
static void reap(lst_upstream_t *u, int all)
{
    for (;;) {
        struct conn *found = NULL;
        pthread_mutex_lock(&u->mu);
        for (struct conn **pp = &u->conns; *pp != NULL; pp = &(*pp)->next) {
            if (all || (*pp)->done) {
                found = *pp;
                *pp = found->next;
                break;
            }
        }
        pthread_mutex_unlock(&u->mu);
        if (found == NULL)
            return;
        pthread_join(found->thread, NULL);
        free(found);
    }
}

static void *acceptor_main(void *arg)
{
    lst_upstream_t *u = arg;
    for (;;) {
        int fd = accept(u->listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* EINVAL after shutdown() from stop */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        reap(u, 0);

        struct conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->u = u;
        c->fd = fd;
        pthread_mutex_lock(&u->mu);
        if (u->stopping || pthread_create(&c->thread, NULL, conn_main, c) != 0) {
            pthread_mutex_unlock(&u->mu);
            close(fd);
            free(c);
            continue;
        }
        c->next = u->conns;
        u->conns = c;
        u->stats.connections++;
        pthread_mutex_unlock(&u->mu);
    }
    return NULL;
}

lst_upstream_t *lst_upstream_start(void)
{
    lst_upstream_t *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    u->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (u->listen_fd < 0) {
        perror("fake_upstream: socket");
        goto fail;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sa);
    if (bind(u->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(u->listen_fd, 1024) != 0 ||
        getsockname(u->listen_fd, (struct sockaddr *)&sa, &slen) != 0) {
        perror("fake_upstream: bind/listen");
        goto fail;
    }
    u->port = ntohs(sa.sin_port);
    snprintf(u->url, sizeof(u->url), "http://127.0.0.1:%d", u->port);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&u->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&u->mu, NULL);
    if (pthread_create(&u->acceptor, NULL, acceptor_main, u) != 0) {
        fprintf(stderr, "fake_upstream: pthread_create failed\n");
        pthread_cond_destroy(&u->wake);
        pthread_mutex_destroy(&u->mu);
        goto fail;
    }
    return u;

fail:
    if (u->listen_fd >= 0)
        close(u->listen_fd);
    free(u);
    return NULL;
}

void lst_upstream_stop(lst_upstream_t *u)
{
    if (u == NULL)
        return;
    pthread_mutex_lock(&u->mu);
    u->stopping = 1;
    pthread_cond_broadcast(&u->wake);
    for (struct conn *c = u->conns; c != NULL; c = c->next) {
        if (c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&u->mu);

    shutdown(u->listen_fd, SHUT_RDWR); /* wakes accept() */
    pthread_join(u->acceptor, NULL);
    /* No new connections now; break the ones accepted meanwhile, then join all. */
    pthread_mutex_lock(&u->mu);
    for (struct conn *c = u->conns; c != NULL; c = c->next) {
        if (c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&u->mu);
    reap(u, 1);

    close(u->listen_fd);
    lst_upstream_reset_stats(u);
    free(u->last_headers);
    pthread_cond_destroy(&u->wake);
    pthread_mutex_destroy(&u->mu);
    free(u);
}
