%% @private
%% @doc The canonical hash trie shared by plexus_orset2 and plexus_lwwmap.
%%
%% Entries are `{Key, Payload}' tuples, placed by the 32-bit key hash
%% `erlang:phash2(Key, 1 bsl 32)' (one nibble per level, high nibble first, 16
%% children), at most `?MAX_LEAF' per leaf; a node's hash is the sum mod 2^56 of its
%% entries' 56-bit hashes (`ehash/1', plexus's own hash computed in C). The shape depends only
%% on the entries, so equal contents give equal terms and bytes. What each entry means
%% (an OR-set element's dots, an LWW register's writes) stays in the CRDT module.
%%
%% Why phash2 for placing keys: it is documented as the same for the same term on
%% every machine and every ERTS version (so two nodes build the same trie), and it
%% costs a tenth of `erlang:md5/1' of the external term that v2 used first, which
%% dominated every single op. Why our own entry hash: the full merge walks the tries
%% in C (c_src/nif/nif_trie.c) and must hash the entries it changes there, which a NIF
%% cannot do with phash2/2; the C hash is also a third of the two phash2 it replaced.
%% Neither is collision resistant against crafted keys; the hashes only tell honest
%% differences apart (see include/plexus/crdt_format.md).
-module(plexus_crdt_trie).

-export([update/5, lookup/4, leaf/3, mk_leaf/1, build/2, from_decoded/1, branch/1, collapse/1,
         count/1, hash/1, ehash/1, khash/1, nibble/2, collect/2, find/2, get_entry/3,
         entries/1, sorted/1, sorted_keys/1]).
%% Anti-entropy plumbing: paths of nibbles, Merkle summaries, the diff step.
-export([split/2, at_path/2, in_path/2, nibbles/1, is_prefix/2, no_nested/1, valid_path/1,
         summarise/1, summary_hash/1, diff_one/5]).
%% The merge walk, given what merging entries means to the CRDT.
-export([merge_node/6, merge_at/7, merge_native/6, merge_small/7]).

-export_type([tnode/0, entry/0, node_summary/0, entry_ops/1, native_merge/1]).

-define(MAX_LEAF, 32).
%% The key hash has 32 bits: 8 levels of 16 children. Below them only keys whose
%% 32-bit hashes collide share a leaf, which may then exceed ?MAX_LEAF.
-define(MAX_DEPTH, 8).
%% Anti-entropy: subtrees this small are shipped rather than summarised, and a branch
%% with more differing children than ?DESCEND_MAX is shipped whole.
-define(SHIP_BELOW, 256).
-define(DESCEND_MAX, 8).
%% Node hashes are sums mod 2^56 of 56-bit entry hashes: small integers (no bignum
%% arithmetic on the path of a single op), and 56 bits keep honest collisions rare.
-define(MASK, 16#ffffffffffffff).
-define(HALF, (1 bsl 28)).

-type entry() :: {binary(), term()}.
%% A leaf is `{l, Hash, Count, Frags, Hashes, Entries}': Entries the tuple of its
%% entries, Hashes the tuple of their 56-bit hashes (`ehash/1', small integers held in
%% the tuple itself) and Frags a binary of their 16-bit key fragments
%% (`khash(Key) band 16#ffff'), both in entry order. Entries are sorted by fragment,
%% then by key: any order fixed by the contents is canonical, and this one lets a
%% lookup find an entry, or where a new one goes, from the fragments alone. Frags
%% takes 64 bytes for 32 entries, so it is a heap binary next to the tuples. In a
%% large state every term a lookup touches is a cache miss: a lookup scans the
%% fragments (one or two cache lines) and touches only the entry whose fragment
%% matches, where a binary search by key touched ~5 entries and their keys (a fifth of
%% an insert's time), and a merge walk orders two leaves' entries by their fragments,
%% reading keys only where fragments are equal. The hashes let a merge walk compare two entries as it compares two subtrees,
%% without touching either entry (the deep compare of two equal entries built apart
%% was two thirds of a full merge), and an op that replaces or removes an entry
%% subtracts the old hash without hashing the old entry again. Three flat parts
%% rather than one tuple holding the others: an insert or a delete copies each tuple
%% once (one BIF each), where a nested index would be copied twice.
-type tnode() :: nil
               | {l, non_neg_integer(), pos_integer(), binary(), tuple(), tuple()}
               | {b, non_neg_integer(), pos_integer(), tuple()}.
-type node_summary() :: nil | {leaf, non_neg_integer()} | {branch, non_neg_integer(), binary()}.
%% merge_entries(EntriesA, EntriesB, CtxA, CtxB) merges two sorted entry lists;
%% keep_unseen(Entries, OtherCtx) keeps what the other side has not yet seen.
-type entry_ops(Ctx) :: #{merge_entries := fun(([entry()], [entry()], Ctx, Ctx) -> [entry()]),
                          keep_unseen := fun(([entry()], Ctx) -> [entry()])}.
-type walk_node() :: tnode() | {b, 0, 0, tuple()}.
%% A NIF that merges two nodes at a depth (c_src/nif/nif_trie.c).
-type native_merge(Ctx) :: fun((tnode(), tnode(), Ctx, Ctx, non_neg_integer()) ->
                                  tnode() | fallback | {error, term()}).
%% A change: a fun of the old entry (or none), or, when the new entry does not depend
%% on the old one, the new entry (or none) itself, which spares the closure.
-type change() :: fun((entry() | none) -> entry() | none) | entry() | none.

%% @doc update(Node, Depth, KeyHash, Key, Change) -> {Node2, HashDelta, CountDelta}:
%% Change(OldEntry | none) (or Change itself, see change()) gives the new entry or none;
%% hashes and counts on the path are adjusted by the deltas, and the node is reshaped
%% (split / collapse) as the canonical rule requires.
%% The empty leaf `{l, 0, 0, <<>>, {}, {}}' is only the seed of an insert into nil.
-spec update(tnode() | {l, 0, 0, <<>>, {}, {}}, non_neg_integer(), non_neg_integer(), binary(),
             change()) ->
          {tnode(), integer(), -1 | 0 | 1}.
update(nil, D, H, K, Change) ->
    case change(Change, none) of
        none -> {nil, 0, 0};
        New -> update({l, 0, 0, <<>>, {}, {}}, D, H, K, New)
    end;
update({l, NH, C, Frags, Hs, T} = Leaf, D, H, K, Change) ->
    case find(Leaf, K, H) of
        I when I > 0 ->
            Old = element(I, T),
            OldH = element(I, Hs),
            case change(Change, Old) of
                none ->
                    %% Sized first segments: see frags_without/2.
                    {leaf_t(NH - OldH, C - 1, frags_without(Frags, I),
                            erlang:delete_element(I, Hs), erlang:delete_element(I, T)),
                     -OldH, -1};
                {K, _} = New ->
                    EH = ehash(New),
                    {leaf_t(NH + EH - OldH, C, Frags, setelement(I, Hs, EH), setelement(I, T, New)),
                     EH - OldH, 0}
            end;
        I ->
            case change(Change, none) of
                none ->
                    {nil_if_empty(Leaf), 0, 0};
                {K, _} = New ->
                    EH = ehash(New),
                    Node = leaf_t(NH + EH, C + 1, frags_with(Frags, -I, frag(H)),
                                  erlang:insert_element(-I, Hs, EH),
                                  erlang:insert_element(-I, T, New)),
                    {split_if_big(Node, D), EH, 1}
            end
    end;
update({b, NH, C, Ch}, D, H, K, Change) ->
    I = nibble(H, D) + 1,
    {Child, DH, DC} = update(element(I, Ch), D + 1, H, K, Change),
    Ch2 = setelement(I, Ch, Child),
    H2 = (NH + DH) band ?MASK,
    case C + DC of
        %% The collapsed leaf holds the same entries: its hash is the branch's.
        C2 when C2 =< ?MAX_LEAF -> {leaf_pairs(H2, C2, collect_pairs(Ch2)), DH, DC};
        C2 -> {{b, H2, C2, Ch2}, DH, DC}
    end.

%% @doc The entry with key K (key hash H) below a node at depth D, or false.
-spec lookup(tnode(), non_neg_integer(), non_neg_integer(), binary()) -> entry() | false.
lookup(nil, _, _, _) ->
    false;
lookup({l, _, _, _, _, _} = Leaf, _, H, K) ->
    get_entry(Leaf, K, H);
lookup({b, _, _, Ch}, D, H, K) ->
    lookup(element(nibble(H, D) + 1, Ch), D + 1, H, K).

%% @doc A leaf from a hash sum, a count and entries (nil when empty).
-spec leaf(integer(), non_neg_integer(), [entry()]) -> tnode().
leaf(H, C, Entries) ->
    leaf_pairs(H, C, [{En, ehash(En)} || En <- Entries]).

%% A leaf from a hash sum, a count and [{Entry, EntryHash}] in any order.
leaf_pairs(_, 0, []) -> nil;
leaf_pairs(H, C, Pairs) ->
    leaf_sorted(H, C, lists:sort([{frag(khash(K)), K, En, EH} || {{K, _} = En, EH} <- Pairs])).

%% A leaf from a hash sum, a count and [{Frag, Key, Entry, EntryHash}] sorted.
leaf_sorted(H, C, Sorted) ->
    %% Not a binary comprehension over the entries: one whose segment calls a
    %% function appends to a writable binary (see frags_without/2).
    Frags = list_to_binary([<<F:16>> || {F, _, _, _} <- Sorted]),
    leaf_t(H, C, Frags, list_to_tuple([EH || {_, _, _, EH} <- Sorted]),
           list_to_tuple([En || {_, _, En, _} <- Sorted])).

leaf_t(_, 0, _, _, _) -> nil;
leaf_t(H, C, Frags, Hs, T) -> {l, H band ?MASK, C, Frags, Hs, T}.

change(Fun, Old) when is_function(Fun, 1) -> Fun(Old);
change(New, _) -> New.

%% The fragments without entry I's, and with fragment F inserted as entry I's. Written
%% with a sized first segment on purpose: `<<Pre/binary, ...>>' compiles to an append,
%% and an append to a binary that is not writable makes a new writable binary of at
%% least 256 bytes off the heap, so every leaf an insert or a remove touched held a
%% refc binary (more garbage, an off-heap hop on every later lookup). These are heap
%% binaries of at most 64 bytes, stored next to the leaf as the format intends.
frags_without(Frags, I) ->
    N = 2 * (I - 1),
    <<Pre:N/binary, _:16, Post/binary>> = Frags,
    <<Pre:N/binary, Post/binary>>.

frags_with(Frags, I, F) ->
    N = 2 * (I - 1),
    <<Pre:N/binary, Post/binary>> = Frags,
    <<Pre:N/binary, F:16, Post/binary>>.

nil_if_empty({l, _, 0, _, _, _}) -> nil;
nil_if_empty(Node) -> Node.

frag(H) -> H band 16#ffff.

%% @doc A leaf's entries, sorted by key (the order the CRDTs merge entry lists in).
-spec entries(tnode()) -> [entry()].
entries({l, _, _, _, _, T}) ->
    lists:sort(tuple_to_list(T)).

%% @doc The index of the entry with key K in a leaf (element I of its entries), or
%% minus the index where it would be inserted.
-spec find(tnode(), binary()) -> integer().
find(Leaf, K) ->
    find(Leaf, K, khash(K)).

find({l, _, _, Frags, _, T}, K, H) ->
    scan(Frags, frag(H), 1, T, K).

%% @doc The entry with key K (whose key hash is H) in a leaf, or false.
-spec get_entry(tnode(), binary(), non_neg_integer()) -> entry() | false.
get_entry({l, _, _, Frags, _, T}, K, H) ->
    case scan(Frags, frag(H), 1, T, K) of
        I when I > 0 -> element(I, T);
        _ -> false
    end.

%% The fragments are sorted: entries with smaller fragments are passed over four per
%% step (one match of the binary instead of four), and only entries whose fragment
%% equals F are touched, in key order; the first greater one is where K would go.
scan(<<_:48, F3:16, Rest/binary>>, F, I, T, K) when F3 < F ->
    scan(Rest, F, I + 4, T, K);
scan(<<F:16, Rest/binary>>, F, I, T, K) ->
    case element(I, T) of
        {K, _} -> I;
        {K2, _} when K2 < K -> scan(Rest, F, I + 1, T, K);
        _ -> -I
    end;
scan(<<G:16, Rest/binary>>, F, I, T, K) when G < F ->
    scan(Rest, F, I + 1, T, K);
scan(_, _, I, _, _) ->
    -I.

split_if_big({l, _, C, _, _, _} = Leaf, D) when C > ?MAX_LEAF, D < ?MAX_DEPTH ->
    %% The entries' hashes are at hand in the leaf: not hashed again.
    build_hashed(D, [{khash(K), En, EH} || {{K, _} = En, EH} <- pairs(Leaf, [])]);
split_if_big(Node, _) ->
    Node.

%% @doc A branch whose subtree shrank to ?MAX_LEAF entries or fewer becomes a leaf.
-spec collapse(tuple()) -> tnode().
collapse(Ch) ->
    Kids = tuple_to_list(Ch),
    leaf_pairs(lists:foldl(fun(N, A) -> A + hash(N) end, 0, Kids),
               lists:sum([count(N) || N <- Kids]), collect_pairs(Ch)).

%% [{Entry, EntryHash}] below the children Ch (hashes from the leaves' indexes).
collect_pairs(Ch) ->
    lists:foldl(fun pairs_below/2, [], tuple_to_list(Ch)).

pairs_below(nil, Acc) -> Acc;
pairs_below({l, _, _, _, _, _} = Leaf, Acc) -> pairs(Leaf, Acc);
pairs_below({b, _, _, Ch}, Acc) -> lists:foldl(fun pairs_below/2, Acc, tuple_to_list(Ch)).

%% A leaf's [{Entry, EntryHash}] in entry order, before Acc.
pairs({l, _, _, _, Hs, T}, Acc) ->
    pairs(T, Hs, tuple_size(T), Acc).

pairs(_, _, 0, Acc) -> Acc;
pairs(T, Hs, I, Acc) -> pairs(T, Hs, I - 1, [{element(I, T), element(I, Hs)} | Acc]).

%% @doc Canonical node for [{KeyHash, Entry}] (any order), all below one path.
%% One pass per level: each level deals the entries into 16 buckets (one accumulator
%% argument per child, so no tuple is copied per entry); each leaf sorts its own
%% entries (at most ?MAX_LEAF, except at depth ?MAX_DEPTH).
-spec build(non_neg_integer(), [{non_neg_integer(), entry()}]) -> tnode().
build(_, []) ->
    nil;
build(D, Hashed) ->
    build_hashed(D, [{KH, En, ehash(En)} || {KH, En} <- Hashed]).

%% @doc The canonical root of entries given with their entry hashes, `[{Entry,
%% EntryHash}]' in any order, as `plexus_nif:trie_decode/1' returns them: the key
%% hashes are computed here (`erlang:phash2/2' has no C counterpart), the nodes made in
%% C (`plexus_nif:trie_build/2', the nodes build/2 makes; PropEr-checked through every
%% from_binary/1 round trip).
-spec from_decoded([{entry(), non_neg_integer()}]) -> tnode().
from_decoded(Pairs) ->
    case plexus_nif:trie_build(0, [{khash(K), En, EH} || {{K, _} = En, EH} <- Pairs]) of
        {error, _} -> error(badarg);
        Node -> Node
    end.

%% build/2 of [{KeyHash, Entry, EntryHash}].
build_hashed(_, []) ->
    nil;
build_hashed(D, Hashed) ->
    build(D, Hashed, length(Hashed)).

build(_, [], _) ->
    nil;
build(D, Hashed, N) when N =< ?MAX_LEAF; D >= ?MAX_DEPTH ->
    %% The key hashes are at hand: the fragments come from them.
    leaf_sorted(lists:foldl(fun({_, _, EH}, A) -> A + EH end, 0, Hashed), N,
                lists:sort([{frag(KH), K, En, EH} || {KH, {K, _} = En, EH} <- Hashed]));
build(D, Hashed, _) ->
    Buckets = partition(Hashed, 28 - 4 * D, [], [], [], [], [], [], [], [],
                        [], [], [], [], [], [], [], []),
    branch(list_to_tuple([build(D + 1, B, length(B)) || B <- tuple_to_list(Buckets)])).

%% Deals [{KeyHash, Entry}] into the 16 children at the depth whose nibble is at bit
%% Shift (each bucket reversed).
partition([{H, _, _} = X | T], Shift, A0, A1, A2, A3, A4, A5, A6, A7,
          A8, A9, A10, A11, A12, A13, A14, A15) ->
    case (H bsr Shift) band 15 of
        0 -> partition(T, Shift, [X | A0], A1, A2, A3, A4, A5, A6, A7,
                       A8, A9, A10, A11, A12, A13, A14, A15);
        1 -> partition(T, Shift, A0, [X | A1], A2, A3, A4, A5, A6, A7,
                       A8, A9, A10, A11, A12, A13, A14, A15);
        2 -> partition(T, Shift, A0, A1, [X | A2], A3, A4, A5, A6, A7,
                       A8, A9, A10, A11, A12, A13, A14, A15);
        3 -> partition(T, Shift, A0, A1, A2, [X | A3], A4, A5, A6, A7,
                       A8, A9, A10, A11, A12, A13, A14, A15);
        4 -> partition(T, Shift, A0, A1, A2, A3, [X | A4], A5, A6, A7,
                       A8, A9, A10, A11, A12, A13, A14, A15);
        5 -> partition(T, Shift, A0, A1, A2, A3, A4, [X | A5], A6, A7,
                       A8, A9, A10, A11, A12, A13, A14, A15);
        6 -> partition(T, Shift, A0, A1, A2, A3, A4, A5, [X | A6], A7,
                       A8, A9, A10, A11, A12, A13, A14, A15);
        7 -> partition(T, Shift, A0, A1, A2, A3, A4, A5, A6, [X | A7],
                       A8, A9, A10, A11, A12, A13, A14, A15);
        8 -> partition(T, Shift, A0, A1, A2, A3, A4, A5, A6, A7,
                       [X | A8], A9, A10, A11, A12, A13, A14, A15);
        9 -> partition(T, Shift, A0, A1, A2, A3, A4, A5, A6, A7,
                       A8, [X | A9], A10, A11, A12, A13, A14, A15);
        10 -> partition(T, Shift, A0, A1, A2, A3, A4, A5, A6, A7,
                       A8, A9, [X | A10], A11, A12, A13, A14, A15);
        11 -> partition(T, Shift, A0, A1, A2, A3, A4, A5, A6, A7,
                       A8, A9, A10, [X | A11], A12, A13, A14, A15);
        12 -> partition(T, Shift, A0, A1, A2, A3, A4, A5, A6, A7,
                       A8, A9, A10, A11, [X | A12], A13, A14, A15);
        13 -> partition(T, Shift, A0, A1, A2, A3, A4, A5, A6, A7,
                       A8, A9, A10, A11, A12, [X | A13], A14, A15);
        14 -> partition(T, Shift, A0, A1, A2, A3, A4, A5, A6, A7,
                       A8, A9, A10, A11, A12, A13, [X | A14], A15);
        15 -> partition(T, Shift, A0, A1, A2, A3, A4, A5, A6, A7,
                       A8, A9, A10, A11, A12, A13, A14, [X | A15])
    end;
partition([], _, A0, A1, A2, A3, A4, A5, A6, A7,
          A8, A9, A10, A11, A12, A13, A14, A15) ->
    {A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15}.

%% @doc A branch from children that are already canonical; collapses when small.
-spec branch(tuple()) -> tnode().
branch(Ch) ->
    Kids = tuple_to_list(Ch),
    H = lists:foldl(fun(N, A) -> A + hash(N) end, 0, Kids) band ?MASK,
    case lists:sum([count(N) || N <- Kids]) of
        C when C =< ?MAX_LEAF -> leaf_pairs(H, C, collect_pairs(Ch));
        C -> {b, H, C, Ch}
    end.

%% @doc A leaf holding exactly these sorted entries (nil when none).
-spec mk_leaf([entry()]) -> tnode().
mk_leaf([]) -> nil;
mk_leaf(Entries) ->
    Pairs = [{En, ehash(En)} || En <- Entries],
    leaf_pairs(lists:foldl(fun({_, EH}, A) -> A + EH end, 0, Pairs), length(Entries), Pairs).

-spec count(tnode()) -> non_neg_integer().
count(nil) -> 0;
count(Node) -> element(3, Node).

-spec hash(tnode()) -> non_neg_integer().
hash(nil) -> 0;
hash(Node) -> element(2, Node).

%% @doc The 56-bit hash an entry contributes to every node above it: the stream hash
%% of c_src/core/crdt_trie.c over the entry's binaries, integers, tuples and lists
%% (defined byte for byte in include/plexus/crdt_format.md). The C merge walk hashes
%% the entries it changes with the same function, so both walks sum the same hashes.
%% An entry holding any other kind of term raises `badarg'.
-spec ehash(entry()) -> non_neg_integer().
ehash(Entry) ->
    plexus_nif:trie_hash(Entry).

%% @doc The key hash that places a key: 32 bits, stable across nodes and releases.
-spec khash(binary()) -> non_neg_integer().
khash(K) ->
    erlang:phash2(K, 1 bsl 32).

%% @doc Nibble D of a key hash (high nibble first): the child index at depth D.
-spec nibble(non_neg_integer(), non_neg_integer()) -> 0..15.
nibble(H, D) ->
    (H bsr (28 - 4 * D)) band 15.

%% @doc The entries below a node sorted by key (bytewise), for readers and writers of
%% the whole state. Sorting is most of their cost: keys of 1 to 7 bytes (small
%% integers, short atoms and tuples) are sorted as small integers that keep their
%% bytewise order (the key zero-padded to 7 bytes, then its length: a prefix sorts
%% first), which compare inline; longer keys are sorted as binaries and merged in.
-spec sorted(tnode()) -> [entry()].
sorted(Node) ->
    {Short, Long} = split_entries(Node, [], []),
    merge_long([{int_key(I), P} || {I, P} <- lists:keysort(1, Short)], Long).

%% @doc The keys below a node, sorted bytewise (as the keys of `sorted/1').
-spec sorted_keys(tnode()) -> [binary()].
sorted_keys(Node) ->
    {Short, Long} = split_keys(Node, [], []),
    merge_long([int_key(I) || I <- lists:sort(Short)], Long).

merge_long(Short, []) -> Short;
merge_long(Short, Long) -> lists:merge(Short, lists:sort(Long)).

%% Short keys as ordered integers ({Int, Payload}), the other entries as they are.
split_entries(nil, S, L) ->
    {S, L};
split_entries({l, _, _, _, _, T}, S, L) ->
    split_leaf(T, tuple_size(T), S, L);
split_entries({b, _, _, Ch}, S, L) ->
    lists:foldl(fun(N, {S1, L1}) -> split_entries(N, S1, L1) end, {S, L}, tuple_to_list(Ch)).

split_leaf(_, 0, S, L) ->
    {S, L};
split_leaf(T, I, S, L) ->
    case element(I, T) of
        {K, P} when byte_size(K) >= 1, byte_size(K) =< 7 ->
            split_leaf(T, I - 1, [{key_int(K), P} | S], L);
        En ->
            split_leaf(T, I - 1, S, [En | L])
    end.

split_keys(nil, S, L) ->
    {S, L};
split_keys({l, _, _, _, _, T}, S, L) ->
    split_leaf_keys(T, tuple_size(T), S, L);
split_keys({b, _, _, Ch}, S, L) ->
    lists:foldl(fun(N, {S1, L1}) -> split_keys(N, S1, L1) end, {S, L}, tuple_to_list(Ch)).

split_leaf_keys(_, 0, S, L) ->
    {S, L};
split_leaf_keys(T, I, S, L) ->
    case element(I, T) of
        {K, _} when byte_size(K) >= 1, byte_size(K) =< 7 ->
            split_leaf_keys(T, I - 1, [key_int(K) | S], L);
        {K, _} ->
            split_leaf_keys(T, I - 1, S, [K | L])
    end.

%% A key of 1 to 7 bytes as an integer below 2^59 (a small integer) in bytewise order:
%% the key zero-padded to 7 bytes, times 8, plus its length minus one.
key_int(K) ->
    Len = byte_size(K),
    (binary:decode_unsigned(K) bsl (8 * (7 - Len) + 3)) bor (Len - 1).

int_key(I) ->
    Len = (I band 7) + 1,
    <<(I bsr (8 * (7 - Len) + 3)):(8 * Len)>>.

%% @doc Entries below a node, appended to Acc, in trie order (not sorted).
-spec collect(tnode(), [entry()]) -> [entry()].
collect(nil, Acc) -> Acc;
collect({l, _, _, _, _, T}, Acc) -> tuple_to_list(T) ++ Acc;
collect({b, _, _, Ch}, Acc) -> lists:foldr(fun collect/2, Acc, tuple_to_list(Ch)).

%% ---------------------------------------------------------------- anti-entropy

%% @doc A leaf seen as a (non-canonical) branch, to merge with a branch.
-spec split(tnode(), non_neg_integer()) -> {b, 0, 0, tuple()}.
split({l, _, _, _, _, _} = Leaf, D) ->
    Buckets = lists:foldr(fun({E, _} = En, Acc) ->
                                  I = nibble(khash(E), D) + 1,
                                  setelement(I, Acc, [En | element(I, Acc)])
                          end, erlang:make_tuple(16, []), entries(Leaf)),
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
at_path({l, _, _, _, _, _} = Leaf, _, Full) -> sub_leaf(Leaf, Full).

sub_leaf(Leaf, P) ->
    mk_leaf([En || {E, _} = En <- entries(Leaf), in_path(khash(E), P)]).

-spec in_path(non_neg_integer(), binary()) -> boolean().
in_path(K, P) ->
    binary:part(nibbles(K), 0, byte_size(P)) =:= P.

%% The key hash as a path: one byte per nibble.
-spec nibbles(non_neg_integer()) -> binary().
nibbles(K) ->
    <<<<N>> || <<N:4>> <= <<K:32>>>>.

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
summarise({l, H, _, _, _, _}) -> {leaf, H};
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
merge_node(A, B, _, _, _, _) when element(2, A) =:= element(2, B),
                                  element(3, A) =:= element(3, B) ->
    A;
merge_node({l, _, _, _, _, _} = A, {l, _, _, _, _, _} = B, D, CA, CB,
           #{merge_entries := Merge}) ->
    EA = entries(A),
    case Merge(EA, entries(B), CA, CB) of
        EA -> A;
        Merged -> leaf_at(D, A, Merged)
    end;
merge_node({l, _, _, _, _, _} = A, {b, _, _, ChB}, D, CA, CB, Ops) ->
    merge_split(entries(A), ChB, D, CA, CB, Ops);
merge_node({b, _, _, ChA}, {l, _, _, _, _, _} = B, D, CA, CB, Ops) ->
    %% The merge is symmetric: the leaf's side goes first, with its context.
    merge_split(entries(B), ChA, D, CB, CA, Ops);
merge_node({b, _, _, ChA}, {b, _, _, ChB}, D, CA, CB, Ops) ->
    branch(list_to_tuple(
             lists:zipwith(fun(X, Y) -> merge_node(X, Y, D + 1, CA, CB, Ops) end,
                           tuple_to_list(ChA), tuple_to_list(ChB)))).

%% A leaf's entries (side A) against a branch's children (side B) at depth D. The
%% entries are only bucketed, not hashed: a bucket equal to B's child or merged into
%% it takes B's hashes and fragments (a leaf meets a branch wherever one replica holds
%% just over 32 entries below a node and the other just under, so this is common).
merge_split(Entries, ChB, D, CA, CB, Ops) ->
    Buckets = lists:foldr(fun({K, _} = En, Acc) ->
                                  I = nibble(khash(K), D) + 1,
                                  setelement(I, Acc, [En | element(I, Acc)])
                          end, erlang:make_tuple(16, []), Entries),
    branch(list_to_tuple([merge_bucket(element(I, Buckets), element(I, ChB), D + 1, CA, CB, Ops)
                          || I <- lists:seq(1, 16)])).

merge_bucket([], B, D, CA, _, Ops) ->
    filter(B, D, CA, Ops);
merge_bucket(EA, nil, D, _, CB, #{keep_unseen := Keep}) ->
    build(D, [{khash(K), En} || {K, _} = En <- Keep(EA, CB)]);
merge_bucket(EA, {l, _, _, _, _, _} = B, D, CA, CB, #{merge_entries := Merge}) ->
    EB = entries(B),
    case Merge(EA, EB, CA, CB) of
        EB -> B;
        Merged -> leaf_at(D, B, Merged)
    end;
merge_bucket(EA, {b, _, _, ChB}, D, CA, CB, Ops) ->
    merge_split(EA, ChB, D, CA, CB, Ops).

filter(nil, _, _, _) ->
    nil;
filter({l, _, _, _, _, _} = Leaf, D, Other, #{keep_unseen := Keep}) ->
    Entries = entries(Leaf),
    case Keep(Entries, Other) of
        Entries -> Leaf;
        Kept -> leaf_at(D, Leaf, Kept)
    end;
filter({b, _, _, Ch} = Node, D, Other, Ops) ->
    Kids = [filter(N, D + 1, Other, Ops) || N <- tuple_to_list(Ch)],
    case list_to_tuple(Kids) of
        Ch -> Node;
        Ch2 -> branch(Ch2)
    end.

%% The canonical node at depth D for the entries New (sorted by key), made from the
%% leaf Old: a leaf, or when they are too many for one, the subtree built from them.
leaf_at(D, {l, H, _, Frags, Hs, T} = Old, New) ->
    case length(New) of
        N when N =< ?MAX_LEAF; D >= ?MAX_DEPTH ->
            OldSorted = lists:sort(old_entries(Frags, Hs, T, 1, [])),
            {H2, Sorted} = delta(OldSorted, New, H, []),
            leaf_sorted(H2, N, lists:sort(Sorted));
        _ ->
            build_hashed(D, [{khash(K), En, EH} || {{K, _} = En, EH} <- delta_pairs(Old, New)])
    end.

%% [{Key, Entry, Frag, EntryHash}] of a leaf.
old_entries(<<F:16, Rest/binary>>, Hs, T, I, Acc) ->
    {K, _} = En = element(I, T),
    old_entries(Rest, Hs, T, I + 1, [{K, En, F, element(I, Hs)} | Acc]);
old_entries(<<>>, _, _, _, Acc) ->
    Acc.

%% The hash and [{Frag, Key, Entry, EntryHash}] of New from those of Old (both sorted
%% by key), hashing only the entries that differ: a merge mostly keeps what one side
%% had, and hashing the entries is the costly part of building a node.
delta([{K, X, F, XH} | TO], [X | TN], H, Acc) ->
    delta(TO, TN, H, [{F, K, X, XH} | Acc]);
delta([{K, _, F, OH} | TO], [{K, _} = X | TN], H, Acc) ->
    XH = ehash(X),
    delta(TO, TN, H - OH + XH, [{F, K, X, XH} | Acc]);
delta([{KO, _, _, OH} | TO], [{KN, _} | _] = New, H, Acc) when KO < KN ->
    delta(TO, New, H - OH, Acc);
delta(Old, [{K, _} = X | TN], H, Acc) ->
    XH = ehash(X),
    delta(Old, TN, H + XH, [{frag(khash(K)), K, X, XH} | Acc]);
delta(Old, [], H, Acc) ->
    {lists:foldl(fun({_, _, _, OH}, A) -> A - OH end, H, Old), Acc}.

%% [{Entry, EntryHash}] of New, the hashes of entries Old holds alike taken from it.
delta_pairs({l, _, _, Frags, Hs, T}, New) ->
    Known = maps:from_list([{En, EH} || {_, En, _, EH} <- old_entries(Frags, Hs, T, 1, [])]),
    [{X, case Known of #{X := EH} -> EH; _ -> ehash(X) end} || X <- New].

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
merge_at({l, _, _, _, _, _} = Leaf, D, P, Node, CL, CR, Ops) ->
    merge_at(split(Leaf, D), D, P, Node, CL, CR, Ops).

%% ---------------------------------------------------------------- small into large

%% A side this small (entries, keys it names as removed, and dots its context names)
%% is always merged entry by entry into the other; against a large side, up to
%% 1/?DESCENT_COST of that side's size is. Measured at 100k: a remove delta of k
%% elements merged by descents costs what the full walk does at about k = n/25.
-define(SMALL, 64).
-define(DESCENT_COST, 32).

%% @doc The merge of a small side (root RS, context CS) into a large one (RL, CL),
%% entry by entry: each entry of the small side, and each key it names as removed
%% (Named, for keyed deltas), is looked up in the large side and merged there, one
%% descent each, O(small x log n). Returns the merged root, or `slow' when the small
%% side is not small enough for that to pay, or when it would not be the full merge.
%% DotsOf(Entry) gives the dots an entry holds. Contexts are {VersionVector, DotCloud}
%% maps of {Actor, Counter} dots, as in both trie CRDTs.
%%
%% Why it is the merge: an entry only the large side L holds keeps every dot the small
%% side S's context has not seen. Its dots are in L's context, and a dot names one
%% write of one key. So if every dot of S's context that L has seen is held by L's
%% entries of the keys S holds or names, no other entry of L loses a dot, and L's
%% other subtrees are taken as they are. (Two histories under one actor can give one
%% dot to two keys; then the dot is held elsewhere, and the full merge runs.) A put or
%% add delta's context is its new dot and the dots it superseded, all held by L's
%% entry of that key, so merging one costs one descent, not a walk of L.
-spec merge_small(tnode(), Ctx, tnode(), Ctx, [binary()], fun((entry()) -> [term()]),
                  entry_ops(Ctx)) -> tnode() | slow.
merge_small(RL, CL, RS, {VS, CloudS} = CS, Named, DotsOf,
            #{merge_entries := Merge, keep_unseen := Keep}) ->
    Limit = max(?SMALL, count(RL) div ?DESCENT_COST),
    %% The context's dots are never listed (seen_all_held/3 counts them per actor): the
    %% bound on them is a cheap early `slow' (a context naming more dots than the small
    %% side can hold rarely passes that check) that also refuses forged counters.
    case count(RS) + length(Named) =< Limit andalso ctx_dots(VS) =< Limit - map_size(CloudS) of
        false ->
            slow;
        true ->
            %% The small side's entries, and the keys it names with nothing held.
            Touched = maps:merge(maps:from_list([{K, []} || K <- Named]),
                                 maps:from_list(collect(RS, []))),
            Pairs = [{K, KH, lookup(RL, 0, KH, K), P}
                     || {K, P} <- maps:to_list(Touched), KH <- [khash(K)]],
            Held = maps:from_list([{D, true} || {_, _, {_, _} = Old, _} <- Pairs,
                                                D <- DotsOf(Old)]),
            case seen_all_held(VS, CL, Held) andalso
                [D || D <- maps:keys(CloudS), plexus_crdt_ctx:covers(CL, D),
                      not is_map_key(D, Held)] =:= [] of
                true ->
                    lists:foldl(fun({K, KH, Old, P}, R) ->
                                        New = merged_entry(K, Old, P, CL, CS, Merge, Keep),
                                        element(1, update(R, 0, KH, K, New))
                                end, RL, Pairs);
                false ->
                    slow
            end
    end.

%% Whether every dot the small side's version vector VS names that the large side's
%% context CL has seen is in Held, counted per actor instead of listed: the dots
%% (A, 1..V) number V whatever the side's size, and a counter of 10^9 listed took
%% gigabytes. Per actor A, the seen ones are those up to CL's counter for A and CL's
%% cloud dots of A above it; they are all held exactly when as many of them are held.
%% (VS holds non-negative integers: merge_small/7 checked it with ctx_dots/1.)
seen_all_held(VS, {VL, CloudL}, Held) ->
    Seen0 = maps:map(fun(A, V) -> min(V, maps:get(A, VL, 0)) end, VS),
    Seen = maps:fold(fun({A, C}, _, Acc) when is_integer(C), C >= 1 ->
                             case VS of
                                 #{A := V} when C =< V ->
                                     case C > maps:get(A, VL, 0) of
                                         true -> maps:update_with(A, fun(N) -> N + 1 end, Acc);
                                         false -> Acc
                                     end;
                                 _ -> Acc
                             end;
                        (_, _, Acc) -> Acc
                     end, Seen0, CloudL),
    HeldSeen = maps:fold(fun({A, C} = D, _, Acc) when is_integer(C), C >= 1 ->
                                 case VS of
                                     #{A := V} when C =< V ->
                                         case plexus_crdt_ctx:covers({VL, CloudL}, D) of
                                             true -> maps:update_with(A, fun(N) -> N + 1 end,
                                                                      1, Acc);
                                             false -> Acc
                                         end;
                                     _ -> Acc
                                 end;
                            (_, _, Acc) -> Acc
                         end, #{}, Held),
    maps:fold(fun(A, N, All) -> All andalso N =:= maps:get(A, HeldSeen, 0) end, true, Seen).

%% How many dots a version vector names, or `infinity' (an atom: greater than any
%% number) for one that is not a map of counters (a forged context: its dots are never
%% enumerated, the full walk refuses it). A sum of all values would let a negative
%% counter cancel a huge one and the enumeration below run for ever.
ctx_dots(VS) ->
    maps:fold(fun(_, V, N) when is_integer(V), V >= 0, is_integer(N) -> N + V;
                 (_, _, _) -> infinity
              end, 0, VS).

%% The merged entry of K from the large side's entry (or false) and the small side's
%% payload ([] for a key it only names as removed), or none.
merged_entry(_, false, [], _, _, _, _) ->
    none;
merged_entry(K, Old, P, CL, CS, Merge, Keep) ->
    Merged = case Old of
                 false -> Keep([{K, P}], CL);
                 {K, OldP} -> Merge([{K, OldP}], [{K, P}], CL, CS)
             end,
    case Merged of
        [] -> none;
        [Entry] -> Entry
    end.

%% Two branches holding more than this many entries between them are merged child by
%% child in Erlang (the branch step of merge_node/6), so that each NIF call walks a
%% few thousand entries at most and stays inline (~0.1 ms): a call that outgrows the
%% inline budget waits for a dirty scheduler, which a loaded machine serves
%% milliseconds late (measured in the bench: a merge of replicas diverged by 100 took
%% 16-20 ms through a dirty scheduler, ~1 ms inline).
-define(NATIVE_CHUNK, 4096).
%% Contexts (actors plus cloud dots, both sides) up to this size are read once per
%% NIF call at little cost (~256 calls for a full merge of 100k entries).
-define(NATIVE_CTX, 1024).

%% @doc merge_node/6 run by a NIF (Nif(A, B, CA, CB, Depth)), which gives the same
%% node term; large pairs of branches are split here first, and a pair the NIF hands
%% back (`fallback') goes through merge_node/6. A NIF error raises `bad_state'.
-spec merge_native(tnode(), tnode(), Ctx, Ctx, native_merge(Ctx), entry_ops(Ctx)) -> tnode().
merge_native(A, B, CA, CB, Nif, Ops) ->
    case ctx_size(CA) + ctx_size(CB) =< ?NATIVE_CTX of
        true -> merge_native(A, B, 0, CA, CB, Nif, Ops);
        %% Each NIF call reads both contexts whole: with large ones (a dot cloud of
        %% many gaps) one call for the whole trie, on a dirty scheduler if it must,
        %% costs less than reading them once per subtree.
        false -> native(A, B, 0, CA, CB, Nif, Ops)
    end.

%% Contexts are {VersionVector, DotCloud} maps in both trie CRDTs; anything else is
%% left for the NIF to refuse.
ctx_size({V, C}) when is_map(V), is_map(C) -> map_size(V) + map_size(C);
ctx_size(_) -> 0.

merge_native(A, B, _, _, _, _, _) when element(2, A) =:= element(2, B),
                                       element(3, A) =:= element(3, B) ->
    A;
merge_native({b, _, NA, ChA}, {b, _, NB, ChB}, D, CA, CB, Nif, Ops)
  when NA + NB > ?NATIVE_CHUNK ->
    branch(list_to_tuple(
             lists:zipwith(fun(X, Y) -> merge_native(X, Y, D + 1, CA, CB, Nif, Ops) end,
                           tuple_to_list(ChA), tuple_to_list(ChB))));
%% One side empty: the other is filtered against its context (filter/4), child by
%% child while it is large (a remove delta meets a whole replica this way).
merge_native({b, _, N, Ch}, nil, D, CA, CB, Nif, Ops) when N > ?NATIVE_CHUNK ->
    branch(list_to_tuple([merge_native(X, nil, D + 1, CA, CB, Nif, Ops)
                          || X <- tuple_to_list(Ch)]));
merge_native(nil, {b, _, N, Ch}, D, CA, CB, Nif, Ops) when N > ?NATIVE_CHUNK ->
    branch(list_to_tuple([merge_native(nil, X, D + 1, CA, CB, Nif, Ops)
                          || X <- tuple_to_list(Ch)]));
merge_native(A, B, D, CA, CB, Nif, Ops) ->
    native(A, B, D, CA, CB, Nif, Ops).

native(A, B, D, CA, CB, Nif, Ops) ->
    case Nif(A, B, CA, CB, D) of
        fallback -> merge_node(A, B, D, CA, CB, Ops);
        {error, _} -> erlang:error(bad_state);
        Node -> Node
    end.
