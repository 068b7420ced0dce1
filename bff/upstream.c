#include "upstream.h"

#include <stdio.h>
#include <string.h>

#include <log.h>

enum { CLOSED = 0, OPEN = 1, HALF_OPEN = 2 };

#define DEADLINE_GRACE_MS 25

typedef struct {
    int state;
    int failures; /* consecutive, while closed */
    int probing;  /* half-open: the one probe is out */
    uint64_t open_until;
    size_t inflight;
} breaker_t;

static const char *const names[BFF_UP_COUNT] = {"auth",   "teachers", "students",
                                                "groups", "calendar", "notification"};
static bff_upstream_config_t cfg;
/* Each worker thread has its own breakers: threads share no mutable state. */
static __thread breaker_t breakers[BFF_UP_COUNT];

void bff_upstream_configure(const bff_upstream_config_t *config)
{
    cfg = *config;
}

const char *bff_upstream_name(bff_upstream_id_t up)
{
    return names[up];
}

const char *bff_upstream_url(bff_upstream_id_t up)
{
    return cfg.base_url[up];
}

int bff_upstream_state(bff_upstream_id_t up)
{
    return breakers[up].state;
}

static void log_transition(bff_upstream_id_t up, const char *what)
{
    ls_log_line_t l;
    if (ls_log_begin(&l, LS_LOG_WARN, NULL, what)) {
        ls_log_str(&l, "target", names[up]);
        ls_log_end(&l);
    }
}

int bff_upstream_acquire(bff_upstream_id_t up, const char **why)
{
    breaker_t *b = &breakers[up];

    if (b->state == OPEN) {
        if (ls_now_ms() < b->open_until) {
            *why = "circuit open";
            return -1;
        }
        b->state = HALF_OPEN;
        b->probing = 0;
    }
    if (b->state == HALF_OPEN && b->probing) {
        *why = "circuit open";
        return -1;
    }
    if (b->inflight >= cfg.max_inflight) {
        *why = "too many concurrent requests";
        return -1;
    }
    if (b->state == HALF_OPEN)
        b->probing = 1;
    b->inflight++;
    return 0;
}

void bff_upstream_release(bff_upstream_id_t up, const ls_http_response_t *resp)
{
    breaker_t *b = &breakers[up];
    /* Only what says the service is unwell counts: not our own errors (out of memory, shutdown). */
    int failed = resp->outcome == LS_HTTP_TIMEOUT || resp->outcome == LS_HTTP_CONNECT_ERROR ||
                 (resp->outcome == LS_HTTP_OK && resp->status >= 500);

    b->inflight--;
    if (!failed && resp->outcome != LS_HTTP_OK) {
        /* Neither proof of health nor of sickness; a probe that ended so lets the next one go. */
        b->probing = 0;
        return;
    }
    if (!failed) {
        if (b->state != CLOSED)
            log_transition(up, "circuit closed");
        b->state = CLOSED;
        b->failures = 0;
        b->probing = 0;
        return;
    }
    if (b->state == HALF_OPEN || (b->state == CLOSED && ++b->failures >= cfg.breaker_failures)) {
        if (b->state == CLOSED)
            log_transition(up, "circuit open");
        b->state = OPEN;
        b->open_until = ls_now_ms() + cfg.breaker_open_ms;
        b->probing = 0;
        b->failures = 0;
    }
}

/* ---- passing JSON on as text ---- */

#define SCAN_MAX_DEPTH   12 /* below json-c's LS_JSON_MAX_DEPTH: deeper text is left to json-c */
#define SCAN_MAX_DIGITS  18 /* an integer part that always fits json-c's int64 */
#define SCAN_MAX_MEMBERS 64 /* per object; larger ones are left to json-c */

typedef struct {
    const char *p, *end;
    int depth;
    /* The members to report in the object a scan starts with (bff_json_scan's key, bff_json_items'
     * keys of each item). */
    const char *const *keys;
    size_t key_len[BFF_JSON_MAX_FIELDS];
    size_t nkeys;
} scan_t;

static int scan_init(scan_t *sc, const char *text, size_t len, const char *const *keys, size_t nkeys)
{
    if (nkeys > BFF_JSON_MAX_FIELDS)
        return -1;
    sc->p = text;
    sc->end = text + len;
    sc->depth = 0;
    sc->keys = keys;
    sc->nkeys = nkeys;
    for (size_t k = 0; k < nkeys; k++)
        sc->key_len[k] = strlen(keys[k]);
    return 0;
}

static void skip_ws(scan_t *sc)
{
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
        sc->p++;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_digit_or_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* The bytes a string scan must stop at: control characters, '"', '/' and '\\'. */
static const unsigned char string_special[256] = {
    [0x00 ... 0x1f] = 1,
    ['"'] = 1,
    ['/'] = 1,
    ['\\'] = 1,
};

/*
 * A string at sc->p (the opening quote) written as json-c writes one: '/' escaped, \u only for the
 * control characters json-c does not write as \b \f \n \r \t (lowercase hex), other bytes as they
 * are. *escaped tells whether it holds a backslash.
 */
static int scan_string(scan_t *sc, int *escaped)
{
    *escaped = 0;
    sc->p++;
    while (sc->p < sc->end) {
        /* Most bytes are plain: skip them with one table lookup each (this loop is most of the scan). */
        while (sc->p < sc->end && !string_special[(unsigned char)*sc->p])
            sc->p++;
        if (sc->p == sc->end)
            break;
        unsigned char c = (unsigned char)*sc->p++;
        if (c == '"')
            return 0;
        if (c < 0x20 || c == '/')
            return -1;
        if (c != '\\')
            continue;
        *escaped = 1;
        if (sc->p == sc->end)
            return -1;
        c = (unsigned char)*sc->p++;
        if (c == 'u') {
            if (sc->end - sc->p < 4 || memcmp(sc->p, "00", 2) != 0 || (sc->p[2] != '0' && sc->p[2] != '1') ||
                !is_digit_or_lower_hex(sc->p[3]))
                return -1;
            int code = (sc->p[2] - '0') * 16 + (is_digit(sc->p[3]) ? sc->p[3] - '0' : sc->p[3] - 'a' + 10);
            if (code == '\b' || code == '\t' || code == '\n' || code == '\f' || code == '\r')
                return -1;
            sc->p += 4;
        } else if (c == '\0' || strchr("\"\\/bfnrt", c) == NULL) {
            return -1;
        }
    }
    return -1;
}

static int scan_number(scan_t *sc, json_type *type)
{
    const char *start;
    int negative = *sc->p == '-';
    *type = json_type_int;
    if (negative)
        sc->p++;
    start = sc->p;
    if (sc->p < sc->end && *sc->p == '0') {
        sc->p++;
    } else {
        while (sc->p < sc->end && is_digit(*sc->p))
            sc->p++;
    }
    if (sc->p == start || sc->p - start > SCAN_MAX_DIGITS)
        return -1;
    if (sc->p < sc->end && *sc->p == '.') {
        *type = json_type_double;
        start = ++sc->p;
        while (sc->p < sc->end && is_digit(*sc->p))
            sc->p++;
        if (sc->p == start || sc->p - start > SCAN_MAX_DIGITS)
            return -1;
    }
    if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E'))
        return -1;
    if (*type == json_type_int && negative && *start == '0')
        return -1; /* json-c writes -0 as 0 */
    return 0;
}

static int scan_literal(scan_t *sc, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, word, n) != 0)
        return -1;
    sc->p += n;
    return 0;
}

/*
 * One value at sc->p, with no whitespace inside (json-c's plain form). When members is not NULL and
 * the value is an object, its members named sc->keys[k] are recorded in members[k] (which the caller
 * has cleared).
 */
static int scan_value(scan_t *sc, json_type *type, bff_json_span_t *members)
{
    int escaped;
    if (sc->p == sc->end)
        return -1;
    switch (*sc->p) {
    case '{':
    case '[': {
        int is_object = *sc->p == '{';
        char close = is_object ? '}' : ']';
        *type = is_object ? json_type_object : json_type_array;
        if (++sc->depth > SCAN_MAX_DEPTH)
            return -1;
        sc->p++;
        if (sc->p < sc->end && *sc->p == close) {
            sc->p++;
            sc->depth--;
            return 0;
        }
        /* json-c keeps one member per name: text with a repeated name would not pass on unchanged. */
        struct {
            const char *text;
            size_t len;
        } seen[SCAN_MAX_MEMBERS];
        size_t nseen = 0;
        for (;;) {
            const char *name = NULL;
            size_t name_len = 0;
            if (is_object) {
                if (sc->p == sc->end || *sc->p != '"' || nseen == SCAN_MAX_MEMBERS)
                    return -1;
                name = sc->p + 1;
                if (scan_string(sc, &escaped) != 0 || escaped)
                    return -1; /* an escaped name could spell another: json-c decides */
                name_len = (size_t)(sc->p - 1 - name);
                for (size_t i = 0; i < nseen; i++)
                    if (seen[i].len == name_len && memcmp(seen[i].text, name, name_len) == 0)
                        return -1;
                seen[nseen].text = name;
                seen[nseen].len = name_len;
                nseen++;
                if (sc->p == sc->end || *sc->p != ':')
                    return -1;
                sc->p++;
            }
            bff_json_span_t v = {.text = sc->p};
            if (scan_value(sc, &v.type, NULL) != 0)
                return -1;
            v.len = (size_t)(sc->p - v.text);
            if (name != NULL && members != NULL)
                for (size_t k = 0; k < sc->nkeys; k++)
                    if (sc->key_len[k] == name_len && memcmp(name, sc->keys[k], name_len) == 0)
                        members[k] = v;
            if (sc->p == sc->end)
                return -1;
            if (*sc->p == close) {
                sc->p++;
                sc->depth--;
                return 0;
            }
            if (*sc->p != ',')
                return -1;
            sc->p++;
        }
    }
    case '"':
        *type = json_type_string;
        return scan_string(sc, &escaped);
    case 't':
        *type = json_type_boolean;
        return scan_literal(sc, "true");
    case 'f':
        *type = json_type_boolean;
        return scan_literal(sc, "false");
    case 'n':
        *type = json_type_null;
        return scan_literal(sc, "null");
    default:
        if (*sc->p == '-' || is_digit(*sc->p))
            return scan_number(sc, type);
        return -1;
    }
}

int bff_json_scan(const char *text, size_t len, const char *key, bff_json_span_t *whole,
                  bff_json_span_t *member)
{
    scan_t sc;
    bff_json_span_t none = {.text = NULL}, ignored;

    if (member == NULL)
        member = &ignored;
    *member = none;
    scan_init(&sc, text, len, &key, key != NULL);
    skip_ws(&sc);
    whole->text = sc.p;
    /* json-c's parser, given the exact length, does not finish a number or literal at the very end
     * (it waits for more): such an answer counts as malformed, and json-c is left to say so. */
    if (sc.p == sc.end || (*sc.p != '{' && *sc.p != '[' && *sc.p != '"'))
        goto fail;
    if (scan_value(&sc, &whole->type, member) != 0)
        goto fail;
    whole->len = (size_t)(sc.p - whole->text);
    skip_ws(&sc);
    if (sc.p != sc.end)
        goto fail;
    return 0;

fail:
    *whole = none;
    *member = none;
    return -1;
}

int bff_json_fields(const char *text, size_t len, const char *const *keys, size_t nkeys,
                    bff_json_span_t *fields)
{
    scan_t sc;
    json_type type;

    if (scan_init(&sc, text, len, keys, nkeys) != 0)
        return -1;
    memset(fields, 0, nkeys * sizeof(*fields));
    skip_ws(&sc);
    if (sc.p == sc.end || *sc.p != '{' || scan_value(&sc, &type, fields) != 0)
        goto fail;
    skip_ws(&sc);
    if (sc.p != sc.end)
        goto fail;
    return 0;

fail:
    memset(fields, 0, nkeys * sizeof(*fields));
    return -1;
}

long bff_json_items(const char *text, size_t len, const char *const *keys, size_t nkeys,
                    bff_json_item_t *items, size_t max)
{
    scan_t sc;
    size_t n = 0;

    if (scan_init(&sc, text, len, keys, nkeys) != 0)
        return -1;
    skip_ws(&sc);
    if (sc.p == sc.end || *sc.p != '[')
        return -1;
    sc.p++;
    sc.depth = 1; /* the array's own level, as when bff_json_scan() starts with it */
    if (sc.p < sc.end && *sc.p == ']') {
        sc.p++;
    } else {
        for (;;) {
            if (n == max || sc.p == sc.end || *sc.p != '{')
                return -1;
            bff_json_item_t *it = &items[n++];
            memset(it, 0, sizeof(*it));
            it->whole.text = sc.p;
            if (scan_value(&sc, &it->whole.type, it->field) != 0)
                return -1;
            it->whole.len = (size_t)(sc.p - it->whole.text);
            if (sc.p == sc.end)
                return -1;
            if (*sc.p == ']') {
                sc.p++;
                break;
            }
            if (*sc.p != ',')
                return -1;
            sc.p++;
        }
    }
    skip_ws(&sc);
    if (sc.p != sc.end)
        return -1;
    return (long)n;
}

int64_t bff_span_id(const bff_json_span_t *v)
{
    int64_t n = 0;
    if (v->text == NULL || v->type != json_type_int)
        return 0;
    /* The scanner let through at most SCAN_MAX_DIGITS digits: no overflow. */
    for (size_t i = v->text[0] == '-'; i < v->len; i++)
        n = n * 10 + (v->text[i] - '0');
    return v->text[0] == '-' ? -n : n;
}

int bff_span_str(const bff_json_span_t *v, const char **s, size_t *len)
{
    *s = "";
    *len = 0;
    if (v->text == NULL || v->type != json_type_string)
        return 0;
    if (memchr(v->text, '\\', v->len) != NULL)
        return -1;
    *s = v->text + 1;
    *len = v->len - 2;
    return 0;
}

/* ---- fan-out ---- */

/* An upstream answer's JSON (bodies are at most the client's max_response_bytes), or NULL. */
static json_object *parse_body(const char *body, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(LS_JSON_MAX_DEPTH);
    if (tok == NULL)
        return NULL;
    json_object *obj = json_tokener_parse_ex(tok, body, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(obj);
        obj = NULL;
    }
    json_tokener_free(tok);
    return obj;
}

static void part_fail(bff_part_t *p, int status, const char *detail)
{
    p->finished = 1;
    p->ok = 0;
    p->unavailable = 1;
    p->status = status;
    snprintf(p->detail, sizeof(p->detail), "%s", detail);
}

static void fanout_finish(bff_fanout_t *f)
{
    ls_req_t *r = f->r;
    f->done = 1;
    ls_timer_stop(ls_worker_loop(r->worker), &f->timer);
    for (size_t i = 0; i < f->nparts; i++)
        if (!f->parts[i].finished)
            part_fail(&f->parts[i], 504, "deadline exceeded");
    f->cb(r, f);
    for (size_t i = 0; i < f->nparts; i++) {
        json_object_put(f->parts[i].json);
        f->parts[i].json = NULL;
    }
}

static void part_settled(bff_fanout_t *f)
{
    if (--f->pending == 0 && !f->done)
        fanout_finish(f);
}

static void on_deadline(ls_timer_t *t)
{
    bff_fanout_t *f = (bff_fanout_t *)((char *)t - offsetof(bff_fanout_t, timer));
    if (!f->done)
        fanout_finish(f);
}

/* The problem's detail from an upstream error answer, else a generic sentence. */
static void take_detail(bff_part_t *p, const ls_http_response_t *resp)
{
    json_object *d;
    if (p->json != NULL && json_object_object_get_ex(p->json, "detail", &d) &&
        json_object_is_type(d, json_type_string))
        snprintf(p->detail, sizeof(p->detail), "%s", json_object_get_string(d));
    else
        snprintf(p->detail, sizeof(p->detail), "%s-service answered %d", names[p->up], resp->status);
}

static void on_part(ls_req_t *r, const ls_http_response_t *resp, void *ud)
{
    bff_part_t *p = ud;
    bff_fanout_t *f = p->fanout;

    bff_upstream_release(p->up, resp);
    if (f->done) /* answered already (deadline): nobody reads this part any more */
        return;
    p->finished = 1;
    if (resp->outcome != LS_HTTP_OK) {
        part_fail(p, resp->outcome == LS_HTTP_TIMEOUT ? 504 : 503, resp->error ? resp->error : "no answer");
        part_settled(f);
        return;
    }
    p->status = resp->status;
    p->ok = resp->status >= 200 && resp->status < 300;
    p->unavailable = resp->status >= 500;
    int is_json =
        resp->body_len > 0 && resp->content_type != NULL && strstr(resp->content_type, "json") != NULL;
    if (f->keep_raw || p->pass_through) {
        p->raw = ls_req_strdup(r, resp->body, resp->body_len);
        p->raw_len = resp->body_len;
        if (resp->content_type != NULL)
            p->content_type = ls_req_strdup(r, resp->content_type, strlen(resp->content_type));
    }
    /* Building json-c objects was most of the BFF's work per view: a body passed on unread is only
     * checked, in the copy the view will splice from. */
    if (is_json && p->pass_through && p->ok &&
        bff_json_scan(p->raw, p->raw_len, p->pass_member, &p->whole, &p->member) == 0) {
        p->raw_json = 1;
    } else if (is_json) {
        p->json = parse_body(resp->body, resp->body_len);
    }
    if (!p->ok)
        take_detail(p, resp);
    part_settled(f);
}

bff_fanout_t *bff_fanout_new(ls_req_t *r, void *ud)
{
    bff_fanout_t *f = ls_req_alloc(r, sizeof(*f));
    memset(f, 0, sizeof(*f));
    f->r = r;
    f->ud = ud;
    ls_timer_init(&f->timer, on_deadline);
    return f;
}

bff_part_t *bff_fanout_add(bff_fanout_t *f, bff_upstream_id_t up, const char *method, const char *path,
                           const char *body, size_t body_len)
{
    if (f->nparts == BFF_FANOUT_MAX_PARTS)
        return NULL;
    bff_part_t *p = &f->parts[f->nparts++];
    p->fanout = f;
    p->up = up;
    p->method = method;
    p->path = path;
    p->body = body;
    p->body_len = body_len;
    p->raw = "";
    return p;
}

void bff_fanout_start(bff_fanout_t *f, bff_fanout_cb done)
{
    ls_req_t *r = f->r;
    const char *why;

    f->cb = done;
    /* One extra count while starting, so that parts failing at once cannot finish the fan-out
     * before every part has been started. */
    f->pending = f->nparts + 1;
    for (size_t i = 0; i < f->nparts; i++) {
        bff_part_t *p = &f->parts[i];
        if (ls_now_ms() >= r->deadline) {
            part_fail(p, 504, "deadline exceeded before the call");
            f->pending--;
        } else if (bff_upstream_acquire(p->up, &why) != 0) {
            part_fail(p, 503, why);
            f->pending--;
        } else {
            ls_req_http_ex(r, names[p->up], cfg.base_url[p->up], p->method, p->path, p->body, p->body_len,
                           NULL, on_part, p);
        }
    }
    /* The http client ends every call by the deadline; this is the backstop, a little later so that a
     * call's own timeout is normally what ends it (and is counted by the breaker). */
    if (f->pending > 1)
        ls_timer_start_at(ls_worker_loop(r->worker), &f->timer, r->deadline + DEADLINE_GRACE_MS);
    part_settled(f);
}

json_object *bff_part_json(const bff_part_t *p, json_object **owned)
{
    *owned = NULL;
    if (!p->raw_json)
        return p->json;
    return *owned = parse_body(p->raw, p->raw_len);
}

json_object *bff_part_error(const bff_part_t *p)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "service", json_object_new_string(names[p->up]));
    json_object_object_add(e, "status", json_object_new_int(p->status));
    json_object_object_add(e, "detail", json_object_new_string(p->detail));
    return e;
}
