/*
 * students-service: student profiles, the languages they learn and their group enrollments
 * (docs/ARCHITECTURE.md §5), keyed by telegram_id.
 *
 *   PUT    /students/{telegram_id}                  create (201) / update (200) {goals?, timezone?};
 *                                                   self or admin. Absent fields keep their value,
 *                                                   null clears one.
 *   GET    /students/{telegram_id}                  the profile with "languages" and "enrollments"; 404
 *   GET    /students?ids=1,2,3                      many profiles with "languages", in the order asked,
 *                                                   plus "missing"
 *   PUT    /students/{telegram_id}/languages/{code} {"level"}: add (201) / change (200); self or admin;
 *                                                   404 without a profile
 *   DELETE /students/{telegram_id}/languages/{code} 204; 404 when absent; self or admin
 *   PUT    /students/{telegram_id}/enrollments/{group_id}
 *                                                   body optional {"status", "payment_id"}: create
 *                                                   (201), forward change or same status (200),
 *                                                   backward (409); "refunded" is last, and a PUT
 *                                                   without a status starts a refunded one again.
 *                                                   Any actor (groups-service authorized it); no
 *                                                   profile needed. Safe to repeat and to run
 *                                                   concurrently.
 *   DELETE /students/{telegram_id}/enrollments/{group_id}
 *                                                   204, also when already absent; any actor
 *   GET    /students/{telegram_id}/enrollments      that person's enrollments, newest first, paginated
 *   GET    /enrollments?group_id=<uuid>             a group's enrollments by student_telegram_id,
 *                                                   paginated
 * Writes need X-Actor-Telegram-Id (400 without). Every change writes an audit_log row in the same
 * statement (a data-modifying CTE), so a refused or failed request leaves no trace.
 */
#ifndef STUDENTS_H
#define STUDENTS_H

#include "idempotency.h"
#include "server.h"

#define STUDENTS_BATCH_MAX 100
/* The longest goals text, in characters (the database checks it); bytes are bounded at 4 per
 * character in C. */
#define STUDENTS_GOALS_MAX       4000
#define STUDENTS_TIMEZONE_MAX    64
#define STUDENTS_ENROLLMENTS_MAX 1000 /* enrollments embedded in GET /students/{id} */

typedef struct {
    ls_daemon_config_t common;
    long long idempotency_ttl_s; /* IDEMPOTENCY_TTL_S (idempotency.h) */
} students_config_t;

/* Statement indices into students_statements. */
enum {
    STMT_STUDENT_GET,
    STMT_STUDENT_BATCH,
    STMT_STUDENT_PUT,
    STMT_LANGUAGE_PUT,
    STMT_LANGUAGE_DELETE,
    STMT_ENROLLMENT_UPSERT,
    STMT_ENROLLMENT_GET,
    STMT_ENROLLMENT_DELETE,
    STMT_ENROLLMENTS_OF_STUDENT,
    STMT_ENROLLMENTS_OF_GROUP,
    STMT_IDEM, /* the LS_IDEM_NSTMTS statements of idempotency.h, from here */
    STMT_IDEM_LAST = STMT_IDEM + LS_IDEM_NSTMTS - 1,
    STMT_COUNT,
};

extern const ls_pg_stmt_t students_statements[STMT_COUNT];

/* students.c: profiles and languages */
void students_get(ls_req_t *r);
void students_batch(ls_req_t *r);
void students_put(ls_req_t *r);
void students_language_put(ls_req_t *r);
void students_language_delete(ls_req_t *r);

/* enrollments.c */
void enrollments_put(ls_req_t *r);
void enrollments_delete(ls_req_t *r);
void enrollments_of_student(ls_req_t *r);
void enrollments_of_group(ls_req_t *r);

#endif
