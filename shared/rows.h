/*
 * rows: PostgreSQL result rows as JSON, by column type.
 *
 * The API's JSON field names are the column names (docs/ARCHITECTURE.md §6.2), so a service SELECTs
 * the columns it answers with, named as the contract names them, and converts rows here:
 *   int2/int4/int8      -> number          bool        -> true/false
 *   timestamptz         -> RFC 3339 string in UTC ("2026-11-22T01:54:00.123456Z"; the pool's
 *                          sessions run with TimeZone=UTC)
 *   json/jsonb          -> the parsed value
 *   numeric             -> number
 *   bytea               -> omitted (never exposed by accident)
 *   anything else (text, varchar, uuid, enum, date, …) -> string
 *   SQL NULL            -> null
 *
 * A handler that checks a value (a flag, a state, an id) reads it by column name with the readers
 * at the end, never by position. Each looks its column up by name; a loop over many rows looks each
 * column up once with PQfnumber before the loop and reads PQgetvalue(res, row, col) in it.
 */
#ifndef LS_ROWS_H
#define LS_ROWS_H

#include <stdint.h>

#include <json-c/json.h>
#include <libpq-fe.h>

/* The built-in types above by OID (pg_type.h; stable across PostgreSQL versions). */
enum {
    LS_OID_BOOL = 16,
    LS_OID_BYTEA = 17,
    LS_OID_INT8 = 20,
    LS_OID_INT2 = 21,
    LS_OID_INT4 = 23,
    LS_OID_TEXT = 25,
    LS_OID_JSON = 114,
    LS_OID_TIMESTAMPTZ = 1184,
    LS_OID_NUMERIC = 1700,
    LS_OID_JSONB = 3802,
};

/* A new object for row `row` of res (caller owns the reference). */
json_object *ls_row_object(const PGresult *res, int row);
/* The same without the column named skip (e.g. an upsert's "created" flag); skip may be NULL. */
json_object *ls_row_object_skip(const PGresult *res, int row, const char *skip);
/* A new array of every row's object. */
json_object *ls_rows_array(const PGresult *res);
/*
 * The text of prefix + ls_rows_array(res) + suffix, byte for byte as json-c writes that array
 * (JSON_C_TO_STRING_PLAIN), written straight from the result instead of through a json-c object per
 * value: for lists, where building and freeing those objects costs more than the query. Returns a
 * malloc'ed, NUL-terminated text and its length in *len, or NULL when out of memory.
 */
char *ls_rows_json(const PGresult *res, const char *prefix, const char *suffix, size_t *len);
/* Adds column `col` of `row` to obj under its column name, converted as above. */
void ls_row_add_column(json_object *obj, const PGresult *res, int row, int col);

/* Converts PostgreSQL's "2026-11-22 01:54:00.123456+00" to "2026-11-22T01:54:00.123456Z". Returns 0, or
 * -1 (out untouched) when the text is not a UTC timestamp. out must hold 40 bytes. */
int ls_pg_time_to_rfc3339(const char *pg, char out[40]);

/* Column `name` of `row` as a C value. A column that is absent, or SQL NULL, reads as false / NULL
 * / 0. */
int ls_row_bool(const PGresult *res, int row, const char *name);         /* 1 when true */
const char *ls_row_text(const PGresult *res, int row, const char *name); /* the result's own text */
int64_t ls_row_id(const PGresult *res, int row, const char *name);       /* an id or a count (integers) */
int ls_row_is_null(const PGresult *res, int row, const char *name);      /* 1 when NULL or absent */

#endif
