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
    local log="$LOG_DIR/$name.log"
    echo "== $name"
    local start=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    grep -E 'passed|failed|FAIL|Failed|All [0-9]+ tests|[0-9]+ tests?, [0-9]+ failure|TEST COMPLETE|ERROR|error:' "$log" | tail -15
    "$counter" "$log" "$name" "$rc"
    echo "   ($((SECONDS - start)) s, rc $rc, log $log)"
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

fuzz_smoke() {
    local rc=0 f n dir
    for f in build/fuzz/fuzz_*; do
        [ -x "$f" ] || continue
        n=$(basename "$f")
        dir=$(mktemp -d)
        if "$f" -max_total_time="$FUZZ_SMOKE_SECONDS" -print_final_stats=1 "$dir" \
            "test/fuzz/seeds/$n" >"$LOG_DIR/$n.log" 2>&1; then
            echo "$n: 1 passed, 0 failed ($(grep -Eo 'Done [0-9]+ runs' "$LOG_DIR/$n.log"))"
        else
            echo "$n: 0 passed, 1 failed (see $LOG_DIR/$n.log)"
            rc=1
        fi
        rm -rf "$dir"
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
stage eunit-proper count_rebar rebar3 eunit --module="$eunit_modules"
# `make bench' is not run here: its modules and the helpers they call are compiled,
# warnings as errors, and checked with xref for calls to functions that exist nowhere,
# so a change that breaks a bench fails here, not on the next bench run.
bench_out=$(mktemp -d)
stage bench-compile count_plain bash test/bench/compile.sh "$bench_out" _build/test/lib/plexus/ebin
rm -rf "$bench_out"
# The suites that call the NIFs again, against the NIF library built with ASan+UBSan.
stage nif-asan-ubsan count_rebar bash test/nif_sanitized.sh
stage common-test count_rebar rebar3 ct --name plexus_ct@127.0.0.1
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
# plexus as a dependency: fresh rebar3 and Mix apps build it from a snapshot of this
# checkout and call it (test/packaging.sh).
stage packaging count_plain bash test/packaging.sh
stage dialyzer count_plain dialyzer_stage

echo
if [ ${#failed_stages[@]} -gt 0 ]; then echo "failed stages: ${failed_stages[*]}"; fi
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
