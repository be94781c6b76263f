%% @doc The replica of a `plexus_overlay' (pure, no processes): the entity table, the
%% waypoint set, the deltas local changes make, the merge of deltas and anti-entropy
%% slices from peers, and the events each change makes visible.
%%
%% <ul>
%% <li>Entities: a `plexus_lwwmap' of `Id => Attrs' (one last-writer-wins register per
%%     entity, observed-remove of entities).</li>
%% <li>Waypoints: a `plexus_orset2' of elements `{Id, Wp}' (add-wins).
%%     `add_waypoint(Id, Wp)' removes every element of `Id' this replica has observed
%%     and adds `{Id, Wp}'; `remove_waypoint(Id)' removes every observed element of
%%     `Id'. Two concurrent adds of the same `Id' with different `Wp' both survive
%%     (neither observed the other) until a later add or remove of `Id' observes them;
%%     meanwhile the visible waypoint of `Id' is the greatest of the `Wp's in Erlang
%%     term order, the same on every replica. An index `Id => [Wp]' of the elements
%%     present is kept beside the set so that an op or an event never scans it.</li>
%% </ul>
%%
%% Events are computed by comparing the visible value of each touched key before and
%% after a change, so a change fires exactly one event when it becomes visible here and
%% none when it does not (a write that loses to a newer one, a delta seen twice, an
%% update to the value already shown).
-module(plexus_overlay_state).

-export([new/1, update_entity/3, remove_entity/2, add_waypoint/3, remove_waypoint/2]).
-export([actor/1, get_entity/2, entities/1, waypoints/1, entity_count/1, waypoint_count/1]).
-export([empty_delta/0, merge_deltas/2, delta_ops/1, encode_delta/1, decode_delta/1,
         apply_delta/2]).
-export([crdt/2, merge_slice/4, to_binary/1]).

-export_type([state/0, delta/0, event/0, type/0]).

-type type() :: entities | waypoints.
-type event() :: {entity_updated, term(), term()} | {entity_removed, term()}
               | {waypoint_added, term(), term()} | {waypoint_removed, term()}.

-record(st, {actor :: term(),
             ents :: plexus_lwwmap:lwwmap(),
             wps :: plexus_orset2:orset2(),
             wp_index = #{} :: #{term() => [term(), ...]}}).
-opaque state() :: #st{}.

%% A delta: the two CRDT deltas merged, the ids they touch (removes leave no entry to
%% read the id from) and how many ops were merged into it (the context of merged
%% deltas grows with the ops, so this is what bounds it). The ids also tell a peer
%% where the delta's removes can act (apply_delta/2), so it merges the delta by going
%% to those keys, O(k log n), instead of walking its whole replica against the
%% delta's context.
-record(delta, {ents :: plexus_lwwmap:lwwmap(),
                ent_ids = [] :: [term()],
                wps :: plexus_orset2:orset2(),
                wp_ids = [] :: [term()],
                ops = 0 :: non_neg_integer()}).
-opaque delta() :: #delta{}.

%% ---------------------------------------------------------------- local ops

%% @doc An empty replica whose writes are stamped by `Actor'. A dot is an actor's
%% counter, so an actor names one replica's history: an empty replica needs an actor
%% no replica has written under before (`plexus_overlay' takes the node and the time
%% it started).
-spec new(term()) -> state().
new(Actor) ->
    #st{actor = Actor, ents = plexus_lwwmap:new(), wps = plexus_orset2:new()}.

-spec actor(state()) -> term().
actor(#st{actor = A}) -> A.

%% @doc Sets entity `Id' to `Attrs': `{State, Delta, Events}'.
-spec update_entity(state(), term(), term()) -> {state(), delta(), [event()]}.
update_entity(#st{ents = E, actor = A} = S, Id, Attrs) ->
    {E2, D} = ok_pair(plexus_lwwmap:put_delta(E, Id, Attrs, A)),
    local_ents(S, E2, D, Id).

%% @doc Removes entity `Id' (the writes observed here; a concurrent update survives).
-spec remove_entity(state(), term()) -> {state(), delta(), [event()]}.
remove_entity(#st{ents = E} = S, Id) ->
    {E2, D} = ok_pair(plexus_lwwmap:remove_delta(E, Id)),
    local_ents(S, E2, D, Id).

local_ents(#st{ents = E} = S, E2, D, Id) ->
    Events = entity_events([Id], E, E2),
    {S#st{ents = E2}, (empty_delta())#delta{ents = D, ent_ids = [Id], ops = 1}, Events}.

%% @doc Replaces the waypoint(s) of `Id' observed here by `Wp'.
-spec add_waypoint(state(), term(), term()) -> {state(), delta(), [event()]}.
add_waypoint(#st{wps = W, actor = A} = S, Id, Wp) ->
    Old = [{Id, X} || X <- maps:get(Id, S#st.wp_index, []), X =/= Wp],
    {W1, DRem} = remove_elems(W, Old),
    {W2, DAdd} = ok_pair(plexus_orset2:add_delta(W1, {Id, Wp}, A)),
    D = ok(plexus_orset2:merge(DRem, DAdd)),
    local_wps(S, W2, D, Id, [{Id, Wp}]).

%% @doc Removes every waypoint element of `Id' observed here.
-spec remove_waypoint(state(), term()) -> {state(), delta(), [event()]}.
remove_waypoint(#st{wps = W} = S, Id) ->
    {W2, D} = remove_elems(W, [{Id, X} || X <- maps:get(Id, S#st.wp_index, [])]),
    local_wps(S, W2, D, Id, []).

remove_elems(W, Elems) ->
    lists:foldl(fun(El, {Wa, Da}) ->
                        {Wb, Db} = ok_pair(plexus_orset2:remove_delta(Wa, El)),
                        {Wb, ok(plexus_orset2:merge(Da, Db))}
                end, {W, plexus_orset2:new()}, Elems).

local_wps(S, W2, D, Id, New) ->
    {S2, Events} = reindex(S, W2, [Id], New),
    {S2, (empty_delta())#delta{wps = D, wp_ids = [Id], ops = 1}, Events}.

%% ---------------------------------------------------------------- readers

%% @doc `{ok, Attrs}' or `{error, not_found}'.
-spec get_entity(state(), term()) -> {ok, term()} | {error, not_found}.
get_entity(#st{ents = E}, Id) ->
    case plexus_lwwmap:get(E, Id) of
        {ok, _} = Ok -> Ok;
        _ -> {error, not_found}
    end.

%% @doc Every entity: `#{Id => Attrs}'.
-spec entities(state()) -> map().
entities(#st{ents = E}) ->
    ok(plexus_lwwmap:to_map(E)).

%% @doc Every waypoint: `#{Id => Wp}' (the visible one, see the module doc).
-spec waypoints(state()) -> map().
waypoints(#st{wp_index = I}) ->
    maps:map(fun(_, Wps) -> lists:max(Wps) end, I).

-spec entity_count(state()) -> non_neg_integer().
entity_count(#st{ents = E}) -> ok(plexus_lwwmap:size(E)).

-spec waypoint_count(state()) -> non_neg_integer().
waypoint_count(#st{wp_index = I}) -> map_size(I).

%% @doc The canonical bytes of the replica (entities then waypoints): replicas that
%% have seen the same changes give the same bytes.
-spec to_binary(state()) -> binary().
to_binary(#st{ents = E, wps = W}) ->
    EB = ok(plexus_lwwmap:to_binary(E)),
    WB = ok(plexus_orset2:to_binary(W)),
    <<(byte_size(EB)):32, EB/binary, WB/binary>>.

%% ---------------------------------------------------------------- deltas

-spec empty_delta() -> delta().
empty_delta() ->
    #delta{ents = plexus_lwwmap:new(), wps = plexus_orset2:new()}.

%% @doc One delta that merges to what the two merge to.
-spec merge_deltas(delta(), delta()) -> delta().
merge_deltas(#delta{ops = 0}, D) ->
    D;
merge_deltas(D, #delta{ops = 0}) ->
    D;
merge_deltas(#delta{} = A, #delta{} = B) ->
    #delta{ents = ok(plexus_lwwmap:merge(A#delta.ents, B#delta.ents)),
           ent_ids = union(A#delta.ent_ids, B#delta.ent_ids),
           wps = ok(plexus_orset2:merge(A#delta.wps, B#delta.wps)),
           wp_ids = union(A#delta.wp_ids, B#delta.wp_ids),
           ops = A#delta.ops + B#delta.ops}.

%% @doc How many ops were merged into the delta (0: empty).
-spec delta_ops(delta()) -> non_neg_integer().
delta_ops(#delta{ops = N}) -> N.

%% @doc The wire form: the canonical binaries of the two CRDT deltas and the ids.
-spec encode_delta(delta()) -> {binary(), [term()], binary(), [term()], pos_integer()}.
encode_delta(#delta{ents = E, ent_ids = EI, wps = W, wp_ids = WI, ops = N}) ->
    {ok(plexus_lwwmap:to_binary(E)), EI, ok(plexus_orset2:to_binary(W)), WI, max(N, 1)}.

%% @doc Reads a wire delta, validating both CRDT binaries.
-spec decode_delta(term()) -> {ok, delta()} | {error, bad_delta}.
decode_delta({EB, EI, WB, WI, N}) when is_binary(EB), is_list(EI), is_binary(WB),
                                       is_list(WI), is_integer(N), N > 0 ->
    %% proper id lists only (lists:usort/1 raised on an improper one), and the CRDT
    %% parts as states: a keyed delta's binary reads back as a keyed delta, which the
    %% readers below do not take (one crashed the overlay); state_of/1 is what it
    %% stands for
    case {proper(EI) andalso proper(WI), plexus_lwwmap:from_binary(EB),
          plexus_orset2:from_binary(WB)} of
        {true, {ok, E}, {ok, W}} ->
            {ok, #delta{ents = plexus_lwwmap:state_of(E), ent_ids = lists:usort(EI),
                        wps = plexus_orset2:state_of(W), wp_ids = lists:usort(WI), ops = N}};
        _ ->
            {error, bad_delta}
    end;
decode_delta(_) ->
    {error, bad_delta}.

proper([_ | T]) -> proper(T);
proper([]) -> true;
proper(_) -> false.

%% @doc Merges a delta from a peer: `{State, Events}'. The keys compared are the ids
%% the delta names and those of its entries (a merge changes no other key). A remove
%% in the delta can only take dots of this replica's entries of the ids it names (an
%% entity's writes; the waypoint elements of an id, found in the index), so those are
%% given to the merges as where to look.
-spec apply_delta(state(), delta()) -> {state(), [event()]}.
apply_delta(#st{ents = E, wps = W} = S, #delta{} = D) ->
    E2 = ok(plexus_lwwmap:merge_delta(E, D#delta.ents, D#delta.ent_ids)),
    Elems = [{Id, X} || Id <- D#delta.wp_ids, X <- maps:get(Id, S#st.wp_index, [])],
    EIds = union(D#delta.ent_ids, ok(plexus_lwwmap:keys(D#delta.ents))),
    EEvents = entity_events(EIds, E, E2),
    Added = ok(plexus_orset2:to_list(D#delta.wps)),
    W2 = ok(plexus_orset2:merge_delta(W, D#delta.wps, Elems)),
    {S2, WEvents} = reindex(S#st{ents = E2}, W2, union(D#delta.wp_ids, ids(Added)), Added),
    {S2, EEvents ++ WEvents}.

%% ---------------------------------------------------------------- anti-entropy

%% @doc The CRDT of one type (a snapshot for an anti-entropy session: the exchange
%% must read summaries and slices from one unchanging state).
-spec crdt(state(), type()) -> plexus_lwwmap:lwwmap() | plexus_orset2:orset2().
crdt(#st{ents = E}, entities) -> E;
crdt(#st{wps = W}, waypoints) -> W.

%% @doc Merges an anti-entropy slice (`missing/2' of a peer at the paths `Ship'):
%% `{ok, State, Events}' or `{error, Reason}' for a slice that does not validate.
%% The keys compared are those under `Ship' here and in the slice.
-spec merge_slice(state(), type(), binary(), [binary()]) ->
          {ok, state(), [event()]} | {error, term()}.
merge_slice(#st{ents = E} = S, entities, Slice, Ship) ->
    case plexus_lwwmap:merge_missing(E, Slice) of
        {error, _} = Error ->
            Error;
        E2 ->
            Ids = union(slice_keys(plexus_lwwmap, E, Ship), slice_keys(plexus_lwwmap, Slice)),
            {ok, S#st{ents = E2}, entity_events(Ids, E, E2)}
    end;
merge_slice(#st{wps = W} = S, waypoints, Slice, Ship) ->
    case plexus_orset2:merge_missing(W, Slice) of
        {error, _} = Error ->
            Error;
        W2 ->
            Theirs = ok(plexus_orset2:to_list(ok(plexus_orset2:merge_missing(
                                                   plexus_orset2:new(), Slice)))),
            Ids = union(ids(Theirs), slice_keys(plexus_orset2, W, Ship)),
            {S2, Events} = reindex(S, W2, Ids, Theirs),
            {ok, S2, Events}
    end.

%% The keys (entity ids or waypoint ids) of the entries of Crdt below Paths.
slice_keys(Mod, Crdt, Paths) ->
    slice_keys(Mod, ok(Mod:missing(Crdt, Paths))).

slice_keys(plexus_lwwmap, Slice) ->
    ok(plexus_lwwmap:keys(ok(plexus_lwwmap:merge_missing(plexus_lwwmap:new(), Slice))));
slice_keys(plexus_orset2, Slice) ->
    ids(ok(plexus_orset2:to_list(ok(plexus_orset2:merge_missing(plexus_orset2:new(),
                                                                Slice))))).

%% ---------------------------------------------------------------- events

entity_events(Ids, Before, After) ->
    lists:flatmap(fun(Id) ->
                          case {plexus_lwwmap:get(Before, Id), plexus_lwwmap:get(After, Id)} of
                              {Same, Same} -> [];
                              {_, {ok, V}} -> [{entity_updated, Id, V}];
                              {{ok, _}, _} -> [{entity_removed, Id}];
                              _ -> []
                          end
                  end, Ids).

%% New waypoint set W2 for the ids Ids: each one's elements are looked up among the
%% indexed ones and New (a merge brings no element that is in neither), the index is
%% updated and the visible changes become events.
reindex(#st{wp_index = I} = S, W2, Ids, New) ->
    {I2, Events} =
        lists:foldl(
          fun(Id, {Acc, Ev}) ->
                  Cands = lists:usort(maps:get(Id, I, []) ++ [Wp || {X, Wp} <- New, X =:= Id]),
                  Now = [Wp || Wp <- Cands, plexus_orset2:member(W2, {Id, Wp}) =:= true],
                  Was = visible(maps:get(Id, I, [])),
                  Acc2 = case Now of
                             [] -> maps:remove(Id, Acc);
                             _ -> Acc#{Id => Now}
                         end,
                  case {Was, visible(Now)} of
                      {Same, Same} -> {Acc2, Ev};
                      {_, {ok, Wp}} -> {Acc2, [{waypoint_added, Id, Wp} | Ev]};
                      {{ok, _}, none} -> {Acc2, [{waypoint_removed, Id} | Ev]}
                  end
          end, {I, []}, Ids),
    {S#st{wps = W2, wp_index = I2}, lists:reverse(Events)}.

visible([]) -> none;
visible(Wps) -> {ok, lists:max(Wps)}.

%% ---------------------------------------------------------------- helpers

ids(Elems) ->
    lists:usort([Id || {Id, _} <- Elems]).

union(A, B) ->
    lists:umerge(lists:usort(A), lists:usort(B)).

%% The CRDT calls here get states this module built: an error is a bug, not input.
ok({error, Reason}) -> erlang:error({overlay_crdt, Reason});
ok(X) -> X.

ok_pair({error, Reason}) -> erlang:error({overlay_crdt, Reason});
ok_pair({_, _} = P) -> P.
