%% @doc The TTL registry (doc/DESIGN.md §5, global_registry parity) over real UDP on
%% loopback: Announce -> Handshake, the TTL clamp, lazy eviction driven by an injected
%% clock (no sleeps), floods bounded and counted without losing entries, Ed25519-signed
%% announcements (required, trusted keys, replay), clients discovering each other and
%% leaving with BYE, and junk datagrams that get no answer, make no atom and crash
%% nothing.
-module(plexus_disco_registry_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-define(LO, {127, 0, 0, 1}).

-export([all/0, init_per_testcase/2, end_per_testcase/2]).
-export([announce_handshake/1, ttl_clamp/1, eviction_injected_clock/1, flood_bounded/1,
         junk_datagrams/1, signed_announcements/1, clients_find_each_other/1,
         cookie_answers_do_not_loop/1]).

all() ->
    [announce_handshake, ttl_clamp, eviction_injected_clock, flood_bounded, junk_datagrams,
     signed_announcements, clients_find_each_other, cookie_answers_do_not_loop].

init_per_testcase(_Case, Config) ->
    Clock = atomics:new(1, []),
    atomics:put(Clock, 1, 1700000000000),
    [{clock, Clock} | Config].

end_per_testcase(_Case, _Config) ->
    ok.

server(Config, Extra) ->
    Clock = ?config(clock, Config),
    {ok, Pid} = plexus_registry:start_link(
                  maps:merge(#{name => undefined, ip => {127, 0, 0, 1}, port => 0,
                               clock => fun() -> atomics:get(Clock, 1) end}, Extra)),
    unlink(Pid),
    {Pid, plexus_registry:port(Pid)}.

advance(Config, Ms) -> atomics:add(?config(clock, Config), 1, Ms).
now_ms(Config) -> atomics:get(?config(clock, Config), 1).

%% A raw client: one request datagram, one decoded reply (or none). One socket per
%% test process, so that every request comes from the same address (the server binds
%% unsigned entries to it); it closes with the process.
rpc(Port, Bin) -> rpc(Port, Bin, 300).

rpc(Port, Bin, Timeout) ->
    S = case get(client_socket) of
            undefined ->
                {ok, S0} = gen_udp:open(0, [binary, {active, false}, {ip, {127, 0, 0, 1}}]),
                put(client_socket, S0),
                S0;
            S0 ->
                S0
        end,
    ok = gen_udp:send(S, {127, 0, 0, 1}, Port, Bin),
    case gen_udp:recv(S, 0, Timeout) of
        {ok, {_, Port, Reply}} -> plexus_nif:registry_decode(Reply);
        {error, timeout} -> no_reply
    end.

%% A QUERY as the adapter asks it: padded, then again with the COOKIE it got.
query(Port, Max) ->
    {ok, #{type := cookie, cookie := C}} =
        rpc(Port, plexus_nif:registry_encode_query(1, Max, <<>>, 40)),
    rpc(Port, plexus_nif:registry_encode_query(2, Max, C, 0)).

announce(Port, Peer, Ttl, Issued) ->
    rpc(Port, plexus_nif:registry_encode_announce(1, Peer, [<<"127.0.0.1:4370">>],
                                                  #{<<"zone">> => <<"a">>}, Ttl, Issued, <<>>)).

announce_handshake(Config) ->
    {Srv, Port} = server(Config, #{server_addrs => [<<"127.0.0.1:1">>, <<"reg@127.0.0.1">>]}),
    {ok, #{type := handshake, request_id := 1, ttl_ms := 90000, heartbeat_ms := 30000,
           server_addrs := [<<"127.0.0.1:1">>, <<"reg@127.0.0.1">>]}} =
        announce(Port, <<"a@127.0.0.1">>, 0, 0),
    {ok, #{peer := <<"a@127.0.0.1">>, addrs := [<<"127.0.0.1:4370">>],
           metadata := #{<<"zone">> := <<"a">>}, ttl_ms := 90000}} =
        plexus_registry:lookup(Srv, <<"a@127.0.0.1">>),
    {ok, #{type := view, live_entries := 1, entries := [#{peer := <<"a@127.0.0.1">>}]}} =
        query(Port, 10),
    #{created := 1, announces := 1, queries := 1, cookies := 1} = plexus_registry:stats(Srv),
    plexus_registry:stop(Srv).

ttl_clamp(Config) ->
    {Srv, Port} = server(Config, #{}),
    [begin
         {ok, #{ttl_ms := Got, heartbeat_ms := HB}} = announce(Port, <<"t@127.0.0.1">>, Want, 0),
         ?assertEqual(Expect, Got),
         ?assertEqual(Expect div 3, HB)
     end || {Want, Expect} <- [{0, 90000}, {1, 30000}, {29999, 30000}, {45000, 45000},
                               {300000, 300000}, {10000000, 300000}]],
    plexus_registry:stop(Srv).

%% Time is injected: entries expire exactly at their TTL, heartbeats extend them,
%% and eviction happens lazily on sample/current_view.
eviction_injected_clock(Config) ->
    {Srv, Port} = server(Config, #{}),
    {ok, _} = announce(Port, <<"short@127.0.0.1">>, 30000, 0),
    {ok, _} = announce(Port, <<"long@127.0.0.1">>, 0, 0),
    ?assertEqual(2, length(plexus_registry:current_view(Srv))),
    advance(Config, 29999),
    ?assertEqual(2, length(plexus_registry:current_view(Srv))),
    advance(Config, 1),
    [#{peer := <<"long@127.0.0.1">>, ttl_ms := 60000}] = plexus_registry:current_view(Srv),
    {ok, _} = announce(Port, <<"long@127.0.0.1">>, 0, 0), %% heartbeat at t=30000
    advance(Config, 80000),
    [#{peer := <<"long@127.0.0.1">>, ttl_ms := 10000}] = plexus_registry:sample(Srv, 5),
    advance(Config, 10000),
    [] = plexus_registry:sample(Srv, 5),
    #{evicted := 2, refreshed := 1, entries := 0} = plexus_registry:stats(Srv),
    plexus_registry:stop(Srv).

%% 1000 new names against a table of 50: 50 accepted, 950 refused and counted, the
%% first entries all still there, every refused client told why.
flood_bounded(Config) ->
    {Srv, Port} = server(Config, #{max_entries => 50}),
    {ok, S} = gen_udp:open(0, [binary, {active, false}, {ip, {127, 0, 0, 1}},
                               {recbuf, 1 bsl 20}]),
    Send = fun(I) ->
                   Peer = <<"flood", (integer_to_binary(I))/binary, "@127.0.0.1">>,
                   Bin = plexus_nif:registry_encode_announce(I, Peer, [], #{}, 0, 0, <<>>),
                   ok = gen_udp:send(S, {127, 0, 0, 1}, Port, Bin),
                   {ok, {_, _, Reply}} = gen_udp:recv(S, 0, 2000),
                   {ok, M} = plexus_nif:registry_decode(Reply),
                   maps:get(type, M)
           end,
    Types = [Send(I) || I <- lists:seq(1, 1000)],
    ?assertEqual(50, length([T || T <- Types, T =:= handshake])),
    ?assertEqual(950, length([T || T <- Types, T =:= refused])),
    {ok, #{type := refused, reason := full}} = announce(Port, <<"late@127.0.0.1">>, 0, 0),
    View = plexus_registry:current_view(Srv),
    ?assertEqual(lists:sort([<<"flood", (integer_to_binary(I))/binary, "@127.0.0.1">>
                             || I <- lists:seq(1, 50)]),
                 lists:sort([P || #{peer := P} <- View])),
    #{refused_full := 951, entries := 50} = plexus_registry:stats(Srv),
    %% once they expire, room comes back
    advance(Config, 90000),
    {ok, #{type := handshake}} = announce(Port, <<"late@127.0.0.1">>, 0, 0),
    gen_udp:close(S),
    plexus_registry:stop(Srv).

junk_datagrams(Config) ->
    {Srv, Port} = server(Config, #{}),
    {ok, _} = announce(Port, <<"keep@127.0.0.1">>, 0, 0),
    Valid = plexus_nif:registry_encode_announce(5, <<"x@127.0.0.1">>, [<<"a">>], #{}, 0, 0, <<>>),
    Junk = [<<>>, <<"PXR">>, <<"PXR", 1, 9, 0>>, <<"PXR", 2, 1, 0>>,
            <<"PXR", 1, 4, 0, 100, 50, 0>>] ++
        [binary:part(Valid, 0, N) || N <- lists:seq(1, byte_size(Valid) - 1)] ++
        [<<Valid/binary, 0>>] ++
        [list_to_binary([rand:uniform(256) - 1 || _ <- lists:seq(1, 40)]) || _ <- lists:seq(1, 200)],
    _ = plexus_registry:stats(Srv),
    no_reply = rpc(Port, <<"warm-up">>, 100), %% loads what the path below needs
    ok = plexus_disco_fixture:wait(fun() -> true end, 1),
    Atoms0 = erlang:system_info(atom_count),
    %% the first few one by one, waiting for a reply that must not come
    Replies = [rpc(Port, J, 100) || J <- lists:sublist(Junk, 10)],
    ?assertEqual([no_reply], lists:usort(Replies)),
    {ok, S} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}]),
    [ok = gen_udp:send(S, {127, 0, 0, 1}, Port, J) || J <- lists:nthtail(10, Junk)],
    gen_udp:close(S),
    ok = plexus_disco_fixture:wait(
           fun() -> maps:get(malformed, plexus_registry:stats(Srv)) >= length(Junk) end, 5000),
    ?assertEqual(Atoms0, erlang:system_info(atom_count)),
    [#{peer := <<"keep@127.0.0.1">>}] = plexus_registry:current_view(Srv),
    ?assert(is_process_alive(Srv)),
    plexus_registry:stop(Srv).

signed_announcements(Config) ->
    {Pk, Seed} = plexus_registry:keypair(),
    {_Pk2, Seed2} = plexus_registry:keypair(),
    {Srv, Port} = server(Config, #{require_signed => true, trusted_keys => [Pk]}),
    Now = now_ms(Config),
    Ann = fun(Peer, S, Issued) ->
                  rpc(Port, plexus_nif:registry_encode_announce(1, Peer, [], #{}, 0, Issued, S))
          end,
    {ok, #{type := refused, reason := auth_failed}} = Ann(<<"u@127.0.0.1">>, <<>>, Now),
    {ok, #{type := refused, reason := auth_failed}} = Ann(<<"u@127.0.0.1">>, Seed2, Now),
    {ok, #{type := handshake}} = Ann(<<"s@127.0.0.1">>, Seed, Now),
    Signed = plexus_nif:registry_encode_announce(1, <<"s@127.0.0.1">>, [], #{}, 0, Now + 1, Seed),
    {ok, #{type := handshake}} = rpc(Port, Signed),
    {ok, #{type := refused, reason := replayed}} = rpc(Port, Signed),
    %% the discovery client signs when given a seed
    {ok, P1} = plexus_discovery:start_link(
                 #{name => signed_client, adapter => registry, sync_interval_ms => 100,
                   custom => #{servers => [{{127, 0, 0, 1}, Port}], peer => <<"c@127.0.0.1">>,
                               sign_seed => Seed}}),
    unlink(P1),
    %% (its issued_ms is the real clock: move the injected one there)
    atomics:put(?config(clock, Config), 1, erlang:system_time(millisecond)),
    ok = plexus_disco_fixture:wait(
           fun() -> element(1, plexus_registry:lookup(Srv, <<"c@127.0.0.1">>)) =:= ok end, 5000),
    %% an unsigned client is refused, and says so in its health
    {ok, P2} = plexus_discovery:start_link(
                 #{name => unsigned_client, adapter => registry, sync_interval_ms => 100,
                   custom => #{servers => [{{127, 0, 0, 1}, Port}], peer => <<"d@127.0.0.1">>}}),
    unlink(P2),
    ok = plexus_disco_fixture:wait(
           fun() -> plexus_discovery:health(unsigned_client) =/= up end, 5000),
    #{last_error := {sync_failed, {refused, auth_failed}}} =
        plexus_discovery:health_info(unsigned_client),
    {error, not_found} = plexus_registry:lookup(Srv, <<"d@127.0.0.1">>),
    ok = plexus_discovery:stop(signed_client),
    ok = plexus_discovery:stop(unsigned_client),
    plexus_registry:stop(Srv).

clients_find_each_other(Config) ->
    {Srv, Port} = server(Config, #{clock => fun() -> erlang:system_time(millisecond) end}),
    Start = fun(Name) ->
                    {ok, P} = plexus_discovery:start_link(
                                #{name => Name, adapter => registry, sync_interval_ms => 100,
                                  sync_timeout_ms => 300,
                                  custom => #{servers => [{{127, 0, 0, 1}, Port}],
                                              peer => <<(atom_to_binary(Name, utf8))/binary,
                                                        "@127.0.0.1">>,
                                              addrs => [<<"127.0.0.1:9">>],
                                              metadata => #{<<"role">> => <<"web">>}}}),
                    unlink(P)
            end,
    [Start(N) || N <- [rc_a, rc_b, rc_c]],
    Ids = fun(N) -> {ok, Ps} = plexus_discovery:snapshot(N), lists:sort([I || #{id := I} <- Ps]) end,
    ok = plexus_disco_fixture:wait(
           fun() -> Ids(rc_a) =:= [<<"rc_b@127.0.0.1">>, <<"rc_c@127.0.0.1">>] end, 5000),
    {ok, #{metadata := #{<<"role">> := <<"web">>, <<"addrs">> := <<"127.0.0.1:9">>,
                         <<"source">> := <<"registry">>}}} =
        plexus_discovery:lookup(rc_a, <<"rc_b@127.0.0.1">>),
    ok = plexus_discovery:stop(rc_c), %% says BYE
    ok = plexus_disco_fixture:wait(fun() -> Ids(rc_a) =:= [<<"rc_b@127.0.0.1">>] end, 5000),
    #{byes := 1} = plexus_registry:stats(Srv),
    %% a registry that goes away: health degrades, the peers stay
    plexus_registry:stop(Srv),
    ok = plexus_disco_fixture:wait(fun() -> plexus_discovery:health(rc_a) =/= up end, 10000),
    ?assertEqual([<<"rc_b@127.0.0.1">>], Ids(rc_a)),
    ok = plexus_discovery:stop(rc_a),
    ok = plexus_discovery:stop(rc_b).

%% A server (or a spoofer with the request id) that answers every QUERY with a fresh
%% COOKIE: the client asks again once, then waits for its next periodic query.
cookie_answers_do_not_loop(_Config) ->
    {ok, Fake} = gen_udp:open(0, [binary, {active, false}, {ip, ?LO}]),
    {ok, Port} = inet:port(Fake),
    {ok, P} = plexus_discovery:start_link(
                #{name => cookie_client, adapter => registry, sync_interval_ms => 3600000,
                  custom => #{servers => [{?LO, Port}], peer => <<"cc@127.0.0.1">>}}),
    unlink(P),
    %% every datagram for 2 s (announces keep coming: the fake never shakes hands)
    Deadline = erlang:monotonic_time(millisecond) + 2000,
    Answer = fun Answer(Queries) ->
                     Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
                     case Left > 0 andalso gen_udp:recv(Fake, 0, Left) of
                         {ok, {IP, CPort, Bin}} ->
                             case plexus_nif:registry_decode(Bin) of
                                 {ok, #{type := query, request_id := Req}} ->
                                     C = <<"PXR", 1, 7, Req, (crypto:strong_rand_bytes(16))/binary>>,
                                     ok = gen_udp:send(Fake, IP, CPort, C),
                                     Answer(Queries + 1);
                                 _ ->
                                     Answer(Queries) %% announces
                             end;
                         _Timeout ->
                             Queries
                     end
             end,
    ?assertEqual(2, Answer(0)),
    #{adapter_info := #{cookies := 1, cookies_again := 1}} =
        plexus_discovery:health_info(cookie_client),
    ok = plexus_discovery:stop(cookie_client),
    gen_udp:close(Fake).
