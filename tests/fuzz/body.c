/*
 * Fuzz target: a request body (shared/body.c) — the bounded JSON object parser and the field
 * validation, against a table with one field of every ls_json_type_t (and each kind once required,
 * once nullable), as ls_req_body_or_reply() runs them on every write.
 *
 * Checked beyond memory safety: a parsed body is an object; a rejection says why; a body that
 * validates holds for every field present a value of its declared kind within its bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "text.h"
#include "scalar.h"

static const char *const roles[] = {"student", "teacher", "admin", NULL};

static const ls_json_field_t fields[] = {
    {"name", LS_JSON_STRING, 1, 0, 1, 64, NULL},   {"note", LS_JSON_STRING, 0, 1, 0, 0, NULL},
    {"count", LS_JSON_INT, 0, 0, -5, 100, NULL},   {"telegram_id", LS_JSON_ID, 0, 0, 0, 0, NULL},
    {"active", LS_JSON_BOOL, 0, 1, 0, 0, NULL},    {"price", LS_JSON_NUMBER, 0, 0, 1, 1000000, NULL},
    {"role", LS_JSON_ENUM, 0, 0, 0, 0, roles},     {"group_id", LS_JSON_UUID, 0, 1, 0, 0, NULL},
    {"starts_at", LS_JSON_TIME, 0, 0, 0, 0, NULL}, {"settings", LS_JSON_OBJECT, 0, 1, 0, 0, NULL},
    {"ids", LS_JSON_ARRAY, 0, 0, 0, 5, NULL},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* What ls_json_validate() promised about a present, non-null member. */
static void check_valid(json_object *v, const ls_json_field_t *f)
{
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    int64_t i = json_object_get_int64(v);
    switch (f->type) {
    case LS_JSON_STRING:
        if (!json_object_is_type(v, json_type_string) || (long long)len < f->min ||
            (f->max > 0 && (long long)len > f->max) || memchr(s, '\0', len) != NULL ||
            ls_utf8_span(s, len) != len) /* issue #14, edge 4 */
            abort();
        break;
    case LS_JSON_ENUM:
        if (!json_object_is_type(v, json_type_string) || strlen(s) != len)
            abort();
        break;
    case LS_JSON_UUID:
        if (!ls_is_uuid(s, len))
            abort();
        break;
    case LS_JSON_TIME:
        if (!ls_is_rfc3339(s, len))
            abort();
        break;
    case LS_JSON_INT:
        if (!json_object_is_type(v, json_type_int) || i < f->min || i > f->max)
            abort();
        break;
    case LS_JSON_ID:
        if (!json_object_is_type(v, json_type_int) || i < 1 || i > LS_ID_MAX)
            abort();
        break;
    case LS_JSON_BOOL:
        if (!json_object_is_type(v, json_type_boolean))
            abort();
        break;
    case LS_JSON_NUMBER: {
        /* Within bounds, and so finite: a NaN fails every comparison (issue #14, edge 5). */
        double d = json_object_get_double(v);
        if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
            !(d >= (double)f->min && d <= (double)f->max))
            abort();
        break;
    }
    case LS_JSON_OBJECT:
        if (!json_object_is_type(v, json_type_object))
            abort();
        break;
    case LS_JSON_ARRAY:
        if (!json_object_is_type(v, json_type_array) || (long long)json_object_array_length(v) > f->max)
            abort();
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    json_object *obj = ls_json_parse_object((const char *)data, size, err, sizeof(err));
    if (obj == NULL) {
        if (err[0] == '\0')
            abort();
        return 0;
    }
    if (!json_object_is_type(obj, json_type_object))
        abort();
    err[0] = '\0';
    if (ls_json_validate(obj, fields, NFIELDS, err, sizeof(err)) != 0) {
        if (strncmp(err, "field '", 7) != 0)
            abort();
    } else {
        for (size_t i = 0; i < NFIELDS; i++) {
            json_object *v;
            if (json_object_object_get_ex(obj, fields[i].name, &v) && v != NULL)
                check_valid(v, &fields[i]);
            else if (fields[i].required)
                abort();
        }
        (void)ls_json_get_str(obj, "name");
        (void)ls_json_get_i64(obj, "count", 0);
        (void)ls_json_has(obj, "note");
    }
    json_object_put(obj);
    return 0;
}
