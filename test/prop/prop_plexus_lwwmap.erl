%% PropEr properties of plexus_lwwmap (issue 12):
%%   - agreement with the reference model plexus_lwwmap_model under the same puts,
%%     removes and full-state merges on three replicas;
%%   - convergence under random delivery, duplication and reordering of deltas:
%%     once every delta reached every replica, all replicas are byte-identical and
%%     equal to the full-state merge;
%%   - merge laws (commutative, associative, idempotent, absorbing) on states that
%%     share history and states that do not, compared as canonical bytes;
%%   - from_binary(to_binary(M)) round-trips to the same term;
%%   - anti-entropy between two replicas with random divergence ends in the merge,
%%     byte for byte, and exchanges no more than both full states;
%%   - keyed remove deltas (and tampered keys) merge into the full merge, term for term;
%%   - the C reader of 'M' bytes (plexus_nif:trie_decode/1) accepts exactly what the
%%     Erlang reader accepts, on states with dot clouds and on their mutations.
%%
%% Run from EUnit: proper_test_/0.
-module(prop_plexus_lwwmap).

-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

-include("plexus_prop.hrl").

-define(M, plexus_lwwmap).
-define(MODEL, plexus_lwwmap_model).
-define(OPTS, [{numtests, ?NUMTESTS(200)}, {max_size, 60}, {to_file, user}]).

proper_test_() ->
    Props = [prop_model_agreement, prop_delta_converge, prop_merge_laws,
             prop_c_walk_is_erlang_walk, prop_small_into_large_is_full_merge, prop_roundtrip,
             prop_anti_entropy, prop_keyed_delta_merge, prop_c_reader_is_erlang_reader],
    [{atom_to_list(P), {timeout, 300, ?_assert(proper:quickcheck(?MODULE:P(), ?OPTS))}}
     || P <- Props].

%% ---------------------------------------------------------------- generators

key() -> oneof([range(0, 7), elements([a, b]), {t, range(0, 2)}, elements([<<>>, <<"x">>])]).
value() -> oneof([range(0, 3), elements([x, y]), binary(2)]).
replica() -> range(1, 3).

op() -> frequency([{4, {put, key(), value()}}, {2, {remove, key()}}]).

step() ->
    frequency([{6, {op, replica(), op()}}, {2, {merge, replica(), replica()}}]).

%% ---------------------------------------------------------------- properties

%% Each replica is {Impl, Model}; replica R acts as actor R. The model's timestamp is
%% the step number: the HLC issues increasing timestamps in call order, so both order
%% writes alike.
prop_model_agreement() ->
    ?FORALL(Steps, list(step()),
            ?SAFE(begin
                      R0 = maps:from_list([{R, {?M:new(), ?MODEL:new()}} || R <- [1, 2, 3]]),
                      {Reps, _} = lists:foldl(fun model_step/2, {R0, 1}, Steps),
                      lists:all(fun({I, Mo}) -> ?M:to_map(I) =:= ?MODEL:to_map(Mo) end,
                                maps:values(Reps))
                  end)).

model_step({op, R, {put, K, V}}, {Reps, T}) ->
    {I, Mo} = maps:get(R, Reps),
    {Reps#{R => {?M:put(I, K, V, R), ?MODEL:put(K, V, R, T, Mo)}}, T + 1};
model_step({op, R, {remove, K}}, {Reps, T}) ->
    {I, Mo} = maps:get(R, Reps),
    {Reps#{R => {?M:remove(I, K), ?MODEL:remove(K, Mo)}}, T + 1};
model_step({merge, R1, R2}, {Reps, T}) ->
    {I1, M1} = maps:get(R1, Reps),
    {I2, M2} = maps:get(R2, Reps),
    {Reps#{R1 => {?M:merge(I1, I2), ?MODEL:merge(M1, M2)}}, T + 1}.

%% Ops emit deltas into a pool; {deliver, R, N} merges the pool's N-th delta (mod its
%% length) into R: any order, any number of times. At the end every delta reaches
%% every replica, in an order the test picks (reversed pool).
prop_delta_converge() ->
    ?FORALL(Steps, list(frequency([{3, {op, replica(), op()}},
                                   {3, {deliver, replica(), range(0, 1000)}}])),
            ?SAFE(begin
                      R0 = #{1 => ?M:new(), 2 => ?M:new(), 3 => ?M:new()},
                      {Reps, Pool} = lists:foldl(fun delta_step/2, {R0, []}, Steps),
                      Final = [?M:merge([maps:get(R, Reps) | Pool]) || R <- [1, 2, 3]],
                      Bins = [?M:to_binary(F) || F <- Final],
                      Full = ?M:merge(maps:values(Reps)),
                      lists:usort(Bins) =:= [?M:to_binary(Full)]
                  end)).

delta_step({op, R, Op}, {Reps, Pool}) ->
    Map = maps:get(R, Reps),
    {Map2, D} = case Op of
                    {put, K, V} -> ?M:put_delta(Map, K, V, R);
                    {remove, K} -> ?M:remove_delta(Map, K)
                end,
    {Reps#{R => Map2}, [D | Pool]};
delta_step({deliver, _, _}, {_, []} = Acc) ->
    Acc;
delta_step({deliver, R, N}, {Reps, Pool}) ->
    D = lists:nth(N rem length(Pool) + 1, Pool),
    {Reps#{R => ?M:merge(maps:get(R, Reps), D)}, Pool}.

%% Three replicas built by random steps (shared history through merges), plus one
%% built independently by a fourth actor.
%% merge/2 walks the tries in C (c_src/nif/nif_trie.c); the Erlang walk
%% (merge_erl/2) gives the very same term, for replicas of up to ~2,000 keys that
%% share structure and for the same replicas rebuilt apart (no term shared).
prop_c_walk_is_erlang_walk() ->
    ?FORALL({N, OpsA, OpsB}, {range(0, 2000), list(big_op()), list(big_op())},
            ?SAFE(begin
                      Base = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, N)], n0),
                      A = lists:foldl(fun(Op, M) -> big_apply(M, Op, n1) end, Base, OpsA),
                      B = lists:foldl(fun(Op, M) -> big_apply(M, Op, n2) end, Base, OpsB),
                      {ok, A2} = ?M:from_binary(?M:to_binary(A)),
                      ?M:merge(A, B) =:= ?M:merge_erl(A, B)
                          andalso ?M:merge(B, A) =:= ?M:merge_erl(B, A)
                          andalso ?M:merge(A2, B) =:= ?M:merge_erl(A2, B)
                          andalso ?M:merge(B, A2) =:= ?M:merge_erl(B, A2)
                  end)).

%% A small side merged into a large one key by key (plexus_crdt_trie:merge_small/7)
%% gives the very term of the full walk, whichever side comes first and whatever keys
%% merge_delta/3 is told (the removed keys, or random ones): put and remove
%% deltas made on the large side's history, their merge, and a small map of another
%% history under the same actor (whose dots collide with the large side's: the
%% descent must see that and walk in full).
prop_small_into_large_is_full_merge() ->
    ?FORALL({N, OpsA, DeltaOps, Other, Hints},
            {range(0, 3000), list(big_op()), list(op()), list(op()), list(key())},
            ?SAFE(begin
                      Base = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, N)], n0),
                      A = lists:foldl(fun(Op, M) -> big_apply(M, Op, n1) end, Base, OpsA),
                      {_, Deltas} = lists:foldl(fun delta_of/2, {Base, []}, DeltaOps),
                      Small = lists:foldl(fun(Op, M) -> apply_op(M, Op, n1) end, ?M:new(),
                                          Other),
                      %% merge_delta/3 told the keys the deltas removed, or any keys
                      Removed = [K || {remove, K} <- DeltaOps],
                      lists:all(fun(S) ->
                                        Full = ?M:merge_erl(A, S),
                                        ?M:merge(A, S) =:= Full
                                            andalso ?M:merge(S, A) =:= ?M:merge_erl(S, A)
                                            andalso ?M:merge_delta(A, S, Removed) =:= Full
                                            andalso ?M:merge_delta(A, S, Hints) =:= Full
                                end, [Small, ?M:merge(Deltas) | Deltas])
                  end)).

%% A keyed remove delta merged into a map of any history (the large side's, made
%% from the delta's base), as it is, merged with another keyed delta first, or with
%% its keys tampered with (dropped, one added, replaced by another key), gives the full
%% walk over the two maps, term for term: keys say where to look, never what the
%% merge is. Two keyed deltas merge into one with the union of their keys; every
%% keyed delta reads back from its binary and validates.
prop_keyed_delta_merge() ->
    ?FORALL({N, OpsA, R1, R2, Tamper, Other},
            {range(0, 3000), list(big_op()), range(0, 3000), range(0, 3000),
             elements([none, drop, extra, swap]), key()},
            ?SAFE(begin
                      Base = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, N)], n0),
                      A = lists:foldl(fun(Op, M) -> big_apply(M, Op, n1) end, Base, OpsA),
                      {_, D1} = ?M:keyed_remove_delta(Base, R1),
                      {_, D2} = ?M:keyed_remove_delta(Base, R2),
                      D12 = ?M:merge(D1, D2),
                      St = fun ?M:state_of/1,
                      Union = case {D1, D2} of
                                  {{lwwmap_delta, _, K1}, {lwwmap_delta, _, K2}} ->
                                      element(3, D12) =:= lists:umerge(K1, K2)
                                          andalso D12 =:= ?M:merge(D2, D1);
                                  _ ->
                                      element(1, D12) =:= lwwmap
                              end,
                      Union andalso
                          lists:all(fun(D) ->
                                            Full = ?M:merge_erl(A, St(D)),
                                            ?M:merge(A, D) =:= Full
                                                andalso ?M:merge(D, A) =:= ?M:merge_erl(St(D), A)
                                                andalso ?M:merge_delta(A, D, [Other]) =:= Full
                                                andalso ?M:from_binary(?M:to_binary(D)) =:= {ok, D}
                                                andalso ?M:validate(D) =:= ok
                                    end, [D1, D2, D12, tamper(Tamper, D1, Other)])
                  end)).

%% Replicas that received some deltas and not others hold dot clouds (a context with
%% gaps), the part of the format with the most rules. Each replica's bytes, and each
%% with random bytes replaced, inserted, deleted or cut off: the C reader says ok
%% exactly when the Erlang reader does (from_binary/1 trusts the C reader's ok to skip
%% the Erlang checks), and from_binary/1 then gives the Erlang reader's map. The C
%% writer (to_binary/1) writes the Erlang writer's bytes.
prop_c_reader_is_erlang_reader() ->
    ?FORALL({Steps, Muts}, {list(gap_step()), list(mutation())},
            ?SAFE(begin
                      Reps = gap_replicas(Steps),
                      Bins = [?M:to_binary(M) || M <- Reps],
                      %% the C writer and the Erlang one agree
                      Bins = [?M:to_binary_erl(M) || M <- Reps],
                      All = Bins ++ [mutate(B, Mu) || B <- Bins, Mu <- Muts],
                      lists:all(fun(B) ->
                                        E = ?M:from_binary_erl(B),
                                        C = case B of % (it reads OR-Sets too)
                                                <<2, $M, _/binary>> ->
                                                    element(1, plexus_nif:trie_decode(B));
                                                _ ->
                                                    error
                                            end,
                                        (C =:= ok) =:= (element(1, E) =:= ok)
                                            andalso (C =/= ok orelse ?M:from_binary(B) =:= E)
                                end, All)
                  end)).

gap_step() ->
    frequency([{3, {put, replica(), key(), value()}}, {1, {remove, replica(), key()}},
               {3, {deliver, replica(), range(0, 30)}}]).

%% Three replicas; every put or remove is a delta kept in a pool, delivered to other
%% replicas only when a step says so (in any order, or never).
gap_replicas(Steps) ->
    R0 = #{1 => ?M:new(), 2 => ?M:new(), 3 => ?M:new()},
    {Reps, _} = lists:foldl(fun gap_step/2, {R0, []}, Steps),
    maps:values(Reps).

gap_step({put, R, K, V}, {Reps, Pool}) ->
    {M, D} = ?M:put_delta(maps:get(R, Reps), K, V, R),
    {Reps#{R => M}, [D | Pool]};
gap_step({remove, R, K}, {Reps, Pool}) ->
    {M, D} = ?M:remove_delta(maps:get(R, Reps), K),
    {Reps#{R => M}, [D | Pool]};
gap_step({deliver, _, _}, {_, []} = Acc) ->
    Acc;
gap_step({deliver, R, I}, {Reps, Pool}) ->
    D = lists:nth(1 + I rem length(Pool), Pool),
    {Reps#{R => ?M:merge(maps:get(R, Reps), D)}, Pool}.

mutation() ->
    oneof([{set, nat(), byte()}, {insert, nat(), byte()}, {delete, nat()}, {cut, nat()}]).

mutate(<<>>, _) -> <<>>;
mutate(B, {set, P, X}) ->
    I = P rem byte_size(B),
    <<H:I/binary, _, T/binary>> = B,
    <<H/binary, X, T/binary>>;
mutate(B, {insert, P, X}) ->
    I = P rem (byte_size(B) + 1),
    <<H:I/binary, T/binary>> = B,
    <<H/binary, X, T/binary>>;
mutate(B, {delete, P}) ->
    I = P rem byte_size(B),
    <<H:I/binary, _, T/binary>> = B,
    <<H/binary, T/binary>>;
mutate(B, {cut, P}) ->
    binary:part(B, 0, P rem byte_size(B)).

tamper(none, D, _) -> D;
tamper(drop, {lwwmap_delta, St, [_]}, _) -> St;
tamper(drop, {lwwmap_delta, St, [_ | Ks]}, _) -> {lwwmap_delta, St, Ks};
tamper(extra, {lwwmap_delta, St, Ks}, K) -> {lwwmap_delta, St, lists:umerge(Ks, [enc(K)])};
tamper(swap, {lwwmap_delta, St, _}, K) -> {lwwmap_delta, St, [enc(K)]};
tamper(_, D, _) -> D.

enc(T) ->
    <<131, B/binary>> = term_to_binary(T, [deterministic, {minor_version, 2}]),
    B.

delta_of({put, K, V}, {M, Acc}) ->
    {M2, D} = ?M:put_delta(M, K, V, n2),
    {M2, [D | Acc]};
delta_of({remove, K}, {M, Acc}) ->
    {M2, D} = ?M:remove_delta(M, K),
    {M2, [D | Acc]}.

big_op() ->
    frequency([{3, {put, range(0, 2500), value()}}, {2, {remove, range(0, 2500)}},
               {1, {put_range, range(0, 2500), range(0, 300)}},
               {1, {remove_range, range(0, 2500), range(0, 300)}}]).

big_apply(M, {put, K, V}, Actor) -> ?M:put(M, K, V, Actor);
big_apply(M, {remove, K}, _) -> ?M:remove(M, K);
big_apply(M, {put_range, From, Len}, Actor) ->
    ?M:put_all(M, [{K, v} || K <- lists:seq(From, From + Len)], Actor);
big_apply(M, {remove_range, From, Len}, _) ->
    ?M:remove_all(M, lists:seq(From, From + Len)).

prop_merge_laws() ->
    ?FORALL({Steps, Other}, {list(step()), list(op())},
            ?SAFE(begin
                      R0 = #{1 => ?M:new(), 2 => ?M:new(), 3 => ?M:new()},
                      Reps = lists:foldl(fun plain_step/2, R0, Steps),
                      [A, B, C] = maps:values(Reps),
                      D = lists:foldl(fun(Op, M) -> apply_op(M, Op, 4) end, ?M:new(), Other),
                      Bin = fun ?M:to_binary/1,
                      AB = ?M:merge(A, B),
                      Bin(AB) =:= Bin(?M:merge(B, A))
                          andalso Bin(?M:merge(AB, C)) =:= Bin(?M:merge(A, ?M:merge(B, C)))
                          andalso Bin(?M:merge(AB, D)) =:= Bin(?M:merge(D, AB))
                          andalso ?M:merge(A, A) =:= A
                          andalso ?M:merge(AB, A) =:= AB
                          andalso ?M:merge([C, A, B]) =:= ?M:merge([A, B, C])
                  end)).

plain_step({op, R, Op}, Reps) ->
    Reps#{R => apply_op(maps:get(R, Reps), Op, R)};
plain_step({merge, R1, R2}, Reps) ->
    Reps#{R1 => ?M:merge(maps:get(R1, Reps), maps:get(R2, Reps))}.

apply_op(M, {put, K, V}, A) -> ?M:put(M, K, V, A);
apply_op(M, {remove, K}, _) -> ?M:remove(M, K).

prop_roundtrip() ->
    ?FORALL({N, Steps}, {range(0, 200), list(step())},
            ?SAFE(begin
                      R0 = #{1 => ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, N)], 0),
                             2 => ?M:new(), 3 => ?M:new()},
                      Reps = lists:foldl(fun plain_step/2, R0, Steps),
                      lists:all(fun(M) ->
                                        {ok, M} =:= ?M:from_binary(?M:to_binary(M))
                                            andalso ok =:= ?M:validate(M)
                                end, maps:values(Reps))
                  end)).

prop_anti_entropy() ->
    ?FORALL({BaseN, OpsA, OpsB}, {range(0, 600), list(op()), list(op())},
            ?SAFE(begin
                      Base = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, BaseN)], 0),
                      A = lists:foldl(fun(Op, M) -> apply_op(M, Op, 1) end, Base, OpsA),
                      B = lists:foldl(fun(Op, M) -> apply_op(M, Op, 2) end, Base, OpsB),
                      {A2, B2, Bytes, _Rounds} = plexus_lwwmap_tests:sync(A, B),
                      Full = byte_size(?M:to_binary(A)) + byte_size(?M:to_binary(B)),
                      Merged = ?M:merge(A, B),
                      ?WHENFAIL(io:format(user, "bytes ~p full ~p~n", [Bytes, Full]),
                                A2 =:= Merged andalso B2 =:= Merged
                                    andalso ?M:to_binary(A2) =:= ?M:to_binary(B2)
                                    andalso Bytes =< Full + 256)
                  end)).
