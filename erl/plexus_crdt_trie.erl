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

-export_type([tnode/0, entry/0]).

-define(MAX_LEAF, 32).
-define(MAX_DEPTH, 32).
-define(MASK, 16#ffffffffffffffffffffffffffffffff).

-type entry() :: {binary(), term()}.
-type tnode() :: nil
               | {l, non_neg_integer(), pos_integer(), [entry(), ...]}
               | {b, non_neg_integer(), pos_integer(), tuple()}.
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
