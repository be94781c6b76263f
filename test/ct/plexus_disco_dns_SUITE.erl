%% @doc DNS discovery against Debian's dnsmasq, started by the suite on 127.0.0.1 at a
%% high port (A records from a hosts file it re-reads on SIGHUP, fixed SRV and AAAA
%% records), and against a hostile DNS responder on loopback that answers garbage:
%% a failed or garbled answer is a failed sync (health degrades), never a crash, an
%% atom or a lost peer.
-module(plexus_disco_dns_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).

%% Bound of every wait. Waits poll for the outcome and return as soon as it shows, so
%% a generous bound costs nothing; a loaded machine (dnsmasq and this VM descheduled,
%% a query timing out and the next sync retrying it) needs more than a few seconds.
-define(WAIT, 30000).
-export([a_records/1, srv_records/1, aaaa_records/1, nxdomain_is_empty/1,
         garbage_answers/1, answer_filtering/1, bad_config/1]).

all() ->
    [a_records, srv_records, aaaa_records, nxdomain_is_empty, garbage_answers,
     answer_filtering, bad_config].

init_per_suite(Config) ->
    case os:find_executable("dnsmasq") =/= false orelse filelib:is_file("/usr/sbin/dnsmasq") of
        false ->
            {skip, "dnsmasq not installed (make deps)"};
        true ->
            Fx = plexus_disco_fixture:setup(dns, Config),
            [{fx, Fx} | Config]
    end.

end_per_suite(Config) ->
    plexus_disco_fixture:teardown(?config(fx, Config)).

ns(Config) -> [{{127, 0, 0, 1}, maps:get(port, ?config(fx, Config))}].

start(Name, Custom) ->
    {ok, P} = plexus_discovery:start_link(#{name => Name, adapter => dns, sync_interval_ms => 100,
                                           sync_timeout_ms => 2000, custom => Custom}),
    unlink(P),
    Name.

ids(Name) ->
    {ok, Ps} = plexus_discovery:snapshot(Name),
    lists:sort([Id || #{id := Id} <- Ps]).

a_records(Config) ->
    Fx0 = ?config(fx, Config),
    {Fx1, A} = plexus_disco_fixture:add_peer(Fx0, 11),
    {Fx2, B} = plexus_disco_fixture:add_peer(Fx1, 12),
    start(dns_a, #{query => "app.plexus.test", basename => "app", nameservers => ns(Config)}),
    ok = plexus_disco_fixture:wait(fun() -> ids(dns_a) =:= lists:sort([A, B]) end, ?WAIT),
    {ok, #{metadata := #{<<"address">> := <<"127.0.1.11">>, <<"source">> := <<"dns">>}}} =
        plexus_discovery:lookup(dns_a, A),
    Fx3 = plexus_disco_fixture:remove_peer(Fx2, A),
    ok = plexus_disco_fixture:wait(fun() -> ids(dns_a) =:= [B] end, ?WAIT),
    _ = plexus_disco_fixture:remove_peer(Fx3, B),
    ok = plexus_disco_fixture:wait(fun() -> ids(dns_a) =:= [] end, ?WAIT),
    ok = plexus_discovery:stop(dns_a).

srv_records(Config) ->
    start(dns_srv, #{query => "_erlang._tcp.plexus.test", type => srv, nameservers => ns(Config)}),
    ok = plexus_disco_fixture:wait(
           fun() -> ids(dns_srv) =:= [<<"node1@node1.plexus.test">>, <<"node2@node2.plexus.test">>] end,
           ?WAIT),
    {ok, #{metadata := #{<<"port">> := <<"4370">>, <<"priority">> := <<"10">>,
                         <<"weight">> := <<"60">>}}} =
        plexus_discovery:lookup(dns_srv, <<"node1@node1.plexus.test">>),
    ok = plexus_discovery:stop(dns_srv),
    %% with a basename the SRV target keeps its full name
    start(dns_srv2, #{query => "_erlang._tcp.plexus.test", type => srv, basename => "app",
                      nameservers => ns(Config)}),
    ok = plexus_disco_fixture:wait(
           fun() -> ids(dns_srv2) =:= [<<"app@node1.plexus.test">>, <<"app@node2.plexus.test">>] end,
           ?WAIT),
    ok = plexus_discovery:stop(dns_srv2).

aaaa_records(Config) ->
    start(dns_v6, #{query => "v6.plexus.test", type => [aaaa], basename => "app",
                    nameservers => ns(Config)}),
    ok = plexus_disco_fixture:wait(fun() -> ids(dns_v6) =:= [<<"app@::1">>] end, ?WAIT),
    ok = plexus_discovery:stop(dns_v6).

nxdomain_is_empty(Config) ->
    start(dns_nx, #{query => "nothing.plexus.test", basename => "app", nameservers => ns(Config)}),
    ok = plexus_disco_fixture:wait(fun() -> plexus_discovery:health_info(dns_nx) =/= #{} andalso
                                                maps:get(last_sync_time_ms,
                                                         plexus_discovery:health_info(dns_nx)) =/= undefined
                                   end, ?WAIT),
    up = plexus_discovery:health(dns_nx),
    [] = ids(dns_nx),
    ok = plexus_discovery:stop(dns_nx).

%% A responder that first answers properly, then with garbage of several kinds: the
%% peers found before stay, health degrades, the server and VM are fine.
garbage_answers(_Config) ->
    {ok, Sock} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false}]),
    {ok, Port} = inet:port(Sock),
    Mode = atomics:new(1, []),
    Responder = spawn(fun() -> responder(Sock, Mode) end),
    ok = gen_udp:controlling_process(Sock, Responder),
    start(dns_bad, #{query => "app.evil.test", basename => "app",
                     nameservers => [{{127, 0, 0, 1}, Port}], timeout_ms => 200}),
    ok = plexus_disco_fixture:wait(fun() -> ids(dns_bad) =:= [<<"app@127.0.3.1">>] end, ?WAIT),
    _ = plexus_discovery:health_info(dns_bad),
    Atoms0 = erlang:system_info(atom_count),
    [begin
         atomics:put(Mode, 1, M),
         {error, _} = plexus_discovery:sync_now(dns_bad),
         ?assertEqual([<<"app@127.0.3.1">>], ids(dns_bad))
     end || M <- lists:seq(1, 6)],
    {down, _} = plexus_discovery:health(dns_bad),
    ?assertEqual(Atoms0, erlang:system_info(atom_count)),
    exit(Responder, kill),
    ok = plexus_discovery:stop(dns_bad).

responder(Sock, Mode) ->
    case gen_udp:recv(Sock, 0) of
        {ok, {IP, P, Query}} ->
            case reply(atomics:get(Mode, 1), Query) of
                none -> ok;
                R -> gen_udp:send(Sock, IP, P, R)
            end,
            responder(Sock, Mode);
        _ ->
            ok
    end.

%% 0 good; 1 random bytes; 2 truncated good reply; 3 wrong id; 4 an A record with a
%% 3-byte address; 5 an answer count larger than the answers; 6 silence.
reply(Mode, Query) ->
    {ok, Q} = inet_dns:decode(Query),
    Good = good_reply(Q),
    <<QId:16, _/binary>> = Query,
    case Mode of
        0 -> Good;
        1 -> <<QId:16, (list_to_binary([rand:uniform(256) - 1 || _ <- lists:seq(1, 60)]))/binary>>;
        2 -> binary:part(Good, 0, byte_size(Good) - 3);
        3 -> <<(QId bxor 16#ffff):16, (binary:part(Good, 2, byte_size(Good) - 2))/binary>>;
        4 -> bad_rdlength(Good);
        5 -> <<G0:6/binary, _AnCount:16, Rest/binary>> = Good, <<G0/binary, 9:16, Rest/binary>>;
        6 -> none
    end.

good_reply(Q) ->
    H = inet_dns:msg(Q, header),
    [QD] = inet_dns:msg(Q, qdlist),
    Name = inet_dns:dns_query(QD, domain),
    RR = inet_dns:make_rr([{domain, Name}, {type, a}, {class, in}, {ttl, 0},
                           {data, {127, 0, 3, 1}}]),
    Msg = inet_dns:make_msg([{header, inet_dns:make_header(H, [{qr, true}, {ra, true}])},
                             {qdlist, [QD]}, {anlist, [RR]}]),
    iolist_to_binary(inet_dns:encode(Msg)).

%% The last 4 bytes of a one-answer reply are the address, preceded by RDLENGTH.
bad_rdlength(Good) ->
    Pre = binary:part(Good, 0, byte_size(Good) - 6),
    <<Pre/binary, 3:16, 127, 0, 3>>.

answer_filtering(_Config) ->
    Answers = [{a, {127, 0, 0, 1}}, {a, {300, 0, 0, 1}}, {a, bogus}, {cname, "x.test"},
               {aaaa, {0, 0, 0, 0, 0, 0, 0, 1}}, {srv, {1, 2, 3, "bad host!"}},
               {srv, {1, 2, 70000, "ok.test"}}, {srv, {1, 2, 3, "ok.test."}}],
    [#{id := <<"app@127.0.0.1">>}] = plexus_discovery_dns:peers_from_answers(a, Answers, <<"app">>),
    [#{id := <<"app@::1">>}] = plexus_discovery_dns:peers_from_answers(aaaa, Answers, <<"app">>),
    [#{id := <<"ok@ok.test">>}] = plexus_discovery_dns:peers_from_answers(srv, Answers, undefined),
    false = plexus_discovery_dns:valid_hostname(<<"a..b">>),
    false = plexus_discovery_dns:valid_hostname(binary:copy(<<"a">>, 64)),
    true = plexus_discovery_dns:valid_hostname(<<"a-b.c_d.e">>).

bad_config(_Config) ->
    process_flag(trap_exit, true), %% start_link's failed init exits the new process
    [{error, {start_failed, {invalid_configuration, _}}} =
         plexus_discovery:start_link(#{name => dns_bad_cfg, adapter => dns, custom => C})
     || C <- [#{}, #{query => "x.test"}, #{query => "x.test", basename => "a b"},
              #{query => "x.test", basename => "a", type => mx},
              #{query => "bad name!", basename => "a"}]],
    plexus_disco_fixture:flush(),
    ok.
