/* write_batch.c — see write_batch.h. Calls wait in `next`; a send moves up
 * to max_calls of them into a batch of their own, which its reply answers
 * and frees. Redis answers a connection's commands in order, and each
 * reply carries its batch, so batches in flight never mix. */
#include "store/write_batch.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct queued {
    redis_reply_fn fn;
    void *arg;
    int argc;
    char **args;                     /* argc strings in one allocation */
};

struct sent {
    struct write_batch *b;
    size_t count;
    struct queued items[];
};

struct write_batch {
    struct redis *redis;
    int headc;
    const char *const *head;
    size_t max_calls;
    struct {
        struct queued *items;
        size_t count, cap;
    } next;
    unsigned in_flight;              /* batches sent, not yet answered */
    bool freed;                      /* write_batch_free ran; the last reply frees */
};

static void answered(void *arg, redisReply *reply, const char *error);

/* One call's arguments, copied into one block: the pointers, then the text. */
static char **args_copy(int argc, const char *const *args)
{
    size_t len = (size_t)argc * sizeof(char *);
    for (int i = 0; i < argc; i++)
        len += strlen(args[i]) + 1;
    char **out = malloc(len);
    if (!out)
        return NULL;
    char *text = (char *)(out + argc);
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(args[i]) + 1;
        out[i] = memcpy(text, args[i], n);
        text += n;
    }
    return out;
}

/* Answers the waiting calls with NULL and why; they are gone after. */
static void fail_waiting(struct write_batch *b, const char *why)
{
    for (size_t i = 0; i < b->next.count; i++) {
        b->next.items[i].fn(b->next.items[i].arg, NULL, why);
        free(b->next.items[i].args);
    }
    b->next.count = 0;
}

/* Moves up to max_calls waiting calls into a batch and sends it as one FCALL. */
static void send_next(struct write_batch *b)
{
    size_t n = b->next.count < b->max_calls ? b->next.count : b->max_calls;
    size_t argc = (size_t)b->headc;
    for (size_t i = 0; i < n; i++)
        argc += (size_t)b->next.items[i].argc;
    const char **argv = malloc(argc * sizeof *argv);
    struct sent *s = malloc(sizeof *s + n * sizeof s->items[0]);
    if (!argv || !s) {
        free(argv);
        free(s);
        fail_waiting(b, "out of memory");
        return;
    }
    s->b = b;
    s->count = n;
    memcpy(s->items, b->next.items, n * sizeof s->items[0]);
    memmove(b->next.items, b->next.items + n, (b->next.count - n) * sizeof s->items[0]);
    b->next.count -= n;
    size_t k = 0;
    for (int i = 0; i < b->headc; i++)
        argv[k++] = b->head[i];
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < s->items[i].argc; a++)
            argv[k++] = s->items[i].args[a];
    b->in_flight++;
    redis_command(b->redis, answered, s, (int)argc, argv, NULL);
    free(argv);
}

static void answered(void *arg, redisReply *reply, const char *error)
{
    struct sent *s = arg;
    struct write_batch *b = s->b;
    bool split = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == s->count;
    for (size_t i = 0; i < s->count; i++) {
        s->items[i].fn(s->items[i].arg, split ? reply->element[i] : reply, error);
        free(s->items[i].args);
    }
    free(s);
    b->in_flight--;
    if (b->freed) {
        if (!b->in_flight) {
            free(b->next.items);
            free(b);
        }
    } else if (b->next.count && b->in_flight < WRITE_BATCH_IN_FLIGHT) {
        send_next(b);
    }
}

void write_batch_add(struct write_batch *b, int argc, const char *const *args,
                     redis_reply_fn fn, void *arg)
{
    if (b->next.count == b->next.cap) {
        size_t cap = b->next.cap ? 2 * b->next.cap : 64;
        struct queued *items = realloc(b->next.items, cap * sizeof *items);
        if (!items) {
            fn(arg, NULL, "out of memory");
            return;
        }
        b->next.items = items;
        b->next.cap = cap;
    }
    char **copy = args_copy(argc, args);
    if (!copy) {
        fn(arg, NULL, "out of memory");
        return;
    }
    b->next.items[b->next.count++] = (struct queued){fn, arg, argc, copy};
    if (b->in_flight < WRITE_BATCH_IN_FLIGHT)
        send_next(b);
}

struct write_batch *write_batch_new(struct redis *redis, int headc, const char *const *head,
                                    size_t max_calls)
{
    struct write_batch *b = calloc(1, sizeof *b);
    if (b)
        *b = (struct write_batch){.redis = redis, .headc = headc, .head = head,
                                  .max_calls = max_calls ? max_calls : 1};
    return b;
}

void write_batch_free(struct write_batch *b)
{
    if (!b)
        return;
    fail_waiting(b, "shutting down");
    if (b->in_flight) {
        b->freed = true;
        return;
    }
    free(b->next.items);
    free(b);
}
