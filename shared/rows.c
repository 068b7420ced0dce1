#include "rows.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalar.h"
#include "text.h"

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

/* How a value is written (the rules in rows.h), for the json-c writer and the text writer alike. */
typedef enum { V_NULL, V_INT, V_BOOL, V_TIME, V_NUMERIC, V_JSON, V_STRING } kind_t;

/* Sets *i for V_INT and t for V_TIME. */
static kind_t kind_of(const PGresult *res, int row, int col, int64_t *i, char t[40])
{
    if (PQgetisnull(res, row, col))
        return V_NULL;
    const char *v = PQgetvalue(res, row, col);
    switch (PQftype(res, col)) {
    case LS_OID_INT2:
    case LS_OID_INT4:
    case LS_OID_INT8:
        return ls_parse_i64(v, (size_t)PQgetlength(res, row, col), i) == 0 ? V_INT : V_STRING;
    case LS_OID_BOOL:
        return V_BOOL;
    case LS_OID_TIMESTAMPTZ:
        return ls_pg_time_to_rfc3339(v, t) == 0 ? V_TIME : V_STRING;
    case LS_OID_NUMERIC:
        return V_NUMERIC;
    case LS_OID_JSON:
    case LS_OID_JSONB:
        return V_JSON;
    }
    return V_STRING;
}

static json_object *column_value(const PGresult *res, int row, int col)
{
    const char *v = PQgetvalue(res, row, col);
    int64_t i;
    char t[40];

    switch (kind_of(res, row, col, &i, t)) {
    case V_NULL:
        return NULL;
    case V_INT:
        return json_object_new_int64(i);
    case V_BOOL:
        return json_object_new_boolean(v[0] == 't');
    case V_TIME:
        return json_object_new_string(t);
    case V_NUMERIC:
        return json_object_new_double_s(strtod(v, NULL), v);
    case V_JSON:
        return json_tokener_parse(v);
    case V_STRING:
        break;
    }
    return json_object_new_string_len(v, PQgetlength(res, row, col));
}

void ls_row_add_column(json_object *obj, const PGresult *res, int row, int col)
{
    if (PQftype(res, col) == LS_OID_BYTEA)
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

static void text_value(ls_text_t *out, const PGresult *res, int row, int col)
{
    const char *v = PQgetvalue(res, row, col);
    int64_t i;
    char t[40];

    switch (kind_of(res, row, col, &i, t)) {
    case V_NULL:
        ls_text_lit(out, "null");
        return;
    case V_INT:
        ls_text_add(out, t, (size_t)snprintf(t, sizeof(t), "%" PRId64, i));
        return;
    case V_BOOL:
        if (v[0] == 't')
            ls_text_lit(out, "true");
        else
            ls_text_lit(out, "false");
        return;
    case V_TIME:
        ls_text_str(out, t, strlen(t));
        return;
    case V_NUMERIC:
    case V_JSON: { /* only json-c writes these as json-c does (a json value parsed and written again) */
        json_object *o = column_value(res, row, col);
        ls_text_json(out, o);
        json_object_put(o);
        return;
    }
    case V_STRING:
        break;
    }
    ls_text_str(out, v, (size_t)PQgetlength(res, row, col));
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

static void text_rows(ls_text_t *out, const PGresult *res)
{
    if (has_repeated_names(res)) {
        json_object *arr = ls_rows_array(res);
        ls_text_json(out, arr);
        json_object_put(arr);
        return;
    }
    int nrows = PQntuples(res), ncols = PQnfields(res);
    ls_text_lit(out, "[");
    for (int row = 0; row < nrows; row++) {
        if (row > 0)
            ls_text_lit(out, ",");
        ls_text_lit(out, "{");
        int first = 1;
        for (int col = 0; col < ncols; col++) {
            if (PQftype(res, col) == LS_OID_BYTEA)
                continue;
            if (!first)
                ls_text_lit(out, ",");
            first = 0;
            const char *name = PQfname(res, col);
            ls_text_str(out, name, strlen(name));
            ls_text_lit(out, ":");
            text_value(out, res, row, col);
        }
        ls_text_lit(out, "}");
    }
    ls_text_lit(out, "]");
}

char *ls_rows_json(const PGresult *res, const char *prefix, const char *suffix, size_t *len)
{
    ls_text_t out = {0};
    ls_text_add(&out, prefix, strlen(prefix));
    text_rows(&out, res);
    ls_text_add(&out, suffix, strlen(suffix));
    if (out.failed || out.buf == NULL) {
        ls_text_free(&out);
        return NULL;
    }
    out.buf[out.len] = '\0'; /* ls_text_add keeps a byte free for it */
    *len = out.len;
    return out.buf;
}

/* ---- column readers by name ---- */

int ls_row_is_null(const PGresult *res, int row, const char *name)
{
    int col = PQfnumber(res, name);
    return col < 0 || row >= PQntuples(res) || PQgetisnull(res, row, col);
}

const char *ls_row_text(const PGresult *res, int row, const char *name)
{
    int col = PQfnumber(res, name);
    if (col < 0 || row >= PQntuples(res) || PQgetisnull(res, row, col))
        return NULL;
    return PQgetvalue(res, row, col);
}

int ls_row_bool(const PGresult *res, int row, const char *name)
{
    const char *v = ls_row_text(res, row, name);
    return v != NULL && v[0] == 't';
}

int64_t ls_row_id(const PGresult *res, int row, const char *name)
{
    const char *v = ls_row_text(res, row, name);
    int64_t out = 0;
    if (v == NULL || ls_parse_i64(v, strlen(v), &out) != 0)
        return 0;
    return out;
}
