#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "log.h"
#include "migrate.h"
#include "outbox.h"
#include "rows.h"

#define LISTEN_BACKLOG    1024
#define READYZ_TIMEOUT_MS 1000

struct ls_worker {
    const ls_daemon_t *daemon;
    int index;
    pthread_t thread;
    ls_loop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    int listen_fds[LS_CFG_LISTEN_MAX]; /* one per LISTEN address; -1 once handed to h2o */
    h2o_socket_t *listeners[LS_CFG_LISTEN_MAX];
    int nlisteners;
    h2o_socket_t *wake;
    int wake_fd;
    atomic_int stop_requested;
    int stopping;
    int pg_conns;
    ls_pg_pool_t *pg;
    ls_http_t *http;
    ls_outbox_t *outbox; /* NULL unless the daemon has one */
    size_t inflight;     /* live ls_req_t */
    int disposed;        /* its h2o context and loop were torn down at exit */
    char rid_prefix[13];
    uint64_t rid_counter;
};

typedef struct {
    h2o_handler_t super;
    const ls_daemon_t *daemon;
} front_handler_t;

/* A Unix socket bound by the main thread; workers watch dup()s of fd. */
typedef struct {
    int fd; /* -1 when not (or no longer) open */
    const char *path;
    dev_t dev; /* identity of the file we created, so that shutdown removes only ours */
    ino_t ino;
} unix_listener_t;

static h2o_globalconf_t globalconf;
/* Workers whose h2o context could not be disposed at exit; volatile so that the store is kept and
 * what they hold stays reachable for leak checkers. */
static ls_worker_t *volatile leftover_workers;

/* ---- request lifetime ---- */

static ls_worker_t *worker_of(h2o_req_t *req)
{
    return (ls_worker_t *)((char *)req->conn->ctx - offsetof(ls_worker_t, ctx));
}

static void req_ref(ls_req_t *r)
{
    r->refs++;
}

static void req_unref(ls_req_t *r)
{
    if (--r->refs > 0)
        return;
    if (r->body != NULL)
        json_object_put(r->body);
    h2o_mem_clear_pool(&r->pool);
    r->worker->inflight--;
    free(r);
}

/* h2o disposes the request's pool when the response is done or the client went away. */
static void on_h2o_pool_dispose(void *p)
{
    ls_req_t *r = *(ls_req_t **)p;
    r->h2o = NULL;
    req_unref(r);
}

void *ls_req_alloc(ls_req_t *r, size_t size)
{
    return h2o_mem_alloc_pool(&r->pool, size);
}

char *ls_req_strdup(ls_req_t *r, const char *s, size_t len)
{
    char *d = h2o_mem_alloc_pool(&r->pool, len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

void *ls_req_config(ls_req_t *r)
{
    return r->daemon->config;
}

ls_loop_t *ls_worker_loop(ls_worker_t *w)
{
    return w->loop;
}

ls_pg_pool_t *ls_worker_pg(ls_worker_t *w)
{
    return w->pg;
}

ls_http_t *ls_worker_http(ls_worker_t *w)
{
    return w->http;
}

int ls_worker_index(ls_worker_t *w)
{
    return w->index;
}

const ls_daemon_t *ls_worker_daemon(ls_worker_t *w)
{
    return w->daemon;
}

/* ---- replies ---- */

static void log_access(ls_req_t *r)
{
    ls_log_line_t l;
    ls_log_level_t level = r->status >= 500 ? LS_LOG_WARN : LS_LOG_INFO;
    if (r->h2o == NULL || !ls_log_begin(&l, level, r->request_id, "request"))
        return;
    ls_log_strn(&l, "method", r->h2o->method.base, r->h2o->method.len);
    ls_log_strn(&l, "path", r->h2o->path.base, r->h2o->path.len);
    ls_log_int(&l, "status", r->status);
    ls_log_int(&l, "duration_ms", (int64_t)(ls_now_ms() - r->started));
    ls_log_end(&l);
}

void ls_reply_raw(ls_req_t *r, int status, const char *content_type, const char *body, size_t len)
{
    if (r->status != 0)
        return;
    r->status = status;
    log_access(r);
    h2o_req_t *req = r->h2o;
    if (req == NULL)
        return;
    req->res.status = status;
    req->res.reason = ls_status_title(status);
    req->res.content_length = len;
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    size_t rid_len = strlen(r->request_id);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          h2o_strdup(&req->pool, r->request_id, rid_len).base, rid_len);
    h2o_send_inline(req, body, len);
}

void ls_reply_json(ls_req_t *r, int status, json_object *obj)
{
    size_t len;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
    ls_reply_raw(r, status, "application/json", s, len);
    json_object_put(obj);
}

void ls_reply_empty(ls_req_t *r, int status)
{
    ls_reply_raw(r, status, NULL, "", 0);
}

static void reply_problem_str(ls_req_t *r, int status, const char *detail)
{
    json_object *p = ls_problem_new(status, detail);
    size_t len;
    const char *s = json_object_to_json_string_length(p, JSON_C_TO_STRING_PLAIN, &len);
    ls_reply_raw(r, status, "application/problem+json", s, len);
    json_object_put(p);
}

void ls_reply_problem(ls_req_t *r, int status, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    reply_problem_str(r, status, detail);
}

/* ---- request input ---- */

int64_t ls_req_param_id(ls_req_t *r, const char *name)
{
    const ls_route_param_t *p = ls_route_param(&r->match, name);
    return p != NULL ? p->id : 0;
}

const char *ls_req_param_str(ls_req_t *r, const char *name)
{
    const ls_route_param_t *p = ls_route_param(&r->match, name);
    return p != NULL ? ls_req_strdup(r, p->value, p->value_len) : NULL;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

const char *ls_req_query(ls_req_t *r, const char *name)
{
    if (r->h2o == NULL || r->h2o->query_at == SIZE_MAX)
        return NULL;
    const char *q = r->h2o->path.base + r->h2o->query_at + 1;
    const char *end = r->h2o->path.base + r->h2o->path.len;
    size_t name_len = strlen(name);

    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pair_end = amp != NULL ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pair_end - q));
        const char *key_end = eq != NULL ? eq : pair_end;
        if ((size_t)(key_end - q) == name_len && memcmp(q, name, name_len) == 0) {
            const char *v = eq != NULL ? eq + 1 : pair_end;
            char *out = ls_req_alloc(r, (size_t)(pair_end - v) + 1), *o = out;
            for (; v < pair_end; v++) {
                int hi, lo;
                if (*v == '+') {
                    *o++ = ' ';
                } else if (*v == '%' && pair_end - v >= 3 && (hi = hexval(v[1])) >= 0 &&
                           (lo = hexval(v[2])) >= 0) {
                    *o++ = (char)(hi * 16 + lo);
                    v += 2;
                } else {
                    *o++ = *v;
                }
            }
            *o = '\0';
            return out;
        }
        q = pair_end + 1;
    }
    return NULL;
}

int ls_req_id_list_or_reply(ls_req_t *r, const char *name, size_t max, int64_t **ids, size_t *n,
                            const char **pg_array)
{
    const char *list = ls_req_query(r, name);
    if (list == NULL || list[0] == '\0') {
        ls_reply_problem(r, 400, "query parameter '%s' is required: comma-separated telegram ids", name);
        return -1;
    }
    int64_t *out = ls_req_alloc(r, max * sizeof(*out));
    char *array = ls_req_alloc(r, max * 21 + 3);
    size_t count = 0, off = 0;
    array[off++] = '{';
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (count == max) {
            ls_reply_problem(r, 400, "query parameter '%s': at most %zu ids", name, max);
            return -1;
        }
        if (ls_parse_id(p, len, &out[count]) != 0) {
            ls_reply_problem(r, 400, "query parameter '%s': '%.*s' is not a telegram id", name,
                             (int)(len > 32 ? 32 : len), p);
            return -1;
        }
        off += (size_t)sprintf(array + off, "%s%lld", count ? "," : "", (long long)out[count]);
        count++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    array[off++] = '}';
    array[off] = '\0';
    *ids = out;
    *n = count;
    *pg_array = array;
    return 0;
}

typedef struct {
    int64_t *ids;
    size_t n;
    const char *key;
    ls_row_json_fn row_json;
} batch_t;

static void on_batch(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    batch_t *b = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    int row = 0, rows = PQntuples(res), idcol = PQfnumber(res, "telegram_id");
    json_object *found_rows = json_object_new_array_ext(rows);
    json_object *missing = json_object_new_array();
    /* Rows come back in the order asked, so one pass finds the ids that have none. */
    for (size_t i = 0; i < b->n; i++) {
        int64_t found;
        if (row < rows && idcol >= 0 &&
            ls_parse_i64(PQgetvalue(res, row, idcol), (size_t)PQgetlength(res, row, idcol), &found) == 0 &&
            found == b->ids[i]) {
            json_object_array_add(found_rows, b->row_json(r, res, row));
            row++;
        } else {
            json_object_array_add(missing, json_object_new_int64(b->ids[i]));
        }
    }
    json_object *out = json_object_new_object();
    json_object_object_add(out, b->key, found_rows);
    json_object_object_add(out, "missing", missing);
    ls_reply_json(r, 200, out);
}

void ls_req_batch(ls_req_t *r, size_t max, size_t stmt, const char *key, ls_row_json_fn row_json)
{
    batch_t *b = ls_req_alloc(r, sizeof(*b));
    const char *array;
    if (ls_req_id_list_or_reply(r, "ids", max, &b->ids, &b->n, &array) != 0)
        return;
    b->key = key;
    b->row_json = row_json;
    r->state = b;
    const char *params[1] = {array};
    ls_req_pg(r, stmt, 1, params, on_batch);
}

/* Optional non-negative integer query parameter within [min, max]; -1 after answering 400. */
static int query_int_or_reply(ls_req_t *r, const char *name, int64_t def, int64_t min, int64_t max,
                              const char **text)
{
    const char *v = ls_req_query(r, name);
    int64_t x = def;
    if (v != NULL && (ls_parse_i64(v, strlen(v), &x) != 0 || x < min || x > max)) {
        ls_reply_problem(r, 400, "query parameter '%s' must be an integer from %lld to %lld", name,
                         (long long)min, (long long)max);
        return -1;
    }
    char *out = ls_req_alloc(r, 24);
    snprintf(out, 24, "%lld", (long long)x);
    *text = out;
    return 0;
}

int ls_req_page_or_reply(ls_req_t *r, int def_limit, int max_limit, const char **limit, const char **offset)
{
    if (query_int_or_reply(r, "limit", def_limit, 1, max_limit, limit) != 0)
        return -1;
    return query_int_or_reply(r, "offset", 0, 0, LS_MAX_OFFSET, offset);
}

const char *ls_req_actor_text(ls_req_t *r)
{
    if (r->actor <= 0)
        return NULL;
    char *out = ls_req_alloc(r, 24);
    snprintf(out, 24, "%lld", (long long)r->actor);
    return out;
}

json_object *ls_req_body_or_reply(ls_req_t *r, const ls_json_field_t *fields, size_t n)
{
    char err[256];
    if (r->h2o == NULL)
        return NULL;
    json_object *obj = ls_json_parse_object(r->h2o->entity.base, r->h2o->entity.base ? r->h2o->entity.len : 0,
                                            err, sizeof(err));
    if (obj == NULL) {
        reply_problem_str(r, 400, err);
        return NULL;
    }
    if (ls_json_validate(obj, fields, n, err, sizeof(err)) != 0) {
        json_object_put(obj);
        reply_problem_str(r, 400, err);
        return NULL;
    }
    if (r->body != NULL)
        json_object_put(r->body);
    r->body = obj;
    return obj;
}

const char *ls_role_name(ls_role_t role)
{
    static const char *const names[] = {"", "student", "teacher", "admin"};
    return names[role];
}

static int header_value_by_name(h2o_req_t *req, const char *name, size_t len, h2o_iovec_t *out);

json_object *ls_req_optional_body_or_reply(ls_req_t *r, const ls_json_field_t *fields, size_t n)
{
    char err[256];
    if (r->h2o == NULL)
        return NULL;
    if (r->h2o->entity.base != NULL && r->h2o->entity.len > 0)
        return ls_req_body_or_reply(r, fields, n);
    json_object *empty = json_object_new_object();
    if (ls_json_validate(empty, fields, n, err, sizeof(err)) != 0) {
        json_object_put(empty);
        reply_problem_str(r, 400, err);
        return NULL;
    }
    if (r->body != NULL)
        json_object_put(r->body);
    r->body = empty;
    return empty;
}

const char *ls_req_header(ls_req_t *r, const char *name)
{
    h2o_iovec_t v;
    if (r->h2o == NULL || !header_value_by_name(r->h2o, name, strlen(name), &v))
        return NULL;
    return ls_req_strdup(r, v.base, v.len);
}

int ls_req_actor_is_self_or_admin(ls_req_t *r, int64_t id)
{
    return r->actor > 0 && (r->actor == id || r->role == LS_ROLE_ADMIN);
}

int ls_req_actor_or_reply(ls_req_t *r)
{
    if (r->actor > 0)
        return 0;
    reply_problem_str(r, 400, "header X-Actor-Telegram-Id is required");
    return -1;
}

/* ---- database work on behalf of a request ---- */

typedef struct {
    ls_req_t *r;
    union {
        ls_req_pg_cb pg;
        ls_req_begin_cb begin;
        ls_req_http_cb http;
        ls_req_http_ud_cb http_ud;
    } cb;
    void *ud;         /* for cb.http_ud */
    int with_ud;      /* cb.http_ud is the callback, not cb.http */
    ls_timer_t timer; /* ls_req_http: reports a failed send on the next iteration */
} req_call_t;

static req_call_t *call_new(ls_req_t *r)
{
    req_call_t *c = ls_req_alloc(r, sizeof(*c));
    c->r = r;
    req_ref(r);
    return c;
}

static void on_req_pg(void *ud, ls_pg_status_t status, PGresult *res)
{
    req_call_t *c = ud;
    c->cb.pg(c->r, status, res);
    req_unref(c->r);
}

static void on_req_begin(void *ud, ls_pg_status_t status, ls_pg_txn_t *txn)
{
    req_call_t *c = ud;
    c->cb.begin(c->r, status, txn);
    req_unref(c->r);
}

void ls_req_pg(ls_req_t *r, size_t stmt, int nparams, const char *const *params, ls_req_pg_cb cb)
{
    req_call_t *c = call_new(r);
    c->cb.pg = cb;
    ls_pg_exec(r->worker->pg, stmt, nparams, params, r->deadline, on_req_pg, c);
}

void ls_req_begin(ls_req_t *r, ls_req_begin_cb cb)
{
    req_call_t *c = call_new(r);
    c->cb.begin = cb;
    ls_pg_begin(r->worker->pg, r->deadline, on_req_begin, c);
}

void ls_req_txn_exec(ls_req_t *r, ls_pg_txn_t *txn, size_t stmt, int nparams, const char *const *params,
                     ls_req_pg_cb cb)
{
    req_call_t *c = call_new(r);
    c->cb.pg = cb;
    ls_pg_txn_exec(txn, stmt, nparams, params, on_req_pg, c);
}

static void ignore_pg(ls_req_t *r, ls_pg_status_t status, PGresult *res) {}

void ls_req_txn_finish(ls_req_t *r, ls_pg_txn_t *txn, int commit, ls_req_pg_cb cb)
{
    req_call_t *c = call_new(r);
    c->cb.pg = cb != NULL ? cb : ignore_pg;
    ls_pg_txn_finish(txn, commit, on_req_pg, c);
}

int ls_pg_ok_or_reply(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    const char *state;
    switch (status) {
    case LS_PG_OK:
        return 0;
    case LS_PG_UNAVAILABLE:
        reply_problem_str(r, 503, "database unavailable");
        return -1;
    case LS_PG_BUSY:
        reply_problem_str(r, 503, "database busy");
        return -1;
    case LS_PG_TIMEOUT:
        reply_problem_str(r, 503, "deadline exceeded waiting for the database");
        return -1;
    case LS_PG_SQL_ERROR:
        break;
    }
    state = res != NULL ? ls_pg_sqlstate(res) : "";
    if (strcmp(state, "23505") == 0 || strcmp(state, "23P01") == 0 || strcmp(state, "23503") == 0) {
        reply_problem_str(r, 409, "conflicts with existing data");
    } else if (strcmp(state, "23514") == 0 || strcmp(state, "23502") == 0 || strncmp(state, "22", 2) == 0) {
        reply_problem_str(r, 400, ls_pg_errmsg(res));
    } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "57014") == 0) {
        reply_problem_str(r, 503, "database busy, try again");
    } else {
        ls_log_line_t l;
        if (ls_log_begin(&l, LS_LOG_ERROR, r->request_id, "database error")) {
            ls_log_str(&l, "sqlstate", state);
            ls_log_str(&l, "error", res != NULL ? ls_pg_errmsg(res) : "no result");
            ls_log_end(&l);
        }
        reply_problem_str(r, 500, "internal error");
    }
    return -1;
}

/* ---- internal HTTP calls on behalf of a request ---- */

static void on_req_http(void *ud, const ls_http_response_t *resp)
{
    req_call_t *c = ud;
    c->cb.http(c->r, resp);
    req_unref(c->r);
}

static void on_req_http_ud(void *ud, const ls_http_response_t *resp)
{
    req_call_t *c = ud;
    c->cb.http_ud(c->r, resp, c->ud);
    req_unref(c->r);
}

static void on_req_http_send_failed(ls_timer_t *t)
{
    req_call_t *c = (req_call_t *)((char *)t - offsetof(req_call_t, timer));
    ls_http_response_t resp = {.outcome = LS_HTTP_ERROR, .body = "", .error = "could not start the request"};
    if (c->with_ud)
        on_req_http_ud(c, &resp);
    else
        on_req_http(c, &resp);
}

static void req_http_send(ls_req_t *r, req_call_t *c, const char *target, const char *base_url,
                          const char *method, const char *path, const char *body, size_t body_len,
                          const char *idempotency_key)
{
    ls_http_request_t spec = {
        .target = target,
        .base_url = base_url,
        .method = method,
        .path = path,
        .body = body,
        .body_len = body_len,
        .request_id = r->request_id,
        .actor = r->actor,
        .actor_role = r->role != LS_ROLE_NONE ? ls_role_name(r->role) : NULL,
        .idempotency_key = idempotency_key,
        .deadline = r->deadline,
    };
    if (r->worker->http == NULL ||
        ls_http_send(r->worker->http, &spec, c->with_ud ? on_req_http_ud : on_req_http, c) != 0) {
        ls_timer_init(&c->timer, on_req_http_send_failed);
        ls_timer_start(r->worker->loop, &c->timer, 0);
    }
}

void ls_req_http(ls_req_t *r, const char *target, const char *base_url, const char *method, const char *path,
                 const char *body, size_t body_len, ls_req_http_cb cb)
{
    req_call_t *c = call_new(r);
    c->cb.http = cb;
    c->ud = NULL;
    c->with_ud = 0;
    req_http_send(r, c, target, base_url, method, path, body, body_len, NULL);
}

void ls_req_http_ex(ls_req_t *r, const char *target, const char *base_url, const char *method,
                    const char *path, const char *body, size_t body_len, const char *idempotency_key,
                    ls_req_http_ud_cb cb, void *ud)
{
    req_call_t *c = call_new(r);
    c->cb.http_ud = cb;
    c->ud = ud;
    c->with_ud = 1;
    req_http_send(r, c, target, base_url, method, path, body, body_len, idempotency_key);
}

/* ---- the front door ---- */

static int header_value(h2o_req_t *req, const h2o_token_t *token, h2o_iovec_t *out)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i < 0)
        return 0;
    *out = req->headers.entries[i].value;
    return 1;
}

static int header_value_by_name(h2o_req_t *req, const char *name, size_t len, h2o_iovec_t *out)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    if (i < 0)
        return 0;
    *out = req->headers.entries[i].value;
    return 1;
}

static void set_request_id(ls_req_t *r, h2o_req_t *req)
{
    h2o_iovec_t v;
    if (header_value_by_name(req, H2O_STRLIT("x-request-id"), &v) && v.len > 0 &&
        v.len <= LS_REQUEST_ID_MAX) {
        size_t i;
        for (i = 0; i < v.len; i++) {
            char c = v.base[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.'))
                break;
        }
        if (i == v.len) {
            memcpy(r->request_id, v.base, v.len);
            r->request_id[v.len] = '\0';
            return;
        }
    }
    snprintf(r->request_id, sizeof(r->request_id), "%s%08llx", r->worker->rid_prefix,
             (unsigned long long)++r->worker->rid_counter);
}

static int token_ok(ls_req_t *r, h2o_req_t *req)
{
    const char *token = r->daemon->common->internal_token;
    size_t token_len = strlen(token);
    h2o_iovec_t v;
    if (!header_value(req, H2O_TOKEN_AUTHORIZATION, &v))
        return 0;
    if (v.len != token_len + 7 || strncasecmp(v.base, "Bearer ", 7) != 0)
        return 0;
    return sodium_memcmp(v.base + 7, token, token_len) == 0;
}

static void on_readyz(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (status == LS_PG_OK) {
        static const char body[] = "{\"status\":\"ready\"}";
        ls_reply_raw(r, 200, "application/json", body, sizeof(body) - 1);
    } else {
        reply_problem_str(r, 503, "database not reachable");
    }
}

static void serve_builtin(ls_req_t *r, int readyz)
{
    if (!readyz) {
        static const char body[] = "{\"status\":\"ok\"}";
        ls_reply_raw(r, 200, "application/json", body, sizeof(body) - 1);
        return;
    }
    if (r->worker->pg == NULL) {
        static const char body[] = "{\"status\":\"ready\"}";
        ls_reply_raw(r, 200, "application/json", body, sizeof(body) - 1);
        return;
    }
    req_call_t *c = call_new(r);
    c->cb.pg = on_readyz;
    uint64_t deadline = ls_now_ms() + READYZ_TIMEOUT_MS;
    ls_pg_exec_sql(r->worker->pg, "SELECT 1", 0, NULL, deadline < r->deadline ? deadline : r->deadline,
                   on_req_pg, c);
}

static void dispatch(ls_req_t *r, h2o_req_t *req)
{
    const ls_daemon_t *d = r->daemon;
    h2o_iovec_t path = req->path_normalized, v;

    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        if (h2o_memis(path.base, path.len, H2O_STRLIT("/healthz")))
            return serve_builtin(r, 0);
        if (h2o_memis(path.base, path.len, H2O_STRLIT("/readyz")))
            return serve_builtin(r, 1);
    }

    switch (ls_router_match(d->routes, d->nroutes, req->method.base, req->method.len, path.base, path.len,
                            &r->match)) {
    case LS_ROUTE_OK:
        break;
    case LS_ROUTE_NOT_FOUND:
        return ls_reply_problem(r, 404, "no route for %.*s %.*s", (int)req->method.len, req->method.base,
                                (int)(path.len > 200 ? 200 : path.len), path.base);
    case LS_ROUTE_BAD_METHOD:
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       h2o_strdup(&req->pool, r->match.allow, SIZE_MAX).base, strlen(r->match.allow));
        return ls_reply_problem(r, 405, "method %.*s not allowed here; allowed: %s", (int)req->method.len,
                                req->method.base, r->match.allow);
    case LS_ROUTE_BAD_PARAM: {
        const ls_route_param_t *p = r->match.bad_param;
        static const char *const want[] = {"a telegram id (an integer from 1 to 9007199254740991)", "a UUID",
                                           "a non-empty segment of at most 256 bytes"};
        return ls_reply_problem(r, 400, "path parameter '%.*s' must be %s", (int)p->name_len, p->name,
                                want[p->type]);
    }
    }

    if (!(r->match.route->flags & LS_ROUTE_PUBLIC)) {
        if (d->authenticate != NULL) {
            if (d->authenticate(r) != 0)
                return;
        } else if (!token_ok(r, req)) {
            return reply_problem_str(r, 401, "missing or wrong internal token");
        }
    }
    if (req->entity.base != NULL && req->entity.len > (size_t)d->common->max_body_bytes)
        return ls_reply_problem(r, 413, "request body over %lld bytes", d->common->max_body_bytes);
    /* A daemon that authenticates its callers itself (the BFF) takes the actor from that, never
     * from the caller's headers. */
    if (d->authenticate == NULL && header_value_by_name(req, H2O_STRLIT("x-actor-telegram-id"), &v) &&
        ls_parse_id(v.base, v.len, &r->actor) != 0)
        return reply_problem_str(r, 400, "header X-Actor-Telegram-Id must be a telegram id");
    if (d->authenticate == NULL && header_value_by_name(req, H2O_STRLIT("x-actor-role"), &v)) {
        static const char *const roles[] = {"student", "teacher", "admin"};
        r->role = LS_ROLE_NONE;
        for (int i = 0; i < 3; i++)
            if (h2o_memis(v.base, v.len, roles[i], strlen(roles[i])))
                r->role = (ls_role_t)(i + 1);
        if (r->role == LS_ROLE_NONE)
            return reply_problem_str(r, 400, "header X-Actor-Role must be student, teacher or admin");
    }
    if (header_value_by_name(req, H2O_STRLIT("x-deadline-ms"), &v)) {
        int64_t ms;
        if (ls_parse_i64(v.base, v.len, &ms) != 0)
            return reply_problem_str(r, 400, "header X-Deadline-Ms must be an integer");
        if (ms <= 0)
            return reply_problem_str(r, 503, "deadline already passed");
        if (r->started + (uint64_t)ms < r->deadline)
            r->deadline = r->started + (uint64_t)ms;
    }
    ((ls_handler_t)r->match.route->handler)(r);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    front_handler_t *fh = (front_handler_t *)self;
    ls_worker_t *w = worker_of(req);
    ls_req_t *r = malloc(sizeof(*r));
    if (r == NULL)
        return -1;
    r->h2o = req;
    r->worker = w;
    r->daemon = fh->daemon;
    r->actor = 0;
    r->role = LS_ROLE_NONE;
    r->started = ls_now_ms();
    r->deadline = r->started + (uint64_t)fh->daemon->common->request_timeout_ms;
    r->status = 0;
    r->refs = 2; /* the h2o request, and this function until it returns */
    r->body = NULL;
    r->state = NULL;
    r->match.route = NULL;
    r->match.nparams = 0;
    h2o_mem_init_pool(&r->pool);
    w->inflight++;
    ls_req_t **guard = h2o_mem_alloc_shared(&req->pool, sizeof(*guard), on_h2o_pool_dispose);
    *guard = r;

    set_request_id(r, req);
    dispatch(r, req);
    req_unref(r);
    return 0;
}

/* ---- workers ---- */

static void on_accept(h2o_socket_t *listener, const char *err)
{
    ls_worker_t *w = listener->data;
    if (err != NULL)
        return;
    /* Accept a bounded batch per wake-up so that one busy listener cannot starve the loop. */
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        h2o_accept(&w->accept_ctx, sock);
    }
}

static void on_wake(h2o_socket_t *sock, const char *err)
{
    ls_worker_t *w = sock->data;
    uint64_t v;
    ssize_t rd = read(w->wake_fd, &v, sizeof(v));
    (void)rd;
    h2o_buffer_consume(&sock->input, sock->input->size);
}

/* A TCP listening socket of this worker's own (SO_REUSEPORT spreads connections across workers). */
static int open_tcp_listener(const ls_cfg_addr_t *a, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[8], name[LS_CFG_UNIX_PATH_MAX + 80];
    int fd = -1, on = 1, rc;

    ls_cfg_addr_format(a, name, sizeof(name));
    snprintf(port, sizeof(port), "%d", a->port);
    if ((rc = getaddrinfo(a->host, port, &hints, &ai)) != 0) {
        snprintf(err, errlen, "LISTEN %s: %s", name, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        snprintf(err, errlen, "LISTEN %s: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* A non-blocking Unix stream socket and the address of path, or -1 with err. */
static int unix_socket(const char *path, struct sockaddr_un *sa, char *err, size_t errlen)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    /* config.c guarantees the path fits sun_path with its NUL */
    memcpy(sa->sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        snprintf(err, errlen, "LISTEN unix:%s: socket: %s", path, strerror(errno));
    return fd;
}

/*
 * What is at path before we bind: nothing (fine), a socket nobody answers on (left by a daemon that
 * died: removed), or a live socket or some other file (an error: never remove what may be in use
 * or is not ours to remove).
 */
static int clear_stale_socket(const char *path, char *err, size_t errlen)
{
    struct stat st;
    struct sockaddr_un sa;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "LISTEN unix:%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "LISTEN unix:%s: the path exists and is not a socket", path);
        return -1;
    }
    /* Non-blocking, so that a live listener with a full backlog (EAGAIN) cannot stall the start. */
    int fd = unix_socket(path, &sa, err, errlen);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)), connect_errno = errno;
    close(fd);
    if (rc == 0 || connect_errno == EAGAIN || connect_errno == EINPROGRESS) {
        snprintf(err, errlen, "LISTEN unix:%s: already in use (another process answers on it)", path);
        return -1;
    }
    if (connect_errno == ENOENT)
        return 0; /* removed meanwhile */
    if (connect_errno != ECONNREFUSED) {
        snprintf(err, errlen, "LISTEN unix:%s: cannot tell whether it is in use: %s", path,
                 strerror(connect_errno));
        return -1;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "LISTEN unix:%s: cannot remove the stale socket: %s", path, strerror(errno));
        return -1;
    }
    ls_logf(LS_LOG_INFO, NULL, "removed stale unix socket %s", path);
    return 0;
}

/* Binds a Unix socket once for all workers. Returns 0, or -1 with err and nothing left behind. */
static int open_unix_listener(unix_listener_t *u, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct stat st;

    u->fd = -1;
    u->path = path;
    if (clear_stale_socket(path, err, errlen) != 0)
        return -1;
    int fd = unix_socket(path, &sa, err, errlen);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(err, errlen, "LISTEN unix:%s: bind: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* Owner and group (the other daemons' account) only; bind() honoured the umask. */
    if (chmod(path, 0660) != 0 || lstat(path, &st) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        snprintf(err, errlen, "LISTEN unix:%s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    u->fd = fd;
    u->dev = st.st_dev;
    u->ino = st.st_ino;
    return 0;
}

/* Closes the main thread's descriptor and removes the file if it is still the one we bound. */
static void close_unix_listener(unix_listener_t *u)
{
    struct stat st;
    if (u->fd < 0)
        return;
    close(u->fd);
    u->fd = -1;
    if (lstat(u->path, &st) == 0 && st.st_dev == u->dev && st.st_ino == u->ino)
        unlink(u->path);
}

static void begin_stop(ls_worker_t *w)
{
    w->stopping = 1;
    for (int i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i] != NULL) {
            h2o_socket_read_stop(w->listeners[i]);
            h2o_socket_close(w->listeners[i]);
            w->listeners[i] = NULL;
        }
    }
    h2o_context_request_shutdown(&w->ctx);
}

/* The daemon's outbox poller on this worker, its targets' URLs and interval taken from the settings. */
static void start_outbox(ls_worker_t *w)
{
    const ls_daemon_outbox_t *o = &w->daemon->outbox;
    ls_outbox_config_t oc = {
        .ntargets = o->ntargets,
        .poll_ms = o->poll_ms != NULL ? (int)*o->poll_ms : 0,
    };
    if (o->ntargets > LS_OUTBOX_MAX_TARGETS)
        h2o_fatal("worker: too many outbox targets");
    if (w->http == NULL)
        h2o_fatal("worker: an outbox needs the HTTP client (uses_http)");
    for (size_t i = 0; i < o->ntargets; i++)
        oc.targets[i] = (ls_outbox_target_t){o->targets[i].name, *o->targets[i].base_url};
    w->outbox = ls_outbox_start(w, &oc);
    if (w->outbox == NULL)
        h2o_fatal("worker: cannot start the outbox poller");
}

static void *worker_main(void *arg)
{
    ls_worker_t *w = arg;
    const ls_daemon_t *d = w->daemon;
    uint64_t grace_until = 0;

    for (int i = 0; i < w->nlisteners; i++) {
        /* A Unix listener is shared by all workers (each holds a dup()): whoever loses the race for
         * a connection gets EAGAIN from accept, which h2o_evloop_socket_accept() reports as NULL. */
        w->listeners[i] =
            h2o_evloop_socket_create(ls_loop_evloop(w->loop), w->listen_fds[i], H2O_SOCKET_FLAG_DONT_READ);
        w->listen_fds[i] = -1;
        w->listeners[i]->data = w;
        h2o_socket_read_start(w->listeners[i], on_accept);
    }
    w->wake = h2o_evloop_socket_create(ls_loop_evloop(w->loop), w->wake_fd, H2O_SOCKET_FLAG_DONT_READ);
    w->wake->data = w;
    h2o_socket_read_start(w->wake, on_wake);

    ls_pg_config_t pgc = {
        .conninfo = d->common->database_url,
        .application_name = d->name,
        .nconns = w->pg_conns,
        .stmts = d->stmts,
        .nstmts = d->nstmts,
    };
    if (!d->no_database)
        w->pg = ls_pg_pool_create(w->loop, &pgc);
    if (d->uses_http) {
        ls_http_config_t hc = {.internal_token = d->common->internal_token};
        w->http = ls_http_create(w->loop, &hc);
    }
    if ((!d->no_database && w->pg == NULL) || (d->uses_http && w->http == NULL))
        h2o_fatal("worker: out of memory");
    if (d->outbox.targets != NULL)
        start_outbox(w);
    if (d->on_worker_start != NULL)
        d->on_worker_start(w);

    for (;;) {
        ls_loop_run_once(w->loop, 1000);
        if (!w->stopping && atomic_load(&w->stop_requested)) {
            begin_stop(w);
            grace_until = ls_now_ms() + LS_SHUTDOWN_GRACE_MS;
        }
        if (w->stopping && (w->inflight == 0 || ls_now_ms() >= grace_until))
            break;
    }
    if (w->inflight != 0)
        ls_logf(LS_LOG_WARN, NULL, "worker %d: %zu requests still running at shutdown", w->index,
                w->inflight);
    if (d->on_worker_stop != NULL)
        d->on_worker_stop(w);
    /* Before the client and the pool: they complete what the poller still has pending. */
    ls_outbox_stop(w->outbox);
    w->outbox = NULL;

    if (w->http != NULL)
        ls_http_destroy(w->http);
    if (w->pg != NULL)
        ls_pg_pool_destroy(w->pg);
    h2o_socket_read_stop(w->wake);
    h2o_socket_close(w->wake);
    /* Let h2o finish closing sockets before its context goes away. */
    for (int i = 0; i < 10; i++)
        ls_loop_run_once(w->loop, 10);
    /* h2o 2.2.5 cannot close idle keep-alive connections from outside, and its context may not be
     * disposed while any is open: then the process exits with the worker left as it is (still
     * reachable, so leak checkers stay quiet) and the kernel closes those connections. */
    if (h2o_linklist_is_empty(&w->ctx.http1._conns)) {
        /* h2o_context_request_shutdown() armed HTTP/2's graceful-shutdown timer; nothing is left for it. */
        if (h2o_timeout_is_linked(&w->ctx.http2._graceful_shutdown_timeout))
            h2o_timeout_unlink(&w->ctx.http2._graceful_shutdown_timeout);
        h2o_context_dispose(&w->ctx);
        /* h2o 2.2.5's evloop h2o_multithread_destroy_queue() (called by h2o_context_dispose) closes
         * the queue's sockets but never frees the queue itself. */
        free(w->ctx.queue);
        w->disposed = 1;
    }
    return NULL;
}

static int worker_init(ls_worker_t *w, const ls_daemon_t *d, int index, int pg_conns,
                       const unix_listener_t *unix_listeners, char *err, size_t errlen)
{
    unsigned char rnd[6];

    memset(w, 0, sizeof(*w));
    w->daemon = d;
    w->index = index;
    w->pg_conns = pg_conns;
    for (int i = 0; i < LS_CFG_LISTEN_MAX; i++)
        w->listen_fds[i] = -1;
    w->wake_fd = -1;
    atomic_init(&w->stop_requested, 0);
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(w->rid_prefix, sizeof(w->rid_prefix), rnd, sizeof(rnd));
    const ls_cfg_listen_t *listen_cfg = &d->common->listen;
    for (int i = 0; i < listen_cfg->n; i++) {
        const ls_cfg_addr_t *a = &listen_cfg->addr[i];
        int fd;
        if (a->is_unix) {
            if ((fd = fcntl(unix_listeners[i].fd, F_DUPFD_CLOEXEC, 0)) < 0)
                snprintf(err, errlen, "LISTEN unix:%s: dup: %s", a->path, strerror(errno));
        } else {
            fd = open_tcp_listener(a, err, errlen);
        }
        if (fd < 0)
            return -1;
        w->listen_fds[w->nlisteners++] = fd;
    }
    if ((w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        return -1;
    }
    if ((w->loop = ls_loop_create()) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h2o_context_init(&w->ctx, ls_loop_evloop(w->loop), &globalconf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = globalconf.hosts;
    return 0;
}

static void usage_error(const ls_daemon_t *d, const char *arg)
{
    fprintf(stderr, "%s: unknown argument '%s' (settings come from the environment; see --help)\n", d->name,
            arg);
}

int ls_daemon_main(const ls_daemon_t *d, int argc, char **argv)
{
    char err[512];
    ls_worker_t *workers = NULL;
    int nthreads = 0, started = 0, status = 1;
    sigset_t sigs;
    unix_listener_t unix_listeners[LS_CFG_LISTEN_MAX];

    for (int i = 0; i < LS_CFG_LISTEN_MAX; i++)
        unix_listeners[i].fd = -1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ls_config_print_help(stdout, d->name, d->summary, d->config_fields, d->nconfig_fields);
            return 0;
        }
        usage_error(d, argv[i]);
        return 2;
    }
    if (ls_config_load(d->config_fields, d->nconfig_fields, d->config, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", d->name, err);
        return 2;
    }
    ls_log_init(d->name, (ls_log_level_t)d->common->log_level);
    if (ls_router_check(d->routes, d->nroutes, err, sizeof(err)) != 0) {
        ls_log(LS_LOG_ERROR, NULL, err);
        goto out;
    }
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        ls_log(LS_LOG_ERROR, NULL, "library initialisation failed");
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);

    if (!d->no_database &&
        ls_migrate_run(d->common->database_url, d->common->migrations_dir, err, sizeof(err)) < 0) {
        ls_log_line_t l;
        if (ls_log_begin(&l, LS_LOG_ERROR, NULL, "migrations failed")) {
            ls_log_str(&l, "error", err);
            ls_log_str(&l, "dir", d->common->migrations_dir);
            ls_log_end(&l);
        }
        goto out;
    }
    if (d->on_start != NULL && d->on_start(d->config, err, sizeof(err)) != 0) {
        ls_log(LS_LOG_ERROR, NULL, err);
        goto out;
    }

    nthreads = d->common->threads > 0 ? (int)d->common->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;
    int pool_size = d->no_database ? 0 : (int)d->common->pg_pool_size;
    if (!d->no_database && pool_size < nthreads) {
        ls_logf(LS_LOG_WARN, NULL, "PG_POOL_SIZE=%d is below THREADS=%d: using one connection per thread",
                pool_size, nthreads);
        pool_size = nthreads;
    }

    h2o_config_init(&globalconf);
    globalconf.server_name = h2o_iovec_init(d->name, strlen(d->name));
    globalconf.max_request_entity_size = (size_t)d->common->max_body_bytes * 4;
    h2o_hostconf_t *host =
        h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    front_handler_t *fh = (front_handler_t *)h2o_create_handler(pathconf, sizeof(*fh));
    fh->super.on_req = on_req;
    fh->daemon = d;

    workers = calloc((size_t)nthreads, sizeof(*workers));
    if (workers == NULL)
        goto out;
    const ls_cfg_listen_t *listen_cfg = &d->common->listen;
    for (int i = 0; i < listen_cfg->n; i++) {
        if (listen_cfg->addr[i].is_unix &&
            open_unix_listener(&unix_listeners[i], listen_cfg->addr[i].path, err, sizeof(err)) != 0) {
            ls_log(LS_LOG_ERROR, NULL, err);
            nthreads = 0;
            goto cleanup;
        }
    }
    for (int i = 0; i < nthreads; i++) {
        int share = pool_size / nthreads + (i < pool_size % nthreads ? 1 : 0);
        if (worker_init(&workers[i], d, i, share, unix_listeners, err, sizeof(err)) != 0) {
            ls_log(LS_LOG_ERROR, NULL, err);
            nthreads = i + 1;
            goto cleanup;
        }
    }

    /* Workers must not receive the signals: the main thread waits for them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    for (; started < nthreads; started++) {
        if (pthread_create(&workers[started].thread, NULL, worker_main, &workers[started]) != 0) {
            ls_log(LS_LOG_ERROR, NULL, "could not start a worker thread");
            break;
        }
    }
    if (started == nthreads) {
        ls_log_line_t l;
        if (ls_log_begin(&l, LS_LOG_INFO, NULL, "listening")) {
            /* "listen" names every address; host and port repeat the first TCP one, which is what
             * scripts and tests wait for. */
            char all[LS_CFG_LISTEN_MAX * (LS_CFG_UNIX_PATH_MAX + 80)];
            size_t off = 0;
            const ls_cfg_addr_t *tcp = NULL;
            for (int i = 0; i < listen_cfg->n; i++) {
                if (i > 0)
                    all[off++] = ',';
                ls_cfg_addr_format(&listen_cfg->addr[i], all + off, sizeof(all) - off);
                off += strlen(all + off);
                if (tcp == NULL && !listen_cfg->addr[i].is_unix)
                    tcp = &listen_cfg->addr[i];
            }
            all[off] = '\0';
            ls_log_str(&l, "listen", all);
            if (tcp != NULL) {
                ls_log_str(&l, "host", tcp->host);
                ls_log_int(&l, "port", tcp->port);
            }
            ls_log_int(&l, "threads", nthreads);
            ls_log_int(&l, "pg_connections", pool_size);
            ls_log_end(&l);
        }
        int sig = 0;
        sigwait(&sigs, &sig);
        ls_logf(LS_LOG_INFO, NULL, "received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        status = 0;
    }
    for (int i = 0; i < started; i++) {
        uint64_t one = 1;
        atomic_store(&workers[i].stop_requested, 1);
        ssize_t wr = write(workers[i].wake_fd, &one, sizeof(one));
        (void)wr;
    }
    for (int i = 0; i < started; i++)
        pthread_join(workers[i].thread, NULL);
    if (status == 0)
        ls_log(LS_LOG_INFO, NULL, "stopped");

cleanup:
    int all_disposed = 1;
    for (int i = 0; i < nthreads; i++) {
        ls_worker_t *w = &workers[i];
        if (i >= started) {
            /* never ran: its descriptors were not handed to h2o */
            for (int j = 0; j < w->nlisteners; j++)
                if (w->listen_fds[j] >= 0)
                    close(w->listen_fds[j]);
            if (w->wake_fd >= 0)
                close(w->wake_fd);
            if (w->loop != NULL)
                h2o_context_dispose(&w->ctx);
            w->disposed = 1;
        }
        if (w->disposed)
            ls_loop_destroy(w->loop);
        else
            all_disposed = 0;
    }
    /* Workers have stopped accepting (or never started): the socket files can go. */
    for (int i = 0; i < LS_CFG_LISTEN_MAX; i++)
        close_unix_listener(&unix_listeners[i]);
    if (all_disposed) {
        free(workers);
        h2o_config_dispose(&globalconf);
    } else {
        leftover_workers = workers;
    }
    curl_global_cleanup();
out:
    ls_config_free(d->config_fields, d->nconfig_fields, d->config);
    return status;
}
