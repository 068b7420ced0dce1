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

/*
 * The answer is written as text: the parts the view passes on unread (the person's own user record,
 * teacher, student, lessons) are spliced in as the services wrote them, so that only what the view
 * must read (another person's user list, the groups) is parsed and serialised by json-c. Building
 * json-c objects for every lesson and serialising them again was most of the BFF's work per view.
 */
#define MAX_PIECES 32

typedef struct {
    struct {
        const char *text;
        size_t len;
    } piece[MAX_PIECES];
    size_t n, len;
} answer_t;

static void add_text(answer_t *a, const char *text, size_t len)
{
    a->piece[a->n].text = text;
    a->piece[a->n].len = len;
    a->n++;
    a->len += len;
}

#define add_lit(a, s) add_text((a), (s), sizeof(s) - 1)

/* json-c's plain form of obj (owned by obj: keep obj until the answer is sent), or null. */
static void add_json(answer_t *a, json_object *obj)
{
    size_t len;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
    add_text(a, s, len);
}

/* The value of a part's 2xx answer as the view shows it: the whole answer, or with list_key the array
 * under that key (or the answer itself when it is an array). NULL when there is none. */
static const char *part_value(const bff_part_t *p, const char *list_key, size_t *len)
{
    if (!p->ok)
        return NULL;
    if (p->raw_json) {
        const bff_json_span_t *v = &p->whole;
        if (list_key != NULL) {
            v = p->member.text != NULL ? &p->member : &p->whole;
            if (v->type != json_type_array)
                return NULL;
        }
        if (v->type == json_type_null)
            return NULL;
        *len = v->len;
        return v->text;
    }
    json_object *obj = list_key != NULL ? bff_list_of(p->json, list_key) : p->json;
    return obj != NULL ? json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, len) : NULL;
}

/* Adds the part's value, null for a 404 when absent_ok, or null with an errors entry. */
static void add_part(answer_t *a, const bff_part_t *p, const char *list_key, int absent_ok,
                     json_object *errors)
{
    size_t len;
    const char *v = part_value(p, list_key, &len);
    if (v != NULL) {
        add_text(a, v, len);
        return;
    }
    add_lit(a, "null");
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
    const char *user_text = NULL;
    size_t user_len = 0;

    /* The primary record: 503 when auth-service cannot say, 404 when it does not know the person. */
    if (up->unavailable || (!up->ok && up->status != 404))
        return bff_reply_upstream_failure(r, up);
    if (caller == target) {
        user_text = part_value(up, NULL, &user_len); /* passed on unread: nothing to check */
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
        if (user != NULL)
            user_text = json_object_to_json_string_length(user, JSON_C_TO_STRING_PLAIN, &user_len);
    }

    json_object *joined = parts[P_JOINED].ok ? bff_list_of(parts[P_JOINED].json, "groups") : NULL;
    if (caller != target && bff_role_of(caller_user) != LS_ROLE_ADMIN && !teaches_one_of(joined, caller)) {
        if (joined == NULL)
            return ls_reply_problem(r, 503, "cannot check access to this profile: groups-service: %s",
                                    parts[P_JOINED].detail);
        return ls_reply_problem(r, 403, "you may read only your own profile and those of your students");
    }
    if (user_text == NULL)
        return ls_reply_problem(r, 404, "user %lld not found", (long long)target);

    answer_t a = {.n = 0};
    json_object *errors = json_object_new_array(), *groups = NULL;
    add_lit(&a, "{\"user\":");
    add_text(&a, user_text, user_len);
    add_lit(&a, ",\"teacher\":");
    add_part(&a, &parts[P_TEACHER], NULL, 1, errors);
    add_lit(&a, ",\"student\":");
    add_part(&a, &parts[P_STUDENT], NULL, 1, errors);

    add_lit(&a, ",\"groups\":");
    json_object *taught = parts[P_TAUGHT].ok ? bff_list_of(parts[P_TAUGHT].json, "groups") : NULL;
    if (taught != NULL && joined != NULL) {
        groups = merge_groups(taught, joined);
        add_json(&a, groups);
    } else {
        add_lit(&a, "null");
        json_object_array_add(errors, bff_part_error(taught == NULL ? &parts[P_TAUGHT] : &parts[P_JOINED]));
    }
    add_lit(&a, ",\"lessons\":");
    add_part(&a, &parts[P_LESSONS], "lessons", 0, errors);

    int partial = json_object_array_length(errors) > 0;
    if (partial)
        add_lit(&a, ",\"partial\":true,\"errors\":");
    else
        add_lit(&a, ",\"partial\":false,\"errors\":");
    add_json(&a, errors);
    add_lit(&a, "}");

    char *body = ls_req_alloc(r, a.len), *at = body;
    for (size_t i = 0; i < a.n; i++) {
        memcpy(at, a.piece[i].text, a.piece[i].len);
        at += a.piece[i].len;
    }
    if (partial)
        bff_add_header(r, "x-partial", "true");
    ls_reply_raw(r, 200, "application/json", body, a.len);
    json_object_put(groups);
    json_object_put(errors);
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
    bff_part_t *p = bff_fanout_add(f, BFF_UP_AUTH, "GET", path, NULL, 0);
    p->pass_through = r->actor == target; /* another person's record is picked out of a list */

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/teachers/%lld", (long long)target);
    bff_fanout_add(f, BFF_UP_TEACHERS, "GET", path, NULL, 0)->pass_through = 1;

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/students/%lld", (long long)target);
    bff_fanout_add(f, BFF_UP_STUDENTS, "GET", path, NULL, 0)->pass_through = 1;

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/groups?teacher_id=%lld&limit=%d", (long long)target, GROUPS_LIMIT);
    bff_fanout_add(f, BFF_UP_GROUPS, "GET", path, NULL, 0);

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/groups?member_id=%lld&limit=%d", (long long)target, GROUPS_LIMIT);
    bff_fanout_add(f, BFF_UP_GROUPS, "GET", path, NULL, 0);

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/lessons?telegram_id=%lld&from=%s&limit=%d", (long long)target, now, LESSONS_LIMIT);
    p = bff_fanout_add(f, BFF_UP_CALENDAR, "GET", path, NULL, 0);
    p->pass_through = 1;
    p->pass_member = "lessons";

    bff_fanout_start(f, on_parts);
}
