/*
 * vocab: the school's words, checked the same way by every daemon — CEFR levels, language codes and
 * the roles of an account.
 *
 * The lists are NULL-terminated so that they serve as the values of an LS_JSON_ENUM field (body.h).
 */
#ifndef LS_VOCAB_H
#define LS_VOCAB_H

/* "A1" … "C2" in ascending order (the SQL enum cefr_level has the same values in every database). */
extern const char *const ls_cefr_levels[];
int ls_is_cefr_level(const char *s); /* 0 for NULL */

/* An ISO 639 language code as stored everywhere: 2 or 3 lowercase ASCII letters. 0 for NULL. */
int ls_is_language_code(const char *s);

/* "student", "teacher", "admin": the roles as X-Actor-Role and auth-service spell them, in the
 * order of server.h's ls_role_t from LS_ROLE_STUDENT. */
extern const char *const ls_roles[];

#endif
