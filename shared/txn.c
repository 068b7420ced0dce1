/* txn: a request's transaction as a list of steps, and its Idempotency-Key. See txn.h. */
#include "txn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rolls back when still open, drops the pending reply, releases the handler's resources; once. */
static void txn_end(ls_txn_t *t)
{
    if (t->pg != NULL) {
        ls_pg_txn_t *pg = t->pg;
        t->pg = NULL;
        ls_req_txn_finish(t->r, pg, 0, NULL);
    }
    if (t->reply != NULL) {
        json_object_put(t->reply);
        t->reply = NULL;
    }
    if (!t->ended) {
        t->ended = 1;
        if (t->release != NULL)
            t->release(t);
    }
}

/* The Idempotency-Key header and the request's fingerprint, when the service keeps keys. */
static void read_key(ls_txn_t *t)
{
    ls_req_t *r = t->r;
    size_t first;
    long long ttl;
    h2o_iovec_t v;

    if (r->h2o == NULL) {
        t->gone = 1;
        return;
    }
    if (!ls_idem_config(&first, &ttl) || !ls_h2o_header(r->h2o, "idempotency-key", 15, &v))
        return;
    if (!ls_idem_key_valid(v.base, v.len)) {
        t->idem_bad = 1;
        return;
    }
    t->idem_key = ls_req_strdup(r, v.base, v.len);
    const h2o_req_t *h = r->h2o;
    ls_idem_fingerprint(h->method.base, h->method.len, h->path.base, h->path.len, h->entity.base,
                        h->entity.base != NULL ? h->entity.len : 0, t->idem_fp);
}

ls_txn_t *ls_txn_new(ls_req_t *r)
{
    ls_txn_t *t = ls_req_alloc(r, sizeof(*t));
    memset(t, 0, sizeof(*t));
    t->r = r;
    t->ctx = r->state;
    t->reply_status = 204;
    r->state = t;
    read_key(t);
    return t;
}

static void on_result(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    ls_txn_t *t = r->state;
    ls_txn_step_t next = t->next;
    t->next = NULL;
    if (status != LS_PG_OK) {
        txn_end(t);
        if (status == LS_PG_SQL_ERROR && t->on_error != NULL && t->on_error(r, t, ls_pg_sqlstate(res)) == 0)
            return;
        ls_pg_ok_or_reply(r, status, res);
        return;
    }
    next(r, t, res);
}

/* ---- the key: claim, replay, record ---- */

static size_t idem_stmt(int which)
{
    size_t first;
    long long ttl;
    ls_idem_config(&first, &ttl);
    return first + (size_t)which;
}

static const char *idem_actor(ls_txn_t *t)
{
    const char *actor = ls_req_actor_text(t->r);
    return actor != NULL ? actor : "0";
}

/* A recorded answer for this key: the same request's is answered again, another's is 422. */
static void on_stored(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    if (PQntuples(res) != 1)
        return ls_txn_fail(t, 409, "the request with this Idempotency-Key expired just now: send it again");
    if (strcmp(PQgetvalue(res, 0, 0), t->idem_fp) != 0)
        return ls_txn_fail(t, 422,
                           "Idempotency-Key '%.128s' was used for another request (method, path or body): "
                           "use a new key for a new request",
                           t->idem_key);
    int status = atoi(PQgetvalue(res, 0, 1));
    int has_body = !PQgetisnull(res, 0, 2);
    size_t len = has_body ? (size_t)PQgetlength(res, 0, 2) : 0;
    const char *body = has_body ? ls_req_strdup(r, PQgetvalue(res, 0, 2), len) : NULL;
    txn_end(t);
    if (has_body)
        ls_reply_raw(r, status, "application/json", body, len);
    else
        ls_reply_empty(r, status);
}

static void on_claimed(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    if (PQntuples(res) == 1) {
        t->idem_claimed = 1;
        return t->first(r, t, NULL);
    }
    /* Taken and alive: read in a statement of its own, which sees what committed while the claim
     * waited for the key's row. */
    const char *params[2] = {idem_actor(t), t->idem_key};
    ls_txn_exec(t, idem_stmt(LS_IDEM_READ), 2, params, on_stored);
}

/* The keys' lifetime in seconds, as text (the pool copies parameters). */
static const char *idem_ttl(char text[24])
{
    size_t first;
    long long ttl;
    ls_idem_config(&first, &ttl);
    snprintf(text, 24, "%lld", ttl);
    return text;
}

static void claim(ls_txn_t *t)
{
    char ttl[24];
    const char *params[4] = {idem_actor(t), t->idem_key, t->idem_fp, idem_ttl(ttl)};
    ls_txn_exec(t, idem_stmt(LS_IDEM_CLAIM), 4, params, on_claimed);
}

static void on_recorded(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    (void)res;
    ls_txn_commit(t);
}

/* The answer about to be committed, into the key's row (the same text ls_reply_json sends); and a
 * few expired rows deleted (idempotency.h). */
static void record(ls_txn_t *t)
{
    char status[16], ttl[24];
    snprintf(status, sizeof(status), "%d", t->reply_status);
    const char *body =
        t->reply != NULL ? json_object_to_json_string_ext(t->reply, JSON_C_TO_STRING_PLAIN) : NULL;
    const char *params[5] = {idem_actor(t), t->idem_key, status, body, idem_ttl(ttl)};
    t->idem_claimed = 0;
    ls_txn_exec(t, idem_stmt(LS_IDEM_RECORD), 5, params, on_recorded);
}

/* ---- the transaction ---- */

static void on_begun(ls_req_t *r, ls_pg_status_t status, ls_pg_txn_t *pg)
{
    ls_txn_t *t = r->state;
    ls_txn_step_t first = t->next;
    t->next = NULL;
    if (ls_pg_ok_or_reply(r, status, NULL) != 0)
        return txn_end(t);
    t->pg = pg;
    if (t->idem_key != NULL)
        return claim(t);
    first(r, t, NULL);
}

void ls_txn_begin(ls_txn_t *t, ls_txn_step_t first)
{
    if (t->gone)
        return txn_end(t);
    if (t->idem_bad) {
        txn_end(t);
        return ls_reply_problem(t->r, 400, "header Idempotency-Key: must be 1..%d visible ASCII characters",
                                LS_IDEM_KEY_MAX);
    }
    t->first = first;
    t->next = first;
    ls_req_begin(t->r, on_begun);
}

void ls_txn_exec(ls_txn_t *t, size_t stmt, int nparams, const char *const *params, ls_txn_step_t next)
{
    t->next = next;
    if (t->direct)
        ls_req_pg(t->r, stmt, nparams, params, on_result);
    else
        ls_req_txn_exec(t->r, t->pg, stmt, nparams, params, on_result);
}

void ls_txn_audit(ls_txn_t *t, size_t stmt, const char *action, const char *entity, const char *entity_id,
                  const char *changes, ls_txn_step_t next)
{
    const char *params[5] = {ls_req_actor_text(t->r), action, entity, entity_id, changes};
    ls_txn_exec(t, stmt, 5, params, next);
}

void ls_txn_fail(ls_txn_t *t, int status, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    /* Formatted first: ending the transaction runs release(), which may free what the arguments
     * point at; replied last: the reply may be what lets the request go. */
    txn_end(t);
    ls_reply_problem_str(t->r, status, detail);
}

void ls_txn_abort(ls_txn_t *t)
{
    txn_end(t);
}

void ls_txn_reply(ls_txn_t *t, int status, json_object *reply)
{
    if (t->reply != NULL)
        json_object_put(t->reply);
    t->reply = reply;
    t->reply_status = status;
}

static void on_committed(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    ls_txn_t *t = r->state;
    json_object *reply = t->reply;
    t->reply = NULL;
    if (ls_pg_ok_or_reply(r, status, res) != 0) {
        json_object_put(reply);
        return txn_end(t);
    }
    if (t->on_commit != NULL)
        t->on_commit(r, t);
    txn_end(t);
    if (reply == NULL)
        ls_reply_empty(r, t->reply_status);
    else
        ls_reply_json(r, t->reply_status, reply);
}

void ls_txn_commit(ls_txn_t *t)
{
    if (t->direct)
        return on_committed(t->r, LS_PG_OK, NULL);
    if (t->idem_claimed)
        return record(t);
    ls_pg_txn_t *pg = t->pg;
    t->pg = NULL;
    ls_req_txn_finish(t->r, pg, 1, on_committed);
}

/* ---- a write of one statement ---- */

static void run_one(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    (void)res;
    ls_txn_exec(t, t->one_stmt, t->one_nparams, t->one_params, t->one_next);
}

void ls_txn_write(ls_req_t *r, size_t stmt, int nparams, const char *const *params, ls_txn_step_t next,
                  int (*on_error)(ls_req_t *r, ls_txn_t *t, const char *sqlstate))
{
    ls_txn_t *t = ls_txn_new(r);
    t->on_error = on_error;
    if (t->gone)
        return txn_end(t);
    if (t->idem_key == NULL && !t->idem_bad) {
        t->direct = 1;
        return ls_txn_exec(t, stmt, nparams, params, next);
    }
    /* Run after BEGIN and the claim: the caller's parameters live on its stack. */
    t->one_params = ls_req_alloc(r, sizeof(char *) * (size_t)(nparams > 0 ? nparams : 1));
    for (int i = 0; i < nparams; i++)
        t->one_params[i] = params[i] != NULL ? ls_req_strdup(r, params[i], strlen(params[i])) : NULL;
    t->one_stmt = stmt;
    t->one_nparams = nparams;
    t->one_next = next;
    ls_txn_begin(t, run_one);
}

int ls_txn_unknown_timezone(ls_req_t *r, ls_txn_t *t, const char *sqlstate)
{
    (void)t;
    if (strcmp(sqlstate, "22023") != 0)
        return -1;
    ls_reply_problem(r, 400, "field 'timezone': unknown time zone '%s'",
                     ls_json_get_str(r->body, "timezone"));
    return 0;
}
