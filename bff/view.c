/* What every view uses: reading the services' answers (also in batches and pages), and writing and
 * sending its own. See bff.h. */
#include "bff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void bff_format_time(time_t t, char *out, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void bff_format_now(char *out, size_t size)
{
    bff_format_time(time(NULL), out, size);
}

json_object *bff_member(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (obj != NULL && json_object_is_type(obj, json_type_object))
        json_object_object_get_ex(obj, key, &v);
    return v;
}

int64_t bff_id_of(json_object *obj, const char *key)
{
    json_object *v = bff_member(obj, key);
    return v != NULL && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
}

const char *bff_str_of(json_object *obj, const char *key)
{
    json_object *v = bff_member(obj, key);
    return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

ls_role_t bff_role_of(json_object *user)
{
    const char *role = bff_str_of(user, "role");
    return ls_role_parse(role, strlen(role));
}

/* The array under key (e.g. "groups" of a list answer), or NULL. */
json_object *bff_list_of(json_object *answer, const char *key)
{
    json_object *v = bff_member(answer, key);
    if (v == NULL && answer != NULL && json_object_is_type(answer, json_type_array))
        v = answer;
    return v != NULL && json_object_is_type(v, json_type_array) ? v : NULL;
}

void bff_span_value(ls_req_t *r, const bff_json_span_t *v, const char **s, size_t *len)
{
    if (bff_span_str(v, s, len) == 0)
        return;
    char *out = ls_req_alloc(r, v->len);
    *len = bff_span_unescape(v, out);
    *s = out;
}

void bff_add_header(ls_req_t *r, const char *name, const char *value)
{
    if (r->h2o == NULL)
        return;
    h2o_add_header_by_str(&r->h2o->pool, &r->h2o->res.headers, name, strlen(name), 0, NULL, value,
                          strlen(value));
}

void bff_reply_upstream_failure(ls_req_t *r, const bff_part_t *p)
{
    int status = p->status;
    /* Errors of a service are the gateway's 502; "unavailable" and "too slow" keep their meaning. */
    if (status != 503 && status != 504)
        status = 502;
    ls_reply_problem(r, status, "%s-service: %s", bff_upstream_name(p->up), p->detail);
}

void bff_text_reply(ls_req_t *r, ls_text_t *t, json_object *errors, ls_metrics_view_t view)
{
    int partial = json_object_array_length(errors) > 0;
    for (size_t i = 0; LS_METRICS && i < json_object_array_length(errors); i++)
        ls_metrics_bff_partial(
            view, ls_metrics_target(bff_str_of(json_object_array_get_idx(errors, i), "service")));
    if (partial)
        ls_text_lit(t, ",\"partial\":true,\"errors\":");
    else
        ls_text_lit(t, ",\"partial\":false,\"errors\":");
    ls_text_json(t, errors);
    ls_text_lit(t, "}");
    if (t->failed) {
        ls_reply_problem(r, 503, "out of memory");
    } else {
        if (partial)
            bff_add_header(r, "x-partial", "true");
        ls_reply_raw(r, 200, "application/json", t->buf, t->len);
    }
    ls_text_free(t);
}

/* ---- lists without silent caps ---- */

size_t bff_fanout_batches(bff_fanout_t *f, bff_upstream_id_t up, const char *prefix, const char *const *ids,
                          size_t n)
{
    size_t parts = 0;
    for (size_t b = 0; b < n; b += BFF_BATCH_MAX) {
        size_t end = n - b < BFF_BATCH_MAX ? n : b + BFF_BATCH_MAX, size = strlen(prefix) + 1;
        for (size_t i = b; i < end; i++)
            size += strlen(ids[i]) + 1;
        char *path = ls_req_alloc(f->r, size);
        size_t o = (size_t)sprintf(path, "%s", prefix);
        for (size_t i = b; i < end; i++)
            o += (size_t)sprintf(path + o, "%s%s", i > b ? "," : "", ids[i]);
        if (bff_fanout_add(f, up, "GET", path, NULL, 0) == NULL)
            break;
        parts++;
    }
    return parts;
}

static int keyed_cmp(const void *a, const void *b)
{
    const bff_keyed_t *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return strcmp(x->str != NULL ? x->str : "", y->str != NULL ? y->str : "");
}

void bff_index_add(ls_req_t *r, bff_index_t *ix, json_object *list, const char *key)
{
    size_t len = list != NULL ? json_object_array_length(list) : 0;
    if (ix->n + len > ix->cap) {
        size_t cap = 2 * (ix->n + len);
        bff_keyed_t *v = ls_req_alloc(r, cap * sizeof(*v));
        if (ix->n > 0)
            memcpy(v, ix->v, ix->n * sizeof(*v));
        ix->v = v;
        ix->cap = cap;
    }
    for (size_t i = 0; i < len; i++) {
        json_object *o = json_object_array_get_idx(list, i), *k = bff_member(o, key);
        bff_keyed_t *e = &ix->v[ix->n];
        if (k != NULL && json_object_is_type(k, json_type_int))
            *e = (bff_keyed_t){.id = json_object_get_int64(k), .obj = o};
        else if (k != NULL && json_object_is_type(k, json_type_string))
            *e = (bff_keyed_t){.str = json_object_get_string(k), .obj = o};
        else
            continue;
        ix->n++;
        ix->sorted = 0;
    }
}

const bff_part_t *bff_index_parts(ls_req_t *r, bff_index_t *ix, const bff_part_t *parts, size_t n,
                                  const char *list, const char *key)
{
    const bff_part_t *failed = NULL;
    for (size_t i = 0; i < n; i++) {
        json_object *l = parts[i].ok ? bff_list_of(parts[i].json, list) : NULL;
        if (l == NULL && failed == NULL)
            failed = &parts[i];
        bff_index_add(r, ix, l, key);
    }
    return failed;
}

static json_object *index_find(bff_index_t *ix, const bff_keyed_t *want)
{
    if (ix->n == 0)
        return NULL;
    if (!ix->sorted) {
        qsort(ix->v, ix->n, sizeof(ix->v[0]), keyed_cmp);
        ix->sorted = 1;
    }
    const bff_keyed_t *e = bsearch(want, ix->v, ix->n, sizeof(ix->v[0]), keyed_cmp);
    return e != NULL ? e->obj : NULL;
}

json_object *bff_index_id(bff_index_t *ix, int64_t id)
{
    return index_find(ix, &(bff_keyed_t){.id = id});
}

json_object *bff_index_str(bff_index_t *ix, const char *s)
{
    return index_find(ix, &(bff_keyed_t){.str = s});
}

int bff_add_list(ls_text_t *t, const bff_part_t *p, size_t shown)
{
    const bff_json_span_t *v = bff_part_list(p);
    if (v == NULL) {
        ls_text_lit(t, "null");
        return 0;
    }
    if (p->nitems <= (long)shown) {
        ls_text_add(t, v->text, v->len);
        return 0;
    }
    /* The first `shown` items as they were written: from the first's start to the last's end. */
    const bff_json_span_t *first = &p->items[0].whole, *last = &p->items[shown - 1].whole;
    ls_text_lit(t, "[");
    ls_text_add(t, first->text, (size_t)(last->text + last->len - first->text));
    ls_text_lit(t, "]");
    return 1;
}

void bff_text_truncated(ls_text_t *t, const char *const *names, const int *cut, size_t n)
{
    ls_text_lit(t, ",\"truncated\":{");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            ls_text_lit(t, ",");
        ls_text_str(t, names[i], strlen(names[i]));
        if (cut[i])
            ls_text_lit(t, ":true");
        else
            ls_text_lit(t, ":false");
    }
    ls_text_lit(t, "}");
}
