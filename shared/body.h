/*
 * body: a request body — one JSON object parsed within bounds, checked against a table of fields,
 * then read with getters.
 *
 * Validation is a table of ls_json_field_t. ls_json_validate() checks an object against it and,
 * on the first problem, writes a message that names the field ("field 'role': must be one of
 * student, teacher, admin"). Fields not in the table are rejected too, so a typo is an error, not a
 * silently ignored value. The scalar checks are scalar.h's, so a body, a path and a query string
 * accept the same ids, UUIDs and times.
 *
 * Text and numbers are checked before any field is: a body must be UTF-8, no string may hold a NUL
 * (\u0000) or half of a surrogate pair (\ud800 alone — json-c would silently replace it), and every
 * number must be finite (json-c takes the literals NaN, Infinity and -Infinity, and 1e999 as
 * infinity). So no text reaches a handler cut, altered or unstorable, whatever the field.
 *
 * Ownership: json-c objects are reference counted; functions returning a new object give the
 * caller one reference (json_object_put() to release).
 */
#ifndef LS_BODY_H
#define LS_BODY_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define LS_JSON_MAX_DEPTH 16

typedef enum {
    LS_JSON_STRING, /* length in bytes within [min, max] (max 0: no upper bound) */
    LS_JSON_INT,    /* integer within [min, max] */
    LS_JSON_ID,     /* telegram id: integer 1 .. 2^53 - 1 (exact in every JSON parser) */
    LS_JSON_BOOL,
    LS_JSON_NUMBER, /* integer or decimal within [min, max] */
    LS_JSON_ENUM,   /* string, one of enum_values (NULL-terminated) */
    LS_JSON_UUID,   /* canonical 8-4-4-4-12 hex string */
    LS_JSON_TIME,   /* RFC 3339 date-time string with offset */
    LS_JSON_OBJECT,
    LS_JSON_ARRAY, /* element count within [min, max] */
} ls_json_type_t;

typedef struct {
    const char *name;
    ls_json_type_t type;
    int required;
    int nullable; /* an explicit null is accepted */
    long long min, max;
    const char *const *enum_values;
} ls_json_field_t;

/*
 * Parses a request body that must be one JSON object of at most LS_JSON_MAX_DEPTH nesting, with
 * ls_json_text_check's text and only finite numbers. Returns the object, or NULL with a message in
 * err ("malformed JSON at offset 12", "body must be a JSON object", "field 'price': must be a
 * finite number").
 */
json_object *ls_json_parse_object(const char *buf, size_t len, char *err, size_t errlen);

/*
 * Checks JSON text before it is parsed: well-formed UTF-8 (text.h), no NUL byte, and no escape of
 * a NUL (\u0000) or of half a surrogate pair. Returns 0, or -1 with a message naming the offset.
 */
int ls_json_text_check(const char *buf, size_t len, char *err, size_t errlen);

/* Returns 0 when obj satisfies the table, else -1 with a message naming the field. */
int ls_json_validate(json_object *obj, const ls_json_field_t *fields, size_t n, char *err, size_t errlen);

/* Convenience getters for validated objects: NULL / default when absent or null. */
const char *ls_json_get_str(json_object *obj, const char *key);
int64_t ls_json_get_i64(json_object *obj, const char *key, int64_t def);
int ls_json_has(json_object *obj, const char *key); /* present, even if null */

#endif
