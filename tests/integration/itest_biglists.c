/*
 * Lists without silent caps (#16), end to end: the real bff in front of the real services (stack.h).
 *   - a group of 500 members (its capacity's maximum) shows all 500 in the group view, each with the
 *     name auth-service has and the enrollment status students-service has;
 *   - a teacher with four lessons a day over 62 days (248 lessons) gets all of them in one schedule,
 *     each with its group's title and the teacher's name, and the same lessons in pages of `limit`
 *     and `offset`, where each cut page says so in "truncated";
 *   - the profile's and the group view's next 20 lessons say that there are more, and the profile of
 *     a teacher with 201 groups shows the newest 200 and says that there are more (with 200: not).
 * The school is written straight to the services (as the BFF or the outbox would write it) so that it
 * is quick to build; everything checked is read through the bff.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stack.h"

#define BIG_TEACHER  8001
#define BUSY_TEACHER 8100
#define MANY_TEACHER 8200
#define FIRST_PUPIL  9001
#define PUPILS       500 /* a group's largest capacity */
#define DAYS         62  /* the schedule's longest window */
#define PER_DAY      4

static lst_stack_t st;

static void setup(void)
{
    lst_stack_start(&st, NULL);
}

static void teardown(void)
{
    lst_stack_stop(&st);
}

TestSuite(biglists, .init = setup, .fini = teardown, .timeout = 600);

/* ---- helpers ---- */

/* A call to a service as `actor` that must answer `status` or `or_status`; the answer is kept in resp. */
static void call_ok(lst_resp_t *resp, int service, const char *method, const char *path, const char *body,
                    long long actor, int status, int or_status)
{
    char actor_text[24];
    snprintf(actor_text, sizeof(actor_text), "%lld", actor);
    lst_call_as(resp, st.services[service].daemon.base_url, st.services[service].token, method, path, body,
                actor > 0 ? actor_text : NULL, NULL);
    cr_assert(resp->status == status || resp->status == or_status, "%s %s: %d %.300s", method, path,
              resp->status, resp->body);
}

static void call_done(int service, const char *method, const char *path, const char *body, long long actor,
                      int status, int or_status)
{
    lst_resp_t resp;
    call_ok(&resp, service, method, path, body, actor, status, or_status);
    lst_resp_free(&resp);
}

static void add_user(long long id, const char *first_name, const char *last_name)
{
    char path[64], body[128];
    snprintf(path, sizeof(path), "/users/%lld", id);
    snprintf(body, sizeof(body), "{\"first_name\":\"%s\",\"last_name\":\"%s\"}", first_name, last_name);
    call_done(LST_AUTH, "PUT", path, body, 0, 201, 200);
}

/* A group of teacher's (through groups-service); its id into id. */
static void add_group(long long teacher, const char *title, int capacity, char id[64])
{
    char body[256];
    lst_resp_t resp;
    snprintf(body, sizeof(body),
             "{\"title\":\"%s\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":%d}", title, capacity);
    call_ok(&resp, LST_GROUPS, "POST", "/groups", body, teacher, 201, 201);
    snprintf(id, 64, "%s", lst_str_field(resp.json, "id"));
    lst_resp_free(&resp);
}

/* A bff read as `as` that must answer 200 and not be partial; the answer is kept in resp. */
static void view(lst_resp_t *resp, long long as, const char *path)
{
    lst_stack_api_ok(&st, resp, as, "GET", path, NULL, 200, 200);
    cr_assert_not_null(resp->json, "%.300s", resp->body);
    cr_assert(!json_object_get_boolean(lst_field(resp->json, "partial")), "%.600s", resp->body);
}

static int truncated(const lst_resp_t *resp, const char *list)
{
    json_object *t = lst_field(resp->json, "truncated"), *v = lst_field(t, list);
    cr_assert(v != NULL && json_object_is_type(v, json_type_boolean), "truncated.%s: %.300s", list,
              resp->body);
    return json_object_get_boolean(v);
}

static json_object *list_of(const lst_resp_t *resp, const char *key)
{
    json_object *l = lst_field(resp->json, key);
    cr_assert(l != NULL && json_object_is_type(l, json_type_array), "%s: %.300s", key, resp->body);
    return l;
}

/* The id of the pupil who joins k-th: joining order differs from id order (enrollments come by id). */
static long long pupil(int k)
{
    return FIRST_PUPIL + (long long)((k * 7) % PUPILS);
}

static const char *status_of(long long id)
{
    return id % 5 == 0 ? "in_progress" : id % 7 == 0 ? "completed" : "enrolled";
}

/* ---- a group of 500 ---- */

Test(biglists, a_group_of_500_shows_every_member_with_name_and_enrollment_status)
{
    char group[64], path[256], body[128], *n = NULL;
    lst_resp_t resp;

    add_user(BIG_TEACHER, "Big", "Teacher");
    add_group(BIG_TEACHER, "Five hundred", PUPILS, group);
    snprintf(path, sizeof(path), "/groups/%s/invitations", group);
    call_ok(&resp, LST_GROUPS, "POST", path, "{}", BIG_TEACHER, 201, 201);
    char code[64];
    snprintf(code, sizeof(code), "%s", lst_str_field(resp.json, "code"));
    lst_resp_free(&resp);
    for (int k = 0; k < PUPILS; k++) {
        char first[32];
        snprintf(first, sizeof(first), "P%lld", pupil(k));
        add_user(pupil(k), first, "Pupil");
        snprintf(path, sizeof(path), "/join/%s", code);
        call_done(LST_GROUPS, "POST", path, NULL, pupil(k), 201, 201);
    }
    /* Full: a 501st is refused, so 500 is every member there can be. */
    lst_call_expect_problem(st.services[LST_GROUPS].daemon.base_url, st.services[LST_GROUPS].token, "POST",
                            path, NULL, "9501", 409, "full");

    /* Every join's enrollment reaches students-service through the outbox; then some move on. */
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM group_enrollments WHERE group_id = '%s'", group);
    for (time_t end = time(NULL) + 120; time(NULL) < end; usleep(200 * 1000)) {
        free(n);
        n = lst_pg_admin_exec(st.services[LST_STUDENTS].dbname, sql);
        if (atoi(n) == PUPILS)
            break;
    }
    cr_assert_eq(atoi(n), PUPILS, "enrollments: %s", n);
    free(n);
    for (long long id = FIRST_PUPIL; id < FIRST_PUPIL + PUPILS; id++) {
        if (strcmp(status_of(id), "enrolled") == 0)
            continue;
        snprintf(path, sizeof(path), "/students/%lld/enrollments/%s", id, group);
        snprintf(body, sizeof(body), "{\"status\":\"%s\"}", status_of(id));
        call_done(LST_STUDENTS, "PUT", path, body, BIG_TEACHER, 200, 200);
    }

    /* The teacher and a member see all 500, in the order they joined, each named, each with its status. */
    long long readers[] = {BIG_TEACHER, pupil(PUPILS - 1)};
    for (size_t r = 0; r < 2; r++) {
        snprintf(path, sizeof(path), "/api/groups/%s", group);
        view(&resp, readers[r], path);
        json_object *members = list_of(&resp, "members");
        cr_assert_eq(json_object_array_length(members), PUPILS, "%zu members",
                     json_object_array_length(members));
        for (int k = 0; k < PUPILS; k++) {
            json_object *m = json_object_array_get_idx(members, (size_t)k);
            char first[32];
            snprintf(first, sizeof(first), "P%lld", pupil(k));
            cr_assert_eq(json_object_get_int64(lst_field(m, "telegram_id")), pupil(k), "member %d", k);
            cr_assert_str_eq(lst_str_field(m, "first_name"), first, "member %d", k);
            cr_assert_str_eq(lst_str_field(m, "last_name"), "Pupil", "member %d", k);
            const char *status = lst_str_field(m, "enrollment_status");
            cr_assert(status != NULL && strcmp(status, status_of(pupil(k))) == 0, "member %d (%lld): %s", k,
                      pupil(k), status ? status : "null");
        }
        json_object *teacher_user = lst_field(lst_field(resp.json, "teacher"), "user");
        cr_expect_str_eq(lst_str_field(teacher_user, "first_name"), "Big");
        cr_expect_eq(json_object_get_int(lst_field(lst_field(resp.json, "group"), "member_count")), PUPILS);
        cr_expect(!truncated(&resp, "lessons"));
        lst_resp_free(&resp);
    }
}

/* ---- a busy teacher's 62 days ---- */

/* The ids of the lessons of an answer, concatenated with ',' (malloc'ed). */
static char *ids_of(json_object *lessons)
{
    size_t n = json_object_array_length(lessons);
    char *out = calloc(n * 37 + 1, 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strcat(out, ",");
        strcat(out, lst_str_field(json_object_array_get_idx(lessons, i), "id"));
    }
    return out;
}

Test(biglists, a_busy_teachers_62_days_come_whole_or_in_pages_that_say_they_are_cut)
{
    char groups[PER_DAY][64], path[256], body[512], from[32], to[32], query[128];
    time_t base = (time(NULL) / 86400 + 1) * 86400; /* tomorrow, 00:00Z */
    lst_resp_t resp;

    add_user(BUSY_TEACHER, "Busy", "Teacher");
    call_done(LST_TEACHERS, "PUT", "/teachers/8100", "{\"bio\":\"busy\"}", BUSY_TEACHER, 201, 200);
    for (int k = 0; k < PER_DAY; k++) {
        char title[32];
        snprintf(title, sizeof(title), "Slot %d", k);
        add_group(BUSY_TEACHER, title, 10, groups[k]);
    }
    for (int d = 0; d < DAYS; d++) {
        for (int k = 0; k < PER_DAY; k++) {
            char starts[32];
            time_t t = base + d * 86400 + (8 + 2 * k) * 3600;
            strftime(starts, sizeof(starts), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
            snprintf(body, sizeof(body),
                     "{\"teacher_telegram_id\":%d,\"group_id\":\"%s\",\"starts_at\":\"%s\",\"duration_"
                     "minutes\":60}",
                     BUSY_TEACHER, groups[k], starts);
            call_done(LST_CALENDAR, "POST", "/lessons", body, BUSY_TEACHER, 201, 201);
        }
    }
    strftime(from, sizeof(from), "%Y-%m-%dT%H:%M:%SZ", gmtime(&base));
    time_t end = base + DAYS * 86400;
    strftime(to, sizeof(to), "%Y-%m-%dT%H:%M:%SZ", gmtime(&end));

    /* All 248 in one answer, in time order, each titled and named. */
    snprintf(path, sizeof(path), "/api/schedule/%d?from=%s&to=%s", BUSY_TEACHER, from, to);
    view(&resp, BUSY_TEACHER, path);
    json_object *lessons = list_of(&resp, "lessons");
    cr_assert_eq(json_object_array_length(lessons), DAYS * PER_DAY, "%zu lessons",
                 json_object_array_length(lessons));
    for (int i = 0; i < DAYS * PER_DAY; i++) {
        json_object *l = json_object_array_get_idx(lessons, (size_t)i);
        char want[32], title[32];
        time_t t = base + (i / PER_DAY) * 86400 + (8 + 2 * (i % PER_DAY)) * 3600;
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", gmtime(&t));
        cr_assert(strncmp(lst_str_field(l, "starts_at"), want, strlen(want)) == 0, "lesson %d: %s, want %s",
                  i, lst_str_field(l, "starts_at"), want);
        snprintf(title, sizeof(title), "Slot %d", i % PER_DAY);
        cr_assert_str_eq(lst_str_field(l, "group_title"), title, "lesson %d", i);
        cr_assert_str_eq(lst_str_field(l, "teacher_name"), "Busy Teacher", "lesson %d", i);
    }
    cr_expect(!truncated(&resp, "lessons"));
    cr_expect_eq(json_object_get_int(lst_field(resp.json, "limit")), 500);
    char *whole = ids_of(lessons);
    lst_resp_free(&resp);

    /* In pages of 100: two cut pages that say so, and a last one that does not; together the same. */
    char joined[DAYS * PER_DAY * 37 + 1] = "";
    for (int offset = 0; offset < DAYS * PER_DAY; offset += 100) {
        snprintf(query, sizeof(query), "&limit=100&offset=%d", offset);
        snprintf(path, sizeof(path), "/api/schedule/%d?from=%s&to=%s%s", BUSY_TEACHER, from, to, query);
        view(&resp, BUSY_TEACHER, path);
        lessons = list_of(&resp, "lessons");
        int last = offset + 100 >= DAYS * PER_DAY;
        cr_expect_eq(json_object_array_length(lessons), last ? DAYS * PER_DAY - offset : 100, "offset %d",
                     offset);
        cr_expect_eq(truncated(&resp, "lessons"), !last, "offset %d", offset);
        cr_expect_eq(json_object_get_int(lst_field(resp.json, "offset")), offset);
        char *page = ids_of(lessons);
        if (offset > 0)
            strcat(joined, ",");
        strcat(joined, page);
        free(page);
        lst_resp_free(&resp);
    }
    cr_expect_str_eq(joined, whole);
    free(whole);

    /* A page that ends exactly at the last lesson is not cut. */
    snprintf(path, sizeof(path), "/api/schedule/%d?from=%s&to=%s&limit=%d&offset=%d", BUSY_TEACHER, from, to,
             48, 200);
    view(&resp, BUSY_TEACHER, path);
    cr_expect_eq(json_object_array_length(list_of(&resp, "lessons")), 48);
    cr_expect(!truncated(&resp, "lessons"));
    lst_resp_free(&resp);

    /* Bad pages are refused. */
    const char *bad[] = {"&limit=0", "&limit=501", "&offset=-1", "&offset=100001", "&limit=x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(path, sizeof(path), "/api/schedule/%d?from=%s&to=%s%s", BUSY_TEACHER, from, to, bad[i]);
        lst_stack_api(&st, &resp, BUSY_TEACHER, "GET", path, NULL);
        lst_expect_problem(&resp, 400, NULL);
        lst_resp_free(&resp);
    }

    /* The profile's and the group view's next 20 lessons: 20 shown, and they say there are more. */
    snprintf(path, sizeof(path), "/api/user/profile/%d", BUSY_TEACHER);
    view(&resp, BUSY_TEACHER, path);
    cr_expect_eq(json_object_array_length(list_of(&resp, "lessons")), 20);
    cr_expect(truncated(&resp, "lessons"));
    cr_expect_eq(json_object_array_length(list_of(&resp, "groups")), PER_DAY);
    cr_expect(!truncated(&resp, "groups"));
    lst_resp_free(&resp);
    snprintf(path, sizeof(path), "/api/groups/%s", groups[0]);
    view(&resp, BUSY_TEACHER, path);
    cr_expect_eq(json_object_array_length(list_of(&resp, "lessons")), 20);
    cr_expect(truncated(&resp, "lessons"));
    cr_expect_eq(json_object_array_length(list_of(&resp, "members")), 0);
    lst_resp_free(&resp);
}

/* ---- a teacher of 201 groups ---- */

Test(biglists, a_profile_shows_the_newest_200_groups_and_says_when_there_are_more)
{
    char id[64], first[64] = "", path[64];
    lst_resp_t resp;

    add_user(MANY_TEACHER, "Many", "Groups");
    for (int i = 0; i < 200; i++) {
        char title[32];
        snprintf(title, sizeof(title), "Group %d", i);
        add_group(MANY_TEACHER, title, 5, id);
        if (i == 0)
            snprintf(first, sizeof(first), "%s", id);
    }
    snprintf(path, sizeof(path), "/api/user/profile/%d", MANY_TEACHER);
    view(&resp, MANY_TEACHER, path);
    json_object *groups = list_of(&resp, "groups");
    cr_expect_eq(json_object_array_length(groups), 200);
    cr_expect(!truncated(&resp, "groups"));
    cr_expect(!truncated(&resp, "lessons"));
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(groups, 199), "id"), first);
    lst_resp_free(&resp);

    /* One more: the newest 200 (the oldest is left out) and "truncated". */
    add_group(MANY_TEACHER, "Group 200", 5, id);
    view(&resp, MANY_TEACHER, path);
    groups = list_of(&resp, "groups");
    cr_expect_eq(json_object_array_length(groups), 200);
    cr_expect(truncated(&resp, "groups"));
    cr_expect_str_eq(lst_str_field(json_object_array_get_idx(groups, 0), "id"), id);
    for (size_t i = 0; i < json_object_array_length(groups); i++)
        cr_expect_str_neq(lst_str_field(json_object_array_get_idx(groups, i), "id"), first);
    lst_resp_free(&resp);
}
