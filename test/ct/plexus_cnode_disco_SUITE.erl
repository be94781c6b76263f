%% @doc priv/plexus_cnode with `--gossip' and `--registry' (issue 5) against real BEAM
%% nodes running the `gossip' and `registry' discovery adapters, on loopback.
%%
%% Group `gossip' (one C node, multicast on 127.0.0.1, no seeds and no other discovery
%% source): the C node and a BEAM node find each other by sealed beacons and the C node
%% connects to it; forged, altered, wrong-key, other-cluster, other-epoch, truncated,
%% oversized and replayed beacons are rejected, counted (`stats') and change nothing; a
%% peer that goes silent goes down (`timeout'), a BEAM adapter that stops and a C node
%% that stops are dropped at once (`leaving'). Group `registry' (one C node with
%% `--registry PORT'): two BEAM nodes' registry adapters announce, get a Handshake with
%% the clamped TTL, see each other, show in `registry_view'; a raw announce asking for
%% too long a TTL gets the ceiling; junk datagrams get no reply and are counted; a client
%% that stops says BYE. Then the start-up failures: secret file mode 0644, no secret, a
%% secret on the command line, a registry port already taken.
-module(plexus_cnode_disco_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2]).
-export([gossip_each_finds_the_other/1, hostile_beacons/1, beam_leaves/1, cnode_leaves/1,
         registry_clients/1, registry_ttl_ceiling/1, registry_junk/1, registry_bye/1,
         secret_mode_0644/1, secret_missing_or_on_argv/1, udp_port_taken/1]).
-export([start_disco/1]).

-define(SECRET, <<"cnode disco suite secret, 16+ bytes">>).
-define(CLUSTER, <<"cnode_disco">>).
-define(GROUP, {233, 252, 1, 32}).
-define(LO, {127, 0, 0, 1}).

suite() -> [{timetrap, {seconds, 90}}].

all() ->
    [{group, gossip}, {group, registry}, secret_mode_0644, secret_missing_or_on_argv,
     udp_port_taken].

groups() ->
    [{gossip, [sequence], [gossip_each_finds_the_other, hostile_beacons, beam_leaves,
                           cnode_leaves]},
     {registry, [sequence], [registry_clients, registry_ttl_ceiling, registry_junk,
                             registry_bye]}].

init_per_suite(Config) ->
    case filelib:is_regular(plexus_test_nodes:cnode_exe()) of
        false ->
            {skip, "priv/plexus_cnode not built (make nif)"};
        true ->
            _ = plexus_test_nodes:ensure_distributed("plexus_cnode_disco_ct"),
            {Cookie, Old} = plexus_test_nodes:private_cookie(),
            Dir = ?config(priv_dir, Config),
            CookieFile = plexus_test_nodes:cookie_file(Dir, {atom_to_list(Cookie), 8#400}),
            Secret = plexus_test_nodes:cookie_file(Dir, {binary_to_list(?SECRET) ++ "\n", 8#600}),
            A = plexus_test_nodes:start_node("cd_a", Cookie),
            B = plexus_test_nodes:start_node("cd_b", Cookie),
            [{cookie, Cookie}, {old_cookie, Old}, {cookie_file, CookieFile},
             {secret_file, Secret}, {a, A}, {b, B} | Config]
    end.

end_per_suite(Config) ->
    plexus_test_nodes:stop_node(?config(a, Config)),
    plexus_test_nodes:stop_node(?config(b, Config)),
    plexus_test_nodes:restore_cookie(?config(old_cookie, Config)).

init_per_group(gossip, Config) ->
    Port = free_udp_port(),
    C = plexus_test_nodes:start_cnode(
          ["--name", "cd_gossip@127.0.0.1", "--cookie-file", ?config(cookie_file, Config),
           "--json", "--no-epmd-scan", "--no-rpc-scan", "--ping-interval-ms", "200",
           "--gossip", "--gossip-secret-file", ?config(secret_file, Config),
           "--gossip-cluster-id", binary_to_list(?CLUSTER), "--gossip-port", integer_to_list(Port),
           "--gossip-if", "127.0.0.1", "--gossip-interval-ms", "100",
           "--gossip-peer-timeout-ms", "1500", "--gossip-meta", "role=cnode"], []),
    {ok, _, _} = plexus_test_nodes:await_event(C, ready, <<"cd_gossip@127.0.0.1">>, 10000),
    [{cnode, C}, {cn, 'cd_gossip@127.0.0.1'}, {port, Port} | Config];
init_per_group(registry, Config) ->
    Port = free_udp_port(),
    C = plexus_test_nodes:start_cnode(
          ["--name", "cd_reg@127.0.0.1", "--cookie-file", ?config(cookie_file, Config),
           "--json", "--no-epmd-scan", "--no-rpc-scan",
           "--registry", integer_to_list(Port), "--registry-addr", "127.0.0.1"], []),
    {ok, _, Ready} = plexus_test_nodes:await_event(C, ready, <<"cd_reg@127.0.0.1">>, 10000),
    ?assertNotEqual(nomatch, binary:match(Ready, <<"\"registry_port\":",
                                                    (integer_to_binary(Port))/binary>>)),
    [{cnode, C}, {cn, 'cd_reg@127.0.0.1'}, {port, Port} | Config].

end_per_group(_Group, Config) ->
    [catch erpc:call(N, plexus_discovery, stop, [Name])
     || {N, _, _} <- [?config(a, Config), ?config(b, Config)], Name <- [cd_g, cd_r]],
    _ = plexus_test_nodes:stop_cnode(?config(cnode, Config)),
    ok.

%% ------------------------------------------------------------------ helpers

free_udp_port() ->
    {ok, S} = gen_udp:open(0, [{ip, ?LO}]),
    {ok, P} = inet:port(S),
    gen_udp:close(S),
    P.

%% Runs on the BEAM nodes (erpc): a discovery server that outlives the rpc process.
start_disco(Opts) ->
    {ok, P} = plexus_discovery:start_link(Opts),
    unlink(P),
    ok.

node_of(Key, Config) -> element(1, ?config(Key, Config)).
bin(A) -> atom_to_binary(A, utf8).

gossip_opts(Config) ->
    #{name => cd_g, adapter => gossip,
      custom => #{secret => ?SECRET, cluster_id => ?CLUSTER, port => ?config(port, Config),
                  multicast_if => ?LO, broadcast_interval_ms => 100,
                  %% long: a peer that goes away within it has said it is leaving
                  peer_timeout_ms => 10000,
                  metadata => #{<<"role">> => <<"beam">>}}}.

remote_ids(Node, Name) ->
    {ok, Ps} = erpc:call(Node, plexus_discovery, snapshot, [Name]),
    lists:sort([Id || #{id := Id} <- Ps]).

call(Config, Req) -> gen_server:call({plexus_cnode, ?config(cn, Config)}, Req, 5000).

stats(Config, Key) ->
    {ok, #{Key := S}} = call(Config, stats),
    S.

subscribe(Config) ->
    CN = ?config(cn, Config),
    {plexus_cnode, CN} ! {subscribe, self(), [discovery]},
    receive {plexus_cnode, {subscribed, _}} -> ok after 5000 -> error(no_subscribed) end.

unsubscribe(Config) ->
    {plexus_cnode, ?config(cn, Config)} ! {unsubscribe, self()},
    receive {plexus_cnode, {unsubscribed, _}} -> ok after 5000 -> error(no_unsubscribed) end.

wait(Fun, Ms) -> ok = plexus_test_nodes:wait_until(Fun, Ms).

%% ------------------------------------------------------------------ gossip

%% No seed, no rpc or epmd scan: the C node learns the BEAM node from its beacons only,
%% connects and watches it; the BEAM node's adapter sees the C node with its metadata.
gossip_each_finds_the_other(Config) ->
    C = ?config(cnode, Config),
    A = node_of(a, Config),
    T0 = erlang:monotonic_time(millisecond),
    ok = erpc:call(A, ?MODULE, start_disco, [gossip_opts(Config)]),
    {ok, T1, Up} = plexus_test_nodes:await_event(C, gossip_peer_up, A, 5000),
    ct:pal("beacon heard after ~b ms: ~s", [T1 - T0, Up]),
    ?assertNotEqual(nomatch, binary:match(Up, <<"\"metadata\":{\"role\":\"beam\"}">>)),
    {ok, T2, _} = plexus_test_nodes:await_event(C, node_up, A, 10000),
    ct:pal("connected (node_up) ~b ms after the first beacon", [T2 - T1]),
    CNb = bin(?config(cn, Config)),
    wait(fun() -> remote_ids(A, cd_g) =:= [CNb] end, 5000),
    {ok, #{metadata := #{<<"role">> := <<"cnode">>, <<"source">> := <<"gossip">>}}} =
        erpc:call(A, plexus_discovery, lookup, [cd_g, CNb]),
    Ab = bin(A),
    {ok, [#{node := Ab, metadata := #{<<"role">> := <<"beam">>}, source := <<"127.0.0.1:", _/binary>>,
            incarnation := Inc}]} = call(Config, gossip_peers),
    ?assert(Inc > 0),
    #{accepted := Acc, auth_failed := 0, malformed := 0, sent := Sent, peers := 1} =
        stats(Config, gossip),
    ?assert(Acc > 0 andalso Sent > 0).

%% Beacons that must all be refused, sent to the group on loopback. Counted by the C
%% node (stats), no peer, no node learned, no connection attempt; one genuine beacon
%% (the control) is accepted once and its replay refused.
hostile_beacons(Config) ->
    C = ?config(cnode, Config),
    A = node_of(a, Config),
    subscribe(Config),
    Good = plexus_nif:beacon_new(?SECRET, ?CLUSTER, 0, false, 0, 0),
    Others = [plexus_nif:beacon_new(<<"not the secret, 16+ bytes long">>, ?CLUSTER, 0, false, 0, 0),
              plexus_nif:beacon_new(?SECRET, <<"other cluster">>, 0, false, 0, 0),
              plexus_nif:beacon_new(?SECRET, ?CLUSTER, 7, false, 0, 0)],
    Tag = integer_to_binary(erlang:unique_integer([positive])),
    Evil = fun(I) -> <<"evil", (integer_to_binary(I))/binary, "_", Tag/binary, "@127.0.0.1">> end,
    G2 = plexus_nif:beacon_seal(Good, Evil(0), 1, 1, #{<<"k">> => <<"v">>}),
    Forged = [<<"PXB", 1, 0:32, (crypto:strong_rand_bytes(80))/binary>> || _ <- lists:seq(1, 5)],
    Altered = [flip(G2, I) || I <- lists:seq(0, byte_size(G2) - 1)],
    Wrong = [plexus_nif:beacon_seal(K, Evil(I), 1, 1, #{}) || {K, I} <- lists:zip(Others, [1, 2, 3])],
    Truncated = [binary:part(G2, 0, N) || N <- [0, 1, 10, 47, byte_size(G2) - 1]],
    Oversized = [<<"PXB", 1, 0:32, (crypto:strong_rand_bytes(1500))/binary>>],
    Hostile = Forged ++ Altered ++ Wrong ++ Truncated ++ Oversized,
    Friend = <<"friend_", Tag/binary, "@127.0.0.1">>,
    Genuine = plexus_nif:beacon_seal(Good, Friend, 1, 1, #{<<"role">> => <<"control">>}),
    #{auth_failed := AF0, malformed := M0, replayed := R0} = stats(Config, gossip),
    {ok, Snap0} = call(Config, snapshot),
    {ok, S} = gen_udp:open(0, [binary, {ip, ?LO}, {multicast_if, ?LO}, {multicast_loop, true},
                               {multicast_ttl, 1}]),
    Send = fun(B) -> ok = gen_udp:send(S, ?GROUP, ?config(port, Config), B) end,
    Send(Genuine),
    receive {plexus_cnode, {gossip_peer_up, Friend, #{metadata := #{<<"role">> := <<"control">>},
                                                      source := <<"127.0.0.1:", _/binary>>}}} -> ok
    after 5000 -> error(no_genuine_peer)
    end,
    Send(Genuine), %% its replay
    [Send(B) || B <- Hostile],
    N = length(Hostile),
    wait(fun() ->
                 #{auth_failed := AF, malformed := M, replayed := R} = stats(Config, gossip),
                 AF + M - AF0 - M0 >= N andalso R - R0 >= 1
         end, 5000),
    gen_udp:close(S),
    timer:sleep(200), %% nothing else in flight
    #{auth_failed := AF1, malformed := M1, replayed := R1} = stats(Config, gossip),
    ct:pal("~b hostile beacons: auth_failed +~b, malformed +~b, replayed +~b",
           [N, AF1 - AF0, M1 - M0, R1 - R0]),
    ?assertEqual(N, (AF1 - AF0) + (M1 - M0)),
    ?assertEqual(1, R1 - R0),
    ?assert(AF1 - AF0 >= length(Forged) + length(Wrong)),
    %% nothing hostile became a gossip peer or a node to watch
    {ok, GP} = call(Config, gossip_peers),
    Names = [Nm || #{node := Nm} <- GP],
    ?assert(lists:member(bin(A), Names)),
    ?assertEqual([], [Nm || Nm <- Names, binary:match(Nm, <<"evil">>) =/= nomatch]),
    {ok, Snap1} = call(Config, snapshot),
    ?assertEqual([], [Nd || #{node := Nd} <- Snap1, binary:match(Nd, <<"evil">>) =/= nomatch]),
    %% the friend is the one node learned meanwhile
    ?assertEqual([Friend], [Nd || #{node := Nd} <- Snap1] -- [Nd || #{node := Nd} <- Snap0]),
    %% rejections are reported (at most one line a second), with a reason
    {ok, _, Rej} = plexus_test_nodes:await_event(C, beacon_rejected, ?config(cn, Config), 2000),
    ct:pal("~s", [Rej]),
    %% the friend says nothing more: down after the C node's peer timeout (1.5 s)
    receive {plexus_cnode, {gossip_peer_down, Friend, #{reason := timeout}}} -> ok
    after 5000 -> error(no_timeout_down)
    end,
    unsubscribe(Config).

flip(B, I) ->
    <<Pre:I/binary, X, Post/binary>> = B,
    <<Pre/binary, (X bxor 16#40), Post/binary>>.

%% The BEAM adapter stops: its last beacon says leaving, the C node drops it at once
%% (its connection stays: the node is still up).
beam_leaves(Config) ->
    C = ?config(cnode, Config),
    A = node_of(a, Config),
    T0 = erlang:monotonic_time(millisecond),
    ok = erpc:call(A, plexus_discovery, stop, [cd_g]),
    {ok, T1, Line} = plexus_test_nodes:await_event(C, gossip_peer_down, A, 3000, T0),
    ?assertNotEqual(nomatch, binary:match(Line, <<"\"reason\":\"leaving\"">>)),
    ct:pal("leaving -> gossip_peer_down in ~b ms", [T1 - T0]),
    {ok, []} = call(Config, gossip_peers),
    ?assertMatch({ok, #{connected := true}}, call(Config, {health, bin(A)})).

%% The C node stops (SIGTERM): its last beacon says leaving, and the BEAM node drops it
%% long before its 10 s peer timeout.
cnode_leaves(Config) ->
    C = ?config(cnode, Config),
    A = node_of(a, Config),
    CNb = bin(?config(cn, Config)),
    ok = erpc:call(A, ?MODULE, start_disco, [gossip_opts(Config)]),
    wait(fun() -> remote_ids(A, cd_g) =:= [CNb] end, 5000),
    T0 = erlang:monotonic_time(millisecond),
    ?assertEqual(0, plexus_test_nodes:stop_cnode(C)),
    wait(fun() -> remote_ids(A, cd_g) =:= [] end, 3000),
    ct:pal("BEAM adapter dropped the stopped C node after ~b ms",
           [erlang:monotonic_time(millisecond) - T0]),
    {_, Lines, 0} = plexus_test_nodes:cnode_events(C),
    [Stopped] = [L || L <- Lines, binary:match(L, <<"\"event\":\"stopped\"">>) =/= nomatch],
    ?assertNotEqual(nomatch, binary:match(Stopped, <<"\"gossip\":{">>)),
    ok = erpc:call(A, plexus_discovery, stop, [cd_g]).

%% ------------------------------------------------------------------ registry

registry_opts(Config, Node) ->
    #{name => cd_r, adapter => registry, sync_interval_ms => 100, sync_timeout_ms => 500,
      custom => #{servers => [{?LO, ?config(port, Config)}], peer => bin(Node),
                  addrs => [<<"127.0.0.1:9">>], ttl_ms => 5000, %% below the floor
                  metadata => #{<<"role">> => <<"web">>}}}.

registry_clients(Config) ->
    C = ?config(cnode, Config),
    [A, B] = [node_of(K, Config) || K <- [a, b]],
    subscribe(Config),
    [ok = erpc:call(N, ?MODULE, start_disco, [registry_opts(Config, N)]) || N <- [A, B]],
    wait(fun() -> remote_ids(A, cd_r) =:= [bin(B)] andalso remote_ids(B, cd_r) =:= [bin(A)] end,
         5000),
    %% the Handshake: TTL clamped to the 30 s floor, heartbeat TTL/3, our address
    Server = iolist_to_binary(["127.0.0.1:", integer_to_list(?config(port, Config))]),
    #{adapter_info := #{servers := [#{handshake := H}]}} =
        erpc:call(A, plexus_discovery, health_info, [cd_r]),
    ?assertEqual(#{ttl_ms => 30000, heartbeat_ms => 10000, server_addrs => [Server]}, H),
    {ok, #{metadata := #{<<"role">> := <<"web">>, <<"source">> := <<"registry">>,
                         <<"addrs">> := <<"127.0.0.1:9">>}}} =
        erpc:call(A, plexus_discovery, lookup, [cd_r, bin(B)]),
    %% the C node reports them, as JSON lines and to `discovery' subscribers
    [begin
         {ok, _, L} = plexus_test_nodes:await_event(C, registry_announce, N, 2000),
         ?assertNotEqual(nomatch, binary:match(L, <<"\"ttl_ms\":30000,\"heartbeat_ms\":10000">>))
     end || N <- [A, B]],
    [receive {plexus_cnode, {registry_announce, Nb, #{ttl_ms := 30000, heartbeat_ms := 10000}}} -> ok
     after 2000 -> error({no_announce_event, Nb})
     end || Nb <- [bin(A), bin(B)]],
    {ok, View} = call(Config, registry_view),
    ?assertEqual([bin(A), bin(B)], lists:sort([P || #{peer := P} <- View])),
    [?assertMatch(#{addrs := [<<"127.0.0.1:9">>], metadata := #{<<"role">> := <<"web">>},
                    ttl_ms := T} when T =< 30000 andalso T > 20000, E) || E <- View],
    {ok, [_]} = call(Config, {registry_view, 1}),
    #{entries := 2, created := 2, malformed := 0} = stats(Config, registry),
    unsubscribe(Config).

%% A raw client: the TTL it asks for is clamped to the 300 s ceiling; BYE removes it.
registry_ttl_ceiling(Config) ->
    C = ?config(cnode, Config),
    Port = ?config(port, Config),
    Peer = <<"raw@127.0.0.1">>,
    Ann = plexus_nif:registry_encode_announce(7, Peer, [], #{}, 10000000, 0, <<>>),
    %% one socket: an unsigned entry belongs to the address that announced it
    {ok, S} = gen_udp:open(0, [binary, {active, false}, {ip, ?LO}]),
    {ok, #{type := handshake, request_id := 7, ttl_ms := 300000, heartbeat_ms := 100000}} =
        rpc_udp(S, Port, Ann),
    {ok, _, _} = plexus_test_nodes:await_event(C, registry_announce, Peer, 2000),
    {ok, V1} = call(Config, registry_view),
    ?assert(lists:member(Peer, [P || #{peer := P} <- V1])),
    no_reply = rpc_udp(S, Port, plexus_nif:registry_encode_bye(8, Peer, 0, <<>>)),
    gen_udp:close(S),
    {ok, _, _} = plexus_test_nodes:await_event(C, registry_leave, Peer, 2000),
    {ok, V2} = call(Config, registry_view),
    ?assertNot(lists:member(Peer, [P || #{peer := P} <- V2])).

rpc_udp(Port, Bin) ->
    {ok, S} = gen_udp:open(0, [binary, {active, false}, {ip, ?LO}]),
    R = rpc_udp(S, Port, Bin),
    gen_udp:close(S),
    R.

rpc_udp(S, Port, Bin) ->
    ok = gen_udp:send(S, ?LO, Port, Bin),
    case gen_udp:recv(S, 0, 300) of
        {ok, {_, Port, Reply}} -> plexus_nif:registry_decode(Reply);
        {error, timeout} -> no_reply
    end.

%% Junk gets no reply (no amplification), is counted, and the entries stay.
registry_junk(Config) ->
    Port = ?config(port, Config),
    #{malformed := M0} = stats(Config, registry),
    Valid = plexus_nif:registry_encode_announce(5, <<"x@127.0.0.1">>, [<<"a">>], #{}, 0, 0, <<>>),
    Junk = [<<>>, <<"PXR">>, <<"PXR", 1, 9, 0>>, <<"PXR", 2, 1, 0>>,
            <<"PXR", 1, 4, 0, 100, 50, 0>>, <<Valid/binary, 0>>] ++
        [binary:part(Valid, 0, N) || N <- lists:seq(1, byte_size(Valid) - 1)] ++
        [crypto:strong_rand_bytes(rand:uniform(1400)) || _ <- lists:seq(1, 300)],
    ?assertEqual([no_reply], lists:usort([rpc_udp(Port, J) || J <- lists:sublist(Junk, 6)])),
    {ok, S} = gen_udp:open(0, [binary, {ip, ?LO}]),
    [ok = gen_udp:send(S, ?LO, Port, J) || J <- lists:nthtail(6, Junk)],
    gen_udp:close(S),
    %% random bytes may (very rarely) decode as a reply type: ignored, not malformed
    wait(fun() -> maps:get(malformed, stats(Config, registry)) - M0 >= length(Junk) - 5 end, 5000),
    #{datagrams := D, malformed := M1} = stats(Config, registry),
    ct:pal("~b junk datagrams: malformed +~b (datagrams ~b)", [length(Junk), M1 - M0, D]),
    {ok, View} = call(Config, registry_view),
    ?assertEqual(lists:sort([bin(node_of(K, Config)) || K <- [a, b]]),
                 lists:sort([P || #{peer := P} <- View])),
    {error, not_enabled} = call(Config, gossip_peers).

%% A client that stops says BYE: reported, gone from the view and from the other
%% client's peers at its next query (a complete view replaces the old one).
registry_bye(Config) ->
    C = ?config(cnode, Config),
    [A, B] = [node_of(K, Config) || K <- [a, b]],
    ok = erpc:call(B, plexus_discovery, stop, [cd_r]),
    {ok, _, _} = plexus_test_nodes:await_event(C, registry_leave, B, 3000),
    wait(fun() -> remote_ids(A, cd_r) =:= [] end, 5000),
    {ok, [#{peer := Ab}]} = call(Config, registry_view),
    ?assertEqual(bin(A), Ab),
    #{byes := 2} = stats(Config, registry), %% the raw client and B
    ok = erpc:call(A, plexus_discovery, stop, [cd_r]),
    ?assertEqual(0, plexus_test_nodes:stop_cnode(C)).

%% ------------------------------------------------------------------ start-up errors

fail_start(Args, Env) ->
    C = plexus_test_nodes:start_cnode(Args, Env),
    {Status, Lines} = plexus_test_nodes:cnode_exit(C, 15000),
    Status =:= timeout andalso plexus_test_nodes:stop_cnode(C),
    {Status, iolist_to_binary(lists:join("\n", Lines))}.

secret_mode_0644(Config) ->
    File = plexus_test_nodes:cookie_file(?config(priv_dir, Config), {binary_to_list(?SECRET), 8#644}),
    {Status, Out} = fail_start(["--name", "cd_0644@127.0.0.1",
                                "--cookie-file", ?config(cookie_file, Config),
                                "--gossip", "--gossip-secret-file", File], []),
    ct:pal("~s", [Out]),
    ?assertEqual(7, Status),
    ?assertNotEqual(nomatch, binary:match(Out, <<"gossip secret file">>)),
    ?assertNotEqual(nomatch, binary:match(Out, <<"0644">>)),
    ?assertNotEqual(nomatch, binary:match(Out, <<"chmod 400">>)),
    %% and the secret itself is in no message
    ?assertEqual(nomatch, binary:match(Out, ?SECRET)).

secret_missing_or_on_argv(Config) ->
    Base = ["--name", "cd_nosecret@127.0.0.1", "--cookie-file", ?config(cookie_file, Config),
            "--gossip"],
    {S1, O1} = fail_start(Base, []),
    ?assertEqual(7, S1),
    ?assertNotEqual(nomatch, binary:match(O1, <<"PLEXUS_GOSSIP_SECRET">>)),
    {S2, O2} = fail_start(Base, [{"PLEXUS_GOSSIP_SECRET", "too short"}]),
    ?assertEqual(7, S2),
    ?assertNotEqual(nomatch, binary:match(O2, <<"at least 16 bytes">>)),
    {S3, O3} = fail_start(Base ++ ["--gossip-secret", binary_to_list(?SECRET)], []),
    ?assertEqual(2, S3),
    ?assertNotEqual(nomatch, binary:match(O3, <<"never taken from the command line">>)),
    {S4, O4} = fail_start(["--name", "cd_noflag@127.0.0.1", "--gossip-port", "1"], []),
    ?assertEqual(2, S4),
    ?assertNotEqual(nomatch, binary:match(O4, <<"needs --gossip">>)).

udp_port_taken(Config) ->
    {ok, S} = gen_udp:open(0, [{ip, ?LO}]),
    {ok, Port} = inet:port(S),
    try
        {Status, Out} = fail_start(["--name", "cd_taken@127.0.0.1",
                                    "--cookie-file", ?config(cookie_file, Config),
                                    "--registry", integer_to_list(Port),
                                    "--registry-addr", "127.0.0.1"], []),
        ct:pal("~s", [Out]),
        ?assertEqual(8, Status),
        ?assertNotEqual(nomatch, binary:match(Out, <<"Address already in use">>))
    after
        gen_udp:close(S)
    end.
