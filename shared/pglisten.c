/*
 * pglisten: the LISTEN connection (see pglisten.h). A side pool of one connection carries it; the
 * pool's on_ready hook asks for the LISTEN (from a zero-delay timer, outside the pool's own call
 * stack) and its on_notify hook passes the channel's notifications on.
 */
#include "pglisten.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"

#define LISTEN_DEADLINE_MS 10000

struct ls_pglisten {
    ls_loop_t *loop;
    ls_pg_pool_t *pool;
    ls_timer_t timer; /* sends the LISTEN */
    char *conninfo, *application_name;
    char channel[LS_PGLISTEN_CHANNEL_MAX + 1];
    char sql[LS_PGLISTEN_CHANNEL_MAX + 8];
    ls_pglisten_cb cb;
    void *ud;
    int stopping;
};

static int channel_valid(const char *c)
{
    size_t n = strlen(c);
    if (n == 0 || n > LS_PGLISTEN_CHANNEL_MAX || (c[0] >= '0' && c[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= '0' && c[i] <= '9') || c[i] == '_'))
            return 0;
    return 1;
}

static void on_listened(void *ud, ls_pg_status_t status, PGresult *res)
{
    ls_pglisten_t *l = ud;
    if (l->stopping)
        return;
    if (status == LS_PG_OK) {
        ls_logf(LS_LOG_DEBUG, NULL, "pglisten: listening on %s", l->channel);
        l->cb(l->ud, LS_PGLISTEN_LISTENING);
        return;
    }
    ls_log_line_t line;
    if (ls_log_begin(&line, LS_LOG_WARN, NULL, "pglisten: LISTEN failed")) {
        ls_log_str(&line, "channel", l->channel);
        ls_log_str(&line, "error", res != NULL ? ls_pg_errmsg(res) : "database unavailable");
        ls_log_end(&line);
    }
    /* A lost connection sends it again once reconnected (on_ready); an SQL error is tried later. */
    if (status == LS_PG_SQL_ERROR || status == LS_PG_TIMEOUT)
        ls_timer_start(l->loop, &l->timer, LS_PGLISTEN_RETRY_MS);
}

static void on_timer(ls_timer_t *t)
{
    ls_pglisten_t *l = H2O_STRUCT_FROM_MEMBER(ls_pglisten_t, timer, t);
    ls_pg_exec_sql(l->pool, l->sql, 0, NULL, ls_now_ms() + LISTEN_DEADLINE_MS, on_listened, l);
}

static void on_ready(void *ud)
{
    ls_pglisten_t *l = ud;
    ls_timer_start(l->loop, &l->timer, 0);
}

static void on_notify(void *ud, const char *channel)
{
    ls_pglisten_t *l = ud;
    if (strcmp(channel, l->channel) == 0)
        l->cb(l->ud, LS_PGLISTEN_NOTIFY);
}

ls_pglisten_t *ls_pglisten_start(ls_loop_t *loop, const char *conninfo, const char *application_name,
                                 const char *channel, ls_pglisten_cb cb, void *ud)
{
    if (!channel_valid(channel))
        return NULL;
    ls_pglisten_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->loop = loop;
    l->cb = cb;
    l->ud = ud;
    snprintf(l->channel, sizeof(l->channel), "%s", channel);
    snprintf(l->sql, sizeof(l->sql), "LISTEN %s", channel);
    ls_timer_init(&l->timer, on_timer);
    l->conninfo = strdup(conninfo);
    l->application_name = application_name != NULL ? strdup(application_name) : NULL;
    ls_pg_config_t pc = {
        .conninfo = l->conninfo,
        .application_name = l->application_name,
        .nconns = 1,
        .on_ready = on_ready,
        .on_notify = on_notify,
        .hook_ud = l,
        .side = 1,
    };
    if (l->conninfo == NULL || (application_name != NULL && l->application_name == NULL) ||
        (l->pool = ls_pg_pool_create(loop, &pc)) == NULL) {
        free(l->conninfo);
        free(l->application_name);
        free(l);
        return NULL;
    }
    return l;
}

void ls_pglisten_stop(ls_pglisten_t *l)
{
    if (l == NULL)
        return;
    ls_timer_stop(l->loop, &l->timer);
    /* The pool completes a LISTEN still pending as it goes: on_listened sees stopping. */
    l->stopping = 1;
    ls_pg_pool_destroy(l->pool);
    free(l->conninfo);
    free(l->application_name);
    free(l);
}
