%% @private
%% @doc The subscribers of a `plexus_discovery' server: a registry indexed by
%% subscription id, by monitor and by dispatcher pid (so a `DOWN' or `EXIT' finds its
%% subscription without a scan), and the delivery of events to it.
%%
%% The registry itself (`new/0', `insert/5', `take/2', `by_monitor/2',
%% `by_dispatcher/2', `deliveries/2') is pure; `subscribe/3', `unsubscribe/2',
%% `dispatch/2' and `stop_all/1' are the effects the server runs with it (monitor,
%% spawn, send). A pid subscriber is sent `{plexus_discovery, Event}'; a fun
%% subscriber gets a dispatcher process of its own, linked to the server, which calls
%% the fun, so a slow or crashing fun never blocks the server or other subscribers.
%% A pid on another node gets one too (kind `relay'), which sends it the events: a
%% send to a node whose connection is full suspends the sender, and a subscriber on
%% a node that hung (stopped, swapping, partitioned) held the server that way for as
%% long as the connection lasted (over 2 minutes measured, every call timing out).
-module(plexus_discovery_subs).

-export([new/0, insert/5, take/2, by_monitor/2, by_dispatcher/2, deliveries/2, size/1]).
-export([subscribe/3, unsubscribe/2, unsubscribe_call/3, dispatch/2, stop_all/1]).

-export_type([subs/0, kind/0]).

-type kind() :: pid | 'fun' | relay.
-type sub_id() :: plexus_discovery:sub_id().

%% node: a relay's subscriber's (the node whose callers hear of an unsubscribe from it)
-record(sub, {kind :: kind(), pid :: pid(), mref :: reference(), node :: node() | undefined}).
-record(subs, {by_id = #{} :: #{sub_id() => #sub{}},
               by_mref = #{} :: #{reference() => sub_id()},
               %% fun and relay subscribers only: their dispatchers are linked to the server
               by_dispatcher = #{} :: #{pid() => sub_id()}}).

-opaque subs() :: #subs{}.

%% ------------------------------------------------------------------ the registry (pure)

%% @doc No subscribers.
-spec new() -> subs().
new() -> #subs{}.

%% @doc The number of subscriptions.
-spec size(subs()) -> non_neg_integer().
size(#subs{by_id = B}) -> map_size(B).

%% @doc Records a subscription: `Pid' is the subscriber (kind `pid') or its dispatcher
%% (kinds `fun' and `relay'), `MRef' the server's monitor of the subscriber (of the
%% dispatcher for a fun).
-spec insert(sub_id(), kind(), pid(), reference(), subs()) -> subs().
insert(Id, Kind, Pid, MRef, #subs{by_id = B, by_mref = M, by_dispatcher = D} = S) ->
    S#subs{by_id = B#{Id => #sub{kind = Kind, pid = Pid, mref = MRef}},
           by_mref = M#{MRef => Id},
           by_dispatcher = case Kind of
                               pid -> D;
                               _ -> D#{Pid => Id}
                           end}.

%% @doc Removes a subscription and returns what it was, or `error' when it is unknown.
-spec take(sub_id(), subs()) -> {ok, {kind(), pid(), reference()}, subs()} | error.
take(Id, #subs{by_id = B, by_mref = M, by_dispatcher = D} = S) ->
    case maps:take(Id, B) of
        {#sub{kind = K, pid = Pid, mref = MRef}, B1} ->
            {ok, {K, Pid, MRef},
             S#subs{by_id = B1, by_mref = maps:remove(MRef, M), by_dispatcher = maps:remove(Pid, D)}};
        error ->
            error
    end.

%% @doc The subscription a monitor belongs to.
-spec by_monitor(reference(), subs()) -> {ok, sub_id()} | error.
by_monitor(MRef, #subs{by_mref = M}) -> maps:find(MRef, M).

%% @doc The fun or relay subscription a dispatcher pid runs.
-spec by_dispatcher(pid(), subs()) -> {ok, sub_id()} | error.
by_dispatcher(Pid, #subs{by_dispatcher = D}) -> maps:find(Pid, D).

%% @doc The messages that deliver one event: one per subscription.
-spec deliveries(plexus_discovery:event(), subs()) -> [{pid(), term()}].
deliveries(Event, #subs{by_id = B}) ->
    [case Kind of
         pid -> {Pid, {plexus_discovery, Event}};
         _ -> {Pid, {event, Event}}
     end || #sub{kind = Kind, pid = Pid} <- maps:values(B)].

%% ------------------------------------------------------------------ effects

%% @doc Subscribes a pid (monitored) or a fun (a linked dispatcher process, monitored
%% too); a pid on another node is monitored and sent its events by a linked relay
%% process. A local pid that is already dead is refused; a remote one is accepted and
%% its monitor reports it if it is gone. `Name' is the server's, for log lines.
-spec subscribe(pid() | fun((plexus_discovery:event()) -> term()), atom(), subs()) ->
    {ok, sub_id(), subs()} | {error, {subscription_failed, noproc}}.
subscribe(Pid, _Name, S) when is_pid(Pid), node(Pid) =/= node() ->
    Id = make_ref(),
    Relay = spawn_link(fun() -> relay_loop(Pid) end),
    #subs{by_id = B} = S1 = insert(Id, relay, Relay, erlang:monitor(process, Pid), S),
    {ok, Id, S1#subs{by_id = B#{Id := (map_get(Id, B))#sub{node = node(Pid)}}}};
subscribe(Pid, _Name, S) when is_pid(Pid) ->
    case is_process_alive(Pid) of
        true ->
            Id = make_ref(),
            {ok, Id, insert(Id, pid, Pid, erlang:monitor(process, Pid), S)};
        false ->
            {error, {subscription_failed, noproc}}
    end;
subscribe(Fun, Name, S) when is_function(Fun, 1) ->
    Id = make_ref(),
    Pid = spawn_link(fun() -> dispatch_loop(Name, Fun) end),
    {ok, Id, insert(Id, 'fun', Pid, erlang:monitor(process, Pid), S)}.

%% @doc Ends a subscription (nothing when it is unknown): its monitor goes, a fun's
%% dispatcher is unlinked and told to stop after the events it already has.
-spec unsubscribe(sub_id(), subs()) -> subs().
unsubscribe(Id, S) -> unsubscribe(Id, stop, S).

%% Stop is what a dispatcher or relay is told.
unsubscribe(Id, Stop, S) ->
    case take(Id, S) of
        {ok, {K, Pid, MRef}, S1} ->
            erlang:demonitor(MRef, [flush]),
            _ = case K of
                    pid -> ok;
                    _ -> unlink(Pid), Pid ! Stop
                end,
            S1;
        error ->
            S
    end.

%% @doc The unsubscribe call of `From': `{reply, S1}' when the server answers it, or
%% `{noreply, S1}' when the subscription's relay answers it after the events it still
%% holds. A caller on the subscriber's node hears nothing after its answer, as with a
%% local subscriber, whose events and answer all come from the server in order: a
%% relay held back (a busy connection) sent them after it (100 of 100 measured), and
%% a subscribe_snapshot after the unsubscribe got them after its snapshot. A caller
%% elsewhere is answered at once (a relay stuck on a hung node would time it out).
-spec unsubscribe_call(sub_id(), gen_server:from(), subs()) -> {reply | noreply, subs()}.
unsubscribe_call(Id, {Caller, _} = From, #subs{by_id = B} = S) ->
    case B of
        #{Id := #sub{kind = relay, node = N}} when node(Caller) =:= N ->
            {noreply, unsubscribe(Id, {stop, From}, S)};
        _ ->
            {reply, unsubscribe(Id, S)}
    end.

%% @doc Delivers events, in order, to every subscriber.
-spec dispatch([plexus_discovery:event()], subs()) -> ok.
dispatch(Events, S) ->
    lists:foreach(fun(E) -> [Pid ! Msg || {Pid, Msg} <- deliveries(E, S)] end, Events).

%% @doc Kills every dispatcher (the server is stopping).
-spec stop_all(subs()) -> ok.
stop_all(#subs{by_dispatcher = D}) ->
    maps:foreach(fun(Pid, _) -> unlink(Pid), exit(Pid, kill) end, D).

%% Never connects: the subscriber's node was connected when it subscribed, and when
%% that connection goes the server's monitor ends the subscription (a send that would
%% connect again could stall this relay on a dead node for each event it holds).
relay_loop(Sub) ->
    receive
        {event, E} ->
            _ = erlang:send(Sub, {plexus_discovery, E}, [noconnect]),
            relay_loop(Sub);
        {stop, From} ->
            gen_server:reply(From, ok);
        stop ->
            ok
    end.

dispatch_loop(Name, Fun) ->
    receive
        {event, E} ->
            try Fun(E)
            catch C:R:St ->
                    logger:warning("plexus_discovery ~p: subscriber fun crashed: ~p:~p ~p",
                                   [Name, C, R, St])
            end,
            dispatch_loop(Name, Fun);
        stop ->
            ok
    end.
