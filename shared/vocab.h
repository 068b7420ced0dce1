/*
 * vocab: the school's words, checked the same way by every daemon — CEFR levels, language codes and
 * the roles of an account.
 *
 * The lists are NULL-terminated so that they serve as the values of an LS_JSON_ENUM field (body.h).
 */
#ifndef LS_VOCAB_H
#define LS_VOCAB_H

#include <stddef.h>

/* "A1" … "C2" in ascending order (the SQL enum cefr_level has the same values in every database). */
extern const char *const ls_cefr_levels[];
int ls_is_cefr_level(const char *s); /* 0 for NULL */

/* An ISO 639 language code as stored everywhere: 2 or 3 lowercase ASCII letters. 0 for NULL. */
int ls_is_language_code(const char *s);

/* The role of an account. The actor's role as the caller (the BFF, which read it from auth-service)
 * states it in X-Actor-Role; services trust it as they trust X-Actor-Telegram-Id, behind the
 * internal token. */
typedef enum { LS_ROLE_NONE = 0, LS_ROLE_STUDENT, LS_ROLE_TEACHER, LS_ROLE_ADMIN } ls_role_t;
/* "student", "teacher", "admin": the roles as X-Actor-Role and auth-service spell them, in the
 * order of ls_role_t from LS_ROLE_STUDENT. */
extern const char *const ls_roles[];
/* "student", "teacher", "admin" ("" for LS_ROLE_NONE). */
const char *ls_role_name(ls_role_t role);
/* The role spelled by the len bytes at s, or LS_ROLE_NONE when they spell none. */
ls_role_t ls_role_parse(const char *s, size_t len);

#endif
