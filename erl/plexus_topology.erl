%% @doc Seniority-based commander election (DESIGN.md §2, Raxol Topology parity).
%%
%% No voting: the member that has been in the cluster longest is the commander. Each
%% node runs one `plexus_topology' process; the processes on connected nodes tell each
%% other their node's start time (and whether the node was promoted), so every node
%% holds the same membership view, and the rule, computed by the C core
%% (`plexus_election:topology_assign/2'), gives every node the same answer from it:
%% <ul>
%% <li>commander: the smallest start time, ties broken by node name;</li>
%% <li>relay: a node an operator promoted (`promote/2'); promotion never overrides
%%     the commander;</li>
%% <li>wingmate: the most senior member that is neither commander nor relay, the one
%%     that takes over when the commander goes;</li>
%% <li>observer: everyone else.</li>
%% </ul>
%% No commander (and no wingmate) while the view holds fewer than `quorum_size'
%% members. When a node goes down (nodedown) it leaves the view and the roles are
%% recomputed: that is the re-election. A node's start time is, by default, when its
%% VM started (wall clock, ms), so restarting this process does not cost seniority.
%%
%% This is coordination, not consensus: two nodes that see different views (during a
%% partition, or for the moment an announcement is in flight) can name different
%% commanders. Use `plexus_leader' where at most one leader must exist.
%%
%% Options (map or proplist): `name' (default `plexus_topology'), `quorum_size'
%% (default 1), `start_time' (ms; default the VM's start). The plexus application
%% starts it when its `topology' env is set (`true' or an option list); otherwise add
%% `child_spec/1' to your own supervisor.
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
-export_type([server/0]). % used in the specs of exported functions

-define(TAG, '$plexus_topology').

-record(st, {
    name :: atom(),
    quorum :: non_neg_integer(),
    %% node => {StartTime, Promoted}, this node included
    view = #{} :: #{node() => {non_neg_integer(), boolean()}},
    roles = #{} :: #{node() => role()},
    commander = none :: node() | none
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

opts(L) when is_list(L) -> opts(proplists:to_map(L));
opts(M) when is_map(M) ->
    Q = maps:get(quorum_size, M, 1),
    (is_integer(Q) andalso Q >= 0) orelse erlang:error(badarg, [M]),
    Name = maps:get(name, M, ?MODULE),
    is_atom(Name) orelse erlang:error(badarg, [M]),
    case maps:find(start_time, M) of
        {ok, T} when not (is_integer(T) andalso T >= 0) -> erlang:error(badarg, [M]);
        _ -> ok
    end,
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

%% @doc `promote(Node, relay)' makes `Node' a relay; `promote(Node, observer)' takes
%% the promotion back (the node's role is then the rule's). The flag belongs to the
%% node: it is set on that node's process, which announces it to everyone. Commander
%% and wingmate come from seniority only: `{error, {not_assignable, Role}}'.
%% `{error, unknown_node}' for a node outside the view.
-spec promote(node(), role()) -> ok | {error, unknown_node | {not_assignable, role()}}.
promote(Node, Role) -> promote(?MODULE, Node, Role).

-spec promote(server(), node(), role()) ->
    ok | {error, unknown_node | {not_assignable, role()}}.
promote(S, Node, Role) when is_atom(Node) ->
    case Role of
        relay -> gen_server:call(S, {promote, Node, true});
        observer -> gen_server:call(S, {promote, Node, false});
        commander -> {error, {not_assignable, Role}};
        wingmate -> {error, {not_assignable, Role}};
        _ -> erlang:error(badarg, [S, Node, Role])
    end;
promote(S, Node, Role) ->
    erlang:error(badarg, [S, Node, Role]).

%% ------------------------------------------------------------------ gen_server

%% @private
init(#{name := Name, quorum_size := Q} = O) ->
    Start = maps:get(start_time, O, vm_start_ms()),
    ok = net_kernel:monitor_nodes(true),
    S = assign(#st{name = Name, quorum = Q, view = #{node() => {Start, false}}}),
    [announce(N, true, S) || N <- nodes()],
    {ok, S}.

%% @private
handle_call(get_role, _From, S) ->
    {reply, maps:get(node(), S#st.roles), S};
handle_call(get_commander, _From, S = #st{commander = none}) ->
    {reply, {error, no_commander}, S};
handle_call(get_commander, _From, S = #st{commander = C}) ->
    {reply, {ok, C}, S};
handle_call(list_nodes, _From, S) ->
    {reply, lists:sort(maps:to_list(S#st.roles)), S};
handle_call(node_count, _From, S) ->
    {reply, map_size(S#st.view), S};
handle_call(quorum_size, _From, S) ->
    {reply, S#st.quorum, S};
handle_call({promote, Node, Flag}, _From, S) when Node =:= node() ->
    {Start, _} = maps:get(node(), S#st.view),
    S1 = assign(S#st{view = (S#st.view)#{node() => {Start, Flag}}}),
    [announce(N, false, S1) || N <- maps:keys(S1#st.view), N =/= node()],
    {reply, ok, S1};
handle_call({promote, Node, Flag}, From, S) ->
    case maps:is_key(Node, S#st.view) of
        false ->
            {reply, {error, unknown_node}, S};
        true ->
            %% the node owns its flag: ask its process, answer when it did
            Name = S#st.name,
            _ = spawn(fun() ->
                              R = try gen_server:call({Name, Node}, {promote, Node, Flag}, 5000)
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
handle_info({?TAG, {announce, Node, Start, Promoted, Reply}}, S)
  when is_atom(Node), is_integer(Start), Start >= 0, is_boolean(Promoted) ->
    _ = Reply andalso announce(Node, false, S) =:= ok,
    case lists:member(Node, nodes()) of
        true -> {noreply, assign(S#st{view = (S#st.view)#{Node => {Start, Promoted}}})};
        false -> {noreply, S}   % raced with its nodedown
    end;
handle_info({nodeup, Node}, S) ->
    announce(Node, true, S),
    {noreply, S};
handle_info({nodedown, Node}, S) ->
    {noreply, assign(S#st{view = maps:remove(Node, S#st.view)})};
handle_info(_Other, S) ->
    {noreply, S}.

%% ------------------------------------------------------------------ internals

announce(Node, Reply, #st{name = Name, view = View}) ->
    {Start, Promoted} = maps:get(node(), View),
    _ = erlang:send({Name, Node}, {?TAG, {announce, node(), Start, Promoted, Reply}},
                    [noconnect, nosuspend]),
    ok.

%% The rule runs in C over the whole view; every node with this view gets this answer.
assign(S = #st{view = View, quorum = Q}) ->
    Nodes = maps:keys(View),
    Members = [begin
                   {Start, Promoted} = maps:get(N, View),
                   {atom_to_binary(N, utf8), Start, Promoted}
               end || N <- Nodes],
    {ok, Roles, Boss} = plexus_election:topology_assign(Members, Q),
    Commander = case Boss of
                    none -> none;
                    Bin -> binary_to_existing_atom(Bin, utf8)
                end,
    Old = S#st.commander,
    [logger:info("plexus_topology: commander ~p (was ~p), ~b node(s)",
                 [Commander, Old, length(Nodes)]) || Commander =/= Old],
    S#st{roles = maps:from_list(lists:zip(Nodes, Roles)), commander = Commander}.

%% When this VM started, in wall-clock ms (read once, at init).
vm_start_ms() ->
    Native = erlang:system_info(start_time) + erlang:time_offset(),
    max(0, erlang:convert_time_unit(Native, native, millisecond)).
