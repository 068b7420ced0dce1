/*
 * router: matches a method and path against a daemon's route table, given as const data.
 *
 * Patterns are literal segments and typed parameters:
 *     "/users/{telegram_id:id}"   id   — telegram id, 1 .. 2^53-1
 *     "/groups/{group_id:uuid}"   uuid — canonical UUID
 *     "/codes/{code:str}"         str  — any non-empty segment (at most LS_ROUTE_SEG_MAX bytes)
 * Matching is by shape first: a path that has the route's literals but a parameter that does not
 * parse is LS_ROUTE_BAD_PARAM (answer 400 naming it), not "not found". A path whose shape matches
 * only routes of other methods is LS_ROUTE_BAD_METHOD (answer 405 with `allow`).
 * The path is matched without its query string; a trailing slash does not match.
 */
#ifndef LS_ROUTER_H
#define LS_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#define LS_ROUTE_MAX_PARAMS 4
#define LS_ROUTE_SEG_MAX    256

typedef enum { LS_PARAM_ID, LS_PARAM_UUID, LS_PARAM_STR } ls_param_type_t;

typedef struct {
    const char *name; /* points into the route pattern; not NUL-terminated: use name_len */
    size_t name_len;
    ls_param_type_t type;
    const char *value; /* points into the matched path; value_len bytes */
    size_t value_len;
    int64_t id; /* parsed value for LS_PARAM_ID */
} ls_route_param_t;

typedef enum {
    LS_ROUTE_OK = 0,
    LS_ROUTE_NOT_FOUND,
    LS_ROUTE_BAD_METHOD,
    LS_ROUTE_BAD_PARAM,
} ls_route_result_t;

typedef struct {
    const char *method; /* "GET", "POST", … */
    const char *pattern;
    void *handler;  /* opaque to the router (the server stores its handler type here) */
    unsigned flags; /* opaque to the router */
} ls_route_t;

typedef struct {
    const ls_route_t *route; /* set for LS_ROUTE_OK */
    ls_route_param_t params[LS_ROUTE_MAX_PARAMS];
    size_t nparams;
    const ls_route_param_t *bad_param; /* set for LS_ROUTE_BAD_PARAM */
    char allow[64];                    /* set for LS_ROUTE_BAD_METHOD: "GET, PUT" */
} ls_route_match_t;

/* Checks a route table once at start-up: returns 0, or -1 with a message for a malformed pattern. */
int ls_router_check(const ls_route_t *routes, size_t n, char *err, size_t errlen);

ls_route_result_t ls_router_match(const ls_route_t *routes, size_t n, const char *method, size_t method_len,
                                  const char *path, size_t path_len, ls_route_match_t *m);

/* Finds a parameter by name in a match; NULL if absent. */
const ls_route_param_t *ls_route_param(const ls_route_match_t *m, const char *name);

#endif
