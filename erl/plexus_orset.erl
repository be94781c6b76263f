%% @doc Add-wins observed-remove set (ORSWOT: version vector + dots per element, no
%% tombstones) as an immutable binary, merged in C (priv/plexus_nif.so).
%%
%% A set is a binary in the canonical, versioned format of
%% `include/plexus/crdt_format.md': store it in ETS, send it to another node, write it
%% to disk; any node running the same major version can read and merge it. Equal sets
%% have equal bytes, so `equal/2' is a byte comparison and `digest/1' an anti-entropy
%% check.
%%
%% Elements and actors are arbitrary terms. They are stored as their external format
%% (`term_to_binary(T, [deterministic, {minor_version, 2}])' without the leading 131
%% byte), so equal terms are equal elements on every node, and elements are ordered
%% bytewise: `to_list/1' returns them in that order (not in Erlang term order). The
%% default actor is `node()'.
%%
%% Concurrent add and remove of the same element: the element stays (add wins).
%%
%% Batches: each mutation copies the state, so build or change large sets with
%% `add_all/2,3', `remove_all/2,3' or `apply/2,3', which apply a whole op list in one
%% pass. Every mutator has a delta form (`add_delta/2,3', ...) returning
%% `{Set, Delta}': the delta is itself a set that carries the change; merging it into a
%% replica that saw the original set has the mutation's effect, and deltas may be
%% merged with each other and delivered out of order or twice.
%%
%% Errors. Every function that takes a set first validates it completely and returns
%% `{error, Reason}' for a malformed or hostile binary instead of its normal result
%% (Reason is one of `plexus_nif:reason()': `truncated', `bad_version', `wrong_type',
%% `bad_varint', `bad_count', `not_canonical', `bad_actor', `bad_dot',
%% `trailing_bytes', `overflow', `too_big', `no_memory'; readers that decode elements
%% may also say `bad_term'). A caller's type error (a set that is not a binary, an
%% element list that is not a proper list, an unknown op) raises `badarg'. Validation
%% and merges never create atoms; `to_list/1' decodes elements with
%% `binary_to_term/1' semantics, so elements that are atoms unknown to this node are
%% created then, as for any term received from another node.
%%
%% Scheduling: calls on large inputs run on dirty CPU schedulers (see
%% `c_src/nif/nif_util.h'), so no call blocks a normal scheduler for long.
-module(plexus_orset).

-compile({no_auto_import, [apply/2, apply/3, size/1]}).
%% The NIF wrappers are inlined so a small call pays the weight check and nothing else.
-compile({inline, [enc/1, wsize/1, apply_nif/7, list_nif/6, merge_nif/2, read_nif/2, validate_nif/2]}).

-include("plexus_telemetry.hrl").

-export([new/0]).
-export([add/2, add/3, add_all/2, add_all/3]).
-export([remove/2, remove/3, remove_all/2, remove_all/3]).
-export([apply/2, apply/3]).
-export([add_delta/2, add_delta/3, add_all_delta/2, add_all_delta/3]).
-export([remove_delta/2, remove_delta/3, remove_all_delta/2, remove_all_delta/3]).
-export([apply_delta/2, apply_delta/3]).
-export([member/2, to_list/1, value/1, size/1]).
-export([merge/1, merge/2, equal/2, digest/1]).
-export([update/3, to_binary/1, from_binary/1]).

-export_type([orset/0, delta/0, element/0, actor/0, op/0, update_op/0, reason/0]).

-type orset() :: binary().
-type delta() :: orset().
-type element() :: term().
-type actor() :: term().
-type op() ::
    {add, element()}
    | {remove, element()}
    | {add_all, [element()]}
    | {remove_all, [element()]}.
-type update_op() :: op() | {update, [op()]}.
-type reason() :: plexus_nif:reason().
-type error() :: {error, reason()}.
-export_type([error/0]). % used in the specs of exported functions

%% ---------------------------------------------------------------- construction

%% @doc The empty set.
-spec new() -> orset().
new() ->
    plexus_nif:orset_new().

%% ---------------------------------------------------------------- mutators

%% @doc Adds `Elem' as `node()'. See `add/3'.
-spec add(orset(), element()) -> orset() | error().
add(Set, Elem) ->
    add(Set, Elem, node()).

%% @doc Adds `Elem' with a fresh dot of `Actor'. Adding a present element re-adds it
%% (the new dot supersedes its old ones).
-spec add(orset(), element(), actor()) -> orset() | error().
add(Set, Elem, Actor) ->
    apply_nif(add, Set, add, [enc(Elem)], 1, enc(Actor), state).

%% @doc Adds every element of `Elems' as `node()' in one pass. See `add_all/3'.
-spec add_all(orset(), [element()]) -> orset() | error().
add_all(Set, Elems) ->
    add_all(Set, Elems, node()).

%% @doc Adds every element of `Elems' by `Actor' in one pass (one copy of the state).
-spec add_all(orset(), [element()], actor()) -> orset() | error().
add_all(Set, Elems, Actor) ->
    list_nif(add_all, Set, add, enc_list(Elems), enc(Actor), state).

%% @doc Removes `Elem' (actor `node()'). See `remove/3'.
-spec remove(orset(), element()) -> orset() | error().
remove(Set, Elem) ->
    remove(Set, Elem, node()).

%% @doc Removes `Elem': it leaves the set, and its dots stay in the causal context so
%% replicas that merge this state drop it too (unless they added it concurrently).
%% Removing an absent element returns the set unchanged; `update/3' reports it as a
%% precondition error instead, as riak_dt does.
-spec remove(orset(), element(), actor()) -> orset() | error().
remove(Set, Elem, Actor) ->
    apply_nif(remove, Set, remove, [enc(Elem)], 1, enc(Actor), state).

%% @doc Removes every element of `Elems' in one pass (actor `node()').
-spec remove_all(orset(), [element()]) -> orset() | error().
remove_all(Set, Elems) ->
    remove_all(Set, Elems, node()).

%% @doc Removes every element of `Elems' in one pass; absent ones are skipped.
-spec remove_all(orset(), [element()], actor()) -> orset() | error().
remove_all(Set, Elems, Actor) ->
    list_nif(remove_all, Set, remove, enc_list(Elems), enc(Actor), state).

%% @doc Applies `Ops' in order as `node()'. See `apply/3'.
-spec apply(orset(), [op()]) -> orset() | error().
apply(Set, Ops) ->
    apply(Set, Ops, node()).

%% @doc Applies `Ops' in list order as one batch by `Actor': the result is that of
%% applying them one by one (a later op on an element overrides an earlier one), at the
%% cost of one pass over the state. Removing an absent element is skipped.
-spec apply(orset(), [op()], actor()) -> orset() | error().
apply(Set, Ops, Actor) ->
    list_nif(apply, Set, ops, enc_ops(Ops), enc(Actor), state).

%% ---------------------------------------------------------------- delta mutators

%% @doc `add/2' returning `{Set2, Delta}'.
-spec add_delta(orset(), element()) -> {orset(), delta()} | error().
add_delta(Set, Elem) ->
    add_delta(Set, Elem, node()).

%% @doc `add/3' returning `{Set2, Delta}'; `Delta' is a set holding the change.
-spec add_delta(orset(), element(), actor()) -> {orset(), delta()} | error().
add_delta(Set, Elem, Actor) ->
    apply_nif(add_delta, Set, add, [enc(Elem)], 1, enc(Actor), delta).

%% @doc `add_all/2' returning `{Set2, Delta}'.
-spec add_all_delta(orset(), [element()]) -> {orset(), delta()} | error().
add_all_delta(Set, Elems) ->
    add_all_delta(Set, Elems, node()).

%% @doc `add_all/3' returning `{Set2, Delta}'.
-spec add_all_delta(orset(), [element()], actor()) -> {orset(), delta()} | error().
add_all_delta(Set, Elems, Actor) ->
    list_nif(add_all_delta, Set, add, enc_list(Elems), enc(Actor), delta).

%% @doc `remove/2' returning `{Set2, Delta}'.
-spec remove_delta(orset(), element()) -> {orset(), delta()} | error().
remove_delta(Set, Elem) ->
    remove_delta(Set, Elem, node()).

%% @doc `remove/3' returning `{Set2, Delta}'; the delta carries the removed dots.
-spec remove_delta(orset(), element(), actor()) -> {orset(), delta()} | error().
remove_delta(Set, Elem, Actor) ->
    apply_nif(remove_delta, Set, remove, [enc(Elem)], 1, enc(Actor), delta).

%% @doc `remove_all/2' returning `{Set2, Delta}'.
-spec remove_all_delta(orset(), [element()]) -> {orset(), delta()} | error().
remove_all_delta(Set, Elems) ->
    remove_all_delta(Set, Elems, node()).

%% @doc `remove_all/3' returning `{Set2, Delta}'.
-spec remove_all_delta(orset(), [element()], actor()) -> {orset(), delta()} | error().
remove_all_delta(Set, Elems, Actor) ->
    list_nif(remove_all_delta, Set, remove, enc_list(Elems), enc(Actor), delta).

%% @doc `apply/2' returning `{Set2, Delta}'.
-spec apply_delta(orset(), [op()]) -> {orset(), delta()} | error().
apply_delta(Set, Ops) ->
    apply_delta(Set, Ops, node()).

%% @doc `apply/3' returning `{Set2, Delta}': one delta for the whole batch.
-spec apply_delta(orset(), [op()], actor()) -> {orset(), delta()} | error().
apply_delta(Set, Ops, Actor) ->
    list_nif(apply_delta, Set, ops, enc_ops(Ops), enc(Actor), delta).

%% ---------------------------------------------------------------- readers

%% @doc Whether `Elem' is in the set.
-spec member(orset(), element()) -> boolean() | error().
member(Set, Elem) ->
    E = enc(Elem),
    ?PLEXUS_CRDT_CALL(orset, member, wsize(Set), wsize(Set) + byte_size(E) - 1, fun one/1,
                      plexus_nif:orset_member(Set, E)).

%% @doc The elements, in canonical (bytewise external format) order.
-spec to_list(orset()) -> [element()] | error().
to_list(Set) ->
    read_nif(to_list, Set).

%% @doc Same as `to_list/1' (riak_dt parity).
-spec value(orset()) -> [element()] | error().
value(Set) ->
    read_nif(value, Set).

%% @doc The number of elements.
-spec size(orset()) -> non_neg_integer() | error().
size(Set) ->
    ?PLEXUS_CRDT_CALL(orset, size, wsize(Set), wsize(Set), fun count/1,
                      plexus_nif:orset_size(Set)).

%% ---------------------------------------------------------------- merging

%% @doc The merge (least upper bound) of two sets or deltas.
-spec merge(orset(), orset()) -> orset() | error().
merge(A, B) ->
    merge_nif([A, B], wsize(A) + wsize(B) + 2 * ?PLEXUS_NIF_CELL_WEIGHT).

%% @doc The n-way merge of a list of sets or deltas in one pass; `[]' gives `new()'.
-spec merge([orset()]) -> orset() | error().
merge([]) ->
    new();
merge(Sets) when is_list(Sets) ->
    merge_nif(Sets, states_weight(Sets));
merge(_) ->
    erlang:error(badarg).

%% @doc Whether two valid sets are equal (same elements, dots and context). The
%% encoding is canonical, so this is a byte comparison after validating both.
-spec equal(orset(), orset()) -> boolean() | error().
equal(A, B) when is_binary(A), is_binary(B) ->
    case validate_nif(equal, A) of
        ok ->
            case validate_nif(equal, B) of
                ok -> A =:= B;
                Error -> Error
            end;
        Error ->
            Error
    end;
equal(_, _) ->
    erlang:error(badarg).

%% @doc BLAKE2b-256 of the (validated) set: equal sets have equal digests on every node.
-spec digest(orset()) -> <<_:256>> | error().
digest(Set) ->
    ?PLEXUS_CRDT_CALL(orset, digest, wsize(Set), wsize(Set), fun one/1,
                      plexus_nif:orset_digest(Set)).

%% ---------------------------------------------------------------- riak_dt style

%% @doc riak_dt-style update: applies `Op' (`{add, E}', `{remove, E}', `{add_all, Es}',
%% `{remove_all, Es}' or `{update, [Op]}') by `Actor' as one batch. Removing an
%% element that is absent at that point gives
%% `{error, {precondition, {not_present, E}}}' and no change, as in riak_dt_orswot.
-spec update(update_op(), actor(), orset()) ->
    {ok, orset()} | {error, {precondition, {not_present, element()}}} | error().
update(Op, Actor, Set) ->
    Flat = flatten_update(Op),
    Encoded = [{Kind, enc(E)} || {Kind, E} <- Flat],
    case list_nif(update, Set, ops, Encoded, enc(Actor), strict) of
        {error, not_present, Index} ->
            {_, Elem} = lists:nth(Index + 1, Flat),
            {error, {precondition, {not_present, Elem}}};
        {error, _} = Error ->
            Error;
        Set2 ->
            {ok, Set2}
    end.

%% @doc The binary form of a set, for storage or transfer: the set itself, after
%% validation.
-spec to_binary(orset()) -> binary() | error().
to_binary(Set) ->
    case validate_nif(to_binary, Set) of
        ok -> Set;
        Error -> Error
    end.

%% @doc Reads a set from bytes of unknown origin: full validation, no atoms created.
-spec from_binary(binary()) -> {ok, orset()} | error().
from_binary(Bin) ->
    case validate_nif(from_binary, Bin) of
        ok -> {ok, Bin};
        Error -> Error
    end.

%% ---------------------------------------------------------------- internal

%% The NIF calls, each reported as a CRDT call event when its input is large
%% (plexus_telemetry.hrl); the weights are the NIF's (c_src/nif/nif_orset.c).
apply_nif(Function, Set, Kind, Encoded, Cells, ActorBin, Mode) ->
    ?PLEXUS_CRDT_CALL(orset, Function, wsize(Set) + ?PLEXUS_NIF_CELL_WEIGHT * Cells,
                      ops_weight(Encoded, wsize(Set)), fun(_) -> Cells end,
                      plexus_nif:orset_apply(Set, Kind, Encoded, ActorBin, Mode)).

list_nif(Function, Set, Kind, Encoded, ActorBin, Mode) ->
    apply_nif(Function, Set, Kind, Encoded, length(Encoded), ActorBin, Mode).

merge_nif(Sets, Weight) ->
    ?PLEXUS_CRDT_CALL(orset, merge, Weight, Weight, fun(_) -> length(Sets) end,
                      plexus_nif:orset_merge(Sets)).

read_nif(Function, Set) ->
    ?PLEXUS_CRDT_CALL(orset, Function, wsize(Set), wsize(Set), fun count/1,
                      plexus_nif:orset_to_list(Set)).

validate_nif(Function, Set) ->
    ?PLEXUS_CRDT_CALL(orset, Function, wsize(Set), wsize(Set), fun one/1,
                      plexus_nif:orset_validate(Set)).

%% Bytes of a state (the NIF raises badarg for anything else).
wsize(Set) when is_binary(Set) -> byte_size(Set);
wsize(_) -> 0.

%% A list cell and the term bytes without the leading 131, per op.
ops_weight([{_, Bin} | T], W) -> ops_weight(T, W + ?PLEXUS_NIF_CELL_WEIGHT + wsize(Bin) - 1);
ops_weight([Bin | T], W) -> ops_weight(T, W + ?PLEXUS_NIF_CELL_WEIGHT + wsize(Bin) - 1);
ops_weight([], W) -> W.

%% A list cell and the state bytes, per state (an improper tail is the NIF's badarg).
states_weight(Sets) -> states_weight(Sets, 0).

states_weight([S | T], W) -> states_weight(T, W + ?PLEXUS_NIF_CELL_WEIGHT + wsize(S));
states_weight(_, W) -> W.

%% The `elements' of a reader's event: the elements it returned.
count(L) when is_list(L) -> length(L);
count(N) when is_integer(N) -> N;
count(_) -> 0.

one(_) -> 1.

enc(Term) ->
    plexus_nif:encode(Term).

%% Encodes a proper list of terms; badarg for anything else.
enc_list([H | T]) -> [enc(H) | enc_list(T)];
enc_list([]) -> [];
enc_list(_) -> erlang:error(badarg).

%% Flattens an op list to the NIF's [{add | remove, Bin}].
enc_ops(Ops) ->
    [{Kind, enc(E)} || {Kind, E} <- flatten_ops(Ops)].

flatten_update({update, Ops}) -> flatten_ops(Ops);
flatten_update(Op) -> flatten_ops([Op]).

flatten_ops(Ops) -> flatten_ops(Ops, []).

flatten_ops([{add, E} | T], Acc) -> flatten_ops(T, [{add, E} | Acc]);
flatten_ops([{remove, E} | T], Acc) -> flatten_ops(T, [{remove, E} | Acc]);
flatten_ops([{add_all, Es} | T], Acc) -> flatten_ops(T, tag_all(add, Es, Acc));
flatten_ops([{remove_all, Es} | T], Acc) -> flatten_ops(T, tag_all(remove, Es, Acc));
flatten_ops([], Acc) -> lists:reverse(Acc);
flatten_ops(_, _) -> erlang:error(badarg).

tag_all(Kind, [E | T], Acc) -> tag_all(Kind, T, [{Kind, E} | Acc]);
tag_all(_, [], Acc) -> Acc;
tag_all(_, _, _) -> erlang:error(badarg).
