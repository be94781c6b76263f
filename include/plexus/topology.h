/*
 * plexus topology: the seniority commander rule (doc/DESIGN.md §2, Raxol Topology parity).
 *
 * No voting: the member that has been in the cluster longest is commander. Every node
 * that holds the same membership view computes the same answer, because the rule is a
 * pure function of the view:
 *
 *   - seniority order: smaller start_time first; equal start times are broken by node
 *     name, bytewise (memcmp on the common prefix, shorter first);
 *   - no commander (and no wingmate) while the view has fewer than quorum_size members;
 *   - commander = the most senior member;
 *   - relay = a member explicitly promoted (an operator's override, carried in the view);
 *   - wingmate = the most senior member that is neither commander nor relay: the
 *     standby that becomes commander if the commander leaves and nobody else changes;
 *   - observer = everyone else.
 *
 * Promotion never overrides the commander: seniority is the one rule every node agrees
 * on, and a per-node override of it could give two nodes two different commanders.
 * "Re-election when the commander goes down" is just recomputing over the new view.
 *
 * start_time is whatever the cluster agrees to carry with membership (e.g. each node's
 * start in ms since the epoch, announced by the node itself); it is compared, never
 * interpreted. Names are borrowed bytes and must be unique and non-empty.
 */
#ifndef PLEXUS_TOPOLOGY_H
#define PLEXUS_TOPOLOGY_H

#include <stdbool.h>
#include <stdint.h>

#include "plexus/common.h"

/* Largest view accepted; the rule is O(n^2) in the duplicate check only. */
#define PLEXUS_TOPOLOGY_MAX_NODES 4096
/* "No commander" index. */
#define PLEXUS_TOPOLOGY_NONE SIZE_MAX

typedef enum plexus_topology_role {
    PLEXUS_TOPOLOGY_OBSERVER = 0,
    PLEXUS_TOPOLOGY_WINGMATE = 1,
    PLEXUS_TOPOLOGY_COMMANDER = 2,
    PLEXUS_TOPOLOGY_RELAY = 3
} plexus_topology_role;

typedef struct plexus_topology_member {
    plexus_bytes name;   /* node name, e.g. "a@host"; borrowed */
    uint64_t start_time; /* smaller = more senior */
    bool promoted;       /* operator promoted this node to relay */
} plexus_topology_member;

/*
 * Assigns roles[i] to members[i] for all n and sets *commander to the commander's index
 * or PLEXUS_TOPOLOGY_NONE. Order of members does not matter. quorum_size 0 counts as 1.
 * Errors: PLEXUS_EINVAL for an empty or duplicate name (or NULL arrays with n > 0),
 * PLEXUS_ETOOBIG for n > PLEXUS_TOPOLOGY_MAX_NODES; outputs untouched on error.
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_topology_assign(const plexus_topology_member *members,
                                                        size_t n, size_t quorum_size,
                                                        plexus_topology_role *roles,
                                                        size_t *commander);

/* Seniority order: < 0 if a is more senior than b, 0 only for the same name and time. */
PLEXUS_API int plexus_topology_compare(const plexus_topology_member *a,
                                       const plexus_topology_member *b);

PLEXUS_API const char *plexus_topology_role_name(plexus_topology_role r);

#endif
