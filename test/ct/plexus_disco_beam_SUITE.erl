%% @doc `beam' discovery with real peer nodes (OTP `peer', 127.0.0.1): connected nodes
%% are peers, a stopped node goes down with its nodedown reason, hidden nodes only with
%% `node_type => all'; and `connect => true' reconnects a discovered node whose
%% connection is dropped (with the `epmd' adapter, which discovers without connecting).
-module(plexus_disco_beam_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([connected_nodes_are_peers/1, connect_and_reconnect/1]).

all() -> [connected_nodes_are_peers, connect_and_reconnect].

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
