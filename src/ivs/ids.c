/* ids.c — see ids.h. */
#include "ivs/ids.h"

#include <string.h>

#define ACCOUNT_DIGITS 12

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* arn:aws:ivs:{region}:{account}:{kind}/{id}; kind is ":stage/" or
 * ":public-key/". */
static bool valid_arn(const char *s, const char *kind)
{
    static const char head[] = "arn:aws:ivs:";
    size_t klen = strlen(kind);
    if (strlen(s) > STAGE_ARN_MAX || strncmp(s, head, sizeof head - 1) != 0)
        return false;
    const char *p = s + sizeof head - 1;
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");
    if (n == 0 || p[n] != ':')
        return false;
    p += n + 1;
    if (strspn(p, "0123456789") != ACCOUNT_DIGITS || strncmp(p + ACCOUNT_DIGITS, kind, klen) != 0)
        return false;
    p += ACCOUNT_DIGITS + klen;
    for (n = 0; is_alnum(p[n]); n++)
        ;
    return n >= 1 && n <= STAGE_ID_MAX && p[n] == '\0';
}

bool valid_stage_arn(const char *s) { return valid_arn(s, ":stage/"); }
bool valid_public_key_arn(const char *s) { return valid_arn(s, ":public-key/"); }

bool valid_session_id(const char *s)
{
    size_t n = strlen(s);
    if (n != SESSION_ID_LEN || strncmp(s, "st-", 3) != 0)
        return false;
    for (size_t i = 3; i < n; i++)
        if (!is_alnum(s[i]))
            return false;
    return true;
}
