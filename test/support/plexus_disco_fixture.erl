%% @doc Real local counterparts for the discovery suites, one per adapter, behind one
%% small interface so the conformance suite runs the same checks against each:
%%
%%   setup(Adapter, Config) -> Fx          start the counterpart
%%   opts(Fx, Name) -> facade options      a facade that discovers through it
%%   add_peer(Fx, I) -> {Fx, PeerId}       make peer number I discoverable
%%   remove_peer(Fx, PeerId) -> Fx         make it go away
%%   teardown(Fx)                          stop everything started, by pid
%%
%% Counterparts: beam and epmd use real nodes (OTP `peer' on 127.0.0.1) or real epmd
%% registrations; dns a dnsmasq on 127.0.0.1 with a hosts file it re-reads on SIGHUP;
%% kubernetes a loopback HTTP server serving Endpoints JSON; tailscale a fake
%% `tailscale' executable on PATH printing a status file; gossip in-VM gossip
%% endpoints on loopback UDP; registry a plexus_registry server; cnode a stand-in for
%% plexus_cnode (plexus_fake_cnode). Everything is loopback; every wait is bounded.
-module(plexus_disco_fixture).

-export([setup/2, opts/2, add_peer/2, remove_peer/2, teardown/1, adapters/0]).
-export([ensure_distributed/0, start_peer/1, stop_peer/1, free_udp_port/0, free_tcp_port/0,
         wait/2, flush/0, collect_events/2, json/1]).
-export([dnsmasq_start/1, dnsmasq_stop/1, http_start/1, http_set/2, http_requests/1,
         http_stop/1, epmd_register/2, epmd_unregister/1]).

-define(SECRET, <<"conformance secret of 16+ bytes">>).

adapters() -> [beam, epmd, dns, kubernetes, tailscale, gossip, registry, cnode].

%% ------------------------------------------------------------------ generic helpers

ensure_distributed() ->
    case node() of
        nonode@nohost ->
            _ = os:cmd("ERL_EPMD_ADDRESS=127.0.0.1 epmd -daemon"),
            timer:sleep(300),
            {ok, _} = net_kernel:start(['plexus_disco_ct@127.0.0.1', longnames]),
            ok;
        _ ->
            ok
    end.

%% A peer node on loopback (peer:start, not start_link, so it outlives the caller).
start_peer(Name) ->
    Args = plexus_test_nodes:code_path_args() ++
        ["-kernel", "inet_dist_use_interface", "{127,0,0,1}",
         "-kernel", "prevent_overlapping_partitions", "false"],
    {ok, P, N} = peer:start(#{name => Name, host => "127.0.0.1", longnames => true,
                              args => Args, connection => standard_io,
                              wait_boot => 30000}),
    {P, N}.

stop_peer({P, _N}) ->
    catch peer:stop(P),
    ok.

free_udp_port() ->
    {ok, S} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}]),
    {ok, P} = inet:port(S),
    gen_udp:close(S),
    P.

free_tcp_port() ->
    {ok, S} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
    {ok, P} = inet:port(S),
    gen_tcp:close(S),
    P.

%% Polls Fun until it returns true, at most Ms: ok | timeout.
wait(Fun, Ms) ->
    plexus_test_nodes:wait_until(Fun, Ms).

flush() ->
    receive _ -> flush() after 0 -> ok end.

%% Every {plexus_discovery, Event} that arrives within Ms.
collect_events(Ms, Acc) ->
    receive {plexus_discovery, E} -> collect_events(Ms, [E | Acc])
    after Ms -> lists:reverse(Acc)
    end.

%% A minimal JSON encoder for the fake servers' responses.
json(M) when is_map(M) ->
    ["{", lists:join(",", [[json(to_bin(K)), ":", json(V)] || {K, V} <- maps:to_list(M)]), "}"];
json(L) when is_list(L) -> ["[", lists:join(",", [json(X) || X <- L]), "]"];
json(true) -> "true";
json(false) -> "false";
json(null) -> "null";
json(B) when is_binary(B) -> [$", B, $"];
json(A) when is_atom(A) -> json(atom_to_binary(A, utf8));
json(I) when is_integer(I) -> integer_to_list(I).

to_bin(A) when is_atom(A) -> atom_to_binary(A, utf8);
to_bin(B) when is_binary(B) -> B.

%% ------------------------------------------------------------------ fixtures

setup(beam, _Config) ->
    ok = ensure_distributed(),
    #{adapter => beam, peers => #{}};
setup(epmd, _Config) ->
    ok = ensure_distributed(),
    #{adapter => epmd, regs => #{}};
setup(dns, Config) ->
    Dir = filename:join(proplists:get_value(priv_dir, Config), "dns"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    D = dnsmasq_start(Dir),
    D#{adapter => dns, ips => []};
setup(kubernetes, Config) ->
    Dir = proplists:get_value(priv_dir, Config),
    Token = filename:join(Dir, "k8s-token"),
    ok = file:write_file(Token, <<"conformance-token\n">>),
    H = http_start(<<"Bearer conformance-token">>),
    http_set(H, {200, endpoints([])}),
    #{adapter => kubernetes, http => H, token_file => Token, ips => []};
setup(tailscale, Config) ->
    Dir = filename:join(proplists:get_value(priv_dir, Config), "ts"),
    Bin = filename:join(Dir, "bin"),
    ok = filelib:ensure_dir(filename:join(Bin, "x")),
    Status = filename:join(Dir, "status.json"),
    Script = filename:join(Bin, "tailscale"),
    ok = file:write_file(Script, ["#!/bin/sh\n",
                                  "[ \"$1\" = status ] && [ \"$2\" = --json ] || exit 2\n",
                                  "exec cat '", Status, "'\n"]),
    ok = file:change_mode(Script, 8#755),
    OldPath = os:getenv("PATH"),
    true = os:putenv("PATH", Bin ++ ":" ++ OldPath),
    Fx = #{adapter => tailscale, status => Status, old_path => OldPath, hosts => []},
    write_ts(Fx),
    Fx;
setup(gossip, _Config) ->
    #{adapter => gossip, port => free_udp_port(), endpoints => #{}, ports => #{}};
setup(registry, _Config) ->
    {ok, Pid} = plexus_registry:start_link(#{name => undefined, ip => {127, 0, 0, 1}, port => 0}),
    unlink(Pid),
    #{adapter => registry, server => Pid, port => plexus_registry:port(Pid)};
setup(cnode, _Config) ->
    {ok, Pid} = plexus_fake_cnode:start(),
    #{adapter => cnode, fake => Pid}.

opts(#{adapter := beam}, Name) ->
    #{name => Name, adapter => beam, sync_interval_ms => 200};
opts(#{adapter := epmd}, Name) ->
    #{name => Name, adapter => epmd, sync_interval_ms => 100,
      custom => #{hosts => ["127.0.0.1"]}};
opts(#{adapter := dns, port := Port}, Name) ->
    #{name => Name, adapter => dns, sync_interval_ms => 100,
      custom => #{query => "app.plexus.test", type => a, basename => "app",
                  nameservers => [{{127, 0, 0, 1}, Port}], timeout_ms => 500}};
opts(#{adapter := kubernetes, http := H, token_file := T}, Name) ->
    #{name => Name, adapter => kubernetes, sync_interval_ms => 100,
      custom => #{api_url => "http://127.0.0.1:" ++ integer_to_list(maps:get(port, H)),
                  namespace => "plexus", service => "app", basename => "app",
                  token_file => T, timeout_ms => 1000}};
opts(#{adapter := tailscale}, Name) ->
    #{name => Name, adapter => tailscale, sync_interval_ms => 100,
      custom => #{basename => "app", tag => <<"tag:plexus">>}};
opts(#{adapter := gossip, port := Port} = Fx, Name) ->
    #{name => Name, adapter => gossip,
      custom => gossip_custom(Fx, <<(atom_to_binary(Name, utf8))/binary, "@127.0.0.1">>, Port)};
opts(#{adapter := registry, port := Port}, Name) ->
    #{name => Name, adapter => registry, sync_interval_ms => 100,
      custom => #{servers => [{{127, 0, 0, 1}, Port}],
                  peer => <<(atom_to_binary(Name, utf8))/binary, "@127.0.0.1">>}};
opts(#{adapter := cnode}, Name) ->
    #{name => Name, adapter => cnode, sync_interval_ms => 200,
      custom => #{module => plexus_fake_cnode}}.

gossip_custom(#{port := Base, ports := Ports}, NodeName, Port) ->
    Targets = [{{127, 0, 0, 1}, P} || P <- [Base | maps:values(Ports)]],
    #{secret => ?SECRET, cluster_id => <<"conformance">>, mode => unicast, port => Port,
      bind_ip => {127, 0, 0, 1}, targets => Targets, broadcast_interval_ms => 50,
      peer_timeout_ms => 1000, node_name => NodeName}.

add_peer(#{adapter := beam, peers := Ps} = Fx, I) ->
    Name = list_to_atom("conf_beam_" ++ integer_to_list(I)),
    {P, N} = start_peer(Name),
    true = net_kernel:connect_node(N),
    {Fx#{peers := Ps#{atom_to_binary(N, utf8) => {P, N}}}, atom_to_binary(N, utf8)};
add_peer(#{adapter := epmd, regs := Rs} = Fx, I) ->
    Name = "conf_epmd_" ++ integer_to_list(I),
    Reg = epmd_register(Name, 40000 + I),
    Id = list_to_binary(Name ++ "@127.0.0.1"),
    {Fx#{regs := Rs#{Id => Reg}}, Id};
add_peer(#{adapter := dns, ips := IPs} = Fx, I) ->
    IP = "127.0.1." ++ integer_to_list(I),
    Fx1 = Fx#{ips := [IP | IPs]},
    dns_publish(Fx1),
    {Fx1, list_to_binary("app@" ++ IP)};
add_peer(#{adapter := kubernetes, ips := IPs, http := H} = Fx, I) ->
    IP = "10.0.0." ++ integer_to_list(I),
    http_set(H, {200, endpoints([IP | IPs])}),
    {Fx#{ips := [IP | IPs]}, list_to_binary("app@" ++ IP)};
add_peer(#{adapter := tailscale, hosts := Hs} = Fx, I) ->
    Host = "peer" ++ integer_to_list(I) ++ ".tailnet.ts.net",
    Fx1 = Fx#{hosts := [Host | Hs]},
    write_ts(Fx1),
    {Fx1, list_to_binary("app@" ++ Host)};
add_peer(#{adapter := gossip, endpoints := Es, ports := Ports} = Fx, I) ->
    Name = list_to_atom("conf_gossip_" ++ integer_to_list(I)),
    Port = free_udp_port(),
    Fx1 = Fx#{ports := Ports#{Name => Port}},
    Id = <<(atom_to_binary(Name, utf8))/binary, "@127.0.0.1">>,
    {ok, Pid} = plexus_discovery:start_link(#{name => Name, adapter => gossip,
                                              custom => gossip_custom(Fx1, Id, Port)}),
    unlink(Pid),
    {Fx1#{endpoints := Es#{Id => Name}}, Id};
add_peer(#{adapter := registry, server := S} = Fx, I) ->
    Id = list_to_binary("conf_reg_" ++ integer_to_list(I) ++ "@127.0.0.1"),
    {ok, _} = plexus_registry:announce(S, Id, [<<"127.0.0.1:1">>], #{<<"i">> => integer_to_binary(I)}),
    {Fx, Id};
add_peer(#{adapter := cnode} = Fx, I) ->
    Id = list_to_binary("conf_cnode_" ++ integer_to_list(I) ++ "@127.0.0.1"),
    ok = plexus_fake_cnode:node_up(Id),
    {Fx, Id}.

remove_peer(#{adapter := beam, peers := Ps} = Fx, Id) ->
    {Peer, Rest} = maps:take(Id, Ps),
    stop_peer(Peer),
    Fx#{peers := Rest};
remove_peer(#{adapter := epmd, regs := Rs} = Fx, Id) ->
    {Reg, Rest} = maps:take(Id, Rs),
    epmd_unregister(Reg),
    Fx#{regs := Rest};
remove_peer(#{adapter := dns, ips := IPs} = Fx, <<"app@", IP/binary>>) ->
    Fx1 = Fx#{ips := IPs -- [binary_to_list(IP)]},
    dns_publish(Fx1),
    Fx1;
remove_peer(#{adapter := kubernetes, ips := IPs, http := H} = Fx, <<"app@", IP/binary>>) ->
    Left = IPs -- [binary_to_list(IP)],
    http_set(H, {200, endpoints(Left)}),
    Fx#{ips := Left};
remove_peer(#{adapter := tailscale, hosts := Hs} = Fx, <<"app@", Host/binary>>) ->
    Fx1 = Fx#{hosts := Hs -- [binary_to_list(Host)]},
    write_ts(Fx1),
    Fx1;
remove_peer(#{adapter := gossip, endpoints := Es} = Fx, Id) ->
    {Name, Rest} = maps:take(Id, Es),
    ok = plexus_discovery:stop(Name),
    Fx#{endpoints := Rest};
remove_peer(#{adapter := registry, server := S} = Fx, Id) ->
    ok = plexus_registry:bye(S, Id),
    Fx;
remove_peer(#{adapter := cnode} = Fx, Id) ->
    ok = plexus_fake_cnode:node_down(Id),
    Fx.

teardown(#{adapter := beam, peers := Ps}) ->
    [stop_peer(P) || P <- maps:values(Ps)], ok;
teardown(#{adapter := epmd, regs := Rs}) ->
    [epmd_unregister(R) || R <- maps:values(Rs)], ok;
teardown(#{adapter := dns} = D) ->
    dnsmasq_stop(D);
teardown(#{adapter := kubernetes, http := H}) ->
    http_stop(H);
teardown(#{adapter := tailscale, old_path := P}) ->
    true = os:putenv("PATH", P), ok;
teardown(#{adapter := gossip, endpoints := Es}) ->
    [plexus_discovery:stop(N) || N <- maps:values(Es)], ok;
teardown(#{adapter := registry, server := S}) ->
    plexus_registry:stop(S);
teardown(#{adapter := cnode, fake := Pid}) ->
    plexus_fake_cnode:stop(Pid).

%% ------------------------------------------------------------------ dnsmasq

%% Starts dnsmasq on 127.0.0.1 on a free port, answering from a hosts file it re-reads
%% on SIGHUP and from fixed SRV records; stopped by its pid. The port is free for UDP
%% when picked, but dnsmasq also binds TCP on it, and another process (other test runs
%% on the machine) may take either before dnsmasq starts: when dnsmasq exits instead of
%% answering, it is started again on another port (bounded), and its output is kept for
%% the failure report.
dnsmasq_start(Dir) ->
    dnsmasq_start(Dir, 5, []).

dnsmasq_start(_Dir, 0, Failures) ->
    error({dnsmasq_not_started, lists:reverse(Failures)});
dnsmasq_start(Dir, Tries, Failures) ->
    Exe = case os:find_executable("dnsmasq") of
              false -> "/usr/sbin/dnsmasq";
              E -> E
          end,
    Port = free_udp_port(),
    Hosts = filename:join(Dir, "hosts"),
    ok = file:write_file(Hosts, <<>>),
    Args = ["--keep-in-foreground", "--port=" ++ integer_to_list(Port),
            "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
            "--conf-file=/dev/null", "--pid-file=", "--no-negcache", "--local-ttl=0",
            "--addn-hosts=" ++ Hosts, "--log-facility=-",
            "--local=/plexus.test/",
            "--host-record=node1.plexus.test,127.0.2.1",
            "--host-record=v6.plexus.test,::1",
            "--srv-host=_erlang._tcp.plexus.test,node1.plexus.test,4370,10,60",
            "--srv-host=_erlang._tcp.plexus.test,node2.plexus.test,4371,20,40"],
    Parent = self(),
    Owner = spawn(fun() ->
                          Port0 = open_port({spawn_executable, Exe},
                                            [{args, Args}, exit_status, stderr_to_stdout,
                                             {line, 1024}]),
                          dnsmasq_owner(Parent, Port0, [])
                  end),
    case dnsmasq_wait_up(Owner, Port, 300) of
        up ->
            #{dnsmasq => Owner, port => Port, hosts => Hosts, os_pid => dnsmasq_pid(Owner)};
        Failure ->
            dnsmasq_stop(#{dnsmasq => Owner}),
            dnsmasq_start(Dir, Tries - 1, [{Port, Failure} | Failures])
    end.

%% Up to N polls 100 ms apart (generous for a loaded machine), unless dnsmasq exits.
dnsmasq_wait_up(Owner, _Port, 0) ->
    Owner ! {output, self()},
    receive {output, Owner, Lines} -> {not_answering, Lines} after 5000 -> not_answering end;
dnsmasq_wait_up(Owner, Port, N) ->
    receive
        {dnsmasq_exited, Owner, Status, Lines} -> {exited, Status, Lines}
    after 0 ->
            case dns_up(Port) of
                true -> up;
                false -> timer:sleep(100), dnsmasq_wait_up(Owner, Port, N - 1)
            end
    end.

dnsmasq_owner(Parent, Port0, Lines) ->
    receive
        {Port0, {data, {_, L}}} ->
            dnsmasq_owner(Parent, Port0, lists:sublist([L | Lines], 20));
        {Port0, {exit_status, Status}} ->
            Parent ! {dnsmasq_exited, self(), Status, lists:reverse(Lines)},
            receive {stop, From} -> From ! {stopped, self()} after 10000 -> ok end;
        {output, From} ->
            From ! {output, self(), lists:reverse(Lines)},
            dnsmasq_owner(Parent, Port0, Lines);
        {stop, From} ->
            {os_pid, Pid} = erlang:port_info(Port0, os_pid),
            _ = os:cmd("kill " ++ integer_to_list(Pid)),
            receive {Port0, {exit_status, _}} -> ok after 5000 -> ok end,
            From ! {stopped, self()}
    end.

dnsmasq_pid(Owner) ->
    {links, _} = erlang:process_info(Owner, links),
    [P] = [P || P <- element(2, erlang:process_info(Owner, links)), is_port(P)],
    {os_pid, Pid} = erlang:port_info(P, os_pid),
    Pid.

dns_up(Port) ->
    case inet_res:resolve("node1.plexus.test", in, a,
                          [{nameservers, [{{127, 0, 0, 1}, Port}]}, {timeout, 200}, {retry, 1}]) of
        {ok, _} -> true;
        _ -> false
    end.

dnsmasq_stop(#{dnsmasq := Owner}) ->
    Owner ! {stop, self()},
    receive {stopped, Owner} -> ok after 6000 -> ok end.

dns_publish(#{hosts := Hosts, ips := IPs, os_pid := Pid}) ->
    ok = file:write_file(Hosts, [[IP, " app.plexus.test\n"] || IP <- IPs]),
    _ = os:cmd("kill -HUP " ++ integer_to_list(Pid)),
    ok.

%% ------------------------------------------------------------------ HTTP (Kubernetes API)

%% A loopback HTTP/1.1 server: every GET gets the current {Status, Body} when its
%% Authorization header is the expected one, 401 otherwise. Records requests.
http_start(ExpectedAuth) ->
    {ok, L} = gen_tcp:listen(0, [binary, {ip, {127, 0, 0, 1}}, {active, false},
                                 {packet, http_bin}, {reuseaddr, true}]),
    {ok, Port} = inet:port(L),
    State = spawn(fun() -> http_state({200, <<"{}">>}, [], ExpectedAuth) end),
    Acceptor = spawn(fun() -> http_accept(L, State) end),
    ok = gen_tcp:controlling_process(L, Acceptor),
    #{port => Port, state => State, acceptor => Acceptor, listen => L}.

http_set(#{state := S}, Resp) -> S ! {set, Resp}, ok.

http_requests(#{state := S}) ->
    S ! {requests, self()},
    receive {requests, S, R} -> lists:reverse(R) after 2000 -> [] end.

http_stop(#{state := S, acceptor := A, listen := L}) ->
    catch gen_tcp:close(L),
    exit(A, kill),
    exit(S, kill),
    ok.

http_state(Resp, Reqs, Auth) ->
    receive
        {set, R} -> http_state(R, Reqs, Auth);
        {get, From, Req} -> From ! {resp, Resp, Auth}, http_state(Resp, [Req | Reqs], Auth);
        {requests, From} -> From ! {requests, self(), Reqs}, http_state(Resp, Reqs, Auth)
    end.

http_accept(L, State) ->
    case gen_tcp:accept(L) of
        {ok, C} ->
            Pid = spawn(fun() -> receive go -> http_conn(C, State) end end),
            ok = gen_tcp:controlling_process(C, Pid),
            Pid ! go,
            http_accept(L, State);
        {error, _} ->
            ok
    end.

http_conn(C, State) ->
    case read_request(C, undefined, undefined) of
        {ok, Path, AuthHdr} ->
            State ! {get, self(), {Path, AuthHdr}},
            receive {resp, {Status, Body}, Auth} ->
                    {Code, B} = case AuthHdr =:= Auth of
                                    true -> {Status, Body};
                                    false -> {401, <<"{\"kind\":\"Status\"}">>}
                                end,
                    Resp = [<<"HTTP/1.1 ">>, integer_to_binary(Code), <<" X\r\n">>,
                            <<"Content-Type: application/json\r\nConnection: close\r\n">>,
                            <<"Content-Length: ">>, integer_to_binary(iolist_size(B)),
                            <<"\r\n\r\n">>, B],
                    _ = gen_tcp:send(C, Resp)
            after 2000 -> ok
            end;
        _ ->
            ok
    end,
    gen_tcp:close(C).

read_request(C, Path, Auth) ->
    case gen_tcp:recv(C, 0, 5000) of
        {ok, {http_request, 'GET', {abs_path, P}, _}} -> read_request(C, P, Auth);
        {ok, {http_header, _, 'Authorization', _, V}} -> read_request(C, Path, V);
        {ok, {http_header, _, _, _, _}} -> read_request(C, Path, Auth);
        {ok, http_eoh} -> {ok, Path, Auth};
        Other -> Other
    end.

endpoints(IPs) ->
    iolist_to_binary(json(#{kind => <<"Endpoints">>, apiVersion => <<"v1">>,
                            metadata => #{name => <<"app">>, namespace => <<"plexus">>},
                            subsets => [#{addresses => [#{ip => list_to_binary(IP),
                                                          nodeName => <<"worker-1">>,
                                                          targetRef => #{kind => <<"Pod">>,
                                                                         name => list_to_binary("app-" ++ IP)}}
                                                        || IP <- IPs],
                                          notReadyAddresses => [#{ip => <<"10.9.9.9">>}],
                                          ports => [#{port => 4369, protocol => <<"TCP">>}]}]})).

%% ------------------------------------------------------------------ tailscale

write_ts(#{status := File, hosts := Hosts}) ->
    Peer = fun(H, I, Tags, Online) ->
                   {list_to_binary("nodekey:" ++ integer_to_list(I)),
                    #{'HostName' => list_to_binary(hd(string:split(H, "."))),
                      'DNSName' => list_to_binary(H ++ "."),
                      'TailscaleIPs' => [list_to_binary("100.64.0." ++ integer_to_list(I)),
                                         <<"fd7a:115c:a1e0::1">>],
                      'Tags' => Tags, 'Online' => Online}}
           end,
    Listed = lists:zip(Hosts, lists:seq(1, length(Hosts))),
    Peers = maps:from_list([Peer(H, I, [<<"tag:plexus">>], true) || {H, I} <- Listed] ++
                               [Peer("other.tailnet.ts.net", 200, [<<"tag:web">>], true),
                                Peer("sleepy.tailnet.ts.net", 201, [<<"tag:plexus">>], false)]),
    ok = file:write_file(File, json(#{'Version' => <<"1.60.0">>, 'BackendState' => <<"Running">>,
                                      'Self' => #{'HostName' => <<"me">>,
                                                  'DNSName' => <<"me.tailnet.ts.net.">>},
                                      'MagicDNSSuffix' => <<"tailnet.ts.net">>,
                                      'Peer' => Peers})).

%% ------------------------------------------------------------------ epmd

epmd_port() -> list_to_integer(os:getenv("ERL_EPMD_PORT", "4369")).

%% Registers Name in the local epmd (ALIVE2_REQ) as a real node would; the
%% registration lasts while the connection stays open.
epmd_register(Name, Port) ->
    Self = self(),
    Pid = spawn(fun() ->
                        {ok, S} = gen_tcp:connect({127, 0, 0, 1}, epmd_port(), [binary, {active, false}]),
                        NameB = list_to_binary(Name),
                        Body = <<$x, Port:16, 77, 0, 6:16, 5:16, (byte_size(NameB)):16,
                                 NameB/binary, 0:16>>,
                        ok = gen_tcp:send(S, <<(byte_size(Body)):16, Body/binary>>),
                        {ok, <<Tag, 0, _/binary>>} = gen_tcp:recv(S, 0, 5000),
                        true = Tag =:= $y orelse Tag =:= $v, %% ALIVE2_RESP or ALIVE2_X_RESP
                        Self ! {registered, self()},
                        receive stop -> gen_tcp:close(S) end
                end),
    receive {registered, Pid} -> Pid after 5000 -> error(epmd_register) end.

epmd_unregister(Pid) ->
    Pid ! stop,
    ok.
