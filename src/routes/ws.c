/* ws.c — /ws, the old service's WebSocket, fed by the live feed
 * (live/live.h). Framing, masking, ping/pong and the close handshake are
 * Debian's libwslay (RFC 6455); this file does the opening handshake, the
 * socket I/O on the loop, and the messages:
 *
 *   client: {"type":"subscribe","channel":"<name>"}
 *   usher:  {"type":"subscribed","channel":"<name>"}
 *   usher:  {"type":"stats_update","data":{"viewerCount":n,"activeStages":n,"timestamp":"..."}}
 *           at once, and whenever one of the two counts changes
 *   client: {"type":"ping"}    usher: {"type":"pong"}
 *
 * Any other text is answered {"type":"error","message":...} and changes
 * nothing; a binary message, a frame that breaks the protocol, or a message
 * over WS_MAX_MESSAGE closes the connection (1003, 1002, 1009). A client
 * that falls more than WS_MAX_QUEUED bytes behind is dropped. */
#include "routes/routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <wslay/wslay.h>

#include "app.h"
#include "http/conn.h"
#include "http/request.h"
#include "http/server.h"
#include "live/live.h"
#include "util/clock.h"
#include "util/list.h"
#include "util/log.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"   /* RFC 6455 §1.3 */
#define WS_MAX_MESSAGE 4096
#define WS_MAX_QUEUED (64 * 1024)
#define WS_CHANNEL_MAX 64

struct ws_client {
    struct app *app;
    evutil_socket_t fd;
    struct event *rev, *wev;
    wslay_event_context_ptr ctx;
    struct live_sub *sub;
    char head[256];                  /* the 101 answer, until sent */
    size_t head_len, head_sent;
    char rest[HTTP_TAKEOVER_MAX];    /* bytes read with the request head */
    size_t rest_len, rest_off;
    char channel[WS_CHANNEL_MAX + 1];/* "" until subscribed */
    bool have_counts, sent_counts;
    long long viewers, stages;       /* the latest counts */
    long long sent_viewers, sent_stages;
    bool in_recv;                    /* inside wslay_event_recv: only queue */
    bool doomed;                     /* to be dropped once out of it */
};

/* ---- life ------------------------------------------------------------ */

static void ws_free(struct ws_client *c)
{
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    if (c->ctx)
        wslay_event_context_free(c->ctx);
    if (c->fd >= 0)
        evutil_closesocket(c->fd);
    free(c);
}

/* Ends the connection (its subscription too). */
static void ws_close(struct ws_client *c)
{
    if (c->sub)
        live_unsubscribe(c->sub);
    ws_free(c);
}

/* Sends what can be sent and arms the events for what is left. 0, or -1
 * when the connection is over (c freed). Inside wslay_event_recv it does
 * nothing: on_readable pumps after. */
static int ws_pump(struct ws_client *c)
{
    if (c->in_recv)
        return 0;
    if (c->doomed) {
        ws_close(c);
        return -1;
    }
    while (c->head_sent < c->head_len) {
        ssize_t n = send(c->fd, c->head + c->head_sent, c->head_len - c->head_sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->head_sent += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(c->wev, NULL);
            return 0;
        } else if (!(n < 0 && errno == EINTR)) {
            ws_close(c);
            return -1;
        }
    }
    if (wslay_event_send(c->ctx) != 0) {
        ws_close(c);
        return -1;
    }
    if (!wslay_event_want_read(c->ctx) && !wslay_event_want_write(c->ctx)) {
        ws_close(c);                 /* the close handshake is done */
        return -1;
    }
    if (wslay_event_want_write(c->ctx))
        event_add(c->wev, NULL);
    else
        event_del(c->wev);
    if (!wslay_event_want_read(c->ctx))
        event_del(c->rev);
    return 0;
}

/* Queues a message; a client too far behind is dropped. 0, or -1 when the
 * connection is over (c freed). */
static int ws_queue(struct ws_client *c, uint8_t opcode, const char *text, size_t len)
{
    struct wslay_event_msg msg = {opcode, (const uint8_t *)text, len};
    if (c->doomed)
        return ws_pump(c);
    if (wslay_event_get_queued_msg_length(c->ctx) + len > WS_MAX_QUEUED) {
        log_info("/ws: a client more than %d bytes behind is dropped", WS_MAX_QUEUED);
        c->doomed = true;
    } else if (wslay_event_queue_msg(c->ctx, &msg) != 0) {
        c->doomed = true;
    }
    return ws_pump(c);
}

static int ws_send_json(struct ws_client *c, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return 0;
    int rc = ws_queue(c, WSLAY_TEXT_FRAME, text, strlen(text));
    free(text);
    return rc;
}

/* ---- the feed ------------------------------------------------------------ */

/* stats_update when subscribed and the counts differ from the last sent. */
static void ws_update(struct ws_client *c)
{
    if (!c->channel[0] || !c->have_counts ||
        (c->sent_counts && c->viewers == c->sent_viewers && c->stages == c->sent_stages))
        return;
    c->sent_counts = true;
    c->sent_viewers = c->viewers;
    c->sent_stages = c->stages;
    char now[32];
    clock_iso8601(clock_now_ms(), now, sizeof now);
    ws_send_json(c, json_pack("{s:s, s:{s:I, s:I, s:s}}", "type", "stats_update", "data",
                              "viewerCount", (json_int_t)c->viewers,
                              "activeStages", (json_int_t)c->stages, "timestamp", now));
}

static void ws_stats(void *arg, const struct live_stats *stats)
{
    struct ws_client *c = arg;
    c->have_counts = true;
    c->viewers = stats->viewers;
    c->stages = stats->stages;
    ws_update(c);
}

static void ws_ping(void *arg)
{
    ws_queue(arg, WSLAY_PING, "", 0);
}

/* usher stopping: a close frame (1001 going away) if the socket takes it
 * now, then the connection ends. The feed has let go of the subscription. */
static void ws_ended(void *arg)
{
    struct ws_client *c = arg;
    if (c->head_sent == c->head_len &&
        wslay_event_queue_close(c->ctx, WSLAY_CODE_GOING_AWAY, NULL, 0) == 0)
        wslay_event_send(c->ctx);
    ws_free(c);
}

/* The old protocol has no stage events. */
static const struct live_sub_ops ws_ops = {ws_stats, NULL, ws_ping, ws_ended};

/* ---- messages from the client ------------------------------------------------ */

static void ws_error(struct ws_client *c, const char *message)
{
    ws_send_json(c, json_pack("{s:s, s:s}", "type", "error", "message", message));
}

static void ws_subscribe(struct ws_client *c, json_t *msg)
{
    json_t *channel = json_object_get(msg, "channel");
    size_t len = json_string_length(channel);
    if (!json_is_string(channel) || len == 0 || len > WS_CHANNEL_MAX ||
        strlen(json_string_value(channel)) != len) {
        ws_error(c, "channel must be a string of 1 to 64 characters");
        return;
    }
    memcpy(c->channel, json_string_value(channel), len + 1);
    c->sent_counts = false;
    if (ws_send_json(c, json_pack("{s:s, s:s}", "type", "subscribed", "channel", c->channel)) == 0)
        ws_update(c);
}

static void ws_message(struct ws_client *c, const char *text, size_t len)
{
    json_error_t err;
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (!json_is_object(msg) || !type)
        ws_error(c, "a message must be a JSON object with a string \"type\"");
    else if (strcmp(type, "subscribe") == 0)
        ws_subscribe(c, msg);
    else if (strcmp(type, "ping") == 0)
        ws_send_json(c, json_pack("{s:s}", "type", "pong"));
    else
        ws_error(c, "unknown message type (subscribe, ping)");
    json_decref(msg);
}

/* wslay: one whole message. Control frames are wslay's own business. */
static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    struct ws_client *c = user;
    if (arg->opcode == WSLAY_TEXT_FRAME)
        ws_message(c, (const char *)arg->msg, arg->msg_length);
    else if (arg->opcode == WSLAY_BINARY_FRAME)
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, (const uint8_t *)"text only", 9);
}

/* ---- socket I/O for wslay --------------------------------------------------- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    struct ws_client *c = user;
    if (c->rest_off < c->rest_len) {
        size_t n = c->rest_len - c->rest_off < len ? c->rest_len - c->rest_off : len;
        memcpy(buf, c->rest + c->rest_off, n);
        c->rest_off += n;
        return (ssize_t)n;
    }
    ssize_t n;
    do
        n = recv(c->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return n;
    wslay_event_set_error(ctx, n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
                                   ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)flags;
    struct ws_client *c = user;
    ssize_t n;
    do
        n = send(c->fd, data, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK
                                       ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
    return n;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct ws_client *c = arg;
    c->in_recv = true;
    int rc = wslay_event_recv(c->ctx);
    c->in_recv = false;
    if (rc != 0) {
        ws_close(c);                 /* a broken frame or the peer gone */
        return;
    }
    ws_pump(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    ws_pump(arg);
}

/* ---- the opening handshake (RFC 6455 §4.2) ---------------------------------- */

static const char *token_is(const char *item, size_t len, void *token)
{
    return len == strlen(token) && strncasecmp(item, token, len) == 0 ? "found" : NULL;
}

/* True when the comma list `list` (NULL: none) holds `token`, case-insensitive. */
static bool has_token(const char *list, const char *token)
{
    return list_each(list, token_is, (void *)token) != NULL;
}

/* Sec-WebSocket-Accept for key (a base64 16-byte nonce); false when the
 * key is not one. out needs 29 bytes. */
static bool accept_value(const char *key, char *out)
{
    unsigned char nonce[18], digest[SHA_DIGEST_LENGTH];
    if (!key || strlen(key) != 24 || EVP_DecodeBlock(nonce, (const unsigned char *)key, 24) != 18 ||
        key[21] == '=' || key[22] != '=' || key[23] != '=')
        return false;
    char joined[24 + sizeof WS_GUID];
    snprintf(joined, sizeof joined, "%s%s", key, WS_GUID);
    SHA1((const unsigned char *)joined, strlen(joined), digest);
    EVP_EncodeBlock((unsigned char *)out, digest, sizeof digest);
    return true;
}

/* Checks the upgrade request; false when answered with an error. */
static bool ws_handshake_ok(struct request *rq, char *accept)
{
    const char *version = request_header(rq, "Sec-WebSocket-Version");
    if (!has_token(request_header(rq, "Upgrade"), "websocket") ||
        !has_token(request_header(rq, "Connection"), "upgrade")) {
        request_add_header(rq, "Upgrade", "websocket");
        respond_error(rq, 426, "UPGRADE_REQUIRED", "/ws is a WebSocket: send Upgrade: websocket", NULL);
        return false;
    }
    if (!version || strcmp(version, "13") != 0) {
        request_add_header(rq, "Sec-WebSocket-Version", "13");
        respond_error(rq, 426, "UPGRADE_REQUIRED", "only WebSocket version 13 is spoken", NULL);
        return false;
    }
    if (!accept_value(request_header(rq, "Sec-WebSocket-Key"), accept)) {
        respond_invalid(rq, "Sec-WebSocket-Key must be a base64 16-byte nonce",
                        json_pack("[s]", "Sec-WebSocket-Key"));
        return false;
    }
    if (!store_ready(rq->app->store)) {
        respond_unavailable(rq, store_last_error(rq->app->store));
        return false;
    }
    return true;
}

static struct ws_client *ws_client_new(struct app *app, evutil_socket_t fd, const char *accept)
{
    static const struct wslay_event_callbacks callbacks = {
        .recv_callback = on_recv, .send_callback = on_send, .on_msg_recv_callback = on_msg};
    struct ws_client *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return NULL;
    }
    c->app = app;
    c->fd = fd;
    c->head_len = (size_t)snprintf(c->head, sizeof c->head,
                                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
    c->rev = event_new(app->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(app->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    if (!c->rev || !c->wev || wslay_event_context_server_init(&c->ctx, &callbacks, c) != 0 ||
        !(c->sub = live_subscribe(app->live, &ws_ops, c, NULL))) {
        ws_free(c);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(c->ctx, WS_MAX_MESSAGE);
    return c;
}

void route_ws(struct request *rq)
{
    char accept[32];
    if (!ws_handshake_ok(rq, accept))
        return;
    struct app *app = rq->app;
    char *rest = malloc(HTTP_TAKEOVER_MAX);         /* the bytes after the head */
    if (!rest) {
        respond_error(rq, 500, "INTERNAL_ERROR", "out of memory", NULL);
        return;
    }
    size_t rest_len = 0;
    evutil_socket_t fd = http_takeover(rq, rest, &rest_len);
    struct ws_client *c = fd >= 0 ? ws_client_new(app, fd, accept) : NULL;
    if (c) {
        memcpy(c->rest, rest, rest_len);
        c->rest_len = rest_len;
        event_add(c->rev, NULL);
        if (ws_pump(c) == 0 && rest_len)
            event_active(c->rev, EV_READ, 0);
    }
    free(rest);
}
