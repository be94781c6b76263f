/*
 * Validating decoder and encoders of distribution packets; see msg.h.
 */
#include "cnode/msg.h"

#include <string.h>

static uint32_t be16(const unsigned char *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Room for n more bytes at i? */
#define NEED(n)                                                                                    \
    do {                                                                                           \
        if ((size_t)(n) > len - i) return -1;                                                      \
    } while (0)

/* Counts UTF-8 characters; -1 if the bytes are not UTF-8 or hold over 255 of them. */
static int atom_chars_ok(const unsigned char *p, size_t n, int utf8)
{
    if (!utf8) return n <= 255 ? 0 : -1;
    size_t chars = 0;
    for (size_t k = 0; k < n;) {
        unsigned char c = p[k];
        size_t more = c < 0x80             ? 0
                      : (c & 0xe0) == 0xc0 ? 1
                      : (c & 0xf0) == 0xe0 ? 2
                      : (c & 0xf8) == 0xf0 ? 3
                                           : 9;
        if (more == 9 || more > n - k - 1) return -1;
        for (size_t j = 1; j <= more; j++)
            if ((p[k + j] & 0xc0) != 0x80) return -1;
        k += more + 1;
        chars++;
    }
    return chars <= 255 ? 0 : -1;
}

static int check_atom(const unsigned char *b, size_t len, size_t *pi)
{
    size_t i = *pi;
    NEED(1);
    unsigned char tag = b[i++];
    size_t n;
    int utf8;
    switch (tag) {
    case ERL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
        NEED(2);
        n = be16(b + i);
        i += 2;
        utf8 = tag == ERL_ATOM_UTF8_EXT;
        break;
    case ERL_SMALL_ATOM_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        NEED(1);
        n = b[i++];
        utf8 = tag == ERL_SMALL_ATOM_UTF8_EXT;
        break;
    default:
        return -1;
    }
    NEED(n);
    if (atom_chars_ok(b + i, n, utf8)) return -1;
    *pi = i + n;
    return 0;
}

static int check(const unsigned char *b, size_t len, size_t *pi, int depth)
{
    size_t i = *pi;
    if (depth > CN_MAX_DEPTH) return -1;
    NEED(1);
    unsigned char tag = b[i];
    uint32_t n;
    switch (tag) {
    case ERL_SMALL_INTEGER_EXT:
        NEED(2);
        i += 2;
        break;
    case ERL_INTEGER_EXT:
        NEED(5);
        i += 5;
        break;
    case ERL_FLOAT_EXT:
        NEED(32);
        i += 32;
        break;
    case 'F': /* NEW_FLOAT_EXT */
        NEED(9);
        i += 9;
        break;
    case ERL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        if (check_atom(b, len, &i)) return -1;
        break;
    case ERL_PID_EXT:
    case ERL_NEW_PID_EXT:
        i++;
        if (check_atom(b, len, &i)) return -1;
        NEED(tag == ERL_PID_EXT ? 9 : 12);
        i += tag == ERL_PID_EXT ? 9 : 12;
        break;
    case ERL_PORT_EXT:
    case ERL_NEW_PORT_EXT:
    case ERL_V4_PORT_EXT:
        i++;
        if (check_atom(b, len, &i)) return -1;
        n = tag == ERL_PORT_EXT ? 5 : tag == ERL_NEW_PORT_EXT ? 8 : 12;
        NEED(n);
        i += n;
        break;
    case ERL_REFERENCE_EXT:
        i++;
        if (check_atom(b, len, &i)) return -1;
        NEED(5);
        i += 5;
        break;
    case ERL_NEW_REFERENCE_EXT:
    case ERL_NEWER_REFERENCE_EXT:
        i++;
        NEED(2);
        n = be16(b + i);
        i += 2;
        if (n == 0 || n > 5) return -1; /* erlang_ref holds at most 5 words */
        if (check_atom(b, len, &i)) return -1;
        NEED((tag == ERL_NEW_REFERENCE_EXT ? 1 : 4) + 4 * (size_t)n);
        i += (tag == ERL_NEW_REFERENCE_EXT ? 1 : 4) + 4 * (size_t)n;
        break;
    case ERL_SMALL_TUPLE_EXT:
    case ERL_LARGE_TUPLE_EXT:
    case ERL_LIST_EXT:
    case ERL_MAP_EXT: {
        i++;
        if (tag == ERL_SMALL_TUPLE_EXT) {
            NEED(1);
            n = b[i++];
        } else {
            NEED(4);
            n = be32(b + i);
            i += 4;
        }
        /* every element takes at least one byte: bound the count before walking */
        size_t elems = (size_t)n * (tag == ERL_MAP_EXT ? 2 : 1) + (tag == ERL_LIST_EXT);
        if (n > len - i || elems > len - i) return -1;
        for (size_t k = 0; k < elems; k++)
            if (check(b, len, &i, depth + 1)) return -1;
        break;
    }
    case ERL_NIL_EXT:
        i++;
        break;
    case ERL_STRING_EXT:
        i++;
        NEED(2);
        n = be16(b + i);
        i += 2;
        NEED(n);
        i += n;
        break;
    case ERL_BINARY_EXT:
        i++;
        NEED(4);
        n = be32(b + i);
        i += 4;
        NEED(n);
        i += n;
        break;
    case ERL_BIT_BINARY_EXT:
        i++;
        NEED(5);
        n = be32(b + i);
        if (b[i + 4] < 1 || b[i + 4] > 8 || n == 0) return -1;
        i += 5;
        NEED(n);
        i += n;
        break;
    case ERL_SMALL_BIG_EXT:
        i++;
        NEED(2);
        n = b[i];
        i += 2;
        NEED(n);
        i += n;
        break;
    case ERL_LARGE_BIG_EXT:
        i++;
        NEED(5);
        n = be32(b + i);
        i += 5;
        NEED(n);
        i += n;
        break;
    case ERL_EXPORT_EXT: /* fun M:F/A: three plain terms */
        i++;
        if (check_atom(b, len, &i) || check_atom(b, len, &i)) return -1;
        NEED(2);
        if (b[i] != ERL_SMALL_INTEGER_EXT) return -1;
        i += 2;
        break;
    default: /* closures, compressed terms, atom cache refs, local ext */
        return -1;
    }
    *pi = i;
    return 0;
}

int cn_term_check(const char *buf, size_t len, int *index)
{
    if (*index < 0 || (size_t)*index > len || len > CN_MAX_PACKET) return -1;
    size_t i = (size_t)*index;
    if (check((const unsigned char *)buf, len, &i, 0)) return -1;
    *index = (int)i;
    return 0;
}

/* A version byte then one checked term; *start is where the term begins. */
static int versioned_term(const char *buf, size_t len, int *index, int *start)
{
    if ((size_t)*index >= len || (unsigned char)buf[*index] != 131) return -1;
    (*index)++;
    *start = *index;
    return cn_term_check(buf, len, index);
}

/* Decodes an atom (checked) into dst, UTF-8; 0 ok. */
static int get_atom(const char *buf, int *index, char *dst, size_t dstlen)
{
    char tmp[MAXATOMLEN_UTF8];
    if (ei_decode_atom_as(buf, index, tmp, sizeof tmp, ERLANG_UTF8, NULL, NULL) < 0) return -1;
    size_t n = strlen(tmp);
    if (n >= dstlen) return -1;
    memcpy(dst, tmp, n + 1);
    return 0;
}

static int is_atom(const char *buf, int index, const char *want)
{
    char tmp[MAXATOMLEN_UTF8];
    int type, size;
    if (ei_get_type(buf, &index, &type, &size) < 0) return 0;
    if (type != ERL_ATOM_EXT && type != ERL_SMALL_ATOM_EXT && type != ERL_ATOM_UTF8_EXT &&
        type != ERL_SMALL_ATOM_UTF8_EXT)
        return 0;
    if (ei_decode_atom_as(buf, &index, tmp, sizeof tmp, ERLANG_UTF8, NULL, NULL) < 0) return 0;
    return strcmp(tmp, want) == 0;
}

static int get_type(const char *buf, int index)
{
    int type, size;
    if (ei_get_type(buf, &index, &type, &size) < 0) return -1;
    return type;
}

/* A node name as a binary, atom or string; 0 ok. */
static int get_name(const char *buf, int *index, char *dst, size_t dstlen, size_t *outlen)
{
    int type, size;
    if (ei_get_type(buf, index, &type, &size) < 0) return -1;
    if (type == ERL_BINARY_EXT) {
        if (size <= 0 || (size_t)size >= dstlen) return -1;
        long n;
        if (ei_decode_binary(buf, index, dst, &n) < 0) return -1;
        dst[n] = 0;
        *outlen = (size_t)n;
    } else if (type == ERL_STRING_EXT) {
        if (size <= 0 || (size_t)size >= dstlen) return -1;
        if (ei_decode_string(buf, index, dst) < 0) return -1;
        *outlen = strlen(dst);
    } else {
        if (get_atom(buf, index, dst, dstlen)) return -1;
        *outlen = strlen(dst);
    }
    if (memchr(dst, 0, *outlen)) return -1;
    return 0;
}

/* The message term at buf[index..len): classify it. */
static int classify(const char *buf, int index, int end, cn_msg *out)
{
    int arity;
    int i = index;
    if (ei_decode_tuple_header(buf, &i, &arity) < 0) return 0; /* not a tuple: ignored */
    int t0 = get_type(buf, i);
    if (arity == 2 &&
        (t0 == ERL_NEW_REFERENCE_EXT || t0 == ERL_NEWER_REFERENCE_EXT || t0 == ERL_REFERENCE_EXT)) {
        if (ei_decode_ref(buf, &i, &out->ref) < 0) return -1;
        out->term = buf + i;
        out->term_len = end - i;
        out->kind = CN_MSG_REPLY;
        return 0;
    }
    if ((arity == 2 || arity == 3) && is_atom(buf, i, "subscribe")) {
        if (ei_skip_term(buf, &i) < 0) return -1;
        if (get_type(buf, i) != ERL_PID_EXT && get_type(buf, i) != ERL_NEW_PID_EXT) return 0;
        if (ei_decode_pid(buf, &i, &out->pid) < 0) return -1;
        if (arity == 3) { /* Opts: a list; `answers` asks for every ping answer,
                           * `discovery` for gossip and registry events */
            int n;
            if (get_type(buf, i) == ERL_NIL_EXT) {
                n = 0;
            } else if (get_type(buf, i) != ERL_LIST_EXT || ei_decode_list_header(buf, &i, &n) < 0) {
                out->bad_opts = 1; /* the pid gets {not_subscribed, _, badarg} */
                n = 0;
            }
            for (int k = 0; k < n; k++) {
                if (is_atom(buf, i, "answers")) out->answers = 1;
                if (is_atom(buf, i, "discovery")) out->discovery = 1;
                if (ei_skip_term(buf, &i) < 0) return -1;
            }
        }
        out->kind = CN_MSG_SUBSCRIBE;
        return 0;
    }
    if (arity == 2 && is_atom(buf, i, "unsubscribe")) {
        if (ei_skip_term(buf, &i) < 0) return -1;
        if (get_type(buf, i) != ERL_PID_EXT && get_type(buf, i) != ERL_NEW_PID_EXT) return 0;
        if (ei_decode_pid(buf, &i, &out->pid) < 0) return -1;
        out->kind = CN_MSG_UNSUBSCRIBE;
        return 0;
    }
    if (arity == 3 && is_atom(buf, i, "$gen_call")) {
        if (ei_skip_term(buf, &i) < 0) return -1;
        int a2;
        if (ei_decode_tuple_header(buf, &i, &a2) < 0 || a2 != 2) return 0;
        if (get_type(buf, i) != ERL_PID_EXT && get_type(buf, i) != ERL_NEW_PID_EXT) return 0;
        if (ei_decode_pid(buf, &i, &out->pid) < 0) return -1;
        out->tag = buf + i;
        if (ei_skip_term(buf, &i) < 0) return -1;
        out->tag_len = (int)(buf + i - out->tag);
        out->kind = CN_MSG_CALL;
        out->call = CN_CALL_UNKNOWN;
        if (is_atom(buf, i, "snapshot")) {
            out->call = CN_CALL_SNAPSHOT;
        } else if (is_atom(buf, i, "stats")) {
            out->call = CN_CALL_STATS;
        } else if (is_atom(buf, i, "registry_view")) {
            out->call = CN_CALL_REGISTRY_VIEW;
        } else if (is_atom(buf, i, "gossip_peers")) {
            out->call = CN_CALL_GOSSIP_PEERS;
        } else {
            int a3 = 0;
            int j = i;
            if (ei_decode_tuple_header(buf, &j, &a3) != 0) a3 = 0;
            if (a3 == 2 && is_atom(buf, j, "health")) {
                if (ei_skip_term(buf, &j) < 0) return -1;
                out->call = get_name(buf, &j, out->node, sizeof out->node, &out->node_len) == 0
                                ? CN_CALL_HEALTH
                                : CN_CALL_BADARG;
            } else if (a3 == 2 && is_atom(buf, j, "is_auth")) {
                out->call = CN_CALL_IS_AUTH;
            } else if (a3 == 2 && is_atom(buf, j, "registry_view")) {
                unsigned long max;
                if (ei_skip_term(buf, &j) < 0) return -1;
                int t = get_type(buf, j);
                out->call = CN_CALL_BADARG;
                if ((t == ERL_SMALL_INTEGER_EXT || t == ERL_INTEGER_EXT) &&
                    ei_decode_ulong(buf, &j, &max) == 0 && max > 0) {
                    out->call = CN_CALL_REGISTRY_VIEW;
                    out->max = max;
                }
            }
        }
        return 0;
    }
    return 0;
}

/*
 * A message term that fails the check may still be a gen_server call whose request
 * this node cannot read ({'$gen_call', {Pid, Tag}, fun ...}): when the call envelope
 * and the reply-to check out, it becomes CN_CALL_BADARG so the caller gets an answer
 * instead of a timeout. The request is the last thing in the packet, so nothing after
 * it needs finding. 0 if salvaged, -1 if not.
 */
static int salvage_call(const char *buf, size_t len, int start, cn_msg *out)
{
    const unsigned char *b = (const unsigned char *)buf;
    int i = start;
    if (i < 0 || (size_t)i + 2 > len || b[i] != ERL_SMALL_TUPLE_EXT || b[i + 1] != 3) return -1;
    i += 2;
    int j = i;
    if (cn_term_check(buf, len, &j) || !is_atom(buf, i, "$gen_call")) return -1;
    i = j;
    int arity;
    if (cn_term_check(buf, len, &j)) return -1; /* {Pid, Tag} */
    if (ei_decode_tuple_header(buf, &i, &arity) < 0 || arity != 2) return -1;
    if (get_type(buf, i) != ERL_PID_EXT && get_type(buf, i) != ERL_NEW_PID_EXT) return -1;
    if (ei_decode_pid(buf, &i, &out->pid) < 0) return -1;
    out->tag = buf + i;
    out->tag_len = j - i;
    if ((size_t)j >= len) return -1; /* no request at all */
    out->kind = CN_MSG_CALL;
    out->call = CN_CALL_BADARG;
    return 0;
}

int cn_msg_decode(const char *buf, size_t len, cn_msg *out)
{
    memset(out, 0, sizeof *out);
    out->kind = CN_MSG_IGNORED;
    if (len < 3 || len > CN_MAX_PACKET || (unsigned char)buf[0] != ERL_PASS_THROUGH) return -1;
    int index = 1, ctl;
    if (versioned_term(buf, len, &index, &ctl)) return -1;
    int after_ctl = index;
    int i = ctl, arity;
    long op;
    if (ei_decode_tuple_header(buf, &i, &arity) < 0 || arity < 1) return -1;
    if (ei_decode_long(buf, &i, &op) < 0) return -1;
    out->op = (int)op;
    int has_msg = 0, has_payload = 0;
    switch (op) {
    case CN_OP_SEND:           /* {2, Unused, ToPid} */
    case CN_OP_SEND_TT:        /* {12, Unused, ToPid, Token} */
    case CN_OP_REG_SEND:       /* {6, FromPid, Unused, ToName} */
    case CN_OP_REG_SEND_TT:    /* {16, FromPid, Unused, ToName, Token} */
    case CN_OP_SEND_SENDER:    /* {22, FromPid, ToPid} */
    case CN_OP_SEND_SENDER_TT: /* {23, FromPid, ToPid, Token} */
        has_msg = 1;
        break;
    case CN_OP_PAYLOAD_EXIT:           /* 24..28: an exit or monitor signal whose */
    case CN_OP_PAYLOAD_EXIT_TT:        /* reason follows the control term; */
    case CN_OP_PAYLOAD_EXIT2:          /* 29, 30: spawn requests, their argument */
    case CN_OP_PAYLOAD_EXIT2_TT:       /* list; 33, 34: sends to an alias (this */
    case CN_OP_PAYLOAD_MONITOR_P_EXIT: /* node makes none). Checked, then ignored. */
    case CN_OP_SPAWN_REQUEST:
    case CN_OP_SPAWN_REQUEST_TT:
    case CN_OP_ALIAS_SEND:
    case CN_OP_ALIAS_SEND_TT:
        has_payload = 1;
        break;
    default: /* links, monitors of us, exits, ...: nothing to do */
        break;
    }
    if (!has_msg && !has_payload) return (size_t)after_ctl == len ? 0 : -1;
    int msg = -1;
    index = after_ctl;
    if (versioned_term(buf, len, &index, &msg)) {
        if (has_msg) return salvage_call(buf, len, msg, out);
        return -1;
    }
    if ((size_t)index != len) return -1; /* trailing bytes */
    if (has_payload) return 0;
    return classify(buf, msg, index, out);
}

int cn_msg_atom_list(const char *term, int len, void (*fn)(void *, const char *, size_t), void *ctx)
{
    int i = 0, n;
    if (len <= 0) return -1;
    if (get_type(term, 0) == ERL_NIL_EXT) return 0;
    if (ei_decode_list_header(term, &i, &n) < 0) return -1;
    for (int k = 0; k < n; k++) {
        char name[MAXATOMLEN_UTF8];
        int t = get_type(term, i);
        if ((t == ERL_ATOM_EXT || t == ERL_SMALL_ATOM_EXT || t == ERL_ATOM_UTF8_EXT ||
             t == ERL_SMALL_ATOM_UTF8_EXT) &&
            get_atom(term, &i, name, sizeof name) == 0) {
            size_t nl = strlen(name);
            if (nl > 0 && nl <= CN_NODE_MAX) fn(ctx, name, nl);
        } else if (ei_skip_term(term, &i) < 0) {
            return -1;
        }
        if (i > len) return -1;
    }
    return 0;
}

int cn_msg_partition_pids(const char *term, int len, void (*fn)(void *, const erlang_pid *),
                          void *ctx)
{
    int i = 0, arity, n;
    if (len <= 0 || ei_decode_tuple_header(term, &i, &arity) < 0 || arity != 2) return -1;
    if (ei_skip_term(term, &i) < 0 || i >= len) return -1; /* the living */
    if (get_type(term, i) == ERL_NIL_EXT) return 0;
    if (get_type(term, i) != ERL_LIST_EXT || ei_decode_list_header(term, &i, &n) < 0) return -1;
    for (int k = 0; k < n; k++) {
        int t = get_type(term, i);
        if (t == ERL_PID_EXT || t == ERL_NEW_PID_EXT) {
            erlang_pid pid;
            if (ei_decode_pid(term, &i, &pid) < 0) return -1;
            fn(ctx, &pid);
        } else if (ei_skip_term(term, &i) < 0) {
            return -1;
        }
        if (i > len) return -1;
    }
    return 0;
}

int cn_msg_is_yes(const char *term, int len)
{
    return len > 0 && is_atom(term, 0, "yes");
}

/* ---------------------------------------------------------------- encoders */

static int start(ei_x_buff *x)
{
    static const char hdr[5] = {0, 0, 0, 0, ERL_PASS_THROUGH};
    x->index = 0;
    if (ei_x_append_buf(x, hdr, sizeof hdr) < 0) return -1;
    return ei_x_encode_version(x);
}

int cn_packet_reg_send(ei_x_buff *x, const erlang_pid *from, const char *to_name)
{
    if (start(x) < 0 || ei_x_encode_tuple_header(x, 4) < 0 ||
        ei_x_encode_long(x, CN_OP_REG_SEND) < 0 || ei_x_encode_pid(x, from) < 0 ||
        ei_x_encode_atom(x, "") < 0 || ei_x_encode_atom(x, to_name) < 0)
        return -1;
    return ei_x_encode_version(x);
}

int cn_packet_send(ei_x_buff *x, const erlang_pid *to)
{
    if (start(x) < 0 || ei_x_encode_tuple_header(x, 3) < 0 || ei_x_encode_long(x, CN_OP_SEND) < 0 ||
        ei_x_encode_atom(x, "") < 0 || ei_x_encode_pid(x, to) < 0)
        return -1;
    return ei_x_encode_version(x);
}

int cn_packet_finish(ei_x_buff *x)
{
    if (x->index < 4 || (size_t)x->index - 4 > CN_MAX_PACKET) return -1;
    uint32_t n = (uint32_t)x->index - 4;
    x->buff[0] = (char)(n >> 24);
    x->buff[1] = (char)(n >> 16);
    x->buff[2] = (char)(n >> 8);
    x->buff[3] = (char)n;
    return 0;
}
