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
