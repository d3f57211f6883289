/* retry.c — error classes, classification and backoff (see retry.h). */
#include "aws/retry.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char *const names[AWS_ERR__COUNT] = {
    [AWS_OK] = "ok",
    [AWS_ERR_VALIDATION] = "validation",
    [AWS_ERR_ACCESS_DENIED] = "access_denied",
    [AWS_ERR_NOT_FOUND] = "not_found",
    [AWS_ERR_CONFLICT] = "conflict",
    [AWS_ERR_QUOTA_EXCEEDED] = "quota_exceeded",
    [AWS_ERR_THROTTLED] = "throttled",
    [AWS_ERR_SERVER] = "server",
    [AWS_ERR_TRANSPORT] = "transport",
    [AWS_ERR_TIMEOUT] = "timeout",
    [AWS_ERR_CREDENTIALS] = "credentials",
};

const char *aws_error_name(enum aws_error e)
{
    return e >= 0 && e < AWS_ERR__COUNT ? names[e] : "unknown";
}

/* The IVS Real-Time error codes (ivs-realtime-service-2.json) and the
 * throttling codes the SDKs know. */
static const struct {
    const char *code;
    enum aws_error error;
} codes[] = {
    {"ThrottlingException", AWS_ERR_THROTTLED},
    {"TooManyRequestsException", AWS_ERR_THROTTLED},
    {"ValidationException", AWS_ERR_VALIDATION},
    {"AccessDeniedException", AWS_ERR_ACCESS_DENIED},
    {"PendingVerification", AWS_ERR_ACCESS_DENIED},
    {"ResourceNotFoundException", AWS_ERR_NOT_FOUND},
    {"ConflictException", AWS_ERR_CONFLICT},
    {"ServiceQuotaExceededException", AWS_ERR_QUOTA_EXCEEDED},
    {"InternalServerException", AWS_ERR_SERVER},
};

void aws_error_code(const char *error_type, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!error_type || outlen == 0)
        return;
    size_t n = strcspn(error_type, ":");
    const char *hash = memchr(error_type, '#', n);
    const char *start = hash ? hash + 1 : error_type;
    n -= (size_t)(start - error_type);
    snprintf(out, outlen, "%.*s", (int)n, start);
}

static enum aws_error by_status(long status)
{
    if (status == 429)
        return AWS_ERR_THROTTLED;
    if (status >= 500)
        return AWS_ERR_SERVER;
    switch (status) {
    case 401:
    case 403: return AWS_ERR_ACCESS_DENIED;
    case 402: return AWS_ERR_QUOTA_EXCEEDED;
    case 404: return AWS_ERR_NOT_FOUND;
    case 409: return AWS_ERR_CONFLICT;
    default:  return AWS_ERR_VALIDATION;
    }
}

struct aws_verdict aws_classify(long status, const char *error_type,
                                bool transport_error, bool timed_out)
{
    if (transport_error)
        return (struct aws_verdict){timed_out ? AWS_ERR_TIMEOUT : AWS_ERR_TRANSPORT, true};
    if (status >= 200 && status < 300)
        return (struct aws_verdict){AWS_OK, false};
    char code[128];
    aws_error_code(error_type, code, sizeof code);
    enum aws_error e = by_status(status);
    for (size_t i = 0; code[0] && i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i].code) == 0)
            e = codes[i].error;
    return (struct aws_verdict){e, e == AWS_ERR_THROTTLED || e == AWS_ERR_SERVER};
}

int64_t aws_backoff_ms(int attempt, uint32_t random)
{
    int64_t d = AWS_RETRY_BASE_MS;
    for (int i = 0; i < attempt && d < AWS_RETRY_CAP_MS; i++)
        d *= 2;
    if (d > AWS_RETRY_CAP_MS)
        d = AWS_RETRY_CAP_MS;
    return d / 2 + (int64_t)(random % (uint32_t)(d - d / 2 + 1));
}

bool aws_retry_allowed(int attempts, int64_t elapsed_ms, int64_t delay_ms)
{
    return attempts < AWS_RETRY_MAX_ATTEMPTS && elapsed_ms + delay_ms < AWS_RETRY_BUDGET_MS;
}
