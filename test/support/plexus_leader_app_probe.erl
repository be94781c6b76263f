%% @doc An application callback module for plexus_leader_data_dir_tests: the
%% application it starts runs one `plexus_leader' (callback `plexus_leader_minimal'),
%% so the leader's group leader is that application's master, as for a leader in a
%% real application's supervision tree. Start argument: `{Name, Opts}'.
-module(plexus_leader_app_probe).
-behaviour(application).

-export([start/2, stop/1]).

-spec start(application:start_type(), {atom(), map()}) -> {ok, pid()} | {error, term()}.
start(_Type, {Name, Opts}) ->
    case plexus_leader:start_link(Name, plexus_leader_minimal, state, Opts) of
        {ok, Pid} -> {ok, Pid};
        ignore -> {error, ignore};
        {error, _} = E -> E
    end.

-spec stop(term()) -> ok.
stop(_) -> ok.
