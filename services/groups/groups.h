/*
 * groups-service: study groups, their members, invitation codes and progress (docs/ARCHITECTURE.md §5).
 *
 *   POST   /groups                                  create; the actor becomes the teacher (201)
 *   GET    /groups/{group_id}[?member_id=N]         one group with member_count and progress (and
 *                                                   "is_member" of N when asked)
 *   GET    /groups?ids=u1,u2 | ?teacher_id=N | ?member_id=N   batch (order asked, "missing") or
 *                                                   lists, newest first, paginated
 *   GET    /groups/search?q=&language=&level=       active groups, newest first, paginated
 *   PATCH  /groups/{group_id}                       teacher or admin
 *   GET    /groups/{group_id}/members               joined_at order, paginated
 *   DELETE /groups/{group_id}/members/{telegram_id} leave (self) or remove (teacher/admin): 204
 *   POST   /groups/{group_id}/invitations           teacher or admin: 201 with the code
 *   GET    /groups/{group_id}/invitations           teacher or admin
 *   DELETE /groups/{group_id}/invitations/{code}    revoke (teacher or admin): 204
 *   POST   /join/{code}                             the actor joins: 201 {"group", "member"}; a paid
 *                                                   group only with a paid seat (402 otherwise)
 *   PUT    /groups/{group_id}/paid_members/{payment_id}   payment-service's seat step: the actor (the
 *                                                   payer) joins with that payment: 201, 200 when
 *                                                   seated already; 409 full or archived
 *   DELETE /groups/{group_id}/paid_members/{payment_id}   the payment was refunded: its seat ends and
 *                                                   the member leaves, the enrollment becoming
 *                                                   "refunded": 204 (also when there was nothing)
 *   PUT    /groups/{group_id}/progress              teacher or admin: 200
 *
 * A group representation is the groups row plus "member_count" and "progress" ({lessons_done,
 * current_topic, updated_at} or null). Every change writes audit_log in its own transaction. Joins
 * and leaves also insert an outbox row (target "students") in that transaction, which the worker's
 * poller delivers to students-service after the commit (shared/outbox.h): PUT or DELETE
 * /students/{id}/enrollments/{group_id}, keyed "enroll:<member id>" / "unenroll:<member id>".
 * Paid seats (paid.c) are recorded in paid_seats, keyed by payment id; the member row and the
 * enrollment carry the payment id. Every change to a group's membership holds the group row's lock (FOR
 * UPDATE), so capacity and invitation use limits hold under concurrent joins and one resource's outbox rows
 * are in commit order.
 */
#ifndef GROUPS_H
#define GROUPS_H

#include "idempotency.h"
#include "server.h"
#include "txn.h"

#define GROUPS_BATCH_MAX     100
#define GROUPS_PAGE_DEFAULT  20
#define GROUPS_PAGE_MAX      100
#define GROUPS_PERSON_MAX    (2 * GROUPS_PAGE_MAX) /* ?person_id: a teacher's page and a member's */
#define GROUPS_Q_MAX         100
#define GROUPS_INVITE_BYTES  16
#define GROUPS_DEFAULT_TTL_S (7 * 24 * 3600)

typedef struct {
    ls_daemon_config_t common;
    long long idempotency_ttl_s; /* IDEMPOTENCY_TTL_S (idempotency.h) */
    char *students_url;          /* STUDENTS_URL */
    long long outbox_poll_ms;    /* OUTBOX_POLL_MS */
} groups_config_t;

/* Statement indices into groups_statements. */
enum {
    STMT_GROUP_CREATE,
    STMT_GROUP_GET,
    STMT_GROUP_BATCH,
    STMT_GROUP_BY_TEACHER,
    STMT_GROUP_BY_MEMBER,
    STMT_GROUP_BY_PERSON,
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
    STMT_GROUP_GET_MEMBER,
    STMT_PAID_SEAT_GET,
    STMT_PAID_SEAT_LIVE,
    STMT_PAID_JOIN,
    STMT_PAID_REVOKE,
    STMT_IDEM, /* the LS_IDEM_NSTMTS statements of idempotency.h, from here */
    STMT_IDEM_LAST = STMT_IDEM + LS_IDEM_NSTMTS - 1,
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
/* paid.c */
void paid_members_put(ls_req_t *r);
void paid_members_delete(ls_req_t *r);
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
 * A transaction (txn.h) around a locked group row. group_lock() begins, runs lock_stmt
 * (STMT_GROUP_LOCK with the group id, or STMT_JOIN_LOCK with an invitation code) and answers 404
 * when no group comes back; then counts the members in a second statement — after the lock, so that
 * it sees every membership change committed before (a subquery of the locking statement would use
 * the snapshot taken before it waited) — and answers 403 when need_owner and the actor is neither
 * the group's teacher nor an admin; otherwise calls next(r, t, g). From then on the handler goes on
 * with ls_txn_exec / ls_txn_fail / ls_txn_commit; each step finds the group as t->ctx and its own
 * state as g->ctx (r->state as it was when group_lock was called).
 */
typedef struct locked_group locked_group_t;
typedef void (*group_locked_fn)(ls_req_t *r, ls_txn_t *t, locked_group_t *g);

struct locked_group {
    size_t lock_stmt;
    const char *lock_param;
    int need_owner;
    group_locked_fn next;
    /* the locked group */
    char group_id[37];
    int64_t teacher;
    int capacity;
    int64_t member_count;
    int is_free;
    int is_member; /* the actor is a member */
    char status[16];
    char price[32]; /* "" when NULL */
    void *ctx;      /* the handler's own */
};

void group_lock(ls_req_t *r, size_t lock_stmt, const char *param, int need_owner, group_locked_fn next);
/* 1 when the actor is the locked group's teacher or an admin. */
int group_actor_owns(ls_req_t *r, const locked_group_t *g);
/* t->on_commit of a change that added outbox rows: wakes this worker's poller. */
void group_kick_outbox(ls_req_t *r, ls_txn_t *t);

/* paid.c: a join by code of the locked group g once its checks passed: STMT_JOIN_INSERT for the
 * invitation, then next. A paid group needs the actor's live paid seat, whose payment id the
 * membership then carries; without one it answers 402 (naming the checkout route) and rolls back. */
void paid_join_insert(ls_req_t *r, ls_txn_t *t, locked_group_t *g, const char *invitation_id,
                      ls_txn_step_t next);

#endif
