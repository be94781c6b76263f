#!/usr/bin/env bash
# `make demo`: compiles the demo modules and runs them on a loopback-only cluster.
# The runner node and its peers are named @127.0.0.1 and bind distribution to
# loopback; epmd, if this script starts it, listens on loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
export ERL_EPMD_ADDRESS=127.0.0.1
mkdir -p build/demo
ebin=$(ls -d _build/default/lib/plexus/ebin)
erlc -pa "$ebin" -o build/demo test/demo/*.erl
exec erl -noshell -name "plexus_demo_$$@127.0.0.1" \
    -kernel inet_dist_use_interface '{127,0,0,1}' -kernel prevent_overlapping_partitions false \
    -pa "$ebin" -pa build/demo -eval 'plexus_demo:main()'
