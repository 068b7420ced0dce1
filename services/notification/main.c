/* notification-service: notifications, templates, settings and delivery. See notification.h for the API. */
#include "notification.h"

static notification_config_t config;

static const ls_cfg_field_t config_fields[] = {
    LS_DAEMON_CONFIG_FIELDS(notification_config_t, common, "127.0.0.1:8086", LS_MIGRATIONS_DEFAULT),
    LS_IDEM_CONFIG_FIELD(notification_config_t, idempotency_ttl_s),
    {"TELEGRAM_API_URL", LS_CFG_STR, "", 0, 2048, offsetof(notification_config_t, telegram_api_url),
     "Telegram Bot API base URL (https://api.telegram.org); empty: notifications are only stored"},
    {"BOT_TOKEN", LS_CFG_SECRET, "", 0, NOTIFY_TOKEN_MAX, offsetof(notification_config_t, bot_token),
     "the bot's token for sendMessage; empty: notifications are only stored"},
    {"NOTIFY_POLL_MS", LS_CFG_INT, "500", 10, 60000, offsetof(notification_config_t, poll_ms),
     "how often the delivery worker looks for due notifications"},
    {"NOTIFY_MAX_ATTEMPTS", LS_CFG_INT, "5", 1, 20, offsetof(notification_config_t, max_attempts),
     "Telegram delivery attempts per notification before it is marked failed"},
    {"REMINDER_SWEEP_S", LS_CFG_INT, "30", 1, 3600, offsetof(notification_config_t, reminder_sweep_s),
     "how often calendar-service's upcoming lessons are read for the lesson reminders that are due"},
    {"CALENDAR_URL", LS_CFG_URL, "http://127.0.0.1:8085", 0, 0, offsetof(notification_config_t, calendar_url),
     "calendar-service, asked for the upcoming lessons (the reminders)"},
};

static const ls_route_t routes[] = {
    LS_ROUTE("POST", "/notifications", notifications_create, 0),
    LS_ROUTE("GET", "/users/{telegram_id:id}/notifications", notifications_list, 0),
    LS_ROUTE("GET", "/users/{telegram_id:id}/notifications/unread_count", notifications_unread_count, 0),
    LS_ROUTE("POST", "/users/{telegram_id:id}/notifications/read_all", notifications_read_all, 0),
    LS_ROUTE("POST", "/users/{telegram_id:id}/notifications/{id:uuid}/read", notifications_read, 0),
    LS_ROUTE("GET", "/users/{telegram_id:id}/notification_settings", settings_get, 0),
    LS_ROUTE("PUT", "/users/{telegram_id:id}/notification_settings", settings_put, 0),
};

static int on_start(void *cfg, char *err, size_t errlen)
{
    return notification_prepare_config(cfg, err, errlen);
}

/* Worker 0 also runs the reminder sweep; it wakes the delivery poller, so it stops first. */
static void worker_start(ls_worker_t *w)
{
    delivery_start(w);
    reminders_start(w);
}

static void worker_stop(ls_worker_t *w)
{
    reminders_stop(w);
    delivery_stop(w);
}

static const ls_daemon_t daemon_spec = {
    .name = "notification-service",
    .summary = "notifications from per-language templates, people's notification settings, delivery, and"
               " lesson reminders from calendar-service's upcoming lessons",
    .config_fields = config_fields,
    .nconfig_fields = sizeof(config_fields) / sizeof(config_fields[0]),
    .config = &config,
    .common = &config.common,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .stmts = notification_statements,
    .nstmts = STMT_COUNT,
    .uses_http = 1, /* the worker's internal client: GET /lessons/upcoming (Telegram has its own) */
    .on_start = on_start,
    .on_worker_start = worker_start,
    .on_worker_stop = worker_stop,
};

int main(int argc, char **argv)
{
    ls_idem_configure(STMT_IDEM, &config.idempotency_ttl_s);
    return ls_daemon_main(&daemon_spec, argc, argv);
}
