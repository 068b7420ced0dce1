/* groups-service: representation helpers and the locked-group transaction shared by the handlers. */
#include "groups.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "outbox.h"
#include "rows.h"

#define PROGRESS_PREFIX "progress."

json_object *group_json(const PGresult *res, int row)
{
    json_object *group = json_object_new_object();
    json_object *progress = NULL;
    int has_progress = 0;
    int ncols = PQnfields(res);
    const size_t plen = strlen(PROGRESS_PREFIX);

    for (int col = 0; col < ncols; col++) {
        const char *name = PQfname(res, col);
        if (strncmp(name, PROGRESS_PREFIX, plen) != 0) {
            ls_row_add_column(group, res, row, col);
            continue;
        }
        if (progress == NULL)
            progress = json_object_new_object();
        /* Converted under the column's own name, then moved under the field's name. */
        json_object *tmp = json_object_new_object(), *v = NULL;
        ls_row_add_column(tmp, res, row, col);
        json_object_object_get_ex(tmp, name, &v);
        json_object_object_add(progress, name + plen, json_object_get(v));
        json_object_put(tmp);
        if (strcmp(name + plen, "updated_at") == 0 && !PQgetisnull(res, row, col))
            has_progress = 1;
    }
    if (!has_progress && progress != NULL) {
        json_object_put(progress);
        progress = NULL;
    }
    json_object_object_add(group, "progress", progress);
    return group;
}

const char *body_text(ls_req_t *r)
{
    const char *s = json_object_to_json_string_ext(r->body, JSON_C_TO_STRING_PLAIN);
    return ls_req_strdup(r, s, strlen(s));
}

/* ---- the locked-group transaction ---- */

static int bool_at(const PGresult *res, const char *col)
{
    int c = PQfnumber(res, col);
    return c >= 0 && !PQgetisnull(res, 0, c) && PQgetvalue(res, 0, c)[0] == 't';
}

static void finish_quietly(ls_req_t *r, group_txn_t *t)
{
    if (t->reply != NULL) {
        json_object_put(t->reply);
        t->reply = NULL;
    }
    if (t->txn != NULL) {
        ls_pg_txn_t *txn = t->txn;
        t->txn = NULL;
        ls_req_txn_finish(r, txn, 0, NULL);
    }
}

int group_txn_ok_or_abort(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) == 0)
        return 0;
    finish_quietly(r, r->state);
    return -1;
}

void group_txn_abort(ls_req_t *r, int status, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    finish_quietly(r, r->state);
    ls_reply_problem(r, status, "%s", detail);
}

static void on_committed(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    group_txn_t *t = r->state;
    json_object *reply = t->reply;
    t->reply = NULL;
    if (ls_pg_ok_or_reply(r, status, res) != 0) {
        json_object_put(reply);
        return;
    }
    if (t->kick_outbox)
        ls_outbox_kick(ls_worker_outbox(r->worker));
    if (reply == NULL)
        ls_reply_empty(r, 204);
    else
        ls_reply_json(r, t->reply_status, reply);
}

void group_txn_commit(ls_req_t *r, json_object *reply, int status)
{
    group_txn_t *t = r->state;
    ls_pg_txn_t *txn = t->txn;
    t->txn = NULL;
    t->reply = reply;
    t->reply_status = status;
    ls_req_txn_finish(r, txn, 1, on_committed);
}

void group_txn_exec(ls_req_t *r, size_t stmt, int nparams, const char *const *params, ls_req_pg_cb cb)
{
    group_txn_t *t = r->state;
    ls_req_txn_exec(r, t->txn, stmt, nparams, params, cb);
}

int group_txn_actor_owns(ls_req_t *r, const group_txn_t *t)
{
    return r->role == LS_ROLE_ADMIN || (r->actor > 0 && r->actor == t->teacher);
}

static void on_membership(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    group_txn_t *t = r->state;
    if (group_txn_ok_or_abort(r, status, res) != 0)
        return;
    ls_parse_i64(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), &t->member_count);
    t->is_member = bool_at(res, "is_member");
    if (t->need_owner && !group_txn_actor_owns(r, t))
        return group_txn_abort(r, 403, "only the group's teacher or an admin may do this");
    t->next(r, t);
}

static void on_locked(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    group_txn_t *t = r->state;
    if (group_txn_ok_or_abort(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0) {
        if (t->lock_stmt == STMT_JOIN_LOCK)
            return group_txn_abort(r, 404, "invitation code not found");
        return group_txn_abort(r, 404, "group %s not found", t->lock_param);
    }
    snprintf(t->group_id, sizeof(t->group_id), "%s", PQgetvalue(res, 0, PQfnumber(res, "id")));
    int c = PQfnumber(res, "teacher_telegram_id");
    ls_parse_i64(PQgetvalue(res, 0, c), (size_t)PQgetlength(res, 0, c), &t->teacher);
    int64_t capacity = 0;
    c = PQfnumber(res, "capacity");
    ls_parse_i64(PQgetvalue(res, 0, c), (size_t)PQgetlength(res, 0, c), &capacity);
    t->capacity = (int)capacity;
    snprintf(t->status, sizeof(t->status), "%s", PQgetvalue(res, 0, PQfnumber(res, "status")));
    t->is_free = bool_at(res, "is_free");
    c = PQfnumber(res, "price");
    snprintf(t->price, sizeof(t->price), "%s", PQgetisnull(res, 0, c) ? "" : PQgetvalue(res, 0, c));

    const char *params[2] = {t->group_id, ls_req_actor_text(r)};
    group_txn_exec(r, STMT_GROUP_MEMBERSHIP, 2, params, on_membership);
}

static void on_begun(ls_req_t *r, ls_pg_status_t status, ls_pg_txn_t *txn)
{
    group_txn_t *t = r->state;
    if (ls_pg_ok_or_reply(r, status, NULL) != 0)
        return;
    t->txn = txn;
    const char *params[1] = {t->lock_param};
    group_txn_exec(r, t->lock_stmt, 1, params, on_locked);
}

void group_txn_begin(ls_req_t *r, size_t lock_stmt, const char *param, int need_owner, group_txn_next_t next)
{
    group_txn_t *t = ls_req_alloc(r, sizeof(*t));
    void *ctx = r->state; /* a handler may have set its own state before */
    memset(t, 0, sizeof(*t));
    t->lock_stmt = lock_stmt;
    t->lock_param = param;
    t->need_owner = need_owner;
    t->next = next;
    t->ctx = ctx;
    r->state = t;
    ls_req_begin(r, on_begun);
}
