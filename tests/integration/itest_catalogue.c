/*
 * The catalogue (issue 16), end to end: the real bff in front of the real services (stack.h), with
 * people, teachers and groups written through the services' own APIs.
 *   - GET /api/catalogue/groups: q a case-insensitive substring of the title or the description
 *     (LIKE's wildcards taken literally), language and level filters, active groups only, newest
 *     first; each group with its free seats, price and its teacher's names and languages;
 *   - paging: limit and offset, "next_offset" until the last page;
 *   - GET /api/catalogue/teachers: active teachers of a language at a level or higher, with names;
 *   - bad parameters: 400 problem+json, before any service is asked;
 *   - auth-service stopped: the lists still answer, partial, the names null; the list's own service
 *     stopped: 503.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

#define ANNA    8101 /* a teacher with names and two languages */
#define BORIS   8102 /* a teacher with a first name only and one language */
#define NONAME  8103 /* teaches groups, but neither auth- nor teachers-service knows them */
#define DORA    8104 /* a teacher of English at A2 */
#define IDLE    8105 /* an inactive teacher */
#define STUDENT 8201 /* the caller, and the first of the students who join */

static lst_stack_t st;

static void setup(void)
{
    lst_stack_start(&st, NULL);
}

static void teardown(void)
{
    lst_stack_stop(&st);
}

TestSuite(catalogue, .init = setup, .fini = teardown, .timeout = 300);

/* ---- writing the school through the services ---- */

/* A call to service as actor that must answer one of two statuses; the answer is kept in resp. */
static void call(lst_resp_t *resp, int service, const char *method, const char *path, const char *body,
                 long long actor, int status, int or_status)
{
    char who[24];
    snprintf(who, sizeof(who), "%lld", actor);
    lst_call_as(resp, st.services[service].daemon.base_url, st.services[service].token, method, path, body,
                who, NULL);
    cr_assert(resp->status == status || resp->status == or_status, "%s %s: %d %.300s", method, path,
              resp->status, resp->body);
}

static void call_ok(int service, const char *method, const char *path, const char *body, long long actor)
{
    lst_resp_t resp = {0};
    call(&resp, service, method, path, body, actor, 200, 201);
    lst_resp_free(&resp);
}

static void user(long long id, const char *body)
{
    char path[64];
    snprintf(path, sizeof(path), "/users/%lld", id);
    call_ok(LST_AUTH, "PUT", path, body, id);
}

static void teacher(long long id, const char *body, const char *language, const char *level)
{
    char path[96], lb[32];
    snprintf(path, sizeof(path), "/teachers/%lld", id);
    call_ok(LST_TEACHERS, "PUT", path, body, id);
    if (language != NULL) {
        snprintf(path, sizeof(path), "/teachers/%lld/languages/%s", id, language);
        snprintf(lb, sizeof(lb), "{\"level\":\"%s\"}", level);
        call_ok(LST_TEACHERS, "PUT", path, lb, id);
    }
}

/* Creates a group and returns its id (static storage, one per call in turn). */
static const char *group(long long by, const char *title, const char *description, const char *language,
                         const char *level, int capacity, int price)
{
    static char ids[16][40];
    static int next;
    char body[512], prices[48] = "";
    lst_resp_t resp = {0};
    if (price > 0)
        snprintf(prices, sizeof(prices), ",\"is_free\":false,\"price\":%d", price);
    snprintf(body, sizeof(body),
             "{\"title\":\"%s\",\"description\":\"%s\",\"language_code\":\"%s\",\"level\":\"%s\","
             "\"capacity\":%d%s}",
             title, description, language, level, capacity, prices);
    call(&resp, LST_GROUPS, "POST", "/groups", body, by, 201, 201);
    char *id = ids[next++ % 16];
    snprintf(id, 40, "%s", lst_str_field(resp.json, "id"));
    lst_resp_free(&resp);
    return id;
}

/* Students STUDENT, STUDENT + 1, … join the group of teacher `by` by an invitation. */
static void join(const char *group_id, long long by, int students)
{
    char path[128], code[64];
    lst_resp_t resp = {0};
    snprintf(path, sizeof(path), "/groups/%s/invitations", group_id);
    call(&resp, LST_GROUPS, "POST", path, "{}", by, 201, 201);
    snprintf(code, sizeof(code), "%s", lst_str_field(resp.json, "code"));
    lst_resp_free(&resp);
    for (int i = 0; i < students; i++) {
        snprintf(path, sizeof(path), "/join/%s", code);
        call_ok(LST_GROUPS, "POST", path, NULL, STUDENT + i);
    }
}

/* The school of most tests; returns through *g1 the English speaking club (2 of 8 seats taken). */
static void school(const char **g1)
{
    user(ANNA, "{\"first_name\":\"Anna\",\"last_name\":\"Petrova\",\"username\":\"anna_p\"}");
    user(BORIS, "{\"first_name\":\"Boris\"}");
    user(DORA, "{\"first_name\":\"Dora\",\"last_name\":\"Lee\"}");
    user(IDLE, "{\"first_name\":\"Idle\"}");
    teacher(ANNA, "{}", "en", "C2");
    teacher(ANNA, "{}", "de", "B2");
    teacher(BORIS, "{}", "en", "C1");
    teacher(DORA, "{}", "en", "A2");
    teacher(IDLE, "{\"is_active\":false}", "en", "C2");

    *g1 = group(ANNA, "English Speaking Club", "Evening practice", "en", "B1", 8, 0);
    join(*g1, ANNA, 2);
    group(BORIS, "Grammar intensive", "Focus on SPEAKING and writing", "en", "B2", 5, 1500);
    group(ANNA, "Deutsch für Anfänger", "Grundlagen, 100% auf Deutsch", "de", "A1", 10, 0);
    const char *archived = group(NONAME, "Spanish speaking", "Conversación", "es", "A2", 3, 0);
    char path[96];
    snprintf(path, sizeof(path), "/groups/%s", archived);
    call_ok(LST_GROUPS, "PATCH", path, "{\"status\":\"archived\"}", NONAME);
    group(NONAME, "Conversation café", "", "en", "B1", 2, 0);
}

/* ---- reading the catalogue ---- */

static json_object *field(json_object *o, const char *key)
{
    return lst_field(o, key);
}

/* The length of an array, or -1 for anything else (absent, null, another type). */
static long length(json_object *a)
{
    return a != NULL && json_object_is_type(a, json_type_array) ? (long)json_object_array_length(a) : -1;
}

static const char *str(json_object *o, const char *key)
{
    const char *s = lst_str_field(o, key);
    return s != NULL ? s : "(null)";
}

/* GET path through the bff as STUDENT: 200, not partial. */
static void get_ok(lst_resp_t *resp, const char *path)
{
    lst_stack_api(&st, resp, STUDENT, "GET", path, NULL);
    cr_assert_eq(resp->status, 200, "GET %s: %d %.400s", path, resp->status, resp->body);
    cr_assert_not_null(resp->json, "%s", resp->body);
    cr_expect_eq(json_object_get_boolean(field(resp->json, "partial")), 0, "%.400s", resp->body);
    cr_expect_eq(length(field(resp->json, "errors")), 0, "%.400s", resp->body);
    char *h = lst_resp_header(resp, "x-partial");
    cr_expect_null(h, "X-Partial: %s", h);
    free(h);
}

/* The values of member key of a list's items, joined by '|' (numbers too), into out. */
static const char *column(json_object *list, const char *key, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (long i = 0; i < length(list); i++) {
        json_object *v = field(json_object_array_get_idx(list, i), key);
        o += (size_t)snprintf(out + o, size - o, "%s%s", i > 0 ? "|" : "",
                              v != NULL ? json_object_get_string(v) : "null");
        if (o >= size)
            break;
    }
    return out;
}

/* GET path: 200 with these titles in this order (the member "title", or key). */
static void expect_list(const char *path, const char *list_key, const char *key, const char *want)
{
    lst_resp_t resp = {0};
    char got[1024];
    get_ok(&resp, path);
    cr_expect_str_eq(column(field(resp.json, list_key), key, got, sizeof(got)), want, "GET %s", path);
    lst_resp_free(&resp);
}

/* Each page {path, its titles joined by '|', its next_offset as text ("null": none)}. */
static void expect_pages(const char *const pages[][3], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lst_resp_t resp = {0};
        char got[512];
        get_ok(&resp, pages[i][0]);
        cr_expect_str_eq(column(field(resp.json, "groups"), "title", got, sizeof(got)), pages[i][1], "%s",
                         pages[i][0]);
        json_object *next = field(resp.json, "next_offset");
        cr_expect(json_object_object_get_ex(resp.json, "next_offset", NULL), "%.300s", resp.body);
        cr_expect_str_eq(next != NULL ? json_object_get_string(next) : "null", pages[i][2], "%s",
                         pages[i][0]);
        lst_resp_free(&resp);
    }
}

static json_object *find(json_object *list, const char *key, const char *value)
{
    for (long i = 0; i < length(list); i++)
        if (strcmp(str(json_object_array_get_idx(list, i), key), value) == 0)
            return json_object_array_get_idx(list, i);
    return NULL;
}

Test(catalogue, groups_by_substring_language_and_level_with_teachers_and_free_seats)
{
    const char *g1;
    school(&g1);

    /* Every active group, newest first; the archived one never. */
    expect_list("/api/catalogue/groups", "groups", "title",
                "Conversation café|Deutsch für Anfänger|Grammar intensive|English Speaking Club");
    /* Case-insensitive, in the title or the description. */
    expect_list("/api/catalogue/groups?q=speaking", "groups", "title",
                "Grammar intensive|English Speaking Club");
    expect_list("/api/catalogue/groups?q=sPeAk", "groups", "title",
                "Grammar intensive|English Speaking Club");
    expect_list("/api/catalogue/groups?q=evening+PRACTICE", "groups", "title", "English Speaking Club");
    expect_list("/api/catalogue/groups?q=f%C3%BCr", "groups", "title", "Deutsch für Anfänger");
    expect_list("/api/catalogue/groups?q=caf%C3%A9", "groups", "title", "Conversation café");
    /* LIKE's wildcards are characters like any other. */
    expect_list("/api/catalogue/groups?q=100%25", "groups", "title", "Deutsch für Anfänger");
    expect_list("/api/catalogue/groups?q=%25%25", "groups", "title", "");
    expect_list("/api/catalogue/groups?q=_", "groups", "title", "");
    expect_list("/api/catalogue/groups?q=nothing+like+it", "groups", "title", "");
    /* The filters, alone and together. */
    expect_list("/api/catalogue/groups?language=de", "groups", "title", "Deutsch für Anfänger");
    expect_list("/api/catalogue/groups?level=B1", "groups", "title",
                "Conversation café|English Speaking Club");
    expect_list("/api/catalogue/groups?q=SPEAK&language=en&level=B2", "groups", "title", "Grammar intensive");
    expect_list("/api/catalogue/groups?q=speaking&language=es", "groups", "title", "");

    lst_resp_t resp = {0};
    get_ok(&resp, "/api/catalogue/groups?language=en");
    json_object *groups = field(resp.json, "groups");
    cr_assert_eq(length(groups), 3, "%.600s", resp.body);

    /* The club: 2 of 8 seats taken, free, Anna with her names and both languages. */
    json_object *club = find(groups, "id", g1), *t = field(club, "teacher");
    cr_assert_not_null(club, "%.600s", resp.body);
    cr_expect_eq(json_object_get_int(field(club, "capacity")), 8);
    cr_expect_eq(json_object_get_int(field(club, "member_count")), 2);
    cr_expect_eq(json_object_get_int(field(club, "free_seats")), 6);
    cr_expect_eq(json_object_get_boolean(field(club, "is_free")), 1);
    cr_expect_null(field(club, "price"));
    cr_expect_str_eq(str(club, "status"), "active");
    cr_expect_eq(json_object_get_int64(field(t, "telegram_id")), ANNA);
    cr_expect_str_eq(str(t, "first_name"), "Anna");
    cr_expect_str_eq(str(t, "last_name"), "Petrova");
    cr_expect_str_eq(str(t, "username"), "anna_p");
    cr_expect_str_eq(
        json_object_to_json_string_ext(field(t, "languages"), JSON_C_TO_STRING_PLAIN),
        "[{\"language_code\":\"de\",\"level\":\"B2\"},{\"language_code\":\"en\",\"level\":\"C2\"}]");

    /* The paid group: its price; Boris has no last name. */
    json_object *paid = find(groups, "title", "Grammar intensive");
    t = field(paid, "teacher");
    cr_expect_eq(json_object_get_boolean(field(paid, "is_free")), 0);
    cr_expect_eq(json_object_get_int(field(paid, "price")), 1500);
    cr_expect_eq(json_object_get_int(field(paid, "free_seats")), 5);
    cr_expect_str_eq(str(t, "first_name"), "Boris");
    cr_expect_null(field(t, "last_name"));
    cr_expect_str_eq(json_object_to_json_string_ext(field(t, "languages"), JSON_C_TO_STRING_PLAIN),
                     "[{\"language_code\":\"en\",\"level\":\"C1\"}]");

    /* A teacher nobody knows: the names and languages null, and the answer still complete. */
    t = field(find(groups, "title", "Conversation café"), "teacher");
    cr_expect_eq(json_object_get_int64(field(t, "telegram_id")), NONAME);
    cr_expect(json_object_object_get_ex(t, "first_name", NULL) && field(t, "first_name") == NULL);
    cr_expect(json_object_object_get_ex(t, "languages", NULL) && field(t, "languages") == NULL);
    cr_expect_eq(json_object_get_int(field(resp.json, "limit")), 20);
    cr_expect_eq(json_object_get_int(field(resp.json, "offset")), 0);
    cr_expect(json_object_object_get_ex(resp.json, "next_offset", NULL) &&
              field(resp.json, "next_offset") == NULL);
    lst_resp_free(&resp);

    /* A full group has no free seat. */
    const char *full = group(BORIS, "Tiny speaking circle", "", "en", "C1", 1, 0);
    join(full, BORIS, 1);
    get_ok(&resp, "/api/catalogue/groups?q=tiny");
    cr_assert_eq(length(field(resp.json, "groups")), 1, "%.400s", resp.body);
    cr_expect_eq(
        json_object_get_int(field(json_object_array_get_idx(field(resp.json, "groups"), 0), "free_seats")), 0,
        "%.400s", resp.body);
    lst_resp_free(&resp);
}

Test(catalogue, groups_and_teachers_page_by_limit_and_offset)
{
    char title[64];
    user(ANNA, "{\"first_name\":\"Anna\"}");
    for (int i = 1; i <= 5; i++) {
        snprintf(title, sizeof(title), "Paging group %d", i);
        group(ANNA, title, "", "en", "B1", 4, 0);
    }
    group(ANNA, "Something else", "", "en", "B1", 4, 0);

    /* Newest first, two at a time; the last page says there is no next one. */
    static const char *const pages[][3] = {
        {"/api/catalogue/groups?q=paging&limit=2", "Paging group 5|Paging group 4", "2"},
        {"/api/catalogue/groups?q=paging&limit=2&offset=2", "Paging group 3|Paging group 2", "4"},
        {"/api/catalogue/groups?q=paging&limit=2&offset=4", "Paging group 1", "null"},
        {"/api/catalogue/groups?q=paging&limit=5",
         "Paging group 5|Paging group 4|Paging group 3|Paging group 2|Paging group 1", "null"},
        {"/api/catalogue/groups?q=paging&limit=4&offset=1",
         "Paging group 4|Paging group 3|Paging group 2|Paging group 1", "null"},
        {"/api/catalogue/groups?q=paging&offset=5", "", "null"},
        {"/api/catalogue/groups?q=paging&offset=100000", "", "null"},
    };
    expect_pages(pages, sizeof(pages) / sizeof(pages[0]));

    /* The teachers of English, one a page, by telegram id. */
    teacher(ANNA, "{}", "en", "C2");
    teacher(BORIS, "{}", "en", "C1");
    teacher(DORA, "{}", "en", "A2");
    expect_list("/api/catalogue/teachers?language=en&limit=1", "teachers", "telegram_id", "8101");
    expect_list("/api/catalogue/teachers?language=en&limit=1&offset=1", "teachers", "telegram_id", "8102");
    expect_list("/api/catalogue/teachers?language=en&limit=2&offset=1", "teachers", "telegram_id",
                "8102|8104");
    lst_resp_t resp = {0};
    get_ok(&resp, "/api/catalogue/teachers?language=en&limit=2");
    cr_expect_eq(json_object_get_int(field(resp.json, "next_offset")), 2, "%.400s", resp.body);
    lst_resp_free(&resp);
    get_ok(&resp, "/api/catalogue/teachers?language=en&limit=2&offset=2");
    cr_expect_null(field(resp.json, "next_offset"), "%.400s", resp.body);
    lst_resp_free(&resp);
}

/* groups-service reads the newest 1000 groups first and asks the trigram index only when they hold
 * too few matches (services/groups/statements.c): the answers are the same on both sides of that. */
Test(catalogue, search_finds_the_same_beyond_the_newest_thousand_groups)
{
    user(ANNA, "{\"first_name\":\"Anna\"}");
    char *done = lst_pg_admin_exec(
        st.services[LST_GROUPS].dbname,
        "INSERT INTO groups (teacher_telegram_id, title, description, language_code, "
        "level, capacity, created_at)"
        " SELECT 8101, 'Filler ' || n, '', 'en', 'B1'::cefr_level, 5, now() - make_interval(secs => n)"
        " FROM generate_series(1, 1005) AS n"
        " UNION ALL SELECT 8101, 'Old group ' || n, 'Ancient calligraphy', 'de', 'A2'::cefr_level, 5,"
        "  now() - make_interval(days => 400 + n) FROM generate_series(1, 3) AS n"
        " RETURNING 1");
    free(done);

    /* Older than the newest thousand: found through the index. */
    expect_list("/api/catalogue/groups?q=CALLIGRAPHY", "groups", "title",
                "Old group 1|Old group 2|Old group 3");
    expect_list("/api/catalogue/groups?q=calligraphy&language=de&level=A2&limit=2", "groups", "title",
                "Old group 1|Old group 2");
    /* A page among the newest, and pages past them. */
    static const char *const pages[][3] = {
        {"/api/catalogue/groups?q=filler&limit=3", "Filler 1|Filler 2|Filler 3", "3"},
        {"/api/catalogue/groups?q=filler&limit=3&offset=998", "Filler 999|Filler 1000|Filler 1001", "1001"},
        {"/api/catalogue/groups?q=filler&limit=5&offset=1001",
         "Filler 1002|Filler 1003|Filler 1004|Filler 1005", "null"},
        {"/api/catalogue/groups?q=filler&language=en&level=B1&limit=2&offset=1003", "Filler 1004|Filler 1005",
         "null"},
    };
    expect_pages(pages, sizeof(pages) / sizeof(pages[0]));
}

Test(catalogue, teachers_by_language_and_level_with_names)
{
    const char *g1;
    school(&g1);

    /* Active teachers only (not IDLE), by telegram id; a level is the lowest one taught. */
    expect_list("/api/catalogue/teachers?language=en", "teachers", "telegram_id", "8101|8102|8104");
    expect_list("/api/catalogue/teachers?language=en&level=C1", "teachers", "telegram_id", "8101|8102");
    expect_list("/api/catalogue/teachers?language=en&level=C2", "teachers", "telegram_id", "8101");
    expect_list("/api/catalogue/teachers?language=de", "teachers", "telegram_id", "8101");
    expect_list("/api/catalogue/teachers?language=fr", "teachers", "telegram_id", "");

    lst_resp_t resp = {0};
    get_ok(&resp, "/api/catalogue/teachers?language=en");
    json_object *list = field(resp.json, "teachers");
    cr_assert_eq(length(list), 3, "%.600s", resp.body);
    char got[256];
    cr_expect_str_eq(column(list, "first_name", got, sizeof(got)), "Anna|Boris|Dora");
    cr_expect_str_eq(column(list, "last_name", got, sizeof(got)), "Petrova|null|Lee");
    cr_expect_str_eq(column(list, "username", got, sizeof(got)), "anna_p|null|null");
    json_object *anna = json_object_array_get_idx(list, 0);
    cr_expect_eq(json_object_get_boolean(field(anna, "is_active")), 1);
    cr_expect_eq(length(field(anna, "languages")), 2, "%.400s", resp.body);
    cr_expect(json_object_object_get_ex(anna, "photo_url", NULL));
    cr_expect_null(field(resp.json, "next_offset"));
    lst_resp_free(&resp);
}

Test(catalogue, bad_parameters_get_400_problems)
{
    char q[160], path[256];
    memset(q, 'a', 101);
    q[101] = '\0';
    snprintf(path, sizeof(path), "/api/catalogue/groups?q=%s", q);
    const char *bad[][2] = {
        {path, "at most 100 bytes"},
        {"/api/catalogue/groups?q=%FF%FE", NULL}, /* not UTF-8 */
        {"/api/catalogue/groups?q=a%00b", NULL},  /* a NUL */
        {"/api/catalogue/groups?level=B3", "level"},
        {"/api/catalogue/groups?level=b1", "level"},
        {"/api/catalogue/groups?level=", "level"},
        {"/api/catalogue/groups?language=EN", "language"},
        {"/api/catalogue/groups?language=english", "language"},
        {"/api/catalogue/groups?language=e1", "language"},
        {"/api/catalogue/groups?limit=0", "limit"},
        {"/api/catalogue/groups?limit=51", "limit"},
        {"/api/catalogue/groups?limit=ten", "limit"},
        {"/api/catalogue/groups?offset=-1", "offset"},
        {"/api/catalogue/groups?offset=100001", "offset"},
        {"/api/catalogue/teachers", "language"},
        {"/api/catalogue/teachers?language=en&level=D1", "level"},
        {"/api/catalogue/teachers?language=en&limit=51", "limit"},
        {"/api/catalogue/teachers?language=en&offset=x", "offset"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lst_resp_t resp = {0};
        lst_stack_api(&st, &resp, STUDENT, "GET", bad[i][0], NULL);
        cr_expect_eq(resp.status, 400, "GET %s: %d %.300s", bad[i][0], resp.status, resp.body);
        lst_expect_problem(&resp, 400, bad[i][1]);
        lst_resp_free(&resp);
    }

    /* The longest q and the widest page are fine; so is an empty q (no text filter). */
    q[100] = '\0';
    snprintf(path, sizeof(path), "/api/catalogue/groups?q=%s&limit=50&offset=100000", q);
    expect_list(path, "groups", "title", "");
    expect_list("/api/catalogue/groups?q=", "groups", "title", "");

    /* Anyone signed in may search; nobody else. */
    char url[256];
    lst_resp_t resp = {0};
    snprintf(url, sizeof(url), "%s/api/catalogue/groups", st.bff.base_url);
    lst_http(&resp, "GET", url, NULL, NULL);
    lst_expect_problem(&resp, 401, NULL);
    lst_resp_free(&resp);
}

Test(catalogue, names_missing_is_partial_and_the_list_service_missing_is_503)
{
    const char *g1;
    school(&g1);

    cr_assert_eq(lst_daemon_stop(&st.services[LST_AUTH].daemon), 0, "auth-service did not exit cleanly");
    const char *paths[] = {"/api/catalogue/groups?q=speaking", "/api/catalogue/teachers?language=en"};
    for (size_t i = 0; i < 2; i++) {
        lst_resp_t resp = {0};
        lst_stack_api(&st, &resp, STUDENT, "GET", paths[i], NULL);
        cr_assert_eq(resp.status, 200, "GET %s: %d %.400s", paths[i], resp.status, resp.body);
        cr_expect_eq(json_object_get_boolean(field(resp.json, "partial")), 1, "%.400s", resp.body);
        json_object *errors = field(resp.json, "errors");
        cr_assert_eq(length(errors), 1, "%.400s", resp.body);
        cr_expect_str_eq(str(json_object_array_get_idx(errors, 0), "service"), "auth");
        char *h = lst_resp_header(&resp, "x-partial");
        cr_expect(h != NULL && strcmp(h, "true") == 0, "X-Partial: %s", h ? h : "absent");
        free(h);
        /* The list is still shown, with the names null. */
        json_object *list = field(resp.json, i == 0 ? "groups" : "teachers");
        cr_assert_eq(length(list), i == 0 ? 2 : 3, "%.600s", resp.body);
        json_object *first = json_object_array_get_idx(list, 0);
        json_object *named = i == 0 ? field(first, "teacher") : first;
        cr_expect(json_object_object_get_ex(named, "first_name", NULL) && field(named, "first_name") == NULL,
                  "%.400s", resp.body);
        if (i == 0) /* the languages come from teachers-service, which still answers */
            cr_expect_eq(length(field(named, "languages")), 1, "%.400s", resp.body);
        lst_resp_free(&resp);
    }

    /* Without groups-service there is no list to show. */
    cr_assert_eq(lst_daemon_stop(&st.services[LST_GROUPS].daemon), 0, "groups-service did not exit cleanly");
    lst_resp_t resp = {0};
    lst_stack_api(&st, &resp, STUDENT, "GET", "/api/catalogue/groups?q=speaking", NULL);
    lst_expect_problem(&resp, 503, "groups");
    lst_resp_free(&resp);
}
