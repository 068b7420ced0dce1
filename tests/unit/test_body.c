/* Request bodies: parsing within bounds and declarative validation. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "body.h"

static const char *const roles[] = {"student", "teacher", "admin", NULL};

static const ls_json_field_t fields[] = {
    {"first_name", LS_JSON_STRING, 1, 0, 1, 8, NULL}, {"nick", LS_JSON_STRING, 0, 1, 0, 0, NULL},
    {"age", LS_JSON_INT, 0, 0, 0, 150, NULL},         {"friend", LS_JSON_ID, 0, 0, 0, 0, NULL},
    {"active", LS_JSON_BOOL, 0, 0, 0, 0, NULL},       {"price", LS_JSON_NUMBER, 0, 0, 0, 1000, NULL},
    {"role", LS_JSON_ENUM, 0, 0, 0, 0, roles},        {"group_id", LS_JSON_UUID, 0, 0, 0, 0, NULL},
    {"starts_at", LS_JSON_TIME, 0, 0, 0, 0, NULL},    {"meta", LS_JSON_OBJECT, 0, 0, 0, 0, NULL},
    {"ids", LS_JSON_ARRAY, 0, 0, 1, 3, NULL},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* Parses and validates; returns the error text ("" when valid). */
static const char *check(const char *text)
{
    static char err[256];
    json_object *obj = ls_json_parse_object(text, strlen(text), err, sizeof(err));
    if (obj == NULL)
        return err;
    int rc = ls_json_validate(obj, fields, NFIELDS, err, sizeof(err));
    json_object_put(obj);
    return rc == 0 ? "" : err;
}

Test(body, accepts_valid_objects)
{
    static const char *const ok[] = {
        "{\"first_name\":\"Anna\"}",
        "{\"first_name\":\"Anna\",\"nick\":null,\"age\":0,\"friend\":9007199254740991,\"active\":true}",
        "{\"first_name\":\"A\",\"price\":12.5,\"role\":\"admin\",\"group_id\":\"0b5c8a52-3f4e-4a8b-9c1d-"
        "2e3f4a5b6c7d\"}",
        "{\"first_name\":\"A\",\"starts_at\":\"2026-02-28T18:00:00Z\",\"meta\":{},\"ids\":[1,2,3]}",
        "{\"first_name\":\"A\",\"starts_at\":\"2024-02-29T18:00:00.123+03:00\"}",
        "  {\"first_name\":\"A\"}  \n",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        cr_expect_str_eq(check(ok[i]), "", "%s", ok[i]);
}

Test(body, rejects_bad_input_naming_the_field)
{
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"", "empty body"},
        {"{", "malformed JSON"},
        {"{\"first_name\":\"A\"", "malformed JSON"},
        {"{\"first_name\":\"A\"} x", "malformed JSON"},
        {"[1,2]", "must be a JSON object"},
        {"\"str\"", "must be a JSON object"},
        {"{\"first_name\":'A'}", "malformed JSON"},
        {"{}", "field 'first_name': required"},
        {"{\"first_name\":\"\"}", "field 'first_name': length"},
        {"{\"first_name\":\"123456789\"}", "field 'first_name': length"},
        {"{\"first_name\":5}", "field 'first_name': must be a string"},
        {"{\"first_name\":null}", "field 'first_name': must not be null"},
        {"{\"first_name\":\"A\",\"age\":151}", "field 'age'"},
        {"{\"first_name\":\"A\",\"age\":\"12\"}", "field 'age': must be an integer"},
        {"{\"first_name\":\"A\",\"age\":1.5}", "field 'age': must be an integer"},
        {"{\"first_name\":\"A\",\"friend\":0}", "field 'friend'"},
        {"{\"first_name\":\"A\",\"friend\":-3}", "field 'friend'"},
        {"{\"first_name\":\"A\",\"friend\":9007199254740992}", "field 'friend'"},
        {"{\"first_name\":\"A\",\"friend\":9223372036854775807}", "field 'friend'"},
        {"{\"first_name\":\"A\",\"friend\":99999999999999999999999}", "field 'friend'"},
        {"{\"first_name\":\"A\",\"age\":99999999999999999999999}", "field 'age'"},
        {"{\"first_name\":\"A\",\"active\":1}", "field 'active': must be true or false"},
        {"{\"first_name\":\"A\",\"price\":1000.5}", "field 'price'"},
        {"{\"first_name\":\"A\",\"role\":\"king\"}", "field 'role': must be one of student, teacher, admin"},
        {"{\"first_name\":\"A\",\"group_id\":\"xyz\"}", "field 'group_id': must be a UUID"},
        {"{\"first_name\":\"A\",\"starts_at\":\"2026-02-30T18:00:00Z\"}", "field 'starts_at'"},
        {"{\"first_name\":\"A\",\"starts_at\":\"2025-02-29T18:00:00Z\"}", "field 'starts_at'"},
        {"{\"first_name\":\"A\",\"starts_at\":\"2026-01-01 18:00:00\"}", "field 'starts_at'"},
        {"{\"first_name\":\"A\",\"starts_at\":\"2026-01-01T18:00:00\"}", "field 'starts_at'"},
        {"{\"first_name\":\"A\",\"meta\":[]}", "field 'meta': must be an object"},
        {"{\"first_name\":\"A\",\"ids\":[]}", "field 'ids': must have 1 to 3"},
        {"{\"first_name\":\"A\",\"ids\":[1,2,3,4]}", "field 'ids'"},
        {"{\"first_name\":\"A\",\"surprise\":1}", "field 'surprise': unknown field"},
        {"{\"first_name\":\"A\\u0000B\"}", "NUL"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = check(cases[i].body);
        cr_expect(strstr(got, cases[i].want) != NULL, "%s: got \"%s\", want \"%s\"", cases[i].body, got,
                  cases[i].want);
    }
}

Test(body, nesting_depth_is_bounded)
{
    char deep[200];
    size_t n = 0;
    n += (size_t)sprintf(deep, "{\"first_name\":\"A\",\"meta\":");
    for (int i = 0; i < 40; i++)
        deep[n++] = '[';
    for (int i = 0; i < 40; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    cr_assert(strstr(check(deep), "malformed JSON") != NULL);
}

Test(body, text_must_be_utf8_without_nul_or_half_surrogates)
{
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        const char *err;
    } cases[] = {
        {"{\"first_name\":\"nul\\u0000byte\"}", 0, "NUL character"},
        {"{\"first_name\":\"x\\u0000\"}", 0, "offset 16"},
        {"{\"nick\\u0000\":\"x\"}", 0, "NUL character"}, /* json-c would cut the key to "nick" */
        {"{\"first_name\":\"a\\ud800\"}", 0, "surrogate"},
        {"{\"first_name\":\"a\\ud800\\u0041\"}", 0, "surrogate"},
        {"{\"first_name\":\"\\udc00a\"}", 0, "surrogate"},
        {"{\"first_name\":\"\xff\"}", 0, "not UTF-8 at offset 15"},
        {"{\"first_name\":\"\xc0\xaf\"}", 0, "not UTF-8"},
        {"{\"first_name\":\"\xed\xa0\x80\"}", 0, "not UTF-8"},
        {"{\"first_name\":\"a\0b\"}", 19, "NUL byte at offset 16"},
        {"{\"meta\":{\"deep\":[\"\\u0000\"]}}", 0, "NUL character"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        json_object *obj = ls_json_parse_object(cases[i].text, len, err, sizeof(err));
        cr_expect_null(obj, "case %zu accepted", i);
        json_object_put(obj);
        cr_expect(strstr(err, cases[i].err) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].err);
    }
    /* An escape cut by the end of the text is left to the parser. */
    char err[128];
    cr_expect_eq(ls_json_text_check("{\"a\":\"\\", 7, err, sizeof(err)), 0);
    cr_expect_eq(ls_json_text_check("\"\\u00", 5, err, sizeof(err)), 0);
    cr_expect_eq(ls_json_text_check("\"\\ud800\\u", 9, err, sizeof(err)), -1);

    /* What is fine: an escaped backslash before "u0000", a surrogate pair, UTF-8 as it is. */
    cr_expect_str_eq(check("{\"first_name\":\"\\\\u0000\"}"), "");
    cr_expect_str_eq(check("{\"first_name\":\"\\ud83d\\ude00\"}"), "");
    cr_expect_str_eq(check("{\"first_name\":\"caf\xc3\xa9\"}"), "");
    cr_expect_str_eq(check("{\"first_name\":\"\\u00e9\\\"\\/\"}"), "");
}

Test(body, numbers_must_be_finite)
{
    static const char *const bodies[] = {
        "{\"first_name\":\"a\",\"price\":NaN}",       "{\"first_name\":\"a\",\"price\":Infinity}",
        "{\"first_name\":\"a\",\"price\":-Infinity}", "{\"first_name\":\"a\",\"price\":1e999}",
        "{\"first_name\":\"a\",\"age\":NaN}",         "{\"first_name\":\"a\",\"meta\":{\"x\":[1,NaN]}}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        cr_expect(strstr(check(bodies[i]), "finite") != NULL, "%s: %s", bodies[i], check(bodies[i]));

    /* Validation alone (of an object not made by ls_json_parse_object) refuses them too. */
    static const ls_json_field_t price[] = {{"price", LS_JSON_NUMBER, 1, 0, 0, 1000, NULL}};
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < 3; i++) {
        char err[256];
        json_object *obj = json_object_new_object();
        json_object_object_add(obj, "price", json_object_new_double(bad[i]));
        cr_expect_eq(ls_json_validate(obj, price, 1, err, sizeof(err)), -1, "%g accepted", bad[i]);
        json_object_put(obj);
    }
    cr_expect_str_eq(check("{\"first_name\":\"a\",\"price\":999.5}"), "");
}
