/* write_batch.c — see write_batch.h. Two lists, as in read_batch.c: the
 * calls in flight, and those that came after, who go in the next FCALL. */
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

struct queue {
    struct queued *items;
    size_t count, cap;
};

struct write_batch {
    struct redis *redis;
    int headc;
    const char *const *head;
    size_t max_calls;
    struct queue sent, next;
    bool in_flight;
    bool freed;                      /* write_batch_free ran; the reply frees */
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

/* Moves up to max_calls waiting calls to `sent` and sends them as one FCALL. */
static void send_next(struct write_batch *b)
{
    size_t n = b->next.count < b->max_calls ? b->next.count : b->max_calls;
    size_t argc = (size_t)b->headc;
    for (size_t i = 0; i < n; i++)
        argc += (size_t)b->next.items[i].argc;
    const char **argv = malloc(argc * sizeof *argv);
    struct queued *sent = realloc(b->sent.items, (n ? n : 1) * sizeof *sent);
    if (sent)
        b->sent.items = sent;
    if (!argv || !sent) {
        free(argv);
        for (size_t i = 0; i < b->next.count; i++) {
            b->next.items[i].fn(b->next.items[i].arg, NULL, "out of memory");
            free(b->next.items[i].args);
        }
        b->next.count = 0;
        return;
    }
    b->sent = (struct queue){.items = sent, .count = n, .cap = n};
    memcpy(sent, b->next.items, n * sizeof *sent);
    memmove(b->next.items, b->next.items + n, (b->next.count - n) * sizeof *sent);
    b->next.count -= n;
    size_t k = 0;
    for (int i = 0; i < b->headc; i++)
        argv[k++] = b->head[i];
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < sent[i].argc; a++)
            argv[k++] = sent[i].args[a];
    b->in_flight = true;
    redis_command(b->redis, answered, b, (int)argc, argv, NULL);
    free(argv);
}

static void answered(void *arg, redisReply *reply, const char *error)
{
    struct write_batch *b = arg;
    bool split = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == b->sent.count;
    for (size_t i = 0; i < b->sent.count; i++) {
        struct queued *q = &b->sent.items[i];
        q->fn(q->arg, split ? reply->element[i] : reply, error);
        free(q->args);
    }
    b->sent.count = 0;
    b->in_flight = false;
    if (b->freed) {
        free(b->sent.items);
        free(b->next.items);
        free(b);
    } else if (b->next.count) {
        send_next(b);
    }
}

void write_batch_add(struct write_batch *b, int argc, const char *const *args,
                     redis_reply_fn fn, void *arg)
{
    struct queue *w = &b->next;
    if (w->count == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        struct queued *items = realloc(w->items, cap * sizeof *items);
        if (!items) {
            fn(arg, NULL, "out of memory");
            return;
        }
        w->items = items;
        w->cap = cap;
    }
    char **copy = args_copy(argc, args);
    if (!copy) {
        fn(arg, NULL, "out of memory");
        return;
    }
    w->items[w->count++] = (struct queued){fn, arg, argc, copy};
    if (!b->in_flight)
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
    for (size_t i = 0; i < b->next.count; i++) {
        b->next.items[i].fn(b->next.items[i].arg, NULL, "shutting down");
        free(b->next.items[i].args);
    }
    b->next.count = 0;
    if (b->in_flight) {
        b->freed = true;
        return;
    }
    free(b->sent.items);
    free(b->next.items);
    free(b);
}
