/*
 * The BFF end to end: the real bff in front of real auth-, teachers-, students-, groups-,
 * calendar-, notification- and payment-service daemons on fresh databases of the test cluster. Only the
 * test of a hanging service and of the circuit breaker puts a fake calendar-service (which hangs or
 * answers as the test says) behind CALENDAR_URL. Requests are signed in-process with the BFF's own
 * tma module, as Telegram would sign them.
 */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tma.h"
#include "fake_upstream.h"
#include "harness.h"

#define BOT_TOKEN   "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8" /* public vector, ARCHITECTURE §7.1 */
#define VECTOR_HASH "c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2"
#define VECTOR                                                                                               \
    "query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22%"   \
    "2C%"                                                                                                    \
    "22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%"  \
    "22is_premium%22%3Atrue%7D&auth_date=1662771648&hash=" VECTOR_HASH

#define STR_(x)          #x
#define STR(x)           STR_(x)
#define DEADLINE_MS      1000
#define BREAKER_FAILURES 3
#define BREAKER_OPEN_MS  1000
#define ADMIN_ID         1000
#define TEACHER_ID       601
#define STUDENT_ID       602
#define STRANGER_ID      603

enum { S_AUTH, S_TEACHERS, S_STUDENTS, S_GROUPS, S_NOTIFICATION, S_CALENDAR, S_PAYMENT, S_COUNT };

typedef struct {
    const char *name;
    const char *relpath;
    char *conninfo;
    char *dbname;
    int port;
    lst_daemon_t d;
} service_t;

static service_t services[S_COUNT] = {
    {"auth", "services/auth/auth-service"},
    {"teachers", "services/teachers/teachers-service"},
    {"students", "services/students/students-service"},
    {"groups", "services/groups/groups-service"},
    {"notification", "services/notification/notification-service"},
    {"calendar", "services/calendar/calendar-service"},
    {"payment", "services/payment/payment-service"}, /* the own profile's payments; no Bot API here */
};
static int have_notification;
static char *token, *data_key;
static lst_daemon_t bff, bff2;
static lst_upstream_t *calendar; /* the fake; NULL unless a test started it */
static const char *breaker_env;
static unsigned char tma_key[TMA_KEY_BYTES];

/* ---- the fake calendar-service (hanging service and breaker test only) ---- */

enum { CAL_ANSWER, CAL_HANG, CAL_ODD, CAL_TITLED };
static atomic_int calendar_mode;

static int calendar_handler(void *ud, lst_upstream_t *u, const lst_upstream_req_t *req,
                            lst_upstream_resp_t *resp)
{
    (void)ud;
    if (strcmp(req->path, "/lessons") != 0)
        return 0;
    if (atomic_load(&calendar_mode) == CAL_HANG)
        lst_upstream_sleep_ms(u, 20000);
    if (atomic_load(&calendar_mode) == CAL_ODD) /* JSON, but not in the form the services write */
        lst_upstream_respondf(resp, 200, "{\"lessons\": [], \"limit\": 20, \"offset\": 0}");
    else if (atomic_load(&calendar_mode) == CAL_TITLED) /* a member the schedule sets is there already */
        lst_upstream_respondf(resp, 200,
                              "{\"lessons\":[{\"id\":\"x\",\"group_title\":\"old\","
                              "\"teacher_telegram_id\":0},{}],\"limit\":20,\"offset\":0}");
    else
        lst_upstream_respondf(resp, 200, "{\"lessons\":[],\"limit\":20,\"offset\":0}");
    return 1;
}

/* ---- daemons ---- */

/* Adds "NAME=value" (formatted, malloc'ed) to env and to the list of strings to free. */
static void env_add(const char **env, size_t *n, char **owned, size_t *nowned, const char *fmt, ...)
{
    va_list ap;
    char *v;
    va_start(ap, fmt);
    cr_assert_geq(vasprintf(&v, fmt, ap), 0);
    va_end(ap);
    env[(*n)++] = v;
    owned[(*nowned)++] = v;
}

static void spawn_service(service_t *s)
{
    const char *env[16];
    char *owned[16];
    size_t n = 0, nowned = 0;
    env_add(env, &n, owned, &nowned, "DATABASE_URL=%s", s->conninfo);
    env_add(env, &n, owned, &nowned, "INTERNAL_TOKEN=%s", token);
    env_add(env, &n, owned, &nowned, "LISTEN=127.0.0.1:%d", s->port);
    env[n++] = "THREADS=1";
    env[n++] = "LOG_LEVEL=debug";
    if (s == &services[S_AUTH]) {
        env_add(env, &n, owned, &nowned, "AUTH_DATA_KEY=%s", data_key);
        env[n++] = "ADMIN_TELEGRAM_IDS=" STR(ADMIN_ID);
        env_add(env, &n, owned, &nowned, "NOTIFICATION_URL=http://127.0.0.1:%d",
                services[S_NOTIFICATION].port);
        env[n++] = "OUTBOX_POLL_MS=50";
    } else if (s == &services[S_GROUPS]) {
        env_add(env, &n, owned, &nowned, "STUDENTS_URL=http://127.0.0.1:%d", services[S_STUDENTS].port);
        env[n++] = "OUTBOX_POLL_MS=50";
    } else if (s == &services[S_NOTIFICATION]) {
        env[n++] = "NOTIFY_POLL_MS=100";
    } else if (s == &services[S_CALENDAR]) {
        env_add(env, &n, owned, &nowned, "TEACHERS_URL=http://127.0.0.1:%d", services[S_TEACHERS].port);
        env_add(env, &n, owned, &nowned, "STUDENTS_URL=http://127.0.0.1:%d", services[S_STUDENTS].port);
        env_add(env, &n, owned, &nowned, "GROUPS_URL=http://127.0.0.1:%d", services[S_GROUPS].port);
        env_add(env, &n, owned, &nowned, "NOTIFICATION_URL=http://127.0.0.1:%d",
                services[S_NOTIFICATION].port);
        env[n++] = "OUTBOX_POLL_MS=50";
    } else if (s == &services[S_PAYMENT]) {
        env_add(env, &n, owned, &nowned, "GROUPS_URL=http://127.0.0.1:%d", services[S_GROUPS].port);
    }
    env[n] = NULL;
    lst_daemon_spawn(&s->d, s->relpath, env);
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
}

static void start_service(service_t *s)
{
    spawn_service(s);
    cr_assert_eq(lst_daemon_wait_healthy(&s->d), 0, "%s-service did not start; see %s", s->name,
                 s->d.log_path);
}

static void stop_service(service_t *s)
{
    cr_assert_eq(lst_daemon_stop(&s->d), 0, "%s-service did not exit cleanly; see %s", s->name,
                 s->d.log_path);
    s->d.pid = 0;
}

/* The bff in front of the real services; calendar_url (when not NULL) replaces calendar-service. */
static void start_bff(lst_daemon_t *d, const char *extra, const char *calendar_url)
{
    static const char *const names[S_COUNT] = {"AUTH_URL",   "TEACHERS_URL",     "STUDENTS_URL",
                                               "GROUPS_URL", "NOTIFICATION_URL", "CALENDAR_URL",
                                               "PAYMENT_URL"};
    const char *env[24];
    char *owned[16];
    size_t n = 0, nowned = 0;
    for (int i = 0; i < S_COUNT; i++) {
        if (i == S_CALENDAR && calendar_url != NULL)
            env_add(env, &n, owned, &nowned, "%s=%s", names[i], calendar_url);
        else /* without notification-service, its URL points at a port where nothing listens */
            env_add(env, &n, owned, &nowned, "%s=http://127.0.0.1:%d", names[i], services[i].port);
    }
    env_add(env, &n, owned, &nowned, "INTERNAL_TOKEN=%s", token);
    env[n++] = "BOT_TOKEN=" BOT_TOKEN;
    env[n++] = "THREADS=1"; /* one worker: one set of breakers, so the breaker test is deterministic */
    env[n++] = "LOG_LEVEL=debug";
    env[n++] = "MAX_BODY_BYTES=4096";
    env[n++] = "BFF_DEADLINE_MS=" STR(DEADLINE_MS);
    env[n++] = breaker_env;
    env[n++] = "BREAKER_OPEN_MS=" STR(BREAKER_OPEN_MS);
    if (extra != NULL)
        env[n++] = extra;
    env[n] = NULL;
    lst_daemon_start(d, "bff/bff", env);
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
}

static void setup(void)
{
    char path[1024];
    cr_assert_geq(sodium_init(), 0);
    tma_derive_key(BOT_TOKEN, tma_key);
    token = lst_random_hex(24);
    data_key = lst_random_hex(32);
    snprintf(path, sizeof(path), "%s/%s", lst_env("LS_TEST_BUILD_DIR"), services[S_NOTIFICATION].relpath);
    have_notification = access(path, X_OK) == 0;
    for (int i = 0; i < S_COUNT; i++) {
        /* Distinct ports: every address is fixed before any daemon starts. */
        for (int again = 1; again;) {
            services[i].port = lst_free_port();
            again = 0;
            for (int j = 0; j < i; j++)
                again |= services[j].port == services[i].port;
        }
        services[i].d.pid = 0;
        if (i == S_NOTIFICATION && !have_notification)
            continue;
        services[i].conninfo = lst_db_create(services[i].name, &services[i].dbname);
    }
    /* All at once, each applying its migrations while the others do; the outboxes retry until the
     * services they deliver to are up. */
    for (int i = 0; i < S_COUNT; i++)
        if (i != S_NOTIFICATION || have_notification)
            spawn_service(&services[i]);
    for (int i = 0; i < S_COUNT; i++)
        if (services[i].d.pid > 0)
            cr_assert_eq(lst_daemon_wait_healthy(&services[i].d), 0, "%s-service did not start; see %s",
                         services[i].name, services[i].d.log_path);
    calendar = NULL;
    bff.pid = bff2.pid = 0;
    breaker_env = "BREAKER_FAILURES=" STR(BREAKER_FAILURES);
    start_bff(&bff, NULL, NULL);
}

static void teardown(void)
{
    /* A clean exit also means no leak was found when the daemons run under ASan. */
    if (bff.pid > 0)
        cr_expect_eq(lst_daemon_stop(&bff), 0, "bff did not exit cleanly; see %s", bff.log_path);
    if (bff2.pid > 0)
        cr_expect_eq(lst_daemon_stop(&bff2), 0, "bff did not exit cleanly; see %s", bff2.log_path);
    for (int i = 0; i < S_COUNT; i++) {
        if (services[i].d.pid > 0)
            cr_expect_eq(lst_daemon_stop(&services[i].d), 0, "%s-service did not exit cleanly; see %s",
                         services[i].name, services[i].d.log_path);
        free(services[i].conninfo);
        free(services[i].dbname);
        services[i].conninfo = services[i].dbname = NULL;
    }
    if (calendar != NULL)
        lst_upstream_stop(calendar);
    free(token);
    free(data_key);
}

TestSuite(bff, .init = setup, .fini = teardown, .timeout = 180);

/* ---- helpers ---- */

/* "Authorization: tma <initData>" for a user, signed now (or at auth_date when given). */
static void sign(char *out, size_t size, long long id, const char *first_name, long long auth_date)
{
    char user[256], date[24], data[TMA_MAX_LEN + 1];
    snprintf(user, sizeof(user),
             "{\"id\":%lld,\"first_name\":\"%s\",\"username\":\"u%lld\",\"language_code\":\"en\"}", id,
             first_name, id);
    snprintf(date, sizeof(date), "%lld", auth_date > 0 ? auth_date : (long long)time(NULL));
    tma_pair_t pairs[] = {{"auth_date", date}, {"user", user}};
    cr_assert_gt(tma_sign(tma_key, pairs, 2, data, sizeof(data)), 0);
    snprintf(out, size, "Authorization: tma %s", data);
}

static int raw_call(lst_daemon_t *d, lst_resp_t *resp, const char *method, const char *path, const char *body,
                    const char *authorization)
{
    char url[1024];
    const char *headers[3] = {authorization, NULL, NULL};
    if (body != NULL)
        headers[authorization != NULL ? 1 : 0] = "Content-Type: application/json";
    snprintf(url, sizeof(url), "%s%s", d->base_url, path);
    return lst_http(resp, method, url, headers, body);
}

/* A request to the bff signed by user `as`. */
static int api(lst_resp_t *resp, long long as, const char *method, const char *path, const char *body)
{
    char auth[TMA_MAX_LEN + 64], name[32];
    snprintf(name, sizeof(name), "User%lld", as);
    sign(auth, sizeof(auth), as, name, 0);
    return raw_call(&bff, resp, method, path, body, auth);
}

static json_object *field(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (obj != NULL)
        json_object_object_get_ex(obj, key, &v);
    return v;
}

static const char *str_field(json_object *obj, const char *key)
{
    json_object *v = field(obj, key);
    return v != NULL ? json_object_get_string(v) : NULL;
}

static int has_null(json_object *obj, const char *key)
{
    json_object *v;
    return obj != NULL && json_object_object_get_ex(obj, key, &v) && v == NULL;
}

static void expect_problem(lst_resp_t *resp, int status, const char *needle)
{
    cr_expect_eq(resp->status, status, "status %d, want %d: %.300s", resp->status, status, resp->body);
    char *ct = lst_resp_header(resp, "content-type");
    cr_expect(ct != NULL && strstr(ct, "application/problem+json") != NULL, "content-type %s",
              ct ? ct : "none");
    free(ct);
    cr_assert_not_null(resp->json, "problem body is not JSON: %.300s", resp->body);
    cr_expect_eq(json_object_get_int(field(resp->json, "status")), status);
    if (needle != NULL) {
        const char *detail = str_field(resp->json, "detail");
        cr_expect(detail != NULL && strstr(detail, needle) != NULL, "detail \"%s\" lacks \"%s\"",
                  detail ? detail : "", needle);
    }
}

static void sign_in(long long id)
{
    lst_resp_t resp;
    api(&resp, id, "POST", "/api/auth/telegram", NULL);
    cr_assert(resp.status == 201 || resp.status == 200, "sign-in of %lld: %d %.300s", id, resp.status,
              resp.body);
    lst_resp_free(&resp);
}

/* A teacher with a profile and a group, a student member of it; returns the group id (static). */
static const char *seed_school(void)
{
    static char group_id[64], code[64];
    lst_resp_t resp;
    char path[256];

    sign_in(TEACHER_ID);
    sign_in(STUDENT_ID);
    sign_in(STRANGER_ID);
    sign_in(ADMIN_ID);
    api(&resp, TEACHER_ID, "PUT", "/api/teachers/me", "{\"bio\":\"Grammar nerd\",\"experience_years\":7}");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "PUT", "/api/teachers/me/languages/en", "{\"level\":\"C1\"}");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);
    api(&resp, STUDENT_ID, "PUT", "/api/students/me", "{\"goals\":\"speak\"}");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "POST", "/api/groups",
        "{\"title\":\"English B1\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":10}");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    json_object *g = field(resp.json, "group") != NULL ? field(resp.json, "group") : resp.json;
    snprintf(group_id, sizeof(group_id), "%s", str_field(g, "id"));
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/api/groups/%s/invitations", group_id);
    api(&resp, TEACHER_ID, "POST", path, "{}");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    json_object *inv = field(resp.json, "invitation") != NULL ? field(resp.json, "invitation") : resp.json;
    snprintf(code, sizeof(code), "%s", str_field(inv, "code"));
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/api/join/%s", code);
    api(&resp, STUDENT_ID, "POST", path, NULL);
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);
    return group_id;
}

static void profile(lst_resp_t *resp, long long as, long long whose)
{
    char path[64];
    snprintf(path, sizeof(path), "/api/user/profile/%lld", whose);
    api(resp, as, "GET", path, NULL);
}

/* Asserts a partial 200 whose `key` is null and whose errors name `service`. */
static void expect_partial(lst_resp_t *resp, const char *key, const char *service)
{
    cr_assert_eq(resp->status, 200, "%.300s", resp->body);
    cr_expect(has_null(resp->json, key), "%s is not null: %.400s", key, resp->body);
    cr_expect_eq(json_object_get_boolean(field(resp->json, "partial")), 1);
    json_object *errors = field(resp->json, "errors");
    int found = 0;
    for (size_t i = 0; errors != NULL && i < json_object_array_length(errors); i++) {
        json_object *e = json_object_array_get_idx(errors, i);
        if (strcmp(str_field(e, "service"), service) == 0) {
            found = 1;
            cr_expect_gt(json_object_get_int(field(e, "status")), 0);
            cr_expect_not_null(str_field(e, "detail"));
        }
    }
    cr_expect(found, "no errors entry for %s: %.400s", service, resp->body);
    char *h = lst_resp_header(resp, "x-partial");
    cr_expect(h != NULL && strcmp(h, "true") == 0, "X-Partial: %s", h ? h : "absent");
    free(h);
}

static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    int found = 0;
    cr_assert_not_null(f, "cannot read %s", path);
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* ---- authentication ---- */

Test(bff, authentication_rejects_missing_malformed_forged_and_expired_init_data)
{
    char auth[TMA_MAX_LEN + 64];
    lst_resp_t resp;

    /* The public vector is two years old: with the default age limit it has expired. */
    raw_call(&bff, &resp, "GET", "/api/user/profile/279058397", NULL, "Authorization: tma " VECTOR);
    expect_problem(&resp, 401, "expired");
    char *www = lst_resp_header(&resp, "www-authenticate");
    cr_expect(www != NULL && strcmp(www, "tma") == 0, "WWW-Authenticate: %s", www ? www : "absent");
    free(www);
    lst_resp_free(&resp);

    const struct {
        const char *name;
        const char *header;
        const char *detail;
    } cases[] = {
        {"no header", NULL, "required"},
        {"wrong scheme", "Authorization: Bearer " VECTOR, "scheme"},
        {"garbage", "Authorization: tma garbage", "key=value"},
        {"forged hash",
         "Authorization: tma query_id=AAHdF6IQAAAAAN0XohDhrOrc&auth_date=1662771648&hash=" VECTOR_HASH,
         "signature"},
        {"missing hash", "Authorization: tma auth_date=1662771648&user=%7B%22id%22%3A1%7D", "no hash"},
        {"non-hex hash", "Authorization: tma auth_date=1&hash=" VECTOR_HASH "zz", "hexadecimal"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw_call(&bff, &resp, "GET", "/api/user/profile/42", NULL, cases[i].header);
        cr_expect_eq(resp.status, 401, "%s: %d", cases[i].name, resp.status);
        expect_problem(&resp, 401, cases[i].detail);
        lst_resp_free(&resp);
    }

    /* A changed field breaks a good signature. */
    sign(auth, sizeof(auth), 42, "Eve", 0);
    char *p = strstr(auth, "auth_date=") + strlen("auth_date=");
    *p = *p == '1' ? '2' : '1';
    raw_call(&bff, &resp, "GET", "/api/user/profile/42", NULL, auth);
    expect_problem(&resp, 401, "signature");
    lst_resp_free(&resp);

    /* Signed two days ago: expired. */
    sign(auth, sizeof(auth), 42, "Eve", (long long)time(NULL) - 2 * 86400);
    raw_call(&bff, &resp, "POST", "/api/auth/telegram", NULL, auth);
    expect_problem(&resp, 401, "expired");
    lst_resp_free(&resp);

    /* Health checks need no signature. */
    raw_call(&bff, &resp, "GET", "/healthz", NULL, NULL);
    cr_expect_eq(resp.status, 200);
    lst_resp_free(&resp);

    /* With the age check off (INIT_DATA_MAX_AGE=0) the public vector signs its user in. */
    start_bff(&bff2, "INIT_DATA_MAX_AGE=0", NULL);
    raw_call(&bff2, &resp, "POST", "/api/auth/telegram", NULL, "Authorization: tma " VECTOR);
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int64(field(field(resp.json, "user"), "telegram_id")), 279058397);
    cr_expect_str_eq(str_field(field(resp.json, "user"), "username"), "vdkfrost");
    lst_resp_free(&resp);

    /* Neither the bot token nor an initData hash is ever logged. */
    cr_expect_eq(lst_daemon_stop(&bff2), 0);
    bff2.pid = 0;
    cr_expect_eq(lst_daemon_stop(&bff), 0);
    bff.pid = 0;
    const char *logs[] = {bff.log_path, bff2.log_path};
    for (int i = 0; i < 2; i++) {
        cr_expect(!file_contains(logs[i], "AAH5YkoiEuPk8"), "bot token in %s", logs[i]);
        cr_expect(!file_contains(logs[i], VECTOR_HASH), "initData hash in %s", logs[i]);
    }
}

/* ---- sign-in ---- */

static int registration_count(long long id)
{
    char sql[256];
    snprintf(
        sql, sizeof(sql),
        "SELECT count(*) FROM notifications WHERE recipient_telegram_id = %lld AND type = 'registration'",
        id);
    char *v = lst_pg_admin_exec(services[S_NOTIFICATION].dbname, sql);
    int n = atoi(v);
    free(v);
    return n;
}

Test(bff, sign_in_creates_then_updates_and_notifies_once)
{
    char auth[TMA_MAX_LEN + 64];
    lst_resp_t resp;

    sign(auth, sizeof(auth), 501, "Anna", 0);
    raw_call(&bff, &resp, "POST", "/api/auth/telegram", NULL, auth);
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_eq(json_object_get_boolean(field(resp.json, "created")), 1);
    json_object *user = field(resp.json, "user");
    cr_expect_eq(json_object_get_int64(field(user, "telegram_id")), 501);
    cr_expect_str_eq(str_field(user, "first_name"), "Anna");
    cr_expect_str_eq(str_field(user, "username"), "u501");
    cr_expect_str_eq(str_field(user, "role"), "student");
    lst_resp_free(&resp);

    sign(auth, sizeof(auth), 501, "Anya", 0);
    raw_call(&bff, &resp, "POST", "/api/auth/telegram", NULL, auth);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_boolean(field(resp.json, "created")), 0);
    cr_expect_str_eq(str_field(field(resp.json, "user"), "first_name"), "Anya");
    lst_resp_free(&resp);

    if (!have_notification)
        return;
    /* auth-service's outbox delivers the registration notification after the commit: poll for it. */
    int n = 0;
    for (int i = 0; i < 100 && (n = registration_count(501)) == 0; i++)
        usleep(50 * 1000);
    cr_expect_eq(n, 1, "registration notifications: %d", n);
    api(&resp, 501, "GET", "/api/notifications", NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    json_object *list = field(resp.json, "notifications");
    cr_assert_eq(json_object_array_length(list), 1, "%.300s", resp.body);
    cr_expect_str_eq(str_field(json_object_array_get_idx(list, 0), "type"), "registration");
    lst_resp_free(&resp);
    api(&resp, 501, "GET", "/api/notifications/unread_count", NULL);
    cr_expect_eq(json_object_get_int(field(resp.json, "unread")), 1, "%.300s", resp.body);
    lst_resp_free(&resp);
    api(&resp, 501, "POST", "/api/notifications/read_all", NULL);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
    api(&resp, 501, "GET", "/api/notifications/unread_count", NULL);
    cr_expect_eq(json_object_get_int(field(resp.json, "unread")), 0, "%.300s", resp.body);
    lst_resp_free(&resp);
    cr_expect_eq(registration_count(501), 1, "a second sign-in must not notify again");
}

/* ---- lessons ---- */

/* RFC 3339 UTC for `days` days from today at hh:00 (a time in the coming week). */
static void day_at(char *out, size_t size, int days, int hour)
{
    time_t t = time(NULL) + (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_hour = hour;
    tm.tm_min = tm.tm_sec = 0;
    t = timegm(&tm);
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* POST /api/lessons as `as`; the answer stays in resp. */
static void create_lesson(lst_resp_t *resp, long long as, const char *group_id, const char *students,
                          const char *starts_at, int minutes, const char *topic)
{
    char body[512], group[80] = "", list[200] = "";
    if (group_id != NULL)
        snprintf(group, sizeof(group), ",\"group_id\":\"%s\"", group_id);
    if (students != NULL)
        snprintf(list, sizeof(list), ",\"student_telegram_ids\":[%s]", students);
    snprintf(body, sizeof(body),
             "{\"teacher_telegram_id\":%d%s%s,\"starts_at\":\"%s\",\"duration_minutes\":%d,\"topic\":\"%s\"}",
             TEACHER_ID, group, list, starts_at, minutes, topic);
    api(resp, as, "POST", "/api/lessons", body);
}

typedef struct {
    char group_id[64];
    char group_lesson[64];      /* in two days at 10:00 UTC, the group's, "Past Simple" */
    char individual_lesson[64]; /* tomorrow at 15:00 UTC, the student alone, "Speaking" */
    char group_starts[32], individual_starts[32];
} school_t;

/* seed_school() and two lessons of its teacher, created through the BFF — the later one first, so
 * that time order differs from creation order. */
static void seed_school_with_lessons(school_t *s)
{
    lst_resp_t resp;
    snprintf(s->group_id, sizeof(s->group_id), "%s", seed_school());
    day_at(s->group_starts, sizeof(s->group_starts), 2, 10);
    day_at(s->individual_starts, sizeof(s->individual_starts), 1, 15);

    create_lesson(&resp, TEACHER_ID, s->group_id, NULL, s->group_starts, 60, "Past Simple");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    snprintf(s->group_lesson, sizeof(s->group_lesson), "%s", str_field(resp.json, "id"));
    json_object *participants = field(resp.json, "participants");
    cr_assert_eq(json_object_array_length(participants), 1, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int64(json_object_array_get_idx(participants, 0)), STUDENT_ID);
    lst_resp_free(&resp);

    create_lesson(&resp, TEACHER_ID, NULL, STR(STUDENT_ID), s->individual_starts, 45, "Speaking");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    snprintf(s->individual_lesson, sizeof(s->individual_lesson), "%s", str_field(resp.json, "id"));
    lst_resp_free(&resp);
}

/* Asserts that `lessons` holds exactly the given lesson ids, in that order. */
static void expect_lessons(json_object *lessons, const char *const *ids, size_t n, const char *body)
{
    cr_assert_not_null(lessons, "lessons missing or null: %.400s", body);
    cr_assert_eq(json_object_array_length(lessons), n, "%.600s", body);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(str_field(json_object_array_get_idx(lessons, i), "id"), ids[i], "lesson %zu: %.600s",
                         i, body);
}

static void schedule(lst_resp_t *resp, long long as, long long whose, const char *query)
{
    char path[512];
    snprintf(path, sizeof(path), "/api/schedule/%lld%s", whose, query);
    api(resp, as, "GET", path, NULL);
}

/* ---- views ---- */

static json_object *find_group(json_object *groups, const char *id)
{
    for (size_t i = 0; groups != NULL && i < json_object_array_length(groups); i++)
        if (strcmp(str_field(json_object_array_get_idx(groups, i), "id"), id) == 0)
            return json_object_array_get_idx(groups, i);
    return NULL;
}

static void expect_complete(lst_resp_t *resp)
{
    cr_expect_eq(json_object_get_boolean(field(resp->json, "partial")), 0, "%.400s", resp->body);
    cr_expect_eq(json_object_array_length(field(resp->json, "errors")), 0, "%.400s", resp->body);
    char *h = lst_resp_header(resp, "x-partial");
    cr_expect_null(h, "X-Partial on a complete answer");
    free(h);
}

Test(bff, views_of_a_seeded_school_with_lessons)
{
    school_t s;
    seed_school_with_lessons(&s);
    const char *both[] = {s.individual_lesson, s.group_lesson}; /* time order */
    lst_resp_t resp;
    char path[128];

    /* The student's profile: user, student profile, the group, both upcoming lessons in time order. */
    profile(&resp, STUDENT_ID, STUDENT_ID);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    json_object *v = resp.json;
    cr_expect_eq(json_object_get_int64(field(field(v, "user"), "telegram_id")), STUDENT_ID);
    cr_expect_str_eq(str_field(field(v, "user"), "first_name"), "User602");
    cr_expect(has_null(v, "teacher"), "a student without a teacher profile: teacher null");
    cr_expect_str_eq(str_field(field(v, "student"), "goals"), "speak");
    json_object *groups = field(v, "groups");
    cr_assert_eq(json_object_array_length(groups), 1, "%.400s", resp.body);
    cr_expect_str_eq(str_field(json_object_array_get_idx(groups, 0), "title"), "English B1");
    expect_lessons(field(v, "lessons"), both, 2, resp.body);
    json_object *first = json_object_array_get_idx(field(v, "lessons"), 0);
    cr_expect_str_eq(str_field(first, "topic"), "Speaking");
    cr_expect_str_eq(str_field(first, "starts_at"), s.individual_starts);
    cr_expect_eq(json_object_get_int(field(first, "duration_minutes")), 45);
    cr_expect_eq(json_object_get_int64(field(first, "teacher_telegram_id")), TEACHER_ID);
    cr_expect_str_eq(str_field(first, "status"), "scheduled");
    cr_expect_str_eq(str_field(json_object_array_get_idx(field(v, "lessons"), 1), "group_id"), s.group_id);
    expect_complete(&resp);
    lst_resp_free(&resp);

    /* The teacher's: teacher profile with languages, the group taught, the lessons taught. */
    profile(&resp, TEACHER_ID, TEACHER_ID);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(str_field(field(resp.json, "teacher"), "bio"), "Grammar nerd");
    json_object *langs = field(field(resp.json, "teacher"), "languages");
    cr_expect_eq(json_object_array_length(langs), 1);
    cr_expect(has_null(resp.json, "student"));
    cr_expect_not_null(find_group(field(resp.json, "groups"), s.group_id), "%.400s", resp.body);
    expect_lessons(field(resp.json, "lessons"), both, 2, resp.body);
    expect_complete(&resp);
    lst_resp_free(&resp);

    /* The group view: group, teacher (user + profile), members with names and enrollment status, and
     * the group's lessons only. */
    snprintf(path, sizeof(path), "/api/groups/%s", s.group_id);
    int enrolled = 0;
    for (int i = 0; i < 100 && !enrolled; i++) {
        api(&resp, STUDENT_ID, "GET", path, NULL);
        cr_assert_eq(resp.status, 200, "%.300s", resp.body);
        json_object *m = json_object_array_get_idx(field(resp.json, "members"), 0);
        enrolled = str_field(m, "enrollment_status") != NULL;
        if (!enrolled) {
            lst_resp_free(&resp);
            usleep(50 * 1000); /* the enrollment reaches students-service through groups' outbox */
        }
    }
    cr_assert(enrolled, "the member's enrollment never appeared");
    v = resp.json;
    cr_expect_str_eq(str_field(field(v, "group"), "title"), "English B1");
    cr_expect_eq(json_object_get_int(field(field(v, "group"), "member_count")), 1, "%.400s", resp.body);
    cr_expect_eq(json_object_get_int64(field(field(field(v, "teacher"), "user"), "telegram_id")), TEACHER_ID);
    cr_expect_str_eq(str_field(field(field(v, "teacher"), "user"), "first_name"), "User601");
    cr_expect_str_eq(str_field(field(field(v, "teacher"), "profile"), "bio"), "Grammar nerd");
    json_object *members = field(v, "members");
    cr_assert_eq(json_object_array_length(members), 1, "%.400s", resp.body);
    json_object *m = json_object_array_get_idx(members, 0);
    cr_expect_eq(json_object_get_int64(field(m, "telegram_id")), STUDENT_ID);
    cr_expect_str_eq(str_field(m, "first_name"), "User602");
    cr_expect_str_eq(str_field(m, "username"), "u602");
    cr_expect_not_null(str_field(m, "joined_at"));
    cr_expect_str_eq(str_field(m, "enrollment_status"), "enrolled");
    cr_expect(field(v, "progress") == NULL, "no progress recorded yet: %.400s", resp.body);
    const char *group_only[] = {s.group_lesson};
    expect_lessons(field(v, "lessons"), group_only, 1, resp.body);
    cr_expect_str_eq(str_field(json_object_array_get_idx(field(v, "lessons"), 0), "topic"), "Past Simple");
    expect_complete(&resp);
    lst_resp_free(&resp);

    /* The schedule: both lessons in time order, each with its group's title and teacher's name. */
    schedule(&resp, STUDENT_ID, STUDENT_ID, "");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    expect_lessons(field(resp.json, "lessons"), both, 2, resp.body);
    json_object *l0 = json_object_array_get_idx(field(resp.json, "lessons"), 0);
    json_object *l1 = json_object_array_get_idx(field(resp.json, "lessons"), 1);
    cr_expect(has_null(l0, "group_title"), "a lesson without a group has no title: %.400s", resp.body);
    cr_expect_str_eq(str_field(l0, "teacher_name"), "User601");
    cr_expect_str_eq(str_field(l0, "topic"), "Speaking");
    cr_expect_str_eq(str_field(l1, "group_title"), "English B1");
    cr_expect_str_eq(str_field(l1, "teacher_name"), "User601");
    cr_expect_str_eq(str_field(l1, "topic"), "Past Simple");
    cr_expect_eq(json_object_get_int64(field(resp.json, "telegram_id")), STUDENT_ID);
    expect_complete(&resp);
    lst_resp_free(&resp);
}

Test(bff, authorization_matrix)
{
    school_t s;
    seed_school_with_lessons(&s);
    const struct {
        long long as, whose;
        int status;
    } people[] = {
        {STUDENT_ID, STUDENT_ID, 200}, /* self */
        {TEACHER_ID, STUDENT_ID, 200}, /* the teacher of the student's group */
        {STRANGER_ID, STUDENT_ID, 403},
        {STUDENT_ID, TEACHER_ID, 403}, /* a student may not read the teacher's */
        {ADMIN_ID, STUDENT_ID, 200},
        {ADMIN_ID, TEACHER_ID, 200},
    };
    lst_resp_t resp;
    for (int view = 0; view < 2; view++) {
        for (size_t i = 0; i < sizeof(people) / sizeof(people[0]); i++) {
            if (view == 0)
                profile(&resp, people[i].as, people[i].whose);
            else
                schedule(&resp, people[i].as, people[i].whose, "");
            const char *what = view == 0 ? "profile" : "schedule";
            cr_expect_eq(resp.status, people[i].status, "%lld reads the %s of %lld: %d %.200s", people[i].as,
                         what, people[i].whose, resp.status, resp.body);
            if (people[i].status != 200) {
                expect_problem(&resp, people[i].status, NULL);
                cr_expect_null(field(resp.json, "user"), "data leaked with a %d", resp.status);
                cr_expect_null(field(resp.json, "lessons"), "data leaked with a %d", resp.status);
            } else {
                cr_expect_eq(json_object_array_length(field(resp.json, "lessons")), 2, "%s: %.400s", what,
                             resp.body);
            }
            lst_resp_free(&resp);
        }
    }
    profile(&resp, ADMIN_ID, 999999); /* admins learn that a user does not exist */
    expect_problem(&resp, 404, "not found");
    lst_resp_free(&resp);
    profile(&resp, STRANGER_ID, 999999); /* others do not */
    expect_problem(&resp, 403, NULL);
    lst_resp_free(&resp);

    char path[128];
    snprintf(path, sizeof(path), "/api/groups/%s", s.group_id);
    const struct {
        long long as;
        int status;
    } group_views[] = {{TEACHER_ID, 200}, {STUDENT_ID, 200}, {ADMIN_ID, 200}, {STRANGER_ID, 403}};
    for (size_t i = 0; i < sizeof(group_views) / sizeof(group_views[0]); i++) {
        api(&resp, group_views[i].as, "GET", path, NULL);
        cr_expect_eq(resp.status, group_views[i].status, "%lld reads the group: %d %.200s", group_views[i].as,
                     resp.status, resp.body);
        if (group_views[i].status != 200)
            cr_expect_null(field(resp.json, "group"), "data leaked with a %d", resp.status);
        lst_resp_free(&resp);
    }
    api(&resp, TEACHER_ID, "GET", "/api/groups/00000000-0000-4000-8000-000000000000", NULL);
    expect_problem(&resp, 404, "not found");
    lst_resp_free(&resp);

    /* One lesson: its teacher, its participants and admins. */
    snprintf(path, sizeof(path), "/api/lessons/%s", s.group_lesson);
    const struct {
        long long as;
        int status;
    } lesson_reads[] = {{TEACHER_ID, 200}, {STUDENT_ID, 200}, {ADMIN_ID, 200}, {STRANGER_ID, 403}};
    for (size_t i = 0; i < sizeof(lesson_reads) / sizeof(lesson_reads[0]); i++) {
        api(&resp, lesson_reads[i].as, "GET", path, NULL);
        cr_expect_eq(resp.status, lesson_reads[i].status, "%lld reads the lesson: %d %.200s",
                     lesson_reads[i].as, resp.status, resp.body);
        if (lesson_reads[i].status == 200) {
            cr_expect_str_eq(str_field(resp.json, "topic"), "Past Simple");
            cr_expect_eq(json_object_array_length(field(resp.json, "participants")), 1, "%.300s", resp.body);
        } else {
            expect_problem(&resp, 403, NULL);
            cr_expect_null(field(resp.json, "topic"), "data leaked with a %d", resp.status);
        }
        lst_resp_free(&resp);
    }
}

/* ---- calendar's writes through the BFF ---- */

Test(bff, lessons_are_created_changed_and_refused_through_the_bff)
{
    school_t s;
    seed_school_with_lessons(&s);
    lst_resp_t resp;
    char path[256], at[32], body[256];

    /* Calendar's 409 (overlap) and 422 (unknown student, a group of another teacher) reach the
     * client unchanged. */
    create_lesson(&resp, TEACHER_ID, NULL, STR(STUDENT_ID), s.group_starts, 30, "Clash");
    expect_problem(&resp, 409, s.group_lesson);
    lst_resp_free(&resp);
    day_at(at, sizeof(at), 3, 9);
    create_lesson(&resp, TEACHER_ID, NULL, STR(STUDENT_ID) ",424242", at, 30, "Ghost");
    expect_problem(&resp, 422, "424242");
    lst_resp_free(&resp);
    create_lesson(&resp, STUDENT_ID, NULL, NULL, at, 30, "Not mine"); /* for teacher 601 */
    expect_problem(&resp, 403, NULL);
    lst_resp_free(&resp);
    create_lesson(&resp, TEACHER_ID, NULL, NULL, at, 5, "Too short");
    expect_problem(&resp, 400, "duration_minutes");
    lst_resp_free(&resp);
    /* An admin may schedule for the teacher: the BFF passes the caller's role on. */
    create_lesson(&resp, ADMIN_ID, s.group_id, NULL, at, 30, "By the admin");
    cr_expect_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);

    /* Attendance opens at the lesson's start: the group's lesson, two days ahead, is refused (409
     * passed through); one that started ten minutes ago takes it. The teacher marks a participant;
     * others and non-participants are refused. */
    snprintf(path, sizeof(path), "/api/lessons/%s/attendance/%d", s.group_lesson, STUDENT_ID);
    api(&resp, TEACHER_ID, "PUT", path, "{\"status\":\"present\"}");
    expect_problem(&resp, 409, "not started");
    lst_resp_free(&resp);
    time_t started = time(NULL) - 600;
    struct tm started_tm;
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&started, &started_tm));
    create_lesson(&resp, TEACHER_ID, NULL, STR(STUDENT_ID), at, 30, "Started");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    char started_lesson[64];
    snprintf(started_lesson, sizeof(started_lesson), "%s", str_field(resp.json, "id"));
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/api/lessons/%s/attendance/%d", started_lesson, STUDENT_ID);
    api(&resp, TEACHER_ID, "PUT", path, "{\"status\":\"present\"}");
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(str_field(resp.json, "status"), "present");
    lst_resp_free(&resp);
    api(&resp, STUDENT_ID, "PUT", path, "{\"status\":\"present\"}");
    expect_problem(&resp, 403, NULL);
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "PUT", path, "{\"status\":\"asleep\"}");
    expect_problem(&resp, 400, NULL);
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/api/lessons/%s/attendance/%d", started_lesson, STRANGER_ID);
    api(&resp, TEACHER_ID, "PUT", path, "{\"status\":\"absent\"}");
    expect_problem(&resp, 404, NULL);
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/api/lessons/%s", started_lesson);
    api(&resp, STUDENT_ID, "GET", path, NULL);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect(strstr(resp.body, "present") != NULL, "attendance not in the lesson: %.400s", resp.body);
    lst_resp_free(&resp);

    /* Reschedule: onto the other lesson's time is an overlap (409); to a free time, version 2, and the
     * profile shows the new time. */
    snprintf(path, sizeof(path), "/api/lessons/%s/reschedule", s.group_lesson);
    snprintf(body, sizeof(body), "{\"starts_at\":\"%s\"}", s.individual_starts);
    api(&resp, TEACHER_ID, "POST", path, body);
    expect_problem(&resp, 409, NULL);
    lst_resp_free(&resp);
    day_at(at, sizeof(at), 4, 11);
    snprintf(body, sizeof(body), "{\"starts_at\":\"%s\",\"duration_minutes\":90}", at);
    api(&resp, TEACHER_ID, "POST", path, body);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int(field(resp.json, "version")), 2, "%.300s", resp.body);
    lst_resp_free(&resp);
    profile(&resp, STUDENT_ID, STUDENT_ID);
    json_object *last = json_object_array_get_idx(field(resp.json, "lessons"), 2);
    cr_expect_str_eq(str_field(last, "id"), s.group_lesson, "%.600s", resp.body);
    cr_expect_str_eq(str_field(last, "starts_at"), at);
    lst_resp_free(&resp);

    /* Cancel: 200, then 409 (already cancelled) passed through. */
    snprintf(path, sizeof(path), "/api/lessons/%s/cancel", s.individual_lesson);
    api(&resp, TEACHER_ID, "POST", path, "{\"reason\":\"ill\"}");
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(str_field(resp.json, "status"), "cancelled");
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "POST", path, NULL);
    expect_problem(&resp, 409, "cancelled");
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "POST", "/api/lessons/00000000-0000-4000-8000-000000000000/cancel", NULL);
    expect_problem(&resp, 404, NULL);
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "GET", "/api/lessons/00000000-0000-4000-8000-000000000000", NULL);
    expect_problem(&resp, 404, NULL);
    lst_resp_free(&resp);

    /* Weekly availability: set, read back; a lesson outside it is refused (409). */
    api(&resp, TEACHER_ID, "PUT", "/api/teachers/me/schedule",
        "{\"timezone\":\"UTC\",\"slots\":[{\"weekday\":1,\"start_time\":\"09:00\",\"end_time\":\"10:00\"}]}");
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "GET", "/api/teachers/me/schedule", NULL);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(str_field(resp.json, "timezone"), "UTC");
    cr_expect_eq(json_object_array_length(field(resp.json, "slots")), 1, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int64(field(resp.json, "teacher_telegram_id")), TEACHER_ID);
    lst_resp_free(&resp);
    day_at(at, sizeof(at), 5, 22);
    create_lesson(&resp, TEACHER_ID, NULL, STR(STUDENT_ID), at, 30, "Late");
    expect_problem(&resp, 409, NULL);
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "PUT", "/api/teachers/me/schedule",
        "{\"timezone\":\"Mars/Olympus\",\"slots\":[]}");
    expect_problem(&resp, 400, "timezone");
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "PUT", "/api/teachers/me/schedule", "{\"timezone\":\"UTC\",\"slots\":[]}");
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);

    /* Unavailable periods: add, list, a lesson inside is refused, delete, delete again 404. */
    char from[32], to[32];
    day_at(from, sizeof(from), 6, 0);
    day_at(to, sizeof(to), 6, 23);
    snprintf(body, sizeof(body), "{\"starts_at\":\"%s\",\"ends_at\":\"%s\",\"reason\":\"holiday\"}", from,
             to);
    api(&resp, TEACHER_ID, "POST", "/api/teachers/me/unavailable", body);
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    char period[64];
    snprintf(period, sizeof(period), "%s", str_field(resp.json, "id"));
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "GET", "/api/teachers/me/unavailable?limit=5", NULL);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_array_length(field(resp.json, "unavailable")), 1, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int(field(resp.json, "limit")), 5, "the query is passed on: %.300s",
                 resp.body);
    lst_resp_free(&resp);
    day_at(at, sizeof(at), 6, 12);
    create_lesson(&resp, TEACHER_ID, NULL, STR(STUDENT_ID), at, 30, "Holiday");
    expect_problem(&resp, 409, "unavailable");
    lst_resp_free(&resp);
    snprintf(body, sizeof(body), "{\"starts_at\":\"%s\",\"ends_at\":\"%s\"}", to, from);
    api(&resp, TEACHER_ID, "POST", "/api/teachers/me/unavailable", body);
    expect_problem(&resp, 400, "ends_at");
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/api/teachers/me/unavailable/%s", period);
    api(&resp, TEACHER_ID, "DELETE", path, NULL);
    cr_expect_eq(resp.status, 204, "%.300s", resp.body);
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "DELETE", path, NULL);
    expect_problem(&resp, 404, NULL);
    lst_resp_free(&resp);
    create_lesson(&resp, TEACHER_ID, NULL, STR(STUDENT_ID), at, 30, "No holiday after all");
    cr_expect_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);
}

/* ---- failures of the services ---- */

Test(bff, each_non_primary_service_down_gives_a_partial_answer)
{
    school_t s;
    seed_school_with_lessons(&s);
    lst_resp_t resp;
    char path[128];
    snprintf(path, sizeof(path), "/api/groups/%s", s.group_id);

    /* Here every failure must reach the service: a BFF whose breakers do not open. */
    cr_assert_eq(lst_daemon_stop(&bff), 0);
    breaker_env = "BREAKER_FAILURES=10000";
    start_bff(&bff, NULL, NULL);

    stop_service(&services[S_TEACHERS]);
    profile(&resp, TEACHER_ID, TEACHER_ID);
    expect_partial(&resp, "teacher", "teachers");
    cr_expect_not_null(field(resp.json, "user"));
    cr_expect_not_null(field(resp.json, "groups"));
    cr_expect_not_null(field(resp.json, "lessons"));
    lst_resp_free(&resp);
    start_service(&services[S_TEACHERS]);

    stop_service(&services[S_STUDENTS]);
    profile(&resp, STUDENT_ID, STUDENT_ID);
    expect_partial(&resp, "student", "students");
    lst_resp_free(&resp);
    start_service(&services[S_STUDENTS]);

    stop_service(&services[S_GROUPS]);
    profile(&resp, STUDENT_ID, STUDENT_ID);
    expect_partial(&resp, "groups", "groups");
    cr_expect_eq(json_object_array_length(field(resp.json, "lessons")), 2, "%.400s", resp.body);
    lst_resp_free(&resp);
    /* Without groups-service nobody can tell whether a teacher teaches the student: not 200, not 403. */
    profile(&resp, TEACHER_ID, STUDENT_ID);
    expect_problem(&resp, 503, "groups");
    lst_resp_free(&resp);
    /* The group is the group view's primary record. */
    api(&resp, TEACHER_ID, "GET", path, NULL);
    expect_problem(&resp, 503, "groups");
    lst_resp_free(&resp);
    /* The schedule without group titles: partial, the titles null, the names still there. */
    schedule(&resp, STUDENT_ID, STUDENT_ID, "");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    json_object *grouped = json_object_array_get_idx(field(resp.json, "lessons"), 1);
    cr_expect(has_null(grouped, "group_title"), "%.400s", resp.body);
    cr_expect_str_eq(str_field(grouped, "teacher_name"), "User601");
    cr_expect_eq(json_object_get_boolean(field(resp.json, "partial")), 1);
    lst_resp_free(&resp);
    start_service(&services[S_GROUPS]);

    stop_service(&services[S_CALENDAR]);
    profile(&resp, STUDENT_ID, STUDENT_ID);
    expect_partial(&resp, "lessons", "calendar");
    cr_expect_not_null(field(resp.json, "groups"));
    lst_resp_free(&resp);
    api(&resp, STUDENT_ID, "GET", path, NULL);
    expect_partial(&resp, "lessons", "calendar");
    cr_expect_not_null(field(resp.json, "members"));
    lst_resp_free(&resp);
    /* The lessons are the schedule's primary record. */
    schedule(&resp, STUDENT_ID, STUDENT_ID, "");
    expect_problem(&resp, 503, "calendar");
    lst_resp_free(&resp);
    start_service(&services[S_CALENDAR]);

    /* The payments are the own profile's only: someone else's profile has none and does not ask. */
    stop_service(&services[S_PAYMENT]);
    profile(&resp, STUDENT_ID, STUDENT_ID);
    expect_partial(&resp, "payments", "payment");
    cr_expect_not_null(field(resp.json, "groups"));
    lst_resp_free(&resp);
    profile(&resp, TEACHER_ID, STUDENT_ID);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_boolean(field(resp.json, "partial")), 0, "%.400s", resp.body);
    cr_expect(!json_object_object_get_ex(resp.json, "payments", NULL), "%.400s", resp.body);
    lst_resp_free(&resp);
    start_service(&services[S_PAYMENT]);

    /* Everything back: complete again. */
    profile(&resp, STUDENT_ID, STUDENT_ID);
    cr_expect_eq(json_object_get_boolean(field(resp.json, "partial")), 0, "%.400s", resp.body);
    cr_expect_eq(json_object_array_length(field(resp.json, "lessons")), 2, "%.400s", resp.body);
    lst_resp_free(&resp);

    /* auth-service holds the primary record of the profile: without it, 503. */
    stop_service(&services[S_AUTH]);
    profile(&resp, STUDENT_ID, STUDENT_ID);
    expect_problem(&resp, 503, "auth");
    lst_resp_free(&resp);
    start_service(&services[S_AUTH]);
}

static double timed_profile(lst_resp_t *resp, long long as)
{
    profile(resp, as, as);
    return resp->seconds;
}

Test(bff, a_hanging_service_costs_at_most_the_deadline_and_then_nothing)
{
    /* The one place for a fake: calendar-service replaced by one that hangs on demand. */
    atomic_store(&calendar_mode, CAL_HANG);
    calendar = lst_upstream_start();
    cr_assert_not_null(calendar);
    lst_upstream_set_handler(calendar, calendar_handler, NULL);
    cr_assert_eq(lst_daemon_stop(&bff), 0);
    start_bff(&bff, NULL, lst_upstream_url(calendar));
    sign_in(STUDENT_ID);
    lst_resp_t resp;

    for (int i = 0; i < BREAKER_FAILURES; i++) {
        double s = timed_profile(&resp, STUDENT_ID);
        expect_partial(&resp, "lessons", "calendar");
        cr_expect_lt(s, DEADLINE_MS / 1000.0 + 0.7, "a view took %.3f s with a deadline of %d ms", s,
                     DEADLINE_MS);
        cr_expect_gt(s, DEADLINE_MS / 1000.0 * 0.8, "answered in %.3f s: before the deadline?", s);
        lst_resp_free(&resp);
    }

    /* The breaker is open: the calendar part fails at once, without reaching the service. */
    lst_upstream_stats_t before, after;
    lst_upstream_stats(calendar, &before);
    double s = timed_profile(&resp, STUDENT_ID);
    expect_partial(&resp, "lessons", "calendar");
    cr_expect_lt(s, 0.3, "with the breaker open a view took %.3f s", s);
    cr_expect(strstr(resp.body, "circuit open") != NULL, "%.400s", resp.body);
    lst_resp_free(&resp);
    lst_upstream_stats(calendar, &after);
    cr_expect_eq(after.requests, before.requests, "an open breaker let a call through");

    /* The service recovers: after BREAKER_OPEN_MS a probe goes through and answers are complete again,
     * without restarting the BFF. */
    atomic_store(&calendar_mode, CAL_ANSWER);
    int complete = 0;
    for (int i = 0; i < 60 && !complete; i++) {
        timed_profile(&resp, STUDENT_ID);
        complete = resp.status == 200 && json_object_get_boolean(field(resp.json, "partial")) == 0;
        lst_resp_free(&resp);
        if (!complete)
            usleep(100 * 1000);
    }
    cr_expect(complete, "answers did not become complete after the service returned");

    /* An answer the BFF cannot pass on as it is (not json-c's plain form) counts as that part failing:
     * the profile is partial, the schedule (whose primary record it is) a 502. */
    atomic_store(&calendar_mode, CAL_ODD);
    profile(&resp, STUDENT_ID, STUDENT_ID);
    expect_partial(&resp, "lessons", "calendar");
    cr_expect(strstr(resp.body, "\"status\":502") != NULL, "%.400s", resp.body);
    lst_resp_free(&resp);
    schedule(&resp, STUDENT_ID, STUDENT_ID, "");
    expect_problem(&resp, 502, "calendar-service");
    lst_resp_free(&resp);

    /* The schedule sets group_title and teacher_name where json-c would: in place, else at the end. */
    atomic_store(&calendar_mode, CAL_TITLED);
    schedule(&resp, STUDENT_ID, STUDENT_ID, "");
    cr_expect_eq(resp.status, 200, "%.400s", resp.body);
    cr_expect(strstr(resp.body,
                     "\"lessons\":[{\"id\":\"x\",\"group_title\":null,\"teacher_telegram_id\":0,"
                     "\"teacher_name\":null},{\"group_title\":null,\"teacher_name\":null}]") != NULL,
              "%.400s", resp.body);
    lst_resp_free(&resp);
    atomic_store(&calendar_mode, CAL_ANSWER);
}

/* ---- writes and bad input ---- */

Test(bff, writes_pass_the_services_answers_through_and_bad_input_is_refused)
{
    const char *group_id = seed_school();
    lst_resp_t resp;
    char path[256];

    /* The owner's 404, 409 and 400 reach the client unchanged. */
    api(&resp, STRANGER_ID, "PUT", "/api/teachers/me/languages/en", "{\"level\":\"C1\"}");
    expect_problem(&resp, 404, NULL);
    lst_resp_free(&resp);
    api(&resp, STUDENT_ID, "POST", "/api/join/nosuchcode123", NULL);
    expect_problem(&resp, 404, NULL);
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "PUT", "/api/teachers/me", "{\"experience_years\":500}");
    expect_problem(&resp, 400, "experience_years");
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "POST", "/api/groups", "{\"title\":\"x\"}");
    expect_problem(&resp, 400, NULL);
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/api/groups/%s/invitations", group_id);
    api(&resp, STUDENT_ID, "POST", path, "{}");
    expect_problem(&resp, 403, NULL); /* only the teacher invites */
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/api/groups/%s/members/%d", group_id, STUDENT_ID);
    api(&resp, STUDENT_ID, "DELETE", path, NULL);
    cr_expect_eq(resp.status, 204, "%.300s", resp.body);
    lst_resp_free(&resp);
    api(&resp, STUDENT_ID, "DELETE", path, NULL);
    expect_problem(&resp, 404, NULL);
    lst_resp_free(&resp);
    /* An admin may act for the teacher: the BFF passes the caller's role on. */
    snprintf(path, sizeof(path), "/api/groups/%s", group_id);
    api(&resp, ADMIN_ID, "PATCH", path, "{\"title\":\"English B1+\"}");
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
    api(&resp, STRANGER_ID, "PATCH", path, "{\"title\":\"mine\"}");
    expect_problem(&resp, 403, NULL);
    lst_resp_free(&resp);
    /* Joining twice: 409. */
    snprintf(path, sizeof(path), "/api/groups/%s/invitations", group_id);
    api(&resp, TEACHER_ID, "POST", path, "{}");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    json_object *inv = field(resp.json, "invitation") != NULL ? field(resp.json, "invitation") : resp.json;
    char join[128];
    snprintf(join, sizeof(join), "/api/join/%s", str_field(inv, "code"));
    lst_resp_free(&resp);
    api(&resp, STUDENT_ID, "POST", join, NULL);
    cr_expect_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);
    api(&resp, STUDENT_ID, "POST", join, NULL);
    expect_problem(&resp, 409, NULL);
    lst_resp_free(&resp);

    /* Bad input refused by the BFF itself. */
    const struct {
        const char *method, *path, *body;
        int status;
    } bad[] = {
        {"GET", "/api/user/profile/abc", NULL, 400},
        {"GET", "/api/user/profile/-1", NULL, 400},
        {"GET", "/api/user/profile/0", NULL, 400},
        {"GET", "/api/user/profile/99999999999999999999", NULL, 400},
        {"GET", "/api/user/profile/9007199254740992", NULL, 400},
        {"GET", "/api/schedule/abc", NULL, 400},
        {"GET", "/api/groups/not-a-uuid", NULL, 400},
        {"DELETE", "/api/groups/00000000-0000-4000-8000-000000000000/members/x1", NULL, 400},
        {"POST", "/api/notifications/123/read", NULL, 400},
        {"POST", "/api/join/a~b", NULL, 400},
        {"POST", "/api/join/a%2Fb", NULL, 400}, /* an encoded '/': refused before routing */
        {"PUT", "/api/teachers/me", "{\"bio\":", 400},
        {"PUT", "/api/students/me", "[1,2]", 400},
        {"POST", "/api/groups", "{\"title\":\"x\"} trailing", 400},
        {"POST", "/api/lessons", "{\"teacher_telegram_id\":", 400},
        {"GET", "/api/lessons/not-a-uuid", NULL, 400},
        {"POST", "/api/lessons/00000000-0000-4000-8000-00000000000/cancel", NULL, 400},
        {"PUT", "/api/lessons/00000000-0000-4000-8000-000000000000/attendance/abc", "{}", 400},
        {"PUT", "/api/lessons/00000000-0000-4000-8000-000000000000/attendance/18446744073709551616", "{}",
         400},
        {"DELETE", "/api/teachers/me/unavailable/12", NULL, 400},
        {"PUT", "/api/teachers/me/schedule", "\"slots\"", 400},
        {"GET", "/api/nothing-here", NULL, 404},
        {"DELETE", "/api/auth/telegram", NULL, 405},
        {"DELETE", "/api/lessons", NULL, 405},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        api(&resp, TEACHER_ID, bad[i].method, bad[i].path, bad[i].body);
        cr_expect_eq(resp.status, bad[i].status, "%s %s: %d %.200s", bad[i].method, bad[i].path, resp.status,
                     resp.body);
        expect_problem(&resp, bad[i].status, NULL);
        lst_resp_free(&resp);
    }
    /* Over MAX_BODY_BYTES (4096 here). */
    char *big = malloc(8192);
    memset(big, ' ', 8191);
    big[0] = '{';
    big[8189] = '}';
    big[8190] = '\0';
    api(&resp, TEACHER_ID, "PUT", "/api/teachers/me", big);
    expect_problem(&resp, 413, NULL);
    lst_resp_free(&resp);
    api(&resp, TEACHER_ID, "POST", "/api/lessons", big);
    expect_problem(&resp, 413, NULL);
    lst_resp_free(&resp);
    free(big);
}

/* ---- schedule ---- */

Test(bff, schedule_bounds_are_checked_and_normalised)
{
    school_t s;
    seed_school_with_lessons(&s);
    lst_resp_t resp;
    char query[256], date[16];

    /* [14:00Z, 16:00Z) of tomorrow, written with offsets: only the 15:00 lesson. */
    snprintf(date, sizeof(date), "%.10s", s.individual_starts);
    snprintf(query, sizeof(query), "?from=%sT17:00:00%%2B03:00&to=%sT11:00:00-05:00", date, date);
    schedule(&resp, STUDENT_ID, STUDENT_ID, query);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    char want[32];
    snprintf(want, sizeof(want), "%sT14:00:00Z", date);
    cr_expect_str_eq(str_field(resp.json, "from"), want);
    snprintf(want, sizeof(want), "%sT16:00:00Z", date);
    cr_expect_str_eq(str_field(resp.json, "to"), want);
    const char *one[] = {s.individual_lesson};
    expect_lessons(field(resp.json, "lessons"), one, 1, resp.body);
    lst_resp_free(&resp);

    /* [from, to): a lesson starting exactly at `to` is not in it. */
    snprintf(query, sizeof(query), "?from=%sT00:00:00Z&to=%s", date, s.individual_starts);
    schedule(&resp, STUDENT_ID, STUDENT_ID, query);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_array_length(field(resp.json, "lessons")), 0, "%.300s", resp.body);
    lst_resp_free(&resp);

    const char *bad[] = {"?from=yesterday",
                         "?to=2030-13-01T00:00:00Z",
                         "?from=2030-01-01",
                         "?from=2030-01-08T00:00:00Z&to=2030-01-01T00:00:00Z",
                         "?from=2030-01-01T00:00:00Z&to=2030-01-01T00:00:00Z",
                         "?from=2030-01-01T00:00:00Z&to=2030-03-05T00:00:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        schedule(&resp, STUDENT_ID, STUDENT_ID, bad[i]);
        cr_expect_eq(resp.status, 400, "%s: %d", bad[i], resp.status);
        expect_problem(&resp, 400, NULL);
        lst_resp_free(&resp);
    }
}

/* ---- traces across daemons ---- */

#define TRACE_VIEW   "0af7651916cd43dd8448eb211c80319c"
#define TRACE_LESSON "4bf92f3577b34da6a3ce929d0e0e4736"
#define CALLER_SPAN  "b7ad6b7169203331"

/* api() with `traceparent: <traceparent>`. */
static int api_traced(lst_resp_t *resp, long long as, const char *method, const char *path, const char *body,
                      const char *traceparent)
{
    char auth[TMA_MAX_LEN + 64], name[32], tp[128], url[512];
    snprintf(name, sizeof(name), "User%lld", as);
    sign(auth, sizeof(auth), as, name, 0);
    snprintf(tp, sizeof(tp), "traceparent: %s", traceparent);
    snprintf(url, sizeof(url), "%s%s", bff.base_url, path);
    const char *headers[] = {auth, tp, body != NULL ? "Content-Type: application/json" : NULL, NULL};
    return lst_http(resp, method, url, headers, body);
}

/* The first line of d's log with this trace id, message and (when not NULL) path prefix: a new
 * reference, or NULL. */
static json_object *trace_line(const lst_daemon_t *d, const char *trace_id, const char *msg, const char *path)
{
    char id[64], m[96];
    snprintf(id, sizeof(id), "\"trace_id\":\"%s\"", trace_id);
    snprintf(m, sizeof(m), "\"msg\":\"%s\"", msg);
    const char *needles[] = {id, m, NULL};
    json_object *lines = lst_log_wait(d, needles, 1), *found = NULL;
    for (size_t i = 0; found == NULL && i < json_object_array_length(lines); i++) {
        json_object *l = json_object_array_get_idx(lines, i);
        const char *p = str_field(l, "path");
        if (path == NULL || (p != NULL && strncmp(p, path, strlen(path)) == 0))
            found = json_object_get(l);
    }
    json_object_put(lines);
    return found;
}

/* Asserts that d's log has an access line of trace_id for path (a prefix) naming parent_span as its
 * caller's span (no parent when NULL); its own span id goes to span. */
static void expect_access(const lst_daemon_t *d, const char *what, const char *trace_id, const char *path,
                          const char *parent_span, char span[32])
{
    json_object *l = trace_line(d, trace_id, "request", path);
    cr_assert_not_null(l, "%s: no access line of trace %s for %s in %s", what, trace_id, path, d->log_path);
    const char *own = str_field(l, "span_id"), *parent = str_field(l, "parent_span_id");
    cr_expect(own != NULL && strlen(own) == 16, "%s: span_id %s", what, own ? own : "absent");
    if (parent_span != NULL)
        cr_expect(parent != NULL && strcmp(parent, parent_span) == 0, "%s: parent_span_id %s, want %s", what,
                  parent ? parent : "absent", parent_span);
    else
        cr_expect_null(parent, "%s: a new trace has no parent, got %s", what, parent);
    snprintf(span, 32, "%s", own != NULL ? own : "");
    json_object_put(l);
}

static void expect_trace_header(lst_resp_t *resp, const char *trace_id)
{
    char *h = lst_resp_header(resp, "x-trace-id");
    cr_expect(h != NULL && strcmp(h, trace_id) == 0, "X-Trace-Id %s, want %s", h ? h : "absent", trace_id);
    free(h);
}

Test(bff, a_view_s_trace_id_is_on_the_lines_of_every_service_it_asks)
{
    school_t s;
    seed_school_with_lessons(&s);
    lst_resp_t resp;
    char path[64], bff_span[32], span[32];
    snprintf(path, sizeof(path), "/api/user/profile/%d", STUDENT_ID);
    api_traced(&resp, STUDENT_ID, "GET", path, NULL, "00-" TRACE_VIEW "-" CALLER_SPAN "-01");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_boolean(field(resp.json, "partial")), 0, "%.300s", resp.body);
    expect_trace_header(&resp, TRACE_VIEW);
    lst_resp_free(&resp);

    /* The BFF continues the caller's trace; each service's request is a child of the BFF's span. */
    expect_access(&bff, "bff", TRACE_VIEW, path, CALLER_SPAN, bff_span);
    static const int asked[] = {S_AUTH, S_TEACHERS, S_STUDENTS, S_GROUPS, S_CALENDAR, S_PAYMENT};
    for (size_t i = 0; i < sizeof(asked) / sizeof(asked[0]); i++)
        expect_access(&services[asked[i]].d, services[asked[i]].name, TRACE_VIEW, "/", bff_span, span);
    /* The BFF's own line for each call carries it too. */
    char id[64];
    snprintf(id, sizeof(id), "\"trace_id\":\"%s\"", TRACE_VIEW);
    const char *calls[] = {id, "\"msg\":\"http call\"", NULL};
    json_object *lines = lst_log_wait(&bff, calls, 6);
    cr_expect_geq(json_object_array_length(lines), 6, "http call lines of the trace: %zu",
                  json_object_array_length(lines));
    json_object_put(lines);
}

static char *notification_db_value(const char *sql_fmt, const char *arg)
{
    char sql[512];
    snprintf(sql, sizeof(sql), sql_fmt, arg);
    return lst_pg_admin_exec(services[S_NOTIFICATION].dbname, sql);
}

Test(bff, a_lesson_s_trace_reaches_the_notification_delivery_through_the_outbox)
{
    cr_assert(have_notification, "notification-service is not built");
    school_t s;
    seed_school_with_lessons(&s);
    char starts[32], bff_span[32], calendar_span[32], span[32];
    day_at(starts, sizeof(starts), 3, 9);
    char body[512];
    snprintf(body, sizeof(body),
             "{\"teacher_telegram_id\":%d,\"group_id\":\"%s\",\"starts_at\":\"%s\",\"duration_minutes\":60,"
             "\"topic\":\"Traced\"}",
             TEACHER_ID, s.group_id, starts);
    lst_resp_t resp;
    api_traced(&resp, TEACHER_ID, "POST", "/api/lessons", body, "00-" TRACE_LESSON "-" CALLER_SPAN "-01");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    expect_trace_header(&resp, TRACE_LESSON);
    char lesson[64];
    snprintf(lesson, sizeof(lesson), "%s", str_field(resp.json, "id"));
    lst_resp_free(&resp);

    expect_access(&bff, "bff", TRACE_LESSON, "/api/lessons", CALLER_SPAN, bff_span);
    expect_access(&services[S_CALENDAR].d, "calendar", TRACE_LESSON, "/lessons", bff_span, calendar_span);
    /* calendar-service asks teachers- and groups-service while the BFF waits: children of its span. */
    expect_access(&services[S_TEACHERS].d, "teachers", TRACE_LESSON, "/teachers", calendar_span, span);
    expect_access(&services[S_GROUPS].d, "groups", TRACE_LESSON, "/groups", calendar_span, span);
    /* The outbox row keeps calendar's traceparent: the trace, calendar's span as the parent. */
    char sql[256], want[96];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(traceparent, ',') FROM outbox WHERE idempotency_key LIKE 'lesson:%s:%%'",
             lesson);
    char *tp = lst_pg_admin_exec(services[S_CALENDAR].dbname, sql);
    snprintf(want, sizeof(want), "00-%s-%s-01", TRACE_LESSON, calendar_span);
    cr_expect_str_eq(tp, want);
    free(tp);

    /* After the commit the outbox delivers to notification-service, as a child of calendar's span, and
     * the notification's delivery (stored: no Telegram here) logs the same trace id. Bounded poll. */
    json_object *delivered = NULL;
    for (int i = 0; i < 200 && delivered == NULL; i++) {
        delivered =
            trace_line(&services[S_NOTIFICATION].d, TRACE_LESSON, "notification delivered (stored)", NULL);
        if (delivered == NULL)
            usleep(50 * 1000);
    }
    cr_assert_not_null(delivered, "no delivery line of trace %s in %s", TRACE_LESSON,
                       services[S_NOTIFICATION].d.log_path);
    cr_expect_str_eq(str_field(delivered, "type"), "lesson_scheduled");
    cr_expect_str_eq(str_field(delivered, "recipient_telegram_id"), STR(STUDENT_ID));
    json_object_put(delivered);
    expect_access(&services[S_NOTIFICATION].d, "notification", TRACE_LESSON, "/notifications", calendar_span,
                  span);

    /* The notification keeps the trace id, and the lesson's other notifications do not have it. */
    char *tid = notification_db_value("SELECT string_agg(DISTINCT COALESCE(trace_id, 'none'), ',')"
                                      " FROM notifications WHERE params->>'topic' = '%s'",
                                      "Traced");
    cr_expect_str_eq(tid, TRACE_LESSON);
    free(tid);
    char *other = notification_db_value("SELECT count(*) FROM notifications WHERE trace_id = '%s'"
                                        " AND params->>'topic' <> 'Traced'",
                                        TRACE_LESSON);
    cr_expect_str_eq(other, "0");
    free(other);
}

Test(bff, an_invalid_traceparent_starts_a_new_trace)
{
    seed_school();
    static const char *const invalid[] = {
        "00-0AF7651916CD43DD8448EB211C80319C-" CALLER_SPAN "-01", /* upper case */
        "00-00000000000000000000000000000000-" CALLER_SPAN "-01", /* all-zero trace id */
        "00-" TRACE_VIEW "-0000000000000000-01",                  /* all-zero parent */
        "00-" TRACE_VIEW "-" CALLER_SPAN "-01-extra",             /* version 00 with more */
    };
    char path[64], span[32], bff_span[32];
    snprintf(path, sizeof(path), "/api/user/profile/%d", STUDENT_ID);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        lst_resp_t resp;
        api_traced(&resp, STUDENT_ID, "GET", path, NULL, invalid[i]);
        cr_assert_eq(resp.status, 200, "%.300s", resp.body);
        char *h = lst_resp_header(&resp, "x-trace-id");
        lst_resp_free(&resp);
        cr_assert(h != NULL && strlen(h) == 32 && strspn(h, "0123456789abcdef") == 32, "X-Trace-Id %s",
                  h ? h : "absent");
        cr_expect_str_neq(h, TRACE_VIEW, "%s was continued", invalid[i]);
        /* A new trace: no parent at the BFF; the services it asked are its children. */
        expect_access(&bff, "bff", h, path, NULL, bff_span);
        expect_access(&services[S_AUTH].d, "auth", h, "/users/", bff_span, span);
        free(h);
    }
    cr_expect_null(trace_line(&bff, TRACE_VIEW, "request", NULL), "an invalid traceparent was continued");
}
