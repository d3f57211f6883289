/* config.c — reads usher's settings from the environment and the command
 * line into a struct config (see config.h).
 *
 * Every setting is one row of the SETTINGS table below: its environment
 * name, its kind (string, int, long, double, bool or enum) with the range
 * or words it allows, its default as text, where it lives in struct config
 * and one line of help. Environment parsing, flag parsing, defaults,
 * validation and --help all walk that table, so adding a setting means
 * adding one row (and one field). The flag name is derived from the
 * environment name: API_PORT is --api-port.
 *
 * Loading is in three steps:
 *
 *   1. Collect: for every setting, the text to use — the environment value,
 *      replaced by the flag value when a flag is given. Nothing is parsed
 *      yet, so --help works even when the environment holds a bad value.
 *   2. Parse: each text (or the default, when the text is missing or empty)
 *      is parsed by kind and checked against the row's limits.
 *   3. Rules that tie settings together: REDIS_URL overrides the separate
 *      Redis settings, old-style scale thresholds are converted to ratios,
 *      the AWS provider's keys come in pairs, and webhook URLs need a secret.
 *
 * The first bad value stops loading with a message that starts with the
 * setting's environment name, so an operator can find it whichever way the
 * value was given. */
#include "config/config.h"

#include "aws/client.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ivs/ids.h"
#include "http/proxy.h"
#include "http/server.h"
#include "webhooks/webhooks.h"

enum kind { K_STRING, K_INT, K_LONG, K_DOUBLE, K_BOOL, K_ENUM };

struct setting {
    const char *group;   /* heading it is listed under in --help */
    const char *env;     /* environment name; the flag is derived from it */
    const char *def;     /* default, as text: parsed like any other value */
    enum kind kind;
    size_t offset;       /* of the field in struct config */
    long min, max;       /* K_INT, K_LONG: inclusive; max LONG_MAX = no limit */
    const char *noun;    /* K_INT, K_LONG: what a good value is, for messages */
    double dmin, dmax;   /* K_DOUBLE: dmin < value <= dmax */
    const char *words;   /* K_ENUM: allowed words, "a|b|c" */
    /* K_STRING: an extra rule for non-empty values; returns what is wrong
     * with the value, or NULL when it is fine. */
    const char *(*check)(const char *value);
    const char *help;
};

/* offsetof, plus a compile-time check that the field has the C type its
 * kind stores: comparing pointers to distinct types is a diagnostic, an
 * error under -Werror, so a row cannot point an int kind at a long field. */
#define FIELD(name, type)                                                    \
    (offsetof(struct config, name) +                                         \
     0 * sizeof((type *)0 == &((struct config *)0)->name))

#define T_STRING(f, chk) .kind = K_STRING, .offset = FIELD(f, char *), .check = chk
#define T_INT(f, lo, hi, what)                                               \
    .kind = K_INT, .offset = FIELD(f, int), .min = lo, .max = hi, .noun = what
#define T_LONG(f, lo, hi, what)                                              \
    .kind = K_LONG, .offset = FIELD(f, long), .min = lo, .max = hi, .noun = what
#define T_DOUBLE(f, lo, hi)                                                  \
    .kind = K_DOUBLE, .offset = FIELD(f, double), .dmin = lo, .dmax = hi
#define T_BOOL(f) .kind = K_BOOL, .offset = FIELD(f, bool)
#define T_ENUM(f, w) .kind = K_ENUM, .offset = FIELD(f, char *), .words = w
#define ROW(grp, name, dflt, type, text)                                     \
    { .group = grp, .env = name, .def = dflt, type, .help = text }

static const char *check_key_prefix(const char *v);
static const char *check_trust_proxy(const char *v);
static const char *check_region(const char *v);
static const char *check_account_id(const char *v);
static const char *check_master_arn(const char *v);
static const char *check_stream_name(const char *v);

#define SECONDS "a number of seconds"
#define MILLIS "a number of milliseconds"

static const struct setting SETTINGS[] = {
    ROW("HTTP", "API_HOST", "0.0.0.0", T_STRING(api_host, NULL),
        "address to listen on"),
    ROW("HTTP", "API_PORT", "3000", T_INT(api_port, 1, 65535, "a port"),
        "TCP port to listen on"),
    ROW("HTTP", "API_SECRET_KEY", "", T_STRING(api_secret_key, NULL),
        "X-API-Key every /api/* call must carry; empty = serve loopback clients only"),
    ROW("HTTP", "SKIP_AUTH", "false", T_BOOL(skip_auth),
        "turn the API-key check off"),
    ROW("HTTP", "CORS_ORIGINS", "", T_STRING(cors_origins, http_origins_check),
        "comma-separated origins browsers may call from, at most 32"),
    ROW("HTTP", "LOG_LEVEL", "info", T_ENUM(log_level, "debug|info|warn|error"),
        "lowest level logged"),
    ROW("HTTP", "RATE_LIMIT_WINDOW_MS", "60000",
        T_LONG(rate_limit_window_ms, 1, LONG_MAX, MILLIS),
        "length of the rate-limit window"),
    ROW("HTTP", "RATE_LIMIT_MAX_REQUESTS", "100",
        T_LONG(rate_limit_max_requests, 0, LONG_MAX, "a request count"),
        "requests one client IP may make per window; 0 = no limit"),
    ROW("HTTP", "TRUST_PROXY", "false", T_STRING(trust_proxy, check_trust_proxy),
        "which X-Forwarded-For entry is the client: false (none), true (leftmost), "
        "a hop count, or a comma list of proxy addresses/CIDRs, as Express's trust proxy"),
    ROW("HTTP", "MAX_BODY_BYTES", "16384",
        T_LONG(max_body_bytes, 1024, 1048576, "a size in bytes"),
        "largest request body accepted"),
    ROW("HTTP", "HTTP_READ_TIMEOUT_MS", "10000",
        T_LONG(http_read_timeout_ms, 100, 600000, MILLIS),
        "time a client has to send a request's head, and then its body; past it 408 and close"),
    ROW("HTTP", "HTTP_IDLE_TIMEOUT_MS", "30000",
        T_LONG(http_idle_timeout_ms, 100, 3600000, MILLIS),
        "a keep-alive connection without a request, or an answer the client does not read, is closed after this"),

    ROW("Redis", "REDIS_URL", "", T_STRING(redis_url, NULL),
        "redis://[[user]:password@]host[:port][/db] or "
        "unix:///path/to.sock[?db=N&password=P]; wins over REDIS_HOST, "
        "REDIS_PORT, REDIS_PASSWORD and REDIS_DB"),
    ROW("Redis", "REDIS_HOST", "127.0.0.1", T_STRING(redis_host, NULL),
        "Redis host"),
    ROW("Redis", "REDIS_PORT", "6379", T_INT(redis_port, 1, 65535, "a port"),
        "Redis port"),
    ROW("Redis", "REDIS_PASSWORD", "", T_STRING(redis_password, NULL),
        "Redis password; empty = none"),
    ROW("Redis", "REDIS_DB", "0", T_INT(redis_db, 0, 15, "a database number"),
        "Redis database"),
    ROW("Redis", "REDIS_KEY_PREFIX", "ivs:prod:",
        T_STRING(redis_key_prefix, check_key_prefix),
        "prefix of every Redis key (1-64 characters, no spaces)"),
    ROW("Redis", "REDIS_TIMEOUT_MS", "500",
        T_LONG(redis_timeout_ms, 50, 10000, MILLIS),
        "how long Redis may stay silent with commands waiting before the connection is dropped and "
        "remade, and the waiting requests get 503 (plus up to 50 ms: inside SPEC's 1 s only "
        "well below 950)"),
    ROW("Redis", "REDIS_EMBEDDED", "false", T_BOOL(redis_embedded),
        "start and use our own redis-server"),
    ROW("Redis", "DATA_DIR", "./data", T_STRING(data_dir, NULL),
        "directory for usher's own files"),

    ROW("Stages", "STAGE_PROVIDER", "local", T_ENUM(stage_provider, "local|aws"),
        "where stages live: local (simulated) or aws (Amazon IVS)"),
    ROW("Stages", "AWS_REGION", "ap-northeast-1",
        T_STRING(aws_region, check_region), "AWS region"),
    ROW("Stages", "AWS_ENDPOINT_URL", "", T_STRING(aws_endpoint_url, aws_endpoint_check),
        "IVS control-plane endpoint, http(s)://host[:port][/path]; empty = "
        "https://ivsrealtime.AWS_REGION.amazonaws.com"),
    ROW("Stages", "AWS_ACCESS_KEY_ID", "", T_STRING(aws_access_key_id, NULL),
        "AWS access key; empty = container or instance credentials"),
    ROW("Stages", "AWS_SECRET_ACCESS_KEY", "",
        T_STRING(aws_secret_access_key, NULL),
        "AWS secret key, set with AWS_ACCESS_KEY_ID"),
    ROW("Stages", "AWS_SESSION_TOKEN", "", T_STRING(aws_session_token, NULL),
        "AWS session token, for temporary credentials"),
    ROW("Stages", "AWS_ACCOUNT_ID", "123456789012",
        T_STRING(aws_account_id, check_account_id),
        "account id (12 digits) in the ARNs of local stages"),
    ROW("Stages", "MASTER_STAGE_ARN", "",
        T_STRING(master_stage_arn, check_master_arn),
        "the publisher's stage, arn:aws:ivs:REGION:ACCOUNT:stage/ID; "
        "empty = create one"),
    ROW("Stages", "STREAM_NAME", "", T_STRING(stream_name, check_stream_name),
        "the stream's name in the usher:stream tag of the stages usher makes in IVS "
        "(1-256 characters); empty = REDIS_KEY_PREFIX"),
    ROW("Stages", "AWS_TIMEOUT_MS", "10000",
        T_LONG(aws_timeout_ms, 100, 120000, MILLIS),
        "how long one IVS call attempt may take before it counts as lost"),
    ROW("Stages", "AWS_PACE_MARGIN_MS", "50",
        T_LONG(aws_pace_margin_ms, 0, 1000, MILLIS),
        "aws: added to 1000/rate ms between two IVS calls of a class (all processes), so "
        "network jitter does not put one call too many in IVS's window"),
    ROW("Stages", "REPLICATION_MAX", "5",
        T_LONG(replication_max, 0, 100, "a replication count"),
        "aws: stages the publisher's stage feeds by replication (IVS allows 5 per participant)"),
    ROW("Stages", "REPLICATION_CHAINING", "false", T_BOOL(replication_chaining),
        "aws: let replicated stages feed further stages (IVS most likely refuses a replica "
        "as a source)"),
    ROW("Stages", "ORPHAN_SWEEP_INTERVAL", "300",
        T_LONG(orphan_sweep_interval_s, 0, 86400, SECONDS),
        "aws: how often stages tagged as this stream's but unknown to Redis are looked "
        "for (ListStages); 0 = never"),
    ROW("Stages", "ORPHAN_GRACE", "120",
        T_LONG(orphan_grace_s, 1, 86400, SECONDS),
        "aws: an unrecorded stage is deleted once seen unrecorded this long, counted "
        "from the first sweep of any process (a creation in flight is not an orphan)"),
    ROW("Stages", "STAGE_NAME_PREFIX", "auto-stage",
        T_STRING(stage_name_prefix, NULL), "name prefix of the stages usher creates"),
    ROW("Stages", "MAX_VIEWERS_PER_STAGE", "50",
        T_LONG(max_viewers_per_stage, 1, 25000, "a viewer count"),
        "viewers one stage seats"),
    /* A count above 1 is how the old service took these two, so old
     * deployments keep working; 25000 is the most a stage can seat. */
    ROW("Stages", "SCALE_UP_THRESHOLD", "0.8",
        T_DOUBLE(scale_up_threshold, 0, 25000),
        "load that opens a stage, as a ratio of MAX_VIEWERS_PER_STAGE in "
        "(0,1]; a value above 1 is read as viewers per stage (the old "
        "service's form) and converted"),
    ROW("Stages", "SCALE_DOWN_THRESHOLD", "0.2",
        T_DOUBLE(scale_down_threshold, 0, 25000),
        "load below which an added stage closes; ratio or viewers like "
        "SCALE_UP_THRESHOLD, and below it"),
    ROW("Stages", "MAX_STAGES", "20", T_LONG(max_stages, 1, 1000, "a stage count"),
        "most stages open at once, the master stage included"),
    ROW("Stages", "AUTO_SCALE_ENABLED", "true", T_BOOL(auto_scale_enabled),
        "open and close stages as the audience changes"),
    ROW("Stages", "SCALER_INTERVAL_MS", "1000",
        T_LONG(scaler_interval_ms, 50, 60000, MILLIS),
        "how often the scaler looks at the stages"),
    ROW("Stages", "SCALER_LEASE_MS", "5000",
        T_LONG(scaler_lease_ms, 500, 600000, MILLIS),
        "the scaler lease's lifetime: a dead holder is replaced this fast"),
    ROW("Stages", "SCALE_DOWN_COOLDOWN", "30",
        T_LONG(scale_down_cooldown_s, 0, 86400, SECONDS),
        "no stage starts draining sooner than this after a stage was added or drained"),
    ROW("Stages", "DRAIN_TIMEOUT", "120",
        T_LONG(drain_timeout_s, 1, 86400, SECONDS),
        "a draining stage is deleted after this even if viewers remain"),
    ROW("Stages", "STAGE_CREATE_RATE", "5",
        T_LONG(stage_create_rate, 1, 100, "stages per second"),
        "most stage creations started per second (IVS allows 5)"),
    ROW("Stages", "JOIN_WAIT_MS", "3000", T_LONG(join_wait_ms, 0, 60000, MILLIS),
        "a join that finds no room while a stage is being added waits this long "
        "for it (0: answer 503 STAGE_FULL with Retry-After at once)"),
    ROW("Stages", "REPLICATION_RETRY_MS", "1000",
        T_LONG(replication_retry_ms, 10, 600000, MILLIS),
        "first wait before retrying a failed replication; doubles, up to 30 s"),
    ROW("Stages", "LOCAL_REPLICATION_FAILURES", "0",
        T_LONG(local_replication_failures, 0, 1000000, "a count"),
        "local provider only: fail this many replication starts (for tests)"),
    ROW("Stages", "LOCAL_PARTICIPANTS_API", "false", T_BOOL(local_participants_api),
        "local provider only: keep a model of who is connected, driven by "
        "POST /api/test/participants (for tests of reconciliation and kicks)"),
    ROW("Stages", "RECONCILE_INTERVAL", "60",
        T_LONG(reconcile_interval_s, 0, 86400, SECONDS),
        "how often seats are compared with who IVS says is connected (ListParticipants) "
        "and corrected; 0 = never"),
    ROW("Stages", "RECONCILE_GRACE", "120",
        T_LONG(reconcile_grace_s, 1, 86400, SECONDS),
        "a seat whose participant IVS has not seen connected this long is removed"),
    ROW("Stages", "PUBLISHER_POLL_INTERVAL", "5",
        T_LONG(publisher_poll_interval_s, 0, 3600, SECONDS),
        "how often the master stage is read for a publishing participant "
        "(publisher:status follows it, and its replications are checked "
        "against Redis); 0 = never"),
    ROW("Stages", "PUBLISHER_OFFLINE_GRACE", "30",
        T_LONG(publisher_offline_grace_s, 0, 86400, SECONDS),
        "publisher:status turns offline once IVS has shown no publisher this long"),

    ROW("Tokens", "PUBLISHER_TOKEN_DURATION", "14400",
        T_LONG(publisher_token_duration, 60, 1209600, SECONDS),
        "lifetime of a publisher token"),
    ROW("Tokens", "VIEWER_TOKEN_DURATION", "3600",
        T_LONG(viewer_token_duration, 60, 1209600, SECONDS),
        "lifetime of a viewer token"),
    ROW("Tokens", "TOKEN_PRIVATE_KEY_FILE", "", T_STRING(token_key_file, NULL),
        "ES384 private key (PEM) that signs tokens; empty = DATA_DIR/token-key.pem"),
    ROW("Tokens", "IVS_PUBLIC_KEY_ARN", "", T_STRING(public_key_arn, NULL),
        "ARN of the public key imported into IVS, the tokens' kid; "
        "empty = a local key id"),
    ROW("Tokens", "SIGNER_THREADS", "0",
        T_INT(signer_threads, 0, 64, "a thread count"),
        "threads that sign tokens; 0 = one per core"),
    ROW("Tokens", "SIGNER_PRECOMPUTE", "16384",
        T_LONG(signer_precompute, 0, 1000000, "a count"),
        "ECDSA nonces idle signer threads compute ahead, for bursts of joins "
        "(about 200 bytes each); 0 = none"),

    ROW("Live", "STATS_PUSH_MS", "1000", T_LONG(stats_push_ms, 50, 60000, MILLIS),
        "how often the live feed (/api/stats/stream, /ws) reads Redis, one read per process "
        "whatever the number of clients; stats are pushed when they change"),
    ROW("Live", "METRICS_PUBLIC", "false", T_BOOL(metrics_public),
        "serve GET /metrics without the API key (for a Prometheus on a private network)"),
    ROW("Live", "WEBHOOK_URLS", "", T_STRING(webhook_urls, webhook_urls_check),
        "comma list of http(s) URLs that get a signed POST for each stage and audience event; "
        "empty = none"),
    ROW("Live", "WEBHOOK_SECRET", "", T_STRING(webhook_secret, NULL),
        "key of the X-Usher-Signature HMAC-SHA256 over each webhook body; needed with WEBHOOK_URLS"),
    ROW("Live", "WEBHOOK_VIEWER_THRESHOLDS", "",
        T_STRING(webhook_viewer_thresholds, webhook_thresholds_check),
        "comma list of viewer counts: crossing one (up or down) is a webhook event"),
    ROW("Live", "WEBHOOK_RETRY_MS", "1000", T_LONG(webhook_retry_ms, 10, 600000, MILLIS),
        "first wait before a failed webhook is sent again; doubles, up to 60 s"),
    ROW("Live", "WEBHOOK_MAX_ATTEMPTS", "8", T_LONG(webhook_max_attempts, 1, 20, "a count"),
        "tries per event and URL before it is given up"),

    ROW("Heartbeats", "HEARTBEAT_TIMEOUT", "60",
        T_LONG(heartbeat_timeout, 1, 86400, SECONDS),
        "a viewer silent this long loses the seat"),
    ROW("Heartbeats", "HEARTBEAT_CLEANUP_INTERVAL", "30",
        T_LONG(heartbeat_cleanup_interval, 1, 3600, SECONDS),
        "how often silent viewers are looked for"),
};

#define NSETTINGS (sizeof SETTINGS / sizeof SETTINGS[0])

#define DIGITS "0123456789"
#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define REGION_CHARS LOWER DIGITS "-"

/* ------------------------------------------------------------------------
 * Small helpers
 * --------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static void *field(struct config *cfg, const struct setting *s)
{
    return (char *)cfg + s->offset;
}

/* The one rule that names flags: API_PORT is --api-port. */
static void flag_name(const struct setting *s, char *out, size_t outlen)
{
    snprintf(out, outlen, "--%s", s->env);
    for (char *p = out + 2; *p; p++)
        *p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
}

/* Whether name[0..len) is the setting's flag without its "--". */
static bool flag_matches(const struct setting *s, const char *name, size_t len)
{
    char flag[64];
    flag_name(s, flag, sizeof flag);
    return strlen(flag + 2) == len && strncmp(flag + 2, name, len) == 0;
}

static void range_text(const struct setting *s, char *out, size_t outlen)
{
    if (s->max == LONG_MAX)
        snprintf(out, outlen, ">= %ld", s->min);
    else
        snprintf(out, outlen, "%ld-%ld", s->min, s->max);
}

/* All of s[0..n) are digits and their value is in lo..hi. For the numbers
 * inside REDIS_URL, where strtol's leniency (signs, spaces) is unwanted. */
static int digits_in_range(const char *s, size_t n, long lo, long hi, long *out)
{
    if (n == 0 || n > 9 || strspn(s, DIGITS) < n)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------------
 * Parsing one value by kind
 * --------------------------------------------------------------------- */

static int parse_bool(const char *s, bool *out)
{
    static const char *const words[][2] = {{"false", "true"}, {"0", "1"}, {"no", "yes"}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        for (int truth = 0; truth <= 1; truth++) {
            if (strcasecmp(s, words[i][truth]) == 0) {
                *out = truth;
                return 0;
            }
        }
    }
    return -1;
}

/* strtol, but the whole text must be the number: no leading spaces, no
 * trailing junk, no overflow. */
static int parse_long(const char *s, long *out)
{
    if (!isdigit((unsigned char)*s) && *s != '-' && *s != '+')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!isdigit((unsigned char)*s) && *s != '-' && *s != '+' && *s != '.')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Every kind's parser: stores the value parsed from text in its field, or
 * returns -1 with a message naming the setting. */
typedef int parser(const struct setting *s, const char *text, struct config *cfg,
                   char *err, size_t errlen);

static int parse_number(const struct setting *s, const char *text,
                        struct config *cfg, char *err, size_t errlen)
{
    long v;
    if (parse_long(text, &v) < 0 || v < s->min || v > s->max) {
        char range[48];
        range_text(s, range, sizeof range);
        return fail(err, errlen, "%s: '%s' is not %s (%s)", s->env, text,
                    s->noun, range);
    }
    if (s->kind == K_INT)
        *(int *)field(cfg, s) = (int)v;
    else
        *(long *)field(cfg, s) = v;
    return 0;
}

static int parse_fraction(const struct setting *s, const char *text,
                          struct config *cfg, char *err, size_t errlen)
{
    double v;
    /* Written as a negated test so that NaN fails it too. */
    if (parse_double(text, &v) < 0 || !(v > s->dmin && v <= s->dmax))
        return fail(err, errlen, "%s: '%s' is not a number above %g and up to %g",
                    s->env, text, s->dmin, s->dmax);
    *(double *)field(cfg, s) = v;
    return 0;
}

static int parse_flag(const struct setting *s, const char *text,
                      struct config *cfg, char *err, size_t errlen)
{
    if (parse_bool(text, field(cfg, s)) < 0)
        return fail(err, errlen, "%s: '%s' is not a boolean (true/false/1/0/yes/no)",
                    s->env, text);
    return 0;
}

static int parse_string(const struct setting *s, const char *text,
                        struct config *cfg, char *err, size_t errlen)
{
    /* Empty means "not set"; every default passes its own check. */
    const char *problem = *text && s->check ? s->check(text) : NULL;
    if (problem)
        return fail(err, errlen, "%s: '%s' %s", s->env, text, problem);
    char *copy = strdup(text);
    if (!copy)
        return fail(err, errlen, "%s: out of memory", s->env);
    *(char **)field(cfg, s) = copy;
    return 0;
}

/* Matches case-insensitively but stores the table's spelling, so the rest
 * of the server compares against one form. */
static int parse_enum(const struct setting *s, const char *text,
                      struct config *cfg, char *err, size_t errlen)
{
    size_t tlen = strlen(text);
    for (const char *w = s->words; *w;) {
        size_t n = strcspn(w, "|");
        if (n == tlen && strncasecmp(w, text, n) == 0) {
            char *word = strndup(w, n);
            if (!word)
                return fail(err, errlen, "%s: out of memory", s->env);
            *(char **)field(cfg, s) = word;
            return 0;
        }
        w += n + (w[n] == '|');
    }
    return fail(err, errlen, "%s: '%s' is not one of %s", s->env, text, s->words);
}

static int parse_setting(const struct setting *s, const char *text,
                         struct config *cfg, char *err, size_t errlen)
{
    static parser *const by_kind[] = {
        [K_STRING] = parse_string, [K_INT] = parse_number, [K_LONG] = parse_number,
        [K_DOUBLE] = parse_fraction, [K_BOOL] = parse_flag, [K_ENUM] = parse_enum,
    };
    return by_kind[s->kind](s, text, cfg, err, errlen);
}

/* ------------------------------------------------------------------------
 * Rules for single string settings
 * --------------------------------------------------------------------- */

/* Keys are sent to Redis and shown in redis-cli; a space or control byte
 * in them is always a typo or a quoting accident. */
static const char *check_key_prefix(const char *v)
{
    static const char bad[] =
        "is not a key prefix (1-64 characters, no spaces or control characters)";
    size_t n = strlen(v);
    if (n < 1 || n > 64)
        return bad;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= ' ' || v[i] == 0x7f)
            return bad;
    return NULL;
}

static const char *check_trust_proxy(const char *v)
{
    struct trust_proxy tp;
    return trust_proxy_parse(v, &tp);
}

static const char *check_region(const char *v)
{
    return strspn(v, REGION_CHARS) == strlen(v)
               ? NULL
               : "is not an AWS region (lower-case letters, digits and '-')";
}

static const char *check_account_id(const char *v)
{
    return strlen(v) == 12 && strspn(v, DIGITS) == 12
               ? NULL
               : "is not an AWS account id (12 digits)";
}

static const char *check_master_arn(const char *v)
{
    return valid_stage_arn(v) ? NULL : "is not an IVS stage ARN (arn:aws:ivs:REGION:ACCOUNT:stage/ID)";
}

/* An IVS tag value: at most 256 characters (TagValue in the API model). */
static const char *check_stream_name(const char *v)
{
    return strlen(v) <= 256 ? NULL : "is longer than an IVS tag value (256)";
}

/* ------------------------------------------------------------------------
 * REDIS_URL
 *
 * The URL describes the whole connection: what it leaves out takes the
 * URL's own default (port 6379, db 0, no user or password), not the value
 * of REDIS_PORT and friends, so one setting is the whole truth.
 * --------------------------------------------------------------------- */

struct redis_target {
    char *host, *socket, *user, *password; /* NULL = not in the URL */
    int port;                              /* 0 = not in the URL (unix) */
    int db;
};

static void target_free(struct redis_target *t)
{
    free(t->host);
    free(t->socket);
    free(t->user);
    free(t->password);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A malloc'd copy of s[0..n) with %XX escapes decoded, as a password with
 * '@' or ':' has to be written in a URL. On failure sets *problem. */
static char *decoded_copy(const char *s, size_t n, const char **problem)
{
    char *out = malloc(n + 1), *w = out;
    if (!out) {
        *problem = "out of memory";
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *w++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
        int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
        if (lo < 0 || hi * 16 + lo == 0) { /* %00 would cut the string short */
            free(out);
            *problem = "has a bad %-escape";
            return NULL;
        }
        *w++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *w = '\0';
    return out;
}

/* "host", "host:port", "[v6addr]" or "[v6addr]:port". */
static const char *parse_host_port(const char *s, size_t n, struct redis_target *t)
{
    const char *host = s, *port = NULL, *end = s + n;
    size_t hlen;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return "has an unclosed [ in the host";
        host = s + 1;
        hlen = (size_t)(close - host);
        if (close + 1 < end && close[1] != ':')
            return "has something other than :port after the host";
        if (close + 1 < end)
            port = close + 2;
    } else {
        const char *colon = memchr(s, ':', n);
        hlen = colon ? (size_t)(colon - s) : n;
        if (colon)
            port = colon + 1;
    }
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)host[i] <= ' ' || strchr("?#@[]", host[i]))
            return "has a bad character in the host";
    if (hlen == 0)
        return "has no host";
    long v = 6379;
    if (port && digits_in_range(port, (size_t)(end - port), 1, 65535, &v) < 0)
        return "has a bad port (1-65535)";
    t->port = (int)v;
    return (t->host = strndup(host, hlen)) ? NULL : "out of memory";
}

/* After "redis://": [[user]:password@]host[:port][/db]. */
static const char *parse_tcp_url(const char *url, struct redis_target *t)
{
    const char *problem = NULL;
    size_t alen = strcspn(url, "/");
    const char *hostport = url;
    /* The last '@' ends the credentials: a host never holds one. */
    const char *at = memrchr(url, '@', alen);
    if (at) {
        const char *colon = memchr(url, ':', (size_t)(at - url));
        if (!colon)
            return "has a user without a password (user:password@)";
        if (!(t->user = decoded_copy(url, (size_t)(colon - url), &problem)) ||
            !(t->password = decoded_copy(colon + 1, (size_t)(at - colon - 1), &problem)))
            return problem;
        hostport = at + 1;
    }
    if ((problem = parse_host_port(hostport, (size_t)(url + alen - hostport), t)))
        return problem;
    const char *path = url + alen;
    long db = 0;
    if (*path != '\0' && strcmp(path, "/") != 0 &&
        digits_in_range(path + 1, strlen(path + 1), 0, 15, &db) < 0)
        return "has something other than /DB (0-15) after the host";
    t->db = (int)db;
    return NULL;
}

/* After "unix://": /path/to.sock[?db=N][&password=P], the query as
 * redis-py and others write it. */
static const char *parse_unix_url(const char *url, struct redis_target *t)
{
    size_t plen = strcspn(url, "?");
    if (url[0] != '/' || plen < 2)
        return "needs an absolute socket path (unix:///path/to.sock)";
    if (!(t->socket = strndup(url, plen)))
        return "out of memory";
    const char *q = url + plen + (url[plen] == '?');
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *problem = NULL;
        long db;
        if (n > 3 && strncmp(q, "db=", 3) == 0) {
            if (digits_in_range(q + 3, n - 3, 0, 15, &db) < 0)
                return "has a bad db (0-15)";
            t->db = (int)db;
        } else if (n > 9 && strncmp(q, "password=", 9) == 0) {
            free(t->password);
            if (!(t->password = decoded_copy(q + 9, n - 9, &problem)))
                return problem;
        } else {
            return "takes only db=N and password=P after the socket path";
        }
        q += n + (q[n] == '&');
    }
    return NULL;
}

/* Moves *from into *to when the URL set it. */
static void take(char **to, char **from)
{
    if (!*from)
        return;
    free(*to);
    *to = *from;
    *from = NULL;
}

/* The URL gives no user or password: they are empty, not REDIS_PASSWORD. */
static int fill_empty(char **s)
{
    return *s || (*s = strdup("")) ? 0 : -1;
}

static void use_target(struct config *cfg, struct redis_target *t)
{
    take(&cfg->redis_host, &t->host);
    take(&cfg->redis_socket, &t->socket);
    take(&cfg->redis_user, &t->user);
    take(&cfg->redis_password, &t->password);
    if (t->port)
        cfg->redis_port = t->port;
    cfg->redis_db = t->db;
}

static int apply_redis_url(struct config *cfg, char *err, size_t errlen)
{
    if (!(cfg->redis_user = strdup("")) || !(cfg->redis_socket = strdup("")))
        return fail(err, errlen, "REDIS_URL: out of memory");
    const char *url = cfg->redis_url;
    if (*url == '\0')
        return 0;

    struct redis_target t = {0};
    const char *problem;
    if (strncasecmp(url, "redis://", 8) == 0)
        problem = parse_tcp_url(url + 8, &t);
    else if (strncasecmp(url, "unix://", 7) == 0)
        problem = parse_unix_url(url + 7, &t);
    else
        problem = "does not start with redis:// or unix://";
    if (!problem && (fill_empty(&t.user) < 0 || fill_empty(&t.password) < 0))
        problem = "out of memory";
    if (!problem)
        use_target(cfg, &t);
    target_free(&t);
    /* The value is not repeated: it may hold a password. */
    if (problem)
        return fail(err, errlen,
                    "REDIS_URL: %s; expected redis://[[user]:password@]host[:port][/db] "
                    "or unix:///path/to.sock[?db=N&password=P]",
                    problem);
    return 0;
}

/* ------------------------------------------------------------------------
 * Rules across settings
 * --------------------------------------------------------------------- */

/* The old service took the thresholds as viewers per stage; usher takes a
 * ratio of MAX_VIEWERS_PER_STAGE. A value above 1 can only be the old
 * form, so it is converted rather than refused. */
static double as_ratio(double v, long max_viewers)
{
    if (v <= 1)
        return v;
    v /= (double)max_viewers;
    return v > 1 ? 1 : v;
}

static int convert_thresholds(struct config *cfg, char *err, size_t errlen)
{
    cfg->scale_up_threshold = as_ratio(cfg->scale_up_threshold, cfg->max_viewers_per_stage);
    cfg->scale_down_threshold =
        as_ratio(cfg->scale_down_threshold, cfg->max_viewers_per_stage);
    if (cfg->scale_down_threshold >= cfg->scale_up_threshold)
        return fail(err, errlen,
                    "SCALE_DOWN_THRESHOLD: %g (as a ratio) must be below "
                    "SCALE_UP_THRESHOLD (%g)",
                    cfg->scale_down_threshold, cfg->scale_up_threshold);
    return 0;
}

/* Neither key means the rest of the credential chain (container endpoint,
 * instance metadata: aws/credentials.h); one without the other is a
 * mistake. */
/* Unsigned webhooks could be sent by anyone to the receiver. */
static int check_webhooks(const struct config *cfg, char *err, size_t errlen)
{
    if (*cfg->webhook_urls && !*cfg->webhook_secret)
        return fail(err, errlen, "WEBHOOK_URLS is set without WEBHOOK_SECRET");
    return 0;
}

static int check_aws(const struct config *cfg, char *err, size_t errlen)
{
    if (strcmp(cfg->stage_provider, "aws") != 0)
        return 0;
    if (cfg->local_participants_api)
        return fail(err, errlen, "LOCAL_PARTICIPANTS_API is for the local provider only, "
                                 "not with STAGE_PROVIDER=aws (IVS says who is connected)");
    bool no_id = !*cfg->aws_access_key_id, no_secret = !*cfg->aws_secret_access_key;
    if (no_id != no_secret)
        return fail(err, errlen, "STAGE_PROVIDER=aws: %s is set without %s",
                    no_id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID",
                    no_id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY");
    return 0;
}

/* ------------------------------------------------------------------------
 * Collecting the texts: environment, then flags
 * --------------------------------------------------------------------- */

/* The first entry for a name wins, as with getenv(). */
static void read_env(char **envp, const char **raw)
{
    for (; envp && *envp; envp++) {
        const char *eq = strchr(*envp, '=');
        if (!eq)
            continue;
        size_t len = (size_t)(eq - *envp);
        for (size_t i = 0; i < NSETTINGS; i++) {
            if (!raw[i] && strlen(SETTINGS[i].env) == len &&
                strncmp(SETTINGS[i].env, *envp, len) == 0)
                raw[i] = eq + 1;
        }
    }
}

static const char *metavar(const struct setting *s)
{
    static const char *const names[] = {
        [K_STRING] = "TEXT", [K_INT] = "N", [K_LONG] = "N",
        [K_DOUBLE] = "X", [K_BOOL] = "[BOOL]", [K_ENUM] = "WORD",
    };
    return names[s->kind];
}

static void print_setting(FILE *out, const struct setting *s, int left_width,
                          int env_width)
{
    char flag[64], left[80], allowed[64] = "";
    flag_name(s, flag, sizeof flag);
    snprintf(left, sizeof left, "%s %s", flag, metavar(s));
    if (s->kind == K_INT || s->kind == K_LONG) {
        char range[48];
        range_text(s, range, sizeof range);
        snprintf(allowed, sizeof allowed, " [%s]", range);
    } else if (s->kind == K_ENUM) {
        snprintf(allowed, sizeof allowed, " [%s]", s->words);
    }
    fprintf(out, "  %-*s  %-*s  %s%s (default: %s)\n", left_width, left, env_width,
            s->env, s->help, allowed, *s->def ? s->def : "none");
}

static void print_help(FILE *out)
{
    int left_width = 0, env_width = 0;
    for (size_t i = 0; i < NSETTINGS; i++) {
        /* "--" + name + " " + metavar */
        int left = (int)(strlen(SETTINGS[i].env) + 3 + strlen(metavar(&SETTINGS[i])));
        int env = (int)strlen(SETTINGS[i].env);
        left_width = left > left_width ? left : left_width;
        env_width = env > env_width ? env : env_width;
    }
    fprintf(out,
            "usage: usher [--flag VALUE | --flag=VALUE]...\n"
            "Every setting is read from its environment variable; its flag, when\n"
            "given, wins. An empty value means the default. A bool flag alone means\n"
            "true; bools take true/false/1/0/yes/no.\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (i == 0 || strcmp(SETTINGS[i].group, SETTINGS[i - 1].group) != 0)
            fprintf(out, "\n%s:\n", SETTINGS[i].group);
        print_setting(out, &SETTINGS[i], left_width, env_width);
    }
}

static const struct setting *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (flag_matches(&SETTINGS[i], name, len))
            return &SETTINGS[i];
    return NULL;
}

/* Returns 0, -1 on a bad argument, or 1 after printing --help. A value
 * that starts with "--" must use the --flag=VALUE form, so a forgotten
 * value ("--api-port --skip-auth") is reported as such. */
static int read_flags(int argc, char **argv, const char **raw, char *err,
                      size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help(stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0)
            return fail(err, errlen, "unexpected argument '%s' (see --help)", arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct setting *s = find_flag(name, len);
        if (!s)
            return fail(err, errlen, "unknown flag --%.*s (see --help)", (int)len, name);
        const char **slot = &raw[s - SETTINGS];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        bool ignored;
        if (eq)
            *slot = eq + 1;
        else if (s->kind == K_BOOL) /* bare means true; a bool word after it is its value */
            *slot = next && parse_bool(next, &ignored) == 0 ? argv[++i] : "true";
        else if (next && strncmp(next, "--", 2) != 0)
            *slot = argv[++i];
        else
            return fail(err, errlen, "%s: flag %s needs a value", s->env, arg);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Public API
 * --------------------------------------------------------------------- */

int config_load(struct config *cfg, int argc, char **argv, char **envp,
                char *err, size_t errlen)
{
    const char *raw[NSETTINGS] = {0};
    memset(cfg, 0, sizeof *cfg);
    read_env(envp, raw);
    int rc = read_flags(argc, argv, raw, err, errlen);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *text = raw[i] && *raw[i] ? raw[i] : SETTINGS[i].def;
        if (parse_setting(&SETTINGS[i], text, cfg, err, errlen) < 0)
            return -1;
    }
    if (apply_redis_url(cfg, err, errlen) < 0 || convert_thresholds(cfg, err, errlen) < 0)
        return -1;
    if (check_webhooks(cfg, err, errlen) < 0)
        return -1;
    return check_aws(cfg, err, errlen);
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (SETTINGS[i].kind == K_STRING || SETTINGS[i].kind == K_ENUM) {
            char **slot = field(cfg, &SETTINGS[i]);
            free(*slot);
            *slot = NULL;
        }
    }
    free(cfg->redis_user);
    free(cfg->redis_socket);
    cfg->redis_user = cfg->redis_socket = NULL;
}
