%% @doc Gossip discovery (doc/DESIGN.md §6) on loopback: real BEAM nodes find each other by
%% sealed multicast beacons (group 233.252.1.32 on the loopback interface, TTL 1) and
%% connect with `connect => true'; forged, altered, wrong-key, other-cluster and
%% replayed beacons are rejected, counted, and change nothing (no peer, no atom, no
%% crash); a flood of junk is survived; a leaving node goes down at once, a silent one
%% after the peer timeout; key rotation accepts the previous epoch when asked to.
-module(plexus_disco_gossip_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([nodes_find_each_other_multicast/1, hostile_beacons/1, junk_flood/1,
         leaving_and_silent/1, key_rotation/1]).

-define(SECRET, <<"gossip suite secret, 16+ bytes">>).

all() ->
    [nodes_find_each_other_multicast, hostile_beacons, junk_flood, leaving_and_silent,
     key_rotation].

init_per_suite(Config) ->
    ok = plexus_disco_fixture:ensure_distributed(),
    Peers = [plexus_disco_fixture:start_peer(N) || N <- [gossip_a, gossip_b]],
    [{peers, Peers} | Config].

end_per_suite(Config) ->
    [plexus_disco_fixture:stop_peer(P) || P <- ?config(peers, Config)],
    ok.

multicast_opts(Port, Connect) ->
    #{adapter => gossip, connect => Connect,
      custom => #{secret => ?SECRET, cluster_id => <<"suite">>, port => Port,
                  multicast_if => {127, 0, 0, 1}, broadcast_interval_ms => 100,
                  metadata => #{<<"role">> => <<"test">>}}}.

unicast(Name, Port, Targets, Extra) ->
    Custom = maps:merge(#{secret => ?SECRET, cluster_id => <<"suite">>, mode => unicast,
                          port => Port, bind_ip => {127, 0, 0, 1},
                          targets => [{{127, 0, 0, 1}, P} || P <- Targets],
                          broadcast_interval_ms => 50, peer_timeout_ms => 600,
                          node_name => <<(atom_to_binary(Name, utf8))/binary, "@127.0.0.1">>},
                        Extra),
    {ok, Pid} = plexus_discovery:start_link(#{name => Name, adapter => gossip, custom => Custom}),
    unlink(Pid),
    Pid.

ids(Name) ->
    {ok, Ps} = plexus_discovery:snapshot(Name),
    lists:sort([Id || #{id := Id} <- Ps]).

info(Name) -> maps:get(adapter_info, plexus_discovery:health_info(Name)).

%% Three real nodes, multicast on loopback: each finds the other two by node name, and
%% connect => true on one of them connects it to the others.
nodes_find_each_other_multicast(Config) ->
    Port = plexus_disco_fixture:free_udp_port(),
    Nodes = [N || {_, N} <- ?config(peers, Config)],
    %% the peers must not be connected to us already for the connect check to mean
    %% anything: disconnect, they only know each other through gossip
    Opts = (multicast_opts(Port, false))#{name => mc},
    [ok = erpc:call(N, fun() ->
                               {ok, P} = plexus_discovery:start_link(Opts),
                               unlink(P),
                               ok
                       end) || N <- Nodes],
    {ok, Pid} = plexus_discovery:start_link((multicast_opts(Port, true))#{name => mc}),
    unlink(Pid),
    All = lists:sort([atom_to_binary(N, utf8) || N <- [node() | Nodes]]),
    ok = plexus_disco_fixture:wait(
           fun() ->
                   lists:all(fun(N) ->
                                     Others = All -- [atom_to_binary(N, utf8)],
                                     erpc:call(N, fun() -> ids(mc) end) =:= Others
                             end, [node() | Nodes])
           end, 10000),
    {ok, #{metadata := #{<<"role">> := <<"test">>, <<"source">> := <<"gossip">>}}} =
        plexus_discovery:lookup(mc, hd(Nodes)),
    ok = plexus_disco_fixture:wait(fun() -> Nodes -- nodes() =:= [] end, 5000),
    %% a dropped connection is re-established while the peer is still discovered
    N1 = hd(Nodes),
    true = erlang:disconnect_node(N1),
    ok = plexus_disco_fixture:wait(fun() -> lists:member(N1, nodes()) end, 5000),
    [erpc:call(N, plexus_discovery, stop, [mc]) || N <- Nodes],
    ok = plexus_discovery:stop(mc).

%% Beacons that must all be refused: none becomes a peer or an atom, each is counted.
hostile_beacons(_Config) ->
    Port = plexus_disco_fixture:free_udp_port(),
    _ = unicast(hostile, Port, [], #{}),
    {ok, _, []} = plexus_discovery:subscribe_snapshot(hostile, self()),
    Good = plexus_nif:beacon_new(?SECRET, <<"suite">>, 0, false, 0, 0),
    WrongKey = plexus_nif:beacon_new(<<"not the secret, 16+ bytes long">>, <<"suite">>, 0, false, 0, 0),
    OtherCluster = plexus_nif:beacon_new(?SECRET, <<"other">>, 0, false, 0, 0),
    OtherEpoch = plexus_nif:beacon_new(?SECRET, <<"suite">>, 7, false, 0, 0),
    Names = [<<"evil", (integer_to_binary(I))/binary, "_",
               (integer_to_binary(erlang:unique_integer([positive])))/binary, "@nowhere">>
             || I <- lists:seq(1, 4)],
    NameQ = list_to_tuple(Names),
    Fresh = fun() -> element(rand:uniform(4), NameQ) end,
    {ok, S} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}]),
    Send = fun(B) -> ok = gen_udp:send(S, {127, 0, 0, 1}, Port, B) end,
    %% one genuine beacon, then its replay
    Genuine = plexus_nif:beacon_seal(Good, <<"friend@127.0.0.1">>, 1, 1, #{}),
    Send(Genuine),
    {plexus_discovery, {peer_up, #{id := <<"friend@127.0.0.1">>}, _}} =
        receive M -> M after 5000 -> error(no_genuine_peer) end,
    Send(Genuine),
    %% forged: right framing, random rest
    Forged = [<<"PXB", 1, 0:32, (crypto_rand(64))/binary>> || _ <- lists:seq(1, 5)],
    %% altered: every byte of a genuine beacon flipped in turn
    G2 = plexus_nif:beacon_seal(Good, Fresh(), 1, 1, #{<<"k">> => <<"v">>}),
    Altered = [flip(G2, I) || I <- lists:seq(0, byte_size(G2) - 1)],
    Wrong = [plexus_nif:beacon_seal(C, Fresh(), 1, 1, #{}) || C <- [WrongKey, OtherCluster, OtherEpoch]],
    Truncated = [binary:part(G2, 0, N) || N <- [0, 1, 10, 47, byte_size(G2) - 1]],
    _ = info(hostile), %% warm: every module on the path below is loaded
    Atoms0 = erlang:system_info(atom_count),
    [Send(B) || B <- Forged ++ Altered ++ Wrong ++ Truncated],
    Expected = length(Forged ++ Altered ++ Wrong ++ Truncated),
    Res = plexus_disco_fixture:wait(
           fun() ->
                   #{auth_failed := AF, malformed := MF, replayed := R} = info(hostile),
                   AF + MF >= Expected andalso R >= 1
           end, 5000),
    Atoms1 = erlang:system_info(atom_count),
    ok = Res,
    #{accepted := 1, replayed := 1, senders := 1} = info(hostile),
    ?assertEqual([<<"friend@127.0.0.1">>], ids(hostile)),
    ?assertEqual([], plexus_disco_fixture:collect_events(200, [])),
    ?assertEqual(Atoms0, Atoms1),
    %% none of the names the attacker used exists as an atom
    [?assertError(badarg, binary_to_existing_atom(N, utf8)) || N <- Names],
    ?assertEqual(up, plexus_discovery:health(hostile)),
    gen_udp:close(S),
    ok = plexus_discovery:stop(hostile).

flip(B, I) ->
    <<Pre:I/binary, X, Post/binary>> = B,
    <<Pre/binary, (X bxor 16#40), Post/binary>>.

crypto_rand(N) -> list_to_binary([rand:uniform(256) - 1 || _ <- lists:seq(1, N)]).

%% Thousands of junk datagrams: the endpoint keeps its peers and stays responsive.
junk_flood(_Config) ->
    [P1, P2] = [plexus_disco_fixture:free_udp_port() || _ <- [1, 2]],
    %% A peer timeout far above any scheduling stall of a loaded machine: what this
    %% checks is that junk does not crowd out genuine beacons, not how fast a
    %% silent peer is dropped (leaving_and_silent does that).
    Slow = #{peer_timeout_ms => 10000},
    _ = unicast(flood_a, P1, [P2], Slow),
    _ = unicast(flood_b, P2, [P1], Slow),
    ok = plexus_disco_fixture:wait(fun() -> ids(flood_a) =:= [<<"flood_b@127.0.0.1">>] end, 5000),
    _ = info(flood_a),
    {ok, _} = plexus_discovery:subscribe(flood_a, self()),
    Atoms0 = erlang:system_info(atom_count),
    {ok, S} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}]),
    [gen_udp:send(S, {127, 0, 0, 1}, P1, crypto_rand(rand:uniform(1400)))
     || _ <- lists:seq(1, 3000)],
    gen_udp:close(S),
    ?assertEqual([<<"flood_b@127.0.0.1">>], ids(flood_a)),
    Atoms1 = erlang:system_info(atom_count),
    #{malformed := M, auth_failed := A, accepted := Accepted0} = info(flood_a),
    ?assert(M + A > 0),
    ?assertEqual(Atoms0, Atoms1),
    %% and it still hears its peer: genuine beacons keep being accepted after the
    %% flood, and the peer was never reported down
    ok = plexus_disco_fixture:wait(
           fun() -> maps:get(accepted, info(flood_a)) >= Accepted0 + 5 end, 10000),
    ?assertEqual([<<"flood_b@127.0.0.1">>], ids(flood_a)),
    Downs = [E || {plexus_discovery, {peer_down, _, _} = E} <- mailbox([])],
    ?assertEqual([], Downs),
    ok = plexus_discovery:stop(flood_a),
    ok = plexus_discovery:stop(flood_b).

mailbox(Acc) ->
    receive M -> mailbox([M | Acc]) after 0 -> lists:reverse(Acc) end.

%% A stopping endpoint says it is leaving: down at once. A killed one goes silent:
%% down after peer_timeout_ms.
leaving_and_silent(_Config) ->
    [P1, P2, P3] = [plexus_disco_fixture:free_udp_port() || _ <- [1, 2, 3]],
    %% lv_a's peer timeout is long enough that a stall of lv_c's beacons just before
    %% the kill (a loaded machine) cannot make the silence look long enough by itself
    _ = unicast(lv_a, P1, [P2, P3], #{peer_timeout_ms => 3000}),
    _ = unicast(lv_b, P2, [P1], #{}),
    PidC = unicast(lv_c, P3, [P1], #{}),
    ok = plexus_disco_fixture:wait(fun() -> length(ids(lv_a)) =:= 2 end, 5000),
    {ok, _} = plexus_discovery:subscribe(lv_a, self()),
    ok = plexus_discovery:stop(lv_b),
    %% the reason says it came from the goodbye, not from the (3 s) timeout
    receive {plexus_discovery, {peer_down, #{id := <<"lv_b@127.0.0.1">>}, leaving}} -> ok
    after 10000 -> error(no_leaving_down)
    end,
    exit(PidC, kill),
    T0 = erlang:monotonic_time(millisecond),
    receive {plexus_discovery, {peer_down, #{id := <<"lv_c@127.0.0.1">>}, timeout}} -> ok
    after 15000 -> error(no_timeout_down)
    end,
    ?assert(erlang:monotonic_time(millisecond) - T0 >= 1500),
    ok = plexus_discovery:stop(lv_a).

%% Epoch 1 nodes that accept epoch 0 hear epoch 0 nodes, not the other way round.
key_rotation(_Config) ->
    [P1, P2] = [plexus_disco_fixture:free_udp_port() || _ <- [1, 2]],
    _ = unicast(rot_old, P1, [P2], #{key_epoch => 0}),
    _ = unicast(rot_new, P2, [P1], #{key_epoch => 1, accept_previous_epoch => true}),
    ok = plexus_disco_fixture:wait(fun() -> ids(rot_new) =:= [<<"rot_old@127.0.0.1">>] end, 5000),
    timer:sleep(300),
    ?assertEqual([], ids(rot_old)),
    #{auth_failed := AF} = info(rot_old),
    ?assert(AF > 0),
    ok = plexus_discovery:stop(rot_old),
    ok = plexus_discovery:stop(rot_new).
