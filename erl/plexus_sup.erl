%% @doc The plexus top supervisor, one_for_one: the default discovery facade (unless
%% configured off), and the registry and topology servers when configured.
-module(plexus_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).
-export([discovery_config/1]).

%% @doc Starts the supervisor, registered as `plexus_sup'.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @private
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, topology_children() ++ discovery_children()}}.

%% plexus_topology runs only when configured: `{plexus, [{topology, true | Opts}]}'
%% (Opts as plexus_topology:start_link/1 takes them).
topology_children() ->
    case application:get_env(plexus, topology) of
        {ok, true} -> [plexus_topology:child_spec([])];
        {ok, Opts} when is_list(Opts); is_map(Opts) -> [plexus_topology:child_spec(Opts)];
        _ -> []
    end.

%% A discovery facade runs by default, so that `plexus_discovery:snapshot()' answers
%% as soon as the app is up (before, it said `{sync_failed, not_running}', which is
%% no transient error): the `beam' adapter under the default name, which also works on
%% a node that is not distributed (no peers). `{plexus, [{discovery, false}]}' starts
%% none; `{discovery, Opts | [Opts]}' starts one facade per map or keyword list
%% instead (plexus_discovery:start_link/1 options, each with its own `name');
%% `{discovery, true}' is the default. `{plexus, [{registry, Opts}]}' starts a TTL
%% registry server (plexus_registry:start_link/1 options).
discovery_children() ->
    Registry = case application:get_env(plexus, registry) of
                   {ok, R} when is_map(R) -> [plexus_registry:child_spec(R)];
                   _ -> []
               end,
    Registry ++ [plexus_discovery:child_spec(D)
                 || D <- discovery_config(application:get_env(plexus, discovery))].

%% @private
%% The discovery servers to start, as child_spec/1 options, for the `discovery' env.
-spec discovery_config(undefined | {ok, term()}) -> [map() | list()].
discovery_config(undefined) -> [#{}];
discovery_config({ok, true}) -> [#{}];
discovery_config({ok, false}) -> [];
discovery_config({ok, M}) when is_map(M) -> [M];
discovery_config({ok, []}) -> [#{}];
discovery_config({ok, [{_, _} | _] = KeywordList}) -> [KeywordList];
discovery_config({ok, L}) when is_list(L) -> L;
discovery_config({ok, Other}) -> erlang:error({bad_options, {discovery, Other}}).
