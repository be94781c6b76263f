#!/usr/bin/env bash
# Runs every test stage of `make test` (after the Makefile has built the C pieces)
# and ends with one closing line "total: N passed, N failed" summing the stages.
# Each stage's own runner line (EUnit, Common Test, the C harness) is printed too.
# Exit status is non-zero when any stage failed or printed no count.
set -u
cd "$(dirname "$0")/.."

FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-15}
LOG_DIR=build/test-logs
mkdir -p "$LOG_DIR"
total_pass=0
total_fail=0
failed_stages=()

add() { # add PASSED FAILED STAGE
    total_pass=$((total_pass + $1))
    total_fail=$((total_fail + $2))
    if [ "$2" -gt 0 ]; then failed_stages+=("$3"); fi
}

# "name: N passed, M failed" lines (C harness, simulator)
count_plain() { # LOG STAGE RC
    local p f
    p=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$1" | awk '{s+=$1} END {print s+0}')
    f=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$1" | awk '{s+=$3} END {print s+0}')
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; fi # a stage that counted nothing failed
    add "$p" "$f" "$2"
}

# EUnit / rebar3 ct closing lines
count_rebar() { # LOG STAGE RC
    local p=0 f=0 line
    if line=$(grep -Eo 'All [0-9]+ tests passed' "$1" | tail -1) && [ -n "$line" ]; then
        p=$(echo "$line" | grep -Eo '[0-9]+')
    fi
    if line=$(grep -Eo 'Failed: [0-9]+\. +Skipped: [0-9]+\. +Passed: [0-9]+' "$1" | tail -1) && [ -n "$line" ]; then
        f=$(echo "$line" | awk '{print $2+0}')
        p=$(echo "$line" | awk '{print $6+0}')
    fi
    if line=$(grep -Eo 'Failed [0-9]+ tests?\. Passed [0-9]+ tests?' "$1" | tail -1) && [ -n "$line" ]; then
        f=$(echo "$line" | awk '{print $2+0}')
        p=$(echo "$line" | awk '{print $5+0}')
    fi
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    add "$p" "$f" "$2"
}

# ExUnit closing line: "19 tests, 0 failures" (or "2 doctests, 19 tests, 1 failure",
# "..., 3 excluded"); passed = doctests + tests - failures.
count_exunit() { # LOG STAGE RC
    local p=0 f=0 line n
    if line=$(grep -E '^([0-9]+ doctests?, )?[0-9]+ tests?, [0-9]+ failures?' "$1" | tail -1) &&
        [ -n "$line" ]; then
        n=$(echo "$line" | grep -Eo '[0-9]+ (doctests?|tests?)' | awk '{s+=$1} END {print s+0}')
        f=$(echo "$line" | grep -Eo '[0-9]+ failures?' | awk '{print $1+0}')
        p=$((n - f))
    fi
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    add "$p" "$f" "$2"
}

stage() { # stage NAME COUNTER COMMAND...
    local name=$1 counter=$2
    shift 2
    echo "== $name"
    local start=$SECONDS
    "$@" >"$LOG_DIR/$name.log" 2>&1
    stage_report "$name" "$counter" $? "$start" ""
}

stage_report() { # stage_report NAME COUNTER RC START NOTE: the stage's lines, counted
    local log="$LOG_DIR/$1.log"
    grep -E 'passed|failed|FAIL|Failed|All [0-9]+ tests|[0-9]+ tests?, [0-9]+ failure|TEST COMPLETE|ERROR|error:' "$log" | tail -15
    "$2" "$log" "$1" "$3"
    echo "   ($((SECONDS - $4)) s$5, rc $3, log $log)"
}

# Stages that share nothing with the stages they overlap run beside them: on two
# cores much of `make test` is one busy core (the fuzzers, EUnit, the sanitized VM) or
# waiting (Common Test's clusters, about a third of one core). A stage started with
# stage_start is reported, in its place in the order, by stage_finish.
declare -A bg_pid bg_counter bg_start
stage_start() { # stage_start NAME COUNTER COMMAND...
    local name=$1 counter=$2
    shift 2
    # the background subshell notes when it ended: its time is its own, not the wait's
    {
        "$@"
        local rc=$?
        echo "$SECONDS" >"$LOG_DIR/$name.end"
        exit $rc
    } >"$LOG_DIR/$name.log" 2>&1 &
    bg_pid[$name]=$!
    bg_counter[$name]=$counter
    bg_start[$name]=$SECONDS
}

stage_finish() { # stage_finish NAME
    local rc
    echo "== $1"
    wait "${bg_pid[$1]}"
    rc=$?
    local took=$(($(cat "$LOG_DIR/$1.end" 2>/dev/null || echo "$SECONDS") - bg_start[$1]))
    stage_report "$1" "${bg_counter[$1]}" "$rc" "$((SECONDS - took))" " beside other stages"
}

run_all() { # run each binary given, non-zero if any failed
    local rc=0 t
    for t in "$@"; do "$t" || rc=1; done
    return $rc
}

valgrind_all() {
    local rc=0 t
    for t in "$@"; do
        valgrind -q --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,indirect \
            "$t" || rc=1
    done
    return $rc
}

fuzz_one() { # fuzz_one FUZZER: FUZZ_SMOKE_SECONDS from its seeds, in a corpus of its own
    local n dir rc
    n=$(basename "$1")
    dir=$(mktemp -d)
    "$1" -max_total_time="$FUZZ_SMOKE_SECONDS" -print_final_stats=1 "$dir" \
        "test/fuzz/seeds/$n" >"$LOG_DIR/$n.log" 2>&1
    rc=$?
    rm -rf "$dir"
    return $rc
}

fuzz_smoke() { # two fuzzers at a time (each uses one core), reported in name order
    local rc=0 f n i j
    local fuzzers=() pids=() rcs=()
    for f in build/fuzz/fuzz_*; do [ -x "$f" ] && fuzzers+=("$f"); done
    for ((i = 0; i < ${#fuzzers[@]}; i++)); do
        fuzz_one "${fuzzers[i]}" &
        pids[i]=$!
        # a pair started: wait for both before the next pair
        if ((i % 2 == 1 || i + 1 == ${#fuzzers[@]})); then
            for ((j = i - i % 2; j <= i; j++)); do
                wait "${pids[j]}"
                rcs[j]=$?
            done
        fi
    done
    for ((i = 0; i < ${#fuzzers[@]}; i++)); do
        n=$(basename "${fuzzers[i]}")
        if [ "${rcs[i]}" -eq 0 ] && grep -q 'Done [0-9]* runs' "$LOG_DIR/$n.log"; then
            echo "$n: 1 passed, 0 failed ($(grep -Eo 'Done [0-9]+ runs' "$LOG_DIR/$n.log"))"
        else
            echo "$n: 0 passed, 1 failed (see $LOG_DIR/$n.log)"
            rc=1
        fi
    done
    return $rc
}

sim_runs() { # the default simulator run, then proof that the checker catches each planted bug
    local sim=$1 rc=0
    "$sim" || rc=1
    local bug
    for bug in "forget-vote --seeds 1000" "forget-membership"; do
        # shellcheck disable=SC2086 # the bug name and its seed count are two words
        if "$sim" --plant-bug $bug --expect-caught; then
            echo "planted-bug check: 1 passed, 0 failed"
        else
            echo "planted-bug check: 0 passed, 1 failed"
            rc=1
        fi
    done
    return $rc
}

dialyzer_stage() {
    if rebar3 dialyzer; then echo "dialyzer: 1 passed, 0 failed"; else echo "dialyzer: 0 passed, 1 failed"; return 1; fi
}

# Distribution tests get an epmd of their own, on loopback and on a free port, stopped
# at the end: an epmd that something else started on this machine (bound to every
# address by an `erl -name` run without ERL_EPMD_ADDRESS, or another test run's, with
# its node names) never mixes with this run. Every VM, peer and C node the tests start
# inherits ERL_EPMD_PORT.
export ERL_EPMD_ADDRESS=127.0.0.1
epmd_pid=""
for _ in $(seq 20); do
    port=$((20000 + RANDOM % 20000))
    epmd -address 127.0.0.1 -port "$port" >/dev/null 2>&1 &
    epmd_pid=$!
    for _ in $(seq 50); do
        kill -0 "$epmd_pid" 2>/dev/null || break
        ERL_EPMD_PORT=$port epmd -names >/dev/null 2>&1 && break
        sleep 0.1
    done
    if kill -0 "$epmd_pid" 2>/dev/null && ERL_EPMD_PORT=$port epmd -names >/dev/null 2>&1; then
        export ERL_EPMD_PORT=$port
        break
    fi
    kill "$epmd_pid" 2>/dev/null
    epmd_pid=""
done
if [ -z "$epmd_pid" ]; then echo "run_tests: could not start an epmd on 127.0.0.1" >&2; exit 1; fi
trap 'kill "$epmd_pid" 2>/dev/null' EXIT
echo "epmd: 127.0.0.1:$ERL_EPMD_PORT (pid $epmd_pid)"

mapfile -t plain_tests < <(ls build/test/plain/test_* 2>/dev/null)
mapfile -t san_tests < <(ls build/test/san/test_* 2>/dev/null)

stage format-check count_plain make --no-print-directory -s format-check
stage c-unit count_plain run_all "${plain_tests[@]}"
stage c-unit-asan-ubsan count_plain run_all "${san_tests[@]}"
stage c-unit-valgrind count_plain valgrind_all "${plain_tests[@]}"
if [ -x build/test/plain/plexus_sim ]; then
    stage election-sim count_plain sim_runs build/test/plain/plexus_sim
fi
if [ -x build/test/san/plexus_sim ]; then
    stage election-sim-asan count_plain build/test/san/plexus_sim --seeds 200
fi
stage fuzz-smoke count_plain fuzz_smoke
if [ -x priv/plexus_cnode ]; then # the C node's files call each other without a circle
    stage cnode-layers count_plain bash test/cnode_layers.sh
fi
if [ -x priv/plexus_cnode ]; then # the C node: 100 kill/restart cycles under valgrind
    stage cnode-valgrind count_plain bash test/cnode_valgrind.sh 100
fi
# The EUnit and PropEr modules by name, as found in their folders (a new file there is
# run with no other edit). Not `--dir` (it ran modules twice over these folders), not
# plain `rebar3 eunit` (it also takes test/demo).
eunit_modules=$(bash test/eunit_modules.sh)
# The suites that call the NIFs again, against the NIF library built with ASan+UBSan,
# beside EUnit (each is one busy core). They run a copy of the test profile's beams,
# compiled and copied here: `rebar3 eunit` recompiles the test folders' beams in place
# (a first try that shared them lost a module halfway). A failure to compile shows in
# both stages.
rebar3 as test compile >"$LOG_DIR/test-compile.log" 2>&1
san_beams=$(mktemp -d)
cp -rL _build/test/lib/plexus/ebin _build/test/lib/plexus/test "$san_beams"/ 2>>"$LOG_DIR/test-compile.log"
NIF_SAN_BEAMS=$san_beams stage_start nif-asan-ubsan count_rebar bash test/nif_sanitized.sh
stage eunit-proper count_rebar rebar3 eunit --module="$eunit_modules"
stage_finish nif-asan-ubsan
rm -rf "$san_beams"
# `make bench' is not run here: its modules and the helpers they call are compiled,
# warnings as errors, and checked with xref for calls to functions that exist nowhere,
# so a change that breaks a bench fails here, not on the next bench run.
bench_out=$(mktemp -d)
stage bench-compile count_plain bash test/bench/compile.sh "$bench_out" _build/test/lib/plexus/ebin
rm -rf "$bench_out"
# Common Test waits on its clusters most of the time: packaging (plexus as a
# dependency: fresh rebar3 and Mix apps build it from a snapshot of this checkout and
# call it, all in a temporary folder; test/packaging.sh) and dialyzer (the default profile's _build, which
# nothing else here uses) run beside it. They end before the exunit stage, whose Mix
# build rewrites the test profile's beams.
stage_start packaging count_plain bash test/packaging.sh
stage_start dialyzer count_plain dialyzer_stage
stage common-test count_rebar rebar3 ct --name plexus_ct@127.0.0.1
stage_finish packaging
stage_finish dialyzer
# The Elixir face (lib/, test/ex/) when Elixir is installed: Mix builds plexus in
# _build/test from mix.exs, nothing is downloaded.
if command -v mix >/dev/null 2>&1; then
    exunit_stage() { # lib/ formatted and compiling without a warning, then the tests
        mix format --check-formatted &&
            MIX_ENV=test HEX_OFFLINE=1 mix compile --force --warnings-as-errors &&
            MIX_ENV=test HEX_OFFLINE=1 mix test
    }
    stage exunit count_exunit exunit_stage
else
    echo "== exunit: skipped (no elixir; Debian: apt-get install elixir)"
fi

echo
if [ ${#failed_stages[@]} -gt 0 ]; then echo "failed stages: ${failed_stages[*]}"; fi
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
