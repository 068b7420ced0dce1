/*
 * static: the Mini App's files (bff/web/), served by the BFF under /app/ without authentication, and
 * the development sign-in page. README "The Mini App".
 *
 * Loading (bff_static_load, from on_start: blocking is allowed there). Every regular file directly in
 * WEB_ROOT whose name is 1..BFF_STATIC_NAME_MAX of [A-Za-z0-9._-], not starting with '.', and whose
 * extension has a content type in static.c's table is read into memory; anything else (a folder, a
 * symbolic link, a dotfile, an unknown extension) is skipped with a log line. More than
 * BFF_STATIC_MAX_FILES files, one over BFF_STATIC_MAX_FILE bytes, more than BFF_STATIC_MAX_TOTAL in
 * all, a missing index.html or a folder that cannot be read refuse the start. Each file gets a strong
 * ETag (a BLAKE2b hash of its bytes) and, when it is text of at least BFF_STATIC_GZIP_MIN bytes, a
 * gzip copy made once with zlib at level 9, kept when it saves at least a tenth. Compressing once at
 * start costs nothing per request and compresses best; h2o's compress handler would compress every
 * answer again, at a lower level, on the loop.
 *
 * Serving. The table is built before the workers start and only read afterwards (no lock); answers
 * are sent from it without a copy (ls_reply_unowned). A request names a file only by looking its
 * name up in the table: no path from a request is ever opened. GET /app/ is index.html; GET / and
 * GET /app answer 302 to /app/. A file answers 200 with its content type, ETag, `Cache-Control:
 * no-cache` (the modules import each other by fixed names, so every use revalidates and a new
 * version is seen at once; an unchanged file costs a 304), `X-Content-Type-Options: nosniff`, for
 * HTML a Content-Security-Policy (scripts from the app and https://telegram.org, calls to the app's
 * own origin), and for a file with a gzip copy `Vary: Accept-Encoding` and, when the request's
 * Accept-Encoding names gzip (read as h2o's compress handler reads it, q-values aside), the copy with
 * `Content-Encoding: gzip` and its own ETag. If-None-Match naming the ETag (or *, weak or strong)
 * answers 304. A name not in the table: 404 problem+json.
 *
 * Development sign-in (DEV_SIGNIN, off by default). GET /app/dev?as=<telegram_id> answers index.html
 * with Telegram's script tag (BFF_STATIC_TELEGRAM_JS, which index.html must then hold) replaced by a
 * `<meta name="ls-dev-init-data">` carrying initData signed with BOT_TOKEN for that person, valid
 * from now (tma_sign_user), and by tg-stub.js, which builds window.Telegram.WebApp from it; optional
 * first_name, last_name, username, language_code (the names sign-in stores) and startapp (the
 * start_param of an invitation link). `Cache-Control: no-store`. Whoever reaches it can act as anyone,
 * so bff_dev_signin_check refuses the start unless every LISTEN address is TCP on a loopback address
 * (127.0.0.0/8 or ::1, as a literal) and TRUSTED_PROXY is empty (a proxy would bring other callers
 * in). Without DEV_SIGNIN, /app/dev is 404 like any name not in the table.
 */
#ifndef BFF_STATIC_H
#define BFF_STATIC_H

#include <stddef.h>

#include <config.h>
#include <request.h>

#define BFF_STATIC_NAME_MAX    64
#define BFF_STATIC_MAX_FILES   64
#define BFF_STATIC_MAX_FILE    (1024 * 1024)
#define BFF_STATIC_MAX_TOTAL   (8 * 1024 * 1024)
#define BFF_STATIC_GZIP_MIN    256
#define BFF_STATIC_TELEGRAM_JS "<script src=\"https://telegram.org/js/telegram-web-app.js\"></script>"

/* Reads the files of root into the table (replacing nothing: call once). dev_signin: index.html must
 * hold BFF_STATIC_TELEGRAM_JS, and /app/dev is served. 0, or -1 with a message in err. */
int bff_static_load(const char *root, int dev_signin, char *err, size_t errlen);
/* Frees the table, once the workers have stopped. */
void bff_static_free(void);

/* 0 when DEV_SIGNIN may be on with these settings, else -1 with the reason in err. */
int bff_dev_signin_check(const ls_cfg_listen_t *listen, const char *trusted_proxy, char *err, size_t errlen);

/* Handlers: GET /app/ and GET /app/{file:str} (the file, or the dev page); GET / and GET /app. */
void bff_static_file(ls_req_t *r);
void bff_static_redirect(ls_req_t *r);

#endif
