/*
 * Unix-socket transport between the daemons: a daemon listens on TCP and a Unix socket at once,
 * clears a stale socket file, refuses a path that is in use or not a socket, removes its socket at
 * SIGTERM; and the BFF reaches a service that listens on a Unix socket only.
 */
#include <criterion/criterion.h>

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* docs/ARCHITECTURE.md §7's public vector: valid with the age check off (INIT_DATA_MAX_AGE=0). */
#define BOT_TOKEN   "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
#define VECTOR_USER 279058397
#define VECTOR                                                                                               \
    "query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22%"   \
    "2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%"  \
    "2C%22is_premium%22%3Atrue%7D&auth_date=1662771648&hash="                                                \
    "c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2"

#define WAIT_MS 15000

static char dir[256];
static char *token;

static void setup(void)
{
    const char *t = getenv("TMPDIR");
    /* sun_path is short: stay in /tmp unless TMPDIR is as short */
    snprintf(dir, sizeof(dir), "%s/lst-unix-XXXXXX", t != NULL && *t != '\0' && strlen(t) < 40 ? t : "/tmp");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    /* The daemons switch users after binding: they must reach their sockets and remove them. */
    lst_give_to_daemons(dir);
    token = lst_random_hex(24);
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
    free(token);
    curl_global_cleanup();
}

TestSuite(unix_socket, .init = setup, .fini = teardown, .timeout = 120);

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void sock_path(char *out, size_t size, const char *name)
{
    int n = snprintf(out, size, "%s/%s.sock", dir, name);
    cr_assert(n > 0 && (size_t)n < size, "socket path fits: %s/%s.sock", dir, name);
}

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

typedef struct {
    long status;
    char body[4096];
    size_t len;
} uresp_t;

static size_t keep(char *p, size_t size, size_t n, void *ud)
{
    uresp_t *r = ud;
    size_t take = size * n;
    if (take > sizeof(r->body) - 1 - r->len)
        take = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return size * n;
}

/* GET path over the Unix socket at sock; returns the status, 0 when nothing answered. */
static long unix_get(const char *sock, const char *path, uresp_t *out)
{
    char url[512];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    CURL *h = curl_easy_init();
    cr_assert_not_null(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    } else {
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    }
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (out != NULL)
        out->status = status;
    return status;
}

/* Polls GET /healthz over the socket (bounded); fails the test if the daemon exits or never answers. */
static void wait_unix_healthy(lst_daemon_t *d, const char *sock)
{
    double deadline = now_ms() + WAIT_MS;
    for (;;) {
        int status;
        cr_assert_eq(waitpid(d->pid, &status, WNOHANG), 0, "%s exited; see %s", d->name, d->log_path);
        if (unix_get(sock, "/healthz", NULL) == 200)
            return;
        cr_assert(now_ms() < deadline, "%s did not answer on %s; see %s", d->name, sock, d->log_path);
        usleep(20 * 1000);
    }
}

/* Waits (bounded) for a daemon that must refuse to start; returns its exit status. */
static int wait_exit(lst_daemon_t *d)
{
    double deadline = now_ms() + WAIT_MS;
    int status;
    while (waitpid(d->pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &status, 0);
            d->pid = 0;
            cr_assert_fail("%s kept running; see %s", d->name, d->log_path);
        }
        usleep(20 * 1000);
    }
    d->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int log_contains(const lst_daemon_t *d, const char *needle)
{
    char line[4096];
    int found = 0;
    FILE *fp = fopen(d->log_path, "r");
    if (fp == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), fp) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(fp);
    return found;
}

/* The BFF needs no database: the simplest daemon to start. The harness talks to the first TCP
 * address of the LISTEN list. */
static void spawn_bff(lst_daemon_t *d, const char *listen, char *listen_var, size_t size)
{
    snprintf(listen_var, size, "LISTEN=%s", listen);
    char token_var[128];
    snprintf(token_var, sizeof(token_var), "INTERNAL_TOKEN=%s", token);
    const char *env[] = {listen_var, token_var, "BOT_TOKEN=" BOT_TOKEN, "THREADS=2", "LOG_LEVEL=info", NULL};
    lst_daemon_spawn(d, "bff/bff", env);
}

static int is_socket(const char *path, mode_t *mode)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return 0;
    if (mode != NULL)
        *mode = st.st_mode & 07777;
    return 1;
}

Test(unix_socket, a_daemon_answers_on_tcp_and_unix_and_removes_its_socket_at_sigterm)
{
    char sock[108], addrs[400], var[450];
    sock_path(sock, sizeof(sock), "bff");
    snprintf(addrs, sizeof(addrs), "127.0.0.1:%d,unix:%s", lst_free_port(), sock);
    lst_daemon_t d;
    spawn_bff(&d, addrs, var, sizeof(var));
    cr_assert_eq(lst_daemon_wait_healthy(&d), 0, "bff did not start on TCP; see %s", d.log_path);
    wait_unix_healthy(&d, sock);

    mode_t mode = 0;
    cr_assert(is_socket(sock, &mode));
    cr_expect_eq(mode, 0660, "socket mode %o", (unsigned)mode);
    char want[400];
    snprintf(want, sizeof(want), "\"listen\":\"127.0.0.1:%d,unix:%s\"", d.port, sock);
    cr_expect(log_contains(&d, want), "the listening line names every address (%s); see %s", want,
              d.log_path);

    /* Many requests over the socket: both workers accept from it, none is lost. */
    for (int i = 0; i < 40; i++) {
        uresp_t r;
        cr_assert_eq(unix_get(sock, "/healthz", &r), 200, "request %d", i);
        cr_assert(strstr(r.body, "ok") != NULL, "%s", r.body);
    }
    lst_resp_t tr;
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", d.base_url);
    cr_expect_eq(lst_http(&tr, "GET", url, NULL, NULL), 200);
    lst_resp_free(&tr);
    /* a route that needs authentication answers 401 the same way on the socket */
    cr_expect_eq(unix_get(sock, "/api/user/profile/1", NULL), 401);

    cr_assert_eq(lst_daemon_stop(&d), 0, "clean exit; see %s", d.log_path);
    cr_expect_eq(access(sock, F_OK), -1, "socket file removed at SIGTERM");
}

Test(unix_socket, a_stale_socket_file_is_replaced)
{
    char sock[108], addrs[400], var[450];
    sock_path(sock, sizeof(sock), "stale");
    /* What a daemon killed with SIGKILL leaves: a socket file nobody listens on. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    cr_assert(is_socket(sock, NULL));

    snprintf(addrs, sizeof(addrs), "unix:%s,127.0.0.1:%d", sock, lst_free_port());
    lst_daemon_t d;
    spawn_bff(&d, addrs, var, sizeof(var));
    cr_assert_eq(lst_daemon_wait_healthy(&d), 0, "bff did not start over a stale socket; see %s", d.log_path);
    wait_unix_healthy(&d, sock);
    cr_expect(log_contains(&d, "stale"), "the removal is logged; see %s", d.log_path);
    cr_assert_eq(lst_daemon_stop(&d), 0);
    cr_expect_eq(access(sock, F_OK), -1);
}

Test(unix_socket, a_regular_file_at_the_path_stops_the_start)
{
    char sock[108], addrs[400], var[450];
    sock_path(sock, sizeof(sock), "file");
    FILE *fp = fopen(sock, "w");
    cr_assert_not_null(fp);
    fputs("precious", fp);
    fclose(fp);

    snprintf(addrs, sizeof(addrs), "127.0.0.1:%d,unix:%s", lst_free_port(), sock);
    lst_daemon_t d;
    spawn_bff(&d, addrs, var, sizeof(var));
    int status = wait_exit(&d);
    cr_expect_neq(status, 0, "bff must not start");
    cr_expect(log_contains(&d, "not a socket"), "it says why; see %s", d.log_path);
    struct stat st;
    cr_assert_eq(lstat(sock, &st), 0, "the file is left alone");
    cr_expect(S_ISREG(st.st_mode));
    cr_expect_eq(st.st_size, 8);
}

Test(unix_socket, a_socket_in_use_stops_the_start_and_is_kept)
{
    char sock[108], addrs[400], var[450];
    sock_path(sock, sizeof(sock), "busy");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 8), 0);

    snprintf(addrs, sizeof(addrs), "unix:%s,127.0.0.1:%d", sock, lst_free_port());
    lst_daemon_t d;
    spawn_bff(&d, addrs, var, sizeof(var));
    cr_expect_neq(wait_exit(&d), 0, "bff must not start");
    cr_expect(log_contains(&d, "already in use"), "it says why; see %s", d.log_path);
    cr_expect(is_socket(sock, NULL), "the live socket is not removed");
    close(fd);
}

Test(unix_socket, bad_listen_values_stop_the_start_with_a_message)
{
    static const struct {
        const char *listen;
        const char *says;
    } cases[] = {
        {"unix:relative.sock", "must be absolute"},
        {"127.0.0.1:1,,127.0.0.1:2", "empty address"},
        {":1,:2,:3,:4,:5", "at most 4"},
        {"unix:/tmp/"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
         "sock",
         "at most 107 bytes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char var[300];
        lst_daemon_t d;
        spawn_bff(&d, cases[i].listen, var, sizeof(var));
        cr_expect_eq(wait_exit(&d), 2, "LISTEN=%s: exit status 2", cases[i].listen);
        cr_expect(log_contains(&d, cases[i].says), "LISTEN=%s: says '%s'; see %s", cases[i].listen,
                  cases[i].says, d.log_path);
    }
}

/* The BFF signs a user in through auth-service, which listens on a Unix socket only. */
Test(unix_socket, the_bff_reaches_a_service_over_a_unix_socket)
{
    char sock[108], auth_listen[400], conninfo_var[1200], token_var[128], key_var[128], url_var[400];
    sock_path(sock, sizeof(sock), "auth");
    snprintf(auth_listen, sizeof(auth_listen), "LISTEN=unix:%s", sock);
    char *conninfo = lst_db_create("auth", NULL);
    char *key = lst_random_hex(32);
    snprintf(conninfo_var, sizeof(conninfo_var), "DATABASE_URL=%s", conninfo);
    snprintf(token_var, sizeof(token_var), "INTERNAL_TOKEN=%s", token);
    snprintf(key_var, sizeof(key_var), "AUTH_DATA_KEY=%s", key);
    const char *auth_env[] = {auth_listen, conninfo_var,     token_var, key_var,
                              "THREADS=1", "LOG_LEVEL=info", NULL};
    lst_daemon_t auth;
    lst_daemon_spawn(&auth, "services/auth/auth-service", auth_env);
    wait_unix_healthy(&auth, sock);
    cr_expect_eq(unix_get(sock, "/readyz", NULL), 200);

    snprintf(url_var, sizeof(url_var), "AUTH_URL=unix:%s", sock);
    const char *bff_env[] = {token_var,   "BOT_TOKEN=" BOT_TOKEN, "INIT_DATA_MAX_AGE=0",
                             "THREADS=1", "LOG_LEVEL=info",       url_var,
                             NULL};
    lst_daemon_t bff;
    lst_daemon_start(&bff, "bff/bff", bff_env);

    char url[256];
    const char *hdrs[] = {"Authorization: tma " VECTOR, NULL};
    lst_resp_t r;
    snprintf(url, sizeof(url), "%s/api/auth/telegram", bff.base_url);
    cr_assert_eq(lst_http(&r, "POST", url, hdrs, NULL), 201, "sign-in: %s", r.body ? r.body : "");
    json_object *user = lst_field(r.json, "user");
    cr_expect_eq(json_object_get_int64(lst_field(user, "telegram_id")), VECTOR_USER);
    cr_expect(json_object_get_boolean(lst_field(r.json, "created")));
    lst_resp_free(&r);

    /* again: the user now exists, read back over the same kept-alive socket connection */
    cr_assert_eq(lst_http(&r, "POST", url, hdrs, NULL), 200);
    cr_expect(!json_object_get_boolean(lst_field(r.json, "created")));
    lst_resp_free(&r);

    cr_expect_eq(lst_daemon_stop(&bff), 0, "bff exits cleanly; see %s", bff.log_path);
    cr_expect_eq(lst_daemon_stop(&auth), 0, "auth-service exits cleanly; see %s", auth.log_path);
    cr_expect_eq(access(sock, F_OK), -1, "socket removed");
    free(conninfo);
    free(key);
}
