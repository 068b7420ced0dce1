/*
 * calendar-service: lessons, their participants and attendance, and when teachers can teach
 * (docs/ARCHITECTURE.md §5, issue 4).
 *
 *   POST   /lessons                                  {teacher_telegram_id, group_id?,
 *                                                    student_telegram_ids?, starts_at,
 *                                                    duration_minutes, topic?}: 201 the lesson with
 *                                                    "participants"; 422 unknown teacher, group or
 *                                                    students, or a group of another teacher; 409
 *                                                    overlap or outside the teacher's availability;
 *                                                    503 a service it must ask is unreachable
 *   GET    /lessons/{lesson_id}                      the lesson with "participants" and "attendance"
 *   GET    /lessons?telegram_id=|teacher_id=|student_id=|group_id=  (exactly one) &from=&to=
 *                                                    &status=&limit=&offset=: lessons starting in
 *                                                    [from, to) (from defaults to now), by
 *                                                    starts_at, id: {"lessons", "limit", "offset"};
 *                                                    limit up to CAL_LESSONS_MAX
 *   POST   /lessons/{lesson_id}/cancel               {reason?}: 200; 409 when not scheduled
 *   POST   /lessons/{lesson_id}/reschedule           {starts_at, duration_minutes?}: 200, version+1;
 *                                                    409 overlap, availability, not scheduled
 *   PUT    /lessons/{lesson_id}/attendance/{telegram_id}
 *                                                    {status}: 200 the attendance row; 404 when the
 *                                                    person is not a participant; 409 before the
 *                                                    lesson's start, more than ATTENDANCE_WINDOW_H
 *                                                    hours after its end, or cancelled
 *   GET    /lessons/upcoming?from=&to=&limit=&after=   scheduled lessons starting in [from, to)
 *                                                    (from defaults to now, to to unbounded), by
 *                                                    starts_at, id, each with "participants":
 *                                                    {"lessons", "next", "limit"}; next (or null) is
 *                                                    the `after` of the following page (for
 *                                                    notification-service's reminders)
 *   GET    /teachers/{telegram_id}/schedule          {teacher_telegram_id, timezone, slots}
 *   PUT    /teachers/{telegram_id}/schedule          {timezone, slots: [{weekday, start_time,
 *                                                    end_time}]}: replaces the weekly schedule
 *   POST   /teachers/{telegram_id}/unavailable       {starts_at, ends_at, reason?}: 201
 *   GET    /teachers/{telegram_id}/unavailable       periods not yet over, by starts_at, paginated
 *   DELETE /teachers/{telegram_id}/unavailable/{id}  204; 404 when absent
 *
 * Reads need no actor. Writes need X-Actor-Telegram-Id (400 without): lesson writes the lesson's
 * teacher or an admin, schedule writes the teacher themself or an admin (403 otherwise). Every
 * change writes an audit_log row in its transaction. Participants are told about new, cancelled
 * and rescheduled lessons through the outbox (shared/outbox.h): one POST /notifications to
 * notification-service per participant, recorded in the same transaction as the change and
 * delivered after the commit with Idempotency-Key "lesson:<id>:v<version>:<event>:<recipient>".
 *
 * Every write that depends on a teacher's calendar (lesson create and reschedule, schedule and
 * unavailable-period changes) first takes a transaction-scoped advisory lock on the teacher's id,
 * so the availability check and the change it guards see one consistent calendar. The overlap rule
 * is also an exclusion constraint, so the database holds it whatever the service does.
 *
 * The lesson sweep (sweep.c): worker 0 of every process, every LESSON_SWEEP_S, marks scheduled
 * lessons whose end has passed `completed` (an audit row each), in a transaction that first tries
 * a transaction-scoped advisory lock, so with several replicas one sweeps at a time and the others
 * skip that round.
 */
#ifndef CALENDAR_H
#define CALENDAR_H

#include "idempotency.h"
#include "server.h"
#include "txn.h"

#define CAL_PAGE_DEF      20
#define CAL_PAGE_MAX      100
#define CAL_STUDENTS_MAX  100 /* student_telegram_ids in one POST /lessons */
#define CAL_MEMBERS_MAX   500 /* a group's members taken into a lesson (a group's largest capacity) */
#define CAL_MEMBERS_PAGE  100 /* groups-service's largest page */
#define CAL_TOPIC_MAX     500 /* characters */
#define CAL_REASON_MAX    500 /* characters */
#define CAL_SLOTS_MAX     50
#define CAL_TZ_MAX        64
#define CAL_DURATION_MIN  15
#define CAL_DURATION_MAX  480
#define CAL_NOTIFY_TARGET "notification"
#define CAL_UPCOMING_MAX  100 /* lessons in one page of GET /lessons/upcoming (also its default) */
#define CAL_SWEEP_BATCH   500 /* lessons completed by one sweep transaction; a full one goes on at once */
/* The sweep's advisory lock, pg_try_advisory_xact_lock(int4, int4): the service's port and 1. */
#define CAL_SWEEP_LOCK_KEYS "8085, 1"

/* GET /lessons: a whole schedule of the BFF's in one read (it asks up to 501) */
#define CAL_LESSONS_MAX 1000

typedef struct {
    ls_daemon_config_t common;
    long long idempotency_ttl_s; /* IDEMPOTENCY_TTL_S (idempotency.h) */
    char *teachers_url;
    char *groups_url;
    char *students_url;
    char *notification_url;
    long long outbox_poll_ms;
    long long lesson_sweep_s;      /* LESSON_SWEEP_S */
    long long attendance_window_h; /* ATTENDANCE_WINDOW_H */
} calendar_config_t;

/* Statement indices into calendar_statements (statements.c). */
enum {
    STMT_TEACHER_LOCK,
    STMT_LESSON_CHECK,
    STMT_LESSON_INSERT,
    STMT_LESSON_GET,
    STMT_LESSON_LOCK,
    STMT_LESSON_CANCEL,
    STMT_LESSON_RESCHEDULE,
    STMT_ATTENDANCE_PUT,
    STMT_LESSONS_OF_PERSON,
    STMT_LESSONS_OF_TEACHER,
    STMT_LESSONS_OF_STUDENT,
    STMT_LESSONS_OF_GROUP,
    STMT_SCHEDULE_GET,
    STMT_SCHEDULE_PUT,
    STMT_UNAVAILABLE_ADD,
    STMT_UNAVAILABLE_LIST,
    STMT_UNAVAILABLE_DELETE,
    STMT_LESSONS_UPCOMING,
    STMT_SWEEP_LOCK,
    STMT_SWEEP_COMPLETE,
    STMT_IDEM, /* the LS_IDEM_NSTMTS statements of idempotency.h, from here */
    STMT_IDEM_LAST = STMT_IDEM + LS_IDEM_NSTMTS - 1,
    STMT_COUNT,
};

extern const ls_pg_stmt_t calendar_statements[STMT_COUNT];

extern const char *const calendar_lesson_statuses[];     /* NULL-terminated */
extern const char *const calendar_attendance_statuses[]; /* NULL-terminated */

/* lessons.c: create and read */
void lessons_create(ls_req_t *r);
void lessons_get(ls_req_t *r);
void lessons_list(ls_req_t *r);

/* upcoming.c: GET /lessons/upcoming, the reminders' read */
void lessons_upcoming(ls_req_t *r);

/* lesson_changes.c: changes to one lesson */
void lessons_cancel(ls_req_t *r);
void lessons_reschedule(ls_req_t *r);
void lessons_attendance_put(ls_req_t *r);

/* availability.c: weekly schedule and unavailable periods */
void schedule_get(ls_req_t *r);
void schedule_put(ls_req_t *r);
void unavailable_add(ls_req_t *r);
void unavailable_list(ls_req_t *r);
void unavailable_delete(ls_req_t *r);

/* sweep.c: the lesson sweep, on worker 0 (on_worker_start / on_worker_stop of the daemon). */
void calendar_sweep_start(ls_worker_t *w);
void calendar_sweep_stop(ls_worker_t *w);

/* Helpers shared by the handlers (lessons.c). */

/* Characters (UTF-8 code points) in s; PostgreSQL rejects malformed UTF-8 itself. */
size_t calendar_utf8_chars(const char *s);
/*
 * Answers the result of STMT_LESSON_CHECK (one row) when it names a reason the lesson cannot take
 * place — 409 with a detail naming the conflicting lesson, the unavailable period or the weekly
 * schedule — and returns -1; returns 0 when the time is free.
 */
int calendar_check_or_reply(ls_req_t *r, const PGresult *res, const char *teacher);
/* Query parameter `name` as an RFC 3339 time (request memory), or NULL when absent. A '+' of an
 * offset that was not percent-encoded arrives as a space; it can only have meant '+'. Returns 0, or
 * answers 400 and returns -1. */
int calendar_query_time_or_reply(ls_req_t *r, const char *name, const char **out);
/* PostgreSQL's timestamptz text as RFC 3339 (the pool's sessions run in UTC), or the text as it is. */
const char *calendar_rfc3339_or_raw(const char *pg, char out[40]);

/* t->on_commit of a change that added outbox rows: wakes this worker's poller (lessons.c). */
void calendar_kick_outbox(ls_req_t *r, ls_txn_t *t);

#endif
