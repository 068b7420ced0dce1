/*
 * teachers-service end to end: the real daemon on a fresh database of the test cluster.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define DAEMON   "services/teachers/teachers-service"
#define ADMIN_ID 1000

static lst_service_t svc;

static void setup(void)
{
    const char *env[] = {"MAX_BODY_BYTES=65536", NULL};
    lst_service_start(&svc, DAEMON, "teachers", env);
}

static void teardown(void)
{
    lst_service_destroy(&svc);
}

TestSuite(teachers, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ---- */

/* actor: X-Actor-Telegram-Id (NULL: none); role: X-Actor-Role (NULL: none). */
static int call_as(lst_resp_t *resp, const char *method, const char *path, const char *body,
                   const char *actor, const char *role)
{
    return lst_call_as(resp, svc.daemon.base_url, svc.token, method, path, body, actor, role);
}

static int call(lst_resp_t *resp, const char *method, const char *path, const char *body, const char *actor)
{
    return call_as(resp, method, path, body, actor, NULL);
}

static long long id_at(json_object *array, size_t i)
{
    return (long long)json_object_get_int64(lst_field(json_object_array_get_idx(array, i), "telegram_id"));
}

/* One request that must be refused with `status`, detail containing `needle`. */
static void expect_refused(const char *method, const char *path, const char *body, const char *actor,
                           int status, const char *needle)
{
    lst_resp_t resp;
    call(&resp, method, path, body, actor);
    lst_expect_problem(&resp, status, needle);
    if (resp.status != status)
        cr_log_error("%s %s %s", method, path, body ? body : "");
    lst_resp_free(&resp);
}

static long long count_rows(const char *sql)
{
    char *v = lst_pg_admin_exec(svc.dbname, sql);
    long long n = atoll(v);
    free(v);
    return n;
}

static long long audit_count(const char *where)
{
    char sql[1024];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit_log WHERE %s", where);
    return count_rows(sql);
}

static void create_teacher(long long id, const char *body)
{
    char path[64], actor[24];
    lst_resp_t resp;
    snprintf(path, sizeof(path), "/teachers/%lld", id);
    snprintf(actor, sizeof(actor), "%lld", id);
    call(&resp, "PUT", path, body != NULL ? body : "{}", actor);
    cr_assert_eq(resp.status, 201, "PUT %s: %d %.300s", path, resp.status, resp.body);
    lst_resp_free(&resp);
}

static void set_language(long long id, const char *code, const char *level)
{
    char path[96], actor[24], body[64];
    lst_resp_t resp;
    snprintf(path, sizeof(path), "/teachers/%lld/languages/%s", id, code);
    snprintf(actor, sizeof(actor), "%lld", id);
    snprintf(body, sizeof(body), "{\"level\":\"%s\"}", level);
    call(&resp, "PUT", path, body, actor);
    cr_assert(resp.status == 201 || resp.status == 200, "PUT %s: %d %.300s", path, resp.status, resp.body);
    lst_resp_free(&resp);
}

/* ---- profiles: create, update, read ---- */

Test(teachers, put_creates_then_updates_and_get_reads)
{
    lst_resp_t resp;
    call(&resp, "PUT", "/teachers/555",
         "{\"bio\":\"Преподаю английский\",\"experience_years\":7,\"timezone\":\"Europe/Moscow\"}", "555");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int64(lst_field(resp.json, "telegram_id")), 555);
    cr_expect_str_eq(lst_str_field(resp.json, "bio"), "Преподаю английский");
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "experience_years")), 7);
    cr_expect_str_eq(lst_str_field(resp.json, "timezone"), "Europe/Moscow");
    cr_expect_eq(json_object_get_boolean(lst_field(resp.json, "is_active")), 1, "active by default");
    cr_expect_eq(strlen(lst_str_field(resp.json, "id")), 36, "id is a UUID");
    const char *created_at = lst_str_field(resp.json, "created_at");
    cr_assert_not_null(created_at);
    cr_expect_eq(created_at[strlen(created_at) - 1], 'Z', "times are RFC 3339 UTC: %s", created_at);
    cr_assert(json_object_is_type(lst_field(resp.json, "languages"), json_type_array));
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "languages")), 0);
    cr_expect_null(lst_field(resp.json, "created"), "internal column leaked");
    lst_resp_free(&resp);

    /* A partial PUT changes only what it names. */
    call(&resp, "PUT", "/teachers/555", "{\"experience_years\":8,\"is_active\":false}", "555");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "experience_years")), 8);
    cr_expect_eq(json_object_get_boolean(lst_field(resp.json, "is_active")), 0);
    cr_expect_str_eq(lst_str_field(resp.json, "bio"), "Преподаю английский");
    cr_expect_str_eq(lst_str_field(resp.json, "timezone"), "Europe/Moscow");
    lst_resp_free(&resp);

    call(&resp, "GET", "/teachers/555", NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "experience_years")), 8);
    cr_expect_eq(json_object_get_boolean(lst_field(resp.json, "is_active")), 0);
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "languages")), 0);
    lst_resp_free(&resp);

    cr_expect_eq(audit_count("action = 'teacher.create' AND entity = 'teacher' AND entity_id = '555' AND "
                             "actor_telegram_id = 555 AND changes->>'timezone' = 'Europe/Moscow'"),
                 1);
    cr_expect_eq(audit_count("action = 'teacher.update' AND entity_id = '555' AND "
                             "(changes->>'experience_years')::int = 8 AND NOT (changes ? 'bio')"),
                 1);
    cr_expect_eq(audit_count("true"), 2);
}

Test(teachers, put_with_an_empty_body_creates_with_defaults)
{
    lst_resp_t resp;
    call(&resp, "PUT", "/teachers/42", "{}", "42");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "bio"), "");
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "experience_years")), 0);
    cr_expect_str_eq(lst_str_field(resp.json, "timezone"), "UTC");
    lst_resp_free(&resp);
}

Test(teachers, get_unknown_teacher_is_404)
{
    expect_refused("GET", "/teachers/123456", NULL, NULL, 404, "123456");
}

Test(teachers, bad_ids_are_400)
{
    static const char *const bad[] = {"abc", "-5", "0", "99999999999999999999", "9007199254740992", "12a"};
    char path[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(path, sizeof(path), "/teachers/%s", bad[i]);
        expect_refused("GET", path, NULL, NULL, 400, "telegram_id");
        expect_refused("PUT", path, "{}", "5", 400, "telegram_id");
        snprintf(path, sizeof(path), "/teachers/%s/languages/en", bad[i]);
        expect_refused("PUT", path, "{\"level\":\"B2\"}", "5", 400, "telegram_id");
        expect_refused("DELETE", path, NULL, "5", 400, "telegram_id");
    }
    /* A bad actor id is refused before anything runs. */
    expect_refused("PUT", "/teachers/5", "{}", "-5", 400, "X-Actor-Telegram-Id");
    expect_refused("PUT", "/teachers/5", "{}", "99999999999999999999", 400, "X-Actor-Telegram-Id");
    cr_expect_eq(count_rows("SELECT count(*) FROM teachers"), 0);
    cr_expect_eq(audit_count("true"), 0);
}

Test(teachers, put_needs_the_teacher_or_an_admin)
{
    lst_resp_t resp;
    expect_refused("PUT", "/teachers/556", "{\"bio\":\"x\"}", NULL, 400, "X-Actor-Telegram-Id");
    expect_refused("PUT", "/teachers/556", "{\"bio\":\"x\"}", "557", 403, "556");
    call_as(&resp, "PUT", "/teachers/556", "{\"bio\":\"x\"}", "557", "teacher");
    lst_expect_problem(&resp, 403, NULL);
    lst_resp_free(&resp);
    /* The admin role belongs to the actor, not to the id in the path. */
    call_as(&resp, "PUT", "/teachers/556", "{\"bio\":\"x\"}", "557", "student");
    lst_expect_problem(&resp, 403, NULL);
    lst_resp_free(&resp);
    expect_refused("GET", "/teachers/556", NULL, NULL, 404, NULL);
    cr_expect_eq(audit_count("true"), 0, "refused requests must not be audited");

    call_as(&resp, "PUT", "/teachers/556", "{\"bio\":\"set by the admin\"}", "1000", "admin");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "bio"), "set by the admin");
    lst_resp_free(&resp);
    cr_expect_eq(audit_count("action = 'teacher.create' AND entity_id = '556' AND actor_telegram_id = 1000"),
                 1);

    /* The teacher themself may change it afterwards; someone else still may not. */
    call(&resp, "PUT", "/teachers/556", "{\"bio\":\"mine\"}", "556");
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
    expect_refused("PUT", "/teachers/556", "{\"bio\":\"stolen\"}", "557", 403, NULL);
    call(&resp, "GET", "/teachers/556", NULL, NULL);
    cr_expect_str_eq(lst_str_field(resp.json, "bio"), "mine");
    lst_resp_free(&resp);
    cr_expect_eq(audit_count("true"), 2);
}

Test(teachers, put_validates_the_body)
{
    static const struct {
        const char *body;
        const char *needle;
    } cases[] = {
        {"{\"bio\":42}", "bio"},
        {"{\"bio\":null}", "bio"},
        {"{\"experience_years\":\"5\"}", "experience_years"},
        {"{\"experience_years\":-1}", "experience_years"},
        {"{\"experience_years\":81}", "experience_years"},
        {"{\"experience_years\":2.5}", "experience_years"},
        {"{\"experience_years\":99999999999999999999}", "experience_years"},
        {"{\"is_active\":\"yes\"}", "is_active"},
        {"{\"is_active\":1}", "is_active"},
        {"{\"timezone\":\"Mars/Olympus_Mons\"}", "timezone"},
        {"{\"timezone\":\"Europe/Moscow; DROP TABLE teachers\"}", "timezone"},
        {"{\"timezone\":\"\"}", "timezone"},
        {"{\"timezone\":\"/etc/passwd\"}", "timezone"},
        {"{\"timezone\":7}", "timezone"},
        {"{\"nickname\":\"Teach\"}", "nickname"},
        {"{\"bio\":\"x\",}", "JSON"},
        {"{\"bio\":", "JSON"},
        {"not json", "JSON"},
        {"[1,2]", "object"},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_refused("PUT", "/teachers/700", cases[i].body, "700", 400, cases[i].needle);
    cr_expect_eq(count_rows("SELECT count(*) FROM teachers"), 0, "a refused PUT must change nothing");
    cr_expect_eq(audit_count("true"), 0);
}

Test(teachers, bio_is_limited_in_characters_not_bytes)
{
    /* 4000 Cyrillic letters are 8000 bytes: allowed. 4001 are not. */
    size_t cap = 4001 * 2 + 32;
    char *body = malloc(cap);
    size_t off = (size_t)snprintf(body, cap, "{\"bio\":\"");
    for (int i = 0; i < 4000; i++) {
        memcpy(body + off, "я", 2);
        off += 2;
    }
    memcpy(body + off, "\"}", 3);
    lst_resp_t resp;
    call(&resp, "PUT", "/teachers/701", body, "701");
    cr_expect_eq(resp.status, 201, "%.200s", resp.body);
    lst_resp_free(&resp);

    memcpy(body + off, "я\"}", 5);
    expect_refused("PUT", "/teachers/701", body, "701", 400, "4000 characters");
    free(body);
    cr_expect_eq(count_rows("SELECT char_length(bio) FROM teachers WHERE telegram_id = 701"), 4000);
}

/* ---- languages ---- */

Test(teachers, languages_are_added_changed_listed_and_removed)
{
    create_teacher(800, NULL);
    lst_resp_t resp;

    call(&resp, "PUT", "/teachers/800/languages/en", "{\"level\":\"B2\"}", "800");
    cr_assert_eq(resp.status, 201, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int64(lst_field(resp.json, "teacher_telegram_id")), 800);
    cr_expect_str_eq(lst_str_field(resp.json, "language_code"), "en");
    cr_expect_str_eq(lst_str_field(resp.json, "level"), "B2");
    lst_resp_free(&resp);

    call(&resp, "PUT", "/teachers/800/languages/en", "{\"level\":\"C1\"}", "800");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(resp.json, "level"), "C1");
    lst_resp_free(&resp);

    set_language(800, "fra", "A2");
    set_language(800, "de", "C2");

    call(&resp, "GET", "/teachers/800", NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    json_object *langs = lst_field(resp.json, "languages");
    cr_assert_eq(json_object_array_length(langs), 3, "%.300s", resp.body);
    static const char *const codes[] = {"de", "en", "fra"}, *const levels[] = {"C2", "C1", "A2"};
    for (size_t i = 0; i < 3; i++) {
        json_object *l = json_object_array_get_idx(langs, i);
        cr_expect_str_eq(lst_str_field(l, "language_code"), codes[i], "languages ordered by code");
        cr_expect_str_eq(lst_str_field(l, "level"), levels[i]);
        cr_expect_eq(json_object_object_length(l), 2, "only language_code and level: %s",
                     json_object_to_json_string(l));
    }
    lst_resp_free(&resp);

    call(&resp, "DELETE", "/teachers/800/languages/en", NULL, "800");
    cr_expect_eq(resp.status, 204, "%.300s", resp.body);
    cr_expect_eq(resp.len, 0);
    lst_resp_free(&resp);
    expect_refused("DELETE", "/teachers/800/languages/en", NULL, "800", 404, "does not teach 'en'");

    call(&resp, "GET", "/teachers/800", NULL, NULL);
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "languages")), 2);
    lst_resp_free(&resp);

    cr_expect_eq(
        audit_count("action = 'teacher.language_add' AND entity = 'teacher' AND entity_id = '800' AND "
                    "actor_telegram_id = 800"),
        3);
    cr_expect_eq(audit_count("action = 'teacher.language_update' AND changes->>'language_code' = 'en' AND "
                             "changes->>'level' = 'C1' AND changes->>'previous_level' = 'B2'"),
                 1);
    cr_expect_eq(audit_count("action = 'teacher.language_remove' AND changes->>'language_code' = 'en' AND "
                             "changes->>'previous_level' = 'C1'"),
                 1);
    cr_expect_eq(audit_count("action LIKE 'teacher.language%'"), 5, "the refused DELETE is not audited");
}

Test(teachers, an_admin_may_change_anyones_languages)
{
    create_teacher(801, NULL);
    lst_resp_t resp;
    call_as(&resp, "PUT", "/teachers/801/languages/es", "{\"level\":\"A1\"}", "1000", "admin");
    cr_expect_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);
    call_as(&resp, "DELETE", "/teachers/801/languages/es", NULL, "1000", "admin");
    cr_expect_eq(resp.status, 204, "%.300s", resp.body);
    lst_resp_free(&resp);
    cr_expect_eq(
        audit_count("entity_id = '801' AND action LIKE 'teacher.language%' AND actor_telegram_id = 1000"), 2);
}

Test(teachers, language_writes_are_validated_and_authorized)
{
    create_teacher(802, NULL);
    set_language(802, "en", "B1");
    long long audits = audit_count("true");

    /* Bad language codes. */
    static const char *const bad_codes[] = {"EN", "e", "engl", "e1", "en-US", "%C3%A9n", "e%00"};
    char path[96];
    for (size_t i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++) {
        /* A NUL is refused at the front door, before the route (README "At each edge"). */
        const char *why = strstr(bad_codes[i], "%00") != NULL ? "bad path" : "language code";
        snprintf(path, sizeof(path), "/teachers/802/languages/%s", bad_codes[i]);
        expect_refused("PUT", path, "{\"level\":\"B2\"}", "802", 400, why);
        expect_refused("DELETE", path, NULL, "802", 400, why);
    }

    /* Bad bodies. */
    static const char *const bad_bodies[] = {
        "{\"level\":\"D1\"}",
        "{\"level\":\"b2\"}",
        "{\"level\":2}",
        "{\"level\":null}",
        "{}",
        "{\"level\":\"B2\",\"native\":true}",
        "{\"level\":",
        "[\"B2\"]",
    };
    for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++)
        expect_refused("PUT", "/teachers/802/languages/de", bad_bodies[i], "802", 400, NULL);
    expect_refused("PUT", "/teachers/802/languages/de", "{\"level\":\"D1\"}", "802", 400, "level");
    expect_refused("PUT", "/teachers/802/languages/de", "{\"level\":\"B2\",\"native\":true}", "802", 400,
                   "native");

    /* Actor missing or someone else. */
    expect_refused("PUT", "/teachers/802/languages/de", "{\"level\":\"B2\"}", NULL, 400,
                   "X-Actor-Telegram-Id");
    expect_refused("DELETE", "/teachers/802/languages/en", NULL, NULL, 400, "X-Actor-Telegram-Id");
    expect_refused("PUT", "/teachers/802/languages/de", "{\"level\":\"B2\"}", "803", 403, "802");
    expect_refused("PUT", "/teachers/802/languages/en", "{\"level\":\"C2\"}", "803", 403, NULL);
    expect_refused("DELETE", "/teachers/802/languages/en", NULL, "803", 403, "802");

    /* Unknown teacher. */
    expect_refused("PUT", "/teachers/9999/languages/en", "{\"level\":\"B2\"}", "9999", 404, "9999");
    expect_refused("DELETE", "/teachers/9999/languages/en", NULL, "9999", 404, "teacher 9999 not found");

    /* Nothing changed: still only English at B1, no new audit rows. */
    lst_resp_t resp;
    call(&resp, "GET", "/teachers/802", NULL, NULL);
    json_object *langs = lst_field(resp.json, "languages");
    cr_assert_eq(json_object_array_length(langs), 1, "%.300s", resp.body);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(langs, 0), "level"), "B1");
    lst_resp_free(&resp);
    cr_expect_eq(count_rows("SELECT count(*) FROM teacher_languages"), 1);
    cr_expect_eq(audit_count("true"), audits, "refused requests must not be audited");
}

/* ---- batch ---- */

Test(teachers, batch_read_in_the_order_asked_with_missing_ids)
{
    create_teacher(11, "{\"bio\":\"one\"}");
    create_teacher(22, "{\"bio\":\"two\"}");
    create_teacher(33, "{\"bio\":\"three\"}");
    set_language(22, "en", "C1");
    set_language(22, "it", "A2");

    lst_resp_t resp;
    call(&resp, "GET", "/teachers?ids=33,999,11,22,1", NULL, NULL);
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    json_object *teachers = lst_field(resp.json, "teachers"), *missing = lst_field(resp.json, "missing");
    cr_assert_eq(json_object_array_length(teachers), 3, "%.300s", resp.body);
    cr_expect_eq(id_at(teachers, 0), 33);
    cr_expect_eq(id_at(teachers, 1), 11);
    cr_expect_eq(id_at(teachers, 2), 22);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(teachers, 1), "bio"), "one");
    json_object *langs = lst_field(json_object_array_get_idx(teachers, 2), "languages");
    cr_assert_eq(json_object_array_length(langs), 2);
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(langs, 0), "language_code"), "en");
    cr_expect_eq(json_object_array_length(lst_field(json_object_array_get_idx(teachers, 0), "languages")), 0);
    cr_assert_eq(json_object_array_length(missing), 2);
    cr_expect_eq(json_object_get_int64(json_object_array_get_idx(missing, 0)), 999);
    cr_expect_eq(json_object_get_int64(json_object_array_get_idx(missing, 1)), 1);
    lst_resp_free(&resp);

    call(&resp, "GET", "/teachers?ids=5", NULL, NULL);
    cr_assert_eq(resp.status, 200);
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "teachers")), 0);
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "missing")), 1);
    lst_resp_free(&resp);
}

Test(teachers, batch_is_bounded_and_validated)
{
    char path[4096] = "/teachers?ids=";
    size_t off = strlen(path);
    for (int i = 1; i <= 101; i++)
        off += (size_t)snprintf(path + off, sizeof(path) - off, "%s%d", i > 1 ? "," : "", i);
    expect_refused("GET", path, NULL, NULL, 400, "at most 100");

    /* Exactly 100 is fine. */
    path[strlen(path) - 4] = '\0';
    lst_resp_t resp;
    call(&resp, "GET", path, NULL, NULL);
    cr_expect_eq(resp.status, 200, "%.200s", resp.body);
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "missing")), 100);
    lst_resp_free(&resp);

    expect_refused("GET", "/teachers", NULL, NULL, 400, "ids");
    expect_refused("GET", "/teachers?ids=", NULL, NULL, 400, "ids");
    expect_refused("GET", "/teachers?ids=1,abc", NULL, NULL, 400, "abc");
    expect_refused("GET", "/teachers?ids=1,-2", NULL, NULL, 400, "-2");
    expect_refused("GET", "/teachers?ids=99999999999999999999", NULL, NULL, 400, "telegram id");
    expect_refused("GET", "/teachers?ids=1,,2", NULL, NULL, 400, "telegram id");
}

/* ---- search ---- */

/* Teachers 101..106 teach English at B1, B2, C1, C2, C2 (inactive) and nothing; 107 teaches German C2. */
static void search_fixture(void)
{
    static const char *const en_levels[] = {"B1", "B2", "C1", "C2", "C2"};
    for (int i = 0; i < 5; i++) {
        create_teacher(101 + i, NULL);
        set_language(101 + i, "en", en_levels[i]);
    }
    create_teacher(106, NULL);
    create_teacher(107, NULL);
    set_language(107, "de", "C2");
    set_language(103, "de", "A1");
    lst_resp_t resp;
    call(&resp, "PUT", "/teachers/105", "{\"is_active\":false}", "105");
    cr_assert_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
}

/* GETs `query` and asserts the telegram ids answered, in order. */
static void expect_search(const char *query, const long long *want, size_t nwant)
{
    char path[256];
    lst_resp_t resp;
    snprintf(path, sizeof(path), "/teachers/search?%s", query);
    call(&resp, "GET", path, NULL, NULL);
    cr_assert_eq(resp.status, 200, "%s: %d %.300s", path, resp.status, resp.body);
    json_object *teachers = lst_field(resp.json, "teachers");
    cr_assert(json_object_is_type(teachers, json_type_array), "%s: %.300s", path, resp.body);
    cr_expect_eq(json_object_array_length(teachers), nwant, "%s: %.500s", path, resp.body);
    for (size_t i = 0; i < nwant && i < json_object_array_length(teachers); i++)
        cr_expect_eq(id_at(teachers, i), want[i], "%s: item %zu", path, i);
    lst_resp_free(&resp);
}

Test(teachers, search_by_language_and_level)
{
    search_fixture();
    static const long long all_en[] = {101, 102, 103, 104};
    expect_search("language=en", all_en, 4);
    static const long long en_b2[] = {102, 103, 104};
    expect_search("language=en&level=B2", en_b2, 3);
    static const long long en_c2[] = {104};
    expect_search("language=en&level=C2", en_c2, 1);
    expect_search("language=en&level=A1", all_en, 4);
    static const long long de_b1[] = {107};
    expect_search("language=de&level=B1", de_b1, 1);
    static const long long de_all[] = {103, 107};
    expect_search("language=de", de_all, 2);
    expect_search("language=zh", NULL, 0);

    /* Each result carries its languages, and the page its bounds. */
    lst_resp_t resp;
    call(&resp, "GET", "/teachers/search?language=de&level=A1", NULL, NULL);
    json_object *first = json_object_array_get_idx(lst_field(resp.json, "teachers"), 0);
    cr_expect_eq(json_object_array_length(lst_field(first, "languages")), 2, "%.300s", resp.body);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "limit")), 20);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "offset")), 0);
    lst_resp_free(&resp);

    /* Reactivating a teacher makes them findable again. */
    call(&resp, "PUT", "/teachers/105", "{\"is_active\":true}", "105");
    cr_assert_eq(resp.status, 200);
    lst_resp_free(&resp);
    static const long long en_c2_both[] = {104, 105};
    expect_search("language=en&level=C2", en_c2_both, 2);
}

Test(teachers, search_paginates_stably)
{
    search_fixture();
    /* Pages of two walk all matches once, in telegram_id order, however often they are read. */
    static const long long page1[] = {101, 102}, page2[] = {103, 104};
    for (int round = 0; round < 2; round++) {
        expect_search("language=en&limit=2&offset=0", page1, 2);
        expect_search("language=en&limit=2&offset=2", page2, 2);
        expect_search("language=en&limit=2&offset=4", NULL, 0);
    }
    static const long long b2_second[] = {103};
    expect_search("language=en&level=B2&limit=1&offset=1", b2_second, 1);

    lst_resp_t resp;
    call(&resp, "GET", "/teachers/search?language=en&limit=3&offset=1", NULL, NULL);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "limit")), 3);
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "offset")), 1);
    cr_expect_eq(json_object_array_length(lst_field(resp.json, "teachers")), 3);
    lst_resp_free(&resp);
}

Test(teachers, search_validates_its_query)
{
    expect_refused("GET", "/teachers/search", NULL, NULL, 400, "language");
    expect_refused("GET", "/teachers/search?level=B2", NULL, NULL, 400, "language");
    expect_refused("GET", "/teachers/search?language=EN", NULL, NULL, 400, "language");
    expect_refused("GET", "/teachers/search?language=english", NULL, NULL, 400, "language");
    expect_refused("GET", "/teachers/search?language=", NULL, NULL, 400, "language");
    expect_refused("GET", "/teachers/search?language=en%27--", NULL, NULL, 400, "language");
    expect_refused("GET", "/teachers/search?language=en&level=B3", NULL, NULL, 400, "level");
    expect_refused("GET", "/teachers/search?language=en&level=b2", NULL, NULL, 400, "level");
    expect_refused("GET", "/teachers/search?language=en&level=", NULL, NULL, 400, "level");
    expect_refused("GET", "/teachers/search?language=en&limit=0", NULL, NULL, 400, "limit");
    expect_refused("GET", "/teachers/search?language=en&limit=101", NULL, NULL, 400, "limit");
    expect_refused("GET", "/teachers/search?language=en&limit=ten", NULL, NULL, 400, "limit");
    expect_refused("GET", "/teachers/search?language=en&offset=-1", NULL, NULL, 400, "offset");
    expect_refused("GET", "/teachers/search?language=en&offset=99999999999999999999", NULL, NULL, 400,
                   "offset");
}

/* ---- the front door ---- */

Test(teachers, internal_token_and_methods)
{
    char url[256];
    lst_resp_t resp;
    snprintf(url, sizeof(url), "%s/teachers/1", svc.daemon.base_url);
    lst_http(&resp, "GET", url, NULL, NULL);
    lst_expect_problem(&resp, 401, NULL);
    lst_resp_free(&resp);
    const char *wrong[] = {"Authorization: Bearer not-the-token-at-all", NULL};
    lst_http(&resp, "PUT", url, wrong, "{}");
    lst_expect_problem(&resp, 401, NULL);
    lst_resp_free(&resp);

    call(&resp, "DELETE", "/teachers/1", NULL, "1");
    lst_expect_problem(&resp, 405, NULL);
    char *allow = lst_resp_header(&resp, "allow");
    cr_expect(allow != NULL && strstr(allow, "GET") && strstr(allow, "PUT"), "Allow: %s",
              allow ? allow : "none");
    free(allow);
    lst_resp_free(&resp);

    snprintf(url, sizeof(url), "%s/readyz", svc.daemon.base_url);
    lst_http(&resp, "GET", url, NULL, NULL);
    cr_expect_eq(resp.status, 200);
    lst_resp_free(&resp);
    cr_expect_eq(audit_count("true"), 0);
}
