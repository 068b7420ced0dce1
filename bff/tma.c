#include "tma.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include <body.h>
#include <text.h>
#include <url.h>

#define KEY_MAX  64
#define HASH_HEX 64
#define ID_MAX   9007199254740991LL

typedef struct {
    const char *key; /* points into the input */
    size_t key_len;
    const char *value; /* decoded, NUL-terminated, in the scratch buffer */
    size_t value_len;
} field_t;

void tma_derive_key(const char *bot_token, unsigned char key[TMA_KEY_BYTES])
{
    static const unsigned char webappdata[] = "WebAppData";
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, webappdata, sizeof(webappdata) - 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)bot_token, strlen(bot_token));
    crypto_auth_hmacsha256_final(&st, key);
    sodium_memzero(&st, sizeof(st));
}

static int is_key_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int key_cmp(const field_t *a, const field_t *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    if (c != 0)
        return c;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

static int key_is(const field_t *f, const char *name)
{
    return f->key_len == strlen(name) && memcmp(f->key, name, f->key_len) == 0;
}

/* Splits and decodes the pairs. Returns the number of fields or -1 with *reason. */
static int parse_fields(const char *s, size_t len, char *scratch, field_t *fields, const char **reason)
{
    size_t n = 0, used = 0, pos = 0;

    while (pos <= len) {
        const char *amp = memchr(s + pos, '&', len - pos);
        size_t end = amp != NULL ? (size_t)(amp - s) : len;
        const char *eq = memchr(s + pos, '=', end - pos);
        if (end == pos || eq == NULL) {
            *reason = "initData is not a query string of key=value pairs";
            return -1;
        }
        size_t key_len = (size_t)(eq - (s + pos));
        if (key_len == 0 || key_len > KEY_MAX) {
            *reason = "initData has an empty or over-long key";
            return -1;
        }
        for (size_t i = 0; i < key_len; i++) {
            if (!is_key_char((unsigned char)s[pos + i])) {
                *reason = "initData has a key with characters other than letters, digits and '_'";
                return -1;
            }
        }
        if (n == TMA_MAX_FIELDS) {
            *reason = "initData has too many fields";
            return -1;
        }
        field_t *f = &fields[n];
        f->key = s + pos;
        f->key_len = key_len;
        long vlen = ls_url_decode(scratch + used, eq + 1, end - (size_t)(eq + 1 - s), LS_URL_STRICT);
        if (vlen < 0) {
            *reason = "initData has a badly URL-encoded value";
            return -1;
        }
        f->value = scratch + used;
        f->value_len = (size_t)vlen;
        used += (size_t)vlen + 1;
        for (size_t i = 0; i < n; i++) {
            if (key_cmp(&fields[i], f) == 0) {
                *reason = "initData has a duplicated key";
                return -1;
            }
        }
        n++;
        if (amp == NULL)
            break;
        pos = end + 1;
    }
    return (int)n;
}

/* Digits only, no sign, no overflow. */
static int parse_epoch(const char *s, int64_t *out)
{
    int64_t v = 0;
    if (*s == '\0' || strlen(s) > 18)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 0;
}

/* Builds the data-check string of every field but `skip` (sorted by key) into dcs. */
static size_t data_check_string(field_t *fields, size_t n, const field_t *skip, char *dcs)
{
    const field_t *sorted[TMA_MAX_FIELDS];
    size_t m = 0, len = 0;

    for (size_t i = 0; i < n; i++) {
        if (&fields[i] == skip)
            continue;
        size_t j = m++;
        while (j > 0 && key_cmp(sorted[j - 1], &fields[i]) > 0) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = &fields[i];
    }
    for (size_t i = 0; i < m; i++) {
        if (i > 0)
            dcs[len++] = '\n';
        memcpy(dcs + len, sorted[i]->key, sorted[i]->key_len);
        len += sorted[i]->key_len;
        dcs[len++] = '=';
        memcpy(dcs + len, sorted[i]->value, sorted[i]->value_len);
        len += sorted[i]->value_len;
    }
    return len;
}

static void mac(const unsigned char key[TMA_KEY_BYTES], const char *msg, size_t len,
                unsigned char out[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, TMA_KEY_BYTES);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
    crypto_auth_hmacsha256_final(&st, out);
}

/* Copies an optional string member; -1 when it is present but not a string or does not fit, -2 when
 * it holds a NUL (which a C string would cut it at; ls_json_text_check has refused it already). */
static int copy_name(json_object *user, const char *name, char *dst, size_t size)
{
    json_object *v;
    dst[0] = '\0';
    if (!json_object_object_get_ex(user, name, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    size_t len = (size_t)json_object_get_string_len(v);
    if (len >= size)
        return -1;
    if (memchr(json_object_get_string(v), '\0', len) != NULL)
        return -2;
    memcpy(dst, json_object_get_string(v), len + 1);
    return 0;
}

static int parse_user(const char *json, size_t len, tma_user_t *out, const char **reason)
{
    json_tokener *tok = json_tokener_new_ex(8);
    json_object *user = NULL, *id;
    int rc = TMA_INVALID;
    char err[128];

    if (ls_json_text_check(json, len, err, sizeof(err)) != 0) {
        *reason = "initData user holds a NUL character, half a surrogate pair or text that is not UTF-8";
        json_tokener_free(tok);
        return TMA_BAD_TEXT;
    }
    if (tok == NULL) {
        *reason = "out of memory";
        return -1;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    user = json_tokener_parse_ex(tok, json, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len ||
        !json_object_is_type(user, json_type_object)) {
        *reason = "initData field 'user' is not a JSON object";
        goto out;
    }
    if (!json_object_object_get_ex(user, "id", &id) || !json_object_is_type(id, json_type_int)) {
        *reason = "initData field 'user' has no integer id";
        goto out;
    }
    errno = 0;
    int64_t v = json_object_get_int64(id);
    if (v < 1 || v > ID_MAX || errno != 0) {
        *reason = "initData user id is not a telegram id (1 .. 2^53-1)";
        goto out;
    }
    out->telegram_id = v;
    static const struct {
        const char *name;
        size_t off, size;
    } names[] = {
        {"first_name", offsetof(tma_user_t, first_name), sizeof(out->first_name)},
        {"last_name", offsetof(tma_user_t, last_name), sizeof(out->last_name)},
        {"username", offsetof(tma_user_t, username), sizeof(out->username)},
        {"language_code", offsetof(tma_user_t, language_code), sizeof(out->language_code)},
        {"photo_url", offsetof(tma_user_t, photo_url), sizeof(out->photo_url)},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int c = copy_name(user, names[i].name, (char *)out + names[i].off, names[i].size);
        if (c != 0) {
            *reason = c == -2 ? "initData user has a name that holds a NUL"
                              : "initData user has a name that is not a string or is too long";
            rc = c == -2 ? TMA_BAD_TEXT : TMA_INVALID;
            goto out;
        }
    }
    rc = 0;
out:
    json_object_put(user);
    json_tokener_free(tok);
    return rc;
}

int tma_validate(const char *init_data, size_t len, const unsigned char key[TMA_KEY_BYTES], int64_t now,
                 int64_t max_age, tma_user_t *out, const char **reason)
{
    char scratch[TMA_MAX_LEN + TMA_MAX_FIELDS + 1];
    char dcs[TMA_MAX_LEN + 1];
    field_t fields[TMA_MAX_FIELDS];
    const field_t *hash = NULL, *auth_date = NULL, *user = NULL;
    unsigned char want[crypto_auth_hmacsha256_BYTES], got[crypto_auth_hmacsha256_BYTES];
    size_t bin_len;
    int n;

    if (len == 0) {
        *reason = "initData is empty";
        return -1;
    }
    if (len > TMA_MAX_LEN) {
        *reason = "initData is too long";
        return -1;
    }
    if ((n = parse_fields(init_data, len, scratch, fields, reason)) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        if (key_is(&fields[i], "hash"))
            hash = &fields[i];
        else if (key_is(&fields[i], "auth_date"))
            auth_date = &fields[i];
        else if (key_is(&fields[i], "user"))
            user = &fields[i];
    }
    if (hash == NULL) {
        *reason = "initData has no hash";
        return -1;
    }
    if (hash->value_len != HASH_HEX ||
        sodium_hex2bin(got, sizeof(got), hash->value, hash->value_len, NULL, &bin_len, NULL) != 0 ||
        bin_len != sizeof(got)) {
        *reason = "initData hash is not 64 hexadecimal digits";
        return -1;
    }
    mac(key, dcs, data_check_string(fields, (size_t)n, hash, dcs), want);
    if (sodium_memcmp(want, got, sizeof(want)) != 0) {
        *reason = "initData signature does not match";
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (ls_utf8_span(fields[i].value, fields[i].value_len) != fields[i].value_len) {
            *reason = "initData has a value that is not UTF-8";
            return TMA_BAD_TEXT;
        }
    }

    memset(out, 0, sizeof(*out));
    if (auth_date == NULL || parse_epoch(auth_date->value, &out->auth_date) != 0) {
        *reason = "initData has no valid auth_date";
        return -1;
    }
    if (out->auth_date > now + TMA_MAX_FUTURE_S) {
        *reason = "initData auth_date is in the future";
        return -1;
    }
    if (max_age > 0 && now - out->auth_date > max_age) {
        *reason = "initData has expired (auth_date is too old)";
        return -1;
    }
    if (user == NULL) {
        *reason = "initData has no user";
        return -1;
    }
    return parse_user(user->value, user->value_len, out, reason);
}

static int is_unreserved(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int tma_sign(const unsigned char key[TMA_KEY_BYTES], const tma_pair_t *pairs, size_t n, char *out,
             size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    char scratch[TMA_MAX_LEN + 1], dcs[TMA_MAX_LEN + TMA_MAX_FIELDS * (KEY_MAX + 2) + 1];
    field_t fields[TMA_MAX_FIELDS];
    unsigned char digest[crypto_auth_hmacsha256_BYTES];
    size_t o = 0, used = 0;

    if (n > TMA_MAX_FIELDS - 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t klen = strlen(pairs[i].key), vlen = strlen(pairs[i].value);
        if (klen == 0 || klen > KEY_MAX || strcmp(pairs[i].key, "hash") == 0 || used + vlen + 1 > TMA_MAX_LEN)
            return -1;
        for (size_t k = 0; k < klen; k++)
            if (!is_key_char((unsigned char)pairs[i].key[k]))
                return -1;
        memcpy(scratch + used, pairs[i].value, vlen + 1);
        fields[i] = (field_t){pairs[i].key, klen, scratch + used, vlen};
        used += vlen + 1;

        /* key=encoded value& — at most 3 bytes per value byte */
        if (o + klen + 2 + 3 * vlen >= outlen)
            return -1;
        memcpy(out + o, pairs[i].key, klen);
        o += klen;
        out[o++] = '=';
        for (size_t k = 0; k < vlen; k++) {
            unsigned char c = (unsigned char)pairs[i].value[k];
            if (is_unreserved(c)) {
                out[o++] = (char)c;
            } else {
                out[o++] = '%';
                out[o++] = hex[c >> 4];
                out[o++] = hex[c & 15];
            }
        }
        out[o++] = '&';
    }
    mac(key, dcs, data_check_string(fields, n, NULL, dcs), digest);
    if (o + 5 + HASH_HEX + 1 > outlen)
        return -1;
    memcpy(out + o, "hash=", 5);
    o += 5;
    sodium_bin2hex(out + o, outlen - o, digest, sizeof(digest));
    o += HASH_HEX;
    out[o] = '\0';
    return (int)o;
}

int tma_sign_user(const unsigned char key[TMA_KEY_BYTES], const tma_user_t *u, const char *start_param,
                  char *out, size_t outlen)
{
    const struct {
        const char *key, *value;
    } optional[] = {{"last_name", u->last_name},
                    {"username", u->username},
                    {"language_code", u->language_code},
                    {"photo_url", u->photo_url}};
    json_object *user = json_object_new_object();
    char date[24];
    int len = -1;

    if (user == NULL)
        return -1;
    json_object_object_add(user, "id", json_object_new_int64(u->telegram_id));
    json_object_object_add(user, "first_name", json_object_new_string(u->first_name));
    for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
        if (optional[i].value[0] != '\0')
            json_object_object_add(user, optional[i].key, json_object_new_string(optional[i].value));
    const char *user_json =
        json_object_to_json_string_ext(user, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    snprintf(date, sizeof(date), "%lld", (long long)u->auth_date);
    tma_pair_t pairs[3] = {{"auth_date", date}, {"user", user_json}};
    size_t n = 2;
    if (start_param != NULL && start_param[0] != '\0')
        pairs[n++] = (tma_pair_t){"start_param", start_param};
    if (user_json != NULL)
        len = tma_sign(key, pairs, n, out, outlen);
    json_object_put(user);
    return len;
}
