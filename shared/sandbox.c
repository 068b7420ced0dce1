/* sandbox: RUN_AS (the switch from root) and the seccomp filter, with its one table of calls. */
#include "sandbox.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include <seccomp.h>

#if defined(__SANITIZE_ADDRESS__)
#define LS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LS_SANITIZED 1
#endif
#endif
#ifndef LS_SANITIZED
#define LS_SANITIZED 0
#endif

/* ---- the user ---- */

int ls_sandbox_user(const char *run_as, ls_sandbox_user_t *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    int root = getuid() == 0 || geteuid() == 0;
    if (run_as == NULL || run_as[0] == '\0') {
        if (root)
            snprintf(err, errlen,
                     "RUN_AS is required when started as root: name the unprivileged user to switch to "
                     "once the sockets are bound");
        return root ? -1 : 0;
    }
    if (strlen(run_as) > LS_SANDBOX_NAME_MAX) {
        snprintf(err, errlen, "RUN_AS: at most %d characters", LS_SANDBOX_NAME_MAX);
        return -1;
    }
    errno = 0;
    const struct passwd *pw = getpwnam(run_as);
    if (pw == NULL) {
        snprintf(err, errlen, "RUN_AS=%s: %s", run_as, errno != 0 ? strerror(errno) : "no such user");
        return -1;
    }
    if (!root && pw->pw_uid != geteuid()) {
        snprintf(
            err, errlen,
            "RUN_AS=%s: started as uid %u, which cannot switch users (only root can); leave RUN_AS unset",
            run_as, (unsigned)geteuid());
        return -1;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "RUN_AS=%s: the user to run as must not be root", run_as);
        return -1;
    }
    u->drop = root;
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    memcpy(u->name, run_as, strlen(run_as) + 1);
    return 0;
}

int ls_sandbox_give(const ls_sandbox_user_t *u, const char *path, char *err, size_t errlen)
{
    if (u->drop && chown(path, u->uid, u->gid) != 0) {
        snprintf(err, errlen, "%s: cannot give it to RUN_AS=%s: %s", path, u->name, strerror(errno));
        return -1;
    }
    return 0;
}

int ls_sandbox_drop(const ls_sandbox_user_t *u, char *err, size_t errlen)
{
    if (!u->drop)
        return 0;
    /* Groups first: changing them needs root, which setuid takes away. */
    if (initgroups(u->name, u->gid) != 0 || setresgid(u->gid, u->gid, u->gid) != 0 ||
        setresuid(u->uid, u->uid, u->uid) != 0) {
        snprintf(err, errlen, "RUN_AS=%s: cannot switch to it: %s", u->name, strerror(errno));
        return -1;
    }
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (setuid(0) == 0 || setgid(0) == 0 || getresuid(&ruid, &euid, &suid) != 0 ||
        getresgid(&rgid, &egid, &sgid) != 0 || ruid != u->uid || euid != u->uid || suid != u->uid ||
        rgid != u->gid || egid != u->gid || sgid != u->gid) {
        snprintf(err, errlen, "RUN_AS=%s: root could still be had back after the switch", u->name);
        return -1;
    }
    /* The kernel clears the capabilities with the uid, unless securebits inherited from whoever
     * started us say otherwise: then the switch is worth nothing. */
    struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct caps[2];
    if (syscall(SYS_capget, &head, caps) != 0 ||
        (caps[0].effective | caps[0].permitted | caps[1].effective | caps[1].permitted) != 0) {
        snprintf(err, errlen, "RUN_AS=%s: capabilities are left after the switch", u->name);
        return -1;
    }
    /* LeakSanitizer stops the threads with ptrace at exit, which a process that is not dumpable
     * refuses even to its own helper. */
    if (LS_SANITIZED && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
        snprintf(err, errlen, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the filter ---- */

/*
 * Every system call a daemon makes once it serves, by what it is for. Names, not numbers: one table
 * for every architecture (a name the architecture lacks, such as "open" on arm64, is skipped). Not
 * here, so refused: exec, ptrace, mount, mkdir, bind, listen, setuid and the like, kill, namespaces,
 * modules, keyrings, BPF, perf, io_uring. The whole test suite runs the daemons under it.
 */
// clang-format off
static const char *const allowed[] = {
    /* memory: malloc, thread stacks, h2o's and OpenSSL's buffers */
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
    /* files already open (sockets, eventfds, the log on stdout/stderr), and the few files read while
     * serving: /proc/self/{stat,fd} and /proc/stat for /metrics; /etc/hosts, resolv.conf and
     * nsswitch.conf for look-ups; the CA bundle for TLS to Telegram */
    "read", "write", "readv", "writev", "pread64", "pwrite64", "close", "lseek", "fstat", "newfstatat",
    "stat", "lstat", "statx", "open", "openat", "fcntl", "dup", "dup2", "dup3", "getdents64", "access",
    "faccessat", "faccessat2", "readlink", "eventfd2", "pipe", "pipe2",
    /* at shutdown: our Unix socket files */
    "unlink", "unlinkat",
    /* sockets, as a client only (PostgreSQL, the other services, DNS over UDP and netlink for
     * getaddrinfo), accepting on the listeners bound at start-up, and the event loops */
    "socket", "socketpair", "connect", "accept", "accept4", "shutdown", "sendto", "recvfrom", "sendmsg",
    "recvmsg", "sendmmsg", "recvmmsg", "getsockopt", "setsockopt", "getsockname", "getpeername",
    "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "epoll_pwait2",
    /* time: clocks outside the vDSO, sleeps */
    "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep",
    /* threads (clone: see below): look-up threads of curl and of the pool's resolver, their locks,
     * exits and scheduling; who we are (libpq looks up the user); randomness (libsodium, OpenSSL);
     * the process's figures for /metrics */
    "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "gettid", "getpid",
    "getppid", "sched_yield", "sched_getaffinity", "exit", "exit_group", "restart_syscall", "prctl",
    "getuid", "geteuid", "getgid", "getegid", "getrandom", "getrusage", "prlimit64", "getrlimit",
    "uname", "sysinfo",
    /* signals: blocked in new threads, the main thread's sigwait, abort() on a fatal error */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack", "tgkill",
#if LS_SANITIZED
    /* AddressSanitizer's runtime, never in a release build: LeakSanitizer at exit runs a helper task
     * that lists the threads (getdents), stops them (ptrace, below) and waits for them */
    "wait4", "getdents", "kill", "getpgid", "sched_getparam", "sched_getscheduler",
#endif
};

/* Calls allowed only when one argument, masked, has one value. */
typedef struct {
    const char *name;
    unsigned arg; /* 0: the first */
    scmp_datum_t mask, value;
} arg_rule_t;

static const arg_rule_t allowed_if[] = {
    /* a new thread of this process (CLONE_THREAD); a new process is refused */
    {"clone", 0, CLONE_THREAD, CLONE_THREAD},
    /* non-blocking mode, bytes waiting, isatty(): no terminal input injection, no device control */
    {"ioctl", 1, 0xffffffffu, FIONBIO}, {"ioctl", 1, 0xffffffffu, FIONREAD}, {"ioctl", 1, 0xffffffffu, TCGETS},
#if LS_SANITIZED
    /* LeakSanitizer's helper task at exit (a clone without CLONE_THREAD), and its ptrace requests
     * only: not PTRACE_TRACEME, not reading or writing another process's memory */
    {"clone", 0, CLONE_THREAD, 0},
    {"ptrace", 0, ~(scmp_datum_t)0, PTRACE_ATTACH}, {"ptrace", 0, ~(scmp_datum_t)0, PTRACE_DETACH},
    {"ptrace", 0, ~(scmp_datum_t)0, PTRACE_CONT}, {"ptrace", 0, ~(scmp_datum_t)0, PTRACE_KILL},
    {"ptrace", 0, ~(scmp_datum_t)0, PTRACE_GETREGS}, {"ptrace", 0, ~(scmp_datum_t)0, PTRACE_GETFPREGS},
    {"ptrace", 0, ~(scmp_datum_t)0, PTRACE_GETREGSET},
#endif
};
// clang-format on

/* The rules of both tables, for the names the architecture knows; then clone3, whose flags are in
 * memory a filter cannot read: it answers ENOSYS, and the C library falls back to clone. */
static int add_rules(scmp_filter_ctx ctx, char *err, size_t errlen)
{
    int rc = 0;
    const char *name = "";
    for (size_t i = 0; rc == 0 && i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        int nr = seccomp_syscall_resolve_name(name = allowed[i]);
        if (nr >= 0) /* else not a call of this architecture (or a pseudo-number standing for one) */
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    for (size_t i = 0; rc == 0 && i < sizeof(allowed_if) / sizeof(allowed_if[0]); i++) {
        const arg_rule_t *r = &allowed_if[i];
        int nr = seccomp_syscall_resolve_name(name = r->name);
        if (nr >= 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                  SCMP_CMP(r->arg, SCMP_CMP_MASKED_EQ, r->mask, r->value));
    }
    if (rc == 0) {
        name = "clone3";
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    }
    if (rc != 0)
        snprintf(err, errlen, "seccomp: %s: %s", name, strerror(-rc));
    return rc == 0 ? 0 : -1;
}

int ls_sandbox_seccomp(char *err, size_t errlen)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (ctx == NULL) {
        snprintf(err, errlen, "seccomp: out of memory");
        return -1;
    }
    /* Not SCMP_FLTATR_CTL_LOG: the kernel's log would get a line for every thread made (clone3). */
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc != 0) {
        snprintf(err, errlen, "seccomp: %s", strerror(-rc));
        seccomp_release(ctx);
        return -1;
    }
    int ok = add_rules(ctx, err, errlen) == 0;
    if (ok && (rc = seccomp_load(ctx)) != 0) {
        snprintf(err, errlen, "seccomp: cannot install the filter: %s (SECCOMP=off runs without it)",
                 strerror(-rc));
        ok = 0;
    }
    seccomp_release(ctx);
    return ok ? 0 : -1;
}
