/*
 * OR-Set batch mutation: add/remove ops applied by one actor in a single walk of the
 * state, plus the matching delta (Almeida et al. 2018, §5 delta mutators).
 *
 * Mutating an immutable binary costs a copy of the state, so a batch of n ops costs
 * one copy plus O(n log n) to sort the ops, not n copies (riak_dt's {add_all, _} and
 * {update, [Op]} exist for the same reason). The ops are sorted by element with a
 * stable tie on their list position, so each element's ops are replayed in order.
 */
#include <stdlib.h>
#include <string.h>

#include "crdt_orset_codec.h"

typedef struct op_ref {
    const uint8_t *p;
    size_t n;
    size_t idx; /* position in the caller's list */
    int kind;
} op_ref;

typedef struct added_elem {
    const uint8_t *p;
    size_t n;
    uint64_t ctr;
} added_elem;

typedef struct apply_state {
    orset_ctx c;
    op_ref *ops;
    size_t n_ops;
    /* new context */
    size_t n_actors;
    plexus_bytes *actors;
    uint64_t *vv;
    orset_dot *cloud;
    size_t n_cloud;
    uint32_t *remap; /* old actor index -> new */
    uint32_t self;   /* actor's new index (valid when n_added > 0) */
    uint64_t next_ctr;
    size_t n_added;
    int remapped;     /* an actor was inserted: old dots need rewriting */
    size_t first_bad; /* smallest list index of a failing strict remove, or SIZE_MAX */
    /* delta bookkeeping */
    added_elem *added;
    size_t n_added_done;
    orset_dot *ctx_dots; /* removed or superseded dots (new indices) */
    size_t n_ctx_dots, cap_ctx_dots;
    void *block;
    const plexus_alloc *a;
} apply_state;

static void apply_state_free(apply_state *s)
{
    const plexus_alloc *a = s->a;
    a->free(a->ctx, s->ops);
    a->free(a->ctx, s->block);
    a->free(a->ctx, s->added);
    a->free(a->ctx, s->ctx_dots);
    orset_ctx_free(&s->c);
}

static int op_ref_cmp(const void *x, const void *y)
{
    const op_ref *a = x, *b = y;
    int c = plexus_bytes_cmp(a->p, a->n, b->p, b->n);
    if (c) return c;
    return a->idx < b->idx ? -1 : (a->idx > b->idx ? 1 : 0);
}

static int sort_ops(apply_state *s, const plexus_orset_op *ops, size_t n_ops)
{
    for (size_t i = 0; i < n_ops; i++) {
        if (ops[i].kind != PLEXUS_OP_ADD && ops[i].kind != PLEXUS_OP_REMOVE) return PLEXUS_EINVAL;
        if (ops[i].elem.n == 0 || !ops[i].elem.p) return PLEXUS_EINVAL;
        if (ops[i].elem.n > PLEXUS_MAX_BYTES_LEN) return PLEXUS_ETOOBIG;
    }
    s->n_ops = n_ops;
    if (!n_ops) return PLEXUS_OK;
    s->ops = s->a->malloc(s->a->ctx, n_ops * sizeof *s->ops);
    if (!s->ops) return PLEXUS_ENOMEM;
    for (size_t i = 0; i < n_ops; i++)
        s->ops[i] = (op_ref){ops[i].elem.p, ops[i].elem.n, i, ops[i].kind};
    qsort(s->ops, n_ops, sizeof *s->ops, op_ref_cmp);
    /* An element ends up added exactly when its last op is an add. */
    for (size_t i = 0; i < n_ops; i++) {
        int last = i + 1 == n_ops || plexus_bytes_cmp(s->ops[i].p, s->ops[i].n, s->ops[i + 1].p,
                                                      s->ops[i + 1].n) != 0;
        if (last && s->ops[i].kind == PLEXUS_OP_ADD) s->n_added++;
    }
    return PLEXUS_OK;
}

/* Lays out the new context: the actor is inserted if it is new and adds something. */
static int build_context(apply_state *s, plexus_bytes actor)
{
    const orset_ctx *c = &s->c;
    size_t lo = 0, hi = c->n_actors;
    int found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = plexus_bytes_cmp(c->actors[mid].p, c->actors[mid].n, actor.p, actor.n);
        if (cmp == 0) {
            lo = mid;
            found = 1;
            break;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    int insert = !found && s->n_added > 0;
    if (insert && c->n_actors >= PLEXUS_MAX_ACTORS) return PLEXUS_ETOOBIG;
    s->n_actors = c->n_actors + (size_t)insert;
    size_t n_cloud_max = c->n_cloud + s->n_added;
    size_t bytes = s->n_actors * (sizeof(uint64_t) + sizeof(plexus_bytes)) +
                   n_cloud_max * sizeof(orset_dot) + c->n_actors * sizeof(uint32_t);
    s->block = s->a->malloc(s->a->ctx, bytes ? bytes : 1);
    if (!s->block) return PLEXUS_ENOMEM;
    s->vv = s->block;
    s->cloud = (orset_dot *)(s->vv + s->n_actors);
    s->actors = (plexus_bytes *)(s->cloud + n_cloud_max);
    s->remap = (uint32_t *)(s->actors + s->n_actors);

    for (size_t i = 0; i < c->n_actors; i++) {
        size_t to = i + (insert && i >= lo);
        s->remap[i] = (uint32_t)to;
        s->actors[to] = c->actors[i];
        s->vv[to] = c->vv[i];
    }
    s->remapped = insert && lo < c->n_actors;
    s->self = (uint32_t)lo;
    if (insert) {
        s->actors[lo] = actor;
        s->vv[lo] = 0;
    }
    size_t n = 0;
    uint64_t base = s->n_added ? s->vv[s->self] : 0;
    for (size_t i = 0; i < c->n_cloud; i++) {
        orset_dot d = {s->remap[c->cloud[i].actor], c->cloud[i].ctr};
        if (s->n_added && d.actor == s->self && d.ctr > base) base = d.ctr;
        s->cloud[n++] = d;
    }
    /* New dots follow everything this actor has been seen to issue. */
    if (s->n_added > UINT64_MAX - base) return PLEXUS_EOVERFLOW;
    s->next_ctr = base + 1;
    for (size_t i = 0; i < s->n_added; i++)
        s->cloud[n++] = (orset_dot){s->self, base + 1 + i};
    s->n_cloud = orset_fold_cloud(s->vv, s->cloud, n);
    return PLEXUS_OK;
}

static int note_ctx_dot(apply_state *s, orset_dot d)
{
    if (s->n_ctx_dots == s->cap_ctx_dots) {
        size_t cap = s->cap_ctx_dots ? s->cap_ctx_dots * 2 : 16;
        void *p = s->a->realloc(s->a->ctx, s->ctx_dots, cap * sizeof(orset_dot));
        if (!p) return PLEXUS_ENOMEM;
        s->ctx_dots = p;
        s->cap_ctx_dots = cap;
    }
    s->ctx_dots[s->n_ctx_dots++] = d;
    return PLEXUS_OK;
}

/* Copies an untouched entry, rewriting actor indices if an actor was inserted. */
static int copy_entry(apply_state *s, plexus_buf *out, const orset_entry *e)
{
    size_t raw = (size_t)(e->dots_end - e->dots);
    int rc = plexus_buf_reserve(out, e->elen + 2 * PLEXUS_VARINT_MAX + raw + e->ndots);
    if (rc) return rc;
    put_bytes(out, e->elem, e->elen);
    put_varint(out, e->ndots);
    if (!s->remapped) {
        memcpy(out->p + out->len, e->dots, raw);
        out->len += raw;
        return PLEXUS_OK;
    }
    const uint8_t *p = e->dots;
    for (size_t i = 0; i < e->ndots; i++) {
        orset_dot d;
        orset_next_dot(&p, &d);
        put_varint(out, s->remap[d.actor]);
        put_varint(out, d.ctr);
    }
    return PLEXUS_OK;
}

/* Replays one element's ops (ops[first..last)) against its entry, if any. */
static int apply_group(apply_state *s, plexus_buf *out, size_t first, size_t last,
                       const orset_entry *entry, unsigned flags, int want_delta, size_t *count)
{
    int present = entry != NULL, added = 0;
    for (size_t i = first; i < last; i++) {
        if (s->ops[i].kind == PLEXUS_OP_ADD) {
            present = added = 1;
        } else {
            if (!present && (flags & PLEXUS_APPLY_STRICT)) {
                /* Keep walking: the op to report is the first in list order, and the
                 * walk visits elements in byte order. */
                if (s->ops[i].idx < s->first_bad) s->first_bad = s->ops[i].idx;
                return PLEXUS_OK;
            }
            present = added = 0;
        }
    }
    if (entry && want_delta) { /* its old dots are removed or superseded */
        const uint8_t *p = entry->dots;
        for (size_t i = 0; i < entry->ndots; i++) {
            orset_dot d;
            orset_next_dot(&p, &d);
            d.actor = s->remap[d.actor];
            int rc = note_ctx_dot(s, d);
            if (rc) return rc;
        }
    }
    if (!added) return PLEXUS_OK;
    const op_ref *op = &s->ops[first];
    uint64_t ctr = s->next_ctr++;
    int rc = plexus_buf_reserve(out, op->n + 4 * PLEXUS_VARINT_MAX);
    if (rc) return rc;
    put_bytes(out, op->p, op->n);
    put_varint(out, 1);
    put_varint(out, s->self);
    put_varint(out, ctr);
    (*count)++;
    if (want_delta) s->added[s->n_added_done++] = (added_elem){op->p, op->n, ctr};
    return PLEXUS_OK;
}

static int walk(apply_state *s, plexus_buf *out, unsigned flags, int want_delta, size_t *count)
{
    orset_cursor k;
    size_t oi = 0;
    int rc = orset_cursor_start(&k, &s->c);
    while (!rc && (k.has || oi < s->n_ops)) {
        int cmp = !k.has           ? 1
                  : oi == s->n_ops ? -1
                                   : orset_cmp(k.cur.elem, k.cur.elen, s->ops[oi].p, s->ops[oi].n);
        if (cmp < 0) {
            rc = copy_entry(s, out, &k.cur);
            (*count)++;
        } else {
            size_t end = oi + 1;
            while (end < s->n_ops &&
                   plexus_bytes_cmp(s->ops[oi].p, s->ops[oi].n, s->ops[end].p, s->ops[end].n) == 0)
                end++;
            rc = apply_group(s, out, oi, end, cmp == 0 ? &k.cur : NULL, flags, want_delta, count);
            oi = end;
        }
        if (!rc && cmp <= 0) rc = orset_cursor_next(&k);
    }
    return rc;
}

/* The delta: added elements with their new dots; context = new + replaced dots. */
static int write_delta(apply_state *s, plexus_buf *delta)
{
    size_t n = s->n_ctx_dots;
    int rc = PLEXUS_OK;
    for (size_t i = 0; !rc && i < s->n_added_done; i++)
        rc = note_ctx_dot(s, (orset_dot){s->self, s->added[i].ctr});
    if (rc) return rc;
    n = s->n_ctx_dots;

    /* Delta actors: those the context mentions, renumbered densely in order. */
    size_t bytes = s->n_actors * (sizeof(uint32_t) + sizeof(uint64_t) + sizeof(plexus_bytes));
    void *block = s->a->malloc(s->a->ctx, bytes ? bytes : 1);
    if (!block) return PLEXUS_ENOMEM;
    uint64_t *vv = block;
    plexus_bytes *actors = (plexus_bytes *)(vv + s->n_actors);
    uint32_t *dmap = (uint32_t *)(actors + s->n_actors);
    for (size_t i = 0; i < s->n_actors; i++)
        dmap[i] = ORSET_NO_ACTOR;
    for (size_t i = 0; i < n; i++)
        dmap[s->ctx_dots[i].actor] = 0;
    size_t k = 0;
    for (size_t i = 0; i < s->n_actors; i++)
        if (dmap[i] != ORSET_NO_ACTOR) {
            dmap[i] = (uint32_t)k;
            actors[k] = s->actors[i];
            vv[k++] = 0;
        }
    for (size_t i = 0; i < n; i++)
        s->ctx_dots[i].actor = dmap[s->ctx_dots[i].actor];
    size_t n_cloud = orset_fold_cloud(vv, s->ctx_dots, n);

    size_t mark = 0;
    rc = orset_write_context(delta, k, actors, vv, n_cloud, s->ctx_dots);
    if (!rc) rc = orset_begin_elems(delta, s->n_added_done, &mark);
    for (size_t i = 0; !rc && i < s->n_added_done; i++) {
        const added_elem *ad = &s->added[i];
        rc = plexus_buf_reserve(delta, ad->n + 4 * PLEXUS_VARINT_MAX);
        if (rc) break;
        put_bytes(delta, ad->p, ad->n);
        put_varint(delta, 1);
        put_varint(delta, k ? dmap[s->self] : 0);
        put_varint(delta, ad->ctr);
    }
    if (!rc) orset_end_elems(delta, mark, s->n_added_done, s->n_added_done);
    s->a->free(s->a->ctx, block);
    return rc;
}

int plexus_orset_apply(const uint8_t *st, size_t n, const plexus_orset_op *ops, size_t n_ops,
                       plexus_bytes actor, unsigned flags, const plexus_alloc *a, plexus_buf *out,
                       plexus_buf *delta, size_t *bad_op)
{
    if (!actor.p || actor.n == 0) return PLEXUS_EINVAL;
    if (actor.n > PLEXUS_MAX_BYTES_LEN) return PLEXUS_ETOOBIG;
    apply_state s;
    memset(&s, 0, sizeof s);
    s.a = a;
    size_t out_start = out->len, delta_start = delta ? delta->len : 0, mark = 0, count = 0;
    size_t dummy_bad = 0;
    if (!bad_op) bad_op = &dummy_bad;

    int rc = orset_parse_header(st, n, a, &s.c);
    if (!rc) rc = sort_ops(&s, ops, n_ops);
    if (!rc) rc = build_context(&s, actor);
    if (!rc && delta && s.n_added) {
        s.added = a->malloc(a->ctx, s.n_added * sizeof *s.added);
        if (!s.added) rc = PLEXUS_ENOMEM;
    }
    if (!rc) rc = orset_write_context(out, s.n_actors, s.actors, s.vv, s.n_cloud, s.cloud);
    size_t max_count = s.c.n_elems + s.n_added;
    if (!rc) rc = orset_begin_elems(out, max_count, &mark);
    s.first_bad = SIZE_MAX;
    if (!rc) rc = walk(&s, out, flags, delta != NULL, &count);
    if (!rc && s.first_bad != SIZE_MAX) {
        *bad_op = s.first_bad;
        rc = PLEXUS_ENOTPRESENT;
    }
    if (!rc) orset_end_elems(out, mark, max_count, count);
    if (!rc && delta) rc = write_delta(&s, delta);
    if (rc) {
        out->len = out_start;
        if (delta) delta->len = delta_start;
    }
    apply_state_free(&s);
    return rc;
}
