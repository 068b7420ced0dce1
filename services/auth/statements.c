/* auth-service: every statement it runs, prepared on each connection. */
#include "auth.h"

#include "txn.h"

#define USER_COLUMNS(p)                                                                                      \
    p "id, " p "telegram_id, " p "username, " p "first_name, " p "last_name, " p "language_code, " p         \
      "photo_url, " p "phone_encrypted, " p "role, " p "is_verified, " p "created_at, " p "updated_at"

const ls_pg_stmt_t auth_statements[STMT_COUNT] = {
    [STMT_USER_GET] = {"user_get", "SELECT " USER_COLUMNS("") " FROM users WHERE telegram_id = $1::bigint",
                       1},
    [STMT_USER_BATCH] = {"user_batch",
                         "SELECT " USER_COLUMNS(
                             "u.") " FROM unnest($1::bigint[]) WITH ORDINALITY AS q(tid, ord)"
                                   " JOIN users u ON u.telegram_id = q.tid ORDER BY q.ord",
                         1},
    /* $1 id, $2..$6 names, $7 sealed phone, $8 phone given, $9 admin ids, $10 actor, $11 changes,
     * $12 traceparent. A user it creates (not one it updates) also gets its `registration`
     * notification as an outbox row (shared/outbox.h), in this same statement and so in the same
     * transaction: exactly once, whatever happens to the caller after the commit. The body is the
     * one notification-service takes: the first name as a template parameter, and the language
     * when it is an ISO 639 code (Telegram sends IETF tags such as "pt-br"; templates are per code). */
    [STMT_USER_PUT] =
        {"user_put",
         "WITH u AS ("
         " INSERT INTO users AS t (telegram_id, username, first_name, last_name, language_code,"
         "  photo_url, phone_encrypted, role)"
         " VALUES ($1::bigint, $2, $3, $4, $5, $6, $7::bytea,"
         "  CASE WHEN $1::bigint = ANY($9::bigint[]) THEN 'admin' ELSE 'student' END::user_role)"
         " ON CONFLICT (telegram_id) DO UPDATE SET username = EXCLUDED.username,"
         "  first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,"
         "  language_code = EXCLUDED.language_code, photo_url = EXCLUDED.photo_url,"
         "  phone_encrypted = CASE WHEN $8::boolean THEN EXCLUDED.phone_encrypted"
         "   ELSE t.phone_encrypted END,"
         "  updated_at = now()"
         " RETURNING t.*, (t.xmax = 0) AS created),"
         " a AS (" LS_AUDIT_INSERT
         "SELECT $10::bigint, CASE WHEN created THEN 'user.create' ELSE 'user.update' END,"
         "   'user', telegram_id::text, $11::jsonb FROM u),"
         " o AS (INSERT INTO outbox (target, method, path, body, actor_telegram_id, idempotency_key,"
         "  traceparent)"
         " SELECT '" AUTH_NOTIFY_TARGET "', 'POST', '/notifications',"
         "  json_strip_nulls(json_build_object('recipient_telegram_id', telegram_id, 'type', 'registration',"
         "   'params', json_build_object('first_name', first_name), 'language_code',"
         "   CASE WHEN language_code ~ '^[a-z]{2,3}$' THEN language_code END))::text,"
         "  telegram_id, 'registration:' || telegram_id, $12 FROM u WHERE created"
         " ON CONFLICT (idempotency_key) DO NOTHING)"
         " SELECT " USER_COLUMNS("") ", created FROM u",
         12},
    [STMT_USER_ROLE] = {"user_role", "SELECT role FROM users WHERE telegram_id = $1::bigint", 1},
    [STMT_USER_PATCH] = {"user_patch",
                         "UPDATE users SET role = COALESCE($2::user_role, role),"
                         " is_verified = COALESCE($3::boolean, is_verified), updated_at = now()"
                         " WHERE telegram_id = $1::bigint RETURNING " USER_COLUMNS(""),
                         3},
    [STMT_AUDIT] = LS_AUDIT_STMT,
    [STMT_IDEM] = LS_IDEM_STMTS,
};
