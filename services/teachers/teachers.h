/*
 * teachers-service: teacher profiles and the languages they teach, keyed by telegram_id
 * (docs/ARCHITECTURE.md §5, issue 3).
 *
 *   GET    /teachers/{telegram_id}                  one teacher with "languages"; 404 unknown
 *   GET    /teachers?ids=1,2,3                      many (at most TEACHERS_BATCH_MAX), in the order
 *                                                   asked: {"teachers": [...], "missing": [ids]}
 *   GET    /teachers/search?language=&level=&limit=&offset=
 *                                                   active teachers teaching `language` at `level`
 *                                                   or higher (level optional), by telegram_id
 *   PUT    /teachers/{telegram_id}                  {bio?, experience_years?, timezone?, is_active?}:
 *                                                   create (201) or update (200) the profile
 *   PUT    /teachers/{telegram_id}/languages/{code} {"level"}: add (201) or change (200)
 *   DELETE /teachers/{telegram_id}/languages/{code} 204; 404 when the teacher or language is absent
 *
 * A teacher is answered as its columns plus "languages": [{language_code, level}, ...] ordered by
 * language_code. Reads need no actor. Writes need X-Actor-Telegram-Id (400 without) naming the
 * teacher themself or an admin (403 otherwise). Every change writes an audit_log row in the same
 * statement as the change, so a refused or failed request leaves no trace.
 */
#ifndef TEACHERS_H
#define TEACHERS_H

#include "idempotency.h"
#include "server.h"

#define TEACHERS_BATCH_MAX 100
#define TEACHERS_PAGE_DEF  20
#define TEACHERS_PAGE_MAX  100
#define TEACHERS_BIO_MAX   4000 /* characters (UTF-8 code points), not bytes */
#define TEACHERS_TZ_MAX    64
#define TEACHERS_YEARS_MAX 80

typedef struct {
    ls_daemon_config_t common;
    long long idempotency_ttl_s; /* IDEMPOTENCY_TTL_S (idempotency.h) */
} teachers_config_t;

/* Statement indices into teachers_statements (statements.c). */
enum {
    STMT_TEACHER_GET,
    STMT_TEACHER_BATCH,
    STMT_TEACHER_SEARCH,
    STMT_TEACHER_PUT,
    STMT_LANGUAGE_PUT,
    STMT_LANGUAGE_DELETE,
    STMT_IDEM, /* the LS_IDEM_NSTMTS statements of idempotency.h, from here */
    STMT_IDEM_LAST = STMT_IDEM + LS_IDEM_NSTMTS - 1,
    STMT_COUNT,
};

extern const ls_pg_stmt_t teachers_statements[STMT_COUNT];

/* teachers.c: profiles */
void teachers_get(ls_req_t *r);
void teachers_batch(ls_req_t *r);
void teachers_search(ls_req_t *r);
void teachers_put(ls_req_t *r);

/* languages.c: a teacher's languages */
void languages_put(ls_req_t *r);
void languages_delete(ls_req_t *r);

/* A teacher row (every column but `created`) as a JSON object; the caller owns the reference. */
json_object *teachers_row_json(const PGresult *res, int row);

#endif
