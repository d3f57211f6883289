/* fields.c — see fields.h. jansson has already refused invalid UTF-8 in
 * the body, but user ids can also come from query strings, so the UTF-8
 * check is done here for both. */
#include "http/fields.h"

#include <string.h>

/* Length of the UTF-8 sequence at s (at most n bytes), or 0 if invalid or
 * a control character. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x20 || c == 0x7f)
        return 0;
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if (c == 0xc2 && s[1] < 0xa0)                       /* C1 controls */
        return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] >= 0x90) || (c == 0xed && s[1] >= 0xa0))
        return 0;                                       /* overlong, > U+10FFFF, surrogates */
    return len;
}

bool valid_user_id(const char *s, size_t len)
{
    return len > 0 && valid_text(s, len, USER_ID_MAX);
}

bool valid_text(const char *s, size_t len, size_t max)
{
    if (len > max)
        return false;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t step = utf8_char(p + i, len - i);
        if (step == 0)
            return false;
        i += step;
    }
    return true;
}

static bool all_of(const char *s, size_t min, size_t max, const char *extra)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || (extra && strchr(extra, c));
        if (!ok || n >= max)
            return false;
    }
    return n >= min;
}

bool valid_participant_id(const char *s)
{
    return all_of(s, 1, PARTICIPANT_ID_MAX, "-");
}

bool valid_stage_tags(const json_t *tags)
{
    const char *key;
    json_t *value;
    if (!json_is_object(tags) || json_object_size(tags) > STAGE_TAGS_MAX)
        return false;
    json_object_foreach((json_t *)tags, key, value) {
        size_t klen = strlen(key);
        if (klen < 1 || klen > STAGE_TAG_KEY_MAX || !json_is_string(value) ||
            json_string_length(value) > STAGE_TAG_VALUE_MAX ||
            strlen(json_string_value(value)) != json_string_length(value))
            return false;
    }
    return true;
}

bool check_user_id(const char *s, size_t len) { return valid_user_id(s, len); }

bool check_stage_arn(const char *s, size_t len)
{
    return strlen(s) == len && valid_stage_arn(s);
}

bool check_participant_id(const char *s, size_t len)
{
    return strlen(s) == len && valid_participant_id(s);
}

const char *field_string(json_t *body, const char *name, bool required,
                         field_check_fn check, json_t *bad)
{
    json_t *v = body ? json_object_get(body, name) : NULL;
    if (!v || json_is_null(v)) {
        if (required)
            json_array_append_new(bad, json_string(name));
        return NULL;
    }
    if (!json_is_string(v) || !check(json_string_value(v), json_string_length(v))) {
        json_array_append_new(bad, json_string(name));
        return NULL;
    }
    return json_string_value(v);
}
