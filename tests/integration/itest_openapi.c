/*
 * bff/openapi.yaml and the bff's routes agree: every documented path and method is routed by the
 * real bff (it answers something other than 404 "no route" or 405), and every route of the bff
 * (`bff --routes`) is documented. The YAML is read with a small line parser of the `paths:` block:
 * path keys at two spaces of indentation, their methods at four.
 *
 * The bff runs with every service URL pointing at a port where nothing listens, so a routed request
 * ends in the handler's own answer (400, 502, 503, …) — never in the router's.
 *
 * And the document's nullability holds: for every write operation with a JSON body, a body with each
 * field the document does not declare `nullable: true` set to null (the required fields given
 * values of their declared type) is refused with 400 naming that field, by the real bff and
 * services (stack.h). The request bodies' schemas (inline, or one $ref into components/schemas) are
 * read by the same kind of line parser: a schema's `required: [...]` and `properties:`, each
 * property in flow style ({type: …, nullable: true}) or as a block.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "stack.h"
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
    char *token = lst_random_hex(24), env_token[128], env_urls[7][64], auth[TMA_MAX_LEN + 64],
         data[TMA_MAX_LEN + 1], date[24];
    static const char *const url_names[7] = {"AUTH_URL",     "TEACHERS_URL",     "STUDENTS_URL", "GROUPS_URL",
                                             "CALENDAR_URL", "NOTIFICATION_URL", "PAYMENT_URL"};
    const char *env[16];
    size_t n = 0;
    int dead_port = lst_free_port();

    cr_assert_geq(sodium_init(), 0);
    snprintf(env_token, sizeof(env_token), "INTERNAL_TOKEN=%s", token);
    env[n++] = env_token;
    for (int i = 0; i < 7; i++) {
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

/* ---- request bodies and null ---- */

#define MAX_LINES 4000
#define MAX_PROPS 16

typedef struct {
    char name[64];
    char type[16], format[16], first_enum[16];
    long long minimum;
    int has_minimum, nullable, required;
} prop_t;

typedef struct {
    char **lines;
    size_t n;
} yaml_t;

static void yaml_load(yaml_t *y)
{
    char file[1024], line[LINE_MAX_];
    snprintf(file, sizeof(file), "%s/bff/openapi.yaml", lst_env("LS_TEST_SOURCE_DIR"));
    FILE *f = fopen(file, "r");
    cr_assert_not_null(f, "cannot read %s", file);
    y->lines = calloc(MAX_LINES, sizeof(char *));
    y->n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        cr_assert_lt(y->n, MAX_LINES);
        line[strcspn(line, "\r\n")] = '\0';
        y->lines[y->n++] = strdup(line);
    }
    fclose(f);
}

static void yaml_free(yaml_t *y)
{
    for (size_t i = 0; i < y->n; i++)
        free(y->lines[i]);
    free(y->lines);
}

/* The text after "key:" in s (which starts at its indentation), or NULL when s is not that key. */
static const char *after_key(const char *s, const char *key)
{
    size_t k = strlen(key);
    return strncmp(s, key, k) == 0 && s[k] == ':' ? s + k + 1 : NULL;
}

/* Reads "name: value" pairs of a flow mapping or of one block line into p. */
static void read_attrs(const char *s, prop_t *p)
{
    const char *v;
    if ((v = strstr(s, "nullable: true")) != NULL)
        p->nullable = 1;
    if ((v = strstr(s, "type: ")) != NULL)
        sscanf(v + 6, "%15[a-z]", p->type);
    if ((v = strstr(s, "format: ")) != NULL)
        sscanf(v + 8, "%15[a-z0-9-]", p->format);
    if ((v = strstr(s, "enum: [")) != NULL)
        sscanf(v + 7, "%15[A-Za-z0-9_]", p->first_enum);
    if ((v = strstr(s, "minimum: ")) != NULL && sscanf(v + 9, "%lld", &p->minimum) == 1)
        p->has_minimum = 1;
}

/* The properties of the schema whose header is line h. Returns how many. */
static size_t schema_props(const yaml_t *y, size_t h, prop_t *props)
{
    size_t ind = indent_of(y->lines[h]), n = 0, pind = 0;
    char required[512] = "";
    for (size_t i = h + 1; i < y->n; i++) {
        const char *line = y->lines[i], *s = line + indent_of(line), *v;
        size_t li = indent_of(line);
        if (*s == '\0' || *s == '#')
            continue;
        if (li <= ind)
            break;
        if (li == ind + 2 && (v = after_key(s, "required")) != NULL)
            snprintf(required, sizeof(required), "%s", v);
        else if (li == ind + 2 && after_key(s, "properties") != NULL)
            pind = li + 2;
        else if (pind != 0 && li < pind)
            pind = 0;
        else if (pind != 0 && li == pind) {
            cr_assert_lt(n, MAX_PROPS);
            memset(&props[n], 0, sizeof(props[n]));
            sscanf(s, "%63[A-Za-z0-9_]", props[n].name);
            const char *colon = strchr(s, ':');
            if (colon != NULL && strchr(colon, '{') != NULL)
                read_attrs(colon, &props[n]);
            n++;
        } else if (pind != 0 && li == pind + 2 && n > 0) {
            read_attrs(s, &props[n - 1]); /* a property written as a block */
        }
    }
    for (size_t i = 0; i < n; i++) {
        char quoted[80];
        snprintf(quoted, sizeof(quoted), "%s", props[i].name);
        const char *at = strstr(required, quoted);
        size_t len = strlen(quoted);
        props[i].required =
            at != NULL && (at[-1] == '[' || at[-1] == ' ') && (at[len] == ',' || at[len] == ']');
    }
    return n;
}

/* The line of components/schemas/<name>. */
static size_t schema_line(const yaml_t *y, const char *name)
{
    int in_schemas = 0;
    char want[80];
    snprintf(want, sizeof(want), "    %s:", name);
    for (size_t i = 0; i < y->n; i++) {
        if (strcmp(y->lines[i], "  schemas:") == 0)
            in_schemas = 1;
        else if (in_schemas && strcmp(y->lines[i], want) == 0)
            return i;
    }
    cr_assert_fail("no components/schemas/%s in openapi.yaml", name);
    return 0;
}

/* A value of the property's declared type: what validation takes, whatever the handler thinks of it. */
static void sample_value(const prop_t *p, char *out, size_t size)
{
    if (p->first_enum[0] != '\0')
        snprintf(out, size, "\"%s\"", p->first_enum);
    else if (strcmp(p->format, "uuid") == 0)
        snprintf(out, size, "\"00000000-0000-4000-8000-000000000000\"");
    else if (strcmp(p->format, "date-time") == 0)
        snprintf(out, size, "\"2030-03-04T10:00:00Z\"");
    else if (strcmp(p->type, "integer") == 0 || strcmp(p->type, "number") == 0)
        snprintf(out, size, "%lld", p->has_minimum ? p->minimum : 1);
    else if (strcmp(p->type, "boolean") == 0)
        snprintf(out, size, "true");
    else if (strcmp(p->type, "array") == 0)
        snprintf(out, size, "[]");
    else if (strcmp(p->type, "object") == 0)
        snprintf(out, size, "{}");
    else
        snprintf(out, size, "\"en\"");
}

Test(openapi, null_is_refused_for_every_field_not_declared_nullable, .timeout = 300)
{
    yaml_t y;
    lst_stack_t st;
    char path[256], method[16] = "", op_path[256] = "", key[256];
    size_t checked = 0, nullable = 0, ops = 0;

    yaml_load(&y);
    lst_stack_start(&st, NULL);
    lst_resp_t resp;
    lst_stack_api_ok(&st, &resp, LST_STACK_ADMIN_ID, "POST", "/api/auth/telegram", NULL, 201, 200);
    lst_resp_free(&resp);

    int in_paths = 0, in_body = 0;
    for (size_t i = 0; i < y.n; i++) {
        const char *line = y.lines[i], *s = line + indent_of(line), *v;
        size_t ind = indent_of(line);
        if (*s == '\0' || *s == '#')
            continue;
        if (ind == 0) {
            in_paths = strncmp(s, "paths:", 6) == 0;
            continue;
        }
        if (!in_paths)
            continue;
        if (ind == 2 && key_of(s, key, sizeof(key)))
            snprintf(op_path, sizeof(op_path), "%s", key);
        if (ind == 4 && key_of(s, key, sizeof(key))) {
            for (size_t k = 0; k <= strlen(key) && k < sizeof(method); k++)
                method[k] = (char)toupper((unsigned char)key[k]);
            in_body = 0;
        }
        if (ind == 6)
            in_body = after_key(s, "requestBody") != NULL;
        if (!in_body || (v = after_key(s, "schema")) == NULL)
            continue;
        /* Only the Mini App's bodies: the webhook's is Telegram's Update, read by payment-service (the
         * BFF checks that it is one object, behind the webhook's secret). */
        if (strncmp(op_path, "/api/", 5) != 0)
            continue;

        /* One operation's JSON body: its schema inline (a block) or a $ref. */
        prop_t props[MAX_PROPS];
        size_t n, header = i;
        const char *ref = strstr(v, "#/components/schemas/");
        if (ref != NULL) {
            char name[64];
            sscanf(ref + 21, "%63[A-Za-z0-9_]", name);
            header = schema_line(&y, name);
        }
        n = schema_props(&y, header, props);
        cr_expect_gt(n, 0, "%s %s: no properties read from its body schema", method, op_path);
        ops++;
        fill_path(op_path, path, sizeof(path));
        for (size_t f = 0; f < n; f++) {
            if (props[f].nullable) {
                nullable++;
                continue;
            }
            char body[2048], value[128];
            size_t o = (size_t)snprintf(body, sizeof(body), "{\"%s\":null", props[f].name);
            for (size_t g = 0; g < n; g++) {
                if (g == f || !props[g].required)
                    continue;
                sample_value(&props[g], value, sizeof(value));
                o += (size_t)snprintf(body + o, sizeof(body) - o, ",\"%s\":%s", props[g].name, value);
            }
            snprintf(body + o, sizeof(body) - o, "}");
            lst_stack_api(&st, &resp, LST_STACK_ADMIN_ID, method, path, body);
            char needle[80];
            snprintf(needle, sizeof(needle), "'%s'", props[f].name);
            const char *detail = lst_str_field(resp.json, "detail");
            cr_expect(resp.status == 400 && detail != NULL && strstr(detail, needle) != NULL,
                      "%s %s with %s: %d %.300s (openapi.yaml does not declare '%s' nullable)", method, path,
                      body, resp.status, resp.body, props[f].name);
            lst_resp_free(&resp);
            checked++;
        }
    }
    /* Guards against a parser that finds nothing: the document has 17 write bodies. */
    cr_expect_geq(ops, 15, "only %zu request bodies read", ops);
    cr_expect_geq(checked, 30, "only %zu fields tried with null", checked);
    cr_expect_geq(nullable, 10, "only %zu nullable fields read", nullable);
    lst_stack_stop(&st);
    yaml_free(&y);
}
