/*
 * Merge floor for `make bench`: union of two sorted arrays of 64-bit keys (the
 * cheapest possible merge of two sets) and the plexus core OR-Set merge on the same
 * shape of data, without the NIF. Prints one line per size:
 *   floor N <ns per input element> core N <ns per input element> <state bytes per element>
 * The data: N elements on each side, 90% shared, 5% removed and 5% added uniquely on
 * each side, as in the NIF benchmark.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plexus/system_alloc.h"
#include "plexus/crdt.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static size_t union_sorted(const uint64_t *a, size_t an, const uint64_t *b, size_t bn,
                           uint64_t *out)
{
    size_t i = 0, j = 0, k = 0;
    while (i < an && j < bn) {
        uint64_t x = a[i], y = b[j];
        out[k++] = x < y ? x : y;
        i += x <= y;
        j += y <= x;
    }
    while (i < an)
        out[k++] = a[i++];
    while (j < bn)
        out[k++] = b[j++];
    return k;
}

/* The key of element i encoded like term_to_binary(i) without the 131 byte. */
static size_t encode_int(uint8_t *b, uint32_t i)
{
    if (i < 256) {
        b[0] = 97, b[1] = (uint8_t)i;
        return 2;
    }
    b[0] = 98, b[1] = (uint8_t)(i >> 24), b[2] = (uint8_t)(i >> 16), b[3] = (uint8_t)(i >> 8),
    b[4] = (uint8_t)i;
    return 5;
}

static plexus_buf apply_ints(const uint8_t *s, size_t n, const uint32_t *ids, const int *kinds,
                             size_t k, const char *actor, uint8_t *scratch)
{
    plexus_orset_op *ops = malloc(k * sizeof *ops);
    for (size_t i = 0; i < k; i++) {
        size_t len = encode_int(scratch + 5 * i, ids[i]);
        ops[i] = (plexus_orset_op){kinds[i], {scratch + 5 * i, len}};
    }
    plexus_buf out;
    plexus_buf_init(&out, plexus_system_alloc());
    if (plexus_orset_apply(s, n, ops, k, (plexus_bytes){(const uint8_t *)actor, strlen(actor)}, 0,
                           plexus_system_alloc(), &out, NULL, NULL))
        abort();
    free(ops);
    return out;
}

static void bench(size_t n)
{
    const plexus_alloc *sys = plexus_system_alloc();
    size_t shared = n * 9 / 10, uniq = n - shared;
    /* floor: sorted u64 keys; side A = shared + A-unique, side B = shared + B-unique */
    uint64_t *a = malloc(n * 8), *b = malloc(n * 8), *o = malloc(2 * n * 8);
    for (size_t i = 0; i < n; i++) {
        a[i] = 3 * i;
        b[i] = i < shared ? 3 * i : 3 * i + 1;
    }
    int reps = (int)(20000000 / n) + 1;
    size_t sink = 0;
    double t0 = now_ns();
    for (int r = 0; r < reps; r++)
        sink += union_sorted(a, n, b, n, o);
    double floor_ns = (now_ns() - t0) / reps / (2.0 * n);

    /* core: build the two OR-Set replicas the same way as the NIF benchmark */
    uint32_t *ids = malloc((n + uniq) * sizeof *ids);
    int *kinds = malloc((n + uniq) * sizeof *kinds);
    uint8_t *scratch = malloc(5 * (n + uniq));
    for (size_t i = 0; i < n; i++)
        ids[i] = (uint32_t)i, kinds[i] = PLEXUS_OP_ADD;
    plexus_buf empty;
    plexus_buf_init(&empty, sys);
    if (plexus_orset_new(&empty)) abort();
    plexus_buf base = apply_ints(empty.p, empty.len, ids, kinds, n, "a", scratch);
    plexus_buf sides[2];
    for (int side = 0; side < 2; side++) {
        size_t k = 0;
        for (size_t i = 0; i < uniq; i++) { /* remove a distinct 5% on each side */
            ids[k] = (uint32_t)(side * uniq + i);
            kinds[k++] = PLEXUS_OP_REMOVE;
        }
        for (size_t i = 0; i < uniq; i++) { /* add 5% unique new elements */
            ids[k] = (uint32_t)(n + side * uniq + i);
            kinds[k++] = PLEXUS_OP_ADD;
        }
        sides[side] = apply_ints(base.p, base.len, ids, kinds, k, side ? "b" : "a", scratch);
    }
    plexus_bytes in[2] = {{sides[0].p, sides[0].len}, {sides[1].p, sides[1].len}};
    int creps = (int)(2000000 / n) + 1;
    t0 = now_ns();
    for (int r = 0; r < creps; r++) {
        plexus_buf out;
        plexus_buf_init(&out, sys);
        if (plexus_orset_merge(in, 2, sys, &out)) abort();
        sink += out.len;
        plexus_buf_free(&out);
    }
    double core_ns = (now_ns() - t0) / creps / (2.0 * n);
    printf("floor %zu %.2f core %zu %.2f %.2f\n", n, floor_ns, n, core_ns,
           (double)base.len / (double)n);
    fprintf(stderr, "(sink %zu)\n", sink);
    plexus_buf_free(&empty), plexus_buf_free(&base), plexus_buf_free(&sides[0]),
        plexus_buf_free(&sides[1]);
    free(a), free(b), free(o), free(ids), free(kinds), free(scratch);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        bench((size_t)strtoull(argv[i], NULL, 10));
    if (argc == 1) {
        size_t sizes[] = {1000, 10000, 100000, 1000000};
        for (size_t i = 0; i < 4; i++)
            bench(sizes[i]);
    }
    return 0;
}
