#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_object *ls_json_parse_object(const char *buf, size_t len, char *err, size_t errlen)
{
    json_tokener *tok = json_tokener_new_ex(LS_JSON_MAX_DEPTH);
    json_object *obj = NULL;

    if (tok == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (len == 0) {
        snprintf(err, errlen, "body must be a JSON object, got an empty body");
        goto done;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, buf, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_continue) {
        snprintf(err, errlen, "malformed JSON: unexpected end of body");
        goto fail;
    }
    if (jerr != json_tokener_success) {
        snprintf(err, errlen, "malformed JSON at offset %zu: %s", json_tokener_get_parse_end(tok),
                 json_tokener_error_desc(jerr));
        goto fail;
    }
    /* Only whitespace may follow the value. */
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
        if (!isspace((unsigned char)buf[i])) {
            snprintf(err, errlen, "malformed JSON at offset %zu: data after the value", i);
            goto fail;
        }
    }
    if (!json_object_is_type(obj, json_type_object)) {
        snprintf(err, errlen, "body must be a JSON object");
        goto fail;
    }
    goto done;
fail:
    json_object_put(obj);
    obj = NULL;
done:
    json_tokener_free(tok);
    return obj;
}

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

static const char *type_name(ls_json_type_t t)
{
    switch (t) {
    case LS_JSON_STRING:
    case LS_JSON_ENUM:
    case LS_JSON_UUID:
    case LS_JSON_TIME:
        return "a string";
    case LS_JSON_INT:
    case LS_JSON_ID:
        return "an integer";
    case LS_JSON_BOOL:
        return "true or false";
    case LS_JSON_NUMBER:
        return "a number";
    case LS_JSON_OBJECT:
        return "an object";
    case LS_JSON_ARRAY:
        return "an array";
    }
    return "?";
}

/* json-c parses big integers saturating at INT64_MAX/MIN; catch that by re-reading the source text. */
static int int_exact(json_object *v, int64_t *out)
{
    if (!json_object_is_type(v, json_type_int))
        return -1;
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (errno != 0)
        return -1;
    if (x == INT64_MAX || x == INT64_MIN) {
        const char *text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        int64_t y;
        if (ls_parse_i64(text, strlen(text), &y) != 0)
            return -1;
    }
    *out = x;
    return 0;
}

static int check_field(json_object *v, const ls_json_field_t *f, char *err, size_t errlen)
{
    int64_t i;
    size_t len;
    const char *s;

    switch (f->type) {
    case LS_JSON_STRING:
    case LS_JSON_ENUM:
    case LS_JSON_UUID:
    case LS_JSON_TIME:
        if (!json_object_is_type(v, json_type_string))
            goto wrong_type;
        s = json_object_get_string(v);
        len = (size_t)json_object_get_string_len(v);
        if (memchr(s, '\0', len) != NULL) {
            snprintf(err, errlen, "field '%s': must not contain NUL characters", f->name);
            return -1;
        }
        if (f->type == LS_JSON_STRING) {
            if ((long long)len < f->min || (f->max > 0 && (long long)len > f->max)) {
                if (f->max > 0)
                    snprintf(err, errlen, "field '%s': length must be %lld to %lld bytes", f->name, f->min,
                             f->max);
                else
                    snprintf(err, errlen, "field '%s': length must be at least %lld bytes", f->name, f->min);
                return -1;
            }
        } else if (f->type == LS_JSON_ENUM) {
            for (const char *const *e = f->enum_values; *e != NULL; e++)
                if (strcmp(*e, s) == 0)
                    return 0;
            char list[256];
            size_t off = 0;
            list[0] = '\0';
            for (const char *const *e = f->enum_values; *e != NULL && off < sizeof(list); e++)
                off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", off ? ", " : "", *e);
            snprintf(err, errlen, "field '%s': must be one of %s", f->name, list);
            return -1;
        } else if (f->type == LS_JSON_UUID && !ls_is_uuid(s, len)) {
            snprintf(err, errlen, "field '%s': must be a UUID", f->name);
            return -1;
        } else if (f->type == LS_JSON_TIME && !ls_is_rfc3339(s, len)) {
            snprintf(err, errlen, "field '%s': must be an RFC 3339 date-time such as 2026-01-31T18:00:00Z",
                     f->name);
            return -1;
        }
        return 0;
    case LS_JSON_INT:
        if (int_exact(v, &i) != 0)
            goto wrong_type;
        if (i < f->min || i > f->max) {
            snprintf(err, errlen, "field '%s': must be an integer from %lld to %lld", f->name, f->min,
                     f->max);
            return -1;
        }
        return 0;
    case LS_JSON_ID:
        if (int_exact(v, &i) != 0 || i < 1 || i > LS_ID_MAX) {
            snprintf(err, errlen, "field '%s': must be a telegram id (an integer from 1 to %lld)", f->name,
                     LS_ID_MAX);
            return -1;
        }
        return 0;
    case LS_JSON_BOOL:
        if (!json_object_is_type(v, json_type_boolean))
            goto wrong_type;
        return 0;
    case LS_JSON_NUMBER: {
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
            goto wrong_type;
        double d = json_object_get_double(v);
        if (d < (double)f->min || d > (double)f->max) {
            snprintf(err, errlen, "field '%s': must be a number from %lld to %lld", f->name, f->min, f->max);
            return -1;
        }
        return 0;
    }
    case LS_JSON_OBJECT:
        if (!json_object_is_type(v, json_type_object))
            goto wrong_type;
        return 0;
    case LS_JSON_ARRAY:
        if (!json_object_is_type(v, json_type_array))
            goto wrong_type;
        len = json_object_array_length(v);
        if ((long long)len < f->min || (long long)len > f->max) {
            snprintf(err, errlen, "field '%s': must have %lld to %lld elements", f->name, f->min, f->max);
            return -1;
        }
        return 0;
    }
wrong_type:
    snprintf(err, errlen, "field '%s': must be %s", f->name, type_name(f->type));
    return -1;
}

int ls_json_validate(json_object *obj, const ls_json_field_t *fields, size_t n, char *err, size_t errlen)
{
    json_object_object_foreach(obj, key, val)
    {
        (void)val;
        size_t i;
        for (i = 0; i < n; i++)
            if (strcmp(fields[i].name, key) == 0)
                break;
        if (i == n) {
            snprintf(err, errlen, "field '%.64s': unknown field", key);
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_object *v;
        if (!json_object_object_get_ex(obj, fields[i].name, &v)) {
            if (fields[i].required) {
                snprintf(err, errlen, "field '%s': required", fields[i].name);
                return -1;
            }
            continue;
        }
        if (v == NULL) {
            if (!fields[i].nullable) {
                snprintf(err, errlen, "field '%s': must not be null", fields[i].name);
                return -1;
            }
            continue;
        }
        if (check_field(v, &fields[i], err, errlen) != 0)
            return -1;
    }
    return 0;
}

const char *ls_json_get_str(json_object *obj, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int64_t ls_json_get_i64(json_object *obj, const char *key, int64_t def)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
        return def;
    return json_object_get_int64(v);
}

int ls_json_has(json_object *obj, const char *key)
{
    return json_object_object_get_ex(obj, key, NULL);
}

const char *ls_status_title(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return "Error";
}

json_object *ls_problem_new(int status, const char *detail)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "type", json_object_new_string("about:blank"));
    json_object_object_add(p, "title", json_object_new_string(ls_status_title(status)));
    json_object_object_add(p, "status", json_object_new_int(status));
    if (detail != NULL)
        json_object_object_add(p, "detail", json_object_new_string(detail));
    return p;
}

const char *const ls_cefr_levels[] = {"A1", "A2", "B1", "B2", "C1", "C2", NULL};

int ls_is_cefr_level(const char *s)
{
    for (size_t i = 0; s != NULL && ls_cefr_levels[i] != NULL; i++)
        if (strcmp(s, ls_cefr_levels[i]) == 0)
            return 1;
    return 0;
}

int ls_is_language_code(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++)
        if (s[n] < 'a' || s[n] > 'z' || n == 3)
            return 0;
    return n >= 2;
}

/* ---- JSON as text ---- */

void ls_text_add(ls_text_t *t, const char *s, size_t len)
{
    if (t->failed)
        return;
    if (t->cap - t->len <= len) {                 /* keeps a byte free, for a terminating NUL */
        size_t cap = t->cap > 0 ? t->cap : 16384; /* a view or a page of rows fits at once */
        while (cap - t->len <= len)
            cap *= 2;
        char *buf = realloc(t->buf, cap);
        if (buf == NULL) {
            t->failed = 1;
            return;
        }
        t->buf = buf;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, len);
    t->len += len;
}

/* The two-character escape of c, or NULL. */
static const char *short_escape(unsigned char c)
{
    switch (c) {
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '/':
        return "\\/";
    }
    return NULL;
}

void ls_text_str(ls_text_t *t, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    ls_text_lit(t, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = short_escape(c);
        char u[7];
        if (esc == NULL && c < ' ') {
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 0xf];
            u[6] = '\0';
            esc = u;
        }
        if (esc == NULL)
            continue;
        ls_text_add(t, s + start, i - start);
        ls_text_add(t, esc, strlen(esc));
        start = i + 1;
    }
    ls_text_add(t, s + start, len - start);
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
