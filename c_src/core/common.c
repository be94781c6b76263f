/*
 * Shared core helpers: the error table, the growable buffer and LEB128 varints.
 * Varints are the only integer encoding in plexus binary formats; decoders insist on
 * the minimal form so that equal values always have equal bytes (canonical states).
 */
#include <string.h>

#include "plexus/common.h"

static const struct {
    int code;
    const char *name;
    const char *msg;
} errors[] = {
    {PLEXUS_OK, "ok", "success"},
    {PLEXUS_ENOMEM, "no_memory", "out of memory"},
    {PLEXUS_ETRUNCATED, "truncated", "input ends inside a field"},
    {PLEXUS_EVERSION, "bad_version", "unknown format version"},
    {PLEXUS_ETYPE, "wrong_type", "state of another type"},
    {PLEXUS_EVARINT, "bad_varint", "malformed varint"},
    {PLEXUS_ECOUNT, "bad_count", "count larger than the input can hold"},
    {PLEXUS_EORDER, "not_canonical", "entries unsorted, duplicated or not canonical"},
    {PLEXUS_EACTOR, "bad_actor", "actor index out of range"},
    {PLEXUS_EDOT, "bad_dot", "dot not covered by the causal context"},
    {PLEXUS_ETRAILING, "trailing_bytes", "bytes after the end of the state"},
    {PLEXUS_EOVERFLOW, "overflow", "counter or size overflow"},
    {PLEXUS_EINVAL, "invalid_argument", "invalid argument"},
    {PLEXUS_ENOTPRESENT, "not_present", "element not present"},
    {PLEXUS_ETOOBIG, "too_big", "input exceeds a size bound"},
    {PLEXUS_ECLUSTER, "wrong_cluster", "message from another cluster"},
    {PLEXUS_ESTATE, "bad_state", "call not valid in the current state"},
    {PLEXUS_EAUTH, "auth_failed", "authentication failed"},
    {PLEXUS_EREPLAY, "replayed", "replayed or stale message"},
    {PLEXUS_ENOTFOUND, "not_found", "no such entry"},
    {PLEXUS_EFULL, "full", "table is full"},
};

static size_t find_error(int err)
{
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == err) return i;
    return (size_t)-1;
}

const char *plexus_strerror(int err)
{
    size_t i = find_error(err);
    return i == (size_t)-1 ? "unknown error" : errors[i].msg;
}

const char *plexus_errname(int err)
{
    size_t i = find_error(err);
    return i == (size_t)-1 ? "unknown_error" : errors[i].name;
}

void plexus_buf_init(plexus_buf *b, const plexus_alloc *a)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->a = a;
}

void plexus_buf_free(plexus_buf *b)
{
    if (b->p) b->a->free(b->a->ctx, b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int plexus_buf_reserve(plexus_buf *b, size_t more)
{
    if (more <= b->cap - b->len) return PLEXUS_OK;
    if (more > SIZE_MAX / 2 - b->len) return PLEXUS_EOVERFLOW;
    size_t want = b->len + more;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want)
        cap *= 2;
    uint8_t *p = b->a->realloc(b->a->ctx, b->p, cap);
    if (!p) return PLEXUS_ENOMEM;
    b->p = p;
    b->cap = cap;
    return PLEXUS_OK;
}

int plexus_buf_put(plexus_buf *b, const void *src, size_t n)
{
    int rc = plexus_buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    return PLEXUS_OK;
}

size_t plexus_varint_write(uint8_t *dst, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        dst[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    dst[i++] = (uint8_t)v;
    return i;
}

size_t plexus_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

int plexus_varint_read(const uint8_t **pos, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pos;
    if (p < end && *p < 0x80) { /* fast path: one byte */
        *v = *p;
        *pos = p + 1;
        return PLEXUS_OK;
    }
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (p >= end) return PLEXUS_ETRUNCATED;
        uint8_t byte = *p++;
        if (shift == 63 && byte > 1) return PLEXUS_EVARINT; /* more than 64 bits */
        x |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            if (byte == 0 && shift > 0) return PLEXUS_EVARINT; /* non-minimal */
            *v = x;
            *pos = p;
            return PLEXUS_OK;
        }
    }
    return PLEXUS_EVARINT;
}

int plexus_bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return an < bn ? -1 : (an > bn ? 1 : 0);
}
