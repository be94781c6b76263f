%% @doc A replicated overlay of entities, waypoints and events (Raxol's
%% TacticalOverlay, natively; issue 10): entities are last-writer-wins registers
%% (`plexus_lwwmap'), waypoints an add-wins set keyed by id (`plexus_orset2'), changes
%% travel as batched deltas and are repaired by Merkle anti-entropy. See README,
%% "Replicated overlay".
%%
%% This module is the API and a thin gen_server runner: the decisions are in
%% `plexus_overlay_core' (peers, batching, bounds, anti-entropy steps) and
%% `plexus_overlay_state' (the replica, merges, events), both pure. The runner owns
%% the effects: timers, sends, subscriber messages, peer tracking.
%%
%% Options (a map or a keyword list): `name' (registered name, default
%% `plexus_overlay'; every node of an overlay uses the same name), `sync_interval_ms'
%% (500), `anti_entropy_interval_ms' (60000), `peers' (`connected', the default:
%% every connected node; a list of nodes; or a `plexus_discovery' server, by name or
%% pid), `max_batch_ops' (1000), `max_pending_ops' (10000), `ae_timeout_ms'
%% (max(10000, 10 x sync_interval_ms)), and the test hook `drop_delta_probability'
%% (0.0: the share of outgoing deltas dropped on purpose).
-module(plexus_overlay).
-behaviour(gen_server).

-export([start_link/0, start_link/1, start/1, stop/1, child_spec/1]).
-export([update_entity/2, update_entity/3, remove_entity/1, remove_entity/2,
         add_waypoint/2, add_waypoint/3, remove_waypoint/1, remove_waypoint/2,
         get_entity/1, get_entity/2, get_all_entities/0, get_all_entities/1,
         get_all_waypoints/0, get_all_waypoints/1,
         subscribe/0, subscribe/1, subscribe/2, unsubscribe/1, unsubscribe/2,
         info/0, info/1, to_binary/0, to_binary/1, sync_now/1, anti_entropy_now/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([server/0, peers/0, options/0, event/0]).

-define(DEFAULT, plexus_overlay).

-type server() :: atom() | pid().
-type event() :: plexus_overlay_state:event().
-type peers() :: connected | [node()] | atom() | pid().
-type options() :: #{name => atom(), sync_interval_ms => pos_integer(),
                     anti_entropy_interval_ms => pos_integer(), peers => peers(),
                     max_batch_ops => pos_integer(), max_pending_ops => pos_integer(),
                     ae_timeout_ms => pos_integer(), drop_delta_probability => float()}
                 | [{atom(), term()}].

-record(st, {name :: atom(),
             core :: plexus_overlay_core:core(),
             peers :: connected | {nodes, [node()]} | {discovery, server(), #{binary() => true}},
             subs = #{} :: #{reference() => pid()},
             sync_ms :: pos_integer(),
             ae_ms :: pos_integer(),
             drop_p :: float(),
             %% every counter from the start, so a caller can match on it
             stats = #{msgs_sent => 0, bytes_sent => 0, sends_busy => 0,
                       sends_noconnect => 0, deltas_dropped_by_hook => 0}
                 :: #{atom() => non_neg_integer()}}).

%% ---------------------------------------------------------------- start

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    start_link(#{}).

%% @doc Starts an overlay linked to the caller.
-spec start_link(options()) -> {ok, pid()} | {error, term()}.
start_link(Opts) ->
    with_opts(Opts, fun(M) -> gen_server:start_link({local, name(M)}, ?MODULE, M, []) end).

%% @doc Starts an overlay without a link.
-spec start(options()) -> {ok, pid()} | {error, term()}.
start(Opts) ->
    with_opts(Opts, fun(M) -> gen_server:start({local, name(M)}, ?MODULE, M, []) end).

with_opts(Opts, Start) ->
    case plexus_opts:to_map(Opts) of
        {ok, M} ->
            case check(M) of
                ok -> Start(M);
                Error -> Error
            end;
        Error ->
            Error
    end.

-spec stop(server()) -> ok.
stop(Server) ->
    gen_server:stop(Server).

%% @doc A child spec; the id is the overlay's name, so several overlays can share a
%% supervisor.
-spec child_spec(options()) -> supervisor:child_spec().
child_spec(Opts) ->
    M = plexus_opts:to_map_or_error(Opts),
    #{id => {?MODULE, name(M)}, start => {?MODULE, start_link, [M]},
      type => worker, restart => permanent, shutdown => 5000, modules => [?MODULE]}.

name(M) -> maps:get(name, M, ?DEFAULT).

check(M) ->
    Bad = [{K, V} || {K, V} <- maps:to_list(M), not valid(K, V)],
    case Bad of
        [] -> ok;
        [KV | _] -> {error, {bad_option, KV}}
    end.

valid(name, V) -> is_atom(V);
valid(K, V) when K =:= sync_interval_ms; K =:= anti_entropy_interval_ms;
                 K =:= max_batch_ops; K =:= max_pending_ops; K =:= ae_timeout_ms ->
    is_integer(V) andalso V > 0;
valid(peers, V) -> is_atom(V) orelse is_pid(V) orelse (is_list(V) andalso lists:all(fun is_atom/1, V));
valid(drop_delta_probability, V) -> is_number(V) andalso V >= 0 andalso V =< 1;
valid(_, _) -> false.

%% ---------------------------------------------------------------- API

-spec update_entity(term(), term()) -> ok.
update_entity(Id, Attrs) -> update_entity(?DEFAULT, Id, Attrs).

%% @doc Sets entity `Id' to `Attrs' (last writer wins).
-spec update_entity(server(), term(), term()) -> ok.
update_entity(S, Id, Attrs) -> gen_server:call(S, {op, {update_entity, Id, Attrs}}).

-spec remove_entity(term()) -> ok.
remove_entity(Id) -> remove_entity(?DEFAULT, Id).

%% @doc Removes entity `Id' (a concurrent update elsewhere wins).
-spec remove_entity(server(), term()) -> ok.
remove_entity(S, Id) -> gen_server:call(S, {op, {remove_entity, Id}}).

-spec add_waypoint(term(), term()) -> ok.
add_waypoint(Id, Wp) -> add_waypoint(?DEFAULT, Id, Wp).

%% @doc Sets waypoint `Id' to `Wp' (add-wins against a concurrent remove).
-spec add_waypoint(server(), term(), term()) -> ok.
add_waypoint(S, Id, Wp) -> gen_server:call(S, {op, {add_waypoint, Id, Wp}}).

-spec remove_waypoint(term()) -> ok.
remove_waypoint(Id) -> remove_waypoint(?DEFAULT, Id).

%% @doc Removes waypoint `Id' (every element of it observed here).
-spec remove_waypoint(server(), term()) -> ok.
remove_waypoint(S, Id) -> gen_server:call(S, {op, {remove_waypoint, Id}}).

-spec get_entity(term()) -> {ok, term()} | {error, not_found}.
get_entity(Id) -> get_entity(?DEFAULT, Id).

-spec get_entity(server(), term()) -> {ok, term()} | {error, not_found}.
get_entity(S, Id) -> gen_server:call(S, {get_entity, Id}).

-spec get_all_entities() -> map().
get_all_entities() -> get_all_entities(?DEFAULT).

-spec get_all_entities(server()) -> map().
get_all_entities(S) -> gen_server:call(S, get_all_entities).

-spec get_all_waypoints() -> map().
get_all_waypoints() -> get_all_waypoints(?DEFAULT).

-spec get_all_waypoints(server()) -> map().
get_all_waypoints(S) -> gen_server:call(S, get_all_waypoints).

-spec subscribe() -> {ok, reference()}.
subscribe() -> subscribe(?DEFAULT).

%% @doc The caller receives `{overlay_event, Event}' for every change that becomes
%% visible in this overlay from now on (until it exits or unsubscribes).
-spec subscribe(server()) -> {ok, reference()}.
subscribe(S) -> subscribe(S, self()).

-spec subscribe(server(), pid()) -> {ok, reference()}.
subscribe(S, Pid) when is_pid(Pid) -> gen_server:call(S, {subscribe, Pid}).

-spec unsubscribe(reference()) -> ok.
unsubscribe(Ref) -> unsubscribe(?DEFAULT, Ref).

-spec unsubscribe(server(), reference()) -> ok.
unsubscribe(S, Ref) -> gen_server:call(S, {unsubscribe, Ref}).

-spec info() -> map().
info() -> info(?DEFAULT).

%% @doc Peers, sizes, bounds in use and counters (`bytes_sent', `msgs_sent',
%% `sends_busy', `sends_noconnect', `deltas_dropped_by_hook', `dropped_deltas'
%% (pending deltas given up for anti-entropy), `bad_msgs', `mailbox').
-spec info(server()) -> map().
info(S) -> gen_server:call(S, info).

-spec to_binary() -> binary().
to_binary() -> to_binary(?DEFAULT).

%% @doc The canonical bytes of the replica: equal on replicas that saw the same changes.
-spec to_binary(server()) -> binary().
to_binary(S) -> gen_server:call(S, to_binary).

%% @doc Flushes the batch now (tests, shutdown).
-spec sync_now(server()) -> ok.
sync_now(S) -> gen_server:call(S, sync_now).

%% @doc Starts anti-entropy with every up peer now.
-spec anti_entropy_now(server()) -> ok.
anti_entropy_now(S) -> gen_server:call(S, anti_entropy_now).

%% ---------------------------------------------------------------- runner

%% @private
init(M) ->
    Sync = maps:get(sync_interval_ms, M, 500),
    Core = plexus_overlay_core:new(incarnation_actor(), #{max_batch_ops => maps:get(max_batch_ops, M, 1000),
                                             max_pending_ops => maps:get(max_pending_ops, M, 10000),
                                             ae_timeout_ms => maps:get(ae_timeout_ms, M,
                                                                       max(10000, 10 * Sync))}),
    ok = net_kernel:monitor_nodes(true),
    case peers_source(maps:get(peers, M, connected)) of
        {ok, Src} ->
            St = #st{name = name(M), core = Core, peers = Src, sync_ms = Sync,
                     ae_ms = maps:get(anti_entropy_interval_ms, M, 60000),
                     drop_p = float(maps:get(drop_delta_probability, M, 0.0))},
            erlang:send_after(Sync, self(), sync_tick),
            erlang:send_after(St#st.ae_ms, self(), ae_tick),
            {ok, lists:foldl(fun(N, A) -> node_up(A, N) end, St, nodes())};
        {error, Reason} ->
            {stop, Reason}
    end.

%% The actor this start of the overlay writes under: the node and when it started.
%% Never node() alone: a replica that starts again has lost its state, so it would
%% count its dots from 1 again, and its peers have seen those dots already (as
%% writes that were later removed, or as the old writes they still hold). The
%% restarted replica's first writes would then vanish on every peer, and the old
%% writes of the same counters be removed by the exchange that followed.
incarnation_actor() ->
    {node(), erlang:system_time(nanosecond), erlang:unique_integer([positive])}.

peers_source(connected) ->
    {ok, connected};
peers_source(L) when is_list(L) ->
    {ok, {nodes, L}};
peers_source(Server) ->
    case catch plexus_discovery:subscribe_snapshot(Server, self()) of
        {ok, _SubId, Peers} ->
            {ok, {discovery, Server, maps:from_list([{Id, true} || #{id := Id} <- Peers])}};
        Other -> {error, {discovery_unavailable, Other}}
    end.

%% @private
handle_call({op, Op}, _From, St) ->
    {reply, ok, run(St, plexus_overlay_core:local(St#st.core, Op, now_ms()))};
handle_call({get_entity, Id}, _From, St) ->
    {reply, plexus_overlay_state:get_entity(rep(St), Id), St};
handle_call(get_all_entities, _From, St) ->
    {reply, plexus_overlay_state:entities(rep(St)), St};
handle_call(get_all_waypoints, _From, St) ->
    {reply, plexus_overlay_state:waypoints(rep(St)), St};
handle_call(to_binary, _From, St) ->
    {reply, plexus_overlay_state:to_binary(rep(St)), St};
handle_call({subscribe, Pid}, _From, #st{subs = Subs} = St) ->
    Ref = erlang:monitor(process, Pid),
    {reply, {ok, Ref}, St#st{subs = Subs#{Ref => Pid}}};
handle_call({unsubscribe, Ref}, _From, #st{subs = Subs} = St) ->
    erlang:demonitor(Ref, [flush]),
    {reply, ok, St#st{subs = maps:remove(Ref, Subs)}};
handle_call(info, _From, #st{core = C, stats = Stats} = St) ->
    {message_queue_len, Q} = erlang:process_info(self(), message_queue_len),
    {reply, maps:merge(maps:merge(plexus_overlay_core:info(C), Stats),
                       #{mailbox => Q, subscribers => map_size(St#st.subs),
                         sync_interval_ms => St#st.sync_ms,
                         anti_entropy_interval_ms => St#st.ae_ms}), St};
handle_call(sync_now, _From, St) ->
    {reply, ok, run(St, plexus_overlay_core:flush(St#st.core, now_ms()))};
handle_call(anti_entropy_now, _From, St) ->
    {reply, ok, run(St, plexus_overlay_core:anti_entropy(St#st.core, now_ms()))};
handle_call(_, _From, St) ->
    {reply, {error, unknown_call}, St}.

%% @private
handle_cast(_, St) ->
    {noreply, St}.

%% @private
handle_info({?MODULE, From, Msg}, St) when is_atom(From) ->
    %% a peer's first message can come before the nodeup that makes it a peer here
    %% (the core opens sessions with peers only): it is one if node_up/2 says so
    St1 = case plexus_overlay_core:is_peer(St#st.core, From) of
              true -> St;
              false -> node_up(St, From)
          end,
    {noreply, run(St1, plexus_overlay_core:handle_msg(St1#st.core, From, Msg, now_ms()))};
handle_info(sync_tick, St) ->
    erlang:send_after(St#st.sync_ms, self(), sync_tick),
    {noreply, run(St, plexus_overlay_core:flush(St#st.core, now_ms()))};
handle_info(ae_tick, St) ->
    erlang:send_after(St#st.ae_ms, self(), ae_tick),
    {noreply, run(St, plexus_overlay_core:anti_entropy(St#st.core, now_ms()))};
handle_info({nodeup, N}, St) ->
    {noreply, node_up(St, N)};
handle_info({nodedown, N}, St) ->
    {noreply, St#st{core = plexus_overlay_core:peer_down(St#st.core, N)}};
handle_info({plexus_discovery, {peer_up, #{id := Id}, _}}, #st{peers = {discovery, S, Ids}} = St) ->
    St2 = St#st{peers = {discovery, S, Ids#{Id => true}}},
    {noreply, case existing_node(Id) of
                  {ok, N} -> node_up(St2, N);
                  error -> St2
              end};
handle_info({plexus_discovery, {peer_down, #{id := Id}, _}}, #st{peers = {discovery, S, Ids}} = St) ->
    St2 = St#st{peers = {discovery, S, maps:remove(Id, Ids)}},
    {noreply, case existing_node(Id) of
                  {ok, N} -> St2#st{core = plexus_overlay_core:peer_down(St2#st.core, N)};
                  error -> St2
              end};
handle_info({'DOWN', Ref, process, _, _}, #st{subs = Subs} = St) ->
    {noreply, St#st{subs = maps:remove(Ref, Subs)}};
handle_info(_, St) ->
    {noreply, St}.

%% @private
terminate(_, _) ->
    ok.

%% A node that is up and is a peer of this overlay starts being replicated to.
node_up(St, N) ->
    case is_peer(St#st.peers, N) andalso lists:member(N, nodes()) of
        true -> run(St, plexus_overlay_core:peer_up(St#st.core, N, now_ms()));
        false -> St
    end.

is_peer(connected, _) -> true;
is_peer({nodes, L}, N) -> lists:member(N, L);
is_peer({discovery, _, Ids}, N) -> is_map_key(atom_to_binary(N, utf8), Ids).

%% A discovered id names a node this VM knows only if its atom exists (it does for
%% every connected node): no atom is made from what discovery reports.
existing_node(Id) ->
    try {ok, binary_to_existing_atom(Id, utf8)}
    catch error:badarg -> error
    end.

%% ---------------------------------------------------------------- effects

run(St, {Core, Effects}) ->
    lists:foldl(fun effect/2, St#st{core = Core}, Effects).

effect({event, E}, #st{subs = Subs} = St) ->
    _ = [Pid ! {overlay_event, E} || Pid <- maps:values(Subs)],
    St;
effect({send, Node, {delta, _} = Msg}, #st{drop_p = P} = St) when P > 0.0 ->
    case rand:uniform() < P of
        true ->
            %% the test hook: lost in flight, as far as the core knows it went out
            St2 = bump(St, deltas_dropped_by_hook, 1),
            St2#st{core = plexus_overlay_core:sent(St2#st.core, Node, ok)};
        false ->
            send(St, Node, Msg)
    end;
effect({send, Node, Msg}, St) ->
    send(St, Node, Msg).

%% Sends never suspend this process on a busy connection nor set one up: a slow or
%% cut-off peer costs a dropped send, never a growing queue here.
send(#st{name = Name} = St, Node, Msg) ->
    Wire = {?MODULE, node(), Msg},
    Outcome = case erlang:send({Name, Node}, Wire, [nosuspend, noconnect]) of
                  ok -> ok;
                  nosuspend -> busy;
                  noconnect -> noconnect
              end,
    St2 = case Outcome of
              ok -> bump(bump(St, msgs_sent, 1), bytes_sent, erlang:external_size(Wire));
              busy -> bump(St, sends_busy, 1);
              noconnect -> bump(St, sends_noconnect, 1)
          end,
    case Msg of
        {delta, _} -> St2#st{core = plexus_overlay_core:sent(St2#st.core, Node, Outcome)};
        _ -> St2
    end.

bump(#st{stats = S} = St, K, N) ->
    St#st{stats = maps:update_with(K, fun(X) -> X + N end, N, S)}.

rep(#st{core = C}) -> plexus_overlay_core:replica(C).

now_ms() -> erlang:monotonic_time(millisecond).
