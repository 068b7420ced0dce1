/*
 * Fuzz target: the BFF's JSON scanner (bff/json_scan.c), which reads the services' answers as text.
 *
 * Its promise is differential, and checked here against json-c itself: what the scanner accepts,
 * json-c parses and writes back (JSON_C_TO_STRING_PLAIN) byte for byte; every member and list item it
 * finds is the text json-c writes for that member or item; an id read from a span is json-c's integer
 * and a string read from one is json-c's C string.
 *
 * The input is read twice: as an object with a list member "items" (and three other members), and as
 * a list that is the whole text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json_scan.h"

#define MAX_ITEMS 8

static const char *const keys[] = {"items", "id", "name", "teacher_telegram_id"};
static const char *const item_keys[] = {"id", "created_at", "teacher_telegram_id", "title"};

/* The span is the text json-c writes for v (NULL span: v is absent). */
static void check_span(const bff_json_span_t *span, json_object *v, int present)
{
    if (span->text == NULL) {
        if (present)
            abort();
        return;
    }
    if (!present)
        abort();
    size_t len;
    const char *plain = json_object_to_json_string_length(v, JSON_C_TO_STRING_PLAIN, &len);
    if (len != span->len || memcmp(plain, span->text, len) != 0 || json_object_get_type(v) != span->type)
        abort();
    if (span->type == json_type_int && bff_span_id(span) != json_object_get_int64(v))
        abort();
    if (span->type == json_type_string) {
        const char *s = json_object_get_string(v), *raw;
        size_t rlen;
        char *out = malloc(span->len + 1);
        size_t n = bff_span_unescape(span, out);
        if (n != strlen(s) || memcmp(out, s, n) != 0)
            abort();
        if (bff_span_str(span, &raw, &rlen) == 0 &&
            (rlen != (size_t)json_object_get_string_len(v) || memcmp(raw, s, rlen) != 0))
            abort();
        free(out);
    }
}

static void check_member(const bff_json_span_t *span, json_object *obj, const char *key)
{
    json_object *v = NULL;
    int present = json_object_is_type(obj, json_type_object) && json_object_object_get_ex(obj, key, &v);
    check_span(span, v, present);
}

static void check_items(json_object *list, const bff_json_item_t *items, long n)
{
    if (n < 0)
        return;
    if (!json_object_is_type(list, json_type_array) || (size_t)n != json_object_array_length(list) ||
        n > MAX_ITEMS)
        abort();
    for (long i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(list, (size_t)i);
        if (!json_object_is_type(item, json_type_object))
            abort();
        check_span(&items[i].whole, item, 1);
        for (size_t k = 0; k < sizeof(item_keys) / sizeof(item_keys[0]); k++)
            check_member(&items[i].field[k], item, item_keys[k]);
    }
}

/* json-c's reading of an accepted text: all of it, one value. */
static json_object *parse(const bff_json_span_t *whole)
{
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *obj = json_tokener_parse_ex(tok, whole->text, (int)whole->len);
    if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != whole->len)
        abort();
    json_tokener_free(tok);
    return obj;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    bff_json_item_t items[MAX_ITEMS];
    bff_json_span_t whole, fields[4];
    long nitems;

    bff_json_want_t want = {keys, 4, item_keys, 4, items, MAX_ITEMS};
    if (bff_json_read(text, size, &want, &whole, fields, &nitems) == 0) {
        json_object *obj = parse(&whole);
        check_span(&whole, obj, 1);
        for (size_t k = 0; k < 4; k++)
            check_member(&fields[k], obj, keys[k]);
        json_object *list = NULL;
        if (json_object_is_type(obj, json_type_object))
            json_object_object_get_ex(obj, "items", &list);
        else if (json_object_is_type(obj, json_type_array))
            list = obj;
        check_items(list, items, nitems);
        json_object_put(obj);
    } else if (whole.text != NULL || nitems != -1) {
        abort();
    }

    long n = bff_json_items(text, size, item_keys, 4, items, MAX_ITEMS);
    if (n >= 0) {
        bff_json_span_t all;
        long dummy;
        bff_json_want_t plain = {NULL, 0, NULL, 0, NULL, 0};
        if (bff_json_read(text, size, &plain, &all, NULL, &dummy) != 0)
            abort();
        json_object *list = parse(&all);
        check_items(list, items, n);
        json_object_put(list);
    }
    return 0;
}
