/* Log lines are single valid JSON objects, whatever the values hold. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Runs fn with stdout redirected into a pipe; returns what it wrote (static buffer). */
static const char *capture(void (*fn)(void))
{
    static char out[8192];
    int fds[2], saved = dup(STDOUT_FILENO);
    cr_assert_eq(pipe(fds), 0);
    dup2(fds[1], STDOUT_FILENO);
    fn();
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], out, sizeof(out) - 1);
    close(fds[0]);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static void write_line(void)
{
    ls_log_line_t l;
    ls_log_ctx_t ctx = {"rid-1", "4bf92f3577b34da6a3ce929d0e0e4736"};
    ls_log_init("test-daemon", LS_LOG_INFO);
    if (ls_log_begin(&l, LS_LOG_WARN, &ctx, "quote \" backslash \\ newline \n tab \t")) {
        ls_log_str(&l, "target", "auth");
        ls_log_int(&l, "status", -503);
        ls_log_str(&l, "none", NULL);
        ls_log_end(&l);
    }
}

Test(log, writes_one_json_object_per_line)
{
    const char *out = capture(write_line);
    size_t len = strlen(out);
    cr_assert_gt(len, 0);
    cr_assert_eq(out[len - 1], '\n');
    cr_assert_null(memchr(out, '\n', len - 1), "one line only: %s", out);
    json_object *obj = json_tokener_parse(out);
    cr_assert_not_null(obj, "not JSON: %s", out);
    json_object *v;
    cr_assert(json_object_object_get_ex(obj, "level", &v));
    cr_expect_str_eq(json_object_get_string(v), "warn");
    cr_assert(json_object_object_get_ex(obj, "daemon", &v));
    cr_expect_str_eq(json_object_get_string(v), "test-daemon");
    cr_assert(json_object_object_get_ex(obj, "request_id", &v));
    cr_expect_str_eq(json_object_get_string(v), "rid-1");
    cr_assert(json_object_object_get_ex(obj, "trace_id", &v));
    cr_expect_str_eq(json_object_get_string(v), "4bf92f3577b34da6a3ce929d0e0e4736");
    /* The ids come first, in this order, before the message and the fields. */
    cr_expect(
        strstr(out, "\"request_id\":\"rid-1\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"msg\":") !=
            NULL,
        "%s", out);
    cr_assert(json_object_object_get_ex(obj, "msg", &v));
    cr_expect_str_eq(json_object_get_string(v), "quote \" backslash \\ newline \n tab \t");
    cr_assert(json_object_object_get_ex(obj, "status", &v));
    cr_expect_eq(json_object_get_int(v), -503);
    cr_assert(json_object_object_get_ex(obj, "none", &v));
    cr_expect_null(v);
    cr_assert(json_object_object_get_ex(obj, "time", &v));
    cr_expect_eq(strlen(json_object_get_string(v)), 24); /* 2026-11-22T01:54:00.123Z */
    json_object_put(obj);
}

static void write_huge(void)
{
    static char big[3 * LS_LOG_LINE_MAX];
    memset(big, '"', sizeof(big) - 1);
    ls_log_line_t l;
    ls_log_init("test-daemon", LS_LOG_DEBUG);
    if (ls_log_begin(&l, LS_LOG_INFO, NULL, "huge")) {
        ls_log_str(&l, "a", big);
        ls_log_str(&l, "b", big);
        ls_log_end(&l);
    }
}

Test(log, truncates_long_values_but_stays_valid_json)
{
    const char *out = capture(write_huge);
    cr_assert_leq(strlen(out), LS_LOG_LINE_MAX);
    json_object *obj = json_tokener_parse(out);
    cr_assert_not_null(obj, "not JSON: %.200s", out);
    json_object_put(obj);
}

static void write_without_ids(void)
{
    ls_log_ctx_t none = {NULL, ""}, trace_only = {"", "0af7651916cd43dd8448eb211c80319c"};
    ls_log_init("test-daemon", LS_LOG_INFO);
    ls_log(LS_LOG_INFO, NULL, "no context");
    ls_log(LS_LOG_INFO, &none, "empty ids");
    ls_logf(LS_LOG_INFO, &trace_only, "trace %d", 1);
}

Test(log, leaves_out_absent_ids)
{
    const char *out = capture(write_without_ids);
    const char *second = strchr(out, '\n'), *third = second ? strchr(second + 1, '\n') : NULL;
    cr_assert(second != NULL && third != NULL, "three lines: %s", out);
    cr_expect(memmem(out, (size_t)(third - out), "_id\"", 4) == NULL, "no ids in the first two: %s", out);
    cr_expect(strstr(third, "\"request_id\"") == NULL, "%s", third);
    cr_expect(strstr(third, "\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",\"msg\":\"trace 1\"") != NULL,
              "%s", third);
}

static void write_filtered(void)
{
    ls_log_init("test-daemon", LS_LOG_WARN);
    ls_log(LS_LOG_INFO, NULL, "hidden");
    ls_log(LS_LOG_DEBUG, NULL, "hidden");
    ls_log(LS_LOG_ERROR, NULL, "shown");
}

Test(log, filters_below_the_level)
{
    const char *out = capture(write_filtered);
    cr_assert_null(strstr(out, "hidden"));
    cr_assert_not_null(strstr(out, "\"msg\":\"shown\""));
}

Test(log, parses_levels)
{
    ls_log_level_t lv;
    cr_expect_eq(ls_log_level_parse("debug", &lv), 0);
    cr_expect_eq(lv, LS_LOG_DEBUG);
    cr_expect_eq(ls_log_level_parse("error", &lv), 0);
    cr_expect_eq(lv, LS_LOG_ERROR);
    cr_expect_eq(ls_log_level_parse("verbose", &lv), -1);
    cr_expect_eq(ls_log_level_parse("", &lv), -1);
}

static void write_path(void)
{
    ls_log_init("test-daemon", LS_LOG_INFO);
    ls_log_line_t l;
    if (ls_log_begin(&l, LS_LOG_INFO, NULL, "request")) {
        ls_log_str(&l, "path", "/v1/groups\t\x01");
        ls_log_end(&l);
    }
}

Test(log, paths_keep_their_slashes)
{
    const char *out = capture(write_path);
    cr_expect_not_null(strstr(out, "\"path\":\"/v1/groups\\t\\u0001\""), "%s", out);
}

/* ---- the buffer (ls_log_start) ---- */

static int count_lines(const char *s, size_t n)
{
    int lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += s[i] == '\n';
    return lines;
}

static void *stop_writer(void *arg)
{
    ls_log_stop(10000);
    atomic_store((atomic_int *)arg, 1);
    return NULL;
}

/*
 * stdout is a pipe nobody reads while 2000 lines of ~1 KiB are logged: logging never waits, the
 * buffer keeps what fits, the rest is dropped and counted. Then the pipe is read: every line is
 * whole JSON, the kept ones are in order, and a "log lines dropped" line says how many went.
 */
Test(log, a_full_buffer_drops_whole_lines_and_counts_them, .timeout = 30)
{
    ls_log_init("test-daemon", LS_LOG_INFO);
    int fds[2], saved = dup(STDOUT_FILENO);
    cr_assert_eq(pipe(fds), 0);
    dup2(fds[1], STDOUT_FILENO);
    close(fds[1]);
    cr_assert_eq(ls_log_start(64 * 1024), 0);

    enum { N = 2000 };
    char pad[1000];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++) {
        ls_log_line_t l;
        if (ls_log_begin(&l, LS_LOG_INFO, NULL, "numbered")) {
            ls_log_int(&l, "n", i);
            ls_log_str(&l, "pad", pad);
            ls_log_end(&l);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_lt(took, 2.0, "logging into a full stdout did not wait (%.3f s)", took);
    uint64_t dropped = ls_log_dropped();
    /* 64 KiB of pipe and 64 KiB of buffer hold at most ~130 of these lines */
    cr_assert_gt(dropped, (uint64_t)N - 200, "dropped %llu", (unsigned long long)dropped);

    /* a reader drains the pipe while the writer is flushed and stopped */
    static char out[4 << 20];
    size_t len = 0;
    int flags = fcntl(fds[0], F_GETFL);
    fcntl(fds[0], F_SETFL, flags | O_NONBLOCK);
    pthread_t stopper;
    atomic_int stopped = 0;
    cr_assert_eq(pthread_create(&stopper, NULL, stop_writer, &stopped), 0);
    for (;;) {
        int was_stopped = atomic_load(&stopped);
        ssize_t n = read(fds[0], out + len, sizeof(out) - 1 - len);
        if (n > 0) {
            len += (size_t)n;
            continue;
        }
        if (was_stopped)
            break; /* the writer had ended before this read found the pipe empty */
        usleep(1000);
    }
    pthread_join(stopper, NULL);
    out[len] = '\0';
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fds[0]);

    int kept = 0, last = -1;
    uint64_t reported = 0;
    for (char *p = out, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        *nl = '\0';
        json_object *obj = json_tokener_parse(p);
        cr_assert_not_null(obj, "a whole JSON line: %.80s", p);
        json_object *v;
        cr_assert(json_object_object_get_ex(obj, "msg", &v));
        if (strcmp(json_object_get_string(v), "log lines dropped") == 0) {
            cr_assert(json_object_object_get_ex(obj, "dropped", &v));
            reported += (uint64_t)json_object_get_int64(v);
        } else {
            cr_assert(json_object_object_get_ex(obj, "n", &v));
            int n = json_object_get_int(v);
            cr_assert_gt(n, last, "lines keep their order");
            last = n;
            kept++;
        }
        json_object_put(obj);
    }
    cr_assert_eq((uint64_t)kept, (uint64_t)N - dropped, "every line kept was written");
    cr_assert_eq(reported, dropped, "lines say how many were dropped");
}

/* Lines pending at stop are written before ls_log_stop returns; after it, lines are written at once. */
Test(log, stop_flushes_pending_lines, .timeout = 30)
{
    ls_log_init("test-daemon", LS_LOG_INFO);
    char path[] = "/tmp/ls-test-log-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    cr_assert_eq(ls_log_start(64 * 1024), 0);
    for (int i = 0; i < 100; i++)
        ls_logf(LS_LOG_INFO, NULL, "pending %d", i);
    ls_log_stop(5000);
    ls_log(LS_LOG_INFO, NULL, "after stop");
    dup2(saved, STDOUT_FILENO);
    close(saved);
    static char out[65536];
    ssize_t n = pread(fd, out, sizeof(out) - 1, 0);
    close(fd);
    cr_assert_gt(n, 0);
    out[n] = '\0';
    cr_assert_eq(count_lines(out, (size_t)n), 101, "%s", out);
    cr_assert_not_null(strstr(out, "\"pending 99\""));
    cr_assert_not_null(strstr(out, "\"after stop\""));
    cr_assert_eq(ls_log_dropped(), 0);
}
