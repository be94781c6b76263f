%% @doc CRDT benchmark for `make bench' (issue 2 figures), side by side in one run.
%%
%% OR-Set merge at 1k, 10k, 100k and 1M elements per side (90% shared; each side
%% removes a distinct 5% and adds a unique 5%): the NIF, the plain-Erlang reference
%% model (test/support/plexus_orset_model.erl) and the C floor (a union of two sorted uint64
%% arrays, build/bench/bench_floor, which also reports the core merge without the
%% NIF). Then add/remove throughput, bytes per element and long_schedule events seen
%% by erlang:system_monitor during the whole run. Figures are per input element
%% (2N for a merge of two N-element sets). Targets are printed beside the figures;
%% nothing here asserts on time.
-module(plexus_bench_crdt).

-export([main/0, main/1]).
-export([plain_update/3, plain_merge/2]).

-define(SIZES, [1000, 10000, 100000, 1000000]).

-spec main() -> no_return().
main() -> main(?SIZES).

-spec main([pos_integer()]) -> no_return().
main(Sizes) ->
    %% Load every module first: the code loader reading a .beam mid-run is itself
    %% reported as a long_schedule and says nothing about plexus.
    [{module, _} = code:ensure_loaded(M)
     || M <- [plexus_orset, plexus_lww, plexus_hlc, plexus_nif, plexus_orset_model, lists,
              io_lib_format, string]],
    Monitor = start_long_schedule_monitor(),
    io:format("~n== OR-Set merge, ns per input element (lower is better)~n"),
    io:format("~10s ~10s ~10s ~10s ~10s ~12s ~12s ~10s~n",
              ["elements", "nif", "c-core", "c-floor", "erl-model", "model/nif", "nif/floor",
               "bytes/el"]),
    Rows = [merge_row(N) || N <- Sizes],
    io:format("targets: nif <= 15 ns at 100k; model/nif >= 20; bytes/el <= 12~n"),
    ops_section(),
    lww_section(),
    LongSchedules = stop_long_schedule_monitor(Monitor),
    io:format("~nlong_schedule events (> 10 ms on a normal scheduler) during the run: ~b (target 0)~n",
              [LongSchedules]),
    summary(Rows, LongSchedules),
    erlang:halt(0).

%% ------------------------------------------------------------------ merge

replicas(N) ->
    U = max(1, N div 20),
    Base = plexus_orset:add_all(plexus_orset:new(), lists:seq(1, N), a),
    A = plexus_orset:apply(Base, [{remove_all, lists:seq(1, U)},
                                  {add_all, lists:seq(N + 1, N + U)}], a),
    B = plexus_orset:apply(Base, [{remove_all, lists:seq(U + 1, 2 * U)},
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
    N = plexus_orset:size(plexus_orset:merge(A, B)),
    NifNs = per_element(fun() -> plexus_orset:merge(A, B) end, 2 * N),
    {MA, MB} = model_replicas(N, U),
    ModelNs = per_element(fun() -> plexus_orset_model:merge(MA, MB) end, 2 * N),
    {FloorNs, CoreNs} = c_floor(N),
    BytesPerEl = byte_size(Base) / N,
    io:format("~10b ~10.2f ~10.2f ~10.2f ~10.1f ~12.1f ~12.1f ~10.2f~n",
              [N, NifNs, CoreNs, FloorNs, ModelNs, ModelNs / NifNs, NifNs / FloorNs, BytesPerEl]),
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
    io:format("~n== OR-Set mutations (ops per second, higher is better)~n"),
    S100k = plexus_orset:add_all(plexus_orset:new(), lists:seq(1, 100000), a),
    Batch = lists:seq(200001, 210000),
    BatchNs = per_element(fun() -> plexus_orset:add_all(S100k, Batch, b) end, length(Batch)),
    io:format("batched add_all of 10k into a 100k set:    ~12b ops/s  (target >= 1,000,000)~n",
              [round(1.0e9 / BatchNs)]),
    RmNs = per_element(fun() -> plexus_orset:remove_all(S100k, lists:seq(1, 10000)) end, 10000),
    io:format("batched remove_all of 10k from a 100k set: ~12b ops/s~n", [round(1.0e9 / RmNs)]),
    io:format("single add (each copies the state), by set size:~n"),
    [single_add_row(N) || N <- [10, 100, 1000, 10000, 100000]],
    io:format("single adds cost one state copy each: cheap while the state is a few KB,~n"
              "use add_all/apply for bulk work on larger sets.~n"),
    ok.

single_add_row(N) ->
    S = plexus_orset:add_all(plexus_orset:new(), lists:seq(1, N), a),
    Ns = per_element(fun() -> add_loop(S, 100) end, 100),
    io:format("   ~7b elements (~8b bytes): ~12b ops/s  ~10b ns/op~n",
              [N, byte_size(S), round(1.0e9 / Ns), round(Ns)]).

add_loop(S, 0) -> S;
add_loop(S, K) -> add_loop(plexus_orset:add(S, {new, K}, b), K - 1).

%% ------------------------------------------------------------------ LWW register

%% A 20-byte register against the plain Erlang register riak_dt_lwwreg keeps
%% (plain_update/3, plain_merge/2): update = read the wall clock and build
%% {Ts, Actor, Value} after the old timestamp; merge = the greater tuple. Each figure is the best of many 1,000-call chunks (the shortest
%% chunks are the ones the OS did not preempt: this machine is shared), loop included.
lww_section() ->
    io:format("~n== LWW register, ns per call (lower is better; ratio = plexus / plain Erlang)~n"),
    R = plexus_lww:new(hello),
    R2 = plexus_lww:update(R, world),
    T = {os:system_time(millisecond) bsl 16, node(), hello},
    T2 = {element(1, T) + 1, node(), world},
    Upd = best_ns(fun(K) -> lww_update_loop(R, K) end),
    UpdModel = best_ns(fun(K) -> model_update_loop(T, K) end),
    Mrg = best_ns(fun(K) -> lww_merge_loop(R, R2, K) end),
    MrgModel = best_ns(fun(K) -> model_merge_loop(T, T2, K) end),
    MrgNif = best_ns(fun(K) -> nif_merge_loop(R, R2, K) end),
    %% remote winners newer than the node clock each time: merge also advances it
    MrgFresh = best_fresh_ns(R),
    io:format("update/2 (each on the previous result): ~7.1f  plain ~7.1f  ratio ~5.2f  (target <= 1.5)~n",
              [Upd, UpdModel, Upd / UpdModel]),
    io:format("merge/2:                                ~7.1f  plain ~7.1f  ratio ~5.2f  (target <= 1.5)~n",
              [Mrg, MrgModel, Mrg / MrgModel]),
    io:format("merge/2 through the NIF (the C path):   ~7.1f~n", [MrgNif]),
    io:format("merge/2, winner ahead of the node clock: ~6.1f (raising it reads the wall clock)~n",
              [MrgFresh]),
    ok.

best_ns(F) -> best_ns(F, 200).

%% Merges with 1,000 registers stamped just after the node clock, new ones per chunk
%% (made outside the timing), so every merge raises the clock.
best_fresh_ns(R) ->
    lists:min([begin
                   Base = plexus_hlc:now(),
                   Fresh = [plexus_nif:lww_new(plexus_nif:encode(v), plexus_nif:encode(remote),
                                               Base + I) || I <- lists:seq(1, 1000)],
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

start_long_schedule_monitor() ->
    Self = self(),
    Pid = spawn(fun() ->
                        erlang:system_monitor(self(), [{long_schedule, 10}]),
                        Self ! ready,
                        count_long_schedules(0)
                end),
    receive ready -> Pid end.

count_long_schedules(K) ->
    receive
        {monitor, _, long_schedule, Info} ->
            io:format("  long_schedule: ~p~n", [Info]),
            count_long_schedules(K + 1);
        {stop, From} -> From ! {long_schedules, K}
    end.

stop_long_schedule_monitor(Pid) ->
    Pid ! {stop, self()},
    receive {long_schedules, K} -> K end.

summary(Rows, LongSchedules) ->
    #{nif := Nif, model := Model, bytes := Bytes} =
        case [R || R = #{n := 100000} <- Rows] of
            [R100k] -> R100k;
            [] -> lists:last(Rows)
        end,
    io:format("~nsummary at 100k (or the largest size run): nif ~.2f ns/el (target <= 15), ~.1fx faster than the Erlang model "
              "(target >= 20), ~.2f bytes/el (target <= 12), long_schedule ~b (target 0)~n",
              [Nif, Model / max(Nif, 1.0e-9), Bytes, LongSchedules]).
