/*
 * coalesce: the BFF's coalescer — the GET calls that a worker thread's fan-outs start to one service
 * during one loop iteration, sent together at the end of that iteration (the internal batch call,
 * docs/ARCHITECTURE.md §7.2).
 *
 * Per worker thread, one queue per service (bff_upstream_id_t) of at most UPSTREAM_BATCH_MAX calls. The
 * queues are sent once the loop has done the I/O of its iteration (one zero-delay ls_timer_t of the
 * worker's loop, armed by the first call queued: ls_loop_run_once() fires due timers after its wait), a
 * full queue at once. Of one queue:
 *   - one call goes alone: a plain GET through ls_req_http_ex(), exactly as without the coalescer;
 *   - two or more go as one `POST /batch` through the worker's HTTP client. Each item carries what the
 *     call's own headers would: its path, and of the request it is made for the actor, role, request id,
 *     traceparent (its trace, the request's span as the parent) and the milliseconds left until the
 *     request's deadline (at least 1). The batch has the first item's request id with "-b" (cut to
 *     LS_REQUEST_ID_MAX), its traceparent, no actor, the latest deadline of its items, and is retried as
 *     a GET is (ls_http_request_t.idempotent). Its body is built in one buffer of the size it needs
 *     (paths are at most BFF_COALESCE_MAX_PATH bytes: a longer one goes alone): one allocation a batch.
 *
 * Each call's callback runs exactly once, never from inside bff_coalesce_get(), on the worker's thread,
 * with a response of its own, as if the call had been sent alone:
 *   - the batch answered 200 with one response per item: outcome LS_HTTP_OK, the item's status and
 *     body, content type application/json for a 2xx and application/problem+json otherwise (none
 *     without a body), the batch's attempts and duration. The answer is only framed here (batch.h
 *     gives each body's length): each body is read once, where every answer is (upstream.h);
 *   - the batch answered another status: that status, body and content type;
 *   - the batch answered 2xx with what does not frame as batch.h writes it: status 502 with a problem
 *     body;
 *   - the batch failed (transport error, timeout, shutdown): its outcome and error;
 *   - the batch's answer was over the HTTP client's max_response_bytes (each answer may fit on its
 *     own), or the service answered 404 or 405 (it has no POST /batch: an older one, during a rolling
 *     deploy): each call is sent again alone, and answers as that call does.
 * A response's body is valid during the callback only and, for an item of a batch, is not
 * NUL-terminated (body_len bytes). An item answered 502-504 inside a batch is not sent again (the batch
 * itself answered): only a failed batch is retried, by the HTTP client.
 *
 * Each batch sent counts in ls_bff_upstream_batches_total and ls_bff_upstream_batched_calls_total
 * (ls_metrics_bff_batch) under the service's name; the batch itself is one call in
 * ls_upstream_calls_total.
 *
 * Setting UPSTREAM_BATCH_MAX (bff_coalesce_configure): calls in one batch, 1..BFF_COALESCE_MAX, default
 * 32; 1 turns the coalescer off (every call goes alone at once).
 */
#ifndef BFF_COALESCE_H
#define BFF_COALESCE_H

#include <stddef.h>

#include <server.h>

#include "upstream.h"

#define BFF_COALESCE_MAX      64   /* items in one batch: the services' LS_BATCH_MAX_ITEMS */
#define BFF_COALESCE_MAX_PATH 2048 /* an item's path at most (the batch call's limit) */

/* Once, before the workers start: UPSTREAM_BATCH_MAX (1..BFF_COALESCE_MAX). */
void bff_coalesce_configure(size_t batch_max);

/*
 * A GET of path (already escaped; request memory, as r lives until the callback) to up on behalf of r:
 * queued (holding a reference on r until cb has run) or, with the coalescer off or stopped, sent alone
 * at once. cb runs once, as ls_req_http_ex()'s callback does.
 */
void bff_coalesce_get(ls_req_t *r, bff_upstream_id_t up, const char *path, ls_req_http_ud_cb cb, void *ud);

/*
 * At the worker's stop (on_worker_stop, before its HTTP client goes): disarms the timer and fails every
 * queued call (LS_HTTP_ERROR); later calls go alone. Batches in flight end with the HTTP client, which
 * fails them (and so each of their items) as it goes.
 */
void bff_coalesce_stop(ls_worker_t *w);

#endif
