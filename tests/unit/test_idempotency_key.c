/* idempotency.h's pure parts: which keys are accepted, and the request fingerprint. */
#include <criterion/criterion.h>
#include <string.h>

#include "idempotency.h"

static int valid(const char *key)
{
    return ls_idem_key_valid(key, strlen(key));
}

Test(idempotency_key, accepts_1_to_128_visible_ascii)
{
    char key[LS_IDEM_KEY_MAX + 2];
    cr_expect(valid("a"));
    cr_expect(valid("lesson:42:v1:scheduled:279058397"));
    cr_expect(valid("!~\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`{|}"));
    memset(key, 'k', sizeof(key));
    key[LS_IDEM_KEY_MAX] = '\0';
    cr_expect(valid(key));
    key[LS_IDEM_KEY_MAX] = 'k';
    key[LS_IDEM_KEY_MAX + 1] = '\0';
    cr_expect_not(valid(key), "129 characters");
}

Test(idempotency_key, refuses_empty_space_control_and_non_ascii)
{
    cr_expect_not(valid(""));
    cr_expect_not(valid("two words"));
    cr_expect_not(valid("tab\there"));
    cr_expect_not(valid("caf\xc3\xa9"));
    cr_expect_not(valid("del\x7f"));
    cr_expect_not(ls_idem_key_valid("nul\0byte", 8), "a NUL inside");
}

Test(idempotency_key, fingerprint_names_method_path_and_body)
{
    char a[LS_IDEM_FP_HEX], b[LS_IDEM_FP_HEX];
    ls_idem_fingerprint("POST", 4, "/groups", 7, "{\"a\":1}", 7, a);
    cr_expect_eq(strlen(a), 64);
    ls_idem_fingerprint("POST", 4, "/groups", 7, "{\"a\":1}", 7, b);
    cr_expect_str_eq(a, b, "the same request, the same fingerprint");
    ls_idem_fingerprint("PUT", 3, "/groups", 7, "{\"a\":1}", 7, b);
    cr_expect_str_neq(a, b, "another method");
    ls_idem_fingerprint("POST", 4, "/groups/x", 9, "{\"a\":1}", 7, b);
    cr_expect_str_neq(a, b, "another path");
    ls_idem_fingerprint("POST", 4, "/groups", 7, "{\"a\":2}", 7, b);
    cr_expect_str_neq(a, b, "another body");
    /* The parts do not run together: moving bytes from the path to the body changes it. */
    ls_idem_fingerprint("POST", 4, "/group", 6, "s{\"a\":1}", 8, b);
    cr_expect_str_neq(a, b, "path and body are told apart");
    ls_idem_fingerprint("POST", 4, "/groups", 7, NULL, 0, b);
    cr_expect_eq(strlen(b), 64, "no body");
}
