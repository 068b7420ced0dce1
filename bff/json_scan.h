/*
 * json_scan: the BFF's JSON scanner — what a view reads of a service's answer that it passes on as
 * text, found without building json-c objects (building them was most of the BFF's work per view).
 *
 * The scanner accepts only text in json-c's plain form (JSON_C_TO_STRING_PLAIN: no whitespace inside,
 * '/' escaped, \u only for control characters in lowercase hex, no repeated member names, integers of
 * at most 18 digits, no exponents, nesting at most 12, at most 64 members per object), so that what it
 * accepts json-c parses and would write back byte for byte, with the same member values. That is the
 * form every service writes (ls_reply_json() writes json-c's plain form, ls_rows_json() the same bytes
 * from result rows); the fan-out treats anything else as a failed part (upstream.h, pass_through).
 * Whitespace around the one top-level value is allowed.
 *
 * Spans point into the scanned text: they live as long as it does.
 */
#ifndef BFF_JSON_SCAN_H
#define BFF_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* A JSON value found in text: where it is and what it is. */
typedef struct {
    const char *text; /* NULL when there is none */
    size_t len;
    json_type type; /* numbers are json_type_int or json_type_double */
} bff_json_span_t;

#define BFF_JSON_MAX_FIELDS 4

/* One item of a list (an array of objects). */
typedef struct {
    bff_json_span_t whole;
    bff_json_span_t field[BFF_JSON_MAX_FIELDS]; /* the members asked for; text NULL when absent */
} bff_json_item_t;

/* What bff_json_read() finds in its one pass over a text. */
typedef struct {
    const char *const *keys; /* members of the top-level object: fields[k] (at most BFF_JSON_MAX_FIELDS) */
    size_t nkeys;
    /*
     * With items not NULL, the list — the top-level member keys[0] when it is an array, or the text
     * itself when that is an array — is read item by item in the same pass: each item's span and its
     * members item_keys[0..nitem_keys) (at most BFF_JSON_MAX_FIELDS) in items[0..max_items). A list
     * with an item that is not an object, or with more than max_items items, fails the whole read.
     */
    const char *const *item_keys;
    size_t nitem_keys;
    bff_json_item_t *items;
    size_t max_items;
} bff_json_want_t;

/*
 * Checks that text[0..len) is exactly one JSON object, array or string the scanner accepts, and finds
 * what want asks for: *whole is the value, fields[0..want->nkeys) the top-level members (text NULL when
 * absent or when the value is not an object), *nitems the number of the list's items (-1 when there is
 * no list: none asked for, the member absent or not an array). Returns 0, or -1 with every span cleared.
 */
int bff_json_read(const char *text, size_t len, const bff_json_want_t *want, bff_json_span_t *whole,
                  bff_json_span_t *fields, long *nitems);

/* bff_json_read() of one member: *member is member key of the object (text NULL when key is NULL, the
 * member is absent or the value is not an object); member may be NULL. */
int bff_json_scan(const char *text, size_t len, const char *key, bff_json_span_t *whole,
                  bff_json_span_t *member);

/* bff_json_read() of the members keys[0..nkeys) of an object: -1 also when the text is not an object. */
int bff_json_fields(const char *text, size_t len, const char *const *keys, size_t nkeys,
                    bff_json_span_t *fields);

/* bff_json_read() of a list that is the text itself: the number of items, or -1 when the text is not
 * an array of at most max objects the scanner accepts. */
long bff_json_items(const char *text, size_t len, const char *const *keys, size_t nkeys,
                    bff_json_item_t *items, size_t max);

/* A found value read as bff_id_of() reads one: an integer's value, else 0 (also when absent). */
int64_t bff_span_id(const bff_json_span_t *v);
/*
 * A found string's characters without the quotes in *s, *len (not NUL-terminated), else "" (also
 * when absent or not a string). -1 when the string holds an escape: its text is not its value (then
 * bff_span_unescape() reads it).
 */
int bff_span_str(const bff_json_span_t *v, const char **s, size_t *len);
/*
 * A found string's value decoded into out (room for v->len bytes), up to the first NUL it holds — the
 * C string json-c's json_object_get_string() gives; not NUL-terminated. Returns its length (0 when
 * absent or not a string).
 */
size_t bff_span_unescape(const bff_json_span_t *v, char *out);

#endif
