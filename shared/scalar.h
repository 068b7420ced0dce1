/*
 * scalar: strict parsers of the scalar values the API takes as text — telegram ids, integers,
 * UUIDs and RFC 3339 date-times — shared by body validation, the router's path parameters, request
 * headers, query strings and result rows.
 *
 * Each takes (s, len), need not be NUL-terminated, and accepts all of it or nothing: no leading or
 * trailing spaces, no '+', no partial numbers.
 */
#ifndef LS_SCALAR_H
#define LS_SCALAR_H

#include <stddef.h>
#include <stdint.h>

/* Largest telegram_id accepted anywhere (2^53 - 1, exact in every JSON parser). */
#define LS_ID_MAX 9007199254740991LL

/* Return 0 and set *out, or -1 (then *out is untouched). */
int ls_parse_id(const char *s, size_t len, int64_t *out);  /* 1 .. LS_ID_MAX, digits only */
int ls_parse_i64(const char *s, size_t len, int64_t *out); /* optional '-', digits, no overflow */

/* Return 1 when s is one, else 0. */
int ls_is_uuid(const char *s, size_t len);    /* 8-4-4-4-12 hex digits, either case */
int ls_is_rfc3339(const char *s, size_t len); /* YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM), a real date */

#endif
