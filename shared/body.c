#include "body.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "scalar.h"
#include "text.h"

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 0;
}

int ls_json_text_check(const char *buf, size_t len, char *err, size_t errlen)
{
    size_t ok = ls_utf8_span(buf, len);
    const char *nul = memchr(buf, '\0', ok);
    if (nul != NULL) {
        snprintf(err, errlen, "JSON text holds a NUL byte at offset %zu", (size_t)(nul - buf));
        return -1;
    }
    if (ok < len) {
        snprintf(err, errlen, "JSON text is not UTF-8 at offset %zu", ok);
        return -1;
    }
    /* A backslash is only valid inside a string, so every one starts an escape: read each, and skip
     * what it escapes (so the "\\" of "\\u0000" is not taken for the start of another). */
    for (const char *p = memchr(buf, '\\', len), *end = buf + len; p != NULL;
         p = p < end ? memchr(p, '\\', (size_t)(end - p)) : NULL) {
        unsigned u, low;
        if (end - p < 6 || p[1] != 'u' || hex4(p + 2, &u) != 0) {
            p += end - p >= 2 ? 2 : 1; /* a one-character escape, or a malformed one json-c refuses */
            continue;
        }
        const char *why = NULL;
        if (u == 0)
            why = "a NUL character (\\u0000)";
        else if (u >= 0xdc00 && u <= 0xdfff)
            why = "half a surrogate pair";
        else if (u >= 0xd800 && u <= 0xdbff &&
                 (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &low) != 0 || low < 0xdc00 ||
                  low > 0xdfff))
            why = "half a surrogate pair";
        if (why != NULL) {
            snprintf(err, errlen, "JSON text holds %s at offset %zu", why, (size_t)(p - buf));
            return -1;
        }
        p += u >= 0xd800 && u <= 0xdbff ? 12 : 6;
    }
    return 0;
}

/* 1 when every number in v is finite (the nesting is bounded by the tokener's depth). */
static int all_finite(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_double:
        return isfinite(json_object_get_double(v));
    case json_type_object: {
        json_object_object_foreach(v, key, val)
        {
            (void)key;
            if (!all_finite(val))
                return 0;
        }
        return 1;
    }
    case json_type_array:
        for (size_t i = 0, n = json_object_array_length(v); i < n; i++)
            if (!all_finite(json_object_array_get_idx(v, i)))
                return 0;
        return 1;
    default:
        return 1;
    }
}

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
    if (ls_json_text_check(buf, len, err, errlen) != 0)
        goto done;
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
    json_object_object_foreach(obj, key, val)
    {
        if (!all_finite(val)) {
            snprintf(err, errlen, "field '%.64s': must be a finite number (not NaN or Infinity)", key);
            goto fail;
        }
    }
    goto done;
fail:
    json_object_put(obj);
    obj = NULL;
done:
    json_tokener_free(tok);
    return obj;
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
        if (!isfinite(d) || d < (double)f->min || d > (double)f->max) {
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
