/*
 * The writes (and the caller's own lists, and one lesson) the Mini App needs, passed on to the
 * owning service with the caller as X-Actor-Telegram-Id — and X-Actor-Role where the owner's rule
 * depends on it. One table, one handler. A read whose owner answers anyone (calendar serves any
 * lesson) carries an `allow` rule the BFF applies to the answer before passing it on. The service's answer
 * reaches the client as it was (status, content type, body), except its 5xx and transport failures, which
 * become the gateway's 502/503/504.
 *
 * The BFF checks only what is its own business: that a body is one JSON object within
 * MAX_BODY_BYTES, that path segments passed on are plain (no escaping tricks), and that a write's
 * Idempotency-Key is 1..LS_IDEM_KEY_MAX visible ASCII characters (400 otherwise). Field rules stay
 * with the owner, and so does the key: it is passed on as it came, and the owning service replays
 * a repeated write's answer (shared/idempotency.h); the BFF keeps nothing.
 */
#include "bff.h"

#include <stdio.h>
#include <string.h>

#include "idempotency.h"

#define PATH_MAX_LEN 512

/* A lesson (with its participants and attendance) is shown to its teacher and its participants. */
static int may_see_lesson(ls_req_t *r, json_object *lesson)
{
    if (bff_id_of(lesson, "teacher_telegram_id") == r->actor)
        return 1;
    json_object *participants = bff_member(lesson, "participants");
    size_t n = participants != NULL && json_object_is_type(participants, json_type_array)
                   ? json_object_array_length(participants)
                   : 0;
    for (size_t i = 0; i < n; i++)
        if (json_object_get_int64(json_object_array_get_idx(participants, i)) == r->actor)
            return 1;
    return 0;
}

// clang-format off
const bff_proxy_route_t bff_proxy_routes[] = {
    {"PUT",    "/api/teachers/me", BFF_UP_TEACHERS, "/teachers/{me}", 0, 0},
    {"PUT",    "/api/teachers/me/languages/{code:str}", BFF_UP_TEACHERS, "/teachers/{me}/languages/{code}", 0, 0},
    {"DELETE", "/api/teachers/me/languages/{code:str}", BFF_UP_TEACHERS, "/teachers/{me}/languages/{code}", 0, 0},
    {"PUT",    "/api/students/me", BFF_UP_STUDENTS, "/students/{me}", 0, 0},
    {"PUT",    "/api/students/me/languages/{code:str}", BFF_UP_STUDENTS, "/students/{me}/languages/{code}", 0, 0},
    {"DELETE", "/api/students/me/languages/{code:str}", BFF_UP_STUDENTS, "/students/{me}/languages/{code}", 0, 0},
    {"POST",   "/api/groups", BFF_UP_GROUPS, "/groups", 1, 0},
    {"PATCH",  "/api/groups/{group_id:uuid}", BFF_UP_GROUPS, "/groups/{group_id}", 1, 0},
    {"POST",   "/api/groups/{group_id:uuid}/invitations", BFF_UP_GROUPS, "/groups/{group_id}/invitations", 1, 0},
    {"DELETE", "/api/groups/{group_id:uuid}/invitations/{code:str}", BFF_UP_GROUPS,
               "/groups/{group_id}/invitations/{code}", 1, 0},
    {"POST",   "/api/join/{code:str}", BFF_UP_GROUPS, "/join/{code}", 0, 0},
    {"POST",   "/api/groups/{group_id:uuid}/checkout", BFF_UP_PAYMENT, "/groups/{group_id}/checkout", 0, 0},
    {"GET",    "/api/payments", BFF_UP_PAYMENT, "/users/{me}/payments", 0, 1},
    {"POST",   "/api/payments/{payment_id:uuid}/refund", BFF_UP_PAYMENT, "/payments/{payment_id}/refund", 1, 0},
    {"DELETE", "/api/groups/{group_id:uuid}/members/{telegram_id:id}", BFF_UP_GROUPS,
               "/groups/{group_id}/members/{telegram_id}", 1, 0},
    {"PUT",    "/api/groups/{group_id:uuid}/progress", BFF_UP_GROUPS, "/groups/{group_id}/progress", 1, 0},
    {"GET",    "/api/notifications", BFF_UP_NOTIFICATION, "/users/{me}/notifications", 0, 1},
    {"GET",    "/api/notifications/unread_count", BFF_UP_NOTIFICATION, "/users/{me}/notifications/unread_count", 0, 0},
    {"POST",   "/api/notifications/read_all", BFF_UP_NOTIFICATION, "/users/{me}/notifications/read_all", 0, 0},
    {"POST",   "/api/notifications/{id:uuid}/read", BFF_UP_NOTIFICATION, "/users/{me}/notifications/{id}/read", 0, 0},
    {"GET",    "/api/notifications/settings", BFF_UP_NOTIFICATION, "/users/{me}/notification_settings", 0, 0},
    {"PUT",    "/api/notifications/settings", BFF_UP_NOTIFICATION, "/users/{me}/notification_settings", 0, 0},
    {"POST",   "/api/lessons", BFF_UP_CALENDAR, "/lessons", 1, 0},
    {"GET",    "/api/lessons/{lesson_id:uuid}", BFF_UP_CALENDAR, "/lessons/{lesson_id}", 0, 0, may_see_lesson},
    {"POST",   "/api/lessons/{lesson_id:uuid}/cancel", BFF_UP_CALENDAR, "/lessons/{lesson_id}/cancel", 1, 0},
    {"POST",   "/api/lessons/{lesson_id:uuid}/reschedule", BFF_UP_CALENDAR, "/lessons/{lesson_id}/reschedule", 1, 0},
    {"PUT",    "/api/lessons/{lesson_id:uuid}/attendance/{telegram_id:id}", BFF_UP_CALENDAR,
               "/lessons/{lesson_id}/attendance/{telegram_id}", 1, 0},
    {"GET",    "/api/teachers/me/schedule", BFF_UP_CALENDAR, "/teachers/{me}/schedule", 0, 0},
    {"PUT",    "/api/teachers/me/schedule", BFF_UP_CALENDAR, "/teachers/{me}/schedule", 0, 0},
    {"GET",    "/api/teachers/me/unavailable", BFF_UP_CALENDAR, "/teachers/{me}/unavailable", 0, 1},
    {"POST",   "/api/teachers/me/unavailable", BFF_UP_CALENDAR, "/teachers/{me}/unavailable", 0, 0},
    {"DELETE", "/api/teachers/me/unavailable/{id:uuid}", BFF_UP_CALENDAR, "/teachers/{me}/unavailable/{id}", 0, 0},
};
// clang-format on
const size_t bff_nproxy_routes = sizeof(bff_proxy_routes) / sizeof(bff_proxy_routes[0]);

typedef struct {
    const bff_proxy_route_t *route;
    const char *path;
    const char *body;
    size_t body_len;
    const char *idempotency_key; /* a write's, as the client sent it; NULL: none */
} proxy_t;

static const bff_proxy_route_t *find_route(ls_req_t *r)
{
    const ls_route_t *matched = r->match.route;
    for (size_t i = 0; i < bff_nproxy_routes; i++)
        if (strcmp(bff_proxy_routes[i].pattern, matched->pattern) == 0 &&
            strcmp(bff_proxy_routes[i].method, matched->method) == 0)
            return &bff_proxy_routes[i];
    return NULL;
}

static int is_plain_segment(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.'))
            return 0;
    }
    return len > 0 && !(len <= 2 && s[0] == '.' && s[len - 1] == '.');
}

/* Expands the route's upstream template into request memory; -1 after answering 400. */
static int expand_path(ls_req_t *r, const bff_proxy_route_t *route, const char **out)
{
    char *path = ls_req_alloc(r, PATH_MAX_LEN);
    size_t o = 0;
    const char *t = route->upstream_path;

    while (*t != '\0') {
        char piece[LS_ROUTE_SEG_MAX + 24];
        size_t len;
        if (*t != '{') {
            piece[0] = *t++;
            len = 1;
        } else {
            const char *close = strchr(t, '}');
            char name[32];
            snprintf(name, sizeof(name), "%.*s", (int)(close - t - 1), t + 1);
            t = close + 1;
            if (strcmp(name, "me") == 0) {
                len = (size_t)snprintf(piece, sizeof(piece), "%lld", (long long)r->actor);
            } else {
                const ls_route_param_t *p = ls_route_param(&r->match, name);
                if (p->type == LS_PARAM_STR && !is_plain_segment(p->value, p->value_len)) {
                    ls_reply_problem(
                        r, 400, "path parameter '%s' may hold only letters, digits, '-', '_' and '.'", name);
                    return -1;
                }
                len = p->value_len;
                memcpy(piece, p->value, len);
            }
        }
        if (o + len >= PATH_MAX_LEN) {
            ls_reply_problem(r, 414, "path too long");
            return -1;
        }
        memcpy(path + o, piece, len);
        o += len;
    }
    if (route->pass_query && r->h2o != NULL && r->h2o->query_at != SIZE_MAX) {
        size_t qlen = r->h2o->path.len - r->h2o->query_at;
        if (o + qlen >= PATH_MAX_LEN) {
            ls_reply_problem(r, 414, "query string too long");
            return -1;
        }
        memcpy(path + o, r->h2o->path.base + r->h2o->query_at, qlen);
        o += qlen;
    }
    path[o] = '\0';
    *out = path;
    return 0;
}

/* A write's Idempotency-Key, copied into request memory: 0 (NULL when absent), or -1 after 400. */
static int idempotency_key_or_reply(ls_req_t *r, const char **out)
{
    h2o_iovec_t v;
    *out = NULL;
    if (r->h2o == NULL || !ls_h2o_header(r->h2o, "idempotency-key", 15, &v))
        return 0;
    if (!ls_idem_key_valid(v.base, v.len)) {
        ls_reply_problem(r, 400, "header Idempotency-Key: must be 1..%d visible ASCII characters",
                         LS_IDEM_KEY_MAX);
        return -1;
    }
    *out = ls_req_strdup(r, v.base, v.len);
    return 0;
}

static void on_answer(ls_req_t *r, bff_fanout_t *f)
{
    const bff_part_t *p = &f->parts[0];
    if (p->unavailable)
        return bff_reply_upstream_failure(r, p);
    if (p->status == 204 || p->raw_len == 0)
        return ls_reply_empty(r, p->status);
    ls_reply_raw(r, p->status, p->content_type, p->raw, p->raw_len);
}

/* A read with an access rule: the read and the caller's user went out together. */
static void on_checked_read(ls_req_t *r, bff_fanout_t *f)
{
    proxy_t *px = f->ud;
    const bff_part_t *p = &f->parts[0], *cp = &f->parts[1];

    if (p->unavailable || !p->ok)
        return on_answer(r, f);
    if (!px->route->allow(r, p->json) && !(cp->ok && bff_role_of(cp->json) == LS_ROLE_ADMIN)) {
        if (cp->unavailable)
            return ls_reply_problem(r, 503, "cannot check access: auth-service: %s", cp->detail);
        return ls_reply_problem(r, 403, "not yours to see");
    }
    on_answer(r, f);
}

static void send_write(ls_req_t *r, proxy_t *px)
{
    bff_fanout_t *f = bff_fanout_new(r, px);
    f->keep_raw = 1;
    bff_part_t *p = bff_fanout_add(f, px->route->up, px->route->method, px->path, px->body, px->body_len);
    p->idempotency_key = px->idempotency_key;
    bff_fanout_start(f, on_answer);
}

/* The caller's role from auth-service, for the owner's admin rules. */
static void on_caller(ls_req_t *r, bff_fanout_t *f)
{
    proxy_t *px = f->ud;
    const bff_part_t *p = &f->parts[0];

    if (p->unavailable || (!p->ok && p->status != 404))
        return bff_reply_upstream_failure(r, p);
    /* A caller who never signed in has no role: the owner's rules for plain users apply. */
    r->role = p->ok ? bff_role_of(p->json) : LS_ROLE_NONE;
    send_write(r, px);
}

void bff_proxy(ls_req_t *r)
{
    proxy_t *px = ls_req_alloc(r, sizeof(*px));
    char err[256];

    memset(px, 0, sizeof(*px));
    px->route = find_route(r);
    if (px->route == NULL)
        return ls_reply_problem(r, 500, "internal error: no proxy entry for this route");
    if (expand_path(r, px->route, &px->path) != 0)
        return;
    if (strcmp(px->route->method, "GET") != 0 && idempotency_key_or_reply(r, &px->idempotency_key) != 0)
        return;
    if (r->h2o != NULL && r->h2o->entity.base != NULL && r->h2o->entity.len > 0) {
        json_object *body = ls_json_parse_object(r->h2o->entity.base, r->h2o->entity.len, err, sizeof(err));
        if (body == NULL)
            return ls_reply_problem(r, 400, "%s", err);
        json_object_put(body);
        /* Copied: the h2o request may be gone (client left) before the call goes out. */
        px->body = ls_req_strdup(r, r->h2o->entity.base, r->h2o->entity.len);
        px->body_len = r->h2o->entity.len;
    }
    if (!px->route->needs_role && px->route->allow == NULL)
        return send_write(r, px);

    bff_fanout_t *f = bff_fanout_new(r, px);
    if (px->route->allow != NULL) {
        f->keep_raw = 1;
        bff_fanout_add(f, px->route->up, px->route->method, px->path, NULL, 0);
        bff_fanout_getf(f, BFF_UP_AUTH, "/users/%lld", (long long)r->actor);
        return bff_fanout_start(f, on_checked_read);
    }
    bff_fanout_getf(f, BFF_UP_AUTH, "/users/%lld", (long long)r->actor);
    bff_fanout_start(f, on_caller);
}
