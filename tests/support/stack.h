/*
 * stack: the whole system for an integration test — the real bff in front of the seven real
 * services (auth, teachers, students, groups, calendar, notification, payment), each on a fresh
 * database of the test cluster, wired to each other as in production — and requests to the bff
 * signed in-process with the bff's own tma module, as Telegram signs them.
 *
 * The bff runs with BOT_TOKEN LST_STACK_BOT_TOKEN; ADMIN_TELEGRAM_IDS is LST_STACK_ADMIN_ID. A test
 * starts one stack (lst_stack_start, with extra bff settings or NULL) and stops it (lst_stack_stop,
 * which expects every daemon to exit cleanly: under ASan, no leak).
 *
 * payment-service gets GROUPS_URL of the stack's groups-service and, from lst_stack_start_with, a
 * TELEGRAM_API_URL (a test's fake Bot API, fake_upstream.h) with BOT_TOKEN LST_STACK_BOT_TOKEN; without
 * one (lst_stack_start) it has no Bot API and answers checkouts 503.
 */
#ifndef LS_TEST_STACK_H
#define LS_TEST_STACK_H

#include "harness.h"
#include "tma.h"

#define LST_STACK_BOT_TOKEN "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
#define LST_STACK_ADMIN_ID  1000

enum {
    LST_AUTH,
    LST_TEACHERS,
    LST_STUDENTS,
    LST_GROUPS,
    LST_CALENDAR,
    LST_NOTIFICATION,
    LST_PAYMENT,
    LST_NSERVICES
};

typedef struct {
    lst_service_t services[LST_NSERVICES]; /* each with its own database; one shared token */
    lst_daemon_t bff;
    unsigned char key[TMA_KEY_BYTES];
} lst_stack_t;

/* Starts the services, then the bff with bff_env ("NAME=value", NULL-terminated; may be NULL). */
void lst_stack_start(lst_stack_t *s, const char *const *bff_env);
/* The same with payment-service's TELEGRAM_API_URL (NULL: none), e.g. lst_upstream_url() of a fake. */
void lst_stack_start_with(lst_stack_t *s, const char *const *bff_env, const char *telegram_api_url);
void lst_stack_stop(lst_stack_t *s);

/* "Authorization: tma <initData>" for user id with this user JSON (NULL: {"id":id,"first_name":"User<id>"}),
 * signed now, into out. */
void lst_stack_sign(const lst_stack_t *s, char *out, size_t size, long long id, const char *user_json);
/* A request to the bff signed by user `as` (JSON body when not NULL); returns the status. */
int lst_stack_api(lst_stack_t *s, lst_resp_t *resp, long long as, const char *method, const char *path,
                  const char *body);
/* lst_stack_api that must answer one of the two statuses (a 2xx, say); fails the test otherwise. */
void lst_stack_api_ok(lst_stack_t *s, lst_resp_t *resp, long long as, const char *method, const char *path,
                      const char *body, int status, int or_status);

#endif
