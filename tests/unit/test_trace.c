/* traceparent: what is continued, what starts a new trace, and what a call sends. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>

#include "trace.h"

#define TRACE  "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT "00f067aa0ba902b7"
#define VALID  "00-" TRACE "-" PARENT "-01"

static void init(void)
{
    cr_assert_geq(sodium_init(), 0);
}

TestSuite(trace, .init = init);

static int lower_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

Test(trace, continues_a_valid_traceparent_with_a_span_of_its_own)
{
    ls_trace_t t;
    cr_assert_eq(ls_trace_begin(&t, VALID, strlen(VALID)), 1);
    cr_expect_str_eq(t.trace_id, TRACE);
    cr_expect_str_eq(t.parent_id, PARENT);
    cr_expect_str_eq(t.flags, "01");
    cr_expect(lower_hex(t.span_id, LS_SPAN_ID_LEN), "span %s", t.span_id);
    cr_expect_str_neq(t.span_id, PARENT);

    /* A call made within it names the trace and this request's span as the parent. */
    char out[LS_TRACEPARENT_LEN + 1];
    ls_trace_format(&t, out);
    cr_expect_eq(strlen(out), LS_TRACEPARENT_LEN);
    cr_expect(strncmp(out, "00-" TRACE "-", 36) == 0, "%s", out);
    cr_expect(strncmp(out + 36, t.span_id, LS_SPAN_ID_LEN) == 0, "%s", out);
    cr_expect_str_eq(out + 52, "-01");

    /* Flags pass through as they came; the value need not be NUL-terminated. */
    const char unsampled[] = "00-" TRACE "-" PARENT "-00GARBAGE";
    cr_assert_eq(ls_trace_begin(&t, unsampled, LS_TRACEPARENT_LEN), 1);
    cr_expect_str_eq(t.flags, "00");
}

Test(trace, a_later_version_may_carry_more_fields)
{
    ls_trace_t t;
    const char *later = "cc-" TRACE "-" PARENT "-01-what-the-future-holds";
    cr_expect_eq(ls_trace_parse(&t, later, strlen(later)), 0);
    cr_expect_str_eq(t.trace_id, TRACE);
    const char *glued = "cc-" TRACE "-" PARENT "-01x";
    cr_expect_eq(ls_trace_parse(&t, glued, strlen(glued)), -1);
}

Test(trace, an_invalid_or_absent_traceparent_starts_a_new_trace)
{
    const char *bad[] = {
        "",
        "00-" TRACE "-" PARENT "-0",                         /* short */
        "00-" TRACE "-" PARENT "-01-",                       /* version 00 is exactly 55 */
        "ff-" TRACE "-" PARENT "-01",                        /* version ff is invalid */
        "00-00000000000000000000000000000000-" PARENT "-01", /* all-zero trace id */
        "00-" TRACE "-0000000000000000-01",                  /* all-zero parent id */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PARENT "-01", /* upper case */
        "00_" TRACE "-" PARENT "-01",                        /* wrong separator */
        "00-" TRACE "-00f067aa0ba902bz-01",                  /* not hex */
        "00-" TRACE "-" PARENT "-0g",                        /* flags not hex */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ls_trace_t t;
        memset(&t, 'x', sizeof(t));
        cr_expect_eq(ls_trace_parse(&t, bad[i], strlen(bad[i])), -1, "accepted %s", bad[i]);
        cr_expect_eq(t.trace_id[0], 'x', "changed by %s", bad[i]);
        cr_expect_eq(ls_trace_begin(&t, bad[i], strlen(bad[i])), 0, "continued %s", bad[i]);
        cr_expect(lower_hex(t.trace_id, LS_TRACE_ID_LEN), "trace %s", t.trace_id);
        cr_expect_str_neq(t.trace_id, TRACE);
        cr_expect_str_eq(t.parent_id, "");
        cr_expect_str_eq(t.flags, "01");
    }
    ls_trace_t a, b;
    cr_assert_eq(ls_trace_begin(&a, NULL, 0), 0);
    cr_assert_eq(ls_trace_begin(&b, NULL, 0), 0);
    cr_expect_str_neq(a.trace_id, b.trace_id);
    cr_expect_str_neq(a.span_id, b.span_id);
    /* What it sends is valid itself. */
    char out[LS_TRACEPARENT_LEN + 1];
    ls_trace_format(&a, out);
    cr_expect_eq(ls_trace_parse(&b, out, strlen(out)), 0, "%s", out);
    cr_expect_str_eq(b.trace_id, a.trace_id);
    cr_expect_str_eq(b.parent_id, a.span_id);
}

Test(trace, joins_a_stored_trace_id)
{
    ls_trace_t t;
    cr_assert_eq(ls_trace_join(&t, TRACE), 0);
    cr_expect_str_eq(t.trace_id, TRACE);
    cr_expect_str_eq(t.parent_id, "");
    cr_expect(lower_hex(t.span_id, LS_SPAN_ID_LEN));
    cr_expect_eq(ls_trace_join(&t, NULL), -1);
    cr_expect_eq(ls_trace_join(&t, "4bf92f35"), -1);
    cr_expect_eq(ls_trace_join(&t, "00000000000000000000000000000000"), -1);
    cr_expect_eq(ls_trace_join(&t, "4BF92F3577B34DA6A3CE929D0E0E4736"), -1);
    cr_expect_str_eq(t.trace_id, TRACE);
}
