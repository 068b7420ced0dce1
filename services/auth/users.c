/* auth-service handlers: reading and changing users. */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "rows.h"

#define USER_COLUMNS(p)                                                                                      \
    p "id, " p "telegram_id, " p "username, " p "first_name, " p "last_name, " p "language_code, " p         \
      "photo_url, " p "phone_encrypted, " p "role, " p "is_verified, " p "created_at, " p "updated_at"

const ls_pg_stmt_t auth_statements[STMT_COUNT] = {
    [STMT_USER_GET] = {"user_get", "SELECT " USER_COLUMNS("") " FROM users WHERE telegram_id = $1::bigint",
                       1},
    [STMT_USER_BATCH] = {"user_batch",
                         "SELECT " USER_COLUMNS(
                             "u.") " FROM unnest($1::bigint[]) WITH ORDINALITY AS q(tid, ord)"
                                   " JOIN users u ON u.telegram_id = q.tid ORDER BY q.ord",
                         1},
    /* $1 id, $2..$6 names, $7 sealed phone, $8 phone given, $9 admin ids, $10 actor, $11 changes */
    [STMT_USER_PUT] =
        {"user_put",
         "WITH u AS ("
         " INSERT INTO users AS t (telegram_id, username, first_name, last_name, language_code,"
         "  photo_url, phone_encrypted, role)"
         " VALUES ($1::bigint, $2, $3, $4, $5, $6, $7::bytea,"
         "  CASE WHEN $1::bigint = ANY($9::bigint[]) THEN 'admin' ELSE 'student' END::user_role)"
         " ON CONFLICT (telegram_id) DO UPDATE SET username = EXCLUDED.username,"
         "  first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,"
         "  language_code = EXCLUDED.language_code, photo_url = EXCLUDED.photo_url,"
         "  phone_encrypted = CASE WHEN $8::boolean THEN EXCLUDED.phone_encrypted"
         "   ELSE t.phone_encrypted END,"
         "  updated_at = now()"
         " RETURNING t.*, (t.xmax = 0) AS created),"
         " a AS (INSERT INTO audit_log (actor_telegram_id, action, entity, entity_id, changes)"
         "  SELECT $10::bigint, CASE WHEN created THEN 'user.create' ELSE 'user.update' END,"
         "   'user', telegram_id::text, $11::jsonb FROM u)"
         " SELECT " USER_COLUMNS("") ", created FROM u",
         11},
    [STMT_USER_ROLE] = {"user_role", "SELECT role FROM users WHERE telegram_id = $1::bigint", 1},
    [STMT_USER_PATCH] = {"user_patch",
                         "UPDATE users SET role = COALESCE($2::user_role, role),"
                         " is_verified = COALESCE($3::boolean, is_verified), updated_at = now()"
                         " WHERE telegram_id = $1::bigint RETURNING " USER_COLUMNS(""),
                         3},
    [STMT_AUDIT] = {"audit",
                    "INSERT INTO audit_log (actor_telegram_id, action, entity, entity_id, changes)"
                    " VALUES ($1::bigint, $2, $3, $4, $5::jsonb)",
                    5},
};

/* ---- configuration ---- */

int auth_prepare_config(auth_config_t *cfg, char *err, size_t errlen)
{
    size_t keylen = 0;
    if (sodium_hex2bin(cfg->data_key, sizeof(cfg->data_key), cfg->data_key_hex, strlen(cfg->data_key_hex),
                       NULL, &keylen, NULL) != 0 ||
        keylen != sizeof(cfg->data_key)) {
        snprintf(err, errlen, "AUTH_DATA_KEY: must be 64 hex characters (32 bytes)");
        return -1;
    }

    /* ADMIN_TELEGRAM_IDS -> "{1,2,3}" */
    size_t off = 0, count = 0;
    const char *p = cfg->admin_ids;
    cfg->admin_array[off++] = '{';
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        int64_t id;
        if (ls_parse_id(p, len, &id) != 0 || ++count > AUTH_MAX_ADMINS) {
            snprintf(err, errlen, "ADMIN_TELEGRAM_IDS: must be at most %d comma-separated telegram ids",
                     AUTH_MAX_ADMINS);
            return -1;
        }
        off += (size_t)snprintf(cfg->admin_array + off, sizeof(cfg->admin_array) - off, "%s%lld",
                                count > 1 ? "," : "", (long long)id);
        p = end != NULL ? end + 1 : p + len;
    }
    cfg->admin_array[off++] = '}';
    cfg->admin_array[off] = '\0';
    return 0;
}

/* ---- phone numbers at rest ---- */

#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN   crypto_aead_xchacha20poly1305_ietf_ABYTES
#define PHONE_MAX 32

/* Seals a phone number bound to its owner's telegram id; returns "\x<hex>" for a bytea parameter. */
static char *seal_phone(ls_req_t *r, const auth_config_t *cfg, const char *id_text, const char *phone)
{
    unsigned char sealed[NONCE_LEN + PHONE_MAX + TAG_LEN];
    size_t plen = strlen(phone);
    unsigned long long clen;

    randombytes_buf(sealed, NONCE_LEN);
    crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + NONCE_LEN, &clen, (const unsigned char *)phone, plen,
                                               (const unsigned char *)id_text, strlen(id_text), NULL, sealed,
                                               cfg->data_key);
    size_t total = NONCE_LEN + (size_t)clen;
    char *out = ls_req_alloc(r, 2 + total * 2 + 1);
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, total * 2 + 1, sealed, total);
    return out;
}

/* Adds "phone_number" (decrypted, or null) to a user object built from a row. */
static void add_phone(json_object *user, const auth_config_t *cfg, const PGresult *res, int row)
{
    int col = PQfnumber(res, "phone_encrypted");
    json_object *phone = NULL;
    if (col >= 0 && !PQgetisnull(res, row, col)) {
        size_t len;
        unsigned char *sealed = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), &len);
        char plain[PHONE_MAX + 1];
        unsigned long long plen;
        const char *id_text = PQgetvalue(res, row, PQfnumber(res, "telegram_id"));
        if (sealed != NULL && len > NONCE_LEN + TAG_LEN && len <= NONCE_LEN + PHONE_MAX + TAG_LEN &&
            crypto_aead_xchacha20poly1305_ietf_decrypt(
                (unsigned char *)plain, &plen, NULL, sealed + NONCE_LEN, len - NONCE_LEN,
                (const unsigned char *)id_text, strlen(id_text), sealed, cfg->data_key) == 0) {
            phone = json_object_new_string_len(plain, (int)plen);
            sodium_memzero(plain, sizeof(plain));
        } else {
            ls_logf(LS_LOG_ERROR, NULL, "user %s: phone number does not decrypt with AUTH_DATA_KEY", id_text);
        }
        PQfreemem(sealed);
    }
    json_object_object_add(user, "phone_number", phone);
}

static json_object *user_json(ls_req_t *r, const PGresult *res, int row)
{
    json_object *user = ls_row_object_skip(res, row, "created");
    add_phone(user, ls_req_config(r), res, row);
    return user;
}

/* ---- GET /users/{telegram_id} ---- */

static void on_user_get(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    if (PQntuples(res) == 0)
        return ls_reply_problem(r, 404, "user %lld not found", (long long)ls_req_param_id(r, "telegram_id"));
    ls_reply_json(r, 200, user_json(r, res, 0));
}

void users_get(ls_req_t *r)
{
    const char *params[1] = {ls_req_param_str(r, "telegram_id")};
    ls_req_pg(r, STMT_USER_GET, 1, params, on_user_get);
}

/* ---- GET /users?ids=1,2,3 ---- */

void users_batch(ls_req_t *r)
{
    ls_req_batch(r, AUTH_BATCH_MAX, STMT_USER_BATCH, "users", user_json);
}

/* ---- PUT /users/{telegram_id} ---- */

static const ls_json_field_t put_fields[] = {
    {"first_name", LS_JSON_STRING, 1, 0, 1, 256, NULL},
    {"last_name", LS_JSON_STRING, 0, 1, 0, 256, NULL},
    {"username", LS_JSON_STRING, 0, 1, 1, 64, NULL},
    {"language_code", LS_JSON_STRING, 0, 1, 1, 16, NULL},
    {"photo_url", LS_JSON_STRING, 0, 1, 1, 2048, NULL},
    {"phone_number", LS_JSON_STRING, 0, 1, 3, PHONE_MAX, NULL},
};

static void on_user_put(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return;
    int created = PQgetvalue(res, 0, PQfnumber(res, "created"))[0] == 't';
    json_object *out = json_object_new_object();
    json_object_object_add(out, "user", user_json(r, res, 0));
    json_object_object_add(out, "created", json_object_new_boolean(created));
    ls_reply_json(r, created ? 201 : 200, out);
}

void users_put(ls_req_t *r)
{
    const auth_config_t *cfg = ls_req_config(r);
    int64_t id = ls_req_param_id(r, "telegram_id");
    json_object *body = ls_req_body_or_reply(r, put_fields, sizeof(put_fields) / sizeof(put_fields[0]));
    if (body == NULL)
        return;
    if (r->actor != 0 && r->actor != id)
        return ls_reply_problem(r, 403, "only the user themself may change their Telegram data");

    const char *id_text = ls_req_param_str(r, "telegram_id");
    const char *phone = ls_json_get_str(body, "phone_number");
    int phone_given = ls_json_has(body, "phone_number");

    /* The audit row records what changed, never the phone number itself. */
    json_object *changes = json_object_new_object();
    json_object_object_foreach(body, key, val)
    {
        if (strcmp(key, "phone_number") == 0)
            json_object_object_add(changes, key, json_object_new_string(val ? "(set)" : "(cleared)"));
        else
            json_object_object_add(changes, key, json_object_get(val));
    }
    const char *changes_json = json_object_to_json_string_ext(changes, JSON_C_TO_STRING_PLAIN);
    char *changes_text = ls_req_strdup(r, changes_json, strlen(changes_json));
    json_object_put(changes);
    char actor[24];
    snprintf(actor, sizeof(actor), "%lld", (long long)(r->actor != 0 ? r->actor : id));

    const char *params[11] = {
        id_text,
        ls_json_get_str(body, "username"),
        ls_json_get_str(body, "first_name"),
        ls_json_get_str(body, "last_name"),
        ls_json_get_str(body, "language_code"),
        ls_json_get_str(body, "photo_url"),
        phone != NULL ? seal_phone(r, cfg, id_text, phone) : NULL,
        phone_given ? "true" : "false",
        cfg->admin_array,
        actor,
        changes_text,
    };
    ls_req_pg(r, STMT_USER_PUT, 11, params, on_user_put);
}

/* ---- PATCH /users/{telegram_id}: a transaction — check the actor, update, audit ---- */

static const char *const role_values[] = {"student", "teacher", "admin", NULL};

static const ls_json_field_t patch_fields[] = {
    {"role", LS_JSON_ENUM, 0, 0, 0, 0, role_values},
    {"is_verified", LS_JSON_BOOL, 0, 0, 0, 0, NULL},
};

typedef struct {
    ls_pg_txn_t *txn;
    json_object *user; /* the updated user, answered after COMMIT */
} patch_t;

/* Rolls back and answers; for every failure after BEGIN succeeded. */
static void patch_abort(ls_req_t *r, int status, const char *detail)
{
    patch_t *p = r->state;
    ls_req_txn_finish(r, p->txn, 0, NULL);
    p->txn = NULL;
    if (p->user != NULL) {
        json_object_put(p->user);
        p->user = NULL;
    }
    if (detail != NULL)
        ls_reply_problem(r, status, "%s", detail);
}

static void on_patch_committed(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    patch_t *p = r->state;
    json_object *user = p->user;
    p->user = NULL;
    if (ls_pg_ok_or_reply(r, status, res) != 0) {
        json_object_put(user);
        return;
    }
    ls_reply_json(r, 200, user);
}

static void on_patch_audited(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    patch_t *p = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return patch_abort(r, 0, NULL);
    ls_pg_txn_t *txn = p->txn;
    p->txn = NULL;
    ls_req_txn_finish(r, txn, 1, on_patch_committed);
}

static void on_patch_updated(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    patch_t *p = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return patch_abort(r, 0, NULL);
    if (PQntuples(res) == 0) {
        char detail[64];
        snprintf(detail, sizeof(detail), "user %lld not found", (long long)ls_req_param_id(r, "telegram_id"));
        return patch_abort(r, 404, detail);
    }
    p->user = user_json(r, res, 0);

    char actor[24];
    snprintf(actor, sizeof(actor), "%lld", (long long)r->actor);
    const char *params[5] = {actor, "user.patch", "user", ls_req_param_str(r, "telegram_id"),
                             json_object_to_json_string_ext(r->body, JSON_C_TO_STRING_PLAIN)};
    ls_req_txn_exec(r, p->txn, STMT_AUDIT, 5, params, on_patch_audited);
}

static void on_patch_actor(ls_req_t *r, ls_pg_status_t status, PGresult *res)
{
    patch_t *p = r->state;
    if (ls_pg_ok_or_reply(r, status, res) != 0)
        return patch_abort(r, 0, NULL);
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "admin") != 0)
        return patch_abort(r, 403, "only an admin may change a user's role or verification");

    json_object *body = r->body;
    json_object *is_verified;
    const char *params[3] = {
        ls_req_param_str(r, "telegram_id"),
        ls_json_get_str(body, "role"),
        json_object_object_get_ex(body, "is_verified", &is_verified) && is_verified != NULL
            ? (json_object_get_boolean(is_verified) ? "true" : "false")
            : NULL,
    };
    ls_req_txn_exec(r, p->txn, STMT_USER_PATCH, 3, params, on_patch_updated);
}

static void on_patch_begun(ls_req_t *r, ls_pg_status_t status, ls_pg_txn_t *txn)
{
    patch_t *p = r->state;
    if (ls_pg_ok_or_reply(r, status, NULL) != 0)
        return;
    p->txn = txn;
    char actor[24];
    snprintf(actor, sizeof(actor), "%lld", (long long)r->actor);
    const char *params[1] = {actor};
    ls_req_txn_exec(r, txn, STMT_USER_ROLE, 1, params, on_patch_actor);
}

void users_patch(ls_req_t *r)
{
    json_object *body = ls_req_body_or_reply(r, patch_fields, sizeof(patch_fields) / sizeof(patch_fields[0]));
    if (body == NULL || ls_req_actor_or_reply(r) != 0)
        return;
    if (json_object_object_length(body) == 0)
        return ls_reply_problem(r, 400, "nothing to change: give 'role' and/or 'is_verified'");
    patch_t *p = ls_req_alloc(r, sizeof(*p));
    p->txn = NULL;
    p->user = NULL;
    r->state = p;
    ls_req_begin(r, on_patch_begun);
}
