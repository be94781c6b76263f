/*
 * Distribution packets in and out of the C node.
 *
 * After the handshake an Erlang distribution connection carries packets of a 4-byte
 * big-endian length and a payload (length 0 is a tick). The C node frames them itself
 * (peer.c) so that a slow or frozen peer never blocks the loop; this file turns one
 * payload into a cn_msg and builds the payloads the node sends.
 *
 * A payload from ei-speaking peers is 'p' (pass-through), the control tuple in the
 * external term format, then for the message-carrying operations the message term.
 * ei's decoders trust their input (they take no length), so every term is first walked
 * by cn_term_check, which bounds every count and length by the bytes left and the
 * nesting depth (STYLE.md habit 4); only then do ei_decode_* read it. Anything that does
 * not check out is reported as malformed, and the caller drops and counts it. Funs,
 * compressed terms and atom-cache references are refused: nobody has a reason to send
 * them to this node. Nothing here makes an atom anywhere: names stay byte strings.
 *
 * Fuzzed by test/fuzz/fuzz_cnode_msg.c.
 */
#ifndef PLEXUS_CNODE_MSG_H
#define PLEXUS_CNODE_MSG_H

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

#define CN_REG_NAME "plexus_cnode"
#define CN_MAX_PACKET (8u << 20) /* larger packets close the connection */
#define CN_MAX_DEPTH 64
#define CN_NODE_MAX 255 /* bytes of "name@host" we accept */

/* Distribution control operations (erts/doc/src/erl_dist_protocol.xml). */
enum {
    CN_OP_SEND = 2,
    CN_OP_REG_SEND = 6,
    CN_OP_SEND_TT = 12,
    CN_OP_REG_SEND_TT = 16,
    CN_OP_MONITOR_P = 19,
    CN_OP_DEMONITOR_P = 20,
    CN_OP_MONITOR_P_EXIT = 21,
    CN_OP_SEND_SENDER = 22,
    CN_OP_SEND_SENDER_TT = 23
};

typedef enum cn_msg_kind {
    CN_MSG_IGNORED = 0, /* well formed, nothing for us (link, monitor, unknown term) */
    CN_MSG_REPLY,       /* {Ref, Term}: an answer to one of our calls */
    CN_MSG_SUBSCRIBE,   /* {subscribe, Pid} | {subscribe, Pid, Opts} */
    CN_MSG_UNSUBSCRIBE, /* {unsubscribe, Pid} */
    CN_MSG_CALL,        /* {'$gen_call', {Pid, Tag}, Request} */
    CN_MSG_MONITOR_EXIT /* a process we monitor (a subscriber) exited */
} cn_msg_kind;

typedef enum cn_call_kind {
    CN_CALL_UNKNOWN = 0,
    CN_CALL_SNAPSHOT,      /* snapshot */
    CN_CALL_HEALTH,        /* {health, Node} with Node a binary, atom or string */
    CN_CALL_STATS,         /* stats */
    CN_CALL_IS_AUTH,       /* {is_auth, Node} (net_adm:ping to our net_kernel): yes */
    CN_CALL_REGISTRY_VIEW, /* registry_view | {registry_view, Max} (Max in max) */
    CN_CALL_GOSSIP_PEERS   /* gossip_peers */
} cn_call_kind;

typedef struct cn_msg {
    cn_msg_kind kind;
    int op;           /* control operation */
    erlang_pid pid;   /* subscriber or caller */
    int answers;      /* subscribe option `answers` given */
    int discovery;    /* subscribe option `discovery` given (gossip and registry events) */
    erlang_ref ref;   /* REPLY: the tag; MONITOR_EXIT: the monitor ref */
    const char *term; /* REPLY: the reply term (no version byte) */
    int term_len;
    const char *tag; /* CALL: the tag term, re-sent as is */
    int tag_len;
    cn_call_kind call;
    char node[CN_NODE_MAX + 1]; /* CALL_HEALTH: the node asked about */
    size_t node_len;
    unsigned long max; /* CALL_REGISTRY_VIEW: entries asked for, 0 = the default */
} cn_msg;

/*
 * Walks one term at buf[*index] (ei index convention), at most len bytes in all, and
 * advances *index past it. 0 if it is a complete, supported, bounded term; -1 if not.
 */
int cn_term_check(const char *buf, size_t len, int *index);

/* Decodes one payload (the bytes after the 4-byte length). 0 ok, -1 malformed. */
int cn_msg_decode(const char *buf, size_t len, cn_msg *out);

/* Walks a checked list of atoms (a REPLY term of erlang:nodes/0): calls fn for each
 * atom that fits CN_NODE_MAX; other elements are skipped. -1 if it is not a list. */
int cn_msg_atom_list(const char *term, int len, void (*fn)(void *ctx, const char *name, size_t n),
                     void *ctx);

/* The reply term is the atom `yes`. */
int cn_msg_is_yes(const char *term, int len);

/*
 * Encoders: each starts a packet in x (4-byte length placeholder, 'p', control tuple);
 * the caller appends the message term with a version byte (ei_x_encode_version, ...)
 * when there is one and then calls cn_packet_finish. -1 on an ei error.
 */
int cn_packet_reg_send(ei_x_buff *x, const erlang_pid *from, const char *to_name);
int cn_packet_send(ei_x_buff *x, const erlang_pid *to);
int cn_packet_monitor(ei_x_buff *x, int op, const erlang_pid *from, const erlang_pid *to,
                      const erlang_ref *ref);
/* Writes the length prefix; -1 if the packet is too large. */
int cn_packet_finish(ei_x_buff *x);

#endif
