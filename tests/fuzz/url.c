/*
 * Fuzz target: URL decoding (shared/url.c) in both its readings — lenient for query strings,
 * strict for signed init data.
 *
 * Checked beyond memory safety: the decoded value is never longer than the input and is
 * NUL-terminated; the lenient reading never fails; where the strict one succeeds it agrees with the
 * lenient one and holds no NUL; and the value, encoded again, decodes strictly to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

/* Every byte but the unreserved ones as %XX, as tma_sign() and browsers write them. */
static size_t encode(char *dst, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~') {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '%';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    char *lenient = malloc(size + 1), *strict = malloc(size + 1);
    char *again = malloc(3 * size + 1), *back = malloc(3 * size + 1);
    if (lenient == NULL || strict == NULL || again == NULL || back == NULL)
        abort();

    long n = ls_url_decode(lenient, src, size, 0);
    if (n < 0 || (size_t)n > size || lenient[n] != '\0')
        abort();
    long s = ls_url_decode(strict, src, size, LS_URL_STRICT);
    if (s >= 0) {
        if (s != n || memcmp(strict, lenient, (size_t)n) != 0 || memchr(strict, '\0', (size_t)s) != NULL ||
            strict[s] != '\0')
            abort();
        size_t elen = encode(again, strict, (size_t)s);
        long b = ls_url_decode(back, again, elen, LS_URL_STRICT);
        if (b != s || memcmp(back, strict, (size_t)s) != 0)
            abort();
    } else if (s != -1) {
        abort();
    }
    free(lenient);
    free(strict);
    free(again);
    free(back);
    return 0;
}
