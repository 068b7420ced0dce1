/*
 * The edges of #14, end to end: the real bff in front of the real services (stack.h). Each edge is
 * tried on the bff and on a service, as a client would meet it, and every refusal must be
 * problem+json with nothing stored:
 *   - bodies over MAX_BODY_BYTES (just over, 300 KiB, 5 MiB; sized, chunked, behind Expect) get 413,
 *     and h2o's other answers of its own (broken framing 400, Expect 417) are problem+json too;
 *   - paths that could name another route (encoded '/', '\', NUL, dot segments) get 400, and so do
 *     query strings with a NUL or bytes that are not UTF-8;
 *   - text with a NUL or that is not UTF-8 (signed init data, a service's body) gets 400;
 *   - NaN and Infinity as a number get 400.
 * Raw requests go through a socket of this file's own, byte for byte (curl would resolve "..").
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stack.h"

#define STR_(x)   #x
#define STR_ID(x) STR_(x)
#define MAX_BODY  65536 /* the default of MAX_BODY_BYTES, which the stack keeps */
#define TEACHER   7101
#define NAMELESS  7102

static lst_stack_t st;

static void setup(void)
{
    lst_stack_start(&st, NULL);
}

static void teardown(void)
{
    lst_stack_stop(&st);
}

TestSuite(edges, .init = setup, .fini = teardown, .timeout = 300);

/* ---- helpers ---- */

typedef struct {
    int status;
    char content_type[128];
    json_object *json; /* the body parsed, or NULL */
    char text[2048];   /* the answer's start, for messages */
} raw_resp_t;

static int port_of(const lst_daemon_t *d)
{
    return d->port;
}

/* Sends req as it is (and then `extra` bytes of 'x', when not 0) on a new connection to port, and
 * reads the answer until the server closes the connection or 10 s pass. */
static void raw_http(int port, const char *req, size_t extra, raw_resp_t *out)
{
    static char buf[1 << 16];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t len = 0;

    memset(out, 0, sizeof(*out));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect to %d", port);
    cr_assert_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    static const char xs[4096] = {[0 ... 4095] = 'x'};
    for (size_t sent = 0; sent < extra;) {
        ssize_t n = send(fd, xs, extra - sent < sizeof(xs) ? extra - sent : sizeof(xs), MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may answer and close before all of it is sent */
        sent += (size_t)n;
    }
    for (time_t end = time(NULL) + 10; len < sizeof(buf) - 1 && time(NULL) < end;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0)
            continue;
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    /* An interim "100 Continue" comes before the answer. */
    char *start = buf;
    if (strncmp(start, "HTTP/1.1 100 ", 13) == 0 && strstr(start, "\r\n\r\n") != NULL)
        start = strstr(start, "\r\n\r\n") + 4;
    memmove(buf, start, strlen(start) + 1);
    snprintf(out->text, sizeof(out->text), "%.2047s", buf);
    sscanf(buf, "HTTP/1.%*d %d", &out->status);
    for (char *line = strstr(buf, "\r\n"); line != NULL && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "content-type:", 13) == 0)
            sscanf(line + 15, " %127[^\r\n]", out->content_type);
    }
    char *body = strstr(buf, "\r\n\r\n");
    if (body != NULL)
        out->json = json_tokener_parse(body + 4);
}

static void expect_raw_problem(raw_resp_t *r, int status, const char *needle, const char *what)
{
    cr_expect_eq(r->status, status, "%s: status %d, want %d: %.400s", what, r->status, status, r->text);
    cr_expect_str_eq(r->content_type, "application/problem+json", "%s: %.400s", what, r->text);
    cr_expect_eq(json_object_get_int(lst_field(r->json, "status")), status, "%s: %.400s", what, r->text);
    const char *detail = lst_str_field(r->json, "detail");
    cr_expect(detail != NULL && (needle == NULL || strstr(detail, needle) != NULL),
              "%s: detail \"%s\" lacks \"%s\"", what, detail ? detail : "", needle ? needle : "");
    json_object_put(r->json);
    r->json = NULL;
}

/* A JSON object of exactly size bytes: {"title":"xxx…"}. */
static char *body_of(size_t size)
{
    char *b = malloc(size + 1);
    cr_assert_not_null(b);
    memcpy(b, "{\"title\":\"", 10);
    memset(b + 10, 'x', size - 12);
    memcpy(b + size - 2, "\"}", 3);
    return b;
}

static const char *token(void)
{
    return st.services[LST_GROUPS].token;
}

static char *count(int service, const char *sql)
{
    return lst_pg_admin_exec(st.services[service].dbname, sql);
}

/* ---- 1: bodies over the limit, and h2o's other answers ---- */

Test(edges, bodies_over_the_limit_get_413_problem_json_on_the_bff_and_a_service)
{
    char auth[TMA_MAX_LEN + 64], bearer[128], url[256];
    const size_t sizes[] = {MAX_BODY + 1, 300 * 1024, 5 * 1024 * 1024};
    lst_stack_sign(&st, auth, sizeof(auth), TEACHER, NULL);
    snprintf(bearer, sizeof(bearer), "Authorization: Bearer %s", token());
    const struct {
        const char *name, *base, *path, *auth;
        int port;
    } targets[] = {
        {"bff", st.bff.base_url, "/api/groups", auth, port_of(&st.bff)},
        {"groups-service", st.services[LST_GROUPS].daemon.base_url, "/groups", bearer,
         port_of(&st.services[LST_GROUPS].daemon)},
    };

    for (size_t t = 0; t < 2; t++) {
        for (size_t i = 0; i < 3; i++) {
            char *body = body_of(sizes[i]), what[128];
            lst_resp_t resp;
            snprintf(url, sizeof(url), "%s%s", targets[t].base, targets[t].path);

            /* Sent whole with its Content-Length, as a client sends it. */
            const char *sized[] = {targets[t].auth, "Content-Type: application/json",
                                   "X-Actor-Telegram-Id: " STR_ID(TEACHER), NULL};
            lst_http(&resp, "POST", url, sized, body);
            snprintf(what, sizeof(what), "%s, %zu bytes", targets[t].name, sizes[i]);
            lst_expect_problem(&resp, 413, "over 65536 bytes");
            lst_resp_free(&resp);

            /* Chunked: no length up front; refused once more than the limit has arrived. */
            const char *chunked[] = {targets[t].auth, "Content-Type: application/json",
                                     "X-Actor-Telegram-Id: " STR_ID(TEACHER), "Transfer-Encoding: chunked",
                                     NULL};
            lst_http(&resp, "POST", url, chunked, body);
            lst_expect_problem(&resp, 413, "over 65536 bytes");
            lst_resp_free(&resp);

            /* Behind Expect: 100-continue, a body over the limit by more than a byte is refused before
             * any of it is sent; one byte over is taken in and refused by the front door. */
            char head[TMA_MAX_LEN + 512];
            snprintf(head, sizeof(head),
                     "POST %s HTTP/1.1\r\nHost: x\r\n%s\r\nX-Actor-Telegram-Id: %d\r\nContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\nExpect: 100-continue\r\nConnection: "
                     "close\r\n\r\n",
                     targets[t].path, targets[t].auth, TEACHER, sizes[i]);
            raw_resp_t raw;
            raw_http(targets[t].port, head, sizes[i] == MAX_BODY + 1 ? sizes[i] : 0, &raw);
            expect_raw_problem(&raw, 413, "over 65536 bytes", what);
            free(body);
        }

        /* At the limit the body is read and judged on its content (a title of 65524 bytes: 400). */
        char *body = body_of(MAX_BODY);
        lst_resp_t resp;
        const char *headers[] = {targets[t].auth, "Content-Type: application/json",
                                 "X-Actor-Telegram-Id: " STR_ID(TEACHER), NULL};
        lst_http(&resp, "POST", url, headers, body);
        cr_expect(resp.status == 400 || resp.status == 403, "%s at the limit: %d %.200s", targets[t].name,
                  resp.status, resp.body);
        lst_resp_free(&resp);
        free(body);
    }
    char *n = count(LST_GROUPS, "SELECT count(*) FROM groups");
    cr_expect_str_eq(n, "0");
    free(n);
}

Test(edges, h2o_framing_and_expect_answers_are_problem_json)
{
    const int ports[] = {port_of(&st.bff), port_of(&st.services[LST_AUTH].daemon)};
    const struct {
        const char *req;
        int status;
        const char *what;
    } cases[] = {
        {"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "unknown transfer-encoding"},
        {"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n", 400, "broken content-length"},
        {"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "broken chunked"},
        {"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 200-ok\r\n\r\n{}", 417, "expectation"},
    };
    for (size_t p = 0; p < 2; p++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            raw_resp_t raw;
            raw_http(ports[p], cases[i].req, 0, &raw);
            expect_raw_problem(&raw, cases[i].status, cases[i].what, cases[i].what);
        }
    }
}

/* ---- 2: paths ---- */

Test(edges, paths_that_could_name_another_route_get_400_before_routing)
{
    static const char *const bff_paths[] = {
        "/api/user/profile/..%2f..%2f..%2fhealthz",
        "/api/user/profile/..%2F..%2F..%2Freadyz",
        "/api/user/profile/%2e%2e/%2e%2e/%2e%2e/healthz",
        "/api/user/profile/../../../healthz",
        "/api/user/profile/./42",
        "/api/join/a%5c..%5cb",
        "/api/join/a%00b",
        "/api/join/a%0ab",
        "/api/join/%ff",
        "/healthz/..",
        "/./healthz",
        "/api/join/%zz",
    };
    static const char *const service_paths[] = {
        "/users/..%2f..%2fhealthz",
        "/users/%2e%2e/metrics",
        "/users/../readyz",
        "/users/1%2f2",
        "/users/1%00",
    };
    char auth[TMA_MAX_LEN + 64], req[TMA_MAX_LEN + 512];
    raw_resp_t raw;
    lst_resp_t resp;
    lst_stack_sign(&st, auth, sizeof(auth), NAMELESS, NULL);

    for (size_t i = 0; i < sizeof(bff_paths) / sizeof(bff_paths[0]); i++) {
        /* Signed or not: the path is refused before the route, and so before the sign-in check. */
        for (int signed_ = 0; signed_ < 2; signed_++) {
            snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%s%sConnection: close\r\n\r\n",
                     bff_paths[i], signed_ ? auth : "", signed_ ? "\r\n" : "");
            raw_http(port_of(&st.bff), req, 0, &raw);
            expect_raw_problem(&raw, 400, "bad path", bff_paths[i]);
        }
    }
    for (size_t i = 0; i < sizeof(service_paths) / sizeof(service_paths[0]); i++) {
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n",
                 service_paths[i], st.services[LST_AUTH].token);
        raw_http(port_of(&st.services[LST_AUTH].daemon), req, 0, &raw);
        expect_raw_problem(&raw, 400, "bad path", service_paths[i]);
    }

    /* A query string's values: UTF-8 without a NUL, or 400, before they reach a handler (and so
     * before a search term reaches PostgreSQL, which refuses bytes that are not UTF-8). */
    static const char *const queries[] = {"q=%ff", "q=caf%c3", "q=a%00b", "language=en&q=%c3%28"};
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        snprintf(req, sizeof(req),
                 "GET /groups/search?%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: "
                 "close\r\n\r\n",
                 queries[i], token());
        raw_http(port_of(&st.services[LST_GROUPS].daemon), req, 0, &raw);
        expect_raw_problem(&raw, 400, "bad query string", queries[i]);
        snprintf(req, sizeof(req),
                 "GET /api/schedule/%d?%s HTTP/1.1\r\nHost: x\r\n%s\r\nConnection: close\r\n\r\n", NAMELESS,
                 queries[i], auth);
        raw_http(port_of(&st.bff), req, 0, &raw);
        expect_raw_problem(&raw, 400, "bad query string", queries[i]);
    }
    lst_call_as(&resp, st.services[LST_GROUPS].daemon.base_url, token(), "GET",
                "/groups/search?q=caf%C3%A9+x", NULL, NULL, NULL);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);

    /* Plain paths still work, percent-encoding of plain characters included. */
    lst_stack_api_ok(&st, &resp, NAMELESS, "POST", "/api/auth/telegram", NULL, 201, 201);
    lst_resp_free(&resp);
    lst_stack_api_ok(&st, &resp, NAMELESS, "GET", "/api/user/profile/" STR_ID(NAMELESS), NULL, 200, 200);
    lst_resp_free(&resp);
    lst_stack_api_ok(&st, &resp, NAMELESS, "GET", "/api/user/profile/%37%31%30%32", NULL, 200, 200);
    lst_resp_free(&resp);
    lst_stack_api(&st, &resp, NAMELESS, "POST", "/api/join/n%6f-such-code", NULL);
    cr_expect_eq(resp.status, 404, "%.300s", resp.body); /* routed: groups-service's own 404 */
    cr_expect(strstr(resp.body, "no route") == NULL, "%.300s", resp.body);
    lst_resp_free(&resp);
    snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    raw_http(port_of(&st.bff), req, 0, &raw);
    cr_expect_eq(raw.status, 200, "%.300s", raw.text);
    json_object_put(raw.json);
    lst_call_as(&resp, st.services[LST_AUTH].daemon.base_url, st.services[LST_AUTH].token, "GET",
                "/users/" STR_ID(NAMELESS), NULL, NULL, NULL);
    cr_expect_eq(resp.status, 200, "%.300s", resp.body);
    lst_resp_free(&resp);
}

/* ---- 4: text ---- */

static void sign_in_as(lst_resp_t *resp, const char *user_json)
{
    char auth[TMA_MAX_LEN + 64], url[256];
    const char *headers[] = {auth, NULL};
    lst_stack_sign(&st, auth, sizeof(auth), 0, user_json);
    snprintf(url, sizeof(url), "%s/api/auth/telegram", st.bff.base_url);
    lst_http(resp, "POST", url, headers, NULL);
}

Test(edges, text_with_nul_or_bad_utf8_is_refused_never_cut_and_nothing_stored)
{
    static const struct {
        const char *user, *needle;
    } refused[] = {
        {"{\"id\":7201,\"first_name\":\"nul\\u0000byte\"}", "NUL"},
        {"{\"id\":7201,\"first_name\":\"Ann\",\"last_name\":\"x\\u0000\"}", "NUL"},
        {"{\"id\":7201,\"first_name\":\"\\ud800\"}", "surrogate"},
        {"{\"id\":7201,\"first_name\":\"\xc3(\"}", "UTF-8"},
    };
    lst_resp_t resp;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        sign_in_as(&resp, refused[i].user);
        lst_expect_problem(&resp, 400, refused[i].needle);
        lst_resp_free(&resp);
    }
    char *n = count(LST_AUTH, "SELECT count(*) FROM users WHERE telegram_id = 7201");
    cr_expect_str_eq(n, "0", "a refused sign-in stored its user");
    free(n);

    /* A service's own body parser refuses the same, whoever calls it. */
    const char *auth_url = st.services[LST_AUTH].daemon.base_url, *tok = st.services[LST_AUTH].token;
    lst_call_expect_problem(auth_url, tok, "PUT", "/users/7201", "{\"first_name\":\"nul\\u0000byte\"}",
                            "7201", 400, "NUL");
    lst_call_expect_problem(auth_url, tok, "PUT", "/users/7201", "{\"first_name\":\"\xff\"}", "7201", 400,
                            "UTF-8");
    lst_call_expect_problem(auth_url, tok, "PUT", "/users/7201", "{\"first_name\\u0000x\":\"A\"}", "7201",
                            400, "NUL");
    n = count(LST_AUTH, "SELECT count(*) FROM users WHERE telegram_id = 7201");
    cr_expect_str_eq(n, "0");
    free(n);

    /* Text that is fine arrives whole: UTF-8 as it is and escaped, a surrogate pair. */
    sign_in_as(&resp, "{\"id\":7201,\"first_name\":\"Zo\xc3\xab \\u00e9\\ud83d\\ude00\"}");
    cr_expect_eq(resp.status, 201, "%.300s", resp.body);
    lst_resp_free(&resp);
    n = count(LST_AUTH, "SELECT first_name FROM users WHERE telegram_id = 7201");
    cr_expect_str_eq(n, "Zo\xc3\xab \xc3\xa9\xf0\x9f\x98\x80");
    free(n);
}

/* ---- 5: numbers ---- */

Test(edges, non_finite_prices_are_refused_and_nothing_stored)
{
    static const char *const prices[] = {"NaN", "Infinity", "-Infinity", "1e999"};
    char body[256], path[128];
    lst_resp_t resp;

    lst_stack_api_ok(&st, &resp, TEACHER, "POST", "/api/auth/telegram", NULL, 201, 200);
    lst_resp_free(&resp);
    lst_stack_api_ok(&st, &resp, TEACHER, "PUT", "/api/teachers/me", "{\"bio\":\"b\"}", 201, 200);
    lst_resp_free(&resp);
    for (size_t i = 0; i < sizeof(prices) / sizeof(prices[0]); i++) {
        snprintf(
            body, sizeof(body),
            "{\"title\":\"Paid\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":5,\"is_free\":false,"
            "\"price\":%s}",
            prices[i]);
        lst_stack_api(&st, &resp, TEACHER, "POST", "/api/groups", body);
        lst_expect_problem(&resp, 400, "finite");
        lst_resp_free(&resp);
        lst_call_expect_problem(st.services[LST_GROUPS].daemon.base_url, token(), "POST", "/groups", body,
                                STR_ID(TEACHER), 400, "finite");
    }
    char *n = count(LST_GROUPS, "SELECT count(*) FROM groups");
    cr_expect_str_eq(n, "0", "a refused group was stored");
    free(n);

    lst_stack_api_ok(
        &st, &resp, TEACHER, "POST", "/api/groups",
        "{\"title\":\"Paid\",\"language_code\":\"en\",\"level\":\"B1\",\"capacity\":5,\"is_free\":false,"
        "\"price\":12.5}",
        201, 201);
    json_object *g = lst_field(resp.json, "group") != NULL ? lst_field(resp.json, "group") : resp.json;
    snprintf(path, sizeof(path), "/api/groups/%s", lst_str_field(g, "id"));
    lst_resp_free(&resp);
    for (size_t i = 0; i < sizeof(prices) / sizeof(prices[0]); i++) {
        snprintf(body, sizeof(body), "{\"price\":%s}", prices[i]);
        lst_stack_api(&st, &resp, TEACHER, "PATCH", path, body);
        lst_expect_problem(&resp, 400, "finite");
        lst_resp_free(&resp);
        lst_call_expect_problem(st.services[LST_GROUPS].daemon.base_url, token(), "PATCH", path + 4, body,
                                STR_ID(TEACHER), 400, "finite");
    }
    n = count(LST_GROUPS, "SELECT price::text FROM groups");
    cr_expect_str_eq(n, "12.50");
    free(n);
}
