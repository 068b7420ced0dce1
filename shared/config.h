/*
 * config: a daemon's settings as one table, read once from the environment at start-up.
 *
 * Each daemon declares a struct for its settings and a table of ls_cfg_field_t describing every
 * field: environment name, type, default (NULL = required), bounds, help text, and where in the
 * struct the value goes (offsetof). ls_config_load() fills the struct or explains, in err, the
 * first setting that is missing or bad — naming the variable, the value and what was expected.
 * `--help` prints the same table (ls_config_print_help), so documentation cannot drift.
 *
 * Field types and the C type stored at the offset:
 *   LS_CFG_INT     long long        decimal, within [min, max]
 *   LS_CFG_STR     char *           any string; length within [min, max] (max 0 = no limit)
 *   LS_CFG_SECRET  char *           like STR, but --help never shows a value
 *   LS_CFG_LISTEN  ls_cfg_listen_t  comma-separated list of 1..LS_CFG_LISTEN_MAX addresses, each
 *                                   "host:port" or ":port" (host defaults to 127.0.0.1; port
 *                                   1..65535) or "unix:/absolute/path" (a Unix stream socket; the
 *                                   path fits sun_path). Empty items, relative paths, duplicates
 *                                   and more than LS_CFG_LISTEN_MAX items are errors.
 *   LS_CFG_URL     char *           "http://host:port" with no trailing slash (stored without it),
 *                                   or "unix:/absolute/path" of a Unix socket (stored as given)
 *   LS_CFG_LEVEL   int              log level name: debug|info|warn|error
 *   LS_CFG_BOOL    int              1|0|true|false|yes|no|on|off
 *
 * Strings are heap copies owned by the struct; ls_config_free() releases them.
 * An empty environment value counts as unset.
 */
#ifndef LS_CONFIG_H
#define LS_CONFIG_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    LS_CFG_INT,
    LS_CFG_STR,
    LS_CFG_SECRET,
    LS_CFG_LISTEN,
    LS_CFG_URL,
    LS_CFG_LEVEL,
    LS_CFG_BOOL,
} ls_cfg_type_t;

#define LS_CFG_LISTEN_MAX 4
/* Longest Unix socket path: sun_path (108 bytes on Linux) less its NUL. */
#define LS_CFG_UNIX_PATH_MAX 107

typedef struct {
    int is_unix;                         /* 1: path is set; 0: host and port are */
    char host[64];                       /* TCP: name or address, without [] for IPv6 */
    int port;                            /* TCP: 1..65535 */
    char path[LS_CFG_UNIX_PATH_MAX + 1]; /* Unix: absolute path */
} ls_cfg_addr_t;

/* LISTEN: the addresses in the order given. */
typedef struct {
    int n; /* 1..LS_CFG_LISTEN_MAX after a successful load */
    ls_cfg_addr_t addr[LS_CFG_LISTEN_MAX];
} ls_cfg_listen_t;

/* "host:port" or "unix:/path" of a into buf (always NUL-terminated); for logs and messages. */
void ls_cfg_addr_format(const ls_cfg_addr_t *a, char *buf, size_t len);

typedef struct {
    const char *env; /* e.g. "PG_POOL_SIZE" */
    ls_cfg_type_t type;
    const char *def; /* default as the user would write it; NULL: required */
    long long min, max;
    size_t offset;    /* offsetof(settings struct, member) */
    const char *help; /* one line */
} ls_cfg_field_t;

/* Returns 0, or -1 with a one-line explanation in err. On failure nothing needs freeing. */
int ls_config_load(const ls_cfg_field_t *fields, size_t n, void *out, char *err, size_t errlen);
void ls_config_free(const ls_cfg_field_t *fields, size_t n, void *out);
void ls_config_print_help(FILE *fp, const char *daemon, const char *summary, const ls_cfg_field_t *fields,
                          size_t n);

#endif
