#!/usr/bin/env bash
# `make bench`, C node part (called by test/bench/run.sh): kill -9 -> node_down vs the
# BEAM's nodedown, SIGSTOP -> suspect, CPU/RSS at 10/100/500 nodes. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
export ERL_EPMD_ADDRESS=127.0.0.1
make --no-print-directory -s priv/plexus_cnode build/test/plexus_ei_peers >/dev/null
rebar3 compile >/dev/null
# run.sh has compiled every bench module already; run alone, this compiles them here
# (one list of the helpers they need, in compile.sh)
[ -n "${PLEXUS_BENCH_COMPILED:-}" ] || bash test/bench/compile.sh build/bench >/dev/null
epmd -names >/dev/null 2>&1 || ERL_EPMD_ADDRESS=127.0.0.1 epmd -daemon
exec erl -noshell -pa _build/default/lib/plexus/ebin -pa build/bench \
    -eval 'plexus_bench_cnode:main()'
