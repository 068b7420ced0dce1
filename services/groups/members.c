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

static void on_removed(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    group_txn_t *t = r->state;
    if (group_txn_ok_or_abort(r, status, res) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "0") == 0)
        return group_txn_abort(r, 404, "%s is not a member of group %s", ls_req_param_str(r, "telegram_id"),
                               t->group_id);
    t->kick_outbox = 1;
    group_txn_commit(r, NULL, 204);
}

static void remove_locked(ls_req_t *r, group_txn_t *t)
{
    int64_t member = ls_req_param_id(r, "telegram_id");
    if (r->actor != member && !group_txn_actor_owns(r, t))
        return group_txn_abort(r, 403,
                               "only the member themself, the group's teacher or an admin may do this");
    const char *params[3] = {t->group_id, ls_req_param_str(r, "telegram_id"), ls_req_actor_text(r)};
    group_txn_exec(r, STMT_MEMBER_REMOVE, 3, params, on_removed);
}

void members_remove(ls_req_t *r)
{
    if (ls_req_actor_or_reply(r) != 0)
        return;
    group_txn_begin(r, STMT_GROUP_LOCK, ls_req_param_str(r, "group_id"), 0, remove_locked);
}

/* ---- POST /join/{code}: lock the group and the invitation, check, insert member + outbox + audit ---- */

typedef struct {
    json_object *member;
} join_t;

static void on_join_group(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    group_txn_t *t = r->state;
    join_t *j = t->ctx;
    if (group_txn_ok_or_abort(r, status, res) != 0) {
        json_object_put(j->member);
        j->member = NULL;
        return;
    }
    json_object *out = json_object_new_object();
    json_object_object_add(out, "group", group_json(res, 0));
    json_object_object_add(out, "member", j->member);
    j->member = NULL;
    t->kick_outbox = 1;
    group_txn_commit(r, out, 201);
}

static void on_joined(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    group_txn_t *t = r->state;
    join_t *j = t->ctx;
    if (group_txn_ok_or_abort(r, status, res) != 0)
        return;
    j->member = ls_row_object(res, 0);
    /* The group as it is now, member_count included, read inside the transaction. */
    const char *params[1] = {t->group_id};
    group_txn_exec(r, STMT_GROUP_GET, 1, params, on_join_group);
}

static void on_invitation(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    group_txn_t *t = r->state;
    if (group_txn_ok_or_abort(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0) /* cannot happen: the group was found through this code */
        return group_txn_abort(r, 404, "invitation code not found");
    if (PQgetvalue(res, 0, 2)[0] == 't')
        return group_txn_abort(r, 410, "this invitation has been revoked");
    if (PQgetvalue(res, 0, 1)[0] == 't')
        return group_txn_abort(r, 410, "this invitation has expired");
    if (PQgetvalue(res, 0, 3)[0] == 't')
        return group_txn_abort(r, 410, "this invitation has been used up");
    if (strcmp(t->status, "active") != 0)
        return group_txn_abort(r, 409, "group %s is archived", t->group_id);
    if (t->is_member)
        return group_txn_abort(r, 409, "%s is already a member of group %s", ls_req_actor_text(r),
                               t->group_id);
    if (t->member_count >= t->capacity)
        return group_txn_abort(r, 409, "group %s is full (capacity %d)", t->group_id, t->capacity);

    char *invitation = ls_req_strdup(r, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    const char *params[3] = {t->group_id, ls_req_actor_text(r), invitation};
    group_txn_exec(r, STMT_JOIN_INSERT, 3, params, on_joined);
}

static void join_locked(ls_req_t *r, group_txn_t *t)
{
    const char *params[1] = {t->lock_param};
    group_txn_exec(r, STMT_INVITE_LOCK, 1, params, on_invitation);
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
    join_t *j = ls_req_alloc(r, sizeof(*j));
    j->member = NULL;
    r->state = j;
    group_txn_begin(r, STMT_JOIN_LOCK, code, 0, join_locked);
}
