#!/usr/bin/env bash
# Long simulator run (`make soak`): 100,000 seeds of test/sim, split over the cores.
# Every seed is independent and replayable, so chunks run in parallel; each failure is
# printed with its replay command. Ends with "soak: N passed, M failed".
#
#   SOAK_SEEDS (100000)  SOAK_START (1)  SOAK_JOBS (nproc)  SIM (plain simulator binary)
set -u
cd "$(dirname "$0")/.."

SIM=${SIM:-build/test/plain/plexus_sim}
SEEDS=${SOAK_SEEDS:-100000}
START=${SOAK_START:-1}
JOBS=${SOAK_JOBS:-$(nproc)}

if [ ! -x "$SIM" ]; then
    echo "soak: $SIM not built (make $SIM)" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chunk=$(((SEEDS + JOBS - 1) / JOBS))
began=$SECONDS
pids=()
for ((j = 0; j < JOBS; j++)); do
    s=$((START + j * chunk))
    n=$((START + SEEDS - s))
    [ "$n" -gt "$chunk" ] && n=$chunk
    [ "$n" -le 0 ] && break
    "$SIM" --seeds "$n" --start "$s" >"$tmp/$j.log" 2>&1 &
    pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done

cat "$tmp"/*.log | grep -E 'FAIL|replay:' | head -50
passed=$(cat "$tmp"/*.log | grep -Eo '[0-9]+ passed, [0-9]+ failed' | awk '{s += $1} END {print s + 0}')
failed=$(cat "$tmp"/*.log | grep -Eo '[0-9]+ passed, [0-9]+ failed' | awk '{s += $3} END {print s + 0}')
if [ $((passed + failed)) -ne "$SEEDS" ]; then # a chunk died without its closing line
    failed=$((SEEDS - passed))
    rc=1
fi
echo "soak: $SEEDS seeds from $START on $JOBS jobs in $((SECONDS - began)) s"
echo "soak: $passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
