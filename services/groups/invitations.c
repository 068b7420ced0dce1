/* groups-service handlers: invitation codes — create, list, revoke. */
#include "groups.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "rows.h"

#define TTL_MIN_S 60
#define TTL_MAX_S (30 * 24 * 3600)

/* ---- POST /groups/{group_id}/invitations ---- */

static const ls_json_field_t create_fields[] = {
    {"expires_in_s", LS_JSON_INT, 0, 0, TTL_MIN_S, TTL_MAX_S, NULL},
    {"max_uses", LS_JSON_INT, 0, 1, 1, 10000, NULL},
};

static void on_invitation_created(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    ls_txn_reply(t, 201, ls_row_object(res, 0));
    ls_txn_commit(t);
}

static void create_locked(ls_req_t *r, ls_txn_t *t, locked_group_t *g)
{
    if (strcmp(g->status, "active") != 0)
        return ls_txn_fail(t, 409, "group %s is archived", g->group_id);

    /* 128 random bits: unguessable, and short enough to share as a link. */
    unsigned char raw[GROUPS_INVITE_BYTES];
    char code[sodium_base64_ENCODED_LEN(GROUPS_INVITE_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(code, sizeof(code), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);

    json_object *body = r->body;
    char ttl[24], max_uses[24];
    snprintf(ttl, sizeof(ttl), "%lld",
             (long long)ls_json_get_i64(body, "expires_in_s", GROUPS_DEFAULT_TTL_S));
    int64_t uses = ls_json_get_i64(body, "max_uses", 0);
    snprintf(max_uses, sizeof(max_uses), "%lld", (long long)uses);
    const char *params[5] = {g->group_id, code, ls_req_actor_text(r), ttl, uses > 0 ? max_uses : NULL};
    ls_txn_exec(t, STMT_INVITE_CREATE, 5, params, on_invitation_created);
}

void invitations_create(ls_req_t *r)
{
    /* An empty body means every default. */
    size_t nfields = sizeof(create_fields) / sizeof(create_fields[0]);
    if (ls_req_optional_body_or_reply(r, create_fields, nfields) == NULL || ls_req_actor_or_reply(r) != 0)
        return;
    group_lock(r, STMT_GROUP_LOCK, ls_req_param_str(r, "group_id"), 1, create_locked);
}

/* ---- GET /groups/{group_id}/invitations ---- */

typedef struct {
    const char *limit, *offset;
} page_t;

static void on_invitations(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    page_t *p = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    int64_t limit = 0, offset = 0;
    ls_parse_i64(p->limit, strlen(p->limit), &limit);
    ls_parse_i64(p->offset, strlen(p->offset), &offset);
    json_object *out = json_object_new_object();
    json_object_object_add(out, "invitations", ls_rows_array(res));
    json_object_object_add(out, "limit", json_object_new_int64(limit));
    json_object_object_add(out, "offset", json_object_new_int64(offset));
    ls_reply_json(r, 200, out);
}

static void on_owner(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    page_t *p = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0)
        return ls_reply_problem(r, 404, "group %s not found", ls_req_param_str(r, "group_id"));
    int64_t teacher = ls_row_id(res, 0, "teacher_telegram_id");
    if (r->actor != teacher && r->role != LS_ROLE_ADMIN)
        return ls_reply_problem(r, 403, "only the group's teacher or an admin may see its invitations");
    const char *params[3] = {ls_req_param_str(r, "group_id"), p->limit, p->offset};
    ls_req_pg(r, STMT_INVITE_LIST, 3, params, on_invitations);
}

void invitations_list(ls_req_t *r)
{
    if (ls_req_actor_or_reply(r) != 0)
        return;
    page_t *p = ls_req_alloc(r, sizeof(*p));
    r->state = p;
    if (ls_req_page_or_reply(r, GROUPS_PAGE_DEFAULT, GROUPS_PAGE_MAX, &p->limit, &p->offset) != 0)
        return;
    const char *params[1] = {ls_req_param_str(r, "group_id")};
    ls_req_pg(r, STMT_GROUP_OWNER, 1, params, on_owner);
}

/* ---- DELETE /groups/{group_id}/invitations/{code} ---- */

static void on_revoked(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    locked_group_t *g = t->ctx;
    if (ls_row_id(res, 0, "found") == 0)
        return ls_txn_fail(t, 404, "group %s has no such invitation code", g->group_id);
    ls_txn_commit(t);
}

static void revoke_locked(ls_req_t *r, ls_txn_t *t, locked_group_t *g)
{
    const char *code = ls_req_param_str(r, "code");
    if (!invitation_code_ok(code))
        return ls_txn_fail(t, 404, "group %s has no such invitation code", g->group_id);
    const char *params[3] = {g->group_id, code, ls_req_actor_text(r)};
    ls_txn_exec(t, STMT_INVITE_REVOKE, 3, params, on_revoked);
}

void invitations_revoke(ls_req_t *r)
{
    if (ls_req_actor_or_reply(r) != 0)
        return;
    group_lock(r, STMT_GROUP_LOCK, ls_req_param_str(r, "group_id"), 1, revoke_locked);
}
