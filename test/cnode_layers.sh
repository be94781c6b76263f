#!/usr/bin/env bash
# The C node's files form layers (issue 9): no file calls a function defined in a file
# that (directly or through others) calls back into it, and the leaf modules (clock.c,
# log.c, backoff.c) call no other C node file. Read from the symbols of the built objects
# (build/obj/c_src/cnode/*.o): an edge A -> B when A.o needs a symbol B.o defines.
# Prints the edges, then "cnode-layers: N passed, M failed". Upward needs go through
# the pointers main.c installs (event_sink, packet_sink, peer_gone) and the health core's
# emit callback (cn_health_emit), which nm does not see.
set -u
cd "$(dirname "$0")/.."
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
pass=0 fail=0
if tsort "$edges" >/dev/null 2>&1; then
    pass=$((pass + 1))
else
    fail=$((fail + 1))
    echo "  FAIL a circle of calls between C node files:"
    tsort "$edges" 2>&1 >/dev/null | sed 's/^/    /'
fi
for leaf in clock log backoff; do
    if awk -v l="$leaf" '$1 == l {found = 1} END {exit !found}' "$edges"; then
        fail=$((fail + 1))
        echo "  FAIL $leaf.c is a leaf but calls: $(awk -v l="$leaf" '$1 == l {print $2}' "$edges" | xargs)"
    else
        pass=$((pass + 1))
    fi
done
echo "cnode-layers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
