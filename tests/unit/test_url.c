/* URL decoding: a query string read leniently, initData strictly. */
#include <criterion/criterion.h>
#include <string.h>

#include "url.h"

static long decode(const char *s, unsigned flags, char *out)
{
    return ls_url_decode(out, s, strlen(s), flags);
}

Test(url, decodes_plus_and_percent_escapes)
{
    char out[64];
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"plain", "plain"},
        {"a+b", "a b"},
        {"%41%62%2fc%2F", "Ab/c/"},
        {"%D0%90", "\xd0\x90"},
        {"%2B+", "+ "},
        {"a%3d%26b", "a=&b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (unsigned flags = 0; flags <= LS_URL_STRICT; flags++) {
            long n = decode(cases[i].in, flags, out);
            cr_expect_eq(n, (long)strlen(cases[i].out), "%s", cases[i].in);
            cr_expect_str_eq(out, cases[i].out, "%s", cases[i].in);
        }
    }
}

Test(url, lenient_keeps_a_bad_escape_strict_refuses_it)
{
    static const char *const bad[] = {"100%", "%4", "%zz", "a%g1b", "%%41"};
    static const char *const kept[] = {"100%", "%4", "%zz", "a%g1b", "%A"};
    char out[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(decode(bad[i], 0, out), (long)strlen(kept[i]), "%s", bad[i]);
        cr_expect_str_eq(out, kept[i]);
        cr_expect_eq(decode(bad[i], LS_URL_STRICT, out), -1, "%s", bad[i]);
    }
}

Test(url, a_nul_ends_the_value_or_is_refused)
{
    char out[64];
    cr_expect_eq(decode("ab%00cd", 0, out), 5);
    cr_expect_str_eq(out, "ab");
    cr_expect_eq(memcmp(out, "ab\0cd", 6), 0);
    cr_expect_eq(decode("ab%00cd", LS_URL_STRICT, out), -1);
    cr_expect_eq(ls_url_decode(out, "a\0b", 3, LS_URL_STRICT), -1);
}

static long path(const char *s, char *out, const char **why)
{
    *why = NULL;
    return ls_url_path(out, s, strlen(s), why);
}

Test(url, a_path_is_decoded_for_routing_and_nothing_is_resolved)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"/", "/"},
        {"/healthz", "/healthz"},
        {"/api/user/profile/42", "/api/user/profile/42"},
        {"/api/join/a%62c", "/api/join/abc"},
        {"/api/join/a+b", "/api/join/a+b"},
        {"/x/%D0%90", "/x/\xd0\x90"},
        {"/a//b/", "/a//b/"},
        {"/a/.b/..c/...", "/a/.b/..c/..."},
    };
    char out[128];
    const char *why;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long n = path(cases[i].in, out, &why);
        cr_expect_eq(n, (long)strlen(cases[i].out), "%s: %s", cases[i].in, why ? why : "");
        if (n >= 0)
            cr_expect_str_eq(out, cases[i].out, "%s", cases[i].in);
    }
}

Test(url, a_path_that_could_name_another_route_is_refused)
{
    static const struct {
        const char *in, *why;
    } cases[] = {
        {"/api/user/profile/..%2f..%2f..%2fhealthz", "'/'"},
        {"/api/user/profile/..%2F..%2Fhealthz", "'/'"},
        {"/api/join/a%2fb", "'/'"},
        {"/api/join/a%5cb", "'\\'"},
        {"/api/join/a\\b", "'\\'"},
        {"/api/join/a%00b", "NUL"},
        {"/api/join/%0a", "control"},
        {"/api/join/%7f", "control"},
        {"/api/user/profile/../../healthz", "'..'"},
        {"/api/user/profile/..", "'..'"},
        {"/api/./healthz", "'.'"},
        {"/api/%2e%2e/healthz", "'..'"},
        {"/api/%2E/healthz", "'.'"},
        {"/api/.%2e", "'..'"},
        {"/x/%ff", "UTF-8"},
        {"/x/%c0%af", "UTF-8"},
        {"/x/%zz", "hexadecimal"},
        {"/x/%4", "hexadecimal"},
        {"/x/%", "hexadecimal"},
        {"healthz", "start with '/'"},
        {"", "start with '/'"},
        {"*", "start with '/'"},
    };
    char out[128];
    const char *why;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_expect_eq(path(cases[i].in, out, &why), -1, "%s accepted", cases[i].in);
        cr_expect(why != NULL && strstr(why, cases[i].why) != NULL, "%s: \"%s\" lacks \"%s\"", cases[i].in,
                  why ? why : "", cases[i].why);
    }
}
