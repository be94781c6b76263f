%% @doc Add-wins observed-remove set (ORSWOT: version vector + dots per element, no
%% tombstones) whose states are version 2 terms: a canonical hash trie of small
%% chunks held as plain Erlang terms (`plexus_orset2'), so a single `add', `remove' or
%% `member' costs O(log n), merges skip the parts two replicas share, and two replicas
%% find their differences with a Merkle exchange (`digest_tree/1', `diff/2',
%% `missing/2', `merge_missing/2').
%%
%% A set is an opaque term: send it with `!', keep it in ETS, `term_to_binary/1' it,
%% compare it with `equal/2'. Equal sets are equal terms on every node whatever their
%% history, and `to_binary/1' writes the canonical version 2 binary (`<<2, $S, ...>>',
%% `include/plexus/crdt_format.md'): equal sets give equal bytes on every node.
%%
%% Version 1. `from_binary/1' reads version 1 and version 2 binaries, and every
%% function that takes a set also takes a version 1 or version 2 binary in its place
%% (validated and converted on each call, O(n log n): convert a stored state once with
%% `from_binary/1' and keep the term). So states stored by earlier releases and
%% callers that still pass binaries keep working; results are always v2 terms. The C
%% v1 path stays available as `plexus_orset_v1' (the benchmark baseline).
%%
%% Elements and actors are arbitrary terms, stored as their external format
%% (`term_to_binary(T, [deterministic, {minor_version, 2}])' without the leading 131
%% byte), so equal terms are equal elements on every node; `to_list/1' returns the
%% elements in bytewise order of that format (not in Erlang term order). The default
%% actor is `node()', right for one replica per node that keeps its state: a replica
%% that starts empty must take an actor never used before (its dots count from 1 again,
%% and peers that saw the old ones take the new writes as removed; README, "CRDTs").
%% Concurrent add and remove of the same element: the element stays
%% (add wins).
%%
%% Batches: `add_all/2,3', `remove_all/2,3' and `apply/2,3' apply an op list as one
%% batch with one fresh dot per added element (counters in bytewise element order, as
%% v1 does: the v1 form of every result is byte for byte what `plexus_orset_v1'
%% writes). A batch at least as large as the set builds the trie at once; a smaller
%% one costs one O(log n) descent per changed element.
%%
%% Deltas: every mutator has a delta form (`add_delta/2,3', ..., `remove_by_delta/2,3')
%% returning `{Set2, Delta}'. The delta is a small set (the added entries, and as
%% context the new dots and the dots removed or superseded): merging it into any
%% replica that saw `Set' has the mutation's effect there (`merge(Set, Delta)' equals
%% `Set2'), and deltas merge with each other, commute, and may be delivered out of
%% order or twice. A delta that removed elements is keyed by them
%% (`plexus_orset2:keyed_delta()', binary `<<2, $D, ...>>'): its merge goes to their
%% entries, O(k log n), instead of walking the other side against its context. Two
%% keyed deltas merge into one; with a set, the result is a set. Every function takes
%% a delta where it takes a set (as its state); `equal/2' compares states.
%%
%% Errors. A state that does not hold together (a malformed or hostile binary, a set
%% term whose inside was forged) gives `{error, Reason}' instead of the normal result:
%% the reasons of `plexus_nif:reason()' for binaries, `bad_state' for terms, and
%% `bad_term' from readers that decode elements. A set term from an untrusted peer
%% must pass `validate/1' (or travel as a binary through `from_binary/1'): the other
%% functions check its outer shape only. A caller's type error (a set that is neither
%% a set term nor a binary, an element list that is not a proper list, an unknown op)
%% raises `badarg'. Reading binaries and merging never create atoms; `to_list/1' and
%% `remove_by/2,3' decode elements with `binary_to_term/1' semantics, as for any term
%% received from another node.
-module(plexus_orset).

-compile({no_auto_import, [apply/2, apply/3, size/1]}).

-export([new/0]).
-export([add/2, add/3, add_all/2, add_all/3]).
-export([remove/2, remove/3, remove_all/2, remove_all/3, remove_by/2, remove_by/3]).
-export([apply/2, apply/3]).
-export([add_delta/2, add_delta/3, add_all_delta/2, add_all_delta/3]).
-export([remove_delta/2, remove_delta/3, remove_all_delta/2, remove_all_delta/3]).
-export([remove_by_delta/2, remove_by_delta/3]).
-export([apply_delta/2, apply_delta/3]).
-export([member/2, to_list/1, value/1, size/1]).
-export([merge/1, merge/2, equal/2, digest/1, validate/1]).
-export([update/3, to_binary/1, from_binary/1, to_v1/1]).
-export([digest_tree/1, summary/2, diff/2, missing/2, merge_missing/2]).

-export_type([orset/0, state/0, delta/0, element/0, actor/0, op/0, update_op/0, reason/0,
              error/0]).

-type orset() :: plexus_orset2:orset2().
%% What functions accept as a set: a set term, a delta, or a version 1 or 2 binary.
-type state() :: orset() | delta() | binary().
%% A delta that removed elements is keyed by them (plexus_orset2:keyed_delta()).
-type delta() :: orset() | plexus_orset2:keyed_delta().
-type element() :: term().
-type actor() :: term().
-type op() ::
    {add, element()}
    | {remove, element()}
    | {add_all, [element()]}
    | {remove_all, [element()]}.
-type update_op() :: op() | {update, [op()]}.
-type reason() :: plexus_orset2:reason() | bad_term.
-type error() :: {error, reason()}.

%% ---------------------------------------------------------------- construction

%% @doc The empty set.
-spec new() -> orset().
new() ->
    plexus_orset2:new().

%% ---------------------------------------------------------------- mutators

%% @doc Adds `Elem' as `node()'. See `add/3'.
-spec add(state(), element()) -> orset() | error().
add(Set, Elem) ->
    add(Set, Elem, node()).

%% @doc Adds `Elem' with a fresh dot of `Actor', in O(log n). Adding a present element
%% re-adds it (the new dot supersedes its old ones).
-spec add(state(), element(), actor()) -> orset() | error().
add(Set, Elem, Actor) ->
    with(Set, fun(S) -> plexus_orset2:add(S, Elem, Actor) end).

%% @doc Adds every element of `Elems' as `node()' in one batch. See `add_all/3'.
-spec add_all(state(), [element()]) -> orset() | error().
add_all(Set, Elems) ->
    add_all(Set, Elems, node()).

%% @doc Adds every element of `Elems' by `Actor' in one batch.
-spec add_all(state(), [element()], actor()) -> orset() | error().
add_all(Set, Elems, Actor) ->
    batch(Set, tag_list(add, Elems), Actor, state).

%% @doc Removes `Elem'. See `remove/3'.
-spec remove(state(), element()) -> orset() | error().
remove(Set, Elem) ->
    with(Set, fun(S) -> plexus_orset2:remove(S, Elem) end).

%% @doc Removes `Elem' in O(log n): it leaves the set, and its dots stay in the causal
%% context so replicas that merge this state drop it too (unless they added it
%% concurrently). The actor plays no part (riak_dt parity). Removing an absent element
%% returns the set unchanged; `update/3' reports it as a precondition error instead,
%% as riak_dt does.
-spec remove(state(), element(), actor()) -> orset() | error().
remove(Set, Elem, _Actor) ->
    remove(Set, Elem).

%% @doc Removes every element of `Elems' in one batch.
-spec remove_all(state(), [element()]) -> orset() | error().
remove_all(Set, Elems) ->
    batch(Set, tag_list(remove, Elems), node(), state).

%% @doc Removes every element of `Elems' in one batch; absent ones are skipped.
-spec remove_all(state(), [element()], actor()) -> orset() | error().
remove_all(Set, Elems, _Actor) ->
    remove_all(Set, Elems).

%% @doc Removes every element for which `Pred' returns `true', in one batch, with the
%% observed-remove semantics of `remove/2': the dots this replica has seen go, so an
%% element a replica adds concurrently (even one that matches) survives the merge (add
%% wins). An element on which `Pred' raises an error does not match, so `Pred' may
%% use a pattern: `remove_by(Set, fun({waypoint, _}) -> true end)'. O(n): each
%% element is decoded (`binary_to_term/1' semantics) and tested.
-spec remove_by(state(), fun((element()) -> boolean())) -> orset() | error().
remove_by(Set, Pred) when is_function(Pred, 1) ->
    with(Set, fun(S) -> plexus_orset2:remove_matching(S, Pred, state) end);
remove_by(_, _) ->
    erlang:error(badarg).

%% @doc The keyed form of `remove_by/2': removes every element `E' with
%% `KeyFun(E) =:= Key', e.g. every `{WaypointId, Position}' of one waypoint:
%% `remove_by(Set, fun({Id, _}) -> Id end, WaypointId)'. An element on which `KeyFun'
%% raises an error does not match.
-spec remove_by(state(), fun((element()) -> term()), term()) -> orset() | error().
remove_by(Set, KeyFun, Key) ->
    remove_by(Set, keyed(KeyFun, Key)).

%% @doc Applies `Ops' in order as `node()'. See `apply/3'.
-spec apply(state(), [op()]) -> orset() | error().
apply(Set, Ops) ->
    apply(Set, Ops, node()).

%% @doc Applies `Ops' in list order as one batch by `Actor': the result holds what
%% applying them one by one would (a later op on an element overrides an earlier one),
%% with one fresh dot per element added. Removing an absent element is skipped.
-spec apply(state(), [op()], actor()) -> orset() | error().
apply(Set, Ops, Actor) ->
    batch(Set, flatten_ops(Ops), Actor, state).

%% ---------------------------------------------------------------- delta mutators

%% @doc `add/2' returning `{Set2, Delta}'.
-spec add_delta(state(), element()) -> {orset(), delta()} | error().
add_delta(Set, Elem) ->
    add_delta(Set, Elem, node()).

%% @doc `add/3' returning `{Set2, Delta}'; `Delta' holds the element with its new dot.
-spec add_delta(state(), element(), actor()) -> {orset(), delta()} | error().
add_delta(Set, Elem, Actor) ->
    with(Set, fun(S) -> plexus_orset2:add_delta(S, Elem, Actor) end).

%% @doc `add_all/2' returning `{Set2, Delta}'.
-spec add_all_delta(state(), [element()]) -> {orset(), delta()} | error().
add_all_delta(Set, Elems) ->
    add_all_delta(Set, Elems, node()).

%% @doc `add_all/3' returning `{Set2, Delta}'.
-spec add_all_delta(state(), [element()], actor()) -> {orset(), delta()} | error().
add_all_delta(Set, Elems, Actor) ->
    batch(Set, tag_list(add, Elems), Actor, delta).

%% @doc `remove/2' returning `{Set2, Delta}'.
-spec remove_delta(state(), element()) -> {orset(), delta()} | error().
remove_delta(Set, Elem) ->
    with(Set, fun(S) -> plexus_orset2:keyed_remove_delta(S, Elem) end).

%% @doc `remove/3' returning `{Set2, Delta}'; the delta carries the removed dots.
-spec remove_delta(state(), element(), actor()) -> {orset(), delta()} | error().
remove_delta(Set, Elem, _Actor) ->
    remove_delta(Set, Elem).

%% @doc `remove_all/2' returning `{Set2, Delta}'.
-spec remove_all_delta(state(), [element()]) -> {orset(), delta()} | error().
remove_all_delta(Set, Elems) ->
    batch(Set, tag_list(remove, Elems), node(), keyed_delta).

%% @doc `remove_all/3' returning `{Set2, Delta}'.
-spec remove_all_delta(state(), [element()], actor()) -> {orset(), delta()} | error().
remove_all_delta(Set, Elems, _Actor) ->
    remove_all_delta(Set, Elems).

%% @doc `remove_by/2' returning `{Set2, Delta}'; the delta carries the removed dots.
-spec remove_by_delta(state(), fun((element()) -> boolean())) ->
    {orset(), delta()} | error().
remove_by_delta(Set, Pred) when is_function(Pred, 1) ->
    with(Set, fun(S) -> plexus_orset2:remove_matching(S, Pred, keyed_delta) end);
remove_by_delta(_, _) ->
    erlang:error(badarg).

%% @doc `remove_by/3' returning `{Set2, Delta}'.
-spec remove_by_delta(state(), fun((element()) -> term()), term()) ->
    {orset(), delta()} | error().
remove_by_delta(Set, KeyFun, Key) ->
    remove_by_delta(Set, keyed(KeyFun, Key)).

%% @doc `apply/2' returning `{Set2, Delta}'.
-spec apply_delta(state(), [op()]) -> {orset(), delta()} | error().
apply_delta(Set, Ops) ->
    apply_delta(Set, Ops, node()).

%% @doc `apply/3' returning `{Set2, Delta}': one delta for the whole batch.
-spec apply_delta(state(), [op()], actor()) -> {orset(), delta()} | error().
apply_delta(Set, Ops, Actor) ->
    batch(Set, flatten_ops(Ops), Actor, keyed_delta).

%% ---------------------------------------------------------------- readers

%% @doc Whether `Elem' is in the set: O(log n).
-spec member(state(), element()) -> boolean() | error().
member(Set, Elem) ->
    with(Set, fun(S) -> plexus_orset2:member(S, Elem) end).

%% @doc The elements, in canonical (bytewise external format) order.
-spec to_list(state()) -> [element()] | error().
to_list(Set) ->
    with(Set, fun plexus_orset2:to_list/1).

%% @doc Same as `to_list/1' (riak_dt parity).
-spec value(state()) -> [element()] | error().
value(Set) ->
    to_list(Set).

%% @doc The number of elements, O(1).
-spec size(state()) -> non_neg_integer() | error().
size(Set) ->
    with(Set, fun plexus_orset2:size/1).

%% ---------------------------------------------------------------- merging

%% @doc The merge (least upper bound) of two sets or deltas. Subtrees both sides hold
%% alike are taken as they are, so the cost follows what diverged; a delta is merged
%% entry by entry, O(k log n) for k added or removed elements (a remove delta names
%% the elements it removed). Two deltas merge into a delta; a delta merged with a set
%% gives a set.
-spec merge(state(), state()) -> delta() | error().
merge(A, B) ->
    with_delta(A, fun(SA) ->
                          with_delta(B, fun(SB) -> plexus_orset2:merge_delta(SA, SB) end)
                  end).

%% @doc The merge of a list of sets or deltas; `[]' gives `new()'. Deltas only give a
%% delta.
-spec merge([state()]) -> delta() | error().
merge([First | Rest]) ->
    %% Merged with itself: a binary is read, a term's shape checked, a delta stays one.
    case merge(First, First) of
        {error, _} = Error -> Error;
        Acc -> merge_all(Rest, Acc)
    end;
merge(Sets) when is_list(Sets) ->
    merge_all(Sets, new());
merge(_) ->
    erlang:error(badarg).

merge_all([S | T], Acc) ->
    case merge(Acc, S) of
        {error, _} = Error -> Error;
        Acc2 -> merge_all(T, Acc2)
    end;
merge_all([], Acc) ->
    Acc;
merge_all(_, _) ->
    erlang:error(badarg).

%% @doc Whether two sets are equal (same elements, dots and context). The
%% representation is canonical, so this is a term comparison, cheap where the two
%% share structure.
-spec equal(state(), state()) -> boolean() | error().
equal(A, B) ->
    with(A, fun(SA) -> with(B, fun(SB) -> plexus_orset2:equal(SA, SB) end) end).

%% @doc BLAKE2b-256 of the canonical bytes (of the version 1 body, so a v1 binary and
%% the v2 set read from it have the same digest): equal sets have equal digests on
%% every node. O(n): to compare large replicas use `digest_tree/1'.
-spec digest(state()) -> <<_:256>> | error().
digest(Set) ->
    with(Set, fun plexus_orset2:digest/1).

%% @doc Checks a set completely: a term (from an untrusted source) must be exactly
%% the set `from_binary/1' builds from its bytes; a binary must be a valid v1 or v2
%% state.
-spec validate(term()) -> ok | error().
validate(Bin) when is_binary(Bin) ->
    case from_binary(Bin) of
        {ok, _} -> ok;
        {error, _} = Error -> Error
    end;
validate(Set) ->
    plexus_orset2:validate(Set).

%% ---------------------------------------------------------------- riak_dt style

%% @doc riak_dt-style update: applies `Op' (`{add, E}', `{remove, E}', `{add_all, Es}',
%% `{remove_all, Es}' or `{update, [Op]}') by `Actor' as one batch. Removing an
%% element that is absent at that point gives
%% `{error, {precondition, {not_present, E}}}' and no change, as in riak_dt_orswot.
-spec update(update_op(), actor(), state()) ->
    {ok, orset()} | {error, {precondition, {not_present, element()}}} | error().
update(Op, Actor, Set) ->
    Flat = flatten_update(Op),
    with(Set, fun(S) ->
                      case first_absent(Flat, S, #{}) of
                          none ->
                              case plexus_orset2:apply_ops(S, Flat, Actor, state) of
                                  {error, _} = Error -> Error;
                                  S2 -> {ok, S2}
                              end;
                          Result ->
                              Result
                      end
              end).

%% The first remove, in list order, of an element absent at that point: the error, or
%% none. Presence is the set's, overlaid with the ops seen so far.
first_absent([{Kind, E} | T], S, Seen) ->
    Present = case Seen of
                  #{E := P} -> P;
                  #{} -> plexus_orset2:member(S, E)
              end,
    case {Kind, Present} of
        {_, {error, _} = Error} -> Error;
        {add, _} -> first_absent(T, S, Seen#{E => true});
        {remove, true} -> first_absent(T, S, Seen#{E => false});
        {remove, false} -> {error, {precondition, {not_present, E}}}
    end;
first_absent([], _, _) ->
    none.

%% ---------------------------------------------------------------- binary form

%% @doc The canonical version 2 binary of a set, for storage or transfer: equal sets
%% give equal bytes on every node. A binary given in place of the set is validated
%% and written as version 2.
-spec to_binary(state()) -> binary() | error().
to_binary(Set) ->
    with_delta(Set, fun plexus_orset2:to_binary/1).

%% @doc The set as a version 1 binary, for peers that still run the v1 path
%% (`plexus_orset_v1' or an older release).
-spec to_v1(state()) -> binary() | error().
to_v1(Set) ->
    with(Set, fun plexus_orset2:to_v1/1).

%% @doc Reads a set from a version 1 or version 2 binary of unknown origin: full
%% validation by the strict C decoder, no atoms created.
-spec from_binary(binary()) -> {ok, delta()} | error().
from_binary(Bin) ->
    plexus_orset2:from_binary(Bin).

%% ---------------------------------------------------------------- anti-entropy

%% @doc The first message of a Merkle anti-entropy exchange (see
%% `plexus_orset2:digest_tree/1' for the protocol and README.md for an example).
-spec digest_tree(state()) -> plexus_orset2:summary() | error().
digest_tree(Set) ->
    with(Set, fun plexus_orset2:digest_tree/1).

%% @doc Summaries of the trie nodes at `Paths' (`plexus_orset2:summary/2').
-spec summary(state(), [plexus_orset2:path()]) -> plexus_orset2:summary() | error().
summary(Set, Paths) ->
    with(Set, fun(S) -> plexus_orset2:summary(S, Paths) end).

%% @doc `{Descend, Ship}': where this set differs from remote summaries
%% (`plexus_orset2:diff/2').
-spec diff(state(), plexus_orset2:summary()) ->
    {[plexus_orset2:path()], [plexus_orset2:path()]} | error().
diff(Set, Remote) ->
    with(Set, fun(S) -> plexus_orset2:diff(S, Remote) end).

%% @doc The slice of this set at `Paths', to send to the other replica
%% (`plexus_orset2:missing/2').
-spec missing(state(), [plexus_orset2:path()]) -> binary() | error().
missing(Set, Paths) ->
    with(Set, fun(S) -> plexus_orset2:missing(S, Paths) end).

%% @doc Merges a slice another replica sent (validated completely;
%% `plexus_orset2:merge_missing/2').
-spec merge_missing(state(), binary()) -> orset() | error().
merge_missing(Set, Slice) ->
    with(Set, fun(S) -> plexus_orset2:merge_missing(S, Slice) end).

%% ---------------------------------------------------------------- internal

%% Runs Fun on the set: a binary (v1 or v2) is read into a set first; anything else
%% goes to plexus_orset2 as it is (which raises badarg for what is not a set term).
with(Set, Fun) ->
    with_delta(Set, fun(S) -> Fun(plexus_orset2:state_of(S)) end).

%% Runs Fun on the set or delta, keyed deltas kept (merge and to_binary use the keys).
with_delta(Bin, Fun) when is_binary(Bin) ->
    case plexus_orset2:from_binary(Bin) of
        {ok, S} -> Fun(S);
        {error, _} = Error -> Error
    end;
with_delta(Set, Fun) ->
    Fun(Set).

%% A batch of flat ops: the op list is checked (badarg) before the set is read.
batch(Set, Flat, Actor, Mode) ->
    with(Set, fun(S) -> plexus_orset2:apply_ops(S, Flat, Actor, Mode) end).

keyed(KeyFun, Key) when is_function(KeyFun, 1) ->
    fun(E) -> KeyFun(E) =:= Key end;
keyed(_, _) ->
    erlang:error(badarg).

flatten_update({update, Ops}) -> flatten_ops(Ops);
flatten_update(Op) -> flatten_ops([Op]).

flatten_ops(Ops) -> flatten_ops(Ops, []).

flatten_ops([{add, E} | T], Acc) -> flatten_ops(T, [{add, E} | Acc]);
flatten_ops([{remove, E} | T], Acc) -> flatten_ops(T, [{remove, E} | Acc]);
flatten_ops([{add_all, Es} | T], Acc) -> flatten_ops(T, tag_all(add, Es, Acc));
flatten_ops([{remove_all, Es} | T], Acc) -> flatten_ops(T, tag_all(remove, Es, Acc));
flatten_ops([], Acc) -> lists:reverse(Acc);
flatten_ops(_, _) -> erlang:error(badarg).

%% [{Kind, E}] for a proper list of elements, in order; badarg for anything else.
tag_list(Kind, Es) -> lists:reverse(tag_all(Kind, Es, [])).

%% Tags each element, prepending to Acc (reversed).
tag_all(Kind, [E | T], Acc) -> tag_all(Kind, T, [{Kind, E} | Acc]);
tag_all(_, [], Acc) -> Acc;
tag_all(_, _, _) -> erlang:error(badarg).
