/*
 * batch: POST /batch — several GETs of a service in one internal request (the BFF's coalescer).
 *
 * Why: the BFF starts many views in one turn of its loop, each with a GET to the same services.
 * Sent alone, each GET wakes its service and a PostgreSQL backend by itself; in one batch the service
 * reads them in one go, their queries leave together in the pool's pipelines, and the answers go back
 * in one write.
 *
 * The request (behind the internal token, as every service route; the front door routes it):
 *
 *     {"requests":[{"path":"/users/42","actor":42,"role":"student","request_id":"…",
 *                   "traceparent":"00-…","deadline_ms":950}, …]}
 *
 * at most LS_BATCH_MAX_ITEMS items; `path` is required (the escaped path and query, as a GET sent
 * alone would have it, starting with '/', at most LS_BATCH_PATH_MAX bytes); the other members are
 * optional and mean what the headers X-Actor-Telegram-Id, X-Actor-Role, X-Request-Id, traceparent and
 * X-Deadline-Ms mean on a request of its own (actor an integer, deadline_ms an integer, the others
 * strings). A body that is not such an object is refused whole with 400.
 *
 * Each item is then an ls_req_t of its own (request.h) served by the front door like a GET from a
 * client (front.h: routing, actor, role, deadline, the handler), with its own access log line and its
 * own count in ls_http_requests_total; its deadline is the earlier of its own and the batch's. The
 * batch answers once every item has, 200 with the items' answers in order, in json-c's plain form:
 *
 *     {"responses":[{"status":200,"length":812,"body":{…}},{"status":404,"length":97,"body":{"type":…}}]}
 *
 * `body` is the item's answer as its handler wrote it, or null when it had none (or it was not JSON);
 * `length` is the byte length of that text (4 for null), so that the caller can take each body without
 * reading through it (bff/coalesce.c reads the frame only, and each body once where it is used).
 * If the batch's client goes away, its items still run to their end (as a request's work does) and
 * the answer is dropped.
 */
#ifndef LS_BATCH_H
#define LS_BATCH_H

#include <stddef.h>

#include "request.h"

#define LS_BATCH_MAX_ITEMS 64
#define LS_BATCH_PATH_MAX  2048

/* The handler of POST /batch, called by the front door after its checks (token, body size, deadline). */
void ls_batch_serve(ls_req_t *r);

/* For request.c: an item's reply (body len bytes, content_type may be NULL), once. */
void ls_batch_item_reply(ls_batch_item_t *item, int status, const char *content_type, const char *body,
                         size_t len);

#endif
