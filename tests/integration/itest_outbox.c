/*
 * The outbox after a crash and without idle polling (shared/outbox.h), end to end: calendar-service
 * delivering to notification-service, each on its own fresh database, with teachers-, students- and
 * groups-service behind calendar when a test creates lessons.
 *
 * What a user relies on: a service killed with SIGKILL while delivering, or in the middle of writes,
 * delivers every committed write's notifications within seconds of its restart, exactly once; a row
 * is delivered at once although the poll interval is long (NOTIFY), and still when the listening
 * connection is gone (polling); a key with many rows pending drains quickly, in order.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
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

/* How soon after a restart every notification must have arrived. */
#define RECOVERY_MS 6000

enum { S_TEACHERS, S_STUDENTS, S_GROUPS, S_NOTIFICATION, S_CALENDAR, S_COUNT };
static lst_service_t svc[S_COUNT];
static char calendar_env[5][160]; /* the URLs calendar is started with, and its poll interval */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* (Re)starts calendar-service on its database with the URLs and poll interval chosen at setup. */
static void start_calendar(void)
{
    const char *env[] = {calendar_env[0], calendar_env[1], calendar_env[2],
                         calendar_env[3], calendar_env[4], NULL};
    lst_service_start(&svc[S_CALENDAR], CALENDAR, "ob_calendar", env);
}

/* notification-service and calendar-service (polling every poll_ms), and the three services
 * calendar asks when it creates lessons if with_lessons. One token for all. */
static void start_services(int with_lessons, int poll_ms)
{
    memset(svc, 0, sizeof(svc));
    char *token = lst_random_hex(24);
    for (int i = 0; i < S_COUNT; i++)
        svc[i].token = strdup(token);
    free(token);
    if (with_lessons) {
        lst_service_start(&svc[S_TEACHERS], TEACHERS, "ob_teachers", NULL);
        lst_service_start(&svc[S_STUDENTS], STUDENTS, "ob_students", NULL);
        char students_url[128];
        snprintf(students_url, sizeof(students_url), "STUDENTS_URL=%s", svc[S_STUDENTS].daemon.base_url);
        const char *genv[] = {students_url, "OUTBOX_POLL_MS=200", NULL};
        lst_service_start(&svc[S_GROUPS], GROUPS, "ob_groups", genv);
    }
    lst_service_start(&svc[S_NOTIFICATION], NOTIFICATION, "ob_notification", NULL);
    /* Without lessons, nothing listens where the first three would be: calendar never calls them. */
    const char *names[3] = {"TEACHERS_URL", "STUDENTS_URL", "GROUPS_URL"};
    for (int i = 0; i < 3; i++)
        snprintf(calendar_env[i], sizeof(calendar_env[i]), "%s=%s", names[i],
                 with_lessons ? svc[i].daemon.base_url : "http://127.0.0.1:9");
    snprintf(calendar_env[3], sizeof(calendar_env[3]), "NOTIFICATION_URL=%s",
             svc[S_NOTIFICATION].daemon.base_url);
    snprintf(calendar_env[4], sizeof(calendar_env[4]), "OUTBOX_POLL_MS=%d", poll_ms);
    start_calendar();
}

static lst_service_t replica; /* a second calendar-service on the same database */

static void teardown(void)
{
    /* A clean exit also means no leak was found when the daemons run under ASan. */
    if (replica.token != NULL)
        lst_service_destroy(&replica);
    for (int i = S_COUNT - 1; i >= 0; i--)
        if (svc[i].token != NULL)
            lst_service_destroy(&svc[i]);
}

TestSuite(outbox, .fini = teardown, .timeout = 240);

/* ---- helpers ---- */

static char *sql_text(int which, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *sql_text(int which, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return lst_pg_admin_exec(svc[which].dbname, sql);
}

static long long sql_count(int which, const char *sql)
{
    char *v = sql_text(which, "%s", sql);
    long long n = atoll(v);
    free(v);
    return n;
}

/* Outbox rows some round holds right now (row locks of an open claim). */
static long long locked_rows(void)
{
    return sql_count(S_CALENDAR, "WITH free AS (SELECT id FROM outbox FOR UPDATE SKIP LOCKED)"
                                 " SELECT (SELECT count(*) FROM outbox) - (SELECT count(*) FROM free)");
}

/* Waits until notification-service holds `want` notifications; returns the ms waited, or -1 after
 * ms. */
static int wait_notifications(long long want, int ms)
{
    double t0 = now_ms();
    for (;;) {
        double waited = now_ms() - t0;
        if (sql_count(S_NOTIFICATION, "SELECT count(*) FROM notifications") == want)
            return (int)waited;
        if (waited >= ms)
            return -1;
        sleep_ms(50);
    }
}

/* Every outbox row of calendar delivered, and notification-service holding exactly one notification
 * per row: the same idempotency keys, none missing, none twice. */
static void expect_each_row_delivered_once(void)
{
    long long rows = sql_count(S_CALENDAR, "SELECT count(*) FROM outbox");
    cr_expect_eq(sql_count(S_CALENDAR, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"), 0);
    cr_expect_eq(sql_count(S_NOTIFICATION, "SELECT count(*) FROM notifications"), rows);
    cr_expect_eq(sql_count(S_NOTIFICATION, "SELECT count(DISTINCT idempotency_key) FROM notifications"),
                 rows);
    const char *keys = "SELECT md5(string_agg(idempotency_key, ',' ORDER BY idempotency_key)) FROM %s";
    char *sent = sql_text(S_CALENDAR, keys, "outbox");
    char *got = sql_text(S_NOTIFICATION, keys, "notifications");
    cr_expect_str_eq(got, sent, "the notifications are not the outbox's rows");
    free(sent);
    free(got);
}

static void put_as(int which, const char *path, const char *body, const char *actor)
{
    lst_resp_t resp;
    lst_call_as(&resp, svc[which].daemon.base_url, svc[which].token, "PUT", path, body, actor, NULL);
    cr_assert_eq(resp.status, 201, "PUT %s: %d %.300s", path, resp.status, resp.body);
    lst_resp_free(&resp);
}

/* Teachers 500.. and the students 11..14 every lesson here takes. */
static void make_people(int teachers)
{
    char path[64], who[24];
    for (int i = 0; i < teachers; i++) {
        snprintf(who, sizeof(who), "%d", 500 + i);
        snprintf(path, sizeof(path), "/teachers/%s", who);
        put_as(S_TEACHERS, path, "{\"bio\":\"teaches\"}", who);
    }
    for (int i = 11; i <= 14; i++) {
        snprintf(who, sizeof(who), "%d", i);
        snprintf(path, sizeof(path), "/students/%s", who);
        put_as(S_STUDENTS, path, "{\"goals\":\"speak\"}", who);
    }
}

/* POST /lessons for teacher 500+teacher, `hour` hours after 2031-01-01T00:00Z, with the four
 * students (four outbox rows, one per student's ordering key). Returns the status (0: no answer). */
static int create_lesson(int teacher, int hour)
{
    time_t at = 1924992000 + (time_t)hour * 3600; /* 2031-01-01T00:00:00Z */
    struct tm tm;
    gmtime_r(&at, &tm);
    char starts[32], body[256], actor[16];
    strftime(starts, sizeof(starts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(actor, sizeof(actor), "%d", 500 + teacher);
    snprintf(body, sizeof(body),
             "{\"teacher_telegram_id\":%s,\"starts_at\":\"%s\",\"duration_minutes\":30,"
             "\"topic\":\"Outbox\",\"student_telegram_ids\":[11,12,13,14]}",
             actor, starts);
    lst_resp_t resp;
    int status = lst_call_as(&resp, svc[S_CALENDAR].daemon.base_url, svc[S_CALENDAR].token, "POST",
                             "/lessons", body, actor, NULL);
    lst_resp_free(&resp);
    return status;
}

/* n rows for recipient rcpt inserted into calendar's outbox by one statement, behind the service's
 * back (no kick): keys "<tag>:1" .. "<tag>:n", one ordering key. */
static void insert_rows(const char *tag, int n, int rcpt)
{
    free(sql_text(
        S_CALENDAR,
        "INSERT INTO outbox (target, method, path, body, idempotency_key, ordering_key)"
        " SELECT 'notification', 'POST', '/notifications',"
        "  '{\"recipient_telegram_id\":%d,\"type\":\"lesson_scheduled\",\"params\":{\"n\":' || i || '}}',"
        "  '%s:' || i, 'recipient:%d' FROM generate_series(1, %d) AS i",
        rcpt, tag, rcpt, n));
}

/* The calendar database's backend that LISTENs for the outbox, 0 when none. */
static long long listen_backend(void)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT COALESCE(max(pid), 0) FROM pg_stat_activity WHERE datname = '%s'"
             " AND application_name = 'calendar-service:listen' AND query = 'LISTEN ls_outbox'",
             svc[S_CALENDAR].dbname);
    return sql_count(S_CALENDAR, sql);
}

/* Waits (at most 5 s) until calendar listens, so that its start-up round is over too. */
static long long wait_listening(void)
{
    long long pid = 0;
    for (int waited = 0; waited < 5000 && (pid = listen_backend()) == 0; waited += 50)
        sleep_ms(50);
    cr_assert_gt(pid, 0, "no connection listens on ls_outbox");
    return pid;
}

static double wakeups(const char *source)
{
    char series[96];
    snprintf(series, sizeof(series), "ls_outbox_wakeups_total{source=\"%s\"}", source);
    return lst_metric(svc[S_CALENDAR].daemon.base_url, svc[S_CALENDAR].token, series);
}

/* ---- a SIGKILL while delivering ---- */

Test(outbox, killed_while_delivering_every_notification_arrives_soon_after_the_restart_once)
{
    start_services(1, 200);
    make_people(1);
    /* The receiver hangs: the first round's calls stay in flight and its rows claimed, and every
     * later row of the four students queues behind them (one ordering key per student). */
    cr_assert_eq(kill(svc[S_NOTIFICATION].daemon.pid, SIGSTOP), 0);
    for (int i = 0; i < 25; i++)
        cr_assert_eq(create_lesson(0, i), 201);
    cr_assert_eq(sql_count(S_CALENDAR, "SELECT count(*) FROM outbox"), 100);
    long long locked = 0;
    for (int waited = 0; waited < 3000 && locked == 0; waited += 50) {
        locked = locked_rows();
        sleep_ms(50);
    }
    cr_assert_gt(locked, 0, "no round was delivering when the service was killed");

    lst_daemon_kill(&svc[S_CALENDAR].daemon);
    /* The claims died with the process: nothing is held while it is down. */
    for (int waited = 0; waited < 2000 && locked > 0; waited += 50) {
        sleep_ms(50);
        locked = locked_rows();
    }
    cr_expect_eq(locked, 0, "claims outlived the process that made them");
    cr_assert_eq(kill(svc[S_NOTIFICATION].daemon.pid, SIGCONT), 0);
    sleep_ms(1000);

    start_calendar();
    int waited = wait_notifications(100, RECOVERY_MS);
    cr_expect_geq(waited, 0, "not every notification arrived within %d ms of the restart (%lld of 100)",
                  RECOVERY_MS, sql_count(S_NOTIFICATION, "SELECT count(*) FROM notifications"));
    cr_log_info("100 notifications %d ms after the restart", waited);
    sleep_ms(300); /* a duplicate would show up now */
    expect_each_row_delivered_once();
}

/* ---- a SIGKILL in the middle of writes ---- */

#define WRITERS 4

typedef struct {
    int teacher;
    int created; /* lessons answered 201 */
    int cut;     /* requests without an answer (the service died under them) */
} writer_t;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; i < 400; i++) {
        int status = create_lesson(w->teacher, w->teacher * 1000 + i);
        if (status == 201) {
            w->created++;
        } else {
            w->cut += status == 0;
            break;
        }
    }
    return NULL;
}

Test(outbox, killed_in_the_middle_of_writes_each_committed_write_notifies_once)
{
    start_services(1, 200);
    make_people(WRITERS);
    writer_t writers[WRITERS];
    pthread_t threads[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        writers[i] = (writer_t){.teacher = i};
        cr_assert_eq(pthread_create(&threads[i], NULL, writer_main, &writers[i]), 0);
    }
    /* Writes and deliveries in full flow, then the crash. */
    while (sql_count(S_CALENDAR, "SELECT count(*) FROM lessons") < 12)
        sleep_ms(20);
    lst_daemon_kill(&svc[S_CALENDAR].daemon);
    int created = 0, cut = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(threads[i], NULL);
        created += writers[i].created;
        cut += writers[i].cut;
    }
    cr_log_info("%d lessons answered 201, %d requests cut by the kill", created, cut);

    /* Every write that committed (all those answered 201, perhaps a few more) has its four rows. */
    long long lessons = sql_count(S_CALENDAR, "SELECT count(*) FROM lessons");
    cr_expect_geq(lessons, created);
    cr_expect_eq(sql_count(S_CALENDAR, "SELECT count(*) FROM outbox"), 4 * lessons);

    start_calendar();
    int waited = wait_notifications(4 * lessons, RECOVERY_MS);
    cr_expect_geq(waited, 0, "not every notification arrived within %d ms of the restart", RECOVERY_MS);
    sleep_ms(300);
    expect_each_row_delivered_once();
}

/* ---- wake-ups ---- */

Test(outbox, a_notify_wakes_the_pollers_and_polling_covers_a_lost_listening_connection)
{
    /* A minute between polls: only a NOTIFY can make a row go out at once. */
    start_services(0, 60000);
    wait_listening();
    double notified = wakeups("notify");
    insert_rows("notify", 1, 21);
    cr_expect_geq(wait_notifications(1, 2000), 0, "a row was not delivered on its NOTIFY");
    cr_expect_gt(wakeups("notify"), notified);

    /* The listening connection is lost: the next one listens again and looks for rows at once. */
    long long pid = wait_listening();
    free(sql_text(S_CALENDAR, "SELECT pg_terminate_backend(%lld)", pid));
    insert_rows("relisten", 1, 21);
    cr_expect_geq(wait_notifications(2, 3000), 0, "a row inserted while the listener was away waited");
    cr_expect_neq(listen_backend(), pid);

    /* The listener cannot come back (its role may not open connections any more): the poll delivers. */
    cr_expect_eq(lst_daemon_stop(&svc[S_CALENDAR].daemon), 0);
    snprintf(calendar_env[4], sizeof(calendar_env[4]), "OUTBOX_POLL_MS=1000");
    start_calendar();
    wait_listening();
    char *role = sql_text(S_CALENDAR, "SELECT datdba::regrole FROM pg_database WHERE datname = '%s'",
                          svc[S_CALENDAR].dbname);
    free(sql_text(S_CALENDAR, "ALTER ROLE \"%s\" CONNECTION LIMIT 0", role));
    free(sql_text(S_CALENDAR, "SELECT pg_terminate_backend(%lld)", listen_backend()));
    double polls = wakeups("poll");
    insert_rows("polled", 1, 21);
    cr_expect_geq(wait_notifications(3, 3000), 0, "a row was not delivered by polling");
    cr_expect_eq(listen_backend(), 0, "the listener came back: this did not test polling");
    cr_expect_gt(wakeups("poll"), polls);
    free(sql_text(S_CALENDAR, "ALTER ROLE \"%s\" CONNECTION LIMIT -1", role));
    free(role);
    expect_each_row_delivered_once();
}

/* ---- draining ---- */

Test(outbox, a_burst_for_one_ordering_key_drains_at_once_in_order_across_replicas)
{
    start_services(0, 60000);
    /* Two replicas of two workers each compete for the rows. */
    replica = (lst_service_t){.token = strdup(svc[S_CALENDAR].token),
                              .conninfo = strdup(svc[S_CALENDAR].conninfo),
                              .dbname = strdup(svc[S_CALENDAR].dbname)};
    const char *env[] = {calendar_env[0], calendar_env[1], calendar_env[2],
                         calendar_env[3], calendar_env[4], NULL};
    lst_service_start(&replica, CALENDAR, "ob_calendar", env);
    wait_listening();
    double t0 = now_ms();
    insert_rows("burst", 50, 31);
    /* And 50 rows without an ordering key, which go out side by side. */
    free(sql_text(S_CALENDAR,
                  "INSERT INTO outbox (target, method, path, body, idempotency_key)"
                  " SELECT 'notification', 'POST', '/notifications',"
                  "  '{\"recipient_telegram_id\":' || (100 + i) || ',\"type\":\"lesson_scheduled\"}',"
                  "  'loose:' || i FROM generate_series(1, 50) AS i"));
    int waited = wait_notifications(100, 5000);
    cr_expect_geq(waited, 0, "100 rows, 50 of one key, took more than 5 s");
    cr_log_info("100 rows, 50 of one key, delivered in %.0f ms", now_ms() - t0);
    /* No row was claimed twice: each was sent by one attempt of one poller. */
    cr_expect_eq(sql_count(S_CALENDAR, "SELECT count(*) FROM outbox WHERE attempts <> 1"), 0);
    /* The keyed ones one at a time, in id order: notification-service stored them in that order. */
    char *order = sql_text(S_NOTIFICATION, "SELECT string_agg(idempotency_key, ',' ORDER BY created_at)"
                                           " FROM notifications WHERE idempotency_key LIKE 'burst:%%'");
    char *want = sql_text(S_NOTIFICATION, "SELECT string_agg('burst:' || i, ',' ORDER BY i)"
                                          " FROM generate_series(1, 50) AS i");
    cr_expect_str_eq(order, want);
    free(order);
    free(want);
    expect_each_row_delivered_once();
}
