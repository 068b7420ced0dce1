/*
 * metrics_write: the exposition (text format 0.0.4) of a registry — each value summed over the
 * workers' blocks as it is written — and the process_* gauges read from /proc/self.
 */
#include "metrics_impl.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"

/* The contract's bucket bounds as they appear in `le`. */
static const char *const bucket_le[LS_METRICS_NBUCKETS] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                                           "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                                           "1",      "2.5",   "5",      "10"};
static const char *const method_names[LS_M_NMETHODS] = {"GET",   "HEAD",   "POST",    "PUT",
                                                        "PATCH", "DELETE", "OPTIONS", "other"};
static const char *const status_names[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const up_outcomes[LS_UP_NOUTCOMES] = {
    "2xx", "3xx", "4xx", "5xx", "timeout", "transport_error", "breaker_open", "shed"};
static const char *const ob_outcomes[LS_OB_NOUTCOMES] = {"delivered", "retry", "failed"};
static const char *const ob_wakes[LS_OB_NWAKES] = {"kick", "notify", "poll"};
static const char *const nt_outcomes[LS_NT_NOUTCOMES] = {"sent", "retry", "failed", "stored"};
static const char *const view_names[LS_VIEW_COUNT] = {"profile", "group", "schedule", "catalogue"};
static const char *const rate_scopes[LS_RL_NSCOPES] = {"addr", "user"};
static const char *const pgc_names[LS_PGC_NSTATES] = {"ready", "busy", "connecting", "broken"};
static const char *const builtin_routes[5] = {"/healthz", "/readyz", "/metrics", "unmatched", "/batch"};

/* ---- sums over the blocks ---- */

static uint64_t csum(const ls_metrics_t *m, size_t k)
{
    uint64_t v = 0;
    for (int i = 0; i < m->d.nworkers; i++)
        v += atomic_load_explicit(&m->blocks[i].c[k], memory_order_relaxed);
    return v;
}

static int64_t gsum(const ls_metrics_t *m, size_t k)
{
    int64_t v = 0;
    for (int i = 0; i < m->d.nworkers; i++)
        v += atomic_load_explicit(&m->blocks[i].g[k], memory_order_relaxed);
    return v;
}

static int64_t gmax(const ls_metrics_t *m, size_t k)
{
    int64_t v = 0;
    for (int i = 0; i < m->d.nworkers; i++) {
        int64_t x = atomic_load_explicit(&m->blocks[i].g[k], memory_order_relaxed);
        if (x > v)
            v = x;
    }
    return v;
}

/* ---- writing ---- */

typedef struct {
    const char *name, *type, *help;
    int shown;
} fam_t;

typedef struct {
    const char *key, *value;
} label_t;

/* HELP and TYPE before the family's first sample. */
static void fam_begin(ls_text_t *t, fam_t *f)
{
    if (f->shown)
        return;
    f->shown = 1;
    ls_text_lit(t, "# HELP ");
    ls_text_add(t, f->name, strlen(f->name));
    ls_text_lit(t, " ");
    ls_text_add(t, f->help, strlen(f->help));
    ls_text_lit(t, "\n# TYPE ");
    ls_text_add(t, f->name, strlen(f->name));
    ls_text_lit(t, " ");
    ls_text_add(t, f->type, strlen(f->type));
    ls_text_lit(t, "\n");
}

/* A label value: backslash, double quote and line feed escaped. */
void ls_metrics_label_value(ls_text_t *t, const char *v)
{
    const char *run = v;
    for (; *v != '\0'; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        if (esc == NULL)
            continue;
        ls_text_add(t, run, (size_t)(v - run));
        ls_text_add(t, esc, 2);
        run = v + 1;
    }
    ls_text_add(t, run, (size_t)(v - run));
}

/* name+suffix{labels,le="…"} value */
static void sample(ls_text_t *t, fam_t *f, const char *suffix, const label_t *l, int n, const char *le,
                   const char *value)
{
    fam_begin(t, f);
    ls_text_add(t, f->name, strlen(f->name));
    ls_text_add(t, suffix, strlen(suffix));
    if (n > 0 || le != NULL) {
        ls_text_lit(t, "{");
        for (int i = 0; i < n; i++) {
            if (i > 0)
                ls_text_lit(t, ",");
            ls_text_add(t, l[i].key, strlen(l[i].key));
            ls_text_lit(t, "=\"");
            ls_metrics_label_value(t, l[i].value);
            ls_text_lit(t, "\"");
        }
        if (le != NULL) {
            if (n > 0)
                ls_text_lit(t, ",");
            ls_text_lit(t, "le=\"");
            ls_text_add(t, le, strlen(le));
            ls_text_lit(t, "\"");
        }
        ls_text_lit(t, "}");
    }
    ls_text_lit(t, " ");
    ls_text_add(t, value, strlen(value));
    ls_text_lit(t, "\n");
}

static void sample_u(ls_text_t *t, fam_t *f, const label_t *l, int n, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    sample(t, f, "", l, n, NULL, buf);
}

static void sample_i(ls_text_t *t, fam_t *f, const label_t *l, int n, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%lld", (long long)v);
    sample(t, f, "", l, n, NULL, buf);
}

static void sample_f(ls_text_t *t, fam_t *f, const label_t *l, int n, const char *fmt, double v)
{
    char buf[48];
    snprintf(buf, sizeof(buf), fmt, v);
    sample(t, f, "", l, n, NULL, buf);
}

/* One histogram series from the LS_METRICS_HSLOTS counters at k; nothing when it counted nothing. */
static void histogram(ls_text_t *t, fam_t *f, const ls_metrics_t *m, size_t k, const label_t *l, int n)
{
    uint64_t h[LS_METRICS_HSLOTS], count = 0;
    for (int i = 0; i < LS_METRICS_HSLOTS; i++)
        h[i] = csum(m, k + (size_t)i);
    for (int i = 0; i <= LS_METRICS_NBUCKETS; i++)
        count += h[i];
    if (count == 0)
        return;
    char buf[48];
    uint64_t cum = 0;
    for (int i = 0; i <= LS_METRICS_NBUCKETS; i++) {
        cum += h[i];
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)cum);
        sample(t, f, "_bucket", l, n, i < LS_METRICS_NBUCKETS ? bucket_le[i] : "+Inf", buf);
    }
    uint64_t ns = h[LS_METRICS_HSLOTS - 1];
    snprintf(buf, sizeof(buf), "%llu.%09llu", (unsigned long long)(ns / 1000000000ull),
             (unsigned long long)(ns % 1000000000ull));
    sample(t, f, "_sum", l, n, NULL, buf);
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)count);
    sample(t, f, "_count", l, n, NULL, buf);
}

/* ---- the process ---- */

/* Fields 3.. of /proc/self/stat (after the command's closing parenthesis), split on spaces. */
static int proc_stat(char *buf, size_t size, char **fields, int max)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return 0;
    int nf = 0;
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " \n", &save); tok != NULL && nf < max;
         tok = strtok_r(NULL, " \n", &save))
        fields[nf++] = tok;
    return nf;
}

/* Field k of /proc/self/stat (numbered as in proc(5)), as a number. */
#define STAT(k) strtod(fields[(k)-3], NULL)

double ls_metrics_process_start_time(void)
{
    char buf[1024], line[256], *fields[24];
    if (proc_stat(buf, sizeof(buf), fields, 24) < 22)
        return 0;
    double btime = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "btime ", 6) == 0)
            btime = strtod(line + 6, NULL);
    fclose(f);
    return btime + STAT(22) / (double)sysconf(_SC_CLK_TCK);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void write_process(ls_text_t *t, const ls_metrics_t *m)
{
    fam_t start = {"process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds."};
    fam_t cpu = {"process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds."};
    fam_t rss = {"process_resident_memory_bytes", "gauge", "Resident memory size in bytes."};
    fam_t vsz = {"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes."};
    fam_t fds = {"process_open_fds", "gauge", "Number of open file descriptors."};
    fam_t maxfds = {"process_max_fds", "gauge", "Maximum number of open file descriptors."};
    fam_t threads = {"process_threads", "gauge", "Number of OS threads in the process."};
    char buf[1024], *fields[24];
    double tick = (double)sysconf(_SC_CLK_TCK);

    if (m->start_time > 0)
        sample_f(t, &start, NULL, 0, "%.2f", m->start_time);
    if (proc_stat(buf, sizeof(buf), fields, 24) >= 22) {
        sample_f(t, &cpu, NULL, 0, "%.2f", (STAT(14) + STAT(15)) / tick);
        sample_f(t, &rss, NULL, 0, "%.0f", STAT(24) * (double)sysconf(_SC_PAGESIZE));
        sample_f(t, &vsz, NULL, 0, "%.0f", STAT(23));
    }
    int n = open_fds();
    if (n >= 0)
        sample_i(t, &fds, NULL, 0, n);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        sample_u(t, &maxfds, NULL, 0, rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur);
    if (proc_stat(buf, sizeof(buf), fields, 24) >= 22)
        sample_f(t, &threads, NULL, 0, "%.0f", STAT(20));
}

/* ---- the families ---- */

static const char *route_name(const ls_metrics_t *m, size_t slot)
{
    return slot < m->d.nroutes ? m->d.routes[slot].pattern : builtin_routes[slot - m->d.nroutes];
}

static void write_requests(ls_text_t *t, const ls_metrics_t *m)
{
    fam_t total = {"ls_http_requests_total", "counter",
                   "Requests answered, by route, method and status class."};
    fam_t dur = {"ls_http_request_duration_seconds", "histogram",
                 "Time from a request's arrival to its reply."};
    for (size_t s = 0; s < m->nroute_slots; s++)
        for (int meth = 0; meth < LS_M_NMETHODS; meth++)
            for (int c = 0; c < 5; c++) {
                uint64_t v = csum(m, m->off_req + (s * LS_M_NMETHODS + (size_t)meth) * 5 + (size_t)c);
                label_t l[3] = {
                    {"route", route_name(m, s)}, {"method", method_names[meth]}, {"status", status_names[c]}};
                if (v > 0)
                    sample_u(t, &total, l, 3, v);
            }
    for (size_t s = 0; s < m->nroute_slots; s++)
        for (int meth = 0; meth < LS_M_NMETHODS; meth++) {
            label_t l[2] = {{"route", route_name(m, s)}, {"method", method_names[meth]}};
            histogram(t, &dur, m, m->off_req_hist + (s * LS_M_NMETHODS + (size_t)meth) * LS_METRICS_HSLOTS, l,
                      2);
        }
}

static void write_upstream(ls_text_t *t, const ls_metrics_t *m, const int *slots, int nslots)
{
    fam_t calls = {"ls_upstream_calls_total", "counter", "Calls to other daemons, by target and outcome."};
    fam_t dur = {"ls_upstream_call_duration_seconds", "histogram",
                 "A call to another daemon, all attempts, to its end."};
    fam_t retries = {"ls_upstream_retries_total", "counter",
                     "Attempts of calls to other daemons after the first."};
    fam_t breaker = {"ls_bff_breaker_open", "gauge",
                     "1 while the target's circuit breaker is open on any worker."};
    fam_t partial = {"ls_bff_partial_answers_total", "counter",
                     "Views answered partial, by view and missing part."};
    fam_t limited = {
        "ls_bff_rate_limited_total", "counter",
        "Requests refused with 429 by a rate limit, by scope (addr, user) and kind (read, write)."};
    fam_t batches = {"ls_bff_upstream_batches_total", "counter",
                     "Internal batch calls (POST /batch) that carried several calls to one target."};
    fam_t batched = {"ls_bff_upstream_batched_calls_total", "counter",
                     "Calls to other daemons that went out inside a batch call."};
    unsigned seen = atomic_load_explicit(&m->breaker_seen, memory_order_relaxed);

    for (int j = 0, i = 0; j < nslots && (i = slots[j], 1); j++)
        for (int o = 0; o < LS_UP_NOUTCOMES; o++) {
            uint64_t v = csum(m, m->off_up_calls + (size_t)i * LS_UP_NOUTCOMES + (size_t)o);
            label_t l[2] = {{"target", m->labels[i]}, {"outcome", up_outcomes[o]}};
            if (v > 0)
                sample_u(t, &calls, l, 2, v);
        }
    for (int j = 0, i = 0; j < nslots && (i = slots[j], 1); j++) {
        label_t l[1] = {{"target", m->labels[i]}};
        histogram(t, &dur, m, m->off_up_hist + (size_t)i * LS_METRICS_HSLOTS, l, 1);
    }
    for (int j = 0, i = 0; j < nslots && (i = slots[j], 1); j++) {
        uint64_t v = csum(m, m->off_up_retries + (size_t)i);
        label_t l[1] = {{"target", m->labels[i]}};
        if (v > 0 || (seen & (1u << i)))
            sample_u(t, &retries, l, 1, v);
    }
    for (int j = 0, i = 0; j < nslots && (i = slots[j], 1); j++) {
        label_t l[1] = {{"target", m->labels[i]}};
        if (seen & (1u << i))
            sample_i(t, &breaker, l, 1, gmax(m, m->off_breaker + (size_t)i));
    }
    for (int v = 0; v < LS_VIEW_COUNT; v++)
        for (int j = 0, i = 0; j < nslots && (i = slots[j], 1); j++) {
            uint64_t n = csum(m, m->off_partial + (size_t)v * LS_METRICS_MAX_TARGETS + (size_t)i);
            label_t l[2] = {{"view", view_names[v]}, {"part", m->labels[i]}};
            if (n > 0)
                sample_u(t, &partial, l, 2, n);
        }
    for (int k = 0; k < 2; k++)
        for (int j = 0, i = 0; j < nslots && (i = slots[j], 1); j++) {
            uint64_t n = csum(m, m->off_batches + (size_t)i * 2 + (size_t)k);
            label_t l[1] = {{"target", m->labels[i]}};
            if (n > 0)
                sample_u(t, k ? &batched : &batches, l, 1, n);
        }
    for (int s = 0; s < LS_RL_NSCOPES; s++)
        for (int w = 0; w < 2; w++) {
            uint64_t n = csum(m, m->off_rate_limited + (size_t)s * 2 + (size_t)w);
            label_t l[2] = {{"scope", rate_scopes[s]}, {"kind", w ? "write" : "read"}};
            if (n > 0)
                sample_u(t, &limited, l, 2, n);
        }
}

static void sqlstate_class(size_t slot, char out[16])
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    static const char *const special[3] = {"unavailable", "timeout", "busy"};
    if (slot >= LS_METRICS_SQLSTATE_CLASSES)
        snprintf(out, 16, "%s", special[slot - LS_METRICS_SQLSTATE_CLASSES]);
    else
        snprintf(out, 16, "%c%c", digits[slot / 36], digits[slot % 36]);
}

static void write_pg(ls_text_t *t, const ls_metrics_t *m)
{
    fam_t conns = {"ls_pg_connections", "gauge", "PostgreSQL connections by state."};
    fam_t waiting = {"ls_pg_waiting_requests", "gauge", "Queries queued for a PostgreSQL connection."};
    fam_t reconnects = {"ls_pg_reconnects_total", "counter",
                        "PostgreSQL connections re-opened after a failure."};
    fam_t cancels = {"ls_pg_cancels_total", "counter",
                     "Cancel requests sent for PostgreSQL statements still running past their deadline."};
    fam_t dur = {"ls_pg_query_duration_seconds", "histogram",
                 "PostgreSQL queries from submission to result, by statement."};
    fam_t errors = {"ls_pg_errors_total", "counter",
                    "Failed PostgreSQL queries by SQLSTATE class or reason."};
    if (!(atomic_load_explicit(&m->features, memory_order_relaxed) & LS_METRICS_F_DB))
        return;
    for (int s = 0; s < LS_PGC_NSTATES; s++) {
        label_t l[1] = {{"state", pgc_names[s]}};
        sample_i(t, &conns, l, 1, gsum(m, m->off_pg_conns + (size_t)s));
    }
    sample_i(t, &waiting, NULL, 0, gsum(m, m->off_pg_waiting));
    sample_u(t, &reconnects, NULL, 0, csum(m, m->off_pg_reconnects));
    sample_u(t, &cancels, NULL, 0, csum(m, m->off_pg_cancels));
    for (size_t s = 0; s < m->nstmt_slots; s++) {
        label_t l[1] = {{"statement", s < m->d.nstmts ? m->d.stmts[s].name : "other"}};
        histogram(t, &dur, m, m->off_pg_hist + s * LS_METRICS_HSLOTS, l, 1);
    }
    for (size_t s = 0; s < LS_METRICS_PGERR_SLOTS; s++) {
        uint64_t v = csum(m, m->off_pg_errors + s);
        char cls[16];
        sqlstate_class(s, cls);
        label_t l[1] = {{"class", cls}};
        if (v > 0)
            sample_u(t, &errors, l, 1, v);
    }
}

static void write_deliveries(ls_text_t *t, const ls_metrics_t *m, const int *slots, int nslots)
{
    fam_t rows = {"ls_outbox_pending_rows", "gauge", "Outbox rows not yet delivered."};
    fam_t age = {"ls_outbox_oldest_pending_age_seconds", "gauge",
                 "Age of the oldest undelivered outbox row (0 when none)."};
    fam_t ob = {"ls_outbox_deliveries_total", "counter",
                "Delivery attempts of outbox rows, by target and outcome."};
    fam_t wk = {"ls_outbox_wakeups_total", "counter",
                "Outbox poller wake-ups, by source: a kick after a commit, a NOTIFY, the poll interval."};
    fam_t nt = {"ls_notification_deliveries_total", "counter",
                "Notification deliveries by outcome (stored: no Telegram configured)."};
    fam_t depth = {"ls_notification_queue_depth", "gauge", "Notifications pending delivery."};
    unsigned features = atomic_load_explicit(&m->features, memory_order_relaxed);
    if (features & LS_METRICS_F_OUTBOX) {
        sample_i(t, &rows, NULL, 0, atomic_load_explicit(&m->outbox_rows, memory_order_relaxed));
        sample_f(t, &age, NULL, 0, "%.3f",
                 (double)atomic_load_explicit(&m->outbox_age_ms, memory_order_relaxed) / 1000.0);
    }
    for (int j = 0, i = 0; j < nslots && (i = slots[j], 1); j++)
        for (int o = 0; o < LS_OB_NOUTCOMES; o++) {
            uint64_t v = csum(m, m->off_outbox + (size_t)i * LS_OB_NOUTCOMES + (size_t)o);
            label_t l[2] = {{"target", m->labels[i]}, {"outcome", ob_outcomes[o]}};
            if (v > 0)
                sample_u(t, &ob, l, 2, v);
        }
    for (int w = 0; w < LS_OB_NWAKES; w++) {
        uint64_t v = csum(m, m->off_outbox_wakeups + (size_t)w);
        label_t l[1] = {{"source", ob_wakes[w]}};
        if (v > 0 || (features & LS_METRICS_F_OUTBOX))
            sample_u(t, &wk, l, 1, v);
    }
    for (int o = 0; o < LS_NT_NOUTCOMES; o++) {
        uint64_t v = csum(m, m->off_notify + (size_t)o);
        label_t l[1] = {{"outcome", nt_outcomes[o]}};
        if (v > 0 || (features & LS_METRICS_F_NOTIFY))
            sample_u(t, &nt, l, 1, v);
    }
    if (features & LS_METRICS_F_NOTIFY)
        sample_i(t, &depth, NULL, 0, atomic_load_explicit(&m->notify_depth, memory_order_relaxed));
}

void ls_metrics_write(ls_metrics_t *m, ls_text_t *t)
{
    fam_t info = {"ls_build_info", "gauge", "The daemon's name and the project's version."};
    fam_t ready = {"ls_ready", "gauge", "1 when the daemon would answer /readyz with 200 now."};
    label_t l[2] = {{"daemon", m->d.daemon}, {"version", m->d.version}};
    fam_t dropped = {"ls_log_dropped_lines_total", "counter",
                     "Log lines dropped because stdout did not take them fast enough (log.h)."};
    sample_u(t, &info, l, 2, 1);
    sample_u(t, &dropped, NULL, 0, ls_log_dropped());
    if (!LS_METRICS) { /* recording compiled out: what the scrape reads itself */
        write_process(t, m);
        return;
    }
    int is_ready = 1;
    if (atomic_load_explicit(&m->features, memory_order_relaxed) & LS_METRICS_F_DB)
        is_ready = gsum(m, m->off_pg_conns + LS_PGC_READY) + gsum(m, m->off_pg_conns + LS_PGC_BUSY) > 0;
    sample_u(t, &ready, NULL, 0, (uint64_t)is_ready);
    write_process(t, m);
    write_requests(t, m);
    /* the targets registered so far, then "other" */
    int slots[LS_METRICS_MAX_TARGETS], nslots = atomic_load_explicit(&m->ntargets, memory_order_acquire);
    for (int i = 0; i < nslots; i++)
        slots[i] = i;
    slots[nslots++] = LS_METRICS_MAX_TARGETS - 1;
    write_upstream(t, m, slots, nslots);
    write_pg(t, m);
    write_deliveries(t, m, slots, nslots);
}
