#include "rows.h"

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
