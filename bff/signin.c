/* POST /api/auth/telegram: creates or updates the caller in auth-service from initData. A first
 * sign-in's `registration` notification is auth-service's: it queues it in its outbox in the
 * transaction that creates the user (services/auth/auth.h). */
#include "bff.h"

#include <stdio.h>

static void add_str(json_object *obj, const char *key, const char *value)
{
    if (value[0] != '\0')
        json_object_object_add(obj, key, json_object_new_string(value));
}

static void on_user_put(ls_req_t *r, bff_fanout_t *f)
{
    const bff_part_t *p = &f->parts[0];

    if (p->unavailable)
        return bff_reply_upstream_failure(r, p);
    /* auth-service's answer is already {"user": …, "created": …}; its 4xx answers pass as they are. */
    ls_reply_raw(r, p->status, p->content_type, p->raw, p->raw_len);
}

void bff_signin(ls_req_t *r)
{
    bff_req_t *st = r->state;
    const tma_user_t *u = &st->caller;
    char *path = ls_req_alloc(r, 32);
    json_object *body = json_object_new_object();
    size_t len;

    snprintf(path, 32, "/users/%lld", (long long)u->telegram_id);
    /* first_name is required by auth-service; an empty one gets its 400, passed through. */
    json_object_object_add(body, "first_name", json_object_new_string(u->first_name));
    add_str(body, "last_name", u->last_name);
    add_str(body, "username", u->username);
    add_str(body, "language_code", u->language_code);
    add_str(body, "photo_url", u->photo_url);
    const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
    char *copy = ls_req_strdup(r, text, len);
    json_object_put(body);

    bff_fanout_t *f = bff_fanout_new(r, NULL);
    f->keep_raw = 1;
    bff_fanout_add(f, BFF_UP_AUTH, "PUT", path, copy, len);
    bff_fanout_start(f, on_user_put);
}
