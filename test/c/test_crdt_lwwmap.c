/*
 * The C reader of LWW map bytes (c_src/core/crdt_lwwmap_codec.c, 0x02 'M'): canonical
 * bytes pass; each rule of crdt_format.md "LWW map", broken once, is refused with its
 * error; no truncation passes; every allocation failure is clean. (That it accepts
 * exactly what the Erlang reader accepts is PropEr-checked: prop_plexus_lwwmap.)
 */
#include "harness.h"
#include "plexus/crdt.h"

/*
 * Actors "a" (vv 2) and "b" (vv 0, cloud dot (b, 2)); key "k1" with the write (a, 1),
 * ts 5, "v"; key "k2" with (a, 2), ts 300, "w" and (b, 2), ts 7, "x".
 */
static const uint8_t good[] = {2, 'M', 2,    1, 'a', 2,   1, 'b', 0,   1, 1,   2,   2,
                               2, 'k', '1',  1, 0,   1,   5, 1,   'v', 2, 'k', '2', 2,
                               0, 2,   0xac, 2, 1,   'w', 1, 2,   7,   1, 'x'};

static int validate(const uint8_t *s, size_t n)
{
    return plexus_lwwmap_validate(s, n, &test_alloc);
}

/* good[] with byte i replaced by v */
static int with_byte(size_t i, uint8_t v)
{
    uint8_t b[sizeof good];
    memcpy(b, good, sizeof good);
    b[i] = v;
    return validate(b, sizeof b);
}

static void canonical_bytes_pass(void)
{
    CHECK_EQ_INT(validate(good, sizeof good), PLEXUS_OK);
    /* the empty map */
    const uint8_t empty[] = {2, 'M', 0, 0, 0};
    CHECK_EQ_INT(validate(empty, sizeof empty), PLEXUS_OK);
}

static void header_refused(void)
{
    CHECK_EQ_INT(validate(good, 0), PLEXUS_ETRUNCATED);
    CHECK_EQ_INT(validate(good, 1), PLEXUS_ETRUNCATED);
    CHECK_EQ_INT(with_byte(0, 1), PLEXUS_EVERSION);
    CHECK_EQ_INT(with_byte(1, 'S'), PLEXUS_ETYPE);
    CHECK_EQ_INT(with_byte(1, 'K'), PLEXUS_ETYPE); /* a keyed delta: the header is Erlang's */
}

static void context_rules(void)
{
    CHECK_EQ_INT(with_byte(4, 'c'), PLEXUS_EORDER); /* actors "c", "b": not ascending */
    CHECK_EQ_INT(with_byte(11, 1), PLEXUS_EORDER);  /* cloud dot (b, 1) continues vv 0 */
    CHECK_EQ_INT(with_byte(10, 0), PLEXUS_EORDER);  /* cloud dot (a, 2) is covered */
    CHECK_EQ_INT(with_byte(10, 2), PLEXUS_EACTOR);  /* cloud actor index out of range */
    CHECK_EQ_INT(with_byte(11, 0), PLEXUS_EDOT);    /* counter 0 */
    /* actor "b" used by nobody: vv 0 and no cloud dot (the writes of b dropped too) */
    const uint8_t unused[] = {2, 'M', 2,   1,   'a', 2, 1, 'b', 0, 0,
                              1, 2,   'k', '1', 1,   0, 1, 5,   1, 'v'};
    CHECK_EQ_INT(validate(unused, sizeof unused), PLEXUS_EORDER);
    /* counts larger than the bytes left could hold */
    CHECK_EQ_INT(with_byte(2, 100), PLEXUS_ECOUNT);
    CHECK_EQ_INT(with_byte(12, 100), PLEXUS_ECOUNT);
}

static void entry_rules(void)
{
    CHECK_EQ_INT(with_byte(15, '2'), PLEXUS_EORDER);   /* keys "k2", "k2": duplicate */
    CHECK_EQ_INT(with_byte(15, '3'), PLEXUS_EORDER);   /* keys "k3", "k2": not ascending */
    CHECK_EQ_INT(with_byte(17, 2), PLEXUS_EACTOR);     /* write actor index out of range */
    CHECK_EQ_INT(with_byte(18, 0), PLEXUS_EDOT);       /* write counter 0 */
    CHECK_EQ_INT(with_byte(18, 3), PLEXUS_EDOT);       /* write (a, 3): not in the context */
    CHECK_EQ_INT(with_byte(33, 1), PLEXUS_EDOT);       /* write (b, 1): not in the context */
    CHECK_EQ_INT(with_byte(32, 0), PLEXUS_EORDER);     /* writes (a, 2), (a, 2) */
    CHECK_EQ_INT(with_byte(20, 0), PLEXUS_EORDER);     /* empty value */
    CHECK_EQ_INT(with_byte(29, 0x00), PLEXUS_EVARINT); /* ts 0xac 0x00: a second spelling */
    /* a key without writes */
    const uint8_t no_writes[] = {2, 'M', 1, 1, 'a', 1, 0, 1, 2, 'k', '1', 0};
    CHECK_EQ_INT(validate(no_writes, sizeof no_writes), PLEXUS_ECOUNT);
    const uint8_t no_writes2[] = {2, 'M', 1, 1, 'a', 1, 0, 1, 2, 'k', '1', 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ_INT(validate(no_writes2, sizeof no_writes2), PLEXUS_EORDER);
}

static void truncations_and_trailing_refused(void)
{
    for (size_t n = 0; n < sizeof good; n++)
        CHECK(validate(good, n) != PLEXUS_OK);
    uint8_t longer[sizeof good + 1];
    memcpy(longer, good, sizeof good);
    longer[sizeof good] = 0;
    CHECK_EQ_INT(validate(longer, sizeof longer), PLEXUS_ETRAILING);
}

static void every_allocation_failure_is_clean(void)
{
    int rc = 0;
    FOR_EACH_FAULT(rc, rc = validate(good, sizeof good));
}

int main(void)
{
    RUN(canonical_bytes_pass);
    RUN(header_refused);
    RUN(context_rules);
    RUN(entry_rules);
    RUN(truncations_and_trailing_refused);
    RUN(every_allocation_failure_is_clean);
    return harness_finish("crdt_lwwmap");
}
