/* batch: POST /batch — the items made into requests of their own, their answers gathered in order. */
#include "batch.h"

#include <stdio.h>
#include <string.h>

#include "body.h"
#include "front.h"
#include "text.h"

typedef struct batch batch_t;

struct ls_batch_item {
    batch_t *batch;
    ls_req_t *r; /* the item's request, NULL when it could not be made */
    int status;
    const char *body; /* the answer's JSON (the batch's memory), NULL: none */
    size_t len;
};

struct batch {
    ls_req_t *r; /* the POST /batch; the batch holds a reference until it has answered */
    size_t n, pending;
    ls_batch_item_t items[];
};

/* Every item has answered: the batch answers, then lets its items and itself go. */
static void batch_finish(batch_t *b)
{
    ls_text_t t = {0};
    char head[64];
    ls_text_lit(&t, "{\"responses\":[");
    for (size_t i = 0; i < b->n; i++) {
        ls_batch_item_t *it = &b->items[i];
        ls_text_add(&t, head,
                    (size_t)snprintf(head, sizeof(head), "%s{\"status\":%d,\"length\":%zu,\"body\":",
                                     i ? "," : "", it->status, it->body != NULL ? it->len : 4));
        if (it->body != NULL)
            ls_text_add(&t, it->body, it->len);
        else
            ls_text_lit(&t, "null");
        ls_text_lit(&t, "}");
    }
    ls_text_lit(&t, "]}");
    if (t.failed)
        ls_reply_problem_str(b->r, 503, "out of memory");
    else
        ls_reply_raw(b->r, 200, "application/json", t.buf, t.len);
    ls_text_free(&t);
    for (size_t i = 0; i < b->n; i++) {
        ls_req_t *ir = b->items[i].r;
        if (ir != NULL) {
            ir->item = NULL; /* a late reply (there should be none) now goes nowhere */
            ls_req_unref(ir);
        }
    }
    ls_req_unref(b->r); /* b lives in its memory: the last thing done with it */
}

static void batch_settled(batch_t *b)
{
    if (--b->pending == 0)
        batch_finish(b);
}

void ls_batch_item_reply(ls_batch_item_t *item, int status, const char *content_type, const char *body,
                         size_t len)
{
    batch_t *b = item->batch;
    item->status = status;
    if (len > 0 && content_type != NULL && strstr(content_type, "json") != NULL) {
        item->body = ls_req_strdup(b->r, body, len);
        item->len = len;
    }
    batch_settled(b);
}

/* ---- the request ---- */

/* The optional members of an item and the headers they stand for. */
static const struct {
    const char *member, *header;
    json_type type;
} item_headers[] = {
    {"actor", "x-actor-telegram-id", json_type_int},  {"role", "x-actor-role", json_type_string},
    {"request_id", "x-request-id", json_type_string}, {"traceparent", "traceparent", json_type_string},
    {"deadline_ms", "x-deadline-ms", json_type_int},
};
#define NITEM_HEADERS (sizeof(item_headers) / sizeof(item_headers[0]))

/* NULL when item i of the body is well-formed, else why not (in err). */
static const char *item_error(json_object *item, size_t i, char *err, size_t errlen)
{
    json_object *v;
    if (!json_object_is_type(item, json_type_object)) {
        snprintf(err, errlen, "requests[%zu] must be an object", i);
        return err;
    }
    if (!json_object_object_get_ex(item, "path", &v) || !json_object_is_type(v, json_type_string) ||
        json_object_get_string_len(v) < 1 || json_object_get_string(v)[0] != '/' ||
        json_object_get_string_len(v) > LS_BATCH_PATH_MAX) {
        snprintf(err, errlen, "requests[%zu].path must be a path starting with '/' of at most %d bytes", i,
                 LS_BATCH_PATH_MAX);
        return err;
    }
    for (size_t k = 0; k < NITEM_HEADERS; k++)
        if (json_object_object_get_ex(item, item_headers[k].member, &v) &&
            !json_object_is_type(v, item_headers[k].type)) {
            snprintf(err, errlen, "requests[%zu].%s must be %s", i, item_headers[k].member,
                     item_headers[k].type == json_type_int ? "an integer" : "a string");
            return err;
        }
    return NULL;
}

/* The requests array of a well-formed body, else NULL with why not in err. */
static json_object *requests_or_error(json_object *body, char *err, size_t errlen)
{
    json_object *list;
    if (!json_object_object_get_ex(body, "requests", &list) || !json_object_is_type(list, json_type_array)) {
        snprintf(err, errlen, "the body must be {\"requests\":[…]}");
        return NULL;
    }
    size_t n = json_object_array_length(list);
    if (n > LS_BATCH_MAX_ITEMS) {
        snprintf(err, errlen, "at most %d requests in a batch, not %zu", LS_BATCH_MAX_ITEMS, n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (item_error(json_object_array_get_idx(list, i), i, err, errlen) != NULL)
            return NULL;
    return list;
}

/* Item i as a request of its own, served; its answer comes back through ls_batch_item_reply(). */
static void item_start(batch_t *b, size_t i, json_object *item)
{
    ls_batch_item_t *it = &b->items[i];
    json_object *v;
    json_object_object_get_ex(item, "path", &v);
    it->batch = b;
    it->r = ls_req_new_item(b->r->worker, b->r->daemon, it, json_object_get_string(v),
                            (size_t)json_object_get_string_len(v));
    if (it->r == NULL) {
        it->status = 503;
        batch_settled(b);
        return;
    }
    ls_req_t *ir = it->r;
    if (b->r->deadline < ir->deadline)
        ir->deadline = b->r->deadline;
    for (size_t k = 0; k < NITEM_HEADERS; k++) {
        if (!json_object_object_get_ex(item, item_headers[k].member, &v))
            continue;
        char num[24];
        const char *val = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        if (item_headers[k].type == json_type_int)
            len = (size_t)snprintf(num, sizeof(num), "%lld", (long long)json_object_get_int64(v)), val = num;
        h2o_add_header_by_str(&ir->pool, &ir->item_headers, item_headers[k].header,
                              strlen(item_headers[k].header), 0, NULL, ls_req_strdup(ir, val, len), len);
    }
    ls_front_serve_item(ir);
    ls_req_unref(ir); /* the caller's reference; the batch keeps its own until it has answered */
}

void ls_batch_serve(ls_req_t *r)
{
    char err[160];
    h2o_iovec_t e = ls_req_entity(r);
    json_object *body = ls_json_parse_object(e.base, e.len, err, sizeof(err));
    if (body == NULL)
        return ls_reply_problem_str(r, 400, err);
    json_object *list = requests_or_error(body, err, sizeof(err));
    if (list == NULL) {
        json_object_put(body);
        return ls_reply_problem_str(r, 400, err);
    }
    size_t n = json_object_array_length(list);
    batch_t *b = ls_req_alloc(r, sizeof(*b) + n * sizeof(b->items[0]));
    memset(b, 0, sizeof(*b) + n * sizeof(b->items[0]));
    b->r = r;
    b->n = n;
    b->pending = n + 1; /* one more while starting: items that answer at once cannot end the batch early */
    ls_req_ref(r);
    for (size_t i = 0; i < n; i++)
        item_start(b, i, json_object_array_get_idx(list, i));
    json_object_put(body);
    batch_settled(b);
}
