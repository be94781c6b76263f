#!/usr/bin/env bash
# Prints the EUnit and PropEr modules, comma-separated, as `rebar3 eunit --module=`
# takes them: every test/eunit/*_tests.erl and test/prop/prop_*.erl (test/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ls test/eunit/*_tests.erl test/prop/prop_*.erl | xargs -n1 basename | sed 's/\.erl$//' | paste -sd, -
