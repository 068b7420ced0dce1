/*
 * notification-service: the reminder sweep — `lesson_reminder` notifications a set time before each
 * lesson, for its participants and its teacher.
 *
 * Worker 0 of every process runs it on its own loop, off the request path. A round, every
 * REMINDER_SWEEP_S (the first at start-up), walks calendar-service's scheduled lessons starting in
 * [now, now + NOTIFY_REMINDER_MAX_MIN minutes) with GET /lessons/upcoming through the worker's
 * internal HTTP client, a page at a time (the page's "next" is the following page's `after`), and
 * hands each page, as it came, to STMT_REMINDERS, which creates the reminders that are due and not
 * yet made (keyed by lesson, start time and person in lesson_reminders) and answers the next
 * cursor. A round that created some wakes this worker's delivery poller. One page is in flight at a
 * time, and a round ends early (to try again next round) when calendar-service or the database
 * fails.
 *
 * Every replica sweeps: the key makes each reminder once whoever is first, so no lock is needed, and
 * a replica that is down costs nothing. A cancelled lesson is not listed (no reminder); a moved one
 * is listed at its new time (a reminder for that time; the old time is never listed again).
 *
 * The rounds' timing and the sweep's life at shutdown are shared/chore.h's: a call or query in flight
 * when the worker stops completes as the worker's client and pool are destroyed.
 */
#include "notification.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chore.h"
#include "log.h"
#include "rows.h"

#define PAGE_LIMIT     100   /* lessons per GET /lessons/upcoming (its largest page) */
#define ROUND_PAGES    1000  /* pages per round at most: 100,000 lessons within a day */
#define CALL_DEADLINE  10000 /* ms for one page from calendar-service */
#define QUERY_DEADLINE 10000 /* ms for one page's statement */
#define CURSOR_MAX     96    /* calendar's "next": "<RFC 3339 time>,<uuid>" */

typedef struct {
    ls_chore_t chore;
    ls_worker_t *worker;
    ls_pg_pool_t *pg;
    ls_http_t *http;
    const char *calendar_url;
    char from[24], to[24];  /* this round's window, RFC 3339 UTC */
    char after[CURSOR_MAX]; /* the next page's cursor; "" for the first page */
    char request_id[48];    /* of this round's calls */
    unsigned pages;         /* of this round */
    unsigned long long round;
    long long created; /* reminders this round */
} sweep_t;

static _Thread_local sweep_t *thread_sweep;

static void end_round(sweep_t *s)
{
    if (s->created > 0) {
        ls_logf(LS_LOG_INFO, NULL, "reminders: %lld lesson reminders created", s->created);
        delivery_kick(s->worker);
    }
    ls_chore_done(&s->chore, 0);
}

static void fetch_page(sweep_t *s);

static void on_stored(void *ud, ls_pg_status_t status, PGresult *res)
{
    sweep_t *s = ud;
    if (ls_chore_release(&s->chore))
        return;
    if (status != LS_PG_OK || PQntuples(res) != 1) {
        ls_logf(LS_LOG_WARN, NULL, "reminders: could not store a page's reminders: %s",
                res != NULL ? ls_pg_errmsg(res) : "database unavailable or slow");
        return end_round(s);
    }
    s->created += ls_row_id(res, 0, "created");
    const char *next = ls_row_text(res, 0, "next");
    if (next == NULL)
        return end_round(s);
    if (strlen(next) >= sizeof(s->after) || strcmp(next, s->after) == 0 || s->pages >= ROUND_PAGES) {
        ls_logf(LS_LOG_WARN, NULL, "reminders: stopped the round after %u pages (next: %.100s)", s->pages,
                next);
        return end_round(s);
    }
    memcpy(s->after, next, strlen(next) + 1);
    fetch_page(s);
}

static void on_page(void *ud, const ls_http_response_t *resp)
{
    sweep_t *s = ud;
    if (ls_chore_release(&s->chore))
        return;
    if (resp->outcome != LS_HTTP_OK || resp->status != 200) {
        ls_logf(LS_LOG_WARN, NULL,
                "reminders: calendar-service did not give the upcoming lessons (HTTP %d): %s", resp->status,
                resp->outcome != LS_HTTP_OK ? (resp->error != NULL ? resp->error : "no answer")
                                            : "an answer other than 200");
        return end_round(s);
    }
    /* The page goes to the database as it came: the statement reads what it needs from it. */
    const char *params[1] = {resp->body};
    ls_chore_hold(&s->chore);
    ls_pg_exec(s->pg, STMT_REMINDERS, 1, params, ls_now_ms() + QUERY_DEADLINE, on_stored, s);
}

static void fetch_page(sweep_t *s)
{
    char path[256];
    int n = snprintf(path, sizeof(path), "/lessons/upcoming?from=%s&to=%s&limit=%d%s%s", s->from, s->to,
                     PAGE_LIMIT, s->after[0] != '\0' ? "&after=" : "", s->after);
    ls_http_request_t req = {
        .target = "calendar",
        .base_url = s->calendar_url,
        .method = "GET",
        .path = path,
        .request_id = s->request_id,
        .deadline = ls_now_ms() + CALL_DEADLINE,
    };
    s->pages++;
    if (n < 0 || (size_t)n >= sizeof(path)) {
        ls_log(LS_LOG_WARN, NULL, "reminders: the upcoming lessons' path is too long");
        return end_round(s);
    }
    ls_chore_hold(&s->chore);
    if (ls_http_send(s->http, &req, on_page, s) != 0) {
        ls_chore_release(&s->chore);
        ls_log(LS_LOG_WARN, NULL, "reminders: could not ask calendar-service for the upcoming lessons");
        end_round(s);
    }
}

/* t as RFC 3339 UTC, whole seconds. */
static void format_utc(char out[24], time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void round_start(ls_chore_t *c)
{
    sweep_t *s = (sweep_t *)((char *)c - offsetof(sweep_t, chore));
    s->pages = 0;
    s->created = 0;
    s->after[0] = '\0';
    snprintf(s->request_id, sizeof(s->request_id), "reminders-%llu", ++s->round);
    time_t now = time(NULL);
    format_utc(s->from, now);
    format_utc(s->to, now + NOTIFY_REMINDER_MAX_MIN * 60);
    fetch_page(s);
}

void reminders_start(ls_worker_t *w)
{
    if (ls_worker_index(w) != 0)
        return;
    const notification_config_t *cfg = ls_worker_daemon(w)->config;
    sweep_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        ls_log(LS_LOG_ERROR, NULL, "could not start the reminder sweep: out of memory");
        return;
    }
    s->worker = w;
    s->pg = ls_worker_pg(w);
    s->http = ls_worker_http(w);
    s->calendar_url = cfg->calendar_url;
    ls_chore_start(&s->chore, s, ls_worker_loop(w), (uint64_t)cfg->reminder_sweep_s * 1000, round_start);
    thread_sweep = s;
}

void reminders_stop(ls_worker_t *w)
{
    sweep_t *s = thread_sweep;
    if (s == NULL || s->worker != w)
        return;
    thread_sweep = NULL;
    ls_chore_stop(&s->chore);
}
