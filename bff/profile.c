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

void bff_text_reply(ls_req_t *r, ls_text_t *t, json_object *errors)
{
    int partial = json_object_array_length(errors) > 0;
    if (partial)
        ls_text_lit(t, ",\"partial\":true,\"errors\":");
    else
        ls_text_lit(t, ",\"partial\":false,\"errors\":");
    ls_text_json(t, errors);
    ls_text_lit(t, "}");
    if (t->failed) {
        ls_reply_problem(r, 503, "out of memory");
    } else {
        if (partial)
            bff_add_header(r, "x-partial", "true");
        ls_reply_raw(r, 200, "application/json", t->buf, t->len);
    }
    ls_text_free(t);
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
 * The groups without json-c: each list's items as spans with the members the merge, the sort and the
 * access check read. Anything the scanner or these readers refuse (an escaped id, a list longer than
 * the limit) sends both lists through json-c as before, so the answer is the same either way.
 */
enum { F_ID, F_CREATED_AT, F_TEACHER, F_COUNT };
static const char *const group_fields[F_COUNT] = {"id", "created_at", "teacher_telegram_id"};

typedef struct {
    int present; /* the part answered a list (bff_list_of() would not be NULL) */
    long n;
    bff_json_item_t item[GROUPS_LIMIT];
} raw_groups_t;

typedef struct {
    const bff_json_item_t *item;
    const char *id, *created_at;
    size_t id_len, created_at_len;
} raw_group_t;

/* 0 with the part's list in *out, or -1 when it must go through json-c. */
static int raw_groups_of(const bff_part_t *p, raw_groups_t *out)
{
    out->present = 0;
    out->n = 0;
    if (!p->ok)
        return 0;
    if (!p->raw_json)
        return -1;
    const bff_json_span_t *v = p->member.text != NULL ? &p->member : &p->whole;
    if (v->type != json_type_array)
        return 0;
    out->n = bff_json_items(v->text, v->len, group_fields, F_COUNT, out->item, GROUPS_LIMIT);
    if (out->n < 0)
        return -1;
    out->present = 1;
    return 0;
}

static int raw_teaches_one_of(const raw_groups_t *groups, int64_t caller)
{
    for (long i = 0; i < groups->n; i++)
        if (bff_span_id(&groups->item[i].field[F_TEACHER]) == caller)
            return 1;
    return 0;
}

/* strcmp()'s order for strings without NUL bytes (the scanner lets no escape through, so none). */
static int span_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static int raw_newest_first(const void *a, const void *b)
{
    const raw_group_t *x = a, *y = b;
    int c = span_cmp(y->created_at, y->created_at_len, x->created_at, x->created_at_len);
    return c != 0 ? c : span_cmp(y->id, y->id_len, x->id, x->id_len);
}

/*
 * merge_groups() on spans: the merged array as text in request memory, or NULL when an item's id or
 * created_at needs json-c to read. The ids are distinct after the merge, so the order is total and
 * qsort gives the same one as there.
 */
static const char *raw_merge_groups(ls_req_t *r, const raw_groups_t *taught, const raw_groups_t *joined,
                                    size_t *len)
{
    raw_group_t all[MAX_GROUPS];
    size_t n = 0, size = 2;
    const raw_groups_t *lists[2] = {taught, joined};

    for (int l = 0; l < 2; l++) {
        for (long i = 0; i < lists[l]->n && n < MAX_GROUPS; i++) {
            const bff_json_item_t *it = &lists[l]->item[i];
            raw_group_t g = {.item = it};
            if (bff_span_str(&it->field[F_ID], &g.id, &g.id_len) != 0 ||
                bff_span_str(&it->field[F_CREATED_AT], &g.created_at, &g.created_at_len) != 0)
                return NULL;
            size_t j;
            for (j = 0; j < n; j++)
                if (all[j].id_len == g.id_len && memcmp(all[j].id, g.id, g.id_len) == 0)
                    break;
            if (j == n) {
                all[n++] = g;
                size += it->whole.len + 1;
            }
        }
    }
    qsort(all, n, sizeof(all[0]), raw_newest_first);
    char *out = ls_req_alloc(r, size), *at = out;
    *at++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *at++ = ',';
        memcpy(at, all[i].item->whole.text, all[i].item->whole.len);
        at += all[i].item->whole.len;
    }
    *at++ = ']';
    *len = (size_t)(at - out);
    return out;
}

/*
 * The answer is written as text: the parts the view passes on unread (the person's own user record,
 * teacher, student, lessons) are spliced in as the services wrote them, so that only what the view
 * must read (another person's user list, the groups) is parsed and serialised by json-c. Building
 * json-c objects for every lesson and serialising them again was most of the BFF's work per view.
 */

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
static void add_part(ls_text_t *t, const bff_part_t *p, const char *list_key, int absent_ok,
                     json_object *errors)
{
    size_t len;
    const char *v = part_value(p, list_key, &len);
    if (v != NULL) {
        ls_text_add(t, v, len);
        return;
    }
    ls_text_lit(t, "null");
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

    /* The groups: as spans when the scanner read both lists, else through json-c as before. */
    raw_groups_t lists[2], *raw_taught = &lists[0], *raw_joined = &lists[1];
    json_object *taught = NULL, *joined = NULL, *owned[2] = {NULL, NULL};
    const char *groups_text = NULL;
    size_t groups_len = 0;
    int raw =
        raw_groups_of(&parts[P_TAUGHT], raw_taught) == 0 && raw_groups_of(&parts[P_JOINED], raw_joined) == 0;
    if (raw && raw_taught->present && raw_joined->present) {
        groups_text = raw_merge_groups(r, raw_taught, raw_joined, &groups_len);
        raw = groups_text != NULL;
    }
    if (!raw) {
        json_object *t = parts[P_TAUGHT].ok ? bff_part_json(&parts[P_TAUGHT], &owned[0]) : NULL;
        json_object *j = parts[P_JOINED].ok ? bff_part_json(&parts[P_JOINED], &owned[1]) : NULL;
        taught = bff_list_of(t, "groups");
        joined = bff_list_of(j, "groups");
    }
    int have_taught = raw ? raw_taught->present : taught != NULL;
    int have_joined = raw ? raw_joined->present : joined != NULL;

    if (caller != target && bff_role_of(caller_user) != LS_ROLE_ADMIN &&
        !(raw ? raw_teaches_one_of(raw_joined, caller) : teaches_one_of(joined, caller))) {
        json_object_put(owned[0]);
        json_object_put(owned[1]);
        if (!have_joined)
            return ls_reply_problem(r, 503, "cannot check access to this profile: groups-service: %s",
                                    parts[P_JOINED].detail);
        return ls_reply_problem(r, 403, "you may read only your own profile and those of your students");
    }
    if (user_text == NULL) {
        json_object_put(owned[0]);
        json_object_put(owned[1]);
        return ls_reply_problem(r, 404, "user %lld not found", (long long)target);
    }

    ls_text_t t = {.buf = NULL};
    json_object *errors = json_object_new_array(), *groups = NULL;
    ls_text_lit(&t, "{\"user\":");
    ls_text_add(&t, user_text, user_len);
    ls_text_lit(&t, ",\"teacher\":");
    add_part(&t, &parts[P_TEACHER], NULL, 1, errors);
    ls_text_lit(&t, ",\"student\":");
    add_part(&t, &parts[P_STUDENT], NULL, 1, errors);

    ls_text_lit(&t, ",\"groups\":");
    if (have_taught && have_joined) {
        if (raw) {
            ls_text_add(&t, groups_text, groups_len);
        } else {
            groups = merge_groups(taught, joined);
            ls_text_json(&t, groups);
        }
    } else {
        ls_text_lit(&t, "null");
        json_object_array_add(errors, bff_part_error(!have_taught ? &parts[P_TAUGHT] : &parts[P_JOINED]));
    }
    ls_text_lit(&t, ",\"lessons\":");
    add_part(&t, &parts[P_LESSONS], "lessons", 0, errors);

    bff_text_reply(r, &t, errors);
    json_object_put(groups);
    json_object_put(errors);
    json_object_put(owned[0]);
    json_object_put(owned[1]);
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
    p = bff_fanout_add(f, BFF_UP_GROUPS, "GET", path, NULL, 0);
    p->pass_through = 1; /* read as spans: merged and sorted without json-c */
    p->pass_member = "groups";

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/groups?member_id=%lld&limit=%d", (long long)target, GROUPS_LIMIT);
    p = bff_fanout_add(f, BFF_UP_GROUPS, "GET", path, NULL, 0);
    p->pass_through = 1;
    p->pass_member = "groups";

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/lessons?telegram_id=%lld&from=%s&limit=%d", (long long)target, now, LESSONS_LIMIT);
    p = bff_fanout_add(f, BFF_UP_CALENDAR, "GET", path, NULL, 0);
    p->pass_through = 1;
    p->pass_member = "lessons";

    bff_fanout_start(f, on_parts);
}
