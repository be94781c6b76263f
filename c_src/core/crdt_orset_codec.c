/*
 * OR-Set decoding and validation (include/plexus/crdt_format.md, "OR-Set").
 *
 * Redis-style "validate before use": every count is bounded by the bytes left before
 * anything is allocated for it, every index is range-checked, and the canonical-form
 * rules are enforced so that equal states have equal bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "crdt_field.h"
#include "crdt_orset_codec.h"

/* Smallest encodings, used to bound counts by the bytes left. */
#define MIN_ACTOR_BYTES 3 /* len, 1 byte, vv */
#define MIN_DOT_BYTES 2   /* actor index, counter */
#define MIN_ENTRY_BYTES 5 /* len, 1 byte, ndots, one dot */

int orset_read_count(const uint8_t **pos, const uint8_t *end, size_t min_entry, size_t *count)
{
    uint64_t v;
    int rc = orset_varint(pos, end, &v);
    if (rc) return rc;
    if (v > (uint64_t)(end - *pos) / min_entry) return PLEXUS_ECOUNT;
    *count = (size_t)v;
    return PLEXUS_OK;
}

int orset_read_dot(const uint8_t **pos, const uint8_t *end, size_t n_actors, orset_dot *d)
{
    uint64_t actor;
    int rc = orset_varint(pos, end, &actor);
    if (rc) return rc;
    if (actor >= n_actors) return PLEXUS_EACTOR;
    rc = orset_varint(pos, end, &d->ctr);
    if (rc) return rc;
    if (d->ctr == 0) return PLEXUS_EDOT;
    d->actor = (uint32_t)actor;
    return PLEXUS_OK;
}

void orset_ctx_free(orset_ctx *c)
{
    if (c->a) {
        c->a->free(c->a->ctx, c->actors); /* vv shares this block */
        c->a->free(c->a->ctx, c->cloud);
    }
    memset(c, 0, sizeof *c);
}

static int parse_actors(orset_ctx *c, const uint8_t **pos)
{
    int rc = orset_read_count(pos, c->end, MIN_ACTOR_BYTES, &c->n_actors);
    if (rc) return rc;
    if (c->n_actors > PLEXUS_MAX_ACTORS) return PLEXUS_ETOOBIG;
    if (c->n_actors == 0) return PLEXUS_OK;
    size_t each = sizeof(plexus_bytes) + sizeof(uint64_t);
    void *block = c->a->malloc(c->a->ctx, c->n_actors * each);
    if (!block) return PLEXUS_ENOMEM;
    c->actors = block;
    c->vv = (uint64_t *)(c->actors + c->n_actors);
    for (size_t i = 0; i < c->n_actors; i++) {
        rc = crdt_read_field(pos, c->end, &c->actors[i]);
        if (rc) return rc;
        if (i && plexus_bytes_cmp(c->actors[i - 1].p, c->actors[i - 1].n, c->actors[i].p,
                                  c->actors[i].n) >= 0)
            return PLEXUS_EORDER;
        rc = plexus_varint_read(pos, c->end, &c->vv[i]);
        if (rc) return rc;
    }
    return PLEXUS_OK;
}

static int parse_cloud(orset_ctx *c, const uint8_t **pos)
{
    int rc = orset_read_count(pos, c->end, MIN_DOT_BYTES, &c->n_cloud);
    if (rc) return rc;
    if (c->n_cloud) {
        c->cloud = c->a->malloc(c->a->ctx, c->n_cloud * sizeof *c->cloud);
        if (!c->cloud) return PLEXUS_ENOMEM;
    }
    for (size_t i = 0; i < c->n_cloud; i++) {
        orset_dot *d = &c->cloud[i];
        rc = orset_read_dot(pos, c->end, c->n_actors, d);
        if (rc) return rc;
        if (i && orset_dot_cmp(&c->cloud[i - 1], d) >= 0) return PLEXUS_EORDER;
        /* A dot at vv + 1 (or below) belongs in the vector: one representation. */
        if (c->vv[d->actor] == UINT64_MAX || d->ctr <= c->vv[d->actor] + 1) return PLEXUS_EORDER;
    }
    /* Every listed actor is used: vv > 0 or present in the cloud. */
    size_t k = 0;
    for (size_t i = 0; i < c->n_actors; i++) {
        while (k < c->n_cloud && c->cloud[k].actor < i)
            k++;
        int in_cloud = k < c->n_cloud && c->cloud[k].actor == i;
        if (c->vv[i] == 0 && !in_cloud) return PLEXUS_EORDER;
    }
    return PLEXUS_OK;
}

int orset_parse_header(const uint8_t *s, size_t n, const plexus_alloc *a, orset_ctx *c)
{
    if (n < 2) {
        memset(c, 0, sizeof *c);
        return PLEXUS_ETRUNCATED;
    }
    if (s[0] != PLEXUS_CRDT_VERSION || s[1] != PLEXUS_TYPE_ORSET) {
        memset(c, 0, sizeof *c);
        return s[0] != PLEXUS_CRDT_VERSION ? PLEXUS_EVERSION : PLEXUS_ETYPE;
    }
    return orset_parse_context(s + 2, s + n, MIN_ENTRY_BYTES, a, c);
}

int orset_parse_context(const uint8_t *pos, const uint8_t *end, size_t min_entry,
                        const plexus_alloc *a, orset_ctx *c)
{
    memset(c, 0, sizeof *c);
    c->a = a;
    c->end = end;
    int rc = parse_actors(c, &pos);
    if (!rc) rc = parse_cloud(c, &pos);
    if (!rc) rc = orset_read_count(&pos, c->end, min_entry, &c->n_elems);
    if (rc) {
        orset_ctx_free(c);
        return rc;
    }
    c->elems = pos;
    return PLEXUS_OK;
}

int orset_cloud_has(const orset_ctx *c, uint32_t actor, uint64_t ctr)
{
    size_t lo = 0, hi = c->n_cloud;
    orset_dot key = {actor, ctr};
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = orset_dot_cmp(&c->cloud[mid], &key);
        if (cmp == 0) return 1;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

int orset_read_entry_dot(const orset_ctx *c, const uint8_t **pos, size_t i, orset_dot *last)
{
    orset_dot d;
    int rc = orset_read_dot(pos, c->end, c->n_actors, &d);
    if (rc) return rc;
    if (i && orset_dot_cmp(last, &d) >= 0) return PLEXUS_EORDER;
    if (!orset_covers(c, d.actor, d.ctr)) return PLEXUS_EDOT;
    *last = d;
    return PLEXUS_OK;
}

int orset_read_entry(const orset_ctx *c, const uint8_t **pos, const orset_entry *prev,
                     orset_entry *e)
{
    plexus_bytes elem;
    e->raw = *pos;
    int rc = crdt_read_field(pos, c->end, &elem);
    if (rc) return rc;
    if (prev && orset_cmp(prev->elem, prev->elen, elem.p, elem.n) >= 0) return PLEXUS_EORDER;
    e->elem = elem.p;
    e->elen = elem.n;
    rc = orset_read_count(pos, c->end, MIN_DOT_BYTES, &e->ndots);
    if (rc) return rc;
    if (e->ndots == 0) return PLEXUS_EORDER;
    e->dots = *pos;
    orset_dot last = {0, 0};
    for (size_t i = 0; i < e->ndots; i++)
        if ((rc = orset_read_entry_dot(c, pos, i, &last))) return rc;
    e->dots_end = *pos;
    return PLEXUS_OK;
}

int orset_cursor_next(orset_cursor *k)
{
    if (!k->left) {
        k->has = 0;
        return k->pos == k->c->end ? PLEXUS_OK : PLEXUS_ETRAILING;
    }
    orset_entry prev = k->cur;
    int rc = orset_read_entry(k->c, &k->pos, k->has ? &prev : NULL, &k->cur);
    if (rc) return rc;
    k->has = 1;
    k->left--;
    return PLEXUS_OK;
}

int orset_cursor_start(orset_cursor *k, const orset_ctx *c)
{
    memset(k, 0, sizeof *k);
    k->c = c;
    k->pos = c->elems;
    k->left = c->n_elems;
    return orset_cursor_next(k);
}

int orset_check_elems(const orset_ctx *c)
{
    orset_cursor k;
    int rc = orset_cursor_start(&k, c);
    while (!rc && k.has)
        rc = orset_cursor_next(&k);
    return rc;
}

int plexus_orset_validate(const uint8_t *s, size_t n, const plexus_alloc *a,
                          plexus_orset_info *info)
{
    orset_ctx c;
    int rc = orset_parse_header(s, n, a, &c);
    if (rc) return rc;
    rc = orset_check_elems(&c);
    if (!rc && info) {
        info->n_actors = c.n_actors;
        info->n_cloud = c.n_cloud;
        info->n_elems = c.n_elems;
        info->n_dots = 0;
        const uint8_t *pos = c.elems;
        orset_entry e;
        for (size_t i = 0; i < c.n_elems; i++) {
            if (orset_read_entry(&c, &pos, NULL, &e)) break; /* cannot fail: validated */
            info->n_dots += e.ndots;
        }
    }
    orset_ctx_free(&c);
    return rc;
}

int orset_write_context(plexus_buf *out, size_t n_actors, const plexus_bytes *actors,
                        const uint64_t *vv, size_t n_cloud, const orset_dot *cloud)
{
    size_t need = 2 + 2 * PLEXUS_VARINT_MAX + n_cloud * 2 * PLEXUS_VARINT_MAX;
    for (size_t i = 0; i < n_actors; i++)
        need += actors[i].n + 2 * PLEXUS_VARINT_MAX;
    int rc = plexus_buf_reserve(out, need);
    if (rc) return rc;
    out->p[out->len++] = PLEXUS_CRDT_VERSION;
    out->p[out->len++] = PLEXUS_TYPE_ORSET;
    put_varint(out, n_actors);
    for (size_t i = 0; i < n_actors; i++) {
        put_bytes(out, actors[i].p, actors[i].n);
        put_varint(out, vv[i]);
    }
    put_varint(out, n_cloud);
    for (size_t i = 0; i < n_cloud; i++) {
        put_varint(out, cloud[i].actor);
        put_varint(out, cloud[i].ctr);
    }
    return PLEXUS_OK;
}

int orset_begin_elems(plexus_buf *out, size_t max_count, size_t *mark)
{
    size_t room = plexus_varint_len(max_count);
    int rc = plexus_buf_reserve(out, room);
    if (rc) return rc;
    *mark = out->len;
    out->len += room;
    return PLEXUS_OK;
}

void orset_end_elems(plexus_buf *out, size_t mark, size_t max_count, size_t count)
{
    uint8_t tmp[PLEXUS_VARINT_MAX];
    size_t k = plexus_varint_write(tmp, count), room = plexus_varint_len(max_count);
    if (k != room) {
        size_t body = mark + room;
        memmove(out->p + mark + k, out->p + body, out->len - body);
        out->len -= room - k;
    }
    memcpy(out->p + mark, tmp, k);
}

static int dot_qsort_cmp(const void *x, const void *y)
{
    return orset_dot_cmp(x, y);
}

size_t orset_fold_cloud(uint64_t *vv, orset_dot *cloud, size_t n_cloud)
{
    if (n_cloud > 1) qsort(cloud, n_cloud, sizeof *cloud, dot_qsort_cmp);
    size_t kept = 0;
    for (size_t i = 0; i < n_cloud; i++) {
        orset_dot d = cloud[i];
        if (d.ctr <= vv[d.actor]) continue; /* covered, or a duplicate now folded */
        if (d.ctr == vv[d.actor] + 1) {     /* continues the vector */
            vv[d.actor] = d.ctr;
            continue;
        }
        if (kept && orset_dot_cmp(&cloud[kept - 1], &d) == 0) continue;
        cloud[kept++] = d;
    }
    return kept;
}
