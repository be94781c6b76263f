%% @doc Test helpers for the C node and monitor suites: BEAM nodes and C nodes as OS
%% processes on loopback, so tests can kill -9, SIGSTOP and SIGCONT them by pid.
%%
%% Everything is 127.0.0.1: nodes are named `x@127.0.0.1' (longnames), bind distribution
%% to loopback, and epmd (started here if absent) listens on 127.0.0.1 only. Every
%% process started here is stopped by its pid; every wait is bounded.
-module(plexus_test_nodes).

-export([ensure_distributed/1, private_cookie/0, restore_cookie/1, start_node/2, start_node/3, stop_node/1, os_kill/2,
         cnode_exe/0, start_cnode/2, stop_cnode/1, cnode_events/1, await_event/4,
         await_event/5, cnode_exit/2, cookie_file/2, ebin_dirs/0, code_path_args/0,
         cnode_suite_init/2, cnode_suite_end/1, wait_until/2]).

-define(HOST, "127.0.0.1").

%% @doc Makes the test node distributed as Name@127.0.0.1 (starting epmd on loopback).
ensure_distributed(Name) ->
    os:putenv("ERL_EPMD_ADDRESS", ?HOST),
    case node() of
        nonode@nohost ->
            _ = os:cmd("ERL_EPMD_ADDRESS=127.0.0.1 epmd -daemon"),
            wait_until(fun() -> os:cmd("epmd -names") =/= [] andalso
                                    string:find(os:cmd("epmd -names"), "up and running") =/= nomatch
                       end, 5000),
            ok = application:set_env(kernel, inet_dist_use_interface, {127, 0, 0, 1}),
            {ok, _} = net_kernel:start([list_to_atom(Name ++ "@" ++ ?HOST), longnames]),
            ok;
        _ ->
            ok
    end,
    erlang:get_cookie().

%% @doc Switches this node to a fresh random cookie, so the nodes a suite starts (and
%% its C nodes) never talk to other nodes on this machine. Returns {New, Old}.
private_cookie() ->
    Old = erlang:get_cookie(),
    New = list_to_atom("plexus_test_" ++ integer_to_list(erlang:unique_integer([positive]))
                       ++ "_" ++ os:getpid() ++ "_" ++ integer_to_list(rand:uniform(1 bsl 40))),
    true = erlang:set_cookie(New),
    {New, Old}.

restore_cookie(Old) ->
    true = erlang:set_cookie(Old),
    ok.

%% @doc The code every node a test starts needs, in code path order: the application's
%% ebin first (its plexus_nif is the one whose on_load finds priv/ and the NIF), then
%% each test output folder that exists next to this module's (support, ct, eunit, prop:
%% test/README.md), so a peer can call the suites' own helper modules.
-spec ebin_dirs() -> [file:filename()].
ebin_dirs() ->
    %% absolute: a node may start in another working directory
    Here = filename:absname(filename:dirname(code:which(?MODULE))),
    Tests = [D || K <- ["support", "ct", "eunit", "prop"],
                  filelib:is_dir(D = filename:join(filename:dirname(Here), K))],
    App = filename:absname(filename:join(code:lib_dir(plexus), "ebin")),
    [App | lists:usort([Here | Tests]) -- [App]].

%% @doc `erl' arguments that put ebin_dirs/0 in front of a new node's code path, in
%% that order: each `-pa' goes to the front in turn, so the last one given comes first.
-spec code_path_args() -> [string()].
code_path_args() ->
    lists:append([["-pa", D] || D <- lists:reverse(ebin_dirs())]).

%% @doc The init_per_suite of the C node suites: this node distributed as Name, a
%% private cookie (the old one kept for cnode_suite_end/1), skip without the C node.
-spec cnode_suite_init(string(), list()) -> list() | {skip, string()}.
cnode_suite_init(Name, Config) ->
    _ = ensure_distributed(Name),
    case filelib:is_regular(cnode_exe()) of
        true ->
            {Cookie, Old} = private_cookie(),
            [{cookie, Cookie}, {old_cookie, Old} | Config];
        false ->
            {skip, "priv/plexus_cnode not built (make nif)"}
    end.

-spec cnode_suite_end(list()) -> ok.
cnode_suite_end(Config) ->
    case lists:keyfind(old_cookie, 1, Config) of
        {old_cookie, Old} -> restore_cookie(Old);
        false -> ok
    end.

%% @doc Starts a BEAM node as an OS process: {Node, Port, OsPid}.
start_node(Name, Cookie) -> start_node(Name, Cookie, []).

start_node(Name, Cookie, Extra) ->
    Erl = os:find_executable("erl"),
    Node = list_to_atom(Name ++ "@" ++ ?HOST),
    %% The cookie reaches the node through $HOME/.erlang.cookie, never argv.
    Home = cookie_home(Cookie),
    Args = ["-noshell", "-name", atom_to_list(Node),
            "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
            "-kernel", "prevent_overlapping_partitions", "false",
            %% stdin closes when this VM dies: the node halts, so none outlives a run
            "-eval", "spawn(fun() -> F = fun L() -> case io:get_line('') of "
                     "eof -> erlang:halt(); {error, _} -> erlang:halt(); _ -> L() end end, "
                     "F() end)"]
        ++ code_path_args() ++ Extra,
    %% The port belongs to a process of its own (not the caller, which may be a
    %% short-lived init_per_group process): closing it would stop the node.
    Owner = spawn(fun() ->
                          Port = open_port({spawn_executable, Erl},
                                           [{args, Args}, exit_status, stderr_to_stdout,
                                            {line, 4096},
                                            {env, [{"ERL_EPMD_ADDRESS", ?HOST}, {"HOME", Home}]}]),
                          own(Port)
                  end),
    ok = wait_until(fun() -> net_adm:ping(Node) =:= pong end, 15000),
    OsPid = list_to_integer(rpc:call(Node, os, getpid, [])),
    {Node, Owner, OsPid}.

%% A private home directory whose .erlang.cookie (mode 0400) holds Cookie.
cookie_home(Cookie) ->
    Dir = filename:join(tmp_dir(), "plexus_test_home_" ++ os:getpid() ++ "_" ++
                            integer_to_list(erlang:phash2(Cookie))),
    File = filename:join(Dir, ".erlang.cookie"),
    case file:read_file(File) of
        {ok, _} -> ok;
        _ ->
            ok = filelib:ensure_dir(File),
            ok = file:write_file(File, atom_to_list(Cookie)),
            ok = file:change_mode(File, 8#400)
    end,
    Dir.

tmp_dir() ->
    case os:getenv("TMPDIR") of
        false -> "/tmp";
        T -> T
    end.

own(Port) ->
    receive
        {Port, {exit_status, _}} -> own_exited();
        {Port, _} -> own(Port);
        {stop, From} ->
            receive {Port, {exit_status, _}} -> ok after 5000 -> ok end,
            From ! {stopped, self()}
    end.

own_exited() ->
    receive {stop, From} -> From ! {stopped, self()} end.

%% @doc SIGKILL by pid (also SIGCONT first, in case it is stopped).
stop_node({_Node, Owner, OsPid}) ->
    os_kill(OsPid, "CONT"),
    os_kill(OsPid, "KILL"),
    Owner ! {stop, self()},
    receive {stopped, Owner} -> ok after 6000 -> ok end.

os_kill(OsPid, Sig) when is_integer(OsPid) ->
    _ = os:cmd("kill -" ++ Sig ++ " " ++ integer_to_list(OsPid) ++ " 2>/dev/null"),
    ok.

cnode_exe() ->
    filename:join(code:priv_dir(plexus), "plexus_cnode").

%% @doc A cookie file with the given mode; returns its path.
cookie_file(Dir, {Cookie, Mode}) ->
    Path = filename:join(Dir, "cookie-" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = file:write_file(Path, Cookie),
    ok = file:change_mode(Path, Mode),
    Path.

%% @doc Starts priv/plexus_cnode with Args and Env (the cookie goes in Env or a file),
%% owned by a collector process that records its output lines. Returns the collector.
start_cnode(Args, Env) ->
    Parent = self(),
    Pid = spawn(fun() ->
                        Port = open_port({spawn_executable, cnode_exe()},
                                         [{args, Args ++ ["--exit-on-stdin-eof"]}, {env, [{"ERL_EPMD_ADDRESS", ?HOST} | Env]},
                                          exit_status, {line, 65536}, stderr_to_stdout,
                                          binary]),
                        {os_pid, OsPid} = erlang:port_info(Port, os_pid),
                        Parent ! {self(), started, OsPid},
                        collect(Port, OsPid, [], undefined)
                end),
    receive {Pid, started, OsPid} -> {Pid, OsPid} after 5000 -> error(cnode_start) end.

collect(Port, OsPid, Lines, Exit) -> collect(Port, OsPid, Lines, Exit, undefined).

%% Keeps answering `lines' after the daemon exited, so a test can read its last words.
collect(Port, OsPid, Lines, Exit, Stopper) ->
    receive
        {Port, {data, {eol, L}}} ->
            collect(Port, OsPid, [{erlang:monotonic_time(millisecond), L} | Lines], Exit, Stopper);
        {Port, {data, {noeol, _}}} ->
            collect(Port, OsPid, Lines, Exit, Stopper);
        {Port, {exit_status, S}} ->
            Stopper =/= undefined andalso (Stopper ! {stopped, self(), S}),
            collect(Port, OsPid, Lines, S, undefined);
        {lines, From} ->
            From ! {lines, self(), lists:reverse(Lines), Exit},
            collect(Port, OsPid, Lines, Exit, Stopper);
        {stop, From} when Exit =/= undefined ->
            From ! {stopped, self(), Exit},
            collect(Port, OsPid, Lines, Exit, Stopper);
        {stop, From} ->
            os_kill(OsPid, "TERM"),
            erlang:send_after(10000, self(), {kill, OsPid}),
            collect(Port, OsPid, Lines, Exit, From);
        {kill, OsPid} when Exit =:= undefined ->
            os_kill(OsPid, "KILL"),
            collect(Port, OsPid, Lines, Exit, Stopper);
        {kill, _} ->
            collect(Port, OsPid, Lines, Exit, Stopper)
    end.

%% @doc Stops the C node with SIGTERM (by pid); returns its exit status.
stop_cnode({Pid, _OsPid}) ->
    Pid ! {stop, self()},
    receive {stopped, Pid, S} -> S after 15000 -> timeout end.

%% @doc [{MonotonicMs, EventName, NodeBin, Line}] of the JSON lines so far, and the
%% exit status (undefined while running).
cnode_events({Pid, _}) ->
    Pid ! {lines, self()},
    receive
        {lines, Pid, Lines, Exit} ->
            {[{T, E, N, L} || {T, L} <- Lines,
                              {match, [E, N]} <- [re:run(L, "^\\{\"event\":\"([a-z_]+)\",\"node\":\"([^\"]+)\"",
                                                         [{capture, all_but_first, binary}])]],
             [L || {_, L} <- Lines], Exit}
    after 5000 -> error(collector_timeout)
    end.

%% @doc Waits (bounded) for Event about Node after time Since; returns its line's time.
await_event(C, Event, Node, TimeoutMs) ->
    await_event(C, Event, Node, TimeoutMs, erlang:monotonic_time(millisecond) - (1 bsl 40)).

await_event(C, Event, Node, TimeoutMs, Since) ->
    E = atom_to_binary(Event, utf8),
    N = if is_atom(Node) -> atom_to_binary(Node, utf8); true -> Node end,
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    await_loop(C, E, N, Since, Deadline).

await_loop(C, E, N, Since, Deadline) ->
    {Evs, Lines, _} = cnode_events(C),
    case [{T, L} || {T, E1, N1, L} <- Evs, E1 =:= E, N1 =:= N, T >= Since] of
        [{T, L} | _] -> {ok, T, L};
        [] ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> {error, {no_event, E, N, lists:sublist(lists:reverse(Lines), 12)}};
                false -> timer:sleep(20), await_loop(C, E, N, Since, Deadline)
            end
    end.

%% @doc Waits (bounded) for the C node to exit by itself: {Status, OutputLines}.
cnode_exit(C, TimeoutMs) ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    exit_loop(C, Deadline).

exit_loop(C, Deadline) ->
    case cnode_events(C) of
        {_, Lines, S} when S =/= undefined -> {S, Lines};
        {_, Lines, undefined} ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> {timeout, Lines};
                false -> timer:sleep(50), exit_loop(C, Deadline)
            end
    end.

%% @doc Polls Fun until true, at most TimeoutMs: ok | timeout.
wait_until(Fun, TimeoutMs) ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    wait_loop(Fun, Deadline).

wait_loop(Fun, Deadline) ->
    case catch Fun() of
        true -> ok;
        _ ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> timeout;
                false -> timer:sleep(50), wait_loop(Fun, Deadline)
            end
    end.
