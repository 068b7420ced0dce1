#include "router.h"

#include <stdio.h>
#include <string.h>

#include "scalar.h"

/* Splits off the next '/'-separated segment of [*p, end); returns 0 at the end of the input. */
static int next_segment(const char **p, const char *end, const char **seg, size_t *len)
{
    if (*p >= end || **p != '/')
        return 0;
    const char *s = *p + 1;
    const char *e = memchr(s, '/', (size_t)(end - s));
    if (e == NULL)
        e = end;
    *seg = s;
    *len = (size_t)(e - s);
    *p = e;
    return 1;
}

/* Parses "{name:type}" of a pattern segment. Returns 0, or -1 when the segment is a literal. */
static int parse_param_spec(const char *seg, size_t len, ls_route_param_t *out)
{
    if (len < 3 || seg[0] != '{' || seg[len - 1] != '}')
        return -1;
    const char *colon = memchr(seg, ':', len);
    if (colon == NULL)
        return -1;
    out->name = seg + 1;
    out->name_len = (size_t)(colon - seg - 1);
    const char *type = colon + 1;
    size_t type_len = (size_t)(seg + len - 1 - type);
    if (type_len == 2 && memcmp(type, "id", 2) == 0)
        out->type = LS_PARAM_ID;
    else if (type_len == 4 && memcmp(type, "uuid", 4) == 0)
        out->type = LS_PARAM_UUID;
    else if (type_len == 3 && memcmp(type, "str", 3) == 0)
        out->type = LS_PARAM_STR;
    else
        return -1;
    return out->name_len == 0 ? -1 : 0;
}

static int param_value_ok(ls_route_param_t *p)
{
    switch (p->type) {
    case LS_PARAM_ID:
        return ls_parse_id(p->value, p->value_len, &p->id) == 0;
    case LS_PARAM_UUID:
        return ls_is_uuid(p->value, p->value_len);
    case LS_PARAM_STR:
        return p->value_len > 0 && p->value_len <= LS_ROUTE_SEG_MAX;
    }
    return 0;
}

/* Shape match: literals equal and segment counts equal. Fills params without validating them. */
static int match_shape(const char *pattern, const char *path, size_t path_len, ls_route_match_t *m)
{
    const char *pp = pattern, *pend = pattern + strlen(pattern);
    const char *xp = path, *xend = path + path_len;
    const char *pseg, *xseg;
    size_t plen, xlen;

    m->nparams = 0;
    for (;;) {
        int has_p = next_segment(&pp, pend, &pseg, &plen);
        int has_x = next_segment(&xp, xend, &xseg, &xlen);
        if (!has_p || !has_x)
            return has_p == has_x && xp == xend;
        ls_route_param_t spec;
        if (parse_param_spec(pseg, plen, &spec) == 0) {
            if (xlen == 0 || m->nparams == LS_ROUTE_MAX_PARAMS)
                return 0;
            spec.value = xseg;
            spec.value_len = xlen;
            spec.id = 0;
            m->params[m->nparams++] = spec;
        } else if (plen != xlen || memcmp(pseg, xseg, plen) != 0) {
            return 0;
        }
    }
}

int ls_router_check(const ls_route_t *routes, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const char *pattern = routes[i].pattern, *end = pattern + strlen(pattern), *p = pattern;
        const char *seg;
        size_t len, nparams = 0;
        if (pattern[0] != '/') {
            snprintf(err, errlen, "route %s %s: pattern must start with '/'", routes[i].method, pattern);
            return -1;
        }
        while (next_segment(&p, end, &seg, &len)) {
            ls_route_param_t spec;
            if (len > 0 && seg[0] == '{') {
                if (parse_param_spec(seg, len, &spec) != 0) {
                    snprintf(err, errlen, "route %s %s: bad parameter '%.*s' (want {name:id|uuid|str})",
                             routes[i].method, pattern, (int)len, seg);
                    return -1;
                }
                if (++nparams > LS_ROUTE_MAX_PARAMS) {
                    snprintf(err, errlen, "route %s %s: more than %d parameters", routes[i].method, pattern,
                             LS_ROUTE_MAX_PARAMS);
                    return -1;
                }
            }
        }
    }
    return 0;
}

/* Adds a method to the Allow list once. */
static void allow_add(char *allow, size_t size, const char *method)
{
    size_t len = strlen(allow), mlen = strlen(method);
    if (strstr(allow, method) != NULL || len + mlen + 3 > size)
        return;
    if (len != 0) {
        memcpy(allow + len, ", ", 2);
        len += 2;
    }
    memcpy(allow + len, method, mlen + 1);
}

ls_route_result_t ls_router_match(const ls_route_t *routes, size_t n, const char *method, size_t method_len,
                                  const char *path, size_t path_len, ls_route_match_t *m)
{
    ls_route_match_t cand, bad;
    int other_method = 0, have_bad = 0;
    size_t bad_idx = 0;
    char allow[sizeof(m->allow)] = "";

    /* The first route of the right method whose parameters parse wins; a route whose parameters do
     * not parse only decides the answer when no other route fits. */
    for (size_t i = 0; i < n; i++) {
        if (!match_shape(routes[i].pattern, path, path_len, &cand))
            continue;
        if (strlen(routes[i].method) != method_len || memcmp(routes[i].method, method, method_len) != 0) {
            allow_add(allow, sizeof(allow), routes[i].method);
            other_method = 1;
            continue;
        }
        cand.route = &routes[i];
        cand.bad_param = NULL;
        for (size_t j = 0; j < cand.nparams && cand.bad_param == NULL; j++)
            if (!param_value_ok(&cand.params[j]))
                cand.bad_param = &cand.params[j];
        if (cand.bad_param == NULL) {
            *m = cand;
            m->allow[0] = '\0';
            return LS_ROUTE_OK;
        }
        if (!have_bad) {
            bad = cand;
            bad_idx = (size_t)(cand.bad_param - cand.params);
            have_bad = 1;
        }
    }
    memset(m, 0, sizeof(*m));
    if (have_bad) {
        *m = bad;
        m->bad_param = &m->params[bad_idx];
        return LS_ROUTE_BAD_PARAM;
    }
    memcpy(m->allow, allow, sizeof(allow));
    return other_method ? LS_ROUTE_BAD_METHOD : LS_ROUTE_NOT_FOUND;
}

const ls_route_param_t *ls_route_param(const ls_route_match_t *m, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < m->nparams; i++)
        if (m->params[i].name_len == len && memcmp(m->params[i].name, name, len) == 0)
            return &m->params[i];
    return NULL;
}
