/* signer.h — ES384 signing off the event loop.
 *
 * An ECDSA P-384 signature costs about a millisecond of CPU, far too long
 * to spend on the thread that serves every other request. The signer owns
 * a few worker threads; the loop hands it a signing input and gets the
 * finished token back, on the loop thread, through a callback that is
 * called exactly once. */
#ifndef USHER_TOKENS_SIGNER_H
#define USHER_TOKENS_SIGNER_H

#include <stddef.h>
#include <event2/event.h>

#include "tokens/keypair.h"

struct signer;

/* token is the finished JWT (owned by the callee: free() it), or NULL with
 * error set when signing failed or the signer is shutting down. */
typedef void (*signer_done_fn)(void *arg, char *token, const char *error);

/* threads <= 0 means one per online core. precompute is how many ECDSA
 * nonces idle workers keep ready (presign.h); 0 computes none ahead. The
 * key must outlive the signer. */
struct signer *signer_new(struct event_base *base, const struct token_key *key,
                          int threads, size_t precompute);

/* Takes ownership of signing_input (malloc'd, from jwt_signing_input). */
void signer_sign(struct signer *signer, char *signing_input,
                 signer_done_fn done, void *arg);

/* Signing jobs waiting for a worker, and ECDSA nonces computed ahead and
 * not yet used (presign.h), now. */
struct signer_gauges {
    size_t queued;
    size_t precomputed;
};
struct signer_gauges signer_gauges(struct signer *signer);

/* Stops the workers; every job not yet delivered (signed or not) gets its
 * callback here, with token NULL and error "signer stopped". Those
 * callbacks must not call signer_sign; call signer_free from the loop
 * thread, not from inside a signer callback. */
void signer_free(struct signer *signer);

#endif
