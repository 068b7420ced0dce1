#include "url.h"

#include <string.h>

#include "text.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long ls_url_decode(char *dst, const char *src, size_t len, unsigned flags)
{
    int strict = (flags & LS_URL_STRICT) != 0;
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        int hi, lo;
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && len - i >= 3 && (hi = hexval((unsigned char)src[i + 1])) >= 0 &&
                   (lo = hexval((unsigned char)src[i + 2])) >= 0) {
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (c == '%' && strict) {
            return -1;
        }
        if (c == '\0' && strict)
            return -1;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return (long)o;
}

/* Checks one decoded segment dst[0..n) against what a path segment may hold; NULL when it is fine. */
static const char *segment_problem(const char *seg, size_t n)
{
    if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
        return "a path segment may not be '.' or '..', as written or percent-encoded";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)seg[i];
        if (c == '/')
            return "a path segment may not hold an encoded '/' (%2F)";
        if (c == '\\')
            return "a path segment may not hold a '\\'";
        if (c < 0x20 || c == 0x7f)
            return "a path segment may not hold a NUL or another control character";
    }
    if (ls_utf8_span(seg, n) != n)
        return "a path segment must be UTF-8 once percent-decoded";
    return NULL;
}

long ls_url_path(char *dst, const char *src, size_t len, const char **reason)
{
    size_t o = 0, seg = 0;

    if (len == 0 || src[0] != '/') {
        *reason = "the path must start with '/'";
        return -1;
    }
    for (size_t i = 0; i <= len; i++) {
        if (i == len || src[i] == '/') {
            if (i > 0 && (*reason = segment_problem(dst + seg, o - seg)) != NULL)
                return -1;
            if (i == len)
                break;
            dst[o++] = '/';
            seg = o;
            continue;
        }
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            int hi, lo;
            if (len - i < 3 || (hi = hexval((unsigned char)src[i + 1])) < 0 ||
                (lo = hexval((unsigned char)src[i + 2])) < 0) {
                *reason = "a '%' in the path must be followed by two hexadecimal digits";
                return -1;
            }
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return (long)o;
}
