/* Test harness and fault-injecting allocator; see harness.h. */
#include "harness.h"

int harness_failed_checks;
const char *harness_current = "";
static int tests_passed, tests_failed;

static long alloc_count, alloc_live, fail_at;
static int fired;

void harness_run(const char *name, void (*fn)(void))
{
    int before = harness_failed_checks;
    harness_current = name;
    fault_reset();
    long live_before = alloc_live;
    fn();
    if (alloc_live != live_before) {
        harness_failed_checks++;
        fprintf(stderr, "  FAIL %s: %ld blocks leaked\n", name, alloc_live - live_before);
    }
    if (harness_failed_checks == before) {
        tests_passed++;
    } else {
        tests_failed++;
        fprintf(stderr, "FAILED %s\n", name);
    }
}

int harness_finish(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, tests_passed, tests_failed);
    return tests_failed ? 1 : 0;
}

/* Each block carries its size in a header so realloc can be tracked. */
typedef struct {
    size_t n;
    size_t pad; /* keep 16-byte alignment */
} block_hdr;

static int should_fail(void)
{
    alloc_count++;
    if (fail_at && alloc_count == fail_at) {
        fired = 1;
        return 1;
    }
    return 0;
}

static void *t_malloc(void *ctx, size_t n)
{
    (void)ctx;
    if (should_fail()) return NULL;
    block_hdr *h = malloc(sizeof *h + n);
    if (!h) return NULL;
    h->n = n;
    alloc_live++;
    return h + 1;
}

static void *t_realloc(void *ctx, void *p, size_t n)
{
    if (!p) return t_malloc(ctx, n);
    if (should_fail()) return NULL;
    block_hdr *h = (block_hdr *)p - 1;
    block_hdr *nh = realloc(h, sizeof *nh + n);
    if (!nh) return NULL;
    nh->n = n;
    return nh + 1;
}

static void t_free(void *ctx, void *p)
{
    (void)ctx;
    if (!p) return;
    alloc_live--;
    free((block_hdr *)p - 1);
}

const plexus_alloc test_alloc = {t_malloc, t_realloc, t_free, NULL};

void fault_fail_at(long n)
{
    fail_at = n;
    alloc_count = 0;
    fired = 0;
}
long fault_count(void)
{
    return alloc_count;
}
long fault_live(void)
{
    return alloc_live;
}
int fault_fired(void)
{
    return fired;
}
void fault_reset(void)
{
    fault_fail_at(0);
}

uint64_t test_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
