/*
 * Lessons that complete and remind (issue 16), end to end: the real teachers-, students- and
 * groups-service, and TWO calendar-service and TWO notification-service processes — each pair on one
 * database, as two replicas — with their sweeps every second (LESSON_SWEEP_S=1, REMINDER_SWEEP_S=1).
 * Calendar A notifies through notification A and B through B; notification A reads the upcoming
 * lessons from calendar A and B from B, so both replicas of each sweep do real work.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

enum { D_TEACHERS, D_STUDENTS, D_GROUPS, D_CAL_A, D_CAL_B, D_NOTE_A, D_NOTE_B, D_COUNT };
enum { DB_TEACHERS, DB_STUDENTS, DB_GROUPS, DB_CALENDAR, DB_NOTIFICATION, DB_COUNT };

static const char *const relpaths[D_COUNT] = {
    "services/teachers/teachers-service",
    "services/students/students-service",
    "services/groups/groups-service",
    "services/calendar/calendar-service",
    "services/calendar/calendar-service",
    "services/notification/notification-service",
    "services/notification/notification-service",
};
static const int db_of[D_COUNT] = {DB_TEACHERS, DB_STUDENTS,     DB_GROUPS,      DB_CALENDAR,
                                   DB_CALENDAR, DB_NOTIFICATION, DB_NOTIFICATION};
static const char *const db_prefixes[DB_COUNT] = {"teachers", "students", "groups", "calendar",
                                                  "notification"};

static lst_daemon_t daemons[D_COUNT];
static char *conninfos[DB_COUNT];
static char *dbnames[DB_COUNT];
static int ports[D_COUNT];
static char *token;

/* ---- daemons ---- */

static void spawn(int which)
{
    /* The replica pairs: A with A, B with B. */
    int cal = which == D_NOTE_B ? D_CAL_B : D_CAL_A, note = which == D_CAL_B ? D_NOTE_B : D_NOTE_A;
    char *vars[8];
    asprintf(&vars[0], "DATABASE_URL=%s", conninfos[db_of[which]]);
    asprintf(&vars[1], "INTERNAL_TOKEN=%s", token);
    asprintf(&vars[2], "LISTEN=127.0.0.1:%d", ports[which]);
    asprintf(&vars[3], "TEACHERS_URL=http://127.0.0.1:%d", ports[D_TEACHERS]);
    asprintf(&vars[4], "STUDENTS_URL=http://127.0.0.1:%d", ports[D_STUDENTS]);
    asprintf(&vars[5], "GROUPS_URL=http://127.0.0.1:%d", ports[D_GROUPS]);
    asprintf(&vars[6], "CALENDAR_URL=http://127.0.0.1:%d", ports[cal]);
    asprintf(&vars[7], "NOTIFICATION_URL=http://127.0.0.1:%d", ports[note]);
    const char *env[] = {vars[0],
                         vars[1],
                         vars[2],
                         vars[3],
                         vars[4],
                         vars[5],
                         vars[6],
                         vars[7],
                         "THREADS=2",
                         "LOG_LEVEL=debug",
                         "OUTBOX_POLL_MS=200",
                         "NOTIFY_POLL_MS=200",
                         "LESSON_SWEEP_S=1",
                         "REMINDER_SWEEP_S=1",
                         NULL};
    lst_daemon_spawn(&daemons[which], relpaths[which], env);
    for (int i = 0; i < 8; i++)
        free(vars[i]);
}

static void wait_healthy(int which)
{
    cr_assert_eq(lst_daemon_wait_healthy(&daemons[which]), 0, "%s did not start; see %s", relpaths[which],
                 daemons[which].log_path);
}

static void stop(int which)
{
    cr_expect_eq(lst_daemon_stop(&daemons[which]), 0, "%s did not exit cleanly; see %s", relpaths[which],
                 daemons[which].log_path);
    daemons[which].pid = 0;
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    token = lst_random_hex(24);
    memset(daemons, 0, sizeof(daemons));
    for (int i = 0; i < DB_COUNT; i++)
        conninfos[i] = lst_db_create(db_prefixes[i], &dbnames[i]);
    for (int i = 0; i < D_COUNT; i++) {
        for (int again = 1; again;) {
            ports[i] = lst_free_port();
            again = 0;
            for (int j = 0; j < i; j++)
                again |= ports[j] == ports[i];
        }
    }
    /* Both replicas of a service start together on one fresh database: the migrations' lock lets one
     * apply them while the other waits. */
    for (int i = 0; i < D_COUNT; i++)
        spawn(i);
    for (int i = 0; i < D_COUNT; i++)
        wait_healthy(i);
}

static void teardown(void)
{
    for (int i = D_COUNT - 1; i >= 0; i--)
        if (daemons[i].pid > 0)
            stop(i);
    for (int i = 0; i < DB_COUNT; i++) {
        free(conninfos[i]);
        free(dbnames[i]);
    }
    free(token);
}

TestSuite(lessonsweep, .init = setup, .fini = teardown, .timeout = 240);

/* ---- helpers ---- */

static int call_as(lst_resp_t *resp, int which, const char *method, const char *path, const char *body,
                   const char *actor)
{
    return lst_call_as(resp, daemons[which].base_url, token, method, path, body, actor, NULL);
}

static long long sql_count(int db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static long long sql_count(int db, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    char *v = lst_pg_admin_exec(dbnames[db], sql);
    long long n = atoll(v);
    free(v);
    return n;
}

static char *sql_text(int db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *sql_text(int db, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return lst_pg_admin_exec(dbnames[db], sql);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Now plus `seconds` as RFC 3339 UTC, whole seconds. */
static void time_in(char out[32], long seconds)
{
    time_t t = time(NULL) + seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A teacher's or a student's profile, made by themself: PUT /<kind>/<id> on that service. */
static void make_profile(int which, const char *kind, long long id, const char *body)
{
    char path[64], who[24];
    snprintf(path, sizeof(path), "/%s/%lld", kind, id);
    snprintf(who, sizeof(who), "%lld", id);
    lst_resp_t resp;
    call_as(&resp, which, "PUT", path, body, who);
    cr_assert_eq(resp.status, 201, "PUT %s: %d %.300s", path, resp.status, resp.body);
    lst_resp_free(&resp);
}

static void make_teacher(long long id)
{
    make_profile(D_TEACHERS, "teachers", id, "{\"bio\":\"teaches\"}");
}

static void make_student(long long id)
{
    make_profile(D_STUDENTS, "students", id, "{\"goals\":\"speak\"}");
}

/* A lesson of `teacher` with the listed students, through calendar `which`; its id (malloc'ed). */
static char *lesson(int which, long long teacher, const char *starts_at, int minutes, const char *students)
{
    char body[512], who[24];
    snprintf(who, sizeof(who), "%lld", teacher);
    snprintf(body, sizeof(body),
             "{\"teacher_telegram_id\":%lld,\"starts_at\":\"%s\",\"duration_minutes\":%d,"
             "\"topic\":\"Phrasal verbs\",\"student_telegram_ids\":[%s]}",
             teacher, starts_at, minutes, students);
    lst_resp_t resp;
    call_as(&resp, which, "POST", "/lessons", body, who);
    cr_assert_eq(resp.status, 201, "POST /lessons %s: %d %.300s", body, resp.status, resp.body);
    char *id = strdup(lst_str_field(resp.json, "id"));
    lst_resp_free(&resp);
    return id;
}

/* PUT the person's notification settings (a JSON object) through notification A. */
static void settings(long long id, const char *body)
{
    char path[96], who[24];
    snprintf(path, sizeof(path), "/users/%lld/notification_settings", id);
    snprintf(who, sizeof(who), "%lld", id);
    lst_resp_t resp;
    call_as(&resp, D_NOTE_A, "PUT", path, body, who);
    cr_assert_eq(resp.status, 200, "PUT %s %s: %d %.300s", path, body, resp.status, resp.body);
    lst_resp_free(&resp);
}

static long long reminders_of(long long id)
{
    return sql_count(DB_NOTIFICATION,
                     "SELECT count(*) FROM notifications WHERE type = 'lesson_reminder'"
                     " AND recipient_telegram_id = %lld",
                     id);
}

/* Polls until each of the n people has `want` reminders, for at most ms; 1 when they all did. */
static int wait_reminders(const long long *ids, size_t n, long long want, int ms)
{
    for (int waited = 0;; waited += 200) {
        size_t ok = 0;
        for (size_t i = 0; i < n; i++)
            ok += reminders_of(ids[i]) == want;
        if (ok == n)
            return 1;
        if (waited >= ms)
            return 0;
        sleep_ms(200);
    }
}

/* The lesson's status, read through calendar `which` (malloc'ed). */
static char *status_of(int which, const char *id)
{
    char path[96];
    snprintf(path, sizeof(path), "/lessons/%s", id);
    lst_resp_t resp;
    call_as(&resp, which, "GET", path, NULL, NULL);
    cr_assert_eq(resp.status, 200, "GET %s: %d %.300s", path, resp.status, resp.body);
    char *status = strdup(lst_str_field(resp.json, "status"));
    lst_resp_free(&resp);
    return status;
}

/* ======================================================================== the lesson sweep */

Test(lessonsweep, ended_lessons_are_completed_once_by_one_of_two_replicas)
{
    make_teacher(500);
    make_teacher(501);
    make_student(7);
    char ended_at[32], future_at[32], cancelled_at[32];
    time_in(ended_at, -3 * 3600); /* ended two hours ago */
    time_in(future_at, 2 * 3600); /* starts in two hours */
    /* Ends 30 s from now, cancelled before that: once its end has passed, the sweep must leave it. */
    time_t cancelled_ends = time(NULL) + 30;
    time_in(cancelled_at, 30 - 15 * 60);
    char *cancelled = lesson(D_CAL_A, 501, cancelled_at, 15, "7");
    char path[96];
    lst_resp_t resp;
    snprintf(path, sizeof(path), "/lessons/%s/cancel", cancelled);
    call_as(&resp, D_CAL_B, "POST", path, "{\"reason\":\"holiday\"}", "501");
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    char *ended = lesson(D_CAL_B, 500, ended_at, 60, "7");
    char *future = lesson(D_CAL_A, 500, future_at, 60, "7");

    /* Within a few rounds of either replica. */
    char *status = NULL;
    for (int waited = 0; waited < 10000; waited += 200) {
        free(status);
        status = status_of(D_CAL_A, ended);
        if (strcmp(status, "completed") == 0)
            break;
        sleep_ms(200);
    }
    cr_expect_str_eq(status, "completed");
    free(status);
    /* Until the cancelled lesson has ended, and several rounds of both replicas after that. */
    while (time(NULL) < cancelled_ends + 3)
        sleep_ms(500);
    status = status_of(D_CAL_B, ended);
    cr_expect_str_eq(status, "completed");
    free(status);
    status = status_of(D_CAL_B, future);
    cr_expect_str_eq(status, "scheduled", "a lesson that has not ended is left alone");
    free(status);
    status = status_of(D_CAL_A, cancelled);
    cr_expect_str_eq(status, "cancelled", "a cancelled lesson is left alone");
    free(status);

    /* Completed exactly once: one audit row, actor NULL (the service itself), and no other. */
    cr_expect_eq(
        sql_count(DB_CALENDAR,
                  "SELECT count(*) FROM audit_log WHERE action = 'lesson.complete' AND entity_id = '%s'"
                  " AND actor_telegram_id IS NULL",
                  ended),
        1);
    cr_expect_eq(sql_count(DB_CALENDAR, "SELECT count(*) FROM audit_log WHERE action = 'lesson.complete'"),
                 1);
    cr_expect_eq(sql_count(DB_CALENDAR, "SELECT count(*) FROM lessons WHERE status = 'completed'"), 1);
    /* Each replica logs what its rounds completed: one round in all. */
    const char *const needles[] = {"lesson sweep", "lessons completed", NULL};
    json_object *a = lst_log_lines(&daemons[D_CAL_A], needles),
                *b = lst_log_lines(&daemons[D_CAL_B], needles);
    cr_expect_eq(json_object_array_length(a) + json_object_array_length(b), 1,
                 "one round in all completed a lesson");
    json_object_put(a);
    json_object_put(b);

    /* A completed lesson's attendance can still be marked: it ended two hours ago, inside the
     * window. */
    snprintf(path, sizeof(path), "/lessons/%s/attendance/7", ended);
    call_as(&resp, D_CAL_A, "PUT", path, "{\"status\":\"present\"}", "500");
    cr_expect_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    free(cancelled);
    free(ended);
    free(future);
}

/* ======================================================================== reminders */

Test(lessonsweep, a_reminder_reaches_each_person_once_with_two_replicas_and_restarts)
{
    /* Teacher 600; students 601 (no settings: the default 60 minutes), 602 (5 minutes), 603 (off),
     * 604 (lesson_reminder disabled as a type), 605 (quiet hours now: created, held). */
    make_teacher(600);
    for (long long s = 601; s <= 605; s++)
        make_student(s);
    settings(600, "{\"lesson_reminder_minutes\":10}");
    settings(602, "{\"lesson_reminder_minutes\":5}");
    settings(603, "{\"lesson_reminder_minutes\":null}");
    settings(604, "{\"disabled_types\":[\"lesson_reminder\"]}");
    char quiet[160], from[8], to[8];
    time_t now = time(NULL), a = now - 3600, b = now + 3600;
    struct tm tm;
    strftime(from, sizeof(from), "%H:%M", gmtime_r(&a, &tm));
    strftime(to, sizeof(to), "%H:%M", gmtime_r(&b, &tm));
    snprintf(quiet, sizeof(quiet), "{\"quiet_hours\":{\"from\":\"%s\",\"to\":\"%s\"},\"timezone\":\"UTC\"}",
             from, to);
    settings(605, quiet);

    char starts_at[32];
    time_in(starts_at, 120);
    char *id = lesson(D_CAL_A, 600, starts_at, 30, "601, 602, 603, 604, 605");

    const long long reminded[] = {600, 601, 602, 605};
    cr_assert(wait_reminders(reminded, 4, 1, 15000), "each of 600, 601, 602, 605 should have one reminder");
    /* Many more rounds of both replicas of each service: still one each. */
    sleep_ms(3000);
    cr_expect(wait_reminders(reminded, 4, 1, 0), "a reminder was repeated");
    cr_expect_eq(reminders_of(603), 0, "reminders are off for 603");
    cr_expect_eq(reminders_of(604), 0, "604 disabled the type");
    cr_expect_eq(
        sql_count(DB_NOTIFICATION, "SELECT count(*) FROM lesson_reminders WHERE lesson_id = '%s'", id), 4);

    /* What it says: the lesson's time and topic, rendered from the template. */
    char *v = sql_text(DB_NOTIFICATION,
                       "SELECT params ->> 'starts_at' FROM notifications WHERE type = 'lesson_reminder'"
                       " AND recipient_telegram_id = 601");
    cr_expect_str_eq(v, starts_at);
    free(v);
    v = sql_text(
        DB_NOTIFICATION,
        "SELECT body FROM notifications WHERE type = 'lesson_reminder' AND recipient_telegram_id = 602");
    cr_expect(strstr(v, "Phrasal verbs") != NULL && strstr(v, starts_at) != NULL, "body: %s", v);
    free(v);
    /* Delivered by the delivery poller (stored: no Telegram here), except during quiet hours. */
    for (int waited = 0; waited < 5000; waited += 200) {
        if (sql_count(DB_NOTIFICATION,
                      "SELECT count(*) FROM notifications WHERE type = 'lesson_reminder'"
                      " AND recipient_telegram_id IN (600, 601, 602) AND delivery_status = 'sent'") == 3)
            break;
        sleep_ms(200);
    }
    cr_expect_eq(sql_count(DB_NOTIFICATION,
                           "SELECT count(*) FROM notifications WHERE type = 'lesson_reminder'"
                           " AND recipient_telegram_id IN (600, 601, 602) AND delivery_status = 'sent'"),
                 3);
    cr_expect_eq(sql_count(DB_NOTIFICATION,
                           "SELECT count(*) FROM notifications WHERE type = 'lesson_reminder'"
                           " AND recipient_telegram_id = 605 AND delivery_status = 'pending'"
                           " AND deliver_after > now()"),
                 1, "605's reminder waits for the end of the quiet hours");

    /* Every calendar and notification process restarted: the sweeps start over and find the
     * reminders made. */
    for (int i = D_CAL_A; i <= D_NOTE_B; i++)
        stop(i);
    for (int i = D_CAL_A; i <= D_NOTE_B; i++)
        spawn(i);
    for (int i = D_CAL_A; i <= D_NOTE_B; i++)
        wait_healthy(i);
    sleep_ms(3000);
    cr_expect(wait_reminders(reminded, 4, 1, 0), "a reminder was repeated after the restarts");
    cr_expect_eq(reminders_of(603) + reminders_of(604), 0);
    cr_expect_eq(sql_count(DB_NOTIFICATION,
                           "SELECT count(*) FROM audit_log WHERE action = 'notification.create'"
                           " AND changes ->> 'type' = 'lesson_reminder'"),
                 4);
    free(id);
}

Test(lessonsweep, a_cancelled_lesson_reminds_nobody_and_a_moved_one_reminds_for_its_new_time)
{
    make_teacher(700);
    make_teacher(710);
    make_student(701);
    make_student(711);
    /* Five minutes before: neither lesson, twenty minutes away, is due yet. */
    const long long all[] = {700, 701, 710, 711};
    for (size_t i = 0; i < 4; i++)
        settings(all[i], "{\"lesson_reminder_minutes\":5}");
    char later[32], soon[32];
    time_in(later, 20 * 60);
    char *cancelled = lesson(D_CAL_A, 700, later, 30, "701");
    char *moved = lesson(D_CAL_B, 710, later, 30, "711");
    sleep_ms(2500);
    cr_expect(wait_reminders(all, 4, 0, 0), "nothing is due twenty minutes ahead");

    /* The first is cancelled, and then its people ask for an hour's notice: it would be due now. */
    char path[96];
    lst_resp_t resp;
    snprintf(path, sizeof(path), "/lessons/%s/cancel", cancelled);
    call_as(&resp, D_CAL_A, "POST", path, NULL, "700");
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    settings(700, "{\"lesson_reminder_minutes\":60}");
    settings(701, "{\"lesson_reminder_minutes\":60}");

    /* The second moves to two minutes from now: due for its new time. */
    time_in(soon, 120);
    snprintf(path, sizeof(path), "/lessons/%s/reschedule", moved);
    char body[96];
    snprintf(body, sizeof(body), "{\"starts_at\":\"%s\"}", soon);
    call_as(&resp, D_CAL_B, "POST", path, body, "710");
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);

    const long long movers[] = {710, 711};
    cr_assert(wait_reminders(movers, 2, 1, 15000), "the moved lesson's people should have one reminder each");
    sleep_ms(3000);
    cr_expect(wait_reminders(movers, 2, 1, 0), "a reminder was repeated");
    cr_expect_eq(reminders_of(700), 0, "a cancelled lesson reminds nobody");
    cr_expect_eq(reminders_of(701), 0, "a cancelled lesson reminds nobody");
    /* For the new time only. */
    cr_expect_eq(sql_count(DB_NOTIFICATION,
                           "SELECT count(*) FROM notifications WHERE type = 'lesson_reminder'"
                           " AND params ->> 'starts_at' = '%s' AND params ->> 'lesson_id' = '%s'",
                           soon, moved),
                 2);
    cr_expect_eq(sql_count(DB_NOTIFICATION,
                           "SELECT count(*) FROM lesson_reminders WHERE lesson_id = '%s'"
                           " AND starts_at = '%s'::timestamptz",
                           moved, soon),
                 2);
    free(cancelled);
    free(moved);
}
