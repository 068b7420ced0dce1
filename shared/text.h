/*
 * text: JSON written as text — the one JSON string escaper, and ls_text_t, a growing buffer for
 * answers built from pieces (result rows, parts passed on unread) rather than from one json-c
 * object.
 *
 * Strings are escaped as json-c escapes them: \" \\ \/ \b \f \n \r \t, the other control
 * characters as \u00xx (lowercase hex), every other byte (UTF-8 included) as it is. So an answer
 * written here is byte for byte the one json-c would write, and the BFF's scanner (bff/upstream.c)
 * can tell json-c's form from any other. Log lines (log.h) use the same escaper, '/' left as it is.
 *
 * ls_utf8_span: the one UTF-8 check, for every edge that takes text (bodies, init data, paths).
 *
 * ls_text_t: start from {0}; on running out of memory `failed` is set and further writes are
 * dropped, so a caller checks once at the end. ls_text_free() frees the buffer (ls_reply_raw copies
 * what it sends).
 */
#ifndef LS_TEXT_H
#define LS_TEXT_H

#include <stddef.h>

#include <json-c/json.h>

/* ---- the escaper ---- */

/* ls_json_escapes[c]: which flags make byte c an escape; 0 for a byte written as it is. */
#define LS_JSON_ESC_ALWAYS 1u /* '"', '\\' and the control characters (< 0x20) */
#define LS_JSON_ESC_SLASH  2u /* '/' (json-c's form; answers need it, log lines do without) */
extern const unsigned char ls_json_escapes[256];

/* Writes json-c's escape of c into out (2 or 6 bytes, no NUL) and returns its length; 0 for a byte
 * json-c writes as it is ('/' has an escape: "\/"). */
size_t ls_json_escape_byte(unsigned char c, char out[6]);

/*
 * Writes src[0..len) escaped into dst, without quotes, at most cap bytes and never half an escape.
 * flags: LS_JSON_ESC_SLASH escapes '/' too; the other escapes are always made. Returns the bytes
 * written; *used (NULL: not wanted) is how many bytes of src they hold, less than len when dst
 * filled up.
 */
size_t ls_json_escape(char *dst, size_t cap, const char *src, size_t len, unsigned flags, size_t *used);

/* ---- UTF-8 ---- */

/*
 * How many leading bytes of s[0..len) are well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no cut sequence): len when all of it is. A NUL byte is
 * well-formed here; callers that refuse it look for it themselves.
 */
size_t ls_utf8_span(const char *s, size_t len);

/* ---- the text writer ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} ls_text_t;

void ls_text_add(ls_text_t *t, const char *s, size_t len);
#define ls_text_lit(t, s) ls_text_add((t), (s), sizeof(s) - 1)
/* s as a JSON string: quoted and escaped as json-c does. */
void ls_text_str(ls_text_t *t, const char *s, size_t len);
/* json-c's plain form of obj (null for NULL), as json-c would write it inside a larger answer. */
void ls_text_json(ls_text_t *t, json_object *obj);
void ls_text_free(ls_text_t *t);

#endif
