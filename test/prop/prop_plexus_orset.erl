%% PropEr properties of plexus_orset, on the v2 representation (doc/DESIGN.md §1
%% "Laws"): merge is commutative, associative and idempotent; from_binary(to_binary(S))
%% round-trips; replicas converge under random delivery order, duplication and loss
%% followed by anti-entropy; concurrent add and remove (also remove_by): add wins; a
%% single replica agrees with the sequential specification (a `sets' model); the sets
%% agree with the Erlang ORSWOT reference model (plexus_orset_model) under the same
%% ops, remove_by and merges; every history run side by side on the C v1 path
%% (plexus_orset_v1) gives the same v1 bytes at every step, and v1 states read back
%% give the same sets (upgrade); and the delta laws: merging an op's delta equals the
%% op, deltas commute, are idempotent and may arrive in any order.
%%
%% Run from EUnit (rebar3's proper plugin cannot be fetched offline): proper_test_/0.
-module(prop_plexus_orset).

-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

-include("plexus_prop.hrl").

-define(S, plexus_orset).
-define(OPTS, [{numtests, ?NUMTESTS(300)}, {max_size, 60}, {to_file, user}]).
-define(ACTORS, {n1, n2, n3}).

%% ---------------------------------------------------------------- EUnit wrapper

proper_test_() ->
    Props = [prop_merge_commutative, prop_merge_associative, prop_merge_idempotent,
             prop_roundtrip, prop_converge, prop_add_wins, prop_sequential_spec,
             prop_model_agreement, prop_v1_agreement, prop_delta_is_op, prop_delta_laws,
             prop_remove_by_add_wins, prop_keyed_delta_merge],
    [{atom_to_list(P),
      {timeout, 120,
       ?_assert(proper:quickcheck(?MODULE:P(), ?OPTS))}}
     || P <- Props].

%% ---------------------------------------------------------------- generators

%% A small domain, so that ops collide on the same elements often.
elem() ->
    oneof([range(0, 7), elements([a, b, c]), {t, range(0, 2)},
           elements([<<>>, <<"x">>, <<"yz">>]), elements([1.5, -2.0, 1 bsl 80])]).

op() ->
    frequency([{4, {add, elem()}}, {3, {remove, elem()}},
               {1, {add_all, list(elem())}}, {1, {remove_all, list(elem())}}]).

ops() -> non_empty(list(op())).

replica() -> range(1, 3).

%% Steps of a 3-replica history: local batches (full or delta form, the delta then
%% merged into another replica) and full-state merges.
step() ->
    frequency([{5, {mutate, replica(), ops()}},
               {2, {delta, replica(), ops(), replica()}},
               {2, {merge, replica(), replica()}}]).

history() -> list(step()).

actor(R) -> element(R, ?ACTORS).

%% Runs a history; returns every state it made (replicas and deltas): the pool the
%% law properties pick from. Deltas merged out of causal order give states with a
%% dot cloud.
pool(History) ->
    Init = {?S:new(), ?S:new(), ?S:new()},
    {Reps, Deltas} = lists:foldl(fun run_step/2, {Init, []}, History),
    [?S:new() | tuple_to_list(Reps) ++ Deltas].

run_step({mutate, R, Ops}, {Reps, Ds}) ->
    {setelement(R, Reps, ?S:apply(element(R, Reps), Ops, actor(R))), Ds};
run_step({delta, R, Ops, To}, {Reps, Ds}) ->
    {S, D} = ?S:apply_delta(element(R, Reps), Ops, actor(R)),
    Reps1 = setelement(R, Reps, S),
    {setelement(To, Reps1, ?S:merge(element(To, Reps1), D)), [D | Ds]};
run_step({merge, From, To}, {Reps, Ds}) ->
    {setelement(To, Reps, ?S:merge(element(To, Reps), element(From, Reps))), Ds}.

pick(Pool, I) -> lists:nth(1 + I rem length(Pool), Pool).

%% Three states from one history's pool.
three_states() ->
    ?LET({H, I, J, K}, {history(), nat(), nat(), nat()},
         begin
             Pool = pool(H),
             {pick(Pool, I), pick(Pool, J), pick(Pool, K)}
         end).

%% ---------------------------------------------------------------- laws

prop_merge_commutative() ->
    ?FORALL({A, B, _}, three_states(),
            ?SAFE(?S:merge(A, B) =:= ?S:merge(B, A)
                  andalso ?S:merge(A, B) =:= plexus_orset2:merge(A, B))).

prop_merge_associative() ->
    ?FORALL({A, B, C}, three_states(),
            ?SAFE(begin
                L = ?S:merge(?S:merge(A, B), C),
                L =:= ?S:merge(A, ?S:merge(B, C)) andalso L =:= ?S:merge([A, B, C])
                    andalso L =:= ?S:merge([C, A, B])
            end)).

prop_merge_idempotent() ->
    ?FORALL({A, B, _}, three_states(),
            ?SAFE(begin
                AB = ?S:merge(A, B),
                ?S:merge(A, A) =:= A andalso ?S:merge(AB, B) =:= AB
                    andalso ?S:merge(AB, A) =:= AB andalso ?S:merge([A]) =:= A
            end)).

prop_roundtrip() ->
    ?FORALL({A, _, _}, three_states(),
            ?SAFE(begin
                Bin = ?S:to_binary(A),
                {ok, A2} = ?S:from_binary(Bin),
                A2 =:= A andalso ?S:equal(A, A2) andalso ?S:digest(A) =:= ?S:digest(A2)
                    andalso ?S:to_list(A2) =:= ?S:to_list(A)
            end)).

%% ---------------------------------------------------------------- convergence

%% Network commands: a replica mutates (sending its full state or the delta to both
%% other replicas), or a message in flight is delivered, delivered twice or lost.
net_cmd() ->
    frequency([{4, {update, replica(), ops(), elements([full, delta])}},
               {4, {deliver, nat()}},
               {1, {duplicate, nat()}},
               {1, {drop, nat()}}]).

prop_converge() ->
    ?FORALL({Cmds, Order}, {list(net_cmd()), list(nat())},
            ?SAFE(begin
                Init = {{?S:new(), ?S:new(), ?S:new()}, [], false},
                {Reps, Net, Lost} = lists:foldl(fun net_step/2, Init, Cmds),
                %% Deliver everything still in flight, in a random order.
                Reps1 = deliver_all(Reps, shuffle(Net, Order)),
                Vals = [?S:to_list(S) || S <- tuple_to_list(Reps1)],
                %% Without loss, delivery alone converges (deltas out of order too).
                NoLoss = Lost orelse all_same(tuple_to_list(Reps1)),
                %% Anti-entropy: full states around the ring once and a half.
                Reps2 = anti_entropy(Reps1),
                ?WHENFAIL(io:format(user, "values before anti-entropy: ~p~n", [Vals]),
                          NoLoss andalso all_same(tuple_to_list(Reps2)))
            end)).

net_step({update, R, Ops, Mode}, {Reps, Net, Lost}) ->
    S0 = element(R, Reps),
    {S, Payload} = case Mode of
                       full -> S1 = ?S:apply(S0, Ops, actor(R)), {S1, S1};
                       delta -> ?S:apply_delta(S0, Ops, actor(R))
                   end,
    Msgs = [{To, Payload} || To <- [1, 2, 3], To =/= R],
    {setelement(R, Reps, S), Net ++ Msgs, Lost};
net_step({deliver, _}, {_, [], _} = Acc) ->
    Acc;
net_step({deliver, N}, {Reps, Net, Lost}) ->
    {Msg, Rest} = take(N, Net),
    {deliver(Msg, Reps), Rest, Lost};
net_step({duplicate, _}, {_, [], _} = Acc) ->
    Acc;
net_step({duplicate, N}, {Reps, Net, Lost}) ->
    {Msg, _} = take(N, Net),
    {deliver(Msg, Reps), Net, Lost};
net_step({drop, _}, {_, [], _} = Acc) ->
    Acc;
net_step({drop, N}, {Reps, Net, _}) ->
    {_, Rest} = take(N, Net),
    {Reps, Rest, true}.

take(N, List) ->
    I = N rem length(List),
    {Before, [Msg | After]} = lists:split(I, List),
    {Msg, Before ++ After}.

deliver({To, Payload}, Reps) ->
    setelement(To, Reps, ?S:merge(element(To, Reps), Payload)).

deliver_all(Reps, Msgs) -> lists:foldl(fun deliver/2, Reps, Msgs).

shuffle(List, Order) ->
    Keyed = lists:zip(lists:sublist(Order ++ lists:duplicate(length(List), 0), length(List)),
                      lists:seq(1, length(List))),
    [lists:nth(I, List) || {_, I} <- lists:sort(Keyed)].

anti_entropy(Reps) ->
    lists:foldl(fun({From, To}, Acc) -> deliver({To, element(From, Acc)}, Acc) end,
                Reps, [{1, 2}, {2, 3}, {3, 1}, {1, 2}]).

all_same([A | Rest]) -> lists:all(fun(B) -> B =:= A end, Rest).

%% ---------------------------------------------------------------- add wins

prop_add_wins() ->
    ?FORALL({H, E, OpsA, OpsB, UseDelta}, {history(), elem(), list(op()), list(op()), bool()},
            ?SAFE(begin
                [_, Base | _] = pool(H),
                %% Replica A removes E concurrently with replica B re-adding it;
                %% each also runs other ops first (which may touch E too).
                OpA = OpsA ++ [{remove, E}],
                OpB = OpsB ++ [{add, E}],
                M = case UseDelta of
                        false ->
                            ?S:merge(?S:apply(Base, OpA, n1), ?S:apply(Base, OpB, n2));
                        true ->
                            {_, DA} = ?S:apply_delta(Base, OpA, n1),
                            {_, DB} = ?S:apply_delta(Base, OpB, n2),
                            ?S:merge([DB, Base, DA])
                    end,
                ?S:member(M, E)
            end)).

%% ---------------------------------------------------------------- sequential spec

%% How one batch is applied: all the ways the API offers must agree with the spec.
how() -> elements([batch, single, delta, update]).

prop_sequential_spec() ->
    ?FORALL(Batches, list({ops(), how()}),
            ?SAFE(begin
                {S, Spec} = lists:foldl(fun seq_step/2, {?S:new(), sets:new()}, Batches),
                Expected = lists:sort(sets:to_list(Spec)),
                ?WHENFAIL(io:format(user, "nif ~p~nspec ~p~n", [?S:to_list(S), Expected]),
                          lists:sort(?S:to_list(S)) =:= Expected
                              andalso ?S:size(S) =:= length(Expected)
                              andalso lists:all(fun(E) -> ?S:member(S, E) end, Expected))
            end)).

seq_step({Ops, How}, {S, Spec}) ->
    Flat = flatten(Ops),
    Spec1 = lists:foldl(fun spec_op/2, Spec, Flat),
    case How of
        batch ->
            {?S:apply(S, Ops, n1), Spec1};
        single ->
            {lists:foldl(fun({add, E}, Acc) -> ?S:add(Acc, E, n1);
                            ({remove, E}, Acc) -> ?S:remove(Acc, E, n1)
                         end, S, Flat), Spec1};
        delta ->
            {S1, D} = ?S:apply_delta(S, Ops, n1),
            S1 = ?S:merge(S, D),
            {S1, Spec1};
        update ->
            %% riak_dt semantics: a remove of an element absent at that point fails
            %% the whole op, and the error names the first such remove in sequence.
            Got = ?S:update({update, Ops}, n1, S),
            case {first_absent(Flat, Spec), Got} of
                {none, {ok, S1}} ->
                    {S1, Spec1};
                {{absent, E}, {error, {precondition, {not_present, E}}}} ->
                    {S, Spec};
                {Expected, _} ->
                    erlang:error({update_precondition, Ops, {expected, Expected}, {got, Got}})
            end
    end.

spec_op({add, E}, Spec) -> sets:add_element(E, Spec);
spec_op({remove, E}, Spec) -> sets:del_element(E, Spec).

%% The first remove, in sequence, of an element absent at that point.
first_absent([{add, X} | T], Spec) -> first_absent(T, sets:add_element(X, Spec));
first_absent([{remove, X} | T], Spec) ->
    case sets:is_element(X, Spec) of
        true -> first_absent(T, sets:del_element(X, Spec));
        false -> {absent, X}
    end;
first_absent([], _) -> none.

flatten(Ops) ->
    lists:flatmap(fun({add_all, Es}) -> [{add, E} || E <- Es];
                     ({remove_all, Es}) -> [{remove, E} || E <- Es];
                     (Op) -> [Op]
                  end, Ops).

%% ---------------------------------------------------------------- model agreement

model_step() ->
    frequency([{5, {mutate, replica(), ops()}},
               {2, {remove_by, replica(), key()}},
               {3, {merge, replica(), replica()}}]).

%% remove_by keys: a key function every node computes alike.
key() -> range(0, 2).

key_of(E) -> erlang:phash2(E, 3).

prop_model_agreement() ->
    ?FORALL(Steps, list(model_step()),
            ?SAFE(begin
                Nif0 = {?S:new(), ?S:new(), ?S:new()},
                M0 = plexus_orset_model:new(),
                Model0 = {M0, M0, M0},
                {_, _, Ok} = lists:foldl(fun model_step/2, {Nif0, Model0, true}, Steps),
                Ok
            end)).

model_step(_, {_, _, false} = Acc) ->
    Acc;
model_step({mutate, R, Ops}, {Nif, Model, true}) ->
    Nif1 = setelement(R, Nif, ?S:apply(element(R, Nif), Ops, actor(R))),
    M = lists:foldl(fun(Op, Acc) -> model_op(Op, actor(R), Acc) end, element(R, Model), Ops),
    Model1 = setelement(R, Model, M),
    {Nif1, Model1, agree(Nif1, Model1)};
model_step({remove_by, R, Key}, {Nif, Model, true}) ->
    Nif1 = setelement(R, Nif, ?S:remove_by(element(R, Nif), fun key_of/1, Key)),
    M = plexus_orset_model:remove_by(fun(E) -> key_of(E) =:= Key end, element(R, Model)),
    Model1 = setelement(R, Model, M),
    {Nif1, Model1, agree(Nif1, Model1)};
model_step({merge, From, To}, {Nif, Model, true}) ->
    Nif1 = setelement(To, Nif, ?S:merge(element(To, Nif), element(From, Nif))),
    Model1 = setelement(To, Model, plexus_orset_model:merge(element(To, Model),
                                                            element(From, Model))),
    {Nif1, Model1, agree(Nif1, Model1)}.

model_op({add, E}, A, M) -> plexus_orset_model:add(E, A, M);
model_op({remove, E}, _, M) -> plexus_orset_model:remove(E, M);
model_op({add_all, Es}, A, M) -> plexus_orset_model:add_all(Es, A, M);
model_op({remove_all, Es}, _, M) -> plexus_orset_model:remove_all(Es, M).

agree(Nif, Model) ->
    lists:all(fun(R) ->
                      N = element(R, Nif),
                      M = element(R, Model),
                      V = plexus_orset_model:value(M),
                      Same = lists:sort(?S:to_list(N)) =:= V
                          andalso ?S:size(N) =:= plexus_orset_model:size(M),
                      Same orelse io:format(user, "replica ~p: nif ~p model ~p~n",
                                            [R, lists:sort(?S:to_list(N)), V]),
                      Same
              end, [1, 2, 3]).

%% ---------------------------------------------------------------- v1 agreement

-define(V1, plexus_orset_v1).

%% The same history (batches, deltas merged elsewhere, merges) on the C v1 path and on
%% plexus_orset: at every step the v1 form of each v2 state is the v1 state, byte for
%% byte, and the v1 state read back (from_binary, or passed as it is) is the v2 state.
prop_v1_agreement() ->
    ?FORALL(History, history(),
            ?SAFE(begin
                      Init = list_to_tuple(lists:duplicate(3, {?V1:new(), ?S:new()})),
                      _ = lists:foldl(fun v1_step/2, Init, History),
                      true
                  end)).

v1_step({mutate, R, Ops}, Reps) ->
    {V1, V2} = element(R, Reps),
    setelement(R, Reps, same({?V1:apply(V1, Ops, actor(R)), ?S:apply(V2, Ops, actor(R))}));
v1_step({delta, R, Ops, To}, Reps) ->
    {V1, V2} = element(R, Reps),
    {V1b, D1} = ?V1:apply_delta(V1, Ops, actor(R)),
    {V2b, D2} = ?S:apply_delta(V2, Ops, actor(R)),
    %% A v2 delta that removed elements is keyed by them; v1 has no keys.
    _ = same({D1, plexus_orset2:state_of(D2)}),
    Reps1 = setelement(R, Reps, same({V1b, V2b})),
    {T1, T2} = element(To, Reps1),
    %% The v2 side merges the v1 delta as it came (a binary in place of a set).
    setelement(To, Reps1, same({?V1:merge(T1, D1), ?S:merge(T2, D1)}));
v1_step({merge, From, To}, Reps) ->
    {F1, F2} = element(From, Reps),
    {T1, T2} = element(To, Reps),
    setelement(To, Reps, same({?V1:merge(T1, F1), ?S:merge(T2, F2)})).

same({V1, V2} = P) ->
    V1 = ?S:to_v1(V2),
    {ok, V2} = ?S:from_binary(V1),
    {ok, V2} = ?S:from_binary(?S:to_binary(V2)),
    true = ?S:equal(V1, V2),
    P.

%% ---------------------------------------------------------------- delta laws

%% Merging an op's delta into the state it came from, or into any replica that saw
%% that state, equals applying the op there (full-state merge of the result). The
%% pool holds deltas too: a keyed delta merged with a keyed delta stays one, so the
%% states are compared (state_of/1), and the merges term for term.
prop_delta_is_op() ->
    ?FORALL({{S, Other, _}, Ops, HowDelta}, {three_states(), ops(), elements([apply, by])},
            ?SAFE(begin
                      {S2, D} = delta_of(HowDelta, S, Ops),
                      R = ?S:merge(S, Other),
                      %% plexus_orset:merge/2 merges a small side entry by entry when
                      %% it can; plexus_orset2:merge/2 always walks both tries.
                      Walk = plexus_orset2:merge(R, D),
                      st(?S:merge(S, D)) =:= S2 andalso st(?S:merge(D, S)) =:= S2
                          andalso st(?S:merge(R, D)) =:= st(?S:merge(R, S2))
                          andalso ?S:merge(R, D) =:= Walk andalso ?S:merge(D, R) =:= Walk
                          andalso ?S:merge(Other, D) =:= plexus_orset2:merge(Other, D)
                  end)).

st(Set) -> plexus_orset2:state_of(Set).

delta_of(apply, S, Ops) -> ?S:apply_delta(S, Ops, n1);
delta_of(by, S, Ops) ->
    %% remove_by with a key taken from the ops, then the ops.
    Key = erlang:phash2(Ops, 3),
    {S1, D1} = ?S:remove_by_delta(S, fun key_of/1, Key),
    {S2, D2} = ?S:apply_delta(S1, Ops, n1),
    {S2, ?S:merge(D1, D2)}.

%% Successive deltas of one replica: delivered in any order, any number of times,
%% merged with each other first or not, they bring a replica that saw the start to
%% the end state.
prop_delta_laws() ->
    ?FORALL({{S0, _, _}, Batches, Order}, {three_states(), non_empty(list({ops(), replica()})),
                                           list(nat())},
            ?SAFE(begin
                      {End, Ds} = lists:foldl(
                                    fun({Ops, R}, {S, Acc}) ->
                                            {S1, D} = ?S:apply_delta(S, Ops, actor(R)),
                                            {S1, [D | Acc]}
                                    end, {S0, []}, Batches),
                      Shuffled = shuffle(Ds ++ Ds, Order),
                      Joined = ?S:merge(Ds),
                      st(lists:foldl(fun(D, Acc) -> ?S:merge(Acc, D) end, S0, Shuffled)) =:= End
                          andalso st(?S:merge(S0, Joined)) =:= End
                          andalso ?S:merge(lists:reverse(Ds)) =:= Joined
                          andalso ?S:merge(Joined, hd(Ds)) =:= Joined
                  end)).

%% A delta that removes (remove, remove_all, remove_by, a batch) is keyed by the
%% elements it removed. Merged into any state of a history (or with another keyed
%% delta first), entry by entry where its keys account for the dots its context
%% removes, it gives the full walk of plexus_orset2:merge/2 over the two states, term
%% for term; so does the delta with its keys tampered with (one dropped, one added,
%% replaced by another element's): keys say where to look, never what the merge is.
prop_keyed_delta_merge() ->
    ?FORALL({{S, Other, Third}, Ops, How, E, Tamper},
            {three_states(), ops(), elements([remove, remove_all, by, apply]), elem(),
             elements([none, drop, extra, swap])},
            ?SAFE(begin
                      {_, D} = keyed_delta_of(How, S, Ops, E),
                      {_, DO} = ?S:remove_all_delta(Other, [E | elems_of(Ops)]),
                      T = tamper(Tamper, D, E),
                      Full = fun(X, Y) -> plexus_orset2:merge(st(X), st(Y)) end,
                      lists:all(fun(R) ->
                                        st(?S:merge(R, T)) =:= Full(R, D)
                                            andalso st(?S:merge(T, R)) =:= Full(R, D)
                                            andalso st(?S:merge(R, ?S:merge(T, DO))) =:=
                                                    Full(R, Full(D, DO))
                                end, [S, Other, Third, ?S:merge(Other, Third)])
                          andalso ?S:from_binary(?S:to_binary(D)) =:= {ok, D}
                          andalso ?S:validate(D) =:= ok
                  end)).

keyed_delta_of(remove, S, _, E) -> ?S:remove_delta(S, E);
keyed_delta_of(remove_all, S, Ops, E) -> ?S:remove_all_delta(S, [E | elems_of(Ops)]);
keyed_delta_of(by, S, _, E) -> ?S:remove_by_delta(S, fun key_of/1, key_of(E));
keyed_delta_of(apply, S, Ops, _) -> ?S:apply_delta(S, Ops, n1).

elems_of(Ops) ->
    lists:append([case Op of
                      {_, Es} when is_list(Es) -> Es;
                      {_, X} -> [X]
                  end || Op <- Ops]).

tamper(none, D, _) -> D;
tamper(drop, {orset2_delta, St, [_]}, _) -> St;
tamper(drop, {orset2_delta, St, [_ | Ks]}, _) -> {orset2_delta, St, Ks};
tamper(extra, {orset2_delta, St, Ks}, E) -> {orset2_delta, St, lists:umerge(Ks, [enc(E)])};
tamper(swap, {orset2_delta, St, _}, E) -> {orset2_delta, St, [enc(E)]};
tamper(_, D, _) -> D.

enc(E) ->
    <<131, Bin/binary>> = term_to_binary(E, [deterministic, {minor_version, 2}]),
    Bin.

%% ---------------------------------------------------------------- remove_by

%% remove_by on one replica, a concurrent add of a matching element on another: the
%% added element stays after the merge (full states or deltas); the other matching
%% elements the first replica saw are gone unless the second re-added them.
prop_remove_by_add_wins() ->
    ?FORALL({H, E, UseDelta}, {history(), elem(), bool()},
            ?SAFE(begin
                      [_, Base | _] = pool(H),
                      Key = key_of(E),
                      Matching = [X || X <- ?S:to_list(Base), key_of(X) =:= Key],
                      A = ?S:remove_by(Base, fun key_of/1, Key),
                      B = ?S:add(Base, E, n2),
                      M = case UseDelta of
                              false -> ?S:merge(A, B);
                              true ->
                                  {_, DA} = ?S:remove_by_delta(Base, fun key_of/1, Key),
                                  {_, DB} = ?S:add_delta(Base, E, n2),
                                  ?S:merge([DB, Base, DA])
                          end,
                      ?S:member(M, E)
                          andalso lists:all(fun(X) -> X =:= E orelse not ?S:member(M, X) end,
                                            Matching)
                  end)).
