/*
 * Fuzz target: the writers that put outside text into answers — problem+json documents
 * (shared/problem.c, the detail of every 4xx/5xx, often naming what the client sent) and the JSON
 * string escaper and text writer (shared/text.c, answers built from rows and log lines).
 *
 * Input: two bytes of parameters (a status code's low byte, an output capacity), then the text.
 * Checked beyond memory safety, against json-c: ls_text_str() writes exactly what json-c writes for
 * the same string; a problem document json-c reads back carries the detail as given; the escaper
 * with a small buffer writes a prefix of the full escape and never half an escape.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "problem.h"
#include "text.h"

static void check_text_str(const char *s, size_t len)
{
    ls_text_t t = {0};
    ls_text_str(&t, s, len);
    json_object *js = json_object_new_string_len(s, (int)len);
    size_t jlen;
    const char *want = json_object_to_json_string_length(js, JSON_C_TO_STRING_PLAIN, &jlen);
    if (t.failed || t.len != jlen || memcmp(t.buf, want, jlen) != 0)
        abort();
    /* ls_text_json() of the same value: the same bytes again, after them. */
    ls_text_json(&t, js);
    if (t.len != 2 * jlen || memcmp(t.buf + jlen, want, jlen) != 0)
        abort();
    json_object_put(js);
    ls_text_free(&t);
}

static void check_escape(const char *s, size_t len, size_t cap, unsigned flags)
{
    char *full = malloc(6 * len + 1), *part = malloc(cap + 1);
    size_t used_full, used;
    size_t n_full = ls_json_escape(full, 6 * len, s, len, flags, &used_full);
    size_t n = ls_json_escape(part, cap, s, len, flags, &used);
    if (used_full != len || n > cap || used > len || n > n_full || memcmp(part, full, n) != 0)
        abort();
    /* What was written is the whole escape of the bytes it says it holds. */
    size_t n_used = ls_json_escape(full, 6 * len, s, used, flags, NULL);
    if (n_used != n || memcmp(part, full, n) != 0)
        abort();
    /* Stopped early only because the next byte's escape did not fit. */
    if (used < len) {
        char esc[6];
        size_t elen = ls_json_escape_byte((unsigned char)s[used], esc);
        int escaped = (ls_json_escapes[(unsigned char)s[used]] & (LS_JSON_ESC_ALWAYS | flags)) != 0;
        if ((escaped ? elen : 1) <= cap - n)
            abort();
    }
    free(full);
    free(part);
}

static void check_problem(int status, const char *s, size_t len)
{
    char *detail = strndup(s, len);
    json_object *p = ls_problem_new(status, detail);
    size_t plen;
    const char *text = json_object_to_json_string_length(p, JSON_C_TO_STRING_PLAIN, &plen);
    json_object *back = json_tokener_parse(text), *d, *st;
    if (back == NULL || !json_object_object_get_ex(back, "detail", &d) ||
        strcmp(json_object_get_string(d), detail) != 0 || !json_object_object_get_ex(back, "status", &st) ||
        json_object_get_int(st) != status || ls_status_title(status) == NULL)
        abort();
    json_object_put(back);
    json_object_put(p);
    free(detail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int status = 400 + data[0] % 200;
    size_t cap = data[1];
    const char *s = (const char *)data + 2;
    size_t len = size - 2;

    check_text_str(s, len);
    check_escape(s, len, cap, LS_JSON_ESC_SLASH);
    check_escape(s, len, cap, 0);
    check_problem(status, s, len);
    return 0;
}
