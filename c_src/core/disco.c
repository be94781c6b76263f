/*
 * Shared discovery wire helpers; see include/plexus/disco.h.
 */
#include <string.h>

#include "plexus/disco.h"

static int name_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == ':' || c == '[' || c == ']' || c == '@';
}

int plexus_disco_valid_name(const uint8_t *p, size_t n)
{
    if (!p || n < 3 || n > PLEXUS_DISCO_NAME_MAX) return 0;
    size_t at = n, ats = 0;
    for (size_t i = 0; i < n; i++) {
        if (!name_byte(p[i])) return 0;
        if (p[i] == '@') {
            at = i;
            ats++;
        }
    }
    return ats == 1 && at > 0 && at < n - 1;
}

static int key_ok(plexus_bytes k)
{
    if (k.n < 1 || k.n > PLEXUS_DISCO_KEY_MAX) return 0;
    for (size_t i = 0; i < k.n; i++)
        if (k.p[i] < 0x21 || k.p[i] > 0x7e) return 0;
    return 1;
}

int plexus_disco_valid_meta(const plexus_disco_meta *m)
{
    if (m->n > PLEXUS_DISCO_META_MAX) return 0;
    for (size_t i = 0; i < m->n; i++) {
        if (!key_ok(m->kv[i].key) || m->kv[i].val.n > PLEXUS_DISCO_VAL_MAX) return 0;
        if (m->kv[i].val.n && !m->kv[i].val.p) return 0;
        if (i > 0 && plexus_bytes_cmp(m->kv[i - 1].key.p, m->kv[i - 1].key.n, m->kv[i].key.p,
                                      m->kv[i].key.n) >= 0)
            return 0;
    }
    return 1;
}

void plexus_disco_sort_meta(plexus_disco_meta *m)
{
    for (size_t i = 1; i < m->n && i < PLEXUS_DISCO_META_MAX; i++) {
        plexus_disco_kv x = m->kv[i];
        size_t j = i;
        while (j > 0 &&
               plexus_bytes_cmp(m->kv[j - 1].key.p, m->kv[j - 1].key.n, x.key.p, x.key.n) > 0) {
            m->kv[j] = m->kv[j - 1];
            j--;
        }
        m->kv[j] = x;
    }
}

size_t plexus_disco_meta_len(const plexus_disco_meta *m)
{
    size_t len = plexus_varint_len(m->n);
    for (size_t i = 0; i < m->n; i++)
        len += plexus_varint_len(m->kv[i].key.n) + m->kv[i].key.n +
               plexus_varint_len(m->kv[i].val.n) + m->kv[i].val.n;
    return len;
}

int plexus_disco_put_varint(plexus_buf *b, uint64_t v)
{
    uint8_t tmp[PLEXUS_VARINT_MAX];
    return plexus_buf_put(b, tmp, plexus_varint_write(tmp, v));
}

int plexus_disco_put_bytes(plexus_buf *b, const uint8_t *p, size_t n)
{
    int rc = plexus_disco_put_varint(b, n);
    return rc ? rc : plexus_buf_put(b, p, n);
}

int plexus_disco_put_meta(plexus_buf *b, const plexus_disco_meta *m)
{
    int rc = plexus_disco_put_varint(b, m->n);
    for (size_t i = 0; !rc && i < m->n; i++) {
        rc = plexus_disco_put_bytes(b, m->kv[i].key.p, m->kv[i].key.n);
        if (!rc) rc = plexus_disco_put_bytes(b, m->kv[i].val.p, m->kv[i].val.n);
    }
    return rc;
}

int plexus_disco_get_uint(const uint8_t **pos, const uint8_t *end, uint64_t max, uint64_t *out)
{
    uint64_t v;
    int rc = plexus_varint_read(pos, end, &v);
    if (rc) return rc;
    if (v > max) return PLEXUS_ETOOBIG;
    *out = v;
    return PLEXUS_OK;
}

int plexus_disco_get_bytes(const uint8_t **pos, const uint8_t *end, size_t min, size_t max,
                           plexus_bytes *out)
{
    uint64_t n;
    int rc = plexus_varint_read(pos, end, &n);
    if (rc) return rc;
    if (n > max) return PLEXUS_ETOOBIG;
    if (n < min) return PLEXUS_EINVAL;
    if (n > (uint64_t)(end - *pos)) return PLEXUS_ETRUNCATED;
    out->p = *pos;
    out->n = (size_t)n;
    *pos += n;
    return PLEXUS_OK;
}

int plexus_disco_get_meta(const uint8_t **pos, const uint8_t *end, plexus_disco_meta *out)
{
    uint64_t n;
    int rc = plexus_varint_read(pos, end, &n);
    if (rc) return rc;
    if (n > PLEXUS_DISCO_META_MAX) return PLEXUS_ETOOBIG;
    /* Each pair takes at least 3 bytes (two lengths and a 1-byte key). */
    if (n * 3 > (uint64_t)(end - *pos)) return PLEXUS_ECOUNT;
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        plexus_disco_kv *kv = &out->kv[i];
        if ((rc = plexus_disco_get_bytes(pos, end, 1, PLEXUS_DISCO_KEY_MAX, &kv->key))) return rc;
        if ((rc = plexus_disco_get_bytes(pos, end, 0, PLEXUS_DISCO_VAL_MAX, &kv->val))) return rc;
        if (!key_ok(kv->key)) return PLEXUS_EINVAL;
        if (i > 0 &&
            plexus_bytes_cmp(out->kv[i - 1].key.p, out->kv[i - 1].key.n, kv->key.p, kv->key.n) >= 0)
            return PLEXUS_EORDER;
        out->n = i + 1;
    }
    return PLEXUS_OK;
}
