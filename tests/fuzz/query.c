/*
 * Fuzz target: a request's query string (shared/query.c) — finding a parameter, its URL decoding,
 * the lists of telegram ids and the paging parameters — as a handler reads them.
 *
 * Input: the query string, after the '?'. The request is a bare ls_req_t with only its target (the
 * path and query, request.h) and query_at, and r->status already set, so that the 400 the *_or_reply
 * functions answer is built (its problem document included) but sent nowhere.
 *
 * Checked beyond memory safety: an id list that is accepted holds 1..max telegram ids and its
 * PostgreSQL array literal is exactly them; paging that is accepted is within its bounds.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>

#include "query.h"
#include "scalar.h"

#define MAX_IDS   50
#define MAX_LIMIT 200

static void check_ids(ls_req_t *r)
{
    int64_t *ids;
    size_t n;
    const char *array;
    if (ls_req_id_list_or_reply(r, "ids", MAX_IDS, &ids, &n, &array) != 0)
        return;
    char want[MAX_IDS * 21 + 3];
    size_t off = 0;
    if (n < 1 || n > MAX_IDS)
        abort();
    want[off++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 1 || ids[i] > LS_ID_MAX)
            abort();
        off += (size_t)sprintf(want + off, "%s%" PRId64, i ? "," : "", ids[i]);
    }
    want[off++] = '}';
    want[off] = '\0';
    if (strcmp(want, array) != 0)
        abort();
}

static void check_page(ls_req_t *r)
{
    const char *limit, *offset;
    int64_t l, o;
    if (ls_req_page_or_reply(r, 20, MAX_LIMIT, &limit, &offset) != 0)
        return;
    if (ls_parse_i64(limit, strlen(limit), &l) != 0 || l < 1 || l > MAX_LIMIT ||
        ls_parse_i64(offset, strlen(offset), &o) != 0 || o < 0 || o > LS_MAX_OFFSET)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"q", "from", "to", "status", ""};
    char *path = malloc(size + 3);
    if (path == NULL)
        return 0;
    memcpy(path, "/x?", 3);
    memcpy(path + 3, data, size);

    ls_req_t r;
    memset(&r, 0, sizeof(r));
    r.target = h2o_iovec_init(path, size + 3);
    r.query_at = 2;
    r.status = 400; /* answered already: replies are built, then dropped */
    h2o_mem_init_pool(&r.pool);

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = ls_req_query(&r, names[i]);
        if (v != NULL && strlen(v) > size)
            abort();
    }
    check_ids(&r);
    check_page(&r);

    h2o_mem_clear_pool(&r.pool);
    free(path);
    return 0;
}
