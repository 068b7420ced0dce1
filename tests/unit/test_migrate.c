/*
 * migrate: scanning a folder (pure), and applying against real PostgreSQL through the harness
 * (run through tests/run, which provides the cluster).
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "log.h"
#include "loop.h"
#include "migrate.h"

/* ---- temp folders ----------------------------------------------------------------------------- */

static char *make_dir(void)
{
    char *dir = strdup("/tmp/ls-migrate-test-XXXXXX");
    cr_assert_not_null(dir);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp");
    return dir;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp, "cannot write %s", path);
    cr_assert_eq(fwrite(text, 1, strlen(text), fp), strlen(text));
    cr_assert_eq(fclose(fp), 0);
}

static void remove_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    cr_assert_eq(unlink(path), 0, "unlink %s", path);
}

static void remove_dir(char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            char path[512];
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

static void checksum_of(const char *text, char hex[65])
{
    ls_migrate_checksum(text, strlen(text), hex);
}

/* ---- checksum and scan ------------------------------------------------------------------------ */

Test(migrate_scan, checksum_known_vectors)
{
    char hex[65];
    checksum_of("abc", hex);
    cr_expect_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    checksum_of("", hex);
    cr_expect_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(migrate_scan, sorts_numerically_and_ignores_other_files)
{
    char *dir = make_dir();
    write_file(dir, "10_ten.sql", "SELECT 10;");
    write_file(dir, "2_two.sql", "SELECT 2;");
    write_file(dir, "001_one.sql", "SELECT 1;");
    /* None of these match ^[0-9]+_.+\.sql$. */
    write_file(dir, "README.md", "notes");
    write_file(dir, "3_.sql", "SELECT 3;");
    write_file(dir, "4_four.sql.bak", "SELECT 4;");
    write_file(dir, "_5.sql", "SELECT 5;");
    write_file(dir, "6six.sql", "SELECT 6;");
    write_file(dir, "x7_seven.sql", "SELECT 7;");
    write_file(dir, "8_eight.SQL", "SELECT 8;");

    ls_migration_t *m = NULL;
    size_t n = 0;
    char err[256] = "";
    cr_assert_eq(ls_migrate_scan(dir, &m, &n, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(n, 3);
    static const struct {
        long long version;
        const char *name, *text;
    } want[] = {
        {1, "001_one.sql", "SELECT 1;"}, {2, "2_two.sql", "SELECT 2;"}, {10, "10_ten.sql", "SELECT 10;"}};
    for (size_t i = 0; i < 3; i++) {
        char hex[65];
        checksum_of(want[i].text, hex);
        cr_expect_eq(m[i].version, want[i].version, "[%zu]", i);
        cr_expect_str_eq(m[i].name, want[i].name, "[%zu]", i);
        cr_expect_str_eq(m[i].checksum, hex, "[%zu]", i);
    }
    free(m);
    remove_dir(dir);
}

Test(migrate_scan, empty_folder)
{
    char *dir = make_dir();
    ls_migration_t *m = (ls_migration_t *)1;
    size_t n = 99;
    char err[256] = "";
    cr_assert_eq(ls_migrate_scan(dir, &m, &n, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(n, 0);
    free(m);
    remove_dir(dir);
}

Test(migrate_scan, rejects_duplicate_versions)
{
    char *dir = make_dir();
    write_file(dir, "1_users.sql", "SELECT 1;");
    write_file(dir, "001_accounts.sql", "SELECT 1;");
    write_file(dir, "2_other.sql", "SELECT 2;");
    ls_migration_t *m = NULL;
    size_t n = 0;
    char err[256] = "";
    cr_assert_eq(ls_migrate_scan(dir, &m, &n, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "migrations 001_accounts.sql and 1_users.sql have the same version 1");
    cr_expect_null(m);
    cr_expect_eq(n, 0);
    remove_dir(dir);
}

Test(migrate_scan, rejects_oversized_file)
{
    char *dir = make_dir();
    char path[512];
    write_file(dir, "1_big.sql", "");
    snprintf(path, sizeof(path), "%s/1_big.sql", dir);
    cr_assert_eq(truncate(path, LS_MIGRATE_MAX_FILE_SIZE + 1), 0);
    ls_migration_t *m = NULL;
    size_t n = 0;
    char err[256] = "";
    cr_assert_eq(ls_migrate_scan(dir, &m, &n, err, sizeof(err)), -1);
    cr_expect(strstr(err, "1_big.sql") != NULL && strstr(err, "more than") != NULL, "%s", err);

    /* Exactly the limit is fine (spaces: a NUL byte is refused on its own). */
    char *big = malloc(LS_MIGRATE_MAX_FILE_SIZE + 1);
    cr_assert_not_null(big);
    memset(big, ' ', LS_MIGRATE_MAX_FILE_SIZE);
    big[LS_MIGRATE_MAX_FILE_SIZE] = '\0';
    write_file(dir, "1_big.sql", big);
    free(big);
    cr_assert_eq(ls_migrate_scan(dir, &m, &n, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(n, 1);
    free(m);
    remove_dir(dir);
}

Test(migrate_scan, rejects_nul_byte)
{
    char *dir = make_dir();
    char path[512];
    snprintf(path, sizeof(path), "%s/1_nul.sql", dir);
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    fwrite("SELECT 1;\0DROP TABLE x;", 1, 24, fp);
    fclose(fp);
    ls_migration_t *m = NULL;
    size_t n = 0;
    char err[256] = "";
    cr_assert_eq(ls_migrate_scan(dir, &m, &n, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "migration 1_nul.sql contains a NUL byte");
    remove_dir(dir);
}

Test(migrate_scan, rejects_version_overflow_and_missing_folder)
{
    char *dir = make_dir();
    write_file(dir, "99999999999999999999_huge.sql", "SELECT 1;");
    ls_migration_t *m = NULL;
    size_t n = 0;
    char err[256] = "";
    cr_expect_eq(ls_migrate_scan(dir, &m, &n, err, sizeof(err)), -1);
    cr_expect(strstr(err, "99999999999999999999_huge.sql") != NULL, "%s", err);
    remove_dir(dir);

    cr_expect_eq(ls_migrate_scan("/nonexistent/ls-migrations", &m, &n, err, sizeof(err)), -1);
    cr_expect(strstr(err, "/nonexistent/ls-migrations") != NULL, "%s", err);
}

/* ---- against PostgreSQL ----------------------------------------------------------------------- */

typedef struct {
    char *conninfo;
    char *dbname;
    char *dir;
    char err[512]; /* the last run's message */
} fixture_t;

static void fixture_open(fixture_t *f)
{
    f->conninfo = lst_db_create("migrate", &f->dbname);
    f->dir = make_dir();
    f->err[0] = '\0';
}

static void fixture_close(fixture_t *f)
{
    free(f->conninfo);
    free(f->dbname);
    remove_dir(f->dir);
}

/* Every test of the suite starts with a fresh database and an empty folder. */
static fixture_t fx;

static void suite_open(void)
{
    fixture_open(&fx);
}

static void suite_close(void)
{
    fixture_close(&fx);
}

TestSuite(migrate_db, .init = suite_open, .fini = suite_close);

/* Runs the migrations of f's folder: ls_migrate_run must return want (the files applied, or -1). */
static void migrate(fixture_t *f, int want)
{
    cr_assert_eq(ls_migrate_run(f->conninfo, f->dir, 0, f->err, sizeof(f->err)), want, "%s", f->err);
}

/* First column of the first row of sql on the fixture's database (malloc'ed). */
static char *query(const fixture_t *f, const char *sql)
{
    return lst_pg_admin_exec(f->dbname, sql);
}

static void expect_query(const fixture_t *f, const char *sql, const char *want)
{
    char *got = query(f, sql);
    cr_expect_str_eq(got, want, "%s", sql);
    free(got);
}

Test(migrate_db, applies_in_order_records_checksums_and_is_idempotent)
{
    /* 10 needs 2, which needs 1: a lexical order (10 before 2) would fail. */
    static const char *const names[] = {"1_people.sql", "2_pets.sql", "10_seed.sql"};
    static const char *const texts[] = {
        "CREATE TABLE people (id INT PRIMARY KEY, name TEXT NOT NULL);\n",
        "CREATE TABLE pets (id INT PRIMARY KEY, owner INT NOT NULL REFERENCES people(id));\n"
        "INSERT INTO people VALUES (1, 'Ann');\n",
        "INSERT INTO pets VALUES (7, 1);\nINSERT INTO pets VALUES (8, 1);\n",
    };
    for (size_t i = 0; i < 3; i++)
        write_file(fx.dir, names[i], texts[i]);

    migrate(&fx, 3);
    expect_query(&fx, "SELECT count(*) FROM pets", "2");
    expect_query(&fx,
                 "SELECT string_agg(version || ':' || name, ',' ORDER BY version) FROM schema_migrations",
                 "1:1_people.sql,2:2_pets.sql,10:10_seed.sql");
    /* Applied in version order: applied_at never decreases along the versions. */
    expect_query(&fx,
                 "SELECT bool_and(ok) FROM (SELECT applied_at >= lag(applied_at, 1, '-infinity') "
                 "OVER (ORDER BY version) AS ok FROM schema_migrations) s",
                 "t");
    for (size_t i = 0; i < 3; i++) {
        char hex[65], sql[256];
        checksum_of(texts[i], hex);
        snprintf(sql, sizeof(sql), "SELECT checksum FROM schema_migrations WHERE name = '%s'", names[i]);
        expect_query(&fx, sql, hex);
    }

    /* Again: nothing pending, nothing re-run (re-running 10 would violate the pets primary key). */
    migrate(&fx, 0);
    expect_query(&fx, "SELECT count(*) FROM schema_migrations", "3");

    /* A new file is picked up on the next run. */
    write_file(fx.dir, "11_more.sql", "INSERT INTO pets VALUES (9, 1);");
    migrate(&fx, 1);
    expect_query(&fx, "SELECT count(*) FROM pets", "3");
}

Test(migrate_db, changed_applied_file_is_an_error_naming_it)
{
    write_file(fx.dir, "001_users.sql", "CREATE TABLE users (id INT);");
    write_file(fx.dir, "002_more.sql", "CREATE TABLE more (id INT);");
    migrate(&fx, 2);

    char old_hex[65], new_hex[65];
    checksum_of("CREATE TABLE users (id INT);", old_hex);
    checksum_of("CREATE TABLE users (id BIGINT);", new_hex);
    write_file(fx.dir, "001_users.sql", "CREATE TABLE users (id BIGINT);");
    write_file(fx.dir, "003_later.sql", "CREATE TABLE later (id INT);");
    migrate(&fx, -1);
    char want[512];
    snprintf(want, sizeof(want),
             "migration 001_users.sql was changed after it was applied (checksum %s, recorded %s)", new_hex,
             old_hex);
    cr_expect_str_eq(fx.err, want);
    /* The row is untouched and nothing after it ran. */
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT checksum FROM schema_migrations WHERE version = 1");
    expect_query(&fx, sql, old_hex);
    expect_query(&fx, "SELECT count(*) FROM schema_migrations", "2");
    expect_query(&fx, "SELECT count(*) FROM pg_tables WHERE tablename = 'later'", "0");
}

Test(migrate_db, failing_file_is_named_and_rolled_back)
{
    write_file(fx.dir, "1_ok.sql", "CREATE TABLE ok (id INT);");
    write_file(fx.dir, "2_bad.sql",
               "CREATE TABLE half (id INT);\n"
               "INSERT INTO ok VALUES (1);\n"
               "INSERT INTO nosuchtable VALUES (1);\n");
    write_file(fx.dir, "3_after.sql", "CREATE TABLE after_bad (id INT);");
    migrate(&fx, -1);
    cr_expect(strncmp(fx.err, "migration 2_bad.sql failed: line 3: ", 36) == 0, "%s", fx.err);
    cr_expect(strstr(fx.err, "relation \"nosuchtable\" does not exist") != NULL, "PostgreSQL's message: %s",
              fx.err);

    /* The earlier file stays; nothing of the failing one, nothing after it. */
    expect_query(&fx, "SELECT string_agg(name, ',') FROM schema_migrations", "1_ok.sql");
    expect_query(&fx, "SELECT count(*) FROM pg_tables WHERE tablename IN ('half', 'after_bad')", "0");
    expect_query(&fx, "SELECT count(*) FROM ok", "0");

    /* Fixed, it applies on the next start, and so does the file after it. */
    write_file(fx.dir, "2_bad.sql", "CREATE TABLE half (id INT);");
    migrate(&fx, 2);
    expect_query(&fx, "SELECT string_agg(name, ',' ORDER BY version) FROM schema_migrations",
                 "1_ok.sql,2_bad.sql,3_after.sql");
}

Test(migrate_db, transaction_control_in_a_file_is_rejected)
{
    static const struct {
        const char *text;
        const char *word;
        int line;
    } cases[] = {
        {"CREATE TABLE t1 (id INT);\nCOMMIT;\n", "COMMIT", 2},
        {"begin;\nCREATE TABLE t1 (id INT);\n", "begin", 1},
        {"CREATE TABLE t1 (id INT);\n/* x */ ROLLBACK;", "ROLLBACK", 2},
        {"START TRANSACTION;", "START", 1},
        {"CREATE TABLE t1 (id INT); END", "END", 1},
        {"CREATE TABLE t1 (id INT);\n-- note\nPREPARE TRANSACTION 'x';", "PREPARE", 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fixture_t f;
        fixture_open(&f);
        write_file(f.dir, "1_tx.sql", cases[i].text);
        char err[512] = "", want[256];
        cr_expect_eq(ls_migrate_run(f.conninfo, f.dir, 0, err, sizeof(err)), -1, "[%zu]", i);
        snprintf(
            want, sizeof(want),
            "migration 1_tx.sql, line %d: %s is not allowed; each migration already runs in one transaction",
            cases[i].line, cases[i].word);
        cr_expect_str_eq(err, want, "[%zu]", i);
        expect_query(&f, "SELECT count(*) FROM pg_tables WHERE tablename = 't1'", "0");
        expect_query(&f, "SELECT count(*) FROM schema_migrations", "0");
        fixture_close(&f);
    }
}

Test(migrate_db, begin_and_end_inside_bodies_strings_and_comments_are_fine)
{
    write_file(fx.dir, "1_bodies.sql",
               "-- COMMIT; in a comment\n"
               "/* ROLLBACK; /* nested */ BEGIN; */\n"
               "CREATE TABLE notes (body TEXT);\n"
               "INSERT INTO notes VALUES ('COMMIT; BEGIN;'), (E'it\\'s; END'), ($q$ ; ROLLBACK; $q$);\n"
               "DO $$\nBEGIN\n  INSERT INTO notes VALUES ('from do');\nEND\n$$;\n"
               "CREATE FUNCTION twice(x INT) RETURNS INT LANGUAGE plpgsql AS $fn$\n"
               "BEGIN\n  RETURN x * 2;\nEND;\n$fn$;\n"
               "CREATE FUNCTION thrice(x INT) RETURNS INT LANGUAGE sql\n"
               "BEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN x * 3 ELSE 0 END;\nEND;\n"
               "CREATE TABLE \"commit\" (id INT);\n");
    migrate(&fx, 1);
    expect_query(&fx, "SELECT count(*) FROM notes", "4");
    expect_query(&fx, "SELECT twice(2) + thrice(2)", "10");
}

Test(migrate_db, applied_migration_without_file_is_only_a_warning)
{
    write_file(fx.dir, "1_a.sql", "CREATE TABLE a (id INT);");
    write_file(fx.dir, "2_b.sql", "CREATE TABLE b (id INT);");
    migrate(&fx, 2);
    remove_file(fx.dir, "1_a.sql");
    write_file(fx.dir, "3_c.sql", "CREATE TABLE c (id INT);");
    migrate(&fx, 1);
    expect_query(&fx, "SELECT count(*) FROM schema_migrations", "3");
}

Test(migrate_db, empty_folder_creates_only_the_table)
{
    migrate(&fx, 0);
    expect_query(&fx, "SELECT count(*) FROM schema_migrations", "0");
}

Test(migrate_db, unreachable_database_is_a_clear_error)
{
    char err[512] = "";
    cr_assert_eq(ls_migrate_run("host=127.0.0.1 port=1 user=nobody password=hunter2secret connect_timeout=2",
                                fx.dir, 0, err, sizeof(err)),
                 -1);
    cr_expect(strncmp(err, "migrations: cannot connect to PostgreSQL: ", 42) == 0, "%s", err);
    cr_expect_null(strstr(err, "hunter2secret"), "password leaked: %s", err);
    cr_expect_null(strchr(err, '\n'), "one line: %s", err);
}

Test(migrate_db, unreachable_database_is_waited_for_then_a_clear_error)
{
    char err[512] = "";
    uint64_t t0 = ls_now_ms();
    cr_assert_eq(ls_migrate_run("host=127.0.0.1 port=1 user=nobody password=hunter2secret", fx.dir, 1200, err,
                                sizeof(err)),
                 -1);
    uint64_t took = ls_now_ms() - t0;
    /* attempts at 0, 250, 750 ms and one at the deadline (the last pause is cut to the time left) */
    cr_expect_geq(took, 1200, "waited %llu ms", (unsigned long long)took);
    cr_expect_lt(took, 4000, "waited %llu ms", (unsigned long long)took);
    const char *head = "migrations: PostgreSQL not reachable within DATABASE_WAIT_MS=1200 ms (";
    cr_assert(strncmp(err, head, strlen(head)) == 0, "%s", err);
    int attempts = atoi(err + strlen(head));
    cr_expect(attempts >= 3 && attempts <= 5, "retried with backoff: %s", err);
    cr_expect_neq(strstr(err, "127.0.0.1"), NULL, "the reason names the server: %s", err);
    cr_expect_null(strstr(err, "hunter2secret"), "password leaked: %s", err);
}

struct racer {
    const char *conninfo, *dir;
    pthread_barrier_t *start;
    int rc;
    char err[512];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->start);
    r->rc = ls_migrate_run(r->conninfo, r->dir, 0, r->err, sizeof(r->err));
    return NULL;
}

Test(migrate_db, replicas_starting_together_apply_each_file_once)
{
    /* Not idempotent on purpose: a second application would fail. The sleep widens the window in
     * which the other replica must wait for the lock. */
    write_file(fx.dir, "1_slow.sql", "CREATE TABLE once_a (id INT);\nSELECT pg_sleep(0.3);\n");
    write_file(fx.dir, "2_b.sql", "CREATE TABLE once_b (id INT);\nINSERT INTO once_b VALUES (1);\n");
    write_file(fx.dir, "3_c.sql", "CREATE TYPE mood AS ENUM ('ok', 'sad');\n");

    enum { N = 3 };
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    struct racer r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        r[i] = (struct racer){.conninfo = fx.conninfo, .dir = fx.dir, .start = &start, .rc = -2};
        cr_assert_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        cr_expect_geq(r[i].rc, 0, "replica %d failed: %s", i, r[i].err);
        total += r[i].rc;
    }
    pthread_barrier_destroy(&start);
    cr_expect_eq(total, 3, "each file applied exactly once in all");
    expect_query(&fx, "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations",
                 "1,2,3");
    expect_query(&fx, "SELECT count(*) FROM once_b", "1");
}
