/*
 * GET /api/user/profile/{telegram_id}: the person's user (auth, primary), teacher and student
 * profiles, groups (taught and joined, merged) and upcoming lessons, fetched concurrently.
 *
 * Authorization (DESIGN.md §6) needs no call of its own: the caller's role comes with the user part
 * (one batch read of both people when the caller reads someone else), and whether the caller
 * teaches the person follows from the person's groups, whose teacher ids are in the member part.
 */
#include "bff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GROUPS_LIMIT  100
#define LESSONS_LIMIT 20
#define MAX_GROUPS    (2 * GROUPS_LIMIT)

enum { P_USER, P_TEACHER, P_STUDENT, P_TAUGHT, P_JOINED, P_LESSONS, P_COUNT };

typedef struct {
    int64_t target;
} profile_t;

void bff_format_now(char *out, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_object *bff_member(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (obj != NULL && json_object_is_type(obj, json_type_object))
        json_object_object_get_ex(obj, key, &v);
    return v;
}

int64_t bff_id_of(json_object *obj, const char *key)
{
    json_object *v = bff_member(obj, key);
    return v != NULL && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
}

const char *bff_str_of(json_object *obj, const char *key)
{
    json_object *v = bff_member(obj, key);
    return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

ls_role_t bff_role_of(json_object *user)
{
    const char *role = bff_str_of(user, "role");
    if (strcmp(role, "admin") == 0)
        return LS_ROLE_ADMIN;
    if (strcmp(role, "teacher") == 0)
        return LS_ROLE_TEACHER;
    if (strcmp(role, "student") == 0)
        return LS_ROLE_STUDENT;
    return LS_ROLE_NONE;
}

/* The array under key (e.g. "groups" of a list answer), or NULL. */
json_object *bff_list_of(json_object *answer, const char *key)
{
    json_object *v = bff_member(answer, key);
    if (v == NULL && answer != NULL && json_object_is_type(answer, json_type_array))
        v = answer;
    return v != NULL && json_object_is_type(v, json_type_array) ? v : NULL;
}

/* Newest first: created_at descending (same RFC 3339 UTC format from one service), then id. */
static int newest_first(const void *a, const void *b)
{
    json_object *x = *(json_object *const *)a, *y = *(json_object *const *)b;
    int c = strcmp(bff_str_of(y, "created_at"), bff_str_of(x, "created_at"));
    return c != 0 ? c : strcmp(bff_str_of(y, "id"), bff_str_of(x, "id"));
}

/* The groups the person teaches and those they joined, each once, newest first. */
static json_object *merge_groups(json_object *taught, json_object *joined)
{
    json_object *all[MAX_GROUPS];
    size_t n = 0;
    json_object *lists[2] = {taught, joined};

    for (int l = 0; l < 2; l++) {
        size_t len = lists[l] != NULL ? json_object_array_length(lists[l]) : 0;
        for (size_t i = 0; i < len && n < MAX_GROUPS; i++) {
            json_object *g = json_object_array_get_idx(lists[l], i);
            size_t j;
            for (j = 0; j < n; j++)
                if (strcmp(bff_str_of(all[j], "id"), bff_str_of(g, "id")) == 0)
                    break;
            if (j == n)
                all[n++] = g;
        }
    }
    qsort(all, n, sizeof(all[0]), newest_first);
    json_object *out = json_object_new_array_ext((int)n);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(out, json_object_get(all[i]));
    return out;
}

/* Whether one of the groups (the person's memberships) is taught by the caller. */
static int teaches_one_of(json_object *groups, int64_t caller)
{
    size_t len = groups != NULL ? json_object_array_length(groups) : 0;
    for (size_t i = 0; i < len; i++)
        if (bff_id_of(json_object_array_get_idx(groups, i), "teacher_telegram_id") == caller)
            return 1;
    return 0;
}

/* Sets key to the part's answer (a reference), to null for a 404 when absent_ok, or to null with an
 * errors entry. */
static void put_part(json_object *out, const char *key, const bff_part_t *p, json_object *value,
                     int absent_ok, json_object *errors)
{
    if (p->ok && value != NULL) {
        json_object_object_add(out, key, json_object_get(value));
        return;
    }
    json_object_object_add(out, key, NULL);
    if (!(absent_ok && p->status == 404))
        json_object_array_add(errors, bff_part_error(p));
}

static void on_parts(ls_req_t *r, bff_fanout_t *f)
{
    profile_t *pv = f->ud;
    const bff_part_t *parts = f->parts;
    const bff_part_t *up = &parts[P_USER];
    int64_t target = pv->target, caller = r->actor;
    json_object *user = NULL, *caller_user = NULL;

    /* The primary record: 503 when auth-service cannot say, 404 when it does not know the person. */
    if (up->unavailable || (!up->ok && up->status != 404))
        return bff_reply_upstream_failure(r, up);
    if (caller == target) {
        user = up->ok ? up->json : NULL;
        caller_user = user;
    } else {
        json_object *users = bff_list_of(up->json, "users");
        size_t len = users != NULL ? json_object_array_length(users) : 0;
        for (size_t i = 0; i < len; i++) {
            json_object *u = json_object_array_get_idx(users, i);
            if (bff_id_of(u, "telegram_id") == target)
                user = u;
            else if (bff_id_of(u, "telegram_id") == caller)
                caller_user = u;
        }
    }

    json_object *joined = parts[P_JOINED].ok ? bff_list_of(parts[P_JOINED].json, "groups") : NULL;
    if (caller != target && bff_role_of(caller_user) != LS_ROLE_ADMIN && !teaches_one_of(joined, caller)) {
        if (joined == NULL)
            return ls_reply_problem(r, 503, "cannot check access to this profile: groups-service: %s",
                                    parts[P_JOINED].detail);
        return ls_reply_problem(r, 403, "you may read only your own profile and those of your students");
    }
    if (user == NULL)
        return ls_reply_problem(r, 404, "user %lld not found", (long long)target);

    json_object *out = json_object_new_object(), *errors = json_object_new_array();
    json_object_object_add(out, "user", json_object_get(user));
    put_part(out, "teacher", &parts[P_TEACHER], parts[P_TEACHER].json, 1, errors);
    put_part(out, "student", &parts[P_STUDENT], parts[P_STUDENT].json, 1, errors);

    json_object *taught = parts[P_TAUGHT].ok ? bff_list_of(parts[P_TAUGHT].json, "groups") : NULL;
    if (taught != NULL && joined != NULL) {
        json_object_object_add(out, "groups", merge_groups(taught, joined));
    } else {
        json_object_object_add(out, "groups", NULL);
        json_object_array_add(errors, bff_part_error(taught == NULL ? &parts[P_TAUGHT] : &parts[P_JOINED]));
    }
    const bff_part_t *lp = &parts[P_LESSONS];
    put_part(out, "lessons", lp, lp->ok ? bff_list_of(lp->json, "lessons") : NULL, 0, errors);

    int partial = json_object_array_length(errors) > 0;
    json_object_object_add(out, "partial", json_object_new_boolean(partial));
    json_object_object_add(out, "errors", errors);
    if (partial)
        bff_add_header(r, "x-partial", "true");
    ls_reply_json(r, 200, out);
}

void bff_profile(ls_req_t *r)
{
    int64_t target = ls_req_param_id(r, "telegram_id");
    profile_t *pv = ls_req_alloc(r, sizeof(*pv));
    char now[32], *path;
    const size_t max = 160;

    pv->target = target;
    bff_format_now(now, sizeof(now));
    bff_fanout_t *f = bff_fanout_new(r, pv);

    path = ls_req_alloc(r, max);
    if (r->actor == target)
        snprintf(path, max, "/users/%lld", (long long)target);
    else
        snprintf(path, max, "/users?ids=%lld,%lld", (long long)target, (long long)r->actor);
    bff_fanout_add(f, BFF_UP_AUTH, "GET", path, NULL, 0);

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/teachers/%lld", (long long)target);
    bff_fanout_add(f, BFF_UP_TEACHERS, "GET", path, NULL, 0);

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/students/%lld", (long long)target);
    bff_fanout_add(f, BFF_UP_STUDENTS, "GET", path, NULL, 0);

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/groups?teacher_id=%lld&limit=%d", (long long)target, GROUPS_LIMIT);
    bff_fanout_add(f, BFF_UP_GROUPS, "GET", path, NULL, 0);

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/groups?member_id=%lld&limit=%d", (long long)target, GROUPS_LIMIT);
    bff_fanout_add(f, BFF_UP_GROUPS, "GET", path, NULL, 0);

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/lessons?telegram_id=%lld&from=%s&limit=%d", (long long)target, now, LESSONS_LIMIT);
    bff_fanout_add(f, BFF_UP_CALENDAR, "GET", path, NULL, 0);

    bff_fanout_start(f, on_parts);
}
