/*
 * log: one JSON object per line on stdout.
 *
 *   {"time":"2026-11-22T01:54:00.123Z","level":"info","daemon":"auth-service",
 *    "request_id":"…","trace_id":"…","msg":"…", <fields>}
 *
 * A line is built in a fixed buffer on the caller's stack (LS_LOG_LINE_MAX bytes; longer values are
 * truncated, never split). Strings are JSON-escaped here; callers pass raw values.
 *
 * Where a finished line goes: until ls_log_start() it is written to stdout at once (one write(2)
 * per line). After it, the line is copied whole into a bounded process-wide buffer (a byte ring
 * under a mutex, no allocation) that a writer thread drains to stdout, so a stdout that nobody reads
 * blocks only that thread, never a worker. When the buffer has no room for a line, the line is
 * dropped and counted (ls_log_dropped(): ls_log_dropped_lines_total in /metrics), and the writer
 * writes a warn line "log lines dropped" with how many as soon as it can write again. Lines are
 * never cut nor interleaved (only the writer writes, whole lines in the order they were
 * accepted, so each thread's lines keep their order). ls_log_stop() flushes what is pending,
 * waiting at most the time it is given, and stops the writer; lines after it are written at once.
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

/* Starts the writer thread with a buffer of capacity bytes (at least 4 * LS_LOG_LINE_MAX; more is
 * taken). Main thread, before other threads log. 0, or -1 (lines are then written at once). */
int ls_log_start(size_t capacity);
/* Flushes the pending lines, waiting at most wait_ms, and stops the writer (left behind, blocked,
 * when stdout takes nothing: its lines are lost). Main thread, after the others stopped logging. */
void ls_log_stop(int wait_ms);
/* Lines dropped because the buffer was full, since the process started. Any thread. */
uint64_t ls_log_dropped(void);

/* One-line helpers for a message with no fields. */
void ls_log(ls_log_level_t level, const ls_log_ctx_t *ctx, const char *msg);
void ls_logf(ls_log_level_t level, const ls_log_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
