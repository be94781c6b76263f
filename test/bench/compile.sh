#!/usr/bin/env bash
# Compiles every Erlang module of `make bench` into OUTDIR (default build/bench): the
# bench modules and the test helpers they call, warnings as errors, then checks with
# xref that no call from them goes to a module or function that is not there (a helper
# left out of this list is a bench that fails only when it is run). Used by
# test/bench/run.sh and by the bench-compile stage of `make test`; needs the
# application compiled, in EBIN (default the default profile's, as `rebar3 compile`
# leaves it). Prints "bench-compile: N passed, N failed".
#   usage: compile.sh [OUTDIR [EBIN]]
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build/bench}
ebin=${2:-_build/default/lib/plexus/ebin}
if [ ! -d "$ebin" ]; then
    echo "bench-compile: $ebin is missing (compile the application first)"
    echo "bench-compile: 0 passed, 1 failed"
    exit 1
fi
mkdir -p "$out"
# The helpers the bench modules call: reference models, the anti-entropy driver, the
# NIF probe, node and cluster starters, and two test modules whose helpers they reuse.
helpers=(test/support/plexus_orset_model.erl test/support/plexus_lwwmap_model.erl
    test/support/plexus_ae_sync.erl test/support/plexus_nif_probe.erl
    test/support/plexus_test_cluster.erl test/support/plexus_leader_probe.erl
    test/support/plexus_test_nodes.erl test/eunit/plexus_orset2_tests.erl
    test/eunit/plexus_lwwmap_tests.erl)
pass=0
fail=0
for f in test/bench/*.erl "${helpers[@]}"; do
    if erlc +warnings_as_errors -pa "$ebin" -o "$out" "$f"; then
        pass=$((pass + 1))
    else
        echo "bench-compile: $f does not compile"
        fail=$((fail + 1))
    fi
done
# Functions called from a module compiled here that exist nowhere: xref:d/1 reads the
# directory's modules and takes the code path (OTP, the application) as library.
undefined=$(erl -noshell -pa "$ebin" -pa "$out" -eval '
    [Dir] = init:get_plain_arguments(),
    io:put_chars([io_lib:format("  ~p:~p/~p~n", [M, F, A])
                  || {M, F, A} <- proplists:get_value(undefined, xref:d(Dir))]),
    io:put_chars("xref done\n"),
    halt().' -extra "$out" 2>&1)
if [ "$undefined" != "xref done" ]; then
    # a list of functions, or no "xref done" at all when the check itself failed
    echo "bench-compile: calls to undefined functions, or xref failed:"
    echo "$undefined"
    fail=$((fail + 1))
else
    pass=$((pass + 1))
fi
echo "bench-compile: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
