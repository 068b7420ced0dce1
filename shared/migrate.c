/*
 * Forward-only migrations (docs/ARCHITECTURE.md §9). Runs once at start-up, before the daemon serves, so it
 * uses blocking libpq on its own connection.
 *
 * Every pending file runs inside a transaction that this module opens, together with the row that
 * records it. A file must therefore not contain its own transaction control (BEGIN, START
 * TRANSACTION, COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION) at the top level: such a file
 * is rejected before anything of it runs. BEGIN ... END inside a function body ($$ ... $$) or a
 * BEGIN ATOMIC body is fine. Statements that cannot run in a transaction block (CREATE INDEX
 * CONCURRENTLY, VACUUM) fail with PostgreSQL's own message.
 */
#include "migrate.h"

#include "dbwait.h"
#include "errbuf.h"
#include "log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

/* "LSMIGRAT" as a big-endian 64-bit integer: one key for every database, since advisory locks are
 * per database and each service migrates only its own. */
#define LOCK_KEY "5499824547074031956"

void ls_migrate_checksum(const void *data, size_t len, char hex[65])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    /* Idempotent and thread-safe. If it ever failed, an empty checksum matches nothing recorded. */
    if (sodium_init() < 0) {
        hex[0] = '\0';
        return;
    }
    crypto_hash_sha256(digest, data, len);
    sodium_bin2hex(hex, 65, digest, sizeof(digest));
}

/* 1: name matches ^[0-9]+_.+\.sql$ (version set); 0: not a migration; -1: version overflows. */
static int parse_name(const char *name, long long *version)
{
    size_t len = strlen(name);
    size_t digits = strspn(name, "0123456789");
    if (digits == 0 || name[digits] != '_')
        return 0;
    if (len < digits + 1 + 1 + 4 || strcmp(name + len - 4, ".sql") != 0)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(name, &end, 10);
    if (errno != 0 || end != name + digits)
        return -1;
    *version = v;
    return 1;
}

/* Reads a whole migration file into a NUL-terminated heap buffer. */
static int read_file(const char *dir, const char *name, char **out, size_t *outlen, char *err, size_t errlen)
{
    char path[PATH_MAX];
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd = -1;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        set_err(err, errlen, "migration %s: path too long", name);
        goto fail;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 || fstat(fd, &st) != 0) {
        set_err(err, errlen, "cannot read migration %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "cannot read migration %s: not a regular file", path);
        goto fail;
    }
    if (st.st_size > LS_MIGRATE_MAX_FILE_SIZE) {
        set_err(err, errlen, "migration %s is %lld bytes, more than the %d allowed", name,
                (long long)st.st_size, LS_MIGRATE_MAX_FILE_SIZE);
        goto fail;
    }
    /* One byte more than the size, so that a file growing while we read is noticed. */
    if ((buf = malloc((size_t)st.st_size + 2)) == NULL) {
        set_err(err, errlen, "migration %s: out of memory", name);
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, (size_t)st.st_size + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            set_err(err, errlen, "cannot read migration %s: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > (size_t)st.st_size) {
            set_err(err, errlen, "migration %s changed while being read", name);
            goto fail;
        }
    }
    buf[len] = '\0';
    /* The text goes to PQexec as a C string: a NUL would silently cut the file short. */
    if (memchr(buf, '\0', len) != NULL) {
        set_err(err, errlen, "migration %s contains a NUL byte", name);
        goto fail;
    }
    close(fd);
    *out = buf;
    *outlen = len;
    return 0;

fail:
    if (fd != -1)
        close(fd);
    free(buf);
    return -1;
}

static int by_version(const void *a, const void *b)
{
    const ls_migration_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

int ls_migrate_scan(const char *dir, ls_migration_t **out, size_t *n, char *err, size_t errlen)
{
    ls_migration_t *list = NULL;
    size_t count = 0, cap = 0;
    DIR *d = NULL;
    struct dirent *de;

    *out = NULL;
    *n = 0;
    if (sodium_init() < 0) {
        set_err(err, errlen, "libsodium failed to initialise");
        goto fail;
    }
    if ((d = opendir(dir)) == NULL) {
        set_err(err, errlen, "cannot open migrations folder %s: %s", dir, strerror(errno));
        goto fail;
    }
    for (errno = 0; (de = readdir(d)) != NULL; errno = 0) {
        long long version;
        int m = parse_name(de->d_name, &version);
        if (m == 0)
            continue;
        if (m < 0) {
            set_err(err, errlen, "migration %s: version number too large", de->d_name);
            goto fail;
        }
        if (count == LS_MIGRATE_MAX_FILES) {
            set_err(err, errlen, "migrations folder %s holds more than %d migrations", dir,
                    LS_MIGRATE_MAX_FILES);
            goto fail;
        }
        if (count == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            ls_migration_t *nl = realloc(list, ncap * sizeof(*nl));
            if (nl == NULL) {
                set_err(err, errlen, "out of memory scanning %s", dir);
                goto fail;
            }
            list = nl;
            cap = ncap;
        }
        ls_migration_t *mg = &list[count++];
        memset(mg, 0, sizeof(*mg));
        mg->version = version;
        snprintf(mg->name, sizeof(mg->name), "%s", de->d_name);
    }
    if (errno != 0) {
        set_err(err, errlen, "cannot list migrations folder %s: %s", dir, strerror(errno));
        goto fail;
    }
    closedir(d);
    d = NULL;

    if (count > 0)
        qsort(list, count, sizeof(*list), by_version);
    for (size_t i = 1; i < count; i++) {
        if (list[i].version == list[i - 1].version) {
            /* readdir order is arbitrary: name the pair in a stable order. */
            int first = strcmp(list[i - 1].name, list[i].name) < 0;
            set_err(err, errlen, "migrations %s and %s have the same version %lld",
                    list[first ? i - 1 : i].name, list[first ? i : i - 1].name, list[i].version);
            goto fail;
        }
    }
    for (size_t i = 0; i < count; i++) {
        char *text;
        size_t len;
        if (read_file(dir, list[i].name, &text, &len, err, errlen) != 0)
            goto fail;
        ls_migrate_checksum(text, len, list[i].checksum);
        free(text);
    }
    *out = list;
    *n = count;
    return 0;

fail:
    if (d != NULL)
        closedir(d);
    free(list);
    return -1;
}

/* ---- transaction control inside a file -------------------------------------------------------- */

static int ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$' || (unsigned char)c >= 0x80;
}

static int word_is(const char *p, size_t len, const char *w)
{
    return strlen(w) == len && strncasecmp(p, w, len) == 0;
}

/* The word after p (skipping whitespace only), as pointer and length. */
static const char *next_word(const char *p, size_t *len)
{
    while (isspace((unsigned char)*p))
        p++;
    *len = 0;
    while (ident_char(p[*len]))
        (*len)++;
    return p;
}

/*
 * Finds a top-level transaction statement. Knows just enough SQL lexing to skip comments, quoted
 * strings and identifiers, dollar-quoted bodies and BEGIN ATOMIC ... END bodies, where BEGIN and
 * END mean something else. Returns its 1-based line and copies the word, or 0 when there is none.
 */
static int find_transaction_control(const char *sql, char *word, size_t wordlen)
{
    const char *p = sql;
    int line = 1, at_start = 1, atomic_depth = 0;

    while (*p != '\0') {
        char c = *p;
        if (c == '\n')
            line++;
        if (isspace((unsigned char)c)) {
            p++;
        } else if (c == '-' && p[1] == '-') {
            while (*p != '\0' && *p != '\n')
                p++;
        } else if (c == '/' && p[1] == '*') {
            int depth = 0;
            do {
                if (p[0] == '/' && p[1] == '*')
                    depth++, p += 2;
                else if (p[0] == '*' && p[1] == '/')
                    depth--, p += 2;
                else
                    line += *p++ == '\n';
            } while (*p != '\0' && depth > 0);
        } else if (c == ';') {
            if (atomic_depth == 0)
                at_start = 1;
            p++;
        } else if (c == '\'' || c == '"') {
            /* E'...' allows backslash escapes; '' and "" are doubled quotes, lexed as two strings. */
            int escapes = c == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
                          (p - 1 == sql || !ident_char(p[-2]));
            for (p++; *p != '\0' && *p != c; p++) {
                if (escapes && *p == '\\' && p[1] != '\0')
                    p++;
                line += *p == '\n';
            }
            if (*p != '\0')
                p++;
            at_start = 0;
        } else if (c == '$' && (p == sql || !ident_char(p[-1]))) {
            size_t tag = 1;
            if (isalpha((unsigned char)p[1]) || p[1] == '_') {
                while (isalnum((unsigned char)p[tag]) || p[tag] == '_')
                    tag++;
            }
            if (p[tag] == '$') {
                char close[72];
                if (tag + 1 >= sizeof(close))
                    return 0; /* absurd tag: leave it to PostgreSQL */
                memcpy(close, p, tag + 1);
                close[tag + 1] = '\0';
                const char *end = strstr(p + tag + 1, close);
                const char *stop = end ? end + tag + 1 : p + strlen(p);
                for (; p < stop; p++)
                    line += *p == '\n';
            } else {
                p++;
            }
            at_start = 0;
        } else if (ident_char(c)) {
            size_t len = 0, nlen;
            while (ident_char(p[len]))
                len++;
            const char *next = next_word(p + len, &nlen);
            if (atomic_depth > 0) {
                if (word_is(p, len, "BEGIN") || word_is(p, len, "CASE"))
                    atomic_depth++;
                else if (word_is(p, len, "END"))
                    atomic_depth--;
            } else if (word_is(p, len, "BEGIN") && word_is(next, nlen, "ATOMIC")) {
                atomic_depth = 1;
            } else if (at_start &&
                       (word_is(p, len, "BEGIN") || word_is(p, len, "START") || word_is(p, len, "COMMIT") ||
                        word_is(p, len, "END") || word_is(p, len, "ROLLBACK") || word_is(p, len, "ABORT") ||
                        (word_is(p, len, "PREPARE") && word_is(next, nlen, "TRANSACTION")))) {
                snprintf(word, wordlen, "%.*s", (int)len, p);
                return line;
            }
            p += len;
            at_start = 0;
        } else {
            p++;
            at_start = 0;
        }
    }
    return 0;
}

/* ---- running ---------------------------------------------------------------------------------- */

typedef struct {
    const char *current; /* file being applied, for notices */
} run_ctx_t;

/* Server notices would otherwise go to stderr, outside the JSON log. */
static void on_notice(void *arg, const PGresult *res)
{
    const run_ctx_t *ctx = arg;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    ls_log_level_t level = severity != NULL && strcmp(severity, "WARNING") == 0 ? LS_LOG_WARN : LS_LOG_DEBUG;
    ls_log_line_t l;
    if (ls_log_begin(&l, level, NULL, "postgresql notice during migration")) {
        ls_log_str(&l, "migration", ctx->current);
        ls_log_str(&l, "severity", severity);
        ls_log_str(&l, "detail", PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        ls_log_end(&l);
    }
}

/* 1-based line of a 1-based character position (PostgreSQL counts characters, not bytes). */
static int line_of_position(const char *sql, long pos)
{
    int line = 1;
    long chars = 0;
    for (const unsigned char *p = (const unsigned char *)sql; *p != '\0'; p++) {
        if ((*p & 0xC0) != 0x80 && ++chars >= pos)
            break;
        line += *p == '\n';
    }
    return line;
}

/* PostgreSQL's error as one line: message, detail, hint and, when known, the file's line. */
static void describe_pg_error(const PGresult *res, const PGconn *conn, const char *sql, char *buf, size_t len)
{
    char msg[512];
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary == NULL) {
        err_flatten(msg, sizeof(msg), PQerrorMessage(conn));
        snprintf(buf, len, "%s", msg[0] ? msg : "unknown error");
        return;
    }
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    char where[48] = "";
    if (sql != NULL && pos != NULL)
        snprintf(where, sizeof(where), "line %d: ", line_of_position(sql, atol(pos)));
    err_flatten(msg, sizeof(msg), primary);
    int n = snprintf(buf, len, "%s%s", where, msg);
    if (detail != NULL && n >= 0 && (size_t)n < len) {
        err_flatten(msg, sizeof(msg), detail);
        n += snprintf(buf + n, len - (size_t)n, " (%s)", msg);
    }
    if (hint != NULL && n >= 0 && (size_t)n < len) {
        err_flatten(msg, sizeof(msg), hint);
        n += snprintf(buf + n, len - (size_t)n, " hint: %s", msg);
    }
    if (state != NULL && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, " [SQLSTATE %s]", state);
}

/* Runs a statement that returns no rows; -1 with err ("<what>: <message>") on failure. */
static int exec_command(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(res);
        return 0;
    }
    char msg[768];
    describe_pg_error(res, conn, NULL, msg, sizeof(msg));
    set_err(err, errlen, "%s: %s", what, msg);
    PQclear(res);
    return -1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Applies one file and its schema_migrations row in one transaction. */
static int apply_one(PGconn *conn, const char *dir, ls_migration_t *m, char *err, size_t errlen)
{
    char *sql = NULL;
    size_t len;
    int in_tx = 0, rc = -1;
    PGresult *res = NULL;
    char msg[768], word[32];
    double start = now_ms();

    if (read_file(dir, m->name, &sql, &len, err, errlen) != 0)
        goto done;
    /* Record what actually runs, even if the file changed since the scan. */
    ls_migrate_checksum(sql, len, m->checksum);
    int line = find_transaction_control(sql, word, sizeof(word));
    if (line > 0) {
        set_err(err, errlen,
                "migration %s, line %d: %s is not allowed; each migration already runs in one transaction",
                m->name, line, word);
        goto done;
    }

    if (exec_command(conn, "BEGIN", "BEGIN", err, errlen) != 0)
        goto done;
    in_tx = 1;

    res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        describe_pg_error(res, conn, sql, msg, sizeof(msg));
        set_err(err, errlen, "migration %s failed: %s", m->name, msg);
        goto done;
    }
    PQclear(res);
    res = NULL;
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        /* Something the lexer did not catch ended our transaction: part of the file may be committed. */
        set_err(err, errlen,
                "migration %s ended the migration's transaction itself; remove its transaction control",
                m->name);
        goto done;
    }

    char version[24];
    snprintf(version, sizeof(version), "%lld", m->version);
    const char *params[3] = {version, m->name, m->checksum};
    res = PQexecParams(conn, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", 3,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        describe_pg_error(res, conn, NULL, msg, sizeof(msg));
        set_err(err, errlen, "migration %s: recording it failed: %s", m->name, msg);
        goto done;
    }
    PQclear(res);

    /* COMMIT of an aborted transaction "succeeds" with tag ROLLBACK: check the tag too. */
    res = PQexec(conn, "COMMIT");
    in_tx = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        describe_pg_error(res, conn, NULL, msg, sizeof(msg));
        set_err(err, errlen, "migration %s failed at COMMIT: %s", m->name, msg);
        goto done;
    }

    ls_log_line_t l;
    if (ls_log_begin(&l, LS_LOG_INFO, NULL, "migration applied")) {
        ls_log_str(&l, "migration", m->name);
        ls_log_int(&l, "version", m->version);
        ls_log_str(&l, "checksum", m->checksum);
        ls_log_int(&l, "duration_ms", (int64_t)(now_ms() - start));
        ls_log_end(&l);
    }
    rc = 0;

done:
    PQclear(res);
    if (in_tx)
        PQclear(PQexec(conn, "ROLLBACK"));
    free(sql);
    return rc;
}

static void warn_missing_file(const PGresult *applied, int row)
{
    ls_log_line_t l;
    if (ls_log_begin(&l, LS_LOG_WARN, NULL, "applied migration has no file")) {
        ls_log_str(&l, "migration", PQgetvalue(applied, row, 1));
        ls_log_int(&l, "version", strtoll(PQgetvalue(applied, row, 0), NULL, 10));
        ls_log_end(&l);
    }
}

int ls_migrate_run(const char *conninfo, const char *dir, long long wait_ms, char *err, size_t errlen)
{
    ls_migration_t *files = NULL;
    size_t nfiles = 0;
    PGconn *conn = NULL;
    PGresult *applied = NULL;
    run_ctx_t ctx = {NULL};
    int locked = 0, napplied = 0, rc = -1;
    char msg[768];

    if (ls_migrate_scan(dir, &files, &nfiles, err, errlen) != 0)
        goto done;

    /* Waits for a database that is not up yet, up to wait_ms. */
    conn = ls_dbwait_connect(conninfo, "ls-migrate", wait_ms, msg, sizeof(msg));
    if (conn == NULL) {
        set_err(err, errlen, "migrations: %s", msg);
        goto done;
    }
    PQsetNoticeReceiver(conn, on_notice, &ctx);

    /* Waits while another replica migrates; afterwards it sees that replica's work as applied. */
    if (exec_command(conn, "SELECT pg_advisory_lock(" LOCK_KEY ")", "migrations: advisory lock", err,
                     errlen) != 0)
        goto done;
    locked = 1;

    if (exec_command(conn,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     "version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, "
                     "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                     "migrations: creating schema_migrations", err, errlen) != 0)
        goto done;

    applied = PQexec(conn, "SELECT version, name, checksum FROM schema_migrations ORDER BY version");
    if (PQresultStatus(applied) != PGRES_TUPLES_OK) {
        describe_pg_error(applied, conn, NULL, msg, sizeof(msg));
        set_err(err, errlen, "migrations: reading schema_migrations: %s", msg);
        goto done;
    }

    /* Both lists are sorted by version: walk them together. */
    int nrows = PQntuples(applied), row = 0;
    for (size_t i = 0; i < nfiles; i++) {
        ls_migration_t *m = &files[i];
        while (row < nrows && strtoll(PQgetvalue(applied, row, 0), NULL, 10) < m->version)
            warn_missing_file(applied, row++);
        if (row < nrows && strtoll(PQgetvalue(applied, row, 0), NULL, 10) == m->version) {
            const char *recorded = PQgetvalue(applied, row, 2);
            if (strcmp(recorded, m->checksum) != 0) {
                set_err(err, errlen,
                        "migration %s was changed after it was applied (checksum %s, recorded %s)", m->name,
                        m->checksum, recorded);
                goto done;
            }
            row++;
            continue;
        }
        ctx.current = m->name;
        if (apply_one(conn, dir, m, err, errlen) != 0)
            goto done;
        ctx.current = NULL;
        napplied++;
    }
    while (row < nrows)
        warn_missing_file(applied, row++);

    ls_log_line_t l;
    if (ls_log_begin(&l, LS_LOG_INFO, NULL, "migrations up to date")) {
        ls_log_str(&l, "folder", dir);
        ls_log_int(&l, "applied", napplied);
        ls_log_int(&l, "total", (int64_t)nfiles);
        ls_log_end(&l);
    }
    rc = napplied;

done:
    PQclear(applied);
    if (locked)
        PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" LOCK_KEY ")"));
    PQfinish(conn);
    free(files);
    return rc;
}
