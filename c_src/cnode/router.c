/*
 * Routing of incoming packets: the one place that decides what a decoded packet means.
 * peer.c frames the bytes and hands every packet here (cnode.packet_sink, installed by
 * main.c); replies to our own references go to the ping, rpc or health-check that sent
 * them, everything else to the registered process (server.c).
 */
#include <stdint.h>

#include "cnode/router.h"
#include "cnode/clock.h"
#include "cnode/discovery.h"
#include "cnode/log.h"
#include "cnode/msg.h"
#include "cnode/peer.h"
#include "cnode/server.h"
#include "cnode/state.h"
#include "plexus/health.h"

void cn_router_packet(cnode *cn, peer *p, const unsigned char *buf, size_t len, uint64_t now)
{
    cn_msg m;
    cn->packets++;
    if (cn_msg_decode((const char *)buf, len, &m) != 0) {
        cn->malformed++;
        cn_debug("%s: malformed packet of %zu bytes dropped (%llu so far)", p->name, len,
                 (unsigned long long)cn->malformed);
        return;
    }
    if (m.kind == CN_MSG_REPLY) {
        unsigned kind;
        uint32_t seq;
        if (!cn_ref_is_ours(cn, &m.ref, &kind, &seq)) {
            cn->ignored++;
            return;
        }
        if (kind == 1) {
            unsigned slot = seq % CN_PING_SLOTS;
            if (p->slot_seq[slot] != seq || !p->slot_sent_us[slot] ||
                !cn_msg_is_yes(m.term, m.term_len)) {
                cn->ignored++;
                return;
            }
            uint64_t rtt = cn_now_us() - p->slot_sent_us[slot];
            p->slot_sent_us[slot] = 0;
            uint32_t rtt_us = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
            if (p->in_health &&
                plexus_health_answer(cn->health, (const uint8_t *)p->name, p->name_len, now, rtt_us,
                                     cn_health_emit, cn) != PLEXUS_OK)
                cn_debug("%s was not in the detector", p->name);
            cn_server_answer(cn, p, rtt_us);
        } else if (kind == 2) {
            cn_discovery_rpc_reply(cn, m.term, m.term_len, now);
        } else if (kind == 4) {
            cn_server_check_reply(cn, p, seq, m.term, m.term_len, now);
        } else {
            cn->ignored++;
        }
        return;
    }
    if (m.kind == CN_MSG_IGNORED) {
        cn->ignored++;
        return;
    }
    cn_server_handle(cn, p, &m, now);
}
