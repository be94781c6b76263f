%% @doc Add-wins observed-remove set (ORSWOT), version 2 representation: a canonical
%% hash trie of small chunks held as plain Erlang terms, so that single operations cost
%% O(log n + chunk) instead of a copy of the whole state, merges cost what diverged, and
%% two replicas can find their differences with a Merkle exchange.
%%
%% Semantics are exactly those of `plexus_orset_v1' (same dots, same context rules,
%% same add-wins merge): `to_binary/1' of a v2 set is, after its two header bytes, the
%% very body `plexus_orset_v1' writes for the same history (the tests check this byte
%% for byte). `plexus_orset' is the public API over this representation.
%%
%% == Representation ==
%% `{orset2, {VV, Cloud}, Root}':
%% <ul>
%% <li>`VV :: #{ActorBin => pos_integer()}' and `Cloud :: #{{ActorBin, Ctr} => true}'
%%     are the causal context (version vector and dot cloud, folded canonically as in
%%     `include/plexus/crdt_format.md'); ActorBin and element bytes are
%%     `plexus_nif:encode/1' of the terms, as in v1.</li>
%% <li>`Root' is a trie node. An element's place is fixed by its 32-bit key hash
%%     `erlang:phash2(ElemBin, 1 bsl 32)' alone: at depth D it goes to child `nibble D'
%%     of that hash (high nibble first). A node that holds at most `?MAX_LEAF' entries
%%     is a leaf `{l, Hash, Count, Frags, EntryHashes, Entries}' (Entries a tuple
%%     sorted bytewise by element, each `{ElemBin, Dots}', Dots sorted
%%     `[{ActorBin, Ctr}]'; Frags the 16-bit key-hash fragments of the entries, which
%%     a lookup scans, and EntryHashes each entry's hash, which a merge compares
%%     instead of the entries, see plexus_crdt_trie); a larger one is a branch
%%     `{b, Hash, Count, Children}' (a 16-tuple); an empty one is `nil'. The shape is
%%     therefore a pure function of the element set: equal sets are equal terms
%%     (`=:=') on every node, whatever the history, and chunk boundaries depend only on
%%     element bytes, with a bounded chunk size (a leaf only exceeds `?MAX_LEAF' at
%%     depth 8, i.e. among elements with equal 32-bit key hashes).</li>
%% <li>`Hash' of a leaf or branch is the sum modulo 2^56 of the 56-bit hashes of the
%%     entries below it (`plexus_crdt_trie:ehash/1', a 56-bit hash computed in C). It is updated
%%     incrementally along the path of a single op and across a merge, and
%%     equal hashes let merge and anti-entropy skip a subtree. It detects honest
%%     differences; it is NOT collision resistant against crafted elements (a sum of
%%     hashes can be steered), so `digest/1' and `equal/2' do not rely on it.</li>
%% </ul>
%%
%% == Why skipping equal subtrees is a correct ORSWOT merge ==
%% The merge of an element present on both sides keeps every dot both sides have, and
%% of the others those the other side's context has not seen. If two subtrees have the
%% same entries (same elements, same dots), every dot of every entry is on both sides,
%% so every dot is kept whatever the two contexts are: the subtree merges to itself.
%% Entries only one side has are exactly those in subtrees whose hashes differ, and
%% those are merged entry by entry against the other side's context. A difference in
%% context alone (say B has seen a remove whose element A never had) changes no entry:
%% the merged context is the pointwise join and the trees are untouched.
%%
%% == Trust ==
%% `from_binary/1' and `merge_missing/2' validate everything (the body through the
%% fuzzed C validator of v1). A set term received from an untrusted peer as a term
%% must go through `validate/1' first: the other functions check only its outer shape
%% and turn an internal mismatch into `{error, bad_state}'.
-module(plexus_orset2).

-compile({no_auto_import, [size/1]}).

-export([new/0, add/2, add/3, remove/2, remove/3, add_all/3, remove_all/2]).
-export([member/2, value/1, to_list/1, size/1]).
-export([merge/1, merge/2, equal/2, digest/1, validate/1]).
%% The Erlang walk of merge/2 and the Erlang writer of version 1 bytes: the references
%% the C walk and writer are tested against (and the bench's baselines).
-export([merge_erl/2, to_v1_erl/1]).
-export([to_binary/1, from_binary/1, to_v1/1]).
-export([digest_tree/1, summary/2, diff/2, missing/2, merge_missing/2]).
%% Deltas and one-pass batches (the plexus_orset API runs on these).
-export([add_delta/3, remove_delta/2, apply_ops/4, remove_matching/3, merge_delta/2,
         merge_delta/3]).
%% Deltas that name the elements they remove (what plexus_orset hands out).
-export([keyed_remove_delta/2, state_of/1]).

-export_type([orset2/0, keyed_delta/0, path/0, summary/0, reason/0, entry/0, node_summary/0,
              tnode/0, ctx/0, error/0]).

%% Shared with the other trie-backed CRDT: the trie (shape, hashes, single-entry
%% updates), the causal context, and the anti-entropy exchange and its slices.
-import(plexus_crdt_trie, [update/5, build/2, count/1, khash/1, collect/2]).
-import(plexus_crdt_ctx, [fold_cloud/1, next_dot/3]).
-import(plexus_varint, [uvar/1, bytes/1]).

-define(IS_SET(S), (is_tuple(S) andalso tuple_size(S) =:= 3 andalso
                    element(1, S) =:= orset2)).
-define(IS_MODE(M), (M =:= state orelse M =:= delta orelse M =:= keyed_delta)).
-define(IS_KEYED(D), (is_tuple(D) andalso tuple_size(D) =:= 3 andalso
                      element(1, D) =:= orset2_delta)).

-type ctx() :: {#{binary() => pos_integer()}, #{{binary(), pos_integer()} => true}}.
-type entry() :: {binary(), [{binary(), pos_integer()}, ...]}.
-type tnode() ::
    nil
    | {l, non_neg_integer(), pos_integer(), binary(), tuple(), tuple()}
    | {b, non_neg_integer(), pos_integer(), tuple()}.
-opaque orset2() :: {orset2, ctx(), tnode()}.
%% A delta that removed elements, with their element bytes (sorted, at least one): the
%% state `orset2()' it stands for, plus where a merge finds the dots its context
%% removes. See "Keyed deltas" below.
-opaque keyed_delta() :: {orset2_delta, orset2(), [binary(), ...]}.
%% A trie position: one byte per nibble, from the root.
-type path() :: binary().
-type node_summary() ::
    nil | {leaf, non_neg_integer()} | {branch, non_neg_integer(), <<_:1024>>}.
-type summary() :: [{path(), node_summary()}].
-type reason() :: plexus_nif:reason() | bad_state | bad_slice | counter_exhausted.
-type error() :: {error, reason()}.

%% ---------------------------------------------------------------- construction

%% @doc The empty set.
-spec new() -> orset2().
new() ->
    {orset2, {#{}, #{}}, nil}.

%% @doc Adds `Elem' as `node()'.
-spec add(orset2(), term()) -> orset2() | error().
add(Set, Elem) ->
    add(Set, Elem, node()).

%% @doc Adds `Elem' with a fresh dot of `Actor' (superseding its earlier dots):
%% O(log n) trie descent plus O(chunk) work in the leaf.
-spec add(orset2(), term(), term()) -> orset2() | error().
add({orset2, {VV, Cloud}, Root} = Set, Elem, Actor) when ?IS_SET(Set) ->
    A = enc(Actor),
    E = enc(Elem),
    %% guard/1 written out: a single op is ~1 us, the closure would be a few % of it.
    try
        {C, Ctx} = next_dot(A, VV, Cloud),
        {Root2, _, _} = update(Root, 0, khash(E), E, {E, [{A, C}]}),
        {orset2, Ctx, Root2}
    catch
        error:_ -> {error, bad_state};
        throw:counter_exhausted -> {error, counter_exhausted}
    end;
add(Set, _, _) ->
    not_a_set(Set).

%% @doc Adds every element of `Elems' by `Actor', one op after the other.
-spec add_all(orset2(), [term()], term()) -> orset2() | error().
add_all(Set, Elems, Actor) when is_list(Elems) ->
    fold_ops(fun(E, S) -> add(S, E, Actor) end, Set, Elems).

%% @doc Removes `Elem' (its dots stay covered by the context). Absent: unchanged.
-spec remove(orset2(), term()) -> orset2() | error().
remove({orset2, Ctx, Root} = Set, Elem) when ?IS_SET(Set) ->
    E = enc(Elem),
    try update(Root, 0, khash(E), E, none) of
        {_, _, 0} -> Set; % absent: the set itself, not an equal copy of its path
        {Root2, _, _} -> {orset2, Ctx, Root2}
    catch
        error:_ -> {error, bad_state}
    end;
remove(Set, _) ->
    not_a_set(Set).

%% @doc `remove/2'; the actor plays no part in a remove (riak_dt parity).
-spec remove(orset2(), term(), term()) -> orset2() | error().
remove(Set, Elem, _Actor) ->
    remove(Set, Elem).

%% @doc Removes every element of `Elems'.
-spec remove_all(orset2(), [term()]) -> orset2() | error().
remove_all(Set, Elems) when is_list(Elems) ->
    fold_ops(fun(E, S) -> remove(S, E) end, Set, Elems).

%% ---------------------------------------------------------------- readers

%% @doc Whether `Elem' is in the set: a trie descent and a search in one leaf.
-spec member(orset2(), term()) -> boolean() | error().
member({orset2, _, Root} = Set, Elem) when ?IS_SET(Set) ->
    E = enc(Elem),
    try
        lookup(Root, 0, khash(E), E)
    catch
        error:_ -> {error, bad_state}
    end;
member(Set, _) ->
    not_a_set(Set).

%% @doc The elements in bytewise order of their external format (as `plexus_orset_v1').
-spec to_list(orset2()) -> [term()] | error().
to_list({orset2, _, Root} = Set) when ?IS_SET(Set) ->
    case guard(fun() -> plexus_crdt_trie:sorted_keys(Root) end) of
        {error, _} = Error -> Error;
        Keys -> decode_keys(Keys)
    end;
to_list(Set) ->
    not_a_set(Set).

%% @doc Same as `to_list/1'.
-spec value(orset2()) -> [term()] | error().
value(Set) ->
    to_list(Set).

%% @doc The number of elements, O(1).
-spec size(orset2()) -> non_neg_integer() | error().
size({orset2, _, Root} = Set) when ?IS_SET(Set) ->
    guard(fun() -> count(Root) end);
size(Set) ->
    not_a_set(Set).

%% ---------------------------------------------------------------- merging

%% @doc The merge (least upper bound) of two sets, or of keyed deltas (as
%% `merge_delta/2'). A small side (a delta) is merged entry by entry into the other,
%% O(small x log n), when that is provably the full merge (see `merge_delta/2');
%% otherwise both tries are walked, and subtrees with equal hashes are taken as they
%% are. The walk runs in C (one NIF call, on a dirty scheduler once it outgrows the
%% inline budget): entries both sides hold alike are kept as the same terms, the
%% others merged dot by dot.
-spec merge(orset2() | keyed_delta(), orset2() | keyed_delta()) ->
          orset2() | keyed_delta() | error().
merge(A, B) when ?IS_KEYED(A); ?IS_KEYED(B) ->
    %% Keyed deltas (see "Keyed deltas"): their keys say where to look.
    keyed_merge(A, B, fun merge_keyed/4);
merge(A, B) when ?IS_SET(A), ?IS_SET(B) ->
    %% A small side (a delta) is merged entry by entry when that is the full merge
    %% (merge_keyed/4); two large sides are walked (merge_full/2).
    merge_keyed(A, [], B, []);
merge(A, B) when ?IS_SET(A) ->
    not_a_set(B);
merge(A, _) ->
    not_a_set(A).

%% @private
%% @doc `merge/2' by the Erlang walk alone (plexus_crdt_trie:merge_node/6), which
%% `merge/2' runs only when the C walk hands a merge back; the same result, term for
%% term (the tests compare the two).
-spec merge_erl(orset2(), orset2()) -> orset2() | error().
merge_erl({orset2, CA, RA} = A, {orset2, CB, RB} = B) when ?IS_SET(A), ?IS_SET(B) ->
    guard(fun() -> {orset2, plexus_crdt_ctx:merge(CA, CB), merge_node(RA, RB, 0, CA, CB)} end);
merge_erl(A, B) when ?IS_SET(A) ->
    not_a_set(B);
merge_erl(A, _) ->
    not_a_set(A).

%% @doc The merge of a list of sets; `[]' gives `new()'.
-spec merge([orset2()]) -> orset2() | error().
merge(Sets) when is_list(Sets) ->
    fold_ops(fun(S, Acc) -> merge(Acc, S) end, new(), Sets);
merge(_) ->
    erlang:error(badarg).

%% @doc Whether two sets are equal. The representation is canonical, so this is term
%% equality (shared subtrees compare in O(1)).
-spec equal(orset2(), orset2()) -> boolean().
equal(A, B) when ?IS_SET(A), ?IS_SET(B) ->
    A =:= B;
equal(_, _) ->
    erlang:error(badarg).

%% @doc BLAKE2b-256 of the canonical bytes (the v1 form, so a v1 and a v2 copy of a
%% set have the same digest). O(n log n): use `digest_tree/1' to compare replicas.
-spec digest(orset2()) -> <<_:256>> | error().
digest(Set) ->
    case to_v1(Set) of
        {error, _} = Error -> Error;
        V1 -> plexus_nif:orset_digest(V1)
    end.

%% @doc Checks a set term (or keyed delta) from an untrusted source completely: it must
%% be exactly the term `from_binary/1' builds from its own bytes.
-spec validate(term()) -> ok | error().
validate(Set) when ?IS_SET(Set); ?IS_KEYED(Set) ->
    case to_binary(Set) of
        {error, _} = Error ->
            Error;
        Bin ->
            case from_binary(Bin) of
                {ok, Set} -> ok;
                {ok, _} -> {error, bad_state};
                {error, _} = Error -> Error
            end
    end;
validate(_) ->
    {error, bad_state}.

%% ---------------------------------------------------------------- binary form

%% @doc The canonical version 2 binary: `<<2, $S>>' then the v1 body (context, then
%% elements in bytewise order). Equal sets give equal bytes on every node.
%% A keyed delta (see "Keyed deltas") is written `<<2, $D>>', its removed elements,
%% then the same body.
-spec to_binary(orset2() | keyed_delta()) -> binary() | error().
to_binary({orset2_delta, Set, Removed}) when ?IS_SET(Set) ->
    plexus_crdt_keys:to_binary($D, Removed, to_v1(Set));
to_binary({orset2_delta, _, _}) ->
    {error, bad_state};
to_binary(Set) ->
    case to_v1(Set) of
        <<1, $S, Body/binary>> -> <<2, $S, Body/binary>>;
        Error -> Error
    end.

%% @doc The same set as a version 1 binary (`plexus_orset_v1' state).
-spec to_v1(orset2()) -> binary() | error().
to_v1({orset2, Ctx, Root} = Set) when ?IS_SET(Set) ->
    %% written in C (the bytes encode_v1/2 writes; the tests compare the two)
    plexus_nif:trie_encode(2, Ctx, Root);
to_v1(Set) ->
    not_a_set(Set).

%% @private
%% @doc `to_v1/1' written by the Erlang encoder: the reference the C one is tested
%% against.
-spec to_v1_erl(orset2()) -> binary() | error().
to_v1_erl({orset2, Ctx, _} = Set) when ?IS_SET(Set) ->
    guard(fun() -> iolist_to_binary(encode_v1(Ctx, entries(Set))) end);
to_v1_erl(Set) ->
    not_a_set(Set).

%% @doc Reads a version 1 or version 2 binary of unknown origin: full validation by
%% the strict C decoder, then the trie is built (O(n log n)). Never creates atoms.
%% A keyed delta's binary gives the keyed delta.
-spec from_binary(binary()) -> {ok, orset2() | keyed_delta()} | error().
from_binary(<<2, $S, Body/binary>>) ->
    from_binary(<<1, $S, Body/binary>>);
from_binary(<<2, $D, Rest/binary>>) ->
    plexus_crdt_keys:from_binary(Rest, orset2_delta,
                                 fun(Body) -> from_binary(<<1, $S, Body/binary>>) end);
from_binary(<<1, $S, _/binary>> = V1) ->
    %% validated and decoded in C (the entries, each with its hash, every binary a copy)
    case plexus_nif:trie_decode(V1) of
        {ok, Ctx, Pairs} -> {ok, {orset2, Ctx, plexus_crdt_trie:from_decoded(Pairs)}};
        Error -> Error
    end;
from_binary(<<V, _/binary>>) when V =/= 1, V =/= 2 ->
    {error, bad_version};
from_binary(<<_, _, _/binary>>) ->
    {error, wrong_type};
from_binary(Bin) when is_binary(Bin) ->
    {error, truncated};
from_binary(_) ->
    erlang:error(badarg).

%% ---------------------------------------------------------------- anti-entropy

%% @doc The first message of an anti-entropy exchange: the root summary.
%%
%% Exchange between replicas A and B (any transport; every message is a plain term or
%% binary): A sends `digest_tree(SetA)'; B answers `diff(SetB, Summary)' =
%% `{Descend, Ship}': it sends `summary(SetB, Descend)' back, and the two sides swap
%% `missing(Set, Ship)' slices, which each applies with `merge_missing/2'. Rounds
%% repeat on the summaries of `Descend' until it is empty (at most 8, in practice
%% about log16(n / 32) + 1). Only differing subtrees are summarised or shipped.
-spec digest_tree(orset2()) -> summary() | error().
digest_tree(Set) ->
    summary(Set, [<<>>]).

%% @doc Summaries of the nodes at `Paths': a hash for a leaf or a subtree of at most
%% 256 entries, else the branch's hash and its 16 child hashes (64 bits each, 0 for an
%% empty child). A forged set term gives `{error, bad_state}'.
-spec summary(orset2(), [path()]) -> summary() | error().
summary({orset2, _, Root} = Set, Paths) when ?IS_SET(Set), is_list(Paths) ->
    guard(fun() -> plexus_crdt_ae:summary(Root, Paths) end);
summary(_, _) ->
    erlang:error(badarg).

%% @doc Compares remote summaries with this set: `Descend' lists child paths whose
%% hashes differ under branches on both sides (ask for their summaries), `Ship' the
%% paths where a leaf or empty node differs (exchange `missing/2' slices for them).
-spec diff(orset2(), summary()) -> {[path()], [path()]} | error().
diff({orset2, _, Root} = Set, Remote) when ?IS_SET(Set), is_list(Remote) ->
    guard(fun() -> plexus_crdt_ae:diff(Root, Remote) end);
diff(_, _) ->
    erlang:error(badarg).

%% @doc The slice of this set at `Paths': its whole context and the entries below
%% those paths, as a binary for `merge_missing/2'.
-spec missing(orset2(), [path()]) -> binary() | error().
missing({orset2, Ctx, Root} = Set, Paths) when ?IS_SET(Set), is_list(Paths) ->
    guard(fun() -> plexus_crdt_ae:slice(Ctx, Root, Paths, fun slice_body/2) end);
missing(_, _) ->
    erlang:error(badarg).

%% @doc Merges a slice from `missing/2' of another replica (validated completely):
%% the contexts join and each sliced subtree merges with the local one. When both
%% sides sent each other the slices of the paths `diff/2' found, both end with the
%% merge of the two sets, byte for byte.
-spec merge_missing(orset2(), binary()) -> orset2() | error().
merge_missing({orset2, CL, Root} = Set, Slice) when ?IS_SET(Set), is_binary(Slice) ->
    Merge = fun() -> plexus_crdt_ae:merge_missing(CL, Root, Slice, fun read_slice_body/1) end,
    case guard(Merge) of
        {error, _} = Error -> Error;
        {Ctx, Root2} -> {orset2, Ctx, Root2}
    end;
merge_missing(_, _) ->
    erlang:error(badarg).

%% ---------------------------------------------------------------- trie: single ops

lookup(Node, D, K, E) ->
    plexus_crdt_trie:lookup(Node, D, K, E) =/= false.

entries({orset2, _, Root}) ->
    plexus_crdt_trie:sorted(Root).

%% ---------------------------------------------------------------- merge

%% The whole merge of two roots runs in C (c_src/nif/nif_trie.c: the same walk and
%% entry merge as the Erlang ones, entry terms reused, no per-entry trip through
%% Erlang); the Erlang walk stays for the few tries the NIF hands back and for slices.
merge_root(RA, RB, CA, CB) ->
    plexus_crdt_trie:merge_native(RA, RB, CA, CB, fun plexus_nif:trie_orset_merge/5,
                                  entry_ops()).

%% The merge walk lives in plexus_crdt_trie, the entry merge in plexus_crdt_ctx.
merge_node(A, B, D, CA, CB) ->
    plexus_crdt_trie:merge_node(A, B, D, CA, CB, entry_ops()).

entry_ops() ->
    plexus_crdt_ctx:entry_ops().

%% ---------------------------------------------------------------- slice body

%% A slice carries the v1 body (context, sorted entries), validated by the strict C
%% decoder as from_binary/1's.
slice_body(Ctx, Entries) ->
    <<1, $S, Body/binary>> = iolist_to_binary(encode_v1(Ctx, Entries)),
    Body.

read_slice_body(Body) ->
    %% Validated and decoded in C: every binary of the entries is a copy, so the
    %% merged set does not keep the whole slice alive through sub-binaries of it.
    case plexus_nif:trie_decode(<<1, $S, Body/binary>>) of
        {ok, Ctx, Pairs} -> {ok, Ctx, [En || {En, _} <- Pairs]};
        Error -> Error
    end.

%% ---------------------------------------------------------------- v1 body codec

encode_v1({VV, Cloud}, Entries) ->
    CloudDots = lists:sort(maps:keys(Cloud)),
    Actors = lists:usort(maps:keys(VV) ++ [A || {A, _} <- CloudDots]),
    Index = maps:from_list(lists:zip(Actors, lists:seq(0, length(Actors) - 1))),
    [<<1, $S>>, uvar(length(Actors)),
     [[bytes(A), uvar(maps:get(A, VV, 0))] || A <- Actors],
     uvar(length(CloudDots)),
     [[uvar(maps:get(A, Index)), uvar(C)] || {A, C} <- CloudDots],
     uvar(length(Entries)),
     encode_entries(Entries, Index, <<>>)].

%% The elements, appended to one binary (no iolist per entry: at 100k elements the
%% iolist cost more than the sort).
encode_entries([{E, [{A, C}]} | T], Index, Acc) when byte_size(E) < 128 ->
    %% The common entry: a short element with one dot, in one append.
    encode_entries(T, Index, <<Acc/binary, (byte_size(E)), E/binary, 1,
                               (uvar_bin(maps:get(A, Index)))/binary, (uvar_bin(C))/binary>>);
encode_entries([{E, Ds} | T], Index, Acc) ->
    Acc2 = put_uvar(length(Ds), <<(put_uvar(byte_size(E), Acc))/binary, E/binary>>),
    encode_entries(T, Index, encode_dots(Ds, Index, Acc2));
encode_entries([], _, Acc) ->
    Acc.

encode_dots([{A, C} | T], Index, Acc) ->
    encode_dots(T, Index, put_uvar(C, put_uvar(maps:get(A, Index), Acc)));
encode_dots([], _, Acc) ->
    Acc.

uvar_bin(X) when X < 128 -> <<X>>;
uvar_bin(X) when X < 16384 -> <<1:1, (X band 127):7, (X bsr 7)>>;
uvar_bin(X) when X < 2097152 ->
    <<1:1, (X band 127):7, 1:1, ((X bsr 7) band 127):7, (X bsr 14)>>;
uvar_bin(X) -> put_uvar(X, <<>>).

put_uvar(X, Acc) when X < 128 -> <<Acc/binary, X>>;
put_uvar(X, Acc) -> put_uvar(X bsr 7, <<Acc/binary, 1:1, (X band 127):7>>).

%% ---------------------------------------------------------------- helpers

%% Element and actor bytes as v1 stores them: the external format without its
%% leading version byte 131 (the common shapes built in Erlang, see plexus_term_bytes).
enc(Term) ->
    plexus_term_bytes:field(Term).

fold_ops(Fun, Acc, [H | T]) ->
    case Fun(H, Acc) of
        {error, _} = Error -> Error;
        Acc2 -> fold_ops(Fun, Acc2, T)
    end;
fold_ops(_, Acc, []) ->
    Acc;
fold_ops(_, _, _) ->
    erlang:error(badarg).

%% A set term is an {orset2, _, _} tuple; one whose inside does not match is a bad
%% state (hostile or corrupted), anything else a caller's type error.
not_a_set({orset2, _, _}) ->
    {error, bad_state};
not_a_set(_) ->
    erlang:error(badarg).

%% A set term whose inside does not have the shape this module builds (a hostile or
%% corrupted term) gives {error, bad_state} instead of an exception.
guard(Fun) ->
    try
        Fun()
    catch
        error:_ -> {error, bad_state};
        throw:counter_exhausted -> {error, counter_exhausted}
    end.

%% ---------------------------------------------------------------- deltas and batches
%%
%% The mutators of the public API (`plexus_orset') with the semantics of the v1 batch
%% (`c_src/core/crdt_orset_apply.c'), so the v1 form of every result is byte for byte
%% what plexus_orset_v1 writes: each element's ops are replayed in list order and only
%% the last one counts; every element whose last op is an add gets one fresh dot, the
%% counters given in bytewise element order; the delta is a set holding the added
%% entries, with the new dots and the dots removed or superseded as its context.

%% A batch with at least as many changes as the set has elements (building a set, or
%% replacing most of a small one) is applied by one build of the trie from the merged
%% entry list; a smaller one by one descent per change, which shares every untouched
%% subtree. Measured: a build hashes every entry again, so it only wins (about 2x)
%% from there on; at 10k elements and 2.5k changes the descents cost a quarter of it.
-define(BULK_RATIO, 1).

%% @doc `add/3' that also returns the delta: a set holding the element with its new
%% dot, and as context that dot and the dots it superseded. Merging the delta into any
%% replica that saw `Set' equals the add there; deltas commute and are idempotent.
-spec add_delta(orset2(), term(), term()) -> {orset2(), orset2()} | error().
add_delta(Set, Elem, Actor) ->
    apply_ops(Set, [{add, Elem}], Actor, delta).

%% @doc `remove/2' that also returns the delta: an empty set whose context holds the
%% removed dots (the empty set when `Elem' is absent).
-spec remove_delta(orset2(), term()) -> {orset2(), orset2()} | error().
remove_delta({orset2, Ctx, Root} = Set, Elem) when ?IS_SET(Set) ->
    E = enc(Elem),
    guard(fun() ->
                  K = khash(E),
                  case find(Root, 0, K, E) of
                      false ->
                          {Set, new()};
                      {E, Dots} ->
                          {Root2, _, _} = update(Root, 0, K, E, fun(_) -> none end),
                          {{orset2, Ctx, Root2}, {orset2, dots_ctx(Dots), nil}}
                  end
          end);
remove_delta(Set, _) ->
    not_a_set(Set).

%% @doc `remove_delta/2' with the delta keyed by `Elem' (see "Keyed deltas"): merging
%% it into a replica of n elements costs O(log n), where the plain delta's context
%% alone would make the merge look at every element. Absent: `{Set, new()}'.
-spec keyed_remove_delta(orset2(), term()) -> {orset2(), orset2() | keyed_delta()} | error().
keyed_remove_delta(Set, Elem) ->
    case remove_delta(Set, Elem) of
        {Set2, {orset2, {VV, Cloud}, nil} = Delta} when map_size(VV) + map_size(Cloud) > 0 ->
            {Set2, {orset2_delta, Delta, [enc(Elem)]}};
        Other ->
            Other
    end.

%% @doc The state a keyed delta stands for (a set is its own state). Every function
%% but `merge_delta/2', `to_binary/1', `from_binary/1' and `validate/1' takes states
%% only.
-spec state_of(orset2() | keyed_delta()) -> orset2().
state_of({orset2_delta, Set, _}) -> Set;
state_of(Set) -> Set.

%% @doc Applies a flat op list (`{add, Elem}' and `{remove, Elem}') by `Actor' in one
%% batch; `delta' also returns the batch's delta, `keyed_delta' the same delta keyed
%% by the elements it removed (a plain delta when it removed none). A batch at least
%% as large as the set builds the trie at once; a smaller one descends once per
%% changed element.
-spec apply_ops(orset2(), [{add | remove, term()}], term(), state) -> orset2() | error();
               (orset2(), [{add | remove, term()}], term(), delta) ->
          {orset2(), orset2()} | error();
               (orset2(), [{add | remove, term()}], term(), keyed_delta) ->
          {orset2(), orset2() | keyed_delta()} | error().
apply_ops(Set, Ops, Actor, Mode) when ?IS_SET(Set), ?IS_MODE(Mode) ->
    Encoded = enc_ops(Ops),
    A = enc(Actor),
    guard(fun() -> apply_encoded(Set, Encoded, A, Mode) end);
apply_ops(Set, _, _, _) ->
    not_a_set(Set).

%% @doc Removes every element for which `Pred' returns `true' (an element on which
%% `Pred' raises an error does not match), in one batch; `delta' also returns the
%% delta (`keyed_delta': keyed by the removed elements, as for `apply_ops/4'). O(n):
%% every element is decoded (with `binary_to_term/1' semantics, as `to_list/1') and
%% tested.
-spec remove_matching(orset2(), fun((term()) -> boolean()), state) -> orset2() | error();
                     (orset2(), fun((term()) -> boolean()), delta) ->
          {orset2(), orset2()} | error();
                     (orset2(), fun((term()) -> boolean()), keyed_delta) ->
          {orset2(), orset2() | keyed_delta()} | error().
remove_matching({orset2, _, Root} = Set, Pred, Mode)
  when ?IS_SET(Set), is_function(Pred, 1), ?IS_MODE(Mode) ->
    %% Trie order, not sorted: the batch sorts only the elements that match.
    case guard(fun() -> collect(Root, []) end) of
        {error, _} = Error ->
            Error;
        Entries ->
            try [{remove, E} || {E, _} <- Entries, matches(Pred, decode(E))] of
                Ops -> guard(fun() -> apply_encoded(Set, Ops, <<>>, Mode) end)
            catch
                throw:bad_term -> {error, bad_term}
            end
    end;
remove_matching(Set, _, _) when ?IS_SET(Set) ->
    erlang:error(badarg);
remove_matching(Set, _, _) ->
    not_a_set(Set).

%% == Keyed deltas ==
%% A delta that removes elements is a state whose context holds the removed dots,
%% with no entry for the elements they belonged to: merging it as a state must look
%% at every entry of the other side for dots its context covers, O(n). A keyed delta
%% `{orset2_delta, Delta, Removed}' carries, beside that state, the sorted bytes of the
%% elements it removed, so `merge_delta/2' goes straight to those entries, O(k log n).
%% The keys only say where to look: the merge checks that they account for every dot
%% the context removes (else it merges in full), so the result is always the merge of
%% the two states, term for term. Two keyed deltas merge into a keyed delta (the
%% union of their keys); anything merged with a state is a state.

%% @doc The same as `merge/2' (kept from when `merge/2' always walked): when one side
%% is small (a delta), its entries, and the entries of the elements it names as
%% removed, are merged one by one into the other side, O(small x log n), when that is
%% provably the full merge; otherwise (two large sides, or a context that removes dots
%% of elements the small side neither holds nor names, as an unkeyed remove delta's
%% does) both tries are walked. Same state, term for term.
%%
%% Why it is the merge: an entry only the large side L holds keeps every dot the small
%% side S's context has not seen. Its dots are in L's context, and a dot names one add
%% of one element. So if every dot of S's context that L has seen is held by L's
%% entries of the elements S holds or names, no other entry of L loses a dot: L's
%% other subtrees are taken as they are. (Two histories under one actor can give one
%% dot to two elements; then the dot is held elsewhere, and the full merge runs.)
-spec merge_delta(orset2() | keyed_delta(), orset2() | keyed_delta()) ->
          orset2() | keyed_delta() | error().
merge_delta(A, B) ->
    merge(A, B).

%% @doc `merge_delta/2', told elements the delta may have removed dots of (`Elems',
%% e.g. the elements given to `remove_delta/2', or every element a replica holds for
%% the ids an op touched): a plain remove delta names none, so without them the merge
%% walks the other side; with them it goes to those elements, O(k log n). As for keyed
%% deltas, the elements only say where to look: the result is `merge/2''s, term for
%% term, whatever `Elems' holds.
-spec merge_delta(orset2() | keyed_delta(), orset2() | keyed_delta(), [term()]) ->
          orset2() | keyed_delta() | error().
merge_delta(A, B, Elems) when is_list(Elems) ->
    case guard(fun() -> lists:usort([enc(E) || E <- Elems]) end) of
        {error, _} = Error ->
            Error;
        Named ->
            keyed_merge(A, B, fun(SA, KA, SB, KB) ->
                                      merge_keyed(SA, lists:umerge(KA, Named), SB,
                                                  lists:umerge(KB, Named))
                              end)
    end;
merge_delta(_, _, _) ->
    erlang:error(badarg).

%% Merges the states of A and B with Merge(StateA, KeysA, StateB, KeysB); two keyed
%% deltas give a keyed delta with the union of their keys. A keyed delta whose keys
%% are not sorted binaries is merged as its state.
keyed_merge(A, B, Merge) ->
    case {split_keyed(A), split_keyed(B)} of
        {{SA, KA}, {SB, KB}} ->
            Merged = Merge(SA, KA, SB, KB),
            case Merged of
                {orset2, _, _} when KA =/= [], KB =/= [] ->
                    {orset2_delta, Merged, lists:umerge(KA, KB)};
                _ ->
                    Merged
            end;
        _ ->
            merge(state_of(A), state_of(B))
    end.

%% {State, RemovedKeys} of a set ([]) or a well-formed keyed delta; error otherwise.
split_keyed({orset2_delta, Set, Removed}) when ?IS_SET(Set) ->
    case plexus_crdt_keys:valid(Removed) of
        true -> {Set, Removed};
        false -> error
    end;
split_keyed(Set) when ?IS_SET(Set) ->
    {Set, []};
split_keyed(_) ->
    error.

merge_keyed({orset2, _, RA} = A, KA, {orset2, _, RB} = B, KB) ->
    Fast = guard(fun() ->
                         case count(RB) + length(KB) =< count(RA) + length(KA) of
                             true -> merge_small(A, B, KB);
                             false -> merge_small(B, A, KA)
                         end
                 end),
    case Fast of
        slow -> merge_full(A, B);
        _ -> Fast
    end.

%% The merge of two sets by the walk of both tries (in C, merge_root/4).
merge_full({orset2, CA, RA}, {orset2, CB, RB}) ->
    guard(fun() -> {orset2, plexus_crdt_ctx:merge(CA, CB), merge_root(RA, RB, CA, CB)} end).

%% The small side S merged into the large side L entry by entry, or slow
%% (plexus_crdt_trie:merge_small/7 says when, and why it is the merge).
merge_small({orset2, CL, RL}, {orset2, CS, RS}, KS) ->
    case plexus_crdt_trie:merge_small(RL, CL, RS, CS, KS, fun({_, Ds}) -> Ds end,
                                      entry_ops()) of
        slow -> slow;
        Root -> {orset2, plexus_crdt_ctx:merge(CL, CS), Root}
    end.

matches(Pred, Term) ->
    try Pred(Term) of
        true -> true;
        _ -> false
    catch
        error:_ -> false
    end.

apply_encoded({orset2, {VV, Cloud}, Root}, Ops, A, Mode) ->
    %% keysort is stable: each element's ops stay in list order, the last one counts.
    Last = last_op(lists:keysort(2, Ops)),
    Adds = [E || {add, E} <- Last],
    {Ctx2, Dots} = new_dots(A, length(Adds), VV, Cloud),
    Changes = assign(Last, Dots),
    {Root2, Old} = case length(Changes) * ?BULK_RATIO >= count(Root) of
                       true -> rebuild(Root, Changes);
                       false -> descend(Root, Changes, Mode)
                   end,
    Set2 = {orset2, Ctx2, Root2},
    case Mode of
        state ->
            Set2;
        _ ->
            Added = [{E, [Dot]} || {E, {add, Dot}} <- Changes],
            DCtx = dots_ctx(Dots ++ lists:append([Ds || {_, Ds} <- Old])),
            Delta = {orset2, DCtx, build(0, [{khash(E), En} || {E, _} = En <- Added])},
            {Set2, keyed(Mode, Delta, Changes, Old)}
    end.

%% The keyed form of a batch's delta: the elements the batch removed that were there
%% (Changes is in element order, so they come sorted). Elements it re-added are in the
%% delta's entries already, and their superseded dots with them.
keyed(delta, Delta, _, _) ->
    Delta;
keyed(keyed_delta, Delta, Changes, Old) ->
    Had = maps:from_list(Old),
    case [E || {E, remove} <- Changes, is_map_key(E, Had)] of
        [] -> Delta;
        Removed -> {orset2_delta, Delta, Removed}
    end.

%% [{Kind, ElemBin}] sorted by element, ops of one element in list order -> the last
%% op of each element.
last_op([{_, E}, {_, E} = Next | T]) -> last_op([Next | T]);
last_op([Op | T]) -> [Op | last_op(T)];
last_op([]) -> [].

%% N fresh dots of actor A, past every dot of A this replica has seen (the cloud
%% included), and the context that records them (unchanged when N is 0, as in v1).
new_dots(_, 0, VV, Cloud) ->
    {{VV, Cloud}, []};
new_dots(A, N, VV, Cloud) ->
    Top = lists:max([maps:get(A, VV, 0) | [X || {A2, X} <- maps:keys(Cloud), A2 =:= A]]),
    ok = plexus_crdt_ctx:check_counter(Top, N),
    Dots = [{A, C} || C <- lists:seq(Top + 1, Top + N)],
    {fold_cloud({VV, maps:merge(Cloud, maps:from_list([{D, true} || D <- Dots]))}), Dots}.

%% Changes in element order: {E, {add, Dot}} (dots taken in that order) or {E, remove}.
assign([{add, E} | T], [Dot | Dots]) -> [{E, {add, Dot}} | assign(T, Dots)];
assign([{remove, E} | T], Dots) -> [{E, remove} | assign(T, Dots)];
assign([], []) -> [].

%% One trie descent per change; the old entries are looked up only for a delta.
descend(Root, Changes, Mode) ->
    lists:foldl(
      fun({E, Change}, {R, Old}) ->
              K = khash(E),
              Old2 = case Mode =/= state andalso find(R, 0, K, E) of
                         {E, _} = Entry -> [Entry | Old];
                         _ -> Old
                     end,
              New = case Change of
                        {add, Dot} -> {E, [Dot]};
                        remove -> none
                    end,
              {R2, _, _} = update(R, 0, K, E, fun(_) -> New end),
              {R2, Old2}
      end, {Root, []}, Changes).

%% The merged entry list, built into a trie at once; the old entries of changed
%% elements come back for the delta.
rebuild(Root, Changes) ->
    {Entries, Old} = merge_changes(lists:sort(collect(Root, [])), Changes, [], []),
    {build(0, [{khash(E), En} || {E, _} = En <- Entries]), Old}.

merge_changes([{E, _} = En | T], [{F, _} | _] = Cs, Acc, Old) when E < F ->
    merge_changes(T, Cs, [En | Acc], Old);
merge_changes([{E, _} = En | T], [{E, C} | Cs], Acc, Old) ->
    merge_changes(T, Cs, changed(E, C, Acc), [En | Old]);
merge_changes(Es, [{E, C} | Cs], Acc, Old) ->
    merge_changes(Es, Cs, changed(E, C, Acc), Old);
merge_changes(Es, [], Acc, Old) ->
    {lists:reverse(Acc, Es), Old}.

changed(E, {add, Dot}, Acc) -> [{E, [Dot]} | Acc];
changed(_, remove, Acc) -> Acc.

%% The context of a delta: exactly these dots, folded canonically.
dots_ctx(Dots) ->
    fold_cloud({#{}, maps:from_list([{D, true} || D <- Dots])}).

%% The entry of E, or false.
find(Node, D, K, E) ->
    plexus_crdt_trie:lookup(Node, D, K, E).

enc_ops([{add, E} | T]) -> [{add, enc(E)} | enc_ops(T)];
enc_ops([{remove, E} | T]) -> [{remove, enc(E)} | enc_ops(T)];
enc_ops([]) -> [];
enc_ops(_) -> erlang:error(badarg).

%% Element bytes back to the term; bytes that are no valid term (a hostile set built
%% by hand) are `bad_term', as in v1.
decode(<<97, X>>) ->
    %% Small integers, the commonest elements, without a binary_to_term/1 call: the
    %% same terms it gives for these bytes (SMALL_INTEGER_EXT, INTEGER_EXT).
    X;
decode(<<98, X:32/signed>>) ->
    X;
decode(E) ->
    try
        binary_to_term(<<131, E/binary>>)
    catch
        error:badarg -> throw(bad_term)
    end.

decode_keys(Keys) ->
    try
        [decode(E) || E <- Keys]
    catch
        throw:bad_term -> {error, bad_term}
    end.
