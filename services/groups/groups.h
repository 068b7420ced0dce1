/*
 * groups-service: study groups, their members, invitation codes and progress (DESIGN.md §4).
 *
 *   POST   /groups                                  create; the actor becomes the teacher (201)
 *   GET    /groups/{group_id}                       one group with member_count and progress
 *   GET    /groups?ids=u1,u2 | ?teacher_id=N | ?member_id=N   batch (order asked, "missing") or
 *                                                   lists, newest first, paginated
 *   GET    /groups/search?q=&language=&level=       active groups, newest first, paginated
 *   PATCH  /groups/{group_id}                       teacher or admin
 *   GET    /groups/{group_id}/members               joined_at order, paginated
 *   DELETE /groups/{group_id}/members/{telegram_id} leave (self) or remove (teacher/admin): 204
 *   POST   /groups/{group_id}/invitations           teacher or admin: 201 with the code
 *   GET    /groups/{group_id}/invitations           teacher or admin
 *   DELETE /groups/{group_id}/invitations/{code}    revoke (teacher or admin): 204
 *   POST   /join/{code}                             the actor joins: 201 {"group", "member"}
 *   PUT    /groups/{group_id}/progress              teacher or admin: 200
 *
 * A group representation is the groups row plus "member_count" and "progress" ({lessons_done,
 * current_topic, updated_at} or null). Every change writes audit_log in its own transaction. Joins
 * and leaves also insert an outbox row (target "students") in that transaction, which the worker's
 * poller delivers to students-service after the commit (shared/outbox.h): PUT or DELETE
 * /students/{id}/enrollments/{group_id}, keyed "enroll:<member id>" / "unenroll:<member id>".
 * Every change to a group's membership holds the group row's lock (FOR UPDATE), so capacity and
 * invitation use limits hold under concurrent joins and one resource's outbox rows are in commit
 * order.
 */
#ifndef GROUPS_H
#define GROUPS_H

#include "server.h"

#define GROUPS_BATCH_MAX     100
#define GROUPS_PAGE_DEFAULT  20
#define GROUPS_PAGE_MAX      100
#define GROUPS_Q_MAX         100
#define GROUPS_INVITE_BYTES  16
#define GROUPS_DEFAULT_TTL_S (7 * 24 * 3600)

typedef struct {
    ls_daemon_config_t common;
    char *students_url;       /* STUDENTS_URL */
    long long outbox_poll_ms; /* OUTBOX_POLL_MS */
} groups_config_t;

/* Statement indices into groups_statements. */
enum {
    STMT_GROUP_CREATE,
    STMT_GROUP_GET,
    STMT_GROUP_BATCH,
    STMT_GROUP_BY_TEACHER,
    STMT_GROUP_BY_MEMBER,
    STMT_GROUP_SEARCH,
    STMT_GROUP_SEARCH_Q,
    STMT_GROUP_LOCK,
    STMT_GROUP_MEMBERSHIP,
    STMT_GROUP_PATCH,
    STMT_GROUP_OWNER,
    STMT_PROGRESS_PUT,
    STMT_MEMBERS_LIST,
    STMT_MEMBER_REMOVE,
    STMT_JOIN_LOCK,
    STMT_INVITE_LOCK,
    STMT_JOIN_INSERT,
    STMT_INVITE_CREATE,
    STMT_INVITE_LIST,
    STMT_INVITE_REVOKE,
    STMT_COUNT,
};

extern const ls_pg_stmt_t groups_statements[STMT_COUNT];

/* groups.c */
void groups_create(ls_req_t *r);
void groups_get(ls_req_t *r);
void groups_list(ls_req_t *r);
void groups_search(ls_req_t *r);
void groups_patch(ls_req_t *r);
void groups_progress_put(ls_req_t *r);
/* members.c */
void members_list(ls_req_t *r);
void members_remove(ls_req_t *r);
void groups_join(ls_req_t *r);
/* invitations.c */
void invitations_create(ls_req_t *r);
void invitations_list(ls_req_t *r);
void invitations_revoke(ls_req_t *r);

/* ---- helpers shared by the handler files (common.c) ---- */

/* A group row (with member_count and the progress.* columns when selected) as its representation. */
json_object *group_json(const PGresult *res, int row);
/* The body as compact JSON text in request memory (for audit rows). */
const char *body_text(ls_req_t *r);
/* Invitation codes are 22 characters of base64url; anything else cannot exist (members.c). */
int invitation_code_ok(const char *code);

/*
 * A transaction around a locked group row. group_txn_begin() begins, runs lock_stmt (STMT_GROUP_LOCK
 * with the group id, or STMT_JOIN_LOCK with an invitation code) and answers 404 when no group comes
 * back; then counts the members in a second statement — after the lock, so that it sees every
 * membership change committed before (a subquery of the locking statement would use the snapshot
 * taken before it waited) — and answers 403 when need_owner and the actor is neither the group's
 * teacher nor an admin; otherwise calls next. From
 * then on the handler runs statements with group_txn_exec() and ends with exactly one of
 * group_txn_commit() / group_txn_abort(), or group_txn_ok_or_abort() failing.
 */
typedef struct group_txn group_txn_t;
typedef void (*group_txn_next_t)(ls_req_t *r, group_txn_t *t);

struct group_txn {
    ls_pg_txn_t *txn;
    size_t lock_stmt;
    const char *lock_param;
    int need_owner;
    group_txn_next_t next;
    /* the locked group */
    char group_id[37];
    int64_t teacher;
    int capacity;
    int64_t member_count;
    int is_free;
    int is_member; /* the actor is a member */
    char status[16];
    char price[32]; /* "" when NULL */
    /* answered after COMMIT: reply (status reply_status), or 204 when reply is NULL */
    json_object *reply;
    int reply_status;
    int kick_outbox; /* the transaction added outbox rows */
    void *ctx;       /* the handler's own */
};

void group_txn_begin(ls_req_t *r, size_t lock_stmt, const char *param, int need_owner, group_txn_next_t next);
void group_txn_exec(ls_req_t *r, size_t stmt, int nparams, const char *const *params, ls_req_pg_cb cb);
/* When status is not LS_PG_OK: answers as ls_pg_ok_or_reply does, rolls back, returns -1. */
int group_txn_ok_or_abort(ls_req_t *r, ls_pg_status_t status, PGresult *res);
void group_txn_abort(ls_req_t *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Commits, then answers t->reply with status (NULL reply: 204) and kicks the outbox if asked. */
void group_txn_commit(ls_req_t *r, json_object *reply, int status);
/* 1 when the actor is the locked group's teacher or an admin. */
int group_txn_actor_owns(ls_req_t *r, const group_txn_t *t);

#endif
