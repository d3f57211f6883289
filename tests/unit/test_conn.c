/* test_conn.c — unit tests for the streams and takeovers of
 * src/http/conn.c, over real loopback sockets: a listener on the test's
 * event loop, a client in a thread with blocking sockets.
 *   - a stream: the head has no Content-Length, events arrive as written,
 *     and when the client leaves on_close runs exactly once;
 *   - a client that never reads: http_conn_stream_write() refuses once
 *     HTTP_STREAM_MAX_QUEUED bytes wait (after the socket buffers fill),
 *     and http_conn_stream_end() then closes without calling on_close;
 *   - a takeover: the socket and the bytes sent after the head are handed
 *     over, and what the taker writes reaches the client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/event.h>

#include "http/conn.h"
#include "http/request.h"

struct ctx {
    struct event_base *base;
    struct event *tick;
    struct http_conn *stream;
    int port;
    int closes;                     /* on_close calls */
    int events;                     /* stream events written */
    volatile int refused;           /* ticks whose writes were refused (queue full) */
    size_t queued;                  /* bytes accepted by stream_write */
    char rest[HTTP_TAKEOVER_MAX];
    size_t rest_len;
    const char *client_send;        /* what the client thread sends */
    size_t client_read_max;         /* 0 = never read */
    char got[8192];                 /* what it read until EOF or max */
    size_t got_len;
    volatile int client_done;
};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void *client(void *arg)
{
    struct ctx *x = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)x->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        send(fd, x->client_send, strlen(x->client_send), 0) > 0) {
        while (x->client_read_max == 0 && x->refused < 50)
            usleep(10000);
        while (x->got_len < x->client_read_max) {
            ssize_t n = recv(fd, x->got + x->got_len, x->client_read_max - x->got_len, 0);
            if (n <= 0)
                break;
            x->got_len += (size_t)n;
        }
    }
    close(fd);
    x->client_done = 1;
    return NULL;
}

static void on_close(void *arg)
{
    struct ctx *x = arg;
    x->closes++;
    x->stream = NULL;
}

/* Every 20 ms: one more event while the stream lasts; stop once the client
 * is done and the stream has ended. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct ctx *x = arg;
    if (x->stream && x->client_read_max) {
        char line[32];
        int n = snprintf(line, sizeof line, "data: %d\n\n", ++x->events);
        http_conn_stream_write(x->stream, line, (size_t)n);
    } else if (x->stream) {
        static char chunk[4096];
        while (http_conn_stream_write(x->stream, chunk, sizeof chunk) == 0)
            x->queued += sizeof chunk;
        x->refused++;
        if (x->refused == 50) {     /* 1 s of refusals: give up on this reader */
            http_conn_stream_end(x->stream);
            x->stream = NULL;
        }
    }
    if (x->client_done && !x->stream)
        event_base_loopexit(x->base, NULL);
}

static void dispatch_stream(void *arg, struct request *rq)
{
    struct ctx *x = arg;
    x->stream = http_conn_stream_begin(rq->conn, 200, "text/event-stream", on_close, x);
    assert_non_null(x->stream);
}

static void dispatch_takeover(void *arg, struct request *rq)
{
    struct ctx *x = arg;
    evutil_socket_t fd = http_conn_takeover(rq->conn, x->rest, &x->rest_len);
    assert_true(fd >= 0);
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
    assert_int_equal(send(fd, head, sizeof head - 1, 0), (ssize_t)(sizeof head - 1));
    assert_int_equal(send(fd, x->rest, x->rest_len, 0), (ssize_t)x->rest_len);
    evutil_closesocket(fd);
}

/* Runs a listener with dispatch and the client thread until both are done. */
static void run(struct ctx *x, http_dispatch_fn dispatch)
{
    x->base = event_base_new();
    x->port = free_port();
    struct http_limits limits = {.max_body_bytes = 16384, .read_timeout_ms = 5000,
                                 .idle_timeout_ms = 5000};
    char err[128];
    struct http_listener *l = http_listener_new(x->base, "127.0.0.1", x->port, &limits,
                                                dispatch, x, err, sizeof err);
    assert_non_null(l);
    x->tick = event_new(x->base, -1, EV_PERSIST, on_tick, x);
    struct timeval every = {0, 20000}, limit = {10, 0};
    event_add(x->tick, &every);
    event_base_loopexit(x->base, &limit);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client, x), 0);
    event_base_dispatch(x->base);
    pthread_join(t, NULL);
    assert_true(x->client_done);
    event_free(x->tick);
    http_listener_free(l);
    event_base_free(x->base);
}

static void test_stream(void **state)
{
    (void)state;
    static struct ctx x = {.client_send = "GET /events HTTP/1.1\r\nHost: t\r\n\r\n",
                           .client_read_max = 300};
    run(&x, dispatch_stream);
    x.got[x.got_len] = '\0';
    assert_non_null(strstr(x.got, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(x.got, "Content-Type: text/event-stream\r\n"));
    assert_non_null(strstr(x.got, "Connection: close\r\n"));
    assert_null(strstr(x.got, "Content-Length"));
    assert_non_null(strstr(x.got, "\r\n\r\ndata: 1\n\ndata: 2\n\n"));
    assert_int_equal(x.closes, 1);
}

static void test_stream_slow_reader(void **state)
{
    (void)state;
    static struct ctx x = {.client_send = "GET /events HTTP/1.1\r\nHost: t\r\n\r\n",
                           .client_read_max = 0};
    run(&x, dispatch_stream);
    assert_true(x.refused >= 50);
    /* What was accepted: the socket buffers plus at most the queue's cap. */
    assert_true(x.queued < 16 * 1024 * 1024);
    assert_int_equal(x.closes, 0);
}

static void test_takeover(void **state)
{
    (void)state;
    static struct ctx x = {.client_send = "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                                          "Upgrade: websocket\r\n\r\nHELLO",
                           .client_read_max = 100};
    run(&x, dispatch_takeover);
    x.got[x.got_len] = '\0';
    assert_string_equal(x.got, "HTTP/1.1 101 Switching Protocols\r\n\r\nHELLO");
    assert_int_equal(x.rest_len, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_stream_slow_reader),
        cmocka_unit_test(test_takeover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
