%% @doc The plexus OTP application. It starts with no configuration: the CRDT modules
%% (`plexus_orset', `plexus_lww') are pure functions over binaries and need no process;
%% the supervisor (`plexus_sup') runs the default discovery server and what the
%% application env configures.
-module(plexus_app).
-behaviour(application).

-export([start/2, stop/1]).

%% @doc Starts the top supervisor.
-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    ok = plexus_telemetry:setup(),   % so events find an installed telemetry
    plexus_sup:start_link().

%% @doc Nothing to clean up.
-spec stop(term()) -> ok.
stop(_State) ->
    ok.
