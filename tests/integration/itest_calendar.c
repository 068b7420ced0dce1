/*
 * calendar-service end to end: the real daemon on a fresh database, next to the real teachers-,
 * students-, groups- and notification-service, each on its own fresh database.
 *
 * Every test starts all five (groups-service records joins in students-service; calendar asks the
 * first three and notifies through the fourth). notification-service listens on a port chosen up
 * front, so a test can stop it and start it again where calendar's outbox expects it.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define CALENDAR     "services/calendar/calendar-service"
#define TEACHERS     "services/teachers/teachers-service"
#define STUDENTS     "services/students/students-service"
#define GROUPS       "services/groups/groups-service"
#define NOTIFICATION "services/notification/notification-service"

#define TEACHER   "500"
#define TEACHER_2 "501"
#define ADMIN     "900"

enum { D_TEACHERS, D_STUDENTS, D_GROUPS, D_NOTIFICATION, D_CALENDAR, D_COUNT };

static const char *const relpaths[D_COUNT] = {TEACHERS, STUDENTS, GROUPS, NOTIFICATION, CALENDAR};
static const char *const db_prefixes[D_COUNT] = {"teachers", "students", "groups", "notification",
                                                 "calendar"};

static lst_daemon_t daemons[D_COUNT];
static char *conninfos[D_COUNT];
static char *dbnames[D_COUNT];
static int ports[D_COUNT];
static char *token;

/* ---- daemons ---- */

static void spawn(int which)
{
    char *env_db, *env_token, *env_listen, *urls[5];
    asprintf(&env_db, "DATABASE_URL=%s", conninfos[which]);
    asprintf(&env_token, "INTERNAL_TOKEN=%s", token);
    asprintf(&env_listen, "LISTEN=127.0.0.1:%d", ports[which]);
    asprintf(&urls[0], "TEACHERS_URL=http://127.0.0.1:%d", ports[D_TEACHERS]);
    asprintf(&urls[1], "STUDENTS_URL=http://127.0.0.1:%d", ports[D_STUDENTS]);
    asprintf(&urls[2], "GROUPS_URL=http://127.0.0.1:%d", ports[D_GROUPS]);
    asprintf(&urls[3], "NOTIFICATION_URL=http://127.0.0.1:%d", ports[D_NOTIFICATION]);
    asprintf(&urls[4], "CALENDAR_URL=http://127.0.0.1:%d", ports[D_CALENDAR]); /* the reminders */
    const char *env[] = {env_db,
                         env_token,
                         env_listen,
                         urls[0],
                         urls[1],
                         urls[2],
                         urls[3],
                         urls[4],
                         "THREADS=2",
                         "LOG_LEVEL=debug",
                         "OUTBOX_POLL_MS=200",
                         "NOTIFY_POLL_MS=200",
                         NULL};
    lst_daemon_spawn(&daemons[which], relpaths[which], env);
    free(env_db);
    free(env_token);
    free(env_listen);
    for (int i = 0; i < 5; i++)
        free(urls[i]);
}

static void start(int which)
{
    spawn(which);
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
    for (int i = 0; i < D_COUNT; i++) {
        conninfos[i] = lst_db_create(db_prefixes[i], &dbnames[i]);
        /* Distinct ports: each daemon's address is fixed before any of them starts. */
        for (int again = 1; again;) {
            ports[i] = lst_free_port();
            again = 0;
            for (int j = 0; j < i; j++)
                again |= ports[j] == ports[i];
        }
    }
    /* All at once: each applies its migrations while the others do. */
    for (int i = 0; i < D_COUNT; i++)
        spawn(i);
    for (int i = 0; i < D_COUNT; i++)
        cr_assert_eq(lst_daemon_wait_healthy(&daemons[i]), 0, "%s did not start; see %s", relpaths[i],
                     daemons[i].log_path);
}

static void teardown(void)
{
    /* A clean exit also means no leak was found when the daemons run under ASan. */
    for (int i = D_COUNT - 1; i >= 0; i--) {
        if (daemons[i].pid > 0)
            stop(i);
        free(conninfos[i]);
        free(dbnames[i]);
    }
    free(token);
}

TestSuite(calendar, .init = setup, .fini = teardown, .timeout = 180);

/* ---- helpers ---- */

/* A request to one of the daemons, with the internal token; actor and role may be NULL. */
static int call_as(lst_resp_t *resp, int which, const char *method, const char *path, const char *body,
                   const char *actor, const char *role)
{
    return lst_call_as(resp, daemons[which].base_url, token, method, path, body, actor, role);
}

/* A call to calendar-service. */
static int call(lst_resp_t *resp, const char *method, const char *path, const char *body, const char *actor)
{
    return call_as(resp, D_CALENDAR, method, path, body, actor, NULL);
}

/* Sends and expects a problem; frees the response. */
static void expect_call_problem(const char *method, const char *path, const char *body, const char *actor,
                                int status, const char *needle)
{
    lst_resp_t resp;
    call(&resp, method, path, body, actor);
    cr_expect_eq(resp.status, status, "%s %s %s: %d %.300s", method, path, body ? body : "", resp.status,
                 resp.body);
    lst_expect_problem(&resp, status, needle);
    lst_resp_free(&resp);
}

static long long sql_count(int which, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static long long sql_count(int which, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    char *v = lst_pg_admin_exec(dbnames[which], sql);
    long long n = atoll(v);
    free(v);
    return n;
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

static void make_teacher(const char *id)
{
    char path[64];
    snprintf(path, sizeof(path), "/teachers/%s", id);
    lst_resp_t resp;
    call_as(&resp, D_TEACHERS, "PUT", path, "{\"bio\":\"teaches\"}", id, NULL);
    cr_assert_eq(resp.status, 201, "PUT %s: %d %.300s", path, resp.status, resp.body);
    lst_resp_free(&resp);
}

static void make_student(long long id)
{
    char path[64], who[24];
    snprintf(path, sizeof(path), "/students/%lld", id);
    snprintf(who, sizeof(who), "%lld", id);
    lst_resp_t resp;
    call_as(&resp, D_STUDENTS, "PUT", path, "{\"goals\":\"speak\"}", who, NULL);
    cr_assert_eq(resp.status, 201, "PUT %s: %d %.300s", path, resp.status, resp.body);
    lst_resp_free(&resp);
}

/* A group of `teacher` whose members joined by invitation; returns its id (malloc'ed). */
static char *make_group(const char *teacher, const long long *members, size_t n)
{
    lst_resp_t resp;
    call_as(&resp, D_GROUPS, "POST", "/groups",
            "{\"title\":\"Evening English\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":10}",
            teacher, NULL);
    cr_assert_eq(resp.status, 201, "POST /groups: %d %.300s", resp.status, resp.body);
    char *group = strdup(lst_str_field(resp.json, "id"));
    lst_resp_free(&resp);
    if (n == 0)
        return group;

    char path[160];
    snprintf(path, sizeof(path), "/groups/%s/invitations", group);
    call_as(&resp, D_GROUPS, "POST", path, NULL, teacher, NULL);
    cr_assert_eq(resp.status, 201, "POST %s: %d %.300s", path, resp.status, resp.body);
    snprintf(path, sizeof(path), "/join/%s", lst_str_field(resp.json, "code"));
    lst_resp_free(&resp);
    for (size_t i = 0; i < n; i++) {
        char who[24];
        snprintf(who, sizeof(who), "%lld", members[i]);
        call_as(&resp, D_GROUPS, "POST", path, NULL, who, NULL);
        cr_assert_eq(resp.status, 201, "join as %s: %d %.300s", who, resp.status, resp.body);
        lst_resp_free(&resp);
    }
    return group;
}

/* POST /lessons as actor; returns the status, and the new lesson's id (malloc'ed) in *id when 201. */
static int create_lesson(const char *actor, const char *body, char **id)
{
    lst_resp_t resp;
    int status = call(&resp, "POST", "/lessons", body, actor);
    if (id != NULL)
        *id = status == 201 ? strdup(lst_str_field(resp.json, "id")) : NULL;
    lst_resp_free(&resp);
    return status;
}

/* A lesson of TEACHER at starts_at for 60 minutes with the listed students; asserts 201. */
static char *lesson_at(const char *starts_at, const char *students)
{
    char body[512], *id;
    snprintf(body, sizeof(body),
             "{\"teacher_telegram_id\":" TEACHER ",\"starts_at\":\"%s\",\"duration_minutes\":60,"
             "\"topic\":\"Past simple\",\"student_telegram_ids\":[%s]}",
             starts_at, students);
    int status = create_lesson(TEACHER, body, &id);
    cr_assert_eq(status, 201, "lesson at %s: %d", starts_at, status);
    return id;
}

/* The person's notifications (newest first) as a new JSON array, or NULL when the call failed. */
static json_object *notifications_of(long long id)
{
    char path[96], who[24];
    snprintf(path, sizeof(path), "/users/%lld/notifications?order=time&limit=100", id);
    snprintf(who, sizeof(who), "%lld", id);
    lst_resp_t resp;
    call_as(&resp, D_NOTIFICATION, "GET", path, NULL, who, NULL);
    json_object *list = resp.status == 200 ? json_object_get(lst_field(resp.json, "notifications")) : NULL;
    lst_resp_free(&resp);
    return list;
}

/* How many of the person's notifications have this type (-1 when the call failed). */
static int notification_count(long long id, const char *type)
{
    json_object *list = notifications_of(id);
    if (list == NULL)
        return -1;
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(list); i++)
        if (strcmp(lst_str_field(json_object_array_get_idx(list, i), "type"), type) == 0)
            n++;
    json_object_put(list);
    return n;
}

/* Polls until the person has `want` notifications of this type, for at most ms. */
static int wait_notifications(long long id, const char *type, int want, int ms)
{
    for (int waited = 0;; waited += 100) {
        if (notification_count(id, type) == want)
            return 1;
        if (waited >= ms)
            return 0;
        sleep_ms(100);
    }
}

/* Polls until every outbox row is delivered, for at most ms. */
static int wait_outbox_drained(int ms)
{
    for (int waited = 0;; waited += 100) {
        if (sql_count(D_CALENDAR, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL") == 0)
            return 1;
        if (waited >= ms)
            return 0;
        sleep_ms(100);
    }
}

static int64_t int_at(json_object *array, size_t i)
{
    return json_object_get_int64(json_object_array_get_idx(array, i));
}

/* ======================================================================== creation */

Test(calendar, group_lesson_takes_members_and_listed_students_and_notifies_each)
{
    make_teacher(TEACHER);
    make_student(7);
    make_student(31); /* a member who is listed too: one participant */
    long long members[] = {31, 32};
    char *group = make_group(TEACHER, members, 2);

    char body[512];
    snprintf(body, sizeof(body),
             "{\"teacher_telegram_id\":" TEACHER ",\"group_id\":\"%s\",\"student_telegram_ids\":[7, 31],"
             "\"starts_at\":\"2030-03-04T10:00:00+03:00\",\"duration_minutes\":90,\"topic\":\"Урок 1\"}",
             group);
    lst_resp_t resp;
    call(&resp, "POST", "/lessons", body, TEACHER);
    cr_assert_eq(resp.status, 201, "%d %.400s", resp.status, resp.body);
    const char *id = lst_str_field(resp.json, "id");
    cr_expect_str_eq(lst_str_field(resp.json, "group_id"), group);
    cr_expect_str_eq(lst_str_field(resp.json, "starts_at"), "2030-03-04T07:00:00Z");
    cr_expect_str_eq(lst_str_field(resp.json, "ends_at"), "2030-03-04T08:30:00Z");
    cr_expect_str_eq(lst_str_field(resp.json, "status"), "scheduled");
    cr_expect_str_eq(lst_str_field(resp.json, "topic"), "Урок 1");
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "version")), 1);
    json_object *participants = lst_field(resp.json, "participants");
    cr_assert_eq(json_object_array_length(participants), 3, "%.400s", resp.body);
    cr_expect_eq(int_at(participants, 0), 7);
    cr_expect_eq(int_at(participants, 1), 31);
    cr_expect_eq(int_at(participants, 2), 32);

    /* The audit row was written with the lesson; one outbox row per participant. */
    cr_expect_eq(
        sql_count(D_CALENDAR,
                  "SELECT count(*) FROM audit_log WHERE action = 'lesson.create' AND entity_id = '%s'"
                  " AND actor_telegram_id = " TEACHER,
                  id),
        1);
    cr_expect_eq(
        sql_count(D_CALENDAR, "SELECT count(*) FROM outbox WHERE idempotency_key LIKE 'lesson:%s:v1:%%'", id),
        3);

    /* Each participant is told once, with the lesson's details. */
    long long everyone[] = {7, 31, 32};
    for (size_t i = 0; i < 3; i++)
        cr_expect(wait_notifications(everyone[i], "lesson_scheduled", 1, 15000),
                  "participant %lld not notified", everyone[i]);
    json_object *list = notifications_of(32);
    cr_assert_not_null(list);
    json_object *params = lst_field(json_object_array_get_idx(list, 0), "params");
    cr_expect_str_eq(lst_str_field(params, "topic"), "Урок 1");
    cr_expect_str_eq(lst_str_field(params, "starts_at"), "2030-03-04T07:00:00Z");
    cr_expect_str_eq(lst_str_field(params, "group_id"), group);
    cr_expect_str_eq(lst_str_field(params, "group_title"), "Evening English");
    json_object_put(list);
    /* The teacher is not a participant. */
    cr_expect_eq(notification_count(500, "lesson_scheduled"), 0);
    cr_expect(wait_outbox_drained(5000));

    /* GET shows the same lesson. */
    char path[96];
    snprintf(path, sizeof(path), "/lessons/%s", id);
    lst_resp_t got;
    call(&got, "GET", path, NULL, NULL);
    cr_expect_eq(got.status, 200);
    cr_expect_eq(json_object_array_length(lst_field(got.json, "participants")), 3);
    cr_expect_eq(json_object_array_length(lst_field(got.json, "attendance")), 0);
    lst_resp_free(&got);

    /* Later changes name the group too, from the title kept with the lesson. */
    snprintf(path, sizeof(path), "/lessons/%s/reschedule", id);
    call(&got, "POST", path, "{\"starts_at\":\"2030-03-05T10:00:00Z\"}", TEACHER);
    cr_expect_eq(got.status, 200, "%d %.300s", got.status, got.body);
    lst_resp_free(&got);
    snprintf(path, sizeof(path), "/lessons/%s/cancel", id);
    call(&got, "POST", path, "{\"reason\":\"holiday\"}", TEACHER);
    cr_expect_eq(got.status, 200, "%d %.300s", got.status, got.body);
    lst_resp_free(&got);
    cr_expect(wait_notifications(32, "lesson_rescheduled", 1, 15000));
    cr_expect(wait_notifications(32, "lesson_cancelled", 1, 15000));
    list = notifications_of(32);
    cr_assert_not_null(list);
    int named = 0;
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *n = json_object_array_get_idx(list, i);
        const char *type = lst_str_field(n, "type");
        if (strcmp(type, "lesson_rescheduled") == 0 || strcmp(type, "lesson_cancelled") == 0) {
            cr_expect_str_eq(lst_str_field(lst_field(n, "params"), "group_title"), "Evening English", "%s",
                             type);
            named++;
        }
    }
    cr_expect_eq(named, 2);
    json_object_put(list);
    lst_resp_free(&resp);
    free(group);
}

Test(calendar, unknown_teacher_group_of_another_teacher_unknown_students_are_422_naming_them)
{
    make_teacher(TEACHER);
    make_teacher(TEACHER_2);
    make_student(7);
    char *foreign = make_group(TEACHER_2, NULL, 0);
    char body[512];

    /* 502 has no teacher profile. */
    expect_call_problem(
        "POST", "/lessons",
        "{\"teacher_telegram_id\":502,\"starts_at\":\"2030-03-04T10:00:00Z\",\"duration_minutes\":60}", "502",
        422, "teacher not found: 502");

    snprintf(body, sizeof(body),
             "{\"teacher_telegram_id\":" TEACHER
             ",\"group_id\":\"%s\",\"starts_at\":\"2030-03-04T10:00:00Z\","
             "\"duration_minutes\":60}",
             foreign);
    lst_resp_t resp;
    call(&resp, "POST", "/lessons", body, TEACHER);
    lst_expect_problem(&resp, 422, foreign);
    lst_expect_problem(&resp, 422, "belongs to another teacher");
    lst_resp_free(&resp);

    expect_call_problem("POST", "/lessons",
                        "{\"teacher_telegram_id\":" TEACHER
                        ",\"group_id\":\"00000000-0000-4000-8000-000000000000\","
                        "\"starts_at\":\"2030-03-04T10:00:00Z\",\"duration_minutes\":60}",
                        TEACHER, 422, "group not found: 00000000-0000-4000-8000-000000000000");

    expect_call_problem("POST", "/lessons",
                        "{\"teacher_telegram_id\":" TEACHER ",\"student_telegram_ids\":[9, 7, 5],"
                        "\"starts_at\":\"2030-03-04T10:00:00Z\",\"duration_minutes\":60}",
                        TEACHER, 422, "students not found: 9, 5");

    /* Nothing was stored by any refusal. */
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM lessons"), 0);
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM outbox"), 0);
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM audit_log"), 0);
    free(foreign);
}

Test(calendar, only_the_teacher_or_an_admin_schedules)
{
    make_teacher(TEACHER);
    const char *body = "{\"teacher_telegram_id\":" TEACHER ",\"starts_at\":\"2030-03-04T10:00:00Z\","
                       "\"duration_minutes\":60}";
    expect_call_problem("POST", "/lessons", body, "7", 403, "teacher " TEACHER);
    expect_call_problem("POST", "/lessons", body, NULL, 400, "X-Actor-Telegram-Id");
    lst_resp_t resp;
    call_as(&resp, D_CALENDAR, "POST", "/lessons", body, ADMIN, "admin");
    cr_expect_eq(resp.status, 201, "%d %.300s", resp.status, resp.body);
    cr_expect_eq(json_object_get_int64(lst_field(resp.json, "created_by")), 900);
    lst_resp_free(&resp);
}

Test(calendar, overlap_is_409_naming_the_lesson_and_back_to_back_is_fine)
{
    make_teacher(TEACHER);
    char *first = lesson_at("2030-03-04T10:00:00Z", "");
    lst_resp_t resp;
    call(&resp, "POST", "/lessons",
         "{\"teacher_telegram_id\":" TEACHER
         ",\"starts_at\":\"2030-03-04T10:59:00Z\",\"duration_minutes\":15}",
         TEACHER);
    lst_expect_problem(&resp, 409, first);
    lst_resp_free(&resp);
    /* [10:00, 11:00) and [11:00, 12:00) touch but do not overlap. */
    free(lesson_at("2030-03-04T11:00:00Z", ""));
    /* A cancelled lesson frees its time. */
    char path[96];
    snprintf(path, sizeof(path), "/lessons/%s/cancel", first);
    call(&resp, "POST", path, NULL, TEACHER);
    cr_expect_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    free(lesson_at("2030-03-04T10:00:00Z", ""));
    free(first);
}

typedef struct {
    int status;
} job_t;

static void *creator(void *arg)
{
    job_t *job = arg;
    job->status = create_lesson(TEACHER,
                                "{\"teacher_telegram_id\":" TEACHER ",\"starts_at\":\"2030-03-05T09:00:00Z\","
                                "\"duration_minutes\":120}",
                                NULL);
    return NULL;
}

Test(calendar, ten_concurrent_overlapping_creations_make_exactly_one_lesson)
{
    make_teacher(TEACHER);
    pthread_t threads[10];
    job_t jobs[10];
    for (int i = 0; i < 10; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, creator, &jobs[i]), 0);
    int created = 0, conflicts = 0;
    for (int i = 0; i < 10; i++) {
        pthread_join(threads[i], NULL);
        created += jobs[i].status == 201;
        conflicts += jobs[i].status == 409;
    }
    cr_expect_eq(created, 1, "%d created", created);
    cr_expect_eq(conflicts, 9, "%d conflicts", conflicts);
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM lessons"), 1);
}

/* ======================================================================== availability */

Test(calendar, weekly_schedule_and_unavailable_periods_refuse_lessons_with_409)
{
    make_teacher(TEACHER);
    lst_resp_t resp;

    /* No schedule: available at any time. */
    call(&resp, "GET", "/teachers/" TEACHER "/schedule", NULL, NULL);
    cr_expect_eq(resp.status, 200);
    cr_expect_null(lst_field(resp.json, "timezone"));
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "slots")), 0);
    lst_resp_free(&resp);

    /* Mondays 09:00-18:00 and Tuesdays 20:00-24:00, Moscow time (UTC+3). */
    const char *schedule = "{\"timezone\":\"Europe/Moscow\",\"slots\":["
                           "{\"weekday\":2,\"start_time\":\"20:00\",\"end_time\":\"24:00\"},"
                           "{\"weekday\":1,\"start_time\":\"09:00\",\"end_time\":\"18:00\"}]}";
    expect_call_problem("PUT", "/teachers/" TEACHER "/schedule", schedule, "7", 403, NULL);
    call(&resp, "PUT", "/teachers/" TEACHER "/schedule", schedule, TEACHER);
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "timezone"), "Europe/Moscow");
    json_object *slots = lst_field(resp.json, "slots");
    cr_assert_eq(json_object_array_length(slots), 2);
    cr_expect_eq(json_object_get_int(lst_field(json_object_array_get_idx(slots, 0), "weekday")), 1);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(slots, 1), "end_time"), "24:00");
    lst_resp_free(&resp);
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM audit_log WHERE action = 'schedule.replace'"),
                 1);

    /* 2030-03-04 is a Monday: 06:00Z is 09:00 in Moscow (inside), 14:30Z + 60 min ends 18:30 (outside). */
    free(lesson_at("2030-03-04T06:00:00Z", ""));
    call(&resp, "POST", "/lessons",
         "{\"teacher_telegram_id\":" TEACHER
         ",\"starts_at\":\"2030-03-04T14:30:00Z\",\"duration_minutes\":60}",
         TEACHER);
    lst_expect_problem(&resp, 409, "weekly availability");
    lst_resp_free(&resp);
    /* Sunday: no window at all. */
    expect_call_problem("POST", "/lessons",
                        "{\"teacher_telegram_id\":" TEACHER ",\"starts_at\":\"2030-03-03T08:00:00Z\","
                        "\"duration_minutes\":60}",
                        TEACHER, 409, "weekly availability");
    /* Tuesday 23:00-24:00 Moscow fits the window that ends at midnight. */
    free(lesson_at("2030-03-05T20:00:00Z", ""));

    /* An unavailable period inside Monday's window. */
    call(&resp, "POST", "/teachers/" TEACHER "/unavailable",
         "{\"starts_at\":\"2030-03-04T10:00:00Z\",\"ends_at\":\"2030-03-04T12:00:00Z\",\"reason\":"
         "\"conference\"}",
         TEACHER);
    cr_assert_eq(resp.status, 201, "%d %.300s", resp.status, resp.body);
    char *period = strdup(lst_str_field(resp.json, "id"));
    lst_resp_free(&resp);
    expect_call_problem("POST", "/lessons",
                        "{\"teacher_telegram_id\":" TEACHER ",\"starts_at\":\"2030-03-04T11:30:00Z\","
                        "\"duration_minutes\":60}",
                        TEACHER, 409,
                        "unavailable from 2030-03-04T10:00:00Z to 2030-03-04T12:00:00Z (conference)");

    call(&resp, "GET", "/teachers/" TEACHER "/unavailable", NULL, NULL);
    cr_expect_eq(resp.status, 200);
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "unavailable")), 1);
    lst_resp_free(&resp);

    char path[128];
    snprintf(path, sizeof(path), "/teachers/" TEACHER "/unavailable/%s", period);
    expect_call_problem("DELETE", path, NULL, TEACHER_2, 403, NULL);
    call(&resp, "DELETE", path, NULL, TEACHER);
    cr_expect_eq(resp.status, 204);
    lst_resp_free(&resp);
    expect_call_problem("DELETE", path, NULL, TEACHER, 404, NULL);
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM audit_log WHERE action LIKE 'unavailable.%%'"),
                 2);
    /* Free again. */
    free(lesson_at("2030-03-04T11:30:00Z", ""));

    /* Replacing with no slots makes the teacher available at any time again. */
    call(&resp, "PUT", "/teachers/" TEACHER "/schedule", "{\"timezone\":\"UTC\",\"slots\":[]}", TEACHER);
    cr_expect_eq(resp.status, 200);
    lst_resp_free(&resp);
    free(lesson_at("2030-03-03T08:00:00Z", ""));
    free(period);
}

Test(calendar, schedule_and_unavailable_input_is_validated)
{
    const char *bad[] = {
        "{\"timezone\":\"Mars/Olympus\",\"slots\":[]}",
        "{\"timezone\":\"UTC\"}",
        "{\"timezone\":\"UTC\",\"slots\":[{\"weekday\":8,\"start_time\":\"09:00\",\"end_time\":\"10:00\"}]}",
        "{\"timezone\":\"UTC\",\"slots\":[{\"weekday\":1,\"start_time\":\"9:00\",\"end_time\":\"10:00\"}]}",
        "{\"timezone\":\"UTC\",\"slots\":[{\"weekday\":1,\"start_time\":\"10:00\",\"end_time\":\"09:00\"}]}",
        "{\"timezone\":\"UTC\",\"slots\":[{\"weekday\":1,\"start_time\":\"09:00\",\"end_time\":\"24:30\"}]}",
        "{\"timezone\":\"UTC\",\"slots\":[{\"weekday\":1,\"start_time\":\"09:00\",\"end_time\":\"12:00\"},"
        "{\"weekday\":1,\"start_time\":\"11:00\",\"end_time\":\"13:00\"}]}",
        "{\"timezone\":\"UTC\",\"slots\":[{\"weekday\":1,\"start_time\":\"09:00\",\"end_time\":\"12:00\","
        "\"x\":1}]}",
        "{\"timezone\":\"UTC\",\"slots\":[1]}",
        "{\"timezone\":\"UTC\",\"slots\":[",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_call_problem("PUT", "/teachers/" TEACHER "/schedule", bad[i], TEACHER, 400, NULL);
    expect_call_problem("POST", "/teachers/" TEACHER "/unavailable",
                        "{\"starts_at\":\"2030-03-04T12:00:00Z\",\"ends_at\":\"2030-03-04T10:00:00Z\"}",
                        TEACHER, 400, "ends_at");
    expect_call_problem("POST", "/teachers/" TEACHER "/unavailable",
                        "{\"starts_at\":\"2030-02-30T12:00:00Z\",\"ends_at\":\"2030-03-04T10:00:00Z\"}",
                        TEACHER, 400, "starts_at");
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM teacher_schedules"), 0);
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM teacher_unavailable"), 0);
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM audit_log"), 0);
}

/* ======================================================================== failures of others */

Test(calendar, a_stopped_service_is_503_naming_it)
{
    make_teacher(TEACHER);
    make_student(7);
    char *group = make_group(TEACHER, NULL, 0);
    char body[512];
    snprintf(body, sizeof(body),
             "{\"teacher_telegram_id\":" TEACHER ",\"group_id\":\"%s\",\"student_telegram_ids\":[7],"
             "\"starts_at\":\"2030-03-04T10:00:00Z\",\"duration_minutes\":60}",
             group);

    stop(D_STUDENTS);
    expect_call_problem("POST", "/lessons", body, TEACHER, 503, "students-service");
    start(D_STUDENTS);
    stop(D_GROUPS);
    expect_call_problem("POST", "/lessons", body, TEACHER, 503, "groups-service");
    start(D_GROUPS);
    stop(D_TEACHERS);
    expect_call_problem("POST", "/lessons", body, TEACHER, 503, "teachers-service");
    start(D_TEACHERS);
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM lessons"), 0);

    /* All back: it goes through. */
    cr_expect_eq(create_lesson(TEACHER, body, NULL), 201);
    free(group);
}

Test(calendar, outbox_delivers_each_notification_exactly_once_after_notification_service_returns)
{
    make_teacher(TEACHER);
    make_student(7);
    make_student(8);
    stop(D_NOTIFICATION);

    char *id = lesson_at("2030-03-04T10:00:00Z", "7, 8");
    /* Recorded, and at least one delivery attempt failed while the receiver was away. */
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"), 2);
    for (int waited = 0; waited < 5000; waited += 100) {
        if (sql_count(D_CALENDAR, "SELECT count(*) FROM outbox WHERE attempts > 0") == 2)
            break;
        sleep_ms(100);
    }
    cr_expect_eq(
        sql_count(D_CALENDAR, "SELECT count(*) FROM outbox WHERE attempts > 0 AND delivered_at IS NULL"), 2);

    start(D_NOTIFICATION);
    cr_expect(wait_notifications(7, "lesson_scheduled", 1, 20000));
    cr_expect(wait_notifications(8, "lesson_scheduled", 1, 20000));
    cr_expect(wait_outbox_drained(5000));

    /* Deliver everything again, as after a lost acknowledgement: the idempotency keys make the
     * receiver keep one notification each. */
    free(lst_pg_admin_exec(dbnames[D_CALENDAR],
                           "UPDATE outbox SET delivered_at = NULL, next_attempt_at = now()"));
    cr_expect(wait_outbox_drained(10000));
    cr_expect_eq(notification_count(7, "lesson_scheduled"), 1);
    cr_expect_eq(notification_count(8, "lesson_scheduled"), 1);
    cr_expect_eq(sql_count(D_NOTIFICATION, "SELECT count(*) FROM notifications"), 2);
    free(id);
}

/* ======================================================================== changes */

Test(calendar, cancel_and_reschedule_notify_participants)
{
    make_teacher(TEACHER);
    make_student(7);
    free(lesson_at("2030-03-04T12:00:00Z", ""));
    char *id = lesson_at("2030-03-04T10:00:00Z", "7");
    char path[128];
    lst_resp_t resp;

    snprintf(path, sizeof(path), "/lessons/%s/reschedule", id);
    expect_call_problem("POST", path, "{\"starts_at\":\"2030-03-04T11:00:00Z\"}", "7", 403, NULL);
    /* Into the other lesson: 409 naming it. */
    expect_call_problem("POST", path, "{\"starts_at\":\"2030-03-04T11:30:00Z\"}", TEACHER, 409,
                        "already has lesson");
    expect_call_problem("POST", path, "{\"starts_at\":\"tomorrow\"}", TEACHER, 400, "starts_at");
    /* Moving it within its own old time is no conflict with itself. */
    call(&resp, "POST", path, "{\"starts_at\":\"2030-03-04T10:30:00Z\",\"duration_minutes\":90}", TEACHER);
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "version")), 2);
    cr_expect_str_eq(lst_str_field(resp.json, "ends_at"), "2030-03-04T12:00:00Z");
    lst_resp_free(&resp);
    cr_expect(wait_notifications(7, "lesson_rescheduled", 1, 15000));

    snprintf(path, sizeof(path), "/lessons/%s/cancel", id);
    expect_call_problem("POST", path, "{\"reason\":\"ill\"}", "7", 403, NULL);
    call(&resp, "POST", path, "{\"reason\":\"ill\"}", TEACHER);
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "status"), "cancelled");
    lst_resp_free(&resp);
    expect_call_problem("POST", path, NULL, TEACHER, 409, "already cancelled");
    snprintf(path, sizeof(path), "/lessons/%s/reschedule", id);
    expect_call_problem("POST", path, "{\"starts_at\":\"2030-03-04T08:00:00Z\"}", TEACHER, 409, "cancelled");
    cr_expect(wait_notifications(7, "lesson_cancelled", 1, 15000));
    cr_expect_eq(notification_count(7, "lesson_scheduled"), 1);

    json_object *list = notifications_of(7);
    cr_assert_not_null(list);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *n = json_object_array_get_idx(list, i);
        if (strcmp(lst_str_field(n, "type"), "lesson_rescheduled") == 0)
            cr_expect_str_eq(lst_str_field(lst_field(n, "params"), "old_starts_at"), "2030-03-04T10:00:00Z");
        if (strcmp(lst_str_field(n, "type"), "lesson_cancelled") == 0)
            cr_expect_str_eq(lst_str_field(lst_field(n, "params"), "reason"), "ill");
    }
    json_object_put(list);
    cr_expect_eq(sql_count(D_CALENDAR,
                           "SELECT count(*) FROM audit_log WHERE entity_id = '%s'"
                           " AND action IN ('lesson.reschedule', 'lesson.cancel')",
                           id),
                 2);
    expect_call_problem("POST", "/lessons/00000000-0000-4000-8000-000000000000/cancel", NULL, TEACHER, 404,
                        NULL);
    free(id);
}

Test(calendar, attendance_is_marked_by_the_teacher_only_for_participants)
{
    make_teacher(TEACHER);
    make_student(7);
    make_student(8);
    /* Started ten minutes ago: attendance is open from the start. */
    char started[32];
    time_in(started, -600);
    char *id = lesson_at(started, "7, 8");
    char path[160];
    lst_resp_t resp;

    snprintf(path, sizeof(path), "/lessons/%s/attendance/7", id);
    call(&resp, "PUT", path, "{\"status\":\"late\"}", TEACHER);
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "status"), "late");
    cr_expect_eq(json_object_get_int64(lst_field(resp.json, "student_telegram_id")), 7);
    cr_expect_eq(json_object_get_int64(lst_field(resp.json, "marked_by")), 500);
    lst_resp_free(&resp);
    /* Changed by an admin. */
    call_as(&resp, D_CALENDAR, "PUT", path, "{\"status\":\"present\"}", ADMIN, "admin");
    cr_expect_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    expect_call_problem("PUT", path, "{\"status\":\"present\"}", "7", 403, NULL);
    expect_call_problem("PUT", path, "{\"status\":\"sleeping\"}", TEACHER, 400, "status");
    expect_call_problem("PUT", path, "{\"status\":\"present\"}", NULL, 400, NULL);
    snprintf(path, sizeof(path), "/lessons/%s/attendance/9", id);
    expect_call_problem("PUT", path, "{\"status\":\"present\"}", TEACHER, 404, "not a participant");

    snprintf(path, sizeof(path), "/lessons/%s", id);
    call(&resp, "GET", path, NULL, NULL);
    cr_expect_eq(resp.status, 200);
    json_object *attendance = lst_field(resp.json, "attendance");
    cr_assert_eq(json_object_array_length(attendance), 1, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(attendance, 0), "status"), "present");
    cr_expect_eq(json_object_get_int64(lst_field(json_object_array_get_idx(attendance, 0), "marked_by")),
                 900);
    lst_resp_free(&resp);
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM audit_log WHERE action = 'lesson.attendance'"),
                 2);
    free(id);
}

Test(calendar, attendance_is_open_from_the_start_until_the_window_after_the_end)
{
    make_teacher(TEACHER);
    make_student(7);
    char at[32], path[160];
    /* Before its start: 409. */
    time_in(at, 3600);
    char *future = lesson_at(at, "7");
    snprintf(path, sizeof(path), "/lessons/%s/attendance/7", future);
    expect_call_problem("PUT", path, "{\"status\":\"present\"}", TEACHER, 409, "has not started yet");
    /* Ended 49 hours ago, past ATTENDANCE_WINDOW_H (48 by default): 409, also for an admin. */
    time_in(at, -50 * 3600);
    char *old = lesson_at(at, "7");
    snprintf(path, sizeof(path), "/lessons/%s/attendance/7", old);
    expect_call_problem("PUT", path, "{\"status\":\"present\"}", TEACHER, 409,
                        "until 48 hours after its end");
    lst_resp_t resp;
    call_as(&resp, D_CALENDAR, "PUT", path, "{\"status\":\"present\"}", ADMIN, "admin");
    lst_expect_problem(&resp, 409, "48 hours");
    lst_resp_free(&resp);
    /* Ended 47 hours ago: still open. */
    time_in(at, -48 * 3600);
    char *recent = lesson_at(at, "7");
    snprintf(path, sizeof(path), "/lessons/%s/attendance/7", recent);
    call(&resp, "PUT", path, "{\"status\":\"absent\"}", TEACHER);
    cr_expect_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    /* Refusals write nothing. */
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM lesson_attendance"), 1);
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM audit_log WHERE action = 'lesson.attendance'"),
                 1);
    free(future);
    free(old);
    free(recent);
}

/* GET /lessons/upcoming?… : the ids of the page's lessons, in order, into ids (n at most), the "next"
 * cursor (malloc'ed, NULL when null) into *next; returns the number of lessons. */
static size_t upcoming(const char *query, char ids[][40], size_t n, char **next, json_object **first)
{
    char path[512];
    snprintf(path, sizeof(path), "/lessons/upcoming?%s", query);
    lst_resp_t resp;
    call(&resp, "GET", path, NULL, NULL);
    cr_assert_eq(resp.status, 200, "%s: %d %.300s", path, resp.status, resp.body);
    json_object *lessons = lst_field(resp.json, "lessons");
    size_t got = json_object_array_length(lessons);
    for (size_t i = 0; i < got && i < n; i++)
        snprintf(ids[i], 40, "%s", lst_str_field(json_object_array_get_idx(lessons, i), "id"));
    const char *cursor = lst_str_field(resp.json, "next");
    *next = cursor != NULL ? strdup(cursor) : NULL;
    cr_expect(cursor != NULL || json_object_is_type(lst_field(resp.json, "next"), json_type_null), "%.300s",
              resp.body);
    if (first != NULL)
        *first = got > 0 ? json_object_get(json_object_array_get_idx(lessons, 0)) : NULL;
    lst_resp_free(&resp);
    return got;
}

Test(calendar, upcoming_lessons_are_scheduled_ones_in_start_order_with_participants_by_cursor)
{
    make_teacher(TEACHER);
    make_teacher(TEACHER_2);
    make_student(7);
    make_student(8);
    /* Two at the same time (ordered by id), one a day later, one cancelled, one past `to`. */
    char *a = lesson_at("2030-04-01T10:00:00Z", "7, 8"), *b;
    cr_assert_eq(create_lesson(TEACHER_2,
                               "{\"teacher_telegram_id\":" TEACHER_2 ",\"student_telegram_ids\":[7],"
                               "\"starts_at\":\"2030-04-01T10:00:00Z\",\"duration_minutes\":60}",
                               &b),
                 201);
    char *c = lesson_at("2030-04-02T10:00:00Z", "");
    char *cancelled = lesson_at("2030-04-02T12:00:00Z", "8");
    char *late = lesson_at("2030-04-04T10:00:00Z", "8");
    char path[160];
    lst_resp_t resp;
    snprintf(path, sizeof(path), "/lessons/%s/cancel", cancelled);
    call(&resp, "POST", path, NULL, TEACHER);
    cr_assert_eq(resp.status, 200);
    lst_resp_free(&resp);

    const char *first_two[] = {strcmp(a, b) < 0 ? a : b, strcmp(a, b) < 0 ? b : a};
    char ids[4][40], *next, query[300];
    json_object *first;
    const char *window = "from=2030-04-01T00:00:00Z&to=2030-04-04T00:00:00Z";
    snprintf(query, sizeof(query), "%s&limit=2", window);
    cr_assert_eq(upcoming(query, ids, 4, &next, &first), 2);
    cr_expect_str_eq(ids[0], first_two[0]);
    cr_expect_str_eq(ids[1], first_two[1]);
    cr_assert_not_null(next, "a full page has a next cursor");
    /* What a reminder needs: teacher, time, version, topic and the participants. */
    cr_expect_str_eq(lst_str_field(first, "starts_at"), "2030-04-01T10:00:00Z");
    cr_expect_eq(json_object_get_int(lst_field(first, "version")), 1);
    cr_expect_str_eq(lst_str_field(first, "topic"), first_two[0] == a ? "Past simple" : "");
    json_object *participants = lst_field(first, "participants");
    cr_expect_eq(json_object_array_length(participants), first_two[0] == a ? 2 : 1);
    cr_expect_eq(int_at(participants, 0), 7);
    cr_expect_eq(json_object_get_int64(lst_field(first, "teacher_telegram_id")),
                 first_two[0] == a ? 500 : 501);
    json_object_put(first);

    /* The rest, from the cursor: the cancelled lesson and the one past `to` are not listed. */
    snprintf(query, sizeof(query), "%s&limit=2&after=%s", window, next);
    free(next);
    cr_assert_eq(upcoming(query, ids, 4, &next, NULL), 1);
    cr_expect_str_eq(ids[0], c);
    cr_expect_null(next, "a short page is the last");
    /* A lesson moved behind the cursor is read at its new time, with its new version. */
    snprintf(path, sizeof(path), "/lessons/%s/reschedule", late);
    call(&resp, "POST", path, "{\"starts_at\":\"2030-04-03T10:00:00Z\"}", TEACHER);
    cr_assert_eq(resp.status, 200, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    snprintf(query, sizeof(query), "%s&after=2030-04-02T10:00:00Z,%s", window, c);
    cr_assert_eq(upcoming(query, ids, 4, &next, &first), 1);
    cr_expect_str_eq(ids[0], late);
    cr_expect_eq(json_object_get_int(lst_field(first, "version")), 2);
    json_object_put(first);
    free(next);

    /* from defaults to now: every lesson here is ahead, and the default page holds them all. */
    cr_expect_eq(upcoming("to=2030-04-03T00:00:00Z", ids, 4, &next, NULL), 3);
    free(next);

    expect_call_problem("GET", "/lessons/upcoming?after=nonsense", NULL, NULL, 400, "after");
    expect_call_problem("GET", "/lessons/upcoming?after=2030-04-02T10:00:00Z", NULL, NULL, 400, "after");
    expect_call_problem("GET", "/lessons/upcoming?limit=0", NULL, NULL, 400, "limit");
    expect_call_problem("GET", "/lessons/upcoming?limit=101", NULL, NULL, 400, "limit");
    expect_call_problem("GET", "/lessons/upcoming?from=tomorrow", NULL, NULL, 400, "from");
    free(a);
    free(b);
    free(c);
    free(cancelled);
    free(late);
}

/* ======================================================================== reads */

static void expect_lessons(const char *query, const char *const *ids, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "/lessons?%s", query);
    lst_resp_t resp;
    call(&resp, "GET", path, NULL, NULL);
    cr_assert_eq(resp.status, 200, "%s: %d %.300s", path, resp.status, resp.body);
    json_object *lessons = lst_field(resp.json, "lessons");
    cr_expect_eq(json_object_array_length(lessons), n, "%s: %.600s", path, resp.body);
    for (size_t i = 0; i < n && i < json_object_array_length(lessons); i++)
        cr_expect_str_eq(lst_str_field(json_object_array_get_idx(lessons, i), "id"), ids[i], "%s: lesson %zu",
                         path, i);
    lst_resp_free(&resp);
}

Test(calendar, reads_by_person_teacher_student_and_group_in_time_order_and_paginated)
{
    make_teacher(TEACHER);
    make_teacher(TEACHER_2);
    make_student(7);
    long long members[] = {7, 8};
    char *group = make_group(TEACHER, members, 2);
    char body[512];

    /* Created out of time order. */
    char *c = lesson_at("2030-03-06T10:00:00Z", "7");
    char *a = lesson_at("2030-03-04T10:00:00Z", "");
    snprintf(body, sizeof(body),
             "{\"teacher_telegram_id\":" TEACHER
             ",\"group_id\":\"%s\",\"starts_at\":\"2030-03-05T10:00:00Z\","
             "\"duration_minutes\":60}",
             group);
    char *b;
    cr_assert_eq(create_lesson(TEACHER, body, &b), 201);
    /* Student 7 also learns with the other teacher. */
    char *d;
    cr_assert_eq(create_lesson(TEACHER_2,
                               "{\"teacher_telegram_id\":" TEACHER_2 ",\"student_telegram_ids\":[7],"
                               "\"starts_at\":\"2030-03-05T10:00:00Z\",\"duration_minutes\":60}",
                               &d),
                 201);

    const char *teacher_all[] = {a, b, c};
    expect_lessons("teacher_id=" TEACHER, teacher_all, 3);
    expect_lessons("teacher_id=" TEACHER "&limit=2", teacher_all, 2);
    const char *teacher_page2[] = {c};
    expect_lessons("teacher_id=" TEACHER "&limit=2&offset=2", teacher_page2, 1);
    /* Time order; at equal starts_at, by id. */
    const char *student_all[] = {strcmp(b, d) < 0 ? b : d, strcmp(b, d) < 0 ? d : b, c};
    expect_lessons("student_id=7", student_all, 3);
    expect_lessons("telegram_id=7", student_all, 3);
    const char *person_teacher[] = {a, b, c};
    expect_lessons("telegram_id=" TEACHER, person_teacher, 3);
    char query[256];
    snprintf(query, sizeof(query), "group_id=%s", group);
    const char *group_all[] = {b};
    expect_lessons(query, group_all, 1);
    /* [from, to): from inclusive, to exclusive; offsets like +03:00 must be %2B-encoded, but a bare
     * '+' (decoded to a space) is understood too. */
    const char *range[] = {b};
    expect_lessons("teacher_id=" TEACHER "&from=2030-03-05T10:00:00Z&to=2030-03-06T10:00:00Z", range, 1);
    expect_lessons("teacher_id=" TEACHER "&from=2030-03-05T13:00:00%2B03:00&to=2030-03-06T13:00:00+03:00",
                   range, 1);
    expect_lessons("teacher_id=" TEACHER "&from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z", NULL, 0);

    /* status filter: cancel c. */
    char path[128];
    snprintf(path, sizeof(path), "/lessons/%s/cancel", c);
    lst_resp_t resp;
    call(&resp, "POST", path, NULL, TEACHER);
    cr_expect_eq(resp.status, 200);
    lst_resp_free(&resp);
    const char *cancelled[] = {c};
    expect_lessons("teacher_id=" TEACHER "&status=cancelled", cancelled, 1);
    const char *scheduled[] = {a, b};
    expect_lessons("teacher_id=" TEACHER "&status=scheduled", scheduled, 2);

    /* Default from is now: a lesson in the past is not listed. */
    cr_assert_eq(create_lesson(TEACHER,
                               "{\"teacher_telegram_id\":" TEACHER ",\"starts_at\":\"2020-01-01T10:00:00Z\","
                               "\"duration_minutes\":60}",
                               NULL),
                 201);
    expect_lessons("teacher_id=" TEACHER "&status=scheduled", scheduled, 2);
    free(a);
    free(b);
    free(c);
    free(d);
    free(group);
}

/* ======================================================================== bad input */

Test(calendar, bad_input_is_400_and_changes_nothing)
{
    make_teacher(TEACHER);
    const char *bad_bodies[] = {
        "{\"teacher_telegram_id\":" TEACHER ",\"starts_at\":\"2030-03-04T10:00:00Z\"",
        "[1]",
        "{\"teacher_telegram_id\":" TEACHER ",\"starts_at\":\"2030-03-04 10:00\",\"duration_minutes\":60}",
        "{\"teacher_telegram_id\":" TEACHER
        ",\"starts_at\":\"2030-02-30T10:00:00Z\",\"duration_minutes\":60}",
        "{\"teacher_telegram_id\":" TEACHER
        ",\"starts_at\":\"2030-03-04T10:00:00Z\",\"duration_minutes\":10}",
        "{\"teacher_telegram_id\":" TEACHER
        ",\"starts_at\":\"2030-03-04T10:00:00Z\",\"duration_minutes\":481}",
        "{\"teacher_telegram_id\":" TEACHER
        ",\"starts_at\":\"2030-03-04T10:00:00Z\",\"duration_minutes\":\"60\"}",
        "{\"teacher_telegram_id\":-5,\"starts_at\":\"2030-03-04T10:00:00Z\",\"duration_minutes\":60}",
        "{\"teacher_telegram_id\":99999999999999999999,\"starts_at\":\"2030-03-04T10:00:00Z\",\"duration_"
        "minutes\":60}",
        "{\"teacher_telegram_id\":" TEACHER
        ",\"group_id\":\"not-a-uuid\",\"starts_at\":\"2030-03-04T10:00:00Z\","
        "\"duration_minutes\":60}",
        "{\"teacher_telegram_id\":" TEACHER
        ",\"student_telegram_ids\":[7,\"8\"],\"starts_at\":\"2030-03-04T10:00:00Z\","
        "\"duration_minutes\":60}",
        "{\"teacher_telegram_id\":" TEACHER
        ",\"student_telegram_ids\":[0],\"starts_at\":\"2030-03-04T10:00:00Z\","
        "\"duration_minutes\":60}",
        "{\"teacher_telegram_id\":" TEACHER ",\"starts_at\":\"2030-03-04T10:00:00Z\",\"duration_minutes\":60,"
        "\"colour\":\"red\"}",
    };
    for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++)
        expect_call_problem("POST", "/lessons", bad_bodies[i], TEACHER, 400, NULL);

    /* A topic over 500 characters (here 501 two-byte ones). */
    char body[4096];
    int off = snprintf(body, sizeof(body),
                       "{\"teacher_telegram_id\":" TEACHER ",\"starts_at\":\"2030-03-04T10:00:00Z\","
                       "\"duration_minutes\":60,\"topic\":\"");
    for (int i = 0; i < 501; i++)
        off += snprintf(body + off, sizeof(body) - (size_t)off, "ж");
    snprintf(body + off, sizeof(body) - (size_t)off, "\"}");
    expect_call_problem("POST", "/lessons", body, TEACHER, 400, "topic");
    /* 101 students. */
    off = snprintf(body, sizeof(body), "{\"teacher_telegram_id\":" TEACHER ",\"student_telegram_ids\":[");
    for (int i = 1; i <= 101; i++)
        off += snprintf(body + off, sizeof(body) - (size_t)off, "%s%d", i > 1 ? "," : "", i);
    snprintf(body + off, sizeof(body) - (size_t)off,
             "],\"starts_at\":\"2030-03-04T10:00:00Z\",\"duration_minutes\":60}");
    expect_call_problem("POST", "/lessons", body, TEACHER, 400, "student_telegram_ids");

    expect_call_problem("GET", "/lessons/not-a-uuid", NULL, NULL, 400, NULL);
    expect_call_problem("GET", "/lessons/00000000-0000-4000-8000-000000000000", NULL, NULL, 404, NULL);
    expect_call_problem("GET", "/lessons", NULL, NULL, 400, "exactly one");
    expect_call_problem("GET", "/lessons?teacher_id=5&student_id=7", NULL, NULL, 400, "exactly one");
    expect_call_problem("GET", "/lessons?teacher_id=abc", NULL, NULL, 400, "teacher_id");
    expect_call_problem("GET", "/lessons?teacher_id=-1", NULL, NULL, 400, "teacher_id");
    expect_call_problem("GET", "/lessons?group_id=123", NULL, NULL, 400, "group_id");
    expect_call_problem("GET", "/lessons?teacher_id=5&from=yesterday", NULL, NULL, 400, "from");
    expect_call_problem("GET", "/lessons?teacher_id=5&to=2030-13-01T00:00:00Z", NULL, NULL, 400, "to");
    expect_call_problem("GET", "/lessons?teacher_id=5&status=postponed", NULL, NULL, 400, "status");
    expect_call_problem("GET", "/lessons?teacher_id=5&limit=1001", NULL, NULL, 400, "limit");
    expect_call_problem("POST", "/lessons/not-a-uuid/cancel", NULL, TEACHER, 400, NULL);
    expect_call_problem("PUT", "/teachers/abc/schedule", "{\"timezone\":\"UTC\",\"slots\":[]}", TEACHER, 400,
                        NULL);

    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM lessons"), 0);
    cr_expect_eq(sql_count(D_CALENDAR, "SELECT count(*) FROM audit_log"), 0);
}

Test(calendar, internal_token_is_required)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/lessons?teacher_id=5", daemons[D_CALENDAR].base_url);
    lst_resp_t resp;
    const char *headers[] = {"Authorization: Bearer wrong-token-wrong-token", NULL};
    lst_http(&resp, "GET", url, headers, NULL);
    lst_expect_problem(&resp, 401, NULL);
    lst_resp_free(&resp);
}
