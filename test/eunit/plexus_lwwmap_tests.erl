%% EUnit tests of plexus_lwwmap (issue 12): the API, observed-remove semantics
%% (a concurrent put survives a remove), deltas, the canonical trie and binary, the
%% Merkle exchange (sync/2 is the reference driver, also used by prop_plexus_lwwmap
%% and the bench), and hostile binaries, slices and terms giving {error, _} without
%% creating atoms.
-module(plexus_lwwmap_tests).

-include_lib("eunit/include/eunit.hrl").

-export([sync/2]).

-define(M, plexus_lwwmap).

%% ---------------------------------------------------------------- anti-entropy driver

% The anti-entropy exchange in one process: {A2, B2, Bytes, RoundTrips}.
sync(A, B) -> plexus_ae_sync:sync(?M, A, B).

%% ---------------------------------------------------------------- API

basic_test() ->
    M0 = ?M:new(),
    ?assertEqual(0, ?M:size(M0)),
    M1 = ?M:put(M0, k, 1),
    M2 = ?M:put(M1, k, 2, a),
    ?assertEqual({ok, 2}, ?M:get(M2, k)),
    ?assertEqual({error, not_found}, ?M:get(M2, other)),
    ?assertEqual(default, ?M:get(M2, other, default)),
    ?assert(?M:is_key(M2, k)),
    ?assertEqual(1, ?M:size(M2)),
    M3 = ?M:put_all(M2, #{x => 10, y => 20}),
    ?assertEqual([k, x, y], lists:sort(?M:keys(M3))),
    ?assertEqual(#{k => 2, x => 10, y => 20}, ?M:to_map(M3)),
    ?assertEqual(32, ?M:fold(fun(_, V, A) -> V + A end, 0, M3)),
    M4 = ?M:remove_all(M3, [x, y, absent]),
    ?assertEqual(#{k => 2}, ?M:to_map(M4)),
    M5 = ?M:remove(M4, k, anyone),
    ?assertEqual(#{}, ?M:to_map(M5)),
    ?assertEqual(M5, ?M:remove(M5, k)),
    ?assert(?M:equal(M5, ?M:merge(M5, M5))),
    ?assertEqual(32, byte_size(?M:digest(M5))),
    ?assertEqual(ok, ?M:validate(M3)).

%% A put concurrent with a remove survives, with the put's value, even when the
%% removed write has the later timestamp.
concurrent_put_wins_test() ->
    Base = ?M:put(?M:new(), k, old, a),
    B = ?M:put(Base, k, from_b, b),          % b's put, then a's later one
    A = ?M:put(Base, k, newer_but_removed, a),
    A2 = ?M:remove(A, k),
    AB = ?M:merge(A2, B),
    ?assertEqual({ok, from_b}, ?M:get(AB, k)),
    ?assertEqual(?M:to_binary(AB), ?M:to_binary(?M:merge(B, A2))),
    %% A remove that observed b's write removes it.
    ?assertEqual({error, not_found}, ?M:get(?M:merge(AB, ?M:remove(AB, k)), k)).

%% Concurrent puts: the later timestamp wins on every replica; the next put
%% observes both writes and leaves one.
concurrent_puts_lww_test() ->
    A = ?M:put(?M:new(), k, first, a),
    B = ?M:put(?M:new(), k, second, b),
    AB = ?M:merge(A, B),
    ?assertEqual({ok, second}, ?M:get(AB, k)),
    ?assertEqual(AB, ?M:merge(B, A)),
    {lwwmap, _, {l, _, 1, _, _, {{_, [_, _]}}}} = AB,
    {lwwmap, _, {l, _, 1, _, _, {{_, [_]}}}} = ?M:put(AB, k, third, a).

deltas_test() ->
    A0 = ?M:put(?M:new(), k, 1, a),
    {A1, D1} = ?M:put_delta(A0, k, 2, a),
    {A2, D2} = ?M:remove_delta(A1, k),
    {A3, D3} = ?M:put_delta(A2, j, 3, a),
    B0 = ?M:merge(?M:new(), A0),
    %% Any order, duplicated: the same state as A3.
    [?assertEqual(?M:to_binary(A3), ?M:to_binary(?M:merge([B0 | Ds])))
     || Ds <- [[D1, D2, D3], [D3, D2, D1], [D2, D3, D1, D1, D2]]],
    ?assertEqual({A3, ?M:new()}, ?M:remove_delta(A3, absent)).

%% Past 32 keys the root splits; back at 32 it collapses to the same leaf; the shape
%% and the bytes do not depend on the history.
canonical_test() ->
    Small = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, 32)], a),
    {lwwmap, _, {l, _, 32, _, _, _}} = Small,
    Big = ?M:put(Small, 33, 33, a),
    {lwwmap, _, {b, _, 33, _}} = Big,
    Back = ?M:remove(Big, 33),
    {lwwmap, Ctx, {l, _, 32, _, _, _}} = Back,
    ?assertEqual({ok, Back}, ?M:from_binary(?M:to_binary(Back))),
    {lwwmap, Ctx, Root} = Back,
    {lwwmap, _, Root} = ?M:merge(?M:new(), Small).

big_map_test() ->
    M = ?M:put_all(?M:new(), [{I, {v, I}} || I <- lists:seq(1, 5000)], a),
    ?assertEqual(5000, ?M:size(M)),
    ?assertEqual({ok, {v, 77}}, ?M:get(M, 77)),
    Bin = ?M:to_binary(M),
    ?assertEqual({ok, M}, ?M:from_binary(Bin)),
    M2 = ?M:remove_all(M, lists:seq(1, 4990)),
    ?assertEqual(10, ?M:size(M2)),
    {lwwmap, _, {l, _, 10, _, _, _}} = M2.

%% ---------------------------------------------------------------- anti-entropy

anti_entropy_test() ->
    Base = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, 20000)], a),
    A = ?M:put_all(Base, [{I, a} || I <- lists:seq(1, 3)], a),
    B0 = ?M:put(Base, 50000, b, b),
    B = ?M:remove(B0, 100),
    {A2, B2, Bytes, Rounds} = sync(A, B),
    ?assertEqual(?M:to_binary(?M:merge(A, B)), ?M:to_binary(A2)),
    ?assertEqual(?M:to_binary(A2), ?M:to_binary(B2)),
    ?assert(Bytes < byte_size(?M:to_binary(A)) div 5),
    ?assert(Rounds =< 6),
    {_, _, Same, 2} = sync(A2, B2),  % digest, then the context-carrying slices
    ?assert(Same < 300).  % the root summary and two context-only slices

%% ---------------------------------------------------------------- hostile input

hostile_binaries_test() ->
    Map = ?M:put_all(?M:new(), [{k, 1}, {{t, 2}, <<"v">>}, {3, x}], a),
    Good = ?M:to_binary(?M:remove(Map, 3)),
    {_, Keyed} = ?M:keyed_remove_delta(Map, 3),
    GoodKeyed = ?M:to_binary(?M:merge(Keyed, element(2, ?M:keyed_remove_delta(Map, k)))),
    {ok, _} = ?M:from_binary(Good),
    {ok, {lwwmap_delta, _, [_, _]}} = ?M:from_binary(GoodKeyed),
    Atoms = erlang:system_info(atom_count),
    Bad = [binary:part(G, 0, I) || G <- [Good, GoodKeyed], I <- lists:seq(0, byte_size(G) - 1)]
        ++ [flip(G, I) || G <- [Good, GoodKeyed], I <- lists:seq(0, 8 * byte_size(G) - 1)]
        ++ [<<Good/binary, 0>>, <<1, $M>>, <<2, $S, 0, 0, 0>>, <<2, $M, 0, 0, 1, 1, 0, 1>>,
            <<2, $M, 16#80, 16#80, 16#80, 16#80, 16#80, 16#80, 16#80, 16#80, 16#80, 16#80, 1>>],
    lists:foreach(
      fun(B) ->
              case ?M:from_binary(B) of
                  {error, R} when is_atom(R) -> ok;
                  %% A flip may give another valid state: then it must be canonical.
                  {ok, S} -> ?assertEqual(B, ?M:to_binary(S))
              end
      end, Bad),
    ?assertEqual(Atoms, erlang:system_info(atom_count)).

%% A key, actor or value whose bytes name an atom this node has never seen: reading
%% the binary creates no atom (only reading the value would).
unknown_atom_test() ->
    Name = <<"plexus_lwwmap_never_made_atom_7f3a">>,
    AtomBytes = <<119, (byte_size(Name)), Name/binary>>,
    Good = ?M:to_binary(?M:put(?M:new(), k, xx, a)),
    Known = term_to_binary(xx, [deterministic, {minor_version, 2}]),
    <<131, KnownBytes/binary>> = Known,
    [Pre, Post] = binary:split(Good, <<(byte_size(KnownBytes)), KnownBytes/binary>>),
    Hostile = <<Pre/binary, (byte_size(AtomBytes)), AtomBytes/binary, Post/binary>>,
    Atoms = erlang:system_info(atom_count),
    {ok, M} = ?M:from_binary(Hostile),
    ?assertEqual(1, ?M:size(M)),
    ?assertEqual(Hostile, ?M:to_binary(M)),
    _ = ?M:merge(M, ?M:put(?M:new(), k, yy, b)),
    ?assertEqual(Atoms, erlang:system_info(atom_count)).

flip(B, I) ->
    <<Pre:I/bitstring, X:1, Post/bitstring>> = B,
    <<Pre:I/bitstring, (1 - X):1, Post/bitstring>>.

hostile_slices_test() ->
    A = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, 100)], a),
    Slice = ?M:missing(A, [<<1>>, <<2, 3>>]),
    {lwwmap, _, _} = ?M:merge_missing(?M:new(), Slice),
    Atoms = erlang:system_info(atom_count),
    Bad = [binary:part(Slice, 0, I) || I <- lists:seq(0, byte_size(Slice) - 1)]
        ++ [flip(Slice, I) || I <- lists:seq(0, 8 * byte_size(Slice) - 1)]
        ++ [<<1, 1, 16>>, <<2, 1, 1, 2, 1, 2, 0, 0, 0>>, <<200>>],
    lists:foreach(
      fun(B) ->
              case ?M:merge_missing(A, B) of
                  {error, R} when is_atom(R) -> ok;
                  {lwwmap, _, _} = S -> ?assertEqual(ok, ?M:validate(S))
              end
      end, Bad),
    ?assertEqual(Atoms, erlang:system_info(atom_count)).

hostile_terms_test() ->
    Good = ?M:put(?M:new(), k, v, a),
    {lwwmap, Ctx, Root} = Good,
    Bad = [{lwwmap, x, y}, {lwwmap, Ctx, {l, 0, 1, [bad]}}, {lwwmap, Ctx, {b, 1, 2, {}}},
           {lwwmap, {#{}, #{}}, Root}, {lwwmap, Ctx, {l, 0, 1, [{<<"k">>, []}]}}
           | [{lwwmap, Ctx, L} || {orset2, _, L} <- plexus_orset2_tests:bad_leaves(<<119, 1, $k>>)]],
    lists:foreach(
      fun(S) ->
              ?assertMatch({error, _}, ?M:validate(S)),
              %% A corrupt term never raises: {error, _} or some answer.
              [_ = F()
               || F <- [fun() -> ?M:put(S, k, v) end, fun() -> ?M:get(S, k) end,
                        fun() -> ?M:remove(S, k) end, fun() -> ?M:size(S) end,
                        fun() -> ?M:to_map(S) end, fun() -> ?M:to_binary(S) end,
                        fun() -> ?M:merge(S, Good) end, fun() -> ?M:keys(S) end,
                        fun() -> ?M:digest_tree(S) end, fun() -> ?M:missing(S, [<<>>]) end]]
      end, Bad),
    %% remove/2 of a corrupt map is {error, _} (it once returned the bare atom error).
    ?assertEqual({error, bad_state}, ?M:remove({lwwmap, x, y}, k)),
    ?assertEqual({error, bad_state}, ?M:validate(not_a_map)),
    ?assertError(badarg, ?M:put(not_a_map, k, v)),
    ?assertError(badarg, ?M:from_binary(not_a_binary)),
    ?assertEqual({error, bad_version}, ?M:from_binary(<<9, $M>>)),
    ?assertEqual({error, wrong_type}, ?M:from_binary(<<2, $S, 0>>)),
    ?assertEqual({error, truncated}, ?M:from_binary(<<2>>)).

%% ---------------------------------------------------------------- over messages

%% The README's exchange, run between two processes: the peer answers from a snapshot
%% taken at the first diff, the initiator drives the rounds; both end with the merge.
sync_over_messages_test() ->
    Base = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, 2000)], a),
    A = ?M:remove(?M:put_all(Base, [{I, a} || I <- lists:seq(1, 4)], a), 1999),
    B = ?M:put(Base, {unit, 1}, b, b),
    Peer = spawn_link(fun() -> peer(B, undefined) end),
    A2 = readme_sync(A, Peer),
    Ref = make_ref(),
    Peer ! {get, self(), Ref},
    B2 = receive {Ref, M} -> M end,
    ?assertEqual(?M:to_binary(?M:merge(A, B)), ?M:to_binary(A2)),
    ?assertEqual(?M:to_binary(A2), ?M:to_binary(B2)).

peer(Map, Snap) ->
    receive
        {call, From, Ref, {diff, Summary}} ->
            S = case Snap of undefined -> Map; _ -> Snap end,
            From ! {Ref, ?M:diff(S, Summary)},
            peer(Map, S);
        {call, From, Ref, {missing, Paths}} ->
            From ! {Ref, ?M:missing(Snap, Paths)},
            peer(Map, Snap);
        {call, From, Ref, {merge_missing, Slice}} ->
            Map2 = ?M:merge_missing(Map, Slice),
            From ! {Ref, ok},
            peer(Map2, undefined);
        {get, From, Ref} ->
            From ! {Ref, Map}
    end.

call(Peer, Msg) ->
    Ref = make_ref(),
    Peer ! {call, self(), Ref, Msg},
    receive {Ref, Reply} -> Reply end.

readme_sync(Map, Peer) ->
    plexus_ae_sync:client(?M, Map, fun(Msg) -> call(Peer, Msg) end).

%% A path below a leaf (summary/2 and missing/2 take any valid path): the slice holds
%% exactly the entries under the whole path. The filter once used only the part of
%% the path below the leaf, so the slice held entries of sibling paths and
%% merge_missing/2 refused it (bad_slice), even the map's own slice.
path_below_leaf_test() ->
    M = ?M:put_all(?M:new(), [{{e, I}, I} || I <- lists:seq(1, 10000)], a),
    Deep = [<<A, B, C>> || A <- lists:seq(0, 15), B <- lists:seq(0, 15), C <- [1, 9]],
    lists:foreach(
      fun(P) ->
              Slice = ?M:missing(M, [P]),
              ?assertEqual(M, ?M:merge_missing(M, Slice)),
              Part = ?M:merge_missing(?M:new(), Slice),
              [?assert(plexus_crdt_trie:in_path(plexus_crdt_trie:khash(key_bytes(K)), P)) || K <- ?M:keys(Part)]
      end, Deep),
    %% the summaries of the 16 children of a path add up to the path's own
    [{_, {_, H}}] = ?M:summary(M, [<<3, 7>>]),
    Kids = ?M:summary(M, [<<3, 7, I>> || I <- lists:seq(0, 15)]),
    ?assertEqual(H, lists:sum([plexus_crdt_trie:summary_hash(S) || {_, S} <- Kids])
                 band (1 bsl 56 - 1)).  % node hashes are sums mod 2^56

key_bytes(K) ->
    <<131, B/binary>> = term_to_binary(K, [deterministic, {minor_version, 2}]),
    B.

%% ---------------------------------------------------------------- the C merge walk

%% merge/2 runs the C walk (c_src/nif/nif_trie.c) and gives the term of the Erlang
%% walk: replicas of 5,000 keys, 90% shared, one rebuilt from its bytes (no term
%% shared), with concurrent puts of the same keys (writes merge per key). The Erlang
%% walk (plexus_crdt_trie:merge_node/6) is not entered.
lwwmap_c_walk_test() ->
    M = plexus_lwwmap,
    Base = M:put_all(M:new(), [{I, I} || I <- lists:seq(1, 5000)], a),
    {ok, A} = M:from_binary(M:to_binary(
                              M:put_all(M:remove_all(Base, lists:seq(1, 250)),
                                        [{I, x} || I <- lists:seq(5001, 5250)], a))),
    B = M:put_all(M:remove_all(Base, lists:seq(251, 500)),
                  [{I, y} || I <- lists:seq(4900, 5100)], b),
    MFA = {plexus_crdt_trie, merge_node, 6},
    erlang:trace_pattern(MFA, true, [call_count]),
    try
        AB = M:merge(A, B),
        {call_count, Calls} = erlang:trace_info(MFA, call_count),
        ?assertEqual(0, Calls),
        ?assertEqual(M:merge_erl(A, B), AB),
        ?assertEqual(M:merge_erl(B, A), M:merge(B, A)),
        ?assertEqual({ok, AB}, M:from_binary(M:to_binary(AB)))
    after
        erlang:trace_pattern(MFA, false, [call_count])
    end.

%% Merging a put delta into a large map descends to its key: neither walk runs,
%% whichever side comes first, and the result is the full merge's term. (Before, the
%% delta's root leaf met the map's root branch, the C walk handed the pair back at
%% depth 0, and the Erlang walk filtered every key of the map against the delta's
%% context: O(n) per delta, and the overlay merges one per sync.) A remove delta names
%% no key (its context holds the removed writes' dots, which could belong to any key):
%% it is merged by the walk, with the same result.
lwwmap_delta_merge_is_a_descent_test() ->
    M = plexus_lwwmap,
    Big = M:put_all(M:new(), [{I, I} || I <- lists:seq(1, 20000)], a),
    {Big2, Put} = M:put_delta(Big, 7, seven, b),
    {_, PutNew} = M:put_delta(Big2, new_key, v, b),
    {_, Rem} = M:remove_delta(Big, 9),
    PutDeltas = [Put, PutNew, M:merge(Put, PutNew)],
    Walks = [{plexus_crdt_trie, merge_native, 6}, {plexus_crdt_trie, merge_node, 6}],
    [erlang:trace_pattern(MFA, true, [local, call_count]) || MFA <- Walks],
    {MergedPuts, Counts} =
        try
            R = [{M:merge(Big, D), M:merge(D, Big)} || D <- PutDeltas],
            {R, [erlang:trace_info(MFA, call_count) || MFA <- Walks]}
        after
            [erlang:trace_pattern(MFA, false, [local, call_count]) || MFA <- Walks]
        end,
    ?assertEqual([{call_count, 0}, {call_count, 0}], Counts),
    Deltas = PutDeltas ++ [Rem, M:merge(Put, Rem)],
    Merged = MergedPuts ++ [{M:merge(Big, D), M:merge(D, Big)} || D <- [Rem, M:merge(Put, Rem)]],
    [?assertEqual({M:merge_erl(Big, D), M:merge_erl(D, Big)}, R)
     || {D, R} <- lists:zip(Deltas, Merged)],
    [{BigPut, _}, {BigNew, _}, _, {BigRem, _}, {BigBoth, _}] = Merged,
    ?assertEqual({ok, seven}, M:get(BigPut, 7)),
    ?assertEqual({ok, v}, M:get(BigNew, new_key)),
    ?assertEqual({error, not_found}, M:get(BigRem, 9)),
    ?assertEqual({{ok, seven}, {error, not_found}}, {M:get(BigBoth, 7), M:get(BigBoth, 9)}),
    ?assertEqual(20000, M:size(BigPut)),
    ?assertEqual(19999, M:size(BigRem)).

%% merge_delta/3: a remove delta told the keys it removed merges without a walk, with
%% merge/2's result; any keys give merge/2's result; a bad list is badarg.
lwwmap_merge_delta_named_test() ->
    M = plexus_lwwmap,
    Big = M:put_all(M:new(), [{I, I} || I <- lists:seq(1, 20000)], a),
    {Other, R1} = M:remove_delta(Big, 9),
    {_, P} = M:put_delta(Other, 10, ten, b),
    Both = M:merge(R1, P),
    Walk = {plexus_crdt_trie, merge_native, 6},
    erlang:trace_pattern(Walk, true, [local, call_count]),
    {Named, Count} =
        try
            {[M:merge_delta(Big, R1, [9]), M:merge_delta(R1, Big, [9]),
              M:merge_delta(Big, Both, [9, absent])],
             erlang:trace_info(Walk, call_count)}
        after
            erlang:trace_pattern(Walk, false, [local, call_count])
        end,
    ?assertEqual({call_count, 0}, Count),
    ?assertEqual([M:merge_erl(Big, R1), M:merge_erl(R1, Big), M:merge_erl(Big, Both)], Named),
    ?assertEqual({error, not_found}, M:get(hd(Named), 9)),
    [?assertEqual(M:merge_erl(Big, Both), M:merge_delta(Big, Both, Hints))
     || Hints <- [[], [10], [absent], lists:seq(1, 100)]],
    ?assertError(badarg, M:merge_delta(Big, R1, not_a_list)).

%% A keyed remove delta (the removed key's bytes beside the delta) merges into a large
%% map by a descent, no walk, with the walk's result; two keyed deltas merge into one
%% (keys united, either order); with a map, a map. Written <<2, $K, n, n x bytes key,
%% 'M' body>> (include/plexus/crdt_format.md), read back as itself, validated.
lwwmap_keyed_delta_test() ->
    M = plexus_lwwmap,
    Big = M:put_all(M:new(), [{I, I} || I <- lists:seq(1, 20000)], a),
    {S9, K9} = M:keyed_remove_delta(Big, 9),
    {S9, D9} = M:remove_delta(Big, 9),
    ?assertEqual({lwwmap_delta, D9, [enc(9)]}, K9),
    ?assertEqual(D9, M:state_of(K9)),
    ?assertEqual(Big, M:state_of(Big)),
    {_, K10} = M:keyed_remove_delta(Big, 10),
    K = M:merge(K9, K10),
    ?assertEqual(K, M:merge(K10, K9)),
    ?assertEqual({lwwmap_delta, M:merge(D9, M:state_of(K10)), [enc(9), enc(10)]}, K),
    Walk = {plexus_crdt_trie, merge_native, 6},
    erlang:trace_pattern(Walk, true, [local, call_count]),
    {Merged, Count} =
        try
            {[M:merge(Big, K9), M:merge(K9, Big), M:merge(Big, K), M:merge_delta(Big, K, [])],
             erlang:trace_info(Walk, call_count)}
        after
            erlang:trace_pattern(Walk, false, [local, call_count])
        end,
    ?assertEqual({call_count, 0}, Count),
    Both = M:remove_all(Big, [9, 10]),
    ?assertEqual([S9, M:merge_erl(D9, Big), Both, Both], Merged),
    Bin = M:to_binary(K9),
    <<2, $M, Body/binary>> = M:to_binary(D9),
    ?assertEqual(iolist_to_binary([<<2, $K, 1, (byte_size(enc(9)))>>, enc(9), Body]), Bin),
    ?assertEqual({ok, K9}, M:from_binary(Bin)),
    ?assertEqual({ok, K}, M:from_binary(M:to_binary(K))),
    ?assertEqual(ok, M:validate(K)),
    %% nothing removed: a plain (empty) delta
    ?assertEqual({Big, M:new()}, M:keyed_remove_delta(Big, absent)),
    %% readers take maps only
    ?assertEqual({error, bad_state}, M:get(K9, 9)),
    ?assertEqual({error, bad_state}, M:size(K9)).

%% Hostile keyed delta binaries and terms: {error, Reason}, never a crash; keys that
%% name the wrong keys (or none) change no merge.
lwwmap_keyed_delta_bad_input_test() ->
    M = plexus_lwwmap,
    Base = M:put_all(M:new(), [{x, 1}, {y, 2}, {z, 3}], a),
    {_, K} = M:keyed_remove_delta(Base, x),
    <<2, $K, 1, L, X:L/binary, Body/binary>> = M:to_binary(K),
    Bad = [{<<2, $K>>, truncated},
           {<<2, $K, 0, Body/binary>>, not_canonical},
           {<<2, $K, 128, 0, 1, L, X/binary, Body/binary>>, bad_varint},
           {<<2, $K, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1>>, bad_varint},
           {<<2, $K, 100, L, X/binary>>, bad_count},
           {<<2, $K, 1, 0, Body/binary>>, not_canonical},
           {<<2, $K, 1, 200, X/binary>>, truncated},
           {<<2, $K, 2, L, X/binary, L, X/binary, Body/binary>>, not_canonical},
           {<<2, $K, 2, 1, 98, 1, 97, Body/binary>>, not_canonical},
           {<<2, $K, 1, L, X/binary>>, truncated},
           {<<2, $K, 1, L, X/binary, Body/binary, 0>>, trailing_bytes}],
    [?assertEqual({Bin, {error, Reason}}, {Bin, M:from_binary(Bin)}) || {Bin, Reason} <- Bad],
    {lwwmap_delta, D, _} = K,
    Forged = [{lwwmap_delta, D, []}, {lwwmap_delta, D, [<<"b">>, <<"a">>]},
              {lwwmap_delta, D, [x]}, {lwwmap_delta, D, not_a_list},
              {lwwmap_delta, junk, [X]}, {lwwmap_delta, D, [X], extra}],
    [?assertMatch({error, _}, M:validate(F)) || F <- Forged],
    [?assertMatch({error, _}, M:to_binary(F)) || F <- lists:droplast(Forged)],
    [?assertEqual({error, bad_state}, M:merge(Base, F)) || F <- lists:droplast(Forged)],
    [?assertEqual({error, bad_state}, M:merge(F, Base)) || F <- lists:droplast(Forged)],
    [?assertEqual({error, bad_state}, M:merge_delta(Base, F, [])) || F <- lists:droplast(Forged)],
    %% Wrong keys: checked by the merge, whose result is the full merge.
    Full = M:merge_erl(Base, D),
    [?assertEqual(Full, M:merge(Base, {lwwmap_delta, D, Ks}))
     || Ks <- [[enc(y)], [enc(absent)], [enc(x), enc(y)]]],
    ?assertError(badarg, M:merge_delta(Base, K, not_a_list)).

enc(T) ->
    <<131, B/binary>> = term_to_binary(T, [deterministic, {minor_version, 2}]),
    B.

%% from_binary/1 decodes in C (plexus_nif:trie_decode/1): the same map as the Erlang
%% reader, and no key, actor or value of it points into the input binary (the Erlang
%% reader's sub-binaries kept the whole input alive as long as one of them lived: a
%% snapshot loaded at start stayed in memory after every key in it was replaced).
%% An anti-entropy slice is read as from_binary/1 reads a map: the merged map holds
%% copies, not sub-binaries of the slice (which would keep every received slice alive
%% for as long as one of its keys or values lives).
slice_binaries_are_copies_test() ->
    Big = binary:copy(<<"v">>, 200),
    B = ?M:put_all(?M:new(), [{{k, I, Big}, {I, Big}} || I <- lists:seq(1, 50)], {actor, Big}),
    Slice = ?M:missing(B, [<<>>]),
    {lwwmap, {VV, _}, Root} = M = ?M:merge_missing(?M:new(), Slice),
    ?assertEqual(?M:to_map(B), ?M:to_map(M)),
    Fields = maps:keys(VV) ++ lists:append([[K | lists:append([[A, V] || {A, _, _, V} <- Ws])]
                                            || {K, Ws} <- plexus_crdt_trie:collect(Root, [])]),
    ?assertEqual(151, length(Fields)),
    ?assertEqual([], [F || F <- Fields, binary:referenced_byte_size(F) =/= byte_size(F)]).

decoded_binaries_are_copies_test() ->
    Big = binary:copy(<<"v">>, 200),
    M = ?M:put_all(?M:new(), [{{k, I, Big}, {I, Big}} || I <- lists:seq(1, 50)],
                   {actor, Big}),
    Bin = ?M:to_binary(M),
    ?assertEqual({ok, M}, ?M:from_binary(Bin)),
    ?assertEqual({ok, M}, ?M:from_binary_erl(Bin)),
    {ok, {lwwmap, {VV, _}, Root}} = ?M:from_binary(Bin),
    Fields = maps:keys(VV) ++ lists:append([[K | lists:append([[A, V] || {A, _, _, V} <- Ws])]
                                            || {K, Ws} <- plexus_crdt_trie:collect(Root, [])]),
    ?assertEqual(151, length(Fields)),
    ?assertEqual([], [F || F <- Fields, binary:referenced_byte_size(F) =/= byte_size(F)]),
    %% the Erlang reader's did point into it (what the check above would catch)
    {ok, {lwwmap, _, RootErl}} = ?M:from_binary_erl(Bin),
    [{K1, _} | _] = plexus_crdt_trie:collect(RootErl, []),
    ?assertEqual(byte_size(Bin), binary:referenced_byte_size(K1)),
    %% the NIF alone: a non-binary is badarg, bytes of another type an error
    ?assertError(badarg, plexus_nif:trie_decode(not_a_binary)),
    ?assertMatch({error, _}, plexus_nif:trie_decode(<<2, $K, 0>>)),
    ?assertMatch({error, _}, plexus_nif:trie_decode(<<>>)).

%% to_binary/1 writes in C (plexus_nif:trie_encode/3), sorting the keys by a radix sort
%% of 8-byte chunks: keys that share long prefixes (tuples of one tag, binaries with a
%% common 300-byte head), keys that are prefixes of others and keys of every length up
%% to 70 bytes come out in the Erlang writer's order, byte for byte.
c_writer_sorts_as_erlang_test() ->
    Head = binary:copy(<<"h">>, 300),
    Keys = [{unit, I} || I <- lists:seq(1, 300)]
        ++ [<<Head/binary, I:16>> || I <- lists:seq(1, 100)]
        ++ [binary:part(Head, 0, L) || L <- lists:seq(1, 70)]
        ++ [<<Head/binary, 0:(8 * L)>> || L <- lists:seq(0, 40)]
        ++ lists:seq(-50, 300),
    M = ?M:put_all(?M:new(), [{K, v} || K <- Keys], a),
    ?assertEqual(length(Keys), ?M:size(M)),
    Bin = ?M:to_binary(M),
    ?assertEqual(?M:to_binary_erl(M), Bin),
    ?assertEqual({ok, M}, ?M:from_binary(Bin)),
    %% an OR-Set of the same elements, through the same writer
    S = plexus_orset2:add_all(plexus_orset2:new(), Keys, a),
    ?assertEqual(plexus_orset2:to_v1_erl(S), plexus_orset2:to_v1(S)).

%% Forged map terms given to the C writer: {error, bad_state}, never a crash, never a
%% write past what the root counts.
c_writer_forged_terms_test() ->
    M = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, 100)], a),
    {lwwmap, Ctx, {b, H, C, Ch} = Root} = M,
    Leaf = hd([L || L <- tuple_to_list(Ch), L =/= nil]),
    {l, LH, LC, Fr, Hs, T} = Leaf,
    E1 = element(1, T),
    Forged = [{lwwmap, Ctx, {b, H, C - 1, Ch}},                        % count too small
              {lwwmap, Ctx, {b, H, C + 1, Ch}},                        % count too large
              {lwwmap, Ctx, {b, H, C, list_to_tuple(tl(tuple_to_list(Ch)))}},
              {lwwmap, Ctx, {b, H, -1, Ch}},
              {lwwmap, Ctx, {b, H, 1 bsl 40, Ch}},
              {lwwmap, Ctx, {l, LH, LC, Fr, Hs, setelement(1, T, not_an_entry)}},
              {lwwmap, Ctx, {l, LH, LC, Fr, Hs, setelement(1, T, {<<"k">>, [bad]})}},
              {lwwmap, Ctx, {l, LH, LC, Fr, Hs, setelement(1, T, {<<"k">>, improper})}},
              {lwwmap, Ctx, {l, LH, LC, Fr, Hs,
                             setelement(1, T, {<<"k">>, [{<<"nobody">>, 1, 1, <<"v">>}]})}},
              {lwwmap, Ctx, {l, LH, LC, Fr, Hs,
                             setelement(1, T, {<<"k">>, [{<<"a">>, -1, 1, <<"v">>}]})}},
              {lwwmap, Ctx, {l, LH, 2, Fr, Hs, {E1, E1}}},              % a key twice
              {lwwmap, {#{<<"a">> => -3}, #{}}, Root},
              {lwwmap, {#{a => 3}, #{}}, Root},
              {lwwmap, {#{}, #{not_a_dot => true}}, Root},
              {lwwmap, not_a_ctx, Root},
              {lwwmap, Ctx, deep(20)}], % nested deeper than a trie can be
    [?assertEqual({F, {error, bad_state}}, {F, ?M:to_binary(F)}) || F <- Forged],
    [?assertMatch({error, _}, ?M:validate(F)) || F <- Forged].

deep(0) -> nil;
deep(N) -> {b, 0, 0, list_to_tuple([deep(N - 1) | lists:duplicate(15, nil)])}.

%% The whole-state NIFs (trie_decode/1, trie_build/2, trie_encode/3) weigh their input:
%% under the default threshold a small state's calls stay inline and a 5,000-entry
%% state's are rescheduled onto a dirty scheduler (seen by call tracing,
%% plexus_nif_probe, no timing); inline and dirty give the same terms and bytes.
whole_state_nifs_dirty_and_inline_test() ->
    Nifs = [{trie_decode, 1}, {trie_build, 2}, {trie_encode, 3}],
    Kinds = fun(Work) ->
                    {_, Calls} = plexus_nif_probe:calls(Work, Nifs),
                    lists:usort([element(2, C) || C <- Calls])
            end,
    Run = fun(N) ->
                  M = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, N)], a),
                  S = plexus_orset2:add_all(plexus_orset2:new(), lists:seq(1, N), a),
                  fun() ->
                          MB = ?M:to_binary(M),
                          SB = plexus_orset2:to_binary(S),
                          {MB, SB, ?M:from_binary(MB), plexus_orset2:from_binary(SB)}
                  end
          end,
    Small = Run(300),
    Large = Run(5000),
    ?assertEqual([inline], Kinds(Small)),
    ?assertEqual([rescheduled], Kinds(Large)),
    [?assertEqual(plexus_nif_probe:with_dirty_threshold(0, W),
                  plexus_nif_probe:with_dirty_threshold(1 bsl 62, W)) || W <- [Small, Large]].

%% A forged small side whose version vector holds counters that cancel out (2^40 and
%% -2^40: a sum of 0 passes a size check) must not make the key-by-key merge list its
%% dots: merge/2 and merge_delta/3 answer at once ({error, _} here, as the walk
%% refuses the context), in a process whose heap is capped at 64 MB (enumerating them
%% would take terabytes: the process is killed and the test fails). The same for the
%% OR-Set's merge/2 and merge_delta/2,3.
cancelling_counters_test() ->
    M = plexus_lwwmap,
    Big = M:put_all(M:new(), [{I, I} || I <- lists:seq(1, 3000)], a),
    Forged = {lwwmap, {#{<<119, 1, $a>> => 1 bsl 40, <<119, 1, $b>> => -(1 bsl 40)}, #{}}, nil},
    S = plexus_orset2:add_all(plexus_orset2:new(), lists:seq(1, 3000), a),
    ForgedSet = {orset2, {#{<<119, 1, $a>> => 1 bsl 40, <<119, 1, $b>> => -(1 bsl 40)}, #{}},
                 nil},
    Calls = [fun() -> M:merge(Big, Forged) end, fun() -> M:merge(Forged, Big) end,
             fun() -> M:merge_delta(Big, Forged, [1]) end,
             fun() -> plexus_orset2:merge_delta(S, ForgedSet) end,
             fun() -> plexus_orset2:merge_delta(S, ForgedSet, [1]) end,
             fun() -> plexus_orset2:merge(S, ForgedSet) end,
             fun() -> plexus_orset2:merge(ForgedSet, S) end],
    [?assertMatch({done, {error, _}}, capped(F)) || F <- Calls].

%% Fun() in a process with its heap capped at 8 M words: {done, Result} or killed.
capped(Fun) ->
    {Pid, Ref} = spawn_opt(fun() -> exit({done, Fun()}) end,
                           [monitor, {max_heap_size, #{size => 8000000, kill => true,
                                                       error_logger => false}}]),
    receive
        {'DOWN', Ref, process, Pid, {done, _} = Done} -> Done;
        {'DOWN', Ref, process, Pid, _} -> killed
    after 60000 ->
            exit(Pid, kill),
            timeout
    end.

%% A forged write (not a 4-tuple) in a leaf the walk must decode gives
%% {error, bad_state}, never a crash.
lwwmap_c_walk_hostile_test() ->
    M = plexus_lwwmap,
    {lwwmap, CA, {b, H, C, Ch}} = M:put_all(M:new(), [{I, I} || I <- lists:seq(1, 300)], a),
    {lwwmap, CB, RB} = M:put_all(M:new(), [{I, I} || I <- lists:seq(200, 500)], b),
    {l, LH, LC, Fs, Hs, T} = element(1, Ch),
    Bad = {l, LH, LC, Fs, Hs, setelement(1, T, {element(1, element(1, T)), [{<<1>>, 1}]})},
    Forged = {lwwmap, CA, {b, H, C, setelement(1, Ch, Bad)}},
    ?assertEqual({error, bad_state}, M:merge(Forged, {lwwmap, CB, RB})).

%% The reader takes one-, two-, three- and nine-byte varints (counts, counters, HLC
%% timestamps) in one match: the second spellings of those lengths (a last byte of 0)
%% and varints past ten bytes stay bad_varint; real timestamps round-trip.
varint_spellings_test() ->
    M = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, 300)], a),
    {ok, M} = ?M:from_binary(?M:to_binary(M)),
    [?assertEqual({error, bad_varint}, ?M:from_binary(<<2, $M, Bad/binary, 0>>))
     || Bad <- [<<128, 0>>, <<128, 128, 0>>, <<128, 128, 128, 128, 128, 128, 128, 128, 0>>,
                <<255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1>>,
                <<255, 255, 255, 255, 255, 255, 255, 255, 255, 2>>]],
    ?assertEqual({error, truncated}, ?M:from_binary(<<2, $M, 129, 1, 0>>)).

%% As plexus_orset2_tests:counter_exhausted_test/0, for puts.
counter_exhausted_test() ->
    Max = 16#FFFFFFFFFFFFFFFF,
    A = term_to_binary(a, [deterministic, {minor_version, 2}]),
    Forged = {lwwmap, {#{binary:part(A, 1, byte_size(A) - 1) => Max}, #{}}, nil},
    ?assertEqual(ok, plexus_lwwmap:validate(Forged)),
    M = plexus_lwwmap:merge(plexus_lwwmap:put(plexus_lwwmap:new(), k, 1, b), Forged),
    ?assertEqual({error, counter_exhausted}, plexus_lwwmap:put(M, k, 2, a)),
    ?assertEqual({error, counter_exhausted}, plexus_lwwmap:put_delta(M, k, 2, a)),
    ?assertEqual({error, counter_exhausted}, plexus_lwwmap:put_all(M, #{k => 2, j => 3}, a)),
    ?assertEqual(#{k => 2}, plexus_lwwmap:to_map(plexus_lwwmap:put(M, k, 2, c))).
