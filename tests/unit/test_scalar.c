/* The strict parsers of ids and integers. */
#include <criterion/criterion.h>
#include <string.h>

#include "scalar.h"

Test(scalar, strict_number_parsers)
{
    static const struct {
        const char *s;
        int ok;
        int64_t v;
    } ids[] = {
        {"1", 1, 1},   {"9007199254740991", 1, 9007199254740991LL},
        {"0", 0, 0},   {"-1", 0, 0},
        {"", 0, 0},    {"01a", 0, 0},
        {" 1", 0, 0},  {"9007199254740992", 0, 0},
        {"1e3", 0, 0}, {"18446744073709551617", 0, 0},
    };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        int64_t v = 0;
        int rc = ls_parse_id(ids[i].s, strlen(ids[i].s), &v);
        cr_expect_eq(rc == 0, ids[i].ok, "ls_parse_id(%s)", ids[i].s);
        if (ids[i].ok)
            cr_expect_eq(v, ids[i].v);
    }
    int64_t v;
    cr_expect_eq(ls_parse_i64("-9223372036854775808", 20, &v), 0);
    cr_expect_eq(v, INT64_MIN);
    cr_expect_eq(ls_parse_i64("9223372036854775807", 19, &v), 0);
    cr_expect_eq(v, INT64_MAX);
    cr_expect_eq(ls_parse_i64("9223372036854775808", 19, &v), -1);
    cr_expect_eq(ls_parse_i64("-9223372036854775809", 20, &v), -1);
    cr_expect_eq(ls_parse_i64("-", 1, &v), -1);
}

Test(scalar, uuids_and_times)
{
    static const char *const uuids_ok[] = {"0b5c8a52-3f4e-4a8b-9c1d-2e3f4a5b6c7d",
                                           "0B5C8A52-3F4E-4A8B-9C1D-2E3F4A5B6C7D"};
    static const char *const uuids_bad[] = {
        "", "0b5c8a52-3f4e-4a8b-9c1d-2e3f4a5b6c7", "0b5c8a52-3f4e-4a8b-9c1d-2e3f4a5b6c7dd",
        "0b5c8a52x3f4e-4a8b-9c1d-2e3f4a5b6c7d", "0b5c8a52-3f4e-4a8b-9c1d-2e3f4a5b6c7g"};
    for (size_t i = 0; i < sizeof(uuids_ok) / sizeof(uuids_ok[0]); i++)
        cr_expect(ls_is_uuid(uuids_ok[i], strlen(uuids_ok[i])), "%s", uuids_ok[i]);
    for (size_t i = 0; i < sizeof(uuids_bad) / sizeof(uuids_bad[0]); i++)
        cr_expect(!ls_is_uuid(uuids_bad[i], strlen(uuids_bad[i])), "%s", uuids_bad[i]);

    static const char *const times_ok[] = {"2026-02-28T18:00:00Z", "2024-02-29t18:00:00.123456789-03:30",
                                           "2026-12-31T23:59:60z"};
    static const char *const times_bad[] = {
        "2026-02-28T18:00:00",  "2026-02-28T18:00:00.Z", "2026-02-28T18:00:00.1234567890Z",
        "2026-02-28T24:00:00Z", "2026-04-31T18:00:00Z",  "2026-02-28T18:00:00+3:00",
        "2026-02-28T18:00:00Zx"};
    for (size_t i = 0; i < sizeof(times_ok) / sizeof(times_ok[0]); i++)
        cr_expect(ls_is_rfc3339(times_ok[i], strlen(times_ok[i])), "%s", times_ok[i]);
    for (size_t i = 0; i < sizeof(times_bad) / sizeof(times_bad[0]); i++)
        cr_expect(!ls_is_rfc3339(times_bad[i], strlen(times_bad[i])), "%s", times_bad[i]);
}
