/* signer.c — a small thread pool that signs tokens off the event loop.
 *
 * The loop thread queues a job (signing input + callback) on the todo
 * list and returns at once. A worker takes it, computes the ES384
 * signature, builds the finished token with jwt_finish() and moves the job
 * to the done list; if that list was empty it also pokes an eventfd that
 * the loop watches. The loop's event callback then drains the done list
 * and calls each job's callback, so callers only ever see results on the
 * loop thread and need no locking of their own.
 *
 * One mutex guards both lists; it is held only to link or unlink jobs,
 * never while signing. Idle workers compute ECDSA nonces ahead
 * (presign.h), so a burst of joins costs little CPU when it comes. */
#include "tokens/signer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tokens/jwt.h"
#include "tokens/presign.h"
#include "util/log.h"

struct job {
    struct job *next;
    char *input;                /* signing input, owned */
    char *token;                /* result, owned until delivered */
    const char *error;          /* static string when token is NULL */
    signer_done_fn done;
    void *arg;
};

struct job_list {
    struct job *head, *tail;
    size_t n;
};

struct signer {
    struct presign *presign;
    bool pool_full;             /* no point computing nonces ahead now */
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    struct job_list todo, done;
    bool stopping;
    int wake_fd;                /* eventfd: done list became non-empty */
    struct event *wake_event;
    int nthreads;
    pthread_t *threads;
};

static void list_push(struct job_list *list, struct job *job)
{
    job->next = NULL;
    list->n++;
    if (list->tail)
        list->tail->next = job;
    else
        list->head = job;
    list->tail = job;
}

static struct job *list_pop(struct job_list *list)
{
    struct job *job = list->head;
    if (job) {
        list->n--;
        list->head = job->next;
        if (!list->head)
            list->tail = NULL;
    }
    return job;
}

/* Detaches and returns the whole list. */
static struct job *list_take(struct job_list *list)
{
    struct job *head = list->head;
    list->head = list->tail = NULL;
    list->n = 0;
    return head;
}

static void deliver(struct job *job)
{
    job->done(job->arg, job->token, job->token ? NULL : job->error);
    free(job->input);
    free(job);
}

static char *sign_token(struct presign *presign, const char *input)
{
    unsigned char raw[JWT_ES384_SIG_LEN];
    return presign_sign(presign, input, raw) == 0 ? jwt_finish(input, raw) : NULL;
}

/* Appends a finished job to the done list; called with the lock held. */
static void finish_job(struct signer *s, struct job *job)
{
    bool was_empty = s->done.head == NULL;
    list_push(&s->done, job);
    /* One wake-up per batch: while the list is non-empty the loop has a
     * pending wake-up that will also collect this job. */
    if (was_empty) {
        uint64_t one = 1;
        if (write(s->wake_fd, &one, sizeof one) != sizeof one)
            log_error("signer: cannot wake the event loop: %s", strerror(errno));
    }
}

/* Jobs first; with none waiting, a worker computes nonces ahead until the
 * pool is full, and only then sleeps. A job arriving meanwhile waits for at
 * most one nonce computation (about a millisecond). */
static void *worker_main(void *arg)
{
    struct signer *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        struct job *job = list_pop(&s->todo);
        if (!job && !s->pool_full) {
            pthread_mutex_unlock(&s->lock);
            bool added = presign_fill_one(s->presign);
            pthread_mutex_lock(&s->lock);
            s->pool_full = !added;
            continue;
        }
        if (!job) {
            pthread_cond_wait(&s->work_ready, &s->lock);
            continue;
        }
        s->pool_full = false;       /* the job may take a nonce */
        pthread_mutex_unlock(&s->lock);
        job->token = sign_token(s->presign, job->input);
        if (!job->token)
            job->error = "signing failed";
        pthread_mutex_lock(&s->lock);
        finish_job(s, job);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct signer *s = arg;
    uint64_t count;
    /* Reset the eventfd before taking the list: a worker that finds the
     * list empty after our take will write again and wake us again. */
    if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN)
        log_error("signer: eventfd read: %s", strerror(errno));

    pthread_mutex_lock(&s->lock);
    struct job *job = list_take(&s->done);
    pthread_mutex_unlock(&s->lock);

    while (job) {
        struct job *next = job->next;
        deliver(job);
        job = next;
    }
}

static int thread_count(int threads)
{
    if (threads > 0)
        return threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (int)cores : 1;
}

/* Asks the workers to stop and waits for the first n of them. */
static void stop_workers(struct signer *s, int n)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->work_ready);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n; i++)
        pthread_join(s->threads[i], NULL);
}

static int start_workers(struct signer *s, int n)
{
    s->threads = calloc((size_t)n, sizeof *s->threads);
    if (!s->threads)
        return -1;
    for (s->nthreads = 0; s->nthreads < n; s->nthreads++) {
        if (pthread_create(&s->threads[s->nthreads], NULL, worker_main, s) != 0) {
            stop_workers(s, s->nthreads);
            return -1;
        }
    }
    return 0;
}

/* Frees what signer_new set up; the workers must be stopped already. */
static void release(struct signer *s)
{
    if (s->wake_event)
        event_free(s->wake_event);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    pthread_cond_destroy(&s->work_ready);
    pthread_mutex_destroy(&s->lock);
    presign_free(s->presign);
    free(s->threads);
    free(s);
}

struct signer *signer_new(struct event_base *base, const struct token_key *key,
                          int threads, size_t precompute)
{
    struct signer *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work_ready, NULL);
    s->wake_fd = -1;
    s->presign = presign_new(token_key_pkey(key), precompute);
    s->pool_full = precompute == 0;
    if (!s->presign) {
        log_error("signer: cannot prepare the signing key");
        release(s);
        return NULL;
    }
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake_fd >= 0)
        s->wake_event = event_new(base, s->wake_fd, EV_READ | EV_PERSIST,
                                  on_wake, s);
    if (!s->wake_event || event_add(s->wake_event, NULL) != 0) {
        log_error("signer: cannot watch an eventfd: %s", strerror(errno));
        release(s);
        return NULL;
    }
    if (start_workers(s, thread_count(threads)) != 0) {
        log_error("signer: cannot start worker threads");
        release(s);
        return NULL;
    }
    log_debug("signer: %d worker threads", s->nthreads);
    return s;
}

void signer_sign(struct signer *s, char *signing_input, signer_done_fn done,
                 void *arg)
{
    struct job *job = calloc(1, sizeof *job);
    if (!job) {
        /* Out of memory is the one case answered before returning. */
        free(signing_input);
        done(arg, NULL, "out of memory");
        return;
    }
    job->input = signing_input;
    job->done = done;
    job->arg = arg;

    pthread_mutex_lock(&s->lock);
    list_push(&s->todo, job);
    pthread_cond_signal(&s->work_ready);
    pthread_mutex_unlock(&s->lock);
}

/* After the workers are joined no other thread touches the lists. */
static void fail_all(struct job *job)
{
    while (job) {
        struct job *next = job->next;
        free(job->token);
        job->token = NULL;
        job->error = "signer stopped";
        deliver(job);
        job = next;
    }
}

void signer_free(struct signer *s)
{
    if (!s)
        return;
    stop_workers(s, s->nthreads);
    fail_all(list_take(&s->done));
    fail_all(list_take(&s->todo));
    release(s);
}

struct signer_gauges signer_gauges(struct signer *s)
{
    pthread_mutex_lock(&s->lock);
    size_t queued = s->todo.n;
    pthread_mutex_unlock(&s->lock);
    return (struct signer_gauges){queued, s->presign ? presign_ready(s->presign) : 0};
}
