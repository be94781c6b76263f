#!/usr/bin/env bash
# The EUnit and PropEr suites that call the NIFs, run against the NIF library built
# with ASan+UBSan (make target build/nif-san/plexus/priv/plexus_nif.so). The NIFs' C
# runs only inside the VM, so the C unit tests' sanitizer build never sees it: this
# stage does, on the same hostile terms, random states and merges the suites feed the
# normal build. The sanitizer runtimes are preloaded into the VM; leak checking is off
# (the VM itself does not free everything at exit), any other report aborts the VM and
# fails the stage. Needs the test profile's beams (`rebar3 as test compile`, or the
# `rebar3 eunit` that compiles them), read from NIF_SAN_BEAMS (a folder holding ebin/
# and test/ as _build/test/lib/plexus does; make test gives it a copy, taken before the
# EUnit stage that runs beside this one recompiles the test beams in place).
set -euo pipefail
cd "$(dirname "$0")/.."
san=build/nif-san/plexus
beams=${NIF_SAN_BEAMS:-_build/test/lib/plexus}
ebin=$beams/ebin
tests=$beams/test
if [ ! -f "$san/priv/plexus_nif.so" ] || [ ! -d "$ebin" ]; then
    echo "nif-sanitized: 0 passed, 1 failed (run make test: $san/priv/plexus_nif.so or $ebin missing)"
    exit 1
fi
# plexus's beams under a lib dir whose priv holds the sanitized library:
# code:priv_dir(plexus), where plexus_nif loads from, is then that priv dir.
ln -sfn "$(realpath "$ebin")" "$san/ebin"
modules="plexus_crdt_badinput_tests,plexus_crdt_hostile_tests,plexus_crdt_trie_tests,plexus_election_tests,\
plexus_hlc_tests,plexus_lww_tests,plexus_lwwmap_tests,plexus_orset2_tests,plexus_orset_tests,\
plexus_orset_v1_tests,plexus_overlay_core_tests,prop_plexus_lww,prop_plexus_lwwmap,\
prop_plexus_orset,prop_plexus_orset2,prop_plexus_term_bytes"
cc=${CC:-cc}
ulimit -c 0
# A third of each property's cases (test/prop/plexus_prop.hrl): under the sanitizers a
# case costs several times more, and the EUnit stage runs the full counts unsanitized.
PLEXUS_PROPER_PERCENT=${PLEXUS_PROPER_PERCENT:-34} \
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    LD_PRELOAD="$($cc -print-file-name=libasan.so) $($cc -print-file-name=libubsan.so)" \
    erl +Mea min -noshell -pa "$san/ebin" -pa "$tests/eunit" -pa "$tests/prop" -pa "$tests/support" \
    -eval "
        Priv = code:priv_dir(plexus),
        {match, _} = re:run(Priv, \"nif-san/plexus/priv\$\"),
        io:format(\"NIF library: ~s~n\", [filename:join(Priv, \"plexus_nif.so\")]),
        Modules = [list_to_atom(M) || M <- string:split(\"$modules\", \",\", all)],
        case eunit:test(Modules, [verbose]) of
            ok -> halt(0);
            _ -> halt(1)
        end."
