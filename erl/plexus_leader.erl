%% @doc Leader election as a behaviour: one process per node, one leader per cluster
%% (doc/DESIGN.md §2; the options, API and callbacks of ergo's `leader' actor).
%%
%% `start_link(Name, Module, Args, Opts)' starts a process registered locally as
%% `Name'. Its peers are the processes registered as `Name' on the other nodes of the
%% cluster; they talk over Erlang distribution. The process owns a `plexus_election'
%% machine (the Raft election of `c_src/core/election.c', with PreVote and
%% CheckQuorum), ticks it every `tick_ms', carries its messages, and calls `Module'
%% when something happens:
%%
%% <ul>
%% <li>`handle_become_leader(State)': this node now leads;</li>
%% <li>`handle_become_follower(Leader, State)': another process leads (`Leader' is its
%%     pid) or, with `undefined', nobody is known to lead (the leader stepped down,
%%     died or was cut off). Called when the known leader changes, not on every
%%     heartbeat;</li>
%% <li>`handle_term_changed(OldTerm, NewTerm, State)': the term moved on;</li>
%% <li>`handle_peer_joined(Peer, State)' / `handle_peer_left(Peer, State)': a member
%%     became reachable / stopped answering (its node went down, it stopped, or
%%     nothing came from it for `peer_timeout' ms). A peer that left is still a voter:
%%     it counts against the quorum until `leave/2' removes it;</li>
%% <li>`init/1', `handle_call/3', `handle_info/2', `terminate/2' as in gen_server.</li>
%% </ul>
%%
%% The callbacks above return `{ok, State}' or `{stop, Reason, State}'. All but
%% `init/1' are optional. Every API function also works from inside a callback of
%% the process it names (queries are answered from the process's own view, as it is
%% after the whole event that caused the callback; `join/2' and `leave/2' are then
%% queued and return `ok').
%%
%% Inside, the decisions are made by the pure `plexus_leader_policy' (events in,
%% effects out); this module runs the effects of each event in order: the hard state
%% is written (`plexus_leader_hard_state'), then the messages are sent, then the
%% callbacks run.
%%
%% Options (a map or a proplist / Elixir keyword list):
%% <ul>
%% <li>`cluster_id' (any term, default `Name'): messages of another cluster are dropped;</li>
%% <li>`bootstrap' (default `[]'): the voters, as nodes or `{Name, Node}' pairs. Give
%%     every member the same list (it may include the node itself). It only seeds a
%%     node without a saved membership: after `join/2' and `leave/2' the saved one wins;</li>
%% <li>`election_timeout_min' (150), `election_timeout_max' (300),
%%     `heartbeat_interval' (50): milliseconds;</li>
%% <li>`pre_vote' (true), `check_quorum' (true);</li>
%% <li>`data_dir': where the hard state is kept, an absolute path (a relative one
%%     depends on the working directory of each start; default: the `plexus' application's
%%     `data_dir' env, else `filename:basedir(user_data, "plexus")' joined with the
%%     release's name, else with the starting application's name; with none of these
%%     the process does not start: `{error, {data_dir_required, Why}}'. See
%%     `plexus_leader_data_dir'. The directory chosen is logged at start);</li>
%% <li>`tick_ms' (10): the timer resolution; the timings are rounded up to ticks;</li>
%% <li>`peer_timeout' (2 x election_timeout_max): silence after which a peer is
%%     reported by `handle_peer_left/2';</li>
%% <li>`priority' (`high'): the process priority. High, so that heartbeats and votes
%%     are not queued behind busy processes (measured: with every scheduler of every
%%     node busy, `normal' saw a dozen spurious elections in two minutes, `high' none).
%%     The callbacks run in this process: keep them short and hand long work to
%%     another process, or pass `normal'.</li>
%% </ul>
%%
%% Guarantees: at most one leader per term. The term, the vote and the membership are
%% written to a file (`<data_dir>/plexus_leader/<node>/<Name>-<cluster key>.hs': temp
%% file, `file:sync', rename, directory fsync) before any message that depends on them
%% leaves, so a restarted node never votes twice in a term nor counts votes against
%% voters it no longer has. A missing file next to its `.ran' marker is logged as an
%% error and the node sits out an election timeout; do not delete either. Membership
%% changes follow the rules above `plexus_leader_policy:membership_change/2'.
%% Leadership is not a lease: a deposed leader can still believe it
%% leads for up to about `election_timeout_min' after it was cut off (CheckQuorum steps
%% it down), so side effects outside the cluster need fencing by term (`term/1').
-module(plexus_leader).
-behaviour(gen_server).

-export([start_link/4, start/4, stop/1, child_spec/1]).
-export([is_leader/1, leader/1, term/1, peers/1, peer_count/1, has_peer/2, join/2, leave/2,
         broadcast/2, broadcast_bootstrap/2, bootstrap/1, cluster_id/1, info/1]).
-export([hard_state_file/3, read_hard_state/1, read_membership/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, handle_continue/2,
         terminate/2, code_change/3]).

-export_type([server/0, peer/0, option/0, options/0]).

-type server() :: atom() | pid() | {atom(), node()}.
%% The local registered name, the pid, or `{Name, Node}'.
-type peer() :: {Name :: atom(), node()}.
-type option() :: {cluster_id, term()}
                | {bootstrap, [node() | peer()]}
                | {election_timeout_min, pos_integer()}
                | {election_timeout_max, pos_integer()}
                | {heartbeat_interval, pos_integer()}
                | {pre_vote, boolean()}
                | {check_quorum, boolean()}
                | {data_dir, file:filename_all()}
                | {tick_ms, pos_integer()}
                | {peer_timeout, pos_integer()}
                | {priority, low | normal | high}.
-type options() :: [option()] | #{atom() => term()}.
%% The keys of option().
-define(OPTIONS, [cluster_id, bootstrap, election_timeout_min, election_timeout_max,
                  heartbeat_interval, pre_vote, check_quorum, data_dir, tick_ms,
                  peer_timeout, priority]).
-type cb_result() :: {ok, State :: term()} | {stop, Reason :: term(), State :: term()}.

-callback init(Args :: term()) -> {ok, State :: term()} | {stop, Reason :: term()} | ignore.
-callback handle_call(Request :: term(), From :: gen_server:from(), State :: term()) ->
    {reply, Reply :: term(), State :: term()}
    | {reply, Reply :: term(), State :: term(), hibernate | {continue, term()}}
    | {noreply, State :: term()}
    | {noreply, State :: term(), hibernate | {continue, term()}}
    | {stop, Reason :: term(), Reply :: term(), State :: term()}
    | {stop, Reason :: term(), State :: term()}.
-callback handle_info(Info :: term(), State :: term()) ->
    {noreply, State :: term()}
    | {noreply, State :: term(), hibernate | {continue, term()}}
    | {stop, Reason :: term(), State :: term()}.
-callback terminate(Reason :: term(), State :: term()) -> term().
-callback handle_become_leader(State :: term()) -> cb_result().
-callback handle_become_follower(Leader :: pid() | undefined, State :: term()) -> cb_result().
-callback handle_peer_joined(Peer :: peer(), State :: term()) -> cb_result().
-callback handle_peer_left(Peer :: peer(), State :: term()) -> cb_result().
-callback handle_term_changed(OldTerm :: non_neg_integer(), NewTerm :: non_neg_integer(),
                              State :: term()) -> cb_result().
-optional_callbacks([handle_call/3, handle_info/2, terminate/2, handle_become_leader/1,
                     handle_become_follower/2, handle_peer_joined/2, handle_peer_left/2,
                     handle_term_changed/3]).

-define(TAG, '$plexus_leader').
%% A peer we cannot reach is offered a connection at most this often (ms).
-define(CONNECT_EVERY_MS, 1000).

%% The runner's state; every decision's state is in `ps' (plexus_leader_policy).
-record(st, {
    name :: atom(),
    module :: module(),
    mod_state :: term(),
    ps :: plexus_leader_policy:policy(),
    cluster :: term(),
    cid :: non_neg_integer(),
    bootstrap = [] :: [node()],
    tick_ms :: pos_integer(),
    next_tick :: integer(),
    timer :: reference() | undefined,
    timing :: map(),
    file :: file:filename_all(),
    node :: node(),                          % node() at start: the process's identity
    connect_tries = #{} :: #{node() => integer()},
    foreign = 0 :: non_neg_integer(),        % messages of other clusters
    clocks = plexus_leader_events:new() :: plexus_leader_events:clocks()  % for telemetry
}).

%% ------------------------------------------------------------------ start

%% @doc Starts the process, registered locally as `Name', linked to the caller.
%% `Opts' is a map or a proplist / keyword list (`plexus_opts'). Fails with
%% `{invalid_configuration, What}' for a bad option (`{bad_options, Opts}' when `Opts'
%% is neither), `{data_dir_required, Why}' when no directory for the hard state can be
%% named (see the `data_dir' option) and `{hard_state, File, Reason}' when the saved
%% state cannot be read.
-spec start_link(atom(), module(), term(), options()) ->
    {ok, pid()} | ignore | {error, term()}.
start_link(Name, Module, Args, Opts) when is_atom(Name), is_atom(Module) ->
    gen_server:start_link({local, Name}, ?MODULE, {Name, Module, Args, Opts}, []).

%% @doc As `start_link/4', without a link.
-spec start(atom(), module(), term(), options()) -> {ok, pid()} | ignore | {error, term()}.
start(Name, Module, Args, Opts) when is_atom(Name), is_atom(Module) ->
    gen_server:start({local, Name}, ?MODULE, {Name, Module, Args, Opts}, []).

%% @doc Stops the process (peers are told, so a leader is replaced at once).
-spec stop(server()) -> ok.
stop(Server) -> gen_server:stop(Server).

%% @doc A child spec, from `{Name, Module, Args, Opts}', a bare callback module
%% (registered under its own name, `Args' `[]', default options), or a map or keyword
%% list (`plexus_opts') with `name' and `module', optional `args' (`[]') and `opts'
%% (options as for `start_link/4'), every other key being a leader option too (it
%% wins over the same key in `opts'). From Elixir: `{:plexus_leader, name: :sched,
%% module: MyMod, bootstrap: nodes, data_dir: dir}' or `{:plexus_leader, MyMod}'.
%% Anything else raises `error({bad_options, Spec})'.
-spec child_spec({atom(), module(), term(), options()} | module() | map()
                 | proplists:proplist()) -> supervisor:child_spec().
child_spec({Name, Module, Args, Opts}) when is_atom(Name), is_atom(Module) ->
    #{id => {?MODULE, Name},
      start => {?MODULE, start_link, [Name, Module, Args, Opts]},
      restart => permanent,
      shutdown => 5000,
      type => worker,
      modules => [?MODULE, Module]};
child_spec(Module) when is_atom(Module), Module =/= undefined ->
    child_spec({Module, Module, [], #{}});
child_spec(Spec) ->
    case plexus_opts:to_map_or_error(Spec) of
        #{name := Name, module := Module} = M when is_atom(Name), is_atom(Module) ->
            Opts = plexus_opts:to_map_or_error(maps:get(opts, M, #{})),
            Extra = maps:without([name, module, args, opts], M),
            child_spec({Name, Module, maps:get(args, M, []), maps:merge(Opts, Extra)});
        _ ->
            erlang:error({bad_options, Spec}, [Spec])
    end.

%% ------------------------------------------------------------------ API

%% @doc Whether this node's process leads.
-spec is_leader(server()) -> boolean().
is_leader(S) -> query(S, is_leader).

%% @doc The leader's pid as this node knows it, or `undefined'.
-spec leader(server()) -> pid() | undefined.
leader(S) -> query(S, leader).

%% @doc The current term (use it as a fencing token for outside side effects).
-spec term(server()) -> non_neg_integer().
term(S) -> query(S, term).

%% @doc The other voters, as `{Name, Node}', sorted.
-spec peers(server()) -> [peer()].
peers(S) -> query(S, peers).

-spec peer_count(server()) -> non_neg_integer().
peer_count(S) -> query(S, peer_count).

%% @doc Whether `Peer' (a node, `{Name, Node}' or a pid) is one of the other voters.
-spec has_peer(server(), node() | peer() | pid()) -> boolean().
has_peer(S, Peer) -> query(S, {has_peer, peer_node(Peer)}).

%% @doc Adds `Node' (or `{Name, Node}') as a voter: call it on the leader, which saves
%% the new membership and sends it to every voter, `Node' included. One node at a
%% time: `{error, {change_in_progress, Key}}' until a majority reported the previous
%% change (a few heartbeats; retry), `{error, not_leader}' on another process. Start
%% the new node's process with `bootstrap' = the current members plus itself.
%% `{error, {id_collision, Node, Other}}' if two names hash alike.
-spec join(server(), node() | peer()) -> ok | {error, term()}.
join(S, Peer) -> mutate(S, {join, peer_node(Peer)}).

%% @doc Removes `Node' from the voters, on the leader, as `join/2'; the quorum shrinks.
%% Stop the removed node's process too: the others now ignore it. `{error,
%% not_found}' if not a voter; `{error, self}' for the leader's own node (stop its
%% process first, then call this on the next leader).
-spec leave(server(), node() | peer()) -> ok | {error, term()}.
leave(S, Peer) -> mutate(S, {leave, peer_node(Peer)}).

%% @doc Sends `Msg' (as a plain message, seen by `handle_info/2' there) to the process
%% of every other voter.
-spec broadcast(server(), term()) -> ok.
broadcast(S, Msg) -> query(S, {broadcast, Msg}).

%% @doc Sends `Msg' to the process on every `bootstrap' node but this one.
-spec broadcast_bootstrap(server(), term()) -> ok.
broadcast_bootstrap(S, Msg) -> query(S, {broadcast_bootstrap, Msg}).

%% @doc The `bootstrap' option, as `{Name, Node}' pairs.
-spec bootstrap(server()) -> [peer()].
bootstrap(S) -> query(S, bootstrap).

%% @doc The `cluster_id' option.
-spec cluster_id(server()) -> term().
cluster_id(S) -> query(S, cluster_id).

%% @doc Everything the process shows: `role' (follower | pre_candidate | candidate |
%% leader), `term', `voted_for' (a node or `undefined'), `leader' and `leader_node',
%% `peers', `present' (peers heard from lately), `members' (all voters, this node
%% included), `config_key' and `config_version' (the membership's key and version),
%% `quorum', `hard_state_file', `timing' and `stats' (the machine's counters plus
%% `foreign', messages of other clusters, and `stale_config_votes', vote requests
%% refused to candidates with an older membership).
-spec info(server()) -> map().
info(S) -> gen_server:call(S, {?TAG, info}).

%% ------------------------------------------------------------------ hard state

%% @doc Where the hard state of `Name' in cluster `ClusterId' lives under `DataDir' for
%% this node.
-spec hard_state_file(file:filename_all(), atom(), term()) -> file:filename_all().
hard_state_file(DataDir, Name, Cluster) ->
    plexus_leader_hard_state:file(DataDir, Name, Cluster).

%% @doc Reads a hard-state file: `{ok, {Term, VotedFor}}', `{ok, {0, 0}}' when it does
%% not exist (a node that never ran), `{error, Reason}' when it exists but cannot be
%% read or is damaged (the process then refuses to start rather than risk a second
%% vote in a term). The membership saved with it: `read_membership/1'.
-spec read_hard_state(file:filename_all()) ->
    {ok, plexus_election:hard_state()} | {error, term()}.
read_hard_state(File) ->
    case plexus_leader_hard_state:read(File) of
        {ok, Hard, _Config} -> {ok, Hard};
        {error, enoent} -> {ok, {0, 0}};
        {error, _} = E -> E
    end.

%% @doc The membership saved with the hard state: `{ok, {ConfigVersion, Members}}'
%% (every voter's node, this one included, sorted), `{ok, none}' for a file without
%% one (format 1, written before membership was kept) or no file, `{error, Reason}'
%% as `read_hard_state/1'.
-spec read_membership(file:filename_all()) ->
    {ok, {non_neg_integer(), [node()]} | none} | {error, term()}.
read_membership(File) ->
    case plexus_leader_hard_state:read(File) of
        {ok, _Hard, {Ver, _CTerm, Members}} -> {ok, {Ver, Members}};
        {ok, _Hard, none} -> {ok, none};
        {error, enoent} -> {ok, none};
        {error, _} = E -> E
    end.

%% ------------------------------------------------------------------ gen_server

%% @private
init({Name, Module, Args, Opts}) ->
    process_flag(trap_exit, true),
    case {setup(Name, Module, Opts), code:ensure_loaded(Module)} of
        {{error, R}, _} ->
            {stop, R};
        {_, {error, Why}} ->
            {stop, {bad_module, Module, Why}};
        {{ok, S}, {module, Module}} ->
            case with_view(S, fun() -> Module:init(Args) end) of
                {ok, MS} ->
                    ok = net_kernel:monitor_nodes(true),
                    {noreply, S1} = step(announce, S#st{mod_state = MS}),  % sends only
                    {ok, schedule_tick(S1)};
                {stop, R} -> {stop, R};
                ignore -> ignore;
                Other -> {stop, {bad_return_value, Other}}
            end
    end.

%% @private
handle_call({?TAG, Q}, _From, S) ->
    request(Q, S);
handle_call(Req, From, S = #st{module = M, mod_state = MS}) ->
    case erlang:function_exported(M, handle_call, 3) of
        true ->
            wrap_reply(with_view(S, fun() -> M:handle_call(Req, From, MS) end), S);
        false ->
            logger:warning("~p ~p: unexpected call ~tp", [?MODULE, S#st.name, Req]),
            {reply, {error, {unknown_call, Req}}, S}
    end.

%% @private
handle_cast({?TAG, Q}, S) ->
    noreply(request(Q, S));
handle_cast(Msg, S = #st{module = M, mod_state = MS}) ->
    case erlang:function_exported(M, handle_cast, 2) of
        true -> wrap_noreply(with_view(S, fun() -> M:handle_cast(Msg, MS) end), S);
        false -> {noreply, S}
    end.

%% @private
handle_info({timeout, Ref, tick}, S = #st{timer = Ref, node = Node}) when Node =/= node() ->
    %% Distribution started (or stopped) after the process did: it still counted itself
    %% as Node (nonode@nohost, its own new name a voter of its own), with a file under
    %% Node's name, and never took part. A restart takes the node's name of now.
    logger:error("~p ~p: this node is now ~p, the process started as ~p; it stops",
                 [?MODULE, S#st.name, node(), Node]),
    {stop, {node_changed, Node, node()}, S};
handle_info({timeout, Ref, tick}, S = #st{timer = Ref}) ->
    case step(tick, S) of
        {noreply, S1} -> {noreply, schedule_tick(S1)};
        Stop -> Stop
    end;
handle_info({?TAG, Cid, From, Payload}, S = #st{cid = Cid}) when is_pid(From) ->
    step({peer, node(From), From, Payload}, S);
handle_info({?TAG, _OtherCluster, _From, _Payload}, S) ->
    {noreply, S#st{foreign = S#st.foreign + 1}};
handle_info({?TAG, deferred, Op}, S) ->
    noreply(request(Op, S));
handle_info({?TAG, timer, {fast_campaign, Term} = Event}, S) when is_integer(Term) ->
    step(Event, S);
handle_info({nodedown, Node}, S) ->
    step({nodedown, Node}, S);
handle_info({nodeup, Node}, S) ->
    step({nodeup, Node}, S);
handle_info(Info, S = #st{module = M, mod_state = MS}) ->
    case erlang:function_exported(M, handle_info, 2) of
        true -> wrap_noreply(with_view(S, fun() -> M:handle_info(Info, MS) end), S);
        false -> {noreply, S}
    end.

%% @private
handle_continue(C, S = #st{module = M, mod_state = MS}) ->
    wrap_noreply(with_view(S, fun() -> M:handle_continue(C, MS) end), S).

%% @private
terminate(Reason, S = #st{module = M, mod_state = MS}) ->
    %% Peers are told (the policy's goodbye is sends only), so a follower of this
    %% leader campaigns now rather than after its timeout.
    _ = step(goodbye, S),
    ok = plexus_leader_events:stopped(event_meta(S), S#st.clocks),
    case erlang:function_exported(M, terminate, 2) of
        true -> with_view(S, fun() -> M:terminate(Reason, MS) end);
        false -> ok
    end.

%% @private
code_change(OldVsn, S = #st{module = M, mod_state = MS}, Extra) ->
    case erlang:function_exported(M, code_change, 3) of
        true ->
            {ok, MS1} = M:code_change(OldVsn, MS, Extra),
            {ok, S#st{mod_state = MS1}};
        false ->
            {ok, S}
    end.

%% ------------------------------------------------------------------ setup

setup(Name, Module, Opts0) ->
    try
        Opts = case plexus_opts:to_map(Opts0) of
                   {ok, M} -> M;
                   {error, BadOpts} -> throw(BadOpts)
               end,
        case plexus_opts:unknown(Opts, ?OPTIONS) of
            none -> ok;
            Unknown -> throw(Unknown)
        end,
        Get = fun(K, D) -> maps:get(K, Opts, D) end,
        Timing = timing(Get),
        #{tick_ms := TickMs, heartbeat_interval := Hb, priority := Priority} = Timing,
        _ = process_flag(priority, Priority),
        Cluster = Get(cluster_id, Name),
        {DataDir, DirSource} = data_dir(Name, Module, Opts),
        Ticks = fun(Ms) -> (Ms + TickMs - 1) div TickMs end,
        Boot = bootstrap_nodes(Name, Get(bootstrap, [])),
        Cid = plexus_election:cluster_key(Cluster),
        File = hard_state_file(DataDir, Name, Cluster),
        ok = warn_old_default(DirSource, File, Name, Cluster),
        {Hard, Config} = plexus_leader_hard_state:restore(Name, File, Boot),
        PS = plexus_leader_policy:new(
               #{name => Name, self_node => node(), hard => Hard, config => Config,
                 machine_cfg => machine_cfg(Timing, Ticks, Cid),
                 hb_ticks => Ticks(Hb), peer_timeout => maps:get(peer_timeout, Timing),
                 stagger_ms => max(TickMs, Hb div 2)}),
        case Hard =/= none andalso plexus_leader_hard_state:write(File, Hard, Config) of
            {error, WErr} -> throw({hard_state, File, WErr});
            _ -> ok                             % written (format 2 from now on) or sitting out
        end,
        {ok, #st{name = Name, module = Module, ps = PS, cluster = Cluster, cid = Cid,
                 bootstrap = Boot, tick_ms = TickMs, next_tick = now_ms(),
                 timing = Timing, file = File, node = node()}}
    catch
        throw:{hard_state, _, _} = HS -> {error, HS};
        throw:{data_dir_required, _} = Required -> {error, Required};
        throw:What -> {error, {invalid_configuration, What}}
    end.

%% The timing options, checked; throws {Option, Value} for a bad one.
timing(Get) ->
    Min = pos_int(election_timeout_min, Get(election_timeout_min, 150)),
    Max = pos_int(election_timeout_max, Get(election_timeout_max, 300)),
    Hb = pos_int(heartbeat_interval, Get(heartbeat_interval, 50)),
    TickMs = pos_int(tick_ms, Get(tick_ms, 10)),
    PeerTimeout = pos_int(peer_timeout, Get(peer_timeout, 2 * Max)),
    PreVote = bool(pre_vote, Get(pre_vote, true)),
    CheckQuorum = bool(check_quorum, Get(check_quorum, true)),
    Priority = case Get(priority, high) of
                   P when P =:= low; P =:= normal; P =:= high -> P;
                   P -> throw({priority, P})
               end,
    Ticks = fun(Ms) -> (Ms + TickMs - 1) div TickMs end,
    [throw({timing, #{election_timeout_min => Min, election_timeout_max => Max,
                      heartbeat_interval => Hb, tick_ms => TickMs}})
     || not (Ticks(Hb) < Ticks(Min) andalso Ticks(Min) < Ticks(Max))],
    #{election_timeout_min => Min, election_timeout_max => Max, heartbeat_interval => Hb,
      tick_ms => TickMs, peer_timeout => PeerTimeout, pre_vote => PreVote,
      check_quorum => CheckQuorum, priority => Priority}.

%% plexus_election:new/1 settings but the peers and hard state.
machine_cfg(#{election_timeout_min := Min, election_timeout_max := Max,
              heartbeat_interval := Hb, pre_vote := PreVote, check_quorum := CheckQuorum},
            Ticks, Cid) ->
    #{id => plexus_election:node_id(node()), cluster_id => Cid,
      election_min_ticks => Ticks(Min), election_max_ticks => Ticks(Max),
      heartbeat_ticks => Ticks(Hb), pre_vote => PreVote, check_quorum => CheckQuorum}.

%% The hard state's directory (plexus_leader_data_dir says which), logged, because a
%% derived default is a directory the operator did not name.
data_dir(Name, Module, Opts) ->
    case plexus_leader_data_dir:choose(plexus_leader_data_dir:facts(Module, Opts)) of
        {ok, Dir, Source} ->
            case plexus_leader_data_dir:usable(Dir) of
                true ->
                    logger:notice("~p ~p: hard state under ~ts (~p)",
                                  [?MODULE, Name, Dir, Source]),
                    {Dir, Source};
                false ->
                    logger:error("~p ~p: not started: data_dir ~tp (~p) is not an absolute "
                                 "path", [?MODULE, Name, Dir, Source]),
                    throw({data_dir, Dir})
            end;
        {error, Required} ->
            logger:error("~p ~p: not started: ~p", [?MODULE, Name, Required]),
            throw(Required)
    end.

%% Versions before the per-release default kept every app's hard state in the shared
%% base directory. Its file for this leader is not taken over (it may be another
%% app's), but an operator upgrading must hear of it: starting without the saved vote
%% could vote twice in a term.
warn_old_default(Source, File, Name, Cluster) when Source =/= option, Source =/= app_env ->
    Old = hard_state_file(plexus_leader_data_dir:base(), Name, Cluster),
    case filelib:is_regular(Old) andalso not filelib:is_regular(File) of
        true ->
            logger:warning("~p ~p: ~ts holds a hard state of the former shared default "
                           "directory; this leader now keeps its own in ~ts. If that file "
                           "is this application's, pass data_dir => ~tp to keep its term "
                           "and vote", [?MODULE, Name, Old, File, plexus_leader_data_dir:base()]);
        false ->
            ok
    end;
warn_old_default(_, _, _, _) ->
    ok.

pos_int(_, V) when is_integer(V), V > 0 -> V;
pos_int(K, V) -> throw({K, V}).

bool(_, V) when is_boolean(V) -> V;
bool(K, V) -> throw({K, V}).

bootstrap_nodes(Name, L) when is_list(L) ->
    lists:usort([case X of
                     N when is_atom(N) -> N;
                     {Name, N} when is_atom(N) -> N;
                     _ -> throw({bootstrap, X})
                 end || X <- L]);
bootstrap_nodes(_, L) -> throw({bootstrap, L}).

%% ------------------------------------------------------------------ API plumbing

%% From inside a callback of the process `Server' names, a gen_server:call would wait
%% on itself. Callbacks call the public API with nothing but the server, so the one
%% channel from the callback's frame to the process's state is the process
%% dictionary: with_view/2 puts a view there for exactly the length of each callback
%% and takes it away after, and self-calls are answered from it. Outside callbacks
%% the key is absent and every call goes through gen_server.
query(Server, Q) ->
    case self_view(Server) of
        {ok, View} -> local_query(Q, View);
        error -> gen_server:call(Server, {?TAG, Q})
    end.

mutate(Server, Op) ->
    case self_view(Server) of
        {ok, _} ->
            self() ! {?TAG, deferred, Op},
            ok;
        error ->
            gen_server:call(Server, {?TAG, Op})
    end.

self_view(Server) ->
    case get(?TAG) of
        #{name := Name} = View when Server =:= Name; Server =:= self();
                                    Server =:= {Name, node()} ->
            {ok, View};
        _ ->
            error
    end.

peer_node(N) when is_atom(N) -> N;
peer_node({Name, N}) when is_atom(Name), is_atom(N) -> N;
peer_node(P) when is_pid(P) -> node(P);
peer_node(_) -> erlang:error(badarg).

%% Runs `F' (a callback) with the view of `S' in place for self-calls.
with_view(S, F) ->
    Old = put(?TAG, view(S)),
    try F()
    after
        case Old of
            undefined -> erase(?TAG);
            _ -> put(?TAG, Old)
        end
    end.

%% What the API answers from.
view(S = #st{ps = PS}) ->
    V = plexus_leader_policy:view(PS),
    V#{name => S#st.name, cluster => S#st.cluster, leader => pid_of(maps:get(leader, V)),
       bootstrap => S#st.bootstrap}.

pid_of(self) -> self();
pid_of(Other) -> Other.

local_query(is_leader, #{role := R}) -> R =:= leader;
local_query(leader, #{leader := L}) -> L;
local_query(term, #{term := T}) -> T;
local_query(peers, #{name := Name, peers := Ns}) -> [{Name, N} || N <- Ns];
local_query(peer_count, #{peers := Ns}) -> length(Ns);
local_query({has_peer, N}, #{peers := Ns}) -> lists:member(N, Ns);
local_query(bootstrap, #{name := Name, bootstrap := B}) -> [{Name, N} || N <- B];
local_query(cluster_id, #{cluster := C}) -> C;
local_query({broadcast, Msg}, #{name := Name, peers := Ns}) ->
    _ = [erlang:send({Name, N}, Msg, [noconnect, nosuspend]) || N <- Ns],
    ok;
local_query({broadcast_bootstrap, Msg}, #{name := Name, bootstrap := B}) ->
    _ = [erlang:send({Name, N}, Msg, [nosuspend]) || N <- B, N =/= node()],
    ok;
local_query(Q, _) ->
    {error, {unknown_call, Q}}.

%% A request of the API to this process.
request(info, S) ->
    {reply, info_map(S), S};
request({Op, _} = Change, S) when Op =:= join; Op =:= leave ->
    step(Change, S);
request(Q, S) ->
    {reply, local_query(Q, view(S)), S}.

noreply({reply, _, S}) -> {noreply, S};
noreply(Other) -> Other.

info_map(S = #st{name = Name, ps = PS}) ->
    I = plexus_leader_policy:info(PS),
    #{leader := Leader, peer_nodes := Peers, present_nodes := Present, stats := Stats} = I,
    (maps:without([peer_nodes, present_nodes], I))#{
      name => Name, node => node(), cluster_id => S#st.cluster, cluster_key => S#st.cid,
      leader => pid_of(Leader), peers => [{Name, N} || N <- Peers],
      present => [{Name, N} || N <- Present], hard_state_file => S#st.file,
      timing => S#st.timing, stats => Stats#{foreign => S#st.foreign}}.

wrap_reply({reply, R, MS}, S) -> {reply, R, S#st{mod_state = MS}};
wrap_reply({reply, R, MS, X}, S) -> {reply, R, S#st{mod_state = MS}, X};
wrap_reply({noreply, MS}, S) -> {noreply, S#st{mod_state = MS}};
wrap_reply({noreply, MS, X}, S) -> {noreply, S#st{mod_state = MS}, X};
wrap_reply({stop, R, Reply, MS}, S) -> {stop, R, Reply, S#st{mod_state = MS}};
wrap_reply({stop, R, MS}, S) -> {stop, R, S#st{mod_state = MS}};
wrap_reply(Other, S) -> {stop, {bad_return_value, Other}, S}.

wrap_noreply({noreply, MS}, S) -> {noreply, S#st{mod_state = MS}};
wrap_noreply({noreply, MS, X}, S) -> {noreply, S#st{mod_state = MS}, X};
wrap_noreply({stop, R, MS}, S) -> {stop, R, S#st{mod_state = MS}};
wrap_noreply(Other, S) -> {stop, {bad_return_value, Other}, S}.

%% ------------------------------------------------------------------ the runner

%% One event through the policy, then its effects in the order it gives them: the
%% hard state is on disk before anything leaves, and the callbacks run last, seeing
%% the state after the whole event. A membership change answers with its `reply'.
step(Event, S = #st{ps = PS}) ->
    Now = now_ms(),
    Ctx = #{now => Now, connected => nodes()},
    {PS1, Effects} = plexus_leader_policy:handle(Event, Ctx, PS),
    {Role, _} = plexus_leader_policy:role_and_term(PS1),
    Clocks = plexus_leader_events:observe(Role, Now, S#st.clocks),
    run(Effects, noreply, S#st{ps = PS1, clocks = Clocks}).

run([], noreply, S) ->
    {noreply, S};
run([], {reply, R}, S) ->
    {reply, R, S};
run([{persist, Hard, Config} | Rest], Reply, S = #st{file = File}) ->
    %% A failure stops the process before anything that depends on it leaves.
    case plexus_leader_hard_state:write(File, Hard, Config) of
        ok ->
            run(Rest, Reply, S);
        {error, R} ->
            logger:error("~p ~p: cannot write ~ts: ~p", [?MODULE, S#st.name, File, R]),
            {stop, {hard_state_write_failed, File, R}, S}
    end;
run([{send, Node, Payload} | Rest], Reply, S) ->
    run(Rest, Reply, send_to(Node, Payload, S));
run([{callback, F, Args} | Rest], Reply, S) ->
    Clocks = plexus_leader_events:callback(F, Args, event_meta(S), S#st.clocks),
    case callback(F, Args, S#st{clocks = Clocks}) of
        {ok, S1} -> run(Rest, Reply, S1);
        {stop, _, _} = Stop -> Stop
    end;
run([{timer, Delay, Event} | Rest], Reply, S) ->
    _ = erlang:send_after(Delay, self(), {?TAG, timer, Event}),
    run(Rest, Reply, S);
run([{log, Level, Format, Args} | Rest], Reply, S) ->
    logger:log(Level, Format, Args),
    run(Rest, Reply, S);
run([{reply, R} | Rest], _, S) ->
    run(Rest, {reply, R}, S).

%% What every election event says about this process (plexus_leader_events).
event_meta(#st{name = Name, cluster = Cluster, ps = PS}) ->
    {_, Term} = plexus_leader_policy:role_and_term(PS),
    #{name => Name, node => node(), cluster_id => Cluster, term => Term}.

%% Calls an optional election callback.
callback(F, Args, S = #st{module = M, mod_state = MS}) ->
    case erlang:function_exported(M, F, length(Args) + 1) of
        false ->
            {ok, S};
        true ->
            case with_view(S, fun() -> apply(M, F, Args ++ [MS]) end) of
                {ok, MS1} -> {ok, S#st{mod_state = MS1}};
                {stop, R, MS1} -> {stop, R, S#st{mod_state = MS1}};
                Other -> {stop, {bad_return_value, Other}, S}
            end
    end.

%% Fixed cadence on absolute time, so ticks do not drift with load; more than two
%% ticks behind (the process was starved), restart the cadence from now.
schedule_tick(S = #st{next_tick = Prev, tick_ms = TickMs}) ->
    Now = now_ms(),
    Next = case Prev + TickMs of
               N when N < Now - 2 * TickMs -> Now + TickMs;
               N -> N
           end,
    Ref = erlang:start_timer(Next, self(), tick, [{abs, true}]),
    S#st{timer = Ref, next_tick = Next}.

%% Over distribution, never blocking: a busy connection drops the message (Raft
%% tolerates loss). An unconnected peer is offered a connection (the kernel's
%% dist_auto_connect policy decides) at most every CONNECT_EVERY_MS.
send_to(Node, Payload, S = #st{name = Name}) ->
    Msg = {?TAG, S#st.cid, self(), Payload},
    case erlang:send({Name, Node}, Msg, [noconnect, nosuspend]) of
        noconnect ->
            Now = now_ms(),
            case S#st.connect_tries of
                #{Node := T} when Now - T < ?CONNECT_EVERY_MS -> S;
                Tries ->
                    _ = erlang:send({Name, Node}, Msg, [nosuspend]),
                    S#st{connect_tries = Tries#{Node => Now}}
            end;
        _ ->
            S
    end.

now_ms() -> erlang:monotonic_time(millisecond).
