/*
 * auth-service end to end: the real daemon on a fresh database of the test cluster.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "migrate.h"

#define ADMIN_ID 1000
#define DAEMON   "services/auth/auth-service"

static lst_daemon_t daemon_;
static char *dbname;
static char *conninfo;
static char *token;
static char *data_key;
static char auth_header[600];

static void daemon_env(const char **env, size_t cap, char *bufs[4], const char *db_url, const char *extra)
{
    size_t n = 0;
    asprintf(&bufs[0], "DATABASE_URL=%s", db_url);
    asprintf(&bufs[1], "INTERNAL_TOKEN=%s", token);
    asprintf(&bufs[2], "AUTH_DATA_KEY=%s", data_key);
    asprintf(&bufs[3], "ADMIN_TELEGRAM_IDS=%d", ADMIN_ID);
    for (int i = 0; i < 4; i++)
        env[n++] = bufs[i];
    /* Where nothing ever listens, unless a test says otherwise: its outbox keeps what it queues. */
    if (extra == NULL || strncmp(extra, "NOTIFICATION_URL=", 17) != 0)
        env[n++] = "NOTIFICATION_URL=unix:/nonexistent/ls-no-notification-service.sock";
    env[n++] = "THREADS=2";
    env[n++] = "LOG_LEVEL=debug";
    if (extra != NULL)
        env[n++] = extra;
    env[n] = NULL;
    cr_assert_lt(n, cap);
}

static void start_auth(const char *extra)
{
    const char *env[12];
    char *bufs[4];
    daemon_env(env, 12, bufs, conninfo, extra);
    lst_daemon_start(&daemon_, DAEMON, env);
    for (int i = 0; i < 4; i++)
        free(bufs[i]);
}

static void setup(void)
{
    token = lst_random_hex(24);
    data_key = lst_random_hex(32);
    snprintf(auth_header, sizeof(auth_header), "Authorization: Bearer %s", token);
    conninfo = lst_db_create("auth", &dbname);
    start_auth("MAX_BODY_BYTES=2048");
}

static void teardown(void)
{
    lst_daemon_expect_clean_stop(&daemon_);
    free(conninfo);
    free(dbname);
    free(token);
    free(data_key);
}

TestSuite(auth, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ---- */

static int call(lst_resp_t *resp, const char *method, const char *path, const char *body, const char *actor)
{
    return lst_call_as(resp, daemon_.base_url, token, method, path, body, actor, NULL);
}

static void create_user(long long id, const char *first_name)
{
    char path[64], body[256];
    lst_resp_t resp;
    snprintf(path, sizeof(path), "/users/%lld", id);
    snprintf(body, sizeof(body), "{\"first_name\":\"%s\",\"username\":\"u%lld\",\"language_code\":\"ru\"}",
             first_name, id);
    call(&resp, "PUT", path, body, NULL);
    cr_assert_eq(resp.status, 201, "PUT %s: %d %.300s", path, resp.status, resp.body);
    lst_resp_free(&resp);
}

static long long audit_count(const char *where)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit_log WHERE %s", where);
    char *v = lst_pg_admin_exec(dbname, sql);
    long long n = atoll(v);
    free(v);
    return n;
}

/* ---- create, update, read ---- */

Test(auth, put_creates_then_updates_and_get_reads)
{
    lst_resp_t resp;
    call(&resp, "PUT", "/users/555",
         "{\"first_name\":\"Анна\",\"last_name\":\"Petrova\",\"username\":\"anna\",\"language_code\":\"ru\","
         "\"photo_url\":\"https://t.me/i/anna.jpg\"}",
         NULL);
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_assert_eq(json_object_get_boolean(lst_field(resp.json, "created")), 1);
    json_object *user = lst_field(resp.json, "user");
    cr_expect_eq(json_object_get_int64(lst_field(user, "telegram_id")), 555);
    cr_expect_str_eq(lst_str_field(user, "first_name"), "Анна");
    cr_expect_str_eq(lst_str_field(user, "role"), "student");
    cr_expect_eq(json_object_get_boolean(lst_field(user, "is_verified")), 0);
    cr_expect_null(lst_field(user, "phone_number"));
    cr_expect_null(lst_field(user, "phone_encrypted"), "the sealed column must never be answered");
    const char *created_at = lst_str_field(user, "created_at");
    cr_assert_not_null(created_at);
    cr_expect_eq(created_at[10], 'T');
    cr_expect_eq(created_at[strlen(created_at) - 1], 'Z', "times are RFC 3339 UTC: %s", created_at);
    lst_resp_free(&resp);

    call(&resp, "PUT", "/users/555", "{\"first_name\":\"Anya\",\"username\":\"anya\"}", "555");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_boolean(lst_field(resp.json, "created")), 0);
    cr_expect_str_eq(lst_str_field(lst_field(resp.json, "user"), "first_name"), "Anya");
    cr_expect_null(lst_field(lst_field(resp.json, "user"), "last_name"), "PUT replaces the Telegram data");
    lst_resp_free(&resp);

    call(&resp, "GET", "/users/555", NULL, NULL);
    cr_assert_eq(resp.status, 200);
    cr_expect_str_eq(lst_str_field(resp.json, "username"), "anya");
    cr_expect_null(lst_field(resp.json, "language_code"));
    lst_resp_free(&resp);

    cr_expect_eq(audit_count("entity_id = '555' AND action = 'user.create' AND actor_telegram_id = 555"), 1);
    cr_expect_eq(audit_count("entity_id = '555' AND action = 'user.update'"), 1);
}

Test(auth, phone_number_is_encrypted_at_rest)
{
    lst_resp_t resp;
    call(&resp, "PUT", "/users/777", "{\"first_name\":\"Ivan\",\"phone_number\":\"+79991234567\"}", NULL);
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(lst_field(resp.json, "user"), "phone_number"), "+79991234567");
    lst_resp_free(&resp);

    char *stored = lst_pg_admin_exec(
        dbname, "SELECT encode(phone_encrypted, 'escape') FROM users WHERE telegram_id = 777");
    cr_expect(strlen(stored) > 20, "phone not stored");
    cr_expect_null(strstr(stored, "9991234567"), "phone stored in clear");
    free(stored);
    char *audit = lst_pg_admin_exec(dbname, "SELECT string_agg(changes::text, ' ') FROM audit_log");
    cr_expect_null(strstr(audit, "9991234567"), "phone written to the audit log: %s", audit);
    free(audit);

    /* Absent keeps it; null clears it. */
    call(&resp, "PUT", "/users/777", "{\"first_name\":\"Ivan\"}", NULL);
    cr_expect_str_eq(lst_str_field(lst_field(resp.json, "user"), "phone_number"), "+79991234567");
    lst_resp_free(&resp);
    call(&resp, "PUT", "/users/777", "{\"first_name\":\"Ivan\",\"phone_number\":null}", NULL);
    cr_expect_null(lst_field(lst_field(resp.json, "user"), "phone_number"));
    lst_resp_free(&resp);
}

Test(auth, admin_ids_get_the_admin_role_on_first_sign_in)
{
    lst_resp_t resp;
    call(&resp, "PUT", "/users/1000", "{\"first_name\":\"Boss\"}", NULL);
    cr_assert_eq(resp.status, 201);
    cr_expect_str_eq(lst_str_field(lst_field(resp.json, "user"), "role"), "admin");
    lst_resp_free(&resp);
}

Test(auth, put_for_someone_else_is_forbidden)
{
    lst_resp_t resp;
    call(&resp, "PUT", "/users/556", "{\"first_name\":\"Eve\"}", "557");
    lst_expect_problem(&resp, 403, "only the user");
    lst_resp_free(&resp);
    call(&resp, "GET", "/users/556", NULL, NULL);
    cr_expect_eq(resp.status, 404, "a refused PUT must change nothing");
    lst_resp_free(&resp);
}

/* ---- batch ---- */

Test(auth, batch_read_in_the_order_asked_with_missing_ids)
{
    create_user(11, "One");
    create_user(22, "Two");
    create_user(33, "Three");
    lst_resp_t resp;
    call(&resp, "GET", "/users?ids=33,999,11,22", NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    json_object *users = lst_field(resp.json, "users"), *missing = lst_field(resp.json, "missing");
    cr_assert_eq(json_object_array_length(users), 3);
    cr_expect_eq(json_object_get_int64(lst_field(json_object_array_get_idx(users, 0), "telegram_id")), 33);
    cr_expect_eq(json_object_get_int64(lst_field(json_object_array_get_idx(users, 1), "telegram_id")), 11);
    cr_expect_eq(json_object_get_int64(lst_field(json_object_array_get_idx(users, 2), "telegram_id")), 22);
    cr_assert_eq(json_object_array_length(missing), 1);
    cr_expect_eq(json_object_get_int64(json_object_array_get_idx(missing, 0)), 999);
    lst_resp_free(&resp);
}

Test(auth, batch_is_bounded_and_validated)
{
    char path[4096] = "/users?ids=";
    size_t off = strlen(path);
    for (int i = 1; i <= 101; i++)
        off += (size_t)snprintf(path + off, sizeof(path) - off, "%s%d", i > 1 ? "," : "", i);
    lst_resp_t resp;
    call(&resp, "GET", path, NULL, NULL);
    lst_expect_problem(&resp, 400, "at most 100");
    lst_resp_free(&resp);

    static const char *const bad[] = {"/users",          "/users?ids=",   "/users?ids=1,abc",
                                      "/users?ids=1,,2", "/users?ids=-4", "/users?ids=99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call(&resp, "GET", bad[i], NULL, NULL);
        lst_expect_problem(&resp, 400, "ids");
        lst_resp_free(&resp);
    }
}

/* ---- bad input ---- */

Test(auth, bad_ids_in_the_path_are_400)
{
    static const char *const paths[] = {
        "/users/abc", "/users/-1",  "/users/0", "/users/99999999999999999999", "/users/9007199254740992",
        "/users/1.5", "/users/0x10"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        lst_resp_t resp;
        call(&resp, "GET", paths[i], NULL, NULL);
        lst_expect_problem(&resp, 400, "telegram_id");
        lst_resp_free(&resp);
        call(&resp, "PUT", paths[i], "{\"first_name\":\"X\"}", NULL);
        lst_expect_problem(&resp, 400, "telegram_id");
        lst_resp_free(&resp);
    }
}

Test(auth, malformed_json_and_wrong_types_are_400_and_change_nothing)
{
    static const struct {
        const char *body, *needle;
    } cases[] = {
        {"{\"first_name\":", "malformed JSON"},
        {"not json", "malformed JSON"},
        {"[]", "JSON object"},
        {"", "empty body"},
        {"{}", "first_name"},
        {"{\"first_name\":42}", "first_name"},
        {"{\"first_name\":\"A\",\"username\":[]}", "username"},
        {"{\"first_name\":\"A\",\"role\":\"admin\"}", "role"},
        {"{\"first_name\":\"A\",\"phone_number\":12345}", "phone_number"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lst_resp_t resp;
        call(&resp, "PUT", "/users/4242", cases[i].body, NULL);
        lst_expect_problem(&resp, 400, cases[i].needle);
        lst_resp_free(&resp);
    }
    lst_resp_t resp;
    call(&resp, "GET", "/users/4242", NULL, NULL);
    cr_expect_eq(resp.status, 404);
    lst_resp_free(&resp);
    cr_expect_eq(audit_count("true"), 0);
}

Test(auth, internal_token_is_required)
{
    char url[256];
    lst_resp_t resp;
    snprintf(url, sizeof(url), "%s/users/1", daemon_.base_url);
    lst_http(&resp, "GET", url, NULL, NULL);
    lst_expect_problem(&resp, 401, NULL);
    lst_resp_free(&resp);

    const char *wrong[] = {"Authorization: Bearer not-the-token-at-all", NULL};
    lst_http(&resp, "GET", url, wrong, NULL);
    lst_expect_problem(&resp, 401, NULL);
    lst_resp_free(&resp);

    char almost[600];
    snprintf(almost, sizeof(almost), "Authorization: Basic %s", token);
    const char *scheme[] = {almost, NULL};
    lst_http(&resp, "GET", url, scheme, NULL);
    lst_expect_problem(&resp, 401, NULL);
    lst_resp_free(&resp);

    /* Health checks are open. */
    snprintf(url, sizeof(url), "%s/healthz", daemon_.base_url);
    cr_expect_eq(lst_http(&resp, "GET", url, NULL, NULL), 200);
    lst_resp_free(&resp);
    snprintf(url, sizeof(url), "%s/readyz", daemon_.base_url);
    cr_expect_eq(lst_http(&resp, "GET", url, NULL, NULL), 200);
    lst_resp_free(&resp);
}

Test(auth, oversized_body_is_413)
{
    /* MAX_BODY_BYTES=2048 here: just over it, and far over it. */
    static const size_t sizes[] = {3000, 100000};
    for (size_t i = 0; i < 2; i++) {
        char *body = malloc(sizes[i] + 64);
        int n = sprintf(body, "{\"first_name\":\"");
        memset(body + n, 'a', sizes[i]);
        strcpy(body + n + sizes[i], "\"}");
        lst_resp_t resp;
        call(&resp, "PUT", "/users/31", body, NULL);
        cr_expect_eq(resp.status, 413, "%zu bytes: %d", sizes[i], resp.status);
        lst_resp_free(&resp);
        free(body);
    }
    lst_resp_t resp;
    call(&resp, "GET", "/users/31", NULL, NULL);
    cr_expect_eq(resp.status, 404);
    lst_resp_free(&resp);
}

Test(auth, unknown_user_route_and_method)
{
    lst_resp_t resp;
    call(&resp, "GET", "/users/123456", NULL, NULL);
    lst_expect_problem(&resp, 404, "123456");
    lst_resp_free(&resp);

    call(&resp, "GET", "/nowhere", NULL, NULL);
    lst_expect_problem(&resp, 404, NULL);
    lst_resp_free(&resp);

    call(&resp, "DELETE", "/users/5", NULL, NULL);
    lst_expect_problem(&resp, 405, NULL);
    char *allow = lst_resp_header(&resp, "allow");
    cr_expect(allow != NULL && strstr(allow, "GET") && strstr(allow, "PUT") && strstr(allow, "PATCH"),
              "Allow: %s", allow ? allow : "none");
    free(allow);
    lst_resp_free(&resp);
}

Test(auth, request_id_is_echoed_or_generated)
{
    char url[256];
    lst_resp_t resp;
    snprintf(url, sizeof(url), "%s/users/1", daemon_.base_url);
    const char *headers[] = {auth_header, "X-Request-Id: trace-abc.123", NULL};
    lst_http(&resp, "GET", url, headers, NULL);
    char *rid = lst_resp_header(&resp, "x-request-id");
    cr_expect(rid != NULL && strcmp(rid, "trace-abc.123") == 0, "X-Request-Id %s", rid ? rid : "none");
    free(rid);
    lst_resp_free(&resp);

    const char *evil[] = {auth_header, "X-Request-Id: has spaces\"and quotes", NULL};
    lst_http(&resp, "GET", url, evil, NULL);
    rid = lst_resp_header(&resp, "x-request-id");
    cr_expect(rid != NULL && strlen(rid) > 8 && strchr(rid, ' ') == NULL, "generated id %s",
              rid ? rid : "none");
    free(rid);
    lst_resp_free(&resp);

    /* The access log line carries it. */
    json_object *lines =
        lst_log_wait(&daemon_, (const char *const[]){"\"request_id\":\"trace-abc.123\"", NULL}, 1);
    cr_expect_gt(json_object_array_length(lines), 0, "no log line with the request id");
    json_object_put(lines);
}

Test(auth, deadline_actor_and_role_headers_are_checked)
{
    lst_resp_t resp;
    char url[256];
    snprintf(url, sizeof(url), "%s/users/1", daemon_.base_url);
    const char *passed[] = {auth_header, "X-Deadline-Ms: 0", NULL};
    lst_http(&resp, "GET", url, passed, NULL);
    lst_expect_problem(&resp, 503, "deadline");
    lst_resp_free(&resp);
    const char *bad[] = {auth_header, "X-Deadline-Ms: soon", NULL};
    lst_http(&resp, "GET", url, bad, NULL);
    lst_expect_problem(&resp, 400, "X-Deadline-Ms");
    lst_resp_free(&resp);
    const char *bad_actor[] = {auth_header, "X-Actor-Telegram-Id: -7", NULL};
    lst_http(&resp, "GET", url, bad_actor, NULL);
    lst_expect_problem(&resp, 400, "X-Actor-Telegram-Id");
    lst_resp_free(&resp);
    const char *bad_role[] = {auth_header, "X-Actor-Telegram-Id: 7", "X-Actor-Role: king", NULL};
    lst_http(&resp, "GET", url, bad_role, NULL);
    lst_expect_problem(&resp, 400, "X-Actor-Role");
    lst_resp_free(&resp);
}

/* ---- PATCH: admin only, audited ---- */

Test(auth, patch_needs_an_admin_actor)
{
    create_user(ADMIN_ID, "Admin");
    create_user(200, "Teacher-to-be");
    create_user(300, "Student");
    lst_resp_t resp;

    call(&resp, "PATCH", "/users/200", "{\"role\":\"teacher\"}", NULL);
    lst_expect_problem(&resp, 400, "X-Actor-Telegram-Id");
    lst_resp_free(&resp);

    call(&resp, "PATCH", "/users/200", "{\"role\":\"teacher\"}", "300");
    lst_expect_problem(&resp, 403, "admin");
    lst_resp_free(&resp);

    call(&resp, "PATCH", "/users/200", "{\"role\":\"teacher\"}", "424242");
    lst_expect_problem(&resp, 403, "admin");
    lst_resp_free(&resp);

    call(&resp, "PATCH", "/users/200", "{\"role\":\"wizard\"}", "1000");
    lst_expect_problem(&resp, 400, "role");
    lst_resp_free(&resp);

    call(&resp, "PATCH", "/users/200", "{}", "1000");
    lst_expect_problem(&resp, 400, "nothing to change");
    lst_resp_free(&resp);

    call(&resp, "PATCH", "/users/999999", "{\"is_verified\":true}", "1000");
    lst_expect_problem(&resp, 404, "999999");
    lst_resp_free(&resp);

    cr_expect_eq(audit_count("action = 'user.patch'"), 0, "refused changes must not be audited");

    call(&resp, "PATCH", "/users/200", "{\"role\":\"teacher\",\"is_verified\":true}", "1000");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "role"), "teacher");
    cr_expect_eq(json_object_get_boolean(lst_field(resp.json, "is_verified")), 1);
    lst_resp_free(&resp);

    call(&resp, "GET", "/users/200", NULL, NULL);
    cr_expect_str_eq(lst_str_field(resp.json, "role"), "teacher");
    lst_resp_free(&resp);

    cr_expect_eq(audit_count("action = 'user.patch' AND entity = 'user' AND entity_id = '200' AND "
                             "actor_telegram_id = 1000 AND changes->>'role' = 'teacher'"),
                 1);
}

/* The shared transaction helper (shared/txn.h) on every path: a check that fails rolls back and
 * gives the connection back — more refusals than the pool has connections, then a change that
 * needs one — and a change that is refused leaves no audit row. */
Test(auth, refused_transactions_roll_back_and_free_their_connection)
{
    create_user(ADMIN_ID, "Admin");
    create_user(300, "Student");
    lst_resp_t resp;
    for (int i = 0; i < 12; i++) {
        call(&resp, "PATCH", "/users/300", "{\"role\":\"teacher\"}", i % 2 == 0 ? "300" : "424242");
        lst_expect_problem(&resp, 403, "admin");
        lst_resp_free(&resp);
        call(&resp, "PATCH", "/users/77777", "{\"is_verified\":true}", "1000");
        lst_expect_problem(&resp, 404, "77777");
        lst_resp_free(&resp);
    }
    cr_expect_eq(audit_count("action = 'user.patch'"), 0, "refused changes must not be audited");

    call(&resp, "PATCH", "/users/300", "{\"is_verified\":true}", "1000");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_boolean(lst_field(resp.json, "is_verified")), 1);
    lst_resp_free(&resp);
    cr_expect_eq(audit_count("action = 'user.patch' AND entity_id = '300' AND actor_telegram_id = 1000"), 1);
}

/* ---- start-up: migrations ---- */

static int count_in_file(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    char line[4096];
    int n = 0;
    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(fp);
    return n;
}

Test(auth, two_daemons_starting_together_apply_each_migration_once)
{
    char *db2;
    char *conn2 = lst_db_create("auth_race", &db2);
    const char *env[12];
    char *bufs[4];
    daemon_env(env, 12, bufs, conn2, NULL);
    /* Both are running their migrations at the same time: neither waits for the other to be up. */
    lst_daemon_t a, b;
    lst_daemon_spawn(&a, DAEMON, env);
    lst_daemon_spawn(&b, DAEMON, env);
    int a_rc = lst_daemon_wait_healthy(&a), b_rc = lst_daemon_wait_healthy(&b);
    cr_expect_eq(a_rc, 0, "first daemon failed; see %s", a.log_path);
    cr_expect_eq(b_rc, 0, "second daemon failed; see %s", b.log_path);

    /* As many as the folder holds. */
    char dir[1024], err[256], want[48];
    ls_migration_t *files = NULL;
    size_t nfiles = 0;
    snprintf(dir, sizeof(dir), "%s/migrations/auth", lst_env("LS_TEST_SOURCE_DIR"));
    cr_assert_eq(ls_migrate_scan(dir, &files, &nfiles, err, sizeof(err)), 0, "%s", err);
    free(files);
    snprintf(want, sizeof(want), "%zu/%zu", nfiles, nfiles);
    char *rows =
        lst_pg_admin_exec(db2, "SELECT count(*) || '/' || count(DISTINCT version) FROM schema_migrations");
    cr_expect_str_eq(rows, want);
    free(rows);
    int applied =
        count_in_file(a.log_path, "migration applied") + count_in_file(b.log_path, "migration applied");
    cr_expect_eq(applied, (int)nfiles,
                 "each of the %zu files must be applied by exactly one daemon (logs: %s, %s)", nfiles,
                 a.log_path, b.log_path);
    if (a_rc == 0)
        cr_expect_eq(lst_daemon_stop(&a), 0);
    if (b_rc == 0)
        cr_expect_eq(lst_daemon_stop(&b), 0);
    for (int i = 0; i < 4; i++)
        free(bufs[i]);
    free(conn2);
    free(db2);
}

Test(auth, bad_settings_stop_start_up_with_a_clear_message)
{
    char *out = NULL;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "env -i PATH=/usr/bin:/bin DATABASE_URL=x INTERNAL_TOKEN=short %s/" DAEMON
             " 2>&1; echo \"exit=$?\"",
             lst_env("LS_TEST_BUILD_DIR"));
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 0;
    ssize_t n = getdelim(&out, &cap, '\0', p);
    pclose(p);
    cr_assert_gt(n, 0);
    cr_expect_not_null(strstr(out, "INTERNAL_TOKEN"), "%s", out);
    cr_expect_null(strstr(out, "short"), "a secret was echoed: %s", out);
    cr_expect_not_null(strstr(out, "exit=2"), "%s", out);
    free(out);

    out = NULL;
    snprintf(cmd, sizeof(cmd), "%s/" DAEMON " --help 2>&1; echo \"exit=$?\"", lst_env("LS_TEST_BUILD_DIR"));
    p = popen(cmd, "r");
    n = getdelim(&out, &cap, '\0', p);
    pclose(p);
    cr_assert_gt(n, 0);
    static const char *const vars[] = {"LISTEN",         "THREADS",   "DATABASE_URL",  "PG_POOL_SIZE",
                                       "INTERNAL_TOKEN", "LOG_LEVEL", "AUTH_DATA_KEY", "ADMIN_TELEGRAM_IDS",
                                       "MAX_BODY_BYTES", "exit=0"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        cr_expect_not_null(strstr(out, vars[i]), "--help lacks %s", vars[i]);
    free(out);
}

/* ---- PostgreSQL going away and coming back ---- */

Test(auth, database_outage_gives_fast_503_and_recovers_without_restart, .timeout = 180)
{
    lst_cluster_t c;
    lst_cluster_create(&c);
    char *admin = lst_cluster_conninfo(&c, "postgres");
    const char *env[12];
    char *bufs[4];
    daemon_env(env, 12, bufs, admin, NULL);
    lst_daemon_t d;
    lst_daemon_start(&d, DAEMON, env);

    char url[256];
    const char *headers[] = {auth_header, NULL};
    lst_resp_t resp;
    snprintf(url, sizeof(url), "%s/users/42", d.base_url);
    lst_http(&resp, "PUT", url, headers, "{\"first_name\":\"Olga\"}");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);

    cr_assert_eq(lst_cluster_stop(&c), 0);
    for (int i = 0; i < 5; i++) {
        lst_http(&resp, "GET", url, headers, NULL);
        lst_expect_problem(&resp, 503, NULL);
        cr_expect_lt(resp.seconds, 0.5, "503 took %.3f s", resp.seconds);
        lst_resp_free(&resp);
    }
    snprintf(url, sizeof(url), "%s/readyz", d.base_url);
    lst_http(&resp, "GET", url, NULL, NULL);
    cr_expect_eq(resp.status, 503, "readyz while the database is down");
    lst_resp_free(&resp);

    cr_assert_eq(lst_cluster_start(&c), 0);
    snprintf(url, sizeof(url), "%s/users/42", d.base_url);
    int status = 0;
    for (int i = 0; i < 100 && status != 200; i++) {
        lst_http(&resp, "GET", url, headers, NULL);
        status = resp.status;
        lst_resp_free(&resp);
        if (status != 200)
            usleep(100 * 1000);
    }
    cr_expect_eq(status, 200, "auth-service did not recover within 10 s of PostgreSQL returning");

    cr_expect_eq(lst_daemon_stop(&d), 0);
    for (int i = 0; i < 4; i++)
        free(bufs[i]);
    free(admin);
    lst_cluster_destroy(&c);
}

/* ---- the registration notification, through the outbox ---- */

static long long count_in(const char *db, const char *sql)
{
    char *v = lst_pg_admin_exec(db, sql);
    long long n = atoll(v);
    free(v);
    return n;
}

/* Polls `sql` (a count) on db every 50 ms until it reads want or timeout_ms passed; the last count. */
static long long wait_count(const char *db, const char *sql, long long want, int timeout_ms)
{
    long long n = count_in(db, sql);
    for (int waited = 0; n != want && waited < timeout_ms; waited += 50) {
        usleep(50 * 1000);
        n = count_in(db, sql);
    }
    return n;
}

Test(auth, a_first_sign_in_notifies_once_through_the_outbox_even_when_notification_service_is_down,
     .timeout = 120)
{
    char *db = NULL, *conn = lst_db_create("auth_outbox", &db);
    char url_var[80], path[64];
    int port = lst_free_port(); /* notification-service comes up here later */
    snprintf(url_var, sizeof(url_var), "NOTIFICATION_URL=http://127.0.0.1:%d", port);
    const char *env[14];
    char *bufs[4];
    daemon_env(env, 12, bufs, conn, url_var);
    size_t n = 0;
    while (env[n] != NULL)
        n++;
    env[n++] = "OUTBOX_POLL_MS=50";
    env[n] = NULL;
    lst_daemon_t d;
    lst_daemon_start(&d, DAEMON, env);
    for (int i = 0; i < 4; i++)
        free(bufs[i]);

    /* Two first sign-ins while notification-service is down: each queues its notification with the
     * user, in the same transaction. */
    static const struct {
        long long id;
        const char *body;
        const char *want; /* the notification's body: a language only when it is an ISO 639 code */
    } users[] = {
        {4242, "{\"first_name\":\"Olga\",\"username\":\"olga\",\"language_code\":\"ru\"}",
         "{\"recipient_telegram_id\":4242,\"type\":\"registration\",\"params\":{\"first_name\":\"Olga\"},"
         "\"language_code\":\"ru\"}"},
        {4243, "{\"first_name\":\"João\",\"language_code\":\"pt-br\"}",
         "{\"recipient_telegram_id\":4243,\"type\":\"registration\",\"params\":{\"first_name\":\"João\"}}"},
    };
    lst_resp_t resp;
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/users/%lld", users[i].id);
        lst_call_as(&resp, d.base_url, token, "PUT", path, users[i].body, NULL, NULL);
        cr_assert_eq(resp.status, 201, "%.300s", resp.body);
        lst_resp_free(&resp);
        char sql[1024];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM outbox WHERE idempotency_key = 'registration:%lld'"
                 " AND target = 'notification' AND method = 'POST' AND path = '/notifications'"
                 " AND actor_telegram_id = %lld AND body::jsonb = '%s'::jsonb",
                 users[i].id, users[i].id, users[i].want);
        cr_expect_eq(count_in(db, sql), 1, "outbox row of %lld", users[i].id);
    }
    /* A second sign-in updates the user and queues nothing. */
    lst_call_as(&resp, d.base_url, token, "PUT", "/users/4242", "{\"first_name\":\"Olya\"}", NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
    cr_expect_eq(count_in(db, "SELECT count(*) FROM outbox"), 2);

    /* The outbox has tried and failed (nothing listens yet): the rows wait for a retry. */
    cr_expect_eq(
        wait_count(db, "SELECT count(*) FROM outbox WHERE attempts >= 1 AND delivered_at IS NULL", 2, 10000),
        2, "the outbox never tried while notification-service was down");

    /* notification-service comes up where auth-service looks for it; the retries deliver each
     * notification exactly once. */
    lst_service_t notif = {0};
    notif.token = strdup(token);
    char listen[64];
    snprintf(listen, sizeof(listen), "LISTEN=127.0.0.1:%d", port);
    const char *nenv[] = {listen, NULL};
    lst_service_start(&notif, "services/notification/notification-service", "auth_notif", nenv);
    cr_expect_eq(wait_count(db, "SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL", 2, 30000), 2,
                 "the registrations were not delivered after notification-service came up");
    const char *stored = "SELECT count(*) FROM notifications WHERE type = 'registration'"
                         " AND recipient_telegram_id IN (4242, 4243)";
    cr_expect_eq(count_in(notif.dbname, stored), 2);
    cr_expect_eq(count_in(notif.dbname,
                          "SELECT count(*) FROM notifications WHERE recipient_telegram_id = 4242"
                          " AND params->>'first_name' = 'Olga' AND language_code = 'ru'"
                          " AND idempotency_key = 'registration:4242'"),
                 1);

    /* Another update later still notifies nobody. */
    lst_call_as(&resp, d.base_url, token, "PUT", "/users/4243", "{\"first_name\":\"Jo\"}", NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
    usleep(300 * 1000);
    cr_expect_eq(count_in(db, "SELECT count(*) FROM outbox"), 2);
    cr_expect_eq(count_in(notif.dbname, stored), 2);

    cr_expect_eq(lst_daemon_stop(&d), 0, "auth-service did not exit cleanly; see %s", d.log_path);
    lst_service_destroy(&notif);
    free(conn);
    free(db);
}
