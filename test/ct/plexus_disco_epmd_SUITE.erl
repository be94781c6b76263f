%% @doc `epmd' discovery with real peer nodes and real epmd registrations on
%% 127.0.0.1: a static node list (peers while registered), a host list (every node
%% registered there), this node excluded, and an unreachable host failing the sync
%% without losing peers.
-module(plexus_disco_epmd_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([static_nodes/1, hosts/1, unreachable_host/1]).

all() -> [static_nodes, hosts, unreachable_host].

init_per_suite(Config) ->
    ok = plexus_disco_fixture:ensure_distributed(),
    Peer = plexus_disco_fixture:start_peer(epmd_peer_a),
    [{peer, Peer} | Config].

end_per_suite(Config) ->
    plexus_disco_fixture:stop_peer(?config(peer, Config)).

ids(Name) ->
    {ok, Ps} = plexus_discovery:snapshot(Name),
    lists:sort([Id || #{id := Id} <- Ps]).

static_nodes(Config) ->
    {_, A} = ?config(peer, Config),
    {ok, P} = plexus_discovery:start_link(
                #{name => epmd_static, adapter => epmd, sync_interval_ms => 100,
                  seed_peers => [A], custom => #{nodes => ['ghost@127.0.0.1', node()]}}),
    unlink(P),
    Ab = atom_to_binary(A, utf8),
    ok = plexus_disco_fixture:wait(fun() -> ids(epmd_static) =:= [Ab] end, 5000),
    {ok, #{metadata := #{<<"port">> := Port}}} = plexus_discovery:lookup(epmd_static, Ab),
    ?assert(binary_to_integer(Port) > 0),
    %% a registration of the ghost makes it a peer; dropping it removes it
    Reg = plexus_disco_fixture:epmd_register("ghost", 40999),
    ok = plexus_disco_fixture:wait(
           fun() -> ids(epmd_static) =:= lists:sort([<<"ghost@127.0.0.1">>, Ab]) end, 5000),
    plexus_disco_fixture:epmd_unregister(Reg),
    ok = plexus_disco_fixture:wait(fun() -> ids(epmd_static) =:= [Ab] end, 5000),
    ok = plexus_discovery:stop(epmd_static).

hosts(Config) ->
    {_, A} = ?config(peer, Config),
    {ok, P} = plexus_discovery:start_link(#{name => epmd_hosts, adapter => epmd,
                                           sync_interval_ms => 100,
                                           custom => #{hosts => ["127.0.0.1"]}}),
    unlink(P),
    ok = plexus_disco_fixture:wait(fun() -> lists:member(atom_to_binary(A, utf8), ids(epmd_hosts)) end,
                                   5000),
    ?assertNot(lists:member(atom_to_binary(node(), utf8), ids(epmd_hosts))),
    ok = plexus_discovery:stop(epmd_hosts).

unreachable_host(Config) ->
    {_, A} = ?config(peer, Config),
    {ok, P} = plexus_discovery:start_link(#{name => epmd_unreach, adapter => epmd,
                                           sync_interval_ms => 100, sync_timeout_ms => 2000,
                                           custom => #{nodes => [A]}}),
    unlink(P),
    ok = plexus_disco_fixture:wait(fun() -> ids(epmd_unreach) =/= [] end, 5000),
    ok = plexus_discovery:stop(epmd_unreach),
    {ok, P2} = plexus_discovery:start_link(#{name => epmd_unreach2, adapter => epmd,
                                            sync_interval_ms => 100, sync_timeout_ms => 2000,
                                            custom => #{hosts => ["no-such-host.invalid"]}}),
    unlink(P2),
    {error, {sync_failed, {epmd_unreachable, _}}} = plexus_discovery:sync_now(epmd_unreach2),
    ok = plexus_discovery:stop(epmd_unreach2).
