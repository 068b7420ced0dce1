/*
 * auth-service: users keyed by telegram_id (docs/ARCHITECTURE.md §5), their role and verification.
 *
 *   GET   /users/{telegram_id}   one user
 *   GET   /users?ids=1,2,3       many users (at most AUTH_BATCH_MAX ids), in the order asked
 *   PUT   /users/{telegram_id}   create or update from Telegram data; answers {"user", "created"};
 *                                 a creation also queues the person's `registration` notification
 *                                 in the outbox (target "notification", NOTIFICATION_URL), which
 *                                 every worker delivers to notification-service after the commit
 *   PATCH /users/{telegram_id}   role / is_verified; the actor must be an admin
 * Every change writes an audit_log row in the same transaction.
 */
#ifndef AUTH_H
#define AUTH_H

#include "idempotency.h"
#include "server.h"

#define AUTH_NOTIFY_TARGET "notification" /* outbox.target of the registration notification */
#define AUTH_BATCH_MAX     100
#define AUTH_MAX_ADMINS    64

typedef struct {
    ls_daemon_config_t common;
    long long idempotency_ttl_s; /* IDEMPOTENCY_TTL_S (idempotency.h) */
    char *data_key_hex;          /* AUTH_DATA_KEY: 64 hex characters */
    char *admin_ids;             /* ADMIN_TELEGRAM_IDS: comma-separated telegram ids */
    char *notification_url;      /* NOTIFICATION_URL: where the outbox delivers */
    long long outbox_poll_ms;    /* OUTBOX_POLL_MS */
    /* derived at start-up */
    unsigned char data_key[32];
    char admin_array[AUTH_MAX_ADMINS * 21 + 3]; /* "{1,2,3}" for SQL */
} auth_config_t;

/* Statement indices into auth_statements (statements.c). */
enum {
    STMT_USER_GET,
    STMT_USER_BATCH,
    STMT_USER_PUT,
    STMT_USER_ROLE,
    STMT_USER_PATCH,
    STMT_AUDIT,
    STMT_IDEM, /* the LS_IDEM_NSTMTS statements of idempotency.h, from here */
    STMT_IDEM_LAST = STMT_IDEM + LS_IDEM_NSTMTS - 1,
    STMT_COUNT,
};

extern const ls_pg_stmt_t auth_statements[STMT_COUNT];

void users_get(ls_req_t *r);
void users_batch(ls_req_t *r);
void users_put(ls_req_t *r);
void users_patch(ls_req_t *r);

/* Validates AUTH_DATA_KEY and ADMIN_TELEGRAM_IDS into their derived forms. */
int auth_prepare_config(auth_config_t *cfg, char *err, size_t errlen);

#endif
