/*
 * errbuf: filling the caller's error buffer, the `char *err, size_t errlen` pair through which the
 * start-up functions of shared/ (settings, migrations) explain a failure in one line.
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

#endif
