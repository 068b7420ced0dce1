/*
 * GET /api/groups/{group_id}: the group (groups-service, primary; it carries member_count and
 * progress), its teacher (user + teacher profile), all its members (names from auth-service, enrollment
 * statuses from students-service) and the next LESSONS_SHOWN lessons.
 *
 * Two rounds, both under the request's one deadline: first the group, all its members (one read: a
 * group holds at most MEMBERS_MAX), the first page of their enrollments, its lessons and the caller's
 * user (role) together; then, once the group has named its teacher and the caller may see it, the
 * teacher's profile, the names of the teacher and members (batches of BFF_BATCH_MAX ids) and, when the
 * first page of enrollments was full, the further pages, all together. A group of ten members costs
 * one call per part, as before; one of 500, twelve calls in the second round.
 *
 * Open to the group's teacher, its members and admins (docs/ARCHITECTURE.md §7).
 */
#include "bff.h"

#include <stdio.h>
#include <string.h>

#define MEMBERS_MAX 500 /* a group's largest capacity, and groups-service's largest page of members */
#define LESSONS_SHOWN                                                                                        \
    20 /* the next lessons: a designed size; one more is asked, to say whether there are                     \
        */

enum { G_GROUP, G_MEMBERS, G_ENROLLMENTS, G_LESSONS, G_CALLER };
enum { N_TEACHER, N_USERS }; /* then the name batches, then the further pages of enrollments */

/* What the view reads of the group it passes on unread (upstream.h, pass_through). */
enum { GF_PROGRESS, GF_TEACHER };

typedef struct {
    const char *group_id;
    int64_t teacher_id;
    /* The group is passed on unread, as groups-service wrote it (spans in request memory). */
    bff_json_span_t group_text, progress_text;
    const bff_part_t *lessons; /* passed on unread (request memory) */
    size_t nbatches;           /* of names, in the second round */
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

static void copy_member(json_object *dst, json_object *src, const char *key)
{
    json_object *v = bff_member(src, key);
    json_object_object_add(dst, key, json_object_get(v));
}

/* enrollments NULL: students-service did not answer every read. */
static json_object *member_summary(json_object *member, bff_index_t *users, bff_index_t *enrollments)
{
    int64_t id = bff_id_of(member, "student_telegram_id");
    json_object *user = bff_index_id(users, id);
    json_object *enrollment = enrollments != NULL ? bff_index_id(enrollments, id) : NULL;
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
    const bff_part_t *teacher_part = &f->parts[N_TEACHER], *batches = &f->parts[N_USERS];
    const bff_part_t *pages = batches + gv->nbatches;
    json_object *errors = gv->errors, *members = NULL;
    bff_index_t users = {0}, enrollments = {0};
    ls_text_t t = {.buf = NULL};
    char num[32];

    const bff_part_t *failed = bff_index_parts(r, &users, batches, gv->nbatches, "users", "telegram_id");
    if (failed != NULL)
        json_object_array_add(errors, bff_part_error(failed));
    if (!teacher_part->ok && teacher_part->status != 404)
        json_object_array_add(errors, bff_part_error(teacher_part));
    bff_index_add(r, &enrollments, gv->enrollments, "student_telegram_id");
    const bff_part_t *failed_page = bff_index_parts(
        r, &enrollments, pages, f->nparts - N_USERS - gv->nbatches, "enrollments", "student_telegram_id");
    if (failed_page != NULL)
        json_object_array_add(errors, bff_part_error(failed_page));

    /* Written as text in the order json-c wrote the object this view used to build. */
    ls_text_lit(&t, "{\"group\":");
    add_span(&t, &gv->group_text);
    ls_text_lit(&t, ",\"teacher\":{\"telegram_id\":");
    ls_text_add(&t, num, (size_t)snprintf(num, sizeof(num), "%lld", (long long)gv->teacher_id));
    ls_text_lit(&t, ",\"user\":");
    ls_text_json(&t, bff_index_id(&users, gv->teacher_id));
    ls_text_lit(&t, ",\"profile\":");
    add_span(&t, teacher_part->ok ? &teacher_part->whole : NULL);
    ls_text_lit(&t, "},\"members\":");
    if (gv->members != NULL && failed == NULL) {
        int have_enrollments = gv->enrollments != NULL && failed_page == NULL;
        size_t n = json_object_array_length(gv->members);
        members = json_object_new_array_ext((int)n);
        for (size_t i = 0; i < n; i++)
            json_object_array_add(members, member_summary(json_object_array_get_idx(gv->members, i), &users,
                                                          have_enrollments ? &enrollments : NULL));
    }
    ls_text_json(&t, members);
    ls_text_lit(&t, ",\"progress\":");
    add_span(&t, &gv->progress_text);
    ls_text_lit(&t, ",\"lessons\":");
    int lessons_cut = bff_add_list(&t, gv->lessons, LESSONS_SHOWN);
    bff_text_truncated(&t, (const char *const[]){"lessons"}, &lessons_cut, 1);

    bff_text_reply(r, &t, errors, LS_VIEW_GROUP);
    json_object_put(members);
    release(gv);
}

static int is_member(json_object *members, int64_t id)
{
    size_t len = members != NULL ? json_object_array_length(members) : 0;
    for (size_t i = 0; i < len; i++)
        if (bff_id_of(json_object_array_get_idx(members, i), "student_telegram_id") == id)
            return 1;
    return 0;
}

/* id as decimal text in request memory. */
static const char *id_text(ls_req_t *r, int64_t id)
{
    char *text = ls_req_alloc(r, 24);
    snprintf(text, 24, "%lld", (long long)id);
    return text;
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
    gv->lessons = &parts[G_LESSONS];
    if (bff_part_list(gv->lessons) == NULL)
        json_object_array_add(gv->errors, bff_part_error(gv->lessons));

    bff_fanout_t *next = bff_fanout_new(r, gv);
    bff_fanout_getf(next, BFF_UP_TEACHERS, "/teachers/%lld", (long long)gv->teacher_id)->pass_through = 1;

    /* The names: the teacher first, then every member. */
    size_t n = members != NULL ? json_object_array_length(members) : 0, nids = 0;
    const char **ids = ls_req_alloc(r, (n + 1) * sizeof(*ids));
    ids[nids++] = id_text(r, gv->teacher_id);
    for (size_t i = 0; i < n; i++) {
        int64_t id = bff_id_of(json_object_array_get_idx(members, i), "student_telegram_id");
        if (id > 0 && id != gv->teacher_id)
            ids[nids++] = id_text(r, id);
    }
    gv->nbatches = bff_fanout_batches(next, BFF_UP_AUTH, "/users?ids=", ids, nids);

    /* After a full first page of enrollments, the pages that together hold more rows than there are
     * members (an enrollment per member, ordered by student). */
    if (enrollments != NULL && json_object_array_length(enrollments) == BFF_BATCH_MAX)
        for (size_t offset = BFF_BATCH_MAX; offset <= n; offset += BFF_BATCH_MAX)
            bff_fanout_getf(next, BFF_UP_STUDENTS, "/enrollments?group_id=%s&limit=%d&offset=%zu",
                            gv->group_id, BFF_BATCH_MAX, offset);
    bff_fanout_start(next, on_names);
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
    bff_fanout_getf(f, BFF_UP_GROUPS, "/groups/%s/members?limit=%d", id, MEMBERS_MAX);
    bff_fanout_getf(f, BFF_UP_STUDENTS, "/enrollments?group_id=%s&limit=%d", id, BFF_BATCH_MAX);
    p = bff_fanout_getf(f, BFF_UP_CALENDAR, "/lessons?group_id=%s&from=%s&limit=%d", id, now,
                        LESSONS_SHOWN + 1);
    p->pass_through = 1; /* passed on unread, cut to LESSONS_SHOWN */
    p->pass_keys[0] = "lessons";
    p->max_items = LESSONS_SHOWN + 1;
    bff_fanout_getf(f, BFF_UP_AUTH, "/users/%lld", (long long)r->actor);

    bff_fanout_start(f, on_first_round);
}
