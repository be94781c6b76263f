/*
 * libFuzzer target for the TTL registry wire codec and server step
 * (c_src/core/registry_msg.c, registry.c).
 *
 * On any input: decoding never reads out of bounds; an unsigned message that decodes
 * re-encodes to exactly the input bytes (one encoding per message; VIEW entries are
 * walked to the end). Then the input is read as a script of chunks (one length byte
 * plus that many bytes), each a datagram handed to a live server table of at most 8
 * entries at a clock that advances 10 s per chunk, from one of three sources (the
 * host itself or two addresses, picked by the chunk's length): the server never
 * crashes, never holds more than its bound, every reply it writes decodes, and no
 * reply to an address is longer than its datagram unless it is a VIEW.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/system_alloc.h"
#include "plexus/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rnd(void *ctx)
{
    uint64_t *s = ctx;
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}

static void reencode(const uint8_t *data, size_t size, const plexus_registry_msg *m)
{
    plexus_buf b;
    plexus_buf_init(&b, plexus_system_alloc());
    int rc = PLEXUS_EINVAL;
    switch (m->type) {
    case PLEXUS_REGISTRY_ANNOUNCE:
        if (m->is_signed) goto out;
        rc = plexus_registry_encode_announce(&b, m->request_id, m->peer, &m->addrs, &m->meta,
                                             m->ttl_ms, m->issued_ms, NULL);
        break;
    case PLEXUS_REGISTRY_BYE:
        if (m->is_signed) goto out;
        rc = plexus_registry_encode_bye(&b, m->request_id, m->peer, m->issued_ms, NULL);
        break;
    case PLEXUS_REGISTRY_HANDSHAKE:
        rc = plexus_registry_encode_handshake(&b, m->request_id, m->ttl_ms, m->heartbeat_ms,
                                              &m->addrs);
        break;
    case PLEXUS_REGISTRY_QUERY:
        /* zero padding up to the input's size reproduces it */
        rc = plexus_registry_encode_query(&b, m->request_id, m->max_entries, m->cookie, size);
        break;
    case PLEXUS_REGISTRY_COOKIE:
        rc = plexus_registry_encode_cookie(&b, m->request_id, m->cookie);
        break;
    case PLEXUS_REGISTRY_REFUSED:
        rc = plexus_registry_encode_refused(&b, m->request_id, m->reason);
        break;
    case PLEXUS_REGISTRY_VIEW: {
        const uint8_t *pos = m->entries.p;
        plexus_registry_entry e;
        uint64_t k = 0;
        while ((rc = plexus_registry_view_next(m, &pos, &e)) == PLEXUS_OK)
            k++;
        if (rc != 1 || k != m->n_entries) abort();
        goto out;
    }
    }
    if (rc != PLEXUS_OK) abort();
    if (b.len != size || memcmp(b.p, data, size) != 0) abort();
out:
    plexus_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        if (sodium_init() < 0) abort();
        init = 1;
    }
    plexus_registry_msg m;
    if (plexus_registry_msg_decode(data, size, &m) == PLEXUS_OK) {
        reencode(data, size, &m);
        if (m.is_signed) (void)plexus_registry_msg_verify(&m);
    }

    plexus_registry_config cfg = {0};
    cfg.max_entries = 8;
    plexus_registry *r = NULL;
    if (plexus_registry_new(&cfg, plexus_system_alloc(), &r) != PLEXUS_OK) abort();
    plexus_buf reply;
    plexus_buf_init(&reply, plexus_system_alloc());
    uint64_t rng = 1, now = 1700000000000ULL;
    size_t pos = 0;
    while (pos < size) {
        size_t n = data[pos++];
        if (n > size - pos) n = size - pos;
        static const char *const sources[3] = {"", "10.0.0.1:1", "10.0.0.2:2"};
        const char *src = sources[n % 3];
        plexus_registry_result res;
        if (plexus_registry_handle(r, data + pos, n, (const uint8_t *)src, strlen(src), now, rnd,
                                   &rng, &reply, &res))
            abort();
        if (reply.len && plexus_registry_msg_decode(reply.p, reply.len, &m) != PLEXUS_OK) abort();
        if (*src && reply.len > n && res.outcome != PLEXUS_REGISTRY_QUERIED) abort();
        if (plexus_registry_size(r) > 8) abort();
        now += 10000;
        pos += n;
    }
    plexus_buf_free(&reply);
    plexus_registry_free(r);
    return 0;
}
