/* query: finding and decoding query parameters, paging and id lists. */
#include "query.h"

#include <stdio.h>
#include <string.h>

#include "scalar.h"
#include "url.h"

/* The value as the handler reads it: decoded (url.h, lenient as browsers are) into request memory. */
static const char *url_decode(ls_req_t *r, const char *v, const char *end)
{
    char *out = ls_req_alloc(r, (size_t)(end - v) + 1);
    ls_url_decode(out, v, (size_t)(end - v), 0);
    return out;
}

const char *ls_req_query(ls_req_t *r, const char *name)
{
    if (r->query_at == SIZE_MAX)
        return NULL;
    const char *q = r->target.base + r->query_at + 1;
    const char *end = r->target.base + r->target.len;
    size_t name_len = strlen(name);

    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pair_end = amp != NULL ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pair_end - q));
        const char *key_end = eq != NULL ? eq : pair_end;
        if ((size_t)(key_end - q) == name_len && memcmp(q, name, name_len) == 0)
            return url_decode(r, eq != NULL ? eq + 1 : pair_end, pair_end);
        q = pair_end + 1;
    }
    return NULL;
}

int ls_req_id_list_or_reply(ls_req_t *r, const char *name, size_t max, int64_t **ids, size_t *n,
                            const char **pg_array)
{
    const char *list = ls_req_query(r, name);
    if (list == NULL || list[0] == '\0') {
        ls_reply_problem(r, 400, "query parameter '%s' is required: comma-separated telegram ids", name);
        return -1;
    }
    int64_t *out = ls_req_alloc(r, max * sizeof(*out));
    char *array = ls_req_alloc(r, max * 21 + 3);
    size_t count = 0, off = 0;
    array[off++] = '{';
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (count == max) {
            ls_reply_problem(r, 400, "query parameter '%s': at most %zu ids", name, max);
            return -1;
        }
        if (ls_parse_id(p, len, &out[count]) != 0) {
            ls_reply_problem(r, 400, "query parameter '%s': '%.*s' is not a telegram id", name,
                             (int)(len > 32 ? 32 : len), p);
            return -1;
        }
        off += (size_t)sprintf(array + off, "%s%lld", count ? "," : "", (long long)out[count]);
        count++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    array[off++] = '}';
    array[off] = '\0';
    *ids = out;
    *n = count;
    *pg_array = array;
    return 0;
}

/* Optional non-negative integer query parameter within [min, max]; -1 after answering 400. */
static int query_int_or_reply(ls_req_t *r, const char *name, int64_t def, int64_t min, int64_t max,
                              const char **text)
{
    const char *v = ls_req_query(r, name);
    int64_t x = def;
    if (v != NULL && (ls_parse_i64(v, strlen(v), &x) != 0 || x < min || x > max)) {
        ls_reply_problem(r, 400, "query parameter '%s' must be an integer from %lld to %lld", name,
                         (long long)min, (long long)max);
        return -1;
    }
    char *out = ls_req_alloc(r, 24);
    snprintf(out, 24, "%lld", (long long)x);
    *text = out;
    return 0;
}

int ls_req_page_or_reply(ls_req_t *r, int def_limit, int max_limit, const char **limit, const char **offset)
{
    if (query_int_or_reply(r, "limit", def_limit, 1, max_limit, limit) != 0)
        return -1;
    return query_int_or_reply(r, "offset", 0, 0, LS_MAX_OFFSET, offset);
}
