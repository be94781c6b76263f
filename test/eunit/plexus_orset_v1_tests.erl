%% EUnit tests of plexus_orset_v1 (the C v1 path, kept as the baseline): every
%% exported function, edge cases, the riak_dt precondition error, deltas (in order,
%% out of order through the dot cloud), add-wins, n-way merge, equal/digest agreement,
%% arbitrary-term elements, and scheduling (both dispatch paths give identical
%% results; merging two 1,000,000-element sets holds no scheduler thread for more than
%% 10 ms of its CPU; inline calls charge their cost).
-module(plexus_orset_v1_tests).

-include_lib("eunit/include/eunit.hrl").
-import(plexus_nif_probe, [with_dirty_threshold/2]).

-compile({no_auto_import, [size/1]}).

-define(S, plexus_orset_v1).
-define(VERSION, 1).
-define(STATE_IS_BINARY, true).

-include("plexus_orset_common.hrl").

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
    Dirty = with_dirty_threshold(0, fun workload/0),
    Inline = with_dirty_threshold(1 bsl 62, fun workload/0),
    ?assertEqual(Default, Dirty),
    ?assertEqual(Default, Inline).

threshold_round_trip_test() ->
    Old = plexus_nif:set_dirty_threshold(0),
    ?assertEqual(0, plexus_nif:set_dirty_threshold(12345)),
    ?assertEqual(12345, plexus_nif:set_dirty_threshold(Old)).

threshold_boundary_test() ->
    S = ?S:add_all(?S:new(), lists:seq(1, 1000), n1),
    Results = [with_dirty_threshold(T, fun() -> ?S:merge(S, S) end)
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
    {ok, Dirty} = with_dirty_threshold(0, fun() -> plexus_nif_probe:calls(Work, Merges) end),
    {ok, Inline} = with_dirty_threshold(1 bsl 62,
                                        fun() -> plexus_nif_probe:calls(Work, Merges) end),
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
            {ok, Calls} = with_dirty_threshold(1 bsl 62, fun() -> plexus_nif_probe:calls(Work) end),
            ?assertEqual([], [C || C = {_, rescheduled} <- Calls]),
            ?assert(plexus_nif_probe:max_inline_us(Calls) >= 10000)
    end.

%% An n-way merge of many small states (deltas from many actors): 1,500 one-element
%% states of 1,500 actors weigh 54 KB, under the dirty threshold, and the merge folded
%% them, rewriting its growing result once per state: 83 ms of one normal scheduler's
%% CPU. Now a tree of pairwise merges weighed once per level: the call goes dirty, the
%% result is the fold's.
nway_merge_of_many_deltas_test() ->
    Deltas = [?S:add(?S:new(), I, I) || I <- lists:seq(1, 1500)],
    {M, Calls} = plexus_nif_probe:calls(fun() -> ?S:merge(Deltas) end, [{orset_merge, 1}]),
    ?assertEqual([{orset_merge, rescheduled}], Calls),
    ?assertEqual(1500, ?S:size(M)),
    ?assertEqual(lists:foldl(fun(D, Acc) -> ?S:merge(Acc, D) end, ?S:new(), Deltas), M).

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
