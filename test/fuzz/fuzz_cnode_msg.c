/*
 * libFuzzer target: the C node's decoder of incoming distribution packets
 * (c_src/cnode/msg.c). Any byte string is a payload a hostile or broken peer could
 * send after the handshake; the decoder must reject or classify it without reading out
 * of bounds, and whatever it accepts must be walkable by the helpers the daemon uses
 * on it (the reply term of erlang:nodes/0, the `yes` of a ping).
 *
 * Seeds (test/fuzz/seeds/fuzz_cnode_msg/) are real packets: a ping answer, an rpc
 * answer, subscribe, a gen_server call, a MONITOR_P_EXIT, a call whose request is a
 * fun (answered badarg), a liveness check answer, an exit signal with a payload (op 26).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnode/msg.h"

static void count_atom(void *ctx, const char *name, size_t n)
{
    size_t *c = ctx;
    *c += n && name[0];
}

static void count_pid(void *ctx, const erlang_pid *pid)
{
    size_t *c = ctx;
    *c += pid->num & 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exact-size heap copy, so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    cn_msg m;
    if (cn_msg_decode(buf, size, &m) == 0) {
        if (m.kind == CN_MSG_REPLY) {
            size_t c = 0;
            (void)cn_msg_atom_list(m.term, m.term_len, count_atom, &c);
            (void)cn_msg_is_yes(m.term, m.term_len);
            (void)cn_msg_partition_pids(m.term, m.term_len, count_pid, &c);
        }
        if (m.kind == CN_MSG_CALL && m.call == CN_CALL_HEALTH && m.node_len > CN_NODE_MAX) abort();
        /* a salvaged call re-sends its tag: it must lie inside the packet */
        if (m.kind == CN_MSG_CALL &&
            (m.tag < buf || m.tag_len < 0 || m.tag + m.tag_len > buf + size))
            abort();
    }
    /* the term checker on its own, from every offset of a short input */
    for (size_t off = 0; off < size && off < 8; off++) {
        int i = (int)off;
        (void)cn_term_check(buf, size, &i);
    }
    free(buf);
    return 0;
}
