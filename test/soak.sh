#!/usr/bin/env bash
# Long runs (`make soak`):
#  1. 100,000 seeds of the election simulator (test/sim), split over the cores. Every
#     seed is independent and replayable, so chunks run in parallel; each failure is
#     printed with its replay command.
#  2. The nemesis on five real nodes (test/ct/plexus_leader_nemesis_SUITE, random_nemesis)
#     for SOAK_NEMESIS_SECONDS; its seed is printed (replay: PLEXUS_NEMESIS_SEED=N).
# Ends with "soak: N passed, M failed" (the nemesis run counts as one).
#
#   SOAK_SEEDS (100000)  SOAK_START (1)  SOAK_JOBS (nproc)  SIM (plain simulator binary)
#   SOAK_NEMESIS_SECONDS (600; 0 skips the nemesis)  PLEXUS_NEMESIS_SEED (random)
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

NEMESIS_SECONDS=${SOAK_NEMESIS_SECONDS:-600}
if [ "$NEMESIS_SECONDS" -gt 0 ]; then
    # Distribution on loopback only; start an epmd if none runs, stop it at the end.
    export ERL_EPMD_ADDRESS=127.0.0.1
    if ! epmd -names >/dev/null 2>&1; then
        epmd -address 127.0.0.1 >/dev/null 2>&1 &
        epmd_pid=$!
        trap 'rm -rf "$tmp"; kill "$epmd_pid" 2>/dev/null' EXIT
        for _ in $(seq 50); do epmd -names >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    began=$SECONDS
    mkdir -p build/soak-nemesis
    PLEXUS_NEMESIS_SECONDS=$NEMESIS_SECONDS rebar3 ct --suite test/ct/plexus_leader_nemesis_SUITE \
        --case random_nemesis --name "plexus_ct_soak_nm_$$@127.0.0.1" \
        --logdir build/soak-nemesis >"$tmp/nemesis.log" 2>&1
    nemesis_rc=$?
    # the case's own log (the console shows only failures): seed, operations, outcome
    case_log=$(ls -t build/soak-nemesis/ct_run.*/*/run.*/*random_nemesis.html 2>/dev/null | head -1)
    [ -n "$case_log" ] && sed -e 's/<[^>]*>//g' "$case_log" |
        grep -E -A1 'nemesis seed|nemesis: |healed|VIOLATION|membership_diverged|no_leader_after' | grep -v '^--$' |
        head -20
    echo "soak: nemesis log $case_log"
    echo "soak: nemesis for $NEMESIS_SECONDS s in $((SECONDS - began)) s, rc $nemesis_rc"
    if [ "$nemesis_rc" -eq 0 ] && grep -q 'All 1 tests passed' "$tmp/nemesis.log"; then
        passed=$((passed + 1))
    else
        tail -40 "$tmp/nemesis.log"
        failed=$((failed + 1))
        rc=1
    fi
fi

echo "soak: $passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
