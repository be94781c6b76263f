/* Unit tests of c_src/core/common.c: varints, buffer, byte order, error table. */
#include "harness.h"

static void test_varint_roundtrip(void)
{
    uint64_t vals[] = {
        0,         1, 127, 128, 255, 300, 16383, 16384, (1ULL << 32) - 1, 1ULL << 32, (1ULL << 63),
        UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t buf[PLEXUS_VARINT_MAX];
        size_t n = plexus_varint_write(buf, vals[i]);
        CHECK_EQ_INT(n, plexus_varint_len(vals[i]));
        const uint8_t *p = buf;
        uint64_t v = 0;
        CHECK_EQ_INT(plexus_varint_read(&p, buf + n, &v), PLEXUS_OK);
        CHECK(v == vals[i]);
        CHECK(p == buf + n);
        /* every strict prefix is truncated */
        for (size_t k = 0; k < n; k++) {
            const uint8_t *q = buf;
            CHECK_EQ_INT(plexus_varint_read(&q, buf + k, &v), PLEXUS_ETRUNCATED);
            CHECK(q == buf);
        }
    }
}

static void test_varint_rejects_non_minimal(void)
{
    const uint8_t zero_padded[] = {0x80, 0x00};
    const uint8_t one_padded[] = {0x81, 0x80, 0x00};
    const uint8_t too_long[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    uint64_t v;
    const uint8_t *p = zero_padded;
    CHECK_EQ_INT(plexus_varint_read(&p, zero_padded + 2, &v), PLEXUS_EVARINT);
    p = one_padded;
    CHECK_EQ_INT(plexus_varint_read(&p, one_padded + 3, &v), PLEXUS_EVARINT);
    p = too_long;
    CHECK_EQ_INT(plexus_varint_read(&p, too_long + 10, &v), PLEXUS_EVARINT);
    p = eleven;
    CHECK_EQ_INT(plexus_varint_read(&p, eleven + 11, &v), PLEXUS_EVARINT);
}

static void test_buf_grows_and_fails_cleanly(void)
{
    int rc = 0;
    FOR_EACH_FAULT(rc, {
        plexus_buf b;
        plexus_buf_init(&b, &test_alloc);
        rc = PLEXUS_OK;
        for (int i = 0; i < 1000 && rc == PLEXUS_OK; i++)
            rc = plexus_buf_put(&b, "abcdefgh", 8);
        if (rc == PLEXUS_OK) CHECK_EQ_INT(b.len, 8000);
        plexus_buf_free(&b);
    });
}

static void test_bytes_order(void)
{
    CHECK(plexus_bytes_cmp((const uint8_t *)"ab", 2, (const uint8_t *)"abc", 3) < 0);
    CHECK(plexus_bytes_cmp((const uint8_t *)"abc", 3, (const uint8_t *)"ab", 2) > 0);
    CHECK(plexus_bytes_cmp((const uint8_t *)"abd", 3, (const uint8_t *)"abc", 3) > 0);
    CHECK(plexus_bytes_cmp((const uint8_t *)"", 0, (const uint8_t *)"", 0) == 0);
}

static void test_error_table(void)
{
    for (int e = 0; e >= PLEXUS_ERROR_MIN; e--) {
        CHECK(strcmp(plexus_errname(e), "unknown_error") != 0);
        CHECK(strcmp(plexus_strerror(e), "unknown error") != 0);
    }
    CHECK(strcmp(plexus_errname(1), "unknown_error") == 0);
}

int main(void)
{
    RUN(test_varint_roundtrip);
    RUN(test_varint_rejects_non_minimal);
    RUN(test_buf_grows_and_fails_cleanly);
    RUN(test_bytes_order);
    RUN(test_error_table);
    return harness_finish("test_common");
}
