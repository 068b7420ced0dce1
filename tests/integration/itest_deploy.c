/*
 * The databases deploy/local/up provisions: one role per service, and a role can connect to its own
 * database only. Runs the deploy library's own provisioning function against the test cluster.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

/* Provisions database+role `name` with `password` through deploy/local/lib.sh. */
static void provision(const char *name, const char *password)
{
    char cmd[2048];
    snprintf(
        cmd, sizeof(cmd),
        "bash -c 'set -e; . \"%s/deploy/local/lib.sh\"; LS_PG_BIN=\"%s\" LS_PG_SOCK=\"%s\" LS_PG_PORT=%s "
        "LS_PG_SUPERUSER=\"%s\" LS_PG_PASSWORD=\"%s\"; ls_pg_provision_db %s %s'",
        lst_env("LS_TEST_SOURCE_DIR"), lst_env("LS_TEST_PGBIN"), lst_env("LS_TEST_PGHOST"),
        lst_env("LS_TEST_PGPORT"), lst_env("LS_TEST_PGUSER"), lst_env("LS_TEST_PGPASSWORD"), name, password);
    cr_assert_eq(system(cmd), 0, "provisioning %s failed", name);
}

/* 1 when `role` with `password` can open a session on `db`. */
static int can_connect(const char *role, const char *password, const char *db)
{
    char conninfo[1024];
    snprintf(conninfo, sizeof(conninfo), "host=%s port=%s user=%s password=%s dbname=%s connect_timeout=5",
             lst_env("LS_TEST_PGHOST"), lst_env("LS_TEST_PGPORT"), role, password, db);
    PGconn *conn = PQconnectdb(conninfo);
    int ok = PQstatus(conn) == CONNECTION_OK;
    PQfinish(conn);
    return ok;
}

Test(deploy, a_service_role_reaches_only_its_own_database, .timeout = 60)
{
    char *suffix = lst_random_hex(4);
    char a[64], b[64];
    snprintf(a, sizeof(a), "svc_a_%s", suffix);
    snprintf(b, sizeof(b), "svc_b_%s", suffix);
    char *pw_a = lst_random_hex(16), *pw_b = lst_random_hex(16);

    provision(a, pw_a);
    provision(b, pw_b);
    cr_expect(can_connect(a, pw_a, a), "role %s cannot reach its own database", a);
    cr_expect(can_connect(b, pw_b, b), "role %s cannot reach its own database", b);
    cr_expect(!can_connect(a, pw_a, b), "role %s reached database %s", a, b);
    cr_expect(!can_connect(b, pw_b, a), "role %s reached database %s", b, a);
    cr_expect(!can_connect(a, pw_b, a), "a wrong password was accepted");

    /* Provisioning again (deploy/local/up run twice) keeps working and keeps the isolation. */
    provision(a, pw_a);
    cr_expect(can_connect(a, pw_a, a));
    cr_expect(!can_connect(a, pw_a, b));

    free(suffix);
    free(pw_a);
    free(pw_b);
}

/* Runs a bash snippet with deploy/local/lib.sh loaded; returns its exit status. */
static int lib_sh(const char *snippet)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "bash -c 'set -e; . \"%s/deploy/local/lib.sh\"; %s'",
             lst_env("LS_TEST_SOURCE_DIR"), snippet);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* deploy/local/up puts the services' Unix sockets in the state folder, or in /tmp when that path
 * would not fit a socket address. */
Test(deploy, unix_socket_folder_falls_back_to_tmp_when_too_long)
{
    cr_expect_eq(lib_sh("[[ $(ls_unix_socket_dir /srv/ls/run notification.sock) == /srv/ls/run ]]"), 0);
    cr_expect_eq(lib_sh("d=/$(printf %0100d 0); r=$(ls_unix_socket_dir $d notification.sock); "
                        "[[ $r == /tmp/ls-run-* && -d $r ]] && ls_unix_socket_fits $r/notification.sock; "
                        "rmdir $r"),
                 0);
    cr_expect_eq(lib_sh("ls_unix_socket_fits /$(printf %0106d 0)"), 0, "107 bytes fit");
    cr_expect_neq(lib_sh("ls_unix_socket_fits /$(printf %0107d 0)"), 0, "108 bytes do not");
}
