%% EUnit tests of plexus_orset_v1 (the C v1 path, kept as the baseline): every
%% exported function, edge cases, the riak_dt precondition error, deltas (in order,
%% out of order through the dot cloud), add-wins, n-way merge, equal/digest agreement,
%% arbitrary-term elements, and scheduling (both dispatch paths give identical
%% results; merging two 1,000,000-element sets holds no scheduler thread for more than
%% 10 ms of its CPU; inline calls charge their cost).
-module(plexus_orset_v1_tests).

-include_lib("eunit/include/eunit.hrl").

-compile({no_auto_import, [size/1]}).

-define(S, plexus_orset_v1).

%% ---------------------------------------------------------------- basics

new_test() ->
    S = ?S:new(),
    ?assert(is_binary(S)),
    ?assertEqual([], ?S:to_list(S)),
    ?assertEqual([], ?S:value(S)),
    ?assertEqual(0, ?S:size(S)),
    ?assertEqual({ok, S}, ?S:from_binary(S)),
    ?assertNot(?S:member(S, a)).

add_member_test() ->
    S = ?S:add(?S:new(), a, n1),
    ?assert(?S:member(S, a)),
    ?assertNot(?S:member(S, b)),
    ?assertEqual([a], ?S:to_list(S)),
    ?assertEqual(1, ?S:size(S)).

add_default_actor_test() ->
    %% The default actor is node(): same bytes as naming it.
    ?assertEqual(?S:add(?S:new(), x, node()), ?S:add(?S:new(), x)),
    ?assertEqual(?S:add_all(?S:new(), [x, y], node()), ?S:add_all(?S:new(), [x, y])),
    ?assertNotEqual(?S:add(?S:new(), x, other), ?S:add(?S:new(), x)).

add_again_keeps_one_test() ->
    S1 = ?S:add(?S:new(), a, n1),
    S2 = ?S:add(S1, a, n1),
    ?assertEqual([a], ?S:to_list(S2)),
    %% A re-add takes a fresh dot: the state changes, the value does not.
    ?assertNotEqual(S1, S2).

remove_test() ->
    S1 = ?S:add_all(?S:new(), [a, b, c], n1),
    S2 = ?S:remove(S1, b),
    ?assertEqual([a, c], ?S:to_list(S2)),
    ?assertEqual(S2, ?S:remove(S1, b, n2)),
    ?assertEqual([], ?S:to_list(?S:remove(?S:add(?S:new(), a, n1), a))).

remove_absent_unchanged_test() ->
    S = ?S:add_all(?S:new(), [a, b], n1),
    ?assertEqual(S, ?S:remove(S, zzz)),
    ?assertEqual(S, ?S:remove_all(S, [x, y, z])),
    ?assertEqual(?S:new(), ?S:remove(?S:new(), a)).

add_all_remove_all_test() ->
    S1 = ?S:add_all(?S:new(), lists:seq(1, 100), n1),
    ?assertEqual(lists:seq(1, 100), lists:sort(?S:to_list(S1))),
    S2 = ?S:remove_all(S1, lists:seq(1, 100, 2)),
    ?assertEqual(lists:seq(2, 100, 2), lists:sort(?S:to_list(S2))),
    ?assertEqual(S2, ?S:remove_all(S1, lists:seq(1, 100, 2), n9)),
    %% Duplicates in a batch are one element.
    ?assertEqual(3, ?S:size(?S:add_all(?S:new(), [a, b, a, c, b], n1))),
    %% An empty batch changes nothing.
    ?assertEqual(S1, ?S:add_all(S1, [], n1)),
    ?assertEqual(S1, ?S:remove_all(S1, [])).

add_all_equals_single_adds_in_value_test() ->
    Elems = [c, a, {b, 1}, 7, <<"z">>],
    Batch = ?S:add_all(?S:new(), Elems, n1),
    Single = lists:foldl(fun(E, S) -> ?S:add(S, E, n1) end, ?S:new(), Elems),
    ?assertEqual(?S:to_list(Single), ?S:to_list(Batch)).

apply_order_test() ->
    S0 = ?S:new(),
    ?assertEqual([], ?S:to_list(?S:apply(S0, [{add, a}, {remove, a}], n1))),
    ?assertEqual([a], ?S:to_list(?S:apply(S0, [{remove, a}, {add, a}], n1))),
    S1 = ?S:apply(
        S0,
        [{add_all, [a, b, c, d]}, {remove, b}, {remove_all, [c, zz]}, {add, c}, {add, e}],
        n1
    ),
    ?assertEqual([a, c, d, e], lists:sort(?S:to_list(S1))),
    ?assertEqual(?S:apply(S0, [{add, q}], node()), ?S:apply(S0, [{add, q}])),
    ?assertEqual(S1, ?S:apply(S1, [], n1)).

apply_matches_sequential_test() ->
    Ops = [{add, 1}, {add, 2}, {remove, 1}, {add_all, [3, 4, 5]}, {remove_all, [4]},
           {add, 1}, {remove, 9}],
    Batch = ?S:apply(?S:new(), Ops, n1),
    Seq = lists:foldl(fun(Op, S) -> ?S:apply(S, [Op], n1) end, ?S:new(), Ops),
    ?assertEqual(lists:sort(?S:to_list(Seq)), lists:sort(?S:to_list(Batch))),
    ?assertEqual([1, 2, 3, 5], lists:sort(?S:to_list(Batch))).

%% ---------------------------------------------------------------- elements

arbitrary_terms_test() ->
    Elems = [atom, 'another atom', "a string", <<"bin">>, <<>>, <<1:3>>, 3.14159, -0.5,
             42, -42, 1 bsl 200, -(1 bsl 70), {tuple, 1, [2]}, #{b => 2, a => 1},
             #{}, [], [1, 2, 3], {}, self(), make_ref(), fun lists:map/2],
    S = ?S:add_all(?S:new(), Elems, n1),
    ?assertEqual(length(Elems), ?S:size(S)),
    ?assertEqual(lists:sort(Elems), lists:sort(?S:to_list(S))),
    [?assert(?S:member(S, E)) || E <- Elems],
    %% 1 and 1.0 are different terms, so different elements.
    ?assertNot(?S:member(S, 42.0)),
    ?assertEqual(2, ?S:size(?S:add_all(?S:new(), [1, 1.0], n1))).

maps_are_canonical_test() ->
    %% Equal maps built in different orders are the same element.
    M1 = maps:from_list([{K, K * 2} || K <- lists:seq(1, 50)]),
    M2 = maps:from_list([{K, K * 2} || K <- lists:reverse(lists:seq(1, 50))]),
    S = ?S:add(?S:new(), M1, n1),
    ?assert(?S:member(S, M2)),
    ?assertEqual(S, ?S:add(?S:new(), M2, n1)).

to_list_bytewise_order_test() ->
    Elems = [b, a, 300, 1, <<"x">>, {z}, 2.5],
    S = ?S:add_all(?S:new(), Elems, n1),
    Sorted = [binary_to_term(B) || B <- lists:sort([plexus_nif:encode(E) || E <- Elems])],
    ?assertEqual(Sorted, ?S:to_list(S)),
    ?assertEqual(?S:to_list(S), ?S:value(S)).

actors_are_terms_test() ->
    S = ?S:add(?S:add(?S:new(), a, {node, 1}), b, "actor two"),
    ?assertEqual([a, b], ?S:to_list(S)),
    ?assertEqual({ok, S}, ?S:from_binary(S)).

%% ---------------------------------------------------------------- merge

merge_basic_test() ->
    A = ?S:add_all(?S:new(), [a, b], n1),
    B = ?S:add_all(?S:new(), [b, c], n2),
    M = ?S:merge(A, B),
    ?assertEqual([a, b, c], ?S:to_list(M)),
    ?assertEqual(M, ?S:merge(B, A)),
    ?assertEqual(M, ?S:merge(M, A)),
    ?assertEqual(M, ?S:merge(M, M)),
    ?assertEqual(A, ?S:merge(A, ?S:new())).

merge_observed_remove_test() ->
    A = ?S:add(?S:new(), e, n1),
    B = ?S:remove(?S:merge(?S:new(), A), e),
    %% B saw A's add, then removed: the remove wins over the add it observed.
    ?assertEqual([], ?S:to_list(?S:merge(A, B))),
    ?assertEqual([], ?S:to_list(?S:merge(B, A))).

add_wins_test() ->
    Base = ?S:add(?S:new(), e, n1),
    A = ?S:remove(Base, e),
    B = ?S:add(Base, e, n2),
    ?assertEqual([e], ?S:to_list(?S:merge(A, B))),
    ?assertEqual([e], ?S:to_list(?S:merge(B, A))),
    %% Same actor re-adding concurrently with a remove elsewhere: still add wins.
    C = ?S:add(Base, e, n1),
    ?assertEqual([e], ?S:to_list(?S:merge(A, C))).

merge_n_way_test() ->
    Sets = [?S:add_all(?S:new(), [I, I + 1, shared], {n, I}) || I <- lists:seq(1, 10)],
    M = ?S:merge(Sets),
    ?assertEqual(M, lists:foldl(fun(S, Acc) -> ?S:merge(Acc, S) end, ?S:new(), Sets)),
    ?assertEqual(M, ?S:merge(lists:reverse(Sets))),
    ?assertEqual(12, ?S:size(M)),
    ?assertEqual(?S:new(), ?S:merge([])),
    [S1 | _] = Sets,
    ?assertEqual(S1, ?S:merge([S1])).

%% ---------------------------------------------------------------- equal / digest

equal_digest_test() ->
    A = ?S:add_all(?S:new(), [a, b], n1),
    B = ?S:add(?S:new(), c, n2),
    AB = ?S:merge(A, B),
    BA = ?S:merge(B, A),
    ?assert(?S:equal(AB, BA)),
    ?assertEqual(?S:digest(AB), ?S:digest(BA)),
    ?assertNot(?S:equal(A, B)),
    ?assertNotEqual(?S:digest(A), ?S:digest(B)),
    ?assertMatch(<<_:256>>, ?S:digest(A)),
    ?assert(?S:equal(?S:new(), ?S:new())),
    %% Same value, different causal history: not equal states, not equal digests.
    R = ?S:remove(?S:add(?S:new(), x, n1), x),
    ?assertEqual([], ?S:to_list(R)),
    ?assertNot(?S:equal(R, ?S:new())),
    ?assertNotEqual(?S:digest(R), ?S:digest(?S:new())),
    %% Digest is BLAKE2b-256 of the canonical bytes: equal states, equal digests.
    ?assertEqual(?S:digest(AB), ?S:digest(binary:copy(BA))).

equal_validates_test() ->
    S = ?S:add(?S:new(), a, n1),
    Bad = <<S/binary, 0>>,
    ?assertEqual({error, trailing_bytes}, ?S:equal(S, Bad)),
    ?assertEqual({error, trailing_bytes}, ?S:equal(Bad, S)),
    ?assertEqual({error, trailing_bytes}, ?S:equal(Bad, Bad)),
    ?assertMatch({error, _}, ?S:digest(Bad)).

wrong_type_state_test() ->
    Reg = plexus_lww:to_binary(plexus_lww:new(v)),
    ?assertEqual({error, wrong_type}, ?S:from_binary(Reg)),
    ?assertEqual({error, wrong_type}, ?S:to_list(Reg)),
    ?assertEqual({error, wrong_type}, ?S:digest(Reg)),
    ?assertEqual({error, wrong_type}, ?S:merge(?S:new(), Reg)),
    ?assertEqual({error, wrong_type}, ?S:add(Reg, a)).

%% ---------------------------------------------------------------- riak_dt style

update_test() ->
    S0 = ?S:new(),
    {ok, S1} = ?S:update({add, a}, n1, S0),
    ?assertEqual(S1, ?S:add(S0, a, n1)),
    {ok, S2} = ?S:update({add_all, [b, c]}, n1, S1),
    ?assertEqual([a, b, c], ?S:to_list(S2)),
    {ok, S3} = ?S:update({remove, b}, n1, S2),
    ?assertEqual([a, c], ?S:to_list(S3)),
    {ok, S4} = ?S:update({remove_all, [a, c]}, n1, S3),
    ?assertEqual([], ?S:to_list(S4)),
    {ok, S5} = ?S:update({update, [{add, x}, {remove, x}, {add, y}]}, n1, S4),
    ?assertEqual([y], ?S:to_list(S5)).

update_precondition_test() ->
    S = ?S:add_all(?S:new(), [a, b], n1),
    ?assertEqual({error, {precondition, {not_present, zz}}}, ?S:update({remove, zz}, n1, S)),
    ?assertEqual({error, {precondition, {not_present, {t, 1}}}},
                 ?S:update({remove_all, [a, {t, 1}, b]}, n1, S)),
    %% In a batch, absence is judged at that point of the sequence.
    ?assertEqual({error, {precondition, {not_present, a}}},
                 ?S:update({update, [{remove, a}, {add, c}, {remove, a}]}, n1, S)),
    ?assertMatch({ok, _}, ?S:update({update, [{add, q}, {remove, q}]}, n1, S)),
    ?assertEqual({error, {precondition, {not_present, q}}},
                 ?S:update({update, [{add, q}, {remove, q}, {remove, q}]}, n1, S)).

update_precondition_first_in_sequence_test() ->
    %% riak_dt applies the ops in order: the error names the first remove that fails,
    %% whatever the byte order of the elements (9 encodes after 4).
    S = ?S:add(?S:new(), 1, n1),
    ?assertEqual({error, {precondition, {not_present, 9}}},
                 ?S:update({update, [{add, 6}, {remove, 9}, {remove, 4}]}, n1, S)),
    ?assertEqual({error, {precondition, {not_present, 9}}},
                 ?S:update({remove_all, [1, 9, 4]}, n1, S)),
    ?assertEqual({error, {precondition, {not_present, zz}}},
                 ?S:update({update, [{remove, zz}, {remove, aa}]}, n1, S)).

update_badarg_test() ->
    S = ?S:new(),
    ?assertError(badarg, ?S:update({frobnicate, a}, n1, S)),
    ?assertError(badarg, ?S:update({update, not_a_list}, n1, S)),
    ?assertError(badarg, ?S:update({add_all, improper}, n1, S)),
    ?assertError(badarg, ?S:update({add, a}, n1, not_a_set)).

to_from_binary_test() ->
    S = ?S:add_all(?S:new(), [1, 2, 3], n1),
    ?assertEqual(S, ?S:to_binary(S)),
    ?assertEqual({ok, S}, ?S:from_binary(?S:to_binary(S))),
    ?assertMatch({error, _}, ?S:from_binary(<<>>)),
    ?assertMatch({error, _}, ?S:to_binary(<<1>>)).

%% ---------------------------------------------------------------- deltas

add_delta_test() ->
    S0 = ?S:add_all(?S:new(), [a, b], n1),
    {S1, D} = ?S:add_delta(S0, c, n1),
    ?assertEqual(?S:add(S0, c, n1), S1),
    ?assertEqual([c], ?S:to_list(D)),
    ?assertEqual({ok, D}, ?S:from_binary(D)),
    %% A replica that saw S0 reaches S1 by merging the delta.
    ?assertEqual(S1, ?S:merge(S0, D)),
    ?assertEqual(S1, ?S:merge(D, S0)),
    {S2, D2} = ?S:add_delta(S0, c),
    ?assertEqual(?S:add(S0, c), S2),
    ?assertEqual(S2, ?S:merge(S0, D2)).

remove_delta_test() ->
    S0 = ?S:add_all(?S:new(), [a, b], n1),
    {S1, D} = ?S:remove_delta(S0, a, n1),
    ?assertEqual(?S:remove(S0, a), S1),
    ?assertEqual([], ?S:to_list(D)),
    ?assertEqual(S1, ?S:merge(S0, D)),
    %% A replica that saw S0 and then added something else concurrently.
    R = ?S:add(S0, z, n2),
    ?assertEqual([b, z], ?S:to_list(?S:merge(R, D))),
    {S2, D2} = ?S:remove_delta(S0, a),
    ?assertEqual(S1, S2),
    ?assertEqual(S2, ?S:merge(S0, D2)).

batch_delta_test() ->
    S0 = ?S:add_all(?S:new(), lists:seq(1, 20), n1),
    Ops = [{add, 100}, {remove, 3}, {add_all, [4, 200, 201]}, {remove_all, [5, 6, 999]}],
    {S1, D} = ?S:apply_delta(S0, Ops, n2),
    ?assertEqual(?S:apply(S0, Ops, n2), S1),
    ?assertEqual(S1, ?S:merge(S0, D)),
    {S2, D2} = ?S:add_all_delta(S0, [x, y, 1], n1),
    ?assertEqual(?S:add_all(S0, [x, y, 1], n1), S2),
    ?assertEqual(S2, ?S:merge(S0, D2)),
    {S3, D3} = ?S:remove_all_delta(S0, [1, 2, 77], n1),
    ?assertEqual(?S:remove_all(S0, [1, 2, 77]), S3),
    ?assertEqual(S3, ?S:merge(S0, D3)),
    %% Default-actor forms.
    ?assertEqual(?S:apply_delta(S0, Ops, node()), ?S:apply_delta(S0, Ops)),
    ?assertEqual(?S:add_all_delta(S0, [x], node()), ?S:add_all_delta(S0, [x])),
    ?assertEqual(?S:remove_all_delta(S0, [1], node()), ?S:remove_all_delta(S0, [1])).

delta_on_replica_with_other_changes_test() ->
    %% Delta applied to a replica that saw the original plus its own concurrent ops
    %% equals the full-state merge of the two replicas.
    S0 = ?S:add_all(?S:new(), [a, b, c], n1),
    R = ?S:apply(S0, [{add, r}, {remove, c}], n2),
    {S1, D} = ?S:apply_delta(S0, [{add, d}, {remove, a}, {add, c}], n1),
    ?assertEqual(?S:merge(R, S1), ?S:merge(R, D)),
    ?assertEqual([b, c, d, r], ?S:to_list(?S:merge(R, D))).

deltas_out_of_order_test() ->
    S0 = ?S:add(?S:new(), a, n1),
    {S1, D1} = ?S:add_delta(S0, b, n1),
    {S2, D2} = ?S:add_delta(S1, c, n1),
    {S3, D3} = ?S:remove_delta(S2, a, n1),
    %% Replica saw S0 only; gets D3, then D2, then D1 (reverse order).
    R1 = ?S:merge(S0, D3),
    ?assertEqual({ok, R1}, ?S:from_binary(R1)),
    ?assertEqual([], ?S:to_list(R1)),
    R2 = ?S:merge(R1, D2),
    ?assertEqual([c], ?S:to_list(R2)),
    R3 = ?S:merge(R2, D1),
    %% Every gap filled: the cloud folds into the vector, bytes equal the source.
    ?assertEqual(S3, R3),
    ?assertEqual([b, c], ?S:to_list(R3)),
    %% Deltas merge with each other into one delta; duplicates are harmless.
    DD = ?S:merge([D3, D1, D2, D1]),
    ?assertEqual(S3, ?S:merge(S0, DD)),
    ?assertEqual(S3, ?S:merge([S0, D2, D2, D3, D1, D3])).

delta_empty_batch_test() ->
    S0 = ?S:add(?S:new(), a, n1),
    {S1, D} = ?S:apply_delta(S0, [], n1),
    ?assertEqual(S0, S1),
    ?assertEqual(S0, ?S:merge(S0, D)),
    ?assertEqual([], ?S:to_list(D)).

%% ---------------------------------------------------------------- type errors

badarg_test() ->
    S = ?S:add(?S:new(), a, n1),
    ?assertError(badarg, ?S:add(not_a_set, a)),
    ?assertError(badarg, ?S:add_all(S, not_a_list)),
    ?assertError(badarg, ?S:add_all(S, [a | b])),
    ?assertError(badarg, ?S:remove_all(S, 42)),
    ?assertError(badarg, ?S:apply(S, [{bogus, 1}])),
    ?assertError(badarg, ?S:apply(S, [{add, 1} | x])),
    ?assertError(badarg, ?S:apply(S, not_a_list)),
    ?assertError(badarg, ?S:apply_delta(S, [{add_all, x}])),
    ?assertError(badarg, ?S:member([], a)),
    ?assertError(badarg, ?S:to_list(123)),
    ?assertError(badarg, ?S:size(self())),
    ?assertError(badarg, ?S:merge(S, [])),
    ?assertError(badarg, ?S:merge([S, a])),
    ?assertError(badarg, ?S:merge([S | S])),
    ?assertError(badarg, ?S:merge(not_a_list)),
    ?assertError(badarg, ?S:equal(S, a)),
    ?assertError(badarg, ?S:digest("string")),
    ?assertError(badarg, ?S:from_binary(a)),
    ?assertError(badarg, ?S:to_binary({S})).

nif_badarg_test() ->
    %% The NIF itself refuses element binaries that Erlang did not make.
    S = ?S:new(),
    A = plexus_nif:encode(n1),
    ?assertError(badarg, plexus_nif:orset_apply(S, add, [<<"no131">>], A, state)),
    ?assertError(badarg, plexus_nif:orset_apply(S, add, [<<131>>], A, state)),
    ?assertError(badarg, plexus_nif:orset_apply(S, add, [a], A, state)),
    ?assertError(badarg, plexus_nif:orset_apply(S, add, [], <<1, 2>>, state)),
    ?assertError(badarg, plexus_nif:orset_apply(S, other, [], A, state)),
    ?assertError(badarg, plexus_nif:orset_apply(S, add, [], A, other)),
    ?assertError(badarg, plexus_nif:orset_apply(S, ops, [{add, a}], A, state)),
    ?assertError(badarg, plexus_nif:orset_apply(S, ops, [{add, A, x}], A, state)),
    ?assertError(badarg, plexus_nif:orset_apply(S, ops, [{move, A}], A, state)),
    ?assertError(badarg, plexus_nif:orset_member(S, <<"x">>)),
    ?assertError(badarg, plexus_nif:orset_merge([])),
    ?assertError(badarg, plexus_nif:set_dirty_threshold(-1)).

%% ---------------------------------------------------------------- scheduling

%% Runs F with the dirty threshold set to T, restoring the old one.
with_threshold(T, F) ->
    Old = plexus_nif:set_dirty_threshold(T),
    try
        F()
    after
        plexus_nif:set_dirty_threshold(Old)
    end.

%% A mixed workload over small inputs; every call's result, in order.
workload() ->
    A = ?S:add_all(?S:new(), lists:seq(1, 300), n1),
    B = ?S:apply(A, [{remove_all, lists:seq(1, 50)}, {add, x}], n2),
    {C, D} = ?S:apply_delta(A, [{add, y}, {remove, 7}], n1),
    M = ?S:merge([A, B, C]),
    [A, B, C, D, M, ?S:merge(B, D), ?S:to_list(M), ?S:size(M), ?S:member(M, x),
     ?S:digest(M), ?S:from_binary(M), ?S:equal(M, ?S:merge(C, B)),
     ?S:update({remove, zz}, n1, M), ?S:to_list(<<1, 83, 9>>)].

dirty_and_inline_agree_test() ->
    Default = workload(),
    Dirty = with_threshold(0, fun workload/0),
    Inline = with_threshold(1 bsl 62, fun workload/0),
    ?assertEqual(Default, Dirty),
    ?assertEqual(Default, Inline).

threshold_round_trip_test() ->
    Old = plexus_nif:set_dirty_threshold(0),
    ?assertEqual(0, plexus_nif:set_dirty_threshold(12345)),
    ?assertEqual(12345, plexus_nif:set_dirty_threshold(Old)).

threshold_boundary_test() ->
    S = ?S:add_all(?S:new(), lists:seq(1, 1000), n1),
    Results = [with_threshold(T, fun() -> ?S:merge(S, S) end)
               || T <- [0, byte_size(S) - 1, byte_size(S), byte_size(S) + 1, 1 bsl 40]],
    ?assertEqual([S], lists:usort(Results)).

dirty_path_is_taken_test_() ->
    {timeout, 60, fun dirty_path_is_taken/0}.

%% The threshold really moves the work: with 0 every merge is rescheduled onto a dirty
%% CPU scheduler, with a huge threshold every one runs inline (seen by call tracing,
%% plexus_nif_probe, so no timing is involved).
dirty_path_is_taken() ->
    S = ?S:add_all(?S:new(), lists:seq(1, 200000), n1),
    T = ?S:add_all(S, lists:seq(200001, 210000), n2),
    Work = fun() -> [?S:merge(S, T) || _ <- lists:seq(1, 10)], ok end,
    Merges = [{orset_merge, 1}],
    {ok, Dirty} = with_threshold(0, fun() -> plexus_nif_probe:calls(Work, Merges) end),
    {ok, Inline} = with_threshold(1 bsl 62, fun() -> plexus_nif_probe:calls(Work, Merges) end),
    ?assertEqual(lists:duplicate(10, {orset_merge, rescheduled}), Dirty),
    ?assertMatch([{orset_merge, inline, _}], lists:usort([{F, K, 0} || {F, K, _} <- Inline])),
    ?assertEqual(10, length(Inline)).

no_inline_call_holds_a_scheduler_test_() ->
    {timeout, 300, fun() -> one_million(default) end}.

%% The same check must fail when every call is kept inline: the probe can see a
%% scheduler held by a NIF.
inline_calls_are_seen_test_() ->
    {timeout, 300, fun() -> one_million(inline) end}.

%% Merging two 1,000,000-element sets (and building, reading them) holds no normal
%% scheduler thread for more than 10 ms of its CPU: every big call goes dirty. The
%% bound is on each inline call's own CPU time (plexus_nif_probe), not on wall-clock
%% long_schedule events, which a loaded machine raises for any slice.
one_million(Mode) ->
    N = 1000000,
    Work = fun() ->
        Base = ?S:add_all(?S:new(), lists:seq(1, N * 9 div 10), base),
        A = ?S:add_all(Base, lists:seq(N * 9 div 10 + 1, N), a),
        B = ?S:add_all(Base, lists:seq(N + 1, N + N div 10), b),
        ?assertEqual(N, ?S:size(A)),
        ?assertEqual(N, ?S:size(B)),
        M = ?S:merge(A, B),
        ?assertEqual(N + N div 10, ?S:size(M)),
        L = ?S:to_list(M),
        ?assertEqual(N + N div 10, length(L)),
        ?assert(?S:member(M, N + 1)),
        ?assertMatch(<<_:256>>, ?S:digest(M)),
        ok
    end,
    case Mode of
        default ->
            {ok, Calls} = plexus_nif_probe:calls(Work),
            ?assertMatch([_ | _], [C || C = {_, rescheduled} <- Calls]),
            ?assert(plexus_nif_probe:max_inline_us(Calls) < 10000);
        inline ->
            {ok, Calls} = with_threshold(1 bsl 62, fun() -> plexus_nif_probe:calls(Work) end),
            ?assertEqual([], [C || C = {_, rescheduled} <- Calls]),
            ?assert(plexus_nif_probe:max_inline_us(Calls) >= 10000)
    end.

%% Many small merges in a loop stay inline (each ~30 us); each must charge the
%% scheduler its cost (enif_consume_timeslice), or the loop runs thousands of them in
%% one time slice (a ~20 ms slice before nif_charge existed). Measured in reductions,
%% which the charge adds to and which no machine load changes: a call charges 1% of a
%% slice (40 reductions) per 1,400 bytes of input, so two ~10 KB sets ask for over 500
%% reductions a call, where an uncharged NIF call costs about one. At least half must
%% show (the last charge of a slice is cut to what is left of the slice's 4,000).
small_inline_merges_charge_the_scheduler_test_() ->
    {timeout, 120, fun() ->
        A = ?S:add_all(?S:new(), lists:seq(1, 1000), a),
        B = ?S:add_all(?S:new(), lists:seq(500, 1500), b),
        Calls = 2000,
        Self = self(),
        {Pid, Ref} = spawn_monitor(fun() ->
                                           {reductions, R0} = process_info(self(), reductions),
                                           ok = merge_loop(A, B, Calls),
                                           {reductions, R1} = process_info(self(), reductions),
                                           Self ! {self(), R1 - R0}
                                   end),
        Reds = receive {Pid, R} -> R end,
        receive {'DOWN', Ref, process, Pid, _} -> ok end,
        Charged = 40 * ((byte_size(A) + byte_size(B)) div 1400),
        ?assert(Charged >= 500),
        ?assert(Reds div Calls >= Charged div 2)
    end}.

merge_loop(_, _, 0) -> ok;
merge_loop(A, B, K) ->
    <<1, $S, _/binary>> = ?S:merge(A, B),
    merge_loop(A, B, K - 1).
