%% @doc The smallest `plexus_leader' callback module: `init/1' only (every other
%% callback is optional). Used by plexus_leader_tests.
-module(plexus_leader_minimal).
-behaviour(plexus_leader).

-export([init/1]).

init(State) -> {ok, State}.
