/*
 * POST /batch (shared/batch.h) on a real service: auth-service on a fresh database. Each item must be
 * answered exactly as the same GET sent alone, in order, with its own checks, log line and count.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define DAEMON "services/auth/auth-service"

static lst_daemon_t daemon_;
static char *dbname, *conninfo, *token, *data_key;

static void setup(void)
{
    token = lst_random_hex(24);
    data_key = lst_random_hex(32);
    conninfo = lst_db_create("batch", &dbname);
    char *db = NULL, *tok = NULL, *key = NULL;
    asprintf(&db, "DATABASE_URL=%s", conninfo);
    asprintf(&tok, "INTERNAL_TOKEN=%s", token);
    asprintf(&key, "AUTH_DATA_KEY=%s", data_key);
    const char *env[] = {db,
                         tok,
                         key,
                         "NOTIFICATION_URL=unix:/nonexistent/ls-no-notification-service.sock",
                         "THREADS=2",
                         "LOG_LEVEL=debug",
                         "MAX_BODY_BYTES=16384",
                         NULL};
    lst_daemon_start(&daemon_, DAEMON, env);
    free(db);
    free(tok);
    free(key);
}

static void teardown(void)
{
    lst_daemon_expect_clean_stop(&daemon_);
    free(conninfo);
    free(dbname);
    free(token);
    free(data_key);
}

TestSuite(batch, .init = setup, .fini = teardown, .timeout = 120);

static int call(lst_resp_t *resp, const char *method, const char *path, const char *body)
{
    return lst_call_as(resp, daemon_.base_url, token, method, path, body, NULL, NULL);
}

static void create_user(long long id, const char *first_name, const char *phone)
{
    char path[64], body[256];
    lst_resp_t resp;
    snprintf(path, sizeof(path), "/users/%lld", id);
    snprintf(body, sizeof(body), "{\"first_name\":\"%s\",\"username\":\"u%lld\"%s%s%s}", first_name, id,
             phone ? ",\"phone_number\":\"" : "", phone ? phone : "", phone ? "\"" : "");
    call(&resp, "PUT", path, body);
    cr_assert_eq(resp.status, 201, "PUT %s: %d %.300s", path, resp.status, resp.body);
    lst_resp_free(&resp);
}

/* The batch's answer: 200, plain JSON, `n` responses; returns the array (owned by resp). */
static json_object *responses(const lst_resp_t *resp, size_t n)
{
    cr_assert_eq(resp->status, 200, "%d %.400s", resp->status, resp->body);
    cr_assert_not_null(resp->json, "%.300s", resp->body);
    cr_expect_eq(strncmp(resp->body, "{\"responses\":[", 14), 0, "json-c's plain form: %.60s", resp->body);
    json_object *list = lst_field(resp->json, "responses");
    cr_assert(json_object_is_type(list, json_type_array));
    cr_assert_eq(json_object_array_length(list), n, "%.400s", resp->body);
    /* Each "length" is its body's bytes: the body ends exactly there, where its item's object does. */
    const char *p = resp->body;
    for (size_t i = 0; i < n; i++) {
        p = strstr(p, "\"length\":");
        cr_assert_not_null(p, "item %zu has no length: %.400s", i, resp->body);
        char *after;
        size_t len = strtoul(p + 9, &after, 10);
        cr_assert_eq(strncmp(after, ",\"body\":", 8), 0, "%.60s", after);
        p = after + 8;
        cr_assert_leq(len, strlen(p));
        json_object *body = lst_field(json_object_array_get_idx(list, i), "body");
        cr_expect_eq(strncmp(p, body != NULL ? "{" : "null", 1), 0);
        cr_expect_eq(p[len], '}', "item %zu: length %zu does not end its body: %.80s", i, len, p);
        p += len;
    }
    return list;
}

/* Item i answered with this status, and with the body the same GET answers alone. */
static void expect_as_alone(json_object *list, size_t i, const char *path, int status)
{
    json_object *item = json_object_array_get_idx(list, i);
    lst_resp_t alone;
    call(&alone, "GET", path, NULL);
    cr_expect_eq(alone.status, status, "GET %s alone: %d", path, alone.status);
    cr_expect_eq(json_object_get_int(lst_field(item, "status")), status, "item %zu (%s): %s", i, path,
                 json_object_to_json_string(item));
    cr_expect(json_object_equal(lst_field(item, "body"), alone.json), "item %zu (%s): %s, alone %s", i, path,
              json_object_to_json_string(lst_field(item, "body")), alone.body);
    lst_resp_free(&alone);
}

Test(batch, items_answer_in_order_as_each_would_alone)
{
    create_user(11, "One", "+79990000011");
    create_user(22, "Two", NULL);
    lst_resp_t resp;
    call(&resp, "POST", "/batch",
         "{\"requests\":[{\"path\":\"/users/22\",\"actor\":22},{\"path\":\"/users/999\"},"
         "{\"path\":\"/users/11\",\"actor\":11,\"role\":\"student\"},{\"path\":\"/users?ids=22,11,5\"},"
         "{\"path\":\"/users/abc\"},{\"path\":\"/nothing/here\"},{\"path\":\"/healthz\"},"
         "{\"path\":\"/users/%2e%2e/x\"}]}");
    json_object *list = responses(&resp, 8);
    expect_as_alone(list, 0, "/users/22", 200);
    expect_as_alone(list, 1, "/users/999", 404);
    expect_as_alone(list, 2, "/users/11", 200);
    cr_expect_str_eq(lst_str_field(lst_field(json_object_array_get_idx(list, 2), "body"), "phone_number"),
                     "+79990000011");
    expect_as_alone(list, 3, "/users?ids=22,11,5", 200);
    expect_as_alone(list, 4, "/users/abc", 400);
    expect_as_alone(list, 5, "/nothing/here", 404);
    /* The built-in routes are the clients': inside a batch /healthz is no route. */
    json_object *h = json_object_array_get_idx(list, 6);
    cr_expect_eq(json_object_get_int(lst_field(h, "status")), 404);
    cr_expect_not_null(strstr(lst_str_field(lst_field(h, "body"), "detail"), "no route"));
    expect_as_alone(list, 7, "/users/%2e%2e/x", 400);
    lst_resp_free(&resp);
}

Test(batch, each_item_has_the_checks_of_its_own_headers)
{
    create_user(33, "Three", NULL);
    lst_resp_t resp;
    call(&resp, "POST", "/batch",
         "{\"requests\":[{\"path\":\"/users/33\",\"actor\":-4},{\"path\":\"/users/33\",\"role\":\"king\"},"
         "{\"path\":\"/users/33\",\"deadline_ms\":0},{\"path\":\"/users/33\",\"deadline_ms\":5000}]}");
    json_object *list = responses(&resp, 4);
    static const struct {
        int status;
        const char *detail;
    } want[] = {{400, "X-Actor-Telegram-Id"}, {400, "X-Actor-Role"}, {503, "deadline"}, {200, NULL}};
    for (size_t i = 0; i < 4; i++) {
        json_object *item = json_object_array_get_idx(list, i);
        cr_expect_eq(json_object_get_int(lst_field(item, "status")), want[i].status, "item %zu: %s", i,
                     json_object_to_json_string(item));
        if (want[i].detail != NULL)
            cr_expect_not_null(strstr(lst_str_field(lst_field(item, "body"), "detail"), want[i].detail),
                               "item %zu: %s", i, json_object_to_json_string(item));
    }
    lst_resp_free(&resp);
}

Test(batch, items_log_and_count_as_requests_of_their_own)
{
    create_user(44, "Four", NULL);
    const char *users_2xx =
        "ls_http_requests_total{route=\"/users/{telegram_id:id}\",method=\"GET\",status=\"2xx\"}";
    const char *users_4xx =
        "ls_http_requests_total{route=\"/users/{telegram_id:id}\",method=\"GET\",status=\"4xx\"}";
    const char *batches = "ls_http_requests_total{route=\"/batch\",method=\"POST\",status=\"2xx\"}";
    double ok0 = lst_metric(daemon_.base_url, token, users_2xx);
    double bad0 = lst_metric(daemon_.base_url, token, users_4xx);
    double b0 = lst_metric(daemon_.base_url, token, batches);

    lst_resp_t resp;
    call(&resp, "POST", "/batch",
         "{\"requests\":[{\"path\":\"/users/44\",\"request_id\":\"item-one\","
         "\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\"},"
         "{\"path\":\"/users/44\",\"request_id\":\"item-two\"},{\"path\":\"/users/"
         "45\",\"request_id\":\"item-three\"}]}");
    responses(&resp, 3);
    lst_resp_free(&resp);

    cr_expect_eq(lst_metric(daemon_.base_url, token, users_2xx), ok0 + 2);
    cr_expect_eq(lst_metric(daemon_.base_url, token, users_4xx), bad0 + 1);
    cr_expect_eq(lst_metric(daemon_.base_url, token, batches), b0 + 1);

    const char *one[] = {"\"request_id\":\"item-one\"",
                         "\"path\":\"/users/44\"",
                         "\"status\":200",
                         "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"",
                         "\"parent_span_id\":\"00f067aa0ba902b7\"",
                         NULL};
    json_object *lines = lst_log_wait(&daemon_, one, 1);
    cr_expect_eq(json_object_array_length(lines), 1, "the item's access log line, with its own trace");
    json_object_put(lines);
    const char *three[] = {"\"request_id\":\"item-three\"", "\"status\":404", NULL};
    lines = lst_log_wait(&daemon_, three, 1);
    cr_expect_eq(json_object_array_length(lines), 1);
    json_object_put(lines);
}

Test(batch, many_items_all_answered)
{
    char body[16384];
    size_t o = (size_t)snprintf(body, sizeof(body), "{\"requests\":[");
    for (int i = 0; i < 64; i++) {
        create_user(1000 + i, "Many", NULL);
        o += (size_t)snprintf(body + o, sizeof(body) - o, "%s{\"path\":\"/users/%d\"}", i ? "," : "",
                              1000 + i);
    }
    snprintf(body + o, sizeof(body) - o, "]}");
    lst_resp_t resp;
    call(&resp, "POST", "/batch", body);
    json_object *list = responses(&resp, 64);
    for (int i = 0; i < 64; i++) {
        json_object *item = json_object_array_get_idx(list, i);
        cr_expect_eq(json_object_get_int(lst_field(item, "status")), 200);
        cr_expect_eq(json_object_get_int64(lst_field(lst_field(item, "body"), "telegram_id")), 1000 + i,
                     "item %d answered in its place", i);
    }
    lst_resp_free(&resp);

    call(&resp, "POST", "/batch", "{\"requests\":[]}");
    responses(&resp, 0);
    lst_resp_free(&resp);
}

Test(batch, a_malformed_batch_is_refused_whole)
{
    static const struct {
        const char *body, *needle;
    } bad[] = {
        {"not json", NULL},
        {"{}", "requests"},
        {"{\"requests\":{}}", "requests"},
        {"{\"requests\":[{\"actor\":1}]}", "requests[0].path"},
        {"{\"requests\":[{\"path\":\"/users/1\"},{\"path\":\"users/1\"}]}", "requests[1].path"},
        {"{\"requests\":[{\"path\":\"/users/1\",\"actor\":\"1\"}]}", "requests[0].actor must be an integer"},
        {"{\"requests\":[{\"path\":\"/users/1\",\"deadline_ms\":\"5\"}]}", "requests[0].deadline_ms"},
        {"{\"requests\":[7]}", "requests[0] must be an object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        lst_call_expect_problem(daemon_.base_url, token, "POST", "/batch", bad[i].body, NULL, 400,
                                bad[i].needle);

    char body[8192];
    size_t o = (size_t)snprintf(body, sizeof(body), "{\"requests\":[");
    for (int i = 0; i < 65; i++)
        o += (size_t)snprintf(body + o, sizeof(body) - o, "%s{\"path\":\"/users/1\"}", i ? "," : "");
    snprintf(body + o, sizeof(body) - o, "]}");
    lst_call_expect_problem(daemon_.base_url, token, "POST", "/batch", body, NULL, 400, "at most 64");

    /* Behind the internal token like every route, and POST only. */
    lst_resp_t resp;
    lst_call_as(&resp, daemon_.base_url, "wrong-token", "POST", "/batch", "{\"requests\":[]}", NULL, NULL);
    lst_expect_problem(&resp, 401, "internal token");
    lst_resp_free(&resp);
    call(&resp, "GET", "/batch", NULL);
    cr_expect_eq(resp.status, 404, "%.200s", resp.body);
    lst_resp_free(&resp);
}
