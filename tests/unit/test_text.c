/* JSON as text: the escaper and the text writer write what json-c writes. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <string.h>

#include "text.h"

/* json-c's text of s as a JSON string, quotes included. */
static const char *jsonc_string(const char *s, size_t len)
{
    static char out[1 << 18];
    json_object *o = json_object_new_string_len(s, (int)len);
    size_t n;
    const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
    cr_assert_lt(n, sizeof(out));
    memcpy(out, text, n + 1);
    json_object_put(o);
    return out;
}

Test(text, every_byte_is_escaped_as_json_c_escapes_it)
{
    for (int c = 0; c < 256; c++) {
        char byte = (char)c, esc[6], want[16];
        size_t n = ls_json_escape_byte((unsigned char)c, esc);
        const char *got = jsonc_string(&byte, 1);
        if (n == 0)
            esc[n++] = byte;
        want[0] = '"';
        memcpy(want + 1, esc, n);
        want[n + 1] = '"';
        cr_expect(strlen(got) == n + 2 && memcmp(got, want, n + 2) == 0, "byte 0x%02x: json-c writes %s", c,
                  got);
        cr_expect_eq(ls_json_escapes[c] != 0, n > 1, "byte 0x%02x in the table", c);
    }
}

Test(text, a_long_string_of_escapes_grows_the_buffer)
{
    static char s[50000];
    for (size_t i = 0; i < sizeof(s); i++)
        s[i] = (char)(i % 7 == 0 ? 'a' : i % 256); /* every byte, NUL and most escapes included */
    ls_text_t t = {0};
    ls_text_lit(&t, "[");
    ls_text_str(&t, s, sizeof(s));
    ls_text_lit(&t, "]");
    cr_assert(!t.failed);
    const char *want = jsonc_string(s, sizeof(s));
    cr_assert_eq(t.len, strlen(want) + 2);
    cr_expect(memcmp(t.buf + 1, want, t.len - 2) == 0);
    cr_expect_eq(t.buf[0], '[');
    cr_expect_eq(t.buf[t.len - 1], ']');
    ls_text_free(&t);
}

Test(text, escape_stops_before_a_full_buffer_never_inside_an_escape)
{
    static const char s[] = "ab\"c/d\x01";
    char out[32];
    size_t used;

    /* Room for everything: '/' kept unless asked for. */
    size_t n = ls_json_escape(out, sizeof(out), s, sizeof(s) - 1, 0, &used);
    cr_expect_eq(used, sizeof(s) - 1);
    cr_expect(n == 13 && memcmp(out, "ab\\\"c/d\\u0001", 13) == 0, "%.*s", (int)n, out);
    n = ls_json_escape(out, sizeof(out), s, sizeof(s) - 1, LS_JSON_ESC_SLASH, &used);
    cr_expect(n == 14 && memcmp(out, "ab\\\"c\\/d\\u0001", 14) == 0, "%.*s", (int)n, out);

    /* Three bytes of room: "ab" fits, the escape of '"' does not. */
    n = ls_json_escape(out, 3, s, sizeof(s) - 1, 0, &used);
    cr_expect_eq(n, 2);
    cr_expect_eq(used, 2);
    /* Eight: up to "d", not the 6-byte \u0001. */
    n = ls_json_escape(out, 8, s, sizeof(s) - 1, 0, &used);
    cr_expect_eq(n, 7);
    cr_expect_eq(used, 6);
    cr_expect_eq(ls_json_escape(out, 0, s, sizeof(s) - 1, 0, NULL), 0);
}

Test(text, out_of_memory_is_remembered_and_writes_dropped)
{
    ls_text_t t = {.failed = 1};
    ls_text_lit(&t, "x");
    ls_text_str(&t, "y", 1);
    cr_expect_null(t.buf);
    cr_expect_eq(t.len, 0);
}

Test(text, utf8_span_takes_well_formed_text_and_stops_at_the_first_bad_sequence)
{
    static const struct {
        const char *s;
        size_t span; /* SIZE_MAX: all of it */
    } cases[] = {
        {"", SIZE_MAX},
        {"plain ascii", SIZE_MAX},
        {"caf\xc3\xa9 \xd0\x90 \xe2\x82\xac \xf0\x9f\x98\x80", SIZE_MAX}, /* 2, 3 and 4 bytes */
        {"\xed\x9f\xbf", SIZE_MAX},                                       /* U+D7FF, last before surrogates */
        {"\xee\x80\x80", SIZE_MAX},                                       /* U+E000, first after them */
        {"\xf4\x8f\xbf\xbf", SIZE_MAX},                                   /* U+10FFFF */
        {"ab\x80", 2},                                                    /* lone continuation byte */
        {"a\xc0\xaf", 1},                                                 /* overlong '/' */
        {"\xc1\xbf", 0},                                                  /* overlong */
        {"\xe0\x80\xaf", 0},                                              /* overlong, 3 bytes */
        {"\xf0\x80\x80\xaf", 0},                                          /* overlong, 4 bytes */
        {"x\xed\xa0\x80", 1},                                             /* U+D800, a surrogate */
        {"\xed\xbf\xbf", 0},                                              /* U+DFFF */
        {"\xf4\x90\x80\x80", 0},                                          /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 0},
        {"\xff", 0},
        {"ok\xc3", 2},        /* cut short */
        {"ok\xe2\x82", 2},    /* cut short */
        {"\xe2\x28\xa1", 0},  /* bad continuation */
        {"\xf0\x9f\x98 ", 0}, /* bad last continuation */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].s), want = cases[i].span == SIZE_MAX ? len : cases[i].span;
        cr_expect_eq(ls_utf8_span(cases[i].s, len), want, "case %zu", i);
    }
    /* A NUL is well-formed UTF-8; refusing it is the caller's business. */
    cr_expect_eq(ls_utf8_span("a\0b", 3), 3);
}
