/* groups-service handlers: members — list, leave or remove, and joining by invitation code. */
#include "groups.h"

#include <stdio.h>
#include <string.h>

#include "rows.h"

/* ---- GET /groups/{group_id}/members ---- */

typedef struct {
    const char *limit, *offset;
} members_page_t;

static void reply_members(ls_req_t *r, json_object *members)
{
    members_page_t *p = r->state;
    int64_t limit = 0, offset = 0;
    ls_parse_i64(p->limit, strlen(p->limit), &limit);
    ls_parse_i64(p->offset, strlen(p->offset), &offset);
    json_object *out = json_object_new_object();
    json_object_object_add(out, "members", members);
    json_object_object_add(out, "limit", json_object_new_int64(limit));
    json_object_object_add(out, "offset", json_object_new_int64(offset));
    ls_reply_json(r, 200, out);
}

static void on_group_exists(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0)
        return ls_reply_problem(r, 404, "group %s not found", ls_req_param_str(r, "group_id"));
    reply_members(r, json_object_new_array());
}

static void on_members(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) > 0)
        return reply_members(r, ls_rows_array(res));
    /* An empty page: of a group with no (more) members, or of no group at all. */
    const char *params[1] = {ls_req_param_str(r, "group_id")};
    ls_req_pg(r, STMT_GROUP_OWNER, 1, params, on_group_exists);
}

void members_list(ls_req_t *r)
{
    members_page_t *p = ls_req_alloc(r, sizeof(*p));
    memset(p, 0, sizeof(*p));
    r->state = p;
    if (ls_req_page_or_reply(r, GROUPS_PAGE_DEFAULT, GROUPS_PAGE_MAX, &p->limit, &p->offset) != 0)
        return;
    const char *params[3] = {ls_req_param_str(r, "group_id"), p->limit, p->offset};
    ls_req_pg(r, STMT_MEMBERS_LIST, 3, params, on_members);
}

/* ---- DELETE /groups/{group_id}/members/{telegram_id} ---- */

static void on_removed(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    locked_group_t *g = t->ctx;
    if (ls_row_id(res, 0, "removed") == 0)
        return ls_txn_fail(t, 404, "%s is not a member of group %s", ls_req_param_str(r, "telegram_id"),
                           g->group_id);
    t->on_commit = group_kick_outbox;
    ls_txn_commit(t);
}

static void remove_locked(ls_req_t *r, ls_txn_t *t, locked_group_t *g)
{
    int64_t member = ls_req_param_id(r, "telegram_id");
    if (r->actor != member && !group_actor_owns(r, g))
        return ls_txn_fail(t, 403, "only the member themself, the group's teacher or an admin may do this");
    const char *params[4] = {g->group_id, ls_req_param_str(r, "telegram_id"), ls_req_actor_text(r),
                             ls_req_traceparent(r)};
    ls_txn_exec(t, STMT_MEMBER_REMOVE, 4, params, on_removed);
}

void members_remove(ls_req_t *r)
{
    if (ls_req_actor_or_reply(r) != 0)
        return;
    group_lock(r, STMT_GROUP_LOCK, ls_req_param_str(r, "group_id"), 0, remove_locked);
}

/* ---- POST /join/{code}: lock the group and the invitation, check (a paid group: the paid seat, paid.c),
 * insert member + outbox + audit ---- */

/* The answer is {"group", "member"}: the member row is kept in it until the group is read again. */
static void on_join_group(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    json_object_object_add(t->reply, "group", group_json(res, 0)); /* in place: "group" stays first */
    t->on_commit = group_kick_outbox;
    ls_txn_commit(t);
}

static void on_joined(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    locked_group_t *g = t->ctx;
    json_object *out = json_object_new_object();
    json_object_object_add(out, "group", NULL);
    json_object_object_add(out, "member", ls_row_object(res, 0));
    ls_txn_reply(t, 201, out);
    /* The group as it is now, member_count included, read inside the transaction. */
    const char *params[1] = {g->group_id};
    ls_txn_exec(t, STMT_GROUP_GET, 1, params, on_join_group);
}

static void on_invitation(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    locked_group_t *g = t->ctx;
    if (PQntuples(res) == 0) /* cannot happen: the group was found through this code */
        return ls_txn_fail(t, 404, "invitation code not found");
    if (ls_row_bool(res, 0, "revoked"))
        return ls_txn_fail(t, 410, "this invitation has been revoked");
    if (ls_row_bool(res, 0, "expired"))
        return ls_txn_fail(t, 410, "this invitation has expired");
    if (ls_row_bool(res, 0, "used_up"))
        return ls_txn_fail(t, 410, "this invitation has been used up");
    if (strcmp(g->status, "active") != 0)
        return ls_txn_fail(t, 409, "group %s is archived", g->group_id);
    if (g->is_member)
        return ls_txn_fail(t, 409, "%s is already a member of group %s", ls_req_actor_text(r), g->group_id);
    if (g->member_count >= g->capacity)
        return ls_txn_fail(t, 409, "group %s is full (capacity %d)", g->group_id, g->capacity);

    const char *id = ls_row_text(res, 0, "id");
    paid_join_insert(r, t, g, ls_req_strdup(r, id, strlen(id)), on_joined);
}

static void join_locked(ls_req_t *r, ls_txn_t *t, locked_group_t *g)
{
    const char *params[1] = {g->lock_param};
    ls_txn_exec(t, STMT_INVITE_LOCK, 1, params, on_invitation);
}

int invitation_code_ok(const char *code)
{
    size_t n = strlen(code);
    return n == 22 && strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

void groups_join(ls_req_t *r)
{
    if (ls_req_actor_or_reply(r) != 0)
        return;
    const char *code = ls_req_param_str(r, "code");
    if (!invitation_code_ok(code))
        return ls_reply_problem(r, 404, "invitation code not found");
    group_lock(r, STMT_JOIN_LOCK, code, 0, join_locked);
}
