/* ratelimit: token buckets in a fixed table and the client's address. See ratelimit.h. */
#include "ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* Tokens are counted in thousandths: `rate` tokens a second is `rate` thousandths a millisecond. */
#define MILLI 1000u

typedef struct {
    uint64_t key; /* 0: empty */
    uint64_t at;  /* ms of the last refill */
    uint32_t milli;
} bucket_t;

struct bff_rate_table {
    uint32_t rate, burst;
    uint64_t cap;  /* burst * MILLI */
    uint64_t fill; /* ms in which an empty bucket fills up */
    uint64_t seed;
    bucket_t slots[BFF_RATE_SLOTS];
};

bff_rate_table_t *bff_rate_table_new(uint32_t rate, uint32_t burst, uint64_t seed)
{
    if (rate < 1 || rate > BFF_RATE_MAX || burst < 1 || burst > BFF_RATE_MAX)
        return NULL;
    bff_rate_table_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->rate = rate;
    t->burst = burst;
    t->cap = (uint64_t)burst * MILLI;
    t->fill = (t->cap + rate - 1) / rate;
    t->seed = seed;
    return t;
}

void bff_rate_table_free(bff_rate_table_t *t)
{
    free(t);
}

/* murmur3's finaliser over the seeded key: a keyed spread of the slots. */
static uint64_t mix(uint64_t k, uint64_t seed)
{
    k ^= seed;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

/* The bucket's thousandths at now, refilled (not stored). */
static uint64_t level(const bff_rate_table_t *t, const bucket_t *b, uint64_t now)
{
    uint64_t elapsed = now > b->at ? now - b->at : 0;
    if (elapsed >= t->fill)
        return t->cap;
    uint64_t v = b->milli + elapsed * t->rate;
    return v < t->cap ? v : t->cap;
}

int bff_rate_take(bff_rate_table_t *t, uint64_t key, uint64_t now_ms, uint32_t *retry_after_s)
{
    if (key == 0)
        key = ~0ull;
    size_t home = (size_t)mix(key, t->seed) & (BFF_RATE_SLOTS - 1), pick = SIZE_MAX;
    bucket_t *b = NULL;
    uint64_t best = 0, best_at = 0;
    for (size_t i = 0; i < BFF_RATE_PROBE; i++) {
        bucket_t *s = &t->slots[(home + i) & (BFF_RATE_SLOTS - 1)];
        if (s->key == key) {
            b = s;
            break;
        }
        /* The slot a new key would take: empty first, else the fullest, else the least recently refilled. */
        uint64_t lv = s->key == 0 ? UINT64_MAX : level(t, s, now_ms);
        if (pick == SIZE_MAX || lv > best || (lv == best && s->at < best_at)) {
            pick = i;
            best = lv;
            best_at = s->at;
        }
    }
    if (b == NULL) {
        b = &t->slots[(home + pick) & (BFF_RATE_SLOTS - 1)];
        *b = (bucket_t){.key = key, .at = now_ms, .milli = (uint32_t)t->cap};
    } else {
        b->milli = (uint32_t)level(t, b, now_ms);
        if (now_ms > b->at)
            b->at = now_ms;
    }
    if (b->milli >= MILLI) {
        b->milli -= MILLI;
        return 1;
    }
    uint64_t wait_ms = (MILLI - b->milli + t->rate - 1) / t->rate;
    uint64_t s = (wait_ms + 999) / 1000;
    *retry_after_s = s < 1 ? 1 : (uint32_t)s;
    return 0;
}

size_t bff_rate_used(const bff_rate_table_t *t)
{
    size_t n = 0;
    for (size_t i = 0; i < BFF_RATE_SLOTS; i++)
        n += t->slots[i].key != 0;
    return n;
}

/* ---- addresses ---- */

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* An IPv4-mapped IPv6 address becomes its IPv4 one. */
static void set_v6(bff_addr_t *out, const uint8_t bytes[16])
{
    memset(out, 0, sizeof(*out));
    if (memcmp(bytes, v4_mapped, sizeof(v4_mapped)) == 0) {
        out->family = AF_INET;
        memcpy(out->bytes, bytes + 12, 4);
    } else {
        out->family = AF_INET6;
        memcpy(out->bytes, bytes, 16);
    }
}

int bff_addr_parse(const char *s, size_t len, bff_addr_t *out)
{
    char buf[BFF_ADDR_TEXT_MAX + 1];
    uint8_t bytes[16];

    memset(out, 0, sizeof(*out));
    if (len == 0 || len > BFF_ADDR_TEXT_MAX)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *text = buf;
    if (buf[0] == '[') { /* [v6] or [v6]:port */
        char *close = strchr(buf, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return -1;
        *close = '\0';
        text = buf + 1;
    } else {
        char *colon = strchr(buf, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) /* v4:port */
            *colon = '\0';
    }
    if (inet_pton(AF_INET, text, bytes) == 1) {
        out->family = AF_INET;
        memcpy(out->bytes, bytes, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, text, bytes) == 1) {
        set_v6(out, bytes);
        return 0;
    }
    return -1;
}

void bff_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, bff_addr_t *out)
{
    memset(out, 0, sizeof(*out));
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        out->family = AF_INET;
        memcpy(out->bytes, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        set_v6(out, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    } else if (sa->sa_family == AF_UNIX) {
        out->family = AF_UNIX;
    }
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

uint64_t bff_addr_key(const bff_addr_t *a)
{
    switch (a->family) {
    case AF_INET: /* as the IPv4-mapped /64 would never be: 0000:ffff:<address>::/64 */
        return 0xffff00000000ull | (uint64_t)a->bytes[0] << 24 | (uint64_t)a->bytes[1] << 16 |
               (uint64_t)a->bytes[2] << 8 | a->bytes[3];
    case AF_INET6: /* its /64 */
        return be64(a->bytes);
    case AF_UNIX:
        return BFF_ADDR_UNIX;
    default:
        return 0;
    }
}

/* ---- trusted proxies ---- */

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t'))
        (*s)++, (*len)--;
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* "address" or "address/prefix", IPv4 or IPv6 (an IPv4-mapped network as its IPv4 one). */
static int parse_net(const char *item, size_t len, int *family, uint8_t bytes[16], int *prefix)
{
    char buf[BFF_ADDR_TEXT_MAX + 1];
    uint8_t v[16];
    const char *slash = memchr(item, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - item) : len;
    if (alen == 0 || alen > BFF_ADDR_TEXT_MAX)
        return -1;
    memcpy(buf, item, alen);
    buf[alen] = '\0';
    int max;
    memset(bytes, 0, 16);
    if (inet_pton(AF_INET, buf, v) == 1) {
        *family = AF_INET, max = 32;
        memcpy(bytes, v, 4);
    } else if (inet_pton(AF_INET6, buf, v) == 1) {
        *family = AF_INET6, max = 128;
        memcpy(bytes, v, 16);
    } else {
        return -1;
    }
    *prefix = max;
    if (slash != NULL) {
        size_t digits = len - alen - 1;
        if (digits == 0 || digits > 3)
            return -1;
        *prefix = 0;
        for (size_t i = 0; i < digits; i++) {
            char c = slash[1 + i];
            if (c < '0' || c > '9')
                return -1;
            *prefix = *prefix * 10 + (c - '0');
        }
        if (*prefix > max)
            return -1;
    }
    if (*family == AF_INET6 && *prefix >= 96 && memcmp(bytes, v4_mapped, sizeof(v4_mapped)) == 0) {
        *family = AF_INET;
        memmove(bytes, bytes + 12, 4);
        memset(bytes + 4, 0, 12);
        *prefix -= 96;
    }
    return 0;
}

int bff_proxies_parse(const char *list, bff_proxies_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *p = list;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0')
        return 0; /* the empty list */
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *item = p;
        trim(&item, &len);
        if (out->n == BFF_PROXIES_MAX) {
            snprintf(err, errlen, "TRUSTED_PROXY: at most %d entries", BFF_PROXIES_MAX);
            return -1;
        }
        if (len == 4 && memcmp(item, "unix", 4) == 0) {
            out->net[out->n++].family = AF_UNIX;
        } else if (parse_net(item, len, &out->net[out->n].family, out->net[out->n].bytes,
                             &out->net[out->n].prefix) == 0) {
            out->n++;
        } else {
            snprintf(err, errlen,
                     "TRUSTED_PROXY: '%.*s' is not an address, a network such as 10.0.0.0/8, or unix",
                     (int)(len < 80 ? len : 80), item);
            return -1;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

static int prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int bff_proxies_trust(const bff_proxies_t *p, const bff_addr_t *a)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->net[i].family != a->family)
            continue;
        if (a->family == AF_UNIX || prefix_equal(p->net[i].bytes, a->bytes, p->net[i].prefix))
            return 1;
    }
    return 0;
}

void bff_client_addr(const bff_proxies_t *p, const bff_addr_t *peer, const bff_xff_t *xff, size_t nxff,
                     bff_addr_t *out)
{
    *out = *peer;
    if (p->n == 0 || !bff_proxies_trust(p, peer))
        return;
    size_t seen = 0;
    for (size_t line = nxff; line-- > 0;) {
        const char *s = xff[line].s;
        size_t end = xff[line].len;
        while (end > 0) { /* entries from the right */
            size_t start = end;
            while (start > 0 && s[start - 1] != ',')
                start--;
            const char *item = s + start;
            size_t len = end - start;
            end = start > 0 ? start - 1 : 0;
            trim(&item, &len);
            bff_addr_t a;
            if (++seen > BFF_XFF_ENTRIES_MAX || bff_addr_parse(item, len, &a) != 0)
                return; /* the last trusted hop */
            *out = a;
            if (!bff_proxies_trust(p, &a))
                return;
            if (start == 0)
                break;
        }
    }
}
