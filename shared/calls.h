/*
 * calls: work a request starts on its worker — PostgreSQL queries and transactions on the worker's
 * pool, calls to other daemons on the worker's HTTP client — and the batch read built on them.
 *
 * Each ls_req_* here takes a reference on the request (request.h) that its callback's return drops,
 * so the request outlives the work even when the client goes away. Callbacks run on the worker's
 * thread, never from inside the call that started the work. Queries and calls carry the request's
 * deadline; internal calls also pass on its request id, trace (traceparent, with the request's span
 * as the parent), actor and role.
 */
#ifndef LS_CALLS_H
#define LS_CALLS_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "http.h"
#include "pg.h"
#include "request.h"

/* Database work on behalf of a request (keeps r alive until the callback has run). */
typedef void (*ls_req_pg_cb)(ls_req_t *r, ls_pg_status_t status, PGresult *res);
typedef void (*ls_req_begin_cb)(ls_req_t *r, ls_pg_status_t status, ls_pg_txn_t *txn);
void ls_req_pg(ls_req_t *r, size_t stmt, int nparams, const char *const *params, ls_req_pg_cb cb);
void ls_req_begin(ls_req_t *r, ls_req_begin_cb cb);
void ls_req_txn_exec(ls_req_t *r, ls_pg_txn_t *txn, size_t stmt, int nparams, const char *const *params,
                     ls_req_pg_cb cb);
void ls_req_txn_finish(ls_req_t *r, ls_pg_txn_t *txn, int commit, ls_req_pg_cb cb);
/* An unprepared statement without parameters, due by deadline (the front door's /readyz). */
void ls_req_sql(ls_req_t *r, const char *sql, uint64_t deadline, ls_req_pg_cb cb);
/*
 * When status is not LS_PG_OK, answers the matching problem and returns -1: 503 for an unavailable,
 * busy or timed-out database; 409 for unique/exclusion violations; 400 for check or data errors;
 * 500 otherwise (logged). Returns 0 when status is LS_PG_OK.
 */
int ls_pg_ok_or_reply(ls_req_t *r, ls_pg_status_t status, PGresult *res);

/*
 * A whole batch read, `GET /<things>?ids=1,2,3`: parses the ids (at most max; 400 otherwise), runs
 * prepared statement stmt with their array as $1 — it must return the rows in the order asked
 * (`unnest($1::bigint[]) WITH ORDINALITY … ORDER BY ord`) with a `telegram_id` column — and answers
 * {"<key>": [row_json of each row], "missing": [ids without a row]}. Uses r->state.
 */
typedef json_object *(*ls_row_json_fn)(ls_req_t *r, const PGresult *res, int row);
void ls_req_batch(ls_req_t *r, size_t max, size_t stmt, const char *key, ls_row_json_fn row_json);

/* An internal call on behalf of a request: request id, trace, actor and deadline are passed on. A call
 * that cannot start (no client, no memory) calls back on the next loop iteration with LS_HTTP_ERROR. */
typedef void (*ls_req_http_cb)(ls_req_t *r, const ls_http_response_t *resp);
void ls_req_http(ls_req_t *r, const char *target, const char *base_url, const char *method, const char *path,
                 const char *body, size_t body_len, ls_req_http_cb cb);
/* The same with a user-data pointer for the callback and an optional Idempotency-Key. */
typedef void (*ls_req_http_ud_cb)(ls_req_t *r, const ls_http_response_t *resp, void *ud);
void ls_req_http_ex(ls_req_t *r, const char *target, const char *base_url, const char *method,
                    const char *path, const char *body, size_t body_len, const char *idempotency_key,
                    ls_req_http_ud_cb cb, void *ud);

#endif
