/*
 * The catalogue: how a student finds a group or a teacher without an invitation code. Open to anyone
 * signed in.
 *
 * GET /api/catalogue/groups?q=&language=&level=&limit=&offset=
 *   Active groups whose title or description holds q (case-insensitive), of that language and level
 *   (groups-service's search, newest first), each passed on as groups-service wrote it plus
 *   "free_seats" (capacity - member_count, never below 0) and "teacher": {"telegram_id",
 *   "first_name", "last_name", "username", "photo_url", "languages"} — the names from one batch read
 *   of auth-service, the languages from one of teachers-service, the two concurrent.
 * GET /api/catalogue/teachers?language=&level=&limit=&offset=
 *   Active teachers of language (required) at level or higher (teachers-service's search, by
 *   telegram_id), each passed on as teachers-service wrote it plus "first_name", "last_name",
 *   "username" and "photo_url" from one batch read of auth-service.
 *
 * Parameters are checked before any call, 400 otherwise: q at most CATALOGUE_Q_MAX bytes (the front
 * door already refuses a query value that is not UTF-8 or holds a NUL), language 2-3 lowercase
 * letters, level A1..C2, limit 1..CATALOGUE_LIMIT_MAX, offset 0..LS_MAX_OFFSET.
 *
 * Paging: the list's service is asked for one item more than limit; when it has it, "next_offset" is
 * offset + limit, else null (null too when that would be past LS_MAX_OFFSET, the deepest page).
 *
 * The list is the primary record: its service failing answers 503 (unreachable), 504 (too slow) or
 * 502. A names or languages read that fails leaves those members null in every item and makes the
 * answer partial (errors, X-Partial); a teacher whom auth-service or teachers-service does not know
 * has them null without an error. Neither service writes the members added here.
 */
#include "bff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vocab.h>

#define CATALOGUE_LIMIT_DEFAULT 20
#define CATALOGUE_LIMIT_MAX     50  /* + 1 to see a next page: within the services' page of 100 */
#define CATALOGUE_Q_MAX         100 /* bytes, as groups-service's search takes it */
#define ID_TEXT_MAX             21  /* a telegram id and a comma */

/* What the view reads of each listed item (item 0 of both: the teacher's telegram id). */
enum { CF_TEACHER, CF_CAPACITY, CF_MEMBERS, CF_COUNT };
static const char *const group_keys[CF_COUNT] = {"teacher_telegram_id", "capacity", "member_count"};
static const char *const teacher_keys[1] = {"telegram_id"};

typedef struct {
    int groups; /* the groups' list, else the teachers' */
    int limit, offset;
    const bff_json_item_t *items;
    size_t nitems;                       /* shown: at most limit */
    int more;                            /* the service had one more */
    const bff_part_t *users, *languages; /* the second round's parts; NULL when not asked */
} catalogue_t;

static const char *const name_keys[] = {"first_name", "last_name", "username", "photo_url"};

/* The object of list whose "telegram_id" is id, or NULL. */
static json_object *by_telegram_id(json_object *list, int64_t id)
{
    for (size_t i = 0; list != NULL && i < json_object_array_length(list); i++)
        if (bff_id_of(json_object_array_get_idx(list, i), "telegram_id") == id)
            return json_object_array_get_idx(list, i);
    return NULL;
}

/* "first_name":…,"last_name":…,"username":…,"photo_url":… of user (each null without one). */
static void add_names(ls_text_t *t, json_object *user)
{
    for (size_t k = 0; k < sizeof(name_keys) / sizeof(name_keys[0]); k++) {
        if (k > 0)
            ls_text_lit(t, ",");
        ls_text_lit(t, "\"");
        ls_text_add(t, name_keys[k], strlen(name_keys[k]));
        ls_text_lit(t, "\":");
        ls_text_json(t, bff_member(user, name_keys[k]));
    }
}

static void add_int(ls_text_t *t, long long v)
{
    char num[24];
    ls_text_add(t, num, (size_t)snprintf(num, sizeof(num), "%lld", v));
}

/* An item as its service wrote it, open: without its closing brace, and a comma when it has members. */
static void add_item_open(ls_text_t *t, const bff_json_item_t *it)
{
    ls_text_add(t, it->whole.text, it->whole.len - 1);
    if (it->whole.len > 2)
        ls_text_lit(t, ",");
}

static void on_details(ls_req_t *r, bff_fanout_t *f)
{
    catalogue_t *c = f->ud;
    const bff_part_t *up = c->users, *lp = c->languages;
    json_object *users = up != NULL && up->ok ? bff_list_of(up->json, "users") : NULL;
    json_object *teachers = lp != NULL && lp->ok ? bff_list_of(lp->json, "teachers") : NULL;
    json_object *errors = json_object_new_array();
    ls_text_t t = {.buf = NULL};

    if (up != NULL && users == NULL)
        json_object_array_add(errors, bff_part_error(up));
    if (lp != NULL && teachers == NULL)
        json_object_array_add(errors, bff_part_error(lp));

    if (c->groups)
        ls_text_lit(&t, "{\"groups\":[");
    else
        ls_text_lit(&t, "{\"teachers\":[");
    for (size_t i = 0; i < c->nitems; i++) {
        const bff_json_item_t *it = &c->items[i];
        int64_t teacher = bff_span_id(&it->field[CF_TEACHER]);
        if (i > 0)
            ls_text_lit(&t, ",");
        add_item_open(&t, it);
        if (!c->groups) {
            add_names(&t, by_telegram_id(users, teacher));
        } else {
            long long free_seats = bff_span_id(&it->field[CF_CAPACITY]) - bff_span_id(&it->field[CF_MEMBERS]);
            ls_text_lit(&t, "\"free_seats\":");
            add_int(&t, free_seats > 0 ? free_seats : 0);
            ls_text_lit(&t, ",\"teacher\":{\"telegram_id\":");
            add_int(&t, (long long)teacher);
            ls_text_lit(&t, ",");
            add_names(&t, by_telegram_id(users, teacher));
            ls_text_lit(&t, ",\"languages\":");
            ls_text_json(&t, bff_member(by_telegram_id(teachers, teacher), "languages"));
            ls_text_lit(&t, "}");
        }
        ls_text_lit(&t, "}");
    }
    ls_text_lit(&t, "],\"limit\":");
    add_int(&t, c->limit);
    ls_text_lit(&t, ",\"offset\":");
    add_int(&t, c->offset);
    ls_text_lit(&t, ",\"next_offset\":");
    if (c->more && c->offset + c->limit <= LS_MAX_OFFSET)
        add_int(&t, c->offset + c->limit);
    else
        ls_text_lit(&t, "null");
    bff_text_reply(r, &t, errors, LS_VIEW_CATALOGUE);
    json_object_put(errors);
}

static void on_list(ls_req_t *r, bff_fanout_t *f)
{
    catalogue_t *c = f->ud;
    const bff_part_t *p = &f->parts[0];

    if (bff_part_list(p) == NULL)
        return bff_reply_upstream_failure(r, p);
    c->items = p->items;
    c->more = p->nitems > c->limit;
    c->nitems = (size_t)(c->more ? c->limit : p->nitems);

    /* The teachers of the page, each once, in one path for both services. */
    char *ids = ls_req_alloc(r, (size_t)CATALOGUE_LIMIT_MAX * ID_TEXT_MAX + 1);
    size_t len = 0, n = 0;
    ids[0] = '\0';
    for (size_t i = 0; i < c->nitems; i++) {
        int64_t id = bff_span_id(&c->items[i].field[CF_TEACHER]);
        int seen = id <= 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = bff_span_id(&c->items[j].field[CF_TEACHER]) == id;
        if (!seen) {
            len += (size_t)sprintf(ids + len, "%s%lld", n > 0 ? "," : "", (long long)id);
            n++;
        }
    }

    bff_fanout_t *details = bff_fanout_new(r, c);
    if (n > 0) {
        c->users = bff_fanout_getf(details, BFF_UP_AUTH, "/users?ids=%s", ids);
        if (c->groups)
            c->languages = bff_fanout_getf(details, BFF_UP_TEACHERS, "/teachers?ids=%s", ids);
    }
    bff_fanout_start(details, on_details);
}

/* Appends &name=value to path at *len, value percent-encoded (all but RFC 3986's unreserved bytes). */
static void add_param(char *path, size_t *len, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    *len += (size_t)sprintf(path + *len, "&%s=", name);
    for (const unsigned char *v = (const unsigned char *)value; *v != '\0'; v++) {
        if ((*v >= 'A' && *v <= 'Z') || (*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9') ||
            strchr("-._~", *v) != NULL) {
            path[(*len)++] = (char)*v;
        } else {
            path[(*len)++] = '%';
            path[(*len)++] = hex[*v >> 4];
            path[(*len)++] = hex[*v & 15];
        }
    }
    path[*len] = '\0';
}

/* Reads and checks the parameters both lists take, and asks the list's service for a page and one
 * more item; q is the groups' text, NULL for the teachers. */
static void start_list(ls_req_t *r, int groups, const char *q)
{
    const char *language = ls_req_query(r, "language"), *level = ls_req_query(r, "level");
    const char *limit, *offset;

    if (language != NULL && !ls_is_language_code(language))
        return ls_reply_problem(r, 400,
                                "query parameter 'language': must be 2 or 3 lowercase letters (ISO 639)");
    if (!groups && language == NULL)
        return ls_reply_problem(r, 400, "query parameter 'language' is required (an ISO 639 code like 'en')");
    if (level != NULL && !ls_is_cefr_level(level))
        return ls_reply_problem(r, 400, "query parameter 'level': must be one of A1, A2, B1, B2, C1, C2");
    if (ls_req_page_or_reply(r, CATALOGUE_LIMIT_DEFAULT, CATALOGUE_LIMIT_MAX, &limit, &offset) != 0)
        return;

    catalogue_t *c = ls_req_alloc(r, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->groups = groups;
    c->limit = atoi(limit);
    c->offset = atoi(offset);

    size_t len = 0, max = 128 + 3 * (q != NULL ? strlen(q) : 0);
    char *path = ls_req_alloc(r, max);
    len = (size_t)snprintf(path, max, "%s?limit=%d&offset=%d", groups ? "/groups/search" : "/teachers/search",
                           c->limit + 1, c->offset);
    if (q != NULL && q[0] != '\0')
        add_param(path, &len, "q", q);
    if (language != NULL)
        add_param(path, &len, "language", language);
    if (level != NULL)
        add_param(path, &len, "level", level);

    bff_fanout_t *f = bff_fanout_new(r, c);
    bff_part_t *p = bff_fanout_add(f, groups ? BFF_UP_GROUPS : BFF_UP_TEACHERS, "GET", path, NULL, 0);
    p->pass_through = 1; /* read as spans, extended and passed on as text */
    p->pass_keys[0] = groups ? "groups" : "teachers";
    p->item_keys = groups ? group_keys : teacher_keys;
    p->nitem_keys = groups ? CF_COUNT : 1;
    p->max_items = (size_t)c->limit + 1;
    bff_fanout_start(f, on_list);
}

void bff_catalogue_groups(ls_req_t *r)
{
    const char *q = ls_req_query(r, "q");
    if (q != NULL && strlen(q) > CATALOGUE_Q_MAX)
        return ls_reply_problem(r, 400, "query parameter 'q': at most %d bytes", CATALOGUE_Q_MAX);
    start_list(r, 1, q);
}

void bff_catalogue_teachers(ls_req_t *r)
{
    start_list(r, 0, NULL);
}
