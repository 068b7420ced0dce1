/*
 * json: json-c helpers — bounded body parsing, declarative input validation, problem+json.
 *
 * Validation is a table of ls_json_field_t. ls_json_validate() checks an object against it and,
 * on the first problem, writes a message that names the field ("field 'role': must be one of
 * student, teacher, admin"). Fields not in the table are rejected too, so a typo is an error, not a
 * silently ignored value.
 *
 * Ownership: json-c objects are reference counted; functions returning a new object give the
 * caller one reference (json_object_put() to release).
 */
#ifndef LS_JSON_H
#define LS_JSON_H

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

/* Largest telegram_id accepted anywhere (2^53 - 1). */
#define LS_ID_MAX 9007199254740991LL

/*
 * Parses a request body that must be one JSON object of at most LS_JSON_MAX_DEPTH nesting.
 * Returns the object, or NULL with a message in err ("malformed JSON at offset 12", "body must be
 * a JSON object").
 */
json_object *ls_json_parse_object(const char *buf, size_t len, char *err, size_t errlen);

/* Returns 0 when obj satisfies the table, else -1 with a message naming the field. */
int ls_json_validate(json_object *obj, const ls_json_field_t *fields, size_t n, char *err, size_t errlen);

/* Strict parsers shared by validation, routes and query strings. Return 0 or -1. */
int ls_parse_id(const char *s, size_t len, int64_t *out);  /* 1 .. LS_ID_MAX, digits only */
int ls_parse_i64(const char *s, size_t len, int64_t *out); /* optional '-', digits, no overflow */
int ls_is_uuid(const char *s, size_t len);
int ls_is_rfc3339(const char *s, size_t len);

/* The school's shared vocabulary (the SQL enum cefr_level has the same values in every database). */
extern const char *const ls_cefr_levels[]; /* "A1" … "C2" in ascending order, NULL-terminated */
int ls_is_cefr_level(const char *s);
/* An ISO 639 language code as stored everywhere: 2 or 3 lowercase ASCII letters. */
int ls_is_language_code(const char *s);

/* Convenience getters for validated objects: NULL / default when absent or null. */
const char *ls_json_get_str(json_object *obj, const char *key);
int64_t ls_json_get_i64(json_object *obj, const char *key, int64_t def);
int ls_json_has(json_object *obj, const char *key); /* present, even if null */

/* RFC 9457 problem document: {"type":"about:blank","title":…,"status":…,"detail":…}. */
json_object *ls_problem_new(int status, const char *detail);
/* Standard reason phrase for a status ("Not Found"); "Error" for unknown codes. */
const char *ls_status_title(int status);

/*
 * JSON written as text into a growing buffer of the process heap, for answers built from pieces
 * (result rows, parts passed on unread) rather than from one json-c object. Start from {0}; on
 * running out of memory `failed` is set and further writes are dropped, so a caller checks once at
 * the end. ls_text_free() frees the buffer (ls_reply_raw copies what it sends).
 */
typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} ls_text_t;

void ls_text_add(ls_text_t *t, const char *s, size_t len);
#define ls_text_lit(t, s) ls_text_add((t), (s), sizeof(s) - 1)
/* s as a JSON string, escaped as json-c escapes it: \b \f \n \r \t \" \\ \/, other control
 * characters as \u00xx, every other byte as it is. */
void ls_text_str(ls_text_t *t, const char *s, size_t len);
/* json-c's plain form of obj (null for NULL), as json-c would write it inside a larger answer. */
void ls_text_json(ls_text_t *t, json_object *obj);
void ls_text_free(ls_text_t *t);

#endif
