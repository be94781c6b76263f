/*
 * The v2 trie's entry hash and the dot arithmetic of its merge; see
 * include/plexus/crdt_trie.h. Pure: no allocation but through the injected
 * allocator, no clock, no I/O.
 */
#include "plexus/crdt_trie.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ entry hash */

/* Odd 64-bit multipliers with well-spread bits (the fractional parts of sqrt(2) and
 * sqrt(3)); any odd constant keeps the multiply a bijection. */
#define MUL_A UINT64_C(0x6a09e667f3bcc909)
#define MUL_B UINT64_C(0xbb67ae8584caa73b)
#define SEED UINT64_C(0x3c6ef372fe94f82b)

/* One word into the state: xor it in, then multiply / shift / multiply so that every
 * input bit reaches every state bit before the next word (a word that only xored in
 * could cancel a later one). */
static inline uint64_t mix(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= MUL_A;
    h ^= h >> 31;
    h *= MUL_B;
    h ^= h >> 29;
    return h;
}

void plexus_thash_init(plexus_thash *s)
{
    s->h = SEED;
}

void plexus_thash_tag(plexus_thash *s, enum plexus_thash_tag tag, uint64_t n)
{
    /* Counts above 2^56 cannot occur (bounded by memory), so tag and count share a
     * word without ambiguity. */
    s->h = mix(s->h, ((uint64_t)tag << 56) ^ n);
}

void plexus_thash_int(plexus_thash *s, uint64_t v)
{
    plexus_thash_tag(s, PLEXUS_THASH_INT, 0);
    s->h = mix(s->h, v);
}

static inline uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
    return w;
}

void plexus_thash_bin(plexus_thash *s, const uint8_t *p, size_t n)
{
    /* The length is in the tag word, so a zero-padded tail is unambiguous. */
    plexus_thash_tag(s, PLEXUS_THASH_BIN, n);
    uint64_t h = s->h;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        h = mix(h, load_le(p + i, 8));
    if (i < n) h = mix(h, load_le(p + i, n - i));
    s->h = h;
}

uint64_t plexus_thash_final(const plexus_thash *s)
{
    /* One more round so the last word is spread as well as the others, then the top
     * 56 bits (the best mixed). */
    return mix(s->h, SEED) >> 8;
}

/* ------------------------------------------------------------------ dots */

uint64_t plexus_thash_orset_entry(plexus_bytes key, const plexus_dot *d, size_t n)
{
    plexus_thash s;
    plexus_thash_init(&s);
    plexus_thash_tag(&s, PLEXUS_THASH_TUPLE, 2);
    plexus_thash_bin(&s, key.p, key.n);
    for (size_t i = 0; i < n; i++) {
        plexus_thash_tag(&s, PLEXUS_THASH_CONS, 0);
        plexus_thash_tag(&s, PLEXUS_THASH_TUPLE, 2);
        plexus_thash_bin(&s, d[i].actor.p, d[i].actor.n);
        plexus_thash_int(&s, d[i].ctr);
    }
    plexus_thash_tag(&s, PLEXUS_THASH_NIL, 0);
    return plexus_thash_final(&s);
}

int plexus_dot_cmp(const plexus_dot *a, const plexus_dot *b)
{
    int c = plexus_bytes_cmp(a->actor.p, a->actor.n, b->actor.p, b->actor.n);
    if (c) return c;
    return (a->ctr > b->ctr) - (a->ctr < b->ctr);
}

void plexus_dotctx_init(plexus_dotctx *c, const plexus_alloc *a)
{
    memset(c, 0, sizeof *c);
    c->a = a;
}

static int push(const plexus_alloc *a, plexus_dot **arr, size_t *n, size_t *cap, plexus_bytes actor,
                uint64_t ctr)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        if (ncap > SIZE_MAX / sizeof **arr) return PLEXUS_ENOMEM;
        plexus_dot *p = a->realloc(a->ctx, *arr, ncap * sizeof **arr);
        if (!p) return PLEXUS_ENOMEM;
        *arr = p;
        *cap = ncap;
    }
    (*arr)[*n].actor = actor;
    (*arr)[*n].ctr = ctr;
    (*n)++;
    return PLEXUS_OK;
}

int plexus_dotctx_add_vv(plexus_dotctx *c, plexus_bytes actor, uint64_t ctr)
{
    return push(c->a, &c->vv, &c->nvv, &c->cap_vv, actor, ctr);
}

int plexus_dotctx_add_cloud(plexus_dotctx *c, plexus_bytes actor, uint64_t ctr)
{
    return push(c->a, &c->cloud, &c->ncloud, &c->cap_cloud, actor, ctr);
}

static int dot_qcmp(const void *x, const void *y)
{
    return plexus_dot_cmp(x, y);
}

static int actor_qcmp(const void *x, const void *y)
{
    const plexus_dot *a = x, *b = y;
    return plexus_bytes_cmp(a->actor.p, a->actor.n, b->actor.p, b->actor.n);
}

int plexus_dotctx_seal(plexus_dotctx *c)
{
    if (c->nvv > 1) qsort(c->vv, c->nvv, sizeof *c->vv, actor_qcmp);
    if (c->ncloud > 1) qsort(c->cloud, c->ncloud, sizeof *c->cloud, dot_qcmp);
    for (size_t i = 1; i < c->nvv; i++)
        if (actor_qcmp(&c->vv[i - 1], &c->vv[i]) == 0) return PLEXUS_EORDER;
    return PLEXUS_OK;
}

bool plexus_dotctx_covers(const plexus_dotctx *c, const plexus_dot *d)
{
    size_t lo = 0, hi = c->nvv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int k = actor_qcmp(&c->vv[mid], d);
        if (k == 0) {
            if (d->ctr <= c->vv[mid].ctr) return true;
            break;
        }
        if (k < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    lo = 0;
    hi = c->ncloud;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int k = plexus_dot_cmp(&c->cloud[mid], d);
        if (k == 0) return true;
        if (k < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

void plexus_dotctx_free(plexus_dotctx *c)
{
    if (c->a) {
        c->a->free(c->a->ctx, c->vv);
        c->a->free(c->a->ctx, c->cloud);
    }
    c->vv = c->cloud = NULL;
    c->nvv = c->ncloud = c->cap_vv = c->cap_cloud = 0;
}

size_t plexus_dots_merge(const plexus_dot *a, size_t na, const plexus_dot *b, size_t nb,
                         const plexus_dotctx *ca, const plexus_dotctx *cb, long *out)
{
    size_t i = 0, j = 0, n = 0;
    while (i < na && j < nb) {
        int k = plexus_dot_cmp(&a[i], &b[j]);
        if (k == 0) {
            out[n++] = (long)i;
            i++;
            j++;
        } else if (k < 0) {
            if (!plexus_dotctx_covers(cb, &a[i])) out[n++] = (long)i;
            i++;
        } else {
            if (!plexus_dotctx_covers(ca, &b[j])) out[n++] = -1 - (long)j;
            j++;
        }
    }
    for (; i < na; i++)
        if (!plexus_dotctx_covers(cb, &a[i])) out[n++] = (long)i;
    for (; j < nb; j++)
        if (!plexus_dotctx_covers(ca, &b[j])) out[n++] = -1 - (long)j;
    return n;
}
