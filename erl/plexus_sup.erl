%% @doc The plexus top supervisor: one_for_one, no children yet.
-module(plexus_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).

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

%% Discovery runs only when configured (the app needs no configuration):
%% `{plexus, [{registry, Opts}]}' starts a TTL registry server (plexus_registry:start_link/1
%% options) and `{plexus, [{discovery, Opts | [Opts]}]}' one discovery facade per map
%% (plexus_discovery:start_link/1 options, each with its own `name').
discovery_children() ->
    Registry = case application:get_env(plexus, registry) of
                   {ok, R} when is_map(R) -> [plexus_registry:child_spec(R)];
                   _ -> []
               end,
    Discovery = case application:get_env(plexus, discovery) of
                    {ok, D} when is_map(D) -> [plexus_discovery:child_spec(D)];
                    {ok, L} when is_list(L) -> [plexus_discovery:child_spec(D) || D <- L, is_map(D)];
                    _ -> []
                end,
    Registry ++ Discovery.
