/* bff/ratelimit: the token bucket's arithmetic, its bounded table and eviction, and who the client
 * is (addresses, TRUSTED_PROXY, X-Forwarded-For). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "ratelimit.h"

#define SEED 0x5eed5eed12345678ull

/* n takes of key at now; how many were allowed. */
static int takes(bff_rate_table_t *t, uint64_t key, uint64_t now, int n)
{
    int ok = 0;
    uint32_t retry;
    for (int i = 0; i < n; i++)
        ok += bff_rate_take(t, key, now, &retry);
    return ok;
}

Test(ratelimit, a_burst_is_cut_at_the_burst_and_refills_at_the_rate)
{
    bff_rate_table_t *t = bff_rate_table_new(2, 5, SEED);
    cr_assert_not_null(t);
    uint32_t retry = 0;
    cr_expect_eq(takes(t, 42, 1000, 5), 5, "the burst is allowed at once");
    cr_expect_eq(bff_rate_take(t, 42, 1000, &retry), 0, "the sixth is refused");
    cr_expect_eq(retry, 1, "one token comes back within a second at 2/s: Retry-After 1");
    cr_expect_eq(bff_rate_take(t, 42, 1499, &retry), 0, "499 ms give 0.998 of a token");
    cr_expect_eq(bff_rate_take(t, 42, 1500, &retry), 1, "500 ms give one");
    cr_expect_eq(bff_rate_take(t, 42, 1500, &retry), 0);
    /* Idle for long: full again, never more than the burst. */
    cr_expect_eq(takes(t, 42, 1000000, 9), 5);
    /* Another key has a bucket of its own. */
    cr_expect_eq(takes(t, 43, 1000000, 9), 5);
    bff_rate_table_free(t);
}

Test(ratelimit, the_rate_is_kept_over_time_and_a_clock_going_back_gives_nothing)
{
    bff_rate_table_t *t = bff_rate_table_new(10, 1, SEED);
    cr_assert_not_null(t);
    /* One request every 50 ms for 10 s at 10/s with burst 1: exactly every other one passes. */
    int ok = 0;
    for (uint64_t now = 0; now < 10000; now += 50)
        ok += takes(t, 7, now, 1);
    cr_expect_eq(ok, 100, "%d of 200 allowed", ok);
    /* Earlier than the last refill: no tokens appear, nothing wraps around. */
    uint32_t retry = 0;
    cr_expect_eq(bff_rate_take(t, 7, 10000, &retry), 1);
    cr_expect_eq(bff_rate_take(t, 7, 100, &retry), 0);
    cr_expect_eq(retry, 1);
    bff_rate_table_free(t);
}

Test(ratelimit, retry_after_counts_the_whole_seconds_until_a_token)
{
    bff_rate_table_t *t = bff_rate_table_new(1, 3, SEED);
    uint32_t retry = 0;
    cr_expect_eq(takes(t, 1, 0, 3), 3);
    cr_expect_eq(bff_rate_take(t, 1, 0, &retry), 0);
    cr_expect_eq(retry, 1);
    cr_expect_eq(bff_rate_take(t, 1, 999, &retry), 0);
    cr_expect_eq(retry, 1, "1 ms left rounds up to a whole second");
    cr_expect_eq(bff_rate_take(t, 1, 1000, &retry), 1);
    bff_rate_table_free(t);
}

Test(ratelimit, settings_out_of_range_make_no_table)
{
    cr_expect_null(bff_rate_table_new(0, 5, SEED));
    cr_expect_null(bff_rate_table_new(5, 0, SEED));
    cr_expect_null(bff_rate_table_new(BFF_RATE_MAX + 1, 5, SEED));
    cr_expect_null(bff_rate_table_new(5, BFF_RATE_MAX + 1, SEED));
    bff_rate_table_t *t = bff_rate_table_new(BFF_RATE_MAX, BFF_RATE_MAX, SEED);
    cr_assert_not_null(t);
    cr_expect_eq(takes(t, 1, 5, 1000), 1000);
    cr_expect_eq(takes(t, 1, UINT64_MAX / 2, 10), 10, "a huge gap does not overflow");
    bff_rate_table_free(t);
}

Test(ratelimit, the_table_stays_bounded_and_a_crowd_cannot_reset_a_limited_caller)
{
    bff_rate_table_t *t = bff_rate_table_new(1, 2, SEED);
    uint32_t retry = 0;
    /* The limited caller: its bucket is empty. */
    cr_expect_eq(takes(t, 999999999, 0, 2), 2);
    cr_expect_eq(bff_rate_take(t, 999999999, 0, &retry), 0);
    /* A crowd of 50 times the table's size, each taking one token at the same moment. */
    for (uint64_t k = 1; k <= 50 * BFF_RATE_SLOTS; k++)
        cr_assert_eq(takes(t, k, 0, 1), 1);
    cr_expect_leq(bff_rate_used(t), BFF_RATE_SLOTS);
    cr_expect_eq(bff_rate_used(t), BFF_RATE_SLOTS, "every slot in use");
    /* The emptiest bucket of a window is the last to go: the limited caller is still limited. */
    cr_expect_eq(bff_rate_take(t, 999999999, 0, &retry), 0);
    /* Key 0 is a key like any other (taken as ~0). */
    cr_expect_eq(takes(t, 0, 0, 3), 2);
    bff_rate_table_free(t);
}

Test(ratelimit, idle_callers_make_room_before_limited_ones)
{
    bff_rate_table_t *t = bff_rate_table_new(1, 2, SEED);
    uint32_t retry = 0;
    /* The table full of callers that spent a token at t = 0: by t = 1 s they are full again. */
    for (uint64_t k = 1; k <= 4 * BFF_RATE_SLOTS; k++)
        takes(t, k, 0, 1);
    /* 200 callers drain their buckets at t = 1 s; then a crowd as large as the table arrives. */
    for (uint64_t k = 1000001; k <= 1000200; k++)
        cr_assert_eq(takes(t, k, 1000, 3), 2);
    for (uint64_t k = 2000001; k <= 2000000 + BFF_RATE_SLOTS; k++)
        cr_assert_eq(takes(t, k, 1000, 1), 1);
    cr_expect_eq(bff_rate_used(t), BFF_RATE_SLOTS);
    /* The idle (full) buckets went first: every drained caller is still refused. */
    int refused = 0;
    for (uint64_t k = 1000001; k <= 1000200; k++)
        refused += !bff_rate_take(t, k, 1000, &retry);
    cr_expect_eq(refused, 200, "%d of 200 drained callers still limited", refused);
    bff_rate_table_free(t);
}

/* ---- addresses ---- */

static bff_addr_t addr(const char *s)
{
    bff_addr_t a;
    cr_assert_eq(bff_addr_parse(s, strlen(s), &a), 0, "%s", s);
    return a;
}

static uint64_t key_of(const char *s)
{
    bff_addr_t a = addr(s);
    return bff_addr_key(&a);
}

Test(ratelimit, addresses_parse_and_key_per_ipv4_address_and_ipv6_64)
{
    cr_expect_eq(key_of("203.0.113.7"), 0xffffcb007107ull);
    cr_expect_eq(key_of("203.0.113.7:443"), key_of("203.0.113.7"), "a port is ignored");
    cr_expect_eq(key_of("::ffff:203.0.113.7"), key_of("203.0.113.7"), "IPv4-mapped is IPv4");
    cr_expect_neq(key_of("203.0.113.8"), key_of("203.0.113.7"));
    cr_expect_eq(key_of("2001:db8:1:2::1"), key_of("2001:db8:1:2:ffff::9"), "one /64, one key");
    cr_expect_eq(key_of("[2001:db8:1:2::1]:8443"), key_of("2001:db8:1:2::1"));
    cr_expect_eq(key_of("[2001:db8:1:2::1]"), key_of("2001:db8:1:2::1"));
    cr_expect_neq(key_of("2001:db8:1:3::1"), key_of("2001:db8:1:2::1"));
    cr_expect_eq(key_of("2001:db8:1:2::1"), 0x20010db800010002ull);

    static const char *const bad[] = {
        "",          "x",         "1.2.3",
        "1.2.3.4.5", "999.1.1.1", "[::1",
        "[::1]x",    "::1]",      "1.2.3.4 ",
        " 1.2.3.4",  "unix",      "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bff_addr_t a;
        cr_expect_eq(bff_addr_parse(bad[i], strlen(bad[i]), &a), -1, "'%s' is not an address", bad[i]);
    }
}

Test(ratelimit, peers_from_sockaddr)
{
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "198.51.100.1", &in4.sin_addr);
    bff_addr_t a;
    bff_addr_from_sockaddr((struct sockaddr *)&in4, sizeof(in4), &a);
    cr_expect_eq(bff_addr_key(&a), key_of("198.51.100.1"));

    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:198.51.100.1", &in6.sin6_addr);
    bff_addr_from_sockaddr((struct sockaddr *)&in6, sizeof(in6), &a);
    cr_expect_eq(bff_addr_key(&a), key_of("198.51.100.1"));

    struct sockaddr_un un = {.sun_family = AF_UNIX};
    bff_addr_from_sockaddr((struct sockaddr *)&un, sizeof(un), &a);
    cr_expect_eq(a.family, AF_UNIX);
    cr_expect_eq(bff_addr_key(&a), BFF_ADDR_UNIX);

    bff_addr_from_sockaddr((struct sockaddr *)&in4, 0, &a);
    cr_expect_eq(a.family, 0);
    cr_expect_eq(bff_addr_key(&a), 0);
}

/* ---- trusted proxies and X-Forwarded-For ---- */

static bff_proxies_t proxies(const char *list)
{
    bff_proxies_t p;
    char err[200] = "";
    cr_assert_eq(bff_proxies_parse(list, &p, err, sizeof(err)), 0, "%s: %s", list, err);
    return p;
}

Test(ratelimit, trusted_proxy_lists)
{
    bff_proxies_t p = proxies(" 10.0.0.0/8 , 192.0.2.1,fd00::/8, unix, ::ffff:198.51.100.0/120");
    cr_expect_eq(p.n, 5);
    const struct {
        const char *a;
        int trusted;
    } cases[] = {
        {"10.1.2.3", 1}, {"11.0.0.1", 0},     {"192.0.2.1", 1},    {"192.0.2.2", 0},       {"fd12::1", 1},
        {"fe80::1", 0},  {"198.51.100.9", 1}, {"198.51.101.9", 0}, {"::ffff:10.9.9.9", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bff_addr_t a = addr(cases[i].a);
        cr_expect_eq(bff_proxies_trust(&p, &a), cases[i].trusted, "%s", cases[i].a);
    }
    bff_addr_t u = {.family = AF_UNIX};
    cr_expect(bff_proxies_trust(&p, &u));
    bff_proxies_t none = proxies("");
    cr_expect_eq(none.n, 0);
    cr_expect(!bff_proxies_trust(&none, &u));
    bff_proxies_t zero = proxies("0.0.0.0/0");
    bff_addr_t any = addr("8.8.8.8");
    cr_expect(bff_proxies_trust(&zero, &any));

    static const char *const bad[] = {"10.0.0.0/33",        "fd00::/129", "10.0.0.0/",    "10.0.0.0/8x",
                                      "proxy.local",        "1.2.3.4:80", "10.0.0.1,",    ",10.0.0.1",
                                      "10.0.0.1,,10.0.0.2", "[::1]",      "10.0.0.0/0008"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bff_proxies_t q;
        char err[200] = "";
        cr_expect_eq(bff_proxies_parse(bad[i], &q, err, sizeof(err)), -1, "'%s' accepted", bad[i]);
        cr_expect(strstr(err, "TRUSTED_PROXY") != NULL, "%s", err);
    }
    char many[2048] = "";
    for (int i = 0; i <= BFF_PROXIES_MAX; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s10.0.0.%d", i ? "," : "", i);
    bff_proxies_t q;
    char err[200];
    cr_expect_eq(bff_proxies_parse(many, &q, err, sizeof(err)), -1, "more than BFF_PROXIES_MAX");
}

/* The client's key for a peer and X-Forwarded-For lines. */
static uint64_t client(const bff_proxies_t *p, const char *peer, const char *const *lines, size_t n)
{
    bff_xff_t xff[8];
    for (size_t i = 0; i < n; i++)
        xff[i] = (bff_xff_t){lines[i], strlen(lines[i])};
    bff_addr_t pa = addr(peer), out;
    bff_client_addr(p, &pa, xff, n, &out);
    return bff_addr_key(&out);
}

Test(ratelimit, the_client_is_the_first_untrusted_hop_from_the_right)
{
    bff_proxies_t p = proxies("10.0.0.0/8");
    bff_proxies_t none = proxies("");
    const char *one[] = {"203.0.113.7"};
    const char *chain[] = {"198.51.100.1, 203.0.113.7, 10.0.0.5"};
    const char *lines[] = {"198.51.100.1", "203.0.113.7,10.0.0.5"};
    const char *spoofed[] = {"1.1.1.1, 203.0.113.7"};
    const char *all_trusted[] = {"10.0.0.9, 10.0.0.5"};
    const char *garbage[] = {"203.0.113.7, not-an-address, 10.0.0.5"};
    const char *empty[] = {""};

    /* Not a trusted proxy: its X-Forwarded-For is the caller's own word, and ignored. */
    cr_expect_eq(client(&p, "192.0.2.9", one, 1), key_of("192.0.2.9"));
    cr_expect_eq(client(&none, "10.0.0.1", one, 1), key_of("10.0.0.1"));
    /* A trusted proxy: the last hop it names. */
    cr_expect_eq(client(&p, "10.0.0.1", one, 1), key_of("203.0.113.7"));
    cr_expect_eq(client(&p, "10.0.0.1", NULL, 0), key_of("10.0.0.1"), "no header: the proxy itself");
    /* Trusted hops are skipped; what the client wrote further left cannot move it. */
    cr_expect_eq(client(&p, "10.0.0.1", chain, 1), key_of("203.0.113.7"));
    cr_expect_eq(client(&p, "10.0.0.1", lines, 2), key_of("203.0.113.7"), "over several lines");
    cr_expect_eq(client(&p, "10.0.0.1", spoofed, 1), key_of("203.0.113.7"));
    cr_expect_eq(client(&p, "10.0.0.1", all_trusted, 1), key_of("10.0.0.9"), "all trusted: the leftmost");
    /* Not an address: the walk stops at the last trusted hop. */
    cr_expect_eq(client(&p, "10.0.0.1", garbage, 1), key_of("10.0.0.5"));
    cr_expect_eq(client(&p, "10.0.0.1", empty, 1), key_of("10.0.0.1"));
}
