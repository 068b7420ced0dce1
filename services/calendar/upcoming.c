/*
 * calendar-service: GET /lessons/upcoming — scheduled lessons in start order with their
 * participants, read a page at a time by notification-service's reminder sweep.
 *
 * Paged by a cursor, not an offset: `after` is "<starts_at>,<id>" of the previous page's last lesson
 * (answered as "next"), so a lesson created, cancelled or moved meanwhile never shifts the pages
 * (nothing is read twice or skipped because of it), and a page costs the same however far the walk
 * has gone.
 */
#include "calendar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rows.h"

#define CURSOR_MAX 96 /* "<RFC 3339 time with fraction>,<uuid>" */

typedef struct {
    int limit;
} upcoming_t;

/* `after` split into its time and id (request memory); both NULL when absent. Returns 0, or answers
 * 400 and returns -1. */
static int cursor_or_reply(ls_req_t *r, const char **at, const char **id)
{
    const char *v = ls_req_query(r, "after");
    *at = *id = NULL;
    if (v == NULL)
        return 0;
    size_t len = strlen(v);
    const char *comma = strrchr(v, ',');
    if (len > CURSOR_MAX || comma == NULL || !ls_is_uuid(comma + 1, strlen(comma + 1)) ||
        !ls_is_rfc3339(v, (size_t)(comma - v))) {
        ls_reply_problem(r, 400, "query parameter 'after': must be the \"next\" of the previous page");
        return -1;
    }
    *at = ls_req_strdup(r, v, (size_t)(comma - v));
    *id = comma + 1;
    return 0;
}

static void on_upcoming(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    upcoming_t *u = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    /* A full page may have more behind it: the cursor of its last lesson. */
    char tail[CURSOR_MAX + 64] = "", at[40];
    int rows = PQntuples(res);
    if (rows == u->limit && rows > 0) {
        const char *starts = ls_row_text(res, rows - 1, "starts_at");
        if (ls_pg_time_to_rfc3339(starts, at) != 0)
            return ls_reply_problem(r, 500, "unexpected time from the database: %.40s", starts);
        snprintf(tail, sizeof(tail), ",\"next\":\"%s,%s\",\"limit\":%d}", at,
                 ls_row_text(res, rows - 1, "id"), u->limit);
    } else {
        snprintf(tail, sizeof(tail), ",\"next\":null,\"limit\":%d}", u->limit);
    }
    size_t len;
    char *body = ls_rows_json(res, "{\"lessons\":", tail, &len);
    if (body == NULL)
        return ls_reply_problem(r, 503, "out of memory");
    ls_reply_raw(r, 200, "application/json", body, len);
    free(body);
}

void lessons_upcoming(ls_req_t *r)
{
    const char *from, *to, *after_at, *after_id;
    if (calendar_query_time_or_reply(r, "from", &from) != 0 ||
        calendar_query_time_or_reply(r, "to", &to) != 0 || cursor_or_reply(r, &after_at, &after_id) != 0)
        return;
    upcoming_t *u = ls_req_alloc(r, sizeof(*u));
    u->limit = CAL_UPCOMING_MAX;
    const char *limit = ls_req_query(r, "limit");
    if (limit != NULL) {
        int64_t n;
        if (ls_parse_i64(limit, strlen(limit), &n) != 0 || n < 1 || n > CAL_UPCOMING_MAX)
            return ls_reply_problem(r, 400, "query parameter 'limit': must be an integer from 1 to %d",
                                    CAL_UPCOMING_MAX);
        u->limit = (int)n;
    }
    r->state = u;
    char *limit_text = ls_req_alloc(r, 16);
    snprintf(limit_text, 16, "%d", u->limit);
    const char *params[5] = {from, to, after_at, after_id, limit_text};
    ls_req_pg(r, STMT_LESSONS_UPCOMING, 5, params, on_upcoming);
}
