/*
 * url: decoding of URL-encoded values — a query string's parameter (server.h's ls_req_query) and
 * the pairs of Telegram's initData (bff/tma.c) — as application/x-www-form-urlencoded reads them:
 * '+' is a space and %XX (hex digits in either case) is the byte XX.
 *
 * — and the path of a request, which the front door (front.h) checks and decodes before routing.
 *
 * Two readings of what is not well-formed: a query string is read leniently, as browsers do (a '%'
 * not followed by two hex digits stays as it is); initData, which is signed, strictly (LS_URL_STRICT:
 * such a '%', or a value that decodes to a NUL byte, is refused).
 */
#ifndef LS_URL_H
#define LS_URL_H

#include <stddef.h>

#define LS_URL_STRICT 1u

/*
 * Decodes src[0..len) into dst, which has room for len + 1 bytes (decoding never lengthens), and
 * NUL-terminates it. Returns the decoded length, or -1 under LS_URL_STRICT for a bad '%' or a NUL
 * (what dst then holds is of no use). Without LS_URL_STRICT it never fails, and a "%00" decodes to a NUL that
 * ends the value for a reader of C strings.
 */
long ls_url_decode(char *dst, const char *src, size_t len, unsigned flags);

/*
 * The path of a request (src[0..len), without its query) checked and percent-decoded into dst, which
 * has room for len + 1 bytes, NUL-terminated, for routing. One path names one route: the path must
 * start with '/', a '%' must be followed by two hex digits, and no segment may be "." or ".." (as
 * written or percent-encoded) or hold, once decoded, a '/', a '\\', a NUL or another control
 * character, or bytes that are not UTF-8. Nothing is resolved or merged ('+' stays '+'; "//" stays,
 * and routes nowhere). Returns the decoded length, or -1 with *reason set to a static sentence.
 */
long ls_url_path(char *dst, const char *src, size_t len, const char **reason);

#endif
