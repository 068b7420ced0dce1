/* teachers-service: teacher profiles and the languages they teach. See teachers.h for the API. */
#include "teachers.h"

static teachers_config_t config;

static const ls_cfg_field_t config_fields[] = {
    LS_DAEMON_CONFIG_FIELDS(teachers_config_t, common, "127.0.0.1:8082", LS_MIGRATIONS_DEFAULT),
    LS_IDEM_CONFIG_FIELD(teachers_config_t, idempotency_ttl_s),
};

static const ls_route_t routes[] = {
    LS_ROUTE("GET", "/teachers", teachers_batch, 0),
    LS_ROUTE("GET", "/teachers/search", teachers_search, 0),
    LS_ROUTE("GET", "/teachers/{telegram_id:id}", teachers_get, 0),
    LS_ROUTE("PUT", "/teachers/{telegram_id:id}", teachers_put, 0),
    LS_ROUTE("PUT", "/teachers/{telegram_id:id}/languages/{code:str}", languages_put, 0),
    LS_ROUTE("DELETE", "/teachers/{telegram_id:id}/languages/{code:str}", languages_delete, 0),
};

static const ls_daemon_t daemon_spec = {
    .name = "teachers-service",
    .summary = "teacher profiles keyed by telegram_id and the languages (CEFR levels) they teach",
    .config_fields = config_fields,
    .nconfig_fields = sizeof(config_fields) / sizeof(config_fields[0]),
    .config = &config,
    .common = &config.common,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .stmts = teachers_statements,
    .nstmts = STMT_COUNT,
};

int main(int argc, char **argv)
{
    ls_idem_configure(STMT_IDEM, &config.idempotency_ttl_s);
    return ls_daemon_main(&daemon_spec, argc, argv);
}
