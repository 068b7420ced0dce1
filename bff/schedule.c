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
    /* The lessons are extended by two members and passed on: as text when the scanner read them
     * (raw), else as json-c objects (lessons). */
    int raw;
    size_t nraw;
    bff_json_item_t *raw_items; /* request memory */
    const char **raw_gids;      /* each lesson's group_id as bff_str_of() reads it */
    json_object *lessons;       /* kept from the first round */
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

static void format_time(time_t t, char *out, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
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

/* json-c's form of the string s, or null: what json_object_object_add() of it would write. */
static void add_string_or_null(ls_text_t *t, const char *s)
{
    if (s == NULL) {
        ls_text_lit(t, "null");
        return;
    }
    json_object *v = json_object_new_string(s);
    ls_text_json(t, v);
    json_object_put(v);
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
 * The answer from the lessons' text: each lesson as the service wrote it, with group_title and
 * teacher_name added at its end, where json_object_object_add() put them (the scanner let no lesson
 * through that has either already).
 */
static void reply_raw(ls_req_t *r, schedule_t *sv, json_object *groups, json_object *users,
                      const bff_part_t *gp, const bff_part_t *tp)
{
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
    for (size_t i = 0; i < sv->nraw; i++) {
        const bff_json_item_t *it = &sv->raw_items[i];
        const char *gid = sv->raw_gids[i], *title = NULL;
        any_group |= gid[0] != '\0';
        for (size_t g = 0; gid[0] != '\0' && groups != NULL && g < json_object_array_length(groups); g++) {
            json_object *grp = json_object_array_get_idx(groups, g);
            if (strcmp(bff_str_of(grp, "id"), gid) == 0)
                title = bff_str_of(grp, "title");
        }
        if (i > 0)
            ls_text_lit(&t, ",");
        ls_text_add(&t, it->whole.text, it->whole.len - 1); /* without its '}' */
        if (it->whole.len > 2)
            ls_text_lit(&t, ",");
        ls_text_lit(&t, "\"group_title\":");
        add_string_or_null(&t, title);
        ls_text_lit(&t, ",\"teacher_name\":");
        add_string_or_null(&t, teacher_name(users, bff_span_id(&it->field[L_TEACHER]), full, sizeof(full)));
        ls_text_lit(&t, "}");
    }
    if (gp != NULL && groups == NULL && any_group)
        json_object_array_add(errors, bff_part_error(gp));
    if (tp != NULL && users == NULL)
        json_object_array_add(errors, bff_part_error(tp));
    ls_text_lit(&t, "]");
    bff_text_reply(r, &t, errors);
    json_object_put(errors);
}

static void on_names(ls_req_t *r, bff_fanout_t *f)
{
    schedule_t *sv = f->ud;
    const bff_part_t *gp = sv->groups_part, *tp = sv->users_part;
    json_object *groups = gp != NULL && gp->ok ? bff_list_of(gp->json, "groups") : NULL;
    json_object *users = tp != NULL && tp->ok ? bff_list_of(tp->json, "users") : NULL;
    if (sv->raw)
        return reply_raw(r, sv, groups, users, gp, tp);
    json_object *errors = json_object_new_array();
    size_t n = json_object_array_length(sv->lessons);
    int any_group = 0;

    json_object *out_lessons = json_object_new_array_ext((int)n);
    for (size_t i = 0; i < n; i++) {
        json_object *lesson = json_object_array_get_idx(sv->lessons, i), *copy = NULL;
        json_object_deep_copy(lesson, &copy, NULL);
        const char *gid = bff_str_of(lesson, "group_id");
        json_object *title = NULL, *name = NULL;
        any_group |= gid[0] != '\0';
        for (size_t g = 0; gid[0] != '\0' && groups != NULL && g < json_object_array_length(groups); g++) {
            json_object *grp = json_object_array_get_idx(groups, g);
            if (strcmp(bff_str_of(grp, "id"), gid) == 0)
                title = json_object_new_string(bff_str_of(grp, "title"));
        }
        int64_t teacher = bff_id_of(lesson, "teacher_telegram_id");
        for (size_t u = 0; users != NULL && u < json_object_array_length(users); u++) {
            json_object *user = json_object_array_get_idx(users, u);
            if (bff_id_of(user, "telegram_id") != teacher)
                continue;
            const char *last = bff_str_of(user, "last_name");
            char full[600];
            snprintf(full, sizeof(full), "%s%s%s", bff_str_of(user, "first_name"), last[0] ? " " : "", last);
            name = json_object_new_string(full);
        }
        json_object_object_add(copy, "group_title", title);
        json_object_object_add(copy, "teacher_name", name);
        json_object_array_add(out_lessons, copy);
    }
    if (gp != NULL && groups == NULL && any_group)
        json_object_array_add(errors, bff_part_error(gp));
    if (tp != NULL && users == NULL)
        json_object_array_add(errors, bff_part_error(tp));
    json_object_put(sv->lessons);
    sv->lessons = NULL;

    json_object *out = json_object_new_object();
    json_object_object_add(out, "telegram_id", json_object_new_int64(sv->target));
    json_object_object_add(out, "from", json_object_new_string(sv->from));
    json_object_object_add(out, "to", json_object_new_string(sv->to));
    json_object_object_add(out, "lessons", out_lessons);
    int partial = json_object_array_length(errors) > 0;
    json_object_object_add(out, "partial", json_object_new_boolean(partial));
    json_object_object_add(out, "errors", errors);
    if (partial)
        bff_add_header(r, "x-partial", "true");
    ls_reply_json(r, 200, out);
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
    /* The lessons as spans when the scanner read them and their group ids need no decoding, else
     * through json-c as before. */
    json_object *lessons = NULL, *owned = NULL;
    if (lp->ok && lp->raw_json) {
        const bff_json_span_t *v = lp->member.text != NULL ? &lp->member : &lp->whole;
        if (v->type != json_type_array)
            return bff_reply_upstream_failure(r, lp);
        sv->raw_items = ls_req_alloc(r, sizeof(sv->raw_items[0]) * SCHEDULE_LIMIT);
        long n = bff_json_items(v->text, v->len, lesson_fields, L_COUNT, sv->raw_items, SCHEDULE_LIMIT);
        sv->raw = n >= 0;
        if (sv->raw) {
            sv->nraw = (size_t)n;
            sv->raw_gids = ls_req_alloc(r, sizeof(sv->raw_gids[0]) * (size_t)n + 1);
        }
        for (size_t i = 0; sv->raw && i < sv->nraw; i++) {
            const char *gid;
            size_t gid_len;
            const bff_json_item_t *it = &sv->raw_items[i];
            sv->raw = bff_span_str(&it->field[L_GROUP_ID], &gid, &gid_len) == 0 &&
                      it->field[L_GROUP_TITLE].text == NULL && it->field[L_TEACHER_NAME].text == NULL;
            sv->raw_gids[i] = ls_req_strdup(r, gid, gid_len);
        }
    }
    if (!sv->raw) {
        json_object *answer = lp->ok ? bff_part_json(lp, &owned) : NULL;
        lessons = bff_list_of(answer, "lessons");
        if (lessons == NULL) {
            json_object_put(owned);
            return bff_reply_upstream_failure(r, lp);
        }
        sv->lessons = json_object_get(lessons);
        json_object_put(owned);
    }

    const char *group_ids[BATCH_MAX], *teacher_ids[BATCH_MAX];
    size_t ngroups = 0, nteachers = 0;
    size_t nlessons = sv->raw ? sv->nraw : json_object_array_length(lessons);
    char *gpath = ls_req_alloc(r, 16 + BATCH_MAX * 37), *tpath = ls_req_alloc(r, 16 + BATCH_MAX * 21);
    size_t go = (size_t)sprintf(gpath, "/groups?ids="), to = (size_t)sprintf(tpath, "/users?ids=");
    for (size_t i = 0; i < nlessons; i++) {
        json_object *lesson = sv->raw ? NULL : json_object_array_get_idx(lessons, i);
        const char *gid = sv->raw ? sv->raw_gids[i] : bff_str_of(lesson, "group_id");
        if (ls_is_uuid(gid, strlen(gid)) && add_unique(group_ids, &ngroups, gid))
            go += (size_t)sprintf(gpath + go, "%s%s", ngroups > 1 ? "," : "", gid);
        char *tid = ls_req_alloc(r, 24);
        int64_t teacher = sv->raw ? bff_span_id(&sv->raw_items[i].field[L_TEACHER])
                                  : bff_id_of(lesson, "teacher_telegram_id");
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
    const size_t max = 200;
    char *path;

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
    format_time(from, sv->from, sizeof(sv->from));
    format_time(to, sv->to, sizeof(sv->to));
    sv->authorized_by_self = r->actor == sv->target;

    bff_fanout_t *f = bff_fanout_new(r, sv);
    path = ls_req_alloc(r, max);
    snprintf(path, max, "/lessons?telegram_id=%lld&from=%s&to=%s&limit=%d", (long long)sv->target, sv->from,
             sv->to, SCHEDULE_LIMIT);
    bff_part_t *p = bff_fanout_add(f, BFF_UP_CALENDAR, "GET", path, NULL, 0);
    p->pass_through = 1; /* read as spans, extended and passed on as text */
    p->pass_member = "lessons";
    if (!sv->authorized_by_self) {
        path = ls_req_alloc(r, max);
        snprintf(path, max, "/users/%lld", (long long)r->actor);
        bff_fanout_add(f, BFF_UP_AUTH, "GET", path, NULL, 0);
        path = ls_req_alloc(r, max);
        snprintf(path, max, "/groups?member_id=%lld&limit=100", (long long)sv->target);
        bff_fanout_add(f, BFF_UP_GROUPS, "GET", path, NULL, 0);
    }
    bff_fanout_start(f, on_lessons);
}
