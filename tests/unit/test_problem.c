/* problem+json documents and status titles. */
#include <criterion/criterion.h>

#include "problem.h"

Test(problem, problem_documents)
{
    json_object *p = ls_problem_new(404, "user 7 not found");
    cr_assert_str_eq(
        json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN),
        "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,\"detail\":\"user 7 not found\"}");
    json_object_put(p);
    cr_expect_str_eq(ls_status_title(413), "Content Too Large");
    cr_expect_str_eq(ls_status_title(503), "Service Unavailable");
    cr_expect_str_eq(ls_status_title(299), "Error");
}
