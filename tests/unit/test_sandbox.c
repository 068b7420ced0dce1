/*
 * sandbox: the seccomp filter the daemons install (ls_sandbox_seccomp, the same function), in a
 * child process of its own: the calls a daemon makes still work — on a thread that existed before
 * (TSYNC) and on one made after — and the calls it never makes are refused with EPERM: exec,
 * ptrace, mount, mkdir, bind, listen, setuid, namespaces, terminal ioctls and, outside sanitizer
 * builds, new processes.
 * And RUN_AS: who must name it, whom it may name, and that the switch cannot be undone.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"

/* Runs fn in a child process; fn returns 0 or the line of its first failed check, which the child
 * exits with (printing what failed). The test fails unless the child exits 0. */
static void in_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit(fn() == 0 ? 0 : 1);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the child died of signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    cr_assert_eq(WEXITSTATUS(status), 0, "a check failed in the child (see its message above)");
}

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: %s (errno %d: %s)\n", __FILE__, __LINE__, #cond, errno,                  \
                    strerror(errno));                                                                        \
            return __LINE__;                                                                                 \
        }                                                                                                    \
    } while (0)

/* A call refused by the filter: -1 with EPERM. */
#define REFUSED(call) CHECK((errno = 0, (call)) == -1 && errno == EPERM)

static int exec_refused(void)
{
    char *argv[] = {"/bin/true", NULL}, *envp[] = {NULL};
    return execve("/bin/true", argv, envp) == -1 && errno == EPERM;
}

/* A thread that exists before the filter: waits for a byte, then tries execve. */
static int go_pipe[2];
static void *early_thread(void *arg)
{
    char c;
    (void)arg;
    while (read(go_pipe[0], &c, 1) < 0 && errno == EINTR)
        ;
    return (void *)(intptr_t)exec_refused();
}

/* A thread made under the filter: the calls a worker makes, and execve refused. */
static void *late_thread(void *arg)
{
    (void)arg;
    struct timespec ts;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int ok = fd >= 0 && close(fd) == 0 && clock_gettime(CLOCK_MONOTONIC, &ts) == 0 && exec_refused();
    return (void *)(intptr_t)ok;
}

static char mount_dir[64];

static int filtered(void)
{
    pthread_t early, late;
    CHECK(pipe(go_pipe) == 0);
    CHECK(pthread_create(&early, NULL, early_thread, NULL) == 0);

    char err[256] = "";
    if (ls_sandbox_seccomp(err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return __LINE__;
    }

    /* What a serving daemon does still works. */
    struct timespec ts;
    CHECK(clock_gettime(CLOCK_REALTIME, &ts) == 0);
    CHECK(getpid() > 0);
    void *p = malloc(1 << 20); /* mmap */
    CHECK(p != NULL);
    free(p);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(write(sv[0], "x", 1) == 1);
    char c;
    CHECK(read(sv[1], &c, 1) == 1 && c == 'x');
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    char status[4096];
    ssize_t n = read(fd, status, sizeof(status) - 1);
    CHECK(n > 0);
    status[n] = '\0';
    close(fd);
    CHECK(strstr(status, "\nSeccomp:\t2\n") != NULL);
    CHECK(strstr(status, "\nNoNewPrivs:\t1\n") != NULL);

    /* What it never does is refused. */
    CHECK(exec_refused());
    REFUSED(ptrace(PTRACE_TRACEME, 0, NULL, NULL));
    REFUSED(mount("none", mount_dir, "tmpfs", 0, NULL));
    REFUSED(mkdir("/tmp/lst-sandbox-refused", 0700));
    REFUSED(setuid(0));
    REFUSED(unshare(CLONE_NEWUSER));
    /* ioctl: isatty() still answers (ENOTTY), a terminal's input cannot be injected */
    CHECK(isatty(sv[0]) == 0 && errno == ENOTTY);
    REFUSED(ioctl(sv[0], TIOCSTI, "x"));
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    REFUSED(bind(s, (struct sockaddr *)&sa, sizeof(sa)));
    REFUSED(listen(s, 1));
    close(s);
#if !defined(__SANITIZE_ADDRESS__) /* LeakSanitizer's exit helper needs a clone of its own */
    REFUSED((int)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL));
#endif

    /* TSYNC: the thread made before is under the filter; one made after is too. */
    CHECK(write(go_pipe[1], "g", 1) == 1);
    void *r = NULL;
    CHECK(pthread_join(early, &r) == 0 && r == (void *)1);
    CHECK(pthread_create(&late, NULL, late_thread, NULL) == 0);
    CHECK(pthread_join(late, &r) == 0 && r == (void *)1);
    return 0;
}

Test(sandbox, the_daemons_filter_allows_serving_and_refuses_the_rest)
{
    /* Made here: the filtered child may not make (or remove) folders. */
    snprintf(mount_dir, sizeof(mount_dir), "/tmp/lst-sandbox-XXXXXX");
    cr_assert_not_null(mkdtemp(mount_dir));
    in_child(filtered);
    cr_expect_eq(rmdir(mount_dir), 0, "the mount point is empty: nothing was mounted");
}

/* ---- RUN_AS ---- */

static int as_someone_else(void)
{
    ls_sandbox_user_t u;
    char err[256];
    struct passwd *pw = getpwnam("nobody");
    CHECK(pw != NULL);
    if (geteuid() == 0) {
        CHECK(ls_sandbox_user(NULL, &u, err, sizeof(err)) == -1 && strstr(err, "RUN_AS is required") != NULL);
        CHECK(ls_sandbox_user("", &u, err, sizeof(err)) == -1);
        CHECK(ls_sandbox_user("root", &u, err, sizeof(err)) == -1 && strstr(err, "must not be root") != NULL);
        CHECK(ls_sandbox_user("lst_no_such_user", &u, err, sizeof(err)) == -1 &&
              strstr(err, "no such user") != NULL);
        CHECK(ls_sandbox_user("nobody", &u, err, sizeof(err)) == 0 && u.drop == 1 && u.uid == pw->pw_uid &&
              u.gid == pw->pw_gid);
        CHECK(ls_sandbox_drop(&u, err, sizeof(err)) == 0);
        /* For good: no way back to root, no root group left. */
        CHECK(getuid() == pw->pw_uid && geteuid() == pw->pw_uid && getgid() == pw->pw_gid);
        REFUSED(setuid(0));
        REFUSED(setgid(0));
        REFUSED(setgroups(0, NULL));
        gid_t groups[64];
        int ng = getgroups(64, groups);
        CHECK(ng >= 0);
        for (int i = 0; i < ng; i++)
            CHECK(groups[i] != 0);
    }
    /* Not root (any more): RUN_AS may be unset or name ourselves, and nothing else. */
    CHECK(ls_sandbox_user(NULL, &u, err, sizeof(err)) == 0 && u.drop == 0);
    CHECK(ls_sandbox_user("root", &u, err, sizeof(err)) == -1 && strstr(err, "cannot switch users") != NULL);
    const struct passwd *me = getpwuid(geteuid());
    CHECK(me != NULL);
    char name[64];
    snprintf(name, sizeof(name), "%s", me->pw_name);
    CHECK(ls_sandbox_user(name, &u, err, sizeof(err)) == 0 && u.drop == 0);
    CHECK(ls_sandbox_drop(&u, err, sizeof(err)) == 0 && ls_sandbox_give(&u, "/", err, sizeof(err)) == 0);
    return 0;
}

Test(sandbox, run_as_is_required_of_root_and_the_switch_is_for_good)
{
    in_child(as_someone_else);
}
