/* plexus_nif:trie_encode/3 (nif_trie_encode.h). */
#include "nif/nif_trie_encode.h"

#include <stdlib.h>
#include <string.h>

#include "nif/nif_util.h"
#include "plexus/crdt.h"

#define MAX_NODE_DEPTH 9 /* 8 levels of branches (32 bits of key hash), then a leaf */
/* The weight of an entry for the dirty decision, in the bytes of nif_util.h's scale
 * (~7 ns each): measured 180-280 ns of CPU per entry (5k-entry states). */
#define ENTRY_WEIGHT 48
/* An actor or cloud dot of the context (a map pair, a copy, its share of two sorts:
 * 44-68 ms for 60,000 actors). */
#define CTX_WEIGHT 128
/* A dot or write written (a tuple read, an actor found, two or four varints); bytes of
 * a value copied weigh 1/VALUE_BYTES_PER_UNIT each. Neither is known before the
 * entries' lists are walked, so an inline call weighs them as it writes and moves to a
 * dirty scheduler when they pass the threshold (one element of 65,000 dots took 0.1 s,
 * a 50 MB value ~40 ms). */
#define DOT_WEIGHT 16
#define VALUE_BYTES_PER_UNIT 16
/* The weight is compared with the threshold once every this many units. */
#define WEIGHT_CHECK 4096
/* Keys that tie over this many leading bytes are sorted by qsort: the radix recursion
 * (one level per 8 bytes) stays shallow whatever the keys (up to 64 MiB each). */
#define MAX_RADIX_OFFSET 256

typedef struct key_entry {
    const uint8_t *key;
    size_t klen;
    ERL_NIF_TERM list; /* the dots or writes */
} key_entry;

typedef struct actor {
    const uint8_t *p;
    size_t n;
    uint64_t vv;
} actor;

typedef struct dot {
    uint32_t actor;
    uint64_t ctr;
} dot;

typedef struct encoder {
    ErlNifEnv *env;
    nif_priv *priv;
    int arity;
    key_entry *e;
    size_t n, cap, limit; /* limit: the entries the root counts */
    actor *actors;
    size_t n_actors;
    dot *cloud;
    size_t n_cloud;
    plexus_buf *out;
    uint64_t work, next_check; /* weight so far; when to compare it next */
    int inline_call, go_dirty;
} encoder;

/* Adds to the call's weight; on a normal scheduler, 0 once it is past the threshold
 * (go_dirty set: the caller starts again on a dirty scheduler). */
static int weigh(encoder *x, uint64_t units)
{
    x->work += units;
    if (!x->inline_call || x->work < x->next_check) return 1;
    x->next_check = x->work + WEIGHT_CHECK;
    if (!nif_should_go_dirty(x->env, x->work)) return 1;
    x->go_dirty = 1;
    return 0;
}

/* weigh, with the threshold compared now: a single value may be megabytes, so it is
 * weighed before it is copied, not after the next WEIGHT_CHECK units. */
static int weigh_now(encoder *x, uint64_t units)
{
    x->next_check = 0;
    return weigh(x, units);
}

static int entry_cmp(const void *x, const void *y)
{
    const key_entry *a = x, *b = y;
    return plexus_bytes_cmp(a->key, a->klen, b->key, b->klen);
}

/*
 * Sorting the entries by key bytes. qsort took half of the call (memcmp and moves of
 * 32-byte elements), so: a radix sort of (8-byte chunk, index) pairs, most significant
 * chunk first. A chunk is 8 key bytes from an offset, big-endian, zero-padded: keys
 * in bytes order have chunks in the same order, and keys whose chunks tie are sorted
 * by the next chunk, down to small runs or runs whose keys all end within the chunk
 * (or tie over MAX_RADIX_OFFSET bytes), which qsort orders by the whole key.
 */
typedef struct sort_item {
    uint64_t chunk;
    const key_entry *ent;
} sort_item;

static uint64_t chunk_at(const key_entry *e, size_t off)
{
    uint64_t c = 0;
    for (size_t i = 0; i < 8; i++)
        c = c << 8 | (off + i < e->klen ? e->key[off + i] : 0);
    return c;
}

static int item_cmp(const void *x, const void *y)
{
    const sort_item *a = x, *b = y;
    return entry_cmp(a->ent, b->ent);
}

/* LSD passes over the chunk's bytes (a pass whose byte is the same everywhere skipped). */
static void radix_by_chunk(sort_item *it, sort_item *tmp, size_t n)
{
    for (unsigned shift = 0; shift < 64; shift += 8) {
        size_t count[256] = {0};
        for (size_t i = 0; i < n; i++)
            count[(it[i].chunk >> shift) & 0xff]++;
        if (count[(it[0].chunk >> shift) & 0xff] == n) continue;
        size_t pos = 0;
        for (size_t b = 0; b < 256; b++) {
            size_t c = count[b];
            count[b] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++)
            tmp[count[(it[i].chunk >> shift) & 0xff]++] = it[i];
        memcpy(it, tmp, n * sizeof *it);
    }
}

static void sort_run(sort_item *it, sort_item *tmp, size_t n, size_t off)
{
    if (n < 2) return;
    size_t longest = 0;
    for (size_t i = 0; i < n; i++)
        if (it[i].ent->klen > longest) longest = it[i].ent->klen;
    if (n < 24 || off >= longest || off >= MAX_RADIX_OFFSET) {
        qsort(it, n, sizeof *it, item_cmp);
        return;
    }
    for (size_t i = 0; i < n; i++)
        it[i].chunk = chunk_at(it[i].ent, off);
    radix_by_chunk(it, tmp, n);
    for (size_t i = 0; i < n;) { /* runs of equal chunks: by the next chunk */
        size_t j = i + 1;
        while (j < n && it[j].chunk == it[i].chunk)
            j++;
        sort_run(it + i, tmp, j - i, off + 8);
        i = j;
    }
}

/* The entries in key order: 0 when out of memory. */
static int sort_entries(key_entry *e, size_t n)
{
    if (n < 2) return 1;
    sort_item *it = enif_alloc(2 * n * sizeof *it);
    key_entry *sorted = enif_alloc(n * sizeof *sorted);
    int ok = it && sorted;
    if (ok) {
        for (size_t i = 0; i < n; i++)
            it[i].ent = &e[i];
        sort_run(it, it + n, n, 0);
        for (size_t i = 0; i < n; i++)
            sorted[i] = *it[i].ent;
        memcpy(e, sorted, n * sizeof *e);
    }
    if (it) enif_free(it);
    if (sorted) enif_free(sorted);
    return ok;
}

static int actor_cmp(const void *x, const void *y)
{
    const actor *a = x, *b = y;
    return plexus_bytes_cmp(a->p, a->n, b->p, b->n);
}

static int dot_cmp(const void *x, const void *y)
{
    const dot *a = x, *b = y;
    if (a->actor != b->actor) return a->actor < b->actor ? -1 : 1;
    return a->ctr < b->ctr ? -1 : (a->ctr > b->ctr);
}

static int get_bytes(ErlNifEnv *env, ERL_NIF_TERM t, const uint8_t **p, size_t *n)
{
    ErlNifBinary b;
    if (!enif_inspect_binary(env, t, &b)) return 0;
    *p = b.data;
    *n = b.size;
    return 1;
}

/* The entries below node, in trie order; 0 for a term that is no trie node. */
static int collect(encoder *x, ERL_NIF_TERM node, int depth)
{
    if (node == x->priv->atom_nil) return 1;
    const ERL_NIF_TERM *el;
    int ar;
    if (depth > MAX_NODE_DEPTH || !enif_get_tuple(x->env, node, &ar, &el)) return 0;
    if (ar == 4 && el[0] == x->priv->atom_b) {
        const ERL_NIF_TERM *ch;
        int n;
        if (!enif_get_tuple(x->env, el[3], &n, &ch) || n != 16) return 0;
        for (int i = 0; i < n; i++)
            if (!collect(x, ch[i], depth + 1)) return 0;
        return 1;
    }
    if (ar != 6 || el[0] != x->priv->atom_l) return 0;
    const ERL_NIF_TERM *t;
    int n;
    if (!enif_get_tuple(x->env, el[5], &n, &t)) return 0;
    if ((size_t)n > x->limit - x->n) return 0; /* more entries than the root counts */
    if (x->n + (size_t)n > x->cap) {           /* grown as found: a count alone allocates nothing */
        size_t cap = x->cap ? x->cap : 1024;
        while (cap < x->n + (size_t)n)
            cap *= 2;
        key_entry *p = enif_realloc(x->e, cap * sizeof *p);
        if (!p) return 0;
        x->e = p;
        x->cap = cap;
    }
    for (int i = 0; i < n; i++) {
        const ERL_NIF_TERM *kv;
        int two;
        key_entry *e = &x->e[x->n];
        if (!enif_get_tuple(x->env, t[i], &two, &kv) || two != 2 ||
            !get_bytes(x->env, kv[0], &e->key, &e->klen) || !enif_is_list(x->env, kv[1]))
            return 0;
        e->list = kv[1];
        x->n++;
    }
    return 1;
}

static int actor_index(const encoder *x, const uint8_t *p, size_t n, uint32_t *out)
{
    actor key = {p, n, 0};
    const actor *a = bsearch(&key, x->actors, x->n_actors, sizeof key, actor_cmp);
    if (!a) return 0;
    *out = (uint32_t)(a - x->actors);
    return 1;
}

/* A context {VV, Cloud}: its two maps (vc[0], vc[1]) and their sizes, or 0. */
static int ctx_maps(ErlNifEnv *env, ERL_NIF_TERM ctx, const ERL_NIF_TERM **vc, size_t *nv,
                    size_t *nc)
{
    int two;
    return enif_get_tuple(env, ctx, &two, vc) && two == 2 && enif_get_map_size(env, (*vc)[0], nv) &&
           enif_get_map_size(env, (*vc)[1], nc);
}

/* The actors (the vector's and the cloud's, sorted, once each) and the cloud's dots. */
static int read_context(encoder *x, ERL_NIF_TERM ctx)
{
    ErlNifEnv *env = x->env;
    const ERL_NIF_TERM *vc;
    int two;
    size_t n_vv, n_cloud;
    if (!ctx_maps(env, ctx, &vc, &n_vv, &n_cloud)) return 0;
    x->actors = enif_alloc((n_vv + n_cloud + 1) * sizeof *x->actors);
    x->cloud = enif_alloc((n_cloud + 1) * sizeof *x->cloud);
    const uint8_t **cloud_actor = enif_alloc((n_cloud + 1) * sizeof *cloud_actor);
    size_t *cloud_alen = enif_alloc((n_cloud + 1) * sizeof *cloud_alen);
    int ok = x->actors && x->cloud && cloud_actor && cloud_alen;
    ErlNifMapIterator it;
    ERL_NIF_TERM k, v;
    size_t na = 0;
    if (ok && enif_map_iterator_create(env, vc[0], &it, ERL_NIF_MAP_ITERATOR_FIRST)) {
        while (ok && enif_map_iterator_get_pair(env, &it, &k, &v)) {
            actor *a = &x->actors[na++];
            ErlNifUInt64 c = 0;
            ok = get_bytes(env, k, &a->p, &a->n) && enif_get_uint64(env, v, &c);
            a->vv = c;
            enif_map_iterator_next(env, &it);
        }
        enif_map_iterator_destroy(env, &it);
    } else {
        ok = 0;
    }
    size_t nc = 0;
    if (ok && enif_map_iterator_create(env, vc[1], &it, ERL_NIF_MAP_ITERATOR_FIRST)) {
        while (ok && enif_map_iterator_get_pair(env, &it, &k, &v)) {
            const ERL_NIF_TERM *d;
            ErlNifUInt64 c = 0;
            ok = enif_get_tuple(env, k, &two, &d) && two == 2 &&
                 get_bytes(env, d[0], &cloud_actor[nc], &cloud_alen[nc]) &&
                 enif_get_uint64(env, d[1], &c);
            x->cloud[nc++].ctr = c;
            enif_map_iterator_next(env, &it);
        }
        enif_map_iterator_destroy(env, &it);
    } else {
        ok = 0;
    }
    if (ok) {
        /* The vector's actors, then the cloud's not among them (vv 0), sorted. */
        qsort(x->actors, na, sizeof *x->actors, actor_cmp);
        size_t nv = na;
        for (size_t i = 0; i < nc; i++) {
            actor key = {cloud_actor[i], cloud_alen[i], 0};
            if (!bsearch(&key, x->actors, nv, sizeof key, actor_cmp)) x->actors[na++] = key;
        }
        qsort(x->actors, na, sizeof *x->actors, actor_cmp);
        size_t u = 0; /* the cloud's actors may repeat */
        for (size_t i = 0; i < na; i++)
            if (!u || actor_cmp(&x->actors[u - 1], &x->actors[i]))
                x->actors[u++] = x->actors[i];
            else if (x->actors[i].vv)
                x->actors[u - 1].vv = x->actors[i].vv;
        x->n_actors = u;
        for (size_t i = 0; ok && i < nc; i++)
            ok = actor_index(x, cloud_actor[i], cloud_alen[i], &x->cloud[i].actor);
        qsort(x->cloud, nc, sizeof *x->cloud, dot_cmp);
        x->n_cloud = nc;
    }
    if (cloud_actor) enif_free((void *)cloud_actor);
    if (cloud_alen) enif_free(cloud_alen);
    return ok;
}

static int put_varint(plexus_buf *b, uint64_t v)
{
    if (plexus_buf_reserve(b, PLEXUS_VARINT_MAX)) return 0;
    b->len += plexus_varint_write(b->p + b->len, v);
    return 1;
}

static int put_bytes(plexus_buf *b, const uint8_t *p, size_t n)
{
    return put_varint(b, n) && (!n || plexus_buf_put(b, p, n) == PLEXUS_OK);
}

/* One entry's dots or writes. */
static int write_list(encoder *x, ERL_NIF_TERM list)
{
    ErlNifEnv *env = x->env;
    unsigned len;
    if (!enif_get_list_length(env, list, &len) || !put_varint(x->out, len)) return 0;
    ERL_NIF_TERM head;
    while (enif_get_list_cell(env, list, &head, &list)) {
        const ERL_NIF_TERM *w;
        int ar;
        const uint8_t *ap;
        size_t an;
        uint32_t ai;
        ErlNifUInt64 ctr;
        if (!weigh(x, DOT_WEIGHT) || !enif_get_tuple(env, head, &ar, &w) || ar != x->arity ||
            !get_bytes(env, w[0], &ap, &an) || !actor_index(x, ap, an, &ai) ||
            !enif_get_uint64(env, w[1], &ctr) || !put_varint(x->out, ai) ||
            !put_varint(x->out, ctr))
            return 0;
        if (x->arity == 4) {
            ErlNifUInt64 ts;
            const uint8_t *vp;
            size_t vn;
            if (!enif_get_uint64(env, w[2], &ts) || !get_bytes(env, w[3], &vp, &vn) ||
                !weigh_now(x, vn / VALUE_BYTES_PER_UNIT) || !put_varint(x->out, ts) ||
                !put_bytes(x->out, vp, vn))
                return 0;
        }
    }
    return 1;
}

static int write_state(encoder *x)
{
    plexus_buf *b = x->out;
    if (plexus_buf_reserve(b, 2)) return 0;
    b->p[b->len++] = x->arity == 4 ? PLEXUS_CRDT_VERSION_2 : PLEXUS_CRDT_VERSION;
    b->p[b->len++] = x->arity == 4 ? PLEXUS_TYPE_LWWMAP : PLEXUS_TYPE_ORSET;
    if (!put_varint(b, x->n_actors)) return 0;
    for (size_t i = 0; i < x->n_actors; i++)
        if (!put_bytes(b, x->actors[i].p, x->actors[i].n) || !put_varint(b, x->actors[i].vv))
            return 0;
    if (!put_varint(b, x->n_cloud)) return 0;
    for (size_t i = 0; i < x->n_cloud; i++)
        if (!put_varint(b, x->cloud[i].actor) || !put_varint(b, x->cloud[i].ctr)) return 0;
    if (!put_varint(b, x->n)) return 0;
    for (size_t i = 0; i < x->n; i++)
        if (!put_bytes(b, x->e[i].key, x->e[i].klen) || !write_list(x, x->e[i].list)) return 0;
    return 1;
}

uint64_t nif_trie_ctx_entries(ErlNifEnv *env, ERL_NIF_TERM ctx)
{
    const ERL_NIF_TERM *vc;
    size_t nv, nc;
    return ctx_maps(env, ctx, &vc, &nv, &nc) ? (uint64_t)nv + nc : 0;
}

ERL_NIF_TERM nif_trie_encode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    int arity;
    const ERL_NIF_TERM *root;
    int ar;
    ErlNifUInt64 count = 0;
    if (argc != 3 || !enif_get_int(env, argv[0], &arity) || (arity != 2 && arity != 4))
        return enif_make_badarg(env);
    nif_priv *priv = nif_priv_get(env);
    if (argv[2] != priv->atom_nil && (!enif_get_tuple(env, argv[2], &ar, &root) || ar < 3 ||
                                      !enif_get_uint64(env, root[2], &count) || count > UINT32_MAX))
        return nif_error_atom(env, priv->atom_bad_state);
    /* the entries and the context weighed first; their dots and values as written */
    uint64_t weight = count * ENTRY_WEIGHT + nif_trie_ctx_entries(env, argv[1]) * CTX_WEIGHT;
    if (nif_should_go_dirty(env, weight))
        return nif_go_dirty(env, "trie_encode", nif_trie_encode, argc, argv);
    nif_outbuf o;
    nif_outbuf_init(&o);
    encoder x = {.env = env,
                 .priv = priv,
                 .arity = arity,
                 .limit = (size_t)count,
                 .out = &o.buf,
                 .work = weight,
                 .next_check = weight + WEIGHT_CHECK,
                 .inline_call = enif_thread_type() == ERL_NIF_THR_NORMAL_SCHEDULER};
    int ok = collect(&x, argv[2], 0) && x.n == x.limit && read_context(&x, argv[1]);
    if (ok) {
        ok = sort_entries(x.e, x.n);
        for (size_t i = 1; ok && i < x.n; i++) /* one entry per key */
            ok = entry_cmp(&x.e[i - 1], &x.e[i]) != 0;
        ok = ok && write_state(&x);
    }
    ERL_NIF_TERM result;
    nif_charge(env, x.work);
    if (ok && !nif_outbuf_term(env, &o, &result)) ok = 0;
    if (!ok) {
        nif_outbuf_free(&o);
        result = x.go_dirty ? nif_go_dirty(env, "trie_encode", nif_trie_encode, argc, argv)
                            : nif_error_atom(env, priv->atom_bad_state);
    }
    if (x.e) enif_free(x.e);
    if (x.actors) enif_free(x.actors);
    if (x.cloud) enif_free(x.cloud);
    return result;
}
