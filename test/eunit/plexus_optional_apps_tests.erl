%% inets, ssl, public_key and telemetry are optional applications of plexus (issue
%% 11): on a host without inets (and, here, without telemetry), plexus still starts, and the kubernetes adapter, the one user of
%% inets, says `{missing_application, inets}' instead of `invalid_configuration'.
%% "Without inets" is a peer VM (stdio connection, no distribution, no network) whose
%% code path has inets removed.
-module(plexus_optional_apps_tests).
-include_lib("eunit/include/eunit.hrl").
-export([optional_apps/0, start_discovery/0]). % run in the peer

-define(K8S_CONFIG, #{service => <<"svc">>, basename => <<"app">>,
                      namespace => <<"default">>, api_url => "http://127.0.0.1:1"}).

without_inets_test_() ->
    {setup, fun start_peer_without_inets/0, fun stop_peer/1,
     fun(Peer) ->
             [{"the app resource declares them optional",
               ?_assertEqual({ok, [inets, ssl, public_key, telemetry]},
                             peer:call(Peer, ?MODULE, optional_apps, []))},
              {"plexus starts without inets",
               ?_assertMatch({ok, _},
                             peer:call(Peer, application, ensure_all_started, [plexus]))},
              {"the kubernetes adapter names the missing application",
               ?_assertEqual({error, {missing_application, inets}},
                             peer:call(Peer, plexus_discovery_kubernetes, init,
                                       [#{custom => ?K8S_CONFIG}]))},
              {"the facade reports it as a start failure",
               ?_assertEqual({error, {start_failed, {missing_application, inets}}},
                             peer:call(Peer, ?MODULE, start_discovery, []))}]
     end}.

%% A bad option is still a configuration error, whatever is installed.
bad_option_still_invalid_configuration_test() ->
    ?assertMatch({error, {invalid_configuration, {kubernetes, _}}},
                 plexus_discovery_kubernetes:init(
                   #{custom => maps:put(mode, sideways, ?K8S_CONFIG)})).

start_peer_without_inets() ->
    %% The app's ebin (for plexus.app) and the test folders (this module).
    {ok, Peer, _} = peer:start_link(#{connection => standard_io,
                                   args => plexus_test_nodes:code_path_args()}),
    true = peer:call(Peer, code, del_path, [inets]),
    non_existing = peer:call(Peer, code, where_is_file, ["inets.app"]),
    Peer.

stop_peer(Peer) ->
    peer:stop(Peer).

%% Called in the peer.
optional_apps() ->
    ok = application:load(plexus),
    {ok, [{application, plexus, Props}]} = file:consult(code:where_is_file("plexus.app")),
    {ok, proplists:get_value(optional_applications, Props)}.

%% Called in the peer: start_link links, so trap the exit of the failed start.
start_discovery() ->
    process_flag(trap_exit, true),
    plexus_discovery:start_link(#{name => pk_optional_apps_disco, adapter => kubernetes,
                                  custom => ?K8S_CONFIG}).
