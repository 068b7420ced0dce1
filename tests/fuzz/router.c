/*
 * Fuzz target: the router and its path parameters (shared/router.c) on the BFF's own route table
 * (its views and every write of bff_proxy_routes), fed as the front door feeds it (shared/front.c):
 * the request path checked and decoded by ls_url_path (url.h), and also the raw path.
 *
 * Input: "METHOD PATH" (the first space splits them). Checked beyond memory safety: a match is of the
 * request's method and its route's shape, with every parameter inside the path, one segment long and
 * of its declared type; a 405 names the methods allowed; a 400 names a parameter of the match. A path
 * ls_url_path accepts starts with '/', has no "." or ".." segment, no NUL, '\\' or control character,
 * and is UTF-8.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bff.h"
#include "router.h"
#include "scalar.h"
#include "text.h"
#include "url.h"

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

    /* What the front door routes on: the path up to its query, checked and decoded. */
    const char *q = memchr(path, '?', path_len);
    size_t len = q != NULL ? (size_t)(q - path) : path_len;
    char *decoded = malloc(len + 1);
    if (decoded == NULL)
        abort();
    const char *why = NULL;
    long n = ls_url_path(decoded, path, len, &why);
    if (n < 0) {
        if (why == NULL)
            abort();
    } else {
        size_t dn = (size_t)n;
        if (dn > len || dn == 0 || decoded[0] != '/' || decoded[dn] != '\0' ||
            ls_utf8_span(decoded, dn) != dn)
            abort();
        for (size_t i = 0; i < dn; i++)
            if ((unsigned char)decoded[i] < 0x20 || decoded[i] == 0x7f || decoded[i] == '\\')
                abort();
        /* No "." or ".." segment. */
        for (size_t i = 0; i < dn; i++) {
            if (decoded[i] != '/')
                continue;
            size_t e = i + 1;
            while (e < dn && decoded[e] != '/')
                e++;
            size_t seg = e - i - 1;
            if ((seg == 1 && decoded[i + 1] == '.') ||
                (seg == 2 && decoded[i + 1] == '.' && decoded[i + 2] == '.'))
                abort();
        }
        check(in, method_len, decoded, dn);
    }
    free(decoded);
    return 0;
}
