%% EUnit tests of plexus_crdt_ctx: the causal context of the trie CRDTs (canonical
%% folding, new dots, coverage of dots and writes) and their shared entry merge.
-module(plexus_crdt_ctx_tests).

-include_lib("eunit/include/eunit.hrl").

-define(C, plexus_crdt_ctx).

%% Cloud dots the vector covers go; a run continuing the vector folds into it; a dot
%% past a gap stays in the cloud. The result does not depend on the cloud's history.
fold_cloud_test() ->
    Cloud = #{{<<"a">>, 2} => true, {<<"a">>, 4} => true, {<<"a">>, 5} => true,
              {<<"b">>, 1} => true, {<<"b">>, 3} => true},
    ?assertEqual({#{<<"a">> => 2, <<"b">> => 1}, #{{<<"a">>, 4} => true, {<<"a">>, 5} => true,
                                                   {<<"b">>, 3} => true}},
                 ?C:fold_cloud({#{<<"a">> => 1}, Cloud})),
    ?assertEqual({#{<<"a">> => 5}, #{}},
                 ?C:fold_cloud({#{<<"a">> => 3}, #{{<<"a">>, 4} => true, {<<"a">>, 5} => true,
                                                  {<<"a">>, 2} => true}})),
    Empty = {#{<<"a">> => 7}, #{}},
    ?assertEqual(Empty, ?C:fold_cloud(Empty)).

merge_test() ->
    A = {#{<<"a">> => 3, <<"b">> => 1}, #{{<<"c">>, 2} => true}},
    B = {#{<<"a">> => 1, <<"c">> => 1}, #{{<<"a">>, 5} => true}},
    AB = ?C:merge(A, B),
    ?assertEqual({#{<<"a">> => 3, <<"b">> => 1, <<"c">> => 2}, #{{<<"a">>, 5} => true}}, AB),
    ?assertEqual(AB, ?C:merge(B, A)),
    ?assertEqual(AB, ?C:merge(AB, A)).

%% A new dot is one past every dot of the actor seen, the cloud included; it joins
%% the vector when it continues it, else the cloud.
next_dot_test() ->
    ?assertEqual({1, {#{<<"a">> => 1}, #{}}}, ?C:next_dot(<<"a">>, #{}, #{})),
    ?assertEqual({4, {#{<<"a">> => 4}, #{}}}, ?C:next_dot(<<"a">>, #{<<"a">> => 3}, #{})),
    ?assertEqual({6, {#{<<"a">> => 1}, #{{<<"a">>, 5} => true, {<<"a">>, 6} => true}}},
                 ?C:next_dot(<<"a">>, #{<<"a">> => 1}, #{{<<"a">>, 5} => true})),
    %% another actor's cloud dots do not count
    ?assertEqual({2, {#{<<"a">> => 2}, #{{<<"b">>, 9} => true}}},
                 ?C:next_dot(<<"a">>, #{<<"a">> => 1}, #{{<<"b">>, 9} => true})).

covers_test() ->
    Ctx = {#{<<"a">> => 3}, #{{<<"b">>, 7} => true}},
    ?assert(?C:covers(Ctx, {<<"a">>, 3})),
    ?assertNot(?C:covers(Ctx, {<<"a">>, 4})),
    ?assert(?C:covers(Ctx, {<<"b">>, 7})),
    ?assertNot(?C:covers(Ctx, {<<"b">>, 6})),
    ?assertNot(?C:covers(Ctx, {<<"c">>, 1})),
    %% an LWW map write is covered as its dot
    ?assert(?C:covers(Ctx, {<<"a">>, 2, 123, <<"v">>})),
    ?assertNot(?C:covers(Ctx, {<<"b">>, 8, 123, <<"v">>})).

%% The ORSWOT entry merge: an item both hold stays; an item one side holds stays
%% unless the other side's context has seen it; a key left with nothing goes; an
%% entry kept whole is the same term.
merge_entries_test() ->
    #{merge_entries := Merge, keep_unseen := Keep} = ?C:entry_ops(),
    CA = {#{<<"a">> => 2}, #{}},
    CB = {#{<<"a">> => 1, <<"b">> => 1}, #{}},
    Shared = {<<"k1">>, [{<<"a">>, 1}]},
    OnlyA = {<<"k2">>, [{<<"a">>, 2}]},              % B has not seen a:2: kept
    RemovedInA = {<<"k3">>, [{<<"b">>, 1}]},         % A has not seen b:1: kept
    Both = {<<"k4">>, [{<<"a">>, 1}, {<<"b">>, 1}]}, % a:1 shared, b:1 unseen by A: both stay
    A = [Shared, OnlyA, {<<"k4">>, [{<<"a">>, 1}]}],
    B = [Shared, RemovedInA, Both],
    Merged = Merge(A, B, CA, CB),
    ?assertEqual([Shared, OnlyA, RemovedInA, {<<"k4">>, [{<<"a">>, 1}, {<<"b">>, 1}]}], Merged),
    ?assert(lists:nth(2, Merged) =:= OnlyA),
    %% one side's entry whose every item the other context saw goes
    ?assertEqual([], Keep([{<<"k">>, [{<<"a">>, 1}]}], CA)),
    ?assertEqual([OnlyA], Keep([OnlyA], CB)),
    %% a write (LWW map item) merges the same way, by its dot: B saw A's write W1 and
    %% overwrote it with W2, which A has not seen
    W1 = {<<"a">>, 1, 10, <<"x">>},
    W2 = {<<"b">>, 1, 20, <<"y">>},
    ?assertEqual([{<<"k">>, [W2]}],
                 Merge([{<<"k">>, [W1]}], [{<<"k">>, [W2]}], {#{<<"a">> => 1}, #{}},
                       {#{<<"a">> => 1, <<"b">> => 1}, #{}})).

%% fold_cloud/1 against the walk in dot order it replaced, on random contexts (covered
%% dots, runs, gaps, dots of actors the vector does not name).
fold_cloud_is_the_walk_in_dot_order_test() ->
    rand:seed(exsss, {7, 8, 9}),
    Actors = [<<"a">>, <<"b">>, <<"c">>],
    [begin
         VV = maps:from_list([{A, rand:uniform(5)} || A <- Actors, rand:uniform(3) > 1]),
         Cloud = maps:from_list([{{lists:nth(rand:uniform(3), Actors), rand:uniform(12)}, true}
                                 || _ <- lists:seq(1, rand:uniform(15))]),
         ?assertEqual(walk_in_dot_order({VV, Cloud}), ?C:fold_cloud({VV, Cloud}))
     end || _ <- lists:seq(1, 2000)].

walk_in_dot_order({VV, Cloud}) ->
    lists:foldl(fun({A, C} = Dot, {V, Cl}) ->
                        case maps:get(A, V, 0) of
                            X when C =< X -> {V, Cl};
                            X when C =:= X + 1 -> {V#{A => C}, Cl};
                            _ -> {V, Cl#{Dot => true}}
                        end
                end, {VV, #{}}, lists:sort(maps:keys(Cloud))).

%% A large cloud (deltas lost or out of order, or one hostile message: a valid 800 KB
%% state with 200,000 dots past a gap) is kept as it is when nothing folds: a write or
%% a merge passes over it once and builds nothing. Each sorted it and built it again
%% (0.6 s at 200,000 dots), so after that one message every put and every merge of
%% the replica took close to a second.
large_cloud_is_not_rebuilt_test() ->
    Cloud = maps:from_list([{{<<"x">>, 2 * I}, true} || I <- lists:seq(1, 200000)]),
    VV = #{<<"me">> => 5},
    {VV2, Cloud2} = ?C:fold_cloud({VV, Cloud}),
    ?assert(VV2 =:= VV),
    ?assert(erts_debug:same(Cloud, Cloud2)),
    {6, {#{<<"me">> := 6}, Cloud3}} = ?C:next_dot(<<"me">>, VV, Cloud),
    ?assert(erts_debug:same(Cloud, Cloud3)),
    %% a delta filling the gap below x's dot 2 folds one dot, and the rest stays
    {#{<<"x">> := 2}, Cloud4} = ?C:merge({VV, Cloud}, {#{<<"x">> => 1}, #{}}),
    ?assertEqual(199999, map_size(Cloud4)),
    {T, _} = timer:tc(fun() -> [?C:next_dot(<<"me">>, VV, Cloud) || _ <- lists:seq(1, 10)] end),
    ?assert(T < 4000000). % 10 x 0.8 s before; ~15 ms each now
