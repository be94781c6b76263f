#!/usr/bin/env bash
# `make bench`: every benchmark, side by side, printing ratios. Figures only: nothing
# here fails on time (these machines are noisy); compare columns within one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
export ERL_EPMD_ADDRESS=127.0.0.1
make --no-print-directory build/bench/bench_floor >/dev/null
rebar3 compile >/dev/null
bash test/bench/compile.sh build/bench
ebin=_build/default/lib/plexus/ebin
echo "== CRDT benchmark ($(nproc) cores, $(date -u +%FT%TZ))"
erl -noshell -pa "$ebin" -pa build/bench -eval 'plexus_bench_crdt:main()'
# OR-Set v2 (plexus_orset2) beside v1: single ops, member, merges by divergence,
# anti-entropy bytes.
erl -noshell -pa "$ebin" -pa build/bench -eval 'plexus_bench_crdt2:main()'
# LWW map (plexus_lwwmap): single put/remove, get, merges by divergence, anti-entropy.
erl -noshell -pa "$ebin" -pa build/bench -eval 'plexus_bench_lwwmap:main()'
# Overlay (plexus_overlay): convergence after a change on 5 nodes, idle bytes of a
# 10,000-entity overlay, bytes to re-converge after a partition (real nodes).
erl -noshell -name "plexus_bench_overlay_$$@127.0.0.1" -kernel inet_dist_use_interface '{127,0,0,1}' \
    -pa "$ebin" -pa build/bench -eval 'plexus_bench_overlay:main()'
# Election: 5 local nodes; ELECTION_TRIALS (50) failovers, ELECTION_STEADY_S (300) s steady.
erl -noshell -pa "$ebin" -pa build/bench -eval 'plexus_bench_election:main()'
PLEXUS_BENCH_COMPILED=1 bash test/bench/cnode_bench.sh
# Discovery: gossip convergence (5 and 20 in-VM endpoints on loopback), registry
# announce throughput and memory at 100,000 entries.
erl -noshell -pa "$ebin" -pa build/bench -eval 'plexus_bench_discovery:main()'
# Messaging (plexus_comms): send_msg throughput to one peer beside bare erlang:send/3.
erl -noshell -pa "$ebin" -pa build/bench -eval 'plexus_bench_comms:main()'
