/* students-service: student profiles, languages and group enrollments. See students.h for the API. */
#include "students.h"

static students_config_t config;

static const ls_cfg_field_t config_fields[] = {
    LS_DAEMON_CONFIG_FIELDS(students_config_t, common, "127.0.0.1:8083", LS_MIGRATIONS_DEFAULT),
    LS_IDEM_CONFIG_FIELD(students_config_t, idempotency_ttl_s),
};

static const ls_route_t routes[] = {
    LS_ROUTE("GET", "/students", students_batch, 0),
    LS_ROUTE("GET", "/students/{telegram_id:id}", students_get, 0),
    LS_ROUTE("PUT", "/students/{telegram_id:id}", students_put, 0),
    LS_ROUTE("PUT", "/students/{telegram_id:id}/languages/{code:str}", students_language_put, 0),
    LS_ROUTE("DELETE", "/students/{telegram_id:id}/languages/{code:str}", students_language_delete, 0),
    LS_ROUTE("GET", "/students/{telegram_id:id}/enrollments", enrollments_of_student, 0),
    LS_ROUTE("PUT", "/students/{telegram_id:id}/enrollments/{group_id:uuid}", enrollments_put, 0),
    LS_ROUTE("DELETE", "/students/{telegram_id:id}/enrollments/{group_id:uuid}", enrollments_delete, 0),
    LS_ROUTE("GET", "/enrollments", enrollments_of_group, 0),
};

static const ls_daemon_t daemon_spec = {
    .name = "students-service",
    .summary = "student profiles, the languages they learn and their group enrollments",
    .config_fields = config_fields,
    .nconfig_fields = sizeof(config_fields) / sizeof(config_fields[0]),
    .config = &config,
    .common = &config.common,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .stmts = students_statements,
    .nstmts = STMT_COUNT,
};

int main(int argc, char **argv)
{
    ls_idem_configure(STMT_IDEM, &config.idempotency_ttl_s);
    return ls_daemon_main(&daemon_spec, argc, argv);
}
