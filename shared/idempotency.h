/*
 * idempotency: what makes a retried write answer as the first one did (Idempotency-Key).
 *
 * A write that carries `Idempotency-Key` (1..LS_IDEM_KEY_MAX visible ASCII characters, 0x21-0x7e;
 * anything else is 400) is run by txn.h with its answer recorded in the service's own
 * idempotency_keys table, in the same transaction as the change: the answer and the change commit
 * together or not at all. A key belongs to the actor who sent it (X-Actor-Telegram-Id; 0 for none)
 * and to one request, named by its fingerprint: SHA-256 of the method, the path with its query and
 * the body as received. Then, within the key's lifetime (IDEMPOTENCY_TTL_S, default a day):
 *   - the same key with the same fingerprint gets the recorded status and body again, and nothing
 *     is done a second time;
 *   - the same key with another fingerprint gets 422 problem+json;
 *   - a request whose transaction ends without commit (a refusal, a database error) records
 *     nothing, so its retry does the work;
 *   - two requests with one key at once: the first claims the key as its transaction's first
 *     statement; the second's claim waits for that transaction to end, and then replays its answer
 *     (or, when it rolled back, does the work itself).
 * A key older than the lifetime counts as new; each recorded answer also deletes up to LS_IDEM_GC_ROWS
 * other expired rows (oldest first), so the table holds about one lifetime of keys. That happens in
 * the transaction's last statement and skips rows another transaction holds, so it never waits:
 * a claim waits only while holding nothing, and no two transactions can wait for each other.
 *
 * Wiring, per service: the migration NNN_idempotency.sql (the table below), LS_IDEM_STMTS at
 * LS_IDEM_NSTMTS consecutive places of its statement table, LS_IDEM_CONFIG_FIELD in its settings
 * table, and ls_idem_configure() in main() before ls_daemon_main(). A daemon that does not call it
 * (the BFF) ignores the header in txn.h.
 *
 *   CREATE TABLE idempotency_keys (actor_telegram_id BIGINT NOT NULL, key TEXT NOT NULL,
 *       fingerprint TEXT NOT NULL, status INT NOT NULL DEFAULT 0, body TEXT,
 *       created_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (actor_telegram_id, key));
 */
#ifndef LS_IDEMPOTENCY_H
#define LS_IDEMPOTENCY_H

#include <stddef.h>

#include "config.h"
#include "pg.h"

#define LS_IDEM_KEY_MAX     128
#define LS_IDEM_FP_HEX      65 /* a fingerprint as hex text, with its NUL */
#define LS_IDEM_GC_ROWS     "16"
#define LS_IDEM_TTL_DEFAULT "86400"

/* 1 when key[0..len) is 1..LS_IDEM_KEY_MAX visible ASCII characters. */
int ls_idem_key_valid(const char *key, size_t len);
/* The request's fingerprint: SHA-256 of method, path and body (each length-prefixed, so that no
 * two different requests run together into one text), as 64 hex digits. */
void ls_idem_fingerprint(const char *method, size_t method_len, const char *path, size_t path_len,
                         const char *body, size_t body_len, char out[LS_IDEM_FP_HEX]);

/* The service's statements, at indices first .. first + LS_IDEM_NSTMTS - 1 of its table. */
enum { LS_IDEM_CLAIM, LS_IDEM_READ, LS_IDEM_RECORD, LS_IDEM_NSTMTS };
/* claim: $1 actor, $2 key, $3 fingerprint, $4 lifetime in seconds: a row back when this request
 * now owns the key (new, or taken over from an expired row). read: $1 actor, $2 key. record: $1
 * actor, $2 key, $3 status, $4 body (NULL: none), $5 lifetime in seconds. */
#define LS_IDEM_STMTS                                                                                        \
    {"idem_claim",                                                                                           \
     "INSERT INTO idempotency_keys AS k (actor_telegram_id, key, fingerprint)"                               \
     " VALUES ($1::bigint, $2::text, $3::text)"                                                              \
     " ON CONFLICT (actor_telegram_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"               \
     "  status = 0, body = NULL, created_at = now()"                                                         \
     " WHERE k.created_at < now() - make_interval(secs => $4::int) RETURNING 1",                             \
     4},                                                                                                     \
        {"idem_read",                                                                                        \
         "SELECT fingerprint, status, body FROM idempotency_keys"                                            \
         " WHERE actor_telegram_id = $1::bigint AND key = $2::text",                                         \
         2},                                                                                                 \
    {                                                                                                        \
        "idem_record",                                                                                       \
            "WITH gc AS (DELETE FROM idempotency_keys WHERE (actor_telegram_id, key) IN ("                   \
            " SELECT actor_telegram_id, key FROM idempotency_keys"                                           \
            " WHERE created_at < now() - make_interval(secs => $5::int)"                                     \
            "  AND NOT (actor_telegram_id = $1::bigint AND key = $2::text)"                                  \
            " ORDER BY created_at LIMIT " LS_IDEM_GC_ROWS " FOR UPDATE SKIP LOCKED))"                        \
            " UPDATE idempotency_keys SET status = $3::int, body = $4::text"                                 \
            " WHERE actor_telegram_id = $1::bigint AND key = $2::text",                                      \
            5                                                                                                \
    }

/* The IDEMPOTENCY_TTL_S row of a service's settings table (member: a long long). */
#define LS_IDEM_CONFIG_FIELD(type, member)                                                                   \
    {                                                                                                        \
        "IDEMPOTENCY_TTL_S", LS_CFG_INT, LS_IDEM_TTL_DEFAULT, 1, 2592000, offsetof(type, member),            \
            "how long an Idempotency-Key is remembered, in seconds (its answer is replayed meanwhile)"       \
    }

/* Turns the mechanism on for this process: its statements start at index first_stmt, and *ttl_s
 * (read once the settings are loaded) is the keys' lifetime. Once, before ls_daemon_main(). */
void ls_idem_configure(size_t first_stmt, const long long *ttl_s);
/* 1 when configured; then *first_stmt and *ttl_s are set. */
int ls_idem_config(size_t *first_stmt, long long *ttl_s);

#endif
