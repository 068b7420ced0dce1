/* The JSON scanner: see json_scan.h. */
#include "json_scan.h"

#include <string.h>

#define SCAN_MAX_DEPTH   12 /* below json-c's LS_JSON_MAX_DEPTH (json.h) */
#define SCAN_MAX_DIGITS  18 /* an integer part that always fits json-c's int64 */
#define SCAN_MAX_MEMBERS 64 /* per object */

/* Member names to report, with their lengths. */
typedef struct {
    const char *const *names;
    size_t len[BFF_JSON_MAX_FIELDS];
    size_t n;
} keys_t;

typedef struct {
    const char *p, *end;
    int depth;
    /* The list read item by item (bff_json_read): the top-level member list_key, when it is an array. */
    const char *list_key;
    size_t list_key_len;
    const keys_t *item_keys;
    bff_json_item_t *items; /* NULL: no list is read */
    size_t max_items;
    long nitems; /* -1 until a list is read */
} scan_t;

static int keys_init(keys_t *k, const char *const *names, size_t n)
{
    if (n > BFF_JSON_MAX_FIELDS)
        return -1;
    k->names = names;
    k->n = n;
    for (size_t i = 0; i < n; i++)
        k->len[i] = strlen(names[i]);
    return 0;
}

static void scan_init(scan_t *sc, const char *text, size_t len)
{
    memset(sc, 0, sizeof(*sc));
    sc->p = text;
    sc->end = text + len;
    sc->nitems = -1;
}

static void skip_ws(scan_t *sc)
{
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
        sc->p++;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_digit_or_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* The bytes a string scan must stop at: control characters, '"', '/' and '\\'. */
static const unsigned char string_special[256] = {
    [0x00 ... 0x1f] = 1,
    ['"'] = 1,
    ['/'] = 1,
    ['\\'] = 1,
};

/*
 * A string at sc->p (the opening quote) written as json-c writes one: '/' escaped, \u only for the
 * control characters json-c does not write as \b \f \n \r \t (lowercase hex), other bytes as they
 * are. *escaped tells whether it holds a backslash.
 */
static int scan_string(scan_t *sc, int *escaped)
{
    *escaped = 0;
    sc->p++;
    while (sc->p < sc->end) {
        /* Most bytes are plain: skip them with one table lookup each (this loop is most of the scan). */
        while (sc->p < sc->end && !string_special[(unsigned char)*sc->p])
            sc->p++;
        if (sc->p == sc->end)
            break;
        unsigned char c = (unsigned char)*sc->p++;
        if (c == '"')
            return 0;
        if (c < 0x20 || c == '/')
            return -1;
        if (c != '\\')
            continue;
        *escaped = 1;
        if (sc->p == sc->end)
            return -1;
        c = (unsigned char)*sc->p++;
        if (c == 'u') {
            if (sc->end - sc->p < 4 || memcmp(sc->p, "00", 2) != 0 || (sc->p[2] != '0' && sc->p[2] != '1') ||
                !is_digit_or_lower_hex(sc->p[3]))
                return -1;
            int code = (sc->p[2] - '0') * 16 + (is_digit(sc->p[3]) ? sc->p[3] - '0' : sc->p[3] - 'a' + 10);
            if (code == '\b' || code == '\t' || code == '\n' || code == '\f' || code == '\r')
                return -1;
            sc->p += 4;
        } else if (c == '\0' || strchr("\"\\/bfnrt", c) == NULL) {
            return -1;
        }
    }
    return -1;
}

static int scan_number(scan_t *sc, json_type *type)
{
    const char *start;
    int negative = *sc->p == '-';
    *type = json_type_int;
    if (negative)
        sc->p++;
    start = sc->p;
    if (sc->p < sc->end && *sc->p == '0') {
        sc->p++;
    } else {
        while (sc->p < sc->end && is_digit(*sc->p))
            sc->p++;
    }
    if (sc->p == start || sc->p - start > SCAN_MAX_DIGITS)
        return -1;
    if (sc->p < sc->end && *sc->p == '.') {
        *type = json_type_double;
        start = ++sc->p;
        while (sc->p < sc->end && is_digit(*sc->p))
            sc->p++;
        if (sc->p == start || sc->p - start > SCAN_MAX_DIGITS)
            return -1;
    }
    if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E'))
        return -1;
    if (*type == json_type_int && negative && *start == '0')
        return -1; /* json-c writes -0 as 0 */
    return 0;
}

static int scan_literal(scan_t *sc, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, word, n) != 0)
        return -1;
    sc->p += n;
    return 0;
}

static int scan_items(scan_t *sc);

/*
 * One value at sc->p, with no whitespace inside (json-c's plain form). When keys is not NULL and the
 * value is an object, its members named keys->names[k] are recorded in members[k] (which the caller
 * has cleared).
 */
static int scan_value(scan_t *sc, json_type *type, const keys_t *keys, bff_json_span_t *members)
{
    int escaped;
    if (sc->p == sc->end)
        return -1;
    switch (*sc->p) {
    case '{':
    case '[': {
        int is_object = *sc->p == '{';
        char close = is_object ? '}' : ']';
        *type = is_object ? json_type_object : json_type_array;
        if (++sc->depth > SCAN_MAX_DEPTH)
            return -1;
        sc->p++;
        if (sc->p < sc->end && *sc->p == close) {
            sc->p++;
            sc->depth--;
            return 0;
        }
        /* json-c keeps one member per name: text with a repeated name would not pass on unchanged. */
        struct {
            const char *text;
            size_t len;
        } seen[SCAN_MAX_MEMBERS];
        size_t nseen = 0;
        for (;;) {
            const char *name = NULL;
            size_t name_len = 0;
            if (is_object) {
                if (sc->p == sc->end || *sc->p != '"' || nseen == SCAN_MAX_MEMBERS)
                    return -1;
                name = sc->p + 1;
                if (scan_string(sc, &escaped) != 0 || escaped)
                    return -1; /* an escaped name could spell another */
                name_len = (size_t)(sc->p - 1 - name);
                for (size_t i = 0; i < nseen; i++)
                    if (seen[i].len == name_len && memcmp(seen[i].text, name, name_len) == 0)
                        return -1;
                seen[nseen].text = name;
                seen[nseen].len = name_len;
                nseen++;
                if (sc->p == sc->end || *sc->p != ':')
                    return -1;
                sc->p++;
            }
            bff_json_span_t v = {.text = sc->p};
            if (name != NULL && sc->list_key != NULL && sc->depth == 1 && name_len == sc->list_key_len &&
                memcmp(name, sc->list_key, name_len) == 0 && sc->p < sc->end && *sc->p == '[') {
                v.type = json_type_array; /* the list, read item by item in this one pass */
                if (scan_items(sc) != 0)
                    return -1;
            } else if (scan_value(sc, &v.type, NULL, NULL) != 0) {
                return -1;
            }
            v.len = (size_t)(sc->p - v.text);
            if (name != NULL && keys != NULL)
                for (size_t k = 0; k < keys->n; k++)
                    if (keys->len[k] == name_len && memcmp(name, keys->names[k], name_len) == 0)
                        members[k] = v;
            if (sc->p == sc->end)
                return -1;
            if (*sc->p == close) {
                sc->p++;
                sc->depth--;
                return 0;
            }
            if (*sc->p != ',')
                return -1;
            sc->p++;
        }
    }
    case '"':
        *type = json_type_string;
        return scan_string(sc, &escaped);
    case 't':
        *type = json_type_boolean;
        return scan_literal(sc, "true");
    case 'f':
        *type = json_type_boolean;
        return scan_literal(sc, "false");
    case 'n':
        *type = json_type_null;
        return scan_literal(sc, "null");
    default:
        if (*sc->p == '-' || is_digit(*sc->p))
            return scan_number(sc, type);
        return -1;
    }
}

/* The array at sc->p into sc->items: objects only, at most sc->max_items of them. */
static int scan_items(scan_t *sc)
{
    long n = 0;

    if (++sc->depth > SCAN_MAX_DEPTH)
        return -1;
    sc->p++;
    if (sc->p < sc->end && *sc->p == ']') {
        sc->p++;
    } else {
        for (;;) {
            if ((size_t)n == sc->max_items || sc->p == sc->end || *sc->p != '{')
                return -1;
            bff_json_item_t *it = &sc->items[n++];
            memset(it, 0, sizeof(*it));
            it->whole.text = sc->p;
            if (scan_value(sc, &it->whole.type, sc->item_keys, it->field) != 0)
                return -1;
            it->whole.len = (size_t)(sc->p - it->whole.text);
            if (sc->p == sc->end)
                return -1;
            if (*sc->p == ']') {
                sc->p++;
                break;
            }
            if (*sc->p != ',')
                return -1;
            sc->p++;
        }
    }
    sc->depth--;
    sc->nitems = n;
    return 0;
}

int bff_json_read(const char *text, size_t len, const bff_json_want_t *want, bff_json_span_t *whole,
                  bff_json_span_t *fields, long *nitems)
{
    scan_t sc;
    keys_t keys, item_keys;
    bff_json_span_t none = {.text = NULL};

    scan_init(&sc, text, len);
    *whole = none;
    *nitems = -1;
    if (keys_init(&keys, want->keys, want->nkeys) != 0 ||
        keys_init(&item_keys, want->item_keys, want->nitem_keys) != 0)
        return -1;
    if (want->nkeys > 0)
        memset(fields, 0, want->nkeys * sizeof(*fields));
    if (want->items != NULL) {
        if (want->nkeys > 0) {
            sc.list_key = want->keys[0];
            sc.list_key_len = keys.len[0];
        }
        sc.item_keys = &item_keys;
        sc.items = want->items;
        sc.max_items = want->max_items;
    }
    skip_ws(&sc);
    whole->text = sc.p;
    /* json-c's parser, given the exact length, does not finish a number or literal at the very end
     * (it waits for more): such an answer counts as malformed. */
    if (sc.p == sc.end || (*sc.p != '{' && *sc.p != '[' && *sc.p != '"'))
        goto fail;
    if (sc.items != NULL && *sc.p == '[') {
        whole->type = json_type_array;
        if (scan_items(&sc) != 0)
            goto fail;
    } else if (scan_value(&sc, &whole->type, &keys, fields) != 0) {
        goto fail;
    }
    whole->len = (size_t)(sc.p - whole->text);
    skip_ws(&sc);
    if (sc.p != sc.end)
        goto fail;
    *nitems = sc.nitems;
    return 0;

fail:
    *whole = none;
    if (want->nkeys > 0)
        memset(fields, 0, want->nkeys * sizeof(*fields));
    return -1;
}

int bff_json_scan(const char *text, size_t len, const char *key, bff_json_span_t *whole,
                  bff_json_span_t *member)
{
    bff_json_want_t want = {.keys = &key, .nkeys = key != NULL};
    bff_json_span_t ignored;
    long nitems;
    if (member == NULL)
        member = &ignored;
    member->text = NULL;
    return bff_json_read(text, len, &want, whole, member, &nitems);
}

int bff_json_fields(const char *text, size_t len, const char *const *keys, size_t nkeys,
                    bff_json_span_t *fields)
{
    bff_json_want_t want = {.keys = keys, .nkeys = nkeys};
    bff_json_span_t whole;
    long nitems;
    if (bff_json_read(text, len, &want, &whole, fields, &nitems) != 0)
        return -1;
    if (whole.type == json_type_object)
        return 0;
    memset(fields, 0, nkeys * sizeof(*fields));
    return -1;
}

long bff_json_items(const char *text, size_t len, const char *const *keys, size_t nkeys,
                    bff_json_item_t *items, size_t max)
{
    bff_json_want_t want = {.item_keys = keys, .nitem_keys = nkeys, .items = items, .max_items = max};
    bff_json_span_t whole;
    long nitems;
    if (bff_json_read(text, len, &want, &whole, NULL, &nitems) != 0 || whole.type != json_type_array)
        return -1;
    return nitems;
}

int64_t bff_span_id(const bff_json_span_t *v)
{
    int64_t n = 0;
    if (v->text == NULL || v->type != json_type_int)
        return 0;
    /* The scanner let through at most SCAN_MAX_DIGITS digits: no overflow. */
    for (size_t i = v->text[0] == '-'; i < v->len; i++)
        n = n * 10 + (v->text[i] - '0');
    return v->text[0] == '-' ? -n : n;
}

int bff_span_str(const bff_json_span_t *v, const char **s, size_t *len)
{
    *s = "";
    *len = 0;
    if (v->text == NULL || v->type != json_type_string)
        return 0;
    if (memchr(v->text, '\\', v->len) != NULL)
        return -1;
    *s = v->text + 1;
    *len = v->len - 2;
    return 0;
}

size_t bff_span_unescape(const bff_json_span_t *v, char *out)
{
    size_t n = 0;
    if (v->text == NULL || v->type != json_type_string)
        return 0;
    /* The scanner let through only json-c's escapes: \" \\ \/ \b \f \n \r \t and \u00xx. */
    for (const char *p = v->text + 1, *end = v->text + v->len - 1; p < end; p++) {
        char c = *p;
        if (c == '\\') {
            c = *++p;
            if (c == 'u') {
                c = (char)((p[3] - '0') * 16 + (is_digit(p[4]) ? p[4] - '0' : p[4] - 'a' + 10));
                p += 4;
            } else if (c != '"' && c != '\\' && c != '/') {
                c = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r' : '\t';
            }
        }
        if (c == '\0')
            break; /* where json-c's C string ends */
        out[n++] = c;
    }
    return n;
}
