/* tma-sign: prints a valid `Authorization: tma <initData>` value for a telegram id and a bot token,
 * for people trying the API, for tests and for the benchmark. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <sodium.h>

#include "tma.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: tma-sign [--bot-token TOKEN] --id TELEGRAM_ID [--first-name NAME] [--last-name NAME]\n"
            "                [--username NAME] [--language-code CODE] [--auth-date EPOCH] [--raw]\n"
            "\n"
            "Prints `tma <initData>`, signed with the bot token as Telegram signs a Mini App's init data,\n"
            "ready for an `Authorization:` header. The token defaults to $BOT_TOKEN; auth_date defaults to\n"
            "now; first name defaults to \"User <id>\". --raw prints the initData without \"tma \".\n");
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
        {"auth-date", required_argument, NULL, 'd'},
        {"raw", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *token = getenv("BOT_TOKEN"), *id_arg = NULL, *first = NULL, *last = NULL, *username = NULL,
               *lang = NULL, *date_arg = NULL;
    int raw = 0, opt, status = 2;
    long long id, auth_date = (long long)time(NULL);
    unsigned char key[TMA_KEY_BYTES];
    char date_text[24], first_default[48], out[TMA_MAX_LEN + 1];
    json_object *user = NULL;

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
    if (first == NULL) {
        snprintf(first_default, sizeof(first_default), "User %lld", id);
        first = first_default;
    }

    user = json_object_new_object();
    json_object_object_add(user, "id", json_object_new_int64(id));
    json_object_object_add(user, "first_name", json_object_new_string(first));
    if (last != NULL)
        json_object_object_add(user, "last_name", json_object_new_string(last));
    if (username != NULL)
        json_object_object_add(user, "username", json_object_new_string(username));
    if (lang != NULL)
        json_object_object_add(user, "language_code", json_object_new_string(lang));
    snprintf(date_text, sizeof(date_text), "%lld", auth_date);
    tma_pair_t pairs[] = {
        {"auth_date", date_text},
        {"user",
         json_object_to_json_string_ext(user, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)},
    };
    tma_derive_key(token, key);
    if (tma_sign(key, pairs, 2, out, sizeof(out)) < 0) {
        fprintf(stderr, "tma-sign: the init data would be longer than %d bytes\n", TMA_MAX_LEN);
        status = 1;
        goto out;
    }
    printf("%s%s\n", raw ? "" : "tma ", out);
    status = 0;
out:
    sodium_memzero(key, sizeof(key));
    json_object_put(user);
    return status;
}
