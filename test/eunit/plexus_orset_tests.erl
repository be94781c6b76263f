%% EUnit tests of plexus_orset (the public OR-Set, on the v2 representation): every
%% exported function, edge cases, the riak_dt precondition error, deltas (in order,
%% out of order through the dot cloud), add-wins, n-way merge, equal/digest agreement,
%% arbitrary-term elements; v1 compatibility (every function takes a stored v1 or v2
%% binary in place of the set, batches and deltas are byte for byte those of
%% plexus_orset_v1); remove_by/2,3; hostile set terms; and the cost of a single op
%% (reductions, not time). The scheduling of the C path is tested in
%% plexus_orset_v1_tests.
-module(plexus_orset_tests).

-include_lib("eunit/include/eunit.hrl").

-compile({no_auto_import, [size/1]}).

-define(S, plexus_orset).
-define(VERSION, 2).
-define(STATE_IS_BINARY, false).

-include("plexus_orset_common.hrl").


%% ---------------------------------------------------------------- v1 compatibility

-define(V1, plexus_orset_v1).

%% A stored v1 state with several actors, a removal and a dot cloud.
v1_state() ->
    Base = ?V1:add_all(?V1:new(), lists:seq(1, 100), a),
    X = ?V1:apply(Base, [{remove, 7}, {add, zz}, {add, 1}], b),
    {_, D} = ?V1:add_delta(?V1:add(X, 1000, c), 1001, c),
    ?V1:merge(X, D).

%% Stored v1 states keep working: from_binary reads them (and their v2 form) into the
%% same set, to_binary writes version 2 with the very v1 body, to_v1 gives the v1
%% bytes back, and the digest is the v1 one.
v1_upgrade_round_trip_test() ->
    V1 = v1_state(),
    {ok, S} = ?S:from_binary(V1),
    <<1, $S, Body/binary>> = V1,
    ?assertEqual(<<2, $S, Body/binary>>, ?S:to_binary(S)),
    ?assertEqual({ok, S}, ?S:from_binary(?S:to_binary(S))),
    ?assertEqual(V1, ?S:to_v1(S)),
    ?assertEqual(?V1:digest(V1), ?S:digest(S)),
    ?assertEqual(?V1:to_list(V1), ?S:to_list(S)),
    ?assertEqual(ok, ?S:validate(V1)),
    ?assertEqual(ok, ?S:validate(S)),
    ?assertEqual(?S:to_binary(S), ?S:to_binary(V1)),
    ?assertEqual(V1, ?S:to_v1(?S:to_binary(S))).

%% Every function given a v1 (or v2) binary in place of the set answers what it
%% answers for the set read from it.
binary_in_place_of_set_test() ->
    V1 = v1_state(),
    {ok, S} = ?S:from_binary(V1),
    V2 = ?S:to_binary(S),
    Other = ?S:add_all(?S:new(), [1, 500, q], d),
    Calls = [fun(X) -> ?S:add(X, new, n1) end,
             fun(X) -> ?S:add_all(X, [p, q], n1) end,
             fun(X) -> ?S:remove(X, 3) end,
             fun(X) -> ?S:remove_all(X, [3, 4, zz]) end,
             fun(X) -> ?S:remove_by(X, fun(E) -> is_integer(E) andalso E > 50 end) end,
             fun(X) -> ?S:remove_by(X, fun(E) -> E rem 10 end, 3) end,
             fun(X) -> ?S:apply(X, [{add, r}, {remove, 1}], n2) end,
             fun(X) -> ?S:add_delta(X, new, n1) end,
             fun(X) -> ?S:remove_delta(X, 5) end,
             fun(X) -> ?S:apply_delta(X, [{add, r}, {remove, 1}], n2) end,
             fun(X) -> ?S:remove_by_delta(X, fun(E) -> E =:= zz end) end,
             fun(X) -> ?S:member(X, 5) end,
             fun(X) -> ?S:member(X, 7) end,
             fun(X) -> ?S:to_list(X) end,
             fun(X) -> ?S:size(X) end,
             fun(X) -> ?S:merge(X, Other) end,
             fun(X) -> ?S:merge(Other, X) end,
             fun(X) -> ?S:merge([Other, X]) end,
             fun(X) -> ?S:equal(X, S) end,
             fun(X) -> ?S:digest(X) end,
             fun(X) -> ?S:update({remove, 7}, n1, X) end,
             fun(X) -> ?S:update({add, 7}, n1, X) end,
             fun(X) -> ?S:digest_tree(X) end,
             fun(X) -> ?S:diff(X, ?S:digest_tree(Other)) end],
    [?assertEqual(F(S), F(V1)) || F <- Calls],
    [?assertEqual(F(S), F(V2)) || F <- Calls].

%% Batches and deltas give, in v1 form, the bytes the C v1 path writes.
batches_match_v1_test() ->
    V1 = v1_state(),
    {ok, S} = ?S:from_binary(V1),
    Ops = [{add_all, [5, 200, 201, 5]}, {remove, 3}, {add, 3}, {remove_all, [8, 9, 999]},
           {add, x}, {remove, x}, {add, 7}],
    ?assertEqual(?V1:apply(V1, Ops, b), ?S:to_v1(?S:apply(S, Ops, b))),
    ?assertEqual(?V1:add_all(V1, [p, q, 1], e), ?S:to_v1(?S:add_all(S, [p, q, 1], e))),
    ?assertEqual(?V1:remove_all(V1, [1, 2, 3]), ?S:to_v1(?S:remove_all(S, [1, 2, 3]))),
    {V1b, V1d} = ?V1:apply_delta(V1, Ops, c),
    {Sb, Sd} = ?S:apply_delta(S, Ops, c),
    ?assertEqual({V1b, V1d}, {?S:to_v1(Sb), ?S:to_v1(Sd)}),
    {V1a, V1ad} = ?V1:add_delta(V1, 1000, c),
    {Sa, Sad} = ?S:add_delta(S, 1000, c),
    ?assertEqual({V1a, V1ad}, {?S:to_v1(Sa), ?S:to_v1(Sad)}),
    {V1r, V1rd} = ?V1:remove_delta(V1, 1),
    {Sr, Srd} = ?S:remove_delta(S, 1),
    ?assertEqual({V1r, V1rd}, {?S:to_v1(Sr), ?S:to_v1(Srd)}),
    ?assertEqual(?V1:update({update, Ops}, n1, V1),
                 case ?S:update({update, Ops}, n1, S) of
                     {ok, U} -> {ok, ?S:to_v1(U)};
                     Other -> Other
                 end).

%% A batch that touches most of the set (rebuilt at once) and one that touches a
%% little of it (one descent per change) give the same set as single ops would.
large_and_small_batches_test() ->
    Base = ?S:add_all(?S:new(), lists:seq(1, 2000), a),
    Small = [{add, 5000}, {remove, 10}, {add, 11}],
    Large = [{remove_all, lists:seq(1, 1500)}, {add_all, lists:seq(3000, 3600)}],
    lists:foreach(
      fun(Ops) ->
              B = ?S:apply(Base, Ops, b),
              {B, D} = ?S:apply_delta(Base, Ops, b),
              ?assertEqual(B, ?S:merge(Base, D)),
              ?assertEqual({ok, B}, ?S:from_binary(?S:to_binary(B))),
              ?assertEqual(ok, ?S:validate(B)),
              Flat = lists:flatmap(fun({add_all, Es}) -> [{add, E} || E <- Es];
                                      ({remove_all, Es}) -> [{remove, E} || E <- Es];
                                      (Op) -> [Op]
                                   end, Ops),
              Single = lists:foldl(fun({add, E}, X) -> ?S:add(X, E, b);
                                      ({remove, E}, X) -> ?S:remove(X, E)
                                   end, Base, Flat),
              ?assertEqual(?S:to_list(Single), ?S:to_list(B))
      end, [Small, Large]).

%% ---------------------------------------------------------------- remove_by

remove_by_test() ->
    S = ?S:add_all(?S:new(), [{w1, {0, 0}}, {w1, {1, 1}}, {w2, {5, 5}}, plain, 42], n1),
    K = fun({Id, _}) -> Id end,
    R = ?S:remove_by(S, K, w1),
    ?assertEqual(lists:sort([{w2, {5, 5}}, plain, 42]), lists:sort(?S:to_list(R))),
    %% Same as removing the matching elements one by one.
    ?assertEqual(?S:remove_all(S, [{w1, {0, 0}}, {w1, {1, 1}}]), R),
    %% A predicate form; elements the key function does not match are kept.
    ?assertEqual(R, ?S:remove_by(S, fun({w1, _}) -> true end)),
    ?assertEqual(S, ?S:remove_by(S, K, nobody)),
    ?assertEqual(S, ?S:remove_by(S, fun(_) -> maybe end)),
    ?assertEqual(?S:new(), ?S:remove_by(?S:new(), K, w1)),
    {R, D} = ?S:remove_by_delta(S, K, w1),
    ?assertEqual(R, ?S:merge(S, D)),
    ?assertEqual([], ?S:to_list(D)),
    {R, D} = ?S:remove_by_delta(S, fun({w1, _}) -> true end),
    ?assertError(badarg, ?S:remove_by(S, not_a_fun)),
    ?assertError(badarg, ?S:remove_by(S, fun(_, _) -> true end)),
    ?assertError(badarg, ?S:remove_by(S, not_a_fun, w1)),
    ?assertError(badarg, ?S:remove_by_delta(S, 42)),
    ?assertError(badarg, ?S:remove_by(not_a_set, K, w1)).

%% Observed remove: an element of the key that another replica adds concurrently
%% survives the merge (add wins); the removed ones stay removed.
remove_by_add_wins_test() ->
    Base = ?S:add_all(?S:new(), [{w1, a}, {w1, b}, {w2, c}], n1),
    Removed = ?S:remove_by(Base, fun({Id, _}) -> Id end, w1),
    Concurrent = ?S:add_all(Base, [{w1, b}, {w1, new}], n2),
    M = ?S:merge(Removed, Concurrent),
    ?assertEqual(lists:sort([{w1, b}, {w1, new}, {w2, c}]), lists:sort(?S:to_list(M))),
    ?assertEqual(M, ?S:merge(Concurrent, Removed)),
    {_, D} = ?S:remove_by_delta(Base, fun({Id, _}) -> Id end, w1),
    ?assertEqual(M, ?S:merge(Concurrent, D)).

%% ---------------------------------------------------------------- anti-entropy

anti_entropy_through_plexus_orset_test() ->
    Base = ?S:add_all(?S:new(), lists:seq(1, 5000), a),
    A = ?S:add_all(Base, [x, y], b),
    B = ?S:remove_all(Base, [1, 2, 3]),
    {A2, B2, Bytes, _Rounds} = plexus_ae_sync:sync(?S, A, B),
    ?assertEqual(?S:merge(A, B), A2),
    ?assertEqual(A2, B2),
    ?assert(Bytes * 10 < byte_size(?S:to_binary(A))).

%% ---------------------------------------------------------------- hostile terms

%% Forged set terms give {error, _} from every function, never an exception, and
%% validate/1 refuses them.
hostile_terms_test() ->
    Good = ?S:add_all(?S:new(), [1, 2, 3], n1),
    {orset2, C, {l, H, N, Fs, Hs, Es}} = Good,
    Terms = [{orset2, x, y}, {orset2, {#{}, #{}}, {l, 1, 2, [bad]}},
             {orset2, {#{}, #{}}, {b, 1, 40, {}}}, {orset2, {nope, #{}}, nil},
             {orset2, {#{}, #{}}, {l, 1, 1, [{<<1>>, [{<<2>>, 1}]}]}},
             {orset2, {#{}, #{}}, {l, 0, 1, [{<<255, 0>>, [{<<100, 0, 1, $a>>, 1}]}]}},
             {orset2, C, {l, H + 1, N, Fs, Hs, Es}},
             {orset2, {#{<<1>> => -1}, #{}}, nil}],
    Calls = [fun(T) -> ?S:add(T, 1, a) end, fun(T) -> ?S:add_all(T, [1, 2], a) end,
             fun(T) -> ?S:remove(T, 1) end, fun(T) -> ?S:remove_all(T, [1, 9]) end,
             fun(T) -> ?S:remove_by(T, fun(_) -> true end) end,
             fun(T) -> ?S:apply(T, [{add, 4}, {remove, 1}], a) end,
             fun(T) -> ?S:add_delta(T, 1, a) end, fun(T) -> ?S:remove_delta(T, 1) end,
             fun(T) -> ?S:apply_delta(T, [{add, 4}], a) end,
             fun(T) -> ?S:member(T, 1) end, fun(T) -> ?S:to_list(T) end,
             fun(T) -> ?S:size(T) end, fun(T) -> ?S:merge(T, Good) end,
             fun(T) -> ?S:merge(Good, T) end, fun(T) -> ?S:merge([Good, T]) end,
             fun(T) -> ?S:digest(T) end, fun(T) -> ?S:to_binary(T) end,
             fun(T) -> ?S:to_v1(T) end,
             fun(T) -> ?S:update({remove, 1}, a, T) end,
             fun(T) -> ?S:update({add, 1}, a, T) end],
    lists:foreach(
      fun(T) ->
              ?assertMatch({error, _}, ?S:validate(T)),
              [?assertEqual({T, ok}, {T, no_raise(F, T)}) || F <- Calls]
      end, Terms).

%% No exception; an {error, Reason} with an atom reason, or a value.
no_raise(F, T) ->
    try F(T) of
        {error, R} when is_atom(R) -> ok;
        {error, {precondition, {not_present, _}}} -> ok;
        {error, Other} -> {bad_error, Other};
        _ -> ok
    catch
        Class:Reason -> {Class, Reason}
    end.

%% ---------------------------------------------------------------- cost of one op

%% A single add, remove or member on a 100,000-element set is O(log n): counted in
%% reductions, which machine load does not change. The v1 path charges its NIF for a
%% copy of the whole state (some 17,000 reductions at this size).
single_ops_are_logarithmic_test_() ->
    {timeout, 120, fun() ->
        S = ?S:add_all(?S:new(), lists:seq(1, 100000), a),
        Reds = fun(F) -> reductions_of(F, fun(_) -> ok end) div 100 end,
        Add = Reds(fun() -> lists:foldl(fun(E, X) -> ?S:add(X, E, b) end, S,
                                        lists:seq(200001, 200100)) end),
        Remove = Reds(fun() -> lists:foldl(fun(E, X) -> ?S:remove(X, E) end, S,
                                           lists:seq(1, 100)) end),
        Member = Reds(fun() -> [?S:member(S, E) || E <- lists:seq(1, 100)] end),
        ?assert(Add < 2000),
        ?assert(Remove < 2000),
        ?assert(Member < 500)
    end}.

%% Merging the delta of one add into a 100,000-element replica is O(log n) too (the
%% delta's entry is merged where it goes), and so is the delta of a remove: it is
%% keyed by the element it removed, so the merge goes to that entry instead of
%% walking the replica against the delta's context (a full walk costs ~10^5
%% reductions). Deltas that remove k elements (remove_all, remove_by, a batch) cost
%% O(k log n). Every result is the full walk's.
delta_merges_test_() ->
    {timeout, 120, fun() ->
        S = ?S:add_all(?S:new(), lists:seq(1, 100000), a),
        Deltas = [element(2, ?S:add_delta(S, E, b)) || E <- lists:seq(200001, 200100)]
            ++ [element(2, ?S:add_delta(S, E, b)) || E <- lists:seq(1, 5)],
        R1 = reductions_of(fun() -> [?S:merge(S, D) || D <- Deltas] end,
                           fun(Merged) ->
                                   ?assertEqual([plexus_orset2:merge(S, D) || D <- Deltas], Merged)
                           end),
        ?assert(R1 div length(Deltas) < 3000),
        Removes = [element(2, ?S:remove_delta(S, E)) || E <- lists:seq(1, 100)],
        R2 = reductions_of(fun() -> [?S:merge(S, D) || D <- Removes] end,
                           fun(MergedRemoves) ->
                                   ?assertEqual([?S:remove(S, E) || E <- lists:seq(1, 100)],
                                                MergedRemoves),
                                   ?assertEqual(MergedRemoves, [?S:merge(D, S) || D <- Removes])
                           end),
        ?assert(R2 div length(Removes) < 3000),
        Batch = lists:seq(1000, 1099),
        Many = [element(2, ?S:remove_all_delta(S, Batch)),
                element(2, ?S:remove_by_delta(S, fun(E) -> E >= 1000 andalso E < 1100 end)),
                element(2, ?S:apply_delta(S, [{remove_all, Batch}, {add, x}], b))],
        [begin
             Q = reductions_of(fun() -> ?S:merge(S, D) end,
                               fun(M) ->
                                       ?assertEqual(plexus_orset2:merge(S, plexus_orset2:state_of(D)), M)
                               end),
             ?assert(Q < 100 * 3000)
         end || D <- Many]
    end}.

%% The reductions of F(), then Check(Result) (uncounted), in a process of its own whose
%% heap has room for the set and what F makes: no garbage collection runs while F is
%% counted. A collection is charged in reductions too (a full one of a 100,000-element
%% set about 200,000: once inside a counted loop of 100 adds, on a loaded machine, it
%% read as 2,000 per add). The result is checked there: sent back, each of many merged
%% sets would be copied whole.
reductions_of(F, Check) ->
    Self = self(),
    {Pid, Ref} = spawn_opt(fun() ->
                                   {reductions, R0} = process_info(self(), reductions),
                                   Result = F(),
                                   {reductions, R1} = process_info(self(), reductions),
                                   Check(Result),
                                   Self ! {self(), R1 - R0}
                           end, [monitor, {min_heap_size, 8 bsl 20}]),
    receive
        {Pid, Reds} -> erlang:demonitor(Ref, [flush]), Reds;
        {'DOWN', Ref, process, Pid, Why} -> erlang:error(Why)
    end.
