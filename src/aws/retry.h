/* retry.h — what an IVS answer means and whether to try again: the error
 * classes usher reports, the classification of a status and
 * x-amzn-ErrorType, and the jittered exponential backoff between attempts.
 * Pure functions, so the table of cases is a unit test. */
#ifndef USHER_AWS_RETRY_H
#define USHER_AWS_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How a call ended. The IVS error each comes from is in aws_classify. */
enum aws_error {
    AWS_OK,
    AWS_ERR_VALIDATION,         /* 400 ValidationException, other 4xx */
    AWS_ERR_ACCESS_DENIED,      /* 401/403 AccessDeniedException, PendingVerification */
    AWS_ERR_NOT_FOUND,          /* 404 ResourceNotFoundException */
    AWS_ERR_CONFLICT,           /* 409 ConflictException */
    AWS_ERR_QUOTA_EXCEEDED,     /* 402 ServiceQuotaExceededException */
    AWS_ERR_THROTTLED,          /* 429 / ThrottlingException, retries ran out */
    AWS_ERR_SERVER,             /* 5xx, InternalServerException, or a bad 200 body */
    AWS_ERR_TRANSPORT,          /* no HTTP answer: connect, TLS, reset */
    AWS_ERR_TIMEOUT,            /* no answer in time: the call may have happened */
    AWS_ERR_CREDENTIALS,        /* no credentials to sign with */
    AWS_ERR__COUNT
};

/* "ok", "validation", "access_denied", ... (for logs, metrics, /health). */
const char *aws_error_name(enum aws_error e);

struct aws_verdict {
    enum aws_error error;
    bool retry;                 /* worth another attempt */
};

/* Classifies one attempt. error_type is the x-amzn-ErrorType header (only
 * the part before ':' counts, and after '#' if there is one) or NULL;
 * transport_error means no HTTP answer came (timed_out: because of the
 * deadline). The code wins over the status when both are known, as the AWS
 * SDKs do: ThrottlingException / TooManyRequestsException and 429 are
 * throttling; 5xx and transport errors are retried; 4xx never are (facts
 * from ../shared/aws/README.md, "Protocol"). */
struct aws_verdict aws_classify(long status, const char *error_type,
                                bool transport_error, bool timed_out);

/* Copies the code of an x-amzn-ErrorType value into out (at most outlen-1
 * bytes): "ConflictException:http://…" → "ConflictException". */
void aws_error_code(const char *error_type, char *out, size_t outlen);

/* Retry budget. Modelled on the AWS SDKs' "standard" retry mode (AWS SDKs
 * and Tools Reference Guide, "Retry behavior": 3 attempts, exponential
 * backoff with jitter, 20 s cap), with more attempts because usher paces
 * its calls and a throttle means another process took the slot, and a
 * total budget so a caller hears back within half a minute. */
#define AWS_RETRY_MAX_ATTEMPTS 5
#define AWS_RETRY_BASE_MS 100
#define AWS_RETRY_CAP_MS 5000
#define AWS_RETRY_BUDGET_MS 30000

/* Delay before attempt number attempt+1 after attempt attempts failed
 * (attempt >= 1), in ms: d = min(CAP, BASE * 2^attempt), then uniformly in
 * [d/2, d] by random ("equal jitter", AWS Architecture Blog, "Exponential
 * Backoff And Jitter"). */
int64_t aws_backoff_ms(int attempt, uint32_t random);

/* Whether another attempt fits: fewer than MAX_ATTEMPTS made and the
 * delay still ends inside the budget counted from the call's start. */
bool aws_retry_allowed(int attempts, int64_t elapsed_ms, int64_t delay_ms);

#endif
