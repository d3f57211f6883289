/* test_sigv4.c — src/aws/sigv4.c against every case folder of
 * ../shared/vectors/sigv4 (awslabs/aws-c-auth's signing test suite), read
 * at run time: for each folder the request (request.txt) and context
 * (context.json) are signed and the canonical request, string to sign,
 * signature and signed request are compared with the header-*.txt files.
 * A missing folder or one without cases fails; so does a case with a
 * missing file. Plus: a request without Host, or with a CR in a header
 * value, is refused. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "aws/sigv4.h"

#define VECTORS "../shared/vectors/sigv4"
#define MAX_HEADERS 16

static char *slurp(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", VECTORS, dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open %s\n", path);
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    return buf;
}

/* request.txt: "METHOD URI HTTP/1.1", headers "Name:value", blank, body. */
struct parsed {
    char *text;
    char *method, *path, *query, *request_line;
    struct sigv4_header headers[MAX_HEADERS];
    size_t nheaders;
    const char *body;
};

static void parse_request(char *text, struct parsed *p)
{
    memset(p, 0, sizeof *p);
    p->text = text;
    char *body = strstr(text, "\n\n");
    if (body)
        *body = '\0', body += 2;
    p->body = body ? body : "";
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    assert_non_null(line);
    p->request_line = strdup(line);
    p->method = strtok(line, " ");
    char *uri = strtok(NULL, " ");
    assert_non_null(uri);
    char *q = strchr(uri, '?');
    if (q)
        *q++ = '\0';
    p->path = uri, p->query = q;
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *colon = strchr(line, ':');
        assert_non_null(colon);
        assert_true(p->nheaders < MAX_HEADERS);
        *colon = '\0';
        p->headers[p->nheaders++] = (struct sigv4_header){line, colon + 1};
    }
}

static int64_t parse_time(const char *iso)
{
    struct tm tm = {0};
    assert_non_null(strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return (int64_t)timegm(&tm);
}

/* What the signed request file shows: the request line, its headers, the
 * added ones, a blank line, the body. */
static char *signed_request(const struct parsed *p, const struct sigv4_result *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    fprintf(m, "%s\n", p->request_line);
    for (size_t i = 0; i < p->nheaders; i++)
        fprintf(m, "%s:%s\n", p->headers[i].name, p->headers[i].value);
    for (size_t i = 0; i < r->nadded; i++)
        fprintf(m, "%s:%s\n", r->added[i].name, r->added[i].value);
    fprintf(m, "\n%s", p->body);
    fclose(m);
    return buf;
}

static void expect_file(const char *dir, const char *name, const char *got)
{
    char *want = slurp(dir, name);
    assert_non_null(want);
    if (strcmp(want, got) != 0)
        print_error("%s/%s:\nwant:\n%s\ngot:\n%s\n", dir, name, want, got);
    assert_string_equal(want, got);
    free(want);
}

static void check_case(const char *dir)
{
    char *ctx_text = slurp(dir, "context.json"), *req_text = slurp(dir, "request.txt");
    assert_non_null(ctx_text);
    assert_non_null(req_text);
    json_t *ctx = json_loads(ctx_text, 0, NULL);
    assert_non_null(ctx);
    json_t *cred = json_object_get(ctx, "credentials");
    struct sigv4_params prm = {
        .access_key_id = json_string_value(json_object_get(cred, "access_key_id")),
        .secret_access_key = json_string_value(json_object_get(cred, "secret_access_key")),
        .session_token = json_string_value(json_object_get(cred, "token")),
        .region = json_string_value(json_object_get(ctx, "region")),
        .service = json_string_value(json_object_get(ctx, "service")),
        .time_s = parse_time(json_string_value(json_object_get(ctx, "timestamp"))),
        .content_sha256 = json_is_true(json_object_get(ctx, "sign_body")),
    };
    struct parsed p;
    parse_request(req_text, &p);
    struct sigv4_request req = {p.method, p.path, p.query, p.headers, p.nheaders,
                                p.body, strlen(p.body)};
    struct sigv4_result r;
    char err[128];
    assert_int_equal(sigv4_sign(&req, &prm, &r, err, sizeof err), 0);
    expect_file(dir, "header-canonical-request.txt", r.canonical_request);
    expect_file(dir, "header-string-to-sign.txt", r.string_to_sign);
    expect_file(dir, "header-signature.txt", r.signature);
    char *sr = signed_request(&p, &r);
    expect_file(dir, "header-signed-request.txt", sr);
    free(sr);
    sigv4_result_free(&r);
    free(p.request_line);
    free(req_text), free(ctx_text);
    json_decref(ctx);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_case(const struct dirent *d)
{
    return d->d_name[0] != '.' && d->d_type == DT_DIR;
}

static void test_vectors(void **state)
{
    (void)state;
    struct dirent **list = NULL;
    int n = scandir(VECTORS, &list, is_case, by_name);
    if (n < 0)
        print_error("cannot read %s (run from the repository root)\n", VECTORS);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        print_message("sigv4 vector %s\n", list[i]->d_name);
        check_case(list[i]->d_name);
        free(list[i]);
    }
    free(list);
}

static void test_refusals(void **state)
{
    (void)state;
    struct sigv4_header no_host[] = {{"X-Thing", "1"}};
    struct sigv4_header cr[] = {{"Host", "a"}, {"X-Thing", "1\r\nEvil: 2"}};
    struct sigv4_header bad_name[] = {{"Host", "a"}, {"X Thing", "1"}};
    struct sigv4_params prm = {"AK", "SK", NULL, "us-east-1", "ivs", 0, false};
    struct sigv4_request reqs[] = {
        {"POST", "/X", NULL, no_host, 1, "", 0},
        {"POST", "/X", NULL, cr, 2, "", 0},
        {"POST", "/X", NULL, bad_name, 2, "", 0},
        {"POST", "X", NULL, cr, 1, "", 0},
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        struct sigv4_result r;
        char err[128] = "";
        assert_int_equal(sigv4_sign(&reqs[i], &prm, &r, err, sizeof err), -1);
        assert_true(err[0] != '\0');
        assert_null(r.authorization);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests_name("sigv4", tests, NULL, NULL);
}
