/* test_config.c — unit tests for src/config/config.c: defaults, the
 * environment, flags and their precedence, every kind of bad value,
 * REDIS_URL forms, the old-style scale thresholds and --help. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

#define ENV(...) ((char *[]){__VA_ARGS__, NULL})
#define NO_ENV ((char *[]){NULL})
#define ARGS(...) ((char *[]){"usher", __VA_ARGS__, NULL})
#define NO_ARGS ((char *[]){"usher", NULL})

static struct config cfg;
static char err[512];

/* argv is NULL-terminated, like the real one. */
static int load(char **env, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    err[0] = '\0';
    return config_load(&cfg, argc, argv, env, err, sizeof err);
}

/* Loads, expects a refusal whose message names `name`, and frees. */
static void expect_error(char **env, char **argv, const char *name)
{
    int rc = load(env, argv);
    if (rc != -1 || !strstr(err, name))
        fail_msg("expected an error naming %s, got rc=%d err='%s'", name, rc, err);
    config_free(&cfg);
}

static int free_config(void **state)
{
    (void)state;
    config_free(&cfg);
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    assert_int_equal(load(NO_ENV, NO_ARGS), 0);
    assert_string_equal(cfg.api_host, "0.0.0.0");
    assert_int_equal(cfg.api_port, 3000);
    assert_string_equal(cfg.api_secret_key, "");
    assert_false(cfg.skip_auth);
    assert_string_equal(cfg.cors_origins, "");
    assert_string_equal(cfg.log_level, "info");
    assert_int_equal(cfg.rate_limit_window_ms, 60000);
    assert_int_equal(cfg.rate_limit_max_requests, 100);
    assert_string_equal(cfg.trust_proxy, "false");
    assert_int_equal(cfg.max_body_bytes, 16384);

    assert_string_equal(cfg.redis_url, "");
    assert_string_equal(cfg.redis_host, "127.0.0.1");
    assert_int_equal(cfg.redis_port, 6379);
    assert_string_equal(cfg.redis_password, "");
    assert_int_equal(cfg.redis_db, 0);
    assert_string_equal(cfg.redis_key_prefix, "ivs:prod:");
    assert_int_equal(cfg.redis_timeout_ms, 500);
    assert_false(cfg.redis_embedded);
    assert_string_equal(cfg.data_dir, "./data");
    assert_string_equal(cfg.redis_user, "");
    assert_string_equal(cfg.redis_socket, "");

    assert_string_equal(cfg.stage_provider, "local");
    assert_string_equal(cfg.aws_region, "ap-northeast-1");
    assert_string_equal(cfg.aws_access_key_id, "");
    assert_string_equal(cfg.aws_secret_access_key, "");
    assert_string_equal(cfg.aws_session_token, "");
    assert_string_equal(cfg.aws_account_id, "123456789012");
    assert_string_equal(cfg.master_stage_arn, "");
    assert_string_equal(cfg.stream_name, "");
    assert_int_equal(cfg.aws_timeout_ms, 10000);
    assert_int_equal(cfg.aws_pace_margin_ms, 50);
    assert_int_equal(cfg.replication_max, 5);
    assert_false(cfg.replication_chaining);
    assert_int_equal(cfg.orphan_sweep_interval_s, 300);
    assert_int_equal(cfg.orphan_grace_s, 120);
    assert_false(cfg.local_participants_api);
    assert_int_equal(cfg.reconcile_interval_s, 60);
    assert_int_equal(cfg.reconcile_grace_s, 120);
    assert_int_equal(cfg.publisher_poll_interval_s, 5);
    assert_int_equal(cfg.publisher_offline_grace_s, 30);
    assert_string_equal(cfg.stage_name_prefix, "auto-stage");
    assert_int_equal(cfg.max_viewers_per_stage, 50);
    assert_float_equal(cfg.scale_up_threshold, 0.8, 1e-9);
    assert_float_equal(cfg.scale_down_threshold, 0.2, 1e-9);
    assert_int_equal(cfg.max_stages, 20);
    assert_true(cfg.auto_scale_enabled);

    assert_int_equal(cfg.publisher_token_duration, 14400);
    assert_int_equal(cfg.viewer_token_duration, 3600);
    assert_string_equal(cfg.token_key_file, "");
    assert_string_equal(cfg.public_key_arn, "");
    assert_int_equal(cfg.signer_threads, 0);

    assert_int_equal(cfg.heartbeat_timeout, 60);
    assert_int_equal(cfg.heartbeat_cleanup_interval, 30);
}

static void test_null_env_and_argv(void **state)
{
    (void)state;
    assert_int_equal(config_load(&cfg, 0, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(cfg.api_port, 3000);
}

static void test_env_values(void **state)
{
    (void)state;
    char **env = ENV("PATH=/usr/bin", "API_HOST=127.0.0.1", "API_PORT=8080",
                     "API_SECRET_KEY=k3y", "CORS_ORIGINS=https://a.example,https://b.example",
                     "LOG_LEVEL=debug", "RATE_LIMIT_WINDOW_MS=1000",
                     "RATE_LIMIT_MAX_REQUESTS=0", "TRUST_PROXY=true",
                     "MAX_BODY_BYTES=1024", "REDIS_HOST=redis.internal", "REDIS_PORT=6380",
                     "REDIS_PASSWORD=pw", "REDIS_DB=15", "REDIS_KEY_PREFIX=ivs:dev:",
                     "REDIS_TIMEOUT_MS=50", "REDIS_EMBEDDED=yes", "DATA_DIR=/var/lib/usher",
                     "AWS_REGION=us-west-2", "AWS_ACCOUNT_ID=000011112222",
                     "MASTER_STAGE_ARN=arn:aws:ivs:us-west-2:000011112222:stage/sWyAydfRqqF8",
                     "STAGE_NAME_PREFIX=overflow", "MAX_VIEWERS_PER_STAGE=25000",
                     "SCALE_UP_THRESHOLD=0.9", "SCALE_DOWN_THRESHOLD=0.1", "MAX_STAGES=1000",
                     "AUTO_SCALE_ENABLED=false", "PUBLISHER_TOKEN_DURATION=60",
                     "VIEWER_TOKEN_DURATION=1209600", "TOKEN_PRIVATE_KEY_FILE=/k.pem",
                     "IVS_PUBLIC_KEY_ARN=arn:aws:ivs:us-west-2:000011112222:public-key/x",
                     "SIGNER_THREADS=64", "HEARTBEAT_TIMEOUT=86400",
                     "HEARTBEAT_CLEANUP_INTERVAL=3600");
    assert_int_equal(load(env, NO_ARGS), 0);
    assert_string_equal(cfg.api_host, "127.0.0.1");
    assert_int_equal(cfg.api_port, 8080);
    assert_string_equal(cfg.api_secret_key, "k3y");
    assert_string_equal(cfg.cors_origins, "https://a.example,https://b.example");
    assert_string_equal(cfg.log_level, "debug");
    assert_int_equal(cfg.rate_limit_window_ms, 1000);
    assert_int_equal(cfg.rate_limit_max_requests, 0);
    assert_string_equal(cfg.trust_proxy, "true");
    assert_int_equal(cfg.max_body_bytes, 1024);
    assert_string_equal(cfg.redis_host, "redis.internal");
    assert_int_equal(cfg.redis_port, 6380);
    assert_string_equal(cfg.redis_password, "pw");
    assert_int_equal(cfg.redis_db, 15);
    assert_string_equal(cfg.redis_key_prefix, "ivs:dev:");
    assert_int_equal(cfg.redis_timeout_ms, 50);
    assert_true(cfg.redis_embedded);
    assert_string_equal(cfg.data_dir, "/var/lib/usher");
    assert_string_equal(cfg.aws_region, "us-west-2");
    assert_string_equal(cfg.aws_account_id, "000011112222");
    assert_string_equal(cfg.master_stage_arn,
                        "arn:aws:ivs:us-west-2:000011112222:stage/sWyAydfRqqF8");
    assert_string_equal(cfg.stage_name_prefix, "overflow");
    assert_int_equal(cfg.max_viewers_per_stage, 25000);
    assert_float_equal(cfg.scale_up_threshold, 0.9, 1e-9);
    assert_float_equal(cfg.scale_down_threshold, 0.1, 1e-9);
    assert_int_equal(cfg.max_stages, 1000);
    assert_false(cfg.auto_scale_enabled);
    assert_int_equal(cfg.publisher_token_duration, 60);
    assert_int_equal(cfg.viewer_token_duration, 1209600);
    assert_string_equal(cfg.token_key_file, "/k.pem");
    assert_string_equal(cfg.public_key_arn, "arn:aws:ivs:us-west-2:000011112222:public-key/x");
    assert_int_equal(cfg.signer_threads, 64);
    assert_int_equal(cfg.heartbeat_timeout, 86400);
    assert_int_equal(cfg.heartbeat_cleanup_interval, 3600);
}

static void test_empty_env_value_means_default(void **state)
{
    (void)state;
    assert_int_equal(load(ENV("API_PORT=", "REDIS_KEY_PREFIX=", "AUTO_SCALE_ENABLED="),
                          NO_ARGS), 0);
    assert_int_equal(cfg.api_port, 3000);
    assert_string_equal(cfg.redis_key_prefix, "ivs:prod:");
    assert_true(cfg.auto_scale_enabled);
}

static void test_first_env_entry_wins(void **state)
{
    (void)state;
    assert_int_equal(load(ENV("API_PORT=4000", "API_PORT=5000"), NO_ARGS), 0);
    assert_int_equal(cfg.api_port, 4000);
}

static void test_enum_is_case_insensitive(void **state)
{
    (void)state;
    assert_int_equal(load(ENV("LOG_LEVEL=WARN", "STAGE_PROVIDER=Local"), NO_ARGS), 0);
    assert_string_equal(cfg.log_level, "warn");
    assert_string_equal(cfg.stage_provider, "local");
}

static void test_flag_overrides_env(void **state)
{
    (void)state;
    char **env = ENV("API_PORT=4000", "REDIS_HOST=from-env", "LOG_LEVEL=error",
                     "SCALE_UP_THRESHOLD=0.7");
    assert_int_equal(load(env, ARGS("--api-port", "5000", "--redis-host=from-flag",
                                    "--log-level", "debug", "--scale-up-threshold=0.95",
                                    "--heartbeat-cleanup-interval", "5")),
                     0);
    assert_int_equal(cfg.api_port, 5000);
    assert_string_equal(cfg.redis_host, "from-flag");
    assert_string_equal(cfg.log_level, "debug");
    assert_float_equal(cfg.scale_up_threshold, 0.95, 1e-9);
    assert_int_equal(cfg.heartbeat_cleanup_interval, 5);
    config_free(&cfg);

    assert_int_equal(load(env, ARGS("--api-port=5001")), 0);
    assert_int_equal(cfg.api_port, 5001);
    assert_string_equal(cfg.redis_host, "from-env");
    config_free(&cfg);

    /* The last of repeated flags wins. */
    assert_int_equal(load(env, ARGS("--api-port=1", "--api-port", "2")), 0);
    assert_int_equal(cfg.api_port, 2);
}

static void test_flag_value_with_equals_sign(void **state)
{
    (void)state;
    assert_int_equal(load(NO_ENV, ARGS("--api-secret-key=a=b", "--cors-origins", "-x")), 0);
    assert_string_equal(cfg.api_secret_key, "a=b");
    assert_string_equal(cfg.cors_origins, "-x");
}

static void test_bool_forms(void **state)
{
    (void)state;
    static const struct { const char *text; bool want; } forms[] = {
        {"true", true}, {"TRUE", true}, {"1", true}, {"yes", true}, {"Yes", true},
        {"false", false}, {"False", false}, {"0", false}, {"no", false}, {"NO", false},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char skip[32], reverse[32], flag[48];
        snprintf(skip, sizeof skip, "SKIP_AUTH=%s", forms[i].text);
        /* AUTO_SCALE_ENABLED defaults to true, so "false" has to show. */
        snprintf(reverse, sizeof reverse, "AUTO_SCALE_ENABLED=%s", forms[i].text);
        assert_int_equal(load(ENV(skip, reverse), NO_ARGS), 0);
        assert_int_equal(cfg.skip_auth, forms[i].want);
        assert_int_equal(cfg.auto_scale_enabled, forms[i].want);
        config_free(&cfg);

        snprintf(flag, sizeof flag, "--auto-scale-enabled=%s", forms[i].text);
        assert_int_equal(load(NO_ENV, ARGS(flag)), 0);
        assert_int_equal(cfg.auto_scale_enabled, forms[i].want);
        config_free(&cfg);
    }

    /* Bare means true, also when another flag follows. */
    assert_int_equal(load(ENV("SKIP_AUTH=false"), ARGS("--skip-auth", "--auto-scale-enabled")), 0);
    assert_true(cfg.skip_auth);
    assert_true(cfg.auto_scale_enabled);
    config_free(&cfg);

    /* A bool word after a bool flag is its value. */
    assert_int_equal(load(ENV("SKIP_AUTH=true"), ARGS("--skip-auth", "no")), 0);
    assert_false(cfg.skip_auth);
}

static void test_bad_values_name_the_setting(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"API_PORT=70000", "API_PORT"},
        {"API_PORT=0", "API_PORT"},
        {"API_PORT=80x", "API_PORT"},
        {"API_PORT= 80", "API_PORT"},
        {"API_PORT=99999999999999999999999", "API_PORT"},
        {"REDIS_PORT=-1", "REDIS_PORT"},
        {"REDIS_DB=16", "REDIS_DB"},
        {"RATE_LIMIT_WINDOW_MS=0", "RATE_LIMIT_WINDOW_MS"},
        {"RATE_LIMIT_MAX_REQUESTS=-1", "RATE_LIMIT_MAX_REQUESTS"},
        {"MAX_BODY_BYTES=1023", "MAX_BODY_BYTES"},
        {"MAX_BODY_BYTES=1048577", "MAX_BODY_BYTES"},
        {"REDIS_TIMEOUT_MS=49", "REDIS_TIMEOUT_MS"},
        {"MAX_VIEWERS_PER_STAGE=25001", "MAX_VIEWERS_PER_STAGE"},
        {"MAX_STAGES=0", "MAX_STAGES"},
        {"PUBLISHER_TOKEN_DURATION=59", "PUBLISHER_TOKEN_DURATION"},
        {"VIEWER_TOKEN_DURATION=1209601", "VIEWER_TOKEN_DURATION"},
        {"SIGNER_THREADS=65", "SIGNER_THREADS"},
        {"HEARTBEAT_TIMEOUT=0", "HEARTBEAT_TIMEOUT"},
        {"HEARTBEAT_CLEANUP_INTERVAL=3601", "HEARTBEAT_CLEANUP_INTERVAL"},
        {"SCALE_UP_THRESHOLD=abc", "SCALE_UP_THRESHOLD"},
        {"SCALE_UP_THRESHOLD=0", "SCALE_UP_THRESHOLD"},
        {"SCALE_UP_THRESHOLD=-0.5", "SCALE_UP_THRESHOLD"},
        {"SCALE_UP_THRESHOLD=nan", "SCALE_UP_THRESHOLD"},
        {"SCALE_DOWN_THRESHOLD=0.1x", "SCALE_DOWN_THRESHOLD"},
        {"SKIP_AUTH=maybe", "SKIP_AUTH"},
        {"TRUST_PROXY=maybe", "TRUST_PROXY"},
        {"TRUST_PROXY=33", "TRUST_PROXY"},
        {"TRUST_PROXY=10.0.0.0/33", "TRUST_PROXY"},
        {"TRUST_PROXY=10.0.0.0/8,", "TRUST_PROXY"},
        {"CORS_ORIGINS=" "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z,1,2,3,4,5,6,7", "CORS_ORIGINS"},
        {"HTTP_READ_TIMEOUT_MS=99", "HTTP_READ_TIMEOUT_MS"},
        {"HTTP_IDLE_TIMEOUT_MS=abc", "HTTP_IDLE_TIMEOUT_MS"},
        {"LOG_LEVEL=verbose", "LOG_LEVEL"},
        {"STAGE_PROVIDER=gcp", "STAGE_PROVIDER"},
        {"STREAM_NAME=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "STREAM_NAME"},
        {"REPLICATION_MAX=-1", "REPLICATION_MAX"},
        {"REPLICATION_MAX=101", "REPLICATION_MAX"},
        {"REPLICATION_CHAINING=sometimes", "REPLICATION_CHAINING"},
        {"ORPHAN_SWEEP_INTERVAL=-5", "ORPHAN_SWEEP_INTERVAL"},
        {"ORPHAN_GRACE=0", "ORPHAN_GRACE"},
        {"RECONCILE_INTERVAL=-1", "RECONCILE_INTERVAL"},
        {"RECONCILE_GRACE=0", "RECONCILE_GRACE"},
        {"PUBLISHER_POLL_INTERVAL=3601", "PUBLISHER_POLL_INTERVAL"},
        {"PUBLISHER_OFFLINE_GRACE=x", "PUBLISHER_OFFLINE_GRACE"},
        {"LOCAL_PARTICIPANTS_API=maybe", "LOCAL_PARTICIPANTS_API"},
        {"AWS_TIMEOUT_MS=99", "AWS_TIMEOUT_MS"},
        {"AWS_PACE_MARGIN_MS=1001", "AWS_PACE_MARGIN_MS"},
        {"REDIS_KEY_PREFIX=ivs prod:", "REDIS_KEY_PREFIX"},
        {"REDIS_KEY_PREFIX=ivs\tprod:", "REDIS_KEY_PREFIX"},
        {"REDIS_KEY_PREFIX=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "REDIS_KEY_PREFIX"},
        {"AWS_REGION=US-EAST-1", "AWS_REGION"},
        {"AWS_ACCOUNT_ID=12345678901", "AWS_ACCOUNT_ID"},
        {"AWS_ACCOUNT_ID=12345678901x", "AWS_ACCOUNT_ID"},
        {"MASTER_STAGE_ARN=arn:aws:ivs:ap-northeast-1:123456789012:channel/abc",
         "MASTER_STAGE_ARN"},
        {"MASTER_STAGE_ARN=arn:aws:ivs:ap-northeast-1:1234:stage/abc", "MASTER_STAGE_ARN"},
        {"MASTER_STAGE_ARN=arn:aws:ivs:ap-northeast-1:123456789012:stage/", "MASTER_STAGE_ARN"},
        {"MASTER_STAGE_ARN=arn:aws:ivs:ap-northeast-1:123456789012:stage/ab-c",
         "MASTER_STAGE_ARN"},
        {"MASTER_STAGE_ARN=sWyAydfRqqF8", "MASTER_STAGE_ARN"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(ENV((char *)cases[i][0]), NO_ARGS, cases[i][1]);
    /* The local model with the aws provider would be ignored: refused. */
    expect_error(ENV("STAGE_PROVIDER=aws", "LOCAL_PARTICIPANTS_API=true"), NO_ARGS,
                 "LOCAL_PARTICIPANTS_API");

    /* The value itself is quoted, so the operator sees what was read. */
    assert_int_equal(load(ENV("API_PORT=70000"), NO_ARGS), -1);
    assert_string_equal(err, "API_PORT: '70000' is not a port (1-65535)");
}

static void test_bad_flags(void **state)
{
    (void)state;
    assert_int_equal(load(NO_ENV, ARGS("--foo")), -1);
    assert_string_equal(err, "unknown flag --foo (see --help)");
    config_free(&cfg);
    assert_int_equal(load(NO_ENV, ARGS("--foo=1")), -1);
    assert_string_equal(err, "unknown flag --foo (see --help)");
    config_free(&cfg);
    /* Flags are spelt with '-', not the environment's '_'. */
    expect_error(NO_ENV, ARGS("--api_port=1"), "unknown flag --api_port");
    expect_error(NO_ENV, ARGS("--API-PORT=1"), "unknown flag");
    expect_error(NO_ENV, ARGS("stray"), "stray");
    expect_error(NO_ENV, ARGS("--api-port"), "API_PORT");
    expect_error(NO_ENV, ARGS("--api-port", "--skip-auth"), "API_PORT");
    expect_error(NO_ENV, ARGS("--api-port", "http"), "API_PORT");
    expect_error(NO_ENV, ARGS("--skip-auth=maybe"), "SKIP_AUTH");
    expect_error(NO_ENV, ARGS("--log-level=loud"), "LOG_LEVEL");
}

static void test_master_stage_arn_accepted(void **state)
{
    (void)state;
    const char *arn = "arn:aws:ivs:ap-northeast-1:123456789012:stage/PvHUfQkBRp1c";
    assert_int_equal(load(NO_ENV, ARGS("--master-stage-arn", (char *)arn)), 0);
    assert_string_equal(cfg.master_stage_arn, arn);
}

static void test_redis_url_tcp(void **state)
{
    (void)state;
    char **env = ENV("REDIS_URL=redis://:s3cret@redis.example:6380/3",
                     "REDIS_HOST=ignored", "REDIS_PORT=1", "REDIS_PASSWORD=old",
                     "REDIS_DB=9");
    assert_int_equal(load(env, NO_ARGS), 0);
    assert_string_equal(cfg.redis_host, "redis.example");
    assert_int_equal(cfg.redis_port, 6380);
    assert_string_equal(cfg.redis_password, "s3cret");
    assert_string_equal(cfg.redis_user, "");
    assert_int_equal(cfg.redis_db, 3);
    assert_string_equal(cfg.redis_socket, "");
    assert_string_equal(cfg.redis_url, "redis://:s3cret@redis.example:6380/3");
}

static void test_redis_url_user_and_escapes(void **state)
{
    (void)state;
    assert_int_equal(load(ENV("REDIS_URL=redis://app:p%40ss%3Aw0rd@10.0.0.2"), NO_ARGS), 0);
    assert_string_equal(cfg.redis_user, "app");
    assert_string_equal(cfg.redis_password, "p@ss:w0rd");
    assert_string_equal(cfg.redis_host, "10.0.0.2");
    assert_int_equal(cfg.redis_port, 6379);
    assert_int_equal(cfg.redis_db, 0);
}

/* The URL is the whole description: parts it leaves out are not taken from
 * REDIS_PORT, REDIS_PASSWORD or REDIS_DB. */
static void test_redis_url_wins_entirely(void **state)
{
    (void)state;
    char **env = ENV("REDIS_URL=REDIS://cache/", "REDIS_PORT=7000",
                     "REDIS_PASSWORD=old", "REDIS_DB=4");
    assert_int_equal(load(env, NO_ARGS), 0);
    assert_string_equal(cfg.redis_host, "cache");
    assert_int_equal(cfg.redis_port, 6379);
    assert_string_equal(cfg.redis_password, "");
    assert_int_equal(cfg.redis_db, 0);
}

static void test_redis_url_ipv6(void **state)
{
    (void)state;
    assert_int_equal(load(NO_ENV, ARGS("--redis-url", "redis://[::1]:7000/15")), 0);
    assert_string_equal(cfg.redis_host, "::1");
    assert_int_equal(cfg.redis_port, 7000);
    assert_int_equal(cfg.redis_db, 15);
}

static void test_redis_url_unix(void **state)
{
    (void)state;
    assert_int_equal(load(ENV("REDIS_URL=unix:///var/run/redis/redis.sock?db=4",
                              "REDIS_PASSWORD=old"),
                          NO_ARGS),
                     0);
    assert_string_equal(cfg.redis_socket, "/var/run/redis/redis.sock");
    assert_int_equal(cfg.redis_db, 4);
    assert_string_equal(cfg.redis_password, "");
    config_free(&cfg);

    assert_int_equal(load(ENV("REDIS_URL=unix:///tmp/r.sock"), NO_ARGS), 0);
    assert_string_equal(cfg.redis_socket, "/tmp/r.sock");
    assert_int_equal(cfg.redis_db, 0);
    config_free(&cfg);

    assert_int_equal(load(ENV("REDIS_URL=unix:///tmp/r.sock?db=2&password=a%26b"), NO_ARGS), 0);
    assert_string_equal(cfg.redis_socket, "/tmp/r.sock");
    assert_int_equal(cfg.redis_db, 2);
    assert_string_equal(cfg.redis_password, "a&b");
}

static void test_redis_url_bad(void **state)
{
    (void)state;
    static const char *const urls[] = {
        "REDIS_URL=http://host:6379",
        "REDIS_URL=rediss://host",
        "REDIS_URL=redis://",
        "REDIS_URL=redis://:hunter2@",
        "REDIS_URL=redis://:hunter2@host:0",
        "REDIS_URL=redis://:hunter2@host:65536",
        "REDIS_URL=redis://:hunter2@host:port",
        "REDIS_URL=redis://:hunter2@host:6379:1",
        "REDIS_URL=redis://:hunter2@host/16",
        "REDIS_URL=redis://:hunter2@host/x",
        "REDIS_URL=redis://:hunter2@host/1/2",
        "REDIS_URL=redis://:hunter2@host?db=1",
        "REDIS_URL=redis://hunter2@host",
        "REDIS_URL=redis://:hunter%2@host",
        "REDIS_URL=redis://:hunter%002@host",
        "REDIS_URL=redis://[::1",
        "REDIS_URL=redis://[::1]x",
        "REDIS_URL=unix://",
        "REDIS_URL=unix://relative.sock",
        "REDIS_URL=unix:///tmp/r.sock?db=16",
        "REDIS_URL=unix:///tmp/r.sock?timeout=5",
        "REDIS_URL=unix:///tmp/r.sock?password=hunter2&x",
        "REDIS_URL=localhost:6379",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        expect_error(ENV((char *)urls[i]), NO_ARGS, "REDIS_URL");
        /* A password in a rejected URL must not reach the logs. */
        if (strstr(err, "hunter2"))
            fail_msg("message repeats the password: %s", err);
    }
}

static void test_threshold_conversion(void **state)
{
    (void)state;
    assert_int_equal(load(ENV("SCALE_UP_THRESHOLD=40", "MAX_VIEWERS_PER_STAGE=50",
                              "SCALE_DOWN_THRESHOLD=10"),
                          NO_ARGS),
                     0);
    assert_float_equal(cfg.scale_up_threshold, 0.8, 1e-9);
    assert_float_equal(cfg.scale_down_threshold, 0.2, 1e-9);
    config_free(&cfg);

    /* More viewers than a stage holds is capped at full. */
    assert_int_equal(load(ENV("SCALE_UP_THRESHOLD=100"), NO_ARGS), 0);
    assert_float_equal(cfg.scale_up_threshold, 1.0, 1e-9);
    config_free(&cfg);

    /* 1 is a ratio (full), not one viewer. */
    assert_int_equal(load(ENV("SCALE_UP_THRESHOLD=1"), NO_ARGS), 0);
    assert_float_equal(cfg.scale_up_threshold, 1.0, 1e-9);
}

static void test_scale_down_must_be_below_up(void **state)
{
    (void)state;
    expect_error(ENV("SCALE_DOWN_THRESHOLD=0.9"), NO_ARGS, "SCALE_DOWN_THRESHOLD");
    expect_error(ENV("SCALE_UP_THRESHOLD=0.5", "SCALE_DOWN_THRESHOLD=0.5"), NO_ARGS,
                 "SCALE_DOWN_THRESHOLD");
    /* Equal only after conversion: 40 of 50 viewers is 0.8. */
    expect_error(ENV("SCALE_UP_THRESHOLD=40", "SCALE_DOWN_THRESHOLD=0.8"), NO_ARGS,
                 "SCALE_DOWN_THRESHOLD");
    expect_error(ENV("SCALE_UP_THRESHOLD=0.5"), ARGS("--scale-down-threshold", "30"),
                 "SCALE_DOWN_THRESHOLD");
}

static void test_aws_keys_in_pairs(void **state)
{
    (void)state;
    /* no keys: the credential chain looks further (container, instance) */
    assert_int_equal(load(ENV("STAGE_PROVIDER=aws"), NO_ARGS), 0);
    config_free(&cfg);

    assert_int_equal(load(ENV("STAGE_PROVIDER=aws", "AWS_ACCESS_KEY_ID=AKIA"), NO_ARGS), -1);
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY"));
    config_free(&cfg);

    assert_int_equal(load(ENV("STAGE_PROVIDER=aws", "AWS_SECRET_ACCESS_KEY=s"), NO_ARGS), -1);
    assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID"));
    config_free(&cfg);

    assert_int_equal(load(ENV("AWS_ACCESS_KEY_ID=AKIA", "AWS_SECRET_ACCESS_KEY=s"),
                          ARGS("--stage-provider", "aws")),
                     0);
    assert_string_equal(cfg.stage_provider, "aws");
}

/* Runs config_load with stdout sent to a temporary file; returns its rc
 * and what was printed (caller frees). */
static int load_capturing_stdout(char **env, char **argv, char **printed)
{
    fflush(stdout);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDOUT_FILENO) >= 0);
    int rc = load(env, argv);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);

    assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
    long size = ftell(tmp);
    assert_true(size >= 0);
    rewind(tmp);
    *printed = calloc(1, (size_t)size + 1);
    assert_non_null(*printed);
    assert_int_equal(fread(*printed, 1, (size_t)size, tmp), (size_t)size);
    fclose(tmp);
    return rc;
}

static void test_help(void **state)
{
    (void)state;
    static const char *const names[] = {
        "API_HOST", "API_PORT", "API_SECRET_KEY", "SKIP_AUTH", "CORS_ORIGINS",
        "LOG_LEVEL", "RATE_LIMIT_WINDOW_MS", "RATE_LIMIT_MAX_REQUESTS", "TRUST_PROXY",
        "MAX_BODY_BYTES", "HTTP_READ_TIMEOUT_MS", "HTTP_IDLE_TIMEOUT_MS", "REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD",
        "REDIS_DB", "REDIS_KEY_PREFIX", "REDIS_TIMEOUT_MS", "REDIS_EMBEDDED", "DATA_DIR",
        "STAGE_PROVIDER", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN", "AWS_ACCOUNT_ID", "MASTER_STAGE_ARN", "STAGE_NAME_PREFIX",
        "MAX_VIEWERS_PER_STAGE", "SCALE_UP_THRESHOLD", "SCALE_DOWN_THRESHOLD",
        "MAX_STAGES", "AUTO_SCALE_ENABLED", "PUBLISHER_TOKEN_DURATION",
        "VIEWER_TOKEN_DURATION", "TOKEN_PRIVATE_KEY_FILE", "IVS_PUBLIC_KEY_ARN",
        "SIGNER_THREADS", "HEARTBEAT_TIMEOUT", "HEARTBEAT_CLEANUP_INTERVAL",
    };
    char *out;
    assert_int_equal(load_capturing_stdout(NO_ENV, ARGS("--help"), &out), 1);
    assert_non_null(strstr(out, "usage: usher"));
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", names[i]);
        for (char *p = flag + 2; *p; p++)
            *p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
        if (!strstr(out, names[i]) || !strstr(out, flag))
            fail_msg("--help lacks %s / %s", names[i], flag);
    }
    static const char *const expected[] = {
        "HTTP:", "Redis:", "Stages:", "Tokens:", "Heartbeats:",
        "--api-port N", "[1-65535] (default: 3000)", "--skip-auth [BOOL]",
        "[debug|info|warn|error] (default: info)", "(default: ivs:prod:)",
        "viewers per stage",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (!strstr(out, expected[i]))
            fail_msg("--help lacks '%s'", expected[i]);
    free(out);
    config_free(&cfg);

    /* -h too, and a bad environment does not hide the help. */
    assert_int_equal(load_capturing_stdout(ENV("API_PORT=nope"), ARGS("--skip-auth", "-h"), &out),
                     1);
    assert_non_null(strstr(out, "HEARTBEAT_TIMEOUT"));
    free(out);
}

static void test_free_is_safe(void **state)
{
    (void)state;
    struct config zero = {0};
    config_free(&zero);
    assert_int_equal(load(NO_ENV, NO_ARGS), 0);
    config_free(&cfg);
    assert_null(cfg.api_host);
    assert_null(cfg.redis_socket);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_defaults, free_config),
        cmocka_unit_test_teardown(test_null_env_and_argv, free_config),
        cmocka_unit_test_teardown(test_env_values, free_config),
        cmocka_unit_test_teardown(test_empty_env_value_means_default, free_config),
        cmocka_unit_test_teardown(test_first_env_entry_wins, free_config),
        cmocka_unit_test_teardown(test_enum_is_case_insensitive, free_config),
        cmocka_unit_test_teardown(test_flag_overrides_env, free_config),
        cmocka_unit_test_teardown(test_flag_value_with_equals_sign, free_config),
        cmocka_unit_test_teardown(test_bool_forms, free_config),
        cmocka_unit_test_teardown(test_bad_values_name_the_setting, free_config),
        cmocka_unit_test_teardown(test_bad_flags, free_config),
        cmocka_unit_test_teardown(test_master_stage_arn_accepted, free_config),
        cmocka_unit_test_teardown(test_redis_url_tcp, free_config),
        cmocka_unit_test_teardown(test_redis_url_user_and_escapes, free_config),
        cmocka_unit_test_teardown(test_redis_url_wins_entirely, free_config),
        cmocka_unit_test_teardown(test_redis_url_ipv6, free_config),
        cmocka_unit_test_teardown(test_redis_url_unix, free_config),
        cmocka_unit_test_teardown(test_redis_url_bad, free_config),
        cmocka_unit_test_teardown(test_threshold_conversion, free_config),
        cmocka_unit_test_teardown(test_scale_down_must_be_below_up, free_config),
        cmocka_unit_test_teardown(test_aws_keys_in_pairs, free_config),
        cmocka_unit_test_teardown(test_help, free_config),
        cmocka_unit_test_teardown(test_free_is_safe, free_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
