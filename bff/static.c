/* The Mini App's files under /app/ and the development sign-in page. See static.h. */
#include "static.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zlib.h>

#include <log.h>
#include <query.h>
#include <scalar.h>

#include "bff.h"

#define HASH_BYTES 16
#define ETAG_MAX   (2 * HASH_BYTES + 6) /* "…-gz" and the quotes */

typedef struct {
    char name[BFF_STATIC_NAME_MAX + 1];
    const char *content_type;
    int html;
    char *body;
    size_t len;
    char *gz; /* NULL: no gzip copy */
    size_t gz_len;
    char etag[ETAG_MAX + 1];
    char etag_gz[ETAG_MAX + 1];
} web_file_t;

/* Written by bff_static_load before the workers start; only read afterwards. */
static struct {
    web_file_t *files; /* sorted by name */
    size_t n;
    const web_file_t *index;
    int dev_signin;
    size_t telegram_at; /* where BFF_STATIC_TELEGRAM_JS is in index.html (dev_signin only) */
} web;

static const struct {
    const char *ext;
    const char *type;
    int text; /* worth compressing */
} types[] = {
    {".html", "text/html; charset=utf-8", 1},
    {".css", "text/css; charset=utf-8", 1},
    {".js", "text/javascript; charset=utf-8", 1},
    {".mjs", "text/javascript; charset=utf-8", 1},
    {".json", "application/json", 1},
    {".webmanifest", "application/manifest+json", 1},
    {".svg", "image/svg+xml", 1},
    {".txt", "text/plain; charset=utf-8", 1},
    {".png", "image/png", 0},
    {".ico", "image/x-icon", 0},
    {".webp", "image/webp", 0},
    {".woff2", "font/woff2", 0},
};

static const char csp[] = "default-src 'self'; script-src 'self' https://telegram.org; "
                          "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
                          "object-src 'none'; base-uri 'none'; form-action 'none'";

/* ---- loading ---- */

static int name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > BFF_STATIC_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int type_of(const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t elen = strlen(types[i].ext);
        if (len > elen && strcmp(name + len - elen, types[i].ext) == 0)
            return (int)i;
    }
    return -1;
}

static void skipped(const char *root, const char *name, const char *why)
{
    ls_log_line_t l;
    if (ls_log_begin(&l, LS_LOG_INFO, NULL, "web file skipped")) {
        ls_log_str(&l, "web_root", root);
        ls_log_str(&l, "file", name);
        ls_log_str(&l, "reason", why);
        ls_log_end(&l);
    }
}

static void etag_of(const char *body, size_t len, const char *suffix, char out[ETAG_MAX + 1])
{
    unsigned char hash[HASH_BYTES];
    char hex[2 * HASH_BYTES + 1];
    crypto_generichash(hash, sizeof(hash), (const unsigned char *)body, len, NULL, 0);
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
    snprintf(out, ETAG_MAX + 1, "\"%s%s\"", hex, suffix);
}

/* A gzip copy of f's body into f->gz, kept when it saves at least a tenth. -1: out of memory. */
static int compress_file(web_file_t *f)
{
    z_stream z = {0};
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16 /* gzip wrapper */, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, (uLong)f->len);
    char *buf = malloc(cap);
    int rc = Z_MEM_ERROR;
    if (buf != NULL) {
        z.next_in = (Bytef *)f->body;
        z.avail_in = (uInt)f->len;
        z.next_out = (Bytef *)buf;
        z.avail_out = (uInt)cap;
        rc = deflate(&z, Z_FINISH);
    }
    deflateEnd(&z);
    if (rc != Z_STREAM_END || z.total_out > f->len - f->len / 10) {
        free(buf);
        return rc == Z_STREAM_END ? 0 : -1;
    }
    f->gz = buf;
    f->gz_len = z.total_out;
    etag_of(f->body, f->len, "-gz", f->etag_gz);
    return 0;
}

/* Reads name in the folder dfd (a regular file of size bytes) into f. 0, or -1 with err. */
static int read_file(int dfd, const char *root, const char *name, size_t size, web_file_t *f, char *err,
                     size_t errlen)
{
    const char *why = NULL;
    size_t got = 0;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        why = strerror(errno);
    } else if ((f->body = malloc(size > 0 ? size : 1)) == NULL) {
        why = "out of memory";
    } else {
        while (got < size && why == NULL) {
            ssize_t n = read(fd, f->body + got, size - got);
            if (n < 0 && errno != EINTR)
                why = strerror(errno);
            else if (n == 0)
                why = "it became shorter while read";
            else if (n > 0)
                got += (size_t)n;
        }
    }
    if (fd >= 0)
        close(fd);
    if (why != NULL) {
        snprintf(err, errlen, "WEB_ROOT %s: cannot read %s: %s", root, name, why);
        return -1;
    }
    f->len = size;
    snprintf(f->name, sizeof(f->name), "%s", name);
    etag_of(f->body, f->len, "", f->etag);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const web_file_t *)a)->name, ((const web_file_t *)b)->name);
}

/* One directory entry into the table, or skipped. 0, or -1 with err. */
static int load_entry(int dfd, const char *root, const char *name, size_t *total, char *err, size_t errlen)
{
    struct stat st;
    int t;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    if (!name_ok(name)) {
        skipped(root, name, "a dotfile, or a name of other than [A-Za-z0-9._-] or over 64 bytes");
        return 0;
    }
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
        skipped(root, name, "not a regular file");
        return 0;
    }
    if ((t = type_of(name)) < 0) {
        skipped(root, name, "no content type for its extension");
        return 0;
    }
    if (web.n == BFF_STATIC_MAX_FILES) {
        snprintf(err, errlen, "WEB_ROOT %s: more than %d files", root, BFF_STATIC_MAX_FILES);
        return -1;
    }
    if (st.st_size > BFF_STATIC_MAX_FILE || *total + (size_t)st.st_size > BFF_STATIC_MAX_TOTAL) {
        snprintf(err, errlen, "WEB_ROOT %s: %s makes more than the limit (%d bytes a file, %d in all)", root,
                 name, BFF_STATIC_MAX_FILE, BFF_STATIC_MAX_TOTAL);
        return -1;
    }
    web_file_t *f = &web.files[web.n];
    memset(f, 0, sizeof(*f));
    if (read_file(dfd, root, name, (size_t)st.st_size, f, err, errlen) != 0) {
        free(f->body);
        return -1;
    }
    web.n++;
    *total += f->len;
    f->content_type = types[t].type;
    f->html = strcmp(types[t].ext, ".html") == 0;
    if (types[t].text && f->len >= BFF_STATIC_GZIP_MIN && compress_file(f) != 0) {
        snprintf(err, errlen, "WEB_ROOT %s: cannot compress %s (out of memory)", root, name);
        return -1;
    }
    return 0;
}

static const web_file_t *find(const char *name, size_t len)
{
    web_file_t key;
    if (len == 0 || len > BFF_STATIC_NAME_MAX)
        return NULL;
    memcpy(key.name, name, len);
    key.name[len] = '\0';
    return bsearch(&key, web.files, web.n, sizeof(web.files[0]), by_name);
}

int bff_static_load(const char *root, int dev_signin, char *err, size_t errlen)
{
    size_t total = 0;
    int rc = 0;
    DIR *dir = opendir(root);
    if (dir == NULL) {
        snprintf(err, errlen, "WEB_ROOT %s: %s", root, strerror(errno));
        return -1;
    }
    web.files = calloc(BFF_STATIC_MAX_FILES, sizeof(web.files[0]));
    if (web.files == NULL) {
        closedir(dir);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(dir);
        if (e == NULL) {
            if (errno != 0) {
                snprintf(err, errlen, "WEB_ROOT %s: %s", root, strerror(errno));
                rc = -1;
            }
            break;
        }
        if ((rc = load_entry(dirfd(dir), root, e->d_name, &total, err, errlen)) != 0)
            break;
    }
    closedir(dir);
    if (rc != 0)
        return -1;
    qsort(web.files, web.n, sizeof(web.files[0]), by_name);
    web.index = find("index.html", strlen("index.html"));
    if (web.index == NULL) {
        snprintf(err, errlen, "WEB_ROOT %s: no index.html", root);
        return -1;
    }
    web.dev_signin = dev_signin;
    if (dev_signin) {
        const char *at =
            memmem(web.index->body, web.index->len, BFF_STATIC_TELEGRAM_JS, strlen(BFF_STATIC_TELEGRAM_JS));
        if (at == NULL) {
            snprintf(err, errlen, "WEB_ROOT %s: DEV_SIGNIN needs index.html to load %s", root,
                     BFF_STATIC_TELEGRAM_JS);
            return -1;
        }
        web.telegram_at = (size_t)(at - web.index->body);
    }
    ls_log_line_t l;
    if (ls_log_begin(&l, LS_LOG_INFO, NULL, "web files loaded")) {
        ls_log_str(&l, "web_root", root);
        ls_log_int(&l, "files", (int64_t)web.n);
        ls_log_int(&l, "bytes", (int64_t)total);
        ls_log_end(&l);
    }
    return 0;
}

void bff_static_free(void)
{
    for (size_t i = 0; i < web.n; i++) {
        free(web.files[i].body);
        free(web.files[i].gz);
    }
    free(web.files);
    memset(&web, 0, sizeof(web));
}

/* ---- development sign-in ---- */

static int is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

int bff_dev_signin_check(const ls_cfg_listen_t *listen, const char *trusted_proxy, char *err, size_t errlen)
{
    for (int i = 0; i < listen->n; i++) {
        const ls_cfg_addr_t *a = &listen->addr[i];
        if (a->is_unix || !is_loopback(a->host)) {
            char addr[LS_CFG_UNIX_PATH_MAX + 16];
            ls_cfg_addr_format(a, addr, sizeof(addr));
            snprintf(err, errlen,
                     "DEV_SIGNIN is for development only: LISTEN must hold loopback TCP addresses only "
                     "(127.0.0.1:port or [::1]:port), not %s",
                     addr);
            return -1;
        }
    }
    if (trusted_proxy[0] != '\0') {
        snprintf(err, errlen,
                 "DEV_SIGNIN is for development only: TRUSTED_PROXY must be empty (a proxy in "
                 "front brings other callers in)");
        return -1;
    }
    return 0;
}

/* Query parameter name into out (size bytes with the NUL); "" when absent. -1 after answering 400. */
static int dev_param(ls_req_t *r, const char *name, char *out, size_t size)
{
    const char *v = ls_req_query(r, name);
    out[0] = '\0';
    if (v == NULL)
        return 0;
    if (strlen(v) >= size) {
        ls_reply_problem(r, 400, "query parameter '%s' is longer than %zu bytes", name, size - 1);
        return -1;
    }
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

/* index.html with Telegram's script replaced by the signed initData and tg-stub.js. */
static void serve_dev(ls_req_t *r)
{
    const bff_config_t *c = ls_req_config(r);
    const char *as = ls_req_query(r, "as");
    char start_param[TMA_MAX_LEN / 4], data[TMA_MAX_LEN + 1];
    tma_user_t u = {0};

    if (as == NULL || ls_parse_id(as, strlen(as), &u.telegram_id) != 0)
        return ls_reply_problem_str(r, 400,
                                    "query parameter 'as' must be a telegram id (whom to sign in as)");
    if (dev_param(r, "first_name", u.first_name, sizeof(u.first_name)) != 0 ||
        dev_param(r, "last_name", u.last_name, sizeof(u.last_name)) != 0 ||
        dev_param(r, "username", u.username, sizeof(u.username)) != 0 ||
        dev_param(r, "language_code", u.language_code, sizeof(u.language_code)) != 0 ||
        dev_param(r, "startapp", start_param, sizeof(start_param)) != 0)
        return;
    if (u.first_name[0] == '\0')
        snprintf(u.first_name, sizeof(u.first_name), "User %lld", (long long)u.telegram_id);
    u.auth_date = (int64_t)time(NULL);
    int len = tma_sign_user(c->tma_key, &u, start_param, data, sizeof(data));
    if (len < 0)
        return ls_reply_problem_str(r, 400, "the init data would be too long");

    static const char meta[] = "<meta name=\"ls-dev-init-data\" content=\"";
    static const char stub[] = "\"><script src=\"tg-stub.js\"></script>";
    const web_file_t *ix = web.index;
    size_t tail = web.telegram_at + strlen(BFF_STATIC_TELEGRAM_JS);
    /* initData is URL-encoded: only '&' needs escaping in an attribute ("&amp;", 5 bytes). */
    char *page = ls_req_alloc(r, ix->len + sizeof(meta) + sizeof(stub) + 5 * (size_t)len);
    size_t o = web.telegram_at;
    memcpy(page, ix->body, o);
    memcpy(page + o, meta, sizeof(meta) - 1);
    o += sizeof(meta) - 1;
    for (int i = 0; i < len; i++) {
        if (data[i] == '&') {
            memcpy(page + o, "&amp;", 5);
            o += 5;
        } else if (data[i] == '"' || data[i] == '<' || data[i] == '>') {
            return ls_reply_problem_str(r, 500, "signed init data holds a character it never holds");
        } else {
            page[o++] = data[i];
        }
    }
    memcpy(page + o, stub, sizeof(stub) - 1);
    o += sizeof(stub) - 1;
    memcpy(page + o, ix->body + tail, ix->len - tail);
    o += ix->len - tail;
    bff_add_header(r, "cache-control", "no-store");
    bff_add_header(r, "x-content-type-options", "nosniff");
    bff_add_header(r, "content-security-policy", csp);
    ls_reply_raw(r, 200, ix->content_type, page, o);
}

/* ---- serving ---- */

/* 1 when the If-None-Match list names etag (weak comparison: W/"x" matches "x") or is "*". */
static int none_match(ls_req_t *r, const char *etag)
{
    h2o_iovec_t v;
    size_t elen = strlen(etag);
    if (!ls_h2o_header(r->h2o, H2O_STRLIT("if-none-match"), &v))
        return 0;
    for (size_t i = 0; i < v.len;) {
        if (v.base[i] == ' ' || v.base[i] == '\t' || v.base[i] == ',') {
            i++;
            continue;
        }
        if (v.base[i] == '*')
            return 1;
        if (v.len - i >= 2 && v.base[i] == 'W' && v.base[i + 1] == '/')
            i += 2;
        if (v.len - i >= elen && memcmp(v.base + i, etag, elen) == 0)
            return 1;
        while (i < v.len && v.base[i] != ',') /* to the next tag */
            i++;
    }
    return 0;
}

void bff_static_file(ls_req_t *r)
{
    const ls_route_param_t *p = ls_route_param(&r->match, "file");
    const web_file_t *f = web.index;
    if (p != NULL) {
        if (web.dev_signin && p->value_len == 3 && memcmp(p->value, "dev", 3) == 0)
            return serve_dev(r);
        if ((f = find(p->value, p->value_len)) == NULL)
            return ls_reply_problem(r, 404, "the Mini App has no file %.*s",
                                    (int)(p->value_len > 64 ? 64 : p->value_len), p->value);
    }
    int gz = f->gz != NULL && (h2o_get_compressible_types(&r->h2o->headers) & H2O_COMPRESSIBLE_GZIP) != 0;
    const char *etag = gz ? f->etag_gz : f->etag;
    bff_add_header(r, "etag", etag);
    bff_add_header(r, "cache-control", "no-cache");
    if (f->gz != NULL)
        bff_add_header(r, "vary", "accept-encoding");
    if (none_match(r, etag))
        return ls_reply_unowned(r, 304, NULL, "", 0);
    bff_add_header(r, "x-content-type-options", "nosniff");
    if (f->html)
        bff_add_header(r, "content-security-policy", csp);
    if (gz) {
        bff_add_header(r, "content-encoding", "gzip");
        return ls_reply_unowned(r, 200, f->content_type, f->gz, f->gz_len);
    }
    ls_reply_unowned(r, 200, f->content_type, f->body, f->len);
}

void bff_static_redirect(ls_req_t *r)
{
    bff_add_header(r, "location", "/app/");
    ls_reply_empty(r, 302);
}
