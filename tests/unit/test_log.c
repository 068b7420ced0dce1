/* Log lines are single valid JSON objects, whatever the values hold. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <string.h>
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
