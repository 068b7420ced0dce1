/*
 * harness: PostgreSQL, daemons and HTTP for integration tests (see harness.h for the contract).
 *
 * Everything here runs in a Criterion test process. Failures abort the test with
 * cr_assert_fail() after releasing what would otherwise outlive it (a half-started daemon).
 */
#include "harness.h"

#include <criterion/criterion.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <sodium.h>

extern char **environ;

#define LST_BODY_MAX       (64u * 1024 * 1024)
#define LST_HEADERS_MAX    (256u * 1024)
#define LST_LOG_TAIL_BYTES 6000
#define LST_HEALTH_WAIT_MS 15000
#define LST_STOP_WAIT_MS   10000
#define LST_ENV_MAX        1024

/* ---- small helpers ---- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    cr_assert_not_null(p, "out of memory");
    return p;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0, "out of memory");
    return s;
}

/* snprintf that fails the test instead of cutting the text short. */
static void bounded_printf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bounded_printf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < size, "%zu bytes are too few for \"%.60s...\"", size, buf);
}

static const char *tmp_root(void)
{
    const char *t = getenv("TMPDIR");
    return t != NULL && *t != '\0' ? t : "/tmp";
}

/* Appends `key='value'` to a conninfo, quoting as libpq's parser expects. */
static void conninfo_add(char *buf, size_t size, const char *key, const char *value)
{
    size_t len = strlen(buf);
    int n = snprintf(buf + len, size - len, "%s%s='", len > 0 ? " " : "", key);
    cr_assert(n > 0 && (size_t)n < size - len, "conninfo too long");
    len += n;
    for (const char *p = value; *p != '\0'; p++) {
        cr_assert(len + 3 < size, "conninfo too long");
        if (*p == '\'' || *p == '\\')
            buf[len++] = '\\';
        buf[len++] = *p;
    }
    cr_assert(len + 2 < size, "conninfo too long");
    buf[len++] = '\'';
    buf[len] = '\0';
}

static char *make_conninfo(const char *host, const char *port, const char *user, const char *password,
                           const char *dbname)
{
    char buf[4096] = "";
    conninfo_add(buf, sizeof(buf), "host", host);
    conninfo_add(buf, sizeof(buf), "port", port);
    conninfo_add(buf, sizeof(buf), "user", user);
    conninfo_add(buf, sizeof(buf), "password", password);
    conninfo_add(buf, sizeof(buf), "dbname", dbname);
    conninfo_add(buf, sizeof(buf), "connect_timeout", "10");
    return xstrdup(buf);
}

/* Identifiers we generate are [a-z0-9_] only, so they need no quoting beyond "". */
static int is_simple_identifier(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || !(islower((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

/* ---- environment ---- */

const char *lst_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL)
        cr_assert_fail("%s is not set: run the tests through tests/run", name);
    return v;
}

/* ---- PostgreSQL as superuser ---- */

char *lst_pg_admin_conninfo(const char *dbname)
{
    return make_conninfo(lst_env("LS_TEST_PGHOST"), lst_env("LS_TEST_PGPORT"), lst_env("LS_TEST_PGUSER"),
                         lst_env("LS_TEST_PGPASSWORD"), dbname);
}

static char *exec_on(const char *conninfo, const char *sql)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        char *msg = xstrdup(PQerrorMessage(conn));
        PQfinish(conn);
        cr_assert_fail("cannot connect to PostgreSQL: %s", msg);
    }
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char *msg = xasprintf("SQL failed: %s\n  in: %s", PQresultErrorMessage(res), sql);
        PQclear(res);
        PQfinish(conn);
        cr_assert_fail("%s", msg);
    }
    char *out = xstrdup(
        st == PGRES_TUPLES_OK && PQntuples(res) > 0 && PQnfields(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    PQfinish(conn);
    return out;
}

char *lst_pg_admin_exec(const char *dbname, const char *sql)
{
    char *ci = lst_pg_admin_conninfo(dbname);
    char *out = exec_on(ci, sql);
    free(ci);
    return out;
}

/*
 * The same provisioning deploy/local/lib.sh does for each service (ls_pg_provision_db): a LOGIN
 * role, a database it owns, CONNECT revoked from PUBLIC and granted to the role.
 * CREATE DATABASE cannot run in a transaction block, hence one statement per call.
 */
char *lst_db_create(const char *prefix, char **dbname_out)
{
    cr_assert(prefix != NULL && is_simple_identifier(prefix, 40),
              "lst_db_create: prefix must be 1..40 of [a-z0-9_] starting with a letter");
    char *suffix = lst_random_hex(6);
    char *name = xasprintf("%s_%s", prefix, suffix);
    char *password = lst_random_hex(16);
    free(suffix);

    const char *fmts[] = {
        "CREATE ROLE \"%1$s\" LOGIN PASSWORD '%2$s'",
        "CREATE DATABASE \"%1$s\" OWNER \"%1$s\"",
        "REVOKE CONNECT, TEMPORARY ON DATABASE \"%1$s\" FROM PUBLIC",
        "GRANT CONNECT, TEMPORARY ON DATABASE \"%1$s\" TO \"%1$s\"",
    };
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        char *sql = xasprintf(fmts[i], name, password);
#pragma GCC diagnostic pop
        free(lst_pg_admin_exec("postgres", sql));
        free(sql);
    }

    char *ci = make_conninfo(lst_env("LS_TEST_PGHOST"), lst_env("LS_TEST_PGPORT"), name, password, name);
    free(password);
    if (dbname_out != NULL)
        *dbname_out = name;
    else
        free(name);
    return ci;
}

/* ---- child processes ---- */

/* Runs argv (searching PATH) with output appended to log_path; returns its exit status or -1. */
static int run_logged(char *const argv[], const char *log_path)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Prints the last bytes of a log file to stderr, so a failed start explains itself. */
static void print_log_tail(const char *what, const char *path)
{
    FILE *f = fopen(path, "r");
    fprintf(stderr, "---- last lines of %s (%s) ----\n", what, path);
    if (f == NULL) {
        fprintf(stderr, "(cannot open: %s)\n", strerror(errno));
        return;
    }
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > LST_LOG_TAIL_BYTES)
            fseek(f, size - LST_LOG_TAIL_BYTES, SEEK_SET);
        else
            fseek(f, 0, SEEK_SET);
    }
    char buf[1024];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
    fprintf(stderr, "---- end of %s ----\n", what);
}

/* ---- private clusters ---- */

/* Paths derived from the data directory "<root>/data": the root holds the log and password file. */
static void cluster_root(const lst_cluster_t *c, char *out, size_t size)
{
    snprintf(out, size, "%s", c->dir);
    char *slash = strrchr(out, '/');
    if (slash != NULL)
        *slash = '\0';
}

/* argv for PostgreSQL tools: prefixed with runuser when tests run as root. */
static int pg_tool(const lst_cluster_t *c, const char *tool, const char *const *args)
{
    const char *bin = lst_env("LS_TEST_PGBIN");
    const char *runas = getenv("LS_TEST_PGRUNAS");
    char root[256], log[300], path[512];
    cluster_root(c, root, sizeof(root));
    snprintf(log, sizeof(log), "%s/tools.log", root);
    snprintf(path, sizeof(path), "%s/%s", bin, tool);

    char *argv[32];
    size_t n = 0;
    if (runas != NULL && *runas != '\0') {
        argv[n++] = "runuser";
        argv[n++] = "-u";
        argv[n++] = (char *)runas;
        argv[n++] = "--";
    }
    argv[n++] = path;
    for (size_t i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    int rc = run_logged(argv, log);
    if (rc != 0)
        print_log_tail(tool, log);
    return rc == 0 ? 0 : -1;
}

static void cluster_create(lst_cluster_t *c, int tcp)
{
    memset(c, 0, sizeof(*c));
    c->tcp = tcp;
    const char *runas = getenv("LS_TEST_PGRUNAS");
    const char *password = lst_env("LS_TEST_PGPASSWORD");
    const char *superuser = lst_env("LS_TEST_PGUSER");
    char root[200];
    snprintf(root, sizeof(root), "%s/lst-cluster-XXXXXX", tmp_root());
    cr_assert_not_null(mkdtemp(root), "mkdtemp in %s: %s", tmp_root(), strerror(errno));
    snprintf(c->dir, sizeof(c->dir), "%s/data", root);
    snprintf(c->sockdir, sizeof(c->sockdir), "%s/sock", root);
    /* 711: the daemons, running as LST_DAEMON_USER, pass through to the server's socket (every role
     * needs its password); the data folder inside stays the server's alone. */
    cr_assert(mkdir(c->sockdir, 0711) == 0 && chmod(c->sockdir, 0711) == 0 && chmod(root, 0711) == 0,
              "mkdir %s: %s", c->sockdir, strerror(errno));

    char pwfile[256];
    snprintf(pwfile, sizeof(pwfile), "%s/pwfile", root);
    FILE *f = fopen(pwfile, "w");
    cr_assert_not_null(f, "cannot write %s", pwfile);
    fprintf(f, "%s\n", password);
    fclose(f);
    chmod(pwfile, 0600);

    if (runas != NULL && *runas != '\0') {
        struct passwd *pw = getpwnam(runas);
        cr_assert_not_null(pw, "LS_TEST_PGRUNAS=%s: no such user", runas);
        /* The server's user owns everything it writes: data, socket, logs. */
        cr_assert(chown(root, pw->pw_uid, pw->pw_gid) == 0 &&
                      chown(c->sockdir, pw->pw_uid, pw->pw_gid) == 0 &&
                      chown(pwfile, pw->pw_uid, pw->pw_gid) == 0,
                  "chown to %s: %s", runas, strerror(errno));
    }

    char pwopt[300], useropt[200];
    snprintf(pwopt, sizeof(pwopt), "--pwfile=%s", pwfile);
    snprintf(useropt, sizeof(useropt), "--username=%s", superuser);
    const char *initdb_args[] = {"-D",
                                 c->dir,
                                 useropt,
                                 pwopt,
                                 "--auth-local=scram-sha-256",
                                 "--auth-host=scram-sha-256",
                                 "-E",
                                 "UTF8",
                                 "--no-locale",
                                 "--no-sync",
                                 NULL};
    if (pg_tool(c, "initdb", initdb_args) != 0) {
        lst_cluster_destroy(c);
        cr_assert_fail("initdb failed (see above)");
    }
    unlink(pwfile);
    c->port = lst_free_port();
    if (lst_cluster_start(c) != 0) {
        lst_cluster_destroy(c);
        cr_assert_fail("the private cluster did not start (see above)");
    }
}

void lst_cluster_create(lst_cluster_t *c)
{
    cluster_create(c, 0);
}

void lst_cluster_create_tcp(lst_cluster_t *c)
{
    cluster_create(c, 1);
}

char *lst_cluster_conninfo_tcp(const lst_cluster_t *c, const char *host, const char *dbname)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", c->port);
    return make_conninfo(host, port, lst_env("LS_TEST_PGUSER"), lst_env("LS_TEST_PGPASSWORD"), dbname);
}

char *lst_cluster_conninfo(const lst_cluster_t *c, const char *dbname)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", c->port);
    return make_conninfo(c->sockdir, port, lst_env("LS_TEST_PGUSER"), lst_env("LS_TEST_PGPASSWORD"), dbname);
}

int lst_cluster_stop(lst_cluster_t *c)
{
    const char *args[] = {"-D", c->dir, "-m", "fast", "-w", "-t", "30", "stop", NULL};
    return pg_tool(c, "pg_ctl", args);
}

int lst_cluster_start(lst_cluster_t *c)
{
    char root[256], opts[600], log[300];
    cluster_root(c, root, sizeof(root));
    snprintf(log, sizeof(log), "%s/server.log", root);
    /* fsync off: throwaway data, and the machine is shared with parallel tests. */
    snprintf(opts, sizeof(opts), "-p %d -k %s -c listen_addresses='%s' -c fsync=off -c max_connections=100",
             c->port, c->sockdir, c->tcp ? "127.0.0.1" : "");
    const char *args[] = {"-D", c->dir, "-o", opts, "-l", log, "-w", "-t", "30", "start", NULL};
    int rc = pg_tool(c, "pg_ctl", args);
    if (rc != 0)
        print_log_tail("postgres", log);
    return rc;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

void lst_cluster_destroy(lst_cluster_t *c)
{
    char root[256], pidfile[300];
    if (c->dir[0] == '\0')
        return;
    snprintf(pidfile, sizeof(pidfile), "%s/postmaster.pid", c->dir);
    if (access(pidfile, F_OK) == 0) {
        const char *args[] = {"-D", c->dir, "-m", "immediate", "-w", "-t", "30", "stop", NULL};
        pg_tool(c, "pg_ctl", args);
    }
    cluster_root(c, root, sizeof(root));
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    memset(c, 0, sizeof(*c));
}

/* ---- ports and daemons ---- */

/*
 * Ports are drawn at random from a range the kernel does not use for outgoing connections, and never
 * twice in one test process: a port freed by a stopped daemon must not go to the next daemon the
 * same test starts, or calls meant for the stopped one would reach the new one.
 */
int lst_free_port(void)
{
    static int given[256];
    static size_t ngiven;
    for (int attempt = 0; attempt < 200; attempt++) {
        uint32_t port = 20000 + randombytes_uniform(12000); /* below the ephemeral range (32768+) */
        int reused = 0;
        for (size_t i = 0; i < ngiven && i < sizeof(given) / sizeof(given[0]); i++)
            reused |= given[i] == (int)port;
        if (reused)
            continue;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert(fd >= 0, "socket: %s", strerror(errno));
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (!ok)
            continue;
        given[ngiven++ % (sizeof(given) / sizeof(given[0]))] = (int)port;
        return (int)port;
    }
    cr_assert_fail("cannot find a free port");
    return -1;
}

/* The port of the first TCP address in a LISTEN list ("unix:/x,127.0.0.1:8081"), 0 when none. */
static int first_tcp_port(const char *list)
{
    for (const char *item = list; item != NULL;
         item = strchr(item, ',') != NULL ? strchr(item, ',') + 1 : NULL) {
        while (*item == ' ')
            item++;
        size_t len = strcspn(item, ",");
        if (strncmp(item, "unix:", 5) == 0)
            continue;
        const char *colon = memrchr(item, ':', len);
        if (colon != NULL)
            return atoi(colon + 1);
    }
    return 0;
}

static int env_has(const char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return 1;
    return 0;
}

static int healthy(const char *base_url)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", base_url);
    CURL *h = curl_easy_init();
    if (h == NULL)
        return 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (sink != NULL)
        fclose(sink);
    return status == 200;
}

static void kill_and_reap(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void lst_daemon_spawn(lst_daemon_t *d, const char *relpath, const char *const *env)
{
    lst_daemon_spawn_stdout(d, relpath, env, -1);
}

void lst_daemon_spawn_stdout(lst_daemon_t *d, const char *relpath, const char *const *env, int stdout_fd)
{
    pthread_once(&curl_once, curl_init_once);
    memset(d, 0, sizeof(*d));
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", lst_env("LS_TEST_BUILD_DIR"), relpath);
    cr_assert(access(path, X_OK) == 0, "daemon %s not built: %s", path, strerror(errno));

    const char *base = strrchr(relpath, '/') != NULL ? strrchr(relpath, '/') + 1 : relpath;
    snprintf(d->name, sizeof(d->name), "%s", base);
    snprintf(d->log_path, sizeof(d->log_path), "%s/lst-%s-XXXXXX.log", tmp_root(), base);
    int logfd = mkostemps(d->log_path, 4, O_CLOEXEC);
    cr_assert(logfd >= 0, "cannot create a log file in %s: %s", tmp_root(), strerror(errno));

    /* Everything the child needs is prepared before fork: only async-signal-safe calls after. */
    char listen_var[64]; /* the child gets its own copy with fork() */
    const char *envp[LST_ENV_MAX];
    size_t n = 0;
    if (env_has(env, "LISTEN")) {
        for (size_t i = 0; env[i] != NULL; i++)
            if (strncmp(env[i], "LISTEN=", 7) == 0)
                d->port = first_tcp_port(env[i] + 7);
    } else {
        d->port = lst_free_port();
        snprintf(listen_var, sizeof(listen_var), "LISTEN=127.0.0.1:%d", d->port);
        envp[n++] = listen_var;
    }
    snprintf(d->base_url, sizeof(d->base_url), "http://127.0.0.1:%d", d->port);
    /* Tests run as root (containers, CI): every daemon then switches to LST_DAEMON_USER, as a
     * deployment started by root must make it, unless the test chose RUN_AS itself. */
    if (geteuid() == 0 && !env_has(env, "RUN_AS") && getenv("RUN_AS") == NULL)
        envp[n++] = "RUN_AS=" LST_DAEMON_USER;
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        cr_assert(n < LST_ENV_MAX - 1, "too many environment variables");
        envp[n++] = env[i];
    }
    for (char **e = environ; *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL)
            continue;
        char name[256];
        size_t len = (size_t)(eq - *e) < sizeof(name) - 1 ? (size_t)(eq - *e) : sizeof(name) - 1;
        memcpy(name, *e, len);
        name[len] = '\0';
        if (env_has(env, name) || (strcmp(name, "LISTEN") == 0 && !env_has(env, "LISTEN")))
            continue;
        cr_assert(n < LST_ENV_MAX - 1, "too many environment variables");
        envp[n++] = *e;
    }
    envp[n] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(logfd);
        cr_assert_fail("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        /* A test that crashes takes its daemons with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(stdout_fd >= 0 ? stdout_fd : logfd, 1);
        dup2(logfd, 2);
        char *argv[] = {path, NULL};
        execve(path, argv, (char *const *)envp);
        dprintf(2, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(logfd);
    d->pid = pid;
}

void lst_give_to_daemons(const char *path)
{
    if (geteuid() != 0)
        return;
    struct passwd *pw = getpwnam(LST_DAEMON_USER);
    cr_assert_not_null(pw, "no user %s to run the daemons as", LST_DAEMON_USER);
    cr_assert(chown(path, pw->pw_uid, pw->pw_gid) == 0, "chown %s to %s: %s", path, LST_DAEMON_USER,
              strerror(errno));
}

/* Whether the daemon's log has its start-up line for d->port (daemon.c logs "listening" with it). */
static int log_says_listening(const lst_daemon_t *d)
{
    char line[4096], want[32];
    int found = 0;
    FILE *fp = fopen(d->log_path, "r");
    if (fp == NULL)
        return 0;
    snprintf(want, sizeof(want), "\"port\":%d,", d->port);
    while (!found && fgets(line, sizeof(line), fp) != NULL)
        found = strstr(line, "\"msg\":\"listening\"") != NULL && strstr(line, want) != NULL;
    fclose(fp);
    return found;
}

int lst_daemon_wait_healthy(lst_daemon_t *d)
{
    pid_t pid = d->pid;
    const char *relpath = d->name;
    double deadline = now_seconds() + LST_HEALTH_WAIT_MS / 1000.0;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            fprintf(stderr, "%s exited before it was healthy (%s %d)\n", relpath,
                    WIFEXITED(status) ? "status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            d->pid = 0;
            return -1;
        }
        /* Only our daemon's own word that it bound the port makes /healthz its answer: another test
         * running in parallel may have taken the same port a moment before. */
        if (log_says_listening(d) && healthy(d->base_url))
            return 0;
        if (now_seconds() > deadline) {
            fprintf(stderr, "%s did not answer GET /healthz within %d ms\n", relpath, LST_HEALTH_WAIT_MS);
            kill_and_reap(pid);
            d->pid = 0;
            return -1;
        }
        sleep_ms(20);
    }
}

int lst_daemon_try_start(lst_daemon_t *d, const char *relpath, const char *const *env)
{
    lst_daemon_spawn(d, relpath, env);
    return lst_daemon_wait_healthy(d);
}

void lst_daemon_start(lst_daemon_t *d, const char *relpath, const char *const *env)
{
    if (lst_daemon_try_start(d, relpath, env) != 0) {
        print_log_tail(relpath, d->log_path);
        cr_assert_fail("%s did not start (log above: %s)", relpath, d->log_path);
    }
}

int lst_daemon_stop(lst_daemon_t *d)
{
    if (d->pid <= 0)
        return -1;
    pid_t pid = d->pid;
    d->pid = 0;
    kill(pid, SIGTERM);
    double deadline = now_seconds() + LST_STOP_WAIT_MS / 1000.0;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_seconds() > deadline) {
            fprintf(stderr, "pid %d ignored SIGTERM for %d ms: killed\n", (int)pid, LST_STOP_WAIT_MS);
            kill_and_reap(pid);
            return -1;
        }
        sleep_ms(10);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void lst_daemon_kill(lst_daemon_t *d)
{
    cr_assert(d->pid > 0, "%s is not running", d->name);
    kill_and_reap(d->pid);
    d->pid = 0;
}

void lst_daemon_expect_clean_stop(lst_daemon_t *d)
{
    if (d->pid > 0)
        cr_expect_eq(lst_daemon_stop(d), 0, "%s did not exit cleanly; see %s", d->name, d->log_path);
}

/* ---- services ---- */

void lst_service_start(lst_service_t *s, const char *relpath, const char *db_prefix, const char *const *env)
{
    if (s->token == NULL)
        s->token = lst_random_hex(24);
    if (s->conninfo == NULL)
        s->conninfo = lst_db_create(db_prefix, &s->dbname);
    char db[4200], token[600];
    bounded_printf(db, sizeof(db), "DATABASE_URL=%s", s->conninfo);
    bounded_printf(token, sizeof(token), "INTERNAL_TOKEN=%s", s->token);

    const char *envp[LST_ENV_MAX] = {db, token};
    size_t n = 2;
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        cr_assert(n < LST_ENV_MAX - 3, "too many environment variables");
        envp[n++] = env[i];
    }
    /* The harness needs at least info to see the daemon listening; debug says more on a failure. */
    if (!env_has(env, "LOG_LEVEL"))
        envp[n++] = "LOG_LEVEL=debug";
    if (!env_has(env, "THREADS"))
        envp[n++] = "THREADS=2";
    envp[n] = NULL;
    lst_daemon_start(&s->daemon, relpath, envp);
}

void lst_service_destroy(lst_service_t *s)
{
    lst_daemon_expect_clean_stop(&s->daemon);
    free(s->token);
    free(s->conninfo);
    free(s->dbname);
    memset(s, 0, sizeof(*s));
}

/* ---- HTTP ---- */

typedef struct {
    char *data;
    size_t len, cap, max;
    int overflow;
} lst_buf_t;

static int buf_append(lst_buf_t *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->max) {
        b->overflow = 1;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 4096 : b->cap;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    return buf_append(ud, p, size * nmemb) == 0 ? size * nmemb : 0;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    lst_buf_t *b = ud;
    /* Keep only the final response's block (after a 100 Continue, say). */
    if (nmemb * size >= 5 && memcmp(p, "HTTP/", 5) == 0)
        b->len = 0;
    return buf_append(b, p, size * nmemb) == 0 ? size * nmemb : 0;
}

static json_object *parse_json(const char *s, size_t len)
{
    if (len == 0)
        return NULL;
    json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return NULL;
    json_object *obj = json_tokener_parse_ex(tok, s, (int)len);
    size_t used = json_tokener_get_error(tok) == json_tokener_success ? json_tokener_get_parse_end(tok) : 0;
    json_tokener_free(tok);
    if (obj == NULL)
        return NULL;
    for (size_t i = used; i < len; i++)
        if (!isspace((unsigned char)s[i])) {
            json_object_put(obj);
            return NULL;
        }
    return obj;
}

int lst_http(lst_resp_t *out, const char *method, const char *url, const char *const *headers,
             const char *body)
{
    pthread_once(&curl_once, curl_init_once);
    memset(out, 0, sizeof(*out));
    lst_buf_t b = {.max = LST_BODY_MAX}, h = {.max = LST_HEADERS_MAX};
    struct curl_slist *list = NULL;
    int has_expect = 0;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        list = curl_slist_append(list, headers[i]);
        if (strncasecmp(headers[i], "Expect:", 7) == 0)
            has_expect = 1;
    }
    /* curl would wait for "100 Continue" on bigger bodies; tests want the server's real answer. */
    if (!has_expect)
        list = curl_slist_append(list, "Expect:");

    CURL *c = curl_easy_init();
    cr_assert_not_null(c, "curl_easy_init failed");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0 && body == NULL) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        if (body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "PATCH") == 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body != NULL ? strlen(body) : 0));
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        }
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }

    double t0 = now_seconds();
    CURLcode rc = curl_easy_perform(c);
    out->seconds = now_seconds() - t0;
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "lst_http %s %s: %s\n", method, url, curl_easy_strerror(rc));
    curl_easy_cleanup(c);
    curl_slist_free_all(list);
    cr_assert(!b.overflow, "response body of %s %s exceeds %u bytes", method, url, LST_BODY_MAX);

    out->status = (int)status;
    out->body = b.data != NULL ? b.data : xstrdup("");
    out->len = b.len;
    out->headers = h.data != NULL ? h.data : xstrdup("");
    out->json = status != 0 ? parse_json(out->body, out->len) : NULL;
    return out->status;
}

int lst_call_as(lst_resp_t *resp, const char *base_url, const char *token, const char *method,
                const char *path, const char *body, const char *actor, const char *role)
{
    char url[8192], auth[600], actor_header[80], role_header[80];
    const char *headers[5] = {auth};
    size_t n = 1;
    bounded_printf(url, sizeof(url), "%s%s", base_url, path);
    bounded_printf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    if (actor != NULL) {
        bounded_printf(actor_header, sizeof(actor_header), "X-Actor-Telegram-Id: %s", actor);
        headers[n++] = actor_header;
    }
    if (role != NULL) {
        bounded_printf(role_header, sizeof(role_header), "X-Actor-Role: %s", role);
        headers[n++] = role_header;
    }
    /* As the services' own client sends a body (curl would otherwise call it a form). */
    if (body != NULL)
        headers[n++] = "Content-Type: application/json";
    return lst_http(resp, method, url, headers, body);
}

char *lst_resp_header(const lst_resp_t *resp, const char *name)
{
    size_t nlen = strlen(name);
    const char *line = resp->headers;
    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        size_t llen = end != NULL ? (size_t)(end - line) : strlen(line);
        if (llen > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            const char *vend = line + llen;
            while (v < vend && (*v == ' ' || *v == '\t'))
                v++;
            while (vend > v && (vend[-1] == '\r' || vend[-1] == ' ' || vend[-1] == '\t'))
                vend--;
            char *out = strndup(v, (size_t)(vend - v));
            cr_assert_not_null(out, "out of memory");
            return out;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

void lst_resp_free(lst_resp_t *resp)
{
    free(resp->body);
    free(resp->headers);
    if (resp->json != NULL)
        json_object_put(resp->json);
    memset(resp, 0, sizeof(*resp));
}

/* ---- randomness ---- */

json_object *lst_log_lines(const lst_daemon_t *d, const char *const *needles)
{
    FILE *f = fopen(d->log_path, "r");
    cr_assert_not_null(f, "cannot read %s", d->log_path);
    json_object *out = json_object_new_array();
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        int all = 1;
        for (size_t i = 0; all && needles[i] != NULL; i++)
            all = strstr(line, needles[i]) != NULL;
        json_object *obj = all ? json_tokener_parse(line) : NULL;
        if (obj != NULL)
            json_object_array_add(out, obj);
    }
    free(line);
    fclose(f);
    return out;
}

json_object *lst_log_wait(const lst_daemon_t *d, const char *const *needles, size_t at_least)
{
    for (int i = 0;; i++) {
        json_object *lines = lst_log_lines(d, needles);
        if (json_object_array_length(lines) >= at_least || i == 150)
            return lines;
        json_object_put(lines);
        usleep(20 * 1000);
    }
}

char *lst_random_hex(size_t nbytes)
{
    cr_assert(sodium_init() >= 0, "sodium_init failed");
    cr_assert(nbytes > 0 && nbytes <= 1024, "lst_random_hex: 1..1024 bytes");
    unsigned char raw[1024];
    char *hex = malloc(2 * nbytes + 1);
    cr_assert_not_null(hex, "out of memory");
    randombytes_buf(raw, nbytes);
    sodium_bin2hex(hex, 2 * nbytes + 1, raw, nbytes);
    return hex;
}

json_object *lst_field(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (obj != NULL)
        json_object_object_get_ex(obj, key, &v);
    return v;
}

const char *lst_str_field(json_object *obj, const char *key)
{
    json_object *v = lst_field(obj, key);
    return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

void lst_expect_problem(const lst_resp_t *resp, int status, const char *needle)
{
    cr_expect_eq(resp->status, status, "status %d, want %d: %.300s", resp->status, status, resp->body);
    char *ct = lst_resp_header(resp, "content-type");
    cr_expect(ct != NULL && strstr(ct, "application/problem+json") != NULL, "content-type %s",
              ct ? ct : "none");
    free(ct);
    cr_assert_not_null(resp->json, "problem body is not JSON: %.300s", resp->body);
    cr_expect_eq(json_object_get_int(lst_field(resp->json, "status")), status);
    cr_expect_not_null(lst_str_field(resp->json, "title"));
    if (needle != NULL) {
        const char *detail = lst_str_field(resp->json, "detail");
        cr_expect(detail != NULL && strstr(detail, needle) != NULL, "detail \"%s\" lacks \"%s\"",
                  detail ? detail : "", needle);
    }
}

void lst_call_expect_problem(const char *base_url, const char *token, const char *method, const char *path,
                             const char *body, const char *actor, int status, const char *needle)
{
    lst_resp_t resp;
    lst_call_as(&resp, base_url, token, method, path, body, actor, NULL);
    lst_expect_problem(&resp, status, needle);
    lst_resp_free(&resp);
}

/* ---- metrics ---- */

char *lst_metrics_text(const char *base_url, const char *token)
{
    lst_resp_t resp;
    lst_call_as(&resp, base_url, token, "GET", "/metrics", NULL, NULL, NULL);
    cr_assert_eq(resp.status, 200, "GET %s/metrics: %d %.300s", base_url, resp.status,
                 resp.body != NULL ? resp.body : "");
    char *ct = lst_resp_header(&resp, "content-type");
    cr_assert(ct != NULL && strcmp(ct, "text/plain; version=0.0.4; charset=utf-8") == 0,
              "GET %s/metrics: content-type %s", base_url, ct != NULL ? ct : "none");
    free(ct);
    char *text = resp.body;
    resp.body = NULL;
    lst_resp_free(&resp);
    return text;
}

int lst_metric_in(const char *text, const char *series, double *value)
{
    size_t n = strlen(series);
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            *value = strtod(line + n + 1, NULL);
            return 1;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return 0;
}

double lst_metric(const char *base_url, const char *token, const char *series)
{
    double v = 0;
    char *text = lst_metrics_text(base_url, token);
    if (!lst_metric_in(text, series, &v))
        v = 0;
    free(text);
    return v;
}

double lst_metric_wait(const char *base_url, const char *token, const char *series, double want,
                       int timeout_ms)
{
    double v = lst_metric(base_url, token, series);
    for (int waited = 0; v != want && waited < timeout_ms; waited += 100) {
        usleep(100 * 1000);
        v = lst_metric(base_url, token, series);
    }
    return v;
}
