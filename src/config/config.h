/* config.h — usher's settings.
 *
 * Every setting has an environment name (the old Node.js service's names are
 * kept, SPEC §6) and a command-line flag; a flag wins over the environment.
 * config_load() fills a struct config from both, validates every value and,
 * on a bad one, returns an error message naming the setting, so main() can
 * refuse to start. The struct is read-only after start and passed by
 * pointer to whoever needs it: there is no global configuration. */
#ifndef USHER_CONFIG_H
#define USHER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct config {
    /* HTTP */
    char *api_host;                  /* API_HOST, default 0.0.0.0 */
    int api_port;                    /* API_PORT, default 3000 */
    char *api_secret_key;            /* API_SECRET_KEY, default empty = loopback only */
    bool skip_auth;                  /* SKIP_AUTH */
    char *cors_origins;              /* CORS_ORIGINS, comma list, default empty */
    char *log_level;                 /* LOG_LEVEL: debug|info|warn|error */
    long rate_limit_window_ms;       /* RATE_LIMIT_WINDOW_MS, 60000 */
    long rate_limit_max_requests;    /* RATE_LIMIT_MAX_REQUESTS, 100; 0 = off */
    char *trust_proxy;               /* TRUST_PROXY: false|true|hops|CIDR list (http/proxy.h) */
    long max_body_bytes;             /* MAX_BODY_BYTES, 16384 */
    long http_read_timeout_ms;       /* HTTP_READ_TIMEOUT_MS, 10000: a request's head, its body */
    long http_idle_timeout_ms;       /* HTTP_IDLE_TIMEOUT_MS, 30000: idle keep-alive, stalled write */

    /* Redis */
    char *redis_url;                 /* REDIS_URL: redis://[user:pw@]host[:port][/db] or
                                      * unix:///path.sock[?db=N&password=P]; wins over
                                      * REDIS_HOST, PORT, PASSWORD and DB */
    char *redis_host;                /* REDIS_HOST, 127.0.0.1 */
    int redis_port;                  /* REDIS_PORT, 6379 */
    char *redis_password;            /* REDIS_PASSWORD */
    int redis_db;                    /* REDIS_DB, 0 */
    char *redis_key_prefix;          /* REDIS_KEY_PREFIX, "ivs:prod:" */
    long redis_timeout_ms;           /* REDIS_TIMEOUT_MS, 500: Redis's longest silence */
    bool redis_embedded;             /* REDIS_EMBEDDED: start our own redis-server */
    char *data_dir;                  /* DATA_DIR, "./data" */
    /* Derived from REDIS_URL, not settings of their own: */
    char *redis_user;                /* ACL user from redis://user:pw@..., empty = default user */
    char *redis_socket;              /* unix socket path; empty = TCP to redis_host:redis_port */

    /* IVS / stages */
    char *stage_provider;            /* STAGE_PROVIDER: local|aws */
    char *aws_region;                /* AWS_REGION, ap-northeast-1 */
    char *aws_endpoint_url;          /* AWS_ENDPOINT_URL, empty = IVS's regional endpoint */
    char *aws_access_key_id;         /* AWS_ACCESS_KEY_ID */
    char *aws_secret_access_key;     /* AWS_SECRET_ACCESS_KEY */
    char *aws_session_token;         /* AWS_SESSION_TOKEN */
    char *aws_account_id;            /* AWS_ACCOUNT_ID, 123456789012 (local ARNs) */
    char *master_stage_arn;          /* MASTER_STAGE_ARN, empty = create one */
    char *stream_name;               /* STREAM_NAME, empty = REDIS_KEY_PREFIX (usher:stream tag) */
    long aws_timeout_ms;             /* AWS_TIMEOUT_MS, 10000: one IVS attempt */
    long aws_pace_margin_ms;         /* AWS_PACE_MARGIN_MS, 50: added to 1000/rate between calls */
    long replication_max;            /* REPLICATION_MAX, 5: stages one source feeds */
    bool replication_chaining;       /* REPLICATION_CHAINING, false: replicas as sources */
    long orphan_sweep_interval_s;    /* ORPHAN_SWEEP_INTERVAL, 300 s; 0 = off */
    long orphan_grace_s;             /* ORPHAN_GRACE, 120 s */
    char *stage_name_prefix;         /* STAGE_NAME_PREFIX, "auto-stage" */
    long max_viewers_per_stage;      /* MAX_VIEWERS_PER_STAGE, 50 */
    double scale_up_threshold;       /* SCALE_UP_THRESHOLD, 0.8 */
    double scale_down_threshold;     /* SCALE_DOWN_THRESHOLD, 0.2 */
    long max_stages;                 /* MAX_STAGES, 20 */
    bool auto_scale_enabled;         /* AUTO_SCALE_ENABLED, true */
    long scaler_interval_ms;         /* SCALER_INTERVAL_MS, 1000 */
    long scaler_lease_ms;            /* SCALER_LEASE_MS, 5000 */
    long scale_down_cooldown_s;      /* SCALE_DOWN_COOLDOWN, 30 */
    long drain_timeout_s;            /* DRAIN_TIMEOUT, 120 */
    long stage_create_rate;          /* STAGE_CREATE_RATE, 5 per second */
    long join_wait_ms;               /* JOIN_WAIT_MS, 3000: a join waits this for a
                                      * stage being opened */
    long replication_retry_ms;       /* REPLICATION_RETRY_MS, 1000 (doubling) */
    long local_replication_failures; /* LOCAL_REPLICATION_FAILURES, 0 (tests) */
    bool local_participants_api;     /* LOCAL_PARTICIPANTS_API, false (tests) */
    long reconcile_interval_s;       /* RECONCILE_INTERVAL, 60 s; 0 = off */
    long reconcile_grace_s;          /* RECONCILE_GRACE, 120 s */
    long publisher_poll_interval_s;  /* PUBLISHER_POLL_INTERVAL, 5 s; 0 = off */
    long publisher_offline_grace_s;  /* PUBLISHER_OFFLINE_GRACE, 30 s */

    /* Tokens */
    long publisher_token_duration;   /* PUBLISHER_TOKEN_DURATION, 14400 s */
    long viewer_token_duration;      /* VIEWER_TOKEN_DURATION, 3600 s */
    char *token_key_file;            /* TOKEN_PRIVATE_KEY_FILE, empty = DATA_DIR/token-key.pem */
    char *public_key_arn;            /* IVS_PUBLIC_KEY_ARN, empty = local key id */
    int signer_threads;              /* SIGNER_THREADS, 0 = number of cores */
    long signer_precompute;          /* SIGNER_PRECOMPUTE, 16384 nonces kept ready */

    /* Live operations */
    long stats_push_ms;              /* STATS_PUSH_MS, 1000: shortest gap between pushed stats */
    bool metrics_public;             /* METRICS_PUBLIC, false: /metrics without the API key */
    char *webhook_urls;              /* WEBHOOK_URLS, comma list of http(s) URLs; empty = none */
    char *webhook_secret;            /* WEBHOOK_SECRET: the HMAC-SHA256 key of X-Usher-Signature */
    char *webhook_viewer_thresholds; /* WEBHOOK_VIEWER_THRESHOLDS, comma list of viewer counts */
    long webhook_retry_ms;           /* WEBHOOK_RETRY_MS, 1000: first wait before a retry (doubling) */
    long webhook_max_attempts;       /* WEBHOOK_MAX_ATTEMPTS, 8: tries per event and URL */

    /* Heartbeats */
    long heartbeat_timeout;          /* HEARTBEAT_TIMEOUT, 60 s */
    long heartbeat_cleanup_interval; /* HEARTBEAT_CLEANUP_INTERVAL, 30 s */
};

/* Fills *cfg from the environment (envp-style, NULL-terminated) and then
 * argv. Returns 0 on success. On failure returns -1 and writes a message
 * naming the bad setting into err. When argv asks for --help, writes the
 * help text to stdout and returns 1. *cfg is zeroed first (its old strings
 * are not freed); whatever the result, the caller calls config_free(). */
int config_load(struct config *cfg, int argc, char **argv, char **envp,
                char *err, size_t errlen);

/* Frees the strings config_load() allocated and NULLs them. Safe on a
 * zeroed or partly filled struct, and twice. */
void config_free(struct config *cfg);

#endif
