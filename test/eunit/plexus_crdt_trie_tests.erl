%% EUnit tests of plexus_crdt_trie, the canonical hash trie under plexus_orset2 and
%% plexus_lwwmap: the key and entry hashes are pinned (every node must place and hash
%% entries alike, whatever its release, or merges stop skipping equal subtrees and
%% anti-entropy paths point at different entries), and the hashes a node stores stay
%% those recomputed from its entries along every path that updates them
%% incrementally (single ops, collapses, leaf merges, filters), and so do the key
%% fragments and entry hashes a leaf keeps in its index.
-module(plexus_crdt_trie_tests).

-include_lib("eunit/include/eunit.hrl").

-define(T, plexus_crdt_trie).

%% phash2 is documented as the same on every machine and ERTS release, and the entry
%% hash is ours (c_src/core/crdt_trie.c, pinned to the same value by
%% test/c/test_crdt_trie.c), so these values are part of the in-memory format
%% (include/plexus/crdt_format.md).
pinned_hashes_test() ->
    ?assertEqual(1590930917, ?T:khash(<<"k">>)),
    ?assertEqual(<<5, 14, 13, 3, 10, 13, 14, 5>>, ?T:nibbles(?T:khash(<<"k">>))),
    ?assertEqual(5, ?T:nibble(?T:khash(<<"k">>), 0)),
    ?assertEqual(14890959388372647, ?T:ehash({<<"k">>, [{<<"a">>, 1}]})).

%% Entry hashes have 56 bits and node hashes stay below 2^56 (small integers).
hash_width_test() ->
    S = plexus_orset2:add_all(plexus_orset2:new(), lists:seq(1, 2000), a),
    {orset2, _, Root} = S,
    ?assert(?T:hash(Root) < 1 bsl 56),
    ?assert(lists:all(fun(E) -> ?T:ehash(E) < 1 bsl 56 end, ?T:collect(Root, []))).

%% Every stored hash and count equals the one recomputed from the entries below it,
%% after single ops (splits and collapses), merges (leaf merges and filters of
%% one-sided subtrees) and anti-entropy slices.
stored_hashes_test() ->
    M = plexus_orset2,
    Base = M:add_all(M:new(), lists:seq(1, 3000), a),
    A = M:remove_all(M:add_all(Base, lists:seq(3001, 3400), b), lists:seq(1, 900)),
    B = M:remove_all(M:add_all(Base, lists:seq(1, 300), c), lists:seq(2000, 2900)),
    {ok, A2} = M:from_binary(M:to_binary(A)),
    AB = M:merge(A2, B),
    Small = M:remove_all(AB, lists:seq(1, 3400)),
    {A3, B3, _, _} = plexus_orset2_tests:sync(A, B),
    lists:foreach(fun({orset2, _, Root}) -> check(Root) end, [Base, A, B, AB, Small, A3, B3]),
    Map = plexus_lwwmap:put_all(plexus_lwwmap:new(), [{I, I} || I <- lists:seq(1, 500)], a),
    Map2 = plexus_lwwmap:merge(Map, plexus_lwwmap:remove_all(Map, lists:seq(1, 480))),
    lists:foreach(fun({lwwmap, _, Root}) -> check(Root) end, [Map, Map2]).

check(nil) ->
    {0, 0};
check({l, H, C, Frags, Hs, T}) ->
    Entries = tuple_to_list(T),
    Hashes = tuple_to_list(Hs),
    ?assertEqual(<< <<(?T:khash(K) band 16#ffff):16>> || {K, _} <- Entries >>, Frags),
    ?assertEqual([?T:ehash(E) || E <- Entries], Hashes),
    ?assertEqual(length(Entries), C),
    %% leaf order: by fragment, then by key
    Order = [{?T:khash(K) band 16#ffff, K} || {K, _} <- Entries],
    ?assertEqual(lists:usort(Order), Order),
    ?assertEqual(H, lists:sum([?T:ehash(E) || E <- Entries]) band ((1 bsl 56) - 1)),
    {H, C};
check({b, H, C, Ch}) ->
    Kids = [check(N) || N <- tuple_to_list(Ch)],
    ?assertEqual(H, lists:sum([X || {X, _} <- Kids]) band ((1 bsl 56) - 1)),
    ?assertEqual(C, lists:sum([Y || {_, Y} <- Kids])),
    ?assert(C > 32),
    {H, C}.

%% Lookups find every key present and no key absent, and the place of a new key,
%% through fragment collisions: keys whose 16-bit fragments are equal (found by
%% search; their 32-bit key hashes differ) sit together in key order, and a lookup
%% compares only those. Forged fragments (all equal) never make a lookup raise.
find_with_equal_fragments_test() ->
    Frag = fun(K) -> ?T:khash(K) band 16#ffff end,
    F0 = Frag(<<0:32>>),
    Same = lists:sublist([K || I <- lists:seq(1, 1000000), K <- [<<I:32>>], Frag(K) =:= F0],
                         4),
    ?assertEqual(4, length(Same)),
    Others = [<<I:32>> || I <- lists:seq(2000001, 2000024)],
    Keys = [<<0:32>> | Same] ++ Others,
    Entries = [{K, [{<<"a">>, 1}]} || K <- Keys],
    {l, _, 29, Frags, _, T} = Leaf = ?T:leaf(0, 29, Entries),
    [?assertEqual(E, ?T:get_entry(Leaf, K, ?T:khash(K))) || {K, _} = E <- Entries],
    [?assertEqual(K, element(1, element(?T:find(Leaf, K), T))) || K <- Keys],
    %% the equal fragments are neighbours, in key order
    Run = [K || {K, _} <- tuple_to_list(T), Frag(K) =:= F0],
    ?assertEqual(lists:sort([<<0:32>> | Same]), Run),
    %% an absent key with the same fragment goes between them, by key
    Absent = hd([K || I <- lists:seq(1000001, 3000000), K <- [<<I:32>>], Frag(K) =:= F0]),
    ?assertEqual(false, ?T:get_entry(Leaf, Absent, ?T:khash(Absent))),
    Pos = -?T:find(Leaf, Absent),
    ?assert(Pos >= 1 andalso Pos =< 30),
    Before = [K || {K, _} <- lists:sublist(tuple_to_list(T), Pos - 1)],
    ?assert(lists:all(fun(K) -> {Frag(K), K} < {F0, Absent} end, Before)),
    ?assert(lists:all(fun({K, _}) -> {Frag(K), K} > {F0, Absent} end,
                      lists:nthtail(Pos - 1, tuple_to_list(T)))),
    ?assertEqual(false, ?T:get_entry(Leaf, <<"absent">>, ?T:khash(<<"absent">>))),
    %% forged fragments: answers, never an exception
    Forged = setelement(4, Leaf, binary:copy(<<7:16>>, 29)),
    [?assert(is_integer(?T:find(Forged, K))) || K <- [<<"absent">> | Keys]],
    ?assertEqual(29, byte_size(Frags) div 2).

%% A single op keeps the fragments and entry hashes in step with the entries (insert,
%% replace, delete).
single_ops_keep_fragments_test() ->
    M = plexus_orset2,
    S = lists:foldl(fun(I, Acc) -> M:add(Acc, I, a) end, M:new(), lists:seq(1, 31)),
    S2 = M:remove(M:add(M:add(S, 5, b), 100, a), 17),
    {orset2, _, Root} = S2,
    check(Root),
    ?assertEqual({ok, S2}, M:from_binary(M:to_binary(S2))).

%% The fragments of a leaf stay a heap binary (at most 64 bytes, stored next to the
%% leaf) through inserts, deletes and builds. Built by appending to a binary, they were
%% each a fresh off-heap binary of at least 256 bytes: garbage on every single op and
%% one more pointer to follow on every lookup. A heap binary takes two words and its
%% bytes on the process heap; an off-heap one a 6-word reference, and (until a GC
%% shrinks it) a buffer larger than its bytes.
heap_fragments_test() ->
    M = plexus_orset2,
    Built = M:add_all(M:new(), lists:seq(1, 3000), a),
    {ok, FromBytes} = M:from_binary(M:to_binary(Built)),
    Ops = M:remove_all(M:add_all(FromBytes, lists:seq(3001, 3200), b), lists:seq(1, 300)),
    Big = M:add_all(M:new(), lists:seq(1, 33), a),
    lists:foreach(
      fun(S) ->
              {orset2, _, Root} = S,
              Frags = fragments(Root),
              ?assertNotEqual([], Frags),
              [?assertEqual({byte_size(F), 2 + (byte_size(F) + 7) div 8},
                            {binary:referenced_byte_size(F), erts_debug:flat_size(F)})
               || F <- Frags]
      end, [Built, FromBytes, Ops, M:remove(Big, 7), M:add(M:remove(Big, 7), 7, b),
            %% leaves made by merges: the C walk and the Erlang walk
            M:merge(Ops, Built), M:merge_erl(Ops, Built)]).

%% Removing what is absent returns the state itself (erts_debug:same/2: the very term,
%% not an equal copy of the path the descent rebuilt), in both trie CRDTs.
remove_absent_is_identity_test() ->
    S = plexus_orset2:add_all(plexus_orset2:new(), lists:seq(1, 500), a),
    ?assert(erts_debug:same(S, plexus_orset2:remove(S, absent))),
    M = plexus_lwwmap:put_all(plexus_lwwmap:new(), [{I, I} || I <- lists:seq(1, 500)], a),
    ?assert(erts_debug:same(M, plexus_lwwmap:remove(M, absent))),
    ?assertEqual(element(1, plexus_lwwmap:remove_delta(M, 7)), plexus_lwwmap:remove(M, 7)).

fragments({l, _, _, Frags, _, _}) -> [Frags];
fragments({b, _, _, Ch}) -> lists:append([fragments(N) || N <- tuple_to_list(Ch)]);
fragments(nil) -> [].

%% A leaf merged with a branch (one replica holds at most 32 entries below a node, the
%% other more), both ways round and at depth: the result is the canonical trie of the
%% v1 merge, with its hashes and fragments in step.
leaf_meets_branch_test() ->
    M = plexus_orset2,
    Base = M:add_all(M:new(), lists:seq(1, 20), a),
    Leafy = M:remove_all(M:add_all(Base, [x, y], b), [3, 4]),
    Branchy = M:remove_all(M:add_all(Base, lists:seq(21, 45), c), [5, 6]),
    {orset2, _, {l, _, _, _, _, _}} = Leafy,
    {orset2, _, {b, _, _, _}} = Branchy,
    Deep = M:add_all(M:new(), lists:seq(1, 2000), a),
    DeepLeafy = M:remove_all(Deep, lists:seq(1, 1900)),
    DeepBranchy = M:add_all(Deep, lists:seq(5000, 5500), d),
    lists:foreach(
      fun({A, B}) ->
              AB = M:merge(A, B),
              ?assertEqual(AB, M:merge(B, A)),
              {ok, V1} = M:from_binary(plexus_orset_v1:merge(M:to_v1(A), M:to_v1(B))),
              ?assertEqual(V1, AB),
              {orset2, _, Root} = AB,
              check(Root)
      end, [{Leafy, Branchy}, {DeepLeafy, DeepBranchy}, {M:new(), Branchy}]).

%% sorted/1 and sorted_keys/1 give the entries in bytewise key order (what the binary
%% forms and to_list/1 write) from a trie in hash order. Keys of 1 to 7 bytes sort as
%% integers: a key and the same key followed by zero bytes, keys that differ only in
%% their last byte, all 7-byte and 8-byte neighbours, and the longest short key
%% beside long keys with its prefix must all come out as lists:sort/1 puts them.
sorted_order_test() ->
    Edge = [<<0>>, <<0, 0>>, <<0, 0, 0, 0, 0, 0, 0>>, <<0, 0, 0, 0, 0, 0, 0, 0>>, <<1>>,
            <<1, 0>>, <<1, 0, 0, 0, 0, 0, 0>>, <<1, 0, 0, 0, 0, 0, 0, 0>>, <<1, 255>>,
            <<255>>, <<255, 255, 255, 255, 255, 255, 255>>,
            <<255, 255, 255, 255, 255, 255, 255, 0>>, <<255, 255, 255, 255, 255, 255, 254>>,
            <<97, 1>>, <<98, 0, 0, 1, 0>>, <<"abcdefg">>, <<"abcdefgh">>, <<"abcdefgh", 0>>],
    rand:seed(exsss, {1, 2, 3}),
    Random = [crypto:strong_rand_bytes(rand:uniform(10)) || _ <- lists:seq(1, 3000)]
        ++ [<<(rand:uniform(3) - 1), (rand:uniform(3) - 1)>> || _ <- lists:seq(1, 50)],
    Keys = lists:usort(Edge ++ Random),
    Entries = [{K, [{<<"a">>, I}]} || {I, K} <- lists:enumerate(Keys)],
    Root = ?T:build(0, [{?T:khash(K), En} || {K, _} = En <- Entries]),
    ?assertNotEqual(Entries, ?T:collect(Root, [])),
    ?assertEqual(Entries, ?T:sorted(Root)),
    ?assertEqual(Keys, ?T:sorted_keys(Root)),
    Small = ?T:build(0, [{?T:khash(K), En} || {K, _} = En <- lists:sublist(Entries, 20)]),
    ?assertEqual(lists:sublist(Entries, 20), ?T:sorted(Small)),
    ?assertEqual([], ?T:sorted(nil)),
    ?assertEqual([], ?T:sorted_keys(nil)).

%% build/2 deals entries into children level by level; the trie it makes is the one
%% single inserts make, for every size around the leaf limit and deep collisions.
build_matches_inserts_test() ->
    [begin
         Entries = lists:sort([{term_to_binary(I), [{<<"a">>, I}]} || I <- lists:seq(1, N)]),
         Built = ?T:build(0, [{?T:khash(K), En} || {K, _} = En <- Entries]),
         Inserted = lists:foldl(fun({K, _} = En, R) ->
                                        element(1, ?T:update(R, 0, ?T:khash(K), K,
                                                             fun(_) -> En end))
                                end, nil, lists:reverse(Entries)),
         ?assertEqual(Inserted, Built)
     end || N <- [0, 1, 31, 32, 33, 100, 513, 5000]].

%% plexus_nif:trie_build/2 (what from_binary/1 places decoded entries with) makes the
%% node plexus_crdt_trie:build/2 makes, whatever the order of the entries: random key
%% hashes, keys whose hashes collide in all 32 bits (one leaf at depth 8, more than 32
%% entries: sorted by qsort) and keys whose hashes share only a fragment, at depth 0
%% and below.
trie_build_is_build_test() ->
    rand:seed(exsss, {7, 11, 13}),
    En = fun(I) -> {term_to_binary(I), [{<<"a">>, I}]} end,
    Random = [{rand:uniform(1 bsl 32) - 1, En(I)} || I <- lists:seq(1, 2000)],
    Colliding = [{16#abcd1234, En(I)} || I <- lists:seq(1, 100)],
    SameFragment = [{(I bsl 16) bor 16#beef, En(I)} || I <- lists:seq(1, 300)],
    Small = lists:sublist(Random, 20),
    [begin
         Hashed = [{KH, E, plexus_crdt_trie:ehash(E)} || {KH, E} <- shuffle(Set)],
         ?assertEqual(plexus_crdt_trie:build(D, Set), plexus_nif:trie_build(D, Hashed))
     end || Set <- [Random, Colliding, SameFragment, Small, Random ++ Colliding, []],
            D <- [0, 3]],
    ?assertEqual(nil, plexus_nif:trie_build(0, [])).

%% Hostile arguments: badarg for a wrong type, {error, bad_state} for an entry that is no
%% entry; never a crash.
trie_build_bad_input_test() ->
    E = {<<"k">>, [{<<"a">>, 1}]},
    ?assertError(badarg, plexus_nif:trie_build(0, not_a_list)),
    ?assertError(badarg, plexus_nif:trie_build(0, [{1, E, 1} | tail])),
    ?assertError(badarg, plexus_nif:trie_build(9, [])),
    ?assertError(badarg, plexus_nif:trie_build(-1, [])),
    Bad = [[x], [{1, E}], [{-1, E, 1}], [{1 bsl 32, E, 1}], [{1, E, 1 bsl 56}],
           [{1, E, -1}], [{1, {k, []}, 1}], [{1, {<<"k">>}, 1}], [{1, not_a_tuple, 1}],
           [{1, E, 1}, {2, E, 1}, bad]],
    [?assertEqual({L, {error, bad_state}}, {L, plexus_nif:trie_build(0, L)}) || L <- Bad].

shuffle(L) ->
    [X || {_, X} <- lists:sort([{rand:uniform(), X} || X <- L])].
