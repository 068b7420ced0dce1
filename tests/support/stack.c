/* stack: the bff and the seven services, wired as in production (stack.h). */
#include "stack.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ENV_MAX 24

static const struct {
    const char *relpath, *db, *url_name;
} svc[LST_NSERVICES] = {
    [LST_AUTH] = {"services/auth/auth-service", "auth", "AUTH_URL"},
    [LST_TEACHERS] = {"services/teachers/teachers-service", "teachers", "TEACHERS_URL"},
    [LST_STUDENTS] = {"services/students/students-service", "students", "STUDENTS_URL"},
    [LST_GROUPS] = {"services/groups/groups-service", "groups", "GROUPS_URL"},
    [LST_CALENDAR] = {"services/calendar/calendar-service", "calendar", "CALENDAR_URL"},
    [LST_NOTIFICATION] = {"services/notification/notification-service", "notification", "NOTIFICATION_URL"},
    [LST_PAYMENT] = {"services/payment/payment-service", "payment", "PAYMENT_URL"},
};

/* The services each service calls, by the URLs it is given; -1 ends a list. */
static const int calls[LST_NSERVICES][4] = {
    [LST_AUTH] = {-1},
    [LST_TEACHERS] = {-1},
    [LST_STUDENTS] = {-1},
    [LST_GROUPS] = {LST_STUDENTS, -1},
    [LST_CALENDAR] = {LST_TEACHERS, LST_STUDENTS, LST_GROUPS, LST_NOTIFICATION},
    [LST_NOTIFICATION] = {-1},
    [LST_PAYMENT] = {LST_GROUPS, -1},
};

/* Adds a formatted "NAME=value" to env; the strings are freed by free_env. */
static void env_addf(char **env, size_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void env_addf(char **env, size_t *n, const char *fmt, ...)
{
    va_list ap;
    cr_assert_lt(*n, ENV_MAX - 1);
    va_start(ap, fmt);
    cr_assert_geq(vasprintf(&env[*n], fmt, ap), 0);
    va_end(ap);
    env[++*n] = NULL;
}

static void free_env(char **env, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(env[i]);
}

void lst_stack_start(lst_stack_t *s, const char *const *bff_env)
{
    lst_stack_start_with(s, bff_env, NULL);
}

void lst_stack_start_with(lst_stack_t *s, const char *const *bff_env, const char *telegram_api_url)
{
    int ports[LST_NSERVICES];
    char *data_key = lst_random_hex(32), *token = lst_random_hex(24);

    memset(s, 0, sizeof(*s));
    cr_assert_geq(sodium_init(), 0);
    tma_derive_key(LST_STACK_BOT_TOKEN, s->key);
    /* Every address is fixed before any daemon starts, each distinct. */
    for (int i = 0; i < LST_NSERVICES; i++) {
        for (int again = 1; again;) {
            ports[i] = lst_free_port();
            again = 0;
            for (int j = 0; j < i; j++)
                again |= ports[j] == ports[i];
        }
    }
    for (int i = 0; i < LST_NSERVICES; i++) {
        char *env[ENV_MAX] = {NULL};
        size_t n = 0;
        env_addf(env, &n, "LISTEN=127.0.0.1:%d", ports[i]);
        env_addf(env, &n, "THREADS=1");
        for (int k = 0; k < 4 && calls[i][k] >= 0; k++)
            env_addf(env, &n, "%s=http://127.0.0.1:%d", svc[calls[i][k]].url_name, ports[calls[i][k]]);
        if (i == LST_AUTH) {
            env_addf(env, &n, "AUTH_DATA_KEY=%s", data_key);
            env_addf(env, &n, "ADMIN_TELEGRAM_IDS=%d", LST_STACK_ADMIN_ID);
        }
        if (i == LST_PAYMENT && telegram_api_url != NULL) {
            env_addf(env, &n, "TELEGRAM_API_URL=%s", telegram_api_url);
            env_addf(env, &n, "BOT_TOKEN=%s", LST_STACK_BOT_TOKEN);
        }
        s->services[i].token = strdup(token);
        lst_service_start(&s->services[i], svc[i].relpath, svc[i].db, (const char *const *)env);
        free_env(env, n);
    }

    char *env[ENV_MAX] = {NULL};
    size_t n = 0;
    for (int i = 0; i < LST_NSERVICES; i++)
        env_addf(env, &n, "%s=http://127.0.0.1:%d", svc[i].url_name, ports[i]);
    env_addf(env, &n, "INTERNAL_TOKEN=%s", token);
    env_addf(env, &n, "BOT_TOKEN=%s", LST_STACK_BOT_TOKEN);
    env_addf(env, &n, "THREADS=1");
    env_addf(env, &n, "LOG_LEVEL=debug");
    for (size_t i = 0; bff_env != NULL && bff_env[i] != NULL; i++)
        env_addf(env, &n, "%s", bff_env[i]);
    lst_daemon_start(&s->bff, "bff/bff", (const char *const *)env);
    free_env(env, n);
    free(data_key);
    free(token);
}

void lst_stack_stop(lst_stack_t *s)
{
    lst_daemon_expect_clean_stop(&s->bff);
    for (int i = LST_NSERVICES - 1; i >= 0; i--)
        lst_service_destroy(&s->services[i]);
}

void lst_stack_sign(const lst_stack_t *s, char *out, size_t size, long long id, const char *user_json)
{
    char user[512], date[24], data[TMA_MAX_LEN + 1];
    if (user_json == NULL)
        snprintf(user, sizeof(user), "{\"id\":%lld,\"first_name\":\"User%lld\"}", id, id);
    else
        snprintf(user, sizeof(user), "%s", user_json);
    snprintf(date, sizeof(date), "%lld", (long long)time(NULL));
    tma_pair_t pairs[] = {{"auth_date", date}, {"user", user}};
    cr_assert_gt(tma_sign(s->key, pairs, 2, data, sizeof(data)), 0);
    snprintf(out, size, "Authorization: tma %s", data);
}

int lst_stack_api(lst_stack_t *s, lst_resp_t *resp, long long as, const char *method, const char *path,
                  const char *body)
{
    char auth[TMA_MAX_LEN + 64], url[2048];
    const char *headers[3] = {auth, body != NULL ? "Content-Type: application/json" : NULL, NULL};
    lst_stack_sign(s, auth, sizeof(auth), as, NULL);
    snprintf(url, sizeof(url), "%s%s", s->bff.base_url, path);
    return lst_http(resp, method, url, headers, body);
}

void lst_stack_api_ok(lst_stack_t *s, lst_resp_t *resp, long long as, const char *method, const char *path,
                      const char *body, int status, int or_status)
{
    lst_stack_api(s, resp, as, method, path, body);
    cr_assert(resp->status == status || resp->status == or_status, "%s %s as %lld: %d %.300s", method, path,
              as, resp->status, resp->body);
}
