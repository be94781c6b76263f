/*
 * libFuzzer target for the CRDT state decoders: validate, merge with a known-good
 * state, member, iteration, LWW decode and digest must never read out of bounds,
 * leak or crash on any input; and merge must accept exactly what validate accepts.
 */
#include <stdlib.h>
#include <string.h>

#include "plexus/system_alloc.h"
#include "plexus/crdt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const plexus_alloc *sys = plexus_system_alloc();
    plexus_orset_info info;
    int valid = plexus_orset_validate(data, size, sys, &info) == PLEXUS_OK;

    /* a small valid state to merge against */
    plexus_buf good, out;
    plexus_buf_init(&good, sys);
    plexus_buf_init(&out, sys);
    plexus_orset_op op = {PLEXUS_OP_ADD, {(const uint8_t *)"x", 1}};
    plexus_buf empty;
    plexus_buf_init(&empty, sys);
    if (plexus_orset_new(&empty) ||
        plexus_orset_apply(empty.p, empty.len, &op, 1, (plexus_bytes){(const uint8_t *)"a", 1}, 0,
                           sys, &good, NULL, NULL))
        abort();
    plexus_bytes in[2] = {{data, size}, {good.p, good.len}};
    int mrc = plexus_orset_merge(in, 2, sys, &out);
    if ((mrc == PLEXUS_OK) != valid && mrc != PLEXUS_ENOMEM) abort();
    if (mrc == PLEXUS_OK && plexus_orset_validate(out.p, out.len, sys, NULL)) abort();

    int found;
    if (plexus_orset_member(data, size, op.elem, sys, &found) == PLEXUS_OK && !valid) abort();
    plexus_orset_iter it;
    if (plexus_orset_iter_init(&it, data, size, sys) == PLEXUS_OK) {
        plexus_bytes e;
        size_t n = 0;
        while (plexus_orset_iter_next(&it, &e))
            n++;
        if (n != info.n_elems) abort();
    }
    /* applying ops to a valid fuzzed state must give a valid state */
    if (valid) {
        plexus_buf next, delta;
        plexus_buf_init(&next, sys);
        plexus_buf_init(&delta, sys);
        plexus_orset_op ops[2] = {{PLEXUS_OP_ADD, {(const uint8_t *)"y", 1}},
                                  {PLEXUS_OP_REMOVE, {(const uint8_t *)"x", 1}}};
        if (plexus_orset_apply(data, size, ops, 2, (plexus_bytes){(const uint8_t *)"b", 1}, 0, sys,
                               &next, &delta, NULL) == PLEXUS_OK) {
            if (plexus_orset_validate(next.p, next.len, sys, NULL)) abort();
            if (plexus_orset_validate(delta.p, delta.len, sys, NULL)) abort();
        }
        plexus_buf_free(&next);
        plexus_buf_free(&delta);
    }

    plexus_lww_view v;
    (void)plexus_lww_decode(data, size, &v);
    uint8_t digest[PLEXUS_DIGEST_BYTES];
    (void)plexus_crdt_digest(data, size, sys, digest);

    plexus_buf_free(&good);
    plexus_buf_free(&out);
    plexus_buf_free(&empty);
    return 0;
}
