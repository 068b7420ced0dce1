/* Route matching: shapes, typed parameters, 404/405/400 decisions. */
#include <criterion/criterion.h>
#include <string.h>

#include "router.h"

static const ls_route_t routes[] = {
    {"GET", "/users", (void *)1, 0},
    {"GET", "/users/{telegram_id:id}", (void *)2, 0},
    {"PUT", "/users/{telegram_id:id}", (void *)3, 0},
    {"GET", "/groups/search", (void *)4, 0},
    {"GET", "/groups/{group_id:uuid}", (void *)5, 0},
    {"POST", "/groups/{group_id:uuid}/members/{telegram_id:id}", (void *)6, 0},
    {"POST", "/join/{code:str}", (void *)7, 0},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static ls_route_result_t match(const char *method, const char *path, ls_route_match_t *m)
{
    return ls_router_match(routes, NROUTES, method, strlen(method), path, strlen(path), m);
}

Test(router, table_is_valid)
{
    char err[128];
    cr_assert_eq(ls_router_check(routes, NROUTES, err, sizeof(err)), 0, "%s", err);
}

Test(router, rejects_malformed_patterns)
{
    static const ls_route_t bad[][1] = {
        {{"GET", "users", NULL, 0}},
        {{"GET", "/users/{id}", NULL, 0}},
        {{"GET", "/users/{id:int}", NULL, 0}},
        {{"GET", "/users/{:id}", NULL, 0}},
        {{"GET", "/a/{a:id}/{b:id}/{c:id}/{d:id}/{e:id}", NULL, 0}},
    };
    char err[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(ls_router_check(bad[i], 1, err, sizeof(err)), -1, "pattern %s accepted",
                     bad[i][0].pattern);
}

Test(router, matches_literals_and_typed_parameters)
{
    static const struct {
        const char *method, *path;
        ls_route_result_t want;
        intptr_t handler;
    } cases[] = {
        {"GET", "/users", LS_ROUTE_OK, 1},
        {"GET", "/users/42", LS_ROUTE_OK, 2},
        {"PUT", "/users/9007199254740991", LS_ROUTE_OK, 3},
        {"GET", "/groups/search", LS_ROUTE_OK, 4},
        {"GET", "/groups/0b5c8a52-3f4e-4a8b-9c1d-2e3f4a5b6c7d", LS_ROUTE_OK, 5},
        {"POST", "/groups/0b5c8a52-3f4e-4a8b-9c1d-2e3f4a5b6c7d/members/7", LS_ROUTE_OK, 6},
        {"POST", "/join/AbC-123_x", LS_ROUTE_OK, 7},
        {"GET", "/nothing", LS_ROUTE_NOT_FOUND, 0},
        {"GET", "/users/42/extra", LS_ROUTE_NOT_FOUND, 0},
        {"GET", "/users/", LS_ROUTE_NOT_FOUND, 0},
        {"GET", "/users/42/", LS_ROUTE_NOT_FOUND, 0},
        {"GET", "/", LS_ROUTE_NOT_FOUND, 0},
        {"GET", "", LS_ROUTE_NOT_FOUND, 0},
        {"DELETE", "/users/42", LS_ROUTE_BAD_METHOD, 0},
        {"POST", "/users", LS_ROUTE_BAD_METHOD, 0},
        {"GET", "/users/abc", LS_ROUTE_BAD_PARAM, 0},
        {"GET", "/users/-5", LS_ROUTE_BAD_PARAM, 0},
        {"GET", "/users/0", LS_ROUTE_BAD_PARAM, 0},
        {"GET", "/users/9007199254740992", LS_ROUTE_BAD_PARAM, 0},
        {"GET", "/users/99999999999999999999999", LS_ROUTE_BAD_PARAM, 0},
        {"GET", "/users/12a", LS_ROUTE_BAD_PARAM, 0},
        {"GET", "/users/+12", LS_ROUTE_BAD_PARAM, 0},
        {"GET", "/groups/not-a-uuid", LS_ROUTE_BAD_PARAM, 0},
        {"GET", "/groups/0b5c8a52-3f4e-4a8b-9c1d-2e3f4a5b6c7", LS_ROUTE_BAD_PARAM, 0},
        {"GET", "/groups/0b5c8a52x3f4e-4a8b-9c1d-2e3f4a5b6c7d", LS_ROUTE_BAD_PARAM, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ls_route_match_t m;
        ls_route_result_t got = match(cases[i].method, cases[i].path, &m);
        cr_expect_eq(got, cases[i].want, "%s %s: got %d, want %d", cases[i].method, cases[i].path, got,
                     cases[i].want);
        if (got == LS_ROUTE_OK && cases[i].want == LS_ROUTE_OK)
            cr_expect_eq((intptr_t)m.route->handler, cases[i].handler, "%s %s: wrong route", cases[i].method,
                         cases[i].path);
    }
}

Test(router, literal_route_wins_over_a_parameter_that_does_not_parse)
{
    /* "search" is not a UUID: the literal route listed earlier must be chosen, whatever the order. */
    static const ls_route_t reordered[] = {
        {"GET", "/groups/{group_id:uuid}", (void *)5, 0},
        {"GET", "/groups/search", (void *)4, 0},
    };
    ls_route_match_t m;
    cr_assert_eq(ls_router_match(reordered, 2, "GET", 3, "/groups/search", 14, &m), LS_ROUTE_OK);
    cr_assert_eq((intptr_t)m.route->handler, 4);
}

Test(router, extracts_parameters)
{
    ls_route_match_t m;
    const char *path = "/groups/0b5c8a52-3f4e-4a8b-9c1d-2e3f4a5b6c7d/members/123456789";
    cr_assert_eq(match("POST", path, &m), LS_ROUTE_OK);
    cr_assert_eq(m.nparams, 2);
    const ls_route_param_t *g = ls_route_param(&m, "group_id");
    const ls_route_param_t *t = ls_route_param(&m, "telegram_id");
    cr_assert_not_null(g);
    cr_assert_not_null(t);
    cr_assert_eq(g->value_len, 36);
    cr_assert_eq(memcmp(g->value, "0b5c8a52-3f4e-4a8b-9c1d-2e3f4a5b6c7d", 36), 0);
    cr_assert_eq(t->id, 123456789);
    cr_assert_null(ls_route_param(&m, "other"));
}

Test(router, names_the_bad_parameter)
{
    ls_route_match_t m;
    cr_assert_eq(match("POST", "/groups/0b5c8a52-3f4e-4a8b-9c1d-2e3f4a5b6c7d/members/x1", &m),
                 LS_ROUTE_BAD_PARAM);
    cr_assert_not_null(m.bad_param);
    cr_assert_eq(m.bad_param->name_len, strlen("telegram_id"));
    cr_assert_eq(memcmp(m.bad_param->name, "telegram_id", m.bad_param->name_len), 0);
}

Test(router, lists_allowed_methods_once)
{
    ls_route_match_t m;
    cr_assert_eq(match("DELETE", "/users/42", &m), LS_ROUTE_BAD_METHOD);
    cr_assert_str_eq(m.allow, "GET, PUT");
}

Test(router, segment_length_is_bounded)
{
    char path[600] = "/join/";
    memset(path + 6, 'a', 300);
    path[306] = '\0';
    ls_route_match_t m;
    cr_assert_eq(match("POST", path, &m), LS_ROUTE_BAD_PARAM);
}
