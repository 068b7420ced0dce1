/*
 * Least privilege of a running daemon (issue 14): started by root it serves as its RUN_AS user with
 * no capability, under the seccomp filter on every thread; SECCOMP=off leaves the filter out; root
 * without RUN_AS, or with a RUN_AS that does not exist or is root, does not start (exit 2, saying
 * why). The refusals of the filter itself are tested in tests/unit/test_sandbox.c.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define TEACHERS "services/teachers/teachers-service"

TestSuite(sandbox, .timeout = 120);

/* The value of one line of /proc/<pid>/task/<tid>/status ("Seccomp", "Uid", ...), tabs and all, in
 * out; 0 when the line is missing. */
static int status_field(pid_t pid, const char *task, const char *field, char *out, size_t size)
{
    char path[128], line[512];
    if (task != NULL)
        snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, task);
    else
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    size_t flen = strlen(field);
    int found = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            const char *v = line + flen + 1;
            while (*v == '\t' || *v == ' ')
                v++;
            snprintf(out, size, "%.*s", (int)strcspn(v, "\n"), v);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* The uid a daemon started by these tests runs as: LST_DAEMON_USER's when we are root, else ours. */
static uid_t daemon_uid(gid_t *gid)
{
    if (geteuid() != 0) {
        *gid = getegid();
        return geteuid();
    }
    struct passwd *pw = getpwnam(LST_DAEMON_USER);
    cr_assert_not_null(pw, "no user %s", LST_DAEMON_USER);
    *gid = pw->pw_gid;
    return pw->pw_uid;
}

/* Every thread of pid runs under the daemon's filter (or, want_filter 0, under none beyond those of this
 * test process, e.g. a container's), as uid/gid. */
static void expect_threads(pid_t pid, int want_filter, uid_t uid, gid_t gid)
{
    char dirpath[64], v[256], want_uid[64], want_gid[64];
    snprintf(dirpath, sizeof(dirpath), "/proc/%d/task", (int)pid);
    snprintf(want_uid, sizeof(want_uid), "%u\t%u\t%u\t%u", uid, uid, uid, uid);
    snprintf(want_gid, sizeof(want_gid), "%u\t%u\t%u\t%u", gid, gid, gid, gid);
    char own_mode[16];
    long own_filters = -1; /* Seccomp_filters: Linux 5.9 and later */
    cr_assert(status_field(getpid(), NULL, "Seccomp", own_mode, sizeof(own_mode)));
    if (status_field(getpid(), NULL, "Seccomp_filters", v, sizeof(v)))
        own_filters = atol(v);
    DIR *d = opendir(dirpath);
    cr_assert_not_null(d, "cannot read %s", dirpath);
    int threads = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        threads++;
        /* Counted against our own filters: a container runtime puts every process under one of its own. */
        cr_assert(status_field(pid, e->d_name, "Seccomp", v, sizeof(v)));
        cr_expect_str_eq(v, want_filter ? "2" : own_mode, "thread %s: Seccomp %s", e->d_name, v);
        if (own_filters >= 0) {
            cr_assert(status_field(pid, e->d_name, "Seccomp_filters", v, sizeof(v)));
            cr_expect_eq(atol(v), own_filters + (want_filter ? 1 : 0), "thread %s: %s filters, we have %ld",
                         e->d_name, v, own_filters);
        }
        cr_assert(status_field(pid, e->d_name, "Uid", v, sizeof(v)));
        cr_expect_str_eq(v, want_uid, "thread %s: Uid %s", e->d_name, v);
        cr_assert(status_field(pid, e->d_name, "Gid", v, sizeof(v)));
        cr_expect_str_eq(v, want_gid, "thread %s: Gid %s", e->d_name, v);
        cr_assert(status_field(pid, e->d_name, "CapEff", v, sizeof(v)));
        if (geteuid() == 0)
            cr_expect_str_eq(v, "0000000000000000", "thread %s: capabilities %s after the switch", e->d_name,
                             v);
    }
    closedir(d);
    /* The main thread and THREADS=2 workers at least. */
    cr_expect_geq(threads, 3, "%d threads", threads);
}

/* A write and a read through the service's API, and its /metrics (which reads /proc). */
static void expect_serving(const lst_service_t *s)
{
    lst_resp_t resp;
    lst_call_as(&resp, s->daemon.base_url, s->token, "PUT", "/teachers/4242", "{}", "4242", NULL);
    cr_expect_eq(resp.status, 201, "PUT: %d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    lst_call_as(&resp, s->daemon.base_url, s->token, "GET", "/teachers/4242", NULL, "4242", NULL);
    cr_expect_eq(resp.status, 200, "GET: %d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    free(lst_metrics_text(s->daemon.base_url, s->token));
}

Test(sandbox, a_daemon_serves_as_its_user_under_the_filter_on_every_thread)
{
    lst_service_t s = {0};
    lst_service_start(&s, TEACHERS, "sandbox", NULL);
    gid_t gid;
    uid_t uid = daemon_uid(&gid);
    char v[64];
    cr_assert(status_field(s.daemon.pid, NULL, "NoNewPrivs", v, sizeof(v)));
    cr_expect_str_eq(v, "1");
    expect_serving(&s);
    /* After the requests: threads made meanwhile (look-ups) would be under the filter too. */
    expect_threads(s.daemon.pid, 1, uid, gid);
    /* A clean stop under the filter: exit 0 (and, under ASan, no leak). */
    lst_service_destroy(&s);
}

Test(sandbox, seccomp_off_leaves_the_filter_out_but_not_the_switch)
{
    lst_service_t s = {0};
    const char *env[] = {"SECCOMP=off", NULL};
    lst_service_start(&s, TEACHERS, "sandbox", env);
    gid_t gid;
    uid_t uid = daemon_uid(&gid);
    expect_serving(&s);
    expect_threads(s.daemon.pid, 0, uid, gid);
    lst_service_destroy(&s);
}

/* The daemon's Unix socket file belongs to its user, who may then remove it at shutdown. */
Test(sandbox, the_unix_socket_file_is_the_users)
{
    char dir[64], sock[96], listen_var[128];
    snprintf(dir, sizeof(dir), "/tmp/lst-sandbox-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    lst_give_to_daemons(dir);
    snprintf(sock, sizeof(sock), "%s/t.sock", dir);
    int port = lst_free_port();
    snprintf(listen_var, sizeof(listen_var), "LISTEN=127.0.0.1:%d,unix:%s", port, sock);
    lst_service_t s = {0};
    const char *env[] = {listen_var, NULL};
    lst_service_start(&s, TEACHERS, "sandbox", env);
    gid_t gid;
    uid_t uid = daemon_uid(&gid);
    struct stat st;
    cr_assert_eq(lstat(sock, &st), 0);
    cr_expect_eq(st.st_uid, uid, "socket owned by %u", (unsigned)st.st_uid);
    cr_expect_eq(st.st_mode & 0777, 0660);
    lst_service_destroy(&s);
    cr_expect_neq(lstat(sock, &st), 0, "the socket file is removed at shutdown");
    rmdir(dir);
}

/* Starts teachers with extra settings and expects it to exit 2 with needle in its log. */
static void expect_refused_start(const char *const *extra, const char *needle)
{
    char *conninfo = lst_db_create("sandbox", NULL);
    char db[4200];
    snprintf(db, sizeof(db), "DATABASE_URL=%s", conninfo);
    const char *env[8] = {db, "INTERNAL_TOKEN=0123456789abcdef0123", "LOG_LEVEL=debug"};
    size_t n = 3;
    for (size_t i = 0; extra[i] != NULL && n < 7; i++)
        env[n++] = extra[i];
    lst_daemon_t d;
    lst_daemon_spawn(&d, TEACHERS, env);
    int status = 0;
    for (int i = 0; i < 1000 && waitpid(d.pid, &status, WNOHANG) == 0; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (kill(d.pid, 0) == 0) {
        kill(d.pid, SIGKILL);
        waitpid(d.pid, &status, 0);
        cr_assert_fail("the daemon did not exit within 10 s");
    }
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2, "exit status %d", WEXITSTATUS(status));
    FILE *f = fopen(d.log_path, "r");
    cr_assert_not_null(f);
    char log[4096];
    size_t len = fread(log, 1, sizeof(log) - 1, f);
    log[len] = '\0';
    fclose(f);
    cr_expect_not_null(strstr(log, needle), "log says %s: %s", needle, log);
    free(conninfo);
}

Test(sandbox, root_needs_run_as_and_run_as_must_be_an_unprivileged_user_we_can_become)
{
    if (geteuid() == 0) {
        /* The harness gives every daemon RUN_AS: an empty one counts as unset. */
        const char *unset[] = {"RUN_AS=", NULL};
        expect_refused_start(unset, "RUN_AS is required when started as root");
        const char *root[] = {"RUN_AS=root", NULL};
        expect_refused_start(root, "must not be root");
    } else {
        const char *root[] = {"RUN_AS=root", NULL};
        expect_refused_start(root, "cannot switch users");
    }
    const char *unknown[] = {"RUN_AS=lst_no_such_user", NULL};
    expect_refused_start(unknown, "RUN_AS=lst_no_such_user: no such user");
}
