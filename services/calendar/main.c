/* calendar-service: lessons, attendance and teachers' availability. See calendar.h for the API. */
#include "calendar.h"

static calendar_config_t config;

static const ls_cfg_field_t config_fields[] = {
    LS_DAEMON_CONFIG_FIELDS(calendar_config_t, common, "127.0.0.1:8085", LS_MIGRATIONS_DEFAULT),
    LS_IDEM_CONFIG_FIELD(calendar_config_t, idempotency_ttl_s),
    {"TEACHERS_URL", LS_CFG_URL, "http://127.0.0.1:8082", 0, 0, offsetof(calendar_config_t, teachers_url),
     "teachers-service, asked whether a lesson's teacher exists"},
    {"GROUPS_URL", LS_CFG_URL, "http://127.0.0.1:8084", 0, 0, offsetof(calendar_config_t, groups_url),
     "groups-service, asked for a lesson's group (its teacher) and its members"},
    {"STUDENTS_URL", LS_CFG_URL, "http://127.0.0.1:8083", 0, 0, offsetof(calendar_config_t, students_url),
     "students-service, asked whether a lesson's listed students exist"},
    {"NOTIFICATION_URL", LS_CFG_URL, "http://127.0.0.1:8086", 0, 0,
     offsetof(calendar_config_t, notification_url),
     "notification-service, told about new, cancelled and rescheduled lessons (through the outbox)"},
    {"OUTBOX_POLL_MS", LS_CFG_INT, "5000", 10, 60000, offsetof(calendar_config_t, outbox_poll_ms),
     "how often each worker looks for outbox rows that are due (a commit also wakes it)"},
    {"LESSON_SWEEP_S", LS_CFG_INT, "60", 1, 3600, offsetof(calendar_config_t, lesson_sweep_s),
     "how often scheduled lessons whose end has passed are marked completed (one replica at a time)"},
    {"ATTENDANCE_WINDOW_H", LS_CFG_INT, "48", 1, 8760, offsetof(calendar_config_t, attendance_window_h),
     "hours after a lesson's end during which its attendance may still be marked"},
};

static const ls_route_t routes[] = {
    LS_ROUTE("POST", "/lessons", lessons_create, 0),
    LS_ROUTE("GET", "/lessons", lessons_list, 0),
    LS_ROUTE("GET", "/lessons/upcoming", lessons_upcoming, 0),
    LS_ROUTE("GET", "/lessons/{lesson_id:uuid}", lessons_get, 0),
    LS_ROUTE("POST", "/lessons/{lesson_id:uuid}/cancel", lessons_cancel, 0),
    LS_ROUTE("POST", "/lessons/{lesson_id:uuid}/reschedule", lessons_reschedule, 0),
    LS_ROUTE("PUT", "/lessons/{lesson_id:uuid}/attendance/{telegram_id:id}", lessons_attendance_put, 0),
    LS_ROUTE("GET", "/teachers/{telegram_id:id}/schedule", schedule_get, 0),
    LS_ROUTE("PUT", "/teachers/{telegram_id:id}/schedule", schedule_put, 0),
    LS_ROUTE("POST", "/teachers/{telegram_id:id}/unavailable", unavailable_add, 0),
    LS_ROUTE("GET", "/teachers/{telegram_id:id}/unavailable", unavailable_list, 0),
    LS_ROUTE("DELETE", "/teachers/{telegram_id:id}/unavailable/{id:uuid}", unavailable_delete, 0),
};

/* Each worker delivers the notifications its own commits queue (and any others that are due). */
static const ls_daemon_outbox_target_t outbox_targets[] = {{CAL_NOTIFY_TARGET, &config.notification_url}};

static const ls_daemon_t daemon_spec = {
    .name = "calendar-service",
    .summary = "lessons (checked with teachers-, groups- and students-service), attendance, teachers'"
               " availability; participants notified through notification-service; ended lessons completed",
    .config_fields = config_fields,
    .nconfig_fields = sizeof(config_fields) / sizeof(config_fields[0]),
    .config = &config,
    .common = &config.common,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .stmts = calendar_statements,
    .nstmts = STMT_COUNT,
    .uses_http = 1,
    .on_worker_start = calendar_sweep_start,
    .on_worker_stop = calendar_sweep_stop,
    .outbox = {.targets = outbox_targets,
               .ntargets = sizeof(outbox_targets) / sizeof(outbox_targets[0]),
               .poll_ms = &config.outbox_poll_ms},
};

int main(int argc, char **argv)
{
    ls_idem_configure(STMT_IDEM, &config.idempotency_ttl_s);
    return ls_daemon_main(&daemon_spec, argc, argv);
}
