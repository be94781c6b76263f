%% @private
%% @doc The canonical hash trie shared by plexus_orset2 and plexus_lwwmap.
%%
%% Entries are `{Key, Payload}' tuples, placed by `erlang:md5(Key)' (one nibble per
%% level, 16 children), at most `?MAX_LEAF' per leaf; a node's hash is the sum mod
%% 2^128 of the md5 of its entries' external terms. The shape depends only on the
%% entries, so equal contents give equal terms and bytes. What each entry means (an
%% OR-set element's dots, an LWW register's writes) stays in the CRDT module.
-module(plexus_crdt_trie).

-export([update/5, leaf/3, mk_leaf/1, build/2, branch/1, collapse/1,
         count/1, hash/1, ehash/1, nibble/2, collect/2]).
%% Anti-entropy plumbing: paths of nibbles, Merkle summaries, the diff step.
-export([split/2, at_path/2, in_path/2, nibbles/1, is_prefix/2, no_nested/1, valid_path/1,
         summarise/1, summary_hash/1, diff_one/5]).
%% The merge walk, given what merging entries means to the CRDT.
-export([merge_node/6, merge_at/7]).

-export_type([tnode/0, entry/0, node_summary/0, entry_ops/1]).

-define(MAX_LEAF, 32).
-define(MAX_DEPTH, 32).
%% Anti-entropy: subtrees this small are shipped rather than summarised, and a branch
%% with more differing children than ?DESCEND_MAX is shipped whole.
-define(SHIP_BELOW, 256).
-define(DESCEND_MAX, 8).
-define(MASK, 16#ffffffffffffffffffffffffffffffff).

-type entry() :: {binary(), term()}.
-type tnode() :: nil
               | {l, non_neg_integer(), pos_integer(), [entry(), ...]}
               | {b, non_neg_integer(), pos_integer(), tuple()}.
-type node_summary() :: nil | {leaf, non_neg_integer()} | {branch, non_neg_integer(), binary()}.
%% merge_entries(EntriesA, EntriesB, CtxA, CtxB) merges two sorted entry lists;
%% keep_unseen(Entries, OtherCtx) keeps what the other side has not yet seen.
-type entry_ops(Ctx) :: #{merge_entries := fun(([entry()], [entry()], Ctx, Ctx) -> [entry()]),
                          keep_unseen := fun(([entry()], Ctx) -> [entry()])}.
-type walk_node() :: tnode() | {b, 0, 0, tuple()}.
-type update_fun() :: fun((entry() | none) -> entry() | none).

%% @doc update(Node, Depth, KeyHash, Key, Fun) -> {Node2, HashDelta, CountDelta}:
%% Fun(OldEntry | none) gives the new entry or none; hashes and counts on the path are
%% adjusted by the deltas, and the node is reshaped (split / collapse) as the
%% canonical rule requires.
%% The empty leaf `{l, 0, 0, []}' is only the seed of an insert into nil.
-spec update(tnode() | {l, 0, 0, []}, non_neg_integer(), binary(), binary(), update_fun()) ->
          {tnode(), integer(), -1 | 0 | 1}.
update(nil, D, H, K, Fun) ->
    case Fun(none) of
        none -> {nil, 0, 0};
        New -> update({l, 0, 0, []}, D, H, K, fun(_) -> New end)
    end;
update({l, NH, C, Entries}, D, _H, K, Fun) ->
    Old = case lists:keyfind(K, 1, Entries) of
              false -> none;
              Found -> Found
          end,
    case {Old, Fun(Old)} of
        {none, none} ->
            {nil_if_empty({l, NH, C, Entries}), 0, 0};
        {_, none} ->
            DH = -ehash(Old),
            {leaf(NH + DH, C - 1, lists:keydelete(K, 1, Entries)), DH, -1};
        {none, New} ->
            DH = ehash(New),
            Node = leaf(NH + DH, C + 1, insert_sorted(New, Entries)),
            {split_if_big(Node, D), DH, 1};
        {_, New} ->
            DH = ehash(New) - ehash(Old),
            {leaf(NH + DH, C, lists:keyreplace(K, 1, Entries, New)), DH, 0}
    end;
update({b, NH, C, Ch}, D, H, K, Fun) ->
    I = nibble(H, D) + 1,
    {Child, DH, DC} = update(element(I, Ch), D + 1, H, K, Fun),
    Ch2 = setelement(I, Ch, Child),
    case C + DC of
        C2 when C2 =< ?MAX_LEAF -> {collapse(Ch2), DH, DC};
        C2 -> {{b, (NH + DH) band ?MASK, C2, Ch2}, DH, DC}
    end.

%% @doc A leaf from a hash sum, a count and sorted entries (nil when empty).
-spec leaf(integer(), non_neg_integer(), [entry()]) -> tnode().
leaf(_, 0, []) -> nil;
leaf(H, C, Entries) -> {l, H band ?MASK, C, Entries}.

nil_if_empty({l, _, 0, []}) -> nil;
nil_if_empty(Node) -> Node.

insert_sorted({K, _} = New, [{K2, _} = X | T]) when K2 < K -> [X | insert_sorted(New, T)];
insert_sorted(New, L) -> [New | L].

split_if_big({l, _, C, Entries}, D) when C > ?MAX_LEAF, D < ?MAX_DEPTH ->
    build(D, [{erlang:md5(K), En} || {K, _} = En <- Entries]);
split_if_big(Node, _) ->
    Node.

%% @doc A branch whose subtree shrank to ?MAX_LEAF entries or fewer becomes a leaf.
-spec collapse(tuple()) -> tnode().
collapse(Ch) ->
    case lists:sort(lists:append([collect(N, []) || N <- tuple_to_list(Ch)])) of
        [] -> nil;
        Entries -> mk_leaf(Entries)
    end.

%% @doc Canonical node for [{KeyHash, Entry}] sorted by key, all below one path.
-spec build(non_neg_integer(), [{binary(), entry()}]) -> tnode().
build(_, []) ->
    nil;
build(D, Hashed) ->
    N = length(Hashed),
    case N =< ?MAX_LEAF orelse D >= ?MAX_DEPTH of
        true ->
            mk_leaf([En || {_, En} <- Hashed]);
        false ->
            Buckets = lists:foldr(fun({H, _} = X, Acc) ->
                                          I = nibble(H, D) + 1,
                                          setelement(I, Acc, [X | element(I, Acc)])
                                  end, erlang:make_tuple(16, []), Hashed),
            branch(list_to_tuple([build(D + 1, B) || B <- tuple_to_list(Buckets)]))
    end.

%% @doc A branch from children that are already canonical; collapses when small.
-spec branch(tuple()) -> tnode().
branch(Ch) ->
    Kids = tuple_to_list(Ch),
    case lists:sum([count(N) || N <- Kids]) of
        C when C =< ?MAX_LEAF -> collapse(Ch);
        C -> {b, lists:foldl(fun(N, A) -> A + hash(N) end, 0, Kids) band ?MASK, C, Ch}
    end.

%% @doc A leaf holding exactly these sorted entries (nil when none).
-spec mk_leaf([entry()]) -> tnode().
mk_leaf([]) -> nil;
mk_leaf(Entries) ->
    leaf(lists:foldl(fun(En, A) -> A + ehash(En) end, 0, Entries), length(Entries), Entries).

-spec count(tnode()) -> non_neg_integer().
count(nil) -> 0;
count({_, _, C, _}) -> C.

-spec hash(tnode()) -> non_neg_integer().
hash(nil) -> 0;
hash({_, H, _, _}) -> H.

%% @doc The 128-bit hash an entry contributes to every node above it.
-spec ehash(entry()) -> non_neg_integer().
ehash(Entry) ->
    <<X:128>> = erlang:md5(term_to_binary(Entry)),
    X.

%% @doc Nibble D of a key hash: the child index at depth D.
-spec nibble(bitstring(), non_neg_integer()) -> 0..15.
nibble(H, D) ->
    <<_:D/unit:4, N:4, _/bitstring>> = H,
    N.

%% @doc Entries below a node, appended to Acc, in trie order.
-spec collect(tnode(), [entry()]) -> [entry()].
collect(nil, Acc) -> Acc;
collect({l, _, _, Entries}, Acc) -> Entries ++ Acc;
collect({b, _, _, Ch}, Acc) -> lists:foldr(fun collect/2, Acc, tuple_to_list(Ch)).

%% ---------------------------------------------------------------- anti-entropy

%% @doc A leaf seen as a (non-canonical) branch, to merge with a branch.
-spec split(tnode(), non_neg_integer()) -> {b, 0, 0, tuple()}.
split({l, _, _, Entries}, D) ->
    Buckets = lists:foldr(fun({E, _} = En, Acc) ->
                                  I = nibble(erlang:md5(E), D) + 1,
                                  setelement(I, Acc, [En | element(I, Acc)])
                          end, erlang:make_tuple(16, []), Entries),
    {b, 0, 0, list_to_tuple([mk_leaf(B) || B <- tuple_to_list(Buckets)])}.

%% @doc The node at a path of nibbles (for a leaf above it, the part below the path).
-spec at_path(tnode(), binary()) -> tnode().
at_path(Node, P) ->
    at_path(Node, P, P).

at_path(Node, <<>>, _) -> Node;
at_path({b, _, _, Ch}, <<I, Rest/binary>>, Full) -> at_path(element(I + 1, Ch), Rest, Full);
%% A leaf or empty node above the path: the part of it below the path. Entries are
%% placed by the whole path from the root, so the filter takes the whole path, not
%% the part left below the leaf.
at_path(nil, _, _) -> nil;
at_path({l, _, _, _} = Leaf, _, Full) -> sub_leaf(Leaf, Full).

sub_leaf({l, _, _, Entries}, P) ->
    mk_leaf([En || {E, _} = En <- Entries, in_path(erlang:md5(E), P)]).

-spec in_path(binary(), binary()) -> boolean().
in_path(K, P) ->
    binary:part(nibbles(K), 0, byte_size(P)) =:= P.

%% The key hash as a path: one byte per nibble.
-spec nibbles(binary()) -> binary().
nibbles(K) ->
    << <<N>> || <<N:4>> <= K >>.

-spec is_prefix(binary(), binary()) -> boolean().
is_prefix(Q, P) ->
    byte_size(Q) < byte_size(P) andalso binary:part(P, 0, byte_size(Q)) =:= Q.

%% Sorted paths: a prefix of a path sorts just before it and every path between them
%% shares that prefix, so comparing neighbours finds any nesting.
-spec no_nested([binary()]) -> boolean().
no_nested([Q, P | T]) -> not is_prefix(Q, P) andalso no_nested([P | T]);
no_nested(_) -> true.

-spec valid_path(term()) -> boolean().
valid_path(P) when is_binary(P), byte_size(P) =< ?MAX_DEPTH ->
    lists:all(fun(I) -> I < 16 end, binary_to_list(P));
valid_path(_) ->
    false.

%% A subtree of at most ?SHIP_BELOW entries is summarised by its hash alone, as a
%% leaf: shipping it costs about what more summaries would. A branch lists its 16
%% child hashes truncated to 64 bits (enough to tell honest differences apart).
-spec summarise(tnode()) -> node_summary().
summarise(nil) -> nil;
summarise({l, H, _, _}) -> {leaf, H};
summarise({b, H, C, _}) when C =< ?SHIP_BELOW -> {leaf, H};
summarise({b, H, _, Ch}) -> {branch, H, << <<(hash(N)):64>> || N <- tuple_to_list(Ch) >>}.

-spec summary_hash(node_summary()) -> non_neg_integer().
summary_hash(nil) -> 0;
summary_hash({leaf, H}) -> H;
summary_hash({branch, H, _}) -> H.

%% @doc One step of diff: equal hashes stop, a few differing children descend, else ship.
-spec diff_one(binary(), node_summary(), node_summary(), [binary()], [binary()]) ->
          {[binary()], [binary()]}.
diff_one(P, Local, Remote, D, S) ->
    case summary_hash(Local) =:= summary_hash(Remote) of
        true ->
            {D, S};
        false ->
            case {Local, Remote} of
                {{branch, _, LC}, {branch, _, RC}} when byte_size(RC) =:= 128 ->
                    Kids = [<<P/binary, I>> || I <- lists:seq(0, 15),
                                              binary:part(LC, I * 8, 8) =/=
                                                  binary:part(RC, I * 8, 8)],
                    case length(Kids) > ?DESCEND_MAX of
                        %% Most of the subtree differs: summaries would cost more than
                        %% they save, ship it whole.
                        true -> {D, [P | S]};
                        false -> {Kids ++ D, S}
                    end;
                _ ->
                    {D, [P | S]}
            end
    end.

%% ---------------------------------------------------------------- merge walk

%% @doc Merges two canonical nodes at depth D. Entries only one side has go through
%% keep_unseen (against the other side's context), entries both have through
%% merge_entries; an entry with the same payload on both sides keeps it whatever the
%% contexts, so equal subtrees merge to themselves and are skipped.
%% A split leaf (`{b, 0, 0, Ch}') may stand for a node while merging.
-spec merge_node(walk_node(), walk_node(), non_neg_integer(), Ctx, Ctx, entry_ops(Ctx)) ->
          tnode().
merge_node(nil, nil, _, _, _, _) ->
    nil;
merge_node(nil, B, D, CA, _, Ops) ->
    filter(B, D, CA, Ops);
merge_node(A, nil, D, _, CB, Ops) ->
    filter(A, D, CB, Ops);
merge_node({_, H, C, _} = A, {_, H, C, _}, _, _, _, _) ->
    A;
merge_node({l, _, _, EA}, {l, _, _, EB}, D, CA, CB, #{merge_entries := Merge}) ->
    Merged = Merge(EA, EB, CA, CB),
    build(D, [{erlang:md5(K), En} || {K, _} = En <- Merged]);
merge_node({l, _, _, _} = A, B, D, CA, CB, Ops) ->
    merge_node(split(A, D), B, D, CA, CB, Ops);
merge_node(A, {l, _, _, _} = B, D, CA, CB, Ops) ->
    merge_node(A, split(B, D), D, CA, CB, Ops);
merge_node({b, _, _, ChA}, {b, _, _, ChB}, D, CA, CB, Ops) ->
    branch(list_to_tuple(
             lists:zipwith(fun(X, Y) -> merge_node(X, Y, D + 1, CA, CB, Ops) end,
                           tuple_to_list(ChA), tuple_to_list(ChB)))).

filter(nil, _, _, _) ->
    nil;
filter({l, _, _, Entries} = Leaf, D, Other, #{keep_unseen := Keep}) ->
    case Keep(Entries, Other) of
        Entries -> Leaf;
        Kept -> build(D, [{erlang:md5(K), En} || {K, _} = En <- Kept])
    end;
filter({b, _, _, Ch} = Node, D, Other, Ops) ->
    Kids = [filter(N, D + 1, Other, Ops) || N <- tuple_to_list(Ch)],
    case list_to_tuple(Kids) of
        Ch -> Node;
        Ch2 -> branch(Ch2)
    end.

%% @doc Merges Node (canonical at depth byte_size(P)) into the tree at path P.
-spec merge_at(walk_node(), non_neg_integer(), binary(), tnode(), Ctx, Ctx,
               entry_ops(Ctx)) -> tnode().
merge_at(Tree, D, P, Node, CL, CR, Ops) when D =:= byte_size(P) ->
    merge_node(Tree, Node, D, CL, CR, Ops);
merge_at({b, _, _, Ch}, D, P, Node, CL, CR, Ops) ->
    I = binary:at(P, D) + 1,
    branch(setelement(I, Ch, merge_at(element(I, Ch), D + 1, P, Node, CL, CR, Ops)));
merge_at(nil, D, P, Node, CL, CR, Ops) ->
    merge_at({b, 0, 0, erlang:make_tuple(16, nil)}, D, P, Node, CL, CR, Ops);
merge_at({l, _, _, _} = Leaf, D, P, Node, CL, CR, Ops) ->
    merge_at(split(Leaf, D), D, P, Node, CL, CR, Ops).
