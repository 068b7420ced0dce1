/* groups-service: every SQL statement, prepared on each connection (indices in groups.h). */
#include "groups.h"

#include "txn.h"

/* A group's representation from a source aliased g: its columns, member_count, and progress.* columns
 * that group_json() folds into a "progress" object (null without a progress row). */
#define GROUP_COLS                                                                                           \
    "g.id, g.teacher_telegram_id, g.title, g.description, g.language_code, g.level, g.capacity,"             \
    " g.is_free, g.price, g.status, g.created_at, g.updated_at,"                                             \
    " (SELECT count(*) FROM group_members m WHERE m.group_id = g.id) AS member_count,"                       \
    " p.lessons_done AS \"progress.lessons_done\", p.current_topic AS \"progress.current_topic\","           \
    " p.updated_at AS \"progress.updated_at\""
#define PROGRESS_JOIN " LEFT JOIN group_progress p ON p.group_id = g.id"
#define NEWEST_FIRST  " ORDER BY g.created_at DESC, g.id DESC"

#define INVITE_COLS                                                                                          \
    "i.id, i.group_id, i.code, i.created_by, i.expires_at, i.max_uses, i.uses, i.revoked_at, i.created_at"

/* An enrollment's changes share its path as their ordering key (shared/outbox.h); the row carries the
 * writing request's traceparent (the last value selected). */
#define OUTBOX_INSERT                                                                                        \
    "INSERT INTO outbox (target, method, path, body, actor_telegram_id, idempotency_key, ordering_key,"      \
    " traceparent)"
#define ENROLLMENT_PATH(m) "'/students/' || " m ".student_telegram_id || '/enrollments/' || " m ".group_id"
/* The enrollment PUT's body: {} for a free membership, {"payment_id"} for a paid one. */
#define ENROLLMENT_BODY(payment)                                                                             \
    "CASE WHEN " payment " IS NULL THEN '{}' ELSE json_build_object('payment_id', " payment ")::text END"

const ls_pg_stmt_t groups_statements[STMT_COUNT] = {
    /* $1 teacher, $2 title, $3 description, $4 language, $5 level, $6 capacity, $7 is_free, $8 price,
     * $9 actor, $10 changes */
    [STMT_GROUP_CREATE] =
        {"group_create",
         "WITH g AS (INSERT INTO groups (teacher_telegram_id, title, description, language_code,"
         "  level, capacity, is_free, price)"
         " VALUES ($1::bigint, $2, COALESCE($3, ''), $4, $5::cefr_level, $6::int, $7::boolean,"
         "  $8::numeric) RETURNING *),"
         " a AS (" LS_AUDIT_INSERT " SELECT $9::bigint, 'group.create', 'group', g.id::text,"
         "  $10::jsonb FROM g)"
         " SELECT g.*, 0::bigint AS member_count FROM g",
         10},
    [STMT_GROUP_GET] = {"group_get",
                        "SELECT " GROUP_COLS " FROM groups g" PROGRESS_JOIN " WHERE g.id = $1::uuid", 1},
    [STMT_GROUP_BATCH] = {"group_batch",
                          "SELECT " GROUP_COLS " FROM unnest($1::uuid[]) WITH ORDINALITY AS q(gid, ord)"
                          " JOIN groups g ON g.id = q.gid" PROGRESS_JOIN " ORDER BY q.ord",
                          1},
    [STMT_GROUP_BY_TEACHER] = {"group_by_teacher",
                               "SELECT " GROUP_COLS " FROM groups g" PROGRESS_JOIN
                               " WHERE g.teacher_telegram_id = $1::bigint" NEWEST_FIRST
                               " LIMIT $2::int OFFSET $3::int",
                               3},
    [STMT_GROUP_BY_MEMBER] = {"group_by_member",
                              "SELECT " GROUP_COLS
                              " FROM group_members gm JOIN groups g ON g.id = gm.group_id" PROGRESS_JOIN
                              " WHERE gm.student_telegram_id = $1::bigint" NEWEST_FIRST
                              " LIMIT $2::int OFFSET $3::int",
                              3},
    /* Taught or joined, each group once (the BFF's profile asks for both in one call). */
    [STMT_GROUP_BY_PERSON] =
        {"group_by_person",
         "SELECT " GROUP_COLS " FROM groups g" PROGRESS_JOIN
         " WHERE g.id IN (SELECT id FROM groups WHERE teacher_telegram_id = $1::bigint"
         "  UNION SELECT group_id FROM group_members WHERE student_telegram_id = $1::bigint)" NEWEST_FIRST
         " LIMIT $2::int OFFSET $3::int",
         3},
    /* Two search statements, so that the one with a text filter is always planned around the
     * trigram index rather than a generic plan for "q may be NULL". */
    /* $1 language or NULL, $2 level or NULL, $3 limit, $4 offset */
    [STMT_GROUP_SEARCH] = {"group_search",
                           "SELECT " GROUP_COLS " FROM groups g" PROGRESS_JOIN
                           " WHERE g.status = 'active' AND ($1::text IS NULL OR g.language_code = $1::text)"
                           " AND ($2::cefr_level IS NULL OR g.level = $2::cefr_level)" NEWEST_FIRST
                           " LIMIT $3::int OFFSET $4::int",
                           4},
    /* $1 ILIKE pattern, $2 language or NULL, $3 level or NULL, $4 limit, $5 offset */
    [STMT_GROUP_SEARCH_Q] = {"group_search_q",
                             "SELECT " GROUP_COLS " FROM groups g" PROGRESS_JOIN
                             " WHERE g.status = 'active' AND (g.title ILIKE $1 OR g.description ILIKE $1)"
                             " AND ($2::text IS NULL OR g.language_code = $2::text)"
                             " AND ($3::cefr_level IS NULL OR g.level = $3::cefr_level)" NEWEST_FIRST
                             " LIMIT $4::int OFFSET $5::int",
                             5},
    [STMT_GROUP_LOCK] = {"group_lock",
                         "SELECT id, teacher_telegram_id, capacity, status, is_free, price FROM groups"
                         " WHERE id = $1::uuid FOR UPDATE",
                         1},
    /* $1 group, $2 actor or NULL */
    [STMT_GROUP_MEMBERSHIP] = {"group_membership",
                               "SELECT count(*) AS member_count,"
                               " COALESCE(bool_or(student_telegram_id = $2::bigint), false) AS is_member"
                               " FROM group_members WHERE group_id = $1::uuid",
                               2},
    /* $1 id, $2 title, $3 description, $4 capacity, $5 is_free, $6 price, $7 status, $8 actor,
     * $9 changes; is_free and price are the final values (the handler checks them together). */
    [STMT_GROUP_PATCH] = {"group_patch",
                          "WITH g AS (UPDATE groups SET title = COALESCE($2, title),"
                          "  description = COALESCE($3, description), capacity = COALESCE($4::int, capacity),"
                          "  is_free = $5::boolean, price = $6::numeric,"
                          "  status = COALESCE($7::group_status, status), updated_at = now()"
                          "  WHERE id = $1::uuid RETURNING *),"
                          " a AS (" LS_AUDIT_INSERT " SELECT $8::bigint, 'group.update', 'group', g.id::text,"
                          "  $9::jsonb FROM g)"
                          " SELECT " GROUP_COLS " FROM g" PROGRESS_JOIN,
                          9},
    [STMT_GROUP_OWNER] = {"group_owner", "SELECT teacher_telegram_id FROM groups WHERE id = $1::uuid", 1},
    /* $1 group, $2 lessons_done, $3 current_topic, $4 current_topic given, $5 actor, $6 changes */
    [STMT_PROGRESS_PUT] =
        {"progress_put",
         "WITH p AS (INSERT INTO group_progress AS t (group_id, lessons_done, current_topic,"
         "  updated_at, updated_by)"
         " VALUES ($1::uuid, $2::int, $3, now(), $5::bigint)"
         " ON CONFLICT (group_id) DO UPDATE SET lessons_done = EXCLUDED.lessons_done,"
         "  current_topic = CASE WHEN $4::boolean THEN EXCLUDED.current_topic"
         "   ELSE t.current_topic END,"
         "  updated_at = now(), updated_by = EXCLUDED.updated_by RETURNING t.*),"
         " a AS (" LS_AUDIT_INSERT " SELECT $5::bigint, 'group.progress', 'group',"
         "  p.group_id::text, $6::jsonb FROM p)"
         " SELECT group_id, lessons_done, current_topic, updated_at, updated_by FROM p",
         6},
    [STMT_MEMBERS_LIST] =
        {"members_list",
         "SELECT student_telegram_id, joined_at FROM group_members WHERE group_id = $1::uuid"
         " ORDER BY joined_at, student_telegram_id LIMIT $2::int OFFSET $3::int",
         3},
    /* $1 group, $2 member, $3 actor, $4 traceparent */
    [STMT_MEMBER_REMOVE] =
        {"member_remove",
         "WITH m AS (DELETE FROM group_members WHERE group_id = $1::uuid"
         "  AND student_telegram_id = $2::bigint RETURNING id, group_id, student_telegram_id),"
         " o AS (" OUTBOX_INSERT " SELECT 'students', 'DELETE', " ENROLLMENT_PATH(
             "m") ", NULL, $3::bigint, 'unenroll:' || "
                  "m.id, " ENROLLMENT_PATH("m") ", $4::text FROM m),"
                                                " a AS (" LS_AUDIT_INSERT " SELECT $3::bigint,"
                                                "  CASE WHEN m.student_telegram_id = "
                                                "$3::bigint THEN 'group.leave'"
                                                "   ELSE 'group.member_remove' END, "
                                                "'group', m.group_id::text,"
                                                "  "
                                                "jsonb_build_object('student_"
                                                "telegram_id', "
                                                "m.student_telegram_id, 'member_id', "
                                                "m.id)"
                                                "  FROM m)"
                                                " SELECT count(*) AS removed FROM m",
         4},
    /* The invitation's group, locked; the lock order everywhere is group row, then invitation row. */
    [STMT_JOIN_LOCK] = {"join_lock",
                        "SELECT id, teacher_telegram_id, capacity, status, is_free, price FROM groups"
                        " WHERE id = (SELECT group_id FROM group_invitations WHERE code = $1) FOR UPDATE",
                        1},
    [STMT_INVITE_LOCK] = {"invite_lock",
                          "SELECT id, expires_at <= now() AS expired, revoked_at IS NOT NULL AS revoked,"
                          " (max_uses IS NOT NULL AND uses >= max_uses) AS used_up"
                          " FROM group_invitations WHERE code = $1 FOR UPDATE",
                          1},
    /* $1 group, $2 actor (the new member), $3 invitation, $4 traceparent, $5 the paid seat's payment or
     * NULL (a free group) */
    [STMT_JOIN_INSERT] =
        {"join_insert",
         "WITH m AS (INSERT INTO group_members (group_id, student_telegram_id, payment_id)"
         "  VALUES ($1::uuid, $2::bigint, $5::uuid) RETURNING id, group_id, student_telegram_id, joined_at),"
         " i AS (UPDATE group_invitations SET uses = uses + 1 WHERE id = $3::uuid RETURNING uses),"
         " o AS (" OUTBOX_INSERT " SELECT 'students', 'PUT', " ENROLLMENT_PATH(
             "m") ","
                  "  " ENROLLMENT_BODY("$5::uuid") ", $2::bigint, 'enroll:' || m.id, " ENROLLMENT_PATH(
                      "m") ","
                           "  $4::text FROM m),"
                           " a AS (" LS_AUDIT_INSERT
                           " SELECT $2::bigint, 'group.join', 'group', m.group_id::text,"
                           "  jsonb_build_object('student_telegram_id', m.student_telegram_id, 'member_id', "
                           "m.id,"
                           "   'invitation_id', $3::uuid, 'uses', (SELECT uses FROM i), 'payment_id', "
                           "$5::uuid) FROM m)"
                           " SELECT group_id, student_telegram_id, joined_at FROM m",
         5},
    /* $1 group, $2 code, $3 actor, $4 lifetime in seconds, $5 max_uses or NULL. The code itself is a
     * credential and stays out of the audit log. */
    [STMT_INVITE_CREATE] =
        {"invite_create",
         "WITH i AS (INSERT INTO group_invitations (group_id, code, created_by, expires_at,"
         "  max_uses) VALUES ($1::uuid, $2, $3::bigint, now() + make_interval(secs => $4::int),"
         "  $5::int) RETURNING *),"
         " a AS (" LS_AUDIT_INSERT " SELECT $3::bigint, 'invitation.create', 'group_invitation',"
         "  i.id::text, jsonb_build_object('group_id', i.group_id, 'expires_at', i.expires_at,"
         "   'max_uses', i.max_uses) FROM i)"
         " SELECT " INVITE_COLS " FROM i",
         5},
    [STMT_INVITE_LIST] = {"invite_list",
                          "SELECT " INVITE_COLS " FROM group_invitations i WHERE i.group_id = $1::uuid"
                          " ORDER BY i.created_at DESC, i.id DESC LIMIT $2::int OFFSET $3::int",
                          3},
    /* $1 group, $2 code, $3 actor: revokes once (audited once), answers whether the code exists */
    [STMT_INVITE_REVOKE] = {"invite_revoke",
                            "WITH i AS (SELECT id, revoked_at FROM group_invitations"
                            "  WHERE group_id = $1::uuid AND code = $2 FOR UPDATE),"
                            " u AS (UPDATE group_invitations v SET revoked_at = now() FROM i"
                            "  WHERE v.id = i.id AND i.revoked_at IS NULL RETURNING v.id),"
                            " a AS (" LS_AUDIT_INSERT
                            " SELECT $3::bigint, 'invitation.revoke', 'group_invitation',"
                            "  u.id::text, jsonb_build_object('group_id', $1::uuid) FROM u)"
                            " SELECT count(*) AS found FROM i",
                            3},
    /* $1 id, $2 telegram id: the group and whether that person is a member. */
    [STMT_GROUP_GET_MEMBER] =
        {"group_get_member",
         "SELECT " GROUP_COLS ", EXISTS (SELECT 1 FROM group_members x"
         "  WHERE x.group_id = g.id AND x.student_telegram_id = $2::bigint) AS is_member"
         " FROM groups g" PROGRESS_JOIN " WHERE g.id = $1::uuid",
         2},
    /* $1 payment: its seat, if any (under the group row's lock). */
    [STMT_PAID_SEAT_GET] = {"paid_seat_get",
                            "SELECT group_id, student_telegram_id, refunded_at IS NOT NULL AS refunded"
                            " FROM paid_seats WHERE payment_id = $1::uuid",
                            1},
    /* $1 group, $2 person: the payment of their newest seat not refunded. */
    [STMT_PAID_SEAT_LIVE] = {"paid_seat_live",
                             "SELECT payment_id FROM paid_seats WHERE group_id = $1::uuid"
                             " AND student_telegram_id = $2::bigint AND refunded_at IS NULL"
                             " ORDER BY created_at DESC LIMIT 1",
                             2},
    /* $1 group, $2 payer, $3 payment, $4 traceparent: the seat, and the membership (new, or an existing
     * one now carrying the payment), with its enrollment through the outbox. */
    [STMT_PAID_JOIN] =
        {"paid_join",
         "WITH s AS (INSERT INTO paid_seats (payment_id, group_id, student_telegram_id)"
         "  VALUES ($3::uuid, $1::uuid, $2::bigint) RETURNING payment_id),"
         " m AS (INSERT INTO group_members (group_id, student_telegram_id, payment_id)"
         "  SELECT $1::uuid, $2::bigint, s.payment_id FROM s"
         "  ON CONFLICT (group_id, student_telegram_id) DO UPDATE SET payment_id = EXCLUDED.payment_id"
         "  RETURNING id, group_id, student_telegram_id, joined_at, payment_id, (xmax = 0) AS joined),"
         " o AS (" OUTBOX_INSERT " SELECT 'students', 'PUT', " ENROLLMENT_PATH(
             "m") ","
                  "  " ENROLLMENT_BODY("m.payment_id") ", $2::bigint, 'enroll-paid:' || m.payment_id,"
                                                       "  " ENROLLMENT_PATH(
                                                           "m") ", $4::text FROM m),"
                                                                " a AS (" LS_AUDIT_INSERT
                                                                " SELECT $2::bigint, 'group.join_paid', "
                                                                "'group', m.group_id::text,"
                                                                "  jsonb_build_object('student_telegram_id', "
                                                                "m.student_telegram_id, 'member_id', m.id,"
                                                                "   'payment_id', m.payment_id) FROM m)"
                                                                " SELECT group_id, student_telegram_id, "
                                                                "joined_at, payment_id, joined FROM m",
         4},
    /* $1 group, $2 payment, $3 actor, $4 traceparent: the seat ends once; its holder leaves the group
     * unless another live seat of theirs holds it, and their enrollment becomes "refunded". */
    [STMT_PAID_REVOKE] =
        {"paid_revoke",
         "WITH s AS (UPDATE paid_seats SET refunded_at = now() WHERE payment_id = $2::uuid"
         "  AND group_id = $1::uuid AND refunded_at IS NULL"
         "  RETURNING payment_id, group_id, student_telegram_id),"
         " m AS (DELETE FROM group_members gm USING s WHERE gm.group_id = s.group_id"
         "  AND gm.student_telegram_id = s.student_telegram_id AND NOT EXISTS (SELECT 1 FROM paid_seats x"
         "   WHERE x.group_id = s.group_id AND x.student_telegram_id = s.student_telegram_id"
         "   AND x.refunded_at IS NULL AND x.payment_id <> s.payment_id)"
         "  RETURNING gm.id, gm.group_id, gm.student_telegram_id),"
         " o AS (" OUTBOX_INSERT " SELECT 'students', 'PUT', " ENROLLMENT_PATH(
             "m") ","
                  "  json_build_object('status', 'refunded', 'payment_id', $2::uuid)::text, $3::bigint,"
                  "  'refund:' || m.id, " ENROLLMENT_PATH(
                      "m") ", $4::text FROM m),"
                           " a AS (" LS_AUDIT_INSERT
                           " SELECT $3::bigint, 'group.seat_refund', 'group', s.group_id::text,"
                           "  jsonb_build_object('student_telegram_id', s.student_telegram_id, 'payment_id', "
                           "s.payment_id,"
                           "   'removed', EXISTS (SELECT 1 FROM m)) FROM s)"
                           " SELECT (SELECT count(*) FROM s) AS revoked, (SELECT count(*) FROM m) AS removed",
         4},
    [STMT_IDEM] = LS_IDEM_STMTS,
};
