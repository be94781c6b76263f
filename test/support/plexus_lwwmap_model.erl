%% @doc Plain-Erlang reference model of plexus_lwwmap (observed-remove map of LWW
%% values), written the simplest way: a version vector and, per key, the list of its
%% surviving writes `{Actor, Counter, Ts, Value}' (plain terms, maps throughout, no
%% trie, no dot cloud: full states built by mutation and merged whole never need one).
%%
%%   put(K, V, A, Ts): c = ++vv[A]; K's writes become [{A, c, Ts, V}].
%%   remove(K):        drop K; its dots stay covered by vv.
%%   merge:            vv = pointwise max; a write stays if both sides have it, or one
%%                     side has it and the other's vv does not cover its dot.
%%   value(K):         the value of the greatest write by (Ts, Actor, Value).
%%
%% The timestamp is the caller's: prop_plexus_lwwmap passes the step number, which
%% orders writes exactly as the node's HLC orders plexus_lwwmap's (strictly increasing
%% in the order of the calls).
-module(plexus_lwwmap_model).

-export([new/0, put/5, remove/2, merge/2, to_map/1]).

-export_type([model/0]).

-opaque model() :: {#{term() => pos_integer()},
                    #{term() => [{term(), pos_integer(), integer(), term()}]}}.

-spec new() -> model().
new() ->
    {#{}, #{}}.

-spec put(term(), term(), term(), integer(), model()) -> model().
put(Key, Value, Actor, Ts, {VV, Keys}) ->
    C = maps:get(Actor, VV, 0) + 1,
    {VV#{Actor => C}, Keys#{Key => [{Actor, C, Ts, Value}]}}.

-spec remove(term(), model()) -> model().
remove(Key, {VV, Keys}) ->
    {VV, maps:remove(Key, Keys)}.

-spec merge(model(), model()) -> model().
merge({VA, KA}, {VB, KB}) ->
    Seen = fun(VV, {A, C, _, _}) -> C =< maps:get(A, VV, 0) end,
    Keys = lists:usort(maps:keys(KA) ++ maps:keys(KB)),
    Merged = lists:foldl(
               fun(K, Acc) ->
                       WA = maps:get(K, KA, []),
                       WB = maps:get(K, KB, []),
                       Both = [W || W <- WA, lists:member(W, WB)],
                       OnlyA = [W || W <- WA, not lists:member(W, WB), not Seen(VB, W)],
                       OnlyB = [W || W <- WB, not lists:member(W, WA), not Seen(VA, W)],
                       case Both ++ OnlyA ++ OnlyB of
                           [] -> Acc;
                           Ws -> Acc#{K => Ws}
                       end
               end, #{}, Keys),
    {maps:merge_with(fun(_, X, Y) -> max(X, Y) end, VA, VB), Merged}.

-spec to_map(model()) -> map().
to_map({_, Keys}) ->
    maps:map(fun(_, Ws) ->
                     {_, _, _, V} = lists:last(lists:sort(
                                                 fun({_, _, T1, _}, {_, _, T2, _}) ->
                                                         T1 =< T2
                                                 end, Ws)),
                     V
             end, Keys).
