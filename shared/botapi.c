/* botapi: the Bot API's settings. See botapi.h. */
#include "botapi.h"

#include <stdio.h>
#include <string.h>

static int token_char_ok(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' ||
           c == '_' || c == '-';
}

int ls_botapi_settings(char *url, const char *token, char *err, size_t errlen)
{
    size_t len = strlen(url);
    if (len > 0) {
        int ok = strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
        for (size_t i = 0; ok && i < len; i++)
            ok = url[i] > 0x20 && url[i] < 0x7f && url[i] != '?' && url[i] != '#';
        if (!ok) {
            snprintf(err, errlen,
                     "TELEGRAM_API_URL: must be empty or an http(s) URL such as https://api.telegram.org");
            return -1;
        }
        while (len > 0 && url[len - 1] == '/')
            url[--len] = '\0';
    }
    for (const char *t = token; *t != '\0'; t++) {
        if (!token_char_ok(*t)) {
            snprintf(err, errlen, "BOT_TOKEN: must consist of letters, digits, ':', '_' and '-'");
            return -1;
        }
    }
    return url[0] != '\0' && token[0] != '\0';
}
