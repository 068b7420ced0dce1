/* idempotency: key check, fingerprint and the process's settings. See idempotency.h. */
#include "idempotency.h"

#include <stdint.h>

#include <sodium.h>

static struct {
    int on;
    size_t first_stmt;
    const long long *ttl_s;
} idem;

int ls_idem_key_valid(const char *key, size_t len)
{
    if (len == 0 || len > LS_IDEM_KEY_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (key[i] < 0x21 || key[i] > 0x7e)
            return 0;
    return 1;
}

static void hash_part(crypto_hash_sha256_state *st, const char *s, size_t len)
{
    unsigned char n[8];
    uint64_t v = len;
    for (int i = 0; i < 8; i++)
        n[i] = (unsigned char)(v >> (56 - 8 * i));
    crypto_hash_sha256_update(st, n, sizeof(n));
    if (len > 0)
        crypto_hash_sha256_update(st, (const unsigned char *)s, len);
}

void ls_idem_fingerprint(const char *method, size_t method_len, const char *path, size_t path_len,
                         const char *body, size_t body_len, char out[LS_IDEM_FP_HEX])
{
    crypto_hash_sha256_state st;
    unsigned char digest[crypto_hash_sha256_BYTES];
    /* Idempotent and thread-safe; SHA-256 works whatever it returns. */
    int initialised = sodium_init();
    (void)initialised;
    crypto_hash_sha256_init(&st);
    hash_part(&st, method, method_len);
    hash_part(&st, path, path_len);
    hash_part(&st, body, body_len);
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(out, LS_IDEM_FP_HEX, digest, sizeof(digest));
}

void ls_idem_configure(size_t first_stmt, const long long *ttl_s)
{
    idem.on = 1;
    idem.first_stmt = first_stmt;
    idem.ttl_s = ttl_s;
}

int ls_idem_config(size_t *first_stmt, long long *ttl_s)
{
    if (!idem.on)
        return 0;
    *first_stmt = idem.first_stmt;
    *ttl_s = *idem.ttl_s;
    return 1;
}
