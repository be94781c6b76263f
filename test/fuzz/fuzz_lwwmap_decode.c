/*
 * libFuzzer target for the C reader of LWW map bytes (plexus_lwwmap_validate, 0x02 'M'):
 * never a crash, an out-of-bounds read or a leak on any input; and for input it
 * accepts, no proper prefix is accepted and one byte more is trailing bytes (a
 * canonical state has exactly one length).
 */
#include <stdlib.h>
#include <string.h>

#include "plexus/crdt.h"
#include "plexus/system_alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const plexus_alloc *sys = plexus_system_alloc();
    if (plexus_lwwmap_validate(data, size, sys) != PLEXUS_OK) return 0;
    if (size <= 512)
        for (size_t n = 0; n < size; n++)
            if (plexus_lwwmap_validate(data, n, sys) == PLEXUS_OK) abort();
    uint8_t *longer = malloc(size + 1);
    if (!longer) return 0;
    memcpy(longer, data, size);
    longer[size] = 0;
    if (plexus_lwwmap_validate(longer, size + 1, sys) != PLEXUS_ETRAILING) abort();
    free(longer);
    return 0;
}
