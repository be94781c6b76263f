%% @doc Plain-Erlang reference model of an add-wins OR-Set without tombstones
%% (ORSWOT), written the way riak_dt_orswot is: a version vector (actor => counter)
%% and, per element, the dots {Actor, Counter} of the adds that put it there.
%%
%% Used by the PropEr agreement properties (prop_plexus_orset: the NIF and this model
%% must give the same value under the same ops and merges) and by the benchmark (merge
%% cost of the NIF versus this model), so it is kept faithful and reasonably fast:
%% maps throughout, per-element dot lists that hold one dot in the common case.
%%
%% Semantics (Almeida et al., "Delta State Replicated Data Types", §5 add-wins set;
%% riak_dt_orswot):
%%   add(E, A):   c = ++vv[A]; E's dots become [{A, c}].
%%   remove(E):   drop E; its dots stay covered by vv, so merges drop them elsewhere.
%%   remove_by(P): remove(E) for every present E with P(E).
%%   merge:       vv = pointwise max; an element keeps a dot both sides have, or one
%%                side has and the other side's vv does not cover (add wins).
%% There is no dot cloud: full states built by mutation and merged whole never need
%% one (deltas are the NIF's business).
-module(plexus_orset_model).

-export([new/0, add/3, add_all/3, remove/2, remove_all/2, remove_by/2, merge/2, value/1,
         size/1, member/2]).

-export_type([model/0]).

-type actor() :: term().
-type dot() :: {actor(), pos_integer()}.
-type vv() :: #{actor() => pos_integer()}.
-opaque model() :: {vv(), #{term() => [dot()]}}.

%% @doc The empty set.
-spec new() -> model().
new() ->
    {#{}, #{}}.

%% @doc Adds Elem with a fresh dot of Actor (superseding Elem's earlier dots).
-spec add(term(), actor(), model()) -> model().
add(Elem, Actor, {VV, Entries}) ->
    C = maps:get(Actor, VV, 0) + 1,
    {VV#{Actor => C}, Entries#{Elem => [{Actor, C}]}}.

%% @doc Adds each element in turn (the sequential meaning of a batch).
-spec add_all([term()], actor(), model()) -> model().
add_all(Elems, Actor, {VV, Entries}) ->
    C0 = maps:get(Actor, VV, 0),
    {C, Entries2} = lists:foldl(
        fun(E, {Ci, Acc}) -> {Ci + 1, Acc#{E => [{Actor, Ci + 1}]}} end,
        {C0, Entries},
        Elems
    ),
    {bump(Actor, C, VV), Entries2}.

%% @doc Removes Elem; absent elements are ignored.
-spec remove(term(), model()) -> model().
remove(Elem, {VV, Entries}) ->
    {VV, maps:remove(Elem, Entries)}.

%% @doc Removes each element.
-spec remove_all([term()], model()) -> model().
remove_all(Elems, {VV, Entries}) ->
    {VV, maps:without(Elems, Entries)}.

%% @doc Removes every element for which Pred is true (observed remove of each: its
%% dots stay covered by vv, so a concurrent add elsewhere survives the merge).
-spec remove_by(fun((term()) -> boolean()), model()) -> model().
remove_by(Pred, {VV, Entries}) ->
    {VV, maps:filter(fun(Elem, _) -> not Pred(Elem) end, Entries)}.

%% @doc The merge (add wins).
-spec merge(model(), model()) -> model().
merge({VV1, E1}, {VV2, E2}) ->
    VV = maps:fold(fun(A, C, Acc) -> bump(A, C, Acc) end, VV1, VV2),
    Both = maps:fold(
        fun(Elem, D1, Acc) ->
            case E2 of
                #{Elem := D2} -> keep(Elem, merge_dots(D1, D2, VV1, VV2), Acc);
                #{} -> keep(Elem, uncovered(D1, VV2), Acc)
            end
        end,
        #{},
        E1
    ),
    Entries = maps:fold(
        fun(Elem, D2, Acc) ->
            case E1 of
                #{Elem := _} -> Acc;
                #{} -> keep(Elem, uncovered(D2, VV1), Acc)
            end
        end,
        Both,
        E2
    ),
    {VV, Entries}.

%% @doc The elements in Erlang term order.
-spec value(model()) -> [term()].
value({_, Entries}) ->
    lists:sort(maps:keys(Entries)).

%% @doc The number of elements.
-spec size(model()) -> non_neg_integer().
size({_, Entries}) ->
    map_size(Entries).

%% @doc Whether Elem is in the set.
-spec member(term(), model()) -> boolean().
member(Elem, {_, Entries}) ->
    is_map_key(Elem, Entries).

%% ---------------------------------------------------------------- internal

bump(A, C, VV) ->
    case VV of
        #{A := Old} when Old >= C -> VV;
        #{} -> VV#{A => C}
    end.

keep(_Elem, [], Acc) -> Acc;
keep(Elem, Dots, Acc) -> Acc#{Elem => Dots}.

covered({A, C}, VV) ->
    C =< maps:get(A, VV, 0).

uncovered(Dots, VV) ->
    [D || D <- Dots, not covered(D, VV)].

%% Dots both sides have, plus each side's dots the other side has not seen.
merge_dots(D, D, _, _) ->
    D;
merge_dots(D1, D2, VV1, VV2) ->
    Common = [D || D <- D1, lists:member(D, D2)],
    Only1 = [D || D <- D1, not lists:member(D, D2), not covered(D, VV2)],
    Only2 = [D || D <- D2, not lists:member(D, D1), not covered(D, VV1)],
    lists:usort(Common ++ Only1 ++ Only2).
