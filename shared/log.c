#include "log.h"

#include <stdarg.h>
#include <stdio.h>
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

void ls_log_end(ls_log_line_t *l)
{
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    ssize_t off = 0;
    while ((size_t)off < l->len) {
        ssize_t w = write(STDOUT_FILENO, l->buf + off, l->len - (size_t)off);
        if (w <= 0)
            break; /* nowhere to report a failing log */
        off += w;
    }
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
