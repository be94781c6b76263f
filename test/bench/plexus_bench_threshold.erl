%% @doc Measures the cost per input byte of each CRDT NIF call kept inline, to set
%% PLEXUS_DIRTY_THRESHOLD_BYTES (c_src/nif/nif_util.h): the input weight at which
%% the costliest call per byte takes about 0.5 ms on a normal scheduler.
%%
%% Sets of small integers (the cheapest element to store, so the most elements and
%% the most per-element work per byte). Weight is what the NIF counts: state bytes,
%% plus element bytes and 16 per list cell for batches. Run:
%%   erlc -o build/bench test/bench/plexus_bench_threshold.erl
%%   erl -noshell -pa _build/default/lib/plexus/ebin -pa build/bench \
%%       -eval 'plexus_bench_threshold:main()'
-module(plexus_bench_threshold).

-export([main/0]).

-define(S, plexus_orset_v1).
-define(CELL_WEIGHT, 16).

-spec main() -> no_return().
main() ->
    Old = plexus_nif:set_dirty_threshold(1 bsl 62),    % everything inline
    io:format("~8s ~9s | ns per weighed byte: ~8s ~8s ~8s ~8s ~8s~n",
              ["elements", "bytes", "merge", "to_list", "size", "digest", "add_all"]),
    Rows = [row(N) || N <- [1000, 4000, 10000, 40000, 100000]],
    Worst = lists:max([lists:max(tl(tl(R))) || R <- Rows]),
    io:format("worst ~.2f ns/byte: 0.5 ms at ~w bytes~n", [Worst, round(500000 / Worst)]),
    _ = plexus_nif:set_dirty_threshold(Old),
    halt(0).

row(N) ->
    Base = ?S:add_all(?S:new(), lists:seq(1, N), base),
    A = ?S:add_all(Base, lists:seq(N + 1, N + N div 10), a),
    B = ?S:add_all(Base, lists:seq(2 * N, 2 * N + N div 10), b),
    Sz = byte_size(A),
    Elems = [plexus_nif:encode(E) || E <- lists:seq(3 * N, 4 * N)],
    Actor = plexus_nif:encode(x),
    AddWeight = Sz + lists:sum([?CELL_WEIGHT + byte_size(E) - 1 || E <- Elems]),
    Reps = max(3, 200000 div N),
    Merge = ns(fun() -> ?S:merge(A, B) end, Reps) / (Sz + byte_size(B)),
    ToList = ns(fun() -> ?S:to_list(A) end, Reps) / Sz,
    Size = ns(fun() -> ?S:size(A) end, Reps) / Sz,
    Digest = ns(fun() -> ?S:digest(A) end, Reps) / Sz,
    AddAll = ns(fun() -> plexus_nif:orset_apply(A, add, Elems, Actor, state) end, Reps)
        / AddWeight,
    io:format("~8w ~9w | ~29.2f ~8.2f ~8.2f ~8.2f ~8.2f~n",
              [N, Sz, Merge, ToList, Size, Digest, AddAll]),
    [N, Sz, Merge, ToList, Size, Digest, AddAll].

%% Mean ns per call over Reps calls.
ns(F, Reps) ->
    {Us, _} = timer:tc(fun() -> [F() || _ <- lists:seq(1, Reps)] end),
    Us * 1000 / Reps.
