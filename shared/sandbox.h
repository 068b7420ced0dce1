/*
 * sandbox: least privilege for a daemon — the switch from root to the RUN_AS user, and the seccomp
 * filter that leaves the process only the system calls a serving daemon makes.
 *
 * The user (RUN_AS, read with the settings): ls_sandbox_user() decides once, before anything is
 * opened, whether and to whom the process will switch. Started as root (real or effective uid 0),
 * RUN_AS is required and must name an existing user other than root; started as anyone else,
 * RUN_AS may be unset or name that same user (a process that is not root cannot switch, so another
 * name is an error). Errors are one line for the settings message (the daemon exits 2).
 *
 * The switch: the runner binds every socket as root, gives the Unix socket files to the user
 * (ls_sandbox_give: chown, so that the other daemons, running as that user, may connect and the
 * daemon may remove its own file), then ls_sandbox_drop(): supplementary groups (initgroups), gid,
 * uid — real, effective and saved — and checks that root cannot be had back (setuid(0) fails, every
 * id is the user's, no capability is left: the kernel clears them with the uid). The kernel also marks
 * the process not dumpable (no core files, no ptrace by the user's other processes) — except in sanitizer
 * builds, where LeakSanitizer must ptrace the daemon's own threads at exit and the process is made dumpable
 * again.
 *
 * The filter: ls_sandbox_seccomp() installs, on every thread at once (TSYNC) and on those created
 * later, a filter that allows the system calls of sandbox.c's table and refuses every other with
 * EPERM (the caller sees an ordinary error, as for any refused operation; strace shows it). It also
 * sets no_new_privs. Among the refused: execve, ptrace, mount, mkdir, bind/listen (nothing new is
 * served once running), process creation (clone is allowed for threads only; clone3 answers
 * ENOSYS, so that the C library falls back to clone), setuid and friends, module and namespace
 * calls, and every ioctl but FIONBIO, FIONREAD and TCGETS.
 * Sanitizer builds allow what their runtime needs in addition (see the table).
 */
#ifndef LS_SANDBOX_H
#define LS_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

#define LS_SANDBOX_NAME_MAX 32 /* longest RUN_AS */

typedef struct {
    int drop; /* 1: started as root, switch to uid/gid */
    uid_t uid;
    gid_t gid;
    char name[LS_SANDBOX_NAME_MAX + 1];
} ls_sandbox_user_t;

/* RUN_AS (NULL or "" when unset) against who we are. 0 with *u filled, or -1 with err. */
int ls_sandbox_user(const char *run_as, ls_sandbox_user_t *u, char *err, size_t errlen);
/* Makes path (a file made as root, before the switch) the user's; nothing to do unless u->drop.
 * 0, or -1 with err. */
int ls_sandbox_give(const ls_sandbox_user_t *u, const char *path, char *err, size_t errlen);
/* Switches to the user for good (see above); nothing to do unless u->drop. 0, or -1 with err. */
int ls_sandbox_drop(const ls_sandbox_user_t *u, char *err, size_t errlen);
/* Installs the filter on every thread of the process. 0, or -1 with err (nothing installed). */
int ls_sandbox_seccomp(char *err, size_t errlen);

#endif
