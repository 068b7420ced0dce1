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
 * Open to the group's teacher, its members and admins (DESIGN.md §6).
 */
#include "bff.h"

#include <stdio.h>
#include <string.h>

#define MEMBERS_LIMIT 99 /* + the teacher: one auth batch read of at most 100 ids */
#define LESSONS_LIMIT 20

enum { G_GROUP, G_MEMBERS, G_ENROLLMENTS, G_LESSONS, G_CALLER };
enum { N_USERS, N_TEACHER };

typedef struct {
    const char *group_id;
    int64_t teacher_id;
    /* The group and the lessons are passed on unread: as the services wrote them (spans in request
     * memory) when the scanner accepted them, else as json-c objects. */
    bff_json_span_t group_text, progress_text, lessons_text; /* text NULL: none or see the object */
    int raw_group, raw_lessons;
    /* Kept from the first round (references released when the view is answered). */
    json_object *group;
    json_object *members;     /* array or NULL when its part failed */
    json_object *enrollments; /* array or NULL when its part failed */
    json_object *lessons;     /* array or NULL when its part failed */
    json_object *errors;
} group_view_t;

static void release(group_view_t *gv)
{
    json_object_put(gv->group);
    json_object_put(gv->members);
    json_object_put(gv->enrollments);
    json_object_put(gv->lessons);
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

/* A value passed on unread: its text, or json-c's plain form of obj (null when both are absent). */
static void add_value(ls_text_t *t, const bff_json_span_t *text, json_object *obj)
{
    if (text->text != NULL)
        ls_text_add(t, text->text, text->len);
    else if (obj != NULL)
        ls_text_json(t, obj);
    else
        ls_text_lit(t, "null");
}

static void on_names(ls_req_t *r, bff_fanout_t *f)
{
    group_view_t *gv = f->ud;
    const bff_part_t *users_part = &f->parts[N_USERS], *teacher_part = &f->parts[N_TEACHER];
    json_object *users = users_part->ok ? bff_list_of(users_part->json, "users") : NULL;
    json_object *errors = gv->errors, *members = NULL;
    const bff_json_span_t none = {.text = NULL};
    ls_text_t t = {.buf = NULL};
    char num[32];

    if (users == NULL)
        json_object_array_add(errors, bff_part_error(users_part));
    if (!teacher_part->ok && teacher_part->status != 404)
        json_object_array_add(errors, bff_part_error(teacher_part));

    /* Written as text in the order json-c wrote the object this view used to build. */
    ls_text_lit(&t, "{\"group\":");
    add_value(&t, gv->raw_group ? &gv->group_text : &none, gv->group);
    ls_text_lit(&t, ",\"teacher\":{\"telegram_id\":");
    ls_text_add(&t, num, (size_t)snprintf(num, sizeof(num), "%lld", (long long)gv->teacher_id));
    ls_text_lit(&t, ",\"user\":");
    add_value(&t, &none, find_by_id(users, "telegram_id", gv->teacher_id));
    ls_text_lit(&t, ",\"profile\":");
    if (teacher_part->ok && teacher_part->raw_json)
        add_value(&t, &teacher_part->whole, NULL);
    else
        add_value(&t, &none, teacher_part->ok ? teacher_part->json : NULL);
    ls_text_lit(&t, "},\"members\":");
    if (gv->members != NULL && users != NULL) {
        size_t n = json_object_array_length(gv->members);
        members = json_object_new_array_ext((int)n);
        for (size_t i = 0; i < n; i++)
            json_object_array_add(
                members, member_summary(json_object_array_get_idx(gv->members, i), users, gv->enrollments));
    }
    add_value(&t, &none, members);
    ls_text_lit(&t, ",\"progress\":");
    if (gv->raw_group)
        add_value(&t, &gv->progress_text, NULL);
    else
        add_value(&t, &none, bff_member(gv->group, "progress"));
    ls_text_lit(&t, ",\"lessons\":");
    add_value(&t, gv->raw_lessons ? &gv->lessons_text : &none, gv->lessons);

    bff_text_reply(r, &t, errors);
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
    /* Read as spans when the scanner passed the group (its teacher; the rest is passed on unread). */
    static const char *const group_fields[] = {"teacher_telegram_id"};
    bff_json_span_t teacher;
    json_object *group = NULL;
    if (gp->ok && gp->raw_json && gp->whole.type == json_type_object &&
        bff_json_fields(gp->whole.text, gp->whole.len, group_fields, 1, &teacher) == 0) {
        gv->raw_group = 1;
        gv->group_text = gp->whole;
        gv->progress_text = gp->member;
        gv->teacher_id = bff_span_id(&teacher);
    } else {
        json_object *owned = NULL;
        if (gp->ok)
            group = bff_part_json(gp, &owned);
        if (group == NULL)
            return bff_reply_upstream_failure(r, gp);
        /* Kept from here on, whether the fan-out or this view parsed it. */
        group = owned != NULL ? owned : json_object_get(group);
        gv->teacher_id = bff_id_of(group, "teacher_telegram_id");
    }

    json_object *members = parts[G_MEMBERS].ok ? bff_list_of(parts[G_MEMBERS].json, "members") : NULL;
    const bff_part_t *cp = &parts[G_CALLER];
    ls_role_t role = cp->ok ? bff_role_of(cp->json) : LS_ROLE_NONE;
    if (caller != gv->teacher_id && role != LS_ROLE_ADMIN && !is_member(members, caller)) {
        json_object_put(group);
        if (members == NULL || cp->unavailable)
            return ls_reply_problem(r, 503, "cannot check access to this group: %s-service: %s",
                                    bff_upstream_name(members == NULL ? parts[G_MEMBERS].up : cp->up),
                                    members == NULL ? parts[G_MEMBERS].detail : cp->detail);
        return ls_reply_problem(r, 403, "this group is open to its teacher, its members and admins");
    }
    r->role = role;

    gv->errors = json_object_new_array();
    gv->group = group;
    gv->members = json_object_get(members);
    if (members == NULL)
        json_object_array_add(gv->errors, bff_part_error(&parts[G_MEMBERS]));
    json_object *enrollments =
        parts[G_ENROLLMENTS].ok ? bff_list_of(parts[G_ENROLLMENTS].json, "enrollments") : NULL;
    gv->enrollments = json_object_get(enrollments);
    if (enrollments == NULL)
        json_object_array_add(gv->errors, bff_part_error(&parts[G_ENROLLMENTS]));
    const bff_part_t *lp = &parts[G_LESSONS];
    json_object *lessons = NULL;
    if (lp->ok && lp->raw_json) {
        const bff_json_span_t *v = lp->member.text != NULL ? &lp->member : &lp->whole;
        gv->raw_lessons = v->type == json_type_array;
        if (gv->raw_lessons)
            gv->lessons_text = *v;
    } else if (lp->ok) {
        lessons = bff_list_of(lp->json, "lessons");
    }
    gv->lessons = json_object_get(lessons);
    if (lessons == NULL && !gv->raw_lessons)
        json_object_array_add(gv->errors, bff_part_error(lp));

    /* The teacher first, then the members: at most 1 + MEMBERS_LIMIT ids. */
    size_t n = members != NULL ? json_object_array_length(members) : 0, max = 24 * (n + 1) + 16;
    char *path = ls_req_alloc(r, max);
    int o = snprintf(path, max, "/users?ids=%lld", (long long)gv->teacher_id);
    for (size_t i = 0; i < n && i < MEMBERS_LIMIT; i++) {
        int64_t id = bff_id_of(json_object_array_get_idx(members, i), "student_telegram_id");
        if (id > 0 && id != gv->teacher_id)
            o += snprintf(path + o, max - (size_t)o, ",%lld", (long long)id);
    }
    char *teacher_path = ls_req_alloc(r, 32);
    snprintf(teacher_path, 32, "/teachers/%lld", (long long)gv->teacher_id);

    bff_fanout_t *names = bff_fanout_new(r, gv);
    bff_fanout_add(names, BFF_UP_AUTH, "GET", path, NULL, 0);
    bff_fanout_add(names, BFF_UP_TEACHERS, "GET", teacher_path, NULL, 0)->pass_through = 1;
    bff_fanout_start(names, on_names);
}

void bff_group_view(ls_req_t *r)
{
    group_view_t *gv = ls_req_alloc(r, sizeof(*gv));
    const char *id = ls_req_param_str(r, "group_id");
    char now[32], *path;
    const size_t max = 160;

    memset(gv, 0, sizeof(*gv));
    gv->group_id = id;
    bff_format_now(now, sizeof(now));
    bff_fanout_t *f = bff_fanout_new(r, gv);

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/groups/%s", id);
    bff_part_t *p = bff_fanout_add(f, BFF_UP_GROUPS, "GET", path, NULL, 0);
    p->pass_through = 1; /* passed on; its teacher and progress are read from the text */
    p->pass_member = "progress";

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/groups/%s/members?limit=%d", id, MEMBERS_LIMIT);
    bff_fanout_add(f, BFF_UP_GROUPS, "GET", path, NULL, 0);

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/enrollments?group_id=%s&limit=100", id);
    bff_fanout_add(f, BFF_UP_STUDENTS, "GET", path, NULL, 0);

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/lessons?group_id=%s&from=%s&limit=%d", id, now, LESSONS_LIMIT);
    p = bff_fanout_add(f, BFF_UP_CALENDAR, "GET", path, NULL, 0);
    p->pass_through = 1; /* passed on unread */
    p->pass_member = "lessons";

    path = ls_req_alloc(r, max);
    snprintf(path, max, "/users/%lld", (long long)r->actor);
    bff_fanout_add(f, BFF_UP_AUTH, "GET", path, NULL, 0);

    bff_fanout_start(f, on_first_round);
}
