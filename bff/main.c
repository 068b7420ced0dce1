/* bff: the public gateway of the school's Mini App. See bff.h and docs/ARCHITECTURE.md §7. */
#include "bff.h"

#include <stdlib.h>
#include <string.h>

#include <log.h>
#include <sodium.h>

static bff_config_t config;

// clang-format off
#define UPSTREAM_URL(env, idx, def, what)                                                                   \
    {env, LS_CFG_URL, def, 0, 0, offsetof(bff_config_t, url[idx]), "base URL of " what}

/* A rate limit's two settings: PREFIX_PER_S and PREFIX_BURST (ratelimit.h). */
#define RATE(prefix, m, per_s, burst, what)                                                                  \
    {prefix "_PER_S", LS_CFG_INT, per_s, 0, BFF_RATE_MAX, offsetof(bff_config_t, m##_per_s),                 \
     "rate limit of " what ": tokens a second (0: no limit; over it: 429 with Retry-After)"},                \
    {prefix "_BURST", LS_CFG_INT, burst, 1, BFF_RATE_MAX, offsetof(bff_config_t, m##_burst),                 \
     "rate limit of " what ": tokens it may spend at once"}

static const ls_cfg_field_t config_fields[] = {
    LS_DAEMON_CONFIG_FIELDS_NO_DB(bff_config_t, common, "127.0.0.1:8080"),
    {"BOT_TOKEN", LS_CFG_SECRET, NULL, 1, 512, offsetof(bff_config_t, bot_token),
     "the Telegram bot's token: the key that Mini App init data is signed with"},
    {"INIT_DATA_MAX_AGE", LS_CFG_INT, "86400", 0, 31536000, offsetof(bff_config_t, init_data_max_age),
     "seconds an initData stays valid after its auth_date (0: no age check at all — tests only)"},
    {"INIT_DATA_MAX_AGE_WRITE", LS_CFG_INT, "3600", 0, 31536000, offsetof(bff_config_t, init_data_max_age_write),
     "the same for writes (any method but GET and HEAD); at most INIT_DATA_MAX_AGE (0: INIT_DATA_MAX_AGE)"},
    {"BFF_DEADLINE_MS", LS_CFG_INT, "3000", 50, 60000, offsetof(bff_config_t, deadline_ms),
     "one deadline per request for all its calls to the services"},
    UPSTREAM_URL("AUTH_URL", BFF_UP_AUTH, "http://127.0.0.1:8081", "auth-service"),
    UPSTREAM_URL("TEACHERS_URL", BFF_UP_TEACHERS, "http://127.0.0.1:8082", "teachers-service"),
    UPSTREAM_URL("STUDENTS_URL", BFF_UP_STUDENTS, "http://127.0.0.1:8083", "students-service"),
    UPSTREAM_URL("GROUPS_URL", BFF_UP_GROUPS, "http://127.0.0.1:8084", "groups-service"),
    UPSTREAM_URL("CALENDAR_URL", BFF_UP_CALENDAR, "http://127.0.0.1:8085", "calendar-service"),
    UPSTREAM_URL("NOTIFICATION_URL", BFF_UP_NOTIFICATION, "http://127.0.0.1:8086", "notification-service"),
    UPSTREAM_URL("PAYMENT_URL", BFF_UP_PAYMENT, "http://127.0.0.1:8087", "payment-service"),
    {"BREAKER_FAILURES", LS_CFG_INT, "5", 1, 10000, offsetof(bff_config_t, breaker_failures),
     "consecutive failed calls that open a service's circuit breaker"},
    {"BREAKER_OPEN_MS", LS_CFG_INT, "5000", 10, 3600000, offsetof(bff_config_t, breaker_open_ms),
     "how long an open breaker fails calls at once before one probe is let through"},
    {"UPSTREAM_MAX_INFLIGHT", LS_CFG_INT, "256", 1, 100000, offsetof(bff_config_t, max_inflight),
     "calls in flight to one service per worker thread; more fail at once (503)"},
    {"UPSTREAM_BATCH_MAX", LS_CFG_INT, "32", 1, BFF_COALESCE_MAX, offsetof(bff_config_t, batch_max),
     "GET calls to one service started in one loop iteration that go as one POST /batch (1: each alone)"},
    RATE("RATE_READ", rate_read, "20", "100", "a person's reads (GET, HEAD)"),
    RATE("RATE_WRITE", rate_write, "5", "60", "a person's writes (other methods)"),
    RATE("RATE_ADDR", rate_addr, "200", "600", "a client address, checked before the signature"),
    {"TRUSTED_PROXY", LS_CFG_STR, "", 0, 4096, offsetof(bff_config_t, trusted_proxy),
     "comma-separated proxies (addresses, CIDR networks, `unix`) whose X-Forwarded-For names the client"},
    {"TELEGRAM_WEBHOOK_SECRET", LS_CFG_SECRET, "", 0, BFF_WEBHOOK_SECRET_MAX,
     offsetof(bff_config_t, webhook_secret),
     "secret_token of the bot's webhook POST /telegram/webhook: 16-256 of A-Z a-z 0-9 _ - (empty: off, 404)"},
    {"WEB_ROOT", LS_CFG_STR, BFF_WEB_ROOT_DEFAULT, 1, 4096, offsetof(bff_config_t, web_root),
     "folder of the Mini App's files (bff/web), read once at start and served under /app/"},
    {"DEV_SIGNIN", LS_CFG_BOOL, "off", 0, 0, offsetof(bff_config_t, dev_signin),
     "serve /app/dev?as=<telegram_id>, the app signed in as anyone: development only (refused unless "
     "LISTEN is loopback and TRUSTED_PROXY empty)"},
};
// clang-format on

/* The Mini App's files (no authentication), the views and the webhook; the writes are appended from
 * bff_proxy_routes at start. */
static const ls_route_t view_routes[] = {
    LS_ROUTE("GET", "/", bff_static_redirect, LS_ROUTE_PUBLIC),
    LS_ROUTE("GET", "/app", bff_static_redirect, LS_ROUTE_PUBLIC),
    LS_ROUTE("GET", "/app/", bff_static_file, LS_ROUTE_PUBLIC),
    LS_ROUTE("GET", "/app/{file:str}", bff_static_file, LS_ROUTE_PUBLIC),
    LS_ROUTE("POST", "/api/auth/telegram", bff_signin, 0),
    LS_ROUTE("GET", "/api/user/profile/{telegram_id:id}", bff_profile, 0),
    LS_ROUTE("GET", "/api/groups/{group_id:uuid}", bff_group_view, 0),
    LS_ROUTE("GET", "/api/schedule/{telegram_id:id}", bff_schedule, 0),
    LS_ROUTE("GET", "/api/catalogue/groups", bff_catalogue_groups, 0),
    LS_ROUTE("GET", "/api/catalogue/teachers", bff_catalogue_teachers, 0),
    /* Telegram's calls: no tma hook; the handler checks the webhook's secret itself. */
    LS_ROUTE("POST", "/telegram/webhook", bff_webhook, LS_ROUTE_PUBLIC),
};

#define NVIEW_ROUTES (sizeof(view_routes) / sizeof(view_routes[0]))

/* ---- start-up ---- */

static int on_start(void *cfg, char *err, size_t errlen)
{
    bff_config_t *c = cfg;
    bff_upstream_config_t uc = {
        .breaker_failures = (int)c->breaker_failures,
        .breaker_open_ms = (uint64_t)c->breaker_open_ms,
        .max_inflight = (size_t)c->max_inflight,
    };
    for (int i = 0; i < BFF_UP_COUNT; i++)
        uc.base_url[i] = c->url[i];
    if (c->init_data_max_age > 0 && c->init_data_max_age_write > c->init_data_max_age) {
        snprintf(err, errlen, "INIT_DATA_MAX_AGE_WRITE (%lld) must be at most INIT_DATA_MAX_AGE (%lld)",
                 c->init_data_max_age_write, c->init_data_max_age);
        return -1;
    }
    if (bff_proxies_parse(c->trusted_proxy, &c->proxies, err, errlen) != 0)
        return -1;
    if (bff_webhook_configure(c, err, errlen) != 0)
        return -1;
    if (c->dev_signin && bff_dev_signin_check(&c->common.listen, c->trusted_proxy, err, errlen) != 0)
        return -1;
    if (bff_static_load(c->web_root, c->dev_signin, err, errlen) != 0)
        return -1;
    if (c->dev_signin)
        ls_logf(LS_LOG_WARN, NULL, "DEV_SIGNIN is on: GET /app/dev?as=<telegram_id> signs in as anyone");
    bff_upstream_configure(&uc);
    bff_coalesce_configure((size_t)c->batch_max);
    tma_derive_key(c->bot_token, c->tma_key);
    return 0;
}

/* on_worker_stop: the coalescer's queued calls end before the worker's HTTP client does. */
static void worker_stop(ls_worker_t *w)
{
    bff_coalesce_stop(w);
    bff_limits_stop(w);
}

static ls_daemon_t daemon_spec = {
    .name = "bff",
    .summary = "the Mini App's gateway: Telegram sign-in, profile/group views, writes to the services",
    .config_fields = config_fields,
    .nconfig_fields = sizeof(config_fields) / sizeof(config_fields[0]),
    .config = &config,
    .common = &config.common,
    .uses_http = 1,
    .no_database = 1,
    .on_start = on_start,
    .on_worker_start = bff_limits_start,
    .on_worker_stop = worker_stop,
    .authenticate = bff_authenticate,
};

/* The views, then every write: the table is sized from bff_proxy_routes, so that none is left out. */
static const ls_route_t *build_routes(size_t *n)
{
    static ls_route_t *routes;
    *n = NVIEW_ROUTES + bff_nproxy_routes;
    if (routes == NULL) {
        routes = calloc(*n, sizeof(routes[0]));
        if (routes == NULL) {
            fprintf(stderr, "bff: out of memory\n");
            exit(1);
        }
        memcpy(routes, view_routes, sizeof(view_routes));
        for (size_t i = 0; i < bff_nproxy_routes; i++)
            routes[NVIEW_ROUTES + i] =
                (ls_route_t)LS_ROUTE(bff_proxy_routes[i].method, bff_proxy_routes[i].pattern, bff_proxy, 0);
    }
    return routes;
}

void bff_print_routes(FILE *out)
{
    size_t n;
    const ls_route_t *routes = build_routes(&n);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s %s\n", routes[i].method, routes[i].pattern);
    /* Served by the shared server for every daemon, without authentication. */
    fprintf(out, "GET /healthz\nGET /readyz\n");
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--routes") == 0) {
        bff_print_routes(stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    daemon_spec.routes = build_routes(&daemon_spec.nroutes);
    int status = ls_daemon_main(&daemon_spec, argc, argv);
    bff_static_free();
    sodium_memzero(config.tma_key, sizeof(config.tma_key));
    sodium_memzero(config.webhook_digest, sizeof(config.webhook_digest));
    return status;
}
