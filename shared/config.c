#include "config.h"

#include "errbuf.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

/* A bad value is echoed in the error so the operator sees what was read; a huge one is cut. */
#define ECHO_MAX 80
/* A URL longer than this is certainly a mistake, whatever the field's bounds say. */
#define URL_MAX 2048

static int is_string_type(ls_cfg_type_t t)
{
    return t == LS_CFG_STR || t == LS_CFG_SECRET || t == LS_CFG_URL;
}

static void *field_ptr(void *out, const ls_cfg_field_t *f)
{
    return (char *)out + f->offset;
}

/*
 * Writes "NAME=value" (or just "NAME" for secrets) into buf: every message about a value starts
 * this way, and this is the one place that decides whether a value may be shown.
 */
static void describe(char *buf, size_t len, const ls_cfg_field_t *f, const char *value, int is_default)
{
    if (f->type == LS_CFG_SECRET) {
        snprintf(buf, len, "%s%s", f->env, is_default ? " (default)" : "");
        return;
    }
    size_t vlen = strlen(value);
    int cut = vlen > ECHO_MAX;
    snprintf(buf, len, "%s=%.*s%s%s", f->env, (int)(cut ? ECHO_MAX : vlen), value, cut ? "..." : "",
             is_default ? " (default)" : "");
}

/* Strict decimal: optional sign, digits only, nothing before or after, no overflow. */
static int parse_ll(const char *s, long long *out)
{
    if (!(isdigit((unsigned char)s[0]) || ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1]))))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_port(const char *s, int *out)
{
    long long v;
    if (parse_ll(s, &v) != 0 || v < 1 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

/* Whether s[0..n) has a control character, or also a space when spaces_too. */
static int has_control(const char *s, size_t n, int spaces_too)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < ' ' || c == 0x7f || (spaces_too && c == ' '))
            return 1;
    }
    return 0;
}

_Static_assert(LS_CFG_UNIX_PATH_MAX + 1 == sizeof(((struct sockaddr_un *)0)->sun_path),
               "LS_CFG_UNIX_PATH_MAX is sun_path less its NUL");

static const char unix_prefix[] = "unix:";
#define UNIX_PREFIX_LEN (sizeof(unix_prefix) - 1)

static int is_unix_address(const char *s, size_t len)
{
    return len >= UNIX_PREFIX_LEN && strncasecmp(s, unix_prefix, UNIX_PREFIX_LEN) == 0;
}

/* The path of "unix:/path" (len bytes in all) checked for what bind() and connect() need. */
static int check_unix_path(const char *path, size_t plen, const char **why)
{
    if (plen == 0 || path[0] != '/') {
        *why = "a unix socket path must be absolute (unix:/path/to/name.sock)";
        return -1;
    }
    if (plen > LS_CFG_UNIX_PATH_MAX) {
        *why = "a unix socket path must be at most 107 bytes (sun_path)";
        return -1;
    }
    if (path[plen - 1] == '/') {
        *why = "a unix socket path must name a file, not end with /";
        return -1;
    }
    if (has_control(path, plen, 0)) {
        *why = "a unix socket path must not contain control characters";
        return -1;
    }
    return 0;
}

/* One LISTEN item of len bytes: "host:port", ":port", "[v6]:port" or "unix:/path". */
static int parse_listen_addr(const char *s, size_t len, ls_cfg_addr_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (is_unix_address(s, len)) {
        const char *path = s + UNIX_PREFIX_LEN;
        size_t plen = len - UNIX_PREFIX_LEN;
        if (check_unix_path(path, plen, why) != 0)
            return -1;
        out->is_unix = 1;
        memcpy(out->path, path, plen);
        out->path[plen] = '\0';
        return 0;
    }
    const char *colon = memrchr(s, ':', len); /* the port follows the last colon */
    if (colon == NULL) {
        *why = "each address must be host:port, :port or unix:/path";
        return -1;
    }
    const char *host = s;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    char port[8];
    size_t plen = len - (size_t)(colon + 1 - s);
    if (plen == 0 || plen >= sizeof(port)) {
        *why = "port must be an integer from 1 to 65535";
        return -1;
    }
    memcpy(port, colon + 1, plen);
    port[plen] = '\0';
    if (parse_port(port, &out->port) != 0) {
        *why = "port must be an integer from 1 to 65535";
        return -1;
    }
    if (hlen == 0) {
        host = "127.0.0.1";
        hlen = strlen(host);
    }
    if (hlen >= sizeof(out->host)) {
        *why = "host must be at most 63 characters";
        return -1;
    }
    if (has_control(host, hlen, 1)) {
        *why = "host must not contain spaces or control characters";
        return -1;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    return 0;
}

static int same_addr(const ls_cfg_addr_t *a, const ls_cfg_addr_t *b)
{
    if (a->is_unix != b->is_unix)
        return 0;
    if (a->is_unix)
        return strcmp(a->path, b->path) == 0;
    return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

/* A comma-separated list of addresses; spaces around an item are ignored. On failure, item
 * receives the offending item (cut to fit) when the problem is with one item, else "". */
static int parse_listen(const char *s, ls_cfg_listen_t *out, const char **why, char *item, size_t itemlen)
{
    item[0] = '\0';
    memset(out, 0, sizeof(*out));
    for (const char *p = s;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len == 0) {
            *why = "empty address in the list (addresses are separated by single commas)";
            return -1;
        }
        if (out->n == LS_CFG_LISTEN_MAX) {
            *why = "at most 4 addresses";
            return -1;
        }
        ls_cfg_addr_t *a = &out->addr[out->n];
        snprintf(item, itemlen, "%.*s", (int)len, p);
        if (parse_listen_addr(p, len, a, why) != 0)
            return -1;
        for (int i = 0; i < out->n; i++) {
            if (same_addr(&out->addr[i], a)) {
                *why = "the same address is listed twice";
                return -1;
            }
        }
        out->n++;
        item[0] = '\0';
        if (end == NULL)
            return 0;
        p = end + 1;
    }
}

void ls_cfg_addr_format(const ls_cfg_addr_t *a, char *buf, size_t len)
{
    if (len == 0)
        return;
    if (a->is_unix)
        snprintf(buf, len, "unix:%s", a->path);
    else if (strchr(a->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%d", a->host, a->port);
    else
        snprintf(buf, len, "%s:%d", a->host, a->port);
}

/* Returns a heap copy of "http://host[:port][/path]" without trailing slashes, or NULL + why. */
static char *parse_url(const char *s, const char **why)
{
    static const char scheme[] = "http://";
    size_t len = strlen(s);
    if (is_unix_address(s, len)) {
        if (check_unix_path(s + UNIX_PREFIX_LEN, len - UNIX_PREFIX_LEN, why) != 0)
            return NULL;
        char *copy = strndup(s, len);
        if (copy == NULL)
            *why = "out of memory";
        else
            memcpy(copy, unix_prefix, UNIX_PREFIX_LEN); /* one spelling for ls_http to recognise */
        return copy;
    }
    if (strncasecmp(s, scheme, sizeof(scheme) - 1) != 0) {
        *why = "must start with http:// or unix:/";
        return NULL;
    }
    if (len > URL_MAX) {
        *why = "must be at most 2048 characters";
        return NULL;
    }
    if (has_control(s, len, 1)) {
        *why = "must not contain spaces or control characters";
        return NULL;
    }
    while (len > sizeof(scheme) - 1 && s[len - 1] == '/')
        len--;
    const char *auth = s + sizeof(scheme) - 1;
    size_t alen = strcspn(auth, "/?#");
    if (auth + alen > s + len)
        alen = (size_t)(s + len - auth);
    /* A bracketed IPv6 literal holds colons of its own: the port's colon follows the ']'. */
    const char *host_end = auth;
    if (alen > 0 && auth[0] == '[') {
        host_end = memchr(auth, ']', alen);
        if (host_end == NULL || host_end == auth + 1) {
            *why = "has an unclosed or empty [ipv6] host";
            return NULL;
        }
    }
    const char *colon = memchr(host_end, ':', alen - (size_t)(host_end - auth));
    size_t hostlen = colon ? (size_t)(colon - auth) : alen;
    if (hostlen == 0) {
        *why = "must name a host after http://";
        return NULL;
    }
    if (colon != NULL) {
        char port[8];
        size_t plen = alen - hostlen - 1;
        int p;
        if (plen == 0 || plen >= sizeof(port)) {
            *why = "port must be an integer from 1 to 65535";
            return NULL;
        }
        memcpy(port, colon + 1, plen);
        port[plen] = '\0';
        if (parse_port(port, &p) != 0) {
            *why = "port must be an integer from 1 to 65535";
            return NULL;
        }
    }
    char *copy = strndup(s, len);
    if (copy == NULL)
        *why = "out of memory";
    return copy;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Parses one value (from the environment or the default) into the struct. */
static int load_one(const ls_cfg_field_t *f, const char *value, int is_default, void *out, char *err,
                    size_t errlen)
{
    char what[ECHO_MAX + 128];
    const char *why = NULL;
    void *dst = field_ptr(out, f);

    describe(what, sizeof(what), f, value, is_default);

    switch (f->type) {
    case LS_CFG_INT: {
        long long v;
        if (parse_ll(value, &v) != 0 || v < f->min || v > f->max) {
            set_err(err, errlen, "%s: must be an integer from %lld to %lld", what, f->min, f->max);
            return -1;
        }
        *(long long *)dst = v;
        return 0;
    }
    case LS_CFG_STR:
    case LS_CFG_SECRET: {
        size_t len = strlen(value);
        if (len < (size_t)(f->min > 0 ? f->min : 0) || (f->max > 0 && len > (size_t)f->max)) {
            if (f->max > 0)
                set_err(err, errlen, "%s: must be %lld to %lld characters", what, f->min > 0 ? f->min : 0,
                        f->max);
            else
                set_err(err, errlen, "%s: must be at least %lld characters", what, f->min);
            return -1;
        }
        char *copy = strdup(value);
        if (copy == NULL) {
            set_err(err, errlen, "%s: out of memory", f->env);
            return -1;
        }
        *(char **)dst = copy;
        return 0;
    }
    case LS_CFG_LISTEN: {
        ls_cfg_listen_t l;
        char item[ECHO_MAX + 1];
        if (parse_listen(value, &l, &why, item, sizeof(item)) != 0) {
            if (item[0] != '\0' && strchr(value, ',') != NULL)
                set_err(err, errlen, "%s: '%s': %s", what, item, why);
            else
                set_err(err, errlen, "%s: %s", what, why);
            return -1;
        }
        *(ls_cfg_listen_t *)dst = l;
        return 0;
    }
    case LS_CFG_URL: {
        char *url = parse_url(value, &why);
        if (url == NULL) {
            set_err(err, errlen, "%s: %s (e.g. http://127.0.0.1:8081 or unix:/run/ls/auth.sock)", what, why);
            return -1;
        }
        *(char **)dst = url;
        return 0;
    }
    case LS_CFG_LEVEL: {
        ls_log_level_t level;
        if (ls_log_level_parse(value, &level) != 0) {
            set_err(err, errlen, "%s: must be debug, info, warn or error", what);
            return -1;
        }
        *(int *)dst = (int)level;
        return 0;
    }
    case LS_CFG_BOOL: {
        int b;
        if (parse_bool(value, &b) != 0) {
            set_err(err, errlen, "%s: must be 1, 0, true, false, yes, no, on or off", what);
            return -1;
        }
        *(int *)dst = b;
        return 0;
    }
    }
    set_err(err, errlen, "%s: unknown setting type %d", f->env, (int)f->type);
    return -1;
}

int ls_config_load(const ls_cfg_field_t *fields, size_t n, void *out, char *err, size_t errlen)
{
    /* String members start NULL so that a failure part-way can free exactly what was set. */
    for (size_t i = 0; i < n; i++) {
        if (is_string_type(fields[i].type))
            *(char **)field_ptr(out, &fields[i]) = NULL;
    }

    for (size_t i = 0; i < n; i++) {
        const ls_cfg_field_t *f = &fields[i];
        const char *value = getenv(f->env);
        int is_default = 0;
        if (value == NULL || value[0] == '\0') {
            if (f->def == NULL) {
                set_err(err, errlen, "%s is required (%s)", f->env, f->help ? f->help : "no default");
                goto fail;
            }
            value = f->def;
            is_default = 1;
        }
        if (load_one(f, value, is_default, out, err, errlen) != 0)
            goto fail;
    }
    return 0;

fail:
    ls_config_free(fields, n, out);
    return -1;
}

void ls_config_free(const ls_cfg_field_t *fields, size_t n, void *out)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_string_type(fields[i].type))
            continue;
        char **p = field_ptr(out, &fields[i]);
        free(*p);
        *p = NULL;
    }
}

/* What a value may be, for the help table ("" when anything goes). */
static void describe_bounds(const ls_cfg_field_t *f, char *buf, size_t len)
{
    buf[0] = '\0';
    switch (f->type) {
    case LS_CFG_INT:
        snprintf(buf, len, "%lld..%lld", f->min, f->max);
        break;
    case LS_CFG_STR:
    case LS_CFG_SECRET:
        if (f->max > 0)
            snprintf(buf, len, "%lld..%lld chars", f->min > 0 ? f->min : 0, f->max);
        else if (f->min > 0)
            snprintf(buf, len, ">= %lld chars", f->min);
        else
            snprintf(buf, len, "text");
        break;
    case LS_CFG_LISTEN:
        snprintf(buf, len, "[host]:port|unix:/path, up to %d", LS_CFG_LISTEN_MAX);
        break;
    case LS_CFG_URL:
        snprintf(buf, len, "http://host:port|unix:/path");
        break;
    case LS_CFG_LEVEL:
        snprintf(buf, len, "debug|info|warn|error");
        break;
    case LS_CFG_BOOL:
        snprintf(buf, len, "true|false");
        break;
    }
}

static const char *describe_default(const ls_cfg_field_t *f)
{
    if (f->type == LS_CFG_SECRET)
        return f->def == NULL ? "required (secret)" : "(secret)";
    if (f->def == NULL)
        return "required";
    if (f->def[0] == '\0')
        return "\"\"";
    return f->def;
}

void ls_config_print_help(FILE *fp, const char *daemon, const char *summary, const ls_cfg_field_t *fields,
                          size_t n)
{
    /* Column widths come from the content so the table lines up whatever the daemon declares. */
    int wname = (int)strlen("VARIABLE"), wdef = (int)strlen("DEFAULT"), wbounds = (int)strlen("ALLOWED");
    char bounds[64];
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(fields[i].env);
        if (l > wname)
            wname = l;
        l = (int)strlen(describe_default(&fields[i]));
        if (l > wdef)
            wdef = l;
        describe_bounds(&fields[i], bounds, sizeof(bounds));
        l = (int)strlen(bounds);
        if (l > wbounds)
            wbounds = l;
    }

    fprintf(fp, "%s - %s\n\n", daemon, summary ? summary : "");
    fprintf(fp, "Usage: %s [--help]\n\n", daemon);
    fprintf(fp,
            "Settings are read from the environment once, at start-up. An empty value counts as unset.\n\n");
    fprintf(fp, "  %-*s  %-*s  %-*s  %s\n", wname, "VARIABLE", wdef, "DEFAULT", wbounds, "ALLOWED",
            "MEANING");
    for (size_t i = 0; i < n; i++) {
        const ls_cfg_field_t *f = &fields[i];
        describe_bounds(f, bounds, sizeof(bounds));
        fprintf(fp, "  %-*s  %-*s  %-*s  %s\n", wname, f->env, wdef, describe_default(f), wbounds, bounds,
                f->help ? f->help : "");
    }

    /* Required settings are repeated at the end: they are what stops a first start. */
    int nreq = 0;
    for (size_t i = 0; i < n; i++) {
        if (fields[i].def != NULL)
            continue;
        fprintf(fp, "%s%s", nreq == 0 ? "\nRequired: " : ", ", fields[i].env);
        nreq++;
    }
    if (nreq > 0)
        fputc('\n', fp);
}
