/*
 * Idempotent writes (shared/idempotency.h) end to end: the real bff in front of real auth-, groups-,
 * teachers- and calendar-service daemons on fresh databases of the test cluster. A write sent again
 * with the same Idempotency-Key gets the first answer again and is done once (a retried lesson gets
 * its 201, not the 409 of a lesson overlapping itself); the same key with another
 * request is 422; keys are per person; concurrent requests with one key make one write; a
 * malformed key is 400; a refused request records nothing; a key expires (teachers-service runs
 * with IDEMPOTENCY_TTL_S=1 in that test).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tma.h"

#define BOT_TOKEN   "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8" /* public vector, ARCHITECTURE §7.1 */
#define ALICE       701
#define BOB         702
#define CAROL       703 /* a teacher with lessons */
#define NCONCURRENT 8
#define LONG_KEY    129 /* one over LS_IDEM_KEY_MAX */

static lst_service_t auth, groups, teachers, calendar;
static lst_daemon_t bff;
static unsigned char tma_key[TMA_KEY_BYTES];

static void start_all(void)
{
    char *data_key = lst_random_hex(32), auth_key[96];
    char students_url[64];
    snprintf(auth_key, sizeof(auth_key), "AUTH_DATA_KEY=%s", data_key);
    snprintf(students_url, sizeof(students_url), "STUDENTS_URL=http://127.0.0.1:%d", lst_free_port());
    const char *auth_env[] = {auth_key, NULL};
    lst_service_start(&auth, "services/auth/auth-service", "idem_auth", auth_env);
    groups.token = strdup(auth.token);
    const char *groups_env[] = {students_url, NULL};
    lst_service_start(&groups, "services/groups/groups-service", "idem_groups", groups_env);
    teachers.token = strdup(auth.token);
    lst_service_start(&teachers, "services/teachers/teachers-service", "idem_teachers", NULL);
    free(data_key);
    /* Lessons of a teacher alone: only teachers-service is asked; the rest listens nowhere. */
    char teachers_url[96], cal_urls[3][64];
    snprintf(teachers_url, sizeof(teachers_url), "TEACHERS_URL=%s", teachers.daemon.base_url);
    snprintf(cal_urls[0], sizeof(cal_urls[0]), "GROUPS_URL=http://127.0.0.1:%d", lst_free_port());
    snprintf(cal_urls[1], sizeof(cal_urls[1]), "STUDENTS_URL=http://127.0.0.1:%d", lst_free_port());
    snprintf(cal_urls[2], sizeof(cal_urls[2]), "NOTIFICATION_URL=http://127.0.0.1:%d", lst_free_port());
    const char *calendar_env[] = {teachers_url, cal_urls[0], cal_urls[1], cal_urls[2], NULL};
    calendar.token = strdup(auth.token);
    lst_service_start(&calendar, "services/calendar/calendar-service", "idem_calendar", calendar_env);

    char env_urls[6][96], token_env[160];
    snprintf(env_urls[0], sizeof(env_urls[0]), "AUTH_URL=%s", auth.daemon.base_url);
    snprintf(env_urls[1], sizeof(env_urls[1]), "GROUPS_URL=%s", groups.daemon.base_url);
    snprintf(env_urls[2], sizeof(env_urls[2]), "TEACHERS_URL=%s", teachers.daemon.base_url);
    /* Not used here: ports where nothing listens. */
    snprintf(env_urls[3], sizeof(env_urls[3]), "STUDENTS_URL=http://127.0.0.1:%d", lst_free_port());
    snprintf(env_urls[4], sizeof(env_urls[4]), "CALENDAR_URL=%s", calendar.daemon.base_url);
    snprintf(env_urls[5], sizeof(env_urls[5]), "NOTIFICATION_URL=http://127.0.0.1:%d", lst_free_port());
    snprintf(token_env, sizeof(token_env), "INTERNAL_TOKEN=%s", auth.token);
    const char *env[] = {env_urls[0], env_urls[1],       env_urls[2], env_urls[3],
                         env_urls[4], env_urls[5],       token_env,   "BOT_TOKEN=" BOT_TOKEN,
                         "THREADS=1", "LOG_LEVEL=debug", NULL};
    lst_daemon_start(&bff, "bff/bff", env);
}

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    tma_derive_key(BOT_TOKEN, tma_key);
    start_all();
}

static void teardown(void)
{
    if (bff.pid > 0)
        cr_expect_eq(lst_daemon_stop(&bff), 0, "bff did not exit cleanly; see %s", bff.log_path);
    lst_service_destroy(&calendar);
    lst_service_destroy(&teachers);
    lst_service_destroy(&groups);
    lst_service_destroy(&auth);
}

TestSuite(idempotency, .init = setup, .fini = teardown, .timeout = 180);

/* ---- helpers ---- */

/* A request to the bff signed by user `as`, with "Idempotency-Key: key" unless key is NULL. */
static int api(lst_resp_t *resp, long long as, const char *method, const char *path, const char *body,
               const char *key)
{
    char user[160], date[24], data[TMA_MAX_LEN + 1], auth_header[TMA_MAX_LEN + 32], key_header[400];
    char url[512];
    snprintf(user, sizeof(user), "{\"id\":%lld,\"first_name\":\"U%lld\",\"language_code\":\"en\"}", as, as);
    snprintf(date, sizeof(date), "%lld", (long long)time(NULL));
    tma_pair_t pairs[] = {{"auth_date", date}, {"user", user}};
    cr_assert_gt(tma_sign(tma_key, pairs, 2, data, sizeof(data)), 0);
    snprintf(auth_header, sizeof(auth_header), "Authorization: tma %s", data);
    const char *headers[4] = {auth_header, "Content-Type: application/json", NULL, NULL};
    if (key != NULL) {
        snprintf(key_header, sizeof(key_header), "Idempotency-Key: %s", key);
        headers[2] = key_header;
    }
    snprintf(url, sizeof(url), "%s%s", bff.base_url, path);
    return lst_http(resp, method, url, headers, body);
}

/* The groups titled `title` in groups-service's database. */
static int groups_titled(const char *title)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM groups WHERE title = '%s'", title);
    char *v = lst_pg_admin_exec(groups.dbname, sql);
    int n = atoi(v);
    free(v);
    return n;
}

static char *group_body(const char *title, int capacity)
{
    char *body;
    cr_assert_geq(asprintf(&body,
                           "{\"title\":\"%s\",\"language_code\":\"en\",\"level\":\"A1\",\"capacity\":%d}",
                           title, capacity),
                  0);
    return body;
}

static char *fresh(const char *prefix)
{
    char *hex = lst_random_hex(6), *out;
    cr_assert_geq(asprintf(&out, "%s-%s", prefix, hex), 0);
    free(hex);
    return out;
}

/* ---- tests ---- */

Test(idempotency, repeated_write_gets_the_first_answer_and_is_done_once)
{
    char *key = fresh("k"), *title = fresh("replay"), *body = group_body(title, 5);
    lst_resp_t first, again;
    api(&first, ALICE, "POST", "/api/groups", body, key);
    cr_assert_eq(first.status, 201, "%d %.300s", first.status, first.body);
    api(&again, ALICE, "POST", "/api/groups", body, key);
    cr_expect_eq(again.status, 201, "%d %.300s", again.status, again.body);
    cr_expect_str_eq(again.body, first.body, "the replay differs from the first answer");
    char *ct = lst_resp_header(&again, "content-type");
    cr_expect(ct != NULL && strstr(ct, "application/json") != NULL, "content-type %s", ct ? ct : "none");
    free(ct);
    cr_expect_eq(groups_titled(title), 1, "the group was written twice");

    /* The same key for another request (another body) is refused, and writes nothing. */
    char *other = group_body(title, 6);
    lst_resp_t refused;
    api(&refused, ALICE, "POST", "/api/groups", other, key);
    lst_expect_problem(&refused, 422, "another request");
    cr_expect_eq(groups_titled(title), 1);

    /* Another person's key of the same name is theirs: a write of its own. */
    lst_resp_t bobs;
    api(&bobs, BOB, "POST", "/api/groups", body, key);
    cr_expect_eq(bobs.status, 201, "%d %.300s", bobs.status, bobs.body);
    cr_expect_str_neq(lst_str_field(bobs.json, "id"), lst_str_field(first.json, "id"));
    cr_expect_eq(groups_titled(title), 2);

    lst_resp_free(&first);
    lst_resp_free(&again);
    lst_resp_free(&refused);
    lst_resp_free(&bobs);
    free(other);
    free(body);
    free(title);
    free(key);
}

/* The case seen: a lesson stored, its answer lost, the retry answered 409 (it overlaps itself). */
Test(idempotency, a_retried_lesson_gets_its_201_not_a_409)
{
    lst_resp_t resp;
    api(&resp, CAROL, "PUT", "/api/teachers/me", "{}", NULL);
    cr_assert(resp.status == 201 || resp.status == 200, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);

    char *key = fresh("lesson"), *body;
    cr_assert_geq(asprintf(&body,
                           "{\"teacher_telegram_id\":%d,\"starts_at\":\"2031-05-06T10:00:00Z\","
                           "\"duration_minutes\":60,\"topic\":\"retried\"}",
                           CAROL),
                  0);
    lst_resp_t first, again, unkeyed;
    api(&first, CAROL, "POST", "/api/lessons", body, key);
    cr_assert_eq(first.status, 201, "%d %.300s", first.status, first.body);
    api(&again, CAROL, "POST", "/api/lessons", body, key);
    cr_expect_eq(again.status, 201, "the retry: %d %.300s", again.status, again.body);
    cr_expect_str_eq(again.body, first.body);
    /* Without the key the same request is a new lesson, which overlaps the first. */
    api(&unkeyed, CAROL, "POST", "/api/lessons", body, NULL);
    lst_expect_problem(&unkeyed, 409, "already has lesson");
    char *n = lst_pg_admin_exec(calendar.dbname, "SELECT count(*) FROM lessons WHERE topic = 'retried'");
    cr_expect_str_eq(n, "1");
    free(n);
    lst_resp_free(&first);
    lst_resp_free(&again);
    lst_resp_free(&unkeyed);
    free(body);
    free(key);
}

Test(idempotency, without_a_key_every_write_is_done)
{
    char *title = fresh("nokey"), *body = group_body(title, 5);
    lst_resp_t a, b;
    api(&a, ALICE, "POST", "/api/groups", body, NULL);
    api(&b, ALICE, "POST", "/api/groups", body, NULL);
    cr_expect_eq(a.status, 201, "%d %.300s", a.status, a.body);
    cr_expect_eq(b.status, 201, "%d %.300s", b.status, b.body);
    cr_expect_str_neq(lst_str_field(a.json, "id"), lst_str_field(b.json, "id"));
    cr_expect_eq(groups_titled(title), 2);
    lst_resp_free(&a);
    lst_resp_free(&b);
    free(body);
    free(title);
}

typedef struct {
    const char *key, *body;
    lst_resp_t resp;
} racer_t;

static void *race(void *p)
{
    racer_t *x = p;
    api(&x->resp, ALICE, "POST", "/api/groups", x->body, x->key);
    return NULL;
}

Test(idempotency, concurrent_requests_with_one_key_make_one_write)
{
    char *key = fresh("race"), *title = fresh("race"), *body = group_body(title, 5);
    racer_t racers[NCONCURRENT];
    pthread_t threads[NCONCURRENT];
    for (int i = 0; i < NCONCURRENT; i++) {
        racers[i].key = key;
        racers[i].body = body;
        cr_assert_eq(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    }
    for (int i = 0; i < NCONCURRENT; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < NCONCURRENT; i++) {
        cr_expect_eq(racers[i].resp.status, 201, "racer %d: %d %.300s", i, racers[i].resp.status,
                     racers[i].resp.body);
        cr_expect_str_eq(racers[i].resp.body, racers[0].resp.body, "racer %d got another answer", i);
    }
    cr_expect_eq(groups_titled(title), 1, "%d groups written", groups_titled(title));
    for (int i = 0; i < NCONCURRENT; i++)
        lst_resp_free(&racers[i].resp);
    free(body);
    free(title);
    free(key);
}

Test(idempotency, a_malformed_key_is_400)
{
    char *title = fresh("bad"), *body = group_body(title, 5);
    char long_key[LONG_KEY + 1];
    memset(long_key, 'k', LONG_KEY);
    long_key[LONG_KEY] = '\0';
    const char *bad[] = {"two words", long_key, "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lst_resp_t resp;
        api(&resp, ALICE, "POST", "/api/groups", body, bad[i]);
        lst_expect_problem(&resp, 400, "Idempotency-Key");
        lst_resp_free(&resp);
    }
    /* The longest key is fine. */
    long_key[LONG_KEY - 1] = '\0';
    lst_resp_t ok;
    api(&ok, ALICE, "POST", "/api/groups", body, long_key);
    cr_expect_eq(ok.status, 201, "%d %.300s", ok.status, ok.body);
    lst_resp_free(&ok);

    /* A service checks it too (an internal caller that is not the bff). */
    char url[256], auth_header[200];
    snprintf(url, sizeof(url), "%s/groups", groups.daemon.base_url);
    snprintf(auth_header, sizeof(auth_header), "Authorization: Bearer %s", groups.token);
    const char *headers[] = {auth_header, "X-Actor-Telegram-Id: 701", "Content-Type: application/json",
                             "Idempotency-Key: two words", NULL};
    lst_resp_t direct;
    lst_http(&direct, "POST", url, headers, body);
    lst_expect_problem(&direct, 400, "Idempotency-Key");
    lst_resp_free(&direct);
    cr_expect_eq(groups_titled(title), 1);
    free(body);
    free(title);
}

/* teachers-service again on its database, with keys that live a second. */
static void restart_teachers_short_ttl(void)
{
    cr_assert_eq(lst_daemon_stop(&teachers.daemon), 0);
    char listen[64];
    snprintf(listen, sizeof(listen), "LISTEN=127.0.0.1:%d",
             teachers.daemon.port); /* the bff's TEACHERS_URL */
    const char *env[] = {listen, "IDEMPOTENCY_TTL_S=1", NULL};
    lst_service_start(&teachers, "services/teachers/teachers-service", "idem_teachers", env);
}

static long long keys_named(const char *key)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM idempotency_keys WHERE key = '%s'", key);
    char *v = lst_pg_admin_exec(teachers.dbname, sql);
    long long n = atoll(v);
    free(v);
    return n;
}

Test(idempotency, a_refusal_is_not_recorded_and_a_key_expires)
{
    restart_teachers_short_ttl();
    char *key = fresh("lang");
    const char *body = "{\"level\":\"B1\"}";
    lst_resp_t resp;

    /* No profile yet: 404, and nothing recorded, so the retry does the work once there is one. */
    api(&resp, ALICE, "PUT", "/api/teachers/me/languages/en", body, key);
    lst_expect_problem(&resp, 404, "not found");
    lst_resp_free(&resp);
    cr_expect_eq(keys_named(key), 0);
    api(&resp, ALICE, "PUT", "/api/teachers/me", "{}", NULL);
    cr_assert_eq(resp.status, 201, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);

    lst_resp_t first, again;
    api(&first, ALICE, "PUT", "/api/teachers/me/languages/en", body, key);
    cr_assert_eq(first.status, 201, "%d %.300s", first.status, first.body);
    api(&again, ALICE, "PUT", "/api/teachers/me/languages/en", body, key);
    cr_expect_eq(again.status, 201, "the replay: %d %.300s", again.status, again.body);
    cr_expect_str_eq(again.body, first.body);
    cr_expect_eq(keys_named(key), 1);

    /* After its lifetime the key is gone: another key's recorded answer deletes it, and it counts as
     * new. */
    usleep(2200 * 1000);
    char *other = fresh("other");
    api(&resp, ALICE, "PUT", "/api/teachers/me/languages/de", body, other);
    cr_expect_eq(resp.status, 201, "%d %.300s", resp.status, resp.body);
    lst_resp_free(&resp);
    cr_expect_eq(keys_named(key), 0, "the expired key was not deleted");
    api(&resp, ALICE, "PUT", "/api/teachers/me/languages/en", body, key);
    cr_expect_eq(resp.status, 200, "an expired key is new: the write is done again (%d %.300s)", resp.status,
                 resp.body);
    lst_resp_free(&resp);

    lst_resp_free(&first);
    lst_resp_free(&again);
    free(other);
    free(key);
}
