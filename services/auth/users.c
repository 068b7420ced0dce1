/* auth-service handlers: reading and changing users. */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "outbox.h"
#include "rows.h"
#include "txn.h"

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
        const char *id_text = ls_row_text(res, row, "telegram_id");
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
    int created = ls_row_bool(res, 0, "created");
    /* The statement committed the registration notification with the user: deliver it now. */
    if (created)
        ls_outbox_kick(ls_worker_outbox(r->worker));
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

    const char *params[12] = {
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
        ls_req_traceparent(r),
    };
    ls_req_pg(r, STMT_USER_PUT, 12, params, on_user_put);
}

/* ---- PATCH /users/{telegram_id}: a transaction — check the actor, update, audit ---- */

static const ls_json_field_t patch_fields[] = {
    {"role", LS_JSON_ENUM, 0, 0, 0, 0, ls_roles},
    {"is_verified", LS_JSON_BOOL, 0, 0, 0, 0, NULL},
};

static void on_patch_audited(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    ls_txn_commit(t);
}

static void on_patch_updated(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    if (PQntuples(res) == 0)
        return ls_txn_fail(t, 404, "user %lld not found", (long long)ls_req_param_id(r, "telegram_id"));
    ls_txn_reply(t, 200, user_json(r, res, 0));
    ls_txn_audit(t, STMT_AUDIT, "user.patch", "user", ls_req_param_str(r, "telegram_id"),
                 json_object_to_json_string_ext(r->body, JSON_C_TO_STRING_PLAIN), on_patch_audited);
}

static void on_patch_actor(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    const char *role = ls_row_text(res, 0, "role");
    if (role == NULL || strcmp(role, "admin") != 0)
        return ls_txn_fail(t, 403, "only an admin may change a user's role or verification");

    json_object *body = r->body;
    json_object *is_verified;
    const char *params[3] = {
        ls_req_param_str(r, "telegram_id"),
        ls_json_get_str(body, "role"),
        json_object_object_get_ex(body, "is_verified", &is_verified) && is_verified != NULL
            ? (json_object_get_boolean(is_verified) ? "true" : "false")
            : NULL,
    };
    ls_txn_exec(t, STMT_USER_PATCH, 3, params, on_patch_updated);
}

static void patch_begun(ls_req_t *r, ls_txn_t *t, const PGresult *res)
{
    const char *params[1] = {ls_req_actor_text(r)};
    ls_txn_exec(t, STMT_USER_ROLE, 1, params, on_patch_actor);
}

void users_patch(ls_req_t *r)
{
    json_object *body = ls_req_body_or_reply(r, patch_fields, sizeof(patch_fields) / sizeof(patch_fields[0]));
    if (body == NULL || ls_req_actor_or_reply(r) != 0)
        return;
    if (json_object_object_length(body) == 0)
        return ls_reply_problem(r, 400, "nothing to change: give 'role' and/or 'is_verified'");
    ls_txn_begin(ls_txn_new(r), patch_begun);
}
