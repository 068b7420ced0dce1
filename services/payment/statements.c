/* payment-service: every SQL statement, prepared on each connection (indices in payment.h). */
#include "payment.h"

#define OUTBOX_INSERT                                                                                        \
    "INSERT INTO outbox (target, method, path, body, actor_telegram_id, idempotency_key, ordering_key,"      \
    " traceparent)"

const ls_pg_stmt_t payment_statements[STMT_COUNT] = {
    /* $1 payer, $2 group, $3 amount, $4 currency: the payer's pending payment for the group, made or
     * found (ON CONFLICT waits for a concurrent checkout's insert and then returns its row). A price
     * that changed meanwhile replaces the amount and drops the link made for the old one. */
    [STMT_PAYMENT_OPEN] =
        {"payment_open",
         "WITH p AS (INSERT INTO payments AS t (telegram_id, group_id, amount, currency)"
         "  VALUES ($1::bigint, $2::uuid, $3::bigint, $4)"
         "  ON CONFLICT (telegram_id, group_id) WHERE status = 'pending' DO UPDATE"
         "  SET amount = EXCLUDED.amount,"
         "   invoice_link = CASE WHEN t.amount = EXCLUDED.amount THEN t.invoice_link END,"
         "   updated_at = CASE WHEN t.amount = EXCLUDED.amount THEN t.updated_at ELSE now() END"
         "  RETURNING t.*, (t.xmax = 0) AS created),"
         " a AS (" LS_AUDIT_INSERT " SELECT $1::bigint, 'payment.create', 'payment', p.id::text,"
         "  jsonb_build_object('group_id', p.group_id, 'amount', p.amount, 'currency', p.currency)"
         "  FROM p WHERE p.created)"
         " SELECT * FROM p",
         4},
    /* $1 id, $2 link, $3 actor */
    [STMT_PAYMENT_SET_LINK] = {"payment_set_link",
                               "WITH p AS (UPDATE payments SET invoice_link = $2, updated_at = now()"
                               "  WHERE id = $1::uuid AND status = 'pending' RETURNING *),"
                               " a AS (" LS_AUDIT_INSERT " SELECT $3::bigint, 'payment.invoice', 'payment',"
                               "  p.id::text, jsonb_build_object('invoice_link', p.invoice_link) FROM p)"
                               " SELECT * FROM p",
                               3},
    [STMT_PAYMENT_GET] = {"payment_get", "SELECT * FROM payments WHERE id = $1::uuid", 1},
    /* $1 payer, $2 limit, $3 offset */
    [STMT_PAYMENT_LIST] = {"payment_list",
                           "SELECT * FROM payments WHERE telegram_id = $1::bigint"
                           " ORDER BY created_at DESC, id DESC LIMIT $2::int OFFSET $3::int",
                           3},
    [STMT_PAYMENT_BY_PAYLOAD] = {"payment_by_payload", "SELECT * FROM payments WHERE invoice_payload = $1",
                                 1},
    /* $1 payload, $2 charge id, $3 actor (the payer as Telegram names them), $4 traceparent: completes a
     * payment once (a row comes back only then), requesting its seat through the outbox. A failed
     * payment completes too: Telegram took the money, and the seat step refunds it if need be. */
    [STMT_PAYMENT_COMPLETE] =
        {"payment_complete",
         "WITH p AS (UPDATE payments SET status = 'completed', telegram_payment_charge_id = $2,"
         "  seat = 'requested', completed_at = now(), updated_at = now()"
         "  WHERE invoice_payload = $1 AND status IN ('pending', 'failed') RETURNING *),"
         " o AS (" OUTBOX_INSERT " SELECT 'payment', 'POST', '/payments/' || p.id || '/seat', NULL,"
         "  p.telegram_id, 'seat:' || p.id, 'payment:' || p.id, $4::text FROM p),"
         " a AS (" LS_AUDIT_INSERT " SELECT $3::bigint, 'payment.complete', 'payment', p.id::text,"
         "  jsonb_build_object('telegram_payment_charge_id', p.telegram_payment_charge_id,"
         "  'amount', p.amount) FROM p)"
         " SELECT * FROM p",
         4},
    /* $1 id, $2 reason: pending → failed (pre-checkout found the group no longer takes the payer). */
    [STMT_PAYMENT_FAIL] = {"payment_fail",
                           "WITH p AS (UPDATE payments SET status = 'failed', updated_at = now()"
                           "  WHERE id = $1::uuid AND status = 'pending' RETURNING *),"
                           " a AS (" LS_AUDIT_INSERT " SELECT NULL, 'payment.fail', 'payment', p.id::text,"
                           "  jsonb_build_object('reason', $2::text) FROM p)"
                           " SELECT id FROM p",
                           2},
    /* $1 id, $2 reason, $3 actor or NULL (the service), $4 unseat, $5 traceparent: completed →
     * refunded once. unseat: an outbox row takes the member out of the group (after the seat step:
     * same ordering key); otherwise the seat is recorded as refused. */
    [STMT_PAYMENT_REFUND] =
        {"payment_refund",
         "WITH p AS (UPDATE payments SET status = 'refunded', refund_reason = $2, refunded_at = now(),"
         "  updated_at = now(), seat = CASE WHEN $4::boolean THEN seat ELSE 'refused' END"
         "  WHERE id = $1::uuid AND status = 'completed' RETURNING *),"
         " o AS (" OUTBOX_INSERT " SELECT 'groups', 'DELETE',"
         "  '/groups/' || p.group_id || '/paid_members/' || p.id, NULL, coalesce($3::bigint, p.telegram_id),"
         "  'unseat:' || p.id,"
         "  'payment:' || p.id, $5::text FROM p WHERE $4::boolean),"
         " a AS (" LS_AUDIT_INSERT " SELECT $3::bigint, 'payment.refund', 'payment', p.id::text,"
         "  jsonb_build_object('reason', p.refund_reason, 'telegram_payment_charge_id',"
         "  p.telegram_payment_charge_id) FROM p)"
         " SELECT * FROM p",
         5},
    /* $1 id: the seat step's success. */
    [STMT_SEAT_GRANTED] = {"seat_granted",
                           "WITH p AS (UPDATE payments SET seat = 'granted', updated_at = now()"
                           "  WHERE id = $1::uuid AND seat = 'requested' RETURNING *),"
                           " a AS (" LS_AUDIT_INSERT " SELECT NULL, 'payment.seat', 'payment', p.id::text,"
                           "  jsonb_build_object('seat', p.seat, 'group_id', p.group_id) FROM p)"
                           " SELECT * FROM p",
                           1},
    [STMT_IDEM] = LS_IDEM_STMTS,
};
