%% @doc `make demo': plexus on a local three-node cluster on loopback.
%%
%% Starts three BEAM nodes with OTP `peer' (127.0.0.1 only), runs the sections that
%% exist so far, prints what each node sees side by side, and stops every node it
%% started, also when a section fails.
-module(plexus_demo).

-export([main/0]).

-define(NODES, [demo_a, demo_b, demo_c]).

-spec main() -> no_return().
main() ->
    Ebin = [filename:dirname(code:which(M)) || M <- [plexus_orset, ?MODULE]],
    Peers = start_nodes(Ebin),
    Nodes = [N || {_, N} <- Peers],
    Code = try
               crdt_section(Nodes),
               plexus_demo_overlay:run(Nodes),
               cnode_section(Nodes, Ebin),
               discovery_section(Nodes),
               election_section(Nodes),
               0
           catch Class:Reason:Stack ->
                   io:format("demo failed: ~p:~p~n~p~n", [Class, Reason, Stack]),
                   1
           after
               [catch peer:stop(P) || {P, _} <- Peers],  % a section may have stopped one
               io:format("~nstopped ~p nodes~n", [length(Peers)])
           end,
    erlang:halt(Code).

start_nodes(Ebin) ->
    %% prevent_overlapping_partitions off: the demo stops nodes on purpose.
    Args = lists:append([["-pa", D] || D <- Ebin]) ++
        ["-kernel", "inet_dist_use_interface", "{127,0,0,1}",
         "-kernel", "prevent_overlapping_partitions", "false"],
    [begin
         {ok, P, N} = peer:start_link(#{name => Name, host => "127.0.0.1", longnames => true,
                                        args => Args}),
         {P, N}
     end || Name <- ?NODES].

%% ------------------------------------------------------------------ CRDTs

crdt_section(Nodes) ->
    io:format("~n== CRDTs: an OR-Set and an LWW register replicated on ~p nodes~n", [length(Nodes)]),
    [ok = erpc:call(N, fun() -> plexus_demo_replica:start(Nodes), ok end) || N <- Nodes],
    %% Each node adds its own elements, removes one the others add concurrently, and
    %% writes the register; deltas go out at once, a few are dropped on purpose.
    Plan = lists:zip(Nodes, [{[apple, pear, {fig, 1}], [plum]},
                             {[plum, kiwi, <<"mango">>], [apple]},
                             {[pear, 42, #{lime => 3}], []}]),
    Round = fun(R) ->
                    [{plexus_demo_replica, N} ! {mutate, Adds ++ [{round, R, N}], Removes,
                                                 {written_by, N, round, R}, 3}
                     || {N, {Adds, Removes}} <- Plan]
            end,
    Round(1),
    Round(2),
    timer:sleep(200),
    show("after deltas (some dropped)", Nodes),
    [{plexus_demo_replica, N} ! anti_entropy || N <- Nodes],
    timer:sleep(300),
    Reports = show("after one anti-entropy round", Nodes),
    Digests = lists:usort([D || {_, _, _, D, _} <- Reports]),
    case Digests of
        [_] -> io:format("converged: all ~p replicas have the same digest~n", [length(Nodes)]);
        _ -> error({not_converged, Digests})
    end,
    [{plexus_demo_replica, N} ! stop || N <- Nodes],
    ok.

show(Title, Nodes) ->
    [{plexus_demo_replica, N} ! {report, self()} || N <- Nodes],
    Reports = [receive {report, N, Set, Reg, Digest, Dropped} -> {N, Set, Reg, Digest, Dropped}
               after 5000 -> error({no_report, N}) end || N <- Nodes],
    io:format("~n-- ~s~n", [Title]),
    [io:format("~-22s set(~2b) ~0p~n~22s lww      ~0p~n~22s digest   ~s  (deltas dropped: ~b)~n",
               [atom_to_list(N), length(Set), Set, "", Reg, "", short(Digest), Dropped])
     || {N, Set, Reg, Digest, Dropped} <- Reports],
    Reports.

short(<<D:4/binary, _/binary>>) -> binary:encode_hex(D).

%% ------------------------------------------------------------------ the C node

%% priv/plexus_cnode as a port program beside the cluster: its event stream as
%% Erlang messages, a snapshot with RTTs, and a node that leaves.
cnode_section(Nodes, Ebin) ->
    io:format("~n== The C node: a hidden node watching ~p nodes (plus this one)~n", [length(Nodes)]),
    {ok, _} = plexus_cnode:start_link(#{ping_interval_ms => 200, suspect_after_ms => 1000,
                                        down_after_ms => 3000, discovery_interval_ms => 500}),
    try
        ok = plexus_cnode:subscribe(),
        io:format("daemon ~s (os pid ~p), events:~n", [plexus_cnode:cnode(), plexus_cnode:os_pid()]),
        show_cnode_events(1500),
        Args = lists:append([["-pa", D] || D <- Ebin]) ++
            ["-kernel", "inet_dist_use_interface", "{127,0,0,1}"],
        {ok, Extra, ExtraNode} = peer:start(#{name => demo_late, host => "127.0.0.1",
                                              longnames => true, args => Args}),
        io:format("-- ~s joins late~n", [ExtraNode]),
        show_cnode_events(1500),
        {ok, Snap} = plexus_cnode:snapshot(),
        io:format("-- snapshot~n"),
        [io:format("  ~-28s ~-10s rtt p50 ~6b us  p99 ~6b us  (~b samples)~n",
                   [N, S, P50, P99, Samples])
         || #{node := N, status := S, rtt_p50_us := P50, rtt_p99_us := P99,
              samples := Samples} <- Snap],
        io:format("-- ~s stops~n", [ExtraNode]),
        peer:stop(Extra),
        show_cnode_events(1000)
    after
        plexus_cnode:stop()
    end.

show_cnode_events(Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    show_cnode_events_until(Deadline).

show_cnode_events_until(Deadline) ->
    Left = Deadline - erlang:monotonic_time(millisecond),
    receive
        {plexus_cnode, {Kind, Node, Info}} ->
            io:format("  ~-10s ~-28s ~p~n", [Kind, Node, maps:remove(ts, Info)]),
            show_cnode_events_until(Deadline)
    after max(0, Left) -> ok
    end.

%% ------------------------------------------------------------------ leader election

%% plexus_leader on every node with a callback module that works only while leading
%% (test/demo/plexus_demo_leader.erl) and plexus_topology beside it; then the leader's
%% node is halted and a survivor takes over. Runs last: it leaves one node down.
election_section(Nodes) ->
    Name = demo_election,
    io:format("~n== Leader election: plexus_leader on ~p nodes (timeouts 150-300 ms, "
              "heartbeat 50 ms)~n", [length(Nodes)]),
    Dir = filename:absname(filename:join(["build", "demo", "election-" ++ os:getpid()])),
    Self = self(),
    [{ok, _} = erpc:call(N, plexus_leader, start,
                         [Name, plexus_demo_leader, #{report => Self, name => Name},
                          #{bootstrap => Nodes, data_dir => Dir}]) || N <- Nodes],
    [{ok, _} = erpc:call(N, plexus_topology, start, [#{}]) || N <- Nodes],
    T0 = erlang:monotonic_time(millisecond),
    {Leader, Term} = await_leader(Nodes, Name, undefined),
    io:format("elected in ~b ms: ~s leads term ~b~n",
              [erlang:monotonic_time(millisecond) - T0, Leader, Term]),
    show_election(Nodes, Name),
    timer:sleep(700),
    show_work("work done in 0.7 s (only the leader works)", Nodes),
    %% the leader's node dies
    OldTrap = process_flag(trap_exit, true),      % its peer controller is linked to us
    T1 = erlang:monotonic_time(millisecond),
    erpc:cast(Leader, erlang, halt, []),
    Survivors = Nodes -- [Leader],
    {NewLeader, NewTerm} = await_leader(Survivors, Name, Leader),
    Ms = erlang:monotonic_time(millisecond) - T1,
    io:format("~n-- ~s halted: ~s took over in ~b ms (term ~b; nodedown fast path)~n",
              [Leader, NewLeader, Ms, NewTerm]),
    _ = await(fun() -> lists:usort([erpc:call(N, plexus_topology, node_count, [])
                                    || N <- Survivors]) =:= [length(Survivors)] end),
    show_election(Survivors, Name),
    timer:sleep(700),
    show_work("work done in the next 0.7 s", Survivors),
    [begin
         ok = erpc:call(N, plexus_leader, stop, [Name]),
         ok = erpc:call(N, plexus_topology, stop, [])
     end || N <- Survivors],
    _ = file:del_dir_r(Dir),
    receive {'EXIT', _, _} -> ok after 1000 -> ok end,
    process_flag(trap_exit, OldTrap),
    ok.

%% The leader every node names, once they agree (and it is not `Old').
await_leader(Nodes, Name, Old) ->
    {ok, R} = await(fun() ->
                            Infos = [erpc:call(N, plexus_leader, info, [Name]) || N <- Nodes],
                            case lists:usort([{L, T} || #{leader_node := L, term := T} <- Infos]) of
                                [{L, T}] when L =/= undefined, L =/= Old -> {L, T};
                                _ -> false
                            end
                    end),
    R.

await(F) -> await(F, 2500).
await(F, 0) -> {error, F()};
await(F, N) ->
    case F() of
        false -> timer:sleep(2), await(F, N - 1);
        R -> {ok, R}
    end.

show_election(Nodes, Name) ->
    io:format("~-22s ~-10s ~-22s ~5s   ~s~n", ["node", "role", "leader", "term", "topology"]),
    [begin
         #{role := R, leader_node := L, term := T} = erpc:call(N, plexus_leader, info, [Name]),
         Topo = erpc:call(N, plexus_topology, get_role, []),
         io:format("~-22s ~-10s ~-22s ~5b   ~s~n", [N, R, L, T, Topo])
     end || N <- Nodes],
    {ok, C} = erpc:call(hd(Nodes), plexus_topology, get_commander, []),
    io:format("(topology: seniority, no voting; commander ~s)~n", [C]).

show_work(Title, Nodes) ->
    Events = drain_leader_events([]),
    io:format("~s:~n", [Title]),
    [io:format("  ~-22s ~b unit(s)~s~n",
               [N, length(W), case W of
                                  [] -> "";
                                  _ -> io_lib:format(", stamped with term ~w", [lists:usort(W)])
                              end])
     || N <- Nodes, W <- [[T || {N1, {work, T, _}} <- Events, N1 =:= N]]].

drain_leader_events(Acc) ->
    receive {demo_leader, N, E} -> drain_leader_events([{N, E} | Acc])
    after 0 -> lists:reverse(Acc)
    end.

%% ------------------------------------------------------------------ discovery

%% Each node finds the others twice: by sealed gossip beacons (multicast on the
%% loopback interface, TTL 1) and through a TTL registry served by this (runner) node.
%% A beacon sealed with the wrong key is rejected and counted. Every facade and the
%% registry are stopped at the end.
discovery_section(Nodes0) ->
    Nodes = [N || N <- Nodes0, net_adm:ping(N) =:= pong],
    io:format("~n== Discovery: ~p nodes find each other by gossip and by the registry~n",
              [length(Nodes)]),
    {ok, S0} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(S0),
    gen_udp:close(S0),
    Secret = crypto_free_secret(),
    Gossip = #{name => demo_gossip, adapter => gossip,
               custom => #{secret => Secret, cluster_id => <<"demo">>, port => Port,
                           multicast_if => {127, 0, 0, 1}, broadcast_interval_ms => 200,
                           metadata => #{<<"demo">> => <<"yes">>}}},
    [ok = erpc:call(N, fun() -> {ok, P} = plexus_discovery:start_link(Gossip), unlink(P), ok end)
     || N <- Nodes],
    ok = demo_wait(fun() -> all_see_others(Nodes, demo_gossip) end, 10000),
    io:format("~n-- gossip (UDP multicast 233.252.1.32:~p on 127.0.0.1, sealed beacons)~n", [Port]),
    show_peers(Nodes, demo_gossip),
    %% a beacon sealed under another key: dropped and counted on every node
    Bad = plexus_nif:beacon_new(<<"not the demo secret, 16+ bytes">>, <<"demo">>, 0, false, 0, 0),
    Forged = plexus_nif:beacon_seal(Bad, <<"intruder@127.0.0.1">>, 1, 1, #{}),
    {ok, S} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}, {multicast_if, {127, 0, 0, 1}}]),
    ok = gen_udp:send(S, {233, 252, 1, 32}, Port, Forged),
    gen_udp:close(S),
    timer:sleep(300),
    [begin
         #{auth_failed := AF, accepted := Acc} =
             maps:get(adapter_info, erpc:call(N, plexus_discovery, health_info, [demo_gossip])),
         {ok, Ps} = erpc:call(N, plexus_discovery, snapshot, [demo_gossip]),
         Intruder = lists:member(<<"intruder@127.0.0.1">>, [Id || #{id := Id} <- Ps]),
         io:format("~-22s beacons accepted ~4b, rejected (auth) ~b, intruder listed: ~p~n",
                   [atom_to_list(N), Acc, AF, Intruder])
     end || N <- Nodes],
    cnode_gossip(Nodes, Port, Secret),
    %% the registry: served here, clients on every node
    {ok, Reg} = plexus_registry:start_link(#{name => undefined, ip => {127, 0, 0, 1}, port => 0}),
    RegPort = plexus_registry:port(Reg),
    Client = #{name => demo_registry, adapter => registry, sync_interval_ms => 200,
               custom => #{servers => [{{127, 0, 0, 1}, RegPort}],
                           addrs => [<<"127.0.0.1">>]}},
    [ok = erpc:call(N, fun() -> {ok, P} = plexus_discovery:start_link(Client), unlink(P), ok end)
     || N <- Nodes],
    ok = demo_wait(fun() -> all_see_others(Nodes, demo_registry) end, 10000),
    io:format("~n-- registry (UDP 127.0.0.1:~p): announce -> handshake, TTL, lazy eviction~n",
              [RegPort]),
    [io:format("~-22s TTL ~b ms left, addresses ~p~n", [P, T, A])
     || #{peer := P, ttl_ms := T, addrs := A} <- lists:sort(plexus_registry:current_view(Reg))],
    [#{handshake := HS} | _] = maps:get(servers, maps:get(adapter_info,
                                                          erpc:call(hd(Nodes), plexus_discovery,
                                                                    health_info, [demo_registry]))),
    io:format("handshake: ~p~n", [HS]),
    show_peers(Nodes, demo_registry),
    [erpc:call(N, plexus_discovery, stop, [F]) || N <- Nodes, F <- [demo_gossip, demo_registry]],
    _ = demo_wait(fun() -> plexus_registry:current_view(Reg) =:= [] end, 2000),
    #{byes := Byes} = plexus_registry:stats(Reg),
    io:format("clients stopped: ~b BYEs, ~b entries left~n",
              [Byes, length(plexus_registry:current_view(Reg))]),
    unlink(Reg),
    plexus_registry:stop(Reg),
    ok.

%% The C node joins the same gossip (--gossip, no seed, no other discovery source):
%% it hears every node's beacons and connects to them, and they list it as a peer.
cnode_gossip(Nodes, Port, Secret) ->
    Dir = filename:join("build", "demo"),
    File = filename:join(Dir, "gossip-secret"),
    ok = file:write_file(File, Secret),
    ok = file:change_mode(File, 8#600),
    {ok, _} = plexus_cnode:start_link(
                #{seeds => [], ping_interval_ms => 200,
                  extra_args => ["--gossip", "--gossip-secret-file", File,
                                 "--gossip-cluster-id", "demo",
                                 "--gossip-port", integer_to_list(Port),
                                 "--gossip-if", "127.0.0.1", "--gossip-interval-ms", "200",
                                 "--gossip-meta", "kind=cnode",
                                 "--no-epmd-scan", "--no-rpc-scan"]}),
    try
        CN = atom_to_binary(plexus_cnode:cnode(), utf8),
        Want = lists:sort([atom_to_binary(N, utf8) || N <- Nodes]),
        Heard = fun() -> {ok, Gp} = plexus_cnode:gossip_peers(),
                         lists:sort([N || #{node := N} <- Gp]) end,
        Connected = fun() -> {ok, Snap} = plexus_cnode:snapshot(),
                             lists:sort([N || #{node := N, connected := true} <- Snap]) end,
        ok = demo_wait(fun() -> Heard() =:= Want andalso Want -- Connected() =:= [] andalso
                                    lists:all(fun(N) ->
                                                      {ok, Ps} = erpc:call(N, plexus_discovery,
                                                                           snapshot, [demo_gossip]),
                                                      lists:member(CN, [I || #{id := I} <- Ps])
                                              end, Nodes)
                       end, 10000),
        io:format("~n-- the C node (--gossip, no seed) hears ~s~n   and is connected to each; "
                  "every node lists ~s (metadata kind=cnode)~n",
                  [lists:join(", ", Heard()), CN]),
        {ok, #{gossip := #{accepted := Acc, auth_failed := AF}}} = plexus_cnode:stats(),
        io:format("   C node beacons accepted ~b, rejected (auth) ~b~n", [Acc, AF])
    after
        plexus_cnode:stop(),
        file:delete(File)
    end.

crypto_free_secret() ->
    %% a demo secret; real deployments read one from a file (secret_file)
    <<"plexus demo gossip secret 2026">>.

all_see_others(Nodes, Name) ->
    lists:all(fun(N) ->
                      {ok, Ps} = erpc:call(N, plexus_discovery, snapshot, [Name]),
                      Ids = [Id || #{id := Id} <- Ps],
                      lists:all(fun(O) -> lists:member(atom_to_binary(O, utf8), Ids) end,
                                Nodes -- [N])
              end, Nodes).

show_peers(Nodes, Name) ->
    [begin
         {ok, Ps} = erpc:call(N, plexus_discovery, snapshot, [Name]),
         io:format("~-22s sees ~p~n", [atom_to_list(N), [Id || #{id := Id} <- Ps]])
     end || N <- Nodes].

demo_wait(F, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    demo_wait_loop(F, Deadline).

demo_wait_loop(F, Deadline) ->
    case catch F() of
        true -> ok;
        _ ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> {error, timeout};
                false -> timer:sleep(50), demo_wait_loop(F, Deadline)
            end
    end.
