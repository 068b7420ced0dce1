#include "scalar.h"

#include <ctype.h>

int ls_parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0, limit = (uint64_t)INT64_MAX;

    if (len > 0 && s[0] == '-') {
        neg = 1;
        limit += 1;
        i = 1;
    }
    if (i == len)
        return -1;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int ls_parse_id(const char *s, size_t len, int64_t *out)
{
    int64_t v;
    if (len == 0 || s[0] == '-' || ls_parse_i64(s, len, &v) != 0 || v < 1 || v > LS_ID_MAX)
        return -1;
    *out = v;
    return 0;
}

int ls_is_uuid(const char *s, size_t len)
{
    if (len != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int ls_is_rfc3339(const char *s, size_t len)
{
    /* YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM) */
    int y, mo, d, h, mi, sec;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return 0;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) || digits(s + 11, 2, &h) ||
        digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
        return 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return 0;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 0;
    size_t i = 19;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        while (i < len && isdigit((unsigned char)s[i]))
            i++;
        if (i == start || i - start > 9)
            return 0;
    }
    if (i < len && (s[i] == 'Z' || s[i] == 'z'))
        return i + 1 == len;
    int oh, om;
    if (len - i != 6 || (s[i] != '+' && s[i] != '-') || s[i + 3] != ':' || digits(s + i + 1, 2, &oh) ||
        digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
        return 0;
    return 1;
}
