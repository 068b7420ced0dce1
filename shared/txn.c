/* txn: a request's transaction as a list of steps. See txn.h. */
#include "txn.h"

#include <stdarg.h>
#include <stdio.h>
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

ls_txn_t *ls_txn_new(ls_req_t *r)
{
    ls_txn_t *t = ls_req_alloc(r, sizeof(*t));
    memset(t, 0, sizeof(*t));
    t->r = r;
    t->ctx = r->state;
    t->reply_status = 204;
    r->state = t;
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

static void on_begun(ls_req_t *r, ls_pg_status_t status, ls_pg_txn_t *pg)
{
    ls_txn_t *t = r->state;
    ls_txn_step_t first = t->next;
    t->next = NULL;
    if (ls_pg_ok_or_reply(r, status, NULL) != 0)
        return txn_end(t);
    t->pg = pg;
    first(r, t, NULL);
}

void ls_txn_begin(ls_txn_t *t, ls_txn_step_t first)
{
    t->next = first;
    ls_req_begin(t->r, on_begun);
}

void ls_txn_exec(ls_txn_t *t, size_t stmt, int nparams, const char *const *params, ls_txn_step_t next)
{
    t->next = next;
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
    ls_pg_txn_t *pg = t->pg;
    t->pg = NULL;
    ls_req_txn_finish(t->r, pg, 1, on_committed);
}
