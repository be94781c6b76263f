/*
 * Wire codec of election messages (format in include/plexus/election.h). Messages reach
 * the NIF as opaque binaries from other nodes, so the decoder trusts nothing: every
 * field is read against the bytes left, varints must be minimal, and the same checks as
 * plexus_election_msg_valid() apply, so a decoded message is always one the state
 * machine accepts as well-formed. One message has exactly one encoding.
 */
#include "plexus/election.h"

#define FLAG_REJECT 0x01
#define HEADER_LEN 3

static bool known_type(uint64_t t)
{
    return t >= PLEXUS_ELECTION_MSG_PRE_VOTE && t <= PLEXUS_ELECTION_MSG_HEARTBEAT_RESP;
}

static bool is_response(plexus_election_msg_type t)
{
    return t == PLEXUS_ELECTION_MSG_PRE_VOTE_RESP || t == PLEXUS_ELECTION_MSG_VOTE_RESP ||
           t == PLEXUS_ELECTION_MSG_HEARTBEAT_RESP;
}

bool plexus_election_msg_valid(const plexus_election_msg *m)
{
    if (!known_type((uint64_t)m->type)) return false;
    if (m->reject && !is_response(m->type)) return false;
    if (m->from == 0 || m->to == 0 || m->from == m->to) return false;
    return m->term <= PLEXUS_ELECTION_TERM_MAX;
}

int plexus_election_msg_encode(const plexus_election_msg *m, uint8_t *out, size_t cap, size_t *len)
{
    if (!plexus_election_msg_valid(m)) return PLEXUS_EINVAL;
    size_t need = HEADER_LEN + plexus_varint_len(m->cluster_id) + plexus_varint_len(m->from) +
                  plexus_varint_len(m->to) + plexus_varint_len(m->term);
    if (need > cap) return PLEXUS_ETOOBIG;
    size_t n = 0;
    out[n++] = PLEXUS_ELECTION_WIRE_VERSION;
    out[n++] = (uint8_t)m->type;
    out[n++] = m->reject ? FLAG_REJECT : 0;
    n += plexus_varint_write(out + n, m->cluster_id);
    n += plexus_varint_write(out + n, m->from);
    n += plexus_varint_write(out + n, m->to);
    n += plexus_varint_write(out + n, m->term);
    *len = n;
    return PLEXUS_OK;
}

int plexus_election_msg_decode(const uint8_t *p, size_t n, plexus_election_msg *m)
{
    if (n == 0) return PLEXUS_ETRUNCATED;
    if (p[0] != PLEXUS_ELECTION_WIRE_VERSION) return PLEXUS_EVERSION;
    if (n < HEADER_LEN) return PLEXUS_ETRUNCATED;
    if (!known_type(p[1])) return PLEXUS_ETYPE;
    if (p[2] & ~FLAG_REJECT) return PLEXUS_EINVAL;
    m->type = (plexus_election_msg_type)p[1];
    m->reject = p[2] & FLAG_REJECT;

    const uint8_t *pos = p + HEADER_LEN, *end = p + n;
    uint64_t *fields[] = {&m->cluster_id, &m->from, &m->to, &m->term};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        int rc = plexus_varint_read(&pos, end, fields[i]);
        if (rc) return rc;
    }
    if (pos != end) return PLEXUS_ETRAILING;
    return plexus_election_msg_valid(m) ? PLEXUS_OK : PLEXUS_EINVAL;
}

const char *plexus_election_msg_type_name(plexus_election_msg_type t)
{
    switch (t) {
    case PLEXUS_ELECTION_MSG_PRE_VOTE:
        return "pre_vote";
    case PLEXUS_ELECTION_MSG_PRE_VOTE_RESP:
        return "pre_vote_resp";
    case PLEXUS_ELECTION_MSG_VOTE:
        return "vote";
    case PLEXUS_ELECTION_MSG_VOTE_RESP:
        return "vote_resp";
    case PLEXUS_ELECTION_MSG_HEARTBEAT:
        return "heartbeat";
    case PLEXUS_ELECTION_MSG_HEARTBEAT_RESP:
        return "heartbeat_resp";
    }
    return "unknown";
}
