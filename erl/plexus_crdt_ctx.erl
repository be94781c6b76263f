%% @private
%% @doc The causal context of the trie CRDTs (`plexus_orset2', `plexus_lwwmap') and
%% their entry merge, which only the context decides:
%% `{VV, Cloud}', a version vector `#{ActorBin => Counter}' and the dots past it,
%% `#{{ActorBin, Counter} => true}'. Kept canonical: a cloud dot the vector covers is
%% dropped and a run of cloud dots continuing the vector folds into it, so equal
%% contexts are equal terms on every node (the states' `=:=' and bytes rely on it).
-module(plexus_crdt_ctx).

-export([merge/2, fold_cloud/1, next_dot/3, covers/2, entry_ops/0]).

-export_type([ctx/0, item/0]).

-type ctx() :: {#{binary() => pos_integer()}, #{{binary(), pos_integer()} => true}}.
%% What an entry holds, each with its dot first: an OR-Set dot or an LWW map write.
-type item() :: {binary(), pos_integer()}
              | {binary(), pos_integer(), non_neg_integer(), binary()}.

%% @doc The join of two contexts (the greater counter per actor, the union of the
%% clouds), canonical.
-spec merge(ctx(), ctx()) -> ctx().
merge({VA, CA}, {VB, CB}) ->
    fold_cloud({maps:merge_with(fun(_, X, Y) -> max(X, Y) end, VA, VB), maps:merge(CA, CB)}).

%% @doc The canonical form: cloud dots the vector covers go, runs continuing it fold in.
-spec fold_cloud(ctx()) -> ctx().
fold_cloud({_, Cloud} = Ctx) when map_size(Cloud) =:= 0 ->
    Ctx;
fold_cloud({VV, Cloud}) ->
    lists:foldl(fun({A, C} = Dot, {V, Cl}) ->
                        case maps:get(A, V, 0) of
                            X when C =< X -> {V, Cl};
                            X when C =:= X + 1 -> {V#{A => C}, Cl};
                            _ -> {V, Cl#{Dot => true}}
                        end
                end, {VV, #{}}, lists:sort(maps:keys(Cloud))).

%% @doc The counter of a new dot of actor `A' and the context that has seen it: one
%% past every dot of `A' this replica has seen, the cloud included (a later delta of
%% `A' may have arrived before an earlier one: its counters are taken, the gap below
%% them is not). It continues the vector when it can, else it joins the cloud.
-spec next_dot(binary(), #{binary() => pos_integer()}, #{{binary(), pos_integer()} => true}) ->
          {pos_integer(), ctx()}.
next_dot(A, VV, Cloud) ->
    Seen = maps:get(A, VV, 0),
    Top = case map_size(Cloud) of
              0 -> Seen;
              _ -> lists:max([Seen | [X || {A2, X} <- maps:keys(Cloud), A2 =:= A]])
          end,
    C = Top + 1,
    case C =:= Seen + 1 of
        true -> {C, fold_cloud({VV#{A => C}, Cloud})};
        false -> {C, {VV, Cloud#{{A, C} => true}}}
    end.

%% @doc Whether the context has seen the dot of an item: an OR-Set dot
%% `{Actor, Counter}' or an LWW map write `{Actor, Counter, Ts, Value}'.
-spec covers(ctx(), item()) -> boolean().
covers({VV, Cloud}, {A, C} = Dot) ->
    C =< maps:get(A, VV, 0) orelse is_map_key(Dot, Cloud);
covers(Ctx, {A, C, _, _}) ->
    covers(Ctx, {A, C}).

%% ---------------------------------------------------------------- entry merge

%% @doc The entry merge the trie walk is given (`plexus_crdt_trie:merge_node/6'):
%% entries are `{KeyBin, Items}', items sorted and each holding its own dot (the
%% ORSWOT merge of the OR-Set's dots and of the LWW map's writes is the same). An
%% item both sides hold stays; an item one side holds stays unless the other side's
%% context has seen its dot (it was removed or overwritten there); a key left with no
%% item goes.
-spec entry_ops() -> plexus_crdt_trie:entry_ops(ctx()).
entry_ops() ->
    #{merge_entries => fun merge_entries/4, keep_unseen => fun keep_unseen/2}.

%% Entries only one side has: keep the items the other context has not seen.
keep_unseen(Entries, Other) ->
    lists:foldr(fun(X, Acc) -> keep_one(X, Other, Acc) end, [], Entries).

%% An entry both sides hold alike is kept as it is (the same term: no copy, and the
%% hash of the merged leaf skips it by identity).
merge_entries([X | TA], [X | TB], CA, CB) ->
    [X | merge_entries(TA, TB, CA, CB)];
merge_entries([{K, _} = X | TA], [{F, _} | _] = B, CA, CB) when K < F ->
    keep_one(X, CB, merge_entries(TA, B, CA, CB));
merge_entries([{K, _} | _] = A, [{F, _} = Y | TB], CA, CB) when F < K ->
    keep_one(Y, CA, merge_entries(A, TB, CA, CB));
merge_entries([{K, IA} | TA], [{K, IB} | TB], CA, CB) ->
    case merge_items(IA, IB, CA, CB) of
        [] -> merge_entries(TA, TB, CA, CB);
        Is -> [{K, Is} | merge_entries(TA, TB, CA, CB)]
    end;
merge_entries([], B, CA, _) ->
    keep_unseen(B, CA);
merge_entries(A, [], _, CB) ->
    keep_unseen(A, CB).

%% An entry that keeps all its items stays the same term.
keep_one({K, Is} = X, Other, Rest) ->
    case [I || I <- Is, not covers(Other, I)] of
        Is -> [X | Rest];
        [] -> Rest;
        Kept -> [{K, Kept} | Rest]
    end.

%% Items are sorted; one dot names one item.
merge_items([X | TA], [X | TB], CA, CB) ->
    [X | merge_items(TA, TB, CA, CB)];
merge_items([X | TA], [Y | _] = B, CA, CB) when X < Y ->
    keep_item(X, CB, merge_items(TA, B, CA, CB));
merge_items(A, [Y | TB], CA, CB) when A =/= [] ->
    keep_item(Y, CA, merge_items(A, TB, CA, CB));
merge_items([], B, CA, _) ->
    [I || I <- B, not covers(CA, I)];
merge_items(A, [], _, CB) ->
    [I || I <- A, not covers(CB, I)].

keep_item(I, Other, Rest) ->
    case covers(Other, I) of
        true -> Rest;
        false -> [I | Rest]
    end.
