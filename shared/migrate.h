/*
 * migrate: forward-only SQL migrations, applied at start-up (docs/ARCHITECTURE.md §9).
 *
 * A migrations folder holds files named NNN_name.sql (NNN: one or more digits; files not matching
 * are ignored). ls_migrate_run() connects with the given conninfo (blocking: it runs before the
 * daemon serves; a database not up yet is waited for up to wait_ms, dbwait.h), takes a session advisory lock
 * so that replicas starting together apply each file once, creates schema_migrations if needed, and for every
 * file in numeric order:
 *   - applied before: its SHA-256 must equal the recorded checksum, else it fails naming the file;
 *   - new: runs the file and records (version, name, checksum) in one transaction.
 * Two files with the same number, an unreadable file or a failing statement stop it with a clear
 * message. It never changes an applied migration's row.
 *
 *   schema_migrations(version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,
 *                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
 */
#ifndef LS_MIGRATE_H
#define LS_MIGRATE_H

#include <stddef.h>

#define LS_MIGRATE_MAX_FILES     1000
#define LS_MIGRATE_MAX_FILE_SIZE (4 * 1024 * 1024)

typedef struct {
    long long version;
    char name[256];    /* file name, e.g. "001_users.sql" */
    char checksum[65]; /* lowercase hex SHA-256 of the file's bytes */
} ls_migration_t;

/* Lists the folder's migrations sorted by version. *out is malloc'ed (caller frees) and may be NULL
 * when *n is 0. Returns 0, or -1 with err filled (unreadable folder, duplicate version, too big). */
int ls_migrate_scan(const char *dir, ls_migration_t **out, size_t *n, char *err, size_t errlen);

/* Hex SHA-256 of a buffer. */
void ls_migrate_checksum(const void *data, size_t len, char hex[65]);

/* Applies what is pending, after waiting up to wait_ms (DATABASE_WAIT_MS; 0: no wait) for the
 * database to accept a connection. Returns the number applied (>= 0), or -1 with err filled. */
int ls_migrate_run(const char *conninfo, const char *dir, long long wait_ms, char *err, size_t errlen);

#endif
