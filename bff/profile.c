/*
 * GET /api/user/profile/{telegram_id}: the person's user (auth, primary), teacher and student
 * profiles, groups (taught and joined, merged; the newest GROUPS_SHOWN) and the next LESSONS_SHOWN
 * lessons, fetched concurrently — and, only when the caller views their own profile, their latest
 * PAYMENTS_SHOWN payments (payment-service); "truncated" says whether a list had more. Anyone else's
 * profile has no "payments" member at all, and payment-service is not called for it: payments are
 * the payer's alone, an admin reads them through payment-service itself.
 *
 * Authorization (docs/ARCHITECTURE.md §7) needs no call of its own: the caller's role comes with
 * the user part (one batch read of both people when the caller reads someone else), and whether the
 * caller teaches the person follows from the person's groups, whose teacher ids the groups part
 * carries (one call, ?person_id: the groups taught and joined, each once, newest first).
 *
 * The answer is written as text: the parts the view passes on unread (the person's own user record,
 * teacher, student, groups, lessons) are spliced in as the services wrote them (upstream.h,
 * pass_through), so that only another person's user list is parsed and serialised by json-c.
 */
#include "bff.h"

#include <stdio.h>
#include <string.h>

/* Shown at most; one more is asked of each, to say whether there are more (bff_add_list). */
#define GROUPS_SHOWN   200 /* taught and joined, newest first (groups-service's ?person_id takes 201) */
#define LESSONS_SHOWN  20  /* the next lessons: a designed size; the schedule view has them all */
#define PAYMENTS_SHOWN 20  /* the latest; GET /api/payments pages through them all */

/* P_PAYMENTS only for the caller's own profile. */
enum { P_USER, P_TEACHER, P_STUDENT, P_GROUPS, P_LESSONS, P_PAYMENTS, P_COUNT };

/* What the access check reads of each group. */
enum { F_TEACHER, F_COUNT };
static const char *const group_fields[F_COUNT] = {"teacher_telegram_id"};

typedef struct {
    int64_t target;
} profile_t;

/*
 * Whether one of the person's groups is taught by the caller. The groups the person teaches have the
 * person as their teacher, so for a caller who is someone else only the person's memberships count.
 */
static int teaches_one_of(const bff_part_t *groups, int64_t caller)
{
    for (long i = 0; i < groups->nitems; i++)
        if (bff_span_id(&groups->items[i].field[F_TEACHER]) == caller)
            return 1;
    return 0;
}

/* Adds the part's value (with list: its list), null for a 404 when absent_ok, or null with an errors
 * entry. */
static void add_part(ls_text_t *t, const bff_part_t *p, int list, int absent_ok, json_object *errors)
{
    const bff_json_span_t *v = list ? bff_part_list(p) : p->ok ? &p->whole : NULL;
    if (v != NULL && v->type != json_type_null) {
        ls_text_add(t, v->text, v->len);
        return;
    }
    ls_text_lit(t, "null");
    if (!(absent_ok && p->status == 404))
        json_object_array_add(errors, bff_part_error(p));
}

/* Adds the part's list with at most `shown` items (1 when it had more), or null with an errors entry. */
static int add_list(ls_text_t *t, const bff_part_t *p, size_t shown, json_object *errors)
{
    if (bff_part_list(p) == NULL)
        json_object_array_add(errors, bff_part_error(p));
    return bff_add_list(t, p, shown);
}

static void on_parts(ls_req_t *r, bff_fanout_t *f)
{
    profile_t *pv = f->ud;
    const bff_part_t *parts = f->parts;
    const bff_part_t *up = &parts[P_USER], *groups = &parts[P_GROUPS];
    int64_t target = pv->target, caller = r->actor;
    json_object *user = NULL, *caller_user = NULL;
    const char *user_text = NULL;
    size_t user_len = 0;

    /* The primary record: 503 when auth-service cannot say, 404 when it does not know the person. */
    if (up->unavailable || (!up->ok && up->status != 404))
        return bff_reply_upstream_failure(r, up);
    if (caller == target) {
        if (up->ok && up->whole.type != json_type_null) { /* passed on unread: nothing to check */
            user_text = up->whole.text;
            user_len = up->whole.len;
        }
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

    int have_groups = bff_part_list(groups) != NULL;
    if (caller != target && bff_role_of(caller_user) != LS_ROLE_ADMIN &&
        !(have_groups && teaches_one_of(groups, caller))) {
        if (!have_groups)
            return ls_reply_problem(r, 503, "cannot check access to this profile: groups-service: %s",
                                    groups->detail);
        return ls_reply_problem(r, 403, "you may read only your own profile and those of your students");
    }
    if (user_text == NULL)
        return ls_reply_problem(r, 404, "user %lld not found", (long long)target);

    ls_text_t t = {.buf = NULL};
    json_object *errors = json_object_new_array();
    ls_text_lit(&t, "{\"user\":");
    ls_text_add(&t, user_text, user_len);
    ls_text_lit(&t, ",\"teacher\":");
    add_part(&t, &parts[P_TEACHER], 0, 1, errors);
    ls_text_lit(&t, ",\"student\":");
    add_part(&t, &parts[P_STUDENT], 0, 1, errors);

    int cut[3];
    ls_text_lit(&t, ",\"groups\":");
    cut[0] = add_list(&t, groups, GROUPS_SHOWN, errors);
    ls_text_lit(&t, ",\"lessons\":");
    cut[1] = add_list(&t, &parts[P_LESSONS], LESSONS_SHOWN, errors);
    if (caller == target) {
        ls_text_lit(&t, ",\"payments\":");
        cut[2] = add_list(&t, &parts[P_PAYMENTS], PAYMENTS_SHOWN, errors);
    }
    bff_text_truncated(&t, (const char *const[]){"groups", "lessons", "payments"}, cut,
                       caller == target ? 3 : 2);

    bff_text_reply(r, &t, errors, LS_VIEW_PROFILE);
    json_object_put(errors);
}

void bff_profile(ls_req_t *r)
{
    int64_t target = ls_req_param_id(r, "telegram_id");
    profile_t *pv = ls_req_alloc(r, sizeof(*pv));
    char now[32];
    bff_part_t *p;

    pv->target = target;
    bff_format_now(now, sizeof(now));
    bff_fanout_t *f = bff_fanout_new(r, pv);

    if (r->actor == target)
        p = bff_fanout_getf(f, BFF_UP_AUTH, "/users/%lld", (long long)target);
    else /* another person's record is picked out of a list, with the caller's (role) */
        p = bff_fanout_getf(f, BFF_UP_AUTH, "/users?ids=%lld,%lld", (long long)target, (long long)r->actor);
    p->pass_through = r->actor == target;
    bff_fanout_getf(f, BFF_UP_TEACHERS, "/teachers/%lld", (long long)target)->pass_through = 1;
    bff_fanout_getf(f, BFF_UP_STUDENTS, "/students/%lld", (long long)target)->pass_through = 1;
    /* read as spans in the one pass that checks it: the access check needs the teachers */
    p = bff_fanout_getf(f, BFF_UP_GROUPS, "/groups?person_id=%lld&limit=%d", (long long)target,
                        GROUPS_SHOWN + 1);
    p->pass_through = 1;
    p->pass_keys[0] = "groups";
    p->item_keys = group_fields;
    p->nitem_keys = F_COUNT;
    p->max_items = GROUPS_SHOWN + 1;
    p = bff_fanout_getf(f, BFF_UP_CALENDAR, "/lessons?telegram_id=%lld&from=%s&limit=%d", (long long)target,
                        now, LESSONS_SHOWN + 1);
    p->pass_through = 1;
    p->pass_keys[0] = "lessons";
    p->max_items = LESSONS_SHOWN + 1;
    if (r->actor == target) {
        p = bff_fanout_getf(f, BFF_UP_PAYMENT, "/users/%lld/payments?limit=%d", (long long)target,
                            PAYMENTS_SHOWN + 1);
        p->pass_through = 1;
        p->pass_keys[0] = "payments";
        p->max_items = PAYMENTS_SHOWN + 1;
    }

    bff_fanout_start(f, on_parts);
}
