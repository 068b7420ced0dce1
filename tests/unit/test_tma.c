/*
 * tma: validation of Telegram Mini App init data (the BFF's authentication) and signing.
 *
 * tests/meson.build links unit tests with the shared library only, so the module is compiled in
 * here directly; it is pure (libsodium and json-c only).
 */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "tma.h"

#define VECTOR_TOKEN "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
#define VECTOR_HASH  "c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2"
#define VECTOR_USER                                                                                          \
    "%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22%2C%22last_name%22%3A%22Kibenko%22%2C%22"   \
    "username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%7D"
#define VECTOR_DATE 1662771648LL
#define VECTOR      "query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=" VECTOR_USER "&auth_date=1662771648&hash=" VECTOR_HASH

static unsigned char key[TMA_KEY_BYTES];

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    tma_derive_key(VECTOR_TOKEN, key);
}

TestSuite(tma, .init = setup);

static int validate(const char *data, int64_t now, int64_t max_age, tma_user_t *u, const char **reason)
{
    *reason = NULL;
    return tma_validate(data, strlen(data), key, now, max_age, u, reason);
}

Test(tma, public_vector_is_valid_without_age_check)
{
    tma_user_t u;
    const char *reason;
    cr_assert_eq(validate(VECTOR, 1900000000, 0, &u, &reason), 0, "rejected: %s", reason);
    cr_expect_eq(u.telegram_id, 279058397);
    cr_expect_eq(u.auth_date, VECTOR_DATE);
    cr_expect_str_eq(u.first_name, "Vladislav");
    cr_expect_str_eq(u.last_name, "Kibenko");
    cr_expect_str_eq(u.username, "vdkfrost");
    cr_expect_str_eq(u.language_code, "ru");
    cr_expect_str_eq(u.photo_url, "");
}

Test(tma, public_vector_within_its_age_and_field_order_does_not_matter)
{
    tma_user_t u;
    const char *reason;
    cr_expect_eq(validate(VECTOR, VECTOR_DATE + 100, 86400, &u, &reason), 0, "%s", reason);
    const char *reordered =
        "hash=" VECTOR_HASH "&auth_date=1662771648&user=" VECTOR_USER "&query_id=AAHdF6IQAAAAAN0XohDhrOrc";
    cr_expect_eq(validate(reordered, VECTOR_DATE, 0, &u, &reason), 0, "%s", reason);
}

/* Every rejection with the reason it must give; none of the reasons may leak the hash. */
Test(tma, bad_init_data_is_rejected_with_a_reason)
{
    static char long_input[TMA_MAX_LEN + 64];
    memset(long_input, 'a', sizeof(long_input) - 1);
    memcpy(long_input, "query_id=", 9);
    char many[2048] = "";
    for (int i = 0; i < TMA_MAX_FIELDS + 1; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sk%d=v", i ? "&" : "", i);

    const struct {
        const char *name;
        const char *data;
        int64_t now, max_age;
        const char *reason;
    } cases[] = {
        {"forged hash",
         "query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=" VECTOR_USER "&auth_date=1662771648&hash="
         "d501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2",
         VECTOR_DATE, 0, "signature does not match"},
        {"changed field",
         "query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=" VECTOR_USER "&auth_date=1662771649&hash=" VECTOR_HASH,
         VECTOR_DATE, 0, "signature does not match"},
        {"changed name",
         "query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=%7B%22id%22%3A279058398%2C%22first_name%22%3A%22"
         "Vladislav%22%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22"
         "language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%7D&auth_date=1662771648&hash=" VECTOR_HASH,
         VECTOR_DATE, 0, "signature does not match"},
        {"missing hash", "query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=" VECTOR_USER "&auth_date=1662771648",
         VECTOR_DATE, 0, "no hash"},
        {"duplicated key", VECTOR "&auth_date=1662771648", VECTOR_DATE, 0, "duplicated key"},
        {"duplicated hash", VECTOR "&hash=" VECTOR_HASH, VECTOR_DATE, 0, "duplicated key"},
        {"expired", VECTOR, VECTOR_DATE + 86401, 86400, "expired"},
        {"from the future", VECTOR, VECTOR_DATE - 61, 86400, "future"},
        {"garbage", "garbage", VECTOR_DATE, 0, "key=value"},
        {"empty", "", VECTOR_DATE, 0, "empty"},
        {"empty pair", "a=b&&hash=" VECTOR_HASH, VECTOR_DATE, 0, "key=value"},
        {"bad percent", "user=%7&hash=" VECTOR_HASH, VECTOR_DATE, 0, "URL-encoded"},
        {"NUL byte", "user=%00&hash=" VECTOR_HASH, VECTOR_DATE, 0, "URL-encoded"},
        {"bad key", "us er=1&hash=" VECTOR_HASH, VECTOR_DATE, 0, "key with characters"},
        {"non-hex hash",
         "query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=" VECTOR_USER "&auth_date=1662771648&hash="
         "zz01b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2",
         VECTOR_DATE, 0, "64 hexadecimal"},
        {"short hash", "auth_date=1&hash=c501b7", VECTOR_DATE, 0, "64 hexadecimal"},
        {"over-long input", long_input, VECTOR_DATE, 0, "too long"},
        {"too many fields", many, VECTOR_DATE, 0, "too many fields"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tma_user_t u;
        const char *reason;
        cr_expect_eq(validate(cases[i].data, cases[i].now, cases[i].max_age, &u, &reason), -1, "%s: accepted",
                     cases[i].name);
        cr_assert_not_null(reason, "%s: no reason", cases[i].name);
        cr_expect(strstr(reason, cases[i].reason) != NULL, "%s: reason \"%s\" lacks \"%s\"", cases[i].name,
                  reason, cases[i].reason);
        cr_expect_null(strstr(reason, "c501b7"), "%s: the reason leaks the hash", cases[i].name);
    }
}

/* Data that is correctly signed but whose content is wrong. */
static int validate_signed(const tma_pair_t *pairs, size_t n, int64_t now, const char **reason)
{
    char data[TMA_MAX_LEN + 1];
    tma_user_t u;
    cr_assert_gt(tma_sign(key, pairs, n, data, sizeof(data)), 0);
    return validate(data, now, 86400, &u, reason);
}

Test(tma, signed_but_bad_content_is_rejected)
{
    static const struct {
        const char *name;
        const char *auth_date, *user;
        const char *reason;
    } cases[] = {
        {"user without id", "1700000000", "{\"first_name\":\"A\"}", "no integer id"},
        {"string id", "1700000000", "{\"id\":\"42\",\"first_name\":\"A\"}", "no integer id"},
        {"zero id", "1700000000", "{\"id\":0,\"first_name\":\"A\"}", "not a telegram id"},
        {"negative id", "1700000000", "{\"id\":-5,\"first_name\":\"A\"}", "not a telegram id"},
        {"id over 2^53-1", "1700000000", "{\"id\":9007199254740992,\"first_name\":\"A\"}",
         "not a telegram id"},
        {"user not JSON", "1700000000", "{id:1}", "not a JSON object"},
        {"user an array", "1700000000", "[1]", "not a JSON object"},
        {"name not a string", "1700000000", "{\"id\":1,\"first_name\":5}", "not a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tma_pair_t pairs[] = {{"auth_date", cases[i].auth_date}, {"user", cases[i].user}};
        const char *reason;
        cr_expect_eq(validate_signed(pairs, 2, 1700000000, &reason), -1, "%s: accepted", cases[i].name);
        cr_expect(reason != NULL && strstr(reason, cases[i].reason) != NULL, "%s: reason \"%s\" lacks \"%s\"",
                  cases[i].name, reason ? reason : "", cases[i].reason);
    }
    tma_pair_t no_user[] = {{"auth_date", "1700000000"}};
    const char *reason;
    cr_expect_eq(validate_signed(no_user, 1, 1700000000, &reason), -1);
    cr_expect_str_eq(reason, "initData has no user");
}

Test(tma, signed_text_that_may_not_be_stored_is_refused_never_cut)
{
    static const struct {
        const char *name;
        const char *auth_date, *user;
        const char *reason;
    } cases[] = {
        {"NUL in a name", "1700000000", "{\"id\":1,\"first_name\":\"nul\\u0000byte\"}", "NUL"},
        {"NUL in another member", "1700000000", "{\"id\":1,\"first_name\":\"A\",\"bio\":\"\\u0000\"}", "NUL"},
        {"half a surrogate pair", "1700000000", "{\"id\":1,\"first_name\":\"\\ud800\"}", "surrogate"},
        {"name not UTF-8", "1700000000", "{\"id\":1,\"first_name\":\"\xc0\xaf\"}", "UTF-8"},
        {"value not UTF-8", "1700000000", "{\"id\":1,\"first_name\":\"A\"}\xff", "UTF-8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tma_pair_t pairs[] = {{"auth_date", cases[i].auth_date}, {"user", cases[i].user}};
        const char *reason;
        cr_expect_eq(validate_signed(pairs, 2, 1700000000, &reason), TMA_BAD_TEXT, "%s", cases[i].name);
        cr_expect(reason != NULL && strstr(reason, cases[i].reason) != NULL, "%s: reason \"%s\" lacks \"%s\"",
                  cases[i].name, reason ? reason : "", cases[i].reason);
    }
    /* Unsigned, the same text is only a forgery. */
    tma_user_t u;
    const char *reason;
    cr_expect_eq(
        validate("user=%7B%22id%22%3A1%2C%22first_name%22%3A%22%5Cu0000%22%7D&auth_date=1700000000&hash="
                 "0000000000000000000000000000000000000000000000000000000000000000",
                 1700000000, 0, &u, &reason),
        TMA_INVALID);
    /* Text that is fine: UTF-8 as it is, and escaped. */
    tma_pair_t fine[] = {{"auth_date", "1700000000"},
                         {"user", "{\"id\":1,\"first_name\":\"Zo\xc3\xab \\u00e9\\ud83d\\ude00\"}"}};
    cr_expect_eq(validate_signed(fine, 2, 1700000000, &reason), 0, "%s", reason);
}

Test(tma, sign_round_trips_with_escaping_and_the_largest_id)
{
    tma_pair_t pairs[] = {
        {"auth_date", "1700000000"},
        {"user", "{\"id\":9007199254740991,\"first_name\":\"Анна & Co = 100%\",\"username\":\"a+b\"}"},
        {"query_id", "x y"},
    };
    char data[TMA_MAX_LEN + 1];
    tma_user_t u;
    const char *reason;
    cr_assert_gt(tma_sign(key, pairs, 3, data, sizeof(data)), 0);
    cr_assert_eq(validate(data, 1700000000, 60, &u, &reason), 0, "%s", reason);
    cr_expect_eq(u.telegram_id, 9007199254740991LL);
    cr_expect_str_eq(u.first_name, "Анна & Co = 100%");
    cr_expect_str_eq(u.username, "a+b");

    /* Another bot's key does not validate it. */
    unsigned char other[TMA_KEY_BYTES];
    tma_derive_key("123:other", other);
    cr_expect_eq(tma_validate(data, strlen(data), other, 1700000000, 60, &u, &reason), -1);

    /* Output that does not fit is refused, not truncated. */
    char small[64];
    cr_expect_eq(tma_sign(key, pairs, 3, small, sizeof(small)), -1);
    tma_pair_t bad[] = {{"hash", "x"}};
    cr_expect_eq(tma_sign(key, bad, 1, data, sizeof(data)), -1);
}
