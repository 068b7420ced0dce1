/*
 * calls: a request's queries, transactions and internal calls, each one reference on the request
 * held by a req_call_t in request memory until its callback has run; the batch read.
 */
#include "calls.h"

#include <string.h>

#include "log.h"
#include "scalar.h"
#include "query.h"
#include "worker.h"

typedef struct {
    ls_req_t *r;
    union {
        ls_req_pg_cb pg;
        ls_req_begin_cb begin;
        ls_req_http_cb http;
        ls_req_http_ud_cb http_ud;
    } cb;
    void *ud;         /* for cb.http_ud */
    int with_ud;      /* cb.http_ud is the callback, not cb.http */
    ls_timer_t timer; /* ls_req_http: reports a failed send on the next iteration */
} req_call_t;

static req_call_t *call_new(ls_req_t *r)
{
    req_call_t *c = ls_req_alloc(r, sizeof(*c));
    c->r = r;
    ls_req_ref(r);
    return c;
}

/* ---- database ---- */

static void on_req_pg(void *ud, ls_pg_status_t status, PGresult *res)
{
    req_call_t *c = ud;
    c->cb.pg(c->r, status, res);
    ls_req_unref(c->r);
}

static void on_req_begin(void *ud, ls_pg_status_t status, ls_pg_txn_t *txn)
{
    req_call_t *c = ud;
    c->cb.begin(c->r, status, txn);
    ls_req_unref(c->r);
}

static req_call_t *pg_call_new(ls_req_t *r, ls_req_pg_cb cb)
{
    req_call_t *c = call_new(r);
    c->cb.pg = cb;
    return c;
}

void ls_req_pg(ls_req_t *r, size_t stmt, int nparams, const char *const *params, ls_req_pg_cb cb)
{
    ls_pg_exec(r->worker->pg, stmt, nparams, params, r->deadline, on_req_pg, pg_call_new(r, cb));
}

void ls_req_sql(ls_req_t *r, const char *sql, uint64_t deadline, ls_req_pg_cb cb)
{
    ls_pg_exec_sql(r->worker->pg, sql, 0, NULL, deadline, on_req_pg, pg_call_new(r, cb));
}

void ls_req_begin(ls_req_t *r, ls_req_begin_cb cb)
{
    req_call_t *c = call_new(r);
    c->cb.begin = cb;
    ls_pg_begin(r->worker->pg, r->deadline, on_req_begin, c);
}

void ls_req_txn_exec(ls_req_t *r, ls_pg_txn_t *txn, size_t stmt, int nparams, const char *const *params,
                     ls_req_pg_cb cb)
{
    ls_pg_txn_exec(txn, stmt, nparams, params, on_req_pg, pg_call_new(r, cb));
}

static void ignore_pg(ls_req_t *r, ls_pg_status_t status, PGresult *res) {}

void ls_req_txn_finish(ls_req_t *r, ls_pg_txn_t *txn, int commit, ls_req_pg_cb cb)
{
    ls_pg_txn_finish(txn, commit, on_req_pg, pg_call_new(r, cb != NULL ? cb : ignore_pg));
}

int ls_pg_ok_or_reply(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    const char *state;
    switch (status) {
    case LS_PG_OK:
        return 0;
    case LS_PG_UNAVAILABLE:
        ls_reply_problem_str(r, 503, "database unavailable");
        return -1;
    case LS_PG_BUSY:
        ls_reply_problem_str(r, 503, "database busy");
        return -1;
    case LS_PG_TIMEOUT:
        ls_reply_problem_str(r, 503, "deadline exceeded waiting for the database");
        return -1;
    case LS_PG_SQL_ERROR:
        break;
    }
    state = res != NULL ? ls_pg_sqlstate(res) : "";
    if (strcmp(state, "23505") == 0 || strcmp(state, "23P01") == 0 || strcmp(state, "23503") == 0) {
        ls_reply_problem_str(r, 409, "conflicts with existing data");
    } else if (strcmp(state, "23514") == 0 || strcmp(state, "23502") == 0 || strncmp(state, "22", 2) == 0) {
        ls_reply_problem_str(r, 400, ls_pg_errmsg(res));
    } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "57014") == 0) {
        ls_reply_problem_str(r, 503, "database busy, try again");
    } else {
        ls_log_line_t l;
        if (ls_log_begin(&l, LS_LOG_ERROR, &r->log, "database error")) {
            ls_log_str(&l, "sqlstate", state);
            ls_log_str(&l, "error", res != NULL ? ls_pg_errmsg(res) : "no result");
            ls_log_end(&l);
        }
        ls_reply_problem_str(r, 500, "internal error");
    }
    return -1;
}

/* ---- the batch read ---- */

typedef struct {
    int64_t *ids;
    size_t n;
    const char *key;
    ls_row_json_fn row_json;
} batch_t;

static void on_batch(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    batch_t *b = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    int row = 0, rows = PQntuples(res), idcol = PQfnumber(res, "telegram_id");
    json_object *found_rows = json_object_new_array_ext(rows);
    json_object *missing = json_object_new_array();
    /* Rows come back in the order asked, so one pass finds the ids that have none. */
    for (size_t i = 0; i < b->n; i++) {
        int64_t found;
        if (row < rows && idcol >= 0 &&
            ls_parse_i64(PQgetvalue(res, row, idcol), (size_t)PQgetlength(res, row, idcol), &found) == 0 &&
            found == b->ids[i]) {
            json_object_array_add(found_rows, b->row_json(r, res, row));
            row++;
        } else {
            json_object_array_add(missing, json_object_new_int64(b->ids[i]));
        }
    }
    json_object *out = json_object_new_object();
    json_object_object_add(out, b->key, found_rows);
    json_object_object_add(out, "missing", missing);
    ls_reply_json(r, 200, out);
}

void ls_req_batch(ls_req_t *r, size_t max, size_t stmt, const char *key, ls_row_json_fn row_json)
{
    batch_t *b = ls_req_alloc(r, sizeof(*b));
    const char *array;
    if (ls_req_id_list_or_reply(r, "ids", max, &b->ids, &b->n, &array) != 0)
        return;
    b->key = key;
    b->row_json = row_json;
    r->state = b;
    const char *params[1] = {array};
    ls_req_pg(r, stmt, 1, params, on_batch);
}

/* ---- internal HTTP calls ---- */

static void on_req_http(void *ud, const ls_http_response_t *resp)
{
    req_call_t *c = ud;
    c->cb.http(c->r, resp);
    ls_req_unref(c->r);
}

static void on_req_http_ud(void *ud, const ls_http_response_t *resp)
{
    req_call_t *c = ud;
    c->cb.http_ud(c->r, resp, c->ud);
    ls_req_unref(c->r);
}

static void on_req_http_send_failed(ls_timer_t *t)
{
    req_call_t *c = (req_call_t *)((char *)t - offsetof(req_call_t, timer));
    ls_http_response_t resp = {.outcome = LS_HTTP_ERROR, .body = "", .error = "could not start the request"};
    if (c->with_ud)
        on_req_http_ud(c, &resp);
    else
        on_req_http(c, &resp);
}

static void req_http_send(ls_req_t *r, req_call_t *c, const char *target, const char *base_url,
                          const char *method, const char *path, const char *body, size_t body_len,
                          const char *idempotency_key)
{
    char traceparent[LS_TRACEPARENT_LEN + 1];
    ls_trace_format(&r->trace, traceparent);
    ls_http_request_t spec = {
        .target = target,
        .base_url = base_url,
        .method = method,
        .path = path,
        .body = body,
        .body_len = body_len,
        .request_id = r->request_id,
        .traceparent = traceparent,
        .actor = r->actor,
        .actor_role = r->role != LS_ROLE_NONE ? ls_role_name(r->role) : NULL,
        .idempotency_key = idempotency_key,
        .deadline = r->deadline,
    };
    if (r->worker->http == NULL ||
        ls_http_send(r->worker->http, &spec, c->with_ud ? on_req_http_ud : on_req_http, c) != 0) {
        ls_metrics_upstream_call(ls_metrics_target(target), LS_UP_TRANSPORT_ERROR, ls_metrics_now_ns(), 0);
        ls_timer_init(&c->timer, on_req_http_send_failed);
        ls_timer_start(r->worker->loop, &c->timer, 0);
    }
}

void ls_req_http(ls_req_t *r, const char *target, const char *base_url, const char *method, const char *path,
                 const char *body, size_t body_len, ls_req_http_cb cb)
{
    req_call_t *c = call_new(r);
    c->cb.http = cb;
    c->ud = NULL;
    c->with_ud = 0;
    req_http_send(r, c, target, base_url, method, path, body, body_len, NULL);
}

void ls_req_http_ex(ls_req_t *r, const char *target, const char *base_url, const char *method,
                    const char *path, const char *body, size_t body_len, const char *idempotency_key,
                    ls_req_http_ud_cb cb, void *ud)
{
    req_call_t *c = call_new(r);
    c->cb.http_ud = cb;
    c->ud = ud;
    c->with_ud = 1;
    req_http_send(r, c, target, base_url, method, path, body, body_len, idempotency_key);
}
