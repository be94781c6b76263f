/*
 * OR-Set merge (crdt_format.md, "Semantics"; Almeida et al. 2018, §5 join of causal
 * contexts and dot stores).
 *
 * Two states merge in one pass over both element lists, which are sorted, so the
 * cost is linear in their size. Each side's actor indices are remapped into the
 * merged actor table; the remap is monotonic (both tables and the union are sorted),
 * so dot lists stay sorted after remapping. When both sides' indices are already
 * the merged ones (the usual case: actors are few and long-lived) an element whose
 * dots are byte-identical on both sides is copied as is.
 *
 * k states merge as a balanced tree of pairwise merges (plexus_orset_merge).
 */
#include <string.h>

#include "crdt_orset_codec.h"

typedef struct side {
    orset_ctx c;
    uint32_t *map;  /* own actor index -> merged index */
    uint32_t *back; /* merged index -> own index, or ORSET_NO_ACTOR */
    int identity;   /* map[i] == i: own dots can be copied without renumbering */
} side;

typedef struct merge_state {
    side x, y;
    size_t n_actors;
    plexus_bytes *actors;
    uint64_t *vv;
    orset_dot *cloud;
    size_t n_cloud;
    orset_dot *scratch; /* kept dots of one element */
    size_t scratch_cap;
    void *block;
    const plexus_alloc *a;
} merge_state;

static void merge_state_free(merge_state *m)
{
    const plexus_alloc *a = m->a;
    a->free(a->ctx, m->block);
    a->free(a->ctx, m->scratch);
    orset_ctx_free(&m->x.c);
    orset_ctx_free(&m->y.c);
}

/* Builds the union actor table, both remaps and the merged context. */
static int merge_contexts(merge_state *m)
{
    orset_ctx *cx = &m->x.c, *cy = &m->y.c;
    size_t nx = cx->n_actors, ny = cy->n_actors, max = nx + ny;
    size_t bytes = max * (sizeof(plexus_bytes) + sizeof(uint64_t) + 2 * sizeof(uint32_t)) +
                   (nx + ny) * sizeof(uint32_t) + (cx->n_cloud + cy->n_cloud) * sizeof(orset_dot);
    m->block = m->a->malloc(m->a->ctx, bytes ? bytes : 1);
    if (!m->block) return PLEXUS_ENOMEM;
    /* Carve the block: 8-byte members first keeps every array aligned. */
    m->vv = m->block;
    m->cloud = (orset_dot *)(m->vv + max);
    m->actors = (plexus_bytes *)(m->cloud + cx->n_cloud + cy->n_cloud);
    m->x.map = (uint32_t *)(m->actors + max);
    m->y.map = m->x.map + nx;
    m->x.back = m->y.map + ny;
    m->y.back = m->x.back + max;

    size_t i = 0, j = 0, k = 0;
    while (i < nx || j < ny) {
        int cmp = i == nx   ? 1
                  : j == ny ? -1
                            : plexus_bytes_cmp(cx->actors[i].p, cx->actors[i].n, cy->actors[j].p,
                                               cy->actors[j].n);
        m->x.back[k] = m->y.back[k] = ORSET_NO_ACTOR;
        uint64_t v = 0;
        if (cmp <= 0) {
            m->actors[k] = cx->actors[i];
            m->x.map[i] = (uint32_t)k;
            m->x.back[k] = (uint32_t)i;
            v = cx->vv[i++];
        }
        if (cmp >= 0) {
            m->actors[k] = cy->actors[j];
            m->y.map[j] = (uint32_t)k;
            m->y.back[k] = (uint32_t)j;
            if (cy->vv[j] > v) v = cy->vv[j];
            j++;
        }
        m->vv[k++] = v;
    }
    m->n_actors = k;
    m->x.identity = 1;
    for (i = 0; i < nx; i++)
        m->x.identity &= m->x.map[i] == i;
    m->y.identity = 1;
    for (j = 0; j < ny; j++)
        m->y.identity &= m->y.map[j] == j;

    size_t n = 0;
    for (i = 0; i < cx->n_cloud; i++)
        m->cloud[n++] = (orset_dot){m->x.map[cx->cloud[i].actor], cx->cloud[i].ctr};
    for (i = 0; i < cy->n_cloud; i++)
        m->cloud[n++] = (orset_dot){m->y.map[cy->cloud[i].actor], cy->cloud[i].ctr};
    m->n_cloud = orset_fold_cloud(m->vv, m->cloud, n);
    return PLEXUS_OK;
}

/* Has the other side's context seen the dot (merged actor index)? */
static int other_covers(const side *other, const orset_dot *d)
{
    uint32_t own = other->back[d->actor];
    return own != ORSET_NO_ACTOR && orset_covers(&other->c, own, d->ctr);
}

static int grow_scratch(merge_state *m, size_t need)
{
    if (need <= m->scratch_cap) return PLEXUS_OK;
    size_t cap = m->scratch_cap ? m->scratch_cap : 16;
    while (cap < need)
        cap *= 2;
    void *p = m->a->realloc(m->a->ctx, m->scratch, cap * sizeof(orset_dot));
    if (!p) return PLEXUS_ENOMEM;
    m->scratch = p;
    m->scratch_cap = cap;
    return PLEXUS_OK;
}

/* Writes an element with the kept dots in m->scratch; skips it if none are kept. */
static int write_kept(merge_state *m, plexus_buf *out, const orset_entry *e, size_t kept,
                      size_t *count)
{
    if (kept == 0) return PLEXUS_OK;
    int rc =
        plexus_buf_reserve(out, e->elen + 2 * PLEXUS_VARINT_MAX + kept * 2 * PLEXUS_VARINT_MAX);
    if (rc) return rc;
    put_bytes(out, e->elem, e->elen);
    put_varint(out, kept);
    for (size_t i = 0; i < kept; i++) {
        put_varint(out, m->scratch[i].actor);
        put_varint(out, m->scratch[i].ctr);
    }
    (*count)++;
    return PLEXUS_OK;
}

/* Copies an entry whose dot indices are already the merged ones: one memcpy. */
static int copy_entry(plexus_buf *out, const orset_entry *e, size_t *count)
{
    size_t n = (size_t)(e->dots_end - e->raw);
    int rc = plexus_buf_reserve(out, n);
    if (rc) return rc;
    memcpy(out->p + out->len, e->raw, n);
    out->len += n;
    (*count)++;
    return PLEXUS_OK;
}

/* An element only one side has: keep the dots the other side has not seen. */
static int merge_one_side(merge_state *m, plexus_buf *out, const side *own, const side *other,
                          const orset_entry *e, size_t *count)
{
    int rc = grow_scratch(m, e->ndots);
    if (rc) return rc;
    const uint8_t *p = e->dots;
    size_t kept = 0;
    for (size_t i = 0; i < e->ndots; i++) {
        orset_dot d;
        orset_next_dot(&p, &d);
        d.actor = own->map[d.actor];
        if (!other_covers(other, &d)) m->scratch[kept++] = d;
    }
    if (kept == e->ndots && own->identity) return copy_entry(out, e, count);
    return write_kept(m, out, e, kept, count);
}

/* An element both sides have: common dots stay, others stay if unseen by the other. */
static int merge_both(merge_state *m, plexus_buf *out, const orset_entry *ex, const orset_entry *ey,
                      size_t *count)
{
    size_t nbx = (size_t)(ex->dots_end - ex->dots), nby = (size_t)(ey->dots_end - ey->dots);
    if (m->x.identity && m->y.identity && nbx == nby && ex->ndots == ey->ndots &&
        orset_same_bytes(ex->dots, ey->dots, nbx))
        return copy_entry(out, ex, count);

    int rc = grow_scratch(m, ex->ndots + ey->ndots);
    if (rc) return rc;
    const uint8_t *px = ex->dots, *py = ey->dots;
    size_t ix = 0, iy = 0, kept = 0;
    orset_dot dx = {0, 0}, dy = {0, 0};
    if (ix < ex->ndots) orset_next_dot(&px, &dx), dx.actor = m->x.map[dx.actor];
    if (iy < ey->ndots) orset_next_dot(&py, &dy), dy.actor = m->y.map[dy.actor];
    while (ix < ex->ndots || iy < ey->ndots) {
        int cmp;
        if (ix == ex->ndots)
            cmp = 1;
        else if (iy == ey->ndots)
            cmp = -1;
        else if (dx.actor != dy.actor)
            cmp = dx.actor < dy.actor ? -1 : 1;
        else
            cmp = dx.ctr < dy.ctr ? -1 : (dx.ctr > dy.ctr ? 1 : 0);
        if (cmp == 0) {
            m->scratch[kept++] = dx;
        } else if (cmp < 0) {
            if (!other_covers(&m->y, &dx)) m->scratch[kept++] = dx;
        } else {
            if (!other_covers(&m->x, &dy)) m->scratch[kept++] = dy;
        }
        if (cmp <= 0 && ++ix < ex->ndots) orset_next_dot(&px, &dx), dx.actor = m->x.map[dx.actor];
        if (cmp >= 0 && ++iy < ey->ndots) orset_next_dot(&py, &dy), dy.actor = m->y.map[dy.actor];
    }
    return write_kept(m, out, ex, kept, count);
}

static int merge_elems(merge_state *m, plexus_buf *out, size_t *count)
{
    orset_cursor kx, ky;
    int rc = orset_cursor_start(&kx, &m->x.c);
    if (!rc) rc = orset_cursor_start(&ky, &m->y.c);
    while (!rc && (kx.has || ky.has)) {
        int cmp = !ky.has   ? -1
                  : !kx.has ? 1
                            : orset_cmp(kx.cur.elem, kx.cur.elen, ky.cur.elem, ky.cur.elen);
        if (cmp < 0)
            rc = merge_one_side(m, out, &m->x, &m->y, &kx.cur, count);
        else if (cmp > 0)
            rc = merge_one_side(m, out, &m->y, &m->x, &ky.cur, count);
        else
            rc = merge_both(m, out, &kx.cur, &ky.cur, count);
        if (!rc && cmp <= 0) rc = orset_cursor_next(&kx);
        if (!rc && cmp >= 0) rc = orset_cursor_next(&ky);
    }
    return rc;
}

static int merge2(plexus_bytes x, plexus_bytes y, const plexus_alloc *a, plexus_buf *out)
{
    merge_state m;
    memset(&m, 0, sizeof m);
    m.a = a;
    size_t start = out->len, mark = 0, count = 0;
    int rc = orset_parse_header(x.p, x.n, a, &m.x.c);
    if (!rc) rc = orset_parse_header(y.p, y.n, a, &m.y.c);
    if (!rc) rc = merge_contexts(&m);
    /* Replicas that merge are mostly alike, so the result is about the larger input:
     * reserve that plus a margin, growing only for sets that differ a lot. */
    if (!rc) rc = plexus_buf_reserve(out, (x.n > y.n ? x.n : y.n) + (x.n < y.n ? x.n : y.n) / 8);
    if (!rc) rc = orset_write_context(out, m.n_actors, m.actors, m.vv, m.n_cloud, m.cloud);
    size_t max_count = m.x.c.n_elems + m.y.c.n_elems;
    if (!rc) rc = orset_begin_elems(out, max_count, &mark);
    if (!rc) rc = merge_elems(&m, out, &count);
    if (!rc)
        orset_end_elems(out, mark, max_count, count);
    else
        out->len = start;
    merge_state_free(&m);
    return rc;
}

/* A pending partial result of plexus_orset_merge: the merge of 2^height inputs. */
typedef struct merge_run {
    plexus_buf buf;
    unsigned height;
} merge_run;

/* Heights only fall from the bottom of the stack to its top (a binary counter of the
 * pairs merged so far), so it holds at most one run per bit of k. */
#define MERGE_RUNS_MAX 64

static plexus_bytes run_bytes(const merge_run *r)
{
    return (plexus_bytes){r->buf.p, r->buf.len};
}

/*
 * k states merge as a balanced tree of pairwise merges, as the runs of a merge sort:
 * inputs are merged in pairs, and two results of the same height into one a level
 * up, so every input byte is rewritten about log2 k times. A fold (s0 + s1, then + s2,
 * + s3, ...) rewrote the growing result once per state, quadratic in k: 1,500
 * one-element states (54 KB, under the dirty threshold) held a normal scheduler for
 * 75 ms, and a 2 MB set merged with 10,000 deltas took 97 s. The join is associative
 * and commutative and its bytes are canonical, so the shape of the tree does not
 * change the result; every input is still read, and validated, by some merge2.
 */
int plexus_orset_merge(const plexus_bytes *states, size_t k, const plexus_alloc *a, plexus_buf *out)
{
    if (k == 0) return PLEXUS_EINVAL;
    if (k == 1) {
        int rc = plexus_orset_validate(states[0].p, states[0].n, a, NULL);
        return rc ? rc : plexus_buf_put(out, states[0].p, states[0].n);
    }
    if (k == 2) return merge2(states[0], states[1], a, out);

    merge_run runs[MERGE_RUNS_MAX];
    size_t top = 0;
    int rc = PLEXUS_OK;
    for (size_t i = 0; !rc && i + 1 < k; i += 2) {
        merge_run *r = &runs[top++];
        plexus_buf_init(&r->buf, a);
        r->height = 1;
        rc = merge2(states[i], states[i + 1], a, &r->buf);
        while (!rc && top >= 2 && runs[top - 2].height == runs[top - 1].height) {
            merge_run up = {.height = runs[top - 1].height + 1};
            plexus_buf_init(&up.buf, a);
            rc = merge2(run_bytes(&runs[top - 2]), run_bytes(&runs[top - 1]), a, &up.buf);
            plexus_buf_free(&runs[top - 1].buf);
            plexus_buf_free(&runs[top - 2].buf);
            runs[top - 2] = up;
            top--;
        }
    }

    /* The runs left (and an odd last input), smallest first, the last merge into out. */
    plexus_buf carry;
    plexus_buf_init(&carry, a);
    size_t j = top;
    plexus_bytes cur = k % 2 ? states[k - 1] : run_bytes(&runs[--j]);
    if (!rc && j == 0) rc = plexus_buf_put(out, cur.p, cur.n);
    while (!rc && j > 0) {
        j--;
        plexus_buf next;
        plexus_buf_init(&next, a);
        rc = merge2(run_bytes(&runs[j]), cur, a, j == 0 ? out : &next);
        plexus_buf_free(&carry);
        carry = next;
        cur = (plexus_bytes){carry.p, carry.len};
    }
    plexus_buf_free(&carry);
    for (size_t i = 0; i < top; i++)
        plexus_buf_free(&runs[i].buf);
    return rc;
}
