#!/usr/bin/env bash
# The C node's files form layers (issue 9; doc/DESIGN.md §4). Every module (X.c and its
# X.h, or a header alone) has a rank in LAYERS below; a module may include the header of,
# and call, only modules of a lower rank. Checked here:
#   - includes: every `#include "cnode/X.h"` in c_src/cnode and test/ goes down (or to the
#     file's own header); a module missing from LAYERS fails, so does c_src/cnode/cnode.h
#     (the one header for all that the per-module headers replaced);
#   - calls, read from the symbols of the built objects (build/obj/c_src/cnode/*.o): an
#     edge A -> B when A.o needs a symbol B.o defines; every edge goes down, there is no
#     circle, and the leaves (rank 0) call no other C node file.
# Prints the edges, then "cnode-layers: N passed, M failed". Upward needs go through
# the pointers main.c installs in struct cnode (state.h: event_sink, stats_provider,
# packet_sink, peer_gone) and the health core's emit callback (cn_health_emit), which nm
# does not see.
set -u
cd "$(dirname "$0")/.."

# main -> loop -> {peer, gossip, registry_host, discovery} -> {msg, out, connector, epmd}
# -> {clock, log}, with the files the issue's picture leaves out put where their calls
# and includes say.
LAYERS="
0 clock log backoff exit event counters msg
1 udp epmd config
2 secrets state
3 out connector
4 peer accept registry_host
5 discovery gossip
6 server
7 router
8 loop
9 main
"
rank_of() {
    echo "$LAYERS" | awk -v m="$1" '{for (i = 2; i <= NF; i++) if ($i == m) print $1}'
}
pass=0 fail=0

# ---- includes
inc_fail=0
if [ -e c_src/cnode/cnode.h ]; then
    inc_fail=1
    echo "  FAIL c_src/cnode/cnode.h is back: each module declares its exports in its own header"
fi
for f in c_src/cnode/*.[ch]; do
    m=$(basename "$f") && m=${m%.*}
    [ -n "$(rank_of "$m")" ] || { inc_fail=1; echo "  FAIL $f: module $m has no rank in LAYERS"; }
done
for f in c_src/cnode/*.[ch] test/c/*.c test/fuzz/*.c; do
    [ -e "$f" ] || continue
    m=$(basename "$f") && m=${m%.*}
    case $f in test/*) r=99 ;; *) r=$(rank_of "$m") ;; esac
    [ -n "$r" ] || continue
    for h in $(sed -n 's|^[[:space:]]*#[[:space:]]*include[[:space:]]*"cnode/\([a-z_]*\)\.h".*|\1|p' "$f"); do
        [ "$h" = "$m" ] && continue
        hr=$(rank_of "$h")
        if [ -z "$hr" ]; then
            inc_fail=1 && echo "  FAIL $f includes cnode/$h.h, a module not in LAYERS"
        elif [ "$hr" -ge "$r" ]; then
            inc_fail=1 && echo "  FAIL $f (rank $r) includes cnode/$h.h (rank $hr): includes go down"
        fi
    done
done
if [ "$inc_fail" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
objs=(build/obj/c_src/cnode/*.o)
if [ ! -e "${objs[0]}" ]; then
    echo "cnode-layers: build the C node first (make nif PLEXUS_CNODE=yes)"
    echo "cnode-layers: 0 passed, 1 failed"
    exit 1
fi
NM=${NM:-nm}
defs=$(mktemp) && edges=$(mktemp)
trap 'rm -f "$defs" "$edges"' EXIT
for o in "${objs[@]}"; do
    f=$(basename "$o" .o)
    $NM "$o" | awk -v f="$f" 'NF == 3 && $2 ~ /^[TDBR]$/ {print $3, f}'
done | sort -u >"$defs"
for o in "${objs[@]}"; do
    f=$(basename "$o" .o)
    $NM "$o" | awk '$1 == "U" {print $2}' | sort -u | join - "$defs" | awk -v f="$f" '$2 != f {print f, $2}'
done | sort -u >"$edges"
awk '{a[$1] = a[$1] " " $2} END {for (k in a) print "  " k " ->" a[k]}' "$edges" | sort
if tsort "$edges" >/dev/null 2>&1; then
    pass=$((pass + 1))
else
    fail=$((fail + 1))
    echo "  FAIL a circle of calls between C node files:"
    tsort "$edges" 2>&1 >/dev/null | sed 's/^/    /'
fi
up=$(while read -r a b; do
    ra=$(rank_of "$a") rb=$(rank_of "$b")
    if [ -z "$ra" ] || [ -z "$rb" ] || [ "$rb" -ge "$ra" ]; then echo "$a (rank ${ra:-?}) -> $b (rank ${rb:-?})"; fi
done <"$edges")
if [ -z "$up" ]; then
    pass=$((pass + 1))
else
    fail=$((fail + 1))
    echo "  FAIL calls that do not go down:"
    echo "$up" | sed 's/^/    /'
fi
for leaf in $(echo "$LAYERS" | awk '$1 == 0 {$1 = ""; print}'); do
    if awk -v l="$leaf" '$1 == l {found = 1} END {exit !found}' "$edges"; then
        fail=$((fail + 1))
        echo "  FAIL $leaf.c is a leaf but calls: $(awk -v l="$leaf" '$1 == l {print $2}' "$edges" | xargs)"
    else
        pass=$((pass + 1))
    fi
done
echo "cnode-layers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
