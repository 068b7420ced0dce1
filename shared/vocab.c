#include "vocab.h"

#include <string.h>

const char *const ls_cefr_levels[] = {"A1", "A2", "B1", "B2", "C1", "C2", NULL};

int ls_is_cefr_level(const char *s)
{
    for (size_t i = 0; s != NULL && ls_cefr_levels[i] != NULL; i++)
        if (strcmp(s, ls_cefr_levels[i]) == 0)
            return 1;
    return 0;
}

int ls_is_language_code(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++)
        if (s[n] < 'a' || s[n] > 'z' || n == 3)
            return 0;
    return n >= 2;
}

const char *const ls_roles[] = {"student", "teacher", "admin", NULL};

const char *ls_role_name(ls_role_t role)
{
    return role == LS_ROLE_NONE ? "" : ls_roles[role - 1];
}

ls_role_t ls_role_parse(const char *s, size_t len)
{
    for (int i = 0; ls_roles[i] != NULL; i++)
        if (strlen(ls_roles[i]) == len && memcmp(ls_roles[i], s, len) == 0)
            return (ls_role_t)(i + 1);
    return LS_ROLE_NONE;
}
