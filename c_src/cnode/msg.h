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
 * nesting depth (doc/STYLE.md habit 4); only then do ei_decode_* read it. Anything that does
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
/* Larger packets are skipped unread (counted, logged); the connection stays up. The
 * largest packets worth reading are rpc answers: erlang:nodes/0 of a big cluster and
 * the subscriber liveness checks (server.c), well under 1 MB each. */
#define CN_MAX_PACKET (8u << 20)
#define CN_MAX_DEPTH 64
#define CN_NODE_MAX 255 /* bytes of "name@host" we accept */

/* Distribution control operations (erts/doc/src/erl_dist_protocol.xml). */
enum {
    CN_OP_SEND = 2,
    CN_OP_REG_SEND = 6,
    CN_OP_SEND_TT = 12,
    CN_OP_REG_SEND_TT = 16,
    CN_OP_SEND_SENDER = 22,
    CN_OP_SEND_SENDER_TT = 23,
    CN_OP_PAYLOAD_EXIT = 24,
    CN_OP_PAYLOAD_EXIT_TT = 25,
    CN_OP_PAYLOAD_EXIT2 = 26,
    CN_OP_PAYLOAD_EXIT2_TT = 27,
    CN_OP_PAYLOAD_MONITOR_P_EXIT = 28,
    CN_OP_SPAWN_REQUEST = 29,
    CN_OP_SPAWN_REQUEST_TT = 30,
    CN_OP_ALIAS_SEND = 33,
    CN_OP_ALIAS_SEND_TT = 34
};

typedef enum cn_msg_kind {
    CN_MSG_IGNORED = 0, /* well formed, nothing for us (link, monitor, unknown term) */
    CN_MSG_REPLY,       /* {Ref, Term}: an answer to one of our calls */
    CN_MSG_SUBSCRIBE,   /* {subscribe, Pid} | {subscribe, Pid, Opts} */
    CN_MSG_UNSUBSCRIBE, /* {unsubscribe, Pid} */
    CN_MSG_CALL         /* {'$gen_call', {Pid, Tag}, Request} */
} cn_msg_kind;

typedef enum cn_call_kind {
    CN_CALL_UNKNOWN = 0,
    CN_CALL_SNAPSHOT,      /* snapshot */
    CN_CALL_HEALTH,        /* {health, Node} with Node a binary, atom or string */
    CN_CALL_STATS,         /* stats */
    CN_CALL_IS_AUTH,       /* {is_auth, Node} (net_adm:ping to our net_kernel): yes */
    CN_CALL_REGISTRY_VIEW, /* registry_view | {registry_view, Max} (Max in max) */
    CN_CALL_GOSSIP_PEERS,  /* gossip_peers */
    CN_CALL_BADARG         /* a known request with a bad argument, or a request term this
                            * node cannot read (a fun, ...): answered {error, badarg} */
} cn_call_kind;

typedef struct cn_msg {
    cn_msg_kind kind;
    int op;           /* control operation */
    erlang_pid pid;   /* subscriber or caller */
    int answers;      /* subscribe option `answers` given */
    int discovery;    /* subscribe option `discovery` given (gossip and registry events) */
    int bad_opts;     /* SUBSCRIBE: Opts is not a list: refused with badarg */
    erlang_ref ref;   /* REPLY: the tag */
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

/* Walks a checked REPLY term {Living, [Pid]} (the answer of lists:partition/2 to the
 * subscriber liveness check, server.c): calls fn for each pid of the second list; -1
 * if the term has another shape ({badrpc, _}, ...). */
int cn_msg_partition_pids(const char *term, int len, void (*fn)(void *ctx, const erlang_pid *pid),
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
/* Writes the length prefix; -1 if the packet is too large. */
int cn_packet_finish(ei_x_buff *x);

#endif
