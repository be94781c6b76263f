/*
 * The seniority commander rule; the rule itself is stated in include/plexus/topology.h.
 * Two linear scans find the commander and the wingmate, so no sort and no allocation.
 */
#include "plexus/topology.h"

int plexus_topology_compare(const plexus_topology_member *a, const plexus_topology_member *b)
{
    if (a->start_time != b->start_time) return a->start_time < b->start_time ? -1 : 1;
    return plexus_bytes_cmp(a->name.p, a->name.n, b->name.p, b->name.n);
}

/* A view naming a node twice (or a nameless node) is malformed: which entry's start
 * time counts would depend on the order, and nodes could then disagree. */
static int check_view(const plexus_topology_member *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (m[i].name.n == 0 || m[i].name.p == NULL) return PLEXUS_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (plexus_bytes_cmp(m[i].name.p, m[i].name.n, m[j].name.p, m[j].name.n) == 0)
                return PLEXUS_EINVAL;
    }
    return PLEXUS_OK;
}

/* Index of the most senior member other than `skip` (and not promoted, if asked), or
 * PLEXUS_TOPOLOGY_NONE when there is none. */
static size_t most_senior(const plexus_topology_member *m, size_t n, size_t skip,
                          bool skip_promoted)
{
    size_t best = PLEXUS_TOPOLOGY_NONE;
    for (size_t i = 0; i < n; i++) {
        if (i == skip || (skip_promoted && m[i].promoted)) continue;
        if (best == PLEXUS_TOPOLOGY_NONE || plexus_topology_compare(&m[i], &m[best]) < 0) best = i;
    }
    return best;
}

int plexus_topology_assign(const plexus_topology_member *members, size_t n, size_t quorum_size,
                           plexus_topology_role *roles, size_t *commander)
{
    if (n > PLEXUS_TOPOLOGY_MAX_NODES) return PLEXUS_ETOOBIG;
    if (n > 0 && (members == NULL || roles == NULL)) return PLEXUS_EINVAL;
    int rc = check_view(members, n);
    if (rc) return rc;

    size_t boss = PLEXUS_TOPOLOGY_NONE, wing = PLEXUS_TOPOLOGY_NONE;
    if (n > 0 && n >= quorum_size) {
        boss = most_senior(members, n, PLEXUS_TOPOLOGY_NONE, false);
        wing = most_senior(members, n, boss, true);
    }
    for (size_t i = 0; i < n; i++) {
        if (i == boss)
            roles[i] = PLEXUS_TOPOLOGY_COMMANDER;
        else if (members[i].promoted)
            roles[i] = PLEXUS_TOPOLOGY_RELAY;
        else if (i == wing)
            roles[i] = PLEXUS_TOPOLOGY_WINGMATE;
        else
            roles[i] = PLEXUS_TOPOLOGY_OBSERVER;
    }
    *commander = boss;
    return PLEXUS_OK;
}

const char *plexus_topology_role_name(plexus_topology_role r)
{
    switch (r) {
    case PLEXUS_TOPOLOGY_OBSERVER:
        return "observer";
    case PLEXUS_TOPOLOGY_WINGMATE:
        return "wingmate";
    case PLEXUS_TOPOLOGY_COMMANDER:
        return "commander";
    case PLEXUS_TOPOLOGY_RELAY:
        return "relay";
    }
    return "unknown";
}
