/*
 * students-service end to end: the real daemon on a fresh database of the test cluster.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define DAEMON  "services/students/students-service"
#define GROUP_A "aaaaaaaa-0000-4000-8000-000000000001"
#define GROUP_B "bbbbbbbb-0000-4000-8000-000000000002"
#define GROUP_C "cccccccc-0000-4000-8000-000000000003"

static lst_service_t svc;

static void setup(void)
{
    lst_service_start(&svc, DAEMON, "students", NULL);
}

static void teardown(void)
{
    lst_service_destroy(&svc);
}

TestSuite(students, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ---- */

/* A request with the internal token; actor may be NULL (no X-Actor-Telegram-Id). */
static int call(lst_resp_t *resp, const char *method, const char *path, const char *body, const char *actor)
{
    return lst_call_as(resp, svc.daemon.base_url, svc.token, method, path, body, actor, NULL);
}

static long long int_field(json_object *obj, const char *key)
{
    return json_object_get_int64(lst_field(obj, key));
}

/* One request that must answer `status`. */
static void expect_status(const char *method, const char *path, const char *body, const char *actor,
                          int status)
{
    lst_resp_t resp;
    call(&resp, method, path, body, actor);
    cr_assert_eq(resp.status, status, "%s %s: %d, want %d: %.300s", method, path, resp.status, status,
                 resp.body);
    lst_resp_free(&resp);
}

static long long count_where(const char *table, const char *where)
{
    char sql[1024];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE %s", table, where);
    char *v = lst_pg_admin_exec(svc.dbname, sql);
    long long n = atoll(v);
    free(v);
    return n;
}

static long long audit_count(const char *where)
{
    return count_where("audit_log", where);
}

static char *db_value(const char *sql)
{
    return lst_pg_admin_exec(svc.dbname, sql);
}

static void expect_enrollment_status(long long student, const char *group, const char *want)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(string_agg(status::text, ','), '') FROM group_enrollments"
             " WHERE student_telegram_id = %lld AND group_id = '%s'",
             student, group);
    char *v = db_value(sql);
    cr_expect_str_eq(v, want, "enrollment %lld/%s is '%s', want '%s'", student, group, v, want);
    free(v);
}

/* ================= enrollments ================= */

Test(students, enrollment_put_creates_then_repeats_without_a_profile)
{
    lst_resp_t resp;
    /* No students row for 500: a person may join a group before filling a profile. */
    call(&resp, "PUT", "/students/500/enrollments/" GROUP_A, NULL, "4242");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_eq(int_field(resp.json, "student_telegram_id"), 500);
    cr_expect_str_eq(lst_str_field(resp.json, "group_id"), GROUP_A);
    cr_expect_str_eq(lst_str_field(resp.json, "status"), "enrolled");
    const char *enrolled_at = lst_str_field(resp.json, "enrolled_at");
    cr_assert_not_null(enrolled_at);
    cr_expect_eq(enrolled_at[strlen(enrolled_at) - 1], 'Z', "times are RFC 3339 UTC: %s", enrolled_at);
    char *id = strdup(lst_str_field(resp.json, "id"));
    lst_resp_free(&resp);

    /* Redelivery: the same PUT, with no body and with the same status, changes nothing. */
    call(&resp, "PUT", "/students/500/enrollments/" GROUP_A, NULL, "4242");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "id"), id);
    cr_expect_str_eq(lst_str_field(resp.json, "status"), "enrolled");
    lst_resp_free(&resp);
    call(&resp, "PUT", "/students/500/enrollments/" GROUP_A, "{\"status\":\"enrolled\"}", "4242");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "id"), id);
    lst_resp_free(&resp);

    cr_expect_eq(count_where("group_enrollments", "student_telegram_id = 500"), 1);
    cr_expect_eq(count_where("students", "true"), 0, "an enrollment must not create a profile");
    cr_expect_eq(audit_count("action = 'enrollment.create' AND entity = 'enrollment' AND actor_telegram_id = "
                             "4242 AND changes->>'group_id' = '" GROUP_A "'"),
                 1);
    cr_expect_eq(audit_count("action <> 'enrollment.create'"), 0,
                 "a repeat that changes nothing is not audited");

    /* An explicit status on creation is taken as given. */
    call(&resp, "PUT", "/students/500/enrollments/" GROUP_B, "{\"status\":\"in_progress\"}", "4242");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "status"), "in_progress");
    lst_resp_free(&resp);
    free(id);
}

Test(students, enrollment_status_moves_only_forward)
{
    const char *path = "/students/501/enrollments/" GROUP_A;
    expect_status("PUT", path, NULL, "9", 201);
    expect_status("PUT", path, "{\"status\":\"in_progress\"}", "9", 200);
    expect_enrollment_status(501, GROUP_A, "in_progress");
    expect_status("PUT", path, "{\"status\":\"in_progress\"}", "9", 200);

    lst_resp_t resp;
    call(&resp, "PUT", path, "{\"status\":\"enrolled\"}", "9");
    lst_expect_problem(&resp, 409, "in_progress");
    lst_resp_free(&resp);
    expect_enrollment_status(501, GROUP_A, "in_progress");

    /* A redelivered enroll (no status) after the status moved on is not a step back. */
    call(&resp, "PUT", path, NULL, "9");
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "status"), "in_progress");
    lst_resp_free(&resp);

    expect_status("PUT", path, "{\"status\":\"completed\"}", "9", 200);
    call(&resp, "PUT", path, "{\"status\":\"in_progress\"}", "9");
    lst_expect_problem(&resp, 409, "completed");
    lst_resp_free(&resp);
    call(&resp, "PUT", path, "{\"status\":\"enrolled\"}", "9");
    lst_expect_problem(&resp, 409, "completed");
    lst_resp_free(&resp);
    expect_enrollment_status(501, GROUP_A, "completed");

    /* Skipping ahead is allowed. */
    const char *other = "/students/501/enrollments/" GROUP_B;
    expect_status("PUT", other, "{\"status\":\"enrolled\"}", "9", 201);
    call(&resp, "PUT", other, "{\"status\":\"completed\"}", "9");
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "status"), "completed");
    lst_resp_free(&resp);

    /* Audited: two creates, three forward moves; no row for repeats or refusals. */
    cr_expect_eq(audit_count("action = 'enrollment.create'"), 2);
    cr_expect_eq(audit_count("action = 'enrollment.update'"), 3);
    cr_expect_eq(audit_count("action = 'enrollment.update' AND changes->>'status' = 'completed'"), 2);
    cr_expect_eq(count_where("group_enrollments", "student_telegram_id = 501"), 2);
}

typedef struct {
    pthread_barrier_t *barrier;
    const char *path;
    int status;
} racer_t;

static void *race_put(void *arg)
{
    racer_t *t = arg;
    lst_resp_t resp;
    pthread_barrier_wait(t->barrier);
    t->status = call(&resp, "PUT", t->path, NULL, "77");
    lst_resp_free(&resp);
    return NULL;
}

Test(students, concurrent_identical_puts_create_one_enrollment)
{
    enum { RACERS = 20 };
    pthread_t threads[RACERS];
    racer_t racers[RACERS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        racers[i] = (racer_t){&barrier, "/students/502/enrollments/" GROUP_C, 0};
        cr_assert_eq(pthread_create(&threads[i], NULL, race_put, &racers[i]), 0);
    }
    int created = 0, unchanged = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(threads[i], NULL);
        created += racers[i].status == 201;
        unchanged += racers[i].status == 200;
    }
    pthread_barrier_destroy(&barrier);
    cr_expect_eq(created, 1, "exactly one PUT creates");
    cr_expect_eq(unchanged, RACERS - 1, "every other PUT answers 200");
    cr_expect_eq(count_where("group_enrollments", "student_telegram_id = 502"), 1);
    cr_expect_eq(audit_count("action = 'enrollment.create'"), 1);
    cr_expect_eq(audit_count("true"), 1);
}

Test(students, enrollment_delete_is_idempotent)
{
    const char *path = "/students/503/enrollments/" GROUP_A;
    expect_status("PUT", path, "{\"status\":\"in_progress\"}", "9", 201);
    expect_status("DELETE", path, NULL, "9", 204);
    cr_expect_eq(count_where("group_enrollments", "true"), 0);
    expect_status("DELETE", path, NULL, "9", 204);
    expect_status("DELETE", "/students/503/enrollments/" GROUP_B, NULL, "9", 204);
    cr_expect_eq(audit_count("action = 'enrollment.delete' AND actor_telegram_id = 9 AND "
                             "changes->>'status' = 'in_progress'"),
                 1, "only the delete that removed something is audited");
    cr_expect_eq(audit_count("action = 'enrollment.delete'"), 1);

    /* Joining again after leaving starts afresh. */
    lst_resp_t resp;
    call(&resp, "PUT", path, NULL, "9");
    cr_expect_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "status"), "enrolled");
    lst_resp_free(&resp);
}

Test(students, enrollment_writes_need_an_actor_and_valid_input)
{
    lst_resp_t resp;
    call(&resp, "PUT", "/students/504/enrollments/" GROUP_A, NULL, NULL);
    lst_expect_problem(&resp, 400, "X-Actor-Telegram-Id");
    lst_resp_free(&resp);
    call(&resp, "DELETE", "/students/504/enrollments/" GROUP_A, NULL, NULL);
    lst_expect_problem(&resp, 400, "X-Actor-Telegram-Id");
    lst_resp_free(&resp);

    static const struct {
        const char *path, *body, *needle;
    } cases[] = {
        {"/students/504/enrollments/not-a-uuid", NULL, "group_id"},
        {"/students/504/enrollments/AAAAAAAA-0000-4000-8000-00000000000", NULL, "group_id"},
        {"/students/abc/enrollments/" GROUP_A, NULL, "telegram_id"},
        {"/students/-5/enrollments/" GROUP_A, NULL, "telegram_id"},
        {"/students/0/enrollments/" GROUP_A, NULL, "telegram_id"},
        {"/students/99999999999999999999/enrollments/" GROUP_A, NULL, "telegram_id"},
        {"/students/504/enrollments/" GROUP_A, "{\"status\":\"finished\"}", "status"},
        {"/students/504/enrollments/" GROUP_A, "{\"status\":2}", "status"},
        {"/students/504/enrollments/" GROUP_A, "{\"status\":null}", "status"},
        {"/students/504/enrollments/" GROUP_A, "{\"status\":\"enrolled\",\"extra\":1}", "extra"},
        {"/students/504/enrollments/" GROUP_A, "{\"status\":", "malformed JSON"},
        {"/students/504/enrollments/" GROUP_A, "[\"enrolled\"]", "JSON object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        call(&resp, "PUT", cases[i].path, cases[i].body, "9");
        lst_expect_problem(&resp, 400, cases[i].needle);
        lst_resp_free(&resp);
    }
    call(&resp, "DELETE", "/students/504/enrollments/nope", NULL, "9");
    lst_expect_problem(&resp, 400, "group_id");
    lst_resp_free(&resp);

    cr_expect_eq(count_where("group_enrollments", "true"), 0, "refused requests change nothing");
    cr_expect_eq(audit_count("true"), 0, "refused requests are not audited");

    /* Any actor may write: groups-service has already authorized the call. */
    expect_status("PUT", "/students/504/enrollments/" GROUP_A, NULL, "31337", 201);
}

Test(students, enrollments_of_a_student_newest_first_and_paginated)
{
    expect_status("PUT", "/students/505/enrollments/" GROUP_A, NULL, "9", 201);
    expect_status("PUT", "/students/505/enrollments/" GROUP_B, NULL, "9", 201);
    expect_status("PUT", "/students/505/enrollments/" GROUP_C, "{\"status\":\"completed\"}", "9", 201);
    expect_status("PUT", "/students/506/enrollments/" GROUP_A, NULL, "9", 201);

    lst_resp_t resp;
    call(&resp, "GET", "/students/505/enrollments", NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    json_object *list = lst_field(resp.json, "enrollments");
    cr_assert_eq(json_object_array_length(list), 3);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "group_id"), GROUP_C);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "status"), "completed");
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 1), "group_id"), GROUP_B);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 2), "group_id"), GROUP_A);
    cr_expect_eq(int_field(resp.json, "limit"), 20);
    cr_expect_eq(int_field(resp.json, "offset"), 0);
    lst_resp_free(&resp);

    call(&resp, "GET", "/students/505/enrollments?limit=1&offset=1", NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    list = lst_field(resp.json, "enrollments");
    cr_assert_eq(json_object_array_length(list), 1);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "group_id"), GROUP_B);
    cr_expect_eq(int_field(resp.json, "limit"), 1);
    cr_expect_eq(int_field(resp.json, "offset"), 1);
    lst_resp_free(&resp);

    /* Nobody's enrollments: an empty list, not 404 (no profile is needed for enrollments). */
    call(&resp, "GET", "/students/777/enrollments", NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "enrollments")), 0);
    lst_resp_free(&resp);

    static const char *const bad[] = {
        "/students/505/enrollments?limit=0", "/students/505/enrollments?limit=101",
        "/students/505/enrollments?offset=-1", "/students/505/enrollments?limit=x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call(&resp, "GET", bad[i], NULL, NULL);
        lst_expect_problem(&resp, 400, NULL);
        lst_resp_free(&resp);
    }
    call(&resp, "GET", "/students/x/enrollments", NULL, NULL);
    lst_expect_problem(&resp, 400, "telegram_id");
    lst_resp_free(&resp);
}

Test(students, enrollments_of_a_group_by_student)
{
    expect_status("PUT", "/students/730/enrollments/" GROUP_A, NULL, "9", 201);
    expect_status("PUT", "/students/710/enrollments/" GROUP_A, "{\"status\":\"in_progress\"}", "9", 201);
    expect_status("PUT", "/students/720/enrollments/" GROUP_A, NULL, "9", 201);
    expect_status("PUT", "/students/710/enrollments/" GROUP_B, NULL, "9", 201);

    lst_resp_t resp;
    call(&resp, "GET", "/enrollments?group_id=" GROUP_A, NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    json_object *list = lst_field(resp.json, "enrollments");
    cr_assert_eq(json_object_array_length(list), 3);
    cr_expect_eq(int_field(json_object_array_get_idx(list, 0), "student_telegram_id"), 710);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(list, 0), "status"), "in_progress");
    cr_expect_not_null(lst_str_field(json_object_array_get_idx(list, 0), "enrolled_at"));
    cr_expect_eq(int_field(json_object_array_get_idx(list, 1), "student_telegram_id"), 720);
    cr_expect_eq(int_field(json_object_array_get_idx(list, 2), "student_telegram_id"), 730);
    lst_resp_free(&resp);

    call(&resp, "GET", "/enrollments?group_id=" GROUP_A "&limit=2&offset=2", NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    list = lst_field(resp.json, "enrollments");
    cr_assert_eq(json_object_array_length(list), 1);
    cr_expect_eq(int_field(json_object_array_get_idx(list, 0), "student_telegram_id"), 730);
    lst_resp_free(&resp);

    call(&resp, "GET", "/enrollments?group_id=" GROUP_C, NULL, NULL);
    cr_assert_eq(resp.status, 200);
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "enrollments")), 0);
    lst_resp_free(&resp);

    static const char *const bad[] = {"/enrollments", "/enrollments?group_id=", "/enrollments?group_id=123",
                                      "/enrollments?group_id=" GROUP_A "x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call(&resp, "GET", bad[i], NULL, NULL);
        lst_expect_problem(&resp, 400, "group_id");
        lst_resp_free(&resp);
    }
    call(&resp, "GET", "/enrollments?group_id=" GROUP_A "&limit=1000", NULL, NULL);
    lst_expect_problem(&resp, 400, "limit");
    lst_resp_free(&resp);
}

/* ================= profiles ================= */

Test(students, put_creates_then_updates_and_get_reads)
{
    lst_resp_t resp;
    call(&resp, "PUT", "/students/600", "{\"goals\":\"Говорить свободно\",\"timezone\":\"Europe/Moscow\"}",
         "600");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_eq(int_field(resp.json, "telegram_id"), 600);
    cr_expect_str_eq(lst_str_field(resp.json, "goals"), "Говорить свободно");
    cr_expect_str_eq(lst_str_field(resp.json, "timezone"), "Europe/Moscow");
    cr_expect_not_null(lst_str_field(resp.json, "id"));
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "languages")), 0);
    cr_expect_null(lst_field(resp.json, "created"), "no internal flags in the answer");
    lst_resp_free(&resp);

    /* Absent fields keep their value. */
    call(&resp, "PUT", "/students/600", "{\"goals\":\"IELTS 7\"}", "600");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "goals"), "IELTS 7");
    cr_expect_str_eq(lst_str_field(resp.json, "timezone"), "Europe/Moscow");
    lst_resp_free(&resp);

    /* null clears one; an admin may edit someone else's profile. */
    lst_call_as(&resp, svc.daemon.base_url, svc.token, "PUT", "/students/600", "{\"timezone\":null}", "1",
                "admin");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "goals"), "IELTS 7");
    cr_expect_null(lst_field(resp.json, "timezone"));
    lst_resp_free(&resp);

    expect_status("PUT", "/students/600/enrollments/" GROUP_A, NULL, "9", 201);
    expect_status("PUT", "/students/600/enrollments/" GROUP_B, "{\"status\":\"in_progress\"}", "9", 201);
    expect_status("PUT", "/students/600/languages/en", "{\"level\":\"B2\"}", "600", 201);
    expect_status("PUT", "/students/600/languages/de", "{\"level\":\"A1\"}", "600", 201);

    call(&resp, "GET", "/students/600", NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "goals"), "IELTS 7");
    const char *created_at = lst_str_field(resp.json, "created_at");
    cr_assert_not_null(created_at);
    cr_expect_eq(created_at[10], 'T');
    cr_expect_eq(created_at[strlen(created_at) - 1], 'Z', "times are RFC 3339 UTC: %s", created_at);
    json_object *langs = lst_field(resp.json, "languages");
    cr_assert_eq(json_object_array_length(langs), 2);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(langs, 0), "language_code"), "de");
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(langs, 0), "level"), "A1");
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(langs, 1), "language_code"), "en");
    json_object *enr = lst_field(resp.json, "enrollments");
    cr_assert_eq(json_object_array_length(enr), 2);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(enr, 0), "group_id"), GROUP_B);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(enr, 0), "status"), "in_progress");
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(enr, 1), "group_id"), GROUP_A);
    lst_resp_free(&resp);

    cr_expect_eq(audit_count("action = 'student.create' AND entity = 'student' AND entity_id = '600' AND "
                             "actor_telegram_id = 600 AND changes->>'timezone' = 'Europe/Moscow'"),
                 1);
    cr_expect_eq(audit_count("action = 'student.update' AND entity_id = '600'"), 2);
    cr_expect_eq(audit_count("action = 'student.update' AND actor_telegram_id = 1"), 1);
}

Test(students, put_refusals_change_nothing)
{
    lst_resp_t resp;
    call(&resp, "PUT", "/students/601", "{\"goals\":\"x\"}", NULL);
    lst_expect_problem(&resp, 400, "X-Actor-Telegram-Id");
    lst_resp_free(&resp);
    call(&resp, "PUT", "/students/601", "{\"goals\":\"x\"}", "602");
    lst_expect_problem(&resp, 403, "only the student");
    lst_resp_free(&resp);
    /* A role other than admin does not open someone else's profile. */
    lst_call_as(&resp, svc.daemon.base_url, svc.token, "PUT", "/students/601", "{\"goals\":\"x\"}", "602",
                "teacher");
    lst_expect_problem(&resp, 403, NULL);
    lst_resp_free(&resp);

    char *long_goals = malloc(4001 + 1);
    memset(long_goals, 'g', 4001);
    long_goals[4001] = '\0';
    char *long_body;
    asprintf(&long_body, "{\"goals\":\"%s\"}", long_goals);

    static const struct {
        const char *body, *needle;
    } cases[] = {
        {"{\"goals\":", "malformed JSON"},
        {"not json", "malformed JSON"},
        {"", "empty body"},
        {"[]", "JSON object"},
        {"{\"goals\":42}", "goals"},
        {"{\"timezone\":true}", "timezone"},
        {"{\"timezone\":\"\"}", "timezone"},
        {"{\"timezone\":\"Europe/Moscow; DROP TABLE students\"}", "timezone"},
        {"{\"timezone\":\"Mars/Olympus_Mons\"}", "time zone"},
        {"{\"nickname\":\"x\"}", "nickname"},
        {NULL, "goals"}, /* 4001 characters */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        call(&resp, "PUT", "/students/601", cases[i].body != NULL ? cases[i].body : long_body, "601");
        lst_expect_problem(&resp, 400, cases[i].needle);
        lst_resp_free(&resp);
    }
    call(&resp, "GET", "/students/601", NULL, NULL);
    lst_expect_problem(&resp, 404, "601");
    lst_resp_free(&resp);
    cr_expect_eq(audit_count("true"), 0, "refused requests are not audited");

    /* The bound is in characters: 4000 two-byte characters fit. */
    size_t n = 4000 * 2;
    char *wide = malloc(n + 32);
    strcpy(wide, "{\"goals\":\"");
    for (size_t i = 0; i < 4000; i++)
        memcpy(wide + 10 + 2 * i, "я", 2);
    strcpy(wide + 10 + n, "\"}");
    call(&resp, "PUT", "/students/601", wide, "601");
    cr_expect_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);
    free(wide);
    free(long_goals);
    free(long_body);
}

Test(students, get_unknown_and_bad_ids)
{
    lst_resp_t resp;
    call(&resp, "GET", "/students/123456", NULL, NULL);
    lst_expect_problem(&resp, 404, "123456");
    lst_resp_free(&resp);

    static const char *const paths[] = {"/students/abc",
                                        "/students/-1",
                                        "/students/0",
                                        "/students/99999999999999999999",
                                        "/students/9007199254740992",
                                        "/students/1.5"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        call(&resp, "GET", paths[i], NULL, NULL);
        lst_expect_problem(&resp, 400, "telegram_id");
        lst_resp_free(&resp);
        call(&resp, "PUT", paths[i], "{}", "5");
        lst_expect_problem(&resp, 400, "telegram_id");
        lst_resp_free(&resp);
    }
}

Test(students, batch_read_in_the_order_asked_with_missing_ids)
{
    expect_status("PUT", "/students/11", "{\"goals\":\"one\"}", "11", 201);
    expect_status("PUT", "/students/22", "{}", "22", 201);
    expect_status("PUT", "/students/33", "{\"timezone\":\"Asia/Tokyo\"}", "33", 201);
    expect_status("PUT", "/students/33/languages/ja", "{\"level\":\"C1\"}", "33", 201);
    /* Enrollments without a profile do not make anyone appear in the batch. */
    expect_status("PUT", "/students/44/enrollments/" GROUP_A, NULL, "9", 201);

    lst_resp_t resp;
    call(&resp, "GET", "/students?ids=33,999,11,44,22", NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    json_object *list = lst_field(resp.json, "students"), *missing = lst_field(resp.json, "missing");
    cr_assert_eq(json_object_array_length(list), 3);
    json_object *first = json_object_array_get_idx(list, 0);
    cr_expect_eq(int_field(first, "telegram_id"), 33);
    cr_expect_str_eq(lst_str_field(first, "timezone"), "Asia/Tokyo");
    cr_assert_eq(json_object_array_length(lst_field(first, "languages")), 1);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(lst_field(first, "languages"), 0), "level"),
                     "C1");
    cr_expect_eq(int_field(json_object_array_get_idx(list, 1), "telegram_id"), 11);
    cr_expect_eq(json_object_array_length(lst_field(json_object_array_get_idx(list, 1), "languages")), 0);
    cr_expect_eq(int_field(json_object_array_get_idx(list, 2), "telegram_id"), 22);
    cr_assert_eq(json_object_array_length(missing), 2);
    cr_expect_eq(json_object_get_int64(json_object_array_get_idx(missing, 0)), 999);
    cr_expect_eq(json_object_get_int64(json_object_array_get_idx(missing, 1)), 44);
    lst_resp_free(&resp);

    char path[4096] = "/students?ids=";
    size_t off = strlen(path);
    for (int i = 1; i <= 101; i++)
        off += (size_t)snprintf(path + off, sizeof(path) - off, "%s%d", i > 1 ? "," : "", i);
    call(&resp, "GET", path, NULL, NULL);
    lst_expect_problem(&resp, 400, "at most 100");
    lst_resp_free(&resp);

    static const char *const bad[] = {"/students", "/students?ids=", "/students?ids=1,abc",
                                      "/students?ids=-4", "/students?ids=99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call(&resp, "GET", bad[i], NULL, NULL);
        lst_expect_problem(&resp, 400, "ids");
        lst_resp_free(&resp);
    }
}

/* ================= languages ================= */

Test(students, languages_add_change_and_remove)
{
    lst_resp_t resp;
    /* A language needs a profile. */
    call(&resp, "PUT", "/students/700/languages/en", "{\"level\":\"A2\"}", "700");
    lst_expect_problem(&resp, 404, "700");
    lst_resp_free(&resp);

    expect_status("PUT", "/students/700", "{}", "700", 201);
    call(&resp, "PUT", "/students/700/languages/en", "{\"level\":\"A2\"}", "700");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "language_code"), "en");
    cr_expect_str_eq(lst_str_field(resp.json, "level"), "A2");
    cr_expect_eq(int_field(resp.json, "student_telegram_id"), 700);
    lst_resp_free(&resp);

    lst_call_as(&resp, svc.daemon.base_url, svc.token, "PUT", "/students/700/languages/en",
                "{\"level\":\"B1\"}", "5", "admin");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "level"), "B1");
    lst_resp_free(&resp);
    cr_expect_eq(count_where("student_languages", "student_telegram_id = 700"), 1,
                 "one row per student and language");

    expect_status("PUT", "/students/700/languages/fil", "{\"level\":\"C2\"}", "700", 201);
    call(&resp, "GET", "/students/700", NULL, NULL);
    json_object *langs = lst_field(resp.json, "languages");
    cr_assert_eq(json_object_array_length(langs), 2);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(langs, 0), "language_code"), "en");
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(langs, 0), "level"), "B1");
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(langs, 1), "language_code"), "fil");
    lst_resp_free(&resp);

    expect_status("DELETE", "/students/700/languages/en", NULL, "700", 204);
    call(&resp, "DELETE", "/students/700/languages/en", NULL, "700");
    lst_expect_problem(&resp, 404, "en");
    lst_resp_free(&resp);
    cr_expect_eq(count_where("student_languages", "language_code = 'en'"), 0);

    cr_expect_eq(audit_count("action = 'student_language.create' AND entity_id = '700:en' AND "
                             "changes->>'level' = 'A2' AND actor_telegram_id = 700"),
                 1);
    cr_expect_eq(audit_count("action = 'student_language.update' AND entity_id = '700:en' AND "
                             "changes->>'level' = 'B1' AND actor_telegram_id = 5"),
                 1);
    cr_expect_eq(audit_count("action = 'student_language.delete' AND entity_id = '700:en'"), 1);
}

Test(students, language_refusals_change_nothing)
{
    expect_status("PUT", "/students/701", "{}", "701", 201);
    lst_resp_t resp;

    static const struct {
        const char *method, *path, *body, *actor, *needle;
        int status;
    } cases[] = {
        {"PUT", "/students/701/languages/en", "{\"level\":\"B1\"}", NULL, "X-Actor-Telegram-Id", 400},
        {"PUT", "/students/701/languages/en", "{\"level\":\"B1\"}", "702", "only the student", 403},
        {"DELETE", "/students/701/languages/en", NULL, NULL, "X-Actor-Telegram-Id", 400},
        {"DELETE", "/students/701/languages/en", NULL, "702", "only the student", 403},
        {"PUT", "/students/701/languages/EN", "{\"level\":\"B1\"}", "701", "language code", 400},
        {"PUT", "/students/701/languages/e", "{\"level\":\"B1\"}", "701", "language code", 400},
        {"PUT", "/students/701/languages/engl", "{\"level\":\"B1\"}", "701", "language code", 400},
        {"PUT", "/students/701/languages/e1", "{\"level\":\"B1\"}", "701", "language code", 400},
        {"PUT", "/students/701/languages/%C3%A9n", "{\"level\":\"B1\"}", "701", "language code", 400},
        {"DELETE", "/students/701/languages/EN", NULL, "701", "language code", 400},
        {"PUT", "/students/701/languages/en", "{\"level\":\"D1\"}", "701", "level", 400},
        {"PUT", "/students/701/languages/en", "{\"level\":\"b1\"}", "701", "level", 400},
        {"PUT", "/students/701/languages/en", "{\"level\":3}", "701", "level", 400},
        {"PUT", "/students/701/languages/en", "{}", "701", "level", 400},
        {"PUT", "/students/701/languages/en", "{\"level\":", "701", "malformed JSON", 400},
        {"PUT", "/students/701/languages/en", "{\"level\":\"B1\",\"since\":2020}", "701", "since", 400},
        {"PUT", "/students/x/languages/en", "{\"level\":\"B1\"}", "701", "telegram_id", 400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        call(&resp, cases[i].method, cases[i].path, cases[i].body, cases[i].actor);
        lst_expect_problem(&resp, cases[i].status, cases[i].needle);
        lst_resp_free(&resp);
    }
    cr_expect_eq(count_where("student_languages", "true"), 0);
    cr_expect_eq(audit_count("entity = 'student_language'"), 0, "refused requests are not audited");
}

/* ================= the front door ================= */

Test(students, internal_token_is_required_and_health_is_open)
{
    char url[256];
    lst_resp_t resp;
    snprintf(url, sizeof(url), "%s/students/1/enrollments/" GROUP_A, svc.daemon.base_url);
    const char *no_token[] = {"X-Actor-Telegram-Id: 1", NULL};
    lst_http(&resp, "PUT", url, no_token, NULL);
    lst_expect_problem(&resp, 401, NULL);
    lst_resp_free(&resp);
    cr_expect_eq(count_where("group_enrollments", "true"), 0);

    snprintf(url, sizeof(url), "%s/healthz", svc.daemon.base_url);
    cr_expect_eq(lst_http(&resp, "GET", url, NULL, NULL), 200);
    lst_resp_free(&resp);
    snprintf(url, sizeof(url), "%s/readyz", svc.daemon.base_url);
    cr_expect_eq(lst_http(&resp, "GET", url, NULL, NULL), 200);
    lst_resp_free(&resp);

    call(&resp, "POST", "/students/1", "{}", "1");
    lst_expect_problem(&resp, 405, NULL);
    lst_resp_free(&resp);
}

/* ================= paid enrollments (issue 16) ================= */

#define PAY_1 "11111111-0000-4000-8000-000000000001"

Test(students, enrollment_carries_its_payment_and_a_refund_ends_it)
{
    const char *path = "/students/520/enrollments/" GROUP_A;
    lst_resp_t resp;
    call(&resp, "PUT", path, "{\"payment_id\":\"" PAY_1 "\"}", "9");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "payment_id"), PAY_1);
    lst_resp_free(&resp);

    /* Moving on keeps the payment; the refund is the last status, and nothing goes back from it. */
    call(&resp, "PUT", path, "{\"status\":\"in_progress\"}", "9");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "payment_id"), PAY_1);
    lst_resp_free(&resp);
    expect_status("PUT", path, "{\"status\":\"refunded\",\"payment_id\":\"" PAY_1 "\"}", "9", 200);
    expect_status("PUT", path, "{\"status\":\"refunded\",\"payment_id\":\"" PAY_1 "\"}", "9", 200);
    expect_enrollment_status(520, GROUP_A, "refunded");
    expect_status("PUT", path, "{\"status\":\"completed\"}", "9", 409);
    expect_enrollment_status(520, GROUP_A, "refunded");
    cr_expect_eq(audit_count("changes->>'status' = 'refunded'"), 1);

    /* A new membership (a PUT without a status, here of a free seat) starts it again. */
    call(&resp, "PUT", path, NULL, "9");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "status"), "enrolled");
    cr_expect_null(lst_field(resp.json, "payment_id"));
    lst_resp_free(&resp);

    /* A payment given to an enrollment that had none is recorded; a bad one is refused. */
    expect_status("PUT", "/students/520/enrollments/" GROUP_B, NULL, "9", 201);
    call(&resp, "PUT", "/students/520/enrollments/" GROUP_B, "{\"payment_id\":\"" PAY_1 "\"}", "9");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "payment_id"), PAY_1);
    lst_resp_free(&resp);
    expect_status("PUT", "/students/520/enrollments/" GROUP_C, "{\"payment_id\":\"nope\"}", "9", 400);
    cr_expect_eq(count_where("group_enrollments", "group_id = '" GROUP_C "'"), 0);
}
