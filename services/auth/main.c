/* auth-service: users, roles and verification. See auth.h for the API. */
#include "auth.h"

static auth_config_t config;

static const ls_cfg_field_t config_fields[] = {
    LS_DAEMON_CONFIG_FIELDS(auth_config_t, common, "127.0.0.1:8081", LS_MIGRATIONS_DEFAULT),
    LS_IDEM_CONFIG_FIELD(auth_config_t, idempotency_ttl_s),
    {"AUTH_DATA_KEY", LS_CFG_SECRET, NULL, 64, 64, offsetof(auth_config_t, data_key_hex),
     "64 hex characters: key that encrypts sensitive fields (phone numbers) at rest"},
    {"ADMIN_TELEGRAM_IDS", LS_CFG_STR, "", 0, 4096, offsetof(auth_config_t, admin_ids),
     "comma-separated telegram ids that get the admin role when they first sign in"},
    {"NOTIFICATION_URL", LS_CFG_URL, "http://127.0.0.1:8086", 0, 0, offsetof(auth_config_t, notification_url),
     "notification-service, told of a first sign-in (the registration notification, through the outbox)"},
    {"OUTBOX_POLL_MS", LS_CFG_INT, "5000", 10, 60000, offsetof(auth_config_t, outbox_poll_ms),
     "how often each worker looks for outbox rows that are due (a commit also wakes it)"},
};

static const ls_route_t routes[] = {
    LS_ROUTE("GET", "/users", users_batch, 0),
    LS_ROUTE("GET", "/users/{telegram_id:id}", users_get, 0),
    LS_ROUTE("PUT", "/users/{telegram_id:id}", users_put, 0),
    LS_ROUTE("PATCH", "/users/{telegram_id:id}", users_patch, 0),
};

static int on_start(void *cfg, char *err, size_t errlen)
{
    return auth_prepare_config(cfg, err, errlen);
}

/* Each worker delivers the notifications its own commits queue (and any others that are due). */
static const ls_daemon_outbox_target_t outbox_targets[] = {{AUTH_NOTIFY_TARGET, &config.notification_url}};

static const ls_daemon_t daemon_spec = {
    .name = "auth-service",
    .summary = "users of the school keyed by telegram_id: names, role, verification; a first sign-in"
               " notified through notification-service",
    .config_fields = config_fields,
    .nconfig_fields = sizeof(config_fields) / sizeof(config_fields[0]),
    .config = &config,
    .common = &config.common,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .stmts = auth_statements,
    .nstmts = STMT_COUNT,
    .on_start = on_start,
    .uses_http = 1,
    .outbox = {.targets = outbox_targets,
               .ntargets = sizeof(outbox_targets) / sizeof(outbox_targets[0]),
               .poll_ms = &config.outbox_poll_ms},
};

int main(int argc, char **argv)
{
    ls_idem_configure(STMT_IDEM, &config.idempotency_ttl_s);
    return ls_daemon_main(&daemon_spec, argc, argv);
}
