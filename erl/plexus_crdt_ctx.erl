%% @private
%% @doc The causal context of the trie CRDTs (`plexus_orset2', `plexus_lwwmap') and
%% their entry merge, which only the context decides:
%% `{VV, Cloud}', a version vector `#{ActorBin => Counter}' and the dots past it,
%% `#{{ActorBin, Counter} => true}'. Kept canonical: a cloud dot the vector covers is
%% dropped and a run of cloud dots continuing the vector folds into it, so equal
%% contexts are equal terms on every node (the states' `=:=' and bytes rely on it).
-module(plexus_crdt_ctx).

-export([merge/2, fold_cloud/1, next_dot/3, check_counter/2, covers/2, entry_ops/0]).

-define(MAX_COUNTER, 16#FFFFFFFFFFFFFFFF).

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
%% Linear in the cloud, and a cloud with nothing to fold is returned as it is (one pass
%% that builds nothing): the cloud can be large (deltas lost or arriving out of order,
%% or one hostile message: a valid 800 KB state with a cloud of 200,000 dots), and every
%% merge folds the joined context, every write the writer's. Sorting the cloud and
%% building it again took 0.6 s at 200,000 dots, on every merge and every write.
-spec fold_cloud(ctx()) -> ctx().
fold_cloud({_, Cloud} = Ctx) when map_size(Cloud) =:= 0 ->
    Ctx;
fold_cloud({VV, Cloud} = Ctx) ->
    case maps:fold(fun(Dot, _, Acc) -> fold_scan(Dot, VV, Acc) end, {[], []}, Cloud) of
        {[], []} ->
            Ctx;
        {Covered, Starts} ->
            %% Dropping the covered dots and then following each run up from the vector
            %% leaves what a walk in dot order leaves: the dots of A at or below its new
            %% counter are exactly the covered ones and the run.
            fold_runs(lists:usort(Starts), VV, maps:without(Covered, Cloud))
    end.

%% {Covered, Starts}: cloud dots the vector covers, actors whose next dot is in the cloud.
fold_scan({A, C} = Dot, VV, {Covered, Starts} = Acc) ->
    case maps:get(A, VV, 0) of
        X when C =< X -> {[Dot | Covered], Starts};
        X when C =:= X + 1 -> {Covered, [A | Starts]};
        _ -> Acc
    end.

fold_runs([A | As], VV, Cloud) ->
    {X, Cloud2} = fold_run(A, maps:get(A, VV, 0) + 1, Cloud),
    fold_runs(As, VV#{A => X}, Cloud2);
fold_runs([], VV, Cloud) ->
    {VV, Cloud}.

%% The counter the run of A's cloud dots from C reaches, and the cloud without the run.
fold_run(A, C, Cloud) ->
    case maps:take({A, C}, Cloud) of
        {true, Cloud2} -> fold_run(A, C + 1, Cloud2);
        error -> {C - 1, Cloud}
    end.

%% @doc The counter of a new dot of actor `A' and the context that has seen it: one
%% past every dot of `A' this replica has seen, the cloud included (a later delta of
%% `A' may have arrived before an earlier one: its counters are taken, the gap below
%% them is not). It continues the vector when it can, else it joins the cloud. Of a
%% canonical context: the new counter continues the vector only when the cloud holds
%% no dot of `A' (a dot just past the vector would have folded in), so the vector
%% takes it and there is nothing to fold. Throws `counter_exhausted' when `A' has
%% used its last counter (2^64 - 1).
-spec next_dot(binary(), #{binary() => pos_integer()}, #{{binary(), pos_integer()} => true}) ->
          {pos_integer(), ctx()}.
next_dot(A, VV, Cloud) ->
    Seen = maps:get(A, VV, 0),
    Top = case map_size(Cloud) of
              0 -> Seen;
              _ -> maps:fold(fun({A2, X}, _, Max) when A2 =:= A, X > Max -> X;
                                (_, _, Max) -> Max
                             end, Seen, Cloud)
          end,
    ok = check_counter(Top, 1),
    C = Top + 1,
    case C =:= Seen + 1 of
        true -> {C, {VV#{A => C}, Cloud}};
        false -> {C, {VV, Cloud#{{A, C} => true}}}
    end.

%% @doc `ok' when an actor whose highest counter is `Top' has `N' more: dot counters
%% are 64-bit in the binary and in the entry hash (at most 2^64 - 1). Throws
%% `counter_exhausted' when it has not, so an actor whose counters are used up takes
%% no more writes: only a context that claims its last counter (a forged one, from a
%% peer) gets it there, and the writers say so (`{error, counter_exhausted}') instead
%% of failing every later write as a bad state. A `Top' past the last counter is a
%% malformed context: `badarg'.
-spec check_counter(non_neg_integer(), non_neg_integer()) -> ok.
check_counter(Top, N) when Top =< ?MAX_COUNTER, Top + N =< ?MAX_COUNTER -> ok;
check_counter(Top, _) when Top =< ?MAX_COUNTER -> throw(counter_exhausted);
check_counter(_, _) -> erlang:error(badarg).

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
