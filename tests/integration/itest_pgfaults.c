/*
 * Faults around a service: PostgreSQL restarted under load, and a stdout that nobody reads. The real
 * teachers-service, a private PostgreSQL cluster for the restart (the shared one must stay up for
 * the tests running beside this one).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define DAEMON "services/teachers/teachers-service"
/* REQUEST_TIMEOUT_MS of the daemons here, and how much later than that an answer may come */
#define DEADLINE_MS 1000
#define MARGIN_MS   1000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- PostgreSQL restarted under load ---- */

enum { CLIENTS = 4, MAX_SAMPLES = 20000 };

typedef struct {
    long long end_ms;
    int status;
    int ms;
    int problem; /* a 503 with Content-Type application/problem+json */
} sample_t;

typedef struct {
    const lst_daemon_t *daemon;
    const char *token;
    atomic_int *stop;
    atomic_llong *last_ok_ms; /* shared: end of the latest 200 */
    sample_t samples[MAX_SAMPLES];
    int n;
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    while (!atomic_load(c->stop) && c->n < MAX_SAMPLES) {
        lst_resp_t resp;
        long long t0 = now_ms();
        lst_call_as(&resp, c->daemon->base_url, c->token, "GET", "/teachers?ids=1,2", NULL, NULL, NULL);
        sample_t *s = &c->samples[c->n++];
        s->end_ms = now_ms();
        s->status = resp.status;
        s->ms = (int)(s->end_ms - t0);
        char *ct = lst_resp_header(&resp, "Content-Type");
        s->problem = ct != NULL && strstr(ct, "application/problem+json") != NULL;
        free(ct);
        if (resp.status == 200)
            atomic_store(c->last_ok_ms, s->end_ms);
        lst_resp_free(&resp);
    }
    return NULL;
}

Test(pgfaults, postgres_restarted_under_load, .timeout = 240)
{
    lst_cluster_t cluster;
    lst_cluster_create(&cluster);
    char *conninfo = lst_cluster_conninfo(&cluster, "postgres");
    char *token = lst_random_hex(24);
    char db[4200], tok[128], timeout[64];
    snprintf(db, sizeof(db), "DATABASE_URL=%s", conninfo);
    snprintf(tok, sizeof(tok), "INTERNAL_TOKEN=%s", token);
    snprintf(timeout, sizeof(timeout), "REQUEST_TIMEOUT_MS=%d", DEADLINE_MS);
    const char *env[] = {db, tok, timeout, "THREADS=2", "PG_POOL_SIZE=4", "LOG_LEVEL=info", NULL};
    lst_daemon_t d;
    lst_daemon_start(&d, DAEMON, env);
    pid_t pid = d.pid;

    atomic_int stop = 0;
    atomic_llong last_ok = 0;
    static client_t clients[CLIENTS];
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (client_t){.daemon = &d, .token = token, .stop = &stop, .last_ok_ms = &last_ok};
        cr_assert_eq(pthread_create(&threads[i], NULL, client_main, &clients[i]), 0);
    }

    pause_ms(1000);
    long long stopping = now_ms();
    cr_assert_eq(lst_cluster_stop(&cluster), 0, "pg_ctl stop");
    long long stopped = now_ms();
    pause_ms(3000); /* long enough for the pool's backoff to reach its longest */
    cr_assert_eq(lst_cluster_start(&cluster), 0, "pg_ctl start");
    long long up = now_ms();
    /* it recovers by itself: 200s again within a few seconds */
    while (atomic_load(&last_ok) < up && now_ms() - up < 20000)
        pause_ms(20);
    long long recovered = atomic_load(&last_ok);
    pause_ms(1000);
    atomic_store(&stop, 1);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(threads[i], NULL);

    int total = 0, ok = 0, unavailable = 0, ok_after = 0, unavailable_down = 0;
    for (int i = 0; i < CLIENTS; i++) {
        for (int k = 0; k < clients[i].n; k++) {
            const sample_t *s = &clients[i].samples[k];
            total++;
            cr_assert(s->status == 200 || (s->status == 503 && s->problem),
                      "every request is answered 200, or 503 problem+json while the database is down: %d at "
                      "%lld ms after the stop began",
                      s->status, s->end_ms - stopping);
            cr_assert_leq(s->ms, DEADLINE_MS + MARGIN_MS, "answered within its deadline: %d ms (status %d)",
                          s->ms, s->status);
            ok += s->status == 200;
            unavailable += s->status == 503;
            ok_after += s->status == 200 && s->end_ms > recovered + 100;
            unavailable_down += s->status == 503 && s->end_ms > stopped && s->end_ms < up;
        }
    }
    fprintf(
        stderr,
        "pgfaults: %d requests: %d ok, %d unavailable; stop took %lld ms, recovered %lld ms after start\n",
        total, ok, unavailable, stopped - stopping, recovered - up);
    cr_assert_gt(unavailable_down, 0, "the outage was seen (503 while the database was down)");
    cr_assert_geq(recovered, up, "200s again after PostgreSQL came back");
    /* the reconnect backoff stops growing at 1 s */
    cr_assert_lt(recovered - up, 2500, "recovered within a few seconds: %lld ms", recovered - up);
    cr_assert_gt(ok_after, 10, "and it keeps answering 200");
    cr_assert_eq(d.pid, pid, "the same process, never restarted");
    lst_daemon_expect_clean_stop(&d);
    free(token);
    free(conninfo);
    lst_cluster_destroy(&cluster);
}

/* ---- a stdout that nobody reads ---- */

/* Reads the daemon's stdout until its "listening" line for port (15 s at most). */
static void read_until_listening(int fd, int port)
{
    static char buf[1 << 16];
    size_t len = 0;
    char want[32];
    snprintf(want, sizeof(want), "\"port\":%d,", port);
    long long until = now_ms() + 15000;
    while (now_ms() < until) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        cr_assert_gt(n, 0, "the daemon's stdout closed before it listened");
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\"msg\":\"listening\"") != NULL && strstr(buf, want) != NULL)
            return;
        if (len > sizeof(buf) / 2)
            len = 0; /* start-up lines only: no need to keep them */
    }
    cr_assert_fail("no \"listening\" line within 15 s");
}

/* n requests to a real route; each must be answered 200 promptly. */
static void serve_promptly(const lst_daemon_t *d, const char *token, int n)
{
    for (int i = 0; i < n; i++) {
        lst_resp_t resp;
        lst_call_as(&resp, d->base_url, token, "GET", "/teachers?ids=1,2", NULL, NULL, NULL);
        cr_assert_eq(resp.status, 200, "request %d answered", i);
        cr_assert_lt(resp.seconds, 1.0, "request %d answered promptly (%.3f s)", i, resp.seconds);
        lst_resp_free(&resp);
    }
}

Test(pgfaults, stdout_nobody_reads_blocks_no_worker, .timeout = 240)
{
    char *conninfo = lst_db_create("logpipe", NULL);
    char *token = lst_random_hex(24);
    char db[4200], tok[128];
    snprintf(db, sizeof(db), "DATABASE_URL=%s", conninfo);
    snprintf(tok, sizeof(tok), "INTERNAL_TOKEN=%s", token);
    const char *env[] = {db, tok, "THREADS=2", "LOG_LEVEL=debug", "LOG_BUFFER_BYTES=65536", NULL};
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    lst_daemon_t d;
    lst_daemon_spawn_stdout(&d, DAEMON, env, fds[1]);
    close(fds[1]);
    read_until_listening(fds[0], d.port);

    /* from here on nobody reads: the pipe (64 KiB) and the buffer (64 KiB) fill up */
    serve_promptly(&d, token, 1500);
    double dropped = lst_metric(d.base_url, token, "ls_log_dropped_lines_total");
    cr_assert_gt(dropped, 0, "lines were dropped and counted");
    lst_resp_t h;
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", d.base_url);
    for (int i = 0; i < 50; i++) {
        lst_http(&h, "GET", url, NULL, NULL);
        cr_assert_eq(h.status, 200);
        cr_assert_lt(h.seconds, 0.5, "healthz answered promptly (%.3f s)", h.seconds);
        lst_resp_free(&h);
    }
    serve_promptly(&d, token, 200);
    double later = lst_metric(d.base_url, token, "ls_log_dropped_lines_total");
    cr_assert_gt(later, dropped, "the counter grows while nobody reads (%.0f, then %.0f)", dropped, later);

    /* it still stops cleanly: the flush at exit waits a bounded time */
    long long t0 = now_ms();
    lst_daemon_expect_clean_stop(&d);
    cr_assert_lt(now_ms() - t0, 8000);
    close(fds[0]);
    free(token);
    free(conninfo);
}
