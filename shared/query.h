/*
 * query: a request's query string — one parameter's decoded value, paging and lists of ids.
 *
 * Values are URL-decoded (`+` is a space, `%XX` a byte; a malformed escape is kept as it is) into
 * request memory. The *_or_reply functions answer 400 naming the parameter and return -1 when it is
 * malformed, so a handler just returns.
 */
#ifndef LS_QUERY_H
#define LS_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"

/* Query string: returns the URL-decoded value (request memory) of the first `name=`, or NULL. */
const char *ls_req_query(ls_req_t *r, const char *name);

/*
 * Query parameter `name` as a comma-separated list of 1..max telegram ids. On success fills *ids
 * (request memory), *n, and *pg_array with the same list as a PostgreSQL array literal "{1,2,3}"
 * for a `$1::bigint[]` parameter, and returns 0; otherwise answers 400 naming the problem and
 * returns -1.
 */
int ls_req_id_list_or_reply(ls_req_t *r, const char *name, size_t max, int64_t **ids, size_t *n,
                            const char **pg_array);

/*
 * Pagination from `limit` (1..max_limit, default def_limit) and `offset` (0..LS_MAX_OFFSET,
 * default 0) query parameters, as decimal text ready for SQL parameters. Returns 0, or answers 400
 * and returns -1.
 */
#define LS_MAX_OFFSET 100000
int ls_req_page_or_reply(ls_req_t *r, int def_limit, int max_limit, const char **limit, const char **offset);

#endif
