/* POST /api/auth/telegram: creates or updates the caller in auth-service from initData; a first
 * sign-in also creates a `registration` notification. */
#include "bff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <log.h>

/* A registration notification outlives the sign-in request: it is sent after the answer. */
typedef struct {
    char request_id[LS_REQUEST_ID_MAX + 1];
    char trace_id[LS_TRACE_ID_LEN + 1];
    int64_t telegram_id;
} registration_t;

static void add_str(json_object *obj, const char *key, const char *value)
{
    if (value[0] != '\0')
        json_object_object_add(obj, key, json_object_new_string(value));
}

/* Telegram sends IETF tags ("pt-br"); templates are per ISO 639 code, so only those are passed on. */
static int is_language_code(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 3)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 'a' || s[i] > 'z')
            return 0;
    return 1;
}

static void on_registration_sent(void *ud, const ls_http_response_t *resp)
{
    registration_t *reg = ud;
    bff_upstream_release(BFF_UP_NOTIFICATION, resp);
    if (resp->outcome != LS_HTTP_OK || resp->status >= 300) {
        ls_log_line_t l;
        ls_log_ctx_t ctx = {reg->request_id, reg->trace_id};
        if (ls_log_begin(&l, LS_LOG_WARN, &ctx, "registration notification not created")) {
            ls_log_int(&l, "telegram_id", reg->telegram_id);
            ls_log_int(&l, "status", resp->status);
            ls_log_str(&l, "error", resp->error);
            ls_log_end(&l);
        }
    }
    free(reg);
}

static void send_registration(ls_req_t *r, const tma_user_t *u)
{
    const bff_config_t *c = ls_req_config(r);
    registration_t *reg = NULL;
    json_object *body = NULL;
    const char *why = "out of memory";
    char key[48];

    if (bff_upstream_acquire(BFF_UP_NOTIFICATION, &why) != 0)
        goto fail;
    if ((reg = malloc(sizeof(*reg))) == NULL) {
        ls_http_response_t none = {.outcome = LS_HTTP_ERROR, .body = ""};
        bff_upstream_release(BFF_UP_NOTIFICATION, &none);
        goto fail;
    }
    snprintf(reg->request_id, sizeof(reg->request_id), "%s", r->request_id);
    memcpy(reg->trace_id, r->trace.trace_id, sizeof(reg->trace_id));
    reg->telegram_id = u->telegram_id;
    snprintf(key, sizeof(key), "registration:%lld", (long long)u->telegram_id);

    body = json_object_new_object();
    json_object *params = json_object_new_object();
    add_str(params, "first_name", u->first_name);
    json_object_object_add(body, "recipient_telegram_id", json_object_new_int64(u->telegram_id));
    json_object_object_add(body, "type", json_object_new_string("registration"));
    json_object_object_add(body, "params", params);
    if (is_language_code(u->language_code))
        add_str(body, "language_code", u->language_code);
    size_t len;
    const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
    ls_http_request_t spec = {
        .target = bff_upstream_name(BFF_UP_NOTIFICATION),
        .base_url = bff_upstream_url(BFF_UP_NOTIFICATION),
        .method = "POST",
        .path = "/notifications",
        .body = text,
        .body_len = len,
        .request_id = r->request_id,
        .traceparent = ls_req_traceparent(r),
        .actor = u->telegram_id,
        .idempotency_key = key,
        .deadline = ls_now_ms() + (uint64_t)c->deadline_ms,
    };
    /* The client calls back even when its worker shuts down first, so reg is always freed. */
    if (ls_http_send(ls_worker_http(r->worker), &spec, on_registration_sent, reg) != 0) {
        ls_http_response_t none = {.outcome = LS_HTTP_ERROR, .body = "", .error = "could not send"};
        on_registration_sent(reg, &none);
    }
    json_object_put(body);
    return;
fail:
    ls_logf(LS_LOG_WARN, &r->log, "registration notification not sent: %s", why);
}

static void on_user_put(ls_req_t *r, bff_fanout_t *f)
{
    bff_req_t *st = r->state;
    const bff_part_t *p = &f->parts[0];
    json_object *created;

    if (p->unavailable)
        return bff_reply_upstream_failure(r, p);
    if (p->ok && json_object_object_get_ex(p->json, "created", &created) && json_object_get_boolean(created))
        send_registration(r, &st->caller);
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
