/* dashboard.c — GET /dashboard: the live dashboard's page, script and
 * style sheet (web/dashboard), built into the binary (scripts/embed-files.sh)
 * and served as they are, under the headers web/dashboard/README.md names.
 * They need no API key: they hold no secret; the page asks the operator for
 * the key and sends it with its stream request. */
#include "routes/routes.h"

#include <string.h>

#include "http/request.h"
#include "util/embedded_file.h"

extern const struct embedded_file dashboard_files[];

/* The page allows only its own files and its stream (README.md there). */
#define DASHBOARD_CSP "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " \
                      "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* Content-Type by the name's ending; NULL for a file not served. */
static const char *file_type(const char *name)
{
    static const struct { const char *ending, *type; } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},   /* a module script needs a JavaScript type */
        {".css", "text/css; charset=utf-8"},
    };
    size_t len = strlen(name);
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        size_t elen = strlen(types[i].ending);
        if (len > elen && strcmp(name + len - elen, types[i].ending) == 0)
            return types[i].type;
    }
    return NULL;
}

static void serve(struct request *rq, const char *name)
{
    for (const struct embedded_file *f = dashboard_files; f->name; f++) {
        const char *type = file_type(f->name);
        if (type && strcmp(f->name, name) == 0) {
            request_add_header(rq, "Content-Security-Policy", DASHBOARD_CSP);
            request_add_header(rq, "X-Content-Type-Options", "nosniff");
            request_add_header(rq, "Cache-Control", "no-cache");
            respond_raw(rq, 200, type, (const char *)f->data, f->len);
            return;
        }
    }
    respond_error(rq, 404, "NOT_FOUND", "no such dashboard file", NULL);
}

void route_dashboard(struct request *rq)
{
    serve(rq, "index.html");
}

void route_dashboard_file(struct request *rq)
{
    serve(rq, rq->param);
}
