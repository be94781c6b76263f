%% @doc Observed-remove map of last-writer-wins values (the entity table of an
%% overlay): keys map to values stamped on the node's hybrid logical clock
%% (`plexus_hlc'), with ORSWOT-style observed-remove of keys, deltas, merge, digest,
%% Merkle anti-entropy and a canonical binary (`0x02 'M'', see
%% `include/plexus/crdt_format.md'). Built on the same version 2 structure as
%% `plexus_orset2': a hash trie of bounded chunks held as plain Erlang terms.
%%
%% == Semantics ==
%% A key is present while it has at least one surviving <em>write</em>. A write is a
%% dot `{Actor, Counter}' (as an OR-Set add) that carries its register
%% `(Ts, Actor, Value)'. `put' removes every write of the key it has observed and adds
%% one new write whose timestamp is `plexus_hlc:next_after/1' of the greatest
%% timestamp of the key (so a local put always wins over what it has seen, even when
%% the wall clock went back); `remove' removes the observed writes only. Merge is the
%% ORSWOT merge of the writes: a write both sides hold stays, a write one side holds
%% stays unless the other side's context has seen it (then it was removed or
%% overwritten there). Hence:
%% <ul>
%% <li>put concurrent with remove: the put's write survives, and the key's value is
%%     the put's value (the removed writes are gone, whatever their timestamps);</li>
%% <li>concurrent puts: both writes survive until the next put observes them; the
%%     value is that of the greatest register by `(Ts, Actor bytes, Value bytes)',
%%     the same on every node (last writer wins).</li>
%% </ul>
%% Merge does not tick the clock: the floor of the next put of a key is taken from
%% the key's own writes.
%%
%% == Representation ==
%% `{lwwmap, {VV, Cloud}, Root}' exactly as `plexus_orset2' (context: version vector
%% and dot cloud, folded canonically; `Root': trie placed by the 32-bit phash2 of the
%% key, leaves of at most 32 entries, 16-way branches, node hash = sum mod 2^56 of the
%% 56-bit entry hashes).
%% An entry is `{KeyBin, [{ActorBin, Counter, Ts, ValueBin}, ...]}', writes sorted by
%% (actor, counter). Keys, actors and values are stored as
%% `term_to_binary(T, [deterministic, {minor_version, 2}])' without the leading 131.
%% The shape is a pure function of the content: equal maps are equal terms and give
%% equal `to_binary/1' bytes on every node, whatever the history.
%%
%% The default actor is `node()', right for one replica per node that keeps its
%% state: a replica that starts empty must take an actor never used before (its dots
%% count from 1 again, and peers that saw the old ones take the new writes as
%% removed; README, "CRDTs").
%%
%% The trie (update/build/branch/collapse, node hashes, slice paths, Merkle summaries)
%% and the merge walk live in plexus_crdt_trie, the causal context and the entry
%% merge (writes carry their dots, so it is the OR-Set's) in plexus_crdt_ctx, the
%% anti-entropy exchange and its slice header in plexus_crdt_ae, all shared with
%% plexus_orset2; this module gives them its body codec and what a write means.
%%
%% == Trust ==
%% `from_binary/1' and `merge_missing/2' validate everything they read in pure Erlang
%% by exact matching (every field bounded, sorted and minimal; the decoded state is
%% re-encoded and must give the very input bytes) and never create atoms. A map term
%% received as a term must pass `validate/1'. Reading values (`get/2', `to_map/1',
%% `fold/3', `keys/1') decodes terms with `binary_to_term/1' semantics, so atoms may
%% be created: read values only of maps from nodes you trust.
-module(plexus_lwwmap).

-compile({no_auto_import, [size/1, get/1]}).

-export([new/0, put/3, put/4, put_all/2, put_all/3, remove/2, remove/3, remove_all/2]).
-export([put_delta/4, remove_delta/2, keyed_remove_delta/2, state_of/1]).
-export([get/2, get/3, is_key/2, keys/1, to_map/1, fold/3, size/1]).
-export([merge/1, merge/2, merge_delta/3, equal/2, digest/1, validate/1]).
%% The Erlang walk of merge/2 and the Erlang reader and writer of 'M' bytes: the
%% references the C walk, reader and writer are tested against.
-export([merge_erl/2, from_binary_erl/1, to_binary_erl/1]).
-export([to_binary/1, from_binary/1]).
-export([digest_tree/1, summary/2, diff/2, missing/2, merge_missing/2]).

-export_type([lwwmap/0, keyed_delta/0, path/0, summary/0, reason/0, write/0, entry/0, node_summary/0,
              tnode/0, ctx/0, error/0]).

%% Shared with the other trie-backed CRDT: the trie (shape, hashes, single-entry
%% updates), the causal context, and the anti-entropy exchange and its slices.
-import(plexus_crdt_trie, [update/5, mk_leaf/1, build/2, count/1, khash/1, collect/2]).
-import(plexus_crdt_ctx, [fold_cloud/1, next_dot/3, covers/2]).
-import(plexus_varint, [uvar/1, bytes/1]).

-define(MAX_BYTES, 67108864).
-define(IS_MAP(S), (is_tuple(S) andalso tuple_size(S) =:= 3 andalso
                    element(1, S) =:= lwwmap)).
-define(IS_KEYED(D), (is_tuple(D) andalso tuple_size(D) =:= 3 andalso
                      element(1, D) =:= lwwmap_delta)).

-type ctx() :: {#{binary() => pos_integer()}, #{{binary(), pos_integer()} => true}}.
-type write() :: {binary(), pos_integer(), plexus_hlc:timestamp(), binary()}.
-type entry() :: {binary(), [write(), ...]}.
-type tnode() ::
    nil
    | {l, non_neg_integer(), pos_integer(), binary(), tuple(), tuple()}
    | {b, non_neg_integer(), pos_integer(), tuple()}.
-opaque lwwmap() :: {lwwmap, ctx(), tnode()}.
%% A remove delta with the keys it removed (see "Keyed deltas").
-opaque keyed_delta() :: {lwwmap_delta, lwwmap(), [binary(), ...]}.
-type path() :: binary().
-type node_summary() ::
    nil | {leaf, non_neg_integer()} | {branch, non_neg_integer(), <<_:1024>>}.
-type summary() :: [{path(), node_summary()}].
-type reason() :: truncated | bad_version | wrong_type | bad_varint | bad_count | trailing_bytes
                | not_canonical | too_big | bad_state | bad_slice | bad_term
                | counter_exhausted.
-type error() :: {error, reason()}.

%% ---------------------------------------------------------------- construction

%% @doc The empty map.
-spec new() -> lwwmap().
new() ->
    {lwwmap, {#{}, #{}}, nil}.

%% @doc `put/4' as `node()'.
-spec put(lwwmap(), term(), term()) -> lwwmap() | error().
put(Map, Key, Value) ->
    put(Map, Key, Value, node()).

%% @doc Sets `Key' to `Value' by `Actor': replaces every write of the key this
%% replica has observed with one new write. One trie descent plus one leaf.
-spec put(lwwmap(), term(), term(), term()) -> lwwmap() | error().
put({lwwmap, _, _} = Map, Key, Value, Actor) when ?IS_MAP(Map) ->
    %% guard/1 written out: a single put is ~1 us, the closure a few % of it.
    try
        put_one(Map, Key, Value, Actor)
    catch
        error:_ -> {error, bad_state};
        throw:counter_exhausted -> {error, counter_exhausted}
    end;
put(Map, _, _, _) ->
    not_a_map(Map).

%% @doc `put/4' that also returns the delta: a small map that, merged into any
%% replica (in any order, any number of times), applies this put there.
-spec put_delta(lwwmap(), term(), term(), term()) -> {lwwmap(), lwwmap()} | error().
put_delta(Map, Key, Value, Actor) when ?IS_MAP(Map) ->
    guard(fun() ->
                  {Map2, Entry, Old} = do_put(Map, Key, Value, Actor),
                  [{A, C, _, _}] = element(2, Entry),
                  DCtx = fold_cloud({#{}, maps:from_list(
                                           [{{A, C}, true} |
                                            [{{WA, WC}, true} || {WA, WC, _, _} <- Old]])}),
                  {Map2, {lwwmap, DCtx, mk_leaf([Entry])}}
          end);
put_delta(Map, _, _, _) ->
    not_a_map(Map).

%% put/4 in one descent: the new entry is made from the old one inside the trie
%% update (do_put/4 looks the key up first, for the delta's context). In a large map
%% each descent is mostly cache misses, so one instead of two is most of the gain.
put_one({lwwmap, {VV, Cloud}, Root}, Key, Value, Actor) ->
    A = enc(Actor),
    K = enc(Key),
    V = enc(Value),
    {C, Ctx} = next_dot(A, VV, Cloud),
    New = fun(none) -> {K, [{A, C, plexus_hlc:next_after(0), V}]};
             ({_, Old}) -> {K, [{A, C, plexus_hlc:next_after(max_ts(Old)), V}]}
          end,
    {Root2, _, _} = update(Root, 0, khash(K), K, New),
    {lwwmap, Ctx, Root2}.

max_ts(Ws) ->
    lists:max([T || {_, _, T, _} <- Ws]).

%% -> {Map2, NewEntry, OldWrites}: the new write's timestamp follows the greatest of
%% the key's writes, so a put wins over everything it has observed.
do_put({lwwmap, {VV, Cloud}, Root}, Key, Value, Actor) ->
    A = enc(Actor),
    K = enc(Key),
    H = khash(K),
    Old = case lookup(Root, 0, H, K) of
              false -> [];
              {K, Ws} -> Ws
          end,
    Ts = plexus_hlc:next_after(lists:max([0 | [T || {_, _, T, _} <- Old]])),
    {C, Ctx} = next_dot(A, VV, Cloud),
    Entry = {K, [{A, C, Ts, enc(Value)}]},
    {Root2, _, _} = update(Root, 0, H, K, fun(_) -> Entry end),
    {{lwwmap, Ctx, Root2}, Entry, Old}.

%% @doc Puts every `{Key, Value}' of `Pairs' (a list or a map) as `node()'.
-spec put_all(lwwmap(), [{term(), term()}] | map()) -> lwwmap() | error().
put_all(Map, Pairs) ->
    put_all(Map, Pairs, node()).

%% @doc Puts every `{Key, Value}' of `Pairs' (a list or a map) by `Actor', in order.
-spec put_all(lwwmap(), [{term(), term()}] | map(), term()) -> lwwmap() | error().
put_all(Map, Pairs, Actor) when is_map(Pairs) ->
    put_all(Map, lists:sort(maps:to_list(Pairs)), Actor);
put_all(Map, Pairs, Actor) when is_list(Pairs) ->
    fold_ops(fun({K, V}, M) -> put(M, K, V, Actor);
                (_, _) -> erlang:error(badarg)
             end, Map, Pairs);
put_all(_, _, _) ->
    erlang:error(badarg).

%% @doc Removes `Key' (its observed writes; a concurrent put elsewhere survives).
%% Absent: unchanged.
-spec remove(lwwmap(), term()) -> lwwmap() | error().
remove({lwwmap, Ctx, Root} = Map, Key) when ?IS_MAP(Map) ->
    %% remove_delta/2's state without its delta (which this would build and drop), in
    %% one descent: the context already covers the writes the remove drops.
    K = enc(Key),
    try update(Root, 0, khash(K), K, none) of
        {_, _, 0} -> Map;
        {Root2, _, _} -> {lwwmap, Ctx, Root2}
    catch
        error:_ -> {error, bad_state}
    end;
remove(Map, _) ->
    not_a_map(Map).

%% @doc `remove/2'; the actor plays no part in a remove.
-spec remove(lwwmap(), term(), term()) -> lwwmap() | error().
remove(Map, Key, _Actor) ->
    remove(Map, Key).

%% @doc `remove/2' that also returns the delta (the removed writes as a context).
-spec remove_delta(lwwmap(), term()) -> {lwwmap(), lwwmap()} | error().
remove_delta({lwwmap, Ctx, Root} = Map, Key) when ?IS_MAP(Map) ->
    guard(fun() ->
                  K = enc(Key),
                  H = khash(K),
                  case lookup(Root, 0, H, K) of
                      false ->
                          {Map, new()};
                      {K, Ws} ->
                          {Root2, _, _} = update(Root, 0, H, K, fun(_) -> none end),
                          DCtx = fold_cloud({#{}, maps:from_list(
                                                   [{{WA, WC}, true}
                                                    || {WA, WC, _, _} <- Ws])}),
                          {{lwwmap, Ctx, Root2}, {lwwmap, DCtx, nil}}
                  end
          end);
remove_delta(Map, _) ->
    not_a_map(Map).

%% @doc `remove_delta/2' with the delta keyed by `Key' (see "Keyed deltas"): merging it
%% into a map of n keys costs O(log n), where the plain delta, which names no key,
%% makes the merge walk the map. Absent: `{Map, new()}'.
-spec keyed_remove_delta(lwwmap(), term()) -> {lwwmap(), lwwmap() | keyed_delta()} | error().
keyed_remove_delta(Map, Key) ->
    case remove_delta(Map, Key) of
        {Map2, {lwwmap, {VV, Cloud}, nil} = Delta} when map_size(VV) + map_size(Cloud) > 0 ->
            {Map2, {lwwmap_delta, Delta, [enc(Key)]}};
        Other ->
            Other
    end.

%% @doc The map a keyed delta stands for (a map is its own). Every function but
%% `merge/1,2', `merge_delta/3', `to_binary/1', `from_binary/1' and `validate/1' takes
%% maps only.
-spec state_of(lwwmap() | keyed_delta()) -> lwwmap().
state_of({lwwmap_delta, Map, _}) -> Map;
state_of(Map) -> Map.

%% @doc Removes every key of `Keys'.
-spec remove_all(lwwmap(), [term()]) -> lwwmap() | error().
remove_all(Map, Keys) when is_list(Keys) ->
    fold_ops(fun(K, M) -> remove(M, K) end, Map, Keys);
remove_all(_, _) ->
    erlang:error(badarg).

%% ---------------------------------------------------------------- readers

%% @doc The value of `Key', or `{error, not_found}'.
-spec get(lwwmap(), term()) -> {ok, term()} | {error, not_found | reason()}.
get({lwwmap, _, Root} = Map, Key) when ?IS_MAP(Map) ->
    K = enc(Key),
    guard(fun() ->
                  case lookup(Root, 0, khash(K), K) of
                      false -> {error, not_found};
                      {K, Ws} -> {ok, dec(winner(Ws))}
                  end
          end);
get(Map, _) ->
    not_a_map(Map).

%% @doc The value of `Key', or `Default' when it is absent.
-spec get(lwwmap(), term(), term()) -> term() | error().
get(Map, Key, Default) ->
    case get(Map, Key) of
        {ok, V} -> V;
        {error, not_found} -> Default;
        Error -> Error
    end.

%% @doc Whether `Key' is present.
-spec is_key(lwwmap(), term()) -> boolean() | error().
is_key({lwwmap, _, Root} = Map, Key) when ?IS_MAP(Map) ->
    K = enc(Key),
    guard(fun() -> lookup(Root, 0, khash(K), K) =/= false end);
is_key(Map, _) ->
    not_a_map(Map).

%% @doc The keys, in bytewise order of their external format.
-spec keys(lwwmap()) -> [term()] | error().
keys({lwwmap, _, Root} = Map) when ?IS_MAP(Map) ->
    guard(fun() -> [dec(K) || K <- plexus_crdt_trie:sorted_keys(Root)] end);
keys(Map) ->
    not_a_map(Map).

%% @doc The map as an Erlang map of key => winning value.
-spec to_map(lwwmap()) -> map() | error().
to_map({lwwmap, _, Root} = Map) when ?IS_MAP(Map) ->
    %% A map has no order: the entries as the trie holds them, unsorted.
    guard(fun() ->
                  maps:from_list([{dec(K), dec(winner(Ws))} || {K, Ws} <- collect(Root, [])])
          end);
to_map(Map) ->
    not_a_map(Map).

%% @doc Folds `Fun(Key, Value, Acc)' over the entries in key order.
-spec fold(fun((term(), term(), Acc) -> Acc), Acc, lwwmap()) -> Acc | error().
fold(Fun, Acc, Map) when is_function(Fun, 3), ?IS_MAP(Map) ->
    case guard(fun() -> [{dec(K), dec(winner(Ws))} || {K, Ws} <- entries(Map)] end) of
        {error, _} = Error -> Error;
        KVs -> lists:foldl(fun({K, V}, A) -> Fun(K, V, A) end, Acc, KVs)
    end;
fold(Fun, _, Map) when is_function(Fun, 3) ->
    not_a_map(Map);
fold(_, _, _) ->
    erlang:error(badarg).

%% @doc The number of keys, O(1).
-spec size(lwwmap()) -> non_neg_integer() | error().
size({lwwmap, _, Root} = Map) when ?IS_MAP(Map) ->
    guard(fun() -> count(Root) end);
size(Map) ->
    not_a_map(Map).

%% ---------------------------------------------------------------- merging

%% @doc The merge (least upper bound) of two maps or deltas; subtrees with equal
%% hashes are taken whole. A small side (a delta) is merged key by key into the other,
%% one descent per key, when that is provably the full merge
%% (plexus_crdt_trie:merge_small/7): merging a `put_delta/4' or a
%% `keyed_remove_delta/2' into a map of n keys costs O(log n), not a walk of the map
%% (a plain `remove_delta/2' names no key: see merge_delta/3). Otherwise the walk runs
%% in C (c_src/nif/nif_trie.c), as plexus_orset2's. The same result either way, term
%% for term. Two keyed deltas merge into a keyed delta, anything else into a map.
-spec merge(lwwmap() | keyed_delta(), lwwmap() | keyed_delta()) ->
          lwwmap() | keyed_delta() | error().
merge({lwwmap, _, _} = A, {lwwmap, _, _} = B) when ?IS_MAP(A), ?IS_MAP(B) ->
    guard(fun() -> merge_named(A, B, []) end);
merge(A, B) when ?IS_MAP(A) orelse ?IS_KEYED(A), ?IS_MAP(B) orelse ?IS_KEYED(B) ->
    keyed_merge(A, B, []);
merge(A, B) when ?IS_MAP(A); ?IS_MAP(B); ?IS_KEYED(A); ?IS_KEYED(B) ->
    {error, bad_state};
merge(_, _) ->
    erlang:error(badarg).

%% @doc `merge/2' of a map and a delta, told the keys the delta may have removed
%% (`Keys', e.g. those given to `remove_delta/2'): a remove delta's context holds the
%% dots of the writes it removed, which could be any key's, so without the keys
%% merge/2 must walk the map; with them it goes to those keys, O(k log n). The keys
%% only say where to look: the merge checks that they account for every dot the
%% delta's context removes (else it walks in full), so the result is always merge/2's,
%% term for term, whatever `Keys' holds.
-spec merge_delta(lwwmap() | keyed_delta(), lwwmap() | keyed_delta(), [term()]) ->
          lwwmap() | keyed_delta() | error().
merge_delta({lwwmap, _, _} = Map, {lwwmap, _, _} = Delta, Keys)
  when ?IS_MAP(Map), ?IS_MAP(Delta), is_list(Keys) ->
    guard(fun() -> merge_named(Map, Delta, lists:usort([enc(K) || K <- Keys])) end);
merge_delta(A, B, Keys)
  when ?IS_MAP(A) orelse ?IS_KEYED(A), ?IS_MAP(B) orelse ?IS_KEYED(B), is_list(Keys) ->
    case guard(fun() -> lists:usort([enc(K) || K <- Keys]) end) of
        {error, _} = Error -> Error;
        Named -> keyed_merge(A, B, Named)
    end;
merge_delta(Map, Delta, Keys)
  when is_list(Keys), (?IS_MAP(Map) orelse ?IS_MAP(Delta) orelse ?IS_KEYED(Map) orelse
                       ?IS_KEYED(Delta)) ->
    {error, bad_state};
merge_delta(_, _, _) ->
    erlang:error(badarg).

%% == Keyed deltas ==
%% A remove delta is a map whose context holds the dots of the removed writes, with no
%% entry for their keys: merged as a map, the other side's every entry must be looked
%% at for writes that context covers, O(n). A keyed delta `{lwwmap_delta, Delta, Keys}'
%% carries, beside that map, the sorted bytes of the keys it removed, so a merge goes
%% straight to them, O(k log n). The keys only say where to look (merge_small/7 checks
%% that they account for every dot the context removes, else the merge walks in full):
%% the result is the merge of the two maps, term for term, whatever the keys.

%% Merges A and B, each a map or a well-formed keyed delta, with their keys and Named
%% as the keys to look at; two keyed deltas give a keyed delta with the union of
%% their keys. A keyed delta whose map or keys are malformed: bad_state.
keyed_merge(A, B, Named) ->
    case {split_keyed(A), split_keyed(B)} of
        {{SA, KA}, {SB, KB}} ->
            case guard(fun() -> merge_named(SA, SB, lists:umerge([KA, KB, Named])) end) of
                {lwwmap, _, _} = Merged when KA =/= [], KB =/= [] ->
                    {lwwmap_delta, Merged, lists:umerge(KA, KB)};
                Merged ->
                    Merged
            end;
        _ ->
            {error, bad_state}
    end.

%% {Map, RemovedKeys} of a map ([]) or a well-formed keyed delta; error otherwise.
split_keyed({lwwmap_delta, Map, Keys}) when ?IS_MAP(Map) ->
    case plexus_crdt_keys:valid(Keys) of
        true -> {Map, Keys};
        false -> error
    end;
split_keyed(Map) when ?IS_MAP(Map) ->
    {Map, []};
split_keyed(_) ->
    error.

%% The smaller side merged into the larger key by key (the keys in Named too), when
%% that is the full merge; else the walk.
merge_named({lwwmap, CA, RA}, {lwwmap, CB, RB}, Named) ->
    Small = case count(RB) =< count(RA) of
                true -> plexus_crdt_trie:merge_small(RA, CA, RB, CB, Named, fun write_dots/1,
                                                     entry_ops());
                false -> plexus_crdt_trie:merge_small(RB, CB, RA, CA, Named, fun write_dots/1,
                                                      entry_ops())
            end,
    Root = case Small of
               slow ->
                   plexus_crdt_trie:merge_native(RA, RB, CA, CB,
                                                 fun plexus_nif:trie_lwwmap_merge/5, entry_ops());
               R ->
                   R
           end,
    {lwwmap, plexus_crdt_ctx:merge(CA, CB), Root}.


%% @private
%% @doc `merge/2' by the Erlang walk alone (plexus_crdt_trie:merge_node/6); the same
%% result, term for term (the tests compare the two).
-spec merge_erl(lwwmap(), lwwmap()) -> lwwmap() | error().
merge_erl({lwwmap, CA, RA} = A, {lwwmap, CB, RB} = B) when ?IS_MAP(A), ?IS_MAP(B) ->
    guard(fun() -> {lwwmap, plexus_crdt_ctx:merge(CA, CB), merge_node(RA, RB, 0, CA, CB)} end);
merge_erl(A, B) when ?IS_MAP(A); ?IS_MAP(B) ->
    {error, bad_state};
merge_erl(_, _) ->
    erlang:error(badarg).

%% @doc The merge of a list of maps; `[]' gives `new()'.
-spec merge([lwwmap()]) -> lwwmap() | error().
merge(Maps) when is_list(Maps) ->
    fold_ops(fun(S, Acc) -> merge(Acc, S) end, new(), Maps);
merge(_) ->
    erlang:error(badarg).

%% @doc Whether two maps are equal: term equality (the representation is canonical).
-spec equal(lwwmap(), lwwmap()) -> boolean().
equal(A, B) when ?IS_MAP(A), ?IS_MAP(B) ->
    A =:= B;
equal(_, _) ->
    erlang:error(badarg).

%% @doc SHA-256 of the canonical bytes (OTP's `crypto', needed by this function
%% only). O(n log n): compare replicas with `digest_tree/1'.
-spec digest(lwwmap()) -> <<_:256>> | error().
digest(Map) ->
    case to_binary(Map) of
        {error, _} = Error -> Error;
        Bin -> crypto:hash(sha256, Bin)
    end.

%% @doc Checks a map term (or keyed delta) from an untrusted source completely: it must
%% be exactly the term `from_binary/1' builds from its own bytes.
-spec validate(term()) -> ok | error().
validate(Map) when ?IS_MAP(Map); ?IS_KEYED(Map) ->
    case to_binary(Map) of
        {error, _} ->
            {error, bad_state};
        Bin ->
            case from_binary(Bin) of
                {ok, Map} -> ok;
                {ok, _} -> {error, bad_state};
                {error, _} -> {error, bad_state}
            end
    end;
validate(_) ->
    {error, bad_state}.

%% ---------------------------------------------------------------- binary form

%% @doc The canonical binary `<<2, $M, Body>>'; equal maps give equal bytes. A keyed
%% delta is written `<<2, $K>>', its removed keys, then the body of its map.
-spec to_binary(lwwmap() | keyed_delta()) -> binary() | error().
to_binary({lwwmap_delta, Map, Keys}) when ?IS_MAP(Map) ->
    plexus_crdt_keys:to_binary($K, Keys, to_binary(Map));
to_binary({lwwmap_delta, _, _}) ->
    {error, bad_state};
to_binary({lwwmap, Ctx, Root} = Map) when ?IS_MAP(Map) ->
    %% written in C (the bytes encode_body/2 writes; the tests compare the two)
    plexus_nif:trie_encode(4, Ctx, Root);
to_binary(Map) ->
    not_a_map(Map).

%% @doc Reads a binary of unknown origin with full validation; never creates atoms.
%% A keyed delta's binary gives the keyed delta.
-spec from_binary(binary()) -> {ok, lwwmap() | keyed_delta()} | error().
from_binary(<<2, $K, Rest/binary>>) ->
    plexus_crdt_keys:from_binary(Rest, lwwmap_delta,
                                 fun(Body) -> from_binary(<<2, $M, Body/binary>>) end);
from_binary(<<2, $M, _/binary>> = Bin) ->
    %% The C reader validates and decodes (the terms decode_body/1 would build, with
    %% their hashes); bytes it refuses go to the Erlang reader, the reference, for its
    %% reason (and for maps of more actors than the C reader takes).
    case plexus_nif:trie_decode(Bin) of
        {ok, Ctx, Pairs} -> {ok, {lwwmap, Ctx, plexus_crdt_trie:from_decoded(Pairs)}};
        {error, _} -> from_binary_erl(Bin)
    end;
from_binary(<<V, _/binary>>) when V =/= 2 ->
    {error, bad_version};
from_binary(<<_, _, _/binary>>) ->
    {error, wrong_type};
from_binary(Bin) when is_binary(Bin) ->
    {error, truncated};
from_binary(_) ->
    erlang:error(badarg).

%% @private
%% @doc `to_binary/1' of a map by the Erlang encoder: the reference the C one is tested
%% against.
-spec to_binary_erl(lwwmap()) -> binary() | error().
to_binary_erl({lwwmap, Ctx, _} = Map) when ?IS_MAP(Map) ->
    guard(fun() -> iolist_to_binary([<<2, $M>> | encode_body(Ctx, entries(Map))]) end);
to_binary_erl(Map) ->
    not_a_map(Map).

%% @private
%% @doc `from_binary/1' of `0x02 'M'' bytes by the Erlang reader alone, every check
%% made in Erlang (what `from_binary/1' runs for bytes the C reader refuses); other
%% headers: `{error, wrong_type}'. The tests check that both readers accept the same
%% bytes.
-spec from_binary_erl(binary()) -> {ok, lwwmap()} | error().
from_binary_erl(<<2, $M, Body/binary>>) ->
    case decode_body(Body) of
        {ok, Ctx, Entries} ->
            {ok, {lwwmap, Ctx, build(0, [{khash(K), En} || {K, _} = En <- Entries])}};
        Error ->
            Error
    end;
from_binary_erl(Bin) when is_binary(Bin) ->
    {error, wrong_type}.

%% ---------------------------------------------------------------- anti-entropy

%% @doc The first message of an anti-entropy exchange: the root summary. The
%% exchange is that of `plexus_orset2' (see there and the README): A sends
%% `digest_tree(MapA)'; B answers with `diff(MapB, Summary)' = `{Descend, Ship}',
%% sends `summary(MapB, Descend)' back for another round while `Descend' is not empty,
%% and the two sides swap `missing(Map, Ship)' slices, applied with `merge_missing/2'.
-spec digest_tree(lwwmap()) -> summary() | error().
digest_tree(Map) ->
    summary(Map, [<<>>]).

%% @doc Summaries of the nodes at `Paths' (invalid paths are skipped).
-spec summary(lwwmap(), [path()]) -> summary() | error().
summary({lwwmap, _, Root} = Map, Paths) when ?IS_MAP(Map), is_list(Paths) ->
    guard(fun() -> plexus_crdt_ae:summary(Root, Paths) end);
summary(_, _) ->
    erlang:error(badarg).

%% @doc Compares remote summaries with this map: `{Descend, Ship}' paths.
-spec diff(lwwmap(), summary()) -> {[path()], [path()]} | error().
diff({lwwmap, _, Root} = Map, Remote) when ?IS_MAP(Map), is_list(Remote) ->
    guard(fun() -> plexus_crdt_ae:diff(Root, Remote) end);
diff(_, _) ->
    erlang:error(badarg).

%% @doc The slice of this map at `Paths': its whole context and the entries below
%% those paths, as a binary for `merge_missing/2'.
-spec missing(lwwmap(), [path()]) -> binary() | error().
missing({lwwmap, Ctx, Root} = Map, Paths) when ?IS_MAP(Map), is_list(Paths) ->
    guard(fun() -> plexus_crdt_ae:slice(Ctx, Root, Paths, fun encode_body/2) end);
missing(_, _) ->
    erlang:error(badarg).

%% @doc Merges a slice from `missing/2' of another replica (validated completely).
-spec merge_missing(lwwmap(), binary()) -> lwwmap() | error().
merge_missing({lwwmap, CL, Root} = Map, Slice) when ?IS_MAP(Map), is_binary(Slice) ->
    Merge = fun() -> plexus_crdt_ae:merge_missing(CL, Root, Slice, fun read_slice_body/1) end,
    case guard(Merge) of
        {error, _} = Error -> Error;
        {Ctx, Root2} -> {lwwmap, Ctx, Root2}
    end;
merge_missing(_, _) ->
    erlang:error(badarg).

%% A slice's body, read as from_binary/1 reads a map: by the C reader, whose binaries
%% are copies (so the merged map does not keep the whole slice alive through
%% sub-binaries of it); bytes it refuses go to the Erlang reader, for its reason and
%% for bodies of more actors than the C reader takes.
read_slice_body(Body) ->
    case plexus_nif:trie_decode(<<2, $M, Body/binary>>) of
        {ok, Ctx, Pairs} -> {ok, Ctx, [En || {En, _} <- Pairs]};
        {error, _} -> decode_body(Body)
    end.

%% ---------------------------------------------------------------- registers

%% The winning write: greatest (Ts, Actor, Value, Counter).
winner(Ws) ->
    {_, _, _, V} = lists:foldl(fun(W, Best) ->
                                       case reg(W) > reg(Best) of
                                           true -> W;
                                           false -> Best
                                       end
                               end, hd(Ws), tl(Ws)),
    V.

reg({A, C, Ts, V}) -> {Ts, A, V, C}.

%% ---------------------------------------------------------------- trie: single ops

lookup(Node, D, H, K) ->
    plexus_crdt_trie:lookup(Node, D, H, K).

entries({lwwmap, _, Root}) ->
    plexus_crdt_trie:sorted(Root).

%% ---------------------------------------------------------------- context and merge

write_dots({_, Ws}) ->
    [{A, C} || {A, C, _, _} <- Ws].

%% The merge walk lives in plexus_crdt_trie, the entry merge in plexus_crdt_ctx.
merge_node(A, B, D, CA, CB) ->
    plexus_crdt_trie:merge_node(A, B, D, CA, CB, entry_ops()).

entry_ops() ->
    plexus_crdt_ctx:entry_ops().

%% ---------------------------------------------------------------- body codec

%% actors (sorted, with vv), cloud dots, entries (sorted by key) with their writes.
encode_body({VV, Cloud}, Entries) ->
    CloudDots = lists:sort(maps:keys(Cloud)),
    Actors = lists:usort(maps:keys(VV) ++ [A || {A, _} <- CloudDots]),
    Index = maps:from_list(lists:zip(Actors, lists:seq(0, length(Actors) - 1))),
    [uvar(length(Actors)),
     [[bytes(A), uvar(maps:get(A, VV, 0))] || A <- Actors],
     uvar(length(CloudDots)),
     [[uvar(maps:get(A, Index)), uvar(C)] || {A, C} <- CloudDots],
     uvar(length(Entries)),
     encode_entries(Entries, Index, <<>>)].

%% The keys and their writes, appended to one binary (an iolist per entry cost more
%% than the rest of to_binary/1 at 100k keys).
encode_entries([{K, Ws} | T], Index, Acc) ->
    Acc2 = put_uvar(length(Ws), put_bytes(K, Acc)),
    encode_entries(T, Index, encode_writes(Ws, Index, Acc2));
encode_entries([], _, Acc) ->
    Acc.

encode_writes([{A, C, Ts, V} | T], Index, Acc) ->
    Acc2 = put_uvar(Ts, put_uvar(C, put_uvar(maps:get(A, Index), Acc))),
    encode_writes(T, Index, put_bytes(V, Acc2));
encode_writes([], _, Acc) ->
    Acc.

put_bytes(B, Acc) ->
    <<(put_uvar(byte_size(B), Acc))/binary, B/binary>>.

put_uvar(X, Acc) when X < 128 -> <<Acc/binary, X>>;
put_uvar(X, Acc) when X >= 1 bsl 56, X < 1 bsl 63 ->
    %% Nine bytes (an HLC timestamp) in one append.
    <<Acc/binary, 1:1, (X band 127):7, 1:1, ((X bsr 7) band 127):7,
      1:1, ((X bsr 14) band 127):7, 1:1, ((X bsr 21) band 127):7,
      1:1, ((X bsr 28) band 127):7, 1:1, ((X bsr 35) band 127):7,
      1:1, ((X bsr 42) band 127):7, 1:1, ((X bsr 49) band 127):7, (X bsr 56)>>;
put_uvar(X, Acc) -> put_uvar(X bsr 7, <<Acc/binary, 1:1, (X band 127):7>>).

%% Strict reader: every count bounded by the bytes left, every varint minimal and
%% below 2^64, every bytes field 1..64 MiB; actors, cloud dots, keys and writes
%% strictly sorted; every write covered by the context; the context canonical. The
%% re-encoding of what was read must be the input itself, which rules out any
%% second spelling of a state. Errors name the first rule broken.
%% The context and entries of an 'M' body, read strictly (the Erlang reader).
decode_body(Body) ->
    try
        {NA, R1} = count_field(Body),
        {Actors, R2} = read_n(NA, R1, fun(B) ->
                                              {A, B1} = read_bytes(B),
                                              {V, B2} = plexus_varint:read(B1),
                                              {{A, V}, B2}
                                      end),
        strictly_sorted([A || {A, _} <- Actors]),
        ActorT = list_to_tuple([A || {A, _} <- Actors]),
        Actor = fun(I) when I < NA -> element(I + 1, ActorT);
                   (_) -> throw(bad_state)
                end,
        Dot = fun(B) ->
                      {I, B1} = plexus_varint:read(B),
                      {C, B2} = plexus_varint:read(B1),
                      positive(C),
                      {{Actor(I), C}, B2}
              end,
        {NC, R3} = count_field(R2),
        {Cloud, R4} = read_n(NC, R3, Dot),
        strictly_sorted(Cloud),
        {NE, R5} = count_field(R4),
        Write = fun(B) ->
                        {{A, C}, B1} = Dot(B),
                        {Ts, B2} = plexus_varint:read(B1),
                        {V, B3} = read_bytes(B2),
                        {{A, C, Ts, V}, B3}
                end,
        {Entries, Rest} = read_n(NE, R5, fun(B) ->
                                                 {K, B1} = read_bytes(B),
                                                 {NW, B2} = count_field(B1),
                                                 positive(NW),
                                                 {Ws, B3} = read_n(NW, B2, Write),
                                                 strictly_sorted([{A, C} || {A, C, _, _} <- Ws]),
                                                 {{K, Ws}, B3}
                                         end),
        Rest =:= <<>> orelse throw(trailing_bytes),
        strictly_sorted([K || {K, _} <- Entries]),
        VV = maps:from_list([{A, V} || {A, V} <- Actors, V > 0]),
        Ctx = {VV, maps:from_list([{D, true} || D <- Cloud])},
        canonical(Ctx, Entries, Body),
        {ok, Ctx, Entries}
    catch
        throw:Reason -> {error, Reason};
        error:_ -> {error, bad_state}
    end.

%% What only whole-state checks find: a context not folded, a write whose dot the
%% context does not cover, and any second spelling (the bytes must be those of
%% encode_body/2).
canonical(Ctx, Entries, Body) ->
    fold_cloud(Ctx) =:= Ctx orelse throw(not_canonical),
    lists:all(fun({_, Ws}) -> lists:all(fun(W) -> covers(Ctx, W) end, Ws) end, Entries)
        orelse throw(bad_state),
    iolist_to_binary(encode_body(Ctx, Entries)) =:= Body orelse throw(not_canonical).

count_field(B) ->
    {N, R} = plexus_varint:read(B),
    N =< byte_size(R) orelse throw(truncated),
    {N, R}.

positive(N) when N > 0 -> ok;
positive(_) -> throw(bad_state).

strictly_sorted([X, Y | T]) when X < Y -> strictly_sorted([Y | T]);
strictly_sorted([_, _ | _]) -> throw(not_canonical);
strictly_sorted(_) -> ok.

read_n(N, Bin, Fun) ->
    read_n(N, Bin, Fun, []).

read_n(0, Bin, _, Acc) ->
    {lists:reverse(Acc), Bin};
read_n(N, Bin, Fun, Acc) ->
    {X, Rest} = Fun(Bin),
    read_n(N - 1, Rest, Fun, [X | Acc]).

read_bytes(Bin) ->
    {L, R} = plexus_varint:read(Bin),
    L >= 1 orelse throw(bad_state),
    L =< ?MAX_BYTES orelse throw(too_big),
    case R of
        <<B:L/binary, Rest/binary>> -> {B, Rest};
        _ -> throw(truncated)
    end.

%% ---------------------------------------------------------------- helpers

%% Key, actor and value bytes: the external format without its leading 131 (the
%% common shapes built in Erlang, see plexus_term_bytes).
enc(Term) ->
    plexus_term_bytes:field(Term).

%% Decoding a stored key or value: may create atoms (see the module doc); bytes that
%% are no term give bad_term.
dec(Bin) ->
    try binary_to_term(<<131, Bin/binary>>)
    catch error:badarg -> throw({bad_term, Bin})
    end.

fold_ops(Fun, Acc, [H | T]) ->
    case Fun(H, Acc) of
        {error, _} = Error -> Error;
        Acc2 -> fold_ops(Fun, Acc2, T)
    end;
fold_ops(_, Acc, []) ->
    Acc;
fold_ops(_, _, _) ->
    erlang:error(badarg).

not_a_map({lwwmap, _, _}) ->
    {error, bad_state};
not_a_map({lwwmap_delta, _, _}) ->
    {error, bad_state};
not_a_map(_) ->
    erlang:error(badarg).

guard(Fun) ->
    try
        Fun()
    catch
        error:_ -> {error, bad_state};
        throw:{bad_term, _} -> {error, bad_term};
        throw:counter_exhausted -> {error, counter_exhausted}
    end.
