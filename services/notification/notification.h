/*
 * notification-service: notifications for people keyed by telegram_id, rendered from per-language
 * templates, their settings (disabled types, quiet hours, language) and their delivery
 * (docs/ARCHITECTURE.md §5, issue 4).
 *
 *   POST /notifications                                    {recipient_telegram_id, type, params?,
 *                                                          language_code?} + optional Idempotency-Key:
 *                                                          201 {"notification"}; the same key again: 200
 *                                                          with the row it made; a type the recipient
 *                                                          disabled: 200 {"notification": null,
 *                                                          "skipped": "disabled by the recipient"}
 *   GET  /users/{telegram_id}/notifications?order=unread_first|time&limit=&offset=
 *                                                          {"notifications", "unread", "limit", "offset"}
 *   GET  /users/{telegram_id}/notifications/unread_count   {"unread": n}
 *   POST /users/{telegram_id}/notifications/{id}/read      the notification; 404 when not theirs
 *   POST /users/{telegram_id}/notifications/read_all       {"marked": n}
 *   GET  /users/{telegram_id}/notification_settings        the settings (defaults when none stored)
 *   PUT  /users/{telegram_id}/notification_settings        {disabled_types?, quiet_hours?, timezone?,
 *                                                          language_code?, lesson_reminder_minutes?}:
 *                                                          absent fields keep their value
 *
 * Creation needs no actor (services call it). Every /users/{telegram_id}/… route needs
 * X-Actor-Telegram-Id (400 without) naming that person or an admin (403 otherwise). Every change made
 * through the API writes an audit_log row in the same statement; the delivery worker's status changes
 * are recorded in notification_logs instead.
 *
 * Delivery (delivery.c): one poller per worker thread claims pending notifications whose deliver_after
 * has come (FOR UPDATE SKIP LOCKED, leased for NOTIFY_LEASE_S). Without TELEGRAM_API_URL and BOT_TOKEN
 * a claimed notification is only stored: marked 'sent' with a 'store' log row and an info log line.
 * With both, it is sent with the Bot API's sendMessage; every attempt is logged in notification_logs;
 * a failure is retried after 1 s, doubling, until NOTIFY_MAX_ATTEMPTS attempts, then 'failed'.
 *
 * Reminders (reminders.c): worker 0, every REMINDER_SWEEP_S, reads calendar-service's scheduled
 * lessons starting within NOTIFY_REMINDER_MAX_MIN minutes (GET /lessons/upcoming, a page at a time)
 * and creates one `lesson_reminder` notification for each participant and teacher whose
 * lesson_reminder_minutes before the start has come — once per (lesson, starts_at, person), keyed in
 * lesson_reminders, whichever replica gets there first — for the delivery poller to deliver.
 */
#ifndef NOTIFICATION_H
#define NOTIFICATION_H

#include "idempotency.h"
#include "server.h"

#define NOTIFY_PAGE_DEF      20
#define NOTIFY_PAGE_MAX      100
#define NOTIFY_PARAMS_MAX    32  /* keys in params */
#define NOTIFY_PARAM_KEY_MAX 64  /* bytes of a key: [A-Za-z0-9_] */
#define NOTIFY_PARAM_VAL_MAX 500 /* bytes of a string value */
#define NOTIFY_IDEM_KEY_MAX  200
#define NOTIFY_LANG_TAG_MAX  35 /* an IETF tag such as "pt-br"; only its primary subtag picks a template */
#define NOTIFY_TZ_MAX        64
#define NOTIFY_LEASE_S       30
#define NOTIFY_TOKEN_MAX     256
/* lesson_reminder_minutes: the default (the migration's column default too), its bounds */
#define NOTIFY_REMINDER_DEFAULT "60"
#define NOTIFY_REMINDER_MIN     5
#define NOTIFY_REMINDER_MAX_MIN 1440

typedef struct {
    ls_daemon_config_t common;
    long long idempotency_ttl_s; /* IDEMPOTENCY_TTL_S (idempotency.h) */
    char
        *telegram_api_url; /* TELEGRAM_API_URL: "" (off) or "http(s)://host[:port][/path]", no trailing '/' */
    char *bot_token;       /* BOT_TOKEN: "" (off) or the bot's token */
    long long poll_ms;     /* NOTIFY_POLL_MS */
    long long max_attempts;     /* NOTIFY_MAX_ATTEMPTS */
    long long reminder_sweep_s; /* REMINDER_SWEEP_S */
    char *calendar_url;         /* CALENDAR_URL */
    /* derived at start-up: both set; otherwise notifications are only stored */
    int telegram_enabled;
} notification_config_t;

/* Statement indices into notification_statements (statements.c). */
enum {
    STMT_CREATE,
    STMT_LIST_UNREAD_FIRST,
    STMT_LIST_TIME,
    STMT_UNREAD_COUNT,
    STMT_MARK_READ,
    STMT_MARK_ALL_READ,
    STMT_SETTINGS_GET,
    STMT_SETTINGS_PUT,
    STMT_DELIVER_STORE,
    STMT_CLAIM,
    STMT_SENT,
    STMT_RETRY,
    STMT_FAILED,
    STMT_REMINDERS,
    STMT_IDEM, /* the LS_IDEM_NSTMTS statements of idempotency.h, from here */
    STMT_IDEM_LAST = STMT_IDEM + LS_IDEM_NSTMTS - 1,
    STMT_COUNT,
};

extern const ls_pg_stmt_t notification_statements[STMT_COUNT];

/* The values of the SQL enum notification_type, NULL-terminated. */
extern const char *const notification_types[];

/* notifications.c */
void notifications_create(ls_req_t *r);
void notifications_list(ls_req_t *r);
void notifications_unread_count(ls_req_t *r);
void notifications_read(ls_req_t *r);
void notifications_read_all(ls_req_t *r);

/* settings.c */
void settings_get(ls_req_t *r);
void settings_put(ls_req_t *r);

/* Answers 400/403 and returns -1 unless the request's actor is {telegram_id} of the path or an admin. */
int notification_actor_or_reply(ls_req_t *r);

/* delivery.c: the per-worker delivery poller (on_worker_start / on_worker_stop of the daemon). */
void delivery_start(ls_worker_t *w);
void delivery_stop(ls_worker_t *w);
/* Asks the calling worker's poller for a round now (after a notification was stored). */
void delivery_kick(ls_worker_t *w);

/* reminders.c: the reminder sweep, on worker 0 (after delivery_start, before delivery_stop). */
void reminders_start(ls_worker_t *w);
void reminders_stop(ls_worker_t *w);

/* Checks TELEGRAM_API_URL and BOT_TOKEN (on_start). 0, or -1 with a message in err. */
int notification_prepare_config(notification_config_t *cfg, char *err, size_t errlen);

#endif
