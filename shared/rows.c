#include "rows.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Built-in type OIDs (pg_type.h); stable across PostgreSQL versions. */
enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_JSON = 114,
    OID_TIMESTAMPTZ = 1184,
    OID_NUMERIC = 1700,
    OID_JSONB = 3802,
};

int ls_pg_time_to_rfc3339(const char *pg, char out[40])
{
    size_t len = strlen(pg);
    /* "YYYY-MM-DD HH:MM:SS[.ffffff]+00" */
    if (len < 22 || len > 32 || pg[10] != ' ' || strcmp(pg + len - 3, "+00") != 0)
        return -1;
    memcpy(out, pg, len - 3);
    out[10] = 'T';
    out[len - 3] = 'Z';
    out[len - 2] = '\0';
    return 0;
}

static json_object *column_value(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    const char *v = PQgetvalue(res, row, col);
    int len = PQgetlength(res, row, col);
    int64_t i;
    char t[40];

    switch (PQftype(res, col)) {
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
        if (ls_parse_i64(v, (size_t)len, &i) == 0)
            return json_object_new_int64(i);
        break;
    case OID_BOOL:
        return json_object_new_boolean(v[0] == 't');
    case OID_TIMESTAMPTZ:
        if (ls_pg_time_to_rfc3339(v, t) == 0)
            return json_object_new_string(t);
        break;
    case OID_NUMERIC:
        return json_object_new_double_s(strtod(v, NULL), v);
    case OID_JSON:
    case OID_JSONB:
        return json_tokener_parse(v);
    }
    return json_object_new_string_len(v, len);
}

void ls_row_add_column(json_object *obj, const PGresult *res, int row, int col)
{
    if (PQftype(res, col) == OID_BYTEA)
        return;
    json_object_object_add(obj, PQfname(res, col), column_value(res, row, col));
}

json_object *ls_row_object_skip(const PGresult *res, int row, const char *skip)
{
    json_object *obj = json_object_new_object();
    int ncols = PQnfields(res);
    for (int col = 0; col < ncols; col++)
        if (skip == NULL || strcmp(PQfname(res, col), skip) != 0)
            ls_row_add_column(obj, res, row, col);
    return obj;
}

json_object *ls_row_object(const PGresult *res, int row)
{
    return ls_row_object_skip(res, row, NULL);
}

json_object *ls_rows_array(const PGresult *res)
{
    int n = PQntuples(res);
    json_object *arr = json_object_new_array_ext(n);
    for (int row = 0; row < n; row++)
        json_object_array_add(arr, ls_row_object(res, row));
    return arr;
}

/* ---- the same rows as text ---- */

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} text_t;

static void put(text_t *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->cap - t->len <= n) { /* keeps a byte for the final NUL */
        size_t cap = t->cap != 0 ? t->cap : 1024;
        while (cap - t->len <= n)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (p == NULL) {
            t->failed = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
}

static void put_lit(text_t *t, const char *s)
{
    put(t, s, strlen(s));
}

/* A JSON string as json-c writes it: the two-character escapes, '/' escaped, other control
 * characters as \u00xx (lower-case hex), every other byte as it is. */
static void put_string(text_t *t, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    put(t, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        switch (c) {
        case '\b':
            esc = "\\b";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '/':
            esc = "\\/";
            break;
        default:
            if (c < ' ') {
                memcpy(u, "\\u00", 4);
                u[4] = hex[c >> 4];
                u[5] = hex[c & 0xf];
                u[6] = '\0';
                esc = u;
            }
        }
        if (esc != NULL) {
            put(t, s + start, i - start);
            put_lit(t, esc);
            start = i + 1;
        }
    }
    put(t, s + start, n - start);
    put(t, "\"", 1);
}

/* A value that only json-c can write as json-c does (a json column, parsed and written again). */
static void put_object(text_t *t, json_object *v)
{
    size_t n;
    const char *s = json_object_to_json_string_length(v, JSON_C_TO_STRING_PLAIN, &n);
    put(t, s, n);
    json_object_put(v);
}

static void put_value(text_t *t, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) {
        put(t, "null", 4);
        return;
    }
    const char *v = PQgetvalue(res, row, col);
    int len = PQgetlength(res, row, col);
    int64_t i;
    char s[40];

    switch (PQftype(res, col)) {
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
        if (ls_parse_i64(v, (size_t)len, &i) == 0) {
            put(t, s, (size_t)snprintf(s, sizeof(s), "%" PRId64, i));
            return;
        }
        break;
    case OID_BOOL:
        put_lit(t, v[0] == 't' ? "true" : "false");
        return;
    case OID_TIMESTAMPTZ:
        if (ls_pg_time_to_rfc3339(v, s) == 0) {
            put_string(t, s, strlen(s));
            return;
        }
        break;
    case OID_NUMERIC:
    case OID_JSON:
    case OID_JSONB:
        put_object(t, column_value(res, row, col));
        return;
    }
    put_string(t, v, (size_t)len);
}

/* json-c keeps one member per name (a later column replaces an earlier one in its place): such
 * results go through json-c itself. */
static int has_repeated_names(const PGresult *res)
{
    int n = PQnfields(res);
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (strcmp(PQfname(res, a), PQfname(res, b)) == 0)
                return 1;
    return 0;
}

char *ls_rows_json(const PGresult *res, const char *prefix, const char *suffix, size_t *len)
{
    text_t t = {0};
    put_lit(&t, prefix);
    if (has_repeated_names(res)) {
        put_object(&t, ls_rows_array(res));
    } else {
        int nrows = PQntuples(res), ncols = PQnfields(res);
        put(&t, "[", 1);
        for (int row = 0; row < nrows; row++) {
            put(&t, row == 0 ? "{" : ",{", row == 0 ? 1 : 2);
            int first = 1;
            for (int col = 0; col < ncols; col++) {
                if (PQftype(res, col) == OID_BYTEA)
                    continue;
                if (!first)
                    put(&t, ",", 1);
                first = 0;
                const char *name = PQfname(res, col);
                put_string(&t, name, strlen(name));
                put(&t, ":", 1);
                put_value(&t, res, row, col);
            }
            put(&t, "}", 1);
        }
        put(&t, "]", 1);
    }
    put_lit(&t, suffix);
    if (t.failed || t.p == NULL) {
        free(t.p);
        return NULL;
    }
    t.p[t.len] = '\0';
    *len = t.len;
    return t.p;
}
