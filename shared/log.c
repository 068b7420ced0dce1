/*
 * log: JSON lines, and the buffer that keeps a slow stdout away from the workers (see log.h).
 *
 * The buffer is a byte ring: producers append whole lines under the mutex; the writer takes the
 * longest contiguous run, writes it outside the mutex (producers only touch the free part) and then
 * frees it. The writer is woken only when it sleeps (writer_waiting), so a busy writer costs the
 * producers no system call.
 */
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "text.h"

static const char *log_daemon = "daemon";
static ls_log_level_t log_min = LS_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ls_log_init(const char *daemon, ls_log_level_t min_level)
{
    log_daemon = daemon;
    log_min = min_level;
}

int ls_log_level_parse(const char *s, ls_log_level_t *out)
{
    for (int i = 0; i <= LS_LOG_ERROR; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (ls_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

int ls_log_enabled(ls_log_level_t level)
{
    return level >= log_min;
}

/* Room kept at the end of the buffer for the closing "}\n". */
#define RESERVE 2

static void put_raw(ls_log_line_t *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - RESERVE - l->len;
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Appends a JSON string literal; truncates the value (not the quotes, nor an escape) when the line is
 * full. '/' is left as it is, so that paths read as they are. */
static void put_json_string(ls_log_line_t *l, const char *s, size_t n)
{
    size_t limit = sizeof(l->buf) - RESERVE - 1; /* keep room for the closing quote */
    if (l->len >= limit)
        return;
    l->buf[l->len++] = '"';
    l->len += ls_json_escape(l->buf + l->len, limit - l->len, s, n, 0, NULL);
    l->buf[l->len++] = '"';
}

static void put_key(ls_log_line_t *l, const char *key)
{
    put_raw(l, ",", 1);
    put_json_string(l, key, strlen(key));
    put_raw(l, ":", 1);
}

/* Appends "key":"value" unless value is NULL or empty. */
static void put_id(ls_log_line_t *l, const char *key, const char *value)
{
    if (value != NULL && value[0] != '\0') {
        put_key(l, key);
        put_json_string(l, value, strlen(value));
    }
}

int ls_log_begin(ls_log_line_t *l, ls_log_level_t level, const ls_log_ctx_t *ctx, const char *msg)
{
    if (level < log_min)
        return 0;
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(l->buf, sizeof(l->buf),
                     "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"%s\",\"daemon\":",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), level_names[level]);
    l->len = (size_t)n;
    put_json_string(l, log_daemon, strlen(log_daemon));
    if (ctx != NULL) {
        put_id(l, "request_id", ctx->request_id);
        put_id(l, "trace_id", ctx->trace_id);
    }
    put_key(l, "msg");
    put_json_string(l, msg, strlen(msg));
    return 1;
}

void ls_log_strn(ls_log_line_t *l, const char *key, const char *value, size_t len)
{
    put_key(l, key);
    if (value == NULL)
        put_raw(l, "null", 4);
    else
        put_json_string(l, value, len);
}

void ls_log_str(ls_log_line_t *l, const char *key, const char *value)
{
    ls_log_strn(l, key, value, value ? strlen(value) : 0);
}

void ls_log_int(ls_log_line_t *l, const char *key, int64_t value)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", (long long)value);
    put_key(l, key);
    put_raw(l, num, (size_t)n);
}

/* Writes all of p to stdout, waiting when it is non-blocking and full; gives up on an error (there
 * is nowhere to report a failing log). */
static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = STDOUT_FILENO, .events = POLLOUT};
            poll(&pfd, 1, -1);
        } else if (w == 0 || errno != EINTR) {
            return;
        }
    }
}

static struct {
    pthread_mutex_t lock;
    pthread_cond_t more;    /* lines or a stop for the writer */
    pthread_cond_t drained; /* the ring emptied, or the writer ended */
    char *ring;
    size_t cap, head, len;
    uint64_t unreported; /* dropped since the last "log lines dropped" line */
    int running;         /* lines go through the ring */
    int writer_waiting, stopping;
    pthread_t thread;
} w = {
    .lock = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER, .drained = PTHREAD_COND_INITIALIZER};
static atomic_uint_least64_t dropped_total;

uint64_t ls_log_dropped(void)
{
    return atomic_load_explicit(&dropped_total, memory_order_relaxed);
}

/* The writer's own line, written directly (it is the writer). */
static void write_dropped_line(uint64_t n)
{
    ls_log_line_t l;
    if (!ls_log_begin(&l, LS_LOG_WARN, NULL, "log lines dropped"))
        return;
    ls_log_int(&l, "dropped", (int64_t)n);
    ls_log_int(&l, "dropped_total", (int64_t)ls_log_dropped());
    l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';
    write_all(l.buf, l.len);
}

static void *writer_main(void *arg)
{
    (void)arg;
    int between_lines = 1; /* a run may end inside a line that wraps around the ring's end */
    pthread_mutex_lock(&w.lock);
    for (;;) {
        if (w.unreported > 0 && between_lines) {
            uint64_t n = w.unreported;
            w.unreported = 0;
            pthread_mutex_unlock(&w.lock);
            write_dropped_line(n);
            pthread_mutex_lock(&w.lock);
            continue;
        }
        if (w.len == 0) {
            pthread_cond_broadcast(&w.drained);
            if (w.stopping)
                break;
            w.writer_waiting = 1;
            pthread_cond_wait(&w.more, &w.lock);
            w.writer_waiting = 0;
            continue;
        }
        size_t n = w.cap - w.head < w.len ? w.cap - w.head : w.len;
        const char *p = w.ring + w.head;
        pthread_mutex_unlock(&w.lock);
        write_all(p, n);
        between_lines = p[n - 1] == '\n';
        pthread_mutex_lock(&w.lock);
        w.head = (w.head + n) % w.cap;
        w.len -= n;
    }
    w.running = 0;
    pthread_cond_broadcast(&w.drained);
    pthread_mutex_unlock(&w.lock);
    return NULL;
}

int ls_log_start(size_t capacity)
{
    if (capacity < 4 * LS_LOG_LINE_MAX)
        capacity = 4 * LS_LOG_LINE_MAX;
    pthread_mutex_lock(&w.lock);
    int rc = -1;
    if (w.running || w.ring != NULL) /* already running, or a writer left behind still owns it */
        goto out;
    w.ring = malloc(capacity);
    if (w.ring == NULL)
        goto out;
    w.cap = capacity;
    w.head = w.len = 0;
    w.stopping = 0;
    /* Every signal stays blocked in the writer: the daemon's main thread waits for them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w.thread, NULL, writer_main, NULL) == 0 ? 0 : -1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0) {
        w.running = 1;
    } else {
        free(w.ring);
        w.ring = NULL;
    }
out:
    pthread_mutex_unlock(&w.lock);
    return rc;
}

void ls_log_stop(int wait_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w.lock);
    if (!w.running) {
        pthread_mutex_unlock(&w.lock);
        return;
    }
    w.stopping = 1;
    pthread_cond_signal(&w.more);
    int rc = 0;
    while (w.running && rc == 0)
        rc = pthread_cond_timedwait(&w.drained, &w.lock, &until);
    int ended = !w.running;
    /* A writer still blocked keeps the ring; later lines wait there, or are dropped and counted. */
    pthread_mutex_unlock(&w.lock);
    if (ended) {
        pthread_join(w.thread, NULL);
        free(w.ring);
        w.ring = NULL;
    }
}

void ls_log_end(ls_log_line_t *l)
{
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    pthread_mutex_lock(&w.lock);
    if (!w.running) { /* not started, or the writer has ended: nothing is pending */
        pthread_mutex_unlock(&w.lock);
        write_all(l->buf, l->len);
        return;
    }
    if (w.cap - w.len < l->len) {
        w.unreported++;
        atomic_fetch_add_explicit(&dropped_total, 1, memory_order_relaxed);
    } else {
        size_t tail = (w.head + w.len) % w.cap;
        size_t first = w.cap - tail < l->len ? w.cap - tail : l->len;
        memcpy(w.ring + tail, l->buf, first);
        memcpy(w.ring, l->buf + first, l->len - first);
        w.len += l->len;
        if (w.writer_waiting)
            pthread_cond_signal(&w.more);
    }
    pthread_mutex_unlock(&w.lock);
}

void ls_log(ls_log_level_t level, const ls_log_ctx_t *ctx, const char *msg)
{
    ls_log_line_t l;
    if (ls_log_begin(&l, level, ctx, msg))
        ls_log_end(&l);
}

void ls_logf(ls_log_level_t level, const ls_log_ctx_t *ctx, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (!ls_log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ls_log(level, ctx, msg);
}
