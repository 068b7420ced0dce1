/*
 * txn: a request's database transaction, written as a list of steps, and the audit row.
 *
 * A handler that changes several things under one lock reads top to bottom:
 *
 *   ls_txn_t *t = ls_txn_new(r);       r->state moves to t->ctx; r->state is t from now on
 *   ls_txn_begin(t, locked);           BEGIN, then locked(r, t, NULL)
 *   ls_txn_exec(t, STMT_X, n, p, next) a statement; next(r, t, res) runs only when it succeeded
 *   ls_txn_fail(t, 404, "…")           a step's own check failed: answer it and roll back
 *   ls_txn_audit(t, STMT_AUDIT, …)     the audit row (a service whose change is not one statement)
 *   ls_txn_reply(t, 200, json)         what to answer once committed (none: an empty 204)
 *   ls_txn_commit(t)                   COMMIT, then t->on_commit, then the answer
 *
 * Every path ends the transaction exactly once: a statement that fails, or BEGIN or COMMIT failing,
 * answers through ls_pg_ok_or_reply's mapping (503 database down or busy, 409 unique/exclusion,
 * 400 check or data errors, 500 otherwise) and rolls back; ls_txn_fail answers and rolls back. A
 * handler that answers some SQLSTATEs itself sets t->on_error. The reply set with ls_txn_reply
 * belongs to the transaction until it is answered, and is dropped on a rollback; t->release runs
 * once at the very end, committed or not, for what the handler holds outside request memory.
 *
 * A step calls exactly one of ls_txn_exec, ls_txn_audit, ls_txn_fail, ls_txn_abort (after it
 * answered), ls_txn_commit — or hands on to a function that does. res is freed once the step
 * returns: copy what a later step needs. The ls_txn_t lives in request memory.
 *
 * Idempotency-Key (idempotency.h), in a service that configured it: ls_txn_new reads the header and
 * the request's fingerprint. With a key, the transaction's first statement claims it: a recorded
 * answer for the same request is replayed (and nothing else runs), another request's is 422, and an
 * unknown key goes on to the handler's steps; ls_txn_commit then records the answer just before
 * COMMIT. A malformed key is 400 before BEGIN. Only committed answers are recorded: ls_txn_fail,
 * a failed statement or a failed COMMIT leave no trace, so a retry does the work. Without a key
 * nothing is looked up. A request whose client has gone before ls_txn_new (nobody to answer) begins
 * nothing: its caller's retry does the work.
 *
 * A write that is one statement (an upsert, a delete) goes through ls_txn_write: without a key the
 * statement runs on its own, as ls_req_pg would run it (no BEGIN, no COMMIT); with one it runs in a
 * transaction as above. Its step answers with ls_txn_reply + ls_txn_commit or ls_txn_fail, as any.
 */
#ifndef LS_TXN_H
#define LS_TXN_H

#include "idempotency.h"
#include "server.h"

/* The audit row every change writes (audit_log, docs/ARCHITECTURE.md §5), the start of an INSERT to which a
 * statement appends its SELECT or VALUES: `" a AS (" LS_AUDIT_INSERT "SELECT $6::bigint, …)"`. */
#define LS_AUDIT_INSERT "INSERT INTO audit_log (actor_telegram_id, action, entity, entity_id, changes) "
/* A statement of its own for ls_txn_audit: $1 actor, $2 action, $3 entity, $4 entity id, $5 changes
 * (a JSON object). Put it in the service's statement table: `[STMT_AUDIT] = LS_AUDIT_STMT`. */
#define LS_AUDIT_STMT                                                                                        \
    {                                                                                                        \
        "audit", LS_AUDIT_INSERT "VALUES ($1::bigint, $2, $3, $4, $5::jsonb)", 5                             \
    }

typedef struct ls_txn ls_txn_t;
/* A step: res is the last statement's result (NULL for the first step after BEGIN). */
typedef void (*ls_txn_step_t)(ls_req_t *r, ls_txn_t *t, const PGresult *res);

struct ls_txn {
    ls_req_t *r;
    void *ctx; /* the handler's own state: r->state as it was at ls_txn_new */
    /* Optional, set before ls_txn_begin. */
    /* A statement failed with an SQL error (already rolled back): answer it and return 0, or
     * return -1 for ls_pg_ok_or_reply's answer. */
    int (*on_error)(ls_req_t *r, ls_txn_t *t, const char *sqlstate);
    /* After a successful COMMIT, before the answer (e.g. wake the outbox). */
    void (*on_commit)(ls_req_t *r, ls_txn_t *t);
    /* Once, when the transaction has ended in any way. */
    void (*release)(ls_txn_t *t);
    /* the helper's own */
    ls_pg_txn_t *pg;
    ls_txn_step_t next;
    json_object *reply;
    int reply_status;
    int ended;
    const char *idem_key;         /* the request's valid Idempotency-Key, NULL: none */
    char idem_fp[LS_IDEM_FP_HEX]; /* its fingerprint */
    int idem_bad;                 /* a key that is not valid: 400 */
    int idem_claimed;             /* the key is this transaction's: commit records the answer */
    int direct;                   /* ls_txn_write without a key: no BEGIN, no COMMIT */
    int gone;                     /* the client had gone at ls_txn_new */
    ls_txn_step_t first;          /* the handler's first step, once the key is claimed */
    size_t one_stmt;              /* ls_txn_write's statement, kept until BEGIN and the claim */
    int one_nparams;
    const char **one_params;
    ls_txn_step_t one_next;
};

/* A transaction for r, not yet begun; r->state becomes it (the old r->state is t->ctx). */
ls_txn_t *ls_txn_new(ls_req_t *r);
/* BEGIN, then first(r, t, NULL). */
void ls_txn_begin(ls_txn_t *t, ls_txn_step_t first);
/* Runs prepared statement stmt in the transaction; next runs when it succeeded. */
void ls_txn_exec(ls_txn_t *t, size_t stmt, int nparams, const char *const *params, ls_txn_step_t next);
/* Runs the service's LS_AUDIT_STMT (index stmt) for the request's actor; changes is JSON text. */
void ls_txn_audit(ls_txn_t *t, size_t stmt, const char *action, const char *entity, const char *entity_id,
                  const char *changes, ls_txn_step_t next);
/* Answers a problem and rolls back. */
void ls_txn_fail(ls_txn_t *t, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Rolls back without answering: for a step whose check has answered already. */
void ls_txn_abort(ls_txn_t *t);
/* What ls_txn_commit answers: reply with status (takes the reference; replaces one set before), or
 * with reply NULL an empty answer with status. Without it, commit answers an empty 204. */
void ls_txn_reply(ls_txn_t *t, int status, json_object *reply);
/* COMMIT; then t->on_commit and the reply set with ls_txn_reply. */
void ls_txn_commit(ls_txn_t *t);
/* A write of one statement: ls_txn_new, then stmt (parameters copied) and next(r, t, res) when it
 * succeeded — on its own without an Idempotency-Key, in a transaction with one. on_error is
 * t->on_error (may be NULL). r->state, as set before, becomes t->ctx. */
void ls_txn_write(ls_req_t *r, size_t stmt, int nparams, const char *const *params, ls_txn_step_t next,
                  int (*on_error)(ls_req_t *r, ls_txn_t *t, const char *sqlstate));

/* An on_error for a statement that checks the body's "timezone" by using it (`AT TIME ZONE`): 22023
 * invalid_parameter_value, a zone PostgreSQL does not know, is the caller's mistake (400). */
int ls_txn_unknown_timezone(ls_req_t *r, ls_txn_t *t, const char *sqlstate);

#endif
