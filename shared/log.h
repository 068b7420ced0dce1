/*
 * log: one JSON object per line on stdout.
 *
 *   {"time":"2026-11-22T01:54:00.123Z","level":"info","daemon":"auth-service",
 *    "request_id":"…","trace_id":"…","msg":"…", <fields>}
 *
 * A line is built in a fixed buffer on the caller's stack (LS_LOG_LINE_MAX bytes; longer values are
 * truncated, never split) and written with one write(2), so lines from different threads never
 * interleave. Strings are JSON-escaped here; callers pass raw values.
 *
 *   ls_log_line_t l;
 *   if (ls_log_begin(&l, LS_LOG_INFO, &r->log, "http call")) {
 *       ls_log_str(&l, "target", "auth");
 *       ls_log_int(&l, "status", 200);
 *       ls_log_end(&l);
 *   }
 *
 * ls_log_begin returns 0 (and the line must not be used further) when the level is filtered out.
 *
 * The context says on whose behalf a line is written: a request's r->log (request.h) holds its
 * request id and trace id (trace.h); the pollers fill their own for a delivery; NULL for a line that
 * belongs to no request.
 */
#ifndef LS_LOG_H
#define LS_LOG_H

#include <stddef.h>
#include <stdint.h>

#define LS_LOG_LINE_MAX 2048

typedef enum { LS_LOG_DEBUG = 0, LS_LOG_INFO, LS_LOG_WARN, LS_LOG_ERROR } ls_log_level_t;

typedef struct {
    const char *request_id; /* NULL or "": left out */
    const char *trace_id;   /* NULL or "": left out */
} ls_log_ctx_t;

typedef struct {
    char buf[LS_LOG_LINE_MAX];
    size_t len;
} ls_log_line_t;

/* Process-wide settings; call before starting threads. daemon is not copied: pass a literal. */
void ls_log_init(const char *daemon, ls_log_level_t min_level);
/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int ls_log_level_parse(const char *s, ls_log_level_t *out);
int ls_log_enabled(ls_log_level_t level);

int ls_log_begin(ls_log_line_t *l, ls_log_level_t level, const ls_log_ctx_t *ctx, const char *msg);
void ls_log_str(ls_log_line_t *l, const char *key, const char *value); /* NULL value: JSON null */
void ls_log_strn(ls_log_line_t *l, const char *key, const char *value, size_t len);
void ls_log_int(ls_log_line_t *l, const char *key, int64_t value);
void ls_log_end(ls_log_line_t *l);

/* One-line helpers for a message with no fields. */
void ls_log(ls_log_level_t level, const ls_log_ctx_t *ctx, const char *msg);
void ls_logf(ls_log_level_t level, const ls_log_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
