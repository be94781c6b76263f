%% @doc Kubernetes discovery against a loopback HTTP server (plexus_disco_fixture)
%% serving recorded Endpoints responses: the service-account token goes in the
%% Authorization header to the documented path; ready addresses only; hostname mode;
%% a wrong token (401), an error status, malformed or hostile JSON and a dead API
%% server each fail the sync (health degrades) without losing a peer, crashing or
%% making atoms.
-module(plexus_disco_kubernetes_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([token_path_and_ready_addresses/1, hostname_mode/1, bad_responses/1,
         endpoints_parsing/1]).

all() -> [token_path_and_ready_addresses, hostname_mode, bad_responses, endpoints_parsing].

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
