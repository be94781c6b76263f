%% @doc A stand-in for `plexus_cnode' with the two calls and the message shape the
%% `cnode' discovery adapter relies on (`subscribe() -> ok', `snapshot() ->
%% {ok, [#{node, status}]}', events `{plexus_cnode, {node_up | node_down, NodeBin,
%% Info}}'), driven by the test (`node_up/1', `node_down/1'). Registered as
%% `plexus_fake_cnode'.
-module(plexus_fake_cnode).

-export([start/0, stop/1, subscribe/0, snapshot/0, node_up/1, node_down/1]).

start() ->
    Pid = spawn(fun() -> register(?MODULE, self()), loop(#{}, []) end),
    ok = plexus_disco_fixture:wait(fun() -> whereis(?MODULE) =:= Pid end, 2000),
    {ok, Pid}.

stop(Pid) ->
    exit(Pid, kill),
    ok.

subscribe() -> call(subscribe).
snapshot() -> call(snapshot).
node_up(N) -> call({set, N, healthy}).
node_down(N) -> call({set, N, down}).

call(Req) ->
    Ref = make_ref(),
    ?MODULE ! {Req, self(), Ref},
    receive {Ref, R} -> R after 5000 -> exit(timeout) end.

loop(Nodes, Subs) ->
    receive
        {subscribe, From, Ref} ->
            From ! {Ref, ok},
            loop(Nodes, [From | Subs]);
        {snapshot, From, Ref} ->
            From ! {Ref, {ok, [#{node => N, status => S} || {N, S} <- maps:to_list(Nodes)]}},
            loop(Nodes, Subs);
        {{set, N, S}, From, Ref} ->
            Ev = case S of
                     healthy -> {node_up, N, #{ts => erlang:system_time(millisecond)}};
                     down -> {node_down, N, #{reason => connection_closed}}
                 end,
            [P ! {plexus_cnode, Ev} || P <- Subs],
            From ! {Ref, ok},
            loop(Nodes#{N => S}, Subs)
    end.
