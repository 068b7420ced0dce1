/* payment-service: payments for paid groups in Telegram Stars. See payment.h for the API. */
#include "payment.h"

#include <stdlib.h>

static payment_config_t config;

static const ls_cfg_field_t config_fields[] = {
    LS_DAEMON_CONFIG_FIELDS(payment_config_t, common, "127.0.0.1:8087", LS_MIGRATIONS_DEFAULT),
    LS_IDEM_CONFIG_FIELD(payment_config_t, idempotency_ttl_s),
    {"TELEGRAM_API_URL", LS_CFG_STR, "", 0, 2048, offsetof(payment_config_t, telegram_api_url),
     "Telegram Bot API base URL (https://api.telegram.org); empty: checkouts answer 503"},
    {"BOT_TOKEN", LS_CFG_SECRET, "", 0, PAYMENT_TOKEN_MAX, offsetof(payment_config_t, bot_token),
     "the bot's token for invoices and refunds; empty: checkouts answer 503"},
    {"BOT_API_TIMEOUT_MS", LS_CFG_INT, "8000", 100, 60000, offsetof(payment_config_t, bot_timeout_ms),
     "longest a Bot API call may take (a pre-checkout query must be answered within 10 s)"},
    {"GROUPS_URL", LS_CFG_URL, "http://127.0.0.1:8084", 0, 0, offsetof(payment_config_t, groups_url),
     "groups-service: the group's price and seats, and the paid member (through the outbox)"},
    {"OUTBOX_POLL_MS", LS_CFG_INT, "5000", 10, 60000, offsetof(payment_config_t, outbox_poll_ms),
     "how often each worker looks for outbox rows that are due (a commit also wakes it)"},
};

static const ls_route_t routes[] = {
    LS_ROUTE("POST", "/groups/{group_id:uuid}/checkout", checkout_post, 0),
    LS_ROUTE("GET", "/users/{telegram_id:id}/payments", payments_list, 0),
    LS_ROUTE("GET", "/payments/{payment_id:uuid}", payments_get, 0),
    LS_ROUTE("POST", "/payments/{payment_id:uuid}/refund", payments_refund, 0),
    LS_ROUTE("POST", "/payments/{payment_id:uuid}/seat", seats_post, 0),
    LS_ROUTE("POST", "/telegram/updates", updates_post, 0),
};

/* The seat step calls this daemon itself; removals on refund go to groups-service. */
static const ls_daemon_outbox_target_t outbox_targets[] = {
    {"payment", &config.self_url},
    {"groups", &config.groups_url},
};

static int on_start(void *cfg, char *err, size_t errlen)
{
    return payment_prepare_config(cfg, err, errlen);
}

static const ls_daemon_t daemon_spec = {
    .name = "payment-service",
    .summary = "payments for seats in paid groups, in Telegram Stars through the Bot API",
    .config_fields = config_fields,
    .nconfig_fields = sizeof(config_fields) / sizeof(config_fields[0]),
    .config = &config,
    .common = &config.common,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .stmts = payment_statements,
    .nstmts = STMT_COUNT,
    .uses_http = 1,
    .on_start = on_start,
    .on_worker_start = botapi_worker_start,
    .on_worker_stop = botapi_worker_stop,
    .outbox = {.targets = outbox_targets,
               .ntargets = sizeof(outbox_targets) / sizeof(outbox_targets[0]),
               .poll_ms = &config.outbox_poll_ms},
};

int main(int argc, char **argv)
{
    ls_idem_configure(STMT_IDEM, &config.idempotency_ttl_s);
    int rc = ls_daemon_main(&daemon_spec, argc, argv);
    free(config.self_url);
    return rc;
}
