#include "url.h"

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
