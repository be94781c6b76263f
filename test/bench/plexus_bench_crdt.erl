%% @doc CRDT benchmark for `make bench' (issue 2 figures), side by side in one run.
%%
%% OR-Set merge at 1k, 10k, 100k and 1M elements per side (90% shared; each side
%% removes a distinct 5% and adds a unique 5%): the v1 C path (plexus_orset_v1, the
%% NIF), the public OR-Set on its v2 representation (plexus_orset, the same replicas
%% built apart so no structure is shared), the plain-Erlang reference model
%% (test/support/plexus_orset_model.erl) and the C floor (a union of two sorted uint64
%% arrays, build/bench/bench_floor, which also reports the core merge without the
%% NIF). Then add/remove throughput v1 beside v2, bytes per element and long_schedule
%% events seen by erlang:system_monitor during the whole run. Figures are per input element
%% (2N for a merge of two N-element sets). Targets are printed beside the figures;
%% nothing here asserts on time.
-module(plexus_bench_crdt).

-export([main/0, main/1, lww/0]).
-export([old_update/2, old_actor/0, old_encode/1]).
-export([plain_update/3, plain_merge/2]).

-define(SIZES, [1000, 10000, 100000, 1000000]).

-spec main() -> no_return().
main() -> main(?SIZES).

-spec main([pos_integer()]) -> no_return().
main(Sizes) ->
    %% Load every module first: the code loader reading a .beam mid-run is itself
    %% reported as a long_schedule and says nothing about plexus.
    [{module, _} = code:ensure_loaded(M)
     || M <- [plexus_orset, plexus_orset_v1, plexus_orset2, plexus_crdt_trie, plexus_lww,
              plexus_hlc, plexus_nif, plexus_orset_model, plexus_bench_time,
              plexus_nif_probe, lists, io_lib_format, string]],
    Monitor = plexus_bench_time:start_long_schedule_monitor(),
    io:format("~n== OR-Set merge, ns per input element (lower is better)~n"),
    io:format("~10s ~10s ~10s ~10s ~10s ~10s ~12s ~12s ~10s~n",
              ["elements", "v1 nif", "v2", "c-core", "c-floor", "erl-model", "model/nif",
               "nif/floor", "bytes/el"]),
    Rows = [merge_row(N) || N <- Sizes],
    io:format("targets: nif <= 15 ns at 100k; model/nif >= 20; bytes/el <= 12 "
              "(v2: plexus_bench_crdt2 has its merge figures by divergence)~n"),
    ops_section(),
    lww_section(),
    _ = plexus_bench_time:nif_cpu_row(
          "v1 sets of 1M elements (build, merge of two replicas)",
          fun() -> {_, A, B, _} = replicas(1000000), _ = plexus_orset_v1:merge(A, B), ok end),
    LongSchedules = plexus_bench_time:stop_long_schedule_monitor(Monitor),
    summary(Rows, LongSchedules),
    erlang:halt(0).

%% @doc Only the LWW register section (`erl ... -eval 'plexus_bench_crdt:lww()'').
-spec lww() -> no_return().
lww() ->
    [{module, _} = code:ensure_loaded(M) || M <- [plexus_lww, plexus_hlc, plexus_nif]],
    lww_section(),
    erlang:halt(0).

%% ------------------------------------------------------------------ merge

replicas(N) ->
    U = max(1, N div 20),
    Base = plexus_orset_v1:add_all(plexus_orset_v1:new(), lists:seq(1, N), a),
    A = plexus_orset_v1:apply(Base, [{remove_all, lists:seq(1, U)},
                                     {add_all, lists:seq(N + 1, N + U)}], a),
    B = plexus_orset_v1:apply(Base, [{remove_all, lists:seq(U + 1, 2 * U)},
                                     {add_all, lists:seq(N + U + 1, N + 2 * U)}], b),
    {Base, A, B, U}.

model_replicas(N, U) ->
    M = plexus_orset_model,
    Base = M:add_all(lists:seq(1, N), a, M:new()),
    Side = fun(Removes, Adds, Actor) ->
                   S1 = lists:foldl(fun(E, S) -> M:remove(E, S) end, Base, Removes),
                   M:add_all(Adds, Actor, S1)
           end,
    {Side(lists:seq(1, U), lists:seq(N + 1, N + U), a),
     Side(lists:seq(U + 1, 2 * U), lists:seq(N + U + 1, N + 2 * U), b)}.

merge_row(N) ->
    {Base, A, B, U} = replicas(N),
    %% Both removals were seen by the other side's context (they removed base dots),
    %% so the union keeps N - 2U shared elements plus 2U unique adds: N.
    N = plexus_orset_v1:size(plexus_orset_v1:merge(A, B)),
    NifNs = per_element(fun() -> plexus_orset_v1:merge(A, B) end, 2 * N),
    %% v2: the same replicas read from their bytes (nothing shared but equal content).
    {ok, A2} = plexus_orset:from_binary(A),
    {ok, B2} = plexus_orset:from_binary(B),
    V2Ns = per_element(fun() -> plexus_orset:merge(A2, B2) end, 2 * N),
    {MA, MB} = model_replicas(N, U),
    ModelNs = per_element(fun() -> plexus_orset_model:merge(MA, MB) end, 2 * N),
    {FloorNs, CoreNs} = c_floor(N),
    BytesPerEl = byte_size(Base) / N,
    io:format("~10b ~10.2f ~10.2f ~10.2f ~10.2f ~10.1f ~12.1f ~12.1f ~10.2f~n",
              [N, NifNs, V2Ns, CoreNs, FloorNs, ModelNs, ModelNs / NifNs, NifNs / FloorNs,
               BytesPerEl]),
    #{n => N, nif => NifNs, model => ModelNs, floor => FloorNs, bytes => BytesPerEl}.

%% Runs F repeatedly for at least ~300 ms (at least once) and returns ns per element.
per_element(F, Elements) ->
    _ = F(), % warm up
    T0 = erlang:monotonic_time(nanosecond),
    Reps = repeat(F, T0, 0),
    T1 = erlang:monotonic_time(nanosecond),
    (T1 - T0) / Reps / Elements.

repeat(F, T0, Done) ->
    _ = F(),
    case erlang:monotonic_time(nanosecond) - T0 > 300000000 of
        true -> Done + 1;
        false -> repeat(F, T0, Done + 1)
    end.

c_floor(N) ->
    Out = os:cmd("build/bench/bench_floor " ++ integer_to_list(N) ++ " 2>/dev/null"),
    case string:lexemes(string:trim(Out), " ") of
        ["floor", _, Floor, "core", _, Core | _] -> {list_to_float(Floor), list_to_float(Core)};
        _ -> error({bench_floor_output, Out})
    end.

%% ------------------------------------------------------------------ ops

ops_section() ->
    io:format("~n== OR-Set mutations (ops per second, higher is better): v1 C path beside v2~n"),
    V1 = plexus_orset_v1:add_all(plexus_orset_v1:new(), lists:seq(1, 100000), a),
    {ok, V2} = plexus_orset:from_binary(V1),
    Batch = lists:seq(200001, 210000),
    Gone = lists:seq(1, 10000),
    Rate = fun(F, Count) -> round(1.0e9 / per_element(F, Count)) end,
    io:format("batched add_all of 10k into a 100k set:    v1 ~10b  v2 ~10b ops/s  "
              "(target >= 1,000,000)~n",
              [Rate(fun() -> plexus_orset_v1:add_all(V1, Batch, b) end, 10000),
               Rate(fun() -> plexus_orset:add_all(V2, Batch, b) end, 10000)]),
    io:format("batched remove_all of 10k from a 100k set: v1 ~10b  v2 ~10b ops/s~n",
              [Rate(fun() -> plexus_orset_v1:remove_all(V1, Gone) end, 10000),
               Rate(fun() -> plexus_orset:remove_all(V2, Gone) end, 10000)]),
    io:format("building a 100k set with one add_all:      v1 ~10b  v2 ~10b ops/s~n",
              [Rate(fun() -> plexus_orset_v1:add_all(plexus_orset_v1:new(),
                                                     lists:seq(1, 100000), a) end, 100000),
               Rate(fun() -> plexus_orset:add_all(plexus_orset:new(),
                                                  lists:seq(1, 100000), a) end, 100000)]),
    io:format("single add, each on the previous result (v1 copies the state, v2 is "
              "O(log n)), by set size:~n"),
    [single_add_row(N) || N <- [10, 100, 1000, 10000, 100000]],
    ok.

single_add_row(N) ->
    S1 = plexus_orset_v1:add_all(plexus_orset_v1:new(), lists:seq(1, N), a),
    {ok, S2} = plexus_orset:from_binary(S1),
    Ns1 = per_element(fun() -> add_loop(plexus_orset_v1, S1, 100) end, 100),
    Ns2 = per_element(fun() -> add_loop(plexus_orset, S2, 100) end, 100),
    io:format("   ~7b elements (v1 ~8b bytes): v1 ~10b ops/s ~10b ns/op, "
              "v2 ~10b ops/s ~8b ns/op~n",
              [N, byte_size(S1), round(1.0e9 / Ns1), round(Ns1), round(1.0e9 / Ns2),
               round(Ns2)]).

add_loop(_, S, 0) -> S;
add_loop(M, S, K) -> add_loop(M, M:add(S, {new, K}, b), K - 1).

%% ------------------------------------------------------------------ LWW register

%% A 20-byte register against the plain Erlang register riak_dt_lwwreg keeps
%% (plain_update/3, plain_merge/2): update = read the wall clock and build
%% {Ts, Actor, Value} after the old timestamp; merge = the greater tuple. Each figure is the best of many 1,000-call chunks (the shortest
%% chunks are the ones the OS did not preempt: this machine is shared), loop included.
lww_section() ->
    {_, WallMode} = plexus_nif:hlc_wall(),
    io:format("~n== LWW register, ns per call (lower is better; ratio = plexus / plain Erlang; "
              "wall clock read: ~s)~n", [wall_mode(WallMode)]),
    R = plexus_lww:new(hello),
    R2 = plexus_lww:update(R, world),
    T = {os:system_time(millisecond) bsl 16, node(), hello},
    T2 = {element(1, T) + 1, node(), world},
    %% new and previous update code (and the plain register) in alternate chunks, so
    %% that load on this shared machine hits all of them alike
    {[Upd, UpdOld, UpdModel, Mrg, MrgModel], Batches} =
        best_ns_batches([fun(K) -> lww_update_loop(R, K) end,
                         fun(K) -> old_update_loop(R, K) end,
                         fun(K) -> model_update_loop(T, K) end,
                         fun(K) -> lww_merge_loop(R, R2, K) end,
                         fun(K) -> model_merge_loop(T, T2, K) end]),
    {RB, R2B} = {plexus_lww:to_binary(R), plexus_lww:to_binary(R2)},
    MrgOld = best_ns(fun(K) -> lww_merge_loop(RB, R2B, K) end),
    MrgNif = best_ns(fun(K) -> nif_merge_loop(RB, R2B, K) end),
    %% remote winners newer than the node clock each time: merge also advances it
    MrgFresh = best_fresh_ns(R),
    io:format("update/2 (each on the previous result): ~7.1f  plain ~7.1f  ratio ~5.2f  (target <= 1.5)~n",
              [Upd, UpdModel, Upd / UpdModel]),
    io:format("update/2 as before (Erlang tick and encoding, same chunks): ~7.1f  ratio ~5.2f~n",
              [UpdOld, UpdOld / UpdModel]),
    io:format("merge/2:                                ~7.1f  plain ~7.1f  ratio ~5.2f  (target <= 1.5)~n",
              [Mrg, MrgModel, Mrg / MrgModel]),
    Ratios = fun(I, J) -> [lists:nth(I, B) / lists:nth(J, B) || B <- Batches] end,
    io:format("  the ratios batch by batch (each the best of 200 alternating rounds in a fresh "
              "process):~n    update ~s~n    merge  ~s~n",
              [ratio_list(Ratios(1, 3)), ratio_list(Ratios(4, 5))]),
    io:format("merge/2 of two old binary registers:    ~7.1f (converted to the tuple)~n", [MrgOld]),
    io:format("plexus_nif:lww_merge/1 of the binaries: ~7.1f~n", [MrgNif]),
    io:format("merge/2, winner ahead of the node clock: ~6.1f (raising it reads the wall clock)~n",
              [MrgFresh]),
    lww_floors(RB, R2B),
    ok.

wall_mode(tsc) -> "TSC window, clock_gettime once a millisecond";
wall_mode(realtime) -> "clock_gettime on every tick".

%% Where the time of update/2 and merge/2 goes, each step alone in the same run: what
%% the old binary register could not skip (matching the binaries, building the new
%% binary) beside what every HLC register pays (ticking and observing the shared
%% clock) and what the plain register pays (a tuple compare; a wall clock read and a
%% tuple). Given the canonical binaries of the two registers.
lww_floors(R, R2) ->
    <<_:16, Ts:64, _/binary>> = R2,
    Loop = best_ns(fun(K) -> empty_loop(K) end),
    Header = best_ns(fun(K) -> header_compare_loop(R, R2, K) end),
    Match = best_ns(fun(K) -> full_match_loop(R, R2, K) end),
    Observe = best_ns(fun(K) -> observe_loop(Ts, K) end),
    SharedRead = best_ns(fun(K) -> shared_read_loop(Ts, K) end),
    Wall = best_ns(fun(K) -> wall_loop(K) end),
    Tick = best_ns(fun(K) -> tick_loop(plexus_hlc:now(), K) end),
    TickNif = best_ns(fun(K) -> tick_nif_loop(0, K) end),
    TickOld = best_ns(fun(K) -> old_tick_loop(0, K) end),
    {plexus_lww, _, _, _} = Reg = plexus_lww:new(hello),
    WriteNif = best_ns(fun(K) -> update_nif_loop(Reg, K) end),
    PtActor = best_ns(fun(K) -> old_node_actor_loop(K) end),
    EncodeErl = best_ns(fun(K) -> old_enc_loop(world, K) end),
    Build = best_ns(fun(K) -> build_loop(R2, K) end),
    Encode = best_ns(fun(K) -> encode_loop(world, K) end),
    io:format("where the time goes (each step alone, ns, loop of ~.1f ns included):~n", [Loop]),
    io:format("  merge floor: compare two registers' timestamps (header match only): ~7.1f~n"
              "  the match merge/2 does (both registers' full layout, as validation):  ~7.1f~n"
              "  plexus_hlc:observe/1 of a timestamp the clock has seen:              ~7.1f~n"
              "  the same decided by the clock NIF, without the per-process bound:      ~6.1f~n",
              [Header, Match, Observe, SharedRead]),
    io:format("  update: os:system_time/1 (plain update pays it too):                 ~7.1f~n"
              "  plexus_hlc:next_after/1 (the tick NIF, leases included):             ~7.1f~n"
              "  plexus_nif:hlc_next_after/1 alone (wall clock + compare-and-swap):   ~7.1f~n"
              "  the tick as it was (os:system_time + persistent_term + atomics):     ~7.1f~n"
              "  plexus_nif:lww_update/3 alone (check, fields, tick, term):           ~7.1f~n"
              "  as it was: node actor field from persistent_term:                    ~7.1f~n"
              "  as it was: an atom value encoded in Erlang (atom_to_binary + build): ~7.1f~n"
              "  build a 20-byte register binary from its fields:                     ~7.1f~n"
              "  plexus_nif:encode/1 (term_to_binary/2; update/2 avoids it for atoms,~n"
              "  32-bit integers and binaries):                                       ~7.1f~n",
              [Wall, Tick, TickNif, TickOld, WriteNif, PtActor, EncodeErl, Build, Encode]).

empty_loop(0) -> ok;
empty_loop(K) -> empty_loop(K - 1).

header_compare_loop(_, _, 0) -> ok;
header_compare_loop(A, B, K) -> _ = header_compare(A, B), header_compare_loop(A, B, K - 1).

header_compare(<<1, $L, TsA:64, _/binary>> = A, <<1, $L, TsB:64, _/binary>> = B) ->
    if TsA >= TsB -> A; true -> B end.

full_match_loop(_, _, 0) -> ok;
full_match_loop(A, B, K) -> _ = full_match(A, B), full_match_loop(A, B, K - 1).

full_match(<<1, $L, TsA:64, ALA, _:ALA/binary, VLA, _:VLA/binary>> = A,
           <<1, $L, TsB:64, ALB, _:ALB/binary, VLB, _:VLB/binary>> = B)
  when ALA > 0, ALA < 128, VLA > 0, VLA < 128, ALB > 0, ALB < 128, VLB > 0, VLB < 128 ->
    if TsA >= TsB -> A; true -> B end.

observe_loop(_, 0) -> ok;
observe_loop(Ts, K) -> ok = plexus_hlc:observe(Ts), observe_loop(Ts, K - 1).

%% What observe/1 would cost with no bound kept in the caller's process dictionary:
%% the clock cell read through its NIF on every call.
shared_read_loop(_, 0) -> ok;
shared_read_loop(Ts, K) ->
    true = Ts =< plexus_nif:hlc_observe(Ts),
    shared_read_loop(Ts, K - 1).

wall_loop(0) -> ok;
wall_loop(K) -> _ = os:system_time(millisecond), wall_loop(K - 1).

tick_loop(_, 0) -> ok;
tick_loop(Ts, K) -> tick_loop(plexus_hlc:next_after(Ts), K - 1).

build_loop(R, K) ->
    <<_:16, Ts:64, AL, Actor:AL/binary, Value/binary>> = R,
    build_loop(Ts, binary:copy(<<AL, Actor/binary>>), binary:copy(Value), K).

build_loop(_, _, _, 0) -> ok;
build_loop(Ts, ActorField, ValueField, K) ->
    _ = <<1, $L, Ts:64, ActorField/binary, ValueField/binary>>,
    build_loop(Ts + 1, ActorField, ValueField, K - 1).

encode_loop(_, 0) -> ok;
encode_loop(V, K) -> _ = plexus_nif:encode(V), encode_loop(V, K - 1).

best_ns(F) -> best_ns(F, 200).

%% best_ns/1 of each fun, their chunks taken in turn.
%% This VM has phases, from milliseconds to seconds long, in which every call from
%% Erlang into C (a BIF such as os:system_time/1 or erlang:get/1, a NIF) costs 10-40 ns
%% more while plain Erlang code runs at full speed; one run of alternating rounds can
%% fall in such a phase for one column and not another. So the register figures are
%% the best of LWW_BATCHES batches of alternating rounds, each in a fresh process,
%% 200 ms apart; every batch is returned too, to print the spread.
-define(LWW_BATCHES, 8).
best_ns_batches(Fs) ->
    Self = self(),
    Batches = [begin
                   receive after 200 -> ok end, % not timer:sleep/1: no module to load mid-run
                   {Pid, Ref} = spawn_monitor(fun() -> Self ! {batch, self(), best_ns_alternating(Fs)} end),
                   receive
                       {batch, Pid, Ns} -> erlang:demonitor(Ref, [flush]), Ns;
                       {'DOWN', Ref, process, Pid, Why} -> error({batch_failed, Why})
                   end
               end || _ <- lists:seq(1, ?LWW_BATCHES)],
    {[lists:min(Col) || Col <- transpose(Batches)], Batches}.

transpose([[] | _]) -> [];
transpose(Rows) -> [[hd(R) || R <- Rows] | transpose([tl(R) || R <- Rows])].

ratio_list(Rs) -> lists:join(" ", [io_lib:format("~.2f", [R]) || R <- Rs]).

best_ns_alternating(Fs) ->
    _ = [F(1000) || F <- Fs],
    Rounds = [[begin
                   T0 = erlang:monotonic_time(nanosecond),
                   _ = F(1000),
                   (erlang:monotonic_time(nanosecond) - T0) / 1000
               end || F <- Fs] || _ <- lists:seq(1, 200)],
    [lists:min([lists:nth(I, Round) || Round <- Rounds]) || I <- lists:seq(1, length(Fs))].

tick_nif_loop(_, 0) -> ok;
tick_nif_loop(Ts, K) ->
    case plexus_nif:hlc_next_after(Ts) of
        {lease, Need} -> plexus_hlc:lease(Need), tick_nif_loop(Ts, K);
        Next -> tick_nif_loop(Next, K - 1)
    end.

update_nif_loop(_, 0) -> ok;
update_nif_loop(R, K) ->
    case plexus_nif:lww_update(R, node(), world) of
        {lease, Need} -> plexus_hlc:lease(Need), update_nif_loop(R, K);
        R2 -> update_nif_loop(R2, K - 1)
    end.

%% ---- the previous update/2 code, kept as the baseline: the tick in Erlang on an
%% atomics cell of its own (not the node clock), the value encoded in Erlang, the
%% node's actor field from persistent_term.
-define(OLD_KEY, plexus_bench_crdt_old_hlc).
-define(OLD_MAX_LEN, 67108864).
-define(OLD_TS(Ts), is_integer(Ts), Ts >= 0,
        (Ts =< 576460752303423487 orelse Ts =< 18446744073709551615)).
-define(OLD_FIELD(F), is_binary(F), byte_size(F) > 0, byte_size(F) =< ?OLD_MAX_LEN).

old_update_loop(_, 0) -> ok;
old_update_loop(R, K) -> old_update_loop(?MODULE:old_update(R, world), K - 1).

-spec old_update(plexus_lww:lww(), atom()) -> plexus_lww:lww() | {error, overflow}.
old_update({plexus_lww, Ts, A, V}, Value) when ?OLD_TS(Ts), ?OLD_FIELD(A), ?OLD_FIELD(V) ->
    old_write_after(Ts, old_node_actor(), old_enc(Value)).

old_write_after(Floor, Actor, Value) when byte_size(Actor) =< ?OLD_MAX_LEN,
                                          byte_size(Value) =< ?OLD_MAX_LEN ->
    Ts = old_next_after(Floor),
    if
        Ts =< Floor -> {error, overflow};
        true -> {plexus_lww, Ts, Actor, Value}
    end.

old_next_after(Floor) ->
    Wall = os:system_time(millisecond),
    Ref = old_clock_ref(),
    case atomics:add_get(Ref, 1, 1) of
        Ts when Ts > Floor, Wall < 70368744177664, Ts >= Wall bsl 16 -> Ts;
        Ts -> old_tick(Ref, Ts, Floor, Wall)
    end.

old_tick(Ref, Old, Floor, Wall) ->
    Next = plexus_hlc:next(max(Old, Floor), Wall),
    case atomics:compare_exchange(Ref, 1, Old, Next) of
        ok -> Next;
        Current -> old_tick(Ref, Current, Floor, Wall)
    end.

old_clock_ref() ->
    case persistent_term:get(?OLD_KEY, undefined) of
        undefined ->
            persistent_term:put(?OLD_KEY, atomics:new(1, [{signed, false}])),
            old_clock_ref();
        Ref -> Ref
    end.

old_enc(A) when is_atom(A) ->
    case atom_to_binary(A, utf8) of
        B when byte_size(B) < 256 -> <<119, (byte_size(B)), B/binary>>
    end.

old_node_actor() ->
    Node = node(),
    case persistent_term:get(plexus_bench_crdt_old_actor, undefined) of
        {Node, Field} ->
            Field;
        _ ->
            Field = old_enc(Node),
            persistent_term:put(plexus_bench_crdt_old_actor, {Node, Field}),
            Field
    end.

old_tick_loop(_, 0) -> ok;
old_tick_loop(Ts, K) -> old_tick_loop(old_next_after(Ts), K - 1).

old_node_actor_loop(0) -> ok;
old_node_actor_loop(K) -> <<_, _/binary>> = ?MODULE:old_actor(), old_node_actor_loop(K - 1).

old_enc_loop(_, 0) -> ok;
old_enc_loop(V, K) -> <<_, _/binary>> = ?MODULE:old_encode(V), old_enc_loop(V, K - 1).

-spec old_actor() -> binary().
old_actor() -> old_node_actor().

-spec old_encode(atom()) -> binary().
old_encode(V) -> old_enc(V).

%% Merges with 1,000 registers stamped just after the node clock, new ones per chunk
%% (made outside the timing), so every merge raises the clock.
best_fresh_ns(R) ->
    lists:min([begin
                   Base = plexus_hlc:now(),
                   Fresh = [begin
                                %% made from bytes: from_binary/1 does not observe
                                {ok, F} = plexus_lww:from_binary(
                                            plexus_nif:lww_new(plexus_nif:encode(v),
                                                               plexus_nif:encode(remote),
                                                               Base + I)),
                                F
                            end || I <- lists:seq(1, 1000)],
                   T0 = erlang:monotonic_time(nanosecond),
                   lww_merge_list(R, Fresh),
                   (erlang:monotonic_time(nanosecond) - T0) / 1000
               end || _ <- lists:seq(1, 100)]).

best_ns(F, Chunks) ->
    _ = F(1000),
    lists:min([begin
                   T0 = erlang:monotonic_time(nanosecond),
                   _ = F(1000),
                   (erlang:monotonic_time(nanosecond) - T0) / 1000
               end || _ <- lists:seq(1, Chunks)]).

lww_update_loop(_, 0) -> ok;
lww_update_loop(R, K) -> lww_update_loop(plexus_lww:update(R, world), K - 1).

model_update_loop(_, 0) -> ok;
model_update_loop(T, K) ->
    {ok, T2} = ?MODULE:plain_update({assign, world}, node(), T),
    model_update_loop(T2, K - 1).

model_merge_loop(_, _, 0) -> ok;
model_merge_loop(A, B, K) -> _ = ?MODULE:plain_merge(A, B), model_merge_loop(A, B, K - 1).

%% The plain Erlang register, as riak_dt_lwwreg keeps one but with the actor in the
%% tuple for the same tie break; called remotely as riak_dt_lwwreg would be.
-spec plain_update({assign, term()}, term(), {integer(), term(), term()}) ->
    {ok, {integer(), term(), term()}}.
plain_update({assign, Value}, Actor, {Ts, _, _}) ->
    {ok, {max(Ts + 1, os:system_time(millisecond) bsl 16), Actor, Value}}.

-spec plain_merge(T, T) -> T when T :: {integer(), term(), term()}.
plain_merge({TsA, _, _} = A, {TsB, _, _} = B) ->
    if
        TsA > TsB -> A;
        TsA < TsB -> B;
        A >= B -> A;
        true -> B
    end.

lww_merge_loop(_, _, 0) -> ok;
lww_merge_loop(A, B, K) -> _ = plexus_lww:merge(A, B), lww_merge_loop(A, B, K - 1).

nif_merge_loop(_, _, 0) -> ok;
nif_merge_loop(A, B, K) -> _ = plexus_nif:lww_merge([A, B]), nif_merge_loop(A, B, K - 1).

lww_merge_list(_, []) -> ok;
lww_merge_list(A, [B | Bs]) -> _ = plexus_lww:merge(A, B), lww_merge_list(A, Bs).

%% ------------------------------------------------------------------ scheduling

summary(Rows, LongSchedules) ->
    #{nif := Nif, model := Model, bytes := Bytes} =
        case [R || R = #{n := 100000} <- Rows] of
            [R100k] -> R100k;
            [] -> lists:last(Rows)
        end,
    io:format("~nsummary at 100k (or the largest size run): nif ~.2f ns/el (target <= 15), ~.1fx faster than the Erlang model "
              "(target >= 20), ~.2f bytes/el (target <= 12), long_schedule ~b (target 0; see above)~n",
              [Nif, Model / max(Nif, 1.0e-9), Bytes, LongSchedules]).
