/* sigv4.c — AWS Signature Version 4 (see sigv4.h).
 *
 * Four steps, each a function below: the canonical request (method, path,
 * sorted query, sorted lower-case headers, signed header list, payload
 * hash), the string to sign (algorithm, time, scope, hash of the canonical
 * request), the signing key (HMAC-SHA256 chain over date, region, service,
 * "aws4_request") and the Authorization value. Nothing here does I/O or
 * reads the clock, so the test vectors can drive it directly. */
#include "aws/sigv4.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "util/text.h"

static void hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, n, md);
    hex(md, sizeof md, out);
}

/* SigV4's URI encoding: every byte but A-Z a-z 0-9 - _ . ~ (and '/' in
 * paths) becomes %XX with upper-case hex. */
static void uri_encode(struct text *b, const char *s, size_t n, bool keep_slash)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
            (keep_slash && c == '/')) {
            text_add(b, (const char *)&c, 1);
        } else {
            char pct[4];
            snprintf(pct, sizeof pct, "%%%02X", c);
            text_add(b, pct, 3);
        }
    }
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* Decodes %XX in place over n bytes; returns the new length. */
static size_t pct_decode(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n &&
            (h = hexval((unsigned char)s[i + 1])) >= 0 &&
            (l = hexval((unsigned char)s[i + 2])) >= 0) {
            s[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

struct pair {
    char *key, *value;  /* query: encoded; headers: lower-case name, trimmed value */
    size_t order;       /* input position, so equal names keep their order */
};

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c == 0)
        c = strcmp(x->value, y->value);
    return c;
}

static void pairs_free(struct pair *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i].key), free(p[i].value);
    free(p);
}

/* One query parameter "k=v" (or "k") of n bytes, re-encoded. */
static int query_param(const char *s, size_t n, struct pair *out)
{
    const char *eq = memchr(s, '=', n);
    size_t kn = eq ? (size_t)(eq - s) : n;
    char *raw = strndup(s, n);
    if (!raw)
        return -1;
    size_t kd = pct_decode(raw, kn);
    size_t vd = eq ? pct_decode(raw + kn + 1, n - kn - 1) : 0;
    struct text k = {0}, v = {0};
    uri_encode(&k, raw, kd, false);
    uri_encode(&v, raw + kn + (eq ? 1 : 0), vd, false);
    free(raw);
    out->key = text_take(&k);
    out->value = text_take(&v);
    return out->key && out->value ? 0 : -1;
}

/* Appends the canonical query: parameters encoded, sorted by name then value. */
static int canonical_query(struct text *b, const char *q)
{
    size_t n = 0, cap = 1;
    for (const char *p = q; p && *p; p++)
        cap += *p == '&';
    struct pair *ps = calloc(cap, sizeof *ps);
    if (!ps)
        return -1;
    for (const char *p = q; p && *p;) {
        size_t len = strcspn(p, "&");
        if (len > 0 && query_param(p, len, &ps[n++]) < 0) {
            pairs_free(ps, n);
            return -1;
        }
        p += len + (p[len] == '&');
    }
    qsort(ps, n, sizeof *ps, pair_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i)
            text_str(b, "&");
        text_str(b, ps[i].key), text_str(b, "="), text_str(b, ps[i].value);
    }
    pairs_free(ps, n);
    return 0;
}

/* Lower-cased name; value trimmed with inner runs of spaces made one. */
static int header_pair(const struct sigv4_header *h, size_t order, struct pair *out)
{
    out->order = order;
    out->key = strdup(h->name);
    out->value = malloc(strlen(h->value) + 1);
    if (!out->key || !out->value)
        return -1;
    for (char *c = out->key; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    const char *v = h->value;
    char *o = out->value;
    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v; v++) {
        bool space = *v == ' ' || *v == '\t';
        if (!space || (v[1] && v[1] != ' ' && v[1] != '\t'))
            *o++ = space ? ' ' : *v;
    }
    *o = '\0';
    return 0;
}

static int header_order_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* Appends "name:v1,v2\n" per distinct header, a blank line, then the
 * signed header list to both b and signed_list. */
static int canonical_headers(struct text *b, struct text *signed_list,
                             const struct sigv4_header *hs, size_t n)
{
    struct pair *ps = calloc(n ? n : 1, sizeof *ps);
    if (!ps)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (header_pair(&hs[i], i, &ps[i]) < 0) {
            pairs_free(ps, i + 1);
            return -1;
        }
    qsort(ps, n, sizeof *ps, header_order_cmp);
    for (size_t i = 0; i < n; i++) {
        bool same = i > 0 && strcmp(ps[i].key, ps[i - 1].key) == 0;
        if (same) {
            text_str(b, ","), text_str(b, ps[i].value);
            continue;
        }
        if (i > 0)
            text_str(b, "\n"), text_str(signed_list, ";");
        text_str(b, ps[i].key), text_str(b, ":"), text_str(b, ps[i].value);
        text_str(signed_list, ps[i].key);
    }
    text_str(b, "\n\n");
    text_str(b, signed_list->s ? signed_list->s : "");
    pairs_free(ps, n);
    return 0;
}

/* HTTP's token characters (RFC 9110 §5.6.2), the only ones a name may hold. */
static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

static const char *check_request(const struct sigv4_request *req)
{
    bool host = false;
    if (!req->method || !is_token(req->method))
        return "bad method";
    if (!req->path || req->path[0] != '/')
        return "the path must start with '/'";
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!req->headers[i].name || !is_token(req->headers[i].name) ||
            !req->headers[i].value || strpbrk(req->headers[i].value, "\r\n"))
            return "bad header name or value";
        host |= strcasecmp(req->headers[i].name, "host") == 0;
    }
    return host ? NULL : "no Host header";
}

/* The headers the signer adds, in the order the signed request shows them. */
static void add_headers(const struct sigv4_params *p, struct sigv4_result *r)
{
    size_t n = 0;
    if (p->session_token && *p->session_token)
        r->added[n++] = (struct sigv4_header){"X-Amz-Security-Token", p->session_token};
    r->added[n++] = (struct sigv4_header){"X-Amz-Date", r->amz_date};
    if (p->content_sha256)
        r->added[n++] = (struct sigv4_header){"x-amz-content-sha256", r->payload_hash};
    r->nadded = n;
}

static char *canonical_request(const struct sigv4_request *req,
                               const struct sigv4_result *r, char **signed_headers)
{
    size_t n = req->nheaders + r->nadded;
    struct sigv4_header *all = malloc(n * sizeof *all);
    struct text b = {0}, list = {0};
    if (!all)
        return NULL;
    memcpy(all, req->headers, req->nheaders * sizeof *all);
    memcpy(all + req->nheaders, r->added, r->nadded * sizeof *all);
    text_str(&b, req->method), text_str(&b, "\n");
    uri_encode(&b, req->path, strlen(req->path), true);
    text_str(&b, "\n");
    int rc = canonical_query(&b, req->query);
    text_str(&b, "\n");
    if (rc == 0)
        rc = canonical_headers(&b, &list, all, n);
    free(all);
    text_str(&b, "\n"), text_str(&b, r->payload_hash);
    *signed_headers = text_take(&list);
    char *out = text_take(&b);
    if (rc < 0 || !*signed_headers) {
        free(out), free(*signed_headers);
        *signed_headers = NULL;
        return NULL;
    }
    return out;
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len);
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
 * "aws4_request"); the signature is HMAC(kSigning, string to sign). */
static void signature(const struct sigv4_params *p, const char *date,
                      const char *string_to_sign, char out[65])
{
    unsigned char k[32], sig[32];
    size_t slen = strlen(p->secret_access_key);
    char *secret = malloc(slen + 5);
    if (!secret) {
        out[0] = '\0';
        return;
    }
    memcpy(secret, "AWS4", 4);
    memcpy(secret + 4, p->secret_access_key, slen + 1);
    hmac(secret, slen + 4, date, k);
    OPENSSL_cleanse(secret, slen + 4);
    free(secret);
    hmac(k, 32, p->region, k);
    hmac(k, 32, p->service, k);
    hmac(k, 32, "aws4_request", k);
    hmac(k, 32, string_to_sign, sig);
    OPENSSL_cleanse(k, sizeof k);
    hex(sig, 32, out);
}

static int fail(struct sigv4_result *r, char *err, size_t errlen, const char *why)
{
    sigv4_result_free(r);
    snprintf(err, errlen, "%s", why);
    return -1;
}

static char *string_to_sign(const struct sigv4_result *r, const char *scope)
{
    char hash[65];
    sha256_hex(r->canonical_request, strlen(r->canonical_request), hash);
    struct text b = {0};
    text_str(&b, "AWS4-HMAC-SHA256\n"), text_str(&b, r->amz_date), text_str(&b, "\n");
    text_str(&b, scope), text_str(&b, "\n"), text_str(&b, hash);
    return text_take(&b);
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_params *p,
               struct sigv4_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *bad = check_request(req);
    if (bad)
        return fail(out, err, errlen, bad);
    if (!p->access_key_id || !p->secret_access_key || !p->region || !p->service)
        return fail(out, err, errlen, "missing credentials, region or service");
    time_t t = (time_t)p->time_s;
    struct tm tm;
    if (!gmtime_r(&t, &tm) ||
        strftime(out->amz_date, sizeof out->amz_date, "%Y%m%dT%H%M%SZ", &tm) != 16)
        return fail(out, err, errlen, "bad time");
    sha256_hex(req->body ? req->body : "", req->body ? req->body_len : 0, out->payload_hash);
    add_headers(p, out);
    char *signed_headers = NULL, scope[256], date[9];
    memcpy(date, out->amz_date, 8), date[8] = '\0';
    snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date, p->region, p->service);
    out->canonical_request = canonical_request(req, out, &signed_headers);
    if (!out->canonical_request)
        return fail(out, err, errlen, "out of memory");
    out->string_to_sign = string_to_sign(out, scope);
    if (!out->string_to_sign) {
        free(signed_headers);
        return fail(out, err, errlen, "out of memory");
    }
    signature(p, date, out->string_to_sign, out->signature);
    if (asprintf(&out->authorization,
                 "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                 p->access_key_id, scope, signed_headers, out->signature) < 0)
        out->authorization = NULL;
    free(signed_headers);
    if (!out->authorization || !out->signature[0])
        return fail(out, err, errlen, "out of memory");
    out->added[out->nadded++] = (struct sigv4_header){"Authorization", out->authorization};
    return 0;
}

void sigv4_result_free(struct sigv4_result *r)
{
    free(r->canonical_request);
    free(r->string_to_sign);
    free(r->authorization);
    memset(r, 0, sizeof *r);
}
