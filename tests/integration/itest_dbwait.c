/*
 * A database that comes up after its service (issue 13): the daemon waits for it, up to
 * DATABASE_WAIT_MS, logging each failed attempt without the password, then migrates and serves;
 * when the wait is over it exits 1 with the reason. The database is reached over TCP through the
 * host name "localhost", as a container reaches "db-teachers": the start-up connection and the
 * workers' pool (whose lookup runs off the loop, resolve.h) both go through the name.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define TEACHERS "services/teachers/teachers-service"

static void pause_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The whole log as one string (malloc'ed). */
static char *read_log(const lst_daemon_t *d)
{
    FILE *f = fopen(d->log_path, "r");
    cr_assert_not_null(f, "cannot read %s", d->log_path);
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    size_t len = fread(buf, 1, cap - 1, f);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static size_t count_lines(const lst_daemon_t *d, const char *needle)
{
    const char *needles[] = {needle, NULL};
    json_object *lines = lst_log_wait(d, needles, 1);
    size_t n = json_object_array_length(lines);
    json_object_put(lines);
    return n;
}

/* The daemon's environment: its database through conninfo, a token, and extra (may be NULL). */
static void spawn_teachers(lst_daemon_t *d, const char *conninfo, const char *token, const char *extra)
{
    char db[4200], tok[128];
    snprintf(db, sizeof(db), "DATABASE_URL=%s", conninfo);
    snprintf(tok, sizeof(tok), "INTERNAL_TOKEN=%s", token);
    const char *env[] = {db, tok, "LOG_LEVEL=debug", "THREADS=2", extra, NULL};
    lst_daemon_spawn(d, TEACHERS, env);
}

/* Waits up to 10 s for the daemon to exit and returns its exit status (-1: killed after 10 s, or a
 * signal). */
static int wait_exit(lst_daemon_t *d)
{
    int status = 0;
    pid_t r = 0;
    for (int i = 0; i < 200 && r == 0; i++) {
        r = waitpid(d->pid, &status, WNOHANG);
        if (r == 0)
            pause_ms(50);
    }
    if (r == 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
    }
    d->pid = 0;
    return r != 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(dbwait, a_database_that_comes_up_later_is_waited_for, .timeout = 120)
{
    lst_cluster_t c;
    lst_cluster_create_tcp(&c);
    char *conninfo = lst_cluster_conninfo_tcp(&c, "localhost", "postgres");
    char *token = lst_random_hex(24);
    cr_assert_eq(lst_cluster_stop(&c), 0);

    lst_daemon_t d;
    spawn_teachers(&d, conninfo, token, NULL); /* DATABASE_WAIT_MS: its default, 60 s */
    pause_ms(2000);
    /* waiting, not serving: still alive, and nothing answers yet */
    cr_assert_eq(waitpid(d.pid, NULL, WNOHANG), 0, "the daemon must not exit while it waits");
    lst_resp_t resp = {0};
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", d.base_url);
    cr_expect_eq(lst_http(&resp, "GET", url, NULL, NULL), 0, "nothing is served before the migrations");
    lst_resp_free(&resp);
    cr_expect_geq(count_lines(&d, "database not reachable yet"), 2, "one line per failed attempt");

    cr_assert_eq(lst_cluster_start(&c), 0);
    cr_assert_eq(lst_daemon_wait_healthy(&d), 0, "ready once the database is up (log: %s)", d.log_path);

    /* the workers' pool reaches the database through the name too */
    snprintf(url, sizeof(url), "%s/readyz", d.base_url);
    cr_expect_eq(lst_http(&resp, "GET", url, NULL, NULL), 200);
    lst_resp_free(&resp);
    cr_expect_eq(lst_call_as(&resp, d.base_url, token, "GET", "/teachers?ids=1", NULL, "1", "admin"), 200,
                 "%s", resp.body ? resp.body : "");
    lst_resp_free(&resp);

    const char *attempt[] = {"database not reachable yet", "\"attempt\":1,", "localhost", "retry_ms", NULL};
    json_object *first = lst_log_wait(&d, attempt, 1);
    cr_expect_eq(json_object_array_length(first), 1, "the first attempt's line names the host and the retry");
    json_object_put(first);
    cr_expect_eq(count_lines(&d, "\"msg\":\"database reachable\""), 1);
    cr_expect_eq(count_lines(&d, "migrations up to date"), 1);
    const char *lookup[] = {"pg host name lookup", "\"host\":\"localhost\"", "127.0.0.1", NULL};
    json_object *lookups = lst_log_wait(&d, lookup, 2);
    cr_expect_geq(json_object_array_length(lookups), 2, "each worker's pool looked the name up off its loop");
    json_object_put(lookups);
    char *log = read_log(&d);
    cr_expect_null(strstr(log, lst_env("LS_TEST_PGPASSWORD")), "the password appears in the log");
    free(log);

    lst_daemon_expect_clean_stop(&d);
    free(token);
    free(conninfo);
    lst_cluster_destroy(&c);
}

Test(dbwait, the_wait_is_bounded_by_DATABASE_WAIT_MS, .timeout = 60)
{
    /* nothing listens on that port */
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo),
             "host=localhost port=%d user=ls password=hunter2secret dbname=teachers", lst_free_port());
    char *token = lst_random_hex(24);
    lst_daemon_t d;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    spawn_teachers(&d, conninfo, token, "DATABASE_WAIT_MS=1500");
    int status = wait_exit(&d);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_expect_eq(status, 1, "exit status 1 once the wait is over (log: %s)", d.log_path);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_expect_geq(ms, 1500, "gave up after %ld ms", ms);

    const char *needles[] = {"migrations failed", "PostgreSQL not reachable within DATABASE_WAIT_MS=1500 ms",
                             NULL};
    json_object *lines = lst_log_lines(&d, needles);
    cr_expect_eq(json_object_array_length(lines), 1, "one clear final line (log: %s)", d.log_path);
    json_object_put(lines);
    cr_expect_geq(count_lines(&d, "database not reachable yet"), 2);
    char *log = read_log(&d);
    cr_expect_null(strstr(log, "hunter2secret"), "the password appears in the log");
    cr_expect_null(strstr(log, "\"listening\""), "it never served");
    free(log);
    free(token);
}

Test(dbwait, zero_fails_at_once, .timeout = 60)
{
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d user=ls dbname=teachers", lst_free_port());
    char *token = lst_random_hex(24);
    lst_daemon_t d;
    spawn_teachers(&d, conninfo, token, "DATABASE_WAIT_MS=0");
    cr_expect_eq(wait_exit(&d), 1, "exit status 1 at once (log: %s)", d.log_path);
    cr_expect_eq(count_lines(&d, "database not reachable yet"), 0, "no retry");
    cr_expect_eq(count_lines(&d, "migrations: cannot connect to PostgreSQL"), 1);
    free(token);
}
