/*
 * botapi: the two settings every daemon that calls Telegram's Bot API takes (notification-service's
 * delivery, payment-service's invoices and refunds), checked one way.
 *
 * TELEGRAM_API_URL is empty (off) or an http(s) URL of visible ASCII without a query or a fragment,
 * e.g. https://api.telegram.org (a test points it at its fake). BOT_TOKEN is empty or letters,
 * digits, ':', '_' and '-' — so that "{url}/bot{token}/method" needs no escaping. The token is a
 * secret: nothing here logs it.
 */
#ifndef LS_BOTAPI_H
#define LS_BOTAPI_H

#include <stddef.h>

/* Checks both, removing trailing '/' from url in place. 1 when both are set (calls are made), 0 when
 * either is empty (off), -1 with a message naming the setting in err. */
int ls_botapi_settings(char *url, const char *token, char *err, size_t errlen);

#endif
