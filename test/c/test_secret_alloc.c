/*
 * Unit tests of include/plexus/secret_alloc.h, the sodium_malloc allocator the NIF and
 * the C node both hand the beacon codec for its keys: every request gets a usable
 * block (zero-size ones too), a live key block is never resized (a move would leave a
 * copy of the keys behind), and the codec takes its key block from it and gives it
 * back.
 */
#include <sodium.h>

#include "harness.h"
#include "plexus/beacon.h"
#include "plexus/secret_alloc.h"

static void test_blocks(void)
{
    const plexus_alloc *sa = plexus_secret_alloc();
    uint8_t *p = sa->malloc(sa->ctx, 32);
    CHECK(p != NULL);
    if (!p) return;
    memset(p, 0xa5, 32);
    /* a live block is refused a new size and stays as it was */
    CHECK(sa->realloc(sa->ctx, p, 64) == NULL);
    CHECK(p[0] == 0xa5 && p[31] == 0xa5);
    sa->free(sa->ctx, p);

    /* realloc(NULL, n) is malloc; zero-size requests still get a block */
    void *q = sa->realloc(sa->ctx, NULL, 16);
    CHECK(q != NULL);
    sa->free(sa->ctx, q);
    void *z = sa->malloc(sa->ctx, 0);
    CHECK(z != NULL);
    sa->free(sa->ctx, z);
    sa->free(sa->ctx, NULL); /* harmless */
}

/* Counts the blocks the codec takes from the secret allocator. */
static long secret_live;

static void *counting_malloc(void *ctx, size_t n)
{
    const plexus_alloc *sa = ctx;
    void *p = sa->malloc(sa->ctx, n);
    if (p) secret_live++;
    return p;
}

static void *counting_realloc(void *ctx, void *p, size_t n)
{
    const plexus_alloc *sa = ctx;
    void *q = sa->realloc(sa->ctx, p, n);
    if (q && !p) secret_live++;
    return q;
}

static void counting_free(void *ctx, void *p)
{
    const plexus_alloc *sa = ctx;
    if (p) secret_live--;
    sa->free(sa->ctx, p);
}

static void test_beacon_keys(void)
{
    const char *secret = "a shared secret of some length";
    plexus_alloc counting = {counting_malloc, counting_realloc, counting_free,
                             (void *)plexus_secret_alloc()};
    plexus_beacon_config c = {0};
    c.secret = (const uint8_t *)secret;
    c.secret_len = strlen(secret);
    c.secret_alloc = &counting;
    plexus_beacon *tx = NULL, *rx = NULL;
    CHECK_EQ_INT(plexus_beacon_new(&c, &test_alloc, &tx), PLEXUS_OK);
    CHECK_EQ_INT(plexus_beacon_new(&c, &test_alloc, &rx), PLEXUS_OK);
    CHECK(secret_live == 2); /* one key block each, none on the main heap's side */

    plexus_beacon_msg m, got;
    memset(&m, 0, sizeof m);
    m.name = (plexus_bytes){(const uint8_t *)"a@b", 3};
    m.incarnation = 1;
    m.sequence = 1;
    uint8_t nonce[PLEXUS_BEACON_NONCE] = {1}, out[PLEXUS_BEACON_MAX];
    size_t len = 0;
    if (tx && rx) {
        CHECK_EQ_INT(plexus_beacon_seal(tx, &m, nonce, out, sizeof out, &len), PLEXUS_OK);
        CHECK_EQ_INT(plexus_beacon_open(rx, out, len, 0, 0, &got), PLEXUS_OK);
        CHECK(got.name.n == 3 && memcmp(got.name.p, "a@b", 3) == 0);
    }
    plexus_beacon_free(tx);
    plexus_beacon_free(rx);
    CHECK(secret_live == 0);
    CHECK(fault_live() == 0);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    RUN(test_blocks);
    RUN(test_beacon_keys);
    return harness_finish("secret_alloc");
}
