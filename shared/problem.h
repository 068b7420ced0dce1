/*
 * problem: RFC 9457 problem documents, the body of every error answer, and the HTTP status titles
 * they carry.
 */
#ifndef LS_PROBLEM_H
#define LS_PROBLEM_H

#include <json-c/json.h>

/* {"type":"about:blank","title":…,"status":…,"detail":…} (no detail when NULL); the caller owns it. */
json_object *ls_problem_new(int status, const char *detail);
/* Standard reason phrase for a status ("Not Found"); "Error" for unknown codes. */
const char *ls_status_title(int status);

#endif
