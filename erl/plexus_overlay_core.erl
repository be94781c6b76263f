%% @doc The decisions of a `plexus_overlay' (pure, no processes, no clock: the time
%% comes in as an argument): what local ops and peer messages do to the replica
%% (`plexus_overlay_state'), which deltas go to which peer, what is dropped when a peer
%% is slow, and the steps of anti-entropy sessions. Every function returns the new
%% core and a list of effects for the runner (`plexus_overlay') to perform:
%% <ul>
%% <li>`{send, Node, Msg}': send `Msg' to the overlay of the same name on `Node'
%%     (without suspending, without connecting) and report the outcome with
%%     `sent/3' when `Msg' is a delta;</li>
%% <li>`{event, Event}': tell the local subscribers.</li>
%% </ul>
%%
%% == Replication ==
%% Local ops merge their deltas into one batch; `flush/2' (every sync interval, or
%% at once when the batch holds `max_batch_ops' ops) merges the batch into the pending
%% delta of every up peer and emits one delta message per peer. A peer's pending delta
%% is cleared when its send went out; when the send could not (a busy connection),
%% the pending delta stays and absorbs the next batches, so a slow peer gets one
%% coalesced delta, not a queue. A pending delta that would exceed
%% `max_pending_ops' ops is dropped and the peer is marked for anti-entropy instead:
%% memory per peer is bounded, and what was dropped is repaired by the exchange.
%%
%% == Anti-entropy ==
%% The Merkle exchange of `plexus_lwwmap' / `plexus_orset2' (`digest_tree', `summary',
%% `diff', `missing', `merge_missing'), one session per peer, type (entities,
%% waypoints) and direction. Each side reads summaries and slices from a snapshot it
%% took when the session began: a slice carries the sender's whole context, which is
%% correct only next to the entries that state has (a context taken from a later
%% state could cover entries the receiver has not got and make it drop them when
%% they arrive). The snapshot is merged into with `merge_missing/2' on the live
%% replica, which is a later state of the same replica, so the result is the merge of
%% the two replicas. The first message also carries a hash of the sender's context, so
%% that replicas with the same entries and contexts exchange only the root summary.
%% A session not finished after `ae_timeout_ms' is forgotten (its messages may have
%% been dropped); the next one starts afresh.
-module(plexus_overlay_core).

-export([new/2, local/3, flush/2, sent/3, peer_up/3, peer_down/2, anti_entropy/2,
         handle_msg/4]).
-export([replica/1, batch/1, is_peer/2, up_peers/1, info/1]).

-export_type([core/0, effect/0, op/0, msg/0, options/0, type/0]).

-type type() :: plexus_overlay_state:type().
-type op() :: {update_entity, term(), term()} | {remove_entity, term()}
            | {add_waypoint, term(), term()} | {remove_waypoint, term()}.
-type effect() :: {send, node(), msg()} | {event, plexus_overlay_state:event()}.
-type msg() :: {delta, term()} | {ae, type(), non_neg_integer(), in | out, term()}.
-type options() :: #{max_batch_ops => pos_integer(), max_pending_ops => pos_integer(),
                     ae_timeout_ms => pos_integer()}.

%% A session: its id, the snapshot it reads, when it began.
-record(session, {sid :: non_neg_integer(), snap :: term(), started :: integer()}).
-record(peer, {pending = none :: none | plexus_overlay_state:delta(),
               needs_ae = false :: boolean()}).
-record(core, {rep :: plexus_overlay_state:state(),
               batch :: plexus_overlay_state:delta(),
               peers = #{} :: #{node() => #peer{}},
               %% {Node, Type, out | in} => session: out = begun here
               sessions = #{} :: #{{node(), type(), in | out} => #session{}},
               next_sid = 0 :: non_neg_integer(),
               max_batch_ops :: pos_integer(),
               max_pending_ops :: pos_integer(),
               ae_timeout_ms :: pos_integer(),
               dropped_deltas = 0 :: non_neg_integer(),
               bad_msgs = 0 :: non_neg_integer(),
               last_bad = none :: term()}).
-opaque core() :: #core{}.

-define(TYPES, [entities, waypoints]).
%% A path is shipped when about this many entries or fewer lie below it (see refine/3).
-define(SHIP_AT_MOST, 8).
%% The deepest path of the tries (32 nibbles).
-define(MAX_PATH, 32).
%% Paths one step of an exchange may summarise. An honest step holds the children of
%% the paths that differed, 16 each, and ?SHIP_AT_MOST entries below a shipped path
%% keep that small; 4,096 is 256 differing subtrees at once.
-define(MAX_SUMS, 4096).

%% @doc A core for the replica of `Actor' (the node and this start of the overlay:
%% an actor is never used again by a replica that lost its state).
-spec new(term(), options()) -> core().
new(Actor, Opts) ->
    #core{rep = plexus_overlay_state:new(Actor),
          next_sid = first_sid(Actor),
          batch = plexus_overlay_state:empty_delta(),
          max_batch_ops = maps:get(max_batch_ops, Opts, 1000),
          max_pending_ops = maps:get(max_pending_ops, Opts, 10000),
          ae_timeout_ms = maps:get(ae_timeout_ms, Opts, 10000)}.

%% Where the session ids of a life start: drawn from its actor, not 0. A peer learns
%% nothing when an overlay is killed and started again on the same node (no nodedown),
%% so it keeps its half of a session of the first life until ae_timeout_ms, and
%% answers of that life may still be on their way. With ids from 0 in every life, the
%% new life's first sessions had the ids of the first life's: the peer answered the
%% new one from the old session's snapshot (without what it wrote since), or the new
%% life took the peer's late answer to the old session (about the paths the old
%% replica lacked) for the answer to its own and closed it. Either way the restarted
%% replica stayed incomplete until the next periodic exchange (37 of 600 entities
%% in restart_during_exchange_self_test). Ids are compared only for equality; 2^24
%% sessions of one life stay clear of another's start but for a 1 in 2^32 chance.
first_sid(Actor) ->
    erlang:phash2(Actor, 1 bsl 32) bsl 24.

-spec replica(core()) -> plexus_overlay_state:state().
replica(#core{rep = R}) -> R.

%% @doc The local changes not flushed yet, as one delta.
-spec batch(core()) -> plexus_overlay_state:delta().
batch(#core{batch = B}) -> B.

%% @doc Whether `Node' is a peer that is up.
-spec is_peer(core(), node()) -> boolean().
is_peer(#core{peers = P}, Node) -> is_map_key(Node, P).

-spec up_peers(core()) -> [node()].
up_peers(#core{peers = P}) -> lists:sort(maps:keys(P)).

%% @doc Counters and sizes for `plexus_overlay:info/1'.
-spec info(core()) -> map().
info(#core{} = C) ->
    #{peers => up_peers(C),
      actor => plexus_overlay_state:actor(C#core.rep),
      batch_ops => plexus_overlay_state:delta_ops(C#core.batch),
      pending_ops => maps:from_list([{N, pending_ops(P)} || {N, P} <- maps:to_list(C#core.peers)]),
      sessions => map_size(C#core.sessions),
      dropped_deltas => C#core.dropped_deltas,
      bad_msgs => C#core.bad_msgs,
      last_bad => C#core.last_bad,
      entities => plexus_overlay_state:entity_count(C#core.rep),
      waypoints => plexus_overlay_state:waypoint_count(C#core.rep)}.

pending_ops(#peer{pending = none}) -> 0;
pending_ops(#peer{pending = D}) -> plexus_overlay_state:delta_ops(D).

%% ---------------------------------------------------------------- local ops

%% @doc Applies a local op: its events at once, its delta into the batch (flushed
%% at once when the batch is full).
-spec local(core(), op(), integer()) -> {core(), [effect()]}.
local(#core{rep = R, batch = B} = C, Op, Now) ->
    {R2, D, Events} = apply_op(R, Op),
    C2 = C#core{rep = R2, batch = plexus_overlay_state:merge_deltas(B, D)},
    Effects = events(Events),
    case plexus_overlay_state:delta_ops(C2#core.batch) >= C2#core.max_batch_ops of
        true ->
            {C3, Sends} = flush(C2, Now),
            {C3, Effects ++ Sends};
        false ->
            {C2, Effects}
    end.

apply_op(R, {update_entity, Id, Attrs}) -> plexus_overlay_state:update_entity(R, Id, Attrs);
apply_op(R, {remove_entity, Id}) -> plexus_overlay_state:remove_entity(R, Id);
apply_op(R, {add_waypoint, Id, Wp}) -> plexus_overlay_state:add_waypoint(R, Id, Wp);
apply_op(R, {remove_waypoint, Id}) -> plexus_overlay_state:remove_waypoint(R, Id).

%% ---------------------------------------------------------------- replication

%% @doc The sync tick: the batch goes into every up peer's pending delta and out as one
%% message per peer; peers marked for anti-entropy start a session; sessions past
%% their timeout are forgotten.
-spec flush(core(), integer()) -> {core(), [effect()]}.
flush(#core{batch = B, peers = Peers} = C, Now) ->
    HasBatch = plexus_overlay_state:delta_ops(B) > 0,
    {Peers2, Sends} =
        maps:fold(
          fun(N, P, {Acc, Ss}) ->
                  P2 = case HasBatch of
                           true -> add_pending(P, B, C#core.max_pending_ops);
                           false -> P
                       end,
                  case P2#peer.pending of
                      none -> {Acc#{N => P2}, Ss};
                      D -> {Acc#{N => P2},
                            [{send, N, {delta, plexus_overlay_state:encode_delta(D)}} | Ss]}
                  end
          end, {#{}, []}, Peers),
    Dropped = length([N || {N, #peer{needs_ae = true}} <- maps:to_list(Peers2),
                           not (maps:get(N, Peers))#peer.needs_ae]),
    C2 = expire(C#core{batch = plexus_overlay_state:empty_delta(), peers = Peers2,
                       dropped_deltas = C#core.dropped_deltas + Dropped}, Now),
    {C3, AE} = start_marked(C2, Now),
    {C3, lists:sort(Sends) ++ AE}.

add_pending(#peer{pending = none} = P, B, Max) ->
    bounded(P, B, Max);
add_pending(#peer{pending = D} = P, B, Max) ->
    bounded(P, plexus_overlay_state:merge_deltas(D, B), Max).

bounded(P, D, Max) ->
    case plexus_overlay_state:delta_ops(D) > Max of
        true -> P#peer{pending = none, needs_ae = true};
        false -> P#peer{pending = D}
    end.

%% @doc The outcome of a delta send to `Node': `ok' clears its pending delta (the
%% delta is on its way; if the connection then drops, the anti-entropy at the next
%% nodeup repairs it), anything else keeps it to be coalesced with the next batch.
-spec sent(core(), node(), ok | busy | noconnect) -> core().
sent(#core{peers = Peers} = C, Node, ok) ->
    case Peers of
        #{Node := P} -> C#core{peers = Peers#{Node => P#peer{pending = none}}};
        _ -> C
    end;
sent(C, _, _) ->
    C.

%% @doc A peer came up (or back): anti-entropy with it at once. (A peer already up,
%% reported again by another source, keeps its pending delta.)
-spec peer_up(core(), node(), integer()) -> {core(), [effect()]}.
peer_up(#core{peers = Peers} = C, Node, Now) ->
    C2 = C#core{peers = maps:update_with(Node, fun(P) -> P#peer{needs_ae = true} end,
                                         #peer{needs_ae = true}, Peers)},
    start_marked(C2, Now).

%% @doc A peer went down: its pending delta and sessions are dropped (the
%% anti-entropy when it comes back repairs what it missed).
-spec peer_down(core(), node()) -> core().
peer_down(#core{peers = Peers, sessions = S} = C, Node) ->
    C#core{peers = maps:remove(Node, Peers),
           sessions = maps:filter(fun({N, _, _}, _) -> N =/= Node end, S)}.

%% @doc The periodic anti-entropy tick: a session with every up peer.
-spec anti_entropy(core(), integer()) -> {core(), [effect()]}.
anti_entropy(#core{peers = Peers} = C, Now) ->
    start_marked(C#core{peers = maps:map(fun(_, P) -> P#peer{needs_ae = true} end, Peers)},
                 Now).

%% Starts sessions with the marked peers that have none running (both types).
start_marked(#core{peers = Peers} = C, Now) ->
    lists:foldl(
      fun(N, {Ca, Ea}) ->
              case [T || T <- ?TYPES, is_map_key({N, T, out}, Ca#core.sessions)] of
                  [] ->
                      Cb = Ca#core{peers = maps:update_with(
                                             N, fun(P) -> P#peer{needs_ae = false} end,
                                             Ca#core.peers)},
                      {Cc, Ec} = lists:foldl(fun(T, {Cx, Ex}) ->
                                                     {Cy, Ey} = start_session(Cx, N, T, Now),
                                                     {Cy, Ex ++ Ey}
                                             end, {Cb, []}, ?TYPES),
                      {Cc, Ea ++ Ec};
                  _ ->
                      {Ca, Ea}
              end
      end, {C, []}, lists:sort([N || {N, #peer{needs_ae = true}} <- maps:to_list(Peers)])).

start_session(#core{rep = R, next_sid = Sid, sessions = S} = C, Node, T, Now) ->
    Snap = plexus_overlay_state:crdt(R, T),
    Mod = mod(T),
    Sums = Mod:digest_tree(Snap),
    C2 = C#core{next_sid = Sid + 1,
                sessions = S#{{Node, T, out} => #session{sid = Sid, snap = Snap, started = Now}}},
    {C2, [{send, Node, {ae, T, Sid, out, {sum, Sums, [], ctx_hash(Mod, Snap)}}}]}.

expire(#core{sessions = S, ae_timeout_ms = Max} = C, Now) ->
    C#core{sessions = maps:filter(fun(_, #session{started = T}) -> Now - T =< Max end, S)}.

%% ---------------------------------------------------------------- messages

%% @doc A message from the overlay on `From'. A message this code cannot take (a peer
%% of another version, a bug, a forgery) is counted in `bad_msgs' and changes nothing:
%% the overlay never crashes on one (its unflushed writes and its subscribers would go
%% with it).
-spec handle_msg(core(), node(), term(), integer()) -> {core(), [effect()]}.
handle_msg(C, From, Msg, Now) ->
    try
        handle_msg1(C, From, Msg, Now)
    catch
        error:Reason -> {bad(C, {crashed, Reason}), []}
    end.

handle_msg1(#core{rep = R} = C, _From, {delta, Wire}, _Now) ->
    case plexus_overlay_state:decode_delta(Wire) of
        {ok, D} ->
            {R2, Events} = plexus_overlay_state:apply_delta(R, D),
            {C#core{rep = R2}, events(Events)};
        {error, _} ->
            {bad(C, bad_delta), []}
    end;
handle_msg1(#core{peers = Peers} = C, From, {ae, _, _, _, _}, _Now)
  when not is_map_key(From, Peers) ->
    %% sessions only with up peers: one per peer, type and direction is then a bound
    %% (20,000 claimed senders opened 20,000 sessions)
    {bad(C, not_a_peer), []};
handle_msg1(C, From, {ae, T, Sid, Dir, Step}, Now)
  when (T =:= entities orelse T =:= waypoints) andalso (Dir =:= in orelse Dir =:= out) ->
    Key = {From, T, flip(Dir)},
    case maps:find(Key, C#core.sessions) of
        {ok, #session{sid = Sid} = S} ->
            ae_step(C, Key, S, Step);
        _ when Dir =:= out, is_tuple(Step), tuple_size(Step) =:= 4,
               element(1, Step) =:= sum, element(4, Step) =/= none ->
            %% the first step of a session begun by the peer (only that one carries a
            %% context hash): it replaces any older session of the pair
            S = #session{sid = Sid, snap = plexus_overlay_state:crdt(C#core.rep, T),
                         started = Now},
            ae_step(C#core{sessions = (C#core.sessions)#{Key => S}}, Key, S, Step);
        _ ->
            %% a step of a session forgotten here (timed out, replaced): ignored
            {C, []}
    end;
handle_msg1(C, _, _, _) ->
    {bad(C, unknown_msg), []}.

flip(out) -> in;
flip(in) -> out.

ae_step(C, Key, S, Step) ->
    try
        ae_step1(C, Key, S, Step)
    catch
        error:Reason -> {bad(close(C, Key), {ae_step, Reason}), []}
    end.

ae_step1(C, {Node, T, Dir} = Key, #session{sid = Sid, snap = Snap}, Step) ->
    Mod = mod(T),
    Send = fun(M) -> {send, Node, {ae, T, Sid, Dir, M}} end,
    case Step of
        {sum, Sums, _, _} when not is_list(Sums); length(Sums) > ?MAX_SUMS ->
            %% more paths than an honest step carries: a few summaries made replies
            %% of hundreds of MB and held the overlay for seconds
            {bad(close(C, Key), too_many_paths), []};
        {sum, Sums, Ship, CtxH} when is_list(Ship) ->
            case Mod:diff(Snap, lists:ukeysort(1, Sums)) of
                {error, _} ->
                    {bad(close(C, Key), bad_summary), []};
                {Descend0, S0} ->
                    {Refine, S1} = refine(Mod, Snap, S0),
                    Ship2 = lists:usort(Ship ++ S1),
                    case lists:usort(Descend0 ++ Refine) of
                        [] ->
                            case Ship2 =:= [] andalso CtxH =:= ctx_hash(Mod, Snap) of
                                true ->
                                    {close(C, Key), [Send(done)]};
                                false ->
                                    slice(C, Key, Send, Mod:missing(Snap, Ship2), Ship2)
                            end;
                        Descend ->
                            {C, [Send({sum, Mod:summary(Snap, Descend), Ship2, none})]}
                    end
            end;
        {slice, Slice, Ship} when is_binary(Slice), is_list(Ship) ->
            case Mod:missing(Snap, Ship) of
                Mine when is_binary(Mine) ->
                    merge_slice(close(C, Key), T, Slice, Ship, [Send({slice_reply, Mine, Ship})]);
                _ ->
                    {bad(close(C, Key), bad_ship), []}
            end;
        {slice_reply, Slice, Ship} when is_binary(Slice), is_list(Ship) ->
            merge_slice(close(C, Key), T, Slice, Ship, []);
        done ->
            {close(C, Key), []};
        _ ->
            {bad(close(C, Key), bad_step), []}
    end.

%% A slice to send; paths that missing/2 refuses (nested ones from a peer's list) end
%% the session as a bad step, instead of sending the error on.
slice(C, _Key, Send, Slice, Ship) when is_binary(Slice) ->
    {C, [Send({slice, Slice, Ship})]};
slice(C, Key, _, _, _) ->
    {bad(close(C, Key), bad_ship), []}.

merge_slice(#core{rep = R} = C, T, Slice, Ship, Effects) ->
    case plexus_overlay_state:merge_slice(R, T, Slice, Ship) of
        {ok, R2, Events} -> {C#core{rep = R2}, Effects ++ events(Events)};
        {error, Reason} -> {bad(C, {bad_slice, Reason}), Effects}
    end.

close(#core{sessions = S} = C, Key) ->
    C#core{sessions = maps:remove(Key, S)}.

bad(#core{bad_msgs = N} = C, Why) ->
    C#core{bad_msgs = N + 1, last_bad = Why}.

%% `diff/2' ships a path whole once its subtree holds at most a few hundred entries,
%% or when most of its children differ: cheap for small values, but with 10,000
%% entities ten scattered changes differ under most root children and the whole
%% state would move. So a path is shipped only when it is expected to hold at most
%% ?SHIP_AT_MOST entries here (n / 16^depth: keys are placed by their hash); above that its
%% 16 children are summarised instead, one more round trip per level. `summary/2'
%% accepts any path, also one below a leaf, and `missing/2' / `merge_missing/2' any
%% set of non-nested paths, so the exchange stays the one of the CRDT modules, only
%% finer. -> {PathsToDescend, PathsToShip}.
refine(Mod, Snap, Paths) ->
    N = Mod:size(Snap),
    lists:foldr(fun(P, {D, S}) ->
                        case N div (1 bsl (4 * byte_size(P))) > ?SHIP_AT_MOST
                            andalso byte_size(P) < ?MAX_PATH of
                            true -> {[<<P/binary, I>> || I <- lists:seq(0, 15)] ++ D, S};
                            false -> {D, [P | S]}
                        end
                end, {[], []}, Paths).

%% ---------------------------------------------------------------- helpers

%% The context alone, hashed: the slice at no path is the context and no entry.
ctx_hash(Mod, Snap) ->
    erlang:md5(Mod:missing(Snap, [])).

mod(entities) -> plexus_lwwmap;
mod(waypoints) -> plexus_orset2.

events(Events) ->
    [{event, E} || E <- Events].
