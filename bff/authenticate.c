/* The caller's authentication: every request under /api/ carries `Authorization: tma <initData>`. See
 * bff.h (bff_authenticate) and tma.h. */
#include "bff.h"

#include <string.h>
#include <strings.h>
#include <time.h>

static void reject(ls_req_t *r, const char *reason)
{
    bff_add_header(r, "www-authenticate", "tma");
    ls_reply_problem(r, 401, "%s", reason);
}

int bff_authenticate(ls_req_t *r)
{
    const bff_config_t *c = ls_req_config(r);
    h2o_req_t *req = r->h2o;
    bff_req_t *st = ls_req_alloc(r, sizeof(*st));
    const char *reason;

    r->state = st;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0) {
        reject(r, "header Authorization: tma <initData> is required");
        return -1;
    }
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len < 4 || strncasecmp(v.base, "tma ", 4) != 0) {
        reject(r, "the Authorization scheme must be tma (Telegram Mini App init data)");
        return -1;
    }
    size_t skip = 4;
    while (skip < v.len && v.base[skip] == ' ')
        skip++;
    int rc = tma_validate(v.base + skip, v.len - skip, c->tma_key, (int64_t)time(NULL), c->init_data_max_age,
                          &st->caller, &reason);
    if (rc == TMA_BAD_TEXT) { /* signed by Telegram, but text that may not be stored: refused, never cut */
        ls_reply_problem(r, 400, "%s", reason);
        return -1;
    }
    if (rc != 0) {
        reject(r, reason);
        return -1;
    }
    r->actor = st->caller.telegram_id;
    uint64_t deadline = r->started + (uint64_t)c->deadline_ms;
    if (deadline < r->deadline)
        r->deadline = deadline;
    return 0;
}
