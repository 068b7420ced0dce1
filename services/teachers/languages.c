/* teachers-service handlers: the languages a teacher teaches, one row per language. */
#include "teachers.h"

#include <string.h>

#include "rows.h"
#include "txn.h"
#include "vocab.h"

/* The checks both writes share: a valid code in the path, an actor who is the teacher or an admin.
 * Answers and returns -1 on the first failure. */
static int language_write_ok_or_reply(ls_req_t *r, const char **code)
{
    int64_t id = ls_req_param_id(r, "telegram_id");
    *code = ls_req_param_str(r, "code");
    if (!ls_is_language_code(*code)) {
        ls_reply_problem(r, 400, "language code '%.16s' must be 2 or 3 lowercase letters (ISO 639)", *code);
        return -1;
    }
    if (ls_req_actor_or_reply(r) != 0)
        return -1;
    if (!ls_req_actor_is_self_or_admin(r, id)) {
        ls_reply_problem(r, 403,
                         "only the teacher themself or an admin may change the languages of teacher %lld",
                         (long long)id);
        return -1;
    }
    return 0;
}

/* ---- PUT /teachers/{telegram_id}/languages/{code} ---- */

static const ls_json_field_t put_fields[] = {
    {"level", LS_JSON_ENUM, 1, 0, 0, 0, ls_cefr_levels},
};

static void on_language_put(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    if (PQntuples(res) == 0)
        return ls_txn_fail(t, 404, "teacher %lld not found: create the profile first",
                           (long long)ls_req_param_id(r, "telegram_id"));
    int created = ls_row_bool(res, 0, "created");
    ls_txn_reply(t, created ? 201 : 200, teachers_row_json(res, 0));
    ls_txn_commit(t);
}

void languages_put(ls_req_t *r)
{
    const char *code;
    if (language_write_ok_or_reply(r, &code) != 0)
        return;
    json_object *body = ls_req_body_or_reply(r, put_fields, sizeof(put_fields) / sizeof(put_fields[0]));
    if (body == NULL)
        return;
    const char *params[4] = {ls_req_param_str(r, "telegram_id"), code, ls_json_get_str(body, "level"),
                             ls_req_actor_text(r)};
    ls_txn_write(r, STMT_LANGUAGE_PUT, 4, params, on_language_put, NULL);
}

/* ---- DELETE /teachers/{telegram_id}/languages/{code} ---- */

static void on_language_delete(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    long long id = (long long)ls_req_param_id(r, "telegram_id");
    if (!ls_row_bool(res, 0, "teacher_exists"))
        return ls_txn_fail(t, 404, "teacher %lld not found", id);
    if (ls_row_is_null(res, 0, "level"))
        return ls_txn_fail(t, 404, "teacher %lld does not teach '%s'", id, ls_req_param_str(r, "code"));
    ls_txn_commit(t);
}

void languages_delete(ls_req_t *r)
{
    const char *code;
    if (language_write_ok_or_reply(r, &code) != 0)
        return;
    const char *params[3] = {ls_req_param_str(r, "telegram_id"), code, ls_req_actor_text(r)};
    ls_txn_write(r, STMT_LANGUAGE_DELETE, 3, params, on_language_delete, NULL);
}
