/*
 * tma: Telegram Mini App init data — validation (the BFF's authentication) and signing (tma-sign,
 * tests).
 *
 * initData is a query string: key=value pairs joined by '&', values URL-encoded, one of them
 * `hash`. It is valid (docs/ARCHITECTURE.md §7) when
 *     hex(HMAC_SHA256(key = HMAC_SHA256(key = "WebAppData", msg = BOT_TOKEN),
 *                     msg = data-check string))
 * equals `hash`, where the data-check string is every other pair as `key=decoded value`, sorted by
 * key and joined by '\n'. On top of that: `auth_date` is no older than max_age seconds (0 turns
 * the age check off) and not more than TMA_MAX_FUTURE_S in the future, `user` is a JSON object
 * with a positive integer `id` of at most 2^53 - 1, and the text is storable: every value UTF-8,
 * and no NUL (\u0000) or half surrogate pair in the user (ls_json_text_check, body.h) — checked
 * after the signature, so that only signed data is told TMA_BAD_TEXT.
 *
 * Everything here is pure (no I/O, no globals) and bounded: input over TMA_MAX_LEN bytes or with
 * more than TMA_MAX_FIELDS pairs is rejected. The reason given for a rejection never contains the
 * hash or the bot token.
 */
#ifndef BFF_TMA_H
#define BFF_TMA_H

#include <stddef.h>
#include <stdint.h>

#define TMA_MAX_LEN      4096
#define TMA_MAX_FIELDS   32
#define TMA_MAX_FUTURE_S 60
#define TMA_KEY_BYTES    32

/* The caller as initData names them; strings are NUL-terminated, "" when absent. */
typedef struct {
    int64_t telegram_id;
    int64_t auth_date;
    char first_name[256];
    char last_name[256];
    char username[128];
    char language_code[16];
    char photo_url[512];
} tma_user_t;

/* The HMAC key for a bot: HMAC_SHA256(key = "WebAppData", msg = bot_token). Derive it once. */
void tma_derive_key(const char *bot_token, unsigned char key[TMA_KEY_BYTES]);

/* tma_validate's refusals. */
#define TMA_INVALID (-1) /* not valid init data: missing, malformed, forged or expired (401) */
#define TMA_BAD_TEXT                                                                                         \
    (-2) /* signed and fresh, but a value or the user holds a NUL, half a surrogate                          \
          * pair or bytes that are not UTF-8: text that may not be stored (400) */

/*
 * Validates init_data (len bytes, not necessarily NUL-terminated) against key at time `now`
 * (seconds since the epoch). Returns 0 and fills *out, or TMA_INVALID or TMA_BAD_TEXT with *reason
 * set to a static, secret-free sentence ("hash does not match", "auth_date is too old", ...).
 */
int tma_validate(const char *init_data, size_t len, const unsigned char key[TMA_KEY_BYTES], int64_t now,
                 int64_t max_age, tma_user_t *out, const char **reason);

/* A decoded pair for tma_sign(). */
typedef struct {
    const char *key;
    const char *value;
} tma_pair_t;

/*
 * Builds signed initData from n pairs (decoded values; keys [A-Za-z0-9_], no "hash"): the pairs
 * URL-encoded in the given order followed by `&hash=<hex>`. Writes a NUL-terminated string to
 * out. Returns its length, or -1 when it does not fit in outlen or a pair is invalid.
 */
int tma_sign(const unsigned char key[TMA_KEY_BYTES], const tma_pair_t *pairs, size_t n, char *out,
             size_t outlen);

/*
 * Signs initData for a person as Telegram makes it when the app opens: auth_date = u->auth_date,
 * user = {"id", "first_name", and "last_name", "username", "language_code", "photo_url" when not
 * empty} and, when start_param is not NULL or empty, start_param (the `startapp` of a link). Returns
 * tma_sign's result.
 */
int tma_sign_user(const unsigned char key[TMA_KEY_BYTES], const tma_user_t *u, const char *start_param,
                  char *out, size_t outlen);

#endif
