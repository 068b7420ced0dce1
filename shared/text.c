#include "text.h"

#include <stdlib.h>
#include <string.h>

/* ---- the escaper ---- */

const unsigned char ls_json_escapes[256] = {
    [0x00 ... 0x1f] = LS_JSON_ESC_ALWAYS,
    ['"'] = LS_JSON_ESC_ALWAYS,
    ['\\'] = LS_JSON_ESC_ALWAYS,
    ['/'] = LS_JSON_ESC_SLASH,
};

size_t ls_json_escape_byte(unsigned char c, char out[6])
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '\b':
        out[1] = 'b';
        break;
    case '\f':
        out[1] = 'f';
        break;
    case '\n':
        out[1] = 'n';
        break;
    case '\r':
        out[1] = 'r';
        break;
    case '\t':
        out[1] = 't';
        break;
    case '"':
    case '\\':
    case '/':
        out[1] = (char)c;
        break;
    default:
        if (c >= 0x20)
            return 0;
        memcpy(out, "\\u00", 4);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 15];
        return 6;
    }
    out[0] = '\\';
    return 2;
}

size_t ls_json_escape(char *dst, size_t cap, const char *src, size_t len, unsigned flags, size_t *used)
{
    unsigned mask = LS_JSON_ESC_ALWAYS | (flags & LS_JSON_ESC_SLASH);
    size_t i = 0, o = 0;

    while (i < len) {
        /* A run of plain bytes, as much of it as fits, in one copy. */
        size_t end = len - i < cap - o ? len : i + (cap - o), j = i;
        while (j < end && !(ls_json_escapes[(unsigned char)src[j]] & mask))
            j++;
        memcpy(dst + o, src + i, j - i);
        o += j - i;
        i = j;
        if (i == len || !(ls_json_escapes[(unsigned char)src[i]] & mask))
            break; /* done, or dst is full */
        char esc[6];
        size_t elen = ls_json_escape_byte((unsigned char)src[i], esc);
        if (elen > cap - o)
            break;
        memcpy(dst + o, esc, elen);
        o += elen;
        i++;
    }
    if (used != NULL)
        *used = i;
    return o;
}

/* ---- UTF-8 ---- */

size_t ls_utf8_span(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        /* The sequence's length and the range its second byte must fall in (RFC 3629 §4). */
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return i; /* a continuation byte, an overlong lead (c0, c1) or f5..ff */
        }
        if (len - i < n || p[i + 1] < lo || p[i + 1] > hi)
            return i;
        for (size_t k = 2; k < n; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return i;
        i += n;
    }
    return len;
}

/* ---- the text writer ---- */

/* Makes room for n more bytes and a terminating NUL; -1 (and `failed`) when out of memory. */
static int reserve(ls_text_t *t, size_t n)
{
    if (t->failed)
        return -1;
    if (t->cap - t->len > n)
        return 0;
    size_t cap = t->cap > 0 ? t->cap : 16384; /* a view or a page of rows fits at once */
    while (cap - t->len <= n)
        cap *= 2;
    char *buf = realloc(t->buf, cap);
    if (buf == NULL) {
        t->failed = 1;
        return -1;
    }
    t->buf = buf;
    t->cap = cap;
    return 0;
}

void ls_text_add(ls_text_t *t, const char *s, size_t len)
{
    if (reserve(t, len) != 0)
        return;
    memcpy(t->buf + t->len, s, len);
    t->len += len;
}

void ls_text_str(ls_text_t *t, const char *s, size_t len)
{
    /* Room for the string unescaped and its quotes: all it takes unless it holds escapes. */
    if (reserve(t, len + 2) != 0)
        return;
    t->buf[t->len++] = '"';
    for (;;) {
        size_t used;
        t->len += ls_json_escape(t->buf + t->len, t->cap - t->len - 1, s, len, LS_JSON_ESC_SLASH, &used);
        s += used;
        len -= used;
        if (len == 0)
            break;
        if (reserve(t, len + 6) != 0) /* the rest, and a 6-byte escape more than that */
            return;
    }
    ls_text_lit(t, "\"");
}

void ls_text_json(ls_text_t *t, json_object *obj)
{
    size_t len;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
    ls_text_add(t, s, len);
}

void ls_text_free(ls_text_t *t)
{
    free(t->buf);
    t->buf = NULL;
    t->len = t->cap = 0;
}
