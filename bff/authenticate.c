/* The caller's authentication and rate limits: every request under /api/ carries
 * `Authorization: tma <initData>`. See bff.h (bff_authenticate), tma.h and ratelimit.h. */
#include "bff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <log.h>
#include <sodium.h>

/* ---- the worker's tables (no lock: each worker thread has its own) ---- */

enum { LIMIT_ADDR, LIMIT_READ, LIMIT_WRITE, NLIMITS };

static __thread bff_rate_table_t *limits[NLIMITS]; /* NULL: that limit is off */

void bff_limits_start(ls_worker_t *w)
{
    const bff_config_t *c = ls_worker_daemon(w)->config;
    const long long rate[NLIMITS] = {c->rate_addr_per_s, c->rate_read_per_s, c->rate_write_per_s};
    const long long burst[NLIMITS] = {c->rate_addr_burst, c->rate_read_burst, c->rate_write_burst};
    for (int i = 0; i < NLIMITS; i++) {
        uint64_t seed;
        if (rate[i] == 0)
            continue;
        randombytes_buf(&seed, sizeof(seed));
        limits[i] = bff_rate_table_new((uint32_t)rate[i], (uint32_t)burst[i], seed);
        if (limits[i] == NULL) {
            ls_logf(LS_LOG_ERROR, NULL, "out of memory for the rate limits' tables");
            exit(1);
        }
    }
}

void bff_limits_stop(ls_worker_t *w)
{
    (void)w;
    for (int i = 0; i < NLIMITS; i++) {
        bff_rate_table_free(limits[i]);
        limits[i] = NULL;
    }
}

/* The client's address: the connection's peer, or through TRUSTED_PROXY its X-Forwarded-For. */
static uint64_t client_key(ls_req_t *r, const bff_config_t *c)
{
    h2o_req_t *req = r->h2o;
    struct sockaddr_storage ss;
    bff_addr_t peer, client;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    bff_addr_from_sockaddr((struct sockaddr *)&ss, len, &peer);
    if (c->proxies.n == 0 || !bff_proxies_trust(&c->proxies, &peer))
        return bff_addr_key(&peer);
    bff_xff_t xff[8];
    size_t n = 0;
    for (ssize_t i = -1;
         (i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-forwarded-for"), i)) >= 0;) {
        if (n == sizeof(xff) / sizeof(xff[0])) /* the last lines are the ones that count */
            memmove(xff, xff + 1, --n * sizeof(xff[0]));
        xff[n++] = (bff_xff_t){req->headers.entries[i].value.base, req->headers.entries[i].value.len};
    }
    bff_client_addr(&c->proxies, &peer, xff, n, &client);
    return bff_addr_key(&client);
}

/* Takes a token of key from limit; answers 429 with Retry-After and returns -1 when there is none. */
static int limit_or_reply(ls_req_t *r, int limit, uint64_t key, int write)
{
    uint32_t retry_s;
    if (limits[limit] == NULL || bff_rate_take(limits[limit], key, r->started, &retry_s))
        return 0;
    char value[16];
    snprintf(value, sizeof(value), "%u", retry_s);
    bff_add_header(r, "retry-after", value);
    ls_metrics_bff_rate_limited(limit == LIMIT_ADDR ? LS_RL_ADDR : LS_RL_USER, write);
    if (limit == LIMIT_ADDR)
        ls_reply_problem(r, 429, "too many requests from this address; retry in %u s", retry_s);
    else
        ls_reply_problem(r, 429, "too many %s; retry in %u s", write ? "writes" : "reads", retry_s);
    return -1;
}

/* ---- initData ---- */

static void reject(ls_req_t *r, const char *reason)
{
    bff_add_header(r, "www-authenticate", "tma");
    ls_reply_problem(r, 401, "%s", reason);
}

int bff_authenticate(ls_req_t *r)
{
    const bff_config_t *c = ls_req_config(r);
    h2o_req_t *req = r->h2o;
    int write = !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
                !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    bff_req_t *st = ls_req_alloc(r, sizeof(*st));
    const char *reason;

    r->state = st;
    /* Before the signature is checked: forged initData must not cost more than a table lookup. */
    if (limits[LIMIT_ADDR] != NULL && limit_or_reply(r, LIMIT_ADDR, client_key(r, c), write) != 0)
        return -1;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0) {
        reject(r, "header Authorization: tma <initData> is required");
        return -1;
    }
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len < 4 || strncasecmp(v.base, "tma ", 4) != 0) {
        reject(r, "the Authorization scheme must be tma (Telegram Mini App init data)");
        return -1;
    }
    size_t skip = 4;
    while (skip < v.len && v.base[skip] == ' ')
        skip++;
    /* A write's initData must be younger: whoever saw it can replay it until then. 0 turns every age
     * check off (tests with Telegram's public vector). */
    long long max_age = c->init_data_max_age;
    if (write && max_age > 0 && c->init_data_max_age_write > 0)
        max_age = c->init_data_max_age_write;
    int rc = tma_validate(v.base + skip, v.len - skip, c->tma_key, (int64_t)time(NULL), max_age, &st->caller,
                          &reason);
    if (rc == TMA_BAD_TEXT) { /* signed by Telegram, but text that may not be stored: refused, never cut */
        ls_reply_problem(r, 400, "%s", reason);
        return -1;
    }
    if (rc != 0) {
        reject(r, reason);
        return -1;
    }
    r->actor = st->caller.telegram_id;
    if (limit_or_reply(r, write ? LIMIT_WRITE : LIMIT_READ, (uint64_t)r->actor, write) != 0)
        return -1;
    uint64_t deadline = r->started + (uint64_t)c->deadline_ms;
    if (deadline < r->deadline)
        r->deadline = deadline;
    return 0;
}
