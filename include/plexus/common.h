/*
 * plexus core: shared types for every area.
 *
 * The core is pure (doc/DESIGN.md, "c_src/core"): no I/O, no clock, no global state.
 * Memory comes from an injected allocator, so tests can fail any allocation and the
 * NIF can route everything through enif_alloc. Every fallible function returns
 * PLEXUS_OK (0) or a negative PLEXUS_E* code; plexus_strerror() has the one table of
 * human messages and plexus_errname() the short names the Erlang side turns into atoms.
 */
#ifndef PLEXUS_COMMON_H
#define PLEXUS_COMMON_H

#include <stddef.h>
#include <stdint.h>

/*
 * The core links statically into the NIF library, the C node and the tests, so its
 * symbols stay hidden: nothing outside needs them, and hidden calls inside the NIF
 * library skip the PLT and can be inlined across files by LTO (measured: about 20%
 * of a merge). ERL_NIF_INIT exports the NIF entry point itself.
 */
#if defined(__GNUC__)
#define PLEXUS_API __attribute__((visibility("hidden")))
#define PLEXUS_MUST_CHECK __attribute__((warn_unused_result))
#else
#define PLEXUS_API
#define PLEXUS_MUST_CHECK
#endif

/* Error codes. Keep in step with the table in c_src/core/common.c. */
enum plexus_error {
    PLEXUS_OK = 0,
    PLEXUS_ENOMEM = -1,       /* the allocator said no */
    PLEXUS_ETRUNCATED = -2,   /* input ends inside a field */
    PLEXUS_EVERSION = -3,     /* unknown format version byte */
    PLEXUS_ETYPE = -4,        /* a state of another type (e.g. LWW passed as OR-Set) */
    PLEXUS_EVARINT = -5,      /* overlong, non-minimal or > 64-bit varint */
    PLEXUS_ECOUNT = -6,       /* a count larger than the bytes left could hold */
    PLEXUS_EORDER = -7,       /* not canonical: unsorted or duplicate entries */
    PLEXUS_EACTOR = -8,       /* actor index out of range */
    PLEXUS_EDOT = -9,         /* dot not covered by its own context, or counter 0 */
    PLEXUS_ETRAILING = -10,   /* bytes after the end of the state */
    PLEXUS_EOVERFLOW = -11,   /* a counter or size would overflow */
    PLEXUS_EINVAL = -12,      /* bad argument from the caller (empty element, ...) */
    PLEXUS_ENOTPRESENT = -13, /* strict remove of an element that is not in the set */
    PLEXUS_ETOOBIG = -14,     /* input over a documented bound */
    PLEXUS_ECLUSTER = -15,    /* message from another cluster */
    PLEXUS_ESTATE = -16,      /* call not valid in the current state */
    PLEXUS_EAUTH = -17,       /* authentication failed (sealed data) */
    PLEXUS_EREPLAY = -18,     /* replayed or stale message */
    PLEXUS_ENOTFOUND = -19,   /* no such entry */
    PLEXUS_EFULL = -20,       /* a bounded table is full */
    PLEXUS_ERROR_MIN = -20
};

/* Human-readable message; never NULL. */
PLEXUS_API const char *plexus_strerror(int err);
/* Short snake_case name ("truncated", "not_canonical", ...); never NULL. */
PLEXUS_API const char *plexus_errname(int err);

/*
 * Injected allocator. realloc(ctx, NULL, n) must behave as malloc; free(ctx, NULL) is a
 * no-op. A NULL result means out of memory and the core returns PLEXUS_ENOMEM after
 * releasing everything it took.
 */
typedef struct plexus_alloc {
    void *(*malloc)(void *ctx, size_t n);
    void *(*realloc)(void *ctx, void *p, size_t n);
    void (*free)(void *ctx, void *p);
    void *ctx;
} plexus_alloc;

/* A read-only view of bytes owned by someone else. */
typedef struct plexus_bytes {
    const uint8_t *p;
    size_t n;
} plexus_bytes;

/*
 * Growable output buffer. The owner calls plexus_buf_init, hands it to core
 * functions, then either takes `p`/`len` (and frees with the same allocator) or calls
 * plexus_buf_free. On error a core function leaves the buffer valid but its contents
 * unspecified.
 */
typedef struct plexus_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
    const plexus_alloc *a;
} plexus_buf;

PLEXUS_API void plexus_buf_init(plexus_buf *b, const plexus_alloc *a);
PLEXUS_API void plexus_buf_free(plexus_buf *b);
/* Make room for `more` bytes past len. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_buf_reserve(plexus_buf *b, size_t more);
PLEXUS_API PLEXUS_MUST_CHECK int plexus_buf_put(plexus_buf *b, const void *src, size_t n);

/* Unsigned LEB128, at most 10 bytes, minimal encoding only. */
#define PLEXUS_VARINT_MAX 10
/* Writes v at dst (room for PLEXUS_VARINT_MAX bytes); returns bytes written. */
PLEXUS_API size_t plexus_varint_write(uint8_t *dst, uint64_t v);
PLEXUS_API size_t plexus_varint_len(uint64_t v);
/*
 * Reads a varint from [*pos, end). On success advances *pos and returns PLEXUS_OK;
 * PLEXUS_ETRUNCATED if it runs off the end, PLEXUS_EVARINT if non-minimal or > 64 bits.
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_varint_read(const uint8_t **pos, const uint8_t *end,
                                                    uint64_t *v);

/*
 * Reads a varint from bytes a validator already accepted (so it is minimal and ends
 * before the end of the input), without bounds checks: the decoders' second pass. The
 * shift guard only keeps a misuse from being UB.
 */
static inline uint64_t plexus_varint_trusted(const uint8_t **pos)
{
    const uint8_t *p = *pos;
    uint64_t x = 0;
    unsigned shift = 0;
    uint8_t byte;
    do {
        byte = *p++;
        x |= (uint64_t)(byte & 0x7f) << shift;
        shift += 7;
    } while ((byte & 0x80) && shift < 64);
    *pos = p;
    return x;
}

/* Byte order used for elements and actors: memcmp on the common prefix, shorter first. */
PLEXUS_API int plexus_bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn);

#endif
