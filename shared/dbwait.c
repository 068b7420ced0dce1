/*
 * dbwait: the start-up connection that waits for its database (see dbwait.h for the contract).
 */
#include "dbwait.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "errbuf.h"
#include "log.h"
#include "loop.h"

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

PGconn *ls_dbwait_connect(const char *conninfo, const char *fallback_application_name, long long wait_ms,
                          char *err, size_t errlen)
{
    uint64_t t0 = ls_now_ms();
    uint64_t deadline = t0 + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
    uint64_t backoff = LS_DBWAIT_BACKOFF_MIN_MS;
    char reason[512];
    for (int attempt = 1;; attempt++) {
        /* libpq enforces connect_timeout in blocking mode, in whole seconds, at least 2. */
        uint64_t now = ls_now_ms();
        uint64_t left_s = deadline > now ? (deadline - now + 999) / 1000 : 0;
        char timeout[16];
        snprintf(timeout, sizeof(timeout), "%llu",
                 (unsigned long long)(left_s < 2    ? 2
                                      : left_s > 10 ? 10
                                                    : left_s));
        /* Options come before dbname so that the caller's conninfo overrides them. */
        const char *const keys[] = {"connect_timeout", "fallback_application_name", "client_encoding",
                                    "dbname", NULL};
        const char *const values[] = {timeout, fallback_application_name, "UTF8", conninfo, NULL};
        PGconn *conn = PQconnectdbParams(keys, values, 1);
        if (conn != NULL && PQstatus(conn) == CONNECTION_OK) {
            if (attempt > 1) {
                ls_log_line_t l;
                if (ls_log_begin(&l, LS_LOG_INFO, NULL, "database reachable")) {
                    ls_log_int(&l, "attempts", attempt);
                    ls_log_int(&l, "waited_ms", (int64_t)(ls_now_ms() - t0));
                    ls_log_end(&l);
                }
            }
            return conn;
        }
        err_flatten(reason, sizeof(reason), conn != NULL ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);

        now = ls_now_ms();
        if (wait_ms <= 0) {
            set_err(err, errlen, "cannot connect to PostgreSQL: %s", reason);
            return NULL;
        }
        if (now >= deadline) {
            set_err(err, errlen, "PostgreSQL not reachable within DATABASE_WAIT_MS=%lld ms (%d attempts): %s",
                    wait_ms, attempt, reason);
            return NULL;
        }
        uint64_t pause = backoff < deadline - now ? backoff : deadline - now;
        ls_log_line_t l;
        if (ls_log_begin(&l, LS_LOG_WARN, NULL, "database not reachable yet")) {
            ls_log_int(&l, "attempt", attempt);
            ls_log_str(&l, "error", reason);
            ls_log_int(&l, "retry_ms", (int64_t)pause);
            ls_log_int(&l, "waited_ms", (int64_t)(now - t0));
            ls_log_int(&l, "wait_ms", wait_ms);
            ls_log_end(&l);
        }
        sleep_ms(pause);
        backoff = backoff * 2 > LS_DBWAIT_BACKOFF_MAX_MS ? LS_DBWAIT_BACKOFF_MAX_MS : backoff * 2;
    }
}
