/*
 * Fuzz target: the router and its path parameters (shared/router.c) on the BFF's own route table
 * (its views and every write of bff_proxy_routes), fed as the front door feeds it (shared/front.c):
 * the request path normalised by h2o (percent-decoding, dot segments, query string cut off), and
 * also the raw path.
 *
 * Input: "METHOD PATH" (the first space splits them). Checked beyond memory safety: a match is of the
 * request's method and its route's shape, with every parameter inside the path, one segment long and
 * of its declared type; a 405 names the methods allowed; a 400 names a parameter of the match.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>

#include "bff.h"
#include "router.h"
#include "scalar.h"

/* bff/main.c's views (its table is static there), then the writes, then the shared server's own. */
static const char *const view_patterns[][2] = {
    {"POST", "/api/auth/telegram"},
    {"GET", "/api/user/profile/{telegram_id:id}"},
    {"GET", "/api/groups/{group_id:uuid}"},
    {"GET", "/api/schedule/{telegram_id:id}"},
    {"GET", "/healthz"},
    {"GET", "/readyz"},
};
#define NVIEWS (sizeof(view_patterns) / sizeof(view_patterns[0]))

static ls_route_t *routes;
static size_t nroutes;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];
    nroutes = NVIEWS + bff_nproxy_routes;
    routes = calloc(nroutes, sizeof(*routes));
    if (routes == NULL)
        abort();
    for (size_t i = 0; i < NVIEWS; i++)
        routes[i] = (ls_route_t){view_patterns[i][0], view_patterns[i][1], NULL, 0};
    for (size_t i = 0; i < bff_nproxy_routes; i++)
        routes[NVIEWS + i] = (ls_route_t){bff_proxy_routes[i].method, bff_proxy_routes[i].pattern, NULL, 0};
    if (ls_router_check(routes, nroutes, err, sizeof(err)) != 0)
        abort();
    return 0;
}

static size_t count_params(const char *pattern)
{
    size_t n = 0;
    for (const char *p = pattern; (p = strchr(p, '{')) != NULL; p++)
        n++;
    return n;
}

static void check(const char *method, size_t method_len, const char *path, size_t path_len)
{
    ls_route_match_t m;
    switch (ls_router_match(routes, nroutes, method, method_len, path, path_len, &m)) {
    case LS_ROUTE_OK:
        if (m.route == NULL || strlen(m.route->method) != method_len ||
            memcmp(m.route->method, method, method_len) != 0 || m.nparams != count_params(m.route->pattern))
            abort();
        for (size_t i = 0; i < m.nparams; i++) {
            const ls_route_param_t *p = &m.params[i];
            char name[64];
            int64_t id;
            if (p->value < path || p->value + p->value_len > path + path_len || p->value_len == 0 ||
                memchr(p->value, '/', p->value_len) != NULL || p->name_len >= sizeof(name))
                abort();
            memcpy(name, p->name, p->name_len);
            name[p->name_len] = '\0';
            if (ls_route_param(&m, name) != p)
                abort();
            if ((p->type == LS_PARAM_ID && (ls_parse_id(p->value, p->value_len, &id) != 0 || id != p->id)) ||
                (p->type == LS_PARAM_UUID && !ls_is_uuid(p->value, p->value_len)) ||
                (p->type == LS_PARAM_STR && p->value_len > LS_ROUTE_SEG_MAX))
                abort();
        }
        break;
    case LS_ROUTE_BAD_METHOD:
        if (m.allow[0] == '\0' || memchr(m.allow, '\0', sizeof(m.allow)) == NULL)
            abort();
        break;
    case LS_ROUTE_BAD_PARAM:
        if (m.route == NULL || m.bad_param < m.params || m.bad_param >= m.params + m.nparams)
            abort();
        break;
    case LS_ROUTE_NOT_FOUND:
        break;
    default:
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *sp = memchr(in, ' ', size);
    if (sp == NULL)
        return 0;
    size_t method_len = (size_t)(sp - in);
    const char *path = sp + 1;
    size_t path_len = size - method_len - 1;

    check(in, method_len, path, path_len);

    /* What h2o hands the front door as req->path_normalized. */
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    size_t query_at = SIZE_MAX, *norm_indexes = NULL;
    h2o_iovec_t norm = h2o_url_normalize_path(&pool, path, path_len, &query_at, &norm_indexes);
    check(in, method_len, norm.base, norm.len);
    h2o_mem_clear_pool(&pool);
    return 0;
}
