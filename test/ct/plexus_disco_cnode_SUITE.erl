%% @doc `cnode' discovery: events from the C node through plexus_cnode's subscription
%% (here a stand-in with the same calls and message shape, plexus_fake_cnode), the
%% snapshot on sync, and the stand-in going away and coming back (health shows it,
%% the adapter subscribes again, no peer is lost meanwhile). real_cnode runs the
%% adapter on the real daemon (priv/plexus_cnode through plexus_cnode) with a peer
%% node, when the daemon is built.
-module(plexus_disco_cnode_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0]).
-export([events_and_snapshot/1, cnode_restart/1, not_running/1, real_cnode/1]).

all() -> [events_and_snapshot, cnode_restart, not_running, real_cnode].

ids(Name) ->
    {ok, Ps} = plexus_discovery:snapshot(Name),
    lists:sort([Id || #{id := Id} <- Ps]).

start(Name) ->
    {ok, P} = plexus_discovery:start_link(#{name => Name, adapter => cnode, sync_interval_ms => 100,
                                           custom => #{module => plexus_fake_cnode,
                                                       resubscribe_ms => 50}}),
    unlink(P).

events_and_snapshot(_Config) ->
    {ok, F} = plexus_fake_cnode:start(),
    ok = plexus_fake_cnode:node_up(<<"before@127.0.0.1">>),
    start(cn_a),
    %% known before we subscribed: found by the sync (snapshot)
    ok = plexus_disco_fixture:wait(fun() -> ids(cn_a) =:= [<<"before@127.0.0.1">>] end, 5000),
    {ok, _} = plexus_discovery:subscribe(cn_a, self()),
    ok = plexus_fake_cnode:node_up(<<"n1@127.0.0.1">>),
    receive {plexus_discovery, {peer_up, #{id := <<"n1@127.0.0.1">>,
                                           metadata := #{<<"source">> := <<"cnode">>}}, _}} -> ok
    after 5000 -> error(no_up)
    end,
    ok = plexus_fake_cnode:node_down(<<"n1@127.0.0.1">>),
    receive {plexus_discovery, {peer_down, #{id := <<"n1@127.0.0.1">>}, connection_closed}} -> ok
    after 5000 -> error(no_down)
    end,
    ok = plexus_discovery:stop(cn_a),
    plexus_fake_cnode:stop(F).

cnode_restart(_Config) ->
    {ok, F} = plexus_fake_cnode:start(),
    start(cn_b),
    ok = plexus_fake_cnode:node_up(<<"x@127.0.0.1">>),
    ok = plexus_disco_fixture:wait(fun() -> ids(cn_b) =:= [<<"x@127.0.0.1">>] end, 5000),
    plexus_fake_cnode:stop(F),
    ok = plexus_disco_fixture:wait(fun() -> plexus_discovery:health(cn_b) =/= up end, 5000),
    ?assertEqual([<<"x@127.0.0.1">>], ids(cn_b)),
    {ok, F2} = plexus_fake_cnode:start(),
    ok = plexus_fake_cnode:node_up(<<"y@127.0.0.1">>),
    %% resubscribed: the new instance's events arrive (its snapshot replaces x)
    ok = plexus_disco_fixture:wait(fun() -> ids(cn_b) =:= [<<"y@127.0.0.1">>] end, 5000),
    ok = plexus_discovery:stop(cn_b),
    plexus_fake_cnode:stop(F2).

not_running(_Config) ->
    process_flag(trap_exit, true),
    {error, {start_failed, {cnode_unavailable, _}}} =
        plexus_discovery:start_link(#{name => cn_c, adapter => cnode,
                                      custom => #{module => plexus_fake_cnode}}),
    plexus_disco_fixture:flush().

real_cnode(_Config) ->
    case filelib:is_regular(plexus_cnode:executable()) of
        false -> {skip, "priv/plexus_cnode not built"};
        true -> real_cnode()
    end.

real_cnode() ->
    ok = plexus_disco_fixture:ensure_distributed(),
    process_flag(trap_exit, true),
    {ok, Cn} = plexus_cnode:start_link(#{}),
    {Pp, N} = plexus_disco_fixture:start_peer(cnode_disco_peer),
    pong = net_adm:ping(N),
    {ok, D} = plexus_discovery:start_link(#{name => cn_real, adapter => cnode,
                                           sync_interval_ms => 200}),
    Nb = atom_to_binary(N, utf8),
    ok = plexus_disco_fixture:wait(fun() -> lists:member(Nb, ids(cn_real)) end, 15000),
    ?assertNot(lists:member(atom_to_binary(node(), utf8), ids(cn_real))),
    {ok, _} = plexus_discovery:subscribe(cn_real, self()),
    plexus_disco_fixture:stop_peer({Pp, N}),
    receive {plexus_discovery, {peer_down, #{id := Nb}, _}} -> ok
    after 15000 -> error(no_down_from_cnode)
    end,
    ok = plexus_discovery:stop(cn_real),
    unlink(D),
    unlink(Cn),
    ok = gen_server:stop(Cn),
    plexus_disco_fixture:flush(),
    ok.
