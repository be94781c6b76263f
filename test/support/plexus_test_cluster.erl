%% @doc Loopback clusters of real BEAM nodes for the election tests and benchmark.
%%
%% Nodes are OTP `peer' nodes named `x@127.0.0.1' (long names, distribution bound to
%% 127.0.0.1). They are controlled over their standard input/output, not over
%% distribution, so the controlling node is not part of the cluster it tests and
%% cannot bridge a partition. `-connect_all false' and
%% `prevent_overlapping_partitions false' keep `global' from connecting or
%% disconnecting nodes behind the test's back.
%%
%% Two modes:
%% <ul>
%% <li>`auto': the kernel's default `dist_auto_connect'; nodes find each other when
%%     `plexus_leader' first sends to them;</li>
%% <li>`manual': `-kernel dist_auto_connect never'. `mesh/1' connects every pair
%%     explicitly; after `erlang:disconnect_node/1' nothing reconnects by itself, so
%%     `partition/2' holds until `heal/2' connects the pairs again.</li>
%% </ul>
%% Every node started is remembered by a small holder process so that `stop_all/0'
%% (called from `end_per_testcase') stops them even when a test failed half-way.
-module(plexus_test_cluster).

-export([start/2, start/3, start_one/2, stop/1, stop_all/0, call/4, call/5, nodes_of/1]).
-export([mesh/1, partition/2, heal/2, connected/1]).
-export([start_leaders/3, start_leader/4, infos/2, agreed_leader/2, wait_until/2, now_ms/0]).

-define(HOLDER, plexus_test_cluster_holder).

%% ------------------------------------------------------------------ nodes

%% @doc Starts one node per name, in parallel: `[{Peer, Node}]' in the names' order.
-spec start([atom()], auto | manual) -> [{pid(), node()}].
start(Names, Mode) ->
    start(Names, Mode, []).

%% @doc As start/2, with extra command-line arguments for every node.
-spec start([atom()], auto | manual, [string()]) -> [{pid(), node()}].
start(Names, Mode, Extra) ->
    Self = self(),
    Pids = [spawn(fun() -> Self ! {started, Name, catch start_one(Name, Mode, Extra, 50)} end)
            || Name <- Names],
    Results = [receive {started, Name, R} -> R after 60000 -> {error, {timeout, Name}} end
               || Name <- Names],
    _ = Pids,
    case [R || R <- Results, not is_tuple(R) orelse not is_pid(element(1, R))] of
        [] -> Results;
        Bad -> error({peer_start_failed, Bad})
    end.

%% @doc Starts one node (retrying while epmd still holds a name just released).
-spec start_one(atom(), auto | manual) -> {pid(), node()}.
start_one(Name, Mode) ->
    start_one(Name, Mode, [], 50).

start_one(Name, Mode, Extra, Tries) ->
    os:putenv("ERL_EPMD_ADDRESS", "127.0.0.1"),
    Args = plexus_test_nodes:code_path_args() ++
        ["-kernel", "inet_dist_use_interface", "{127,0,0,1}",
         "-kernel", "prevent_overlapping_partitions", "false",
         "-connect_all", "false"] ++
        case Mode of
            manual -> ["-kernel", "dist_auto_connect", "never"];
            auto -> []
        end ++ Extra,
    case peer:start(#{name => Name, host => "127.0.0.1", longnames => true,
                      connection => standard_io, args => Args}) of
        {ok, P, N} ->
            remember(P),
            {P, N};
        {error, _} when Tries > 0 ->
            timer:sleep(100),
            start_one(Name, Mode, Extra, Tries - 1);
        {error, R} ->
            error({peer_start_failed, Name, R})
    end.

%% @doc Stops nodes (halts them): `[{Peer, Node}]' or peers.
-spec stop([{pid(), node()}] | pid()) -> ok.
stop(L) when is_list(L) -> lists:foreach(fun stop/1, L);
stop({P, _}) -> stop(P);
stop(P) when is_pid(P) ->
    _ = catch peer:stop(P),
    ok.

%% @doc Stops every node this module started in this VM.
-spec stop_all() -> ok.
stop_all() ->
    case whereis(?HOLDER) of
        undefined -> ok;
        H ->
            H ! {take, self()},
            receive {peers, Ps} -> stop(Ps) after 5000 -> ok end
    end.

remember(P) ->
    H = case whereis(?HOLDER) of
            undefined ->
                Pid = spawn(fun() -> holder([]) end),
                try register(?HOLDER, Pid), Pid
                catch error:badarg -> exit(Pid, kill), whereis(?HOLDER)
                end;
            Pid -> Pid
        end,
    H ! {add, P},
    ok.

holder(Ps) ->
    receive
        {add, P} -> holder([P | Ps]);
        {take, From} -> From ! {peers, Ps}, holder([])
    end.

-spec call(pid() | {pid(), node()}, module(), atom(), list()) -> term().
call(P, M, F, A) -> call(P, M, F, A, 10000).

-spec call(pid() | {pid(), node()}, module(), atom(), list(), timeout()) -> term().
call({P, _}, M, F, A, T) -> call(P, M, F, A, T);
call(P, M, F, A, T) -> peer:call(P, M, F, A, T).

nodes_of(Peers) -> [N || {_, N} <- Peers].

%% ------------------------------------------------------------------ connectivity

%% @doc Connects every pair and waits until each node sees all the others.
-spec mesh([{pid(), node()}]) -> ok.
mesh(Peers) ->
    connect_all(Peers, Peers),
    {ok, _, _} = wait_until(fun() -> connected(Peers) end, 10000),
    ok.

connect_all(From, To) ->
    [true = call(P, net_kernel, connect_node, [M]) || {P, N} <- From, M <- nodes_of(To), M =/= N],
    ok.

%% @doc Whether every node sees every other one.
-spec connected([{pid(), node()}]) -> boolean().
connected(Peers) ->
    All = nodes_of(Peers),
    lists:all(fun({P, N}) -> (All -- [N]) -- call(P, erlang, nodes, []) =:= [] end, Peers).

%% @doc Cuts every connection between the two groups (manual mode: nothing reconnects).
-spec partition([{pid(), node()}], [{pid(), node()}]) -> ok.
partition(Minority, Majority) ->
    [call(P, erlang, disconnect_node, [M]) || {P, _} <- Minority, M <- nodes_of(Majority)],
    ok.

%% @doc Connects the two groups again and waits for the full mesh.
-spec heal([{pid(), node()}], [{pid(), node()}]) -> ok.
heal(Minority, Majority) ->
    connect_all(Minority, Majority),
    {ok, _, _} = wait_until(fun() -> connected(Minority ++ Majority) end, 10000),
    ok.

%% ------------------------------------------------------------------ plexus_leader

%% @doc Starts `plexus_leader' `Name' (callback `plexus_leader_probe') on every node,
%% with `bootstrap' = all of them.
-spec start_leaders([{pid(), node()}], atom(), map()) -> ok.
start_leaders(Peers, Name, Opts) ->
    Boot = nodes_of(Peers),
    [{ok, _} = start_leader(P, Name, Opts#{bootstrap => Boot}, #{}) || P <- Peers],
    ok.

-spec start_leader(pid() | {pid(), node()}, atom(), map(), map()) -> {ok, pid()} | term().
start_leader(P, Name, Opts, ProbeArgs) ->
    %% start/4, not start_link/4: peer:call runs in a short-lived process
    call(P, plexus_leader, start, [Name, plexus_leader_probe, ProbeArgs, Opts]).

%% @doc `{Node, Info}' of each node's process (`down' for a node that does not answer).
-spec infos([{pid(), node()}], atom()) -> [{node(), map() | down}].
infos(Peers, Name) ->
    [{N, try call(P, plexus_leader, info, [Name], 2000) catch _:_ -> down end}
     || {P, N} <- Peers].

%% @doc `{ok, LeaderNode, Term}' when every node names the same leader, that node is
%% the only one in the role, and all are in its term; otherwise `false'.
-spec agreed_leader([{pid(), node()}], atom()) -> {ok, node(), non_neg_integer()} | false.
agreed_leader(Peers, Name) ->
    Is = infos(Peers, Name),
    case lists:usort([{maps:get(leader_node, I), maps:get(term, I)} || {_, I} <- Is,
                                                                     is_map(I)]) of
        [{L, T}] when L =/= undefined, length(Is) =:= length(Peers) ->
            Leaders = [N || {N, #{role := leader}} <- Is],
            case Leaders of
                [L] -> {ok, L, T};
                _ -> false
            end;
        _ ->
            false
    end.

%% @doc Polls `F' every 5 ms until it returns something other than `false':
%% `{ok, Value, ElapsedMs}' or `timeout'.
-spec wait_until(fun(() -> term()), non_neg_integer()) -> {ok, term(), integer()} | timeout.
wait_until(F, TimeoutMs) ->
    T0 = now_ms(),
    wait_until(F, T0, T0 + TimeoutMs).

wait_until(F, T0, Deadline) ->
    case F() of
        false ->
            case now_ms() > Deadline of
                true -> timeout;
                false -> timer:sleep(5), wait_until(F, T0, Deadline)
            end;
        V ->
            {ok, V, now_ms() - T0}
    end.

now_ms() -> erlang:monotonic_time(millisecond).
