%% @doc The plexus OTP application. It starts with no configuration: the CRDT modules
%% (`plexus_orset', `plexus_lww') are pure functions over plain terms and binaries and
%% need no process; the supervisor is where the membership and election processes will
%% live.
-module(plexus_app).
-behaviour(application).

-export([start/2, stop/1]).

%% @doc Starts the top supervisor.
-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    plexus_sup:start_link().

%% @doc Nothing to clean up.
-spec stop(term()) -> ok.
stop(_State) ->
    ok.
