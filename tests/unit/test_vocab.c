/* The school's vocabulary. */
#include <criterion/criterion.h>
#include <string.h>

#include "server.h"
#include "vocab.h"

Test(vocab, language_codes_and_cefr_levels)
{
    static const char *const codes_ok[] = {"en", "ru", "deu", "zh"};
    static const char *const codes_bad[] = {"", "e", "engl", "EN", "en-US", "e1", "ru ", NULL};
    for (size_t i = 0; i < sizeof(codes_ok) / sizeof(codes_ok[0]); i++)
        cr_expect(ls_is_language_code(codes_ok[i]), "%s rejected", codes_ok[i]);
    for (size_t i = 0; codes_bad[i] != NULL; i++)
        cr_expect(!ls_is_language_code(codes_bad[i]), "%s accepted", codes_bad[i]);
    cr_expect(!ls_is_language_code(NULL));
    for (size_t i = 0; ls_cefr_levels[i] != NULL; i++)
        cr_expect(ls_is_cefr_level(ls_cefr_levels[i]));
    cr_expect_str_eq(ls_cefr_levels[0], "A1");
    cr_expect_str_eq(ls_cefr_levels[5], "C2");
    cr_expect(!ls_is_cefr_level("D1"));
    cr_expect(!ls_is_cefr_level("b2"));
    cr_expect(!ls_is_cefr_level("B"));
    cr_expect(!ls_is_cefr_level(NULL));
}

Test(vocab, roles_in_the_order_of_ls_role_t)
{
    cr_expect_str_eq(ls_roles[0], ls_role_name(LS_ROLE_STUDENT));
    cr_expect_str_eq(ls_roles[1], ls_role_name(LS_ROLE_TEACHER));
    cr_expect_str_eq(ls_roles[2], ls_role_name(LS_ROLE_ADMIN));
    cr_expect_null(ls_roles[3]);
}
