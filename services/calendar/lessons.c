/*
 * calendar-service handlers: creating a lesson (seed 000's create_lesson) and reading lessons.
 *
 * POST /lessons asks teachers-, groups- and students-service concurrently whether what the lesson
 * names exists, then stores the lesson, its participants, one outbox row per participant and the
 * audit row in one transaction, and wakes the outbox after the commit.
 */
#include "calendar.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "rows.h"
#include "txn.h"

const char *const calendar_lesson_statuses[] = {"scheduled", "cancelled", "completed", NULL};
const char *const calendar_attendance_statuses[] = {"present", "absent", "late", "excused", NULL};

#define PROBLEMS_MAX 1024
#define DOWN_MAX     256

size_t calendar_utf8_chars(const char *s)
{
    size_t chars = 0;
    /* Every byte that is not a continuation byte (10xxxxxx) starts a character. */
    for (; *s != '\0'; s++)
        chars += ((unsigned char)*s & 0xC0) != 0x80;
    return chars;
}

const char *calendar_rfc3339_or_raw(const char *pg, char out[40])
{
    if (ls_pg_time_to_rfc3339(pg, out) != 0)
        snprintf(out, 40, "%s", pg);
    return out;
}

int calendar_check_or_reply(ls_req_t *r, const PGresult *res, const char *teacher)
{
    char a[40], b[40];
    if (PQntuples(res) != 1) {
        ls_reply_problem(r, 500, "availability check returned no row");
        return -1;
    }
    const char *conflict = ls_row_text(res, 0, "conflict_id");
    if (conflict != NULL) {
        ls_reply_problem(r, 409, "teacher %s already has lesson %s from %s to %s at that time", teacher,
                         conflict, calendar_rfc3339_or_raw(ls_row_text(res, 0, "conflict_starts_at"), a),
                         calendar_rfc3339_or_raw(ls_row_text(res, 0, "conflict_ends_at"), b));
        return -1;
    }
    const char *unavailable = ls_row_text(res, 0, "unavailable_starts_at");
    if (unavailable != NULL) {
        const char *reason = ls_row_text(res, 0, "unavailable_reason");
        if (reason == NULL)
            reason = "";
        ls_reply_problem(r, 409, "teacher %s is unavailable from %s to %s%s%.200s%s", teacher,
                         calendar_rfc3339_or_raw(unavailable, a),
                         calendar_rfc3339_or_raw(ls_row_text(res, 0, "unavailable_ends_at"), b),
                         reason[0] != '\0' ? " (" : "", reason, reason[0] != '\0' ? ")" : "");
        return -1;
    }
    const char *zone = ls_row_text(res, 0, "schedule_timezone");
    if (zone != NULL && !ls_row_bool(res, 0, "fits_schedule")) {
        ls_reply_problem(r, 409,
                         "the lesson is outside teacher %s's weekly availability (time zone %s):"
                         " it must lie inside one window of its weekday",
                         teacher, zone);
        return -1;
    }
    return 0;
}

/* ======================================================================== POST /lessons */

static const ls_json_field_t create_fields[] = {
    {"teacher_telegram_id", LS_JSON_ID, 1, 0, 0, 0, NULL},
    {"group_id", LS_JSON_UUID, 0, 1, 0, 0, NULL},
    {"student_telegram_ids", LS_JSON_ARRAY, 0, 0, 0, CAL_STUDENTS_MAX, NULL},
    {"starts_at", LS_JSON_TIME, 1, 0, 0, 0, NULL},
    {"duration_minutes", LS_JSON_INT, 1, 0, CAL_DURATION_MIN, CAL_DURATION_MAX, NULL},
    /* Bytes here (up to 4 per character); characters are counted below. */
    {"topic", LS_JSON_STRING, 0, 1, 0, CAL_TOPIC_MAX * 4, NULL},
};

typedef struct {
    const char *teacher; /* decimal text */
    int64_t teacher_id;
    const char *group_id; /* NULL: not a group lesson */
    int64_t *ids;         /* listed students, then group members; deduplicated before the insert */
    size_t nlisted, nids, cap;
    const char *students_query; /* "1,2,3" for GET /students?ids= */
    /* the answers of the other services */
    int pending;
    size_t members_offset;
    char *group_title;           /* malloc'ed; freed by create_release */
    char problems[PROBLEMS_MAX]; /* what is missing: answered 422 */
    char down[DOWN_MAX];         /* services that did not answer: 503 */
    char bad[DOWN_MAX];          /* services that answered something unexpected: 502 */
    const char *params[10];      /* of STMT_LESSON_INSERT */
} create_t;

static void create_release(create_t *c)
{
    free(c->group_title);
    c->group_title = NULL;
}

static void append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 3 >= cap)
        return;
    if (used > 0) {
        memcpy(buf + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
}

/*
 * Sorts out an answer of service `name`: returns its parsed JSON body when the status is `want`
 * (the caller owns it), NULL otherwise — recording a service that did not answer (or answered 5xx)
 * in c->down and any other unexpected answer in c->bad, unless the status is `also` (e.g. 404,
 * which the caller handles: *status tells it).
 */
static json_object *answer(create_t *c, const char *name, const ls_http_response_t *resp, int also,
                           int *status)
{
    *status = resp->status;
    if (resp->outcome != LS_HTTP_OK || resp->status >= 500) {
        if (resp->outcome != LS_HTTP_OK)
            append(c->down, sizeof(c->down), "%s (%s)", name,
                   resp->error != NULL ? resp->error : "no answer");
        else
            append(c->down, sizeof(c->down), "%s (HTTP %d)", name, resp->status);
        return NULL;
    }
    if (resp->status == also)
        return NULL;
    json_object *body = resp->status == 200 ? json_tokener_parse(resp->body) : NULL;
    if (body == NULL || !json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        append(c->bad, sizeof(c->bad), "%s (HTTP %d)", name, resp->status);
        *status = 0;
        return NULL;
    }
    return body;
}

static void create_validated(ls_req_t *r);

/* One answer less to wait for; when it was the last, go on. */
static void fanout_done(ls_req_t *r)
{
    create_t *c = r->state;
    if (--c->pending == 0)
        create_validated(r);
}

static void on_teacher(ls_req_t *r, const ls_http_response_t *resp)
{
    create_t *c = r->state;
    int status;
    json_object *teacher = answer(c, "teachers-service", resp, 404, &status);
    if (status == 404)
        append(c->problems, sizeof(c->problems), "teacher not found: %s", c->teacher);
    json_object_put(teacher);
    fanout_done(r);
}

static void on_group(ls_req_t *r, const ls_http_response_t *resp)
{
    create_t *c = r->state;
    int status;
    json_object *group = answer(c, "groups-service", resp, 404, &status), *v;
    if (status == 404)
        append(c->problems, sizeof(c->problems), "group not found: %s", c->group_id);
    if (group != NULL) {
        int64_t owner =
            json_object_object_get_ex(group, "teacher_telegram_id", &v) ? json_object_get_int64(v) : 0;
        const char *state = json_object_object_get_ex(group, "status", &v) ? json_object_get_string(v) : NULL;
        if (owner != c->teacher_id)
            append(c->problems, sizeof(c->problems), "group %s belongs to another teacher (%lld), not %s",
                   c->group_id, (long long)owner, c->teacher);
        else if (state != NULL && strcmp(state, "archived") == 0)
            append(c->problems, sizeof(c->problems), "group %s is archived", c->group_id);
        if (json_object_object_get_ex(group, "title", &v) && json_object_is_type(v, json_type_string))
            c->group_title = strdup(json_object_get_string(v));
        json_object_put(group);
    }
    fanout_done(r);
}

static void fetch_members(ls_req_t *r);

static void on_members(ls_req_t *r, const ls_http_response_t *resp)
{
    create_t *c = r->state;
    int status;
    json_object *page = answer(c, "groups-service", resp, 404, &status), *members;
    /* A 404 here means the group is unknown, which on_group reports. */
    if (page != NULL) {
        size_t n = 0;
        if (json_object_object_get_ex(page, "members", &members) &&
            json_object_is_type(members, json_type_array)) {
            n = json_object_array_length(members);
            for (size_t i = 0; i < n && c->nids < c->cap; i++) {
                json_object *m = json_object_array_get_idx(members, i), *id;
                if (json_object_object_get_ex(m, "student_telegram_id", &id))
                    c->ids[c->nids++] = json_object_get_int64(id);
            }
        }
        json_object_put(page);
        c->members_offset += n;
        /* A full page may have more behind it; stop at the largest group there can be. */
        if (n == CAL_MEMBERS_PAGE && c->members_offset < CAL_MEMBERS_MAX)
            return fetch_members(r);
    }
    fanout_done(r);
}

/* Called with the page's answer still counted in c->pending. */
static void fetch_members(ls_req_t *r)
{
    create_t *c = r->state;
    char path[160];
    snprintf(path, sizeof(path), "/groups/%s/members?limit=%d&offset=%zu", c->group_id, CAL_MEMBERS_PAGE,
             c->members_offset);
    ls_req_http(r, "groups", ((calendar_config_t *)ls_req_config(r))->groups_url, "GET", path, NULL, 0,
                on_members);
}

static void on_students(ls_req_t *r, const ls_http_response_t *resp)
{
    create_t *c = r->state;
    int status;
    json_object *batch = answer(c, "students-service", resp, 0, &status), *missing;
    if (batch != NULL) {
        if (json_object_object_get_ex(batch, "missing", &missing) &&
            json_object_is_type(missing, json_type_array) && json_object_array_length(missing) > 0) {
            char list[PROBLEMS_MAX / 2] = "";
            size_t off = 0;
            for (size_t i = 0; i < json_object_array_length(missing) && off + 24 < sizeof(list); i++)
                off +=
                    (size_t)snprintf(list + off, sizeof(list) - off, "%s%lld", i > 0 ? ", " : "",
                                     (long long)json_object_get_int64(json_object_array_get_idx(missing, i)));
            append(c->problems, sizeof(c->problems), "students not found: %s", list);
        }
        json_object_put(batch);
    }
    fanout_done(r);
}

/* ---- the transaction: teacher lock; availability check; insert; commit ---- */

void calendar_kick_outbox(ls_req_t *r, ls_txn_t *t)
{
    (void)t;
    ls_outbox_kick(ls_worker_outbox(r->worker));
}

static void create_txn_release(ls_txn_t *t)
{
    create_release(t->ctx);
}

static void on_overlap_named(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    ls_txn_t *t = r->state;
    create_t *c = t->ctx;
    if (status == LS_PG_OK && calendar_check_or_reply(r, res, c->teacher) != 0)
        return;
    /* The conflicting lesson was cancelled or moved meanwhile: still a conflict at insert time. */
    ls_reply_problem(r, 409, "the lesson overlaps another lesson of teacher %s", c->teacher);
}

/* A concurrent lesson committed between the check and the insert (23P01): name it, from outside
 * the failed transaction (its commit is visible by now). */
static int on_insert_error(ls_req_t *r, ls_txn_t *t, const char *sqlstate)
{
    create_t *c = t->ctx;
    if (strcmp(sqlstate, "23P01") != 0)
        return -1;
    const char *params[4] = {c->params[0], c->params[2], c->params[3], NULL};
    ls_req_pg(r, STMT_LESSON_CHECK, 4, params, on_overlap_named);
    return 0;
}

static void on_inserted(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    if (PQntuples(res) != 1)
        return ls_txn_fail(t, 500, "lesson was not written");
    t->on_commit = calendar_kick_outbox;
    ls_txn_reply(t, 201, ls_row_object(res, 0));
    ls_txn_commit(t);
}

static void on_checked(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    create_t *c = t->ctx;
    if (calendar_check_or_reply(r, res, c->teacher) != 0)
        return ls_txn_abort(t);
    ls_txn_exec(t, STMT_LESSON_INSERT, 10, c->params, on_inserted);
}

static void on_teacher_locked(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    create_t *c = t->ctx;
    const char *params[4] = {c->params[0], c->params[2], c->params[3], NULL};
    ls_txn_exec(t, STMT_LESSON_CHECK, 4, params, on_checked);
}

static void lock_teacher(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    create_t *c = t->ctx;
    const char *params[1] = {c->teacher};
    ls_txn_exec(t, STMT_TEACHER_LOCK, 1, params, on_teacher_locked);
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every answer is in: refuse, or store the lesson. */
static void create_validated(ls_req_t *r)
{
    create_t *c = r->state;
    if (c->down[0] != '\0') {
        ls_reply_problem(r, 503, "cannot validate the lesson: unreachable: %s", c->down);
        return create_release(c);
    }
    if (c->bad[0] != '\0') {
        ls_reply_problem(r, 502, "cannot validate the lesson: unexpected answer from %s", c->bad);
        return create_release(c);
    }
    if (c->problems[0] != '\0') {
        ls_reply_problem(r, 422, "%s", c->problems);
        return create_release(c);
    }

    /* Participants: the listed students and the group's members, each once. */
    qsort(c->ids, c->nids, sizeof(c->ids[0]), cmp_id);
    size_t n = 0;
    for (size_t i = 0; i < c->nids; i++)
        if (n == 0 || c->ids[n - 1] != c->ids[i])
            c->ids[n++] = c->ids[i];
    c->nids = n;
    char *array = ls_req_alloc(r, 2 + n * 21 + 1), *p = array;
    *p++ = '{';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%lld", i > 0 ? "," : "", (long long)c->ids[i]);
    *p++ = '}';
    *p = '\0';

    c->params[6] = array;
    c->params[7] = c->group_title != NULL ? ls_req_strdup(r, c->group_title, strlen(c->group_title)) : NULL;
    ls_txn_t *t = ls_txn_new(r);
    t->on_error = on_insert_error;
    t->release = create_txn_release;
    ls_txn_begin(t, lock_teacher);
}

/* The listed students as ids (validated here: the table only bounds the array's length). */
static int listed_students_or_reply(ls_req_t *r, create_t *c, json_object *list)
{
    size_t n = list != NULL ? json_object_array_length(list) : 0;
    char *query = ls_req_alloc(r, n * 21 + 1), *q = query;
    *q = '\0';
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(list, i);
        int64_t id = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
        if (id < 1 || id > LS_ID_MAX) {
            ls_reply_problem(r, 400,
                             "field 'student_telegram_ids': element %zu must be a telegram id (an integer"
                             " from 1 to %lld)",
                             i, LS_ID_MAX);
            return -1;
        }
        c->ids[c->nids++] = id;
        q += sprintf(q, "%s%lld", i > 0 ? "," : "", (long long)id);
    }
    c->nlisted = n;
    c->students_query = query;
    return 0;
}

void lessons_create(ls_req_t *r)
{
    const calendar_config_t *cfg = ls_req_config(r);
    json_object *body =
        ls_req_body_or_reply(r, create_fields, sizeof(create_fields) / sizeof(create_fields[0]));
    if (body == NULL || ls_req_actor_or_reply(r) != 0)
        return;
    int64_t teacher = ls_json_get_i64(body, "teacher_telegram_id", 0);
    if (!ls_req_actor_is_self_or_admin(r, teacher))
        return ls_reply_problem(r, 403,
                                "only the teacher themself or an admin may schedule lessons of teacher %lld",
                                (long long)teacher);
    const char *topic = ls_json_get_str(body, "topic");
    if (topic != NULL && calendar_utf8_chars(topic) > CAL_TOPIC_MAX)
        return ls_reply_problem(r, 400, "field 'topic': at most %d characters", CAL_TOPIC_MAX);

    create_t *c = ls_req_alloc(r, sizeof(*c));
    memset(c, 0, sizeof(*c));
    r->state = c;
    c->teacher_id = teacher;
    char *teacher_text = ls_req_alloc(r, 24);
    snprintf(teacher_text, 24, "%lld", (long long)teacher);
    c->teacher = teacher_text;
    c->group_id = ls_json_get_str(body, "group_id");
    c->cap = CAL_STUDENTS_MAX + (c->group_id != NULL ? CAL_MEMBERS_MAX : 0);
    c->ids = ls_req_alloc(r, c->cap * sizeof(c->ids[0]));
    json_object *list = NULL;
    json_object_object_get_ex(body, "student_telegram_ids", &list);
    if (listed_students_or_reply(r, c, list) != 0)
        return;

    char *duration = ls_req_alloc(r, 16);
    snprintf(duration, 16, "%lld", (long long)ls_json_get_i64(body, "duration_minutes", 0));
    c->params[0] = c->teacher;
    c->params[1] = c->group_id;
    c->params[2] = ls_json_get_str(body, "starts_at");
    c->params[3] = duration;
    c->params[4] = topic;
    c->params[5] = ls_req_actor_text(r);
    c->params[8] = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
    c->params[9] = ls_req_traceparent(r);

    /* All the questions at once; the count is complete before any answer can arrive (callbacks
     * never run inside ls_req_http). */
    char path[200];
    c->pending = 1 + (c->group_id != NULL ? 2 : 0) + (c->nlisted > 0 ? 1 : 0);
    snprintf(path, sizeof(path), "/teachers/%s", c->teacher);
    ls_req_http(r, "teachers", cfg->teachers_url, "GET", path, NULL, 0, on_teacher);
    if (c->group_id != NULL) {
        snprintf(path, sizeof(path), "/groups/%s", c->group_id);
        ls_req_http(r, "groups", cfg->groups_url, "GET", path, NULL, 0, on_group);
        fetch_members(r);
    }
    if (c->nlisted > 0) {
        size_t len = strlen("/students?ids=") + strlen(c->students_query) + 1;
        char *spath = ls_req_alloc(r, len);
        snprintf(spath, len, "/students?ids=%s", c->students_query);
        ls_req_http(r, "students", cfg->students_url, "GET", spath, NULL, 0, on_students);
    }
}

/* ======================================================================== GET /lessons/{id} */

static void on_lesson_get(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0)
        return ls_reply_problem(r, 404, "lesson %s not found", ls_req_param_str(r, "lesson_id"));
    ls_reply_json(r, 200, ls_row_object(res, 0));
}

void lessons_get(ls_req_t *r)
{
    const char *params[1] = {ls_req_param_str(r, "lesson_id")};
    ls_req_pg(r, STMT_LESSON_GET, 1, params, on_lesson_get);
}

/* ======================================================================== GET /lessons?… */

typedef struct {
    const char *limit, *offset;
} page_t;

static void on_lessons_list(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    page_t *p = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    /* Written as text: building a json-c object per value cost more than the query. */
    char tail[64];
    snprintf(tail, sizeof(tail), ",\"limit\":%d,\"offset\":%d}", atoi(p->limit), atoi(p->offset));
    size_t len;
    char *body = ls_rows_json(res, "{\"lessons\":", tail, &len);
    if (body == NULL) {
        ls_reply_problem(r, 503, "out of memory"); /* a passing condition, as the BFF answers it */
        return;
    }
    ls_reply_raw(r, 200, "application/json", body, len);
    free(body);
}

int calendar_query_time_or_reply(ls_req_t *r, const char *name, const char **out)
{
    const char *v = ls_req_query(r, name);
    *out = NULL;
    if (v == NULL)
        return 0;
    size_t len = strlen(v);
    char *t = ls_req_strdup(r, v, len);
    if (len > 6 && t[len - 6] == ' ')
        t[len - 6] = '+';
    if (!ls_is_rfc3339(t, len)) {
        ls_reply_problem(
            r, 400, "query parameter '%s': must be an RFC 3339 date-time such as 2026-01-31T18:00:00Z", name);
        return -1;
    }
    *out = t;
    return 0;
}

void lessons_list(ls_req_t *r)
{
    static const struct {
        const char *name;
        size_t stmt;
        int is_uuid;
    } filters[] = {
        {"telegram_id", STMT_LESSONS_OF_PERSON, 0},
        {"teacher_id", STMT_LESSONS_OF_TEACHER, 0},
        {"student_id", STMT_LESSONS_OF_STUDENT, 0},
        {"group_id", STMT_LESSONS_OF_GROUP, 1},
    };
    const char *key = NULL, *from, *to;
    size_t stmt = 0, found = 0;
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        const char *v = ls_req_query(r, filters[i].name);
        if (v == NULL)
            continue;
        int64_t id;
        if (filters[i].is_uuid ? !ls_is_uuid(v, strlen(v)) : ls_parse_id(v, strlen(v), &id) != 0)
            return ls_reply_problem(r, 400, "query parameter '%s': must be %s", filters[i].name,
                                    filters[i].is_uuid ? "a UUID" : "a telegram id");
        key = v;
        stmt = filters[i].stmt;
        found++;
    }
    if (found != 1)
        return ls_reply_problem(r, 400,
                                "give exactly one of the query parameters telegram_id, teacher_id,"
                                " student_id, group_id");
    if (calendar_query_time_or_reply(r, "from", &from) != 0 ||
        calendar_query_time_or_reply(r, "to", &to) != 0)
        return;
    const char *status = ls_req_query(r, "status");
    if (status != NULL) {
        size_t i = 0;
        while (calendar_lesson_statuses[i] != NULL && strcmp(calendar_lesson_statuses[i], status) != 0)
            i++;
        if (calendar_lesson_statuses[i] == NULL)
            return ls_reply_problem(
                r, 400, "query parameter 'status': must be one of scheduled, cancelled, completed");
    }
    page_t *p = ls_req_alloc(r, sizeof(*p));
    if (ls_req_page_or_reply(r, CAL_PAGE_DEF, CAL_LESSONS_MAX, &p->limit, &p->offset) != 0)
        return;
    r->state = p;
    const char *params[6] = {key, from, to, status, p->limit, p->offset};
    ls_req_pg(r, stmt, 6, params, on_lessons_list);
}
