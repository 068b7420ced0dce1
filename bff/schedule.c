/*
 * GET /api/schedule/{telegram_id}?from=&to=&limit=&offset=: the lessons where the person teaches or
 * takes part in [from, to), in time order, each with its group's title and its teacher's name.
 *
 * Bounds are RFC 3339 (default: now and 7 days later; at most SCHEDULE_MAX_DAYS apart; 400 for
 * anything else) and are passed on normalised to UTC. An answer holds at most `limit` lessons (1 to
 * SCHEDULE_MAX_LESSONS, the default: a teacher's 62 days at eight lessons a day) from `offset`; one
 * more is asked of calendar-service, and "truncated": {"lessons": true} says that there are more (the
 * next page: offset + limit). The lessons are the primary record: 503 without them. Then batch reads
 * (BFF_BATCH_MAX ids each, all in one round) of groups-service for the titles and of auth-service for
 * the teachers' names; when one of those fails the view is partial (the names it would have given
 * null, an errors entry). Same access rule as the profile.
 */
#include "bff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHEDULE_DEFAULT_DAYS 7
#define SCHEDULE_MAX_DAYS     62
#define SCHEDULE_MAX_LESSONS  500 /* in one answer; calendar-service's GET /lessons takes up to 1000 */

enum { S_LESSONS, S_CALLER, S_JOINED };

/* A lesson as the scanner found it: its text and what the view reads of it. */
enum { L_GROUP_ID, L_TEACHER, L_GROUP_TITLE, L_TEACHER_NAME, L_COUNT };
static const char *const lesson_fields[L_COUNT] = {"group_id", "teacher_telegram_id", "group_title",
                                                   "teacher_name"};

typedef struct {
    int64_t target;
    char from[32], to[32];
    const char *limit, *offset; /* decimal text */
    int cut;                    /* there are lessons after the last one shown */
    /* The lessons as the scanner found them (the lessons part's, in request memory): each is passed on
     * as text, extended by two members. */
    const bff_json_item_t *lessons;
    size_t nlessons;
    const char **gids; /* each lesson's group_id as bff_str_of() reads it */
    int authorized_by_self;
    const bff_part_t *groups_parts, *users_parts; /* the batches, in the fan-out of the second round */
    size_t ngroups_parts, nusers_parts;
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

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts ids[0..n) and drops the repeats; returns how many are left. */
static size_t sort_unique(const char **ids, size_t n)
{
    size_t kept = 0;
    qsort(ids, n, sizeof(ids[0]), str_cmp);
    for (size_t i = 0; i < n; i++)
        if (kept == 0 || strcmp(ids[kept - 1], ids[i]) != 0)
            ids[kept++] = ids[i];
    return kept;
}

/* s as a JSON string (as json-c writes one), or null. */
static void add_string_or_null(ls_text_t *t, const char *s)
{
    if (s == NULL)
        ls_text_lit(t, "null");
    else
        ls_text_str(t, s, strlen(s));
}

/* The teacher's name as the view shows it, from the users read; NULL when it is not there. */
static const char *teacher_name(bff_index_t *users, int64_t teacher, char *full, size_t size)
{
    json_object *user = bff_index_id(users, teacher);
    if (user == NULL)
        return NULL;
    const char *last = bff_str_of(user, "last_name");
    snprintf(full, size, "%s%s%s", bff_str_of(user, "first_name"), last[0] ? " " : "", last);
    return full;
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
    bff_index_t groups = {0}, users = {0};
    json_object *errors = json_object_new_array();
    ls_text_t t = {.buf = NULL};
    char num[32], full[600];

    const bff_part_t *failed =
        bff_index_parts(r, &groups, sv->groups_parts, sv->ngroups_parts, "groups", "id");
    if (failed != NULL)
        json_object_array_add(errors, bff_part_error(failed));
    failed = bff_index_parts(r, &users, sv->users_parts, sv->nusers_parts, "users", "telegram_id");
    if (failed != NULL)
        json_object_array_add(errors, bff_part_error(failed));

    ls_text_lit(&t, "{\"telegram_id\":");
    ls_text_add(&t, num, (size_t)snprintf(num, sizeof(num), "%lld", (long long)sv->target));
    ls_text_lit(&t, ",\"from\":\"");
    ls_text_add(&t, sv->from, strlen(sv->from));
    ls_text_lit(&t, "\",\"to\":\"");
    ls_text_add(&t, sv->to, strlen(sv->to));
    ls_text_lit(&t, "\",\"limit\":");
    ls_text_add(&t, sv->limit, strlen(sv->limit));
    ls_text_lit(&t, ",\"offset\":");
    ls_text_add(&t, sv->offset, strlen(sv->offset));
    ls_text_lit(&t, ",\"lessons\":[");
    for (size_t i = 0; i < sv->nlessons; i++) {
        const bff_json_item_t *it = &sv->lessons[i];
        json_object *group = sv->gids[i][0] != '\0' ? bff_index_str(&groups, sv->gids[i]) : NULL;
        if (i > 0)
            ls_text_lit(&t, ",");
        add_lesson(&t, it, group != NULL ? bff_str_of(group, "title") : NULL,
                   teacher_name(&users, bff_span_id(&it->field[L_TEACHER]), full, sizeof(full)));
    }
    ls_text_lit(&t, "]");
    bff_text_truncated(&t, (const char *const[]){"lessons"}, &sv->cut, 1);
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
    size_t limit = (size_t)atoi(sv->limit);
    sv->lessons = lp->items;
    sv->cut = (size_t)lp->nitems > limit;
    sv->nlessons = sv->cut ? limit : (size_t)lp->nitems;
    sv->gids = ls_req_alloc(r, sizeof(sv->gids[0]) * sv->nlessons + 1);

    /* The groups and teachers to name, each once. */
    const char **group_ids = ls_req_alloc(r, sizeof(group_ids[0]) * sv->nlessons + 1);
    const char **teacher_ids = ls_req_alloc(r, sizeof(teacher_ids[0]) * sv->nlessons + 1);
    size_t ngroups = 0, nteachers = 0;
    for (size_t i = 0; i < sv->nlessons; i++) {
        const char *gid;
        size_t gid_len;
        bff_span_value(r, &sv->lessons[i].field[L_GROUP_ID], &gid, &gid_len);
        sv->gids[i] = ls_req_strdup(r, gid, gid_len);
        if (ls_is_uuid(sv->gids[i], gid_len))
            group_ids[ngroups++] = sv->gids[i];
        int64_t teacher = bff_span_id(&sv->lessons[i].field[L_TEACHER]);
        if (teacher > 0) {
            char *tid = ls_req_alloc(r, 24);
            snprintf(tid, 24, "%lld", (long long)teacher);
            teacher_ids[nteachers++] = tid;
        }
    }

    bff_fanout_t *names = bff_fanout_new(r, sv);
    sv->groups_parts = &names->parts[0];
    sv->ngroups_parts =
        bff_fanout_batches(names, BFF_UP_GROUPS, "/groups?ids=", group_ids, sort_unique(group_ids, ngroups));
    sv->users_parts = &names->parts[names->nparts];
    sv->nusers_parts = bff_fanout_batches(names, BFF_UP_AUTH, "/users?ids=", teacher_ids,
                                          sort_unique(teacher_ids, nteachers));
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
    if (ls_req_page_or_reply(r, SCHEDULE_MAX_LESSONS, SCHEDULE_MAX_LESSONS, &sv->limit, &sv->offset) != 0)
        return;
    bff_format_time(from, sv->from, sizeof(sv->from));
    bff_format_time(to, sv->to, sizeof(sv->to));
    sv->authorized_by_self = r->actor == sv->target;

    bff_fanout_t *f = bff_fanout_new(r, sv);
    bff_part_t *p =
        bff_fanout_getf(f, BFF_UP_CALENDAR, "/lessons?telegram_id=%lld&from=%s&to=%s&limit=%d&offset=%s",
                        (long long)sv->target, sv->from, sv->to, atoi(sv->limit) + 1, sv->offset);
    p->pass_through = 1; /* read as spans, extended and passed on as text */
    p->pass_keys[0] = "lessons";
    p->item_keys = lesson_fields;
    p->nitem_keys = L_COUNT;
    p->max_items = (size_t)atoi(sv->limit) + 1;
    if (!sv->authorized_by_self) {
        bff_fanout_getf(f, BFF_UP_AUTH, "/users/%lld", (long long)r->actor);
        bff_fanout_getf(f, BFF_UP_GROUPS, "/groups?member_id=%lld&limit=100", (long long)sv->target);
    }
    bff_fanout_start(f, on_lessons);
}
