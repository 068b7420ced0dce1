/*
 * groups-service end to end: the real daemon on a fresh database of the test cluster.
 *
 * Suite "groups" points STUDENTS_URL at an in-process fake students-service that records what the
 * outbox delivers (and can refuse or fail on demand). Suite "groups_students" runs the real
 * students-service next to it: joins while it is down, restarts, and the two agreeing at the end.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake_upstream.h"
#include "harness.h"

#define DAEMON   "services/groups/groups-service"
#define STUDENTS "services/students/students-service"
#define TEACHER  "500"
#define ADMIN    "900"

static lst_service_t groups_;
static lst_service_t students_; /* suite groups_students: on groups_'s token */
static lst_upstream_t *fake;
static int students_port;     /* where groups-service expects students-service */
static char students_url[64]; /* and the URL of that */

/* ---- the fake students-service ---- */

#define MAX_CALLS 256

typedef struct {
    char method[8];
    char path[160];
    char key[96];
    char actor[24];
    char body[64];
    int authorized;
} call_t;

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static call_t calls[MAX_CALLS];
static int ncalls;
static int fake_status;    /* 0: 201 for PUT, 204 for DELETE */
static int fake_fail_left; /* answer 503 to this many calls first */
static int fake_delay_ms;  /* answer this late */

static int fake_handler(void *ud, lst_upstream_t *u, const lst_upstream_req_t *req, lst_upstream_resp_t *resp)
{
    (void)ud;
    const char *key = lst_upstream_req_header(req, "idempotency-key");
    const char *actor = lst_upstream_req_header(req, "x-actor-telegram-id");
    const char *authz = lst_upstream_req_header(req, "authorization");
    char want[600];
    snprintf(want, sizeof(want), "Bearer %s", groups_.token);

    pthread_mutex_lock(&fake_mu);
    int status = fake_status, delay = fake_delay_ms;
    if (fake_fail_left > 0) {
        fake_fail_left--;
        status = 503;
    }
    if (ncalls < MAX_CALLS) {
        call_t *c = &calls[ncalls++];
        snprintf(c->method, sizeof(c->method), "%s", req->method);
        snprintf(c->path, sizeof(c->path), "%s", req->path);
        snprintf(c->key, sizeof(c->key), "%s", key ? key : "");
        snprintf(c->actor, sizeof(c->actor), "%s", actor ? actor : "");
        snprintf(c->body, sizeof(c->body), "%s", req->body);
        c->authorized = authz != NULL && strcmp(authz, want) == 0;
    }
    pthread_mutex_unlock(&fake_mu);

    if (delay > 0 && lst_upstream_sleep_ms(u, delay) != 0) {
        resp->drop = 1;
        return 1;
    }
    if (status == 0)
        status = strcmp(req->method, "DELETE") == 0 ? 204 : 201;
    if (status == 204)
        lst_upstream_respond(resp, 204, NULL, NULL, 0);
    else
        lst_upstream_respondf(resp, status, "{\"status\":%d}", status);
    return 1;
}

static int fake_count(void)
{
    pthread_mutex_lock(&fake_mu);
    int n = ncalls;
    pthread_mutex_unlock(&fake_mu);
    return n;
}

static call_t fake_call(int i)
{
    pthread_mutex_lock(&fake_mu);
    call_t c = calls[i];
    pthread_mutex_unlock(&fake_mu);
    return c;
}

/* ---- daemons ---- */

static void start_groups(const char *url)
{
    char env_students[128];
    snprintf(env_students, sizeof(env_students), "STUDENTS_URL=%s", url);
    const char *env[] = {env_students, "MAX_BODY_BYTES=8192", NULL};
    lst_service_start(&groups_, DAEMON, "groups", env);
}

static void start_students(void)
{
    char env_listen[64];
    snprintf(env_listen, sizeof(env_listen), "LISTEN=127.0.0.1:%d", students_port);
    const char *env[] = {env_listen, "THREADS=1", NULL};
    lst_service_start(&students_, STUDENTS, "students", env);
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_lock(&fake_mu);
    ncalls = 0;
    fake_status = 0;
    fake_fail_left = 0;
    fake_delay_ms = 0;
    pthread_mutex_unlock(&fake_mu);
    groups_.token = lst_random_hex(24); /* before the fake's thread, which checks it */
    fake = lst_upstream_start();
    cr_assert_not_null(fake);
    lst_upstream_set_handler(fake, fake_handler, NULL);
    start_groups(lst_upstream_url(fake));
}

static void setup_with_students(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    students_port = lst_free_port();
    snprintf(students_url, sizeof(students_url), "http://127.0.0.1:%d", students_port);
    /* students-service is not started yet: the tests decide when it comes up. */
    start_groups(students_url);
    students_.token = strdup(groups_.token);
    cr_assert_not_null(students_.token);
}

static void teardown(void)
{
    lst_service_destroy(&groups_);
    lst_service_destroy(&students_);
    lst_upstream_stop(fake);
    fake = NULL;
}

TestSuite(groups, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(groups_students, .init = setup_with_students, .fini = teardown, .timeout = 180);

/* ---- helpers ---- */

static int call(lst_resp_t *resp, const char *method, const char *path, const char *body, const char *actor)
{
    return lst_call_as(resp, groups_.daemon.base_url, groups_.token, method, path, body, actor, NULL);
}

static int call_admin(lst_resp_t *resp, const char *method, const char *path, const char *body)
{
    return lst_call_as(resp, groups_.daemon.base_url, groups_.token, method, path, body, ADMIN, "admin");
}

/* One request that must be refused with status, its detail containing needle (any detail when NULL). */
static void expect_refused(const char *method, const char *path, const char *body, const char *actor,
                           int status, const char *needle)
{
    lst_call_expect_problem(groups_.daemon.base_url, groups_.token, method, path, body, actor, status,
                            needle);
}

static long long sql_count(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long sql_count(const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    char *v = lst_pg_admin_exec(groups_.dbname, sql);
    long long n = atoll(v);
    free(v);
    return n;
}

/* Creates a group as TEACHER; returns its id (malloc'ed). */
static char *create_group_full(const char *title, const char *description, const char *language,
                               const char *level, int capacity)
{
    char body[1024];
    snprintf(
        body, sizeof(body),
        "{\"title\":\"%s\",\"description\":\"%s\",\"language_code\":\"%s\",\"level\":\"%s\",\"capacity\":%d}",
        title, description, language, level, capacity);
    lst_resp_t resp;
    call(&resp, "POST", "/groups", body, TEACHER);
    cr_assert_eq(resp.status, 201, "POST /groups: %d %.300s", resp.status, resp.body);
    char *id = strdup(lst_str_field(resp.json, "id"));
    lst_resp_free(&resp);
    return id;
}

static char *create_group(int capacity)
{
    return create_group_full("English B1 evenings", "Speaking club", "en", "B1", capacity);
}

/* Creates an invitation as TEACHER with body (NULL: defaults); returns its code (malloc'ed). */
static char *create_invite(const char *group, const char *body)
{
    char path[128];
    snprintf(path, sizeof(path), "/groups/%s/invitations", group);
    lst_resp_t resp;
    call(&resp, "POST", path, body, TEACHER);
    cr_assert_eq(resp.status, 201, "POST %s: %d %.300s", path, resp.status, resp.body);
    char *code = strdup(lst_str_field(resp.json, "code"));
    lst_resp_free(&resp);
    return code;
}

static int join(const char *code, long long actor)
{
    char path[128], who[24];
    snprintf(path, sizeof(path), "/join/%s", code);
    snprintf(who, sizeof(who), "%lld", actor);
    lst_resp_t resp;
    int status = call(&resp, "POST", path, NULL, who);
    lst_resp_free(&resp);
    return status;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls cond every 50 ms for at most ms; returns its last value. */
static int wait_for(int (*cond)(void *), void *arg, int ms)
{
    for (int waited = 0;; waited += 50) {
        if (cond(arg))
            return 1;
        if (waited >= ms)
            return 0;
        sleep_ms(50);
    }
}

static int outbox_settled(void *arg)
{
    (void)arg;
    return sql_count("SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL") == 0;
}

static int fake_has(void *arg)
{
    return fake_count() >= *(int *)arg;
}

/* ---- create and read ---- */

Test(groups, create_then_get_with_member_count_and_progress)
{
    lst_resp_t resp;
    call(&resp, "POST", "/groups",
         "{\"title\":\"Deutsch A2\",\"language_code\":\"de\",\"level\":\"A2\",\"capacity\":8,"
         "\"is_free\":false,\"price\":1500.5}",
         TEACHER);
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    json_object *g = resp.json;
    cr_expect_eq(json_object_get_int64(lst_field(g, "teacher_telegram_id")), 500);
    cr_expect_str_eq(lst_str_field(g, "title"), "Deutsch A2");
    cr_expect_str_eq(lst_str_field(g, "description"), "");
    cr_expect_str_eq(lst_str_field(g, "language_code"), "de");
    cr_expect_str_eq(lst_str_field(g, "level"), "A2");
    cr_expect_eq(json_object_get_int(lst_field(g, "capacity")), 8);
    cr_expect_eq(json_object_get_boolean(lst_field(g, "is_free")), 0);
    cr_expect_float_eq(json_object_get_double(lst_field(g, "price")), 1500.5, 1e-9);
    cr_expect_str_eq(lst_str_field(g, "status"), "active");
    cr_expect_eq(json_object_get_int(lst_field(g, "member_count")), 0);
    cr_expect(lst_field(g, "progress") == NULL && json_object_object_get_ex(g, "progress", NULL));
    const char *created = lst_str_field(g, "created_at");
    cr_assert_not_null(created);
    cr_expect_eq(created[strlen(created) - 1], 'Z');
    char *id = strdup(lst_str_field(g, "id"));
    lst_resp_free(&resp);

    char path[128];
    snprintf(path, sizeof(path), "/groups/%s", id);
    call(&resp, "GET", path, NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "id"), id);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "member_count")), 0);
    cr_expect(json_object_object_get_ex(resp.json, "progress", NULL));
    cr_expect_null(lst_field(resp.json, "progress"));
    lst_resp_free(&resp);

    cr_expect_eq(sql_count("SELECT count(*) FROM audit_log WHERE action = 'group.create' AND entity = 'group'"
                           " AND entity_id = '%s' AND actor_telegram_id = 500",
                           id),
                 1);
    free(id);
}

Test(groups, create_refuses_bad_input)
{
    static const struct {
        const char *body, *needle;
    } cases[] = {
        {"{\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":5}", "title"},
        {"{\"title\":\"\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":5}", "title"},
        {"{\"title\":\"T\",\"level\":\"B1\",\"capacity\":5}", "language_code"},
        {"{\"title\":\"T\",\"language_code\":\"EN\",\"level\":\"B1\",\"capacity\":5}", "language_code"},
        {"{\"title\":\"T\",\"language_code\":\"e1\",\"level\":\"B1\",\"capacity\":5}", "language_code"},
        {"{\"title\":\"T\",\"language_code\":\"en\",\"level\":\"B3\",\"capacity\":5}", "level"},
        {"{\"title\":\"T\",\"language_code\":\"en\",\"capacity\":5}", "level"},
        {"{\"title\":\"T\",\"language_code\":\"en\",\"level\":\"B1\"}", "capacity"},
        {"{\"title\":\"T\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":0}", "capacity"},
        {"{\"title\":\"T\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":501}", "capacity"},
        {"{\"title\":\"T\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":5,\"is_free\":false}",
         "price"},
        {"{\"title\":\"T\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":5,\"is_free\":false,"
         "\"price\":0}",
         "price"},
        {"{\"title\":\"T\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":5,\"price\":10}", "price"},
        {"{\"title\":\"T\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":5,\"colour\":\"red\"}",
         "colour"},
        {"{\"title\":", "malformed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_refused("POST", "/groups", cases[i].body, TEACHER, 400, cases[i].needle);
    expect_refused("POST", "/groups",
                   "{\"title\":\"T\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":5}", NULL, 400,
                   "X-Actor-Telegram-Id");
    cr_expect_eq(sql_count("SELECT count(*) FROM groups"), 0, "a refused request must change nothing");
    cr_expect_eq(sql_count("SELECT count(*) FROM audit_log"), 0);
}

Test(groups, only_an_admin_creates_a_group_for_another_teacher)
{
    const char *body = "{\"title\":\"T\",\"language_code\":\"en\",\"level\":\"C1\",\"capacity\":5,"
                       "\"teacher_telegram_id\":777}";
    lst_resp_t resp;
    expect_refused("POST", "/groups", body, TEACHER, 403, "admin");
    call_admin(&resp, "POST", "/groups", body);
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int64(lst_field(resp.json, "teacher_telegram_id")), 777);
    lst_resp_free(&resp);
}

Test(groups, get_refuses_bad_and_unknown_ids)
{
    expect_refused("GET", "/groups/not-a-uuid", NULL, NULL, 400, "group_id");
    expect_refused("GET", "/groups/00000000-0000-0000-0000-000000000000", NULL, NULL, 404, "not found");
    expect_refused("GET", "/groups/00000000-0000-0000-0000-000000000000/members", NULL, NULL, 404,
                   "not found");
}

/* ---- lists ---- */

static json_object *groups_of(lst_resp_t *resp)
{
    cr_assert_eq(resp->status, 200, "%.300s", resp->body);
    json_object *a = lst_field(resp->json, "groups");
    cr_assert(a != NULL && json_object_is_type(a, json_type_array));
    return a;
}

Test(groups, batch_and_lists_by_teacher_and_member)
{
    char *a = create_group(5), *b = create_group(5), *c = create_group(5);
    lst_resp_t resp;
    char path[512];

    snprintf(path, sizeof(path), "/groups?ids=%s,11111111-1111-1111-1111-111111111111,%s", c, a);
    call(&resp, "GET", path, NULL, NULL);
    json_object *list = groups_of(&resp);
    cr_assert_eq(json_object_array_length(list), 2);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "id"), c);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 1), "id"), a);
    json_object *missing = lst_field(resp.json, "missing");
    cr_assert_eq(json_object_array_length(missing), 1);
    cr_expect_str_eq(json_object_get_string(json_object_array_get_idx(missing, 0)),
                     "11111111-1111-1111-1111-111111111111");
    lst_resp_free(&resp);

    /* Newest first. */
    call(&resp, "GET", "/groups?teacher_id=500&limit=2", NULL, NULL);
    list = groups_of(&resp);
    cr_assert_eq(json_object_array_length(list), 2);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "id"), c);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 1), "id"), b);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "limit")), 2);
    lst_resp_free(&resp);
    call(&resp, "GET", "/groups?teacher_id=500&limit=2&offset=2", NULL, NULL);
    list = groups_of(&resp);
    cr_assert_eq(json_object_array_length(list), 1);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "id"), a);
    lst_resp_free(&resp);

    char *code_a = create_invite(a, NULL), *code_c = create_invite(c, NULL);
    cr_assert_eq(join(code_a, 42), 201);
    cr_assert_eq(join(code_c, 42), 201);
    call(&resp, "GET", "/groups?member_id=42", NULL, NULL);
    list = groups_of(&resp);
    cr_assert_eq(json_object_array_length(list), 2);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "id"), c);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 1), "id"), a);
    cr_expect_eq(json_object_get_int(lst_field(json_object_array_get_idx(list, 0), "member_count")), 1);
    lst_resp_free(&resp);

    /* Taught and joined (the BFF's profile), each group once, newest first: 42 also teaches d and is
     * a member of it. */
    call(&resp, "POST", "/groups",
         "{\"title\":\"Own\",\"language_code\":\"en\",\"level\":\"A1\",\"capacity\":5}", "42");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    char *d = strdup(lst_str_field(resp.json, "id"));
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/groups/%s/invitations", d);
    call(&resp, "POST", path, NULL, "42");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_assert_eq(join(lst_str_field(resp.json, "code"), 42), 201);
    lst_resp_free(&resp);
    call(&resp, "GET", "/groups?person_id=42&limit=200", NULL, NULL);
    list = groups_of(&resp);
    cr_assert_eq(json_object_array_length(list), 3, "%.500s", resp.body);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "id"), d);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 1), "id"), c);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 2), "id"), a);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "limit")), 200);
    lst_resp_free(&resp);
    call(&resp, "GET", "/groups?person_id=42&limit=1&offset=1", NULL, NULL);
    list = groups_of(&resp);
    cr_assert_eq(json_object_array_length(list), 1);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "id"), c);
    lst_resp_free(&resp);
    call(&resp, "GET", "/groups?person_id=500", NULL, NULL);
    cr_expect_eq(json_object_array_length(groups_of(&resp)), 3); /* a, b, c; d is 42's */
    lst_resp_free(&resp);
    free(d);

    static const char *const bad[] = {
        "/groups",
        "/groups?teacher_id=500&member_id=42",
        "/groups?person_id=42&member_id=42",
        "/groups?person_id=x",
        "/groups?person_id=42&limit=202",
        "/groups?ids=abc",
        "/groups?ids=",
        "/groups?teacher_id=-1",
        "/groups?member_id=x",
        "/groups?teacher_id=500&limit=0",
        "/groups?teacher_id=500&limit=101",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused("GET", bad[i], NULL, NULL, 400, NULL);
    /* At most 100 UUIDs. */
    char *many = malloc(101 * 37 + 16);
    size_t off = (size_t)sprintf(many, "/groups?ids=");
    for (int i = 0; i < 101; i++)
        off += (size_t)sprintf(many + off, "%s%s", i ? "," : "", a);
    expect_refused("GET", many, NULL, NULL, 400, "at most 100");
    free(many);
    free(a);
    free(b);
    free(c);
    free(code_a);
    free(code_c);
}

/* ---- search ---- */

Test(groups, search_filters_and_paginates_stably)
{
    char *ids[12];
    for (int i = 0; i < 12; i++) {
        char title[64];
        snprintf(title, sizeof(title), "Conversation club %d", i);
        ids[i] = create_group_full(title, "Weekly practice", i % 2 ? "en" : "de", i % 3 ? "B2" : "A1", 10);
    }
    char *other = create_group_full("Grammar 100%_ intensive", "Exam PREP", "en", "C1", 10);
    char *archived = create_group_full("Conversation archive", "", "en", "B2", 10);
    char path[256];
    lst_resp_t resp;
    snprintf(path, sizeof(path), "/groups/%s", archived);
    call(&resp, "PATCH", path, "{\"status\":\"archived\"}", TEACHER);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);

    /* q is a case-insensitive substring of title or description; archived groups never show. */
    call(&resp, "GET", "/groups/search?q=CONVERSATION", NULL, NULL);
    cr_expect_eq(json_object_array_length(groups_of(&resp)), 12);
    lst_resp_free(&resp);
    call(&resp, "GET", "/groups/search?q=exam%20prep", NULL, NULL);
    json_object *list = groups_of(&resp);
    cr_assert_eq(json_object_array_length(list), 1);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "id"), other);
    lst_resp_free(&resp);
    /* LIKE wildcards in q are literal characters. */
    call(&resp, "GET", "/groups/search?q=100%25_", NULL, NULL);
    cr_expect_eq(json_object_array_length(groups_of(&resp)), 1);
    lst_resp_free(&resp);
    call(&resp, "GET", "/groups/search?q=%25", NULL, NULL);
    cr_expect_eq(json_object_array_length(groups_of(&resp)), 1);
    lst_resp_free(&resp);
    call(&resp, "GET", "/groups/search?q=club&language=en", NULL, NULL);
    cr_expect_eq(json_object_array_length(groups_of(&resp)), 6);
    lst_resp_free(&resp);
    call(&resp, "GET", "/groups/search?q=club&language=de&level=A1", NULL, NULL);
    list = groups_of(&resp);
    /* de: even i; A1: i % 3 == 0 -> i = 0, 6 */
    cr_assert_eq(json_object_array_length(list), 2);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "id"), ids[6]);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 1), "id"), ids[0]);
    lst_resp_free(&resp);
    call(&resp, "GET", "/groups/search?level=C1", NULL, NULL);
    cr_expect_eq(json_object_array_length(groups_of(&resp)), 1);
    lst_resp_free(&resp);

    /* Pages of 5 over the 13 active groups: newest first, no duplicates, no gaps. */
    char seen[13][40];
    int nseen = 0;
    for (int offset = 0; offset < 20; offset += 5) {
        snprintf(path, sizeof(path), "/groups/search?limit=5&offset=%d", offset);
        call(&resp, "GET", path, NULL, NULL);
        list = groups_of(&resp);
        cr_expect_eq(json_object_get_int(lst_field(resp.json, "offset")), offset);
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            const char *id = lst_str_field(json_object_array_get_idx(list, i), "id");
            for (int k = 0; k < nseen; k++)
                cr_expect_str_neq(seen[k], id, "group %s on two pages", id);
            cr_assert_lt(nseen, 13, "more groups than exist");
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", id);
        }
        lst_resp_free(&resp);
    }
    cr_expect_eq(nseen, 13);
    cr_expect_str_eq(seen[0], other, "newest first");
    cr_expect_str_eq(seen[12], ids[0]);

    static const char *const bad[] = {"/groups/search?language=EN", "/groups/search?level=D1",
                                      "/groups/search?limit=-1", "/groups/search?offset=x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused("GET", bad[i], NULL, NULL, 400, NULL);
    char longq[160] = "/groups/search?q=";
    memset(longq + strlen(longq), 'a', 101);
    expect_refused("GET", longq, NULL, NULL, 400, "q");

    char *plan = lst_pg_admin_exec(groups_.dbname,
                                   "SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%gin_trgm_ops%'");
    cr_expect_str_eq(plan, "1", "the trigram index exists");
    free(plan);
    for (int i = 0; i < 12; i++)
        free(ids[i]);
    free(other);
    free(archived);
}

/* ---- PATCH ---- */

Test(groups, patch_by_teacher_or_admin_only)
{
    char *id = create_group(3);
    char path[128];
    snprintf(path, sizeof(path), "/groups/%s", id);
    lst_resp_t resp;

    call(&resp, "PATCH", path, "{\"title\":\"Renamed\",\"capacity\":4}", TEACHER);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "title"), "Renamed");
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "capacity")), 4);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "member_count")), 0);
    lst_resp_free(&resp);

    expect_refused("PATCH", path, "{\"title\":\"Mine now\"}", "501", 403, "teacher");
    expect_refused("PATCH", path, "{\"title\":\"Mine now\"}", NULL, 400, "X-Actor-Telegram-Id");
    call_admin(&resp, "PATCH", path, "{\"is_free\":false,\"price\":99.99}");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_float_eq(json_object_get_double(lst_field(resp.json, "price")), 99.99, 1e-9);
    lst_resp_free(&resp);
    /* Becoming free drops the price; a price on a free group is refused. */
    call(&resp, "PATCH", path, "{\"is_free\":true}", TEACHER);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_null(lst_field(resp.json, "price"));
    lst_resp_free(&resp);
    expect_refused("PATCH", path, "{\"price\":10}", TEACHER, 400, "price");
    expect_refused("PATCH", path, "{\"is_free\":false}", TEACHER, 400, "price");

    static const char *const bad[] = {"{}", "{\"status\":\"deleted\"}", "{\"capacity\":0}",
                                      "{\"title\":\"\"}", "{\"teacher_telegram_id\":1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused("PATCH", path, bad[i], TEACHER, 400, NULL);
    expect_refused("PATCH", "/groups/00000000-0000-0000-0000-000000000000", "{\"title\":\"X\"}", TEACHER, 404,
                   "not found");
    expect_refused("PATCH", "/groups/123", "{\"title\":\"X\"}", TEACHER, 400, "group_id");

    /* Capacity below the member count conflicts. */
    char *code = create_invite(id, NULL);
    cr_assert_eq(join(code, 1), 201);
    cr_assert_eq(join(code, 2), 201);
    expect_refused("PATCH", path, "{\"capacity\":1}", TEACHER, 409, "capacity");
    call(&resp, "PATCH", path, "{\"capacity\":2}", TEACHER);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);

    cr_expect_eq(
        sql_count("SELECT count(*) FROM audit_log WHERE action = 'group.update' AND entity_id = '%s'", id),
        4);
    cr_expect_eq(sql_count("SELECT count(*) FROM audit_log WHERE action = 'group.update' AND entity_id = '%s'"
                           " AND actor_telegram_id = 900 AND changes->>'price' = '99.99'",
                           id),
                 1);
    free(id);
    free(code);
}

/* ---- invitations ---- */

Test(groups, invitations_create_list_revoke)
{
    char *id = create_group(5);
    char path[256];
    snprintf(path, sizeof(path), "/groups/%s/invitations", id);
    lst_resp_t resp;

    call(&resp, "POST", path, "{\"expires_in_s\":3600,\"max_uses\":2}", TEACHER);
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    const char *code = lst_str_field(resp.json, "code");
    cr_assert_not_null(code);
    cr_expect_eq(strlen(code), 22, "16 random bytes in base64url: %s", code);
    cr_expect_eq(strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 22);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "max_uses")), 2);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "uses")), 0);
    cr_expect_null(lst_field(resp.json, "revoked_at"));
    char *code1 = strdup(code);
    lst_resp_free(&resp);

    call(&resp, "POST", path, NULL, TEACHER); /* no body: 7 days, unlimited */
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_null(lst_field(resp.json, "max_uses"));
    char *code2 = strdup(lst_str_field(resp.json, "code"));
    cr_expect_str_neq(code1, code2);
    lst_resp_free(&resp);
    cr_expect_eq(sql_count("SELECT count(*) FROM group_invitations WHERE code = '%s'"
                           " AND expires_at BETWEEN now() + interval '7 days' - interval '1 minute'"
                           " AND now() + interval '7 days'",
                           code2),
                 1);

    static const char *const bad[] = {"{\"expires_in_s\":59}", "{\"expires_in_s\":2592001}",
                                      "{\"max_uses\":0}",      "{\"max_uses\":10001}",
                                      "{\"max_uses\":\"3\"}",  "{\"code\":\"mine\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused("POST", path, bad[i], TEACHER, 400, NULL);
    expect_refused("POST", path, NULL, "501", 403, NULL);
    expect_refused("POST", path, NULL, NULL, 400, "X-Actor-Telegram-Id");
    expect_refused("POST", "/groups/00000000-0000-0000-0000-000000000000/invitations", NULL, TEACHER, 404,
                   NULL);

    call(&resp, "GET", path, NULL, TEACHER);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    json_object *list = lst_field(resp.json, "invitations");
    cr_assert_eq(json_object_array_length(list), 2);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "code"), code2, "newest first");
    lst_resp_free(&resp);
    expect_refused("GET", path, NULL, "501", 403, NULL);
    call_admin(&resp, "GET", path, NULL);
    cr_expect_eq(resp.status, 200);
    lst_resp_free(&resp);

    char rpath[256];
    snprintf(rpath, sizeof(rpath), "/groups/%s/invitations/%s", id, code1);
    expect_refused("DELETE", rpath, NULL, "501", 403, NULL);
    call(&resp, "DELETE", rpath, NULL, TEACHER);
    cr_expect_eq(resp.status, 204, "%.300s", resp.body);
    lst_resp_free(&resp);
    call(&resp, "DELETE", rpath, NULL, TEACHER);
    cr_expect_eq(resp.status, 204, "revoking twice is harmless");
    lst_resp_free(&resp);
    snprintf(rpath, sizeof(rpath), "/groups/%s/invitations/AAAAAAAAAAAAAAAAAAAAAA", id);
    expect_refused("DELETE", rpath, NULL, TEACHER, 404, NULL);

    cr_expect_eq(join(code1, 10), 410, "a revoked code");
    cr_expect_eq(join(code2, 10), 201);
    cr_expect_eq(sql_count("SELECT count(*) FROM audit_log WHERE action = 'invitation.create'"), 2);
    cr_expect_eq(sql_count("SELECT count(*) FROM audit_log WHERE action = 'invitation.revoke'"), 1);
    cr_expect_eq(sql_count("SELECT count(*) FROM audit_log WHERE changes::text LIKE '%%%s%%'", code1), 0,
                 "codes are credentials: never in the audit log");
    free(code1);
    free(code2);
    free(id);
}

/* ---- joining ---- */

Test(groups, join_answers_group_and_member_and_refuses_what_it_must)
{
    char *id = create_group(2);
    char *code = create_invite(id, NULL);
    char path[128];
    snprintf(path, sizeof(path), "/join/%s", code);
    lst_resp_t resp;

    call(&resp, "POST", path, NULL, "41");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    json_object *g = lst_field(resp.json, "group"), *m = lst_field(resp.json, "member");
    cr_expect_str_eq(lst_str_field(g, "id"), id);
    cr_expect_eq(json_object_get_int(lst_field(g, "member_count")), 1);
    cr_expect_eq(json_object_get_int64(lst_field(m, "student_telegram_id")), 41);
    cr_expect_str_eq(lst_str_field(m, "group_id"), id);
    cr_expect_not_null(lst_str_field(m, "joined_at"));
    lst_resp_free(&resp);

    expect_refused("POST", path, NULL, "41", 409, "already a member");
    expect_refused("POST", path, NULL, NULL, 400, "X-Actor-Telegram-Id");
    expect_refused("POST", "/join/AAAAAAAAAAAAAAAAAAAAAA", NULL, "41", 404, "not found");
    expect_refused("POST", "/join/short", NULL, "41", 404, "not found");

    cr_expect_eq(join(code, 42), 201);
    expect_refused("POST", path, NULL, "43", 409, "full");

    /* Expired and used-up codes are gone (410). */
    char *id2 = create_group(10);
    char *used = create_invite(id2, "{\"max_uses\":1}");
    cr_expect_eq(join(used, 50), 201);
    snprintf(path, sizeof(path), "/join/%s", used);
    expect_refused("POST", path, NULL, "51", 410, "used up");
    char *old = create_invite(id2, NULL);
    free(lst_pg_admin_exec(groups_.dbname,
                           "UPDATE group_invitations SET expires_at = now() - interval '1 second'"
                           " WHERE max_uses IS NULL"));
    snprintf(path, sizeof(path), "/join/%s", old);
    expect_refused("POST", path, NULL, "51", 410, "expired");

    /* An archived group takes nobody. */
    char *code3 = create_invite(id2, NULL);
    snprintf(path, sizeof(path), "/groups/%s", id2);
    call(&resp, "PATCH", path, "{\"status\":\"archived\"}", TEACHER);
    cr_assert_eq(resp.status, 200);
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/join/%s", code3);
    expect_refused("POST", path, NULL, "52", 409, "archived");

    cr_expect_eq(sql_count("SELECT count(*) FROM group_members"), 3, "refused joins change nothing");
    cr_expect_eq(sql_count("SELECT count(*) FROM audit_log WHERE action = 'group.join'"), 3);
    cr_expect_eq(sql_count("SELECT count(*) FROM outbox"), 3);
    cr_expect_eq(sql_count("SELECT uses FROM group_invitations WHERE code = '%s'", code), 2);
    free(id);
    free(id2);
    free(code);
    free(used);
    free(old);
    free(code3);
}

/* ---- members ---- */

Test(groups, members_list_leave_and_remove)
{
    char *id = create_group(10);
    char *code = create_invite(id, NULL);
    for (int s = 61; s <= 64; s++)
        cr_assert_eq(join(code, s), 201);
    char path[256];
    lst_resp_t resp;

    snprintf(path, sizeof(path), "/groups/%s/members?limit=3", id);
    call(&resp, "GET", path, NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    json_object *list = lst_field(resp.json, "members");
    cr_assert_eq(json_object_array_length(list), 3);
    cr_expect_eq(json_object_get_int64(lst_field(json_object_array_get_idx(list, 0), "student_telegram_id")),
                 61);
    cr_expect_not_null(lst_str_field(json_object_array_get_idx(list, 0), "joined_at"));
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/groups/%s/members?limit=3&offset=3", id);
    call(&resp, "GET", path, NULL, NULL);
    list = lst_field(resp.json, "members");
    cr_assert_eq(json_object_array_length(list), 1);
    cr_expect_eq(json_object_get_int64(lst_field(json_object_array_get_idx(list, 0), "student_telegram_id")),
                 64);
    lst_resp_free(&resp);

    snprintf(path, sizeof(path), "/groups/%s/members/61", id);
    expect_refused("DELETE", path, NULL, "62", 403, NULL);
    expect_refused("DELETE", path, NULL, NULL, 400, "X-Actor-Telegram-Id");
    call(&resp, "DELETE", path, NULL, "61"); /* leave */
    cr_expect_eq(resp.status, 204, "%.300s", resp.body);
    lst_resp_free(&resp);
    expect_refused("DELETE", path, NULL, "61", 404, "not a member");
    snprintf(path, sizeof(path), "/groups/%s/members/62", id);
    call(&resp, "DELETE", path, NULL, TEACHER); /* removed by the teacher */
    cr_expect_eq(resp.status, 204);
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/groups/%s/members/63", id);
    call_admin(&resp, "DELETE", path, NULL);
    cr_expect_eq(resp.status, 204);
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/groups/%s/members/abc", id);
    expect_refused("DELETE", path, NULL, TEACHER, 400, "telegram_id");
    expect_refused("DELETE", "/groups/00000000-0000-0000-0000-000000000000/members/64", NULL, "64", 404,
                   NULL);

    snprintf(path, sizeof(path), "/groups/%s", id);
    call(&resp, "GET", path, NULL, NULL);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "member_count")), 1);
    lst_resp_free(&resp);
    cr_expect_eq(sql_count("SELECT count(*) FROM audit_log WHERE action = 'group.leave'"
                           " AND actor_telegram_id = 61 AND changes->>'student_telegram_id' = '61'"),
                 1);
    cr_expect_eq(sql_count("SELECT count(*) FROM audit_log WHERE action = 'group.member_remove'"), 2);
    cr_expect_eq(sql_count("SELECT count(*) FROM outbox WHERE method = 'DELETE'"
                           " AND idempotency_key LIKE 'unenroll:%%'"),
                 3);
    free(id);
    free(code);
}

/* ---- progress ---- */

Test(groups, progress_by_teacher)
{
    char *id = create_group(5);
    char path[256];
    snprintf(path, sizeof(path), "/groups/%s/progress", id);
    lst_resp_t resp;

    call(&resp, "PUT", path, "{\"lessons_done\":3,\"current_topic\":\"Past Simple\"}", TEACHER);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "lessons_done")), 3);
    cr_expect_str_eq(lst_str_field(resp.json, "current_topic"), "Past Simple");
    cr_expect_eq(json_object_get_int64(lst_field(resp.json, "updated_by")), 500);
    lst_resp_free(&resp);
    call(&resp, "PUT", path, "{\"lessons_done\":4}", TEACHER); /* the topic stays */
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "current_topic"), "Past Simple");
    lst_resp_free(&resp);

    snprintf(path, sizeof(path), "/groups/%s", id);
    call(&resp, "GET", path, NULL, NULL);
    json_object *p = lst_field(resp.json, "progress");
    cr_assert_not_null(p, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int(lst_field(p, "lessons_done")), 4);
    cr_expect_str_eq(lst_str_field(p, "current_topic"), "Past Simple");
    const char *at = lst_str_field(p, "updated_at");
    cr_expect(at != NULL && at[strlen(at) - 1] == 'Z');
    lst_resp_free(&resp);

    snprintf(path, sizeof(path), "/groups/%s/progress", id);
    expect_refused("PUT", path, "{\"lessons_done\":5}", "501", 403, NULL);
    static const char *const bad[] = {"{}", "{\"lessons_done\":-1}", "{\"lessons_done\":\"3\"}",
                                      "{\"lessons_done\":1,\"topic\":\"x\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused("PUT", path, bad[i], TEACHER, 400, NULL);
    expect_refused("PUT", "/groups/00000000-0000-0000-0000-000000000000/progress", "{\"lessons_done\":1}",
                   TEACHER, 404, NULL);
    cr_expect_eq(sql_count("SELECT count(*) FROM audit_log WHERE action = 'group.progress'"), 2);
    free(id);
}

Test(groups, internal_token_is_required)
{
    char url[256];
    lst_resp_t resp;
    snprintf(url, sizeof(url), "%s/groups/search", groups_.daemon.base_url);
    lst_http(&resp, "GET", url, NULL, NULL);
    lst_expect_problem(&resp, 401, NULL);
    lst_resp_free(&resp);
}

/* ---- concurrency ---- */

typedef struct {
    const char *code;
    long long actor;
    int status;
} joiner_t;

static void *joiner(void *arg)
{
    joiner_t *j = arg;
    j->status = join(j->code, j->actor);
    return NULL;
}

/* n different people join at once; counts the answers by status. */
static void join_concurrently(const char *code, int n, int *created, int *conflict, int *gone)
{
    pthread_t threads[64];
    joiner_t jobs[64];
    cr_assert_leq(n, 64);
    for (int i = 0; i < n; i++) {
        jobs[i] = (joiner_t){code, 1000 + i, 0};
        cr_assert_eq(pthread_create(&threads[i], NULL, joiner, &jobs[i]), 0);
    }
    *created = *conflict = *gone = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
        if (jobs[i].status == 201)
            (*created)++;
        else if (jobs[i].status == 409)
            (*conflict)++;
        else if (jobs[i].status == 410)
            (*gone)++;
        else
            cr_expect_fail("joiner %d: unexpected status %d", i, jobs[i].status);
    }
}

Test(groups, capacity_holds_under_concurrent_joins)
{
    char *id = create_group(5);
    char *code = create_invite(id, NULL);
    int created, conflict, gone;
    join_concurrently(code, 30, &created, &conflict, &gone);
    cr_expect_eq(created, 5);
    cr_expect_eq(conflict, 25);
    cr_expect_eq(gone, 0);
    cr_expect_eq(sql_count("SELECT count(*) FROM group_members WHERE group_id = '%s'", id), 5);
    cr_expect_eq(sql_count("SELECT uses FROM group_invitations WHERE code = '%s'", code), 5);
    cr_expect_eq(sql_count("SELECT count(*) FROM outbox"), 5);
    free(id);
    free(code);
}

Test(groups, max_uses_holds_under_concurrent_joins)
{
    char *id = create_group(100);
    char *code = create_invite(id, "{\"max_uses\":3}");
    int created, conflict, gone;
    join_concurrently(code, 20, &created, &conflict, &gone);
    cr_expect_eq(created, 3);
    cr_expect_eq(gone, 17);
    cr_expect_eq(conflict, 0);
    cr_expect_eq(sql_count("SELECT count(*) FROM group_members"), 3);
    cr_expect_eq(sql_count("SELECT uses FROM group_invitations WHERE code = '%s'", code), 3);
    free(id);
    free(code);
}

/* ---- the outbox, against the fake students-service ---- */

Test(groups, outbox_delivers_enrollment_and_unenrollment_in_order)
{
    char *id = create_group(5);
    char *code = create_invite(id, NULL);
    cr_assert_eq(join(code, 77), 201);
    char path[256];
    snprintf(path, sizeof(path), "/groups/%s/members/77", id);
    lst_resp_t resp;
    call(&resp, "DELETE", path, NULL, "77");
    cr_assert_eq(resp.status, 204);
    lst_resp_free(&resp);
    cr_assert_eq(join(code, 77), 201, "join again after leaving");

    int want = 3;
    cr_assert(wait_for(fake_has, &want, 10000), "the fake saw %d calls", fake_count());
    cr_assert(wait_for(outbox_settled, NULL, 10000));
    cr_expect_eq(fake_count(), 3, "each row is delivered once when the receiver answers");

    char expect_path[160];
    snprintf(expect_path, sizeof(expect_path), "/students/77/enrollments/%s", id);
    static const char *const methods[] = {"PUT", "DELETE", "PUT"};
    static const char *const prefixes[] = {"enroll:", "unenroll:", "enroll:"};
    for (int i = 0; i < 3; i++) {
        call_t c = fake_call(i);
        cr_expect_str_eq(c.method, methods[i], "call %d", i);
        cr_expect_str_eq(c.path, expect_path);
        cr_expect_eq(strncmp(c.key, prefixes[i], strlen(prefixes[i])), 0, "key %s", c.key);
        cr_expect_str_eq(c.actor, "77");
        cr_expect(c.authorized, "the internal token is sent");
    }
    cr_expect_str_neq(fake_call(0).key, fake_call(2).key, "a new member id per join");
    char *key = lst_pg_admin_exec(groups_.dbname,
                                  "SELECT 'enroll:' || id FROM group_members WHERE student_telegram_id = 77");
    cr_expect_str_eq(fake_call(2).key, key);
    free(key);
    cr_expect_eq(sql_count("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL AND attempts = 1"), 3);
    free(id);
    free(code);
}

Test(groups, outbox_retries_until_the_receiver_answers)
{
    pthread_mutex_lock(&fake_mu);
    fake_fail_left = 4; /* the client retries 503 itself, then the outbox backs off */
    pthread_mutex_unlock(&fake_mu);
    char *id = create_group(5);
    char *code = create_invite(id, NULL);
    cr_assert_eq(join(code, 88), 201, "the join does not wait for students-service");
    cr_assert(wait_for(outbox_settled, NULL, 15000), "not delivered: %d calls", fake_count());
    cr_expect_eq(sql_count("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL AND attempts >= 2"),
                 1);
    cr_expect_geq(fake_count(), 5);
    free(id);
    free(code);
}

Test(groups, outbox_gives_up_on_a_refusal)
{
    pthread_mutex_lock(&fake_mu);
    fake_status = 422;
    pthread_mutex_unlock(&fake_mu);
    char *id = create_group(5);
    char *code = create_invite(id, NULL);
    cr_assert_eq(join(code, 89), 201);
    cr_assert(wait_for(outbox_settled, NULL, 10000));
    cr_expect_eq(sql_count("SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL AND delivered_at IS NULL"
                           " AND last_error LIKE 'HTTP 422%%'"),
                 1);
    cr_expect_eq(fake_count(), 1, "a refusal is not retried");

    /* 409 means the receiver already has it. */
    pthread_mutex_lock(&fake_mu);
    fake_status = 409;
    pthread_mutex_unlock(&fake_mu);
    cr_assert_eq(join(code, 90), 201);
    cr_assert(wait_for(outbox_settled, NULL, 10000));
    cr_expect_eq(sql_count("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL"), 1);
    free(id);
    free(code);
}

Test(groups, shutdown_with_a_delivery_in_flight_is_clean_and_frees_the_row)
{
    pthread_mutex_lock(&fake_mu);
    fake_delay_ms = 20000;
    pthread_mutex_unlock(&fake_mu);
    char *id = create_group(5);
    char *code = create_invite(id, NULL);
    cr_assert_eq(join(code, 91), 201);
    int want = 1;
    cr_assert(wait_for(fake_has, &want, 10000), "the delivery never started");
    /* SIGTERM while the call waits for its answer: the daemon still exits 0 with nothing leaked. */
    cr_expect_eq(lst_daemon_stop(&groups_.daemon), 0, "see %s", groups_.daemon.log_path);
    cr_expect_eq(sql_count("SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL"
                           " AND attempts = 0 AND next_attempt_at <= now()"),
                 1, "the round rolled back: the row is due again at once, its attempt not counted");
    free(id);
    free(code);
}

/* ---- with the real students-service ---- */

static const char *enrollment_group;
static long long enrollment_student;

/* Returns 1 when students-service lists an enrollment of enrollment_student in enrollment_group. */
static int has_enrollment(void)
{
    char path[128];
    snprintf(path, sizeof(path), "/students/%lld/enrollments", enrollment_student);
    lst_resp_t resp;
    int found = 0;
    if (lst_call_as(&resp, students_url, groups_.token, "GET", path, NULL, NULL, NULL) == 200) {
        json_object *list =
            json_object_is_type(resp.json, json_type_array) ? resp.json : lst_field(resp.json, "enrollments");
        for (size_t i = 0; list != NULL && i < json_object_array_length(list); i++) {
            const char *g = lst_str_field(json_object_array_get_idx(list, i), "group_id");
            if (g != NULL && strcmp(g, enrollment_group) == 0)
                found = 1;
        }
    }
    lst_resp_free(&resp);
    return found;
}

static int enrolled(void *arg)
{
    (void)arg;
    return has_enrollment();
}

static int not_enrolled(void *arg)
{
    (void)arg;
    return !has_enrollment();
}

static int attempted(void *arg)
{
    (void)arg;
    return sql_count("SELECT count(*) FROM outbox WHERE last_error IS NOT NULL") > 0;
}

Test(groups_students, join_while_students_is_down_converges_once_it_is_up)
{
    char *id = create_group(5);
    char *code = create_invite(id, NULL);
    cr_assert_eq(join(code, 123), 201, "a join does not need students-service to be up");
    cr_expect_eq(sql_count("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"), 1);

    /* Let a delivery attempt fail, then bring students-service up on the agreed port. */
    cr_assert(wait_for(attempted, NULL, 10000), "no delivery attempt was made");
    start_students();
    enrollment_group = id;
    enrollment_student = 123;
    cr_assert(wait_for(enrolled, NULL, 40000), "the enrollment never reached students-service");
    cr_assert(wait_for(outbox_settled, NULL, 10000));
    cr_expect_eq(sql_count("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL AND attempts >= 2"),
                 1);

    /* Leaving removes the enrollment there too. */
    char path[256];
    snprintf(path, sizeof(path), "/groups/%s/members/123", id);
    lst_resp_t resp;
    call(&resp, "DELETE", path, NULL, "123");
    cr_assert_eq(resp.status, 204);
    lst_resp_free(&resp);
    cr_assert(wait_for(not_enrolled, NULL, 15000), "the enrollment outlived the membership");
    cr_assert(wait_for(outbox_settled, NULL, 10000));
    free(id);
    free(code);
}

Test(groups_students, students_restart_in_the_middle_still_converges)
{
    start_students();
    char *id = create_group(5);
    char *code = create_invite(id, NULL);
    enrollment_group = id;
    cr_assert_eq(join(code, 201), 201);
    enrollment_student = 201;
    cr_assert(wait_for(enrolled, NULL, 10000), "enrollment of 201 not delivered");

    cr_assert_eq(lst_daemon_stop(&students_.daemon), 0, "students-service did not exit cleanly");
    cr_assert_eq(join(code, 202), 201);
    char path[256];
    snprintf(path, sizeof(path), "/groups/%s/members/201", id);
    lst_resp_t resp;
    call(&resp, "DELETE", path, NULL, TEACHER);
    cr_assert_eq(resp.status, 204);
    lst_resp_free(&resp);
    cr_assert(wait_for(attempted, NULL, 10000), "no delivery attempt was made while it was down");

    start_students();
    enrollment_student = 202;
    cr_assert(wait_for(enrolled, NULL, 40000), "enrollment of 202 not delivered after the restart");
    enrollment_student = 201;
    cr_assert(wait_for(not_enrolled, NULL, 40000), "201 is still enrolled after being removed");
    cr_assert(wait_for(outbox_settled, NULL, 10000));

    /* Membership and enrollments agree: exactly the members are enrolled. */
    char epath[160];
    snprintf(epath, sizeof(epath), "/enrollments?group_id=%s", id);
    lst_call_as(&resp, students_url, groups_.token, "GET", epath, NULL, NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    json_object *list = lst_field(resp.json, "enrollments");
    cr_assert_eq(json_object_array_length(list), 1, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int64(lst_field(json_object_array_get_idx(list, 0), "student_telegram_id")),
                 202);
    lst_resp_free(&resp);
    cr_expect_eq(sql_count("SELECT count(*) FROM group_members WHERE group_id = '%s'", id), 1);
    free(id);
    free(code);
}

/* ---- paid seats (payment-service's calls, issue 16) ---- */

#define PAY_1 "11111111-0000-4000-8000-000000000001"
#define PAY_2 "22222222-0000-4000-8000-000000000002"

Test(groups, paid_seats_hold_capacity_and_gate_joins_by_code)
{
    lst_resp_t resp;
    call(&resp, "POST", "/groups",
         "{\"title\":\"Paid\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":1,\"is_free\":false,"
         "\"price\":250}",
         TEACHER);
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    char *id = strdup(lst_str_field(resp.json, "id"));
    lst_resp_free(&resp);
    char *code = create_invite(id, NULL);
    char path[256], want[128];

    /* By code without a paid seat: 402, naming the checkout route. */
    snprintf(path, sizeof(path), "/join/%s", code);
    call(&resp, "POST", path, NULL, "81");
    lst_expect_problem(&resp, 402, "/checkout");
    snprintf(want, sizeof(want), "/api/groups/%s/checkout", id);
    cr_expect_str_eq(lst_str_field(resp.json, "checkout"), want);
    lst_resp_free(&resp);

    /* The seat: 201, the same call again 200 and nothing new; the membership carries the payment. */
    snprintf(path, sizeof(path), "/groups/%s/paid_members/" PAY_1, id);
    call(&resp, "PUT", path, NULL, "81");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "payment_id"), PAY_1);
    lst_resp_free(&resp);
    call(&resp, "PUT", path, NULL, "81");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
    cr_expect_eq(sql_count("SELECT count(*) FROM group_members WHERE payment_id = '" PAY_1 "'"), 1);
    cr_expect_eq(sql_count("SELECT count(*) FROM paid_seats"), 1);
    expect_refused("PUT", path, NULL, "83", 409, "someone else");

    /* The group is full: a second payer is refused (payment-service refunds), nothing stored. */
    snprintf(path, sizeof(path), "/groups/%s/paid_members/" PAY_2, id);
    expect_refused("PUT", path, NULL, "82", 409, "full");
    cr_expect_eq(sql_count("SELECT count(*) FROM paid_seats"), 1);

    snprintf(path, sizeof(path), "/groups/%s?member_id=81", id);
    call(&resp, "GET", path, NULL, NULL);
    cr_expect(json_object_get_boolean(lst_field(resp.json, "is_member")));
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/groups/%s?member_id=82", id);
    call(&resp, "GET", path, NULL, NULL);
    cr_expect_not(json_object_get_boolean(lst_field(resp.json, "is_member")));
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/groups/%s?member_id=x", id);
    expect_refused("GET", path, NULL, NULL, 400, "member_id");

    /* The enrollment went out with the payment's id. */
    int one = 1;
    cr_assert(wait_for(fake_has, &one, 10000));
    cr_expect_str_eq(fake_call(0).method, "PUT");
    cr_expect(strstr(fake_call(0).body, PAY_1) != NULL, "body %s", fake_call(0).body);

    /* A refund ends the seat: the member leaves, the enrollment is told "refunded"; again: nothing. */
    snprintf(path, sizeof(path), "/groups/%s/paid_members/" PAY_1, id);
    call(&resp, "DELETE", path, NULL, ADMIN);
    cr_assert_eq(resp.status, 204, "%.300s", resp.body);
    lst_resp_free(&resp);
    call(&resp, "DELETE", path, NULL, ADMIN);
    cr_assert_eq(resp.status, 204, "%.300s", resp.body);
    lst_resp_free(&resp);
    cr_expect_eq(sql_count("SELECT count(*) FROM group_members WHERE group_id = '%s'", id), 0);
    int two = 2;
    cr_assert(wait_for(fake_has, &two, 10000));
    cr_assert(wait_for(outbox_settled, NULL, 10000));
    cr_expect_eq(fake_count(), 2);
    cr_expect_str_eq(fake_call(1).method, "PUT");
    cr_expect(strstr(fake_call(1).body, "refunded") != NULL, "body %s", fake_call(1).body);
    cr_expect_eq(sql_count("SELECT count(*) FROM audit_log WHERE action = 'group.seat_refund'"), 1);

    /* A refunded seat opens nothing: not by code, not by the seat call. */
    snprintf(path, sizeof(path), "/join/%s", code);
    expect_refused("POST", path, NULL, "81", 402, "checkout");
    snprintf(path, sizeof(path), "/groups/%s/paid_members/" PAY_1, id);
    expect_refused("PUT", path, NULL, "81", 409, "refunded");
    free(id);
    free(code);
}
