/*
 * GET /api/schedule/{telegram_id}?from=&to=: the lessons where the person teaches or takes part in
 * [from, to), in time order, each with its group's title and its teacher's name.
 *
 * Bounds are RFC 3339 (default: now and 7 days later; at most SCHEDULE_MAX_DAYS apart; 400 for
 * anything else) and are passed on normalised to UTC. The lessons (calendar-service) are the
 * primary record: 503 without them. Then one batch read of groups-service for the titles and one
 * of auth-service for the teachers' names; when one of those fails the view is partial (that
 * name null in every lesson, an errors entry). Same access rule as the profile.
 */
#include "bff.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define SCHEDULE_DEFAULT_DAYS 7
#define SCHEDULE_MAX_DAYS     62
#define SCHEDULE_LIMIT        100
#define BATCH_MAX             100

enum { S_LESSONS, S_CALLER, S_JOINED };

/* A lesson as the scanner found it: its text and what the view reads of it. */
enum { L_GROUP_ID, L_TEACHER, L_GROUP_TITLE, L_TEACHER_NAME, L_COUNT };
static const char *const lesson_fields[L_COUNT] = {"group_id", "teacher_telegram_id", "group_title",
                                                   "teacher_name"};

typedef struct {
    int64_t target;
    char from[32], to[32];
    /* The lessons as the scanner found them (the lessons part's, in request memory): each is passed on
     * as text, extended by two members. */
    const bff_json_item_t *lessons;
    size_t nlessons;
    const char **gids; /* each lesson's group_id as bff_str_of() reads it */
    int authorized_by_self;
    const bff_part_t *groups_part, *users_part; /* NULL when there was nothing to ask */
} schedule_t;

/* Strict RFC 3339 date-time ("2026-01-02T03:04:05Z", fraction and offset allowed) to epoch seconds. */
static int parse_time(const char *s, time_t *out)
{
    struct tm tm = {0};
    int off = 0, n = 0;
    if (s == NULL || !ls_is_rfc3339(s, strlen(s)))
        return -1;
    if (sscanf(s, "%4d-%2d-%2d%*1[Tt]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    const char *p = s + n;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -1;
        off = (hh * 60 + mm) * 60 * (*p == '+' ? 1 : -1);
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = timegm(&tm) - off;
    return 0;
}

/* Appends id to a comma-separated list unless it is there already. */
static int add_unique(const char **seen, size_t *n, const char *id)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(seen[i], id) == 0)
            return 0;
    if (*n == BATCH_MAX)
        return 0;
    seen[(*n)++] = id;
    return 1;
}

/* s as a JSON string (as json-c writes one), or null. */
static void add_string_or_null(ls_text_t *t, const char *s)
{
    if (s == NULL)
        ls_text_lit(t, "null");
    else
        ls_text_str(t, s, strlen(s));
}

/* The teacher's name as the view shows it, from the users answer; NULL when it is not there. */
static const char *teacher_name(json_object *users, int64_t teacher, char *full, size_t size)
{
    const char *name = NULL;
    for (size_t u = 0; users != NULL && u < json_object_array_length(users); u++) {
        json_object *user = json_object_array_get_idx(users, u);
        if (bff_id_of(user, "telegram_id") != teacher)
            continue;
        const char *last = bff_str_of(user, "last_name");
        snprintf(full, size, "%s%s%s", bff_str_of(user, "first_name"), last[0] ? " " : "", last);
        name = full;
    }
    return name;
}

/*
 * A lesson as the service wrote it, with group_title and teacher_name set where
 * json_object_object_add() sets a member: in the place of one of that name, else at the end.
 */
static void add_lesson(ls_text_t *t, const bff_json_item_t *it, const char *title, const char *name)
{
    static const char *const keys[2] = {"\"group_title\":", "\"teacher_name\":"};
    const bff_json_span_t *old[2] = {&it->field[L_GROUP_TITLE], &it->field[L_TEACHER_NAME]};
    const char *values[2] = {title, name};
    const char *at = it->whole.text, *end = it->whole.text + it->whole.len - 1; /* at its '}' */
    int later_first = old[0]->text != NULL && old[1]->text != NULL && old[1]->text < old[0]->text;
    int empty = it->whole.len == 2;

    for (int i = 0; i < 2; i++) { /* the members there already, in the order of the text */
        int k = i ^ later_first;
        if (old[k]->text == NULL)
            continue;
        ls_text_add(t, at, (size_t)(old[k]->text - at));
        add_string_or_null(t, values[k]);
        at = old[k]->text + old[k]->len;
    }
    ls_text_add(t, at, (size_t)(end - at));
    for (int k = 0; k < 2; k++) {
        if (old[k]->text != NULL)
            continue;
        if (!empty)
            ls_text_lit(t, ",");
        empty = 0;
        ls_text_add(t, keys[k], strlen(keys[k]));
        add_string_or_null(t, values[k]);
    }
    ls_text_lit(t, "}");
}

static void on_names(ls_req_t *r, bff_fanout_t *f)
{
    schedule_t *sv = f->ud;
    const bff_part_t *gp = sv->groups_part, *tp = sv->users_part;
    json_object *groups = gp != NULL && gp->ok ? bff_list_of(gp->json, "groups") : NULL;
    json_object *users = tp != NULL && tp->ok ? bff_list_of(tp->json, "users") : NULL;
    json_object *errors = json_object_new_array();
    ls_text_t t = {.buf = NULL};
    char num[32], full[600];
    int any_group = 0;

    ls_text_lit(&t, "{\"telegram_id\":");
    ls_text_add(&t, num, (size_t)snprintf(num, sizeof(num), "%lld", (long long)sv->target));
    ls_text_lit(&t, ",\"from\":\"");
    ls_text_add(&t, sv->from, strlen(sv->from));
    ls_text_lit(&t, "\",\"to\":\"");
    ls_text_add(&t, sv->to, strlen(sv->to));
    ls_text_lit(&t, "\",\"lessons\":[");
    for (size_t i = 0; i < sv->nlessons; i++) {
        const bff_json_item_t *it = &sv->lessons[i];
        const char *gid = sv->gids[i], *title = NULL;
        any_group |= gid[0] != '\0';
        for (size_t g = 0; gid[0] != '\0' && groups != NULL && g < json_object_array_length(groups); g++) {
            json_object *grp = json_object_array_get_idx(groups, g);
            if (strcmp(bff_str_of(grp, "id"), gid) == 0)
                title = bff_str_of(grp, "title");
        }
        if (i > 0)
            ls_text_lit(&t, ",");
        add_lesson(&t, it, title,
                   teacher_name(users, bff_span_id(&it->field[L_TEACHER]), full, sizeof(full)));
    }
    if (gp != NULL && groups == NULL && any_group)
        json_object_array_add(errors, bff_part_error(gp));
    if (tp != NULL && users == NULL)
        json_object_array_add(errors, bff_part_error(tp));
    ls_text_lit(&t, "]");
    bff_text_reply(r, &t, errors, LS_VIEW_SCHEDULE);
    json_object_put(errors);
}

static void on_lessons(ls_req_t *r, bff_fanout_t *f)
{
    schedule_t *sv = f->ud;
    const bff_part_t *lp = &f->parts[S_LESSONS];

    if (!sv->authorized_by_self) {
        const bff_part_t *cp = &f->parts[S_CALLER], *jp = &f->parts[S_JOINED];
        json_object *joined = jp->ok ? bff_list_of(jp->json, "groups") : NULL;
        int teaches = 0;
        for (size_t i = 0; joined != NULL && i < json_object_array_length(joined); i++)
            teaches |= bff_id_of(json_object_array_get_idx(joined, i), "teacher_telegram_id") == r->actor;
        if (!(cp->ok && bff_role_of(cp->json) == LS_ROLE_ADMIN) && !teaches) {
            if (cp->unavailable || joined == NULL)
                return ls_reply_problem(r, 503, "cannot check access to this schedule: %s-service: %s",
                                        bff_upstream_name(cp->unavailable ? cp->up : jp->up),
                                        cp->unavailable ? cp->detail : jp->detail);
            return ls_reply_problem(r, 403, "you may read only your own schedule and those of your students");
        }
    }
    if (bff_part_list(lp) == NULL)
        return bff_reply_upstream_failure(r, lp);
    sv->lessons = lp->items;
    sv->nlessons = (size_t)lp->nitems;
    sv->gids = ls_req_alloc(r, sizeof(sv->gids[0]) * sv->nlessons + 1);
    for (size_t i = 0; i < sv->nlessons; i++) {
        const char *gid;
        size_t gid_len;
        bff_span_value(r, &sv->lessons[i].field[L_GROUP_ID], &gid, &gid_len);
        sv->gids[i] = ls_req_strdup(r, gid, gid_len);
    }

    const char *group_ids[BATCH_MAX], *teacher_ids[BATCH_MAX];
    size_t ngroups = 0, nteachers = 0;
    char *gpath = ls_req_alloc(r, 16 + BATCH_MAX * 37), *tpath = ls_req_alloc(r, 16 + BATCH_MAX * 21);
    size_t go = (size_t)sprintf(gpath, "/groups?ids="), to = (size_t)sprintf(tpath, "/users?ids=");
    for (size_t i = 0; i < sv->nlessons; i++) {
        const char *gid = sv->gids[i];
        if (ls_is_uuid(gid, strlen(gid)) && add_unique(group_ids, &ngroups, gid))
            go += (size_t)sprintf(gpath + go, "%s%s", ngroups > 1 ? "," : "", gid);
        char *tid = ls_req_alloc(r, 24);
        int64_t teacher = bff_span_id(&sv->lessons[i].field[L_TEACHER]);
        snprintf(tid, 24, "%lld", (long long)teacher);
        if (tid[0] != '0' && add_unique(teacher_ids, &nteachers, tid))
            to += (size_t)sprintf(tpath + to, "%s%s", nteachers > 1 ? "," : "", tid);
    }

    bff_fanout_t *names = bff_fanout_new(r, sv);
    if (ngroups > 0)
        sv->groups_part = bff_fanout_add(names, BFF_UP_GROUPS, "GET", gpath, NULL, 0);
    if (nteachers > 0)
        sv->users_part = bff_fanout_add(names, BFF_UP_AUTH, "GET", tpath, NULL, 0);
    bff_fanout_start(names, on_names);
}

void bff_schedule(ls_req_t *r)
{
    schedule_t *sv = ls_req_alloc(r, sizeof(*sv));
    const char *from_arg = ls_req_query(r, "from"), *to_arg = ls_req_query(r, "to");
    time_t now = time(NULL), from = now, to;

    memset(sv, 0, sizeof(*sv));
    sv->target = ls_req_param_id(r, "telegram_id");
    if (from_arg != NULL && parse_time(from_arg, &from) != 0)
        return ls_reply_problem(r, 400, "query parameter 'from' must be an RFC 3339 date-time");
    to = from + SCHEDULE_DEFAULT_DAYS * 86400;
    if (to_arg != NULL && parse_time(to_arg, &to) != 0)
        return ls_reply_problem(r, 400, "query parameter 'to' must be an RFC 3339 date-time");
    if (to <= from)
        return ls_reply_problem(r, 400, "'to' must be later than 'from'");
    if (to - from > SCHEDULE_MAX_DAYS * 86400)
        return ls_reply_problem(r, 400, "at most %d days from 'from' to 'to'", SCHEDULE_MAX_DAYS);
    bff_format_time(from, sv->from, sizeof(sv->from));
    bff_format_time(to, sv->to, sizeof(sv->to));
    sv->authorized_by_self = r->actor == sv->target;

    bff_fanout_t *f = bff_fanout_new(r, sv);
    bff_part_t *p = bff_fanout_getf(f, BFF_UP_CALENDAR, "/lessons?telegram_id=%lld&from=%s&to=%s&limit=%d",
                                    (long long)sv->target, sv->from, sv->to, SCHEDULE_LIMIT);
    p->pass_through = 1; /* read as spans, extended and passed on as text */
    p->pass_keys[0] = "lessons";
    p->item_keys = lesson_fields;
    p->nitem_keys = L_COUNT;
    p->max_items = SCHEDULE_LIMIT;
    if (!sv->authorized_by_self) {
        bff_fanout_getf(f, BFF_UP_AUTH, "/users/%lld", (long long)r->actor);
        bff_fanout_getf(f, BFF_UP_GROUPS, "/groups?member_id=%lld&limit=100", (long long)sv->target);
    }
    bff_fanout_start(f, on_lessons);
}
