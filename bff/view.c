/* What every view uses: reading the services' answers, and writing and sending its own. See bff.h. */
#include "bff.h"

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
