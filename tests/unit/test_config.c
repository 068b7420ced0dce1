/* config: every setting type parsed strictly, defaults, required settings, errors and --help. */
#include <criterion/criterion.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

typedef struct {
    ls_cfg_listen_t listen;
    long long pool;
    long long offset;
    char *name;
    char *token;
    char *upstream;
    int level;
    int verbose;
    char *optional;
} settings_t;

#define SECRET_DEFAULT "default-secret-value-42"

static const ls_cfg_field_t fields[] = {
    {"T_LISTEN", LS_CFG_LISTEN, "127.0.0.1:8081", 0, 0, offsetof(settings_t, listen), "address to listen on"},
    {"T_POOL", LS_CFG_INT, "5", 1, 256, offsetof(settings_t, pool), "connections in all"},
    {"T_OFFSET", LS_CFG_INT, "-3", -10, 10, offsetof(settings_t, offset), "a signed number"},
    {"T_NAME", LS_CFG_STR, "school", 2, 8, offsetof(settings_t, name), "a short name"},
    {"T_TOKEN", LS_CFG_SECRET, NULL, 16, 64, offsetof(settings_t, token), "bearer token every call carries"},
    {"T_UPSTREAM", LS_CFG_URL, "http://127.0.0.1:8082", 0, 0, offsetof(settings_t, upstream), "the upstream"},
    {"T_LEVEL", LS_CFG_LEVEL, "info", 0, 0, offsetof(settings_t, level), "log level"},
    {"T_VERBOSE", LS_CFG_BOOL, "off", 0, 0, offsetof(settings_t, verbose), "say more"},
    {"T_OPTIONAL", LS_CFG_SECRET, SECRET_DEFAULT, 0, 0, offsetof(settings_t, optional), "an optional secret"},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

#define GOOD_TOKEN "0123456789abcdef-token"

static void clear_env(void)
{
    for (size_t i = 0; i < NFIELDS; i++)
        unsetenv(fields[i].env);
}

static void setup(void)
{
    clear_env();
    setenv("T_TOKEN", GOOD_TOKEN, 1);
}

TestSuite(config, .init = setup, .fini = clear_env);

/* Loads with garbage in the struct first: load must not depend on the caller zeroing it. */
static int load(settings_t *s, char *err, size_t errlen)
{
    memset(s, 0xA5, sizeof(*s));
    err[0] = '\0';
    return ls_config_load(fields, NFIELDS, s, err, errlen);
}

Test(config, defaults_applied_when_unset)
{
    settings_t s;
    char err[256];
    cr_assert_eq(load(&s, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(s.listen.n, 1);
    cr_expect_eq(s.listen.addr[0].is_unix, 0);
    cr_expect_str_eq(s.listen.addr[0].host, "127.0.0.1");
    cr_expect_eq(s.listen.addr[0].port, 8081);
    cr_expect_eq(s.pool, 5);
    cr_expect_eq(s.offset, -3);
    cr_expect_str_eq(s.name, "school");
    cr_expect_str_eq(s.token, GOOD_TOKEN);
    cr_expect_str_eq(s.upstream, "http://127.0.0.1:8082");
    cr_expect_eq(s.level, LS_LOG_INFO);
    cr_expect_eq(s.verbose, 0);
    cr_expect_str_eq(s.optional, SECRET_DEFAULT);
    ls_config_free(fields, NFIELDS, &s);
    cr_expect_null(s.name);
    cr_expect_null(s.token);
    cr_expect_null(s.upstream);
    cr_expect_null(s.optional);
}

Test(config, empty_value_counts_as_unset)
{
    settings_t s;
    char err[256];
    setenv("T_POOL", "", 1);
    setenv("T_NAME", "", 1);
    cr_assert_eq(load(&s, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(s.pool, 5);
    cr_expect_str_eq(s.name, "school");
    ls_config_free(fields, NFIELDS, &s);

    setenv("T_TOKEN", "", 1);
    cr_expect_eq(load(&s, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "T_TOKEN is required (bearer token every call carries)");
}

Test(config, required_missing_names_the_variable)
{
    settings_t s;
    char err[256];
    unsetenv("T_TOKEN");
    cr_assert_eq(load(&s, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "T_TOKEN is required (bearer token every call carries)");
}

Test(config, failure_frees_what_was_loaded)
{
    /* T_NAME and T_TOKEN are loaded before T_UPSTREAM fails; ASan reports a leak if they stay. */
    settings_t s;
    char err[256];
    setenv("T_UPSTREAM", "ftp://x", 1);
    cr_assert_eq(load(&s, err, sizeof(err)), -1);
    cr_expect_null(s.name);
    cr_expect_null(s.token);
    cr_expect_null(s.upstream);
}

struct value_case {
    const char *env;
    const char *value;
    const char *err; /* NULL: must load */
};

static void check_cases(const struct value_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        settings_t s;
        char err[256];
        setup();
        setenv(cases[i].env, cases[i].value, 1);
        int rc = load(&s, err, sizeof(err));
        if (cases[i].err == NULL) {
            cr_expect_eq(rc, 0, "%s=%s should load, got: %s", cases[i].env, cases[i].value, err);
            if (rc == 0)
                ls_config_free(fields, NFIELDS, &s);
        } else {
            cr_expect_eq(rc, -1, "%s=%s should be rejected", cases[i].env, cases[i].value);
            cr_expect_str_eq(err, cases[i].err, "%s=%s", cases[i].env, cases[i].value);
        }
    }
}

Test(config, int_bounds_and_strict_parsing)
{
    static const struct value_case cases[] = {
        {"T_POOL", "1", NULL},
        {"T_POOL", "256", NULL},
        {"T_POOL", "0", "T_POOL=0: must be an integer from 1 to 256"},
        {"T_POOL", "257", "T_POOL=257: must be an integer from 1 to 256"},
        {"T_POOL", "-1", "T_POOL=-1: must be an integer from 1 to 256"},
        {"T_POOL", "abc", "T_POOL=abc: must be an integer from 1 to 256"},
        {"T_POOL", "5x", "T_POOL=5x: must be an integer from 1 to 256"},
        {"T_POOL", "5 ", "T_POOL=5 : must be an integer from 1 to 256"},
        {"T_POOL", " 5", "T_POOL= 5: must be an integer from 1 to 256"},
        {"T_POOL", "0x10", "T_POOL=0x10: must be an integer from 1 to 256"},
        {"T_POOL", "1e2", "T_POOL=1e2: must be an integer from 1 to 256"},
        {"T_POOL", "+", "T_POOL=+: must be an integer from 1 to 256"},
        {"T_POOL", "99999999999999999999", "T_POOL=99999999999999999999: must be an integer from 1 to 256"},
        {"T_OFFSET", "-10", NULL},
        {"T_OFFSET", "+10", NULL},
        {"T_OFFSET", "-11", "T_OFFSET=-11: must be an integer from -10 to 10"},
        {"T_OFFSET", "-99999999999999999999",
         "T_OFFSET=-99999999999999999999: must be an integer from -10 to 10"},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(config, int_values_are_stored)
{
    settings_t s;
    char err[256];
    setenv("T_POOL", "256", 1);
    setenv("T_OFFSET", "-10", 1);
    cr_assert_eq(load(&s, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(s.pool, 256);
    cr_expect_eq(s.offset, -10);
    ls_config_free(fields, NFIELDS, &s);
}

Test(config, string_length_bounds)
{
    static const struct value_case cases[] = {
        {"T_NAME", "ab", NULL},
        {"T_NAME", "abcdefgh", NULL},
        {"T_NAME", "a", "T_NAME=a: must be 2 to 8 characters"},
        {"T_NAME", "abcdefghi", "T_NAME=abcdefghi: must be 2 to 8 characters"},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

struct listen_case {
    const char *value;
    const char *host; /* NULL: must be rejected */
    int port;
};

Test(config, listen_forms)
{
    static const struct listen_case cases[] = {
        {":8081", "127.0.0.1", 8081},
        {"0.0.0.0:80", "0.0.0.0", 80},
        {"localhost:65535", "localhost", 65535},
        {"[::1]:8080", "::1", 8080},
        {":1", "127.0.0.1", 1},
        {":0", NULL, 0},
        {":65536", NULL, 0},
        {"0.0.0.0:0", NULL, 0},
        {"host:abc", NULL, 0},
        {"host:", NULL, 0},
        {"host:80x", NULL, 0},
        {"8081", NULL, 0},
        {"localhost", NULL, 0},
        {"a b:80", NULL, 0},
        {"0123456789012345678901234567890123456789012345678901234567890123:80", NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        settings_t s;
        char err[256];
        setup();
        setenv("T_LISTEN", cases[i].value, 1);
        int rc = load(&s, err, sizeof(err));
        if (cases[i].host != NULL) {
            cr_expect_eq(rc, 0, "%s should load: %s", cases[i].value, err);
            if (rc != 0)
                continue;
            cr_expect_eq(s.listen.n, 1, "%s", cases[i].value);
            cr_expect_eq(s.listen.addr[0].is_unix, 0, "%s", cases[i].value);
            cr_expect_str_eq(s.listen.addr[0].host, cases[i].host, "%s", cases[i].value);
            cr_expect_eq(s.listen.addr[0].port, cases[i].port, "%s", cases[i].value);
            ls_config_free(fields, NFIELDS, &s);
        } else {
            cr_expect_eq(rc, -1, "%s should be rejected", cases[i].value);
            cr_expect(strncmp(err, "T_LISTEN=", 9) == 0, "error names the variable: %s", err);
        }
    }
}

Test(config, listen_errors_say_why)
{
    static const struct value_case cases[] = {
        {"T_LISTEN", ":0", "T_LISTEN=:0: port must be an integer from 1 to 65535"},
        {"T_LISTEN", "8081", "T_LISTEN=8081: each address must be host:port, :port or unix:/path"},
        {"T_LISTEN", "unix:run/a.sock",
         "T_LISTEN=unix:run/a.sock: a unix socket path must be absolute (unix:/path/to/name.sock)"},
        {"T_LISTEN", ":8081,unix:x.sock",
         "T_LISTEN=:8081,unix:x.sock: 'unix:x.sock': a unix socket path must be absolute "
         "(unix:/path/to/name.sock)"},
        {"T_LISTEN", ":8081,,:8082",
         "T_LISTEN=:8081,,:8082: empty address in the list (addresses are separated by single commas)"},
        {"T_LISTEN", ":1,:2,:3,:4,:5", "T_LISTEN=:1,:2,:3,:4,:5: at most 4 addresses"},
        {"T_LISTEN", ":8081,127.0.0.1:8081",
         "T_LISTEN=:8081,127.0.0.1:8081: '127.0.0.1:8081': the same address is listed twice"},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* The path of the longest Unix socket name bind() takes: 107 bytes, and one byte more. */
static void long_path(char *buf, size_t len)
{
    memset(buf, 'a', len);
    buf[0] = '/';
    buf[len] = '\0';
}

Test(config, listen_lists)
{
    settings_t s;
    char err[256];
    setenv("T_LISTEN", "127.0.0.1:8081, unix:/run/ls/auth.sock ,[::1]:9000,:9001", 1);
    cr_assert_eq(load(&s, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(s.listen.n, 4);
    cr_expect(!s.listen.addr[0].is_unix);
    cr_expect_str_eq(s.listen.addr[0].host, "127.0.0.1");
    cr_expect_eq(s.listen.addr[0].port, 8081);
    cr_expect(s.listen.addr[1].is_unix);
    cr_expect_str_eq(s.listen.addr[1].path, "/run/ls/auth.sock");
    cr_expect_str_eq(s.listen.addr[2].host, "::1");
    cr_expect_eq(s.listen.addr[2].port, 9000);
    cr_expect_str_eq(s.listen.addr[3].host, "127.0.0.1");
    cr_expect_eq(s.listen.addr[3].port, 9001);

    char text[160];
    ls_cfg_addr_format(&s.listen.addr[1], text, sizeof(text));
    cr_expect_str_eq(text, "unix:/run/ls/auth.sock");
    ls_cfg_addr_format(&s.listen.addr[2], text, sizeof(text));
    cr_expect_str_eq(text, "[::1]:9000");
    ls_cfg_addr_format(&s.listen.addr[0], text, sizeof(text));
    cr_expect_str_eq(text, "127.0.0.1:8081");
    ls_config_free(fields, NFIELDS, &s);

    /* A daemon may listen on a Unix socket only. */
    setenv("T_LISTEN", "unix:/tmp/only.sock", 1);
    cr_assert_eq(load(&s, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(s.listen.n, 1);
    cr_expect(s.listen.addr[0].is_unix);
    cr_expect_str_eq(s.listen.addr[0].path, "/tmp/only.sock");
    ls_config_free(fields, NFIELDS, &s);

    char path[LS_CFG_UNIX_PATH_MAX + 2], value[LS_CFG_UNIX_PATH_MAX + 16];
    long_path(path, LS_CFG_UNIX_PATH_MAX);
    snprintf(value, sizeof(value), "unix:%s", path);
    setenv("T_LISTEN", value, 1);
    cr_assert_eq(load(&s, err, sizeof(err)), 0, "a %d-byte path fits sun_path: %s", LS_CFG_UNIX_PATH_MAX,
                 err);
    cr_expect_str_eq(s.listen.addr[0].path, path);
    ls_config_free(fields, NFIELDS, &s);
}

Test(config, listen_list_errors)
{
    static const char *const bad[] = {
        "", /* (unset: the default applies, checked below) */
        ",",
        ":8081,",
        ",:8081",
        ":8081, ,:8082",
        "unix:",
        "unix:relative.sock",
        "unix:/",
        "unix:/run/",
        "unix:/a\tb",
        ":1,:2,:3,:4,unix:/x",
        "unix:/x,unix:/x",
        ":8081,:0",
        "unix:/x,host",
    };
    for (size_t i = 1; i < sizeof(bad) / sizeof(bad[0]); i++) {
        settings_t s;
        char err[256];
        setup();
        setenv("T_LISTEN", bad[i], 1);
        cr_expect_eq(load(&s, err, sizeof(err)), -1, "'%s' should be rejected", bad[i]);
        cr_expect(strncmp(err, "T_LISTEN=", 9) == 0, "error names the variable: %s", err);
    }

    settings_t s;
    char err[256];
    char path[LS_CFG_UNIX_PATH_MAX + 2], value[LS_CFG_UNIX_PATH_MAX + 16];
    long_path(path, LS_CFG_UNIX_PATH_MAX + 1);
    snprintf(value, sizeof(value), "unix:%s", path);
    setup();
    setenv("T_LISTEN", value, 1);
    cr_expect_eq(load(&s, err, sizeof(err)), -1, "a %d-byte path does not fit sun_path",
                 LS_CFG_UNIX_PATH_MAX + 1);
    cr_expect(strstr(err, "at most 107 bytes") != NULL, "%s", err);
}

struct url_case {
    const char *value;
    const char *stored; /* NULL: must be rejected */
};

Test(config, url_forms)
{
    static const struct url_case cases[] = {
        {"http://127.0.0.1:8082", "http://127.0.0.1:8082"},
        {"http://127.0.0.1:8082/", "http://127.0.0.1:8082"},
        {"http://auth:8081//", "http://auth:8081"},
        {"http://auth", "http://auth"},
        {"http://auth/base/", "http://auth/base"},
        {"http://[::1]:8082/", "http://[::1]:8082"},
        {"http://[::1]", "http://[::1]"},
        {"http://[::1:8082", NULL},
        {"http://[]:8082", NULL},
        {"http://[::1]:0", NULL},
        {"https://auth:8081", NULL},
        {"ftp://auth", NULL},
        {"auth:8081", NULL},
        {"http://", NULL},
        {"http:///", NULL},
        {"http://:8081", NULL},
        {"http://auth:0", NULL},
        {"http://auth:99999", NULL},
        {"http://auth:", NULL},
        {"http://au th", NULL},
        {"unix:/run/ls/auth.sock", "unix:/run/ls/auth.sock"},
        {"UNIX:/run/ls/auth.sock", "unix:/run/ls/auth.sock"},
        {"unix:/tmp/with space.sock", "unix:/tmp/with space.sock"},
        {"unix:", NULL},
        {"unix:run/auth.sock", NULL},
        {"unix:/run/ls/", NULL},
        {"unix:/run/a\nb", NULL},
        {"unix://run/a.sock/", NULL},
        {"unix:/"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaa",
         NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        settings_t s;
        char err[256];
        setup();
        setenv("T_UPSTREAM", cases[i].value, 1);
        int rc = load(&s, err, sizeof(err));
        if (cases[i].stored != NULL) {
            cr_expect_eq(rc, 0, "%s should load: %s", cases[i].value, err);
            if (rc != 0)
                continue;
            cr_expect_str_eq(s.upstream, cases[i].stored, "%s", cases[i].value);
            ls_config_free(fields, NFIELDS, &s);
        } else {
            cr_expect_eq(rc, -1, "%s should be rejected", cases[i].value);
            cr_expect(strncmp(err, "T_UPSTREAM=", 11) == 0, "error names the variable: %s", err);
        }
    }
}

Test(config, url_bad_scheme_message)
{
    static const struct value_case cases[] = {
        {"T_UPSTREAM", "https://auth",
         "T_UPSTREAM=https://auth: must start with http:// or unix:/ (e.g. http://127.0.0.1:8081 or "
         "unix:/run/ls/auth.sock)"},
        {"T_UPSTREAM", "unix:auth.sock",
         "T_UPSTREAM=unix:auth.sock: a unix socket path must be absolute (unix:/path/to/name.sock) (e.g. "
         "http://127.0.0.1:8081 or unix:/run/ls/auth.sock)"},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(config, level)
{
    static const struct {
        const char *value;
        int level; /* -1: rejected */
    } cases[] = {
        {"debug", LS_LOG_DEBUG}, {"info", LS_LOG_INFO}, {"warn", LS_LOG_WARN},
        {"error", LS_LOG_ERROR}, {"verbose", -1},       {"INFO ", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        settings_t s;
        char err[256];
        setup();
        setenv("T_LEVEL", cases[i].value, 1);
        int rc = load(&s, err, sizeof(err));
        if (cases[i].level >= 0) {
            cr_expect_eq(rc, 0, "%s: %s", cases[i].value, err);
            if (rc != 0)
                continue;
            cr_expect_eq(s.level, cases[i].level, "%s", cases[i].value);
            ls_config_free(fields, NFIELDS, &s);
        } else {
            cr_expect_eq(rc, -1, "%s should be rejected", cases[i].value);
            cr_expect(strstr(err, "must be debug, info, warn or error") != NULL, "%s", err);
        }
    }
}

Test(config, bool)
{
    static const struct {
        const char *value;
        int b; /* -1: rejected */
    } cases[] = {
        {"1", 1},  {"true", 1}, {"yes", 1}, {"on", 1}, {"TRUE", 1},   {"0", 0},    {"false", 0},
        {"no", 0}, {"off", 0},  {"2", -1},  {"y", -1}, {"truee", -1}, {"on ", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        settings_t s;
        char err[256];
        setup();
        setenv("T_VERBOSE", cases[i].value, 1);
        int rc = load(&s, err, sizeof(err));
        if (cases[i].b >= 0) {
            cr_expect_eq(rc, 0, "%s: %s", cases[i].value, err);
            if (rc != 0)
                continue;
            cr_expect_eq(s.verbose, cases[i].b, "%s", cases[i].value);
            ls_config_free(fields, NFIELDS, &s);
        } else {
            cr_expect_eq(rc, -1, "%s should be rejected", cases[i].value);
            cr_expect(strncmp(err, "T_VERBOSE=", 10) == 0, "%s", err);
        }
    }
}

Test(config, secrets_never_appear_in_errors)
{
    static const char *const bad_tokens[] = {"short-secret",
                                             "this-secret-is-far-too-long-to-be-accepted-by-the-bounds-"
                                             "of-this-field-xyz"};
    for (size_t i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++) {
        settings_t s;
        char err[256];
        setup();
        setenv("T_TOKEN", bad_tokens[i], 1);
        cr_assert_eq(load(&s, err, sizeof(err)), -1);
        cr_expect_str_eq(err, "T_TOKEN: must be 16 to 64 characters");
        cr_expect_null(strstr(err, bad_tokens[i]), "secret value leaked: %s", err);
        cr_expect_null(strstr(err, "secret"), "secret value leaked: %s", err);
    }
}

Test(config, long_values_are_cut_in_errors)
{
    settings_t s;
    char err[512];
    char value[300];
    memset(value, '7', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    setenv("T_POOL", value, 1);
    cr_assert_eq(load(&s, err, sizeof(err)), -1);
    cr_expect(strlen(err) < 200, "error stays one readable line: %s", err);
    cr_expect(strstr(err, "must be an integer from 1 to 256") != NULL, "%s", err);
}

Test(config, small_error_buffer_is_safe)
{
    settings_t s;
    char err[8];
    setenv("T_POOL", "0", 1);
    cr_assert_eq(load(&s, err, sizeof(err)), -1);
    cr_expect_eq(strlen(err), sizeof(err) - 1);
}

static char *help_text(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    cr_assert_not_null(fp);
    ls_config_print_help(fp, "test-service", "a service for tests", fields, NFIELDS);
    fclose(fp);
    return buf;
}

Test(config, help_mentions_every_variable)
{
    char *h = help_text();
    cr_expect(strstr(h, "test-service") != NULL);
    cr_expect(strstr(h, "a service for tests") != NULL);
    for (size_t i = 0; i < NFIELDS; i++) {
        const char *line = strstr(h, fields[i].env);
        cr_expect_not_null(line, "--help lacks %s:\n%s", fields[i].env, h);
        if (line == NULL)
            continue;
        /* The help text is on the variable's own line. */
        const char *eol = strchr(line, '\n');
        const char *help = strstr(line, fields[i].help);
        cr_expect(help != NULL && (eol == NULL || help < eol), "%s's line lacks its help:\n%s", fields[i].env,
                  h);
    }
    cr_expect(strstr(h, "1..256") != NULL, "int bounds shown:\n%s", h);
    cr_expect(strstr(h, "127.0.0.1:8081") != NULL, "default shown:\n%s", h);
    cr_expect(strstr(h, "unix:/path") != NULL, "unix addresses shown as allowed:\n%s", h);
    cr_expect(strstr(h, "required") != NULL, "required shown:\n%s", h);
    free(h);
}

Test(config, help_never_prints_a_secret_default)
{
    char *h = help_text();
    cr_expect_null(strstr(h, SECRET_DEFAULT), "secret default leaked:\n%s", h);
    const char *line = strstr(h, "T_OPTIONAL");
    cr_assert_not_null(line);
    const char *eol = strchr(line, '\n');
    const char *mark = strstr(line, "(secret)");
    cr_expect(mark != NULL && mark < eol, "secret marked as such:\n%s", h);
    free(h);
}
