/*
 * bff/openapi.yaml and the bff's routes agree: every documented path and method is routed by the
 * real bff (it answers something other than 404 "no route" or 405), and every route of the bff
 * (`bff --routes`) is documented. The YAML is read with a small line parser of the `paths:` block:
 * path keys at two spaces of indentation, their methods at four.
 *
 * The bff runs with every service URL pointing at a port where nothing listens, so a routed request
 * ends in the handler's own answer (400, 502, 503, …) — never in the router's.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "tma.h"

#define BOT_TOKEN "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
#define MAX_OPS   128
#define LINE_MAX_ 1024

typedef struct {
    char method[16]; /* upper case */
    char path[256];  /* OpenAPI form: "/api/groups/{group_id}" */
} op_t;

static const char *const methods[] = {"get", "put", "post", "delete", "patch", "head", "options", "trace"};

/* ---- the two lists ---- */

static size_t indent_of(const char *line)
{
    size_t n = 0;
    while (line[n] == ' ')
        n++;
    return n;
}

/* Strips a trailing ':' (and surrounding quotes) from a YAML key; returns 0 when it is no plain key. */
static int key_of(const char *s, char *out, size_t size)
{
    size_t len = strcspn(s, "\r\n");
    while (len > 0 && s[len - 1] == ' ')
        len--;
    if (len < 2 || s[len - 1] != ':')
        return 0;
    len--;
    if (len >= 2 && (s[0] == '"' || s[0] == '\'') && s[len - 1] == s[0]) {
        s++;
        len -= 2;
    }
    if (len + 1 > size)
        return 0;
    memcpy(out, s, len);
    out[len] = '\0';
    return 1;
}

static size_t read_documented(op_t *ops)
{
    char file[1024], line[LINE_MAX_], path[256] = "", key[256];
    size_t n = 0;
    int in_paths = 0;

    snprintf(file, sizeof(file), "%s/bff/openapi.yaml", lst_env("LS_TEST_SOURCE_DIR"));
    FILE *f = fopen(file, "r");
    cr_assert_not_null(f, "cannot read %s", file);
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t ind = indent_of(line);
        const char *s = line + ind;
        if (*s == '\n' || *s == '\r' || *s == '\0' || *s == '#')
            continue;
        if (ind == 0) {
            in_paths = strncmp(s, "paths:", 6) == 0;
            continue;
        }
        if (!in_paths || !key_of(s, key, sizeof(key)))
            continue;
        if (ind == 2) {
            cr_assert(key[0] == '/', "a key under paths: that is no path: %s", key);
            snprintf(path, sizeof(path), "%s", key);
        } else if (ind == 4) {
            for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
                if (strcmp(key, methods[m]) != 0)
                    continue;
                cr_assert_lt(n, MAX_OPS);
                cr_assert(path[0] != '\0', "method %s before any path", key);
                for (size_t i = 0; i <= strlen(key); i++)
                    ops[n].method[i] = (char)toupper((unsigned char)key[i]);
                snprintf(ops[n].path, sizeof(ops[n].path), "%s", path);
                n++;
            }
        }
    }
    fclose(f);
    return n;
}

/* "{telegram_id:id}" → "{telegram_id}": the router's typed parameters in OpenAPI form. */
static void untype(const char *in, char *out, size_t size)
{
    size_t o = 0;
    int in_param = 0, in_type = 0;
    for (; *in != '\0' && o + 1 < size; in++) {
        if (*in == '{')
            in_param = 1;
        else if (*in == '}')
            in_param = in_type = 0;
        else if (*in == ':' && in_param)
            in_type = 1;
        if (!in_type)
            out[o++] = *in;
    }
    out[o] = '\0';
}

static size_t read_routes(op_t *ops)
{
    char cmd[1100], line[LINE_MAX_], pattern[256];
    size_t n = 0;

    snprintf(cmd, sizeof(cmd), "'%s/bff/bff' --routes", lst_env("LS_TEST_BUILD_DIR"));
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", cmd);
    while (fgets(line, sizeof(line), p) != NULL) {
        char method[16];
        if (sscanf(line, "%15s %255s", method, pattern) != 2)
            continue;
        cr_assert_lt(n, MAX_OPS);
        snprintf(ops[n].method, sizeof(ops[n].method), "%s", method);
        untype(pattern, ops[n].path, sizeof(ops[n].path));
        n++;
    }
    cr_assert_eq(pclose(p), 0, "bff --routes failed");
    return n;
}

static int contains(const op_t *ops, size_t n, const op_t *op)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ops[i].method, op->method) == 0 && strcmp(ops[i].path, op->path) == 0)
            return 1;
    return 0;
}

/* ---- tests ---- */

Test(openapi, the_parsers_see_what_is_there)
{
    op_t docs[MAX_OPS], routes[MAX_OPS];
    size_t ndocs = read_documented(docs), nroutes = read_routes(routes);
    op_t profile = {"GET", "/api/user/profile/{telegram_id}"};
    op_t attendance = {"PUT", "/api/lessons/{lesson_id}/attendance/{telegram_id}"};

    /* Guards against a parser that finds nothing, which would make the comparisons vacuous. */
    cr_expect_geq(ndocs, 30, "only %zu operations read from openapi.yaml", ndocs);
    cr_expect_geq(nroutes, 30, "only %zu routes from bff --routes", nroutes);
    cr_expect(contains(docs, ndocs, &profile));
    cr_expect(contains(routes, nroutes, &profile));
    cr_expect(contains(docs, ndocs, &attendance));
    cr_expect(contains(routes, nroutes, &attendance));
    for (size_t i = 0; i < ndocs; i++)
        for (size_t j = i + 1; j < ndocs; j++)
            cr_expect(strcmp(docs[i].method, docs[j].method) != 0 || strcmp(docs[i].path, docs[j].path) != 0,
                      "documented twice: %s %s", docs[i].method, docs[i].path);
}

Test(openapi, every_route_of_the_bff_is_documented)
{
    op_t docs[MAX_OPS], routes[MAX_OPS];
    size_t ndocs = read_documented(docs), nroutes = read_routes(routes);

    for (size_t i = 0; i < nroutes; i++)
        cr_expect(contains(docs, ndocs, &routes[i]),
                  "bff routes %s %s but bff/openapi.yaml does not document it", routes[i].method,
                  routes[i].path);
    for (size_t i = 0; i < ndocs; i++)
        cr_expect(contains(routes, nroutes, &docs[i]),
                  "bff/openapi.yaml documents %s %s but bff has no such route", docs[i].method, docs[i].path);
}

/* A sample value for a path parameter, by its name. */
static const char *sample_for(const char *name, size_t len)
{
    if (len == strlen("telegram_id") && strncmp(name, "telegram_id", len) == 0)
        return "42";
    if (len >= 2 && strncmp(name + len - 2, "id", 2) == 0)
        return "00000000-0000-4000-8000-000000000000";
    return "abc";
}

static void fill_path(const char *tmpl, char *out, size_t size)
{
    size_t o = 0;
    while (*tmpl != '\0' && o + 1 < size) {
        if (*tmpl == '{') {
            const char *close = strchr(tmpl, '}');
            cr_assert_not_null(close, "unclosed parameter in %s", tmpl);
            const char *v = sample_for(tmpl + 1, (size_t)(close - tmpl - 1));
            o += (size_t)snprintf(out + o, size - o, "%s", v);
            tmpl = close + 1;
        } else {
            out[o++] = *tmpl++;
        }
    }
    out[o < size ? o : size - 1] = '\0';
}

Test(openapi, every_documented_operation_is_routed, .timeout = 120)
{
    op_t docs[MAX_OPS];
    size_t ndocs = read_documented(docs);
    unsigned char key[TMA_KEY_BYTES];
    char *token = lst_random_hex(24), env_token[128], env_urls[6][64], auth[TMA_MAX_LEN + 64],
         data[TMA_MAX_LEN + 1], date[24];
    static const char *const url_names[6] = {"AUTH_URL",   "TEACHERS_URL", "STUDENTS_URL",
                                             "GROUPS_URL", "CALENDAR_URL", "NOTIFICATION_URL"};
    const char *env[16];
    size_t n = 0;
    int dead_port = lst_free_port();

    cr_assert_geq(sodium_init(), 0);
    snprintf(env_token, sizeof(env_token), "INTERNAL_TOKEN=%s", token);
    env[n++] = env_token;
    for (int i = 0; i < 6; i++) {
        snprintf(env_urls[i], sizeof(env_urls[i]), "%s=http://127.0.0.1:%d", url_names[i], dead_port);
        env[n++] = env_urls[i];
    }
    env[n++] = "BOT_TOKEN=" BOT_TOKEN;
    env[n++] = "THREADS=1";
    env[n++] = "LOG_LEVEL=info";
    env[n++] = "BFF_DEADLINE_MS=500";
    env[n] = NULL;
    lst_daemon_t bff = {0};
    lst_daemon_start(&bff, "bff/bff", env);

    tma_derive_key(BOT_TOKEN, key);
    snprintf(date, sizeof(date), "%lld", (long long)time(NULL));
    tma_pair_t pairs[] = {{"auth_date", date}, {"user", "{\"id\":42,\"first_name\":\"Doc\"}"}};
    cr_assert_gt(tma_sign(key, pairs, 2, data, sizeof(data)), 0);
    snprintf(auth, sizeof(auth), "Authorization: tma %s", data);

    for (size_t i = 0; i < ndocs; i++) {
        char path[512], url[600];
        const char *headers[3] = {auth, "Content-Type: application/json", NULL};
        int is_api = strncmp(docs[i].path, "/api/", 5) == 0;
        int has_body = strcmp(docs[i].method, "GET") != 0 && strcmp(docs[i].method, "DELETE") != 0;
        lst_resp_t resp;

        fill_path(docs[i].path, path, sizeof(path));
        snprintf(url, sizeof(url), "%s%s", bff.base_url, path);
        lst_http(&resp, docs[i].method, url, is_api ? headers : headers + 2, has_body ? "{}" : NULL);
        json_object *d = NULL;
        const char *detail = resp.json != NULL && json_object_object_get_ex(resp.json, "detail", &d)
                                 ? json_object_get_string(d)
                                 : NULL;
        int no_route = resp.status == 404 && detail != NULL && strncmp(detail, "no route", 8) == 0;
        cr_expect(resp.status != 0 && resp.status != 405 && !no_route,
                  "%s %s (documented as %s) is not routed: %d %.200s", docs[i].method, path, docs[i].path,
                  resp.status, resp.body);
        /* Signed and routed: the handler ran (the signature was accepted), whatever it answered. */
        if (is_api)
            cr_expect_neq(resp.status, 401, "%s %s: %.200s", docs[i].method, path, resp.body);
        lst_resp_free(&resp);
    }

    /* The check can fail: an undocumented path and a wrong method are refused by the router. */
    lst_resp_t resp;
    char url[600];
    const char *headers[2] = {auth, NULL};
    snprintf(url, sizeof(url), "%s/api/no/such/path", bff.base_url);
    lst_http(&resp, "GET", url, headers, NULL);
    cr_expect_eq(resp.status, 404, "%.200s", resp.body);
    lst_resp_free(&resp);
    snprintf(url, sizeof(url), "%s/api/user/profile/42", bff.base_url);
    lst_http(&resp, "PATCH", url, headers, NULL);
    cr_expect_eq(resp.status, 405, "%.200s", resp.body);
    lst_resp_free(&resp);

    cr_expect_eq(lst_daemon_stop(&bff), 0, "bff did not exit cleanly; see %s", bff.log_path);
    free(token);
}
