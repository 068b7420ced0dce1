/* payment-service: a group as groups-service describes it — price, status, seats and membership. */
#include "payment.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    group_info_cb cb;
    group_info_t info;
} fetch_t;

static const char *str_field(json_object *obj, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return "";
    return json_object_get_string(v);
}

static int bool_field(json_object *obj, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(obj, key, &v) && json_object_get_boolean(v);
}

static void read_group(group_info_t *g, json_object *obj)
{
    json_object *v;
    g->ok = 1;
    g->found = 1;
    g->active = strcmp(str_field(obj, "status"), "active") == 0;
    g->is_member = bool_field(obj, "is_member");
    int64_t capacity = 0, count = 0;
    if (json_object_object_get_ex(obj, "capacity", &v))
        capacity = json_object_get_int64(v);
    if (json_object_object_get_ex(obj, "member_count", &v))
        count = json_object_get_int64(v);
    g->full = count >= capacity;
    g->price = -1;
    if (json_object_object_get_ex(obj, "price", &v) && v != NULL &&
        (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))) {
        double d = json_object_get_double(v);
        if (d >= 1 && d <= PAYMENT_AMOUNT_MAX && (double)(long long)d == d)
            g->price = (long long)d;
    }
    g->is_free = bool_field(obj, "is_free") || !json_object_object_get_ex(obj, "price", &v) || v == NULL;
    snprintf(g->title, sizeof(g->title), "%s", str_field(obj, "title"));
    snprintf(g->description, sizeof(g->description), "%s", str_field(obj, "description"));
}

static void on_group(ls_req_t *r, const ls_http_response_t *resp, void *ud)
{
    fetch_t *f = ud;
    group_info_t *g = &f->info;
    if (resp->outcome == LS_HTTP_OK && resp->status == 404) {
        g->ok = 1;
    } else if (resp->outcome == LS_HTTP_OK && resp->status == 200) {
        json_object *obj = json_tokener_parse(resp->body);
        if (obj != NULL && json_object_is_type(obj, json_type_object))
            read_group(g, obj);
        json_object_put(obj);
    }
    f->cb(r, g);
}

void group_info_fetch(ls_req_t *r, const char *group_id, const char *member, group_info_cb cb)
{
    const payment_config_t *cfg = ls_req_config(r);
    fetch_t *f = ls_req_alloc(r, sizeof(*f));
    memset(f, 0, sizeof(*f));
    f->cb = cb;
    char path[128];
    if (member != NULL)
        snprintf(path, sizeof(path), "/groups/%s?member_id=%s", group_id, member);
    else
        snprintf(path, sizeof(path), "/groups/%s", group_id);
    ls_req_http_ex(r, "groups", cfg->groups_url, "GET", path, NULL, 0, NULL, on_group, f);
}
