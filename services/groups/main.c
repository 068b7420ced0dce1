/* groups-service: study groups, members, invitations and progress. See groups.h for the API. */
#include "groups.h"

static groups_config_t config;

static const ls_cfg_field_t config_fields[] = {
    LS_DAEMON_CONFIG_FIELDS(groups_config_t, common, "127.0.0.1:8084", LS_MIGRATIONS_DEFAULT),
    LS_IDEM_CONFIG_FIELD(groups_config_t, idempotency_ttl_s),
    {"STUDENTS_URL", LS_CFG_URL, "http://127.0.0.1:8083", 0, 0, offsetof(groups_config_t, students_url),
     "students-service, where joins and leaves are recorded as enrollments (through the outbox)"},
    {"OUTBOX_POLL_MS", LS_CFG_INT, "5000", 10, 60000, offsetof(groups_config_t, outbox_poll_ms),
     "how often each worker looks for outbox rows that are due (a commit also wakes it)"},
};

static const ls_route_t routes[] = {
    LS_ROUTE("POST", "/groups", groups_create, 0),
    LS_ROUTE("GET", "/groups", groups_list, 0),
    LS_ROUTE("GET", "/groups/search", groups_search, 0),
    LS_ROUTE("GET", "/groups/{group_id:uuid}", groups_get, 0),
    LS_ROUTE("PATCH", "/groups/{group_id:uuid}", groups_patch, 0),
    LS_ROUTE("GET", "/groups/{group_id:uuid}/members", members_list, 0),
    LS_ROUTE("DELETE", "/groups/{group_id:uuid}/members/{telegram_id:id}", members_remove, 0),
    LS_ROUTE("POST", "/groups/{group_id:uuid}/invitations", invitations_create, 0),
    LS_ROUTE("GET", "/groups/{group_id:uuid}/invitations", invitations_list, 0),
    LS_ROUTE("DELETE", "/groups/{group_id:uuid}/invitations/{code:str}", invitations_revoke, 0),
    LS_ROUTE("PUT", "/groups/{group_id:uuid}/progress", groups_progress_put, 0),
    LS_ROUTE("POST", "/join/{code:str}", groups_join, 0),
    LS_ROUTE("PUT", "/groups/{group_id:uuid}/paid_members/{payment_id:uuid}", paid_members_put, 0),
    LS_ROUTE("DELETE", "/groups/{group_id:uuid}/paid_members/{payment_id:uuid}", paid_members_delete, 0),
};

/* Each worker delivers the outbox rows its own commits add (and any others that are due). */
static const ls_daemon_outbox_target_t outbox_targets[] = {{"students", &config.students_url}};

static const ls_daemon_t daemon_spec = {
    .name = "groups-service",
    .summary = "study groups: members, invitation codes, progress; enrollments go to students-service",
    .config_fields = config_fields,
    .nconfig_fields = sizeof(config_fields) / sizeof(config_fields[0]),
    .config = &config,
    .common = &config.common,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .stmts = groups_statements,
    .nstmts = STMT_COUNT,
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
