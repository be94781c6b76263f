%% @doc The C node (`priv/plexus_cnode', doc/DESIGN.md §4) from Erlang.
%%
%% Two modes:
%% <ul>
%% <li>`port' (default): starts the daemon as a supervised port program named
%%   `plexus_cnode_<ospid>@<our host>', seeded with this node, with this node's cookie
%%   passed in the environment (never in argv). If the daemon exits, this process stops
%%   and its supervisor restarts both; if this VM dies, the daemon sees its stdin close
%%   and stops too.</li>
%% <li>`attach': talks to a daemon that is already running (`node' option).</li>
%% </ul>
%% Either way this process subscribes to the daemon (one subscriber there, however many
%% here: local subscribers are monitored by this process, so an exited one costs the
%% daemon nothing) and passes every event on to its own subscribers as
%% `{plexus_cnode, Event}':
%% `{node_up | node_down | suspect | healthy, NodeBin, #{ts := Ms, ...}}' and, for
%% subscribers that asked for `[answers]', `{answer, NodeBin, #{rtt_us := Us, ...}}'.
%% Node names are binaries: nothing from the network becomes an atom here. Each node
%% event is also emitted as `[plexus, cnode, Kind]' (`plexus_telemetry').
%%
%% Both modes need this node to be distributed (the daemon is reached over Erlang
%% distribution).
-module(plexus_cnode).
-behaviour(gen_server).

-export([start_link/0, start_link/1, child_spec/1, stop/0]).
-export([subscribe/0, subscribe/1, unsubscribe/0, snapshot/0, health/1, stats/0,
         gossip_peers/0, registry_view/0, registry_view/1, cnode/0, os_pid/0]).
-export([executable/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-type node_id() :: binary().
-type health() :: #{node := node_id(), status := healthy | suspect | down | connecting,
                    connected := boolean(), since_ms := non_neg_integer(),
                    answers := non_neg_integer(), samples := non_neg_integer(),
                    rtt_last_us := non_neg_integer(), rtt_avg_us := non_neg_integer(),
                    rtt_p50_us := non_neg_integer(), rtt_p99_us := non_neg_integer(),
                    rtt_max_us := non_neg_integer()}.
-type opts() :: #{mode => port | attach,
                  node => node(),
                  seeds => [node()],
                  ping_interval_ms => pos_integer(),
                  suspect_after_ms => pos_integer(),
                  down_after_ms => pos_integer(),
                  discovery_interval_ms => pos_integer(),
                  extra_args => [string()],
                  executable => file:filename(),
                  ready_timeout_ms => pos_integer(),
                  call_timeout_ms => pos_integer()}.
-export_type([health/0, opts/0, node_id/0]).

-define(SERVER, ?MODULE).
%% The keys of opts().
-define(OPTIONS, [mode, node, seeds, ping_interval_ms, suspect_after_ms, down_after_ms,
                  discovery_interval_ms, extra_args, executable, ready_timeout_ms,
                  call_timeout_ms]).
-define(REG, plexus_cnode). %% the daemon's registered name

-record(st, {mode :: port | attach,
             port :: port() | undefined,
             os_pid :: non_neg_integer() | undefined,
             cnode :: node(),
             ready = false :: boolean(),
             waiting = [] :: [gen_server:from()],
             subs = #{} :: #{pid() => {reference(), boolean()}},
             timeout :: pos_integer(),
             ready_timer :: reference() | undefined}).

%% ------------------------------------------------------------------ API

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() -> start_link(#{}).

%% @doc Starts the daemon (port mode) or attaches to one (`#{mode => attach, node => N}').
%% Returns once the daemon accepts connections, or `{error, Reason}' with the daemon's
%% own message (bad cookie, no epmd, ...). Options are a map or a keyword list
%% (`[]' for the defaults); `{error, {invalid_configuration, {bad_options, Opts}}}' when
%% they are neither, `{error, {invalid_configuration, {unknown_option, Key}}}' for an
%% option it does not know.
-spec start_link(opts() | proplists:proplist()) -> {ok, pid()} | {error, term()}.
start_link(Opts0) ->
    case plexus_opts:to_map(Opts0) of
        {ok, Opts} ->
            case plexus_opts:unknown(Opts, ?OPTIONS) of
                none -> gen_server:start_link({local, ?SERVER}, ?MODULE, Opts, []);
                Unknown -> {error, {invalid_configuration, Unknown}}
            end;
        {error, R} ->
            {error, {invalid_configuration, R}}
    end.

%% @doc A supervisor child spec (options as for `start_link/1'); raises
%% `error({bad_options, Opts})' for anything else.
-spec child_spec(opts() | proplists:proplist()) -> supervisor:child_spec().
child_spec(Opts0) ->
    Opts = plexus_opts:to_map_or_error(Opts0),
    #{id => ?MODULE, start => {?MODULE, start_link, [Opts]}, restart => permanent,
      shutdown => 5000, type => worker, modules => [?MODULE]}.

-spec stop() -> ok.
stop() -> gen_server:stop(?SERVER).

%% @doc Events as `{plexus_cnode, Event}' to the caller until it exits or unsubscribes.
-spec subscribe() -> ok.
subscribe() -> subscribe([]).

%% @doc `subscribe([answers])' also delivers every ping answer with its RTT.
-spec subscribe([answers]) -> ok.
subscribe(Opts) when is_list(Opts) ->
    gen_server:call(?SERVER, {subscribe, self(), lists:member(answers, Opts)}).

-spec unsubscribe() -> ok.
unsubscribe() -> gen_server:call(?SERVER, {unsubscribe, self()}).

%% @doc Every node the daemon knows, with its health.
-spec snapshot() -> {ok, [health()]} | {error, term()}.
snapshot() -> cnode_call(snapshot).

%% @doc One node's health; `Node' an atom or a binary.
-spec health(node() | binary()) -> {ok, health()} | {error, not_found | term()}.
health(Node) when is_atom(Node) -> health(atom_to_binary(Node, utf8));
health(Node) when is_binary(Node) -> cnode_call({health, Node});
health(_) -> erlang:error(badarg).

%% @doc The daemon's counters (peers, connected, malformed packets dropped, oversize
%% packets skipped, subscribers and `subscriber_table => #{count, max, refused_full,
%% dropped_exited, dropped_nodedown, ...}', ...).
-spec stats() -> {ok, map()} | {error, term()}.
stats() -> cnode_call(stats).

%% @doc The peers the daemon hears by gossip beacons (`--gossip'):
%% `{ok, [#{node, source, metadata, incarnation, last_seen_ms}]}', or
%% `{error, not_enabled}'.
-spec gossip_peers() -> {ok, [map()]} | {error, term()}.
gossip_peers() -> cnode_call(gossip_peers).

%% @doc The live entries of the registry the daemon hosts (`--registry'), as
%% `plexus_registry:current_view/1' returns them (at most 10,000: a random sample
%% beyond), or `{error, not_enabled}'.
-spec registry_view() -> {ok, [plexus_registry:entry()]} | {error, term()}.
registry_view() -> cnode_call(registry_view).

%% @doc As `registry_view/0' with at most Max entries.
-spec registry_view(pos_integer()) -> {ok, [plexus_registry:entry()]} | {error, term()}.
registry_view(Max) when is_integer(Max), Max > 0 -> cnode_call({registry_view, Max}).

%% @doc The daemon's node name.
-spec cnode() -> node().
cnode() -> gen_server:call(?SERVER, cnode).

%% @doc The daemon's OS pid in port mode, `undefined' when attached.
-spec os_pid() -> non_neg_integer() | undefined.
os_pid() -> gen_server:call(?SERVER, os_pid).

%% @doc Path of priv/plexus_cnode.
-spec executable() -> file:filename().
executable() ->
    Priv = case code:priv_dir(plexus) of
               {error, bad_name} ->
                   filename:join([filename:dirname(code:which(?MODULE)), "..", "priv"]);
               Dir -> Dir
           end,
    filename:join(Priv, "plexus_cnode").

cnode_call(Req) ->
    {CNode, Tmo} = gen_server:call(?SERVER, cnode_and_timeout),
    try gen_server:call({?REG, CNode}, Req, Tmo)
    catch exit:{Reason, _} -> {error, Reason}
    end.

%% ------------------------------------------------------------------ gen_server

%% @private
init(Opts) ->
    process_flag(trap_exit, true),
    case node() of
        nonode@nohost -> {stop, not_distributed};
        _ -> init(maps:get(mode, Opts, port), Opts)
    end.

init(attach, #{node := CNode} = Opts) when is_atom(CNode) ->
    St = #st{mode = attach, cnode = CNode, timeout = maps:get(call_timeout_ms, Opts, 5000)},
    case attach(St) of
        {ok, St1} -> {ok, St1};
        {error, R} -> {stop, R}
    end;
init(attach, _) ->
    {stop, {invalid_configuration, {node, missing}}};
init(port, Opts) ->
    Exe = maps:get(executable, Opts, executable()),
    {Alive, Host, NameFlag} = daemon_name(),
    CNode = list_to_atom(Alive ++ "@" ++ Host), %% our own choice of name, not input
    Seeds = maps:get(seeds, Opts, [node()]),
    Args = [NameFlag, Alive ++ "@" ++ Host, "--json", "--exit-on-stdin-eof"]
        ++ lists:append([["--seed", atom_to_list(S)] || S <- Seeds])
        ++ lists:append([[flag(K), integer_to_list(V)]
                         || K <- [ping_interval_ms, suspect_after_ms, down_after_ms,
                                  discovery_interval_ms],
                            V <- [maps:get(K, Opts, undefined)], is_integer(V)])
        ++ maps:get(extra_args, Opts, []),
    Cookie = atom_to_list(erlang:get_cookie()),
    try open_port({spawn_executable, Exe},
                  [{args, Args}, {env, [{"PLEXUS_COOKIE", Cookie}]}, exit_status,
                   {line, 65536}, use_stdio, stderr_to_stdout, binary]) of
        Port ->
            {os_pid, OsPid} = erlang:port_info(Port, os_pid),
            St = #st{mode = port, port = Port, os_pid = OsPid, cnode = CNode,
                     timeout = maps:get(call_timeout_ms, Opts, 5000)},
            wait_ready(St, erlang:monotonic_time(millisecond) +
                           maps:get(ready_timeout_ms, Opts, 10000), [])
    catch error:Reason ->
            {stop, {start_failed, {Exe, Reason}}}
    end.

flag(K) -> "--" ++ lists:flatten(string:replace(atom_to_list(K), "_", "-", all)).

daemon_name() ->
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Alive = "plexus_cnode_" ++ os:getpid() ++ "_" ++
        integer_to_list(erlang:unique_integer([positive])),
    Flag = case net_kernel:longnames() of true -> "--name"; _ -> "--sname" end,
    {Alive, Host, Flag}.

%% Lines until {"event":"ready"...}; other lines are the daemon's messages.
wait_ready(#st{port = Port} = St, Deadline, Lines) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, {eol, Line}}} ->
            case binary:match(Line, <<"\"event\":\"ready\"">>) of
                nomatch -> wait_ready(St, Deadline, [Line | Lines]);
                _ ->
                    case attach(St) of
                        {ok, St1} -> {ok, St1};
                        {error, R} -> stop_port(St), {stop, R}
                    end
            end;
        {Port, {data, {noeol, _}}} ->
            wait_ready(St, Deadline, Lines);
        {Port, {exit_status, Code}} ->
            {stop, {start_failed, {exit_status, Code, iolist_to_binary(
                                                     lists:join("\n", lists:reverse(Lines)))}}}
    after Left ->
            stop_port(St),
            {stop, {timeout, Deadline}}
    end.

%% Subscribe this process to the daemon (with every answer, for plexus_monitor).
attach(#st{cnode = CNode, mode = Mode} = St) ->
    %% A port daemon seeded with this node connects to us by itself; wait for that
    %% connection rather than dialling at the same moment (simultaneous handshakes
    %% make one side give up).
    _ = Mode =:= port andalso wait_connected(CNode, 50),
    erlang:monitor_node(CNode, true),
    {?REG, CNode} ! {subscribe, self(), [answers]},
    receive
        {?REG, {subscribed, _}} -> {ok, St#st{ready = true}};
        %% the daemon's table is full (--max-subscribers) or refused the options
        {?REG, {not_subscribed, _, Reason}} -> {error, {not_subscribed, Reason}};
        {nodedown, CNode} -> {error, {nodedown, CNode}}
    after St#st.timeout ->
            {error, {timeout, St#st.timeout}}
    end.

wait_connected(_CNode, 0) -> false;
wait_connected(CNode, N) ->
    lists:member(CNode, nodes(hidden)) orelse
        begin timer:sleep(20), wait_connected(CNode, N - 1) end.

%% @private
handle_call({subscribe, Pid, Answers}, _From, #st{subs = Subs} = St) ->
    Subs1 = case Subs of
                #{Pid := {Ref, _}} -> Subs#{Pid := {Ref, Answers}};
                _ -> Subs#{Pid => {erlang:monitor(process, Pid), Answers}}
            end,
    {reply, ok, St#st{subs = Subs1}};
handle_call({unsubscribe, Pid}, _From, #st{subs = Subs} = St) ->
    case maps:take(Pid, Subs) of
        {{Ref, _}, Subs1} -> erlang:demonitor(Ref, [flush]), {reply, ok, St#st{subs = Subs1}};
        error -> {reply, ok, St}
    end;
handle_call(cnode, _From, St) -> {reply, St#st.cnode, St};
handle_call(cnode_and_timeout, _From, St) -> {reply, {St#st.cnode, St#st.timeout}, St};
handle_call(os_pid, _From, St) -> {reply, St#st.os_pid, St};
handle_call(_, _From, St) -> {reply, {error, unknown_call}, St}.

%% @private
handle_cast(_, St) -> {noreply, St}.

%% @private
handle_info({?REG, {answer, _, _}} = Msg, #st{subs = Subs} = St) ->
    _ = [P ! Msg || {P, {_, true}} <- maps:to_list(Subs)],
    {noreply, St};
handle_info({?REG, {Kind, Node, Info}} = Msg, #st{subs = Subs} = St)
  when Kind =:= node_up; Kind =:= node_down; Kind =:= suspect; Kind =:= healthy ->
    _ = [P ! Msg || P <- maps:keys(Subs)],
    ok = telemetry_event(Kind, Node, Info, St),
    {noreply, St};
handle_info({?REG, _}, St) ->
    {noreply, St};
handle_info({Port, {data, {eol, Line}}}, #st{port = Port} = St) ->
    case binary:match(Line, <<"{\"event\":">>) of
        {0, _} -> ok; %% JSON events also come as messages
        _ -> logger:notice("plexus_cnode: ~ts", [Line])
    end,
    {noreply, St};
handle_info({Port, {data, _}}, #st{port = Port} = St) ->
    {noreply, St};
handle_info({Port, {exit_status, Code}}, #st{port = Port} = St) ->
    {stop, {cnode_exited, Code}, St#st{port = undefined}};
handle_info({nodedown, CNode}, #st{cnode = CNode, mode = port} = St) ->
    %% the daemon closed our connection; it is still our child: reattach
    erlang:send_after(500, self(), reattach),
    {noreply, St#st{ready = false}};
handle_info({nodedown, CNode}, #st{cnode = CNode, mode = attach} = St) ->
    {stop, {nodedown, CNode}, St};
handle_info(reattach, St) ->
    case attach(St) of
        {ok, St1} -> {noreply, St1};
        {error, _} -> erlang:send_after(1000, self(), reattach), {noreply, St}
    end;
handle_info({'DOWN', Ref, process, Pid, _}, #st{subs = Subs} = St) ->
    case Subs of
        #{Pid := {Ref, _}} -> {noreply, St#st{subs = maps:remove(Pid, Subs)}};
        _ -> {noreply, St}
    end;
handle_info({'EXIT', Port, _}, #st{port = Port} = St) ->
    {stop, {cnode_exited, port_closed}, St#st{port = undefined}};
handle_info(_, St) ->
    {noreply, St}.

%% `[plexus, cnode, Kind]' (README, "Telemetry"): the numbers the daemon sent
%% (`rtt_us' with healthy, `silent_ms' with suspect and node_down) as measurements,
%% only when they are integers (the daemon is a peer, not this VM), the rest as
%% metadata.
telemetry_event(Kind, Node, Info, #st{cnode = CNode}) when is_map(Info) ->
    Measurements = maps:filter(fun(K, V) -> (K =:= rtt_us orelse K =:= silent_ms)
                                                andalso is_integer(V) andalso V >= 0
                               end, Info),
    Meta0 = #{node => Node, cnode => CNode},
    Meta = case Info of
               #{reason := R} when is_atom(R) -> Meta0#{reason => R};
               _ -> Meta0
           end,
    plexus_telemetry:execute([plexus, cnode, Kind], Measurements, Meta);
telemetry_event(_, _, _, _) ->
    ok.

%% @private
terminate(_Reason, St) ->
    stop_port(St).

%% SIGTERM, then wait (bounded) for the exit status so no daemon outlives us.
stop_port(#st{port = undefined}) -> ok;
stop_port(#st{port = Port, os_pid = OsPid}) ->
    _ = os:cmd("kill -TERM " ++ integer_to_list(OsPid)),
    receive {Port, {exit_status, _}} -> ok
    after 5000 ->
            _ = os:cmd("kill -KILL " ++ integer_to_list(OsPid)),
            ok
    end,
    catch port_close(Port),
    ok.
