/* trace: traceparent parsing and formatting, random trace and span ids. */
#include "trace.h"

#include <stdint.h>
#include <string.h>

#include <sodium.h>

static const char hex[] = "0123456789abcdef";

/* splitmix64 on a per-thread state seeded once from libsodium. */
static _Thread_local uint64_t rng_state;
static _Thread_local int rng_seeded;

static uint64_t next_random(void)
{
    if (!rng_seeded) {
        randombytes_buf(&rng_state, sizeof(rng_state));
        rng_seeded = 1;
    }
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* n random lowercase hex digits (n a multiple of 16, never all zeros) and a NUL. */
static void random_hex(char *out, size_t n)
{
    uint64_t any = 0;
    do {
        for (size_t i = 0; i < n; i += 16) {
            uint64_t v = next_random();
            any |= v;
            for (size_t k = 0; k < 16; k++, v >>= 4)
                out[i + k] = hex[v & 15];
        }
    } while (any == 0);
    out[n] = '\0';
}

/* 1 when s[0..n) is lowercase hex and, with nonzero, not all zeros. */
static int is_hex(const char *s, size_t n, int nonzero)
{
    int zero = 1;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
        zero &= s[i] == '0';
    }
    return !(nonzero && zero);
}

int ls_trace_parse(ls_trace_t *t, const char *v, size_t len)
{
    /* 00-<32>-<16>-<2>: the dashes at 2, 35 and 52. A later version may append "-…". */
    if (v == NULL || len < LS_TRACEPARENT_LEN || !is_hex(v, 2, 0) || memcmp(v, "ff", 2) == 0 || v[2] != '-' ||
        v[35] != '-' || v[52] != '-' || !is_hex(v + 3, LS_TRACE_ID_LEN, 1) ||
        !is_hex(v + 36, LS_SPAN_ID_LEN, 1) || !is_hex(v + 53, 2, 0))
        return -1;
    if (len != LS_TRACEPARENT_LEN && (memcmp(v, "00", 2) == 0 || v[LS_TRACEPARENT_LEN] != '-'))
        return -1;
    memcpy(t->trace_id, v + 3, LS_TRACE_ID_LEN);
    t->trace_id[LS_TRACE_ID_LEN] = '\0';
    memcpy(t->parent_id, v + 36, LS_SPAN_ID_LEN);
    t->parent_id[LS_SPAN_ID_LEN] = '\0';
    memcpy(t->flags, v + 53, 2);
    t->flags[2] = '\0';
    return 0;
}

/* A span of t's own: with the caller's parent_id and flags when continued, else none and 01. */
static int new_span(ls_trace_t *t, int continued)
{
    if (!continued) {
        t->parent_id[0] = '\0';
        memcpy(t->flags, "01", 3);
    }
    random_hex(t->span_id, LS_SPAN_ID_LEN);
    return continued;
}

int ls_trace_begin(ls_trace_t *t, const char *value, size_t len)
{
    if (ls_trace_parse(t, value, len) == 0)
        return new_span(t, 1);
    random_hex(t->trace_id, LS_TRACE_ID_LEN);
    return new_span(t, 0);
}

int ls_trace_join(ls_trace_t *t, const char *trace_id)
{
    if (trace_id == NULL || strlen(trace_id) != LS_TRACE_ID_LEN || !is_hex(trace_id, LS_TRACE_ID_LEN, 1))
        return -1;
    memcpy(t->trace_id, trace_id, LS_TRACE_ID_LEN + 1);
    return new_span(t, 0);
}

void ls_trace_format(const ls_trace_t *t, char *out)
{
    memcpy(out, "00-", 3);
    memcpy(out + 3, t->trace_id, LS_TRACE_ID_LEN);
    out[35] = '-';
    memcpy(out + 36, t->span_id, LS_SPAN_ID_LEN);
    out[52] = '-';
    memcpy(out + 53, t->flags, 2);
    out[LS_TRACEPARENT_LEN] = '\0';
}
