%% @doc `beam' discovery with real peer nodes (OTP `peer', 127.0.0.1): connected nodes
%% are peers, a stopped node goes down with its nodedown reason, hidden nodes only with
%% `node_type => all'; and `connect => true' reconnects a discovered node whose
%% connection is dropped (with the `epmd' adapter, which discovers without connecting);
%% and a subscriber on a node that hangs does not hold up the server (this module is
%% also a push adapter for that case).
-module(plexus_disco_beam_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([connected_nodes_are_peers/1, connect_and_reconnect/1,
         hung_remote_subscriber_blocks_nothing/1, remote_unsubscribe_ends_the_events/1]).
-export([remote_subscriber/2]).
-export([init/1, handle_info/2]). %% the push adapter

all() -> [connected_nodes_are_peers, connect_and_reconnect,
          hung_remote_subscriber_blocks_nothing, remote_unsubscribe_ends_the_events].

init_per_suite(Config) ->
    ok = plexus_disco_fixture:ensure_distributed(),
    Config.

end_per_suite(_Config) ->
    ok.

ids(Name) ->
    {ok, Ps} = plexus_discovery:snapshot(Name),
    lists:sort([Id || #{id := Id} <- Ps]).

connected_nodes_are_peers(_Config) ->
    {ok, P} = plexus_discovery:start_link(#{name => beam_t, sync_interval_ms => 200}),
    unlink(P),
    {ok, _, _} = plexus_discovery:subscribe_snapshot(beam_t, self()),
    {Pa, A} = plexus_disco_fixture:start_peer(beam_peer_a),
    {Pb, B} = plexus_disco_fixture:start_peer(beam_peer_b),
    true = net_kernel:connect_node(A),
    true = net_kernel:connect_node(B),
    [Ab, Bb] = [atom_to_binary(N, utf8) || N <- [A, B]],
    ok = plexus_disco_fixture:wait(fun() -> lists:sort([Ab, Bb]) -- ids(beam_t) =:= [] end, 5000),
    {ok, #{metadata := #{<<"source">> := <<"beam">>}}} = plexus_discovery:lookup(beam_t, A),
    plexus_disco_fixture:stop_peer({Pa, A}),
    receive {plexus_discovery, {peer_down, #{id := Ab}, Reason}} -> ?assert(Reason =/= undefined)
    after 5000 -> error(no_down)
    end,
    plexus_disco_fixture:stop_peer({Pb, B}),
    ok = plexus_disco_fixture:wait(fun() -> not lists:member(Bb, ids(beam_t)) end, 5000),
    ok = plexus_discovery:stop(beam_t).

connect_and_reconnect(_Config) ->
    {Pc, C} = plexus_disco_fixture:start_peer(beam_peer_c),
    %% the peer module talks over stdio: we are not connected to it yet
    erlang:disconnect_node(C),
    false = lists:member(C, nodes()),
    {ok, P} = plexus_discovery:start_link(
                #{name => epmd_connect, adapter => epmd, connect => true, sync_interval_ms => 200,
                  custom => #{nodes => [C]}}),
    unlink(P),
    ok = plexus_disco_fixture:wait(fun() -> lists:member(C, nodes()) end, 5000),
    %% dropped: reconnected while still discovered (libcluster would wait for a change)
    [begin
         true = erlang:disconnect_node(C),
         ok = plexus_disco_fixture:wait(fun() -> lists:member(C, nodes()) end, 5000)
     end || _ <- [1, 2]],
    plexus_disco_fixture:stop_peer({Pc, C}),
    ok = plexus_disco_fixture:wait(fun() -> ids(epmd_connect) =:= [] end, 5000),
    ok = plexus_discovery:stop(epmd_connect).

%% The push adapter: {push, Changes} to the server are its changes.
init(_Config) -> {ok, no_state}.

handle_info({push, Changes}, S) -> {changes, Changes, S};
handle_info(_Msg, S) -> {ok, S}.

%% A subscriber on a node that stops (SIGSTOP) while events flow to it: the server's
%% sends filled the connection and suspended it, so health, snapshot and every other
%% call timed out ({timeout, 15000}, over 2 minutes measured). Now each answers at once.
hung_remote_subscriber_blocks_nothing(_Config) ->
    {ok, P} = plexus_discovery:start_link(#{name => beam_hung, adapter => ?MODULE}),
    unlink(P),
    {Pp, N} = plexus_disco_fixture:start_peer(beam_peer_hung),
    OsPid = erpc:call(N, os, getpid, []),
    try
        Sink = erpc:call(N, erlang, spawn, [timer, sleep, [infinity]]),
        [{ok, _} = plexus_discovery:subscribe(beam_hung, Sink) || _ <- lists:seq(1, 200)],
        _ = os:cmd("kill -STOP " ++ OsPid),
        %% 200 events of 1 KB to 200 subscriptions: 40 MB for a connection that
        %% takes 1 MB before it is busy
        Meta = #{<<"k">> => binary:copy(<<"x">>, 1024)},
        [beam_hung ! {push, [{up, #{id => <<"p", (integer_to_binary(I))/binary, "@h">>,
                                     metadata => Meta}}]} || I <- lists:seq(1, 200)],
        [begin
             {Us, H} = timer:tc(fun() -> plexus_discovery:health(beam_hung) end),
             ct:pal("health ~p in ~p ms", [H, Us div 1000]),
             ?assertEqual(up, H),
             ?assert(Us < 2000000),
             timer:sleep(500)
         end || _ <- lists:seq(1, 4)],
        {ok, Peers} = plexus_discovery:snapshot(beam_hung),
        ?assertEqual(200, length(Peers))
    after
        _ = os:cmd("kill -KILL " ++ OsPid),
        plexus_disco_fixture:stop_peer({Pp, N}),
        catch plexus_discovery:stop(beam_hung)
    end.

%% A subscriber on another node that unsubscribes hears nothing after the answer, as
%% a local one does (the server's events and its answer come from one sender, in
%% order). The relay that sends it its events came between them: events it still
%% held went out after the answer, and one subscribe_snapshot after another got
%% events of the first after the snapshot of the second.
remote_unsubscribe_ends_the_events(_Config) ->
    {ok, P} = plexus_discovery:start_link(#{name => beam_unsub, adapter => ?MODULE}),
    unlink(P),
    {Pp, N} = plexus_disco_fixture:start_peer(hn_beam_peer_unsub),
    Server = {beam_unsub, node()},
    Self = self(),
    try
        Sub = erpc:call(N, erlang, spawn,
                        [fun() -> remote_subscriber(Server, Self) end]),
        receive {subscribed, Sub} -> ok after 5000 -> error(not_subscribed) end,
        %% what sends the subscriber its events, held back as a busy connection
        %% holds it (suspended in its send)
        [Relay] = [L || L <- element(2, process_info(P, links)), is_pid(L), L =/= self()],
        true = erlang:suspend_process(Relay),
        beam_unsub ! {push, [{up, #{id => <<"p", (integer_to_binary(I))/binary, "@h">>,
                                    metadata => #{}}} || I <- lists:seq(1, 100)]},
        Sub ! unsubscribe,
        timer:sleep(300),
        _ = (catch erlang:resume_process(Relay)),
        receive
            {unsubscribed, Sub, AtAnswer, Later} ->
                ct:pal("events at the answer ~p, 1 s later ~p", [AtAnswer, Later]),
                ?assertEqual({100, 100}, {AtAnswer, Later})
        after 30000 -> error(no_report)
        end
    after
        plexus_disco_fixture:stop_peer({Pp, N}),
        catch plexus_discovery:stop(beam_unsub)
    end.

%% On the peer: subscribes, unsubscribes when told, and reports how many
%% events it had when the answer came and 1 s later.
remote_subscriber(Server, Report) ->
    {ok, Id, _} = plexus_discovery:subscribe_snapshot(Server, self()),
    Report ! {subscribed, self()},
    receive unsubscribe -> ok end,
    ok = plexus_discovery:unsubscribe(Server, Id),
    {message_queue_len, AtAnswer} = process_info(self(), message_queue_len),
    timer:sleep(1000),
    {message_queue_len, Later} = process_info(self(), message_queue_len),
    Report ! {unsubscribed, self(), AtAnswer, Later}.
