/* tma-sign: prints a valid `Authorization: tma <initData>` value for a telegram id and a bot token,
 * for people trying the API, for tests and for the benchmark. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "tma.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: tma-sign [--bot-token TOKEN] --id TELEGRAM_ID [--first-name NAME] [--last-name NAME]\n"
            "                [--username NAME] [--language-code CODE] [--start-param VALUE]\n"
            "                [--auth-date EPOCH] [--raw]\n"
            "\n"
            "Prints `tma <initData>`, signed with the bot token as Telegram signs a Mini App's init data,\n"
            "ready for an `Authorization:` header. The token defaults to $BOT_TOKEN; auth_date defaults to\n"
            "now; first name defaults to \"User <id>\". --start-param adds start_param, as Telegram does\n"
            "for a link with startapp=VALUE. --raw prints the initData without \"tma \".\n");
}

/* Digits only, within [min, max]. */
static int parse_num(const char *s, long long min, long long max, long long *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"bot-token", required_argument, NULL, 't'},
        {"id", required_argument, NULL, 'i'},
        {"first-name", required_argument, NULL, 'f'},
        {"last-name", required_argument, NULL, 'l'},
        {"username", required_argument, NULL, 'u'},
        {"language-code", required_argument, NULL, 'c'},
        {"start-param", required_argument, NULL, 's'},
        {"auth-date", required_argument, NULL, 'd'},
        {"raw", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *token = getenv("BOT_TOKEN"), *id_arg = NULL, *first = NULL, *last = NULL, *username = NULL,
               *lang = NULL, *date_arg = NULL, *start_param = NULL;
    int raw = 0, opt, status;
    long long id, auth_date = (long long)time(NULL);
    unsigned char key[TMA_KEY_BYTES];
    char out[TMA_MAX_LEN + 1];
    tma_user_t user = {0};

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 't':
            token = optarg;
            break;
        case 'i':
            id_arg = optarg;
            break;
        case 'f':
            first = optarg;
            break;
        case 'l':
            last = optarg;
            break;
        case 'u':
            username = optarg;
            break;
        case 'c':
            lang = optarg;
            break;
        case 's':
            start_param = optarg;
            break;
        case 'd':
            date_arg = optarg;
            break;
        case 'r':
            raw = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "tma-sign: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (token == NULL || token[0] == '\0') {
        fprintf(stderr, "tma-sign: no bot token (give --bot-token or set BOT_TOKEN)\n");
        return 2;
    }
    if (parse_num(id_arg, 1, 9007199254740991LL, &id) != 0) {
        fprintf(stderr, "tma-sign: --id must be a telegram id (1 .. 9007199254740991)\n");
        return 2;
    }
    if (date_arg != NULL && parse_num(date_arg, 0, 99999999999LL, &auth_date) != 0) {
        fprintf(stderr, "tma-sign: --auth-date must be seconds since the epoch\n");
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "tma-sign: libsodium failed to initialise\n");
        return 1;
    }
    const struct {
        const char *value;
        char *to;
        size_t size;
    } names[] = {{first, user.first_name, sizeof(user.first_name)},
                 {last, user.last_name, sizeof(user.last_name)},
                 {username, user.username, sizeof(user.username)},
                 {lang, user.language_code, sizeof(user.language_code)}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].value != NULL && strlen(names[i].value) >= names[i].size) {
            fprintf(stderr, "tma-sign: '%s' is longer than %zu bytes\n", names[i].value, names[i].size - 1);
            return 2;
        }
        if (names[i].value != NULL)
            memcpy(names[i].to, names[i].value, strlen(names[i].value) + 1);
    }
    if (first == NULL)
        snprintf(user.first_name, sizeof(user.first_name), "User %lld", id);
    user.telegram_id = id;
    user.auth_date = auth_date;

    tma_derive_key(token, key);
    if (tma_sign_user(key, &user, start_param, out, sizeof(out)) < 0) {
        fprintf(stderr, "tma-sign: the init data would be longer than %d bytes\n", TMA_MAX_LEN);
        status = 1;
    } else {
        printf("%s%s\n", raw ? "" : "tma ", out);
        status = 0;
    }
    sodium_memzero(key, sizeof(key));
    return status;
}
