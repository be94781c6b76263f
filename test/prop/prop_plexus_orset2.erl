%% PropEr properties of plexus_orset2 (the v2 OR-Set representation, issue 12):
%%
%% - agreement with v1: every history of adds, removes, merges and out-of-order v1
%%   deltas, run on plexus_orset (v1, the C core) and plexus_orset2 side by side,
%%   gives byte-identical v1 binaries at every step (so v2 has the v1 semantics);
%% - canonical form: every state reached is exactly the term from_binary/1 builds from
%%   its bytes (the trie shape and hashes depend on the element set only), and states
%%   built along different histories (random op orders, merges in random trees) that
%%   hold the same set are equal terms with equal bytes;
%% - merge laws (commutative, associative, idempotent) with shared and unshared
%%   structure;
%% - Merkle anti-entropy between two randomly diverged replicas converges both to the
%%   merge, byte for byte, and exchanges no more bytes than shipping both full states.
%%
%% Run from EUnit (rebar3's proper plugin cannot be fetched offline): proper_test_/0.
-module(prop_plexus_orset2).

-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

-include("plexus_prop.hrl").

-define(V1, plexus_orset_v1).
-define(V2, plexus_orset2).
-define(OPTS, [{numtests, ?NUMTESTS(150)}, {max_size, 40}, {to_file, user}]).
-define(ACTORS, {n1, n2, n3}).

proper_test_() ->
    Props = [prop_agrees_with_v1, prop_canonical_histories, prop_merge_laws,
             prop_c_walk_is_erlang_walk, prop_anti_entropy],
    [{atom_to_list(P), {timeout, 300, ?_assert(proper:quickcheck(?MODULE:P(), ?OPTS))}}
     || P <- Props].

%% ---------------------------------------------------------------- generators

%% Small elements collide often; ranges grow the trie past one leaf (32 entries).
elem() ->
    oneof([range(0, 7), elements([a, b, {t, 1}, <<"x">>]), range(0, 400)]).

op() ->
    frequency([{4, {add, elem()}}, {3, {remove, elem()}},
               {1, {add_range, range(0, 300), range(0, 120)}},
               {1, {remove_range, range(0, 300), range(0, 120)}}]).

replica() -> range(1, 3).

step() ->
    frequency([{5, {mutate, replica(), list(op())}},
               %% A replica acting as another's actor (as after a restore from an old
               %% copy): its next dot must skip the counters its cloud has seen.
               {1, {mutate_as, replica(), replica(), list(op())}},
               {2, {delta, replica(), list(op()), replica()}},
               {2, {merge, replica(), replica()}}]).

actor(R) -> element(R, ?ACTORS).

%% Ops one at a time (v2 has no batch semantics: a batch in v1 gives one dot per
%% element, one op at a time gives one per add; both are valid, this is comparable).
flat_ops(Ops) ->
    lists:append([case Op of
                      {add_range, From, N} -> [{add, E} || E <- lists:seq(From, From + N)];
                      {remove_range, From, N} -> [{remove, E} || E <- lists:seq(From, From + N)];
                      _ -> [Op]
                  end || Op <- Ops]).

apply_v1(S, Ops, A) ->
    lists:foldl(fun({add, E}, X) -> ?V1:add(X, E, A);
                   ({remove, E}, X) -> ?V1:remove(X, E, A)
                end, S, flat_ops(Ops)).

apply_v2(S, Ops, A) ->
    lists:foldl(fun({add, E}, X) -> ?V2:add(X, E, A);
                   ({remove, E}, X) -> ?V2:remove(X, E, A)
                end, S, flat_ops(Ops)).

%% Runs a history on {V1, V2} replica pairs; returns the pairs reached, all checked.
run(History) ->
    Init = list_to_tuple(lists:duplicate(3, {?V1:new(), ?V2:new()})),
    {Reps, Pool} = lists:foldl(fun step/2, {Init, []}, History),
    tuple_to_list(Reps) ++ Pool.

step({mutate, R, Ops}, {Reps, Pool}) ->
    {S1, S2} = element(R, Reps),
    P = check({apply_v1(S1, Ops, actor(R)), apply_v2(S2, Ops, actor(R))}),
    {setelement(R, Reps, P), [P | Pool]};
step({mutate_as, R, As, Ops}, {Reps, Pool}) ->
    {S1, S2} = element(R, Reps),
    P = check({apply_v1(S1, Ops, actor(As)), apply_v2(S2, Ops, actor(As))}),
    {setelement(R, Reps, P), [P | Pool]};
step({delta, R, Ops, To}, {Reps, Pool}) ->
    %% A v1 batch delta, read into v2 with from_binary: deltas merged out of order
    %% give states with a dot cloud.
    {S1, S2} = element(R, Reps),
    {S1b, D1} = ?V1:apply_delta(S1, flat_ops(Ops), actor(R)),
    {ok, S2b} = ?V2:from_binary(S1b),
    {ok, D2} = ?V2:from_binary(D1),
    _ = S2,
    Reps1 = setelement(R, Reps, check({S1b, S2b})),
    {T1, T2} = element(To, Reps1),
    P = check({?V1:merge(T1, D1), ?V2:merge(T2, D2)}),
    {setelement(To, Reps1, P), [P, check({D1, D2}) | Pool]};
step({merge, From, To}, {Reps, Pool}) ->
    {F1, F2} = element(From, Reps),
    {T1, T2} = element(To, Reps),
    P = check({?V1:merge(T1, F1), ?V2:merge(T2, F2)}),
    {setelement(To, Reps, P), [P | Pool]}.

%% The invariants of every reachable state.
check({S1, S2} = P) ->
    Bin = ?V2:to_binary(S2),
    {ok, S2} = ?V2:from_binary(Bin),
    S1 = ?V2:to_v1(S2),
    S1 = ?V2:to_v1_erl(S2), % the C writer and the Erlang one agree
    ok = ?V2:validate(S2),
    true = ?V2:size(S2) =:= ?V1:size(S1),
    P.

%% ---------------------------------------------------------------- properties

prop_agrees_with_v1() ->
    ?FORALL(H, list(step()), ?SAFE(is_list(run(H)))).

%% Different histories, same set: each actor has its own op sequence on its own
%% elements (adds and removes). History 1 runs each sequence on its own replica and
%% merges the three along a random tree; history 2 runs all ops on one replica,
%% interleaved in a random order that keeps each actor's order. Both reach the same
%% dots and context, through different trie splits and collapses.
prop_canonical_histories() ->
    ?FORALL({Seqs, Seed}, {vector(3, list(own_op())), nat()},
            ?SAFE(begin
                      Tagged = [[{R, Op} || Op <- lists:nth(R, Seqs)] || R <- [1, 2, 3]],
                      Reps = [run_own(?V2:new(), T) || T <- Tagged],
                      A = merge_tree(Reps, Seed),
                      B = run_own(?V2:new(), interleave(Tagged, Seed)),
                      A =:= B andalso ?V2:to_binary(A) =:= ?V2:to_binary(B)
                          andalso ?V2:equal(A, B)
                  end)).

own_op() ->
    frequency([{3, {add, range(0, 150)}}, {1, {remove, range(0, 150)}},
               {1, {add_range, range(0, 150), range(0, 60)}}]).

%% Actor R's element E is {R, E}: actors never touch each other's elements.
run_own(S, Tagged) ->
    lists:foldl(fun({R, Op}, X) ->
                        Own = [{K, {R, E}} || {K, E} <- flat_ops([Op])],
                        apply_v2(X, Own, actor(R))
                end, S, Tagged).

merge_tree([X, Y, Z], Seed) ->
    case Seed rem 4 of
        0 -> ?V2:merge(?V2:merge(X, Y), Z);
        1 -> ?V2:merge(Z, ?V2:merge(Y, X));
        2 -> ?V2:merge(?V2:merge(Z, X), Y);
        _ -> ?V2:merge([Y, Z, X])
    end.

interleave(Lists, Seed) ->
    rand:seed(exsss, {Seed, 7, 11}),
    interleave_(Lists, []).

interleave_(Lists, Acc) ->
    case [L || L <- Lists, L =/= []] of
        [] ->
            lists:reverse(Acc);
        NonEmpty ->
            I = rand:uniform(length(NonEmpty)),
            [H | T] = lists:nth(I, NonEmpty),
            interleave_(lists:sublist(NonEmpty, I - 1) ++ [T] ++ lists:nthtail(I, NonEmpty),
                        [H | Acc])
    end.

three() ->
    ?LET({H, I, J, K}, {list(step()), nat(), nat(), nat()},
         begin
             Pool = [S2 || {_, S2} <- run(H)],
             {pick(Pool, I), pick(Pool, J), pick(Pool, K)}
         end).

pick(Pool, I) -> lists:nth(1 + I rem length(Pool), Pool).

prop_merge_laws() ->
    ?FORALL({A, B, C}, three(),
            ?SAFE(begin
                      AB = ?V2:merge(A, B),
                      L = ?V2:merge(AB, C),
                      AB =:= ?V2:merge(B, A)
                          andalso L =:= ?V2:merge(A, ?V2:merge(B, C))
                          andalso L =:= ?V2:merge([C, A, B])
                          andalso ?V2:merge(A, A) =:= A
                          andalso ?V2:merge(AB, A) =:= AB
                          andalso ?V2:to_v1(AB) =:= ?V1:merge(?V2:to_v1(A), ?V2:to_v1(B))
                  end)).

%% merge/2 walks the tries in C (c_src/nif/nif_trie.c); the Erlang walk it replaced
%% (merge_erl/2) gives the very same term, for replicas that share structure and for
%% the same replicas rebuilt apart (no term shared: equality by content only).
prop_c_walk_is_erlang_walk() ->
    ?FORALL({A, B, _}, three(),
            ?SAFE(begin
                      {ok, A2} = ?V2:from_binary(?V2:to_binary(A)),
                      ?V2:merge(A, B) =:= ?V2:merge_erl(A, B)
                          andalso ?V2:merge(B, A) =:= ?V2:merge_erl(B, A)
                          andalso ?V2:merge(A2, B) =:= ?V2:merge_erl(A2, B)
                          andalso ?V2:merge(B, A2) =:= ?V2:merge_erl(B, A2)
                  end)).

%% Two replicas share a base, diverge by random ops, then run the exchange.
prop_anti_entropy() ->
    ?FORALL({BaseN, OpsA, OpsB}, {range(0, 600), list(op()), list(op())},
            ?SAFE(begin
                      Base = ?V2:add_all(?V2:new(), lists:seq(1, BaseN), n0),
                      A = apply_v2(Base, OpsA, n1),
                      B = apply_v2(Base, OpsB, n2),
                      {A2, B2, Bytes, _Rounds} = plexus_orset2_tests:sync(A, B),
                      Full = byte_size(?V2:to_binary(A)) + byte_size(?V2:to_binary(B)),
                      M = ?V2:merge(A, B),
                      ?WHENFAIL(io:format(user, "bytes ~p full ~p~n", [Bytes, Full]),
                                A2 =:= M andalso B2 =:= M
                                    andalso ?V2:to_binary(A2) =:= ?V2:to_binary(B2)
                                    andalso Bytes =< Full + 256)
                  end)).
