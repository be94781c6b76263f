%% @doc A hostile network against discovery (issue 8, findings 3 and 4), on loopback.
%%
%% A stranger who can send UDP datagrams, and nothing else, tries to:
%% <ul>
%% <li>grow the atom table and make this node connect to hosts it names: 10^5
%%   unsigned ANNOUNCEs of unique names to a registry that a `connect => true'
%%   discovery server reads, and 10^5 forged beacons (wrong key, unsealed, garbage)
%%   to a `connect => true' gossip server. The names point at a tarpit: a listener on
%%   the epmd port of a loopback address of its own, which counts every connection a
%%   connect attempt would open. The atom count stays flat (a small fixed slack for the
%%   test node's own logging), the tarpit sees nothing, and the registry names reach
%%   subscribers as binaries only;</li>
%% <li>remove or redirect a peer's registry entry (BYE, re-ANNOUNCE unsigned and
%%   signed, from another address): the table is unchanged;</li>
%% <li>use the registry as a reflector: every answer to a QUERY from an address that
%%   has not echoed its cookie is no longer than the query;</li>
%% <li>the same two registry attacks against the C node's registry (`--registry'), and
%%   10^5 announcements to it under a `connect => true' `cnode' discovery server.</li>
%% </ul>
%% Datagrams go in bounded bursts, each waited for on the receiver's counters.
-module(plexus_disco_hostile_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([registry_flood_makes_no_atoms/1, gossip_forgeries_make_no_atoms/1,
         registry_hijack_refused/1, registry_no_amplification/1,
         cnode_registry_hijack_and_amplification/1, cnode_adapter_flood_makes_no_atoms/1]).

-define(LO, {127, 0, 0, 1}).
-define(N, 100000).
-define(BURST, 1000).
%% The exact check is that no hostile name exists as an atom (hostile_atoms/2). The
%% count is a second, coarser check: atoms the test node adds meanwhile for its own
%% reasons (logging, timers, and a name atom per foreign node that tries to connect to
%% this VM on a shared machine) stay far below what 10^5 names would add.
-define(ATOM_SLACK, 1000).
-define(SECRET, <<"hostile suite gossip secret, 16+ bytes">>).

suite() -> [{timetrap, {seconds, 120}}].

all() ->
    [registry_flood_makes_no_atoms, gossip_forgeries_make_no_atoms, registry_hijack_refused,
     registry_no_amplification, cnode_registry_hijack_and_amplification,
     cnode_adapter_flood_makes_no_atoms].

init_per_suite(Config) ->
    _ = plexus_test_nodes:ensure_distributed("plexus_ct_tr_hostile"),
    {Tarpit, TarpitIP} = start_tarpit(),
    [{tarpit, Tarpit}, {tarpit_host, list_to_binary(inet:ntoa(TarpitIP))} | Config].

end_per_suite(Config) ->
    exit(?config(tarpit, Config), kill),
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    [catch plexus_discovery:stop(N)
     || N <- [tr_hostile_reg, tr_hostile_gossip, tr_victim, tr_hostile_cnode]],
    case whereis(plexus_cnode) of
        Cn when is_pid(Cn) -> catch gen_server:stop(Cn);
        undefined -> ok
    end,
    case whereis(tr_hostile_registry) of
        Pid when is_pid(Pid) -> plexus_registry:stop(Pid);
        undefined -> ok
    end.

%% ------------------------------------------------------------------ the tarpit

%% A TCP listener on port 4369 (where a connect attempt asks epmd for the node's port)
%% of a loopback address nobody else uses; it counts the connections it accepts.
start_tarpit() ->
    Port = list_to_integer(os:getenv("ERL_EPMD_PORT", "4369")),
    Self = self(),
    Try = fun Try(0) -> error(no_tarpit_address);
              Try(K) ->
                  IP = {127, 100 + rand:uniform(100), rand:uniform(250), rand:uniform(250)},
                  case gen_tcp:listen(Port, [binary, {ip, IP}, {active, false}, {reuseaddr, true}]) of
                      {ok, L} -> {L, IP};
                      {error, _} -> Try(K - 1)
                  end
          end,
    %% not linked: it outlives init_per_suite's process; end_per_suite stops it
    Pid = spawn(fun() ->
                             {L, IP} = Try(20),
                             Self ! {tarpit, self(), IP},
                             Acc = spawn_link(fun() -> accept_loop(L, Self) end),
                             tarpit_loop(L, Acc, 0)
                     end),
    receive {tarpit, Pid, IP} -> {Pid, IP} after 5000 -> error(no_tarpit) end.

accept_loop(L, _Owner) ->
    case gen_tcp:accept(L) of
        {ok, S} ->
            tarpit_parent() ! accepted,
            gen_tcp:close(S),
            accept_loop(L, _Owner);
        {error, _} ->
            ok
    end.

tarpit_parent() ->
    {links, Links} = process_info(self(), links),
    hd([P || P <- Links, is_pid(P)]).

tarpit_loop(L, Acc, N) ->
    receive
        accepted -> tarpit_loop(L, Acc, N + 1);
        {count, From} -> From ! {tarpit_count, N}, tarpit_loop(L, Acc, N)
    end.

tarpit_count(Config) ->
    ?config(tarpit, Config) ! {count, self()},
    receive {tarpit_count, N} -> N after 5000 -> error(tarpit_silent) end.

%% ------------------------------------------------------------------ helpers

registry(Extra) ->
    {ok, Pid} = plexus_registry:start_link(maps:merge(#{name => tr_hostile_registry, port => 0},
                                                      Extra)),
    unlink(Pid),
    {Pid, plexus_registry:port(Pid)}.

hostile_socket() ->
    {ok, S} = gen_udp:open(0, [binary, {active, false}, {ip, ?LO}, {sndbuf, 1 bsl 20},
                               {recbuf, 1 bsl 20}]),
    S.

hostile_name(I, Config) ->
    <<"tr_hostile_", (integer_to_binary(I))/binary, "@", (?config(tarpit_host, Config))/binary>>.

%% Sends Bins in bursts; after each, waits until the receiver counted them all.
send_bursts(S, Port, Bins, Received) ->
    send_bursts(S, Port, Bins, Received, 0).

send_bursts(_S, _Port, [], _Received, Sent) ->
    Sent;
send_bursts(S, Port, Bins, Received, Sent) ->
    {Burst, Rest} = lists:split(min(?BURST, length(Bins)), Bins),
    [ok = gen_udp:send(S, ?LO, Port, B) || B <- Burst],
    Sent1 = Sent + length(Burst),
    ok = plexus_test_nodes:wait_until(fun() -> Received() >= Sent1 end, 20000),
    send_bursts(S, Port, Rest, Received, Sent1).

atoms() -> erlang:system_info(atom_count).

%% How many of the hostile names From..To exist as atoms (node name or bare name).
hostile_atoms(Config, {From, To}) ->
    length([I || I <- lists:seq(From, To), is_atom_name(hostile_name(I, Config))]).

is_atom_name(Name) ->
    [Bare | _] = binary:split(Name, <<"@">>),
    lists:any(fun(B) ->
                      try binary_to_existing_atom(B, utf8) of _ -> true
                      catch error:badarg -> false
                      end
              end, [Name, Bare]).

adapter_info(Name) -> maps:get(adapter_info, plexus_discovery:health_info(Name)).

%% No node of the tarpit's host got connected, nor is any being connected.
assert_no_hostile_nodes(Config) ->
    Host = ?config(tarpit_host, Config),
    ?assertEqual([], [N || N <- nodes(connected),
                           binary:match(atom_to_binary(N, utf8), Host) =/= nomatch]),
    ?assertEqual(0, tarpit_count(Config)).

%% ------------------------------------------------------------------ atoms

%% 10^5 unsigned ANNOUNCEs of unique names: they reach subscribers of a
%% `connect => true' discovery server as binaries, and make no atom and no connection.
registry_flood_makes_no_atoms(Config) ->
    {Reg, Port} = registry(#{max_entries => ?N}),
    {ok, _} = plexus_discovery:start_link(
                #{name => tr_hostile_reg, adapter => registry, connect => true,
                  sync_interval_ms => 1000,
                  custom => #{servers => [{?LO, Port}], peer => <<"tr_victim@127.0.0.1">>}}),
    S = hostile_socket(),
    Announce = fun(I) ->
                       plexus_nif:registry_encode_announce(I, hostile_name(I, Config), [], #{},
                                                           0, 0, <<>>)
               end,
    Received = fun() -> maps:get(datagrams, plexus_registry:stats(Reg)) end,
    %% warm-up: the code paths below are loaded and their atoms made
    Warm = send_bursts(S, Port, [Announce(I) || I <- lists:seq(1, 100)], Received),
    ok = plexus_test_nodes:wait_until(
           fun() -> maps:get(known_peers_count, plexus_discovery:health_info(tr_hostile_reg))
                        >= 100 end, 20000),
    Atoms0 = atoms(),
    _ = send_bursts(S, Port, [Announce(I) || I <- lists:seq(101, ?N)], Received, Warm),
    #{created := Created} = plexus_registry:stats(Reg),
    ?assert(Created >= ?N),
    %% the discovery server has read several full views since (4096 entries each)
    Views0 = maps:get(views, adapter_info(tr_hostile_reg), 0),
    ok = plexus_test_nodes:wait_until(
           fun() -> maps:get(views, adapter_info(tr_hostile_reg), 0) >= Views0 + 3 end, 30000),
    #{known_peers_count := Known} = plexus_discovery:health_info(tr_hostile_reg),
    ?assert(Known >= 4096),
    #{authenticated := false} = adapter_info(tr_hostile_reg),
    %% subscribers get binaries
    {ok, Sub, Peers} = plexus_discovery:subscribe_snapshot(tr_hostile_reg, self()),
    ok = plexus_discovery:unsubscribe(tr_hostile_reg, Sub),
    ?assertEqual(Known, length([Id || #{id := Id} <- Peers, is_binary(Id)])),
    Added = atoms() - Atoms0,
    ct:pal("registry flood: ~b announcements, ~b peers reported, ~b atoms added, ~b tarpit "
           "connections", [?N, Known, Added, tarpit_count(Config)]),
    ?assertEqual(0, hostile_atoms(Config, {1, ?N})),
    ?assert(Added =< ?ATOM_SLACK),
    assert_no_hostile_nodes(Config),
    gen_udp:close(S),
    plexus_registry:stop(Reg).

%% 10^5 forged beacons naming unique nodes (sealed with another key, other cluster,
%% unsealed, garbage) at a `connect => true' gossip server: no peer, no atom, no
%% connection; the codec counts them.
gossip_forgeries_make_no_atoms(Config) ->
    {ok, _} = plexus_discovery:start_link(
                #{name => tr_hostile_gossip, adapter => gossip, connect => true,
                  custom => #{secret => ?SECRET, mode => unicast, port => 0, bind_ip => ?LO,
                              broadcast_interval_ms => 1000}}),
    #{port := Port} = adapter_info(tr_hostile_gossip),
    Wrong = plexus_nif:beacon_new(<<"not the secret, but 16+ bytes">>, <<"plexus">>, 0, false, 16, 0),
    Other = plexus_nif:beacon_new(?SECRET, <<"other cluster">>, 0, false, 16, 0),
    Forge = fun(I) ->
                    Name = hostile_name(I, Config),
                    case I rem 4 of
                        0 -> plexus_nif:beacon_seal(Wrong, Name, 1, I, #{});
                        1 -> plexus_nif:beacon_seal(Other, Name, 1, I, #{});
                        2 -> %% "unsealed": a sealed one with its ciphertext replaced
                            B = plexus_nif:beacon_seal(Wrong, Name, 1, I, #{}),
                            Keep = byte_size(B) - byte_size(Name) - 16,
                            <<(binary:part(B, 0, Keep))/binary, Name/binary, 0:128>>;
                        3 -> <<(crypto:strong_rand_bytes(8))/binary, Name/binary>>
                    end
            end,
    S = hostile_socket(),
    Received = fun() -> maps:get(received, adapter_info(tr_hostile_gossip)) end,
    Warm = send_bursts(S, Port, [Forge(I) || I <- lists:seq(1, 100)], Received),
    Atoms0 = atoms(),
    _ = send_bursts(S, Port, [Forge(I) || I <- lists:seq(101, ?N)], Received, Warm),
    #{known_peers_count := Known} = plexus_discovery:health_info(tr_hostile_gossip),
    Info = adapter_info(tr_hostile_gossip),
    Added = atoms() - Atoms0,
    ct:pal("gossip forgeries: ~b beacons, ~b peers, ~b atoms added, codec ~p",
           [?N, Known, Added, maps:without([port], Info)]),
    ?assertEqual(0, Known),
    ?assertEqual(0, hostile_atoms(Config, {1, ?N})),
    ?assert(Added =< ?ATOM_SLACK),
    #{authenticated := true} = Info,
    assert_no_hostile_nodes(Config),
    gen_udp:close(S).

%% ------------------------------------------------------------------ the table

%% A peer's entry (announced by its adapter) against a stranger's BYE and re-ANNOUNCE
%% (unsigned and signed, redirecting to the stranger's address): unchanged.
registry_hijack_refused(_Config) ->
    {Reg, Port} = registry(#{}),
    {ok, _} = plexus_discovery:start_link(
                #{name => tr_victim, adapter => registry, sync_interval_ms => 200,
                  custom => #{servers => [{?LO, Port}], peer => <<"tr_victim@127.0.0.1">>,
                              addrs => [<<"127.0.0.1:4370">>]}}),
    Victim = <<"tr_victim@127.0.0.1">>,
    ok = plexus_test_nodes:wait_until(
           fun() -> element(1, plexus_registry:lookup(Reg, Victim)) =:= ok end, 10000),
    {ok, Before} = plexus_registry:lookup(Reg, Victim),
    {_Pk, Seed} = plexus_registry:keypair(),
    Now = erlang:system_time(millisecond),
    Evil = [<<"6.6.6.6:4370">>],
    Attacks = [plexus_nif:registry_encode_bye(1, Victim, Now, <<>>),
               plexus_nif:registry_encode_bye(2, Victim, Now, Seed),
               plexus_nif:registry_encode_announce(3, Victim, Evil, #{}, 0, Now, <<>>),
               plexus_nif:registry_encode_announce(4, Victim, Evil, #{}, 0, Now, Seed),
               plexus_nif:registry_encode_bye(5, Victim, Now + 1, <<>>)],
    S = hostile_socket(),
    Replies = [begin
                   ok = gen_udp:send(S, ?LO, Port, A),
                   case gen_udp:recv(S, 0, 1000) of
                       {ok, {_, _, R}} -> {ok, M} = plexus_nif:registry_decode(R), M;
                       {error, timeout} -> no_reply
                   end
               end || A <- Attacks],
    ?assertMatch([no_reply, no_reply, #{type := refused, reason := auth_failed},
                  #{type := refused, reason := auth_failed}, no_reply], Replies),
    {ok, After} = plexus_registry:lookup(Reg, Victim),
    ?assertEqual(maps:remove(ttl_ms, Before), maps:remove(ttl_ms, After)),
    #{refused_source := 5, byes := 0} = plexus_registry:stats(Reg),
    ct:pal("hijack: 5 attacks refused, entry unchanged: ~p", [After]),
    gen_udp:close(S),
    %% the owner itself still leaves with its BYE
    ok = plexus_discovery:stop(tr_victim),
    ok = plexus_test_nodes:wait_until(
           fun() -> plexus_registry:lookup(Reg, Victim) =:= {error, not_found} end, 5000),
    plexus_registry:stop(Reg).

%% A full table; every kind of QUERY a stranger may send (short, padded, wrong or
%% stale cookie, every max) gets an answer no longer than itself; only the cookie
%% echoed from its own address unlocks the VIEW.
registry_no_amplification(_Config) ->
    {Reg, Port} = registry(#{}),
    Big = binary:copy(<<"m">>, 200),
    [{ok, _} = plexus_registry:announce(Reg, <<"full", (integer_to_binary(I))/binary, "@h">>,
                                        [<<"10.0.0.1:4370">>], #{<<"blob">> => Big})
     || I <- lists:seq(1, 300)],
    S = hostile_socket(),
    Queries = queries(),
    Handled = fun() ->
                      #{queries := Q, cookies := C, unverified := U} = plexus_registry:stats(Reg),
                      Q + C + U >= length(Queries)
              end,
    Sizes = reflect(S, Port, Queries, Handled),
    report_reflection("BEAM registry", Sizes),
    ?assertEqual([], [QR || {Q, R} = QR <- Sizes, R > Q]),
    #{queries := 0} = plexus_registry:stats(Reg),
    %% the 8-byte query of the finding: no answer at all
    ok = gen_udp:send(S, ?LO, Port, plexus_nif:registry_encode_query(9, 4096, <<>>, 0)),
    {error, timeout} = gen_udp:recv(S, 0, 500),
    %% the client that echoes its cookie gets the table (up to a datagram)
    ok = gen_udp:send(S, ?LO, Port, plexus_nif:registry_encode_query(10, 4096, <<>>, 40)),
    {ok, {_, _, CB}} = gen_udp:recv(S, 0, 1000),
    {ok, #{type := cookie, cookie := C}} = plexus_nif:registry_decode(CB),
    ok = gen_udp:send(S, ?LO, Port, plexus_nif:registry_encode_query(11, 4096, C, 0)),
    {ok, {_, _, VB}} = gen_udp:recv(S, 0, 1000),
    {ok, #{type := view, entries := Es}} = plexus_nif:registry_decode(VB),
    ?assert(length(Es) > 100),
    gen_udp:close(S),
    plexus_registry:stop(Reg).

%% Every kind of QUERY a stranger may send: short, padded, with a wrong cookie, for
%% every size; request ids 1..N tell the answers apart.
queries() ->
    Kinds = [{Max, Cookie, Pad} || Max <- [1, 100, 4096], Cookie <- [<<>>, <<7:128>>],
                                   Pad <- [0, 20, 40, 200]],
    [{Id, plexus_nif:registry_encode_query(Id, Max, Cookie, Pad)}
     || {Id, {Max, Cookie, Pad}} <- lists:zip(lists:seq(1, 4 * length(Kinds)),
                                              lists:append(lists:duplicate(4, Kinds)))].

%% Sends every query, waits until the server handled them (Handled, or one quiet
%% second), then pairs each answer with its query by request id: [{QueryBytes,
%% AnswerBytes}] (0 = no answer).
reflect(S, Port, Queries, Handled) ->
    [ok = gen_udp:send(S, ?LO, Port, Q) || {_, Q} <- Queries],
    ok = plexus_test_nodes:wait_until(Handled, 20000),
    Answers = drain(S, #{}, 200),
    [{byte_size(Q), maps:get(Id, Answers, 0)} || {Id, Q} <- Queries].

drain(_S, Acc, 0) ->
    Acc;
drain(S, Acc, Left) ->
    case gen_udp:recv(S, 0, 1000) of
        {ok, {_, _, R}} ->
            {ok, #{request_id := Id}} = plexus_nif:registry_decode(R),
            drain(S, Acc#{Id => byte_size(R) + maps:get(Id, Acc, 0)}, Left - 1);
        {error, timeout} ->
            Acc
    end.

report_reflection(What, Sizes) ->
    In = lists:sum([Q || {Q, _} <- Sizes]),
    Out = lists:sum([R || {_, R} <- Sizes]),
    ct:pal("~s reflection: ~b queries, ~b bytes in, ~b bytes out (x~.3f), largest answer ~b",
           [What, length(Sizes), In, Out, Out / In, lists:max([R || {_, R} <- Sizes])]).

%% The same against the C node's registry (the same core, its own socket code).
cnode_registry_hijack_and_amplification(Config) ->
    case filelib:is_regular(plexus_test_nodes:cnode_exe()) of
        false -> {skip, "priv/plexus_cnode not built (make nif)"};
        true -> cnode_registry(Config)
    end.

cnode_registry(Config) ->
    {Cookie, Old} = plexus_test_nodes:private_cookie(),
    Dir = ?config(priv_dir, Config),
    CookieFile = plexus_test_nodes:cookie_file(Dir, {atom_to_list(Cookie), 8#400}),
    Port = free_udp_port(),
    C = plexus_test_nodes:start_cnode(
          ["--name", "tr_hostile_cn@127.0.0.1", "--cookie-file", CookieFile, "--json",
           "--no-epmd-scan", "--no-rpc-scan", "--registry", integer_to_list(Port)], []),
    try
        {ok, _, Ready} = plexus_test_nodes:await_event(C, ready, <<"tr_hostile_cn@127.0.0.1">>,
                                                       10000),
        %% (no --registry-addr: the default, loopback)
        ?assertNotEqual(nomatch, binary:match(Ready, <<"registry_port">>)),
        Owner = hostile_socket(),
        S = hostile_socket(),
        Rpc = fun(Sock, Bin) ->
                      ok = gen_udp:send(Sock, ?LO, Port, Bin),
                      case gen_udp:recv(Sock, 0, 1000) of
                          {ok, {_, _, R}} -> {ok, M} = plexus_nif:registry_decode(R), M;
                          {error, timeout} -> no_reply
                      end
              end,
        Victim = <<"tr_cn_victim@127.0.0.1">>,
        Big = #{<<"blob">> => binary:copy(<<"m">>, 200)},
        #{type := handshake} =
            Rpc(Owner, plexus_nif:registry_encode_announce(1, Victim, [<<"127.0.0.1:4370">>],
                                                           Big, 0, 0, <<>>)),
        [#{type := handshake} =
             Rpc(Owner, plexus_nif:registry_encode_announce(
                          I, <<"f", (integer_to_binary(I))/binary, "@h">>, [], Big, 0, 0, <<>>))
         || I <- lists:seq(2, 100)],
        Now = erlang:system_time(millisecond),
        no_reply = Rpc(S, plexus_nif:registry_encode_bye(1, Victim, Now, <<>>)),
        #{type := refused, reason := auth_failed} =
            Rpc(S, plexus_nif:registry_encode_announce(2, Victim, [<<"6.6.6.6:1">>], #{}, 0,
                                                       Now, <<>>)),
        {ok, View} = gen_server:call({plexus_cnode, 'tr_hostile_cn@127.0.0.1'}, registry_view,
                                     5000),
        [#{addrs := [<<"127.0.0.1:4370">>]}] = [E || #{peer := P} = E <- View, P =:= Victim],
        Sizes = reflect(S, Port, queries(), fun() -> true end),
        report_reflection("C node registry", Sizes),
        ?assertEqual([], [QR || {Q, R} = QR <- Sizes, R > Q]),
        %% with its cookie, the owner reads the table
        #{type := cookie, cookie := Ck} =
            Rpc(Owner, plexus_nif:registry_encode_query(3, 4096, <<>>, 40)),
        #{type := view, live_entries := 100} =
            Rpc(Owner, plexus_nif:registry_encode_query(4, 4096, Ck, 0)),
        gen_udp:close(S),
        gen_udp:close(Owner)
    after
        _ = plexus_test_nodes:stop_cnode(C),
        plexus_test_nodes:restore_cookie(Old)
    end.

%% The `cnode' adapter with `connect => true' on a C node that hosts a registry: 10^5
%% unsigned announcements to that registry are registry entries, not nodes the C node
%% reached, so no peer, no atom, no connection.
cnode_adapter_flood_makes_no_atoms(Config) ->
    case filelib:is_regular(plexus_cnode:executable()) of
        false -> {skip, "priv/plexus_cnode not built (make nif)"};
        true -> cnode_adapter_flood(Config)
    end.

cnode_adapter_flood(Config) ->
    Port = free_udp_port(),
    {ok, Cn} = plexus_cnode:start_link(#{extra_args => ["--registry", integer_to_list(Port)]}),
    unlink(Cn),
    {ok, _} = plexus_discovery:start_link(#{name => tr_hostile_cnode, adapter => cnode,
                                           connect => true, sync_interval_ms => 200}),
    #{authenticated := true} = adapter_info(tr_hostile_cnode),
    S = hostile_socket(),
    Announce = fun(I) ->
                       plexus_nif:registry_encode_announce(I, hostile_name(I, Config), [], #{},
                                                           0, 0, <<>>)
               end,
    Received = fun() ->
                       {ok, #{registry := #{datagrams := D}}} = plexus_cnode:stats(),
                       D
               end,
    Warm = send_bursts(S, Port, [Announce(I) || I <- lists:seq(1, 100)], Received),
    ok = plexus_discovery:sync_now(tr_hostile_cnode),
    Atoms0 = atoms(),
    _ = send_bursts(S, Port, [Announce(I) || I <- lists:seq(101, ?N)], Received, Warm),
    {ok, #{registry := #{created := Created}}} = plexus_cnode:stats(),
    ok = plexus_discovery:sync_now(tr_hostile_cnode),
    Host = ?config(tarpit_host, Config),
    {ok, Peers} = plexus_discovery:snapshot(tr_hostile_cnode),
    Hostile = [Id || #{id := Id} <- Peers, binary:match(Id, Host) =/= nomatch],
    Added = atoms() - Atoms0,
    ct:pal("cnode adapter: ~b announcements to the C node's registry (~b entries), ~b hostile "
           "peers, ~b atoms added", [?N, Created, length(Hostile), Added]),
    ?assert(Created >= ?N div 2),
    ?assertEqual([], Hostile),
    ?assertEqual(0, hostile_atoms(Config, {1, ?N})),
    ?assert(Added =< ?ATOM_SLACK),
    assert_no_hostile_nodes(Config),
    gen_udp:close(S),
    ok = plexus_discovery:stop(tr_hostile_cnode),
    ok = gen_server:stop(Cn).

free_udp_port() ->
    {ok, S} = gen_udp:open(0, [{ip, ?LO}]),
    {ok, P} = inet:port(S),
    gen_udp:close(S),
    P.
