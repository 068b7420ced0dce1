/*
 * Fuzz target: the migration reader (shared/migrate.c) — what it makes of a folder's file names and
 * of a file's bytes before any of it reaches PostgreSQL: the name's version, the file read within its
 * limits, its checksum, the lexer that refuses a file's own transaction control, and the line a
 * PostgreSQL error position falls on.
 *
 * The lexer and the name parser are static in migrate.c, so this target compiles migrate.c into itself
 * (the archive's copy is then not linked). Input: the file name, a newline, the file's contents. The
 * file is written to a private folder and scanned with ls_migrate_scan() as a daemon's start-up does.
 *
 * Checked beyond memory safety: a file is listed exactly when its name is a migration's, with the
 * version of its name and the checksum of its bytes; a file holding a NUL is refused; a transaction
 * statement is reported on a line the file has.
 */
#include "../../shared/migrate.c"

#include <stdint.h>

static char folder[64];

static void remove_folder(void)
{
    rmdir(folder);
}

/* In memory when the machine has /dev/shm: a file is written and read back for every input. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct stat st;
    snprintf(folder, sizeof(folder), "%s/ls-fuzz-migrate-XXXXXX",
             stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                                                                : "/tmp");
    if (mkdtemp(folder) == NULL)
        abort();
    atexit(remove_folder);
    return 0;
}

static int plain_name(const char *name)
{
    return name[0] != '\0' && strlen(name) < 200 && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

static void check_scan(const char *name, const char *body, size_t len)
{
    char path[PATH_MAX], err[512] = "";
    snprintf(path, sizeof(path), "%s/%s", folder, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1)
        return;
    if (write(fd, body, len) != (ssize_t)len)
        abort();
    close(fd);

    long long version = 0;
    int kind = parse_name(name, &version);
    ls_migration_t *list;
    size_t n;
    int rc = ls_migrate_scan(folder, &list, &n, err, sizeof(err));
    if (kind < 0 || (kind == 1 && memchr(body, '\0', len) != NULL)) {
        if (rc != -1 || err[0] == '\0')
            abort();
    } else if (rc != 0 || n != (size_t)kind) {
        abort();
    } else if (kind == 1) {
        char sum[65];
        ls_migrate_checksum(body, len, sum);
        if (list[0].version != version || strcmp(list[0].name, name) != 0 ||
            strcmp(list[0].checksum, sum) != 0)
            abort();
    }
    free(list);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    if (nl == NULL)
        return 0;
    char *name = strndup((const char *)data, (size_t)(nl - (const char *)data));
    const char *body = nl + 1;
    size_t len = size - (size_t)(body - (const char *)data);

    long long version;
    (void)parse_name(name, &version);
    if (plain_name(name))
        check_scan(name, body, len);

    /* What PostgreSQL is given: the text up to a NUL (a file with one is refused before). */
    char *sql = strndup(body, len);
    int lines = 1;
    for (const char *p = sql; *p != '\0'; p++)
        lines += *p == '\n';
    char word[32] = "";
    int line = find_transaction_control(sql, word, sizeof(word));
    if (line < 0 || line > lines || (line > 0 && word[0] == '\0'))
        abort();
    int at = line_of_position(sql, (long)(len % 4096) + 1);
    if (at < 1 || at > lines)
        abort();
    free(sql);
    free(name);
    return 0;
}
