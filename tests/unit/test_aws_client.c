/* test_aws_client.c — src/aws/client.c, credentials.c and http.c end to
 * end over loopback: an evhttp server on the test's own event loop plays
 * IVS, the container credentials endpoint and EC2 instance metadata.
 *
 * Checked: a call is POST /{Operation} with a JSON body, Content-Type
 * application/json, and an Authorization header that verifies when the
 * received request is signed again (what was sent is what was signed;
 * scope region/ivs); 429 and 500 are retried and end ok; 400/402/403/404/
 * 409 are never retried and give the right class, code and message (402
 * names the quota); retries stop at the attempt limit; a silent server
 * gives a timeout; an unknown operation sends nothing; credentials come
 * from the container endpoint (with its Authorization token) and from
 * IMDSv2 (token, role, credentials), with the session token sent; short-
 * lived credentials are fetched again while long-lived ones are reused;
 * a call waiting on freed client hears "client closed" once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "aws/client.h"
#include "aws/sigv4.h"
#include "util/clock.h"

/* ---- the fake server ---- */

struct reply {
    int status;
    const char *error_type;
    const char *body;
    bool silent;                /* never answer */
};

static struct {
    struct event_base *base;
    struct evhttp *http;
    int port;
    struct reply script[8];     /* answers to IVS calls, in order; then 200 {} */
    int nscript, next;
    int ivs_calls, cred_fetches;
    int64_t cred_lifetime_s;    /* 0 = 1 h */
    char last_path[128], last_auth[512], last_token[256], last_ctype[64];
    bool signature_ok;
    char container_auth[64];
} srv;

static const char *hdr(struct evhttp_request *req, const char *name)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
    return v ? v : "";
}

static char *body_of(struct evhttp_request *req)
{
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_copyout(b, s, n);
    s[n] = '\0';
    return s;
}

static void send_text(struct evhttp_request *req, int status, const char *type, const char *text)
{
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, text, strlen(text));
    if (type)
        evhttp_add_header(evhttp_request_get_output_headers(req), "x-amzn-ErrorType", type);
    evhttp_send_reply(req, status, "X", out);
    evbuffer_free(out);
}

/* Signs the received request again with the credentials the fake handed
 * out and compares the Authorization header. */
static bool verify_signature(struct evhttp_request *req, const char *body)
{
    struct tm tm = {0};
    if (!strptime(hdr(req, "X-Amz-Date"), "%Y%m%dT%H%M%SZ", &tm))
        return false;
    const char *secret = strstr(hdr(req, "Authorization"), "Credential=AKIDENV/")
                             ? "envsecret" : "tempsecret";
    struct sigv4_header hs[] = {{"Host", hdr(req, "Host")},
                                {"Content-Type", hdr(req, "Content-Type")}};
    struct sigv4_request r = {"POST", evhttp_request_get_uri(req), NULL, hs, 2,
                              body, strlen(body)};
    char akid[64] = "";
    sscanf(hdr(req, "Authorization"), "AWS4-HMAC-SHA256 Credential=%63[^/]", akid);
    struct sigv4_params p = {akid, secret, hdr(req, "X-Amz-Security-Token"), "us-east-1",
                             "ivs", (int64_t)timegm(&tm), false};
    struct sigv4_result out;
    char err[64];
    if (sigv4_sign(&r, &p, &out, err, sizeof err) < 0)
        return false;
    bool ok = strcmp(out.authorization, hdr(req, "Authorization")) == 0;
    sigv4_result_free(&out);
    return ok;
}

static void on_ivs(struct evhttp_request *req)
{
    char *body = body_of(req);
    srv.ivs_calls++;
    snprintf(srv.last_path, sizeof srv.last_path, "%s", evhttp_request_get_uri(req));
    snprintf(srv.last_auth, sizeof srv.last_auth, "%s", hdr(req, "Authorization"));
    snprintf(srv.last_token, sizeof srv.last_token, "%s", hdr(req, "X-Amz-Security-Token"));
    snprintf(srv.last_ctype, sizeof srv.last_ctype, "%s", hdr(req, "Content-Type"));
    srv.signature_ok = verify_signature(req, body);
    free(body);
    if (srv.next < srv.nscript) {
        struct reply *r = &srv.script[srv.next++];
        if (!r->silent)
            send_text(req, r->status, r->error_type, r->body);
        return;
    }
    send_text(req, 200, NULL, "{\"stage\":{\"arn\":\"arn:aws:ivs:us-east-1:1:stage/x\"}}");
}

static void send_credentials(struct evhttp_request *req, bool imds)
{
    char exp[32], json[512];
    time_t t = time(NULL) + (srv.cred_lifetime_s ? srv.cred_lifetime_s : 3600);
    strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    srv.cred_fetches++;
    snprintf(json, sizeof json,
             "{%s\"AccessKeyId\":\"AKIDTEMP%d\",\"SecretAccessKey\":\"tempsecret\","
             "\"Token\":\"session-%d\",\"Expiration\":\"%s\"}",
             imds ? "\"Code\":\"Success\"," : "", srv.cred_fetches, srv.cred_fetches, exp);
    send_text(req, 200, NULL, json);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *uri = evhttp_request_get_uri(req);
    if (strcmp(uri, "/latest/api/token") == 0) {
        bool put = evhttp_request_get_command(req) == EVHTTP_REQ_PUT &&
                   atoi(hdr(req, "X-aws-ec2-metadata-token-ttl-seconds")) > 0;
        send_text(req, put ? 200 : 400, NULL, put ? "imds-token" : "");
    } else if (strncmp(uri, "/latest/meta-data/iam/security-credentials/", 43) == 0) {
        if (strcmp(hdr(req, "X-aws-ec2-metadata-token"), "imds-token") != 0)
            send_text(req, 401, NULL, "");
        else if (uri[43] == '\0')
            send_text(req, 200, NULL, "usher-role\n");
        else if (strcmp(uri + 43, "usher-role") == 0)
            send_credentials(req, true);
        else
            send_text(req, 404, NULL, "");
    } else if (strcmp(uri, "/container-creds") == 0) {
        snprintf(srv.container_auth, sizeof srv.container_auth, "%s", hdr(req, "Authorization"));
        send_credentials(req, false);
    } else {
        on_ivs(req);
    }
}

/* ---- the client side ---- */

struct outcome {
    int times;
    enum aws_error error;
    char code[64], message[256];
    int attempts;
    long status;
    char arn[128];
};

static void on_done(void *arg, const struct aws_result *r)
{
    struct outcome *o = arg;
    o->times++;
    o->error = r->error;
    o->attempts = r->attempts;
    o->status = r->status;
    snprintf(o->code, sizeof o->code, "%s", r->code ? r->code : "");
    snprintf(o->message, sizeof o->message, "%s", r->message ? r->message : "");
    const char *arn = json_string_value(json_object_get(json_object_get(r->json, "stage"), "arn"));
    snprintf(o->arn, sizeof o->arn, "%s", arn ? arn : "");
}

static void run(struct aws_client *c, const char *op, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    json_t *body = json_pack("{s:s}", "name", "auto-stage-1");
    assert_int_equal(aws_call(c, op, body, on_done, o), 0);
    json_decref(body);
    assert_int_equal(o->times, 0);      /* never from inside aws_call */
    while (o->times == 0)
        event_base_loop(srv.base, EVLOOP_ONCE);
}

static void script(int n, const struct reply *r)
{
    if (n > 0)
        memcpy(srv.script, r, (size_t)n * sizeof *r);
    srv.nscript = n, srv.next = 0, srv.ivs_calls = 0;
}

enum creds_mode { ENV, CONTAINER, IMDS };

static struct aws_client *client(enum creds_mode mode, long timeout_ms)
{
    static char endpoint[64], full_uri[96];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", srv.port);
    snprintf(full_uri, sizeof full_uri, "%s/container-creds", endpoint);
    struct aws_client_settings s = {.region = "us-east-1", .endpoint_url = endpoint,
                                    .timeout_ms = timeout_ms};
    if (mode == ENV)
        s.creds.access_key_id = "AKIDENV", s.creds.secret_access_key = "envsecret";
    else if (mode == CONTAINER)
        s.creds.container_full_uri = full_uri, s.creds.container_auth_token = "Bearer c-tok";
    else
        s.creds.imds_endpoint = endpoint;
    char err[256];
    struct aws_client *c = aws_client_new(srv.base, &s, err, sizeof err);
    if (!c)
        print_error("aws_client_new: %s\n", err);
    assert_non_null(c);
    return c;
}

static int setup(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    srv.base = event_base_new();
    srv.http = evhttp_new(srv.base);
    evhttp_set_allowed_methods(srv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
    evhttp_set_gencb(srv.http, on_request, NULL);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(srv.http, "127.0.0.1", 0);
    if (!bs)
        return -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &len);
    srv.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    evhttp_free(srv.http);
    event_base_free(srv.base);
    return 0;
}

static void test_success_is_signed(void **state)
{
    (void)state;
    struct aws_client *c = client(ENV, 2000);
    struct outcome o;
    run(c, "CreateStage", &o);
    assert_int_equal(o.error, AWS_OK);
    assert_int_equal(o.attempts, 1);
    assert_string_equal(o.arn, "arn:aws:ivs:us-east-1:1:stage/x");
    assert_string_equal(srv.last_path, "/CreateStage");
    assert_string_equal(srv.last_ctype, "application/json");
    assert_non_null(strstr(srv.last_auth, "/us-east-1/ivs/aws4_request, SignedHeaders="
                                          "content-type;host;x-amz-date, Signature="));
    assert_true(srv.signature_ok);
    assert_string_equal(srv.last_token, "");
    size_t i = (size_t)aws_op_index("CreateStage");
    assert_int_equal(aws_client_op_stats(c, i)->outcomes[AWS_OK], 1);
    assert_string_equal(aws_client_last(c).operation, "CreateStage");
    assert_int_equal(aws_client_last(c).error, AWS_OK);
    assert_true(aws_client_last(c).at_ms > 0);
    assert_string_equal(aws_client_credentials_source(c), "environment");
    aws_client_free(c);
}

static void test_throttle_and_5xx_retried(void **state)
{
    (void)state;
    struct aws_client *c = client(ENV, 2000);
    struct reply r[] = {{429, "TooManyRequestsException", "{\"message\":\"slow down\"}", false},
                        {500, "InternalServerException", "{}", false},
                        {400, "ThrottlingException:x", "{}", false}};
    script(3, r);
    struct outcome o;
    run(c, "GetStage", &o);
    assert_int_equal(o.error, AWS_OK);
    assert_int_equal(o.attempts, 4);
    assert_int_equal(srv.ivs_calls, 4);
    assert_int_equal(aws_client_op_stats(c, (size_t)aws_op_index("GetStage"))->retries, 3);
    struct aws_client_recent recent = aws_client_recent(c, clock_now_ms());
    assert_int_equal(recent.throttles, 2);
    assert_int_equal(recent.errors, 1);
    recent = aws_client_recent(c, clock_now_ms() + 61 * 1000);
    assert_int_equal(recent.throttles + recent.errors, 0);
    aws_client_free(c);
}

static void test_never_retried(void **state)
{
    (void)state;
    static const struct {
        struct reply r;
        enum aws_error want;
        const char *code;
    } cases[] = {
        {{400, "ValidationException:http://x", "{\"message\":\"bad name\"}", false},
         AWS_ERR_VALIDATION, "ValidationException"},
        {{402, "ServiceQuotaExceededException",
          "{\"exceptionMessage\":\"Limit exceeded for replications per participant\"}", false},
         AWS_ERR_QUOTA_EXCEEDED, "ServiceQuotaExceededException"},
        {{403, "AccessDeniedException", "{\"message\":\"no\"}", false},
         AWS_ERR_ACCESS_DENIED, "AccessDeniedException"},
        {{404, "ResourceNotFoundException", "{\"message\":\"gone\"}", false},
         AWS_ERR_NOT_FOUND, "ResourceNotFoundException"},
        {{409, "ConflictException", "{\"message\":\"busy\"}", false},
         AWS_ERR_CONFLICT, "ConflictException"},
    };
    struct aws_client *c = client(ENV, 2000);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        script(1, &cases[i].r);
        struct outcome o;
        run(c, "StartParticipantReplication", &o);
        assert_int_equal(o.times, 1);
        assert_int_equal(o.error, cases[i].want);
        assert_int_equal(o.attempts, 1);
        assert_int_equal(srv.ivs_calls, 1);
        assert_int_equal(o.status, cases[i].r.status);
        assert_string_equal(o.code, cases[i].code);
        assert_true(o.message[0] != '\0');
    }
    struct outcome o;
    script(1, &cases[1].r);
    run(c, "StartParticipantReplication", &o);
    assert_string_equal(o.message, "Limit exceeded for replications per participant");
    aws_client_free(c);
}

static void test_retries_run_out(void **state)
{
    (void)state;
    struct aws_client *c = client(ENV, 2000);
    struct reply r[8];
    for (int i = 0; i < 8; i++)
        r[i] = (struct reply){503, NULL, "", false};
    script(8, r);
    struct outcome o;
    run(c, "ListStages", &o);
    assert_int_equal(o.error, AWS_ERR_SERVER);
    assert_int_equal(o.attempts, AWS_RETRY_MAX_ATTEMPTS);
    assert_int_equal(srv.ivs_calls, AWS_RETRY_MAX_ATTEMPTS);
    aws_client_free(c);
}

static void test_timeout_retried(void **state)
{
    (void)state;
    struct aws_client *c = client(ENV, 300);
    struct reply r[] = {{0, NULL, NULL, true}};
    script(1, r);
    struct outcome o;
    run(c, "DeleteStage", &o);
    assert_int_equal(o.error, AWS_OK);
    assert_int_equal(o.attempts, 2);
    aws_client_free(c);
}

static void test_unknown_operation(void **state)
{
    (void)state;
    struct aws_client *c = client(ENV, 2000);
    script(0, NULL);
    struct outcome o;
    run(c, "../admin", &o);
    assert_int_equal(o.error, AWS_ERR_VALIDATION);
    assert_int_equal(o.attempts, 0);
    assert_int_equal(srv.ivs_calls, 0);
    aws_client_free(c);
}

static void test_container_credentials(void **state)
{
    (void)state;
    struct aws_client *c = client(CONTAINER, 2000);
    struct outcome o;
    run(c, "GetStage", &o);
    assert_int_equal(o.error, AWS_OK);
    assert_string_equal(srv.container_auth, "Bearer c-tok");
    assert_non_null(strstr(srv.last_auth, "Credential=AKIDTEMP1/"));
    assert_string_equal(srv.last_token, "session-1");
    assert_true(srv.signature_ok);
    run(c, "GetStage", &o);     /* 1 h credentials: reused */
    assert_int_equal(srv.cred_fetches, 1);
    assert_string_equal(aws_client_credentials_source(c), "container");
    aws_client_free(c);
}

static void test_imds_and_refresh(void **state)
{
    (void)state;
    srv.cred_lifetime_s = 30;   /* inside the refresh margin: fetched again per call */
    struct aws_client *c = client(IMDS, 2000);
    struct outcome o;
    run(c, "GetStage", &o);
    assert_int_equal(o.error, AWS_OK);
    assert_non_null(strstr(srv.last_auth, "Credential=AKIDTEMP1/"));
    assert_string_equal(srv.last_token, "session-1");
    assert_true(srv.signature_ok);
    run(c, "GetStage", &o);
    assert_int_equal(o.error, AWS_OK);
    assert_int_equal(srv.cred_fetches, 2);
    assert_non_null(strstr(srv.last_auth, "Credential=AKIDTEMP2/"));
    assert_string_equal(srv.last_token, "session-2");
    assert_string_equal(aws_client_credentials_source(c), "imds");
    aws_client_free(c);
}

static void test_no_credentials(void **state)
{
    (void)state;
    char endpoint[64], err[256];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", srv.port);
    struct aws_client_settings s = {.region = "us-east-1", .endpoint_url = endpoint,
                                    .creds = {.imds_disabled = true}};
    struct aws_client *c = aws_client_new(srv.base, &s, err, sizeof err);
    assert_non_null(c);
    struct outcome o;
    run(c, "GetStage", &o);
    assert_int_equal(o.error, AWS_ERR_CREDENTIALS);
    assert_non_null(strstr(o.message, "AWS_ACCESS_KEY_ID"));
    assert_int_equal(srv.ivs_calls, 0);
    aws_client_free(c);
    s.endpoint_url = "ftp://x";
    assert_null(aws_client_new(srv.base, &s, err, sizeof err));
    assert_non_null(strstr(err, "AWS_ENDPOINT_URL"));
    s.endpoint_url = "http://a b";
    assert_null(aws_client_new(srv.base, &s, err, sizeof err));
}

static void test_free_ends_calls(void **state)
{
    (void)state;
    struct aws_client *c = client(ENV, 5000);
    struct reply r[] = {{0, NULL, NULL, true}};
    script(1, r);
    struct outcome o = {0}, o2 = {0};
    assert_int_equal(aws_call(c, "GetStage", NULL, on_done, &o), 0);
    assert_int_equal(aws_call(c, "GetStage", NULL, on_done, &o2), 0);
    while (srv.ivs_calls == 0)
        event_base_loop(srv.base, EVLOOP_ONCE);
    aws_client_free(c);         /* one call in flight, one waiting on the limiter */
    assert_int_equal(o.times, 1);
    assert_int_equal(o2.times, 1);
    assert_int_equal(o.error, AWS_ERR_TRANSPORT);
    assert_string_equal(o.message, "client closed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success_is_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_and_5xx_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_run_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_operation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_and_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_ends_calls, setup, teardown),
    };
    return cmocka_run_group_tests_name("aws_client", tests, NULL, NULL);
}
