/*
 * notification-service end to end: the real daemon on a fresh database of the test cluster, and a
 * fake Telegram Bot API (fake_upstream) answering /bot<token>/sendMessage.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake_upstream.h"
#include "harness.h"

#define DAEMON   "services/notification/notification-service"
#define ADMIN_ID 999

static lst_service_t svc;
static char *bot_token;
static lst_upstream_t *fake;

/* ---- the fake Bot API ---- */

static struct {
    pthread_mutex_t lock;
    int fail;  /* answer 500 instead of {"ok":true} */
    int calls; /* sendMessage requests seen */
    char last_body[2048];
    char last_auth[600];
    char last_traceparent[128];
    long long chats[64]; /* chat_id of each call, in order */
} bot = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int bot_handler(void *ud, lst_upstream_t *u, const lst_upstream_req_t *req, lst_upstream_resp_t *resp)
{
    char want[400];
    snprintf(want, sizeof(want), "/bot%s/sendMessage", bot_token);
    if (strcmp(req->path, want) != 0 || strcmp(req->method, "POST") != 0)
        return 0;
    json_object *body = json_tokener_parse(req->body);
    json_object *chat = NULL;
    if (body != NULL)
        json_object_object_get_ex(body, "chat_id", &chat);
    const char *auth = lst_upstream_req_header(req, "authorization");
    const char *traceparent = lst_upstream_req_header(req, "traceparent");
    pthread_mutex_lock(&bot.lock);
    if (bot.calls < 64)
        bot.chats[bot.calls] = chat != NULL ? json_object_get_int64(chat) : -1;
    bot.calls++;
    snprintf(bot.last_body, sizeof(bot.last_body), "%s", req->body);
    snprintf(bot.last_auth, sizeof(bot.last_auth), "%s", auth != NULL ? auth : "");
    snprintf(bot.last_traceparent, sizeof(bot.last_traceparent), "%s",
             traceparent != NULL ? traceparent : "");
    int fail = bot.fail;
    pthread_mutex_unlock(&bot.lock);
    json_object_put(body);
    if (fail)
        lst_upstream_respondf(resp, 500,
                              "{\"ok\":false,\"error_code\":500,\"description\":\"Internal Server Error\"}");
    else
        lst_upstream_respondf(resp, 200, "{\"ok\":true,\"result\":{\"message_id\":%d}}", 1);
    return 1;
}

static int bot_calls(void)
{
    pthread_mutex_lock(&bot.lock);
    int n = bot.calls;
    pthread_mutex_unlock(&bot.lock);
    return n;
}

/* ---- suite ---- */

static void setup(void)
{
    char *rnd = lst_random_hex(16);
    asprintf(&bot_token, "123456:AA%s", rnd);
    free(rnd);
    fake = lst_upstream_start();
    cr_assert_not_null(fake);
    lst_upstream_set_handler(fake, bot_handler, NULL);
    bot.fail = 0;
    bot.calls = 0;
}

static void teardown(void)
{
    lst_service_destroy(&svc);
    lst_upstream_stop(fake);
    free(bot_token);
}

TestSuite(notification, .init = setup, .fini = teardown, .timeout = 120);

/* Starts the daemon; with telegram, pointed at the fake Bot API. extra: one more "NAME=value" or NULL. */
static void start(int telegram, const char *extra)
{
    char *url = NULL, *bt = NULL, *calendar = NULL;
    const char *env[7];
    size_t n = 0;
    env[n++] = "NOTIFY_POLL_MS=100";
    /* The reminder sweep asks "calendar-service" here, the fake, which knows no such route (404):
     * no reminders, and nothing outside the test is called. */
    asprintf(&calendar, "CALENDAR_URL=%s", lst_upstream_url(fake));
    env[n++] = calendar;
    if (telegram) {
        asprintf(&url, "TELEGRAM_API_URL=%s", lst_upstream_url(fake));
        asprintf(&bt, "BOT_TOKEN=%s", bot_token);
        env[n++] = url;
        env[n++] = bt;
    }
    if (extra != NULL)
        env[n++] = extra;
    env[n] = NULL;
    lst_service_start(&svc, DAEMON, "notification", env);
    free(url);
    free(bt);
    free(calendar);
}

/* ---- helpers ---- */

static int call(lst_resp_t *resp, const char *method, const char *path, const char *body, const char *actor)
{
    return lst_call_as(resp, svc.daemon.base_url, svc.token, method, path, body, actor, NULL);
}

/* POST /notifications with the internal token and, when key is not NULL, an Idempotency-Key. */
static int post_notification(lst_resp_t *resp, const char *body, const char *key)
{
    if (key == NULL)
        return call(resp, "POST", "/notifications", body, NULL);
    char url[256], auth[600], key_header[400];
    snprintf(url, sizeof(url), "%s/notifications", svc.daemon.base_url);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.token);
    snprintf(key_header, sizeof(key_header), "Idempotency-Key: %s", key);
    const char *headers[] = {auth, key_header, NULL};
    return lst_http(resp, "POST", url, headers, body);
}

/* One request that must be refused with status, its detail containing needle (any detail when NULL). */
static void expect_refused(const char *method, const char *path, const char *body, const char *actor,
                           int status, const char *needle)
{
    lst_call_expect_problem(svc.daemon.base_url, svc.token, method, path, body, actor, status, needle);
}

static long long sql_int(const char *sql)
{
    char *v = lst_pg_admin_exec(svc.dbname, sql);
    long long n = atoll(v);
    free(v);
    return n;
}

/* Polls sql (first column of the first row) until it equals want, for at most ms; returns 1 when it did. */
static int wait_sql(const char *sql, const char *want, int ms)
{
    for (int waited = 0;; waited += 20) {
        char *v = lst_pg_admin_exec(svc.dbname, sql);
        int same = strcmp(v, want) == 0;
        free(v);
        if (same)
            return 1;
        if (waited >= ms)
            return 0;
        usleep(20 * 1000);
    }
}

/* POSTs a notification and asserts the status; returns its id (malloc'ed) or NULL when none came back. */
static char *create(const char *body, const char *key, int want_status)
{
    lst_resp_t resp;
    post_notification(&resp, body, key);
    cr_assert_eq(resp.status, want_status, "POST /notifications %s: %d %.400s", body, resp.status, resp.body);
    const char *id = lst_str_field(lst_field(resp.json, "notification"), "id");
    char *out = id != NULL ? strdup(id) : NULL;
    lst_resp_free(&resp);
    return out;
}

static void put_settings(const char *id, const char *body)
{
    char path[96];
    lst_resp_t resp;
    snprintf(path, sizeof(path), "/users/%s/notification_settings", id);
    call(&resp, "PUT", path, body, id);
    cr_assert_eq(resp.status, 200, "PUT %s %s: %d %.300s", path, body, resp.status, resp.body);
    lst_resp_free(&resp);
}

/* 1 when the daemon's log file contains s. */
static int log_contains(const char *s)
{
    FILE *f = fopen(svc.daemon.log_path, "r");
    cr_assert_not_null(f, "cannot open %s", svc.daemon.log_path);
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, s) != NULL;
    fclose(f);
    return found;
}

/* ---- creation: templates and languages ---- */

/* POSTs body; it must be created (201) in this language, with this title and text (NULL: not checked). */
static void expect_rendered(const char *body, const char *language, const char *title, const char *text)
{
    lst_resp_t resp;
    call(&resp, "POST", "/notifications", body, NULL);
    cr_assert_eq(resp.status, 201, "%.400s", resp.body);
    json_object *n = lst_field(resp.json, "notification");
    if (language != NULL)
        cr_expect_str_eq(lst_str_field(n, "language_code"), language);
    if (title != NULL)
        cr_expect_str_eq(lst_str_field(n, "title"), title);
    if (text != NULL)
        cr_expect_str_eq(lst_str_field(n, "body"), text);
    lst_resp_free(&resp);
}

Test(notification, renders_the_template_in_the_right_language)
{
    start(0, NULL);
    lst_resp_t resp;
    put_settings("101", "{\"language_code\":\"ru\"}");

    /* The recipient's setting picks Russian; placeholders come from params. */
    call(&resp, "POST", "/notifications",
         "{\"recipient_telegram_id\":101,\"type\":\"lesson_scheduled\",\"params\":{\"group_title\":\"English "
         "B1\","
         "\"topic\":\"Past Simple\",\"starts_at\":\"2030-05-01 10:00\"}}",
         NULL);
    cr_assert_eq(resp.status, 201, "%.400s", resp.body);
    json_object *n = lst_field(resp.json, "notification");
    cr_expect_str_eq(lst_str_field(n, "title"), "Новое занятие: English B1");
    cr_expect_str_eq(lst_str_field(n, "body"), "Занятие «Past Simple» назначено на 2030-05-01 10:00.");
    cr_expect_str_eq(lst_str_field(n, "language_code"), "ru");
    cr_expect_eq(json_object_get_int64(lst_field(n, "recipient_telegram_id")), 101);
    cr_expect_str_eq(lst_str_field(n, "type"), "lesson_scheduled");
    cr_expect_eq(json_object_get_boolean(lst_field(n, "is_read")), 0);
    cr_expect_str_eq(lst_str_field(lst_field(n, "params"), "topic"), "Past Simple");
    cr_expect_null(lst_field(n, "idempotency_key"));
    const char *created_at = lst_str_field(n, "created_at");
    cr_assert_not_null(created_at);
    cr_expect_eq(created_at[strlen(created_at) - 1], 'Z', "times are RFC 3339 UTC: %s", created_at);
    lst_resp_free(&resp);

    /* The request's language wins over the setting; a number is a valid parameter. */
    expect_rendered("{\"recipient_telegram_id\":101,\"type\":\"payment\",\"language_code\":\"en\","
                    "\"params\":{\"amount\":1500,\"group_title\":\"English B1\"}}",
                    "en", "Payment received", "We received your payment of 1500 for English B1.");
    /* An unknown language falls back to English; a missing placeholder renders empty; a value that
     * looks like a placeholder is not expanded again. */
    expect_rendered("{\"recipient_telegram_id\":102,\"type\":\"group_joined\",\"language_code\":\"de-AT\","
                    "\"params\":{\"group_title\":\"{{first_name}}\"}}",
                    "en", "Welcome to {{first_name}}", ", you joined the group {{first_name}}.");
    /* No settings and no language: English. */
    expect_rendered(
        "{\"recipient_telegram_id\":103,\"type\":\"registration\",\"params\":{\"first_name\":\"Anna\"}}",
        NULL, "Welcome, Anna!", NULL);

    cr_expect_eq(sql_int("SELECT count(*) FROM audit_log WHERE action = 'notification.create'"), 4);
}

Test(notification, create_refuses_bad_input)
{
    start(0, NULL);
    lst_resp_t resp;
    static const char *const bodies[][2] = {
        {"{\"type\":\"payment\"}", "recipient_telegram_id"},
        {"{\"recipient_telegram_id\":0,\"type\":\"payment\"}", "recipient_telegram_id"},
        {"{\"recipient_telegram_id\":\"5\",\"type\":\"payment\"}", "recipient_telegram_id"},
        {"{\"recipient_telegram_id\":5,\"type\":\"party\"}", "type"},
        {"{\"recipient_telegram_id\":5,\"type\":\"payment\",\"params\":[1]}", "params"},
        {"{\"recipient_telegram_id\":5,\"type\":\"payment\",\"params\":{\"a\":{\"b\":1}}}", "params.a"},
        {"{\"recipient_telegram_id\":5,\"type\":\"payment\",\"params\":{\"a\":true}}", "params.a"},
        {"{\"recipient_telegram_id\":5,\"type\":\"payment\",\"params\":{\"a b\":\"x\"}}", "params"},
        {"{\"recipient_telegram_id\":5,\"type\":\"payment\",\"language_code\":\"e\"}", "language_code"},
        {"{\"recipient_telegram_id\":5,\"type\":\"payment\",\"language_code\":\"en_US\"}", "language_code"},
        {"{\"recipient_telegram_id\":5,\"type\":\"payment\",\"colour\":\"red\"}", "colour"},
        {"{\"recipient_telegram_id\":5,", NULL},
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        expect_refused("POST", "/notifications", bodies[i][0], NULL, 400, bodies[i][1]);

    /* 33 parameters */
    char big[2048];
    size_t off =
        (size_t)snprintf(big, sizeof(big), "{\"recipient_telegram_id\":5,\"type\":\"payment\",\"params\":{");
    for (int i = 0; i < 33; i++)
        off += (size_t)snprintf(big + off, sizeof(big) - off, "%s\"k%d\":%d", i ? "," : "", i, i);
    snprintf(big + off, sizeof(big) - off, "}}");
    expect_refused("POST", "/notifications", big, NULL, 400, "at most 32");

    char key[260];
    memset(key, 'k', 201);
    key[201] = '\0';
    post_notification(&resp, "{\"recipient_telegram_id\":5,\"type\":\"payment\"}", key);
    lst_expect_problem(&resp, 400, "Idempotency-Key");
    lst_resp_free(&resp);

    /* Without the internal token. */
    char url[256];
    snprintf(url, sizeof(url), "%s/notifications", svc.daemon.base_url);
    lst_http(&resp, "POST", url, NULL, "{\"recipient_telegram_id\":5,\"type\":\"payment\"}");
    cr_expect_eq(resp.status, 401);
    lst_resp_free(&resp);

    cr_expect_eq(sql_int("SELECT count(*) FROM notifications"), 0, "a refused request stored something");
}

/* ---- idempotency ---- */

Test(notification, same_idempotency_key_gives_the_same_notification)
{
    start(0, NULL);
    const char *body =
        "{\"recipient_telegram_id\":201,\"type\":\"enrollment\",\"params\":{\"group_title\":\"A\"}}";
    char *first = create(body, "lesson:1:201", 201);
    char *again = create(body, "lesson:1:201", 200);
    cr_assert_not_null(first);
    cr_assert_not_null(again);
    cr_expect_str_eq(again, first);
    char *other = create(body, "lesson:2:201", 201);
    cr_expect_str_neq(other, first);
    char *unkeyed = create(body, NULL, 201);
    cr_expect_eq(sql_int("SELECT count(*) FROM notifications WHERE idempotency_key = 'lesson:1:201'"), 1);
    cr_expect_eq(sql_int("SELECT count(*) FROM notifications"), 3);
    cr_expect_eq(sql_int("SELECT count(*) FROM audit_log WHERE action = 'notification.create'"), 3);
    free(first);
    free(again);
    free(other);
    free(unkeyed);
}

typedef struct {
    pthread_barrier_t *barrier;
    int status;
    char id[64];
} racer_t;

static void *race(void *arg)
{
    racer_t *t = arg;
    lst_resp_t resp;
    pthread_barrier_wait(t->barrier);
    post_notification(&resp, "{\"recipient_telegram_id\":202,\"type\":\"lesson_reminder\"}", "race-key");
    t->status = resp.status;
    const char *id = lst_str_field(lst_field(resp.json, "notification"), "id");
    snprintf(t->id, sizeof(t->id), "%s", id != NULL ? id : "");
    lst_resp_free(&resp);
    return NULL;
}

Test(notification, concurrent_identical_requests_make_one_row)
{
    start(0, NULL);
    enum { N = 10 };
    pthread_t threads[N];
    racer_t racers[N];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N);
    for (int i = 0; i < N; i++) {
        racers[i] = (racer_t){.barrier = &barrier};
        cr_assert_eq(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    }
    int created = 0, replayed = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(threads[i], NULL);
        created += racers[i].status == 201;
        replayed += racers[i].status == 200;
        cr_expect_str_eq(racers[i].id, racers[0].id, "request %d got another notification", i);
    }
    pthread_barrier_destroy(&barrier);
    cr_expect_eq(created, 1, "%d requests created a notification", created);
    cr_expect_eq(replayed, N - 1);
    cr_expect_eq(sql_int("SELECT count(*) FROM notifications"), 1);
}

/* ---- settings: disabled types and quiet hours ---- */

Test(notification, disabled_type_is_neither_stored_nor_sent)
{
    start(1, NULL);
    put_settings("301", "{\"disabled_types\":[\"payment\"]}");
    lst_resp_t resp;
    call(&resp, "POST", "/notifications", "{\"recipient_telegram_id\":301,\"type\":\"payment\"}", NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect(json_object_is_type(lst_field(resp.json, "notification"), json_type_null) &&
                  json_object_object_get_ex(resp.json, "notification", NULL),
              "notification must be null: %s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "skipped"), "disabled by the recipient");
    lst_resp_free(&resp);

    /* Another type still goes through; once it reached the fake API, the refused one would have too. */
    char *id = create("{\"recipient_telegram_id\":301,\"type\":\"enrollment\"}", NULL, 201);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT delivery_status FROM notifications WHERE id = '%s'", id);
    cr_assert(wait_sql(sql, "sent", 10000), "the enrollment notification was not sent");
    cr_expect_eq(sql_int("SELECT count(*) FROM notifications WHERE type = 'payment'"), 0);
    cr_expect_eq(bot_calls(), 1);
    free(id);
}

Test(notification, quiet_hours_hold_delivery_until_they_end)
{
    start(1, NULL);
    /* A window around now in Tokyo (no DST there), and one that does not contain now. */
    char *from = lst_pg_admin_exec(
        svc.dbname, "SELECT to_char(now() AT TIME ZONE 'Asia/Tokyo' - interval '1 hour', 'HH24:MI')");
    char *to = lst_pg_admin_exec(
        svc.dbname, "SELECT to_char(now() AT TIME ZONE 'Asia/Tokyo' + interval '1 hour', 'HH24:MI')");
    char *later_from = lst_pg_admin_exec(
        svc.dbname, "SELECT to_char(now() AT TIME ZONE 'Asia/Tokyo' + interval '1 hour', 'HH24:MI')");
    char *later_to = lst_pg_admin_exec(
        svc.dbname, "SELECT to_char(now() AT TIME ZONE 'Asia/Tokyo' + interval '2 hours', 'HH24:MI')");
    char body[256];
    snprintf(body, sizeof(body),
             "{\"quiet_hours\":{\"from\":\"%s\",\"to\":\"%s\"},\"timezone\":\"Asia/Tokyo\"}", from, to);
    put_settings("401", body);
    snprintf(body, sizeof(body),
             "{\"quiet_hours\":{\"from\":\"%s\",\"to\":\"%s\"},\"timezone\":\"Asia/Tokyo\"}", later_from,
             later_to);
    put_settings("402", body);

    lst_resp_t resp;
    call(&resp, "POST", "/notifications", "{\"recipient_telegram_id\":401,\"type\":\"lesson_reminder\"}",
         NULL);
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    json_object *n = lst_field(resp.json, "notification");
    cr_expect_str_eq(lst_str_field(n, "delivery_status"), "pending");
    char quiet_id[64];
    snprintf(quiet_id, sizeof(quiet_id), "%s", lst_str_field(n, "id"));
    lst_resp_free(&resp);

    /* deliver_after is the end of the window: `to` o'clock in Tokyo, within the next hour. */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT to_char(deliver_after AT TIME ZONE 'Asia/Tokyo', 'HH24:MI') = '%s'"
             " AND deliver_after > now() AND deliver_after <= now() + interval '61 minutes'"
             " FROM notifications WHERE id = '%s'",
             to, quiet_id);
    char *ok = lst_pg_admin_exec(svc.dbname, sql);
    cr_expect_str_eq(ok, "t", "deliver_after is not the end of the quiet window %s-%s", from, to);
    free(ok);

    /* Outside the window: sent. Once it is, the poller has passed over the held one. */
    char *sent_id = create("{\"recipient_telegram_id\":402,\"type\":\"lesson_reminder\"}", NULL, 201);
    snprintf(sql, sizeof(sql), "SELECT delivery_status FROM notifications WHERE id = '%s'", sent_id);
    cr_assert(wait_sql(sql, "sent", 10000), "a notification outside quiet hours was not sent");
    snprintf(sql, sizeof(sql), "SELECT delivery_status || ' ' || attempts FROM notifications WHERE id = '%s'",
             quiet_id);
    char *held = lst_pg_admin_exec(svc.dbname, sql);
    cr_expect_str_eq(held, "pending 0");
    free(held);
    cr_expect_eq(bot_calls(), 1, "the Bot API was called for a notification in quiet hours");
    pthread_mutex_lock(&bot.lock);
    cr_expect_eq(bot.chats[0], 402);
    pthread_mutex_unlock(&bot.lock);

    /* When the window ends, it goes out: simulate the end by moving the clock of the row. */
    snprintf(sql, sizeof(sql), "UPDATE notifications SET deliver_after = now() WHERE id = '%s' RETURNING 1",
             quiet_id);
    free(lst_pg_admin_exec(svc.dbname, sql));
    snprintf(sql, sizeof(sql), "SELECT delivery_status FROM notifications WHERE id = '%s'", quiet_id);
    cr_expect(wait_sql(sql, "sent", 10000), "the held notification was not sent after its window");
    free(from);
    free(to);
    free(later_from);
    free(later_to);
    free(sent_id);
}

Test(notification, settings_round_trip_and_validation)
{
    start(0, NULL);
    lst_resp_t resp;
    call(&resp, "GET", "/users/501/notification_settings", NULL, "501");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int64(lst_field(resp.json, "telegram_id")), 501);
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "disabled_types")), 0);
    cr_expect(json_object_object_get_ex(resp.json, "quiet_hours", NULL) &&
              lst_field(resp.json, "quiet_hours") == NULL);
    cr_expect_str_eq(lst_str_field(resp.json, "timezone"), "UTC");
    lst_resp_free(&resp);

    call(&resp, "PUT", "/users/501/notification_settings",
         "{\"telegram_id\":501,\"disabled_types\":[\"payment\",\"lesson_reminder\",\"payment\"],"
         "\"quiet_hours\":{\"from\":\"22:00\",\"to\":\"08:00\"},\"timezone\":\"Europe/"
         "Moscow\",\"language_code\":\"ru\"}",
         "501");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
    call(&resp, "GET", "/users/501/notification_settings", NULL, "501");
    json_object *types = lst_field(resp.json, "disabled_types");
    cr_assert_eq(json_object_array_length(types), 2);
    cr_expect_str_eq(json_object_get_string(json_object_array_get_idx(types, 0)), "payment");
    cr_expect_str_eq(json_object_get_string(json_object_array_get_idx(types, 1)), "lesson_reminder");
    cr_expect_str_eq(lst_str_field(lst_field(resp.json, "quiet_hours"), "from"), "22:00");
    cr_expect_str_eq(lst_str_field(lst_field(resp.json, "quiet_hours"), "to"), "08:00");
    cr_expect_str_eq(lst_str_field(resp.json, "timezone"), "Europe/Moscow");
    cr_expect_str_eq(lst_str_field(resp.json, "language_code"), "ru");
    lst_resp_free(&resp);

    /* Absent fields keep their value; null clears. */
    call(&resp, "PUT", "/users/501/notification_settings", "{\"quiet_hours\":null}", "501");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_null(lst_field(resp.json, "quiet_hours"));
    cr_expect_str_eq(lst_str_field(resp.json, "language_code"), "ru");
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "disabled_types")), 2);
    lst_resp_free(&resp);

    static const char *const bad[][2] = {
        {"{\"disabled_types\":[\"party\"]}", "disabled_types"},
        {"{\"disabled_types\":[1]}", "disabled_types"},
        {"{\"disabled_types\":\"payment\"}", "disabled_types"},
        {"{\"quiet_hours\":{\"from\":\"25:00\",\"to\":\"08:00\"}}", "quiet_hours"},
        {"{\"quiet_hours\":{\"from\":\"8:00\",\"to\":\"09:00\"}}", "quiet_hours"},
        {"{\"quiet_hours\":{\"from\":\"22:00\"}}", "quiet_hours"},
        {"{\"quiet_hours\":{\"from\":\"22:00\",\"to\":\"22:00\"}}", "differ"},
        {"{\"timezone\":\"Mars/Olympus_Mons\"}", "timezone"},
        {"{\"timezone\":\"Europe/Moscow'; --\"}", "timezone"},
        {"{\"language_code\":\"RU\"}", "language_code"},
        {"{\"telegram_id\":502}", "telegram_id"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused("PUT", "/users/501/notification_settings", bad[i][0], "501", 400, bad[i][1]);
    expect_refused("PUT", "/users/501/notification_settings", "{\"timezone\":\"UTC\"}", "777", 403, NULL);
    expect_refused("GET", "/users/501/notification_settings", NULL, "777", 403, NULL);
    expect_refused("PUT", "/users/501/notification_settings", "{\"timezone\":\"UTC\"}", NULL, 400, NULL);

    /* Nothing above changed the settings. */
    call(&resp, "GET", "/users/501/notification_settings", NULL, "501");
    cr_expect_str_eq(lst_str_field(resp.json, "timezone"), "Europe/Moscow");
    cr_expect_str_eq(lst_str_field(resp.json, "language_code"), "ru");
    lst_resp_free(&resp);
    cr_expect_eq(sql_int("SELECT count(*) FROM audit_log WHERE action = 'notification_settings.update'"
                         " AND entity_id = '501' AND actor_telegram_id = 501"),
                 2);

    /* An admin may change someone's settings. */
    lst_call_as(&resp, svc.daemon.base_url, svc.token, "PUT", "/users/501/notification_settings",
                "{\"timezone\":\"UTC\"}", "999", "admin");
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
}

Test(notification, lesson_reminder_minutes_defaults_to_an_hour_changes_turns_off_and_is_bounded)
{
    start(0, NULL);
    lst_resp_t resp;
    call(&resp, "GET", "/users/503/notification_settings", NULL, "503");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "lesson_reminder_minutes")), 60, "%.300s",
                 resp.body);
    lst_resp_free(&resp);
    /* Another field first: the stored row starts with the default too. */
    call(&resp, "PUT", "/users/503/notification_settings", "{\"timezone\":\"Europe/Moscow\"}", "503");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "lesson_reminder_minutes")), 60, "%.300s",
                 resp.body);
    lst_resp_free(&resp);
    call(&resp, "PUT", "/users/503/notification_settings", "{\"lesson_reminder_minutes\":1440}", "503");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "lesson_reminder_minutes")), 1440);
    lst_resp_free(&resp);
    /* Absent keeps it; null turns reminders off (and GET says so); a number turns them on again. */
    call(&resp, "PUT", "/users/503/notification_settings", "{\"language_code\":\"ru\"}", "503");
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "lesson_reminder_minutes")), 1440);
    lst_resp_free(&resp);
    call(&resp, "PUT", "/users/503/notification_settings", "{\"lesson_reminder_minutes\":null}", "503");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
    call(&resp, "GET", "/users/503/notification_settings", NULL, "503");
    cr_expect(json_object_object_get_ex(resp.json, "lesson_reminder_minutes", NULL) &&
                  lst_field(resp.json, "lesson_reminder_minutes") == NULL,
              "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "timezone"), "Europe/Moscow");
    lst_resp_free(&resp);
    call(&resp, "PUT", "/users/503/notification_settings", "{\"lesson_reminder_minutes\":5}", "503");
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "lesson_reminder_minutes")), 5);
    lst_resp_free(&resp);

    static const char *const bad[] = {
        "{\"lesson_reminder_minutes\":4}",      "{\"lesson_reminder_minutes\":1441}",
        "{\"lesson_reminder_minutes\":0}",      "{\"lesson_reminder_minutes\":-60}",
        "{\"lesson_reminder_minutes\":\"60\"}", "{\"lesson_reminder_minutes\":60.5}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused("PUT", "/users/503/notification_settings", bad[i], "503", 400,
                       "lesson_reminder_minutes");
    call(&resp, "GET", "/users/503/notification_settings", NULL, "503");
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "lesson_reminder_minutes")), 5);
    lst_resp_free(&resp);
    cr_expect_eq(sql_int("SELECT count(*) FROM audit_log WHERE action = 'notification_settings.update'"
                         " AND entity_id = '503' AND changes ? 'lesson_reminder_minutes'"),
                 3);
}

/* ---- listing and reading ---- */

static json_object *list(lst_resp_t *resp, const char *query, const char *actor)
{
    char path[128];
    snprintf(path, sizeof(path), "/users/601/notifications%s", query);
    call(resp, "GET", path, NULL, actor);
    cr_assert_eq(resp->status, 200, "GET %s: %d %.300s", path, resp->status, resp->body);
    return lst_field(resp->json, "notifications");
}

static const char *nth_id(json_object *arr, size_t i)
{
    return lst_str_field(json_object_array_get_idx(arr, i), "id");
}

Test(notification, list_orders_counts_and_marks_read)
{
    start(0, NULL);
    char *a = create("{\"recipient_telegram_id\":601,\"type\":\"lesson_scheduled\"}", NULL, 201);
    char *b = create("{\"recipient_telegram_id\":601,\"type\":\"lesson_cancelled\"}", NULL, 201);
    char *c = create("{\"recipient_telegram_id\":601,\"type\":\"lesson_rescheduled\"}", NULL, 201);
    char *other = create("{\"recipient_telegram_id\":602,\"type\":\"payment\"}", NULL, 201);

    lst_resp_t resp;
    char path[160];
    snprintf(path, sizeof(path), "/users/601/notifications/%s/read", c);
    call(&resp, "POST", path, NULL, "601");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "id"), c);
    cr_expect_eq(json_object_get_boolean(lst_field(resp.json, "is_read")), 1);
    cr_expect_not_null(lst_str_field(resp.json, "read_at"));
    lst_resp_free(&resp);
    /* again: unchanged, still 200 */
    call(&resp, "POST", path, NULL, "601");
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);

    /* unread first (each newest first): b, a, then c */
    json_object *arr = list(&resp, "", "601");
    cr_assert_eq(json_object_array_length(arr), 3);
    cr_expect_str_eq(nth_id(arr, 0), b);
    cr_expect_str_eq(nth_id(arr, 1), a);
    cr_expect_str_eq(nth_id(arr, 2), c);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "unread")), 2);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "limit")), 20);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "offset")), 0);
    lst_resp_free(&resp);

    /* by time: c, b, a; paginated */
    arr = list(&resp, "?order=time", "601");
    cr_assert_eq(json_object_array_length(arr), 3);
    cr_expect_str_eq(nth_id(arr, 0), c);
    cr_expect_str_eq(nth_id(arr, 1), b);
    cr_expect_str_eq(nth_id(arr, 2), a);
    lst_resp_free(&resp);
    arr = list(&resp, "?order=time&limit=1&offset=1", "601");
    cr_assert_eq(json_object_array_length(arr), 1);
    cr_expect_str_eq(nth_id(arr, 0), b);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "unread")), 2);
    lst_resp_free(&resp);
    arr = list(&resp, "?offset=10", "601");
    cr_expect_eq(json_object_array_length(arr), 0);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "unread")), 2,
                 "the count comes with an empty page too");
    lst_resp_free(&resp);

    call(&resp, "GET", "/users/601/notifications/unread_count", NULL, "601");
    cr_assert_eq(resp.status, 200);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "unread")), 2);
    lst_resp_free(&resp);

    /* someone else: 403; no actor: 400; an admin: allowed; bad query: 400 */
    expect_refused("GET", "/users/601/notifications", NULL, "602", 403, NULL);
    expect_refused("GET", "/users/601/notifications/unread_count", NULL, "602", 403, NULL);
    expect_refused("POST", "/users/601/notifications/read_all", NULL, "602", 403, NULL);
    expect_refused("POST", path, NULL, "602", 403, NULL);
    expect_refused("GET", "/users/601/notifications", NULL, NULL, 400, NULL);
    lst_call_as(&resp, svc.daemon.base_url, svc.token, "GET", "/users/601/notifications", NULL, "999",
                "admin");
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
    expect_refused("GET", "/users/601/notifications?order=random", NULL, "601", 400, "order");
    expect_refused("GET", "/users/601/notifications?limit=101", NULL, "601", 400, NULL);

    /* someone else's notification through my path: 404; not a UUID: 400 */
    snprintf(path, sizeof(path), "/users/601/notifications/%s/read", other);
    expect_refused("POST", path, NULL, "601", 404, NULL);
    expect_refused("POST", "/users/601/notifications/not-a-uuid/read", NULL, "601", 400, NULL);

    call(&resp, "POST", "/users/601/notifications/read_all", NULL, "601");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "marked")), 2);
    lst_resp_free(&resp);
    call(&resp, "POST", "/users/601/notifications/read_all", NULL, "601");
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "marked")), 0);
    lst_resp_free(&resp);
    call(&resp, "GET", "/users/601/notifications/unread_count", NULL, "601");
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "unread")), 0);
    lst_resp_free(&resp);

    cr_expect_eq(sql_int("SELECT count(*) FROM notifications WHERE recipient_telegram_id = 602 AND is_read"),
                 0);
    cr_expect_eq(sql_int("SELECT count(*) FROM audit_log WHERE action = 'notification.read'"), 1);
    cr_expect_eq(sql_int("SELECT count(*) FROM audit_log WHERE action = 'notification.read_all'"
                         " AND changes->>'marked' = '2'"),
                 1);
    free(a);
    free(b);
    free(c);
    free(other);
}

/* ---- delivery ---- */

/* Waits for notification id to be marked sent; then its delivery log, a row per attempt shown as
 * the SQL expression columns and joined by ',', must be want. */
static void expect_sent(const char *id, const char *columns, const char *want)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT delivery_status FROM notifications WHERE id = '%s'", id);
    cr_assert(wait_sql(sql, "sent", 10000), "%s was not marked sent", id);
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(%s, ',') FROM notification_logs WHERE notification_id = '%s'", columns, id);
    char *logs = lst_pg_admin_exec(svc.dbname, sql);
    cr_expect_str_eq(logs, want);
    free(logs);
}

Test(notification, without_telegram_a_notification_is_stored_and_logged)
{
    start(0, NULL);
    char *id = create("{\"recipient_telegram_id\":701,\"type\":\"registration\"}", NULL, 201);
    expect_sent(id, "channel || ' ' || status || ' ' || attempt", "store sent 1");
    cr_expect(log_contains("notification delivered (stored)"), "no log line for the stored notification");
    cr_expect(log_contains(id), "the log line does not name the notification");
    cr_expect_eq(bot_calls(), 0);
    free(id);
}

Test(notification, telegram_delivery_success_is_logged)
{
    start(1, NULL);
    char *id = create("{\"recipient_telegram_id\":801,\"type\":\"registration\",\"language_code\":\"ru\","
                      "\"params\":{\"first_name\":\"Олег\"}}",
                      NULL, 201);
    expect_sent(id, "channel || ' ' || status || ' ' || attempt || ' ' || http_status",
                "telegram sent 1 200");
    cr_expect_eq(bot_calls(), 1);

    pthread_mutex_lock(&bot.lock);
    json_object *msg = json_tokener_parse(bot.last_body);
    char auth[600];
    snprintf(auth, sizeof(auth), "%s", bot.last_auth);
    pthread_mutex_unlock(&bot.lock);
    cr_assert_not_null(msg);
    cr_expect_eq(json_object_get_int64(lst_field(msg, "chat_id")), 801);
    cr_expect_str_eq(lst_str_field(msg, "text"),
                     "Добро пожаловать, Олег!\n\nВаш аккаунт в языковой школе готов.");
    json_object_put(msg);
    cr_expect_str_eq(auth, "", "an Authorization header was sent to the Bot API: %s", auth);

    cr_expect(log_contains("notification delivered (telegram)"));
    cr_expect_not(log_contains(bot_token), "the bot token appears in the log %s", svc.daemon.log_path);
    free(id);
}

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"

/* The lines of the daemon's log with the trace id and message. */
static size_t trace_lines(const char *msg)
{
    char m[96];
    snprintf(m, sizeof(m), "\"msg\":\"%s\"", msg);
    const char *needles[] = {"\"trace_id\":\"" TRACE "\"", m, NULL};
    json_object *lines = lst_log_wait(&svc.daemon, needles, 1);
    size_t n = json_object_array_length(lines);
    json_object_put(lines);
    return n;
}

Test(notification, a_telegram_delivery_keeps_the_trace_of_the_request_that_created_it)
{
    start(1, NULL);
    char url[256], auth[600];
    snprintf(url, sizeof(url), "%s/notifications", svc.daemon.base_url);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.token);
    const char *headers[] = {auth, "traceparent: 00-" TRACE "-00f067aa0ba902b7-01", NULL};
    lst_resp_t resp;
    lst_http(&resp, "POST", url, headers, "{\"recipient_telegram_id\":802,\"type\":\"registration\"}");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    char *id = strdup(lst_str_field(lst_field(resp.json, "notification"), "id"));
    lst_resp_free(&resp);
    expect_sent(id, "channel || ' ' || status", "telegram sent");

    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT COALESCE(trace_id, 'none') FROM notifications WHERE id = '%s'", id);
    char *tid = lst_pg_admin_exec(svc.dbname, sql);
    cr_expect_str_eq(tid, TRACE);
    free(tid);
    cr_expect_eq(trace_lines("request"), 1, "the creation's access line");
    cr_expect_eq(trace_lines("notification delivered (telegram)"), 1, "the delivery's line");
    cr_expect_eq(trace_lines("http call"), 1, "the Bot API call's line");
    pthread_mutex_lock(&bot.lock);
    char sent[128];
    snprintf(sent, sizeof(sent), "%s", bot.last_traceparent);
    pthread_mutex_unlock(&bot.lock);
    cr_expect_str_eq(sent, "", "a traceparent went to the Bot API: %s", sent);
    free(id);
}

Test(notification, failing_bot_api_is_retried_then_marked_failed)
{
    bot.fail = 1;
    start(1, "NOTIFY_MAX_ATTEMPTS=3");
    char *id = create("{\"recipient_telegram_id\":901,\"type\":\"payment\"}", NULL, 201);
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT delivery_status || ' ' || attempts FROM notifications WHERE id = '%s'",
             id);
    /* Backoff 1 s then 2 s: about 3 s in all. */
    cr_assert(wait_sql(sql, "failed 3", 20000), "not marked failed after 3 attempts");
    snprintf(
        sql, sizeof(sql),
        "SELECT string_agg(channel || ' ' || status || ' ' || attempt || ' ' || http_status, ',' ORDER BY id)"
        " FROM notification_logs WHERE notification_id = '%s'",
        id);
    char *logs = lst_pg_admin_exec(svc.dbname, sql);
    cr_expect_str_eq(logs, "telegram retry 1 500,telegram retry 2 500,telegram failed 3 500");
    free(logs);
    snprintf(
        sql, sizeof(sql),
        "SELECT count(*) FROM notification_logs WHERE notification_id = '%s' AND error LIKE 'HTTP 500%%'",
        id);
    cr_expect_eq(sql_int(sql), 3, "each attempt records its error");
    /* The backoff between attempts: at least 1 s, then at least 2 s. */
    snprintf(sql, sizeof(sql),
             "SELECT bool_and(gap >= expected) FROM (SELECT created_at - lag(created_at) OVER (ORDER BY id) "
             "AS gap,"
             " make_interval(secs => 0.9 * 2 ^ (attempt - 2)) AS expected"
             " FROM notification_logs WHERE notification_id = '%s') AS g WHERE gap IS NOT NULL",
             id);
    char *spaced = lst_pg_admin_exec(svc.dbname, sql);
    cr_expect_str_eq(spaced, "t", "retries came sooner than the backoff");
    free(spaced);
    cr_expect_eq(bot_calls(), 3);

    /* No further attempts once failed. */
    char *next = create("{\"recipient_telegram_id\":902,\"type\":\"payment\"}", NULL, 201);
    snprintf(sql, sizeof(sql), "SELECT attempts FROM notifications WHERE id = '%s'", next);
    cr_assert(wait_sql(sql, "1", 10000));
    cr_expect_eq(
        sql_int("SELECT count(*) FROM notification_logs l JOIN notifications n ON n.id = l.notification_id"
                " WHERE n.recipient_telegram_id = 901"),
        3);
    cr_expect(log_contains("giving up"));
    cr_expect_not(log_contains(bot_token), "the bot token appears in the log %s", svc.daemon.log_path);
    free(id);
    free(next);
}

Test(notification, bad_telegram_settings_stop_the_daemon)
{
    char *conninfo = lst_db_create("notification", NULL), *token = lst_random_hex(24), *db, *tok;
    asprintf(&db, "DATABASE_URL=%s", conninfo);
    asprintf(&tok, "INTERNAL_TOKEN=%s", token);
    const char *env[] = {db, tok, "TELEGRAM_API_URL=ftp://example.org", "BOT_TOKEN=1:abc", NULL};
    lst_daemon_t d;
    cr_expect_eq(lst_daemon_try_start(&d, DAEMON, env), -1, "started with TELEGRAM_API_URL=ftp://…");
    free(db);
    free(tok);
    free(token);
    free(conninfo);
}
