/*
 * The BFF's JSON scanner (bff/json_scan.h): what the views read from the services' answers without
 * json-c. Whatever it accepts must be what json-c would parse and write back byte for byte, with the
 * same member values; what it refuses makes the part fail (bff/upstream.h, pass_through).
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json_scan.h"

static const char *const group_keys[] = {"id", "created_at", "teacher_telegram_id"};

static long items_of(const char *text, bff_json_item_t *items, size_t max)
{
    return bff_json_items(text, strlen(text), group_keys, 3, items, max);
}

static int span_is(const bff_json_span_t *v, const char *text)
{
    return v->text != NULL && v->len == strlen(text) && memcmp(v->text, text, v->len) == 0;
}

Test(bff_scan, items_of_an_array_of_objects_with_their_members)
{
    const char *text = "[{\"id\":\"a\",\"created_at\":\"2026-01-02T03:04:05Z\",\"teacher_telegram_id\":7,"
                       "\"progress\":{\"id\":\"inner\"}},{\"title\":\"x\\/y\",\"id\":\"b\"},{}]";
    bff_json_item_t items[4];
    cr_assert_eq(items_of(text, items, 4), 3);

    cr_expect(span_is(&items[0].whole, "{\"id\":\"a\",\"created_at\":\"2026-01-02T03:04:05Z\","
                                       "\"teacher_telegram_id\":7,\"progress\":{\"id\":\"inner\"}}"));
    cr_expect(span_is(&items[0].field[0], "\"a\""), "the item's own id, not the nested one");
    cr_expect_eq(items[0].field[0].type, json_type_string);
    cr_expect(span_is(&items[0].field[1], "\"2026-01-02T03:04:05Z\""));
    cr_expect(span_is(&items[0].field[2], "7"));
    cr_expect_eq(items[0].field[2].type, json_type_int);
    cr_expect_eq(bff_span_id(&items[0].field[2]), 7);

    cr_expect(span_is(&items[1].whole, "{\"title\":\"x\\/y\",\"id\":\"b\"}"));
    cr_expect(span_is(&items[1].field[0], "\"b\""));
    cr_expect_null(items[1].field[1].text, "an absent member has no span");
    cr_expect_null(items[1].field[2].text);
    cr_expect_eq(bff_span_id(&items[1].field[2]), 0);

    cr_expect(span_is(&items[2].whole, "{}"));
    cr_expect_null(items[2].field[0].text);
}

Test(bff_scan, empty_arrays_and_surrounding_whitespace)
{
    bff_json_item_t items[2];
    cr_expect_eq(items_of("[]", items, 2), 0);
    cr_expect_eq(items_of(" \n[]\r\n", items, 2), 0);
    cr_expect_eq(items_of("\t[{\"id\":\"a\"}] ", items, 2), 1);
    cr_expect(span_is(&items[0].whole, "{\"id\":\"a\"}"));
    cr_expect_eq(items_of("[]", items, 0), 0, "no room is needed for no items");
}

Test(bff_scan, odd_inputs_are_refused)
{
    bff_json_item_t items[4];
    const char *refused[] = {
        "",
        "   ",
        "{}",                                  /* not an array */
        "\"[]\"",                              /* a string */
        "[1]",                                 /* items must be objects */
        "[{\"id\":\"a\"},null]",               /* ... every one */
        "[[]]",                                /* ... not arrays */
        "[{\"id\":\"a\"} ]",                   /* whitespace inside: json-c would write it otherwise */
        "[ {\"id\":\"a\"}]",                   /* ... */
        "[{\"id\": \"a\"}]",                   /* ... */
        "[{\"id\":\"a\"},]",                   /* trailing comma */
        "[{\"id\":\"a\"}",                     /* unterminated */
        "[{\"id\":\"a\"}]x",                   /* garbage after */
        "[{\"id\":\"a\"}][]",                  /* two values */
        "[{\"id\":\"a\",\"id\":\"b\"}]",       /* a repeated name: json-c keeps one */
        "[{\"i\\u0064\":\"a\"}]",              /* an escaped name could spell a wanted key */
        "[{\"id\":\"a/b\"}]",                  /* '/' unescaped: json-c writes \/ */
        "[{\"id\":\"\\u00e9\"}]",              /* \u for a printable character */
        "[{\"n\":1e5}]",                       /* exponent */
        "[{\"n\":-0}]",                        /* json-c writes 0 */
        "[{\"n\":01}]",                        /* leading zero */
        "[{\"n\":1234567890123456789}]",       /* may not fit json-c's int64 */
        "[{\"id\":\"a\x01\"}]",                /* a raw control character */
        "[{\"t\":tru}]",                       /* a broken literal */
        "[{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]]}]", /* nested too deep */
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        cr_expect_eq(items_of(refused[i], items, 4), -1, "accepted: %s", refused[i]);
}

Test(bff_scan, more_items_than_room_are_refused)
{
    bff_json_item_t items[2];
    cr_expect_eq(items_of("[{},{}]", items, 2), 2);
    cr_expect_eq(items_of("[{},{},{}]", items, 2), -1);
}

Test(bff_scan, too_many_keys_are_refused)
{
    const char *keys[BFF_JSON_MAX_FIELDS + 1] = {"a", "b", "c", "d", "e"};
    bff_json_item_t items[1];
    bff_json_span_t fields[BFF_JSON_MAX_FIELDS + 1];
    cr_expect_eq(bff_json_items("[{}]", 4, keys, BFF_JSON_MAX_FIELDS + 1, items, 1), -1);
    cr_expect_eq(bff_json_items("[{}]", 4, keys, BFF_JSON_MAX_FIELDS, items, 1), 1);
    cr_expect_eq(bff_json_fields("{}", 2, keys, BFF_JSON_MAX_FIELDS + 1, fields), -1);
}

Test(bff_scan, fields_of_one_object)
{
    const char *keys[] = {"teacher_telegram_id", "progress", "title"};
    bff_json_span_t f[3];
    const char *group = " {\"teacher_telegram_id\":-42,\"progress\":{\"teacher_telegram_id\":1},\"x\":null} ";
    cr_assert_eq(bff_json_fields(group, strlen(group), keys, 3, f), 0);
    cr_expect(span_is(&f[0], "-42"));
    cr_expect_eq(bff_span_id(&f[0]), -42);
    cr_expect(span_is(&f[1], "{\"teacher_telegram_id\":1}"));
    cr_expect_eq(f[1].type, json_type_object);
    cr_expect_null(f[2].text);

    cr_expect_eq(bff_json_fields("[]", 2, keys, 3, f), -1, "an array is not an object");
    cr_expect_eq(bff_json_fields("{\"a\":1,\"a\":2}", 13, keys, 3, f), -1);
    cr_expect_null(f[0].text, "a refused text leaves no spans behind");
}

Test(bff_scan, values_read_as_the_views_read_json_c_objects)
{
    const char *keys[] = {"i", "d", "s", "e", "n", "b"};
    bff_json_span_t f[4];
    const char *obj = "{\"i\":123456789012345678,\"d\":1.5,\"s\":\"abc\",\"e\":\"a\\\"b\"}";
    cr_assert_eq(bff_json_fields(obj, strlen(obj), keys, 4, f), 0);
    cr_expect_eq(bff_span_id(&f[0]), 123456789012345678LL);
    cr_expect_eq(bff_span_id(&f[1]), 0, "a double is not an id");
    cr_expect_eq(bff_span_id(&f[2]), 0, "a string is not an id");

    const char *s;
    size_t len;
    cr_expect_eq(bff_span_str(&f[2], &s, &len), 0);
    cr_expect(len == 3 && memcmp(s, "abc", 3) == 0);
    cr_expect_eq(bff_span_str(&f[0], &s, &len), 0);
    cr_expect_eq(len, 0, "a number reads as \"\"");
    cr_expect_eq(bff_span_str(&f[3], &s, &len), -1, "an escaped string's text is not its value");

    bff_json_span_t absent = {.text = NULL};
    cr_expect_eq(bff_span_str(&absent, &s, &len), 0);
    cr_expect_eq(len, 0);
    cr_expect_eq(bff_span_id(&absent), 0);
}

Test(bff_scan, the_whole_answer_scan_still_reports_its_member)
{
    const char *text = "{\"groups\":[{\"id\":\"a\"}],\"next\":null}";
    bff_json_span_t whole, member;
    cr_assert_eq(bff_json_scan(text, strlen(text), "groups", &whole, &member), 0);
    cr_expect(span_is(&member, "[{\"id\":\"a\"}]"));
    bff_json_item_t items[1];
    cr_expect_eq(bff_json_items(member.text, member.len, group_keys, 3, items, 1), 1);
}

Test(bff_scan, one_read_finds_members_and_the_list_items)
{
    const char *keys[] = {"groups", "limit"}, *item_keys[] = {"id"};
    bff_json_item_t items[3];
    bff_json_want_t want = {
        .keys = keys, .nkeys = 2, .item_keys = item_keys, .nitem_keys = 1, .items = items, .max_items = 3};
    bff_json_span_t whole, fields[2];
    long n;

    const char *text = "{\"x\":{\"groups\":[1]},\"groups\":[{\"id\":\"a\"},{\"id\":7}],\"limit\":100}";
    cr_assert_eq(bff_json_read(text, strlen(text), &want, &whole, fields, &n), 0);
    cr_expect_eq(whole.len, strlen(text));
    cr_expect(span_is(&fields[0], "[{\"id\":\"a\"},{\"id\":7}]"));
    cr_expect(span_is(&fields[1], "100"));
    cr_assert_eq(n, 2, "the top-level list only, not the nested one");
    cr_expect(span_is(&items[0].field[0], "\"a\""));
    cr_expect_eq(bff_span_id(&items[1].field[0]), 7);

    text = "[{\"id\":\"b\"}]";
    cr_assert_eq(bff_json_read(text, strlen(text), &want, &whole, fields, &n), 0);
    cr_expect_eq(n, 1, "an answer that is the list itself");
    cr_expect_null(fields[0].text);

    text = "{\"groups\":null,\"limit\":1}";
    cr_assert_eq(bff_json_read(text, strlen(text), &want, &whole, fields, &n), 0);
    cr_expect_eq(n, -1, "no list");
    cr_expect_eq(fields[0].type, json_type_null);

    const char *refused[] = {
        "{\"groups\":[{},{},{},{}]}", /* more items than room */
        "{\"groups\":[{},1]}",        /* an item that is not an object */
        "[[]]",
        "{\"groups\":[] }x",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        cr_expect_eq(bff_json_read(refused[i], strlen(refused[i]), &want, &whole, fields, &n), -1,
                     "accepted: %s", refused[i]);
        cr_expect_null(fields[0].text);
    }
}

Test(bff_scan, strings_decode_as_json_c_reads_them)
{
    const char *keys[] = {"a", "b", "c"};
    bff_json_span_t f[3];
    const char *obj = "{\"a\":\"x\\/y\\n\\t\\\"\\\\\\u001fz\",\"b\":\"cut\\u0000here\",\"c\":5}";
    char buf[64];
    cr_assert_eq(bff_json_fields(obj, strlen(obj), keys, 3, f), 0);
    size_t n = bff_span_unescape(&f[0], buf);
    cr_expect(n == 9 && memcmp(buf, "x/y\n\t\"\\\x1fz", 9) == 0, "%.*s", (int)n, buf);
    cr_expect_eq(bff_span_unescape(&f[1], buf), 3, "json-c's C string ends at the NUL");
    cr_expect_eq(bff_span_unescape(&f[2], buf), 0, "a number reads as \"\"");
}

/* ---- what it accepts, json-c reads and writes the same ---- */

static const char sample[] =
    "[{\"id\":\"533adff7-33cb-ac54-45ca-c928c6c7ac98\",\"teacher_telegram_id\":5,\"title\":\"English C2\","
    "\"price\":12.50,\"is_free\":true,\"tags\":[\"a\\/b\",\"\\n\\u001f\"],\"progress\":null,"
    "\"created_at\":\"2026-11-22T00:20:26.360136Z\"},{\"id\":\"b\",\"teacher_telegram_id\":-9,"
    "\"created_at\":\"2026-11-21T00:00:00Z\",\"n\":{\"m\":[1,2,{\"k\":false}]}}]";

/* Checks an accepted text against json-c: same items, written back the same, same member values. */
static void expect_like_json_c(const char *text, size_t len, const bff_json_item_t *items, long n)
{
    json_tokener *tok = json_tokener_new();
    json_object *arr = json_tokener_parse_ex(tok, text, (int)len);
    cr_assert_eq(json_tokener_get_error(tok), json_tokener_success, "json-c refuses: %.*s", (int)len, text);
    json_tokener_free(tok);
    cr_assert(json_object_is_type(arr, json_type_array));
    cr_assert_eq((long)json_object_array_length(arr), n, "%.*s", (int)len, text);
    for (long i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(arr, (size_t)i);
        size_t olen;
        const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &olen);
        cr_assert(olen == items[i].whole.len && memcmp(s, items[i].whole.text, olen) == 0,
                  "json-c writes %s for %.*s", s, (int)items[i].whole.len, items[i].whole.text);
        for (int k = 0; k < 3; k++) {
            json_object *v = NULL;
            json_object_object_get_ex(o, group_keys[k], &v);
            int64_t id = v != NULL && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
            cr_assert_eq(bff_span_id(&items[i].field[k]), id);
            const char *str;
            size_t slen;
            const char *want =
                v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
            if (bff_span_str(&items[i].field[k], &str, &slen) == 0)
                cr_assert(slen == strlen(want) && memcmp(str, want, slen) == 0);
            char buf[sizeof(sample) + 8];
            slen = bff_span_unescape(&items[i].field[k], buf);
            cr_assert(slen == strlen(want) && memcmp(buf, want, slen) == 0, "%.*s decodes as %.*s",
                      (int)items[i].field[k].len, items[i].field[k].text, (int)slen, buf);
        }
    }
    json_object_put(arr);
}

Test(bff_scan, a_real_list_reads_as_json_c_reads_it)
{
    bff_json_item_t items[4];
    long n = bff_json_items(sample, sizeof(sample) - 1, group_keys, 3, items, 4);
    cr_assert_eq(n, 2);
    expect_like_json_c(sample, sizeof(sample) - 1, items, n);
}

Test(bff_scan, mutations_it_accepts_json_c_reads_the_same)
{
    static const char alphabet[] = "{}[]\",:\\/01-9.eE tfnula \x01\xc3\xa9";
    char buf[sizeof(sample) + 8];
    bff_json_item_t items[8];
    long accepted = 0;

    srand(12345);
    for (int round = 0; round < 100000; round++) {
        size_t len = sizeof(sample) - 1;
        memcpy(buf, sample, len);
        for (int m = 1 + rand() % 3; m > 0; m--) {
            size_t at = (size_t)rand() % len;
            int how = rand() % 3;
            char c = alphabet[rand() % (sizeof(alphabet) - 1)];
            if (how == 0) {
                buf[at] = c;
            } else if (how == 1 && len > 1) {
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            } else if (len < sizeof(buf)) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = c;
                len++;
            }
        }
        long n = bff_json_items(buf, len, group_keys, 3, items, 8);
        if (n >= 0) {
            accepted++;
            expect_like_json_c(buf, len, items, n);
        }
    }
    cr_log_info("%ld of 100000 mutations accepted", accepted);
    cr_expect_gt(accepted, 100, "the mutations should sometimes stay valid");
}
