/* rows: result rows as JSON; the text writer must match json-c's object path byte for byte. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rows.h"

/* A result as libpq would hand it over: columns (name, type) and rows of text values (NULL: SQL
 * NULL), built on the client side. */
static PGresult *make_result(int ncols, const char *const *names, const Oid *types, int nrows,
                             const char *const *values)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    cr_assert_not_null(res);
    PGresAttDesc attrs[16];
    cr_assert(ncols <= 16);
    for (int c = 0; c < ncols; c++)
        attrs[c] = (PGresAttDesc){.name = (char *)names[c], .typid = types[c], .typlen = -1, .atttypmod = -1};
    cr_assert(PQsetResultAttrs(res, ncols, attrs));
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < ncols; c++) {
            const char *v = values[r * ncols + c];
            cr_assert(PQsetvalue(res, r, c, (char *)v, v != NULL ? (int)strlen(v) : -1));
        }
    return res;
}

/* What the json-c path writes, with the same prefix and suffix. */
static char *via_json_c(const PGresult *res, const char *prefix, const char *suffix)
{
    json_object *arr = ls_rows_array(res);
    const char *s = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
    size_t n = strlen(prefix) + strlen(s) + strlen(suffix) + 1;
    char *out = malloc(n);
    cr_assert_not_null(out);
    snprintf(out, n, "%s%s%s", prefix, s, suffix);
    json_object_put(arr);
    return out;
}

Test(rows_json, writes_each_type_as_the_contract_says)
{
    const char *names[] = {"id", "ok", "at", "price", "tags", "secret", "note", "gone"};
    const Oid types[] = {LS_OID_INT8, LS_OID_BOOL,  LS_OID_TIMESTAMPTZ, LS_OID_NUMERIC,
                         LS_OID_JSON, LS_OID_BYTEA, LS_OID_TEXT,        LS_OID_TEXT};
    const char *values[] = {"42",        "t", "2026-11-29 10:00:00.5+00", "12.50", "[1, 2, 3]", "\\x00",
                            "a/\"b\"\n", NULL};
    PGresult *res = make_result(8, names, types, 1, values);
    size_t len = 0;
    char *text = ls_rows_json(res, "{\"rows\":", ",\"limit\":20}", &len);
    cr_assert_not_null(text);
    cr_assert_str_eq(text,
                     "{\"rows\":[{\"id\":42,\"ok\":true,\"at\":\"2026-11-29T10:00:00.5Z\",\"price\":12.50,"
                     "\"tags\":[1,2,3],\"note\":\"a\\/\\\"b\\\"\\n\",\"gone\":null}],\"limit\":20}");
    cr_assert_eq(len, strlen(text));
    free(text);
    PQclear(res);
}

Test(rows_json, no_rows_is_an_empty_array)
{
    const char *names[] = {"id"};
    const Oid types[] = {LS_OID_INT8};
    PGresult *res = make_result(1, names, types, 0, NULL);
    size_t len;
    char *text = ls_rows_json(res, "", "", &len);
    cr_assert_str_eq(text, "[]");
    free(text);
    PQclear(res);
}

/* A byte of the random texts: mostly letters, often what needs escaping, sometimes UTF-8. */
static char random_byte(uint64_t *rng)
{
    static const char special[] = "\"\\/\b\f\n\r\t\x01\x1f\x7f {}[]:,";
    *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
    unsigned x = (unsigned)(*rng >> 33);
    switch (x % 4) {
    case 0:
        return special[(x >> 3) % (sizeof(special) - 1)];
    case 1:
        return (char)(0x80 + (x >> 3) % 0x80);
    default:
        return (char)('a' + (x >> 3) % 26);
    }
}

static unsigned next(uint64_t *rng, unsigned n)
{
    *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(*rng >> 33) % n;
}

Test(rows_json, matches_json_c_on_random_results)
{
    static const Oid kinds[] = {LS_OID_BOOL, LS_OID_BYTEA, LS_OID_INT8,        LS_OID_INT2,    LS_OID_INT4,
                                LS_OID_TEXT, LS_OID_JSON,  LS_OID_TIMESTAMPTZ, LS_OID_NUMERIC, LS_OID_JSONB};
    static const char *const samples[][4] = {
        [0] = {"t", "f", "t", "f"},
        [2] = {"-9223372036854775808", "0", "9223372036854775808", "12a"},
        [3] = {"-32768", "7", "", "x"},
        [4] = {"2147483647", "-1", "00012", "1e3"},
        [6] = {"{\"a\": [1, 2]}", "[1, 2, 3]", "{\"s\": \"a/b\\u00e9\"}", "not json"},
        [7] = {"2026-11-29 10:00:00+00", "2026-11-29 10:00:00.123456+00", "2026-11-29 10:00:00+03",
               "infinity"},
        [8] = {"1", "-0.50", "12345678901234567890.5", "NaN"},
        [9] = {"{}", "[]", "{\"k\": null, \"k2\": true}", "\"str\""},
    };
    uint64_t rng = 20261129;
    char pool[64][48];
    for (int iter = 0; iter < 3000; iter++) {
        int ncols = 1 + (int)next(&rng, 8), nrows = (int)next(&rng, 4);
        const char *names[16];
        Oid types[16];
        const char *values[16 * 4];
        int used = 0;
        for (int c = 0; c < ncols; c++) {
            types[c] = kinds[next(&rng, 10)];
            if (next(&rng, 10) == 0 && c > 0) {
                names[c] = names[next(&rng, (unsigned)c)]; /* a repeated name */
            } else {
                char *n = pool[used++];
                int len = 1 + (int)next(&rng, 8);
                for (int i = 0; i < len; i++)
                    n[i] = next(&rng, 4) == 0 ? random_byte(&rng) : (char)('a' + next(&rng, 26));
                n[len] = '\0';
                names[c] = n;
            }
        }
        for (int r = 0; r < nrows; r++)
            for (int c = 0; c < ncols; c++) {
                const char **v = &values[r * ncols + c];
                int k = 0;
                while (kinds[k] != types[c])
                    k++;
                if (next(&rng, 6) == 0) {
                    *v = NULL;
                } else if (samples[k][0] != NULL && next(&rng, 3) != 0) {
                    *v = samples[k][next(&rng, 4)];
                } else {
                    char *t = pool[used++];
                    int len = (int)next(&rng, 40);
                    for (int i = 0; i < len; i++) {
                        char b = random_byte(&rng);
                        t[i] = b != '\0' ? b : 'z';
                    }
                    t[len] = '\0';
                    *v = t;
                }
            }
        cr_assert(used <= 64);
        PGresult *res = make_result(ncols, names, types, nrows, values);
        size_t len;
        char *text = ls_rows_json(res, "<", ">", &len);
        char *want = via_json_c(res, "<", ">");
        cr_assert_not_null(text);
        cr_assert_str_eq(text, want, "case %d", iter);
        cr_assert_eq(len, strlen(want));
        free(text);
        free(want);
        PQclear(res);
    }
}

Test(row_readers, read_columns_by_name_with_defaults_for_null_and_absent)
{
    const char *names[] = {"count", "flag", "off", "title", "gone"};
    const Oid types[] = {LS_OID_INT8, LS_OID_BOOL, LS_OID_BOOL, LS_OID_TEXT, LS_OID_TEXT};
    const char *values[] = {"1234567890123", "t", "f", "hello", NULL};
    PGresult *res = make_result(5, names, types, 1, values);

    cr_expect_eq(ls_row_id(res, 0, "count"), 1234567890123LL);
    cr_expect_eq(ls_row_bool(res, 0, "flag"), 1);
    cr_expect_eq(ls_row_bool(res, 0, "off"), 0);
    cr_expect_str_eq(ls_row_text(res, 0, "title"), "hello");
    cr_expect_eq(ls_row_is_null(res, 0, "title"), 0);

    /* SQL NULL, a column the result does not have, and a row past the end read as the defaults. */
    cr_expect_null(ls_row_text(res, 0, "gone"));
    cr_expect_eq(ls_row_is_null(res, 0, "gone"), 1);
    cr_expect_eq(ls_row_bool(res, 0, "gone"), 0);
    cr_expect_eq(ls_row_id(res, 0, "gone"), 0);
    cr_expect_null(ls_row_text(res, 0, "nope"));
    cr_expect_eq(ls_row_is_null(res, 0, "nope"), 1);
    cr_expect_eq(ls_row_id(res, 0, "nope"), 0);
    cr_expect_null(ls_row_text(res, 1, "title"));
    cr_expect_eq(ls_row_bool(res, 1, "flag"), 0);
    /* Text that is not an integer reads as 0. */
    cr_expect_eq(ls_row_id(res, 0, "title"), 0);
    PQclear(res);
}
