/* groups-service: representation helpers and the locked-group transaction shared by the handlers. */
#include "groups.h"

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

void group_kick_outbox(ls_req_t *r, ls_txn_t *t)
{
    (void)t;
    ls_outbox_kick(ls_worker_outbox(r->worker));
}

int group_actor_owns(ls_req_t *r, const locked_group_t *g)
{
    return r->role == LS_ROLE_ADMIN || (r->actor > 0 && r->actor == g->teacher);
}

static void on_membership(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    locked_group_t *g = t->ctx;
    g->member_count = ls_row_id(res, 0, "member_count");
    g->is_member = ls_row_bool(res, 0, "is_member");
    if (g->need_owner && !group_actor_owns(r, g))
        return ls_txn_fail(t, 403, "only the group's teacher or an admin may do this");
    g->next(r, t, g);
}

static void on_locked(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    locked_group_t *g = t->ctx;
    if (PQntuples(res) == 0) {
        if (g->lock_stmt == STMT_JOIN_LOCK)
            return ls_txn_fail(t, 404, "invitation code not found");
        return ls_txn_fail(t, 404, "group %s not found", g->lock_param);
    }
    const char *price = ls_row_text(res, 0, "price");
    snprintf(g->group_id, sizeof(g->group_id), "%s", ls_row_text(res, 0, "id"));
    g->teacher = ls_row_id(res, 0, "teacher_telegram_id");
    g->capacity = (int)ls_row_id(res, 0, "capacity");
    snprintf(g->status, sizeof(g->status), "%s", ls_row_text(res, 0, "status"));
    g->is_free = ls_row_bool(res, 0, "is_free");
    snprintf(g->price, sizeof(g->price), "%s", price != NULL ? price : "");

    const char *params[2] = {g->group_id, ls_req_actor_text(r)};
    ls_txn_exec(t, STMT_GROUP_MEMBERSHIP, 2, params, on_membership);
}

static void lock_group(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    (void)r;
    (void)res;
    locked_group_t *g = t->ctx;
    const char *params[1] = {g->lock_param};
    ls_txn_exec(t, g->lock_stmt, 1, params, on_locked);
}

void group_lock(ls_req_t *r, size_t lock_stmt, const char *param, int need_owner, group_locked_fn next)
{
    locked_group_t *g = ls_req_alloc(r, sizeof(*g));
    memset(g, 0, sizeof(*g));
    g->lock_stmt = lock_stmt;
    g->lock_param = param;
    g->need_owner = need_owner;
    g->next = next;
    g->ctx = r->state; /* a handler may have set its own state before */
    r->state = g;
    ls_txn_begin(ls_txn_new(r), lock_group);
}
