/*
 * trace: W3C Trace Context across daemons (docs/ARCHITECTURE.md §6.1).
 *
 *   traceparent: 00-<trace id: 32 lowercase hex>-<parent id: 16 lowercase hex>-<flags: 2 hex>
 *
 * Every request has a trace: the one its caller's `traceparent` names when that header is valid
 * (a version other than ff, lowercase hex, neither id all zeros; version 00 exactly 55 characters),
 * otherwise a new one (a random trace id, flags 01: its lines are recorded, in the logs). Either way
 * the request gets a random span id of its own; every call it makes sends
 * `00-<trace id>-<its span id>-<flags>`, so the callee's parent is the caller's span. The trace id is
 * written on every log line of the request (log.h), and carried through the outbox (outbox.h).
 *
 * Random ids come from a per-thread generator seeded once from libsodium (sodium_init must have run):
 * no system call, lock or allocation per id. They need to be unique, not secret.
 */
#ifndef LS_TRACE_H
#define LS_TRACE_H

#include <stddef.h>

#define LS_TRACE_ID_LEN    32
#define LS_SPAN_ID_LEN     16
#define LS_TRACEPARENT_LEN 55

typedef struct {
    char trace_id[LS_TRACE_ID_LEN + 1]; /* 32 lowercase hex digits */
    char span_id[LS_SPAN_ID_LEN + 1];   /* this request's own span */
    char parent_id[LS_SPAN_ID_LEN + 1]; /* the caller's span; "" when the trace started here */
    char flags[3];                      /* 2 lowercase hex digits */
} ls_trace_t;

/* Reads a traceparent value (len bytes, need not be NUL-terminated) into t's trace_id, parent_id and
 * flags: 0, or -1 when it is not valid (t is then unchanged). */
int ls_trace_parse(ls_trace_t *t, const char *value, size_t len);
/* t continues the traceparent `value` (NULL: none) when it is valid, else starts a new trace; either
 * way t gets a new span id. Returns 1 when continued, 0 when started here. */
int ls_trace_begin(ls_trace_t *t, const char *value, size_t len);
/* t joins the trace whose id is trace_id (NUL-terminated; e.g. one stored with a row), as a new span
 * without a parent: 0, or -1 when trace_id is not 32 lowercase hex digits, not all zeros (t unchanged). */
int ls_trace_join(ls_trace_t *t, const char *trace_id);
/* Writes the traceparent of a call made within t, "00-<trace id>-<t's span id>-<flags>", and a NUL:
 * out must hold LS_TRACEPARENT_LEN + 1 bytes. */
void ls_trace_format(const ls_trace_t *t, char *out);

#endif
