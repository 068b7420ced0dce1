/*
 * errbuf: filling the caller's error buffer, the `char *err, size_t errlen` pair through which the
 * start-up functions of shared/ (settings, migrations, the database wait) explain a failure in one line.
 *
 * Internal to shared/: included by its .c files only, not part of any module's API.
 */
#ifndef LS_ERRBUF_H
#define LS_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Formats the message into err (cut to errlen); does nothing when the caller gave no buffer. */
static inline void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copies a possibly multi-line message (libpq's) as one line: line breaks and tabs become single
 * spaces, leading and trailing spaces go. */
static inline void err_flatten(char *dst, size_t len, const char *src)
{
    size_t j = 0;
    if (len == 0)
        return;
    for (size_t i = 0; src != NULL && src[i] != '\0' && j + 1 < len; i++) {
        char c = src[i];
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
        if (c == ' ' && (j == 0 || dst[j - 1] == ' '))
            continue;
        dst[j++] = c;
    }
    while (j > 0 && dst[j - 1] == ' ')
        j--;
    dst[j] = '\0';
}

#endif
