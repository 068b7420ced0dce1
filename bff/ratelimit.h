/*
 * ratelimit: the BFF's rate limits — token buckets in a fixed-size table, and who the client is
 * (its address, through trusted proxies). README "Rate limits and the replay window".
 *
 * A bucket holds up to `burst` tokens and gains `rate` tokens a second; each request takes one and
 * is refused when none is left, with the whole seconds until one is (Retry-After). Keys are 64-bit
 * and never 0 (0 is taken as ~0): a telegram id, or bff_addr_key() of an address. Time is the
 * caller's monotonic milliseconds (the BFF passes the request's arrival, r->started, which the front
 * door read already): nothing here reads a clock, allocates after creation or makes a system call.
 *
 * Memory is fixed whatever the number of callers: BFF_RATE_SLOTS buckets of 24 bytes. A key is hashed
 * with the table's seed (keep it secret: random at start) and looked for in BFF_RATE_PROBE
 * consecutive slots (wrapping), so every operation is O(BFF_RATE_PROBE). A key not found there takes
 * an empty slot of that window, else the bucket of the window that holds the most tokens once
 * refilled (ties: the least recently refilled). A full bucket carries no state, so losing it costs
 * nothing; evicting a fuller-than-others bucket costs its owner at most a fresh full bucket later —
 * a crowd of new callers can make a quiet caller's limit more lenient, never stricter.
 *
 * A table is not thread-safe: the BFF keeps one set per worker thread, with no lock (authenticate.c).
 * A caller on one connection stays on one worker (h2o serves a connection on the worker that
 * accepted it) and meets exactly the configured limit; one whose connections the kernel spreads over
 * several workers (SO_REUSEPORT), or whose proxy does, can get up to THREADS times the rate and the
 * burst in all. The limits are there to stop floods, not to meter a quota: sharing the tables across
 * threads would cost a lock or contended atomics on every request for little gain.
 *
 * Addresses. IPv4 counts per address; IPv6 per /64 (what one host or home gets), an IPv4-mapped
 * IPv6 address as its IPv4 one; a Unix-socket peer has the one key BFF_ADDR_UNIX.
 */
#ifndef BFF_RATELIMIT_H
#define BFF_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define BFF_RATE_SLOTS      4096 /* per table; a power of two */
#define BFF_RATE_PROBE      8
#define BFF_RATE_MAX        1000000       /* the largest rate and burst */
#define BFF_PROXIES_MAX     32            /* entries of TRUSTED_PROXY */
#define BFF_XFF_ENTRIES_MAX 64            /* X-Forwarded-For entries looked at, from the right */
#define BFF_ADDR_TEXT_MAX   64            /* longest address text taken ("[v6%zone]:port" included) */
#define BFF_ADDR_UNIX       0x756e6978ull /* "unix" */

typedef struct bff_rate_table bff_rate_table_t;

/* A table for rate tokens a second (1..BFF_RATE_MAX) and burst (1..BFF_RATE_MAX), its hash keyed by
 * seed. NULL when out of memory or a value is out of range. */
bff_rate_table_t *bff_rate_table_new(uint32_t rate, uint32_t burst, uint64_t seed);
void bff_rate_table_free(bff_rate_table_t *t); /* NULL is ignored */

/* Takes a token of key's bucket at now_ms: 1 when there was one; 0 when refused, with
 * *retry_after_s the whole seconds (at least 1) until the bucket holds one again. */
int bff_rate_take(bff_rate_table_t *t, uint64_t key, uint64_t now_ms, uint32_t *retry_after_s);

/* Slots in use (a key in them): for tests. */
size_t bff_rate_used(const bff_rate_table_t *t);

/* ---- who the client is ---- */

typedef struct {
    int family; /* AF_INET, AF_INET6, AF_UNIX; 0: unknown */
    uint8_t bytes[16];
} bff_addr_t;

/* An address as text: IPv4 or IPv6 (optionally in brackets, with a :port after an IPv4 or a
 * bracketed IPv6, which is ignored). 0, or -1 when it is not one. */
int bff_addr_parse(const char *s, size_t len, bff_addr_t *out);
/* A peer as h2o gives it (get_peername); family 0 when it is of another kind or len is 0. */
void bff_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, bff_addr_t *out);
/* The bucket key of an address (see above); 0 for family 0. */
uint64_t bff_addr_key(const bff_addr_t *a);

/* TRUSTED_PROXY: the proxies whose X-Forwarded-For is believed. */
typedef struct {
    struct {
        int family; /* AF_INET, AF_INET6, or AF_UNIX for the word "unix" (any Unix-socket peer) */
        uint8_t bytes[16];
        int prefix; /* bits compared */
    } net[BFF_PROXIES_MAX];
    size_t n;
} bff_proxies_t;

/* Parses a comma-separated list of addresses, CIDR networks (10.0.0.0/8, fd00::/8) and the word
 * "unix"; spaces around items are allowed; "" is the empty list. 0, or -1 with err. */
int bff_proxies_parse(const char *list, bff_proxies_t *out, char *err, size_t errlen);
int bff_proxies_trust(const bff_proxies_t *p, const bff_addr_t *a);

/* One X-Forwarded-For header line, as it came. */
typedef struct {
    const char *s;
    size_t len;
} bff_xff_t;

/*
 * The client's address from the peer and the X-Forwarded-For lines (in the order they came): the
 * peer when it is not a trusted proxy; else the entries are walked from the right (the last line's
 * last entry first), and the first that is not a trusted proxy is the client; when every entry is
 * a trusted proxy, the leftmost. An entry that is not an address (or the entry limit) stops the walk
 * at the last trusted hop, whose address is then used.
 */
void bff_client_addr(const bff_proxies_t *p, const bff_addr_t *peer, const bff_xff_t *xff, size_t nxff,
                     bff_addr_t *out);

#endif
