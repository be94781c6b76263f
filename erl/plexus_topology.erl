%% @doc Seniority-based commander election (doc/DESIGN.md §2, Raxol Topology parity).
%%
%% No voting: the member that has been in the cluster longest is the commander. Each
%% node runs one `plexus_topology' process; the processes on connected nodes tell each
%% other their node's start time (and any promotion), so every node holds the same
%% membership view. The rule is `plexus_topology_view' (pure; seniority itself is the C
%% core's, `plexus_topology_view:seniority/2'):
%% <ul>
%% <li>commander: the most senior healthy member (smallest start time, ties broken by
%%     node name);</li>
%% <li>wingmate: the most senior other member that is not a relay, the one that takes
%%     over when the commander goes; or the node an operator promoted to wingmate;</li>
%% <li>relay: a node an operator promoted (`promote/2'); never overrides the commander;</li>
%% <li>observer: everyone else.</li>
%% </ul>
%% No commander (and no wingmate) while fewer than `quorum_size' members count.
%%
%% Health: the process follows `plexus_monitor' when it runs on this node (option
%% `monitor', default `true'; it subscribes again if the monitor restarts). A member
%% the monitor calls suspect or down sits out of the roles until it is healthy again,
%% so a frozen commander (SIGSTOP, a stuck VM) loses command after the monitor's
%% `suspect_after_ms' instead of after net_ticktime. Without a monitor only nodedown
%% removes a member. A node's start time is, by default, when its VM started (wall
%% clock, ms), so restarting this process does not cost seniority.
%%
%% This is coordination, not consensus: two nodes that see different views or health
%% (during a partition, or for the moment an announcement is in flight) can name
%% different commanders. Use `plexus_leader' where at most one leader must exist.
%%
%% Options (map or proplist): `name' (default `plexus_topology'), `quorum_size'
%% (default 1), `start_time' (ms; default the VM's start), `monitor' (default `true').
%% The plexus application starts it when its `topology' env is set (`true' or an
%% option list); otherwise add `child_spec/1' to your own supervisor.
-module(plexus_topology).
-behaviour(gen_server).

-export([start_link/0, start_link/1, start/1, stop/0, stop/1, child_spec/1]).
-export([get_role/0, get_role/1, get_commander/0, get_commander/1, list_nodes/0,
         list_nodes/1, node_count/0, node_count/1, quorum_size/0, quorum_size/1,
         promote/2, promote/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-export_type([role/0]).

-type role() :: commander | wingmate | observer | relay.
-type server() :: atom() | pid().
-type promote_error() :: unknown_node | no_commander | is_commander
                       | {not_assignable, commander} | term().

-export_type([server/0, promote_error/0]). % used in the specs of exported functions

-define(TAG, '$plexus_topology').

%% How often to look for plexus_monitor while it is not running.
-define(MONITOR_RETRY_MS, 1000).

-record(st, {
    name :: atom(),
    view :: plexus_topology_view:view(),
    %% `false', or the monitor process followed (`undefined' while it is not running)
    monitor = false :: false | undefined | {pid(), reference()}
}).

%% ------------------------------------------------------------------ start

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() -> start_link(#{}).

%% @doc Starts the process, registered locally as the `name' option.
-spec start_link(map() | list()) -> {ok, pid()} | {error, term()}.
start_link(Opts) ->
    O = opts(Opts),
    gen_server:start_link({local, maps:get(name, O)}, ?MODULE, O, []).

%% @doc As `start_link/1', without a link.
-spec start(map() | list()) -> {ok, pid()} | {error, term()}.
start(Opts) ->
    O = opts(Opts),
    gen_server:start({local, maps:get(name, O)}, ?MODULE, O, []).

-spec stop() -> ok.
stop() -> stop(?MODULE).

-spec stop(server()) -> ok.
stop(S) -> gen_server:stop(S).

-spec child_spec(map() | list()) -> supervisor:child_spec().
child_spec(Opts) ->
    O = opts(Opts),
    #{id => {?MODULE, maps:get(name, O)}, start => {?MODULE, start_link, [O]},
      restart => permanent, shutdown => 5000, type => worker, modules => [?MODULE]}.

opts(L) when is_list(L) ->
    case plexus_opts:to_map(L) of
        {ok, M} -> opts(M);
        {error, _} -> erlang:error(badarg, [L])
    end;
opts(M) when is_map(M) ->
    none =:= plexus_opts:unknown(M, [name, quorum_size, start_time, monitor])
        orelse erlang:error(badarg, [M]),
    Q = maps:get(quorum_size, M, 1),
    (is_integer(Q) andalso Q >= 0) orelse erlang:error(badarg, [M]),
    Name = maps:get(name, M, ?MODULE),
    is_atom(Name) orelse erlang:error(badarg, [M]),
    case maps:find(start_time, M) of
        {ok, T} when not (is_integer(T) andalso T >= 0 andalso T < 1 bsl 64) ->
            erlang:error(badarg, [M]);
        _ -> ok
    end,
    is_boolean(maps:get(monitor, M, true)) orelse erlang:error(badarg, [M]),
    M#{name => Name, quorum_size => Q};
opts(Other) -> erlang:error(badarg, [Other]).

%% ------------------------------------------------------------------ API

%% @doc This node's role.
-spec get_role() -> role().
get_role() -> get_role(?MODULE).
-spec get_role(server()) -> role().
get_role(S) -> gen_server:call(S, get_role).

%% @doc The commander, or `{error, no_commander}' below quorum.
-spec get_commander() -> {ok, node()} | {error, no_commander}.
get_commander() -> get_commander(?MODULE).
-spec get_commander(server()) -> {ok, node()} | {error, no_commander}.
get_commander(S) -> gen_server:call(S, get_commander).

%% @doc Every node in the view with its role, sorted by node.
-spec list_nodes() -> [{node(), role()}].
list_nodes() -> list_nodes(?MODULE).
-spec list_nodes(server()) -> [{node(), role()}].
list_nodes(S) -> gen_server:call(S, list_nodes).

-spec node_count() -> non_neg_integer().
node_count() -> node_count(?MODULE).
-spec node_count(server()) -> non_neg_integer().
node_count(S) -> gen_server:call(S, node_count).

-spec quorum_size() -> non_neg_integer().
quorum_size() -> quorum_size(?MODULE).
-spec quorum_size(server()) -> non_neg_integer().
quorum_size(S) -> gen_server:call(S, quorum_size).

%% @doc `promote(Node, relay)' makes `Node' a relay; `promote(Node, wingmate)' makes it
%% the designated successor of the current commander (it takes over when that
%% commander is suspect, down or gone, and hands back when it returns; see
%% `plexus_topology_view'); `promote(Node, observer)' takes a promotion back (the
%% node's role is then the rule's). The promotion belongs to the node: it is set on
%% that node's process, which announces it to everyone. Nobody is promoted to
%% commander: `{error, {not_assignable, commander}}'. Errors: `{error, unknown_node}'
%% for a node outside the view; for `wingmate', `{error, no_commander}' below quorum
%% and `{error, is_commander}' for the commander itself.
-spec promote(node(), role()) -> ok | {error, promote_error()}.
promote(Node, Role) -> promote(?MODULE, Node, Role).

-spec promote(server(), node(), role()) -> ok | {error, promote_error()}.
promote(S, Node, Role) when is_atom(Node) ->
    case Role of
        commander -> {error, {not_assignable, Role}};
        _ when Role =:= relay; Role =:= wingmate; Role =:= observer ->
            gen_server:call(S, {promote, Node, Role});
        _ -> erlang:error(badarg, [S, Node, Role])
    end;
promote(S, Node, Role) ->
    erlang:error(badarg, [S, Node, Role]).

%% ------------------------------------------------------------------ gen_server

%% @private
init(#{name := Name, quorum_size := Q} = O) ->
    Start = maps:get(start_time, O, vm_start_ms()),
    ok = net_kernel:monitor_nodes(true),
    S0 = #st{name = Name, view = plexus_topology_view:new(node(), Start, Q),
             monitor = case maps:get(monitor, O, true) of true -> undefined; false -> false end},
    S = follow_monitor(S0),
    [announce(N, true, S) || N <- nodes()],
    {ok, S}.

%% @private
handle_call(get_role, _From, S) ->
    {reply, maps:get(node(), plexus_topology_view:roles(S#st.view), observer), S};
handle_call(get_commander, _From, S) ->
    case plexus_topology_view:commander(S#st.view) of
        none -> {reply, {error, no_commander}, S};
        C -> {reply, {ok, C}, S}
    end;
handle_call(list_nodes, _From, S) ->
    {reply, lists:sort(maps:to_list(plexus_topology_view:roles(S#st.view))), S};
handle_call(node_count, _From, S) ->
    {reply, map_size(plexus_topology_view:roles(S#st.view)), S};
handle_call(quorum_size, _From, S) ->
    {reply, plexus_topology_view:quorum(S#st.view), S};
handle_call({promote, _Node, Role}, _From, S)
  when Role =/= relay, Role =/= wingmate, Role =/= observer ->
    {reply, {error, {not_assignable, Role}}, S};
handle_call({promote, Node, Role}, _From, S) when Node =:= node() ->
    case plexus_topology_view:promotion(Role, S#st.view) of
        {ok, P} ->
            S1 = event({promote_self, P}, S),
            [announce(N, false, S1) || N <- plexus_topology_view:members(S1#st.view), N =/= node()],
            {reply, ok, S1};
        {error, _} = E ->
            {reply, E, S}
    end;
handle_call({promote, Node, Role}, From, S) ->
    case plexus_topology_view:is_member(Node, S#st.view) of
        false ->
            {reply, {error, unknown_node}, S};
        true ->
            %% the node owns its promotion: ask its process, answer when it did
            Name = S#st.name,
            _ = spawn(fun() ->
                              R = try gen_server:call({Name, Node}, {promote, Node, Role}, 5000)
                                  catch exit:Why -> {error, Why}
                                  end,
                              gen_server:reply(From, R)
                      end),
            {noreply, S}
    end.

%% @private
handle_cast(_Msg, S) ->
    {noreply, S}.

%% @private
handle_info({?TAG, {announce, Node, Start, Promotion, Reply}}, S)
  when is_atom(Node), is_integer(Start), Start >= 0, is_boolean(Reply) ->
    case valid_promotion(Promotion) of
        false ->
            {noreply, S};
        true ->
            _ = Reply andalso announce(Node, false, S) =:= ok,
            case lists:member(Node, nodes()) of
                true -> {noreply, event({announce, Node, Start, Promotion}, S)};
                false -> {noreply, S}   % raced with its nodedown
            end
    end;
handle_info({nodeup, Node}, S) ->
    announce(Node, true, S),
    {noreply, S};
handle_info({nodedown, Node}, S) ->
    {noreply, event({nodedown, Node}, S)};
handle_info({plexus_event, Ev}, S = #st{monitor = {_, _}}) ->
    {noreply, event({monitor, Ev}, S)};
handle_info({'DOWN', Ref, process, _, _}, S = #st{monitor = {_, Ref}}) ->
    {noreply, follow_monitor(event(monitor_lost, S#st{monitor = undefined}))};
handle_info(follow_monitor, S = #st{monitor = undefined}) ->
    {noreply, follow_monitor(S)};
handle_info(_Other, S) ->
    {noreply, S}.

%% ------------------------------------------------------------------ internals

event(Ev, S = #st{view = V}) ->
    V1 = plexus_topology_view:handle(Ev, V),
    Old = plexus_topology_view:commander(V),
    New = plexus_topology_view:commander(V1),
    [logger:info("plexus_topology: commander ~p (was ~p), ~b node(s) count",
                 [New, Old, map_size(plexus_topology_view:roles(V1))]) || New =/= Old],
    S#st{view = V1}.

valid_promotion(none) -> true;
valid_promotion(relay) -> true;
valid_promotion({wingmate, Start, Name}) -> is_integer(Start) andalso Start >= 0 andalso is_binary(Name);
valid_promotion(_) -> false.

%% Subscribe to plexus_monitor if it runs here, and take its current judgement; else
%% look again later (it may start after this process).
follow_monitor(S = #st{monitor = undefined}) ->
    case whereis(plexus_monitor) of
        Pid when is_pid(Pid) ->
            Ref = erlang:monitor(process, Pid),
            try
                ok = plexus_monitor:subscribe(),
                Snapshot = [{N, St} || #{node := N, status := St} <- plexus_monitor:list_all()],
                event({monitor_snapshot, Snapshot}, S#st{monitor = {Pid, Ref}})
            catch exit:_ ->
                erlang:demonitor(Ref, [flush]),
                retry_monitor(S)
            end;
        undefined ->
            retry_monitor(S)
    end;
follow_monitor(S) ->
    S.

retry_monitor(S) ->
    _ = erlang:send_after(?MONITOR_RETRY_MS, self(), follow_monitor),
    S.

announce(Node, Reply, #st{name = Name, view = V}) ->
    {Start, Promotion} = plexus_topology_view:announcement(V),
    _ = erlang:send({Name, Node}, {?TAG, {announce, node(), Start, Promotion, Reply}},
                    [noconnect, nosuspend]),
    ok.

%% When this VM started, in wall-clock ms (read once, at init).
vm_start_ms() ->
    Native = erlang:system_info(start_time) + erlang:time_offset(),
    max(0, erlang:convert_time_unit(Native, native, millisecond)).
