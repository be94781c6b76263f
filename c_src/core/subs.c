/*
 * The subscriber table (include/plexus/subs.h): a dense entry array, an open-addressing
 * index over it (linear probing, deletion by backward shift, load at most 1/2), and the
 * nodes once each with their subscriber counts.
 *
 * Memory follows the population both ways: arrays double when full and halve when a
 * quarter full (a failed shrink just keeps the larger array), so a burst of short-lived
 * subscribers leaves nothing behind once they are gone.
 */
#include <sodium.h>
#include <string.h>

#include "plexus/subs.h"

#define MIN_ENTRIES 16
#define MIN_INDEX 32 /* a power of two */

typedef struct entry {
    uint64_t h;
    uint32_t node;
    uint32_t flags;
    uint8_t id[PLEXUS_SUBS_ID_BYTES];
} entry;

typedef struct node_slot {
    uint64_t h;
    uint32_t count; /* 0: a free slot */
    uint8_t len;
    uint8_t name[PLEXUS_SUBS_NODE_MAX];
} node_slot;

struct plexus_subs {
    const plexus_alloc *a;
    uint8_t key[PLEXUS_SUBS_KEY_BYTES];
    size_t max;
    entry *ent;
    size_t n, cap;
    uint32_t *ix; /* entry index + 1; 0 = empty */
    size_t ixcap; /* a power of two */
    node_slot *nodes;
    size_t n_nodes_used; /* slots in use (count > 0) */
    size_t n_slots, cap_slots;
};

static uint64_t hash(const plexus_subs *t, const uint8_t *p, size_t n)
{
    uint8_t out[crypto_shorthash_BYTES];
    uint64_t h = 0;
    crypto_shorthash(out, p, n, t->key);
    memcpy(&h, out, sizeof h);
    return h;
}

static uint64_t entry_hash(const plexus_subs *t, uint64_t node_h, const uint8_t *id)
{
    uint8_t buf[8 + PLEXUS_SUBS_ID_BYTES];
    memcpy(buf, &node_h, 8);
    memcpy(buf + 8, id, PLEXUS_SUBS_ID_BYTES);
    return hash(t, buf, sizeof buf);
}

int plexus_subs_new(const plexus_alloc *a, size_t max, const uint8_t *key, plexus_subs **out)
{
    *out = NULL;
    if (!a || !key || max == 0 || max > UINT32_MAX / 4) return PLEXUS_EINVAL;
    plexus_subs *t = a->malloc(a->ctx, sizeof *t);
    if (!t) return PLEXUS_ENOMEM;
    memset(t, 0, sizeof *t);
    t->a = a;
    t->max = max;
    memcpy(t->key, key, sizeof t->key);
    *out = t;
    return PLEXUS_OK;
}

void plexus_subs_free(plexus_subs *t)
{
    if (!t) return;
    const plexus_alloc *a = t->a;
    a->free(a->ctx, t->ent);
    a->free(a->ctx, t->ix);
    a->free(a->ctx, t->nodes);
    sodium_memzero(t->key, sizeof t->key);
    a->free(a->ctx, t);
}

/* ---------------------------------------------------------------- nodes */

static int node_find(const plexus_subs *t, const uint8_t *name, size_t len, uint64_t h)
{
    for (size_t i = 0; i < t->n_slots; i++) {
        const node_slot *s = &t->nodes[i];
        if (s->count && s->h == h && s->len == len && memcmp(s->name, name, len) == 0)
            return (int)i;
    }
    return -1;
}

/* A free slot for a new node (growing the array); -1 on ENOMEM. */
static int node_slot_new(plexus_subs *t)
{
    for (size_t i = 0; i < t->n_slots; i++)
        if (!t->nodes[i].count) return (int)i;
    if (t->n_slots == t->cap_slots) {
        size_t cap = t->cap_slots ? t->cap_slots * 2 : 4;
        node_slot *ns = t->a->realloc(t->a->ctx, t->nodes, cap * sizeof *ns);
        if (!ns) return -1;
        t->nodes = ns;
        t->cap_slots = cap;
    }
    memset(&t->nodes[t->n_slots], 0, sizeof *t->nodes);
    return (int)t->n_slots++;
}

static void node_release(plexus_subs *t, uint32_t ix)
{
    node_slot *s = &t->nodes[ix];
    if (--s->count) return;
    t->n_nodes_used--;
    while (t->n_slots && !t->nodes[t->n_slots - 1].count)
        t->n_slots--;
    if (t->n_slots == 0 && t->nodes) {
        t->a->free(t->a->ctx, t->nodes);
        t->nodes = NULL;
        t->cap_slots = 0;
    }
}

/* ---------------------------------------------------------------- index */

/* The index slot of the entry (h, node, id), or of the empty slot where it would go. */
static size_t probe(const plexus_subs *t, uint64_t h, uint32_t node, const uint8_t *id, int *found)
{
    size_t mask = t->ixcap - 1;
    for (size_t s = (size_t)h & mask;; s = (s + 1) & mask) {
        uint32_t v = t->ix[s];
        if (!v) {
            *found = 0;
            return s;
        }
        const entry *e = &t->ent[v - 1];
        if (e->h == h && e->node == node && memcmp(e->id, id, PLEXUS_SUBS_ID_BYTES) == 0) {
            *found = 1;
            return s;
        }
    }
}

/* The index slot holding entry i. */
static size_t slot_of(const plexus_subs *t, size_t i)
{
    size_t mask = t->ixcap - 1;
    size_t s = (size_t)t->ent[i].h & mask;
    while (t->ix[s] != i + 1)
        s = (s + 1) & mask;
    return s;
}

static void index_fill(uint32_t *ix, size_t ixcap, const entry *ent, size_t n)
{
    size_t mask = ixcap - 1;
    memset(ix, 0, ixcap * sizeof *ix);
    for (size_t i = 0; i < n; i++) {
        size_t s = (size_t)ent[i].h & mask;
        while (ix[s])
            s = (s + 1) & mask;
        ix[s] = (uint32_t)(i + 1);
    }
}

/* Rebuilds the index at ixcap slots; keeps the old one when the allocation fails. */
static int index_resize(plexus_subs *t, size_t ixcap)
{
    uint32_t *ix = t->a->malloc(t->a->ctx, ixcap * sizeof *ix);
    if (!ix) return PLEXUS_ENOMEM;
    index_fill(ix, ixcap, t->ent, t->n);
    t->a->free(t->a->ctx, t->ix);
    t->ix = ix;
    t->ixcap = ixcap;
    return PLEXUS_OK;
}

/* Deletes index slot s, shifting back the run after it so every probe still works. */
static void index_delete(plexus_subs *t, size_t s)
{
    size_t mask = t->ixcap - 1;
    size_t j = s;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t v = t->ix[j];
        if (!v) break;
        size_t home = (size_t)t->ent[v - 1].h & mask;
        /* move v back to s unless its home lies cyclically in (s, j] */
        int home_between = s <= j ? (home > s && home <= j) : (home > s || home <= j);
        if (!home_between) {
            t->ix[s] = v;
            s = j;
        }
    }
    t->ix[s] = 0;
}

/* ---------------------------------------------------------------- entries */

static void shrink(plexus_subs *t)
{
    if (t->n == 0) {
        t->a->free(t->a->ctx, t->ent);
        t->a->free(t->a->ctx, t->ix);
        t->ent = NULL;
        t->ix = NULL;
        t->cap = t->ixcap = 0;
        return;
    }
    if (t->cap > MIN_ENTRIES && t->n <= t->cap / 4) {
        entry *ne = t->a->realloc(t->a->ctx, t->ent, t->cap / 2 * sizeof *ne);
        if (ne) {
            t->ent = ne;
            t->cap /= 2;
        }
    }
    if (t->ixcap > MIN_INDEX && t->n <= t->ixcap / 8) (void)index_resize(t, t->ixcap / 2);
}

/* Removes entry i whose index slot is s. */
static void remove_at(plexus_subs *t, size_t i, size_t s)
{
    uint32_t node = t->ent[i].node;
    index_delete(t, s);
    size_t last = t->n - 1;
    if (i != last) {
        t->ix[slot_of(t, last)] = (uint32_t)(i + 1);
        t->ent[i] = t->ent[last];
    }
    t->n--;
    node_release(t, node);
}

int plexus_subs_put(plexus_subs *t, const uint8_t *node, size_t node_len, const uint8_t *id,
                    uint32_t flags, int *added)
{
    *added = 0;
    if (!node || node_len == 0 || node_len > PLEXUS_SUBS_NODE_MAX || !id) return PLEXUS_EINVAL;
    uint64_t nh = hash(t, node, node_len);
    int ni = node_find(t, node, node_len, nh);
    uint64_t h = entry_hash(t, nh, id);
    if (ni >= 0) {
        int found;
        size_t s = probe(t, h, (uint32_t)ni, id, &found);
        if (found) {
            t->ent[t->ix[s] - 1].flags = flags;
            return PLEXUS_OK;
        }
    }
    if (t->n >= t->max) return PLEXUS_EFULL;
    /* room first, so a failure changes nothing */
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : MIN_ENTRIES;
        entry *ne = t->a->realloc(t->a->ctx, t->ent, cap * sizeof *ne);
        if (!ne) return PLEXUS_ENOMEM;
        t->ent = ne;
        t->cap = cap;
    }
    if ((t->n + 1) * 2 > t->ixcap) {
        size_t ixcap = t->ixcap ? t->ixcap * 2 : MIN_INDEX;
        if (index_resize(t, ixcap) != PLEXUS_OK) return PLEXUS_ENOMEM;
    }
    if (ni < 0) {
        ni = node_slot_new(t);
        if (ni < 0) return PLEXUS_ENOMEM;
        node_slot *ns = &t->nodes[ni];
        ns->h = nh;
        ns->len = (uint8_t)node_len;
        memcpy(ns->name, node, node_len);
        t->n_nodes_used++;
    }
    t->nodes[ni].count++;
    entry *e = &t->ent[t->n];
    memset(e, 0, sizeof *e);
    e->h = h;
    e->node = (uint32_t)ni;
    e->flags = flags;
    memcpy(e->id, id, PLEXUS_SUBS_ID_BYTES);
    int found;
    size_t s = probe(t, h, (uint32_t)ni, id, &found);
    t->ix[s] = (uint32_t)(t->n + 1);
    t->n++;
    *added = 1;
    return PLEXUS_OK;
}

int plexus_subs_remove(plexus_subs *t, const uint8_t *node, size_t node_len, const uint8_t *id)
{
    if (!node || node_len == 0 || node_len > PLEXUS_SUBS_NODE_MAX || !id || !t->n)
        return PLEXUS_ENOTFOUND;
    uint64_t nh = hash(t, node, node_len);
    int ni = node_find(t, node, node_len, nh);
    if (ni < 0) return PLEXUS_ENOTFOUND;
    int found;
    size_t s = probe(t, entry_hash(t, nh, id), (uint32_t)ni, id, &found);
    if (!found) return PLEXUS_ENOTFOUND;
    remove_at(t, t->ix[s] - 1, s);
    shrink(t);
    return PLEXUS_OK;
}

size_t plexus_subs_remove_node(plexus_subs *t, const uint8_t *node, size_t node_len)
{
    if (!node || node_len == 0 || node_len > PLEXUS_SUBS_NODE_MAX || !t->n) return 0;
    int ni = node_find(t, node, node_len, hash(t, node, node_len));
    if (ni < 0) return 0;
    size_t removed = 0, want = t->nodes[ni].count;
    /* downwards: the entry moved into i comes from above i, already looked at */
    for (size_t i = t->n; i-- > 0 && removed < want;) {
        if (t->ent[i].node != (uint32_t)ni) continue;
        remove_at(t, i, slot_of(t, i));
        removed++;
    }
    shrink(t);
    return removed;
}

size_t plexus_subs_count(const plexus_subs *t)
{
    return t->n;
}

size_t plexus_subs_max(const plexus_subs *t)
{
    return t->max;
}

size_t plexus_subs_nodes(const plexus_subs *t)
{
    return t->n_nodes_used;
}

size_t plexus_subs_node_count(const plexus_subs *t, const uint8_t *node, size_t node_len)
{
    if (!node || node_len == 0 || node_len > PLEXUS_SUBS_NODE_MAX) return 0;
    int ni = node_find(t, node, node_len, hash(t, node, node_len));
    return ni < 0 ? 0 : t->nodes[ni].count;
}

int plexus_subs_get(const plexus_subs *t, size_t i, plexus_sub *out)
{
    if (i >= t->n) return PLEXUS_ENOTFOUND;
    const entry *e = &t->ent[i];
    const node_slot *s = &t->nodes[e->node];
    out->node = s->name;
    out->node_len = s->len;
    out->node_ix = e->node;
    memcpy(out->id, e->id, PLEXUS_SUBS_ID_BYTES);
    out->flags = e->flags;
    return PLEXUS_OK;
}

size_t plexus_subs_bytes(const plexus_subs *t)
{
    return sizeof *t + t->cap * sizeof *t->ent + t->ixcap * sizeof *t->ix +
           t->cap_slots * sizeof *t->nodes;
}
