/*
 * Fuzz target: Telegram init data (bff/tma.c), as the BFF's authentication reads the Authorization
 * header — the query string, its URL decoding, the signature check and the `user` JSON inside.
 *
 * The first byte picks what the rest is:
 *   'r' (and anything else): init data as it arrives, checked with a fixed bot token;
 *   'u': the `user` JSON of init data this target signs with that token (auth_date now), so that
 *        the parser of the user object is reached, which unsigned input never gets past the hash to;
 *   'p': lines "key=value" signed as pairs: the data-check string of arbitrary keys and values.
 * What is signed here must never fail the signature check or the URL decoding: tma_sign() and
 * tma_validate() read the same pairs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "tma.h"

#define NOW     1700000000
#define MAX_AGE 86400

static unsigned char key[TMA_KEY_BYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    tma_derive_key("123456:fuzz-bot-token", key);
    return 0;
}

/* The user's strings are NUL-terminated within their fields, the id a telegram id. */
static void check_user(const tma_user_t *u)
{
    if (u->telegram_id < 1 || u->telegram_id > 9007199254740991LL || u->auth_date > NOW + TMA_MAX_FUTURE_S ||
        memchr(u->first_name, '\0', sizeof(u->first_name)) == NULL ||
        memchr(u->last_name, '\0', sizeof(u->last_name)) == NULL ||
        memchr(u->username, '\0', sizeof(u->username)) == NULL ||
        memchr(u->language_code, '\0', sizeof(u->language_code)) == NULL ||
        memchr(u->photo_url, '\0', sizeof(u->photo_url)) == NULL)
        abort();
    /* Text that is stored is UTF-8 (issue #14, edge 4). */
    const char *texts[] = {u->first_name, u->last_name, u->username, u->language_code, u->photo_url};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (ls_utf8_span(texts[i], strlen(texts[i])) != strlen(texts[i]))
            abort();
}

/* Signs the pairs, checks the result: anything but a signature or encoding complaint is fine. */
static void sign_and_check(const tma_pair_t *pairs, size_t n)
{
    char signed_data[4 * TMA_MAX_LEN];
    int len = tma_sign(key, pairs, n, signed_data, sizeof(signed_data));
    if (len < 0)
        return;
    tma_user_t u;
    const char *reason = NULL;
    if (tma_validate(signed_data, (size_t)len, key, NOW, MAX_AGE, &u, &reason) == 0) {
        check_user(&u);
        return;
    }
    if (len <= TMA_MAX_LEN && (strstr(reason, "signature") != NULL || strstr(reason, "URL-encoded") != NULL ||
                               strstr(reason, "hash") != NULL))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char mode = (char)data[0];
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;

    if (mode == 'u' || mode == 'p') {
        /* The pairs' values are C strings: the input up to its first NUL. */
        char *text = strndup(rest, len);
        if (text == NULL)
            return 0;
        tma_pair_t pairs[TMA_MAX_FIELDS];
        size_t n = 0;
        if (mode == 'u') {
            pairs[n++] = (tma_pair_t){"auth_date", "1700000000"};
            pairs[n++] = (tma_pair_t){"query_id", "AAHdF6IQAAAAAN0XohDhrOrc"};
            pairs[n++] = (tma_pair_t){"user", text};
        } else {
            for (char *line = text, *next; line != NULL && n < TMA_MAX_FIELDS; line = next) {
                next = strchr(line, '\n');
                if (next != NULL)
                    *next++ = '\0';
                char *eq = strchr(line, '=');
                if (eq == NULL)
                    continue;
                *eq = '\0';
                pairs[n++] = (tma_pair_t){line, eq + 1};
            }
        }
        sign_and_check(pairs, n);
        free(text);
        return 0;
    }

    tma_user_t u;
    const char *reason = NULL;
    if (tma_validate(rest, len, key, NOW, MAX_AGE, &u, &reason) == 0)
        check_user(&u);
    else if (reason == NULL)
        abort();
    return 0;
}
