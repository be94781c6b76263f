#!/usr/bin/env bash
# plexus as a dependency, the way a user meets it (issue 11). From a snapshot of this
# checkout (the files git would commit, as a fresh clone has them):
#   - the Makefile: the NIF builds without jansson, the C node is skipped with one
#     line naming the package, a missing sodium.h stops the build with one line;
#     no -Werror unless asked; CC and CFLAGS are honoured; the C node needs no
#     libsodium/libjansson at run time and the NIF only libsodium;
#   - a fresh rebar3 app that depends on the snapshot by git URL compiles offline and
#     calls plexus_orset and plexus_lww; the beams carry EEP-48 docs (erl/ modules
#     only); public specs use only exported types; the app file declares inets, ssl
#     and public_key as optional; without telemetry installed, the app starts and its
#     events arrive as logger debug reports;
#   - when Elixir is installed, the same from a fresh Mix app (path dependency), with
#     `h :plexus_orset.merge` answering from the docs, and the Elixir face of lib/
#     (Plexus.ORSet, LWW, LWWMap, Overlay, Comms) compiled and callable.
# Ends with "packaging: N passed, N failed"; exit status non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
# A dependent's build: none of the project's own settings (make test exports WERROR=1).
unset WERROR V PLEXUS_CNODE MAKEFLAGS HAVE_SODIUM HAVE_JANSSON HAVE_EI HAVE_ERL_NIF
ROOT=$PWD
# Not named plexus-*: code:priv_dir(plexus) would take a "plexus-Vsn" path for the app.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pk-packaging.XXXXXX")
[ -n "${PACKAGING_KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT # PACKAGING_KEEP=1 to look inside
LOG=$WORK/log
passed=0
failed=0

check() { # check NAME COMMAND... : one line per check, the command's output on failure
    local name=$1
    shift
    if "$@" >"$LOG" 2>&1; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        sed 's/^/     | /' "$LOG" | tail -25
        failed=$((failed + 1))
    fi
}

finish() {
    echo "packaging: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# ---------------------------------------------------------------- the snapshot
# What a clone gets: tracked and new files, minus what .gitignore leaves out.
SNAP=$WORK/plexus
snapshot() {
    mkdir -p "$SNAP" &&
        git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
            [ -e "$f" ] || continue # deleted in the work tree
            mkdir -p "$SNAP/$(dirname "$f")" && cp -p "$f" "$SNAP/$f"
        done &&
        git -C "$SNAP" init -q -b main &&
        git -C "$SNAP" add -A &&
        git -C "$SNAP" -c user.name=packaging -c user.email=packaging@localhost \
            commit -q -m snapshot
}
check "snapshot of the checkout as a clone has it" snapshot || finish

# A quick build for the Makefile checks: CFLAGS come last, so these win over -O3/LTO.
QUICK=(CFLAGS="-O0 -fno-lto")

no_jansson() { # the NIF alone, and one line that names the package
    make -C "$SNAP" --no-print-directory nif HAVE_JANSSON= "${QUICK[@]}" >"$WORK/nj.out" 2>&1 &&
        cat "$WORK/nj.out" &&
        [ -f "$SNAP/priv/plexus_nif.so" ] && [ ! -e "$SNAP/priv/plexus_cnode" ] &&
        [ "$(grep -c 'plexus: C node skipped' "$WORK/nj.out")" = 1 ] &&
        grep -q 'install libjansson-dev' "$WORK/nj.out" &&
        ! grep -q 'jansson.h: No such file' "$WORK/nj.out"
}
check "make nif without jansson.h builds the NIF, skips the C node in one line" no_jansson

no_sodium() { # stops before the compiler, naming the package
    rm -rf "$SNAP/build" "$SNAP/priv/plexus_nif.so"
    if make -C "$SNAP" --no-print-directory nif HAVE_SODIUM= "${QUICK[@]}" >"$WORK/ns.out" 2>&1; then
        echo "make succeeded without sodium.h"
        return 1
    fi
    cat "$WORK/ns.out"
    grep -q 'plexus: cannot build the NIF: missing sodium.h; install libsodium-dev' "$WORK/ns.out" &&
        ! grep -q 'sodium.h: No such file' "$WORK/ns.out" && [ ! -d "$SNAP/build/obj" ]
}
check "make nif without sodium.h stops with one line naming libsodium-dev" no_sodium

no_ei() {
    ! make -C "$SNAP" --no-print-directory cnode HAVE_EI= "${QUICK[@]}" >"$WORK/ne.out" 2>&1 &&
        cat "$WORK/ne.out" &&
        grep -q 'plexus: cannot build the C node: missing ei.h; install erlang-dev' "$WORK/ne.out"
}
check "make cnode without ei.h stops with one line naming erlang-dev" no_ei

flags() { # dependents get no -Werror; WERROR=1 adds it; CC and CFLAGS reach the compiler
    local dry
    dry=$(make -C "$SNAP" --no-print-directory -B -n V=1 priv/plexus_nif.so CC=pk-cc \
        CFLAGS=-DPLEXUS_PK_MARK) || return 1
    grep -q -- '-Werror' <<<"$dry" && { echo "-Werror in a default build"; return 1; }
    grep -q '^pk-cc .*-DPLEXUS_PK_MARK' <<<"$dry" || { echo "CC/CFLAGS not used"; return 1; }
    make -C "$SNAP" --no-print-directory -B -n V=1 priv/plexus_nif.so WERROR=1 | grep -q -- '-Werror'
}
check "no -Werror by default, WERROR=1 adds it, CC and CFLAGS honoured" flags

quiet() { # quiet by default, full command lines with V=1
    make -C "$SNAP" --no-print-directory -B -n priv/plexus_nif.so >/dev/null &&
        out=$(make -C "$SNAP" --no-print-directory -B priv/plexus_nif.so "${QUICK[@]}" 2>&1) &&
        echo "$out" && ! grep -q -- '-fvisibility' <<<"$out" && grep -q '^  CC ' <<<"$out" &&
        make -C "$SNAP" --no-print-directory -B -n V=1 priv/plexus_nif.so | grep -q -- '-fvisibility'
}
check "quiet output by default, command lines with V=1" quiet

parallel() { # -j by default (one job per CPU), an explicit -j wins
    make -C "$SNAP" --no-print-directory -pn nif 2>/dev/null |
        grep -Eq "^MAKEFLAGS = .*-j$(nproc)( |\$)" &&
        make -C "$SNAP" --no-print-directory -j1 -pn nif 2>/dev/null | grep -Eq '^MAKEFLAGS = .*-j1( |$)'
}
check "parallel build by default" parallel

runtime_libs() { # what a release needs on the target host (Debian: libsodium23 only)
    make -C "$SNAP" --no-print-directory nif PLEXUS_CNODE=yes "${QUICK[@]}" >/dev/null 2>&1 || return 1
    ldd "$SNAP/priv/plexus_cnode" "$SNAP/priv/plexus_nif.so"
    ! ldd "$SNAP/priv/plexus_cnode" | grep -Eq 'libsodium|libjansson' &&
        [ -z "$(ldd "$SNAP/priv/plexus_nif.so" | grep -Ev 'linux-vdso|ld-linux|libc\.so|libsodium\.so\.23')" ]
}
check "C node links libsodium and jansson statically; NIF needs only libsodium23" runtime_libs

# A check run inside the dependent app's VM: the API, docs, types, app file.
cat >"$WORK/pk_check.erl" <<'EOF'
-module(pk_check).
-export([api/0, docs/1, types/1, app/0, telemetry/0, log/2]).

api() ->
    S = plexus_orset:add(plexus_orset:add(plexus_orset:new(), <<"a">>), b),
    true = plexus_orset:member(S, <<"a">>),
    false = plexus_orset:member(S, c),
    R = plexus_lww:update(plexus_lww:new(one), two),
    two = plexus_lww:value(R),
    %% the register is a plain term; its canonical bytes read back as the same term
    {plexus_lww, _, _, _} = R,
    {ok, R} = plexus_lww:from_binary(plexus_lww:to_binary(R)),
    ok.

%% Every erl/ module has docs in its beam, nothing else does.
docs(SrcDir) ->
    Mods = [list_to_atom(filename:basename(F, ".erl"))
            || F <- filelib:wildcard(filename:join(SrcDir, "*.erl"))],
    _ = application:load(plexus),
    {ok, AppMods} = application:get_key(plexus, modules),
    Mods = lists:sort(AppMods),
    [{{ok, _}, M} = {code:get_doc(M), M} || M <- Mods],
    {ok, {docs_v1, _, _, _, _, _, Fns}} = code:get_doc(plexus_orset),
    [_] = [D || {{function, merge, 2}, _, _, D, _} <- Fns, is_map(D)],
    ok.

%% Types named in the specs of exported functions are exported (private modules,
%% those whose module doc is hidden, are left out).
types(Ebin) ->
    Bad = lists:append([unexported(B) || B <- filelib:wildcard(filename:join(Ebin, "*.beam"))]),
    [] = Bad,
    ok.

unexported(Beam) ->
    {ok, {M, [{abstract_code, {raw_abstract_v1, Forms}}]}} =
        beam_lib:chunks(Beam, [abstract_code]),
    case code:get_doc(M) of
        {ok, {docs_v1, _, _, _, hidden, _, _}} -> [];
        _ ->
            Exports = lists:append([E || {attribute, _, export, E} <- Forms]),
            Exported = lists:append([E || {attribute, _, export_type, E} <- Forms]),
            Types = maps:from_list([{{N, length(A)}, T} || {attribute, _, K, {N, T, A}} <- Forms,
                                                          K =:= type orelse K =:= opaque]),
            Used = lists:append([refs(S) || {attribute, _, spec, {FA, S}} <- Forms,
                                            lists:member(FA, Exports)]),
            [{M, T} || T <- closure(Used, Types, []), not lists:member(T, Exported)]
    end.

closure([], _, Seen) -> Seen;
closure([T | Rest], Types, Seen) ->
    case lists:member(T, Seen) of
        true -> closure(Rest, Types, Seen);
        false -> closure(Rest ++ refs(maps:get(T, Types, [])), Types, [T | Seen])
    end.

refs({user_type, _, N, Args}) -> [{N, length(Args)} | refs(Args)];
refs(T) when is_tuple(T) -> refs(tuple_to_list(T));
refs(L) when is_list(L) -> lists:append([refs(X) || X <- L]);
refs(_) -> [].

app() ->
    case application:load(plexus) of
        ok -> ok;
        {error, {already_loaded, plexus}} -> ok
    end,
    {ok, [{application, plexus, Props}]} = file:consult(code:where_is_file("plexus.app")),
    Optional = [inets, ssl, public_key, telemetry],
    [] = Optional -- proplists:get_value(applications, Props),
    Optional = proplists:get_value(optional_applications, Props),
    [_, _, _] = string:split(proplists:get_value(vsn, Props), ".", all),
    {ok, _} = application:ensure_all_started(plexus),
    ok.

%% No telemetry in a fresh app: plexus runs, and its events are logger debug reports.
telemetry() ->
    {ok, _} = application:ensure_all_started(plexus),
    false = erlang:function_exported(telemetry, execute, 3),
    ok = logger:add_handler(pk, ?MODULE, #{level => debug, config => #{pid => self()}}),
    ok = logger:set_module_level(plexus_telemetry, debug),
    Big = plexus_orset_v1:add_all(plexus_orset_v1:new(), lists:seq(1, 5000)),
    _ = plexus_orset_v1:merge(Big, Big),
    receive {pk, [plexus, crdt, call], #{function := merge}} -> ok
    after 10000 -> error(no_event)
    end.

log(#{msg := {report, #{event := E, metadata := M}}}, #{config := #{pid := Pid}}) ->
    Pid ! {pk, E, M};
log(_, _) ->
    ok.
EOF
erlc -o "$WORK" "$WORK/pk_check.erl" >/dev/null 2>&1 || check "compile the in-VM check" false

# ---------------------------------------------------------------- rebar3
REBAR_APP=$WORK/rebar_app
rebar_build() {
    mkdir -p "$REBAR_APP/src" &&
        cat >"$REBAR_APP/rebar.config" <<EOF &&
{deps, [{plexus, {git, "file://$SNAP", {branch, "main"}}}]}.
EOF
        cat >"$REBAR_APP/src/pk_rebar_app.app.src" <<'EOF' &&
{application, pk_rebar_app, [{description, "uses plexus"}, {vsn, "0.0.1"},
  {applications, [kernel, stdlib, plexus]}]}.
EOF
        (cd "$REBAR_APP" && rebar3 compile)
}
check "rebar3 app depending on plexus by git URL compiles offline" rebar_build

in_rebar_vm() { # in_rebar_vm EXPR
    (cd "$REBAR_APP" && erl -noshell -pa _build/default/lib/*/ebin -pa "$WORK" \
        -eval "ok = $1, halt(0)." -s erlang halt 1)
}
check "rebar3 app: plexus_orset new/add/member and plexus_lww" in_rebar_vm "pk_check:api()"
check "rebar3 app: EEP-48 docs in every erl/ module, none elsewhere" \
    in_rebar_vm "pk_check:docs(\"$SNAP/erl\")"
check "rebar3 app: public specs name only exported types" \
    in_rebar_vm "pk_check:types(\"$REBAR_APP/_build/default/lib/plexus/ebin\")"
check "rebar3 app: version, optional inets/ssl/public_key, app starts" in_rebar_vm "pk_check:app()"
check "rebar3 app: runs without telemetry, events as logger debug reports" \
    in_rebar_vm "pk_check:telemetry()"

# ---------------------------------------------------------------- Mix
if command -v mix >/dev/null 2>&1; then
    MIX_APP=$WORK/mix_app
    mix_build() {
        mkdir -p "$MIX_APP/lib" &&
            cat >"$MIX_APP/mix.exs" <<EOF &&
defmodule PkMixApp.MixProject do
  use Mix.Project
  def project, do: [app: :pk_mix_app, version: "0.0.1", deps: [{:plexus, path: "$SNAP"}]]
  def application, do: [extra_applications: [:logger]]
end
EOF
            cat >"$MIX_APP/lib/pk_mix_app.ex" <<'EOF' &&
defmodule PkMixApp do
  def run do
    set = :plexus_orset.new() |> :plexus_orset.add("a") |> :plexus_orset.add(:b)
    true = :plexus_orset.member(set, "a")
    false = :plexus_orset.member(set, :c)
    reg = :plexus_lww.update(:plexus_lww.new(:one), :two)
    :two = :plexus_lww.value(reg)
    {:ok, ^reg} = :plexus_lww.from_binary(:plexus_lww.to_binary(reg))
    :ok
  end

  # The Elixir face (lib/ of plexus, built by its mix.exs).
  def run_elixir do
    set = Enum.into(["a", :b], Plexus.ORSet.new())
    true = Plexus.ORSet.member?(set, "a")
    2 = Enum.count(set)
    "#Plexus.ORSet<" <> _ = inspect(set)
    :two = Plexus.LWW.new(:one) |> Plexus.LWW.update(:two) |> Plexus.LWW.value()
    %{k: 1} = Plexus.LWWMap.new(%{k: 1}) |> Plexus.LWWMap.to_map()
    # an overlay and a comms server under the app's own supervisor, keyword options
    {:ok, sup} =
      Supervisor.start_link(
        [{Plexus.Overlay, name: :pk_overlay, peers: []}, {Plexus.Comms, name: :pk_comms}],
        strategy: :one_for_one
      )

    :ok = Plexus.Overlay.update_entity(:pk_overlay, :unit, %{hp: 3})
    %{hp: 3} = Plexus.Overlay.get_entity(:pk_overlay, :unit)
    {:error, {:dropped, :disconnected}} = Plexus.Comms.send_msg(:pk_comms, :"x@127.0.0.1", :m, :low)
    :ok = Supervisor.stop(sup)
    :ok
  end

  # A leader written in Elixir, alone: it reports becoming leader.
  def run_leader(data_dir) do
    {:ok, pid} = PkMixApp.Leader.start_link(name: :pk_leader, data_dir: data_dir, init_arg: self())

    receive do
      {:leader, ^pid} -> :ok
    after
      120_000 -> :no_leader
    end
  end
end

defmodule PkMixApp.Leader do
  use Plexus.Leader

  @impl true
  def init(test_pid), do: {:ok, test_pid}

  @impl true
  def handle_become_leader(test_pid) do
    send(test_pid, {:leader, self()})
    {:ok, test_pid}
  end
end
EOF
            (cd "$MIX_APP" && MIX_ENV=dev mix compile)
    }
    check "Mix app depending on plexus by path compiles offline (no rebar3)" mix_build

    in_mix_vm() { # in_mix_vm ELIXIR
        (cd "$MIX_APP" && MIX_ENV=dev mix run --no-compile --no-deps-check -e "$1")
    }
    check "Mix app: plexus_orset new/add/member and plexus_lww" in_mix_vm ':ok = PkMixApp.run()'
    check "Mix app: the Elixir face (Plexus.ORSet, LWW, LWWMap, Overlay, Comms)" in_mix_vm ':ok = PkMixApp.run_elixir()'
    check "Mix app: a use Plexus.Leader module becomes leader alone" in_mix_vm \
        ":ok = PkMixApp.run_leader(~c\"$WORK/leader_data\")"
    check "Mix app: Plexus.ORSet carries its docs (h Plexus.ORSet)" in_mix_vm \
        '{:docs_v1, _, :elixir, _, _, _, _} = Code.fetch_docs(Plexus.ORSet)'
    check "Mix app: h :plexus_orset.merge shows the doc" in_mix_vm \
        'require IEx.Helpers; IEx.Helpers.h(:plexus_orset.merge); {:docs_v1, _, :erlang, _, _, _, _} = Code.fetch_docs(:plexus_orset)'
    mix_doc_text() {
        in_mix_vm 'require IEx.Helpers; IEx.Helpers.h(:plexus_orset.merge)' | grep -q 'least upper bound'
    }
    check "Mix app: the doc text is the edoc of plexus_orset:merge/2" mix_doc_text
    check "Mix app: version, optional inets/ssl/public_key, app starts" in_mix_vm \
        ":code.add_patha(~c\"$WORK\"); :ok = :pk_check.app()"
else
    echo "skip Mix app (no elixir; Debian: apt-get install elixir)"
fi

finish
