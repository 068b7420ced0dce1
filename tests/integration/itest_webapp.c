/*
 * The Mini App's files served by the real bff (bff/static.h): the source tree's bff/web, and folders
 * the tests make with files of every kind — content types, ETag and 304, gzip, the redirects, 404
 * for a name not loaded, no way out of the folder, the limits at start — and the development
 * sign-in page: absent without DEV_SIGNIN, signed initData with it, refused on a non-loopback LISTEN.
 * /app/ needs no Authorization; /api/ still does. No service runs behind this bff: none is called.
 */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "tma.h"

#define BOT_TOKEN   "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
#define TELEGRAM_JS "<script src=\"https://telegram.org/js/telegram-web-app.js\"></script>"
#define INDEX_HTML                                                                                           \
    "<!doctype html><title>t</title>" TELEGRAM_JS "<script type=\"module\" src=\"app.js\"></script>\n"
#define SMALL_JS "export const x = 1;\n"

static char dir[64];
static char *token;
static lst_daemon_t bff;

/* ---- a WEB_ROOT of the test's own ---- */

static void put(const char *name, const char *body, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(body, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static char *big_css; /* compressible, over the gzip threshold */
static size_t big_css_len;

static void make_root(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ls-webapp.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    chmod(dir, 0755);
    put("index.html", INDEX_HTML, strlen(INDEX_HTML));
    put("app.js", SMALL_JS, strlen(SMALL_JS));
    big_css_len = 0;
    big_css = malloc(32768);
    while (big_css_len + 64 < 32768)
        big_css_len += (size_t)snprintf(big_css + big_css_len, 64,
                                        ".c%zu { color: var(--tg-theme-text-color); }\n", big_css_len % 97);
    put("app.css", big_css, big_css_len);
    put("icon.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>", 40);
    put("manifest.json", "{}", 2);
    put("logo.png", "\x89PNG\r\n\x1a\n", 8);
    /* Never served: a dotfile, an unknown type, a folder, a link out of the folder. */
    put(".secret.js", "secret", 6);
    put("notes.md", "# notes", 7);
    char path[256];
    snprintf(path, sizeof(path), "%s/sub", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/sub/inner.js", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(SMALL_JS, f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/passwd.txt", dir);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
}

static void remove_root(void)
{
    char cmd[128];
    if (dir[0] == '\0')
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
    dir[0] = '\0';
}

/* Starts bff with WEB_ROOT (NULL: the default) and extra settings; 0, or -1 when it would not start. */
static int try_start(lst_daemon_t *d, const char *root, const char *const *extra)
{
    static const char *const url_names[] = {"AUTH_URL",     "TEACHERS_URL",     "STUDENTS_URL", "GROUPS_URL",
                                            "CALENDAR_URL", "NOTIFICATION_URL", "PAYMENT_URL"};
    char tok[128], web[128], urls[7][64];
    const char *env[24] = {"BOT_TOKEN=" BOT_TOKEN, "LOG_LEVEL=info", "THREADS=1"};
    size_t n = 3;
    snprintf(tok, sizeof(tok), "INTERNAL_TOKEN=%s", token);
    env[n++] = tok;
    /* Nothing listens behind it: no service of another test answers in its place. */
    int dead_port = lst_free_port();
    for (size_t i = 0; i < 7; i++) {
        snprintf(urls[i], sizeof(urls[i]), "%s=http://127.0.0.1:%d", url_names[i], dead_port);
        env[n++] = urls[i];
    }
    if (root != NULL) {
        snprintf(web, sizeof(web), "WEB_ROOT=%s", root);
        env[n++] = web;
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    return lst_daemon_try_start(d, "bff/bff", env);
}

static void setup(void)
{
    token = lst_random_hex(24);
    make_root();
}

static void teardown(void)
{
    lst_daemon_expect_clean_stop(&bff);
    remove_root();
    free(big_css);
    big_css = NULL;
    free(token);
}

TestSuite(webapp, .init = setup, .fini = teardown, .timeout = 120);

/* GET path with the given headers (NULL-terminated, may be NULL). */
static int get(lst_resp_t *resp, const char *path, const char *const *headers)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", bff.base_url, path);
    return lst_http(resp, "GET", url, headers, NULL);
}

static void expect_header(const lst_resp_t *resp, const char *name, const char *want)
{
    char *v = lst_resp_header(resp, name);
    if (want == NULL)
        cr_expect_null(v, "header %s: %s", name, v);
    else
        cr_expect(v != NULL && strcmp(v, want) == 0, "header %s: %s, not %s", name, v ? v : "(none)", want);
    free(v);
}

/* ---- the source tree's app ---- */

Test(webapp, the_app_of_the_source_tree_is_served_without_authorization)
{
    cr_assert_eq(try_start(&bff, NULL, NULL), 0, "bff did not start; see %s", bff.log_path);
    lst_resp_t resp;
    cr_expect_eq(get(&resp, "/app/", NULL), 200);
    expect_header(&resp, "content-type", "text/html; charset=utf-8");
    cr_expect_not_null(strstr(resp.body, TELEGRAM_JS), "production index.html loads Telegram's script");
    cr_expect_null(strstr(resp.body, "tg-stub.js"), "and no stub");
    char *csp = lst_resp_header(&resp, "content-security-policy");
    cr_expect(csp != NULL && strstr(csp, "connect-src 'self'") != NULL, "CSP: %s", csp ? csp : "(none)");
    free(csp);
    lst_resp_free(&resp);
    static const struct {
        const char *path, *type;
    } files[] = {{"/app/index.html", "text/html; charset=utf-8"},
                 {"/app/app.css", "text/css; charset=utf-8"},
                 {"/app/app.js", "text/javascript; charset=utf-8"},
                 {"/app/api.js", "text/javascript; charset=utf-8"},
                 {"/app/tg-stub.js", "text/javascript; charset=utf-8"}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        cr_expect_eq(get(&resp, files[i].path, NULL), 200, "%s", files[i].path);
        expect_header(&resp, "content-type", files[i].type);
        expect_header(&resp, "x-content-type-options", "nosniff");
        lst_resp_free(&resp);
    }
    /* The API is not opened by it. */
    cr_expect_eq(get(&resp, "/api/user/profile/42", NULL), 401);
    lst_resp_free(&resp);
}

/* ---- a folder of the test's own ---- */

Test(webapp, content_types_caching_and_the_redirects)
{
    cr_assert_eq(try_start(&bff, dir, NULL), 0, "bff did not start; see %s", bff.log_path);
    static const struct {
        const char *path, *type;
    } files[] = {
        {"/app/", "text/html; charset=utf-8"},       {"/app/app.js", "text/javascript; charset=utf-8"},
        {"/app/app.css", "text/css; charset=utf-8"}, {"/app/icon.svg", "image/svg+xml"},
        {"/app/manifest.json", "application/json"},  {"/app/logo.png", "image/png"}};
    lst_resp_t resp;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        cr_expect_eq(get(&resp, files[i].path, NULL), 200, "%s", files[i].path);
        expect_header(&resp, "content-type", files[i].type);
        expect_header(&resp, "cache-control", "no-cache");
        expect_header(&resp, "content-encoding", NULL);
        lst_resp_free(&resp);
    }
    cr_expect_eq(get(&resp, "/app/app.js", NULL), 200);
    cr_expect_eq(resp.len, strlen(SMALL_JS));
    cr_expect_eq(memcmp(resp.body, SMALL_JS, resp.len), 0);

    /* ETag: the same bytes answer 304 to a client that has them, in every form of If-None-Match. */
    char *etag = lst_resp_header(&resp, "etag");
    lst_resp_free(&resp);
    cr_assert(etag != NULL && etag[0] == '"' && strlen(etag) > 20, "etag %s", etag ? etag : "(none)");
    char h1[128], h2[128], h3[160];
    snprintf(h1, sizeof(h1), "If-None-Match: %s", etag);
    snprintf(h2, sizeof(h2), "If-None-Match: W/%s", etag);
    snprintf(h3, sizeof(h3), "If-None-Match: \"other\", %s", etag);
    const char *const matching[][2] = {{h1, NULL}, {h2, NULL}, {h3, NULL}, {"If-None-Match: *", NULL}};
    for (size_t i = 0; i < 4; i++) {
        cr_expect_eq(get(&resp, "/app/app.js", matching[i]), 304, "%s", matching[i][0]);
        cr_expect_eq(resp.len, 0);
        expect_header(&resp, "etag", etag);
        expect_header(&resp, "content-length", NULL);
        lst_resp_free(&resp);
    }
    const char *const other[] = {"If-None-Match: \"0123\"", NULL};
    cr_expect_eq(get(&resp, "/app/app.js", other), 200);
    lst_resp_free(&resp);
    /* Another file has another tag. */
    cr_expect_eq(get(&resp, "/app/icon.svg", matching[0]), 200);
    lst_resp_free(&resp);
    free(etag);

    /* GET / and /app lead to /app/. */
    const char *paths[] = {"/", "/app"};
    for (size_t i = 0; i < 2; i++) {
        cr_expect_eq(get(&resp, paths[i], NULL), 302, "%s", paths[i]);
        expect_header(&resp, "location", "/app/");
        lst_resp_free(&resp);
    }
}

static size_t gunzip(const char *in, size_t len, char *out, size_t cap)
{
    z_stream z = {0};
    cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    cr_assert_eq(rc, Z_STREAM_END, "not a whole gzip stream (%d)", rc);
    return z.total_out;
}

Test(webapp, text_is_gzipped_once_for_the_clients_that_take_it)
{
    cr_assert_eq(try_start(&bff, dir, NULL), 0, "bff did not start; see %s", bff.log_path);
    const char *const gzip_ok[] = {"Accept-Encoding: deflate, gzip, br", NULL};
    lst_resp_t plain, gz;

    cr_expect_eq(get(&plain, "/app/app.css", NULL), 200);
    cr_expect_eq(plain.len, big_css_len);
    expect_header(&plain, "content-encoding", NULL);
    expect_header(&plain, "vary", "accept-encoding");
    cr_expect_eq(get(&gz, "/app/app.css", gzip_ok), 200);
    expect_header(&gz, "content-encoding", "gzip");
    expect_header(&gz, "vary", "accept-encoding");
    expect_header(&gz, "content-type", "text/css; charset=utf-8");
    cr_expect_lt(gz.len, big_css_len / 4, "compressed %zu of %zu bytes", gz.len, big_css_len);
    char *out = malloc(big_css_len + 1);
    cr_expect_eq(gunzip(gz.body, gz.len, out, big_css_len + 1), big_css_len);
    cr_expect_eq(memcmp(out, big_css, big_css_len), 0, "the gzip copy holds the file");
    free(out);

    /* Each representation has its own tag, and a 304 answers the one asked for. */
    char *t_plain = lst_resp_header(&plain, "etag"), *t_gz = lst_resp_header(&gz, "etag");
    cr_assert(t_plain != NULL && t_gz != NULL);
    cr_expect_str_neq(t_plain, t_gz);
    char inm[128];
    snprintf(inm, sizeof(inm), "If-None-Match: %s", t_gz);
    const char *const revalidate[] = {"Accept-Encoding: gzip", inm, NULL};
    lst_resp_free(&gz);
    cr_expect_eq(get(&gz, "/app/app.css", revalidate), 304);
    lst_resp_free(&gz);
    free(t_plain);
    free(t_gz);
    lst_resp_free(&plain);

    /* Small files and images are sent as they are. */
    const char *small[] = {"/app/app.js", "/app/logo.png"};
    for (size_t i = 0; i < 2; i++) {
        cr_expect_eq(get(&gz, small[i], gzip_ok), 200);
        expect_header(&gz, "content-encoding", NULL);
        expect_header(&gz, "vary", NULL);
        lst_resp_free(&gz);
    }
}

Test(webapp, only_the_loaded_files_and_no_way_out_of_the_folder)
{
    cr_assert_eq(try_start(&bff, dir, NULL), 0, "bff did not start; see %s", bff.log_path);
    static const struct {
        const char *path;
        int status;
    } refused[] = {
        {"/app/nothing.js", 404},
        {"/app/.secret.js", 404},
        {"/app/notes.md", 404},
        {"/app/sub", 404},
        {"/app/passwd.txt", 404},
        {"/app/sub/inner.js", 404},
        {"/app/dev?as=7000021", 404}, /* no DEV_SIGNIN */
        {"/app/%2e%2e/%2e%2e/etc/passwd", 400},
        {"/app/..%2f..%2fetc%2fpasswd", 400},
        {"/app/%2e%2e", 400},
        {"/app/..%5c..%5cetc%5cpasswd", 400},
        {"/app/app.js%00.png", 400},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        lst_resp_t resp;
        cr_expect_eq(get(&resp, refused[i].path, NULL), refused[i].status, "%s: %d %.200s", refused[i].path,
                     resp.status, resp.body);
        lst_expect_problem(&resp, refused[i].status, NULL);
        cr_expect_null(strstr(resp.body, "root:"), "%s leaked a file", refused[i].path);
        lst_resp_free(&resp);
    }
    /* The skipped entries are logged with their reason. */
    json_object *lines = lst_log_wait(&bff, (const char *const[]){"web file skipped", "notes.md", NULL}, 1);
    cr_expect_eq(json_object_array_length(lines), 1, "see %s", bff.log_path);
    json_object_put(lines);
}

Test(webapp, the_limits_and_a_missing_index_stop_the_start)
{
    lst_daemon_t d;
    /* Over the limit of a file: refused, and the log says why. */
    size_t len = 1024 * 1024 + 1;
    char *big = malloc(len);
    memset(big, 'a', len);
    put("big.txt", big, len);
    free(big);
    cr_expect_eq(try_start(&d, dir, NULL), -1, "started with a file over 1 MiB");
    json_object *lines = lst_log_lines(&d, (const char *const[]){"big.txt", "limit", NULL});
    cr_expect_gt(json_object_array_length(lines), 0, "the log names the file; see %s", d.log_path);
    json_object_put(lines);

    /* No index.html. */
    char path[256];
    snprintf(path, sizeof(path), "%s/big.txt", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/index.html", dir);
    unlink(path);
    cr_expect_eq(try_start(&d, dir, NULL), -1, "started without index.html");
    lines = lst_log_lines(&d, (const char *const[]){"no index.html", NULL});
    cr_expect_gt(json_object_array_length(lines), 0, "see %s", d.log_path);
    json_object_put(lines);

    /* A folder that is not there. */
    cr_expect_eq(try_start(&d, "/nonexistent/web", NULL), -1, "started without its folder");
}

/* ---- development sign-in ---- */

/* The initData of the dev page's meta tag, unescaped, into out. */
static void dev_init_data(const char *page, char *out, size_t size)
{
    static const char meta[] = "<meta name=\"ls-dev-init-data\" content=\"";
    const char *at = strstr(page, meta);
    cr_assert_not_null(at, "no meta tag in %.300s", page);
    at += sizeof(meta) - 1;
    size_t o = 0;
    for (; *at != '"' && *at != '\0' && o + 1 < size; at++) {
        if (strncmp(at, "&amp;", 5) == 0) {
            out[o++] = '&';
            at += 4;
        } else {
            out[o++] = *at;
        }
    }
    out[o] = '\0';
}

Test(webapp, the_dev_page_signs_in_as_the_person_asked_for)
{
    const char *const dev[] = {"DEV_SIGNIN=on", NULL};
    cr_assert_eq(try_start(&bff, dir, dev), 0, "bff did not start; see %s", bff.log_path);
    lst_resp_t resp;
    cr_expect_eq(
        get(&resp, "/app/dev?as=7000021&first_name=Maria&username=demo_maria&startapp=abc_DEF-1", NULL), 200,
        "%.300s", resp.body);
    expect_header(&resp, "content-type", "text/html; charset=utf-8");
    expect_header(&resp, "cache-control", "no-store");
    cr_expect_null(strstr(resp.body, TELEGRAM_JS), "Telegram's script is replaced");
    cr_expect_not_null(strstr(resp.body, "<script src=\"tg-stub.js\"></script>"));
    cr_expect_not_null(strstr(resp.body, "<script type=\"module\" src=\"app.js\"></script>"),
                       "the rest is index.html");

    char data[TMA_MAX_LEN + 1];
    dev_init_data(resp.body, data, sizeof(data));
    lst_resp_free(&resp);
    unsigned char key[TMA_KEY_BYTES];
    tma_user_t user;
    const char *reason = NULL;
    cr_assert_geq(sodium_init(), 0);
    tma_derive_key(BOT_TOKEN, key);
    cr_expect_eq(tma_validate(data, strlen(data), key, (int64_t)time(NULL), 3600, &user, &reason), 0,
                 "the page's initData is valid for the bot: %s", reason ? reason : "");
    cr_expect_eq(user.telegram_id, 7000021);
    cr_expect_str_eq(user.first_name, "Maria");
    cr_expect_str_eq(user.username, "demo_maria");
    cr_expect_not_null(strstr(data, "start_param=abc_DEF-1"), "%s", data);

    /* The BFF takes it: the profile call is authenticated (no service runs: 503, not 401). */
    char auth[TMA_MAX_LEN + 32];
    snprintf(auth, sizeof(auth), "Authorization: tma %s", data);
    const char *const headers[] = {auth, NULL};
    cr_expect_neq(get(&resp, "/api/user/profile/7000021", headers), 401, "%.200s", resp.body);
    lst_resp_free(&resp);

    cr_expect_eq(get(&resp, "/app/dev", NULL), 400);
    lst_expect_problem(&resp, 400, "as");
    lst_resp_free(&resp);
    cr_expect_eq(get(&resp, "/app/dev?as=-5", NULL), 400);
    lst_resp_free(&resp);
}

Test(webapp, dev_signin_is_refused_where_others_could_reach_it)
{
    lst_daemon_t d;
    char listen[64];
    snprintf(listen, sizeof(listen), "LISTEN=0.0.0.0:%d", lst_free_port());
    const char *const open_listen[] = {"DEV_SIGNIN=on", listen, NULL};
    cr_expect_eq(try_start(&d, dir, open_listen), -1, "started with DEV_SIGNIN on 0.0.0.0");
    json_object *lines = lst_log_lines(&d, (const char *const[]){"DEV_SIGNIN", "loopback", NULL});
    cr_expect_gt(json_object_array_length(lines), 0, "the log says why; see %s", d.log_path);
    json_object_put(lines);

    const char *const proxy[] = {"DEV_SIGNIN=on", "TRUSTED_PROXY=127.0.0.1", NULL};
    cr_expect_eq(try_start(&d, dir, proxy), -1, "started with DEV_SIGNIN behind a proxy");
    lines = lst_log_lines(&d, (const char *const[]){"DEV_SIGNIN", "TRUSTED_PROXY", NULL});
    cr_expect_gt(json_object_array_length(lines), 0, "the log says why; see %s", d.log_path);
    json_object_put(lines);

    /* And an index.html without Telegram's script cannot carry the stub. */
    put("index.html", "<!doctype html>", 15);
    const char *const dev[] = {"DEV_SIGNIN=on", NULL};
    cr_expect_eq(try_start(&d, dir, dev), -1, "started with DEV_SIGNIN and no script tag to replace");
}
