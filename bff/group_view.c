/*
 * GET /api/groups/{group_id}: the group (groups-service, primary; it carries member_count and
 * progress), its teacher (user + teacher profile), its members (names from one batch read of
 * auth-service, enrollment status from one read of students-service) and upcoming lessons.
 *
 * Two rounds, both under the request's one deadline: first the group, its members, their
 * enrollments, its lessons and the caller's user (role) together; then, once the group has named
 * its teacher and the caller may see it, the names of the teacher and members and the teacher's
 * profile together.
 *
 * Open to the group's teacher, its members and admins (docs/ARCHITECTURE.md §7).
 */
#include "bff.h"

#include <stdio.h>
#include <string.h>

#define MEMBERS_LIMIT 99 /* + the teacher: one auth batch read of at most 100 ids */
#define LESSONS_LIMIT 20

enum { G_GROUP, G_MEMBERS, G_ENROLLMENTS, G_LESSONS, G_CALLER };
enum { N_USERS, N_TEACHER };

/* What the view reads of the group it passes on unread (upstream.h, pass_through). */
enum { GF_PROGRESS, GF_TEACHER };

typedef struct {
    const char *group_id;
    int64_t teacher_id;
    /* The group and the lessons are passed on unread, as the services wrote them (spans in request
     * memory); text NULL: none. */
    bff_json_span_t group_text, progress_text, lessons_text;
    /* Kept from the first round (references released when the view is answered). */
    json_object *members;     /* array or NULL when its part failed */
    json_object *enrollments; /* array or NULL when its part failed */
    json_object *errors;
} group_view_t;

static void release(group_view_t *gv)
{
    json_object_put(gv->members);
    json_object_put(gv->enrollments);
    json_object_put(gv->errors);
}

static json_object *find_by_id(json_object *list, const char *key, int64_t id)
{
    size_t len = list != NULL ? json_object_array_length(list) : 0;
    for (size_t i = 0; i < len; i++) {
        json_object *o = json_object_array_get_idx(list, i);
        if (bff_id_of(o, key) == id)
            return o;
    }
    return NULL;
}

static void copy_member(json_object *dst, json_object *src, const char *key)
{
    json_object *v = bff_member(src, key);
    json_object_object_add(dst, key, json_object_get(v));
}

static json_object *member_summary(json_object *member, json_object *users, json_object *enrollments)
{
    int64_t id = bff_id_of(member, "student_telegram_id");
    json_object *user = find_by_id(users, "telegram_id", id);
    json_object *enrollment = find_by_id(enrollments, "student_telegram_id", id);
    json_object *out = json_object_new_object();

    json_object_object_add(out, "telegram_id", json_object_new_int64(id));
    copy_member(out, user, "first_name");
    copy_member(out, user, "last_name");
    copy_member(out, user, "username");
    copy_member(out, user, "photo_url");
    copy_member(out, member, "joined_at");
    /* null when students-service did not answer (then the view is partial) or knows no enrollment */
    json_object_object_add(out, "enrollment_status", json_object_get(bff_member(enrollment, "status")));
    return out;
}

/* A value passed on unread: its text, or null when there is none. */
static void add_span(ls_text_t *t, const bff_json_span_t *v)
{
    if (v != NULL && v->text != NULL)
        ls_text_add(t, v->text, v->len);
    else
        ls_text_lit(t, "null");
}

static void on_names(ls_req_t *r, bff_fanout_t *f)
{
    group_view_t *gv = f->ud;
    const bff_part_t *users_part = &f->parts[N_USERS], *teacher_part = &f->parts[N_TEACHER];
    json_object *users = users_part->ok ? bff_list_of(users_part->json, "users") : NULL;
    json_object *errors = gv->errors, *members = NULL;
    ls_text_t t = {.buf = NULL};
    char num[32];

    if (users == NULL)
        json_object_array_add(errors, bff_part_error(users_part));
    if (!teacher_part->ok && teacher_part->status != 404)
        json_object_array_add(errors, bff_part_error(teacher_part));

    /* Written as text in the order json-c wrote the object this view used to build. */
    ls_text_lit(&t, "{\"group\":");
    add_span(&t, &gv->group_text);
    ls_text_lit(&t, ",\"teacher\":{\"telegram_id\":");
    ls_text_add(&t, num, (size_t)snprintf(num, sizeof(num), "%lld", (long long)gv->teacher_id));
    ls_text_lit(&t, ",\"user\":");
    ls_text_json(&t, find_by_id(users, "telegram_id", gv->teacher_id));
    ls_text_lit(&t, ",\"profile\":");
    add_span(&t, teacher_part->ok ? &teacher_part->whole : NULL);
    ls_text_lit(&t, "},\"members\":");
    if (gv->members != NULL && users != NULL) {
        size_t n = json_object_array_length(gv->members);
        members = json_object_new_array_ext((int)n);
        for (size_t i = 0; i < n; i++)
            json_object_array_add(
                members, member_summary(json_object_array_get_idx(gv->members, i), users, gv->enrollments));
    }
    ls_text_json(&t, members);
    ls_text_lit(&t, ",\"progress\":");
    add_span(&t, &gv->progress_text);
    ls_text_lit(&t, ",\"lessons\":");
    add_span(&t, &gv->lessons_text);

    bff_text_reply(r, &t, errors, LS_VIEW_GROUP);
    json_object_put(members);
    release(gv);
}

static int is_member(json_object *members, int64_t id)
{
    return find_by_id(members, "student_telegram_id", id) != NULL;
}

static void on_first_round(ls_req_t *r, bff_fanout_t *f)
{
    group_view_t *gv = f->ud;
    const bff_part_t *parts = f->parts, *gp = &parts[G_GROUP];
    int64_t caller = r->actor;

    if (gp->status == 404 && !gp->unavailable)
        return ls_reply_problem(r, 404, "group %s not found", gv->group_id);
    if (!gp->ok)
        return bff_reply_upstream_failure(r, gp);
    gv->group_text = gp->whole;
    gv->progress_text = gp->field[GF_PROGRESS];
    gv->teacher_id = bff_span_id(&gp->field[GF_TEACHER]);

    json_object *members = parts[G_MEMBERS].ok ? bff_list_of(parts[G_MEMBERS].json, "members") : NULL;
    const bff_part_t *cp = &parts[G_CALLER];
    ls_role_t role = cp->ok ? bff_role_of(cp->json) : LS_ROLE_NONE;
    if (caller != gv->teacher_id && role != LS_ROLE_ADMIN && !is_member(members, caller)) {
        if (members == NULL || cp->unavailable)
            return ls_reply_problem(r, 503, "cannot check access to this group: %s-service: %s",
                                    bff_upstream_name(members == NULL ? parts[G_MEMBERS].up : cp->up),
                                    members == NULL ? parts[G_MEMBERS].detail : cp->detail);
        return ls_reply_problem(r, 403, "this group is open to its teacher, its members and admins");
    }
    r->role = role;

    gv->errors = json_object_new_array();
    gv->members = json_object_get(members);
    if (members == NULL)
        json_object_array_add(gv->errors, bff_part_error(&parts[G_MEMBERS]));
    json_object *enrollments =
        parts[G_ENROLLMENTS].ok ? bff_list_of(parts[G_ENROLLMENTS].json, "enrollments") : NULL;
    gv->enrollments = json_object_get(enrollments);
    if (enrollments == NULL)
        json_object_array_add(gv->errors, bff_part_error(&parts[G_ENROLLMENTS]));
    const bff_json_span_t *lessons = bff_part_list(&parts[G_LESSONS]);
    if (lessons != NULL)
        gv->lessons_text = *lessons;
    else
        json_object_array_add(gv->errors, bff_part_error(&parts[G_LESSONS]));

    /* The teacher first, then the members: at most 1 + MEMBERS_LIMIT ids. */
    size_t n = members != NULL ? json_object_array_length(members) : 0, max = 24 * (n + 1) + 16;
    char *path = ls_req_alloc(r, max);
    int o = snprintf(path, max, "/users?ids=%lld", (long long)gv->teacher_id);
    for (size_t i = 0; i < n && i < MEMBERS_LIMIT; i++) {
        int64_t id = bff_id_of(json_object_array_get_idx(members, i), "student_telegram_id");
        if (id > 0 && id != gv->teacher_id)
            o += snprintf(path + o, max - (size_t)o, ",%lld", (long long)id);
    }

    bff_fanout_t *names = bff_fanout_new(r, gv);
    bff_fanout_add(names, BFF_UP_AUTH, "GET", path, NULL, 0);
    bff_fanout_getf(names, BFF_UP_TEACHERS, "/teachers/%lld", (long long)gv->teacher_id)->pass_through = 1;
    bff_fanout_start(names, on_names);
}

void bff_group_view(ls_req_t *r)
{
    group_view_t *gv = ls_req_alloc(r, sizeof(*gv));
    const char *id = ls_req_param_str(r, "group_id");
    char now[32];

    memset(gv, 0, sizeof(*gv));
    gv->group_id = id;
    bff_format_now(now, sizeof(now));
    bff_fanout_t *f = bff_fanout_new(r, gv);

    bff_part_t *p = bff_fanout_getf(f, BFF_UP_GROUPS, "/groups/%s", id);
    p->pass_through = 1; /* passed on; its teacher and progress are found in the one scan */
    p->pass_keys[GF_PROGRESS] = "progress";
    p->pass_keys[GF_TEACHER] = "teacher_telegram_id";
    bff_fanout_getf(f, BFF_UP_GROUPS, "/groups/%s/members?limit=%d", id, MEMBERS_LIMIT);
    bff_fanout_getf(f, BFF_UP_STUDENTS, "/enrollments?group_id=%s&limit=100", id);
    p = bff_fanout_getf(f, BFF_UP_CALENDAR, "/lessons?group_id=%s&from=%s&limit=%d", id, now, LESSONS_LIMIT);
    p->pass_through = 1; /* passed on unread */
    p->pass_keys[0] = "lessons";
    bff_fanout_getf(f, BFF_UP_AUTH, "/users/%lld", (long long)r->actor);

    bff_fanout_start(f, on_first_round);
}
