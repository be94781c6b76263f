%% @doc Kubernetes discovery against a loopback HTTP server (plexus_disco_fixture)
%% serving recorded Endpoints responses: the service-account token goes in the
%% Authorization header to the documented path; ready addresses only; hostname mode;
%% a wrong token (401), an error status, malformed or hostile JSON, a body too large
%% (dropped while it comes, plain or chunked) and a dead API server each fail the sync (health degrades) without losing a peer, crashing or
%% making atoms.
-module(plexus_disco_kubernetes_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([token_path_and_ready_addresses/1, hostname_mode/1, bad_responses/1,
         endpoints_parsing/1, huge_body_is_not_read/1]).

all() -> [token_path_and_ready_addresses, hostname_mode, bad_responses, endpoints_parsing,
          huge_body_is_not_read].

init_per_suite(Config) ->
    Fx = plexus_disco_fixture:setup(kubernetes, Config),
    [{fx, Fx} | Config].

end_per_suite(Config) ->
    plexus_disco_fixture:teardown(?config(fx, Config)).

start(Config, Name, Extra) ->
    #{custom := C} = Opts = plexus_disco_fixture:opts(?config(fx, Config), Name),
    {ok, P} = plexus_discovery:start_link(Opts#{custom := maps:merge(C, Extra),
                                                sync_timeout_ms => 2000}),
    unlink(P),
    Name.

ids(Name) ->
    {ok, Ps} = plexus_discovery:snapshot(Name),
    lists:sort([Id || #{id := Id} <- Ps]).

token_path_and_ready_addresses(Config) ->
    Fx0 = ?config(fx, Config),
    {Fx1, A} = plexus_disco_fixture:add_peer(Fx0, 1),
    {_Fx2, B} = plexus_disco_fixture:add_peer(Fx1, 2),
    start(Config, k8s_a, #{}),
    ok = plexus_disco_fixture:wait(fun() -> ids(k8s_a) =:= lists:sort([A, B]) end, 5000),
    %% 10.9.9.9 is in notReadyAddresses: not a peer
    ?assertNot(lists:member(<<"app@10.9.9.9">>, ids(k8s_a))),
    {ok, #{metadata := #{<<"pod">> := <<"app-10.0.0.1">>, <<"node">> := <<"worker-1">>,
                         <<"source">> := <<"kubernetes">>}}} = plexus_discovery:lookup(k8s_a, A),
    [{Path, Auth} | _] = plexus_disco_fixture:http_requests(maps:get(http, Fx0)),
    ?assertEqual(<<"/api/v1/namespaces/plexus/endpoints/app">>, Path),
    ?assertEqual(<<"Bearer conformance-token">>, Auth),
    ok = plexus_discovery:stop(k8s_a),
    plexus_disco_fixture:http_set(maps:get(http, Fx0), {200, endpoints_json([])}).

hostname_mode(Config) ->
    H = maps:get(http, ?config(fx, Config)),
    Body = iolist_to_binary(plexus_disco_fixture:json(
             #{kind => <<"Endpoints">>,
               subsets => [#{addresses => [#{ip => <<"10.0.0.7">>, hostname => <<"app-0">>},
                                           #{ip => <<"10.0.0.8">>}]}]})),
    plexus_disco_fixture:http_set(H, {200, Body}),
    start(Config, k8s_h, #{mode => hostname}),
    ok = plexus_disco_fixture:wait(
           fun() -> ids(k8s_h) =:= [<<"app@app-0.app.plexus.svc.cluster.local">>] end, 5000),
    ok = plexus_discovery:stop(k8s_h),
    plexus_disco_fixture:http_set(H, {200, endpoints_json([])}).

bad_responses(Config) ->
    H = maps:get(http, ?config(fx, Config)),
    plexus_disco_fixture:http_set(H, {200, endpoints_json(["10.0.0.5"])}),
    start(Config, k8s_bad, #{}),
    ok = plexus_disco_fixture:wait(fun() -> ids(k8s_bad) =:= [<<"app@10.0.0.5">>] end, 5000),
    _ = plexus_discovery:health_info(k8s_bad),
    {error, _} = plexus_discovery:lookup(k8s_bad, <<"warm">>),
    Atoms0 = erlang:system_info(atom_count),
    Deep = iolist_to_binary([lists:duplicate(5000, $[), lists:duplicate(5000, $])]),
    Bad = [{500, <<"oops">>}, {200, <<"{not json">>}, {200, <<"[1,2,3]">>},
           {200, <<"{\"kind\":\"Endpoints\",\"subsets\":7}">>}, {200, Deep},
           {200, <<"{\"kind\":\"Endpoints\",\"kind\":\"Endpoints\"}">>},
           {200, <<"{\"kind\":\"Pod\"}">>}, {200, <<255, 0, 1>>}],
    [begin
         plexus_disco_fixture:http_set(H, R),
         {error, {sync_failed, _}} = plexus_discovery:sync_now(k8s_bad),
         ?assertEqual([<<"app@10.0.0.5">>], ids(k8s_bad))
     end || R <- Bad],
    ?assertMatch({down, {sync_failed, _}}, plexus_discovery:health(k8s_bad)),
    ?assertEqual(Atoms0, erlang:system_info(atom_count)),
    %% a wrong token: 401
    plexus_disco_fixture:http_set(H, {200, endpoints_json(["10.0.0.5"])}),
    ok = plexus_discovery:sync_now(k8s_bad),
    up = plexus_discovery:health(k8s_bad),
    ok = plexus_discovery:stop(k8s_bad),
    Tok = filename:join(?config(priv_dir, Config), "wrong-token"),
    ok = file:write_file(Tok, <<"wrong">>),
    start(Config, k8s_401, #{token_file => Tok}),
    {error, {sync_failed, {http_status, 401}}} = plexus_discovery:sync_now(k8s_401),
    ok = plexus_discovery:stop(k8s_401),
    %% no token file at all
    start(Config, k8s_notoken, #{token_file => "/nonexistent/token"}),
    {error, {sync_failed, {token_file, enoent}}} = plexus_discovery:sync_now(k8s_notoken),
    ok = plexus_discovery:stop(k8s_notoken),
    plexus_disco_fixture:http_set(H, {200, endpoints_json([])}).

endpoints_parsing(_Config) ->
    {ok, S} = plexus_discovery_kubernetes:init(#{custom => #{service => "app", basename => "app",
                                                              namespace => "ns",
                                                              api_url => "http://127.0.0.1:1"}}),
    {ok, Json} = plexus_json:decode(
                   <<"{\"kind\":\"Endpoints\",\"subsets\":[{\"addresses\":[{\"ip\":\"10.1.1.1\"},"
                     "{\"ip\":\"not-an-ip\"},{\"ip\":7},{\"nope\":1},{\"ip\":\"fd00::1\"}]},"
                     "{\"notReadyAddresses\":[{\"ip\":\"10.2.2.2\"}]}]}">>),
    {ok, Peers} = plexus_discovery_kubernetes:peers_from_endpoints(Json, S),
    ?assertEqual([<<"app@10.1.1.1">>, <<"app@fd00::1">>], lists:sort([I || #{id := I} <- Peers])),
    {ok, []} = plexus_discovery_kubernetes:peers_from_endpoints(
                 #{<<"kind">> => <<"Endpoints">>, <<"subsets">> => null}, S),
    {error, bad_endpoints} = plexus_discovery_kubernetes:peers_from_endpoints([], S).

endpoints_json(IPs) ->
    iolist_to_binary(plexus_disco_fixture:json(
                       #{kind => <<"Endpoints">>,
                         subsets => [#{addresses => [#{ip => list_to_binary(IP)} || IP <- IPs]}]})).

%% An answer of 256 MB (plain and chunked): httpc read it whole before the 8 MB limit
%% was checked (a 1 GB body took the VM to 1.6 GB). Now the request is dropped once
%% 8 MB have come: the server gets out far less than it meant to send, and no peer
%% is lost.
huge_body_is_not_read(Config) ->
    H = maps:get(http, ?config(fx, Config)),
    plexus_disco_fixture:http_set(H, {200, endpoints_json(["10.0.0.5"])}),
    start(Config, k8s_huge, #{}),
    ok = plexus_disco_fixture:wait(fun() -> ids(k8s_huge) =:= [<<"app@10.0.0.5">>] end, 5000),
    ok = plexus_discovery:stop(k8s_huge),
    [begin
         {Port, Server} = flood_server(Framing, 256),
         #{custom := C} = Opts = plexus_disco_fixture:opts(?config(fx, Config), k8s_huge),
         Url = "http://127.0.0.1:" ++ integer_to_list(Port),
         {ok, P} = plexus_discovery:start_link(Opts#{custom := C#{api_url => Url},
                                                     sync_interval_ms => 3600000,
                                                     sync_timeout_ms => 20000}),
         unlink(P),
         R = plexus_discovery:sync_now(k8s_huge),
         Server ! {sent, self()},
         Sent = receive {sent, N} -> N after 20000 -> timeout end,
         ok = plexus_discovery:stop(k8s_huge),
         exit(Server, kill),
         ct:pal("~p: ~p, ~p MB sent", [Framing, R, Sent]),
         ?assertEqual({error, {sync_failed, body_too_large}}, R),
         ?assert(is_integer(Sent) andalso Sent < 64)
     end || Framing <- [length, chunked]],
    plexus_disco_fixture:http_set(H, {200, endpoints_json([])}).

%% One connection: a 200 answer of Mb megabytes of spaces, sent until the client
%% stops reading; {sent, From} gets the megabytes that went out.
flood_server(Framing, Mb) ->
    {ok, L} = gen_tcp:listen(0, [binary, {ip, {127, 0, 0, 1}}, {active, false},
                                 {reuseaddr, true}]),
    {ok, Port} = inet:port(L),
    Pid = spawn(fun() ->
                        {ok, Sock} = gen_tcp:accept(L, 10000),
                        {ok, _Request} = gen_tcp:recv(Sock, 0, 10000),
                        Head = case Framing of
                                   length -> ["Content-Length: ", integer_to_list(Mb bsl 20)];
                                   chunked -> "Transfer-Encoding: chunked"
                               end,
                        ok = gen_tcp:send(Sock, ["HTTP/1.1 200 OK\r\nContent-Type: "
                                                 "application/json\r\n", Head, "\r\n\r\n"]),
                        Mib = binary:copy(<<" ">>, 1 bsl 20),
                        Frame = case Framing of
                                    length -> Mib;
                                    chunked -> ["100000\r\n", Mib, "\r\n"]
                                end,
                        Sent = flood(Sock, Frame, Mb, 0),
                        receive {sent, From} -> From ! {sent, Sent} end
                end),
    ok = gen_tcp:controlling_process(L, Pid),
    {Port, Pid}.

flood(_Sock, _Frame, Mb, Mb) -> Mb;
flood(Sock, Frame, Mb, N) ->
    case gen_tcp:send(Sock, Frame) of
        ok -> flood(Sock, Frame, Mb, N + 1);
        {error, _} -> N
    end.
