%% @doc Leader election as a behaviour: one process per node, one leader per cluster
%% (DESIGN.md §2; the options, API and callbacks of ergo's `leader' actor).
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
%% the process it names (queries are answered from the process's own view; `join/2'
%% and `leave/2' are then queued and return `ok').
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
%% <li>`data_dir': where the hard state is kept (default: the `plexus' application's
%%     `data_dir' env, else `filename:basedir(user_data, "plexus")');</li>
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
%% changes follow the rules above `membership_change/2'. Leadership is not a lease: a deposed leader can still believe it
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
%% Hard-state file: see read_durable/1. Version 1 files are still read.
-define(HS_MAGIC, "PXHS").
-define(HS_VERSION, 2).
%% Voters per cluster, this node included (PLEXUS_ELECTION_MAX_NODES).
-define(MAX_VOTERS, 64).
%% A peer we cannot reach is offered a connection at most this often (ms).
-define(CONNECT_EVERY_MS, 1000).

-record(peer, {
    node :: node(),
    pid :: pid() | undefined,
    present = false :: boolean(),
    heard = 0 :: integer(),         % monotonic ms of the last message from it
    key = {0, 0} :: {non_neg_integer(), non_neg_integer()}  % membership key it reported
}).

-record(st, {
    name :: atom(),
    module :: module(),
    mod_state :: term(),
    e :: plexus_election:election(),
    self_id :: plexus_election:id(),
    cluster :: term(),
    cid :: non_neg_integer(),
    bootstrap = [] :: [node()],
    cfg_ver = 0 :: non_neg_integer(),        % version of the membership in `peers'
    cfg_term = 0 :: non_neg_integer(),       % term in which that version was made
    machine_cfg :: map(),                    % plexus_election:new/1 settings
    peers = #{} :: #{plexus_election:id() => #peer{}},
    tick_ms :: pos_integer(),
    hb_ticks :: pos_integer(),
    ticks = 0 :: non_neg_integer(),
    next_tick :: integer(),
    timer :: reference() | undefined,
    peer_timeout :: pos_integer(),
    timing :: map(),
    file :: file:filename_all(),
    term = 0 :: non_neg_integer(),
    voted_for = 0 :: non_neg_integer(),
    role = follower :: plexus_election:role(),
    leader_id = 0 :: non_neg_integer(),
    reported = undefined :: self | pid() | undefined,
    connect_tries = #{} :: #{node() => integer()},
    foreign = 0 :: non_neg_integer(),
    refused_stale = 0 :: non_neg_integer(),  % vote requests from older memberships
    fast = 0 :: non_neg_integer()           % staggered fast-path campaigns started
}).

%% ------------------------------------------------------------------ start

%% @doc Starts the process, registered locally as `Name', linked to the caller.
%% Fails with `{invalid_configuration, What}' for a bad option and
%% `{hard_state, File, Reason}' when the saved state cannot be read.
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

%% @doc A child spec: `{Name, Module, Args, Opts}' or `#{name, module, args, opts}'
%% (from Elixir: `{:plexus_leader, {name, MyModule, args, opts}}').
-spec child_spec({atom(), module(), term(), options()} | map()) -> supervisor:child_spec().
child_spec({Name, Module, Args, Opts}) ->
    #{id => {?MODULE, Name},
      start => {?MODULE, start_link, [Name, Module, Args, Opts]},
      restart => permanent,
      shutdown => 5000,
      type => worker,
      modules => [?MODULE, Module]};
child_spec(#{name := Name, module := Module} = M) ->
    child_spec({Name, Module, maps:get(args, M, []), maps:get(opts, M, [])}).

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
%% not_found}' if not a voter.
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
    Key = plexus_election:cluster_key(Cluster),
    filename:join([DataDir, "plexus_leader", safe(node()),
                   safe(Name) ++ "-" ++ hex64(Key) ++ ".hs"]).

%% 16 lower-case hex digits.
hex64(K) -> tl(string:lowercase(integer_to_list(K + (1 bsl 64), 16))).

%% @doc Reads a hard-state file: `{ok, {Term, VotedFor}}', `{ok, {0, 0}}' when it does
%% not exist (a node that never ran), `{error, Reason}' when it exists but cannot be
%% read or is damaged (the process then refuses to start rather than risk a second
%% vote in a term). The membership saved with it: `read_membership/1'.
-spec read_hard_state(file:filename_all()) ->
    {ok, plexus_election:hard_state()} | {error, term()}.
read_hard_state(File) ->
    case read_durable(File) of
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
    case read_durable(File) of
        {ok, _Hard, {Ver, _CTerm, Members}} -> {ok, {Ver, Members}};
        {ok, _Hard, none} -> {ok, none};
        {error, enoent} -> {ok, none};
        {error, _} = E -> E
    end.

%% Format 1: magic, 1, term, voted_for, CRC-32 of what precedes it.
%% Format 2: magic, 2, term, voted_for, membership version and the term it was made in,
%% member count, then each member
%% as a 16-bit length and its node name in UTF-8, CRC-32 of what precedes it. The
%% membership is written in the same file as the term and vote, so one rename moves
%% both atomically: a node never restarts with a vote from one moment and voters from
%% another.
read_durable(File) ->
    case file:read_file(File) of
        {ok, Bin} when byte_size(Bin) >= 4 ->
            Body = binary:part(Bin, 0, byte_size(Bin) - 4),
            <<Crc:32>> = binary:part(Bin, byte_size(Bin), -4),
            case erlang:crc32(Body) =:= Crc andalso parse_durable(Body) of
                {ok, Hard, Config} -> {ok, Hard, Config};
                _ -> {error, corrupt}
            end;
        {ok, _} -> {error, corrupt};
        {error, _} = E -> E
    end.

parse_durable(<<?HS_MAGIC, 1, Term:64, Voted:64>>) ->
    {ok, {Term, Voted}, none};
parse_durable(<<?HS_MAGIC, 2, Term:64, Voted:64, Ver:64, CTerm:64, N:16, Rest/binary>>) ->
    case parse_members(N, Rest, []) of
        {ok, Members} -> {ok, {Term, Voted}, {Ver, CTerm, Members}};
        error -> error
    end;
parse_durable(_) ->
    error.

%% Node names are atoms already (this file is our own, not input from the network).
parse_members(0, <<>>, Acc) -> {ok, lists:sort(Acc)};
parse_members(N, <<Len:16, Name:Len/binary, Rest/binary>>, Acc) when N > 0, Len > 0 ->
    parse_members(N - 1, Rest, [binary_to_atom(Name, utf8) | Acc]);
parse_members(_, _, _) -> error.

%% Temp file, fsync, rename, fsync of the directory (without the last, a power cut
%% after the rename may bring the old file back: an older term or vote).
write_durable(File, {Term, Voted}, {Ver, CTerm, Members}) ->
    Names = [atom_to_binary(M, utf8) || M <- Members],
    Body = iolist_to_binary([<<?HS_MAGIC, ?HS_VERSION, Term:64, Voted:64, Ver:64, CTerm:64,
                               (length(Names)):16>>,
                             [<<(byte_size(B)):16, B/binary>> || B <- Names]]),
    Bin = <<Body/binary, (erlang:crc32(Body)):32>>,
    Tmp = case File of
              B when is_binary(B) -> <<B/binary, ".tmp">>;
              L -> L ++ ".tmp"
          end,
    case file:open(Tmp, [write, raw, binary]) of
        {ok, Fd} ->
            R = case file:write(Fd, Bin) of
                    ok -> file:sync(Fd);
                    E -> E
                end,
            _ = file:close(Fd),
            case R of
                ok ->
                    case file:rename(Tmp, File) of
                        ok -> sync_dir(filename:dirname(File));
                        Err -> Err
                    end;
                Err -> Err
            end;
        Err ->
            Err
    end.

sync_dir(Dir) ->
    Bin = case Dir of
              B when is_binary(B) -> B;
              L -> unicode:characters_to_binary(L, unicode, file:native_name_encoding())
          end,
    plexus_nif:fsync_dir(Bin).

%% Node and process names are atoms of the most permissive kind; keep file names tame:
%% every UTF-8 byte outside [A-Za-z0-9_.@-] becomes %XX (so distinct names stay distinct).
safe(Atom) ->
    lists:flatmap(fun(C) when C >= $a, C =< $z; C >= $A, C =< $Z; C >= $0, C =< $9;
                              C =:= $_; C =:= $-; C =:= $.; C =:= $@ -> [C];
                     (C) -> lists:flatten(io_lib:format("%~2.16.0B", [C]))
                  end, binary_to_list(atom_to_binary(Atom, utf8))).

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
            snapshot(S),
            case Module:init(Args) of
                {ok, MS} ->
                    ok = net_kernel:monitor_nodes(true),
                    S1 = S#st{mod_state = MS},
                    S2 = tell_peers(alive(S1), undefined, S1),
                    {ok, schedule_tick(S2)};
                {stop, R} -> {stop, R};
                ignore -> ignore;
                Other -> {stop, {bad_return_value, Other}}
            end
    end.

%% @private
handle_call({?TAG, Q}, From, S) ->
    run(fun() -> call(Q, From, S) end, S);
handle_call(Req, From, S = #st{module = M, mod_state = MS}) ->
    case erlang:function_exported(M, handle_call, 3) of
        true ->
            snapshot(S),
            wrap_reply(M:handle_call(Req, From, MS), S);
        false ->
            logger:warning("~p ~p: unexpected call ~tp", [?MODULE, S#st.name, Req]),
            {reply, {error, {unknown_call, Req}}, S}
    end.

%% @private
handle_cast({?TAG, Q}, S) ->
    run(fun() ->
                {reply, _, S1} = call(Q, undefined, S),
                {noreply, S1}
        end, S);
handle_cast(Msg, S = #st{module = M, mod_state = MS}) ->
    case erlang:function_exported(M, handle_cast, 2) of
        true ->
            snapshot(S),
            wrap_noreply(M:handle_cast(Msg, MS), S);
        false ->
            {noreply, S}
    end.

%% @private
handle_info({timeout, Ref, tick}, S = #st{timer = Ref}) ->
    run(fun() -> {noreply, schedule_tick(tick(S))} end, S);
handle_info({?TAG, Cid, From, Payload}, S = #st{cid = Cid}) when is_pid(From) ->
    run(fun() -> {noreply, from_peer(node(From), From, Payload, S)} end, S);
handle_info({?TAG, _OtherCluster, _From, _Payload}, S) ->
    {noreply, S#st{foreign = S#st.foreign + 1}};
handle_info({?TAG, deferred, Op}, S) ->
    run(fun() -> {reply, _, S1} = call(Op, undefined, S), {noreply, S1} end, S);
handle_info({?TAG, fast_campaign, Term}, S) ->
    run(fun() -> {noreply, fast_campaign(Term, S)} end, S);
handle_info({nodedown, Node}, S) ->
    run(fun() -> {noreply, node_down(Node, S)} end, S);
handle_info({nodeup, Node}, S) ->
    case peer_by_node(Node, S) of
        {ok, _, _} -> {noreply, send_to(Node, alive(S), S)};
        error -> {noreply, S}
    end;
handle_info(Info, S = #st{module = M, mod_state = MS}) ->
    case erlang:function_exported(M, handle_info, 2) of
        true ->
            snapshot(S),
            wrap_noreply(M:handle_info(Info, MS), S);
        false ->
            {noreply, S}
    end.

%% @private
handle_continue(C, S = #st{module = M, mod_state = MS}) ->
    snapshot(S),
    wrap_noreply(M:handle_continue(C, MS), S).

%% @private
terminate(Reason, S = #st{module = M, mod_state = MS}) ->
    %% Tell the peers, so a follower of this leader campaigns now rather than after
    %% its timeout (a halted node is seen through nodedown instead).
    _ = [send_to(N, down, S) || #peer{node = N} <- maps:values(S#st.peers)],
    case erlang:function_exported(M, terminate, 2) of
        true -> snapshot(S), M:terminate(Reason, MS);
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
        Opts = case Opts0 of
                   M when is_map(M) -> M;
                   L when is_list(L) -> proplists:to_map(L);
                   _ -> throw({opts, Opts0})
               end,
        Get = fun(K, D) -> maps:get(K, Opts, D) end,
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
        _ = process_flag(priority, Priority),
        Cluster = Get(cluster_id, Name),
        DataDir = Get(data_dir, default_data_dir()),
        [throw({data_dir, DataDir}) || not is_list(DataDir) andalso not is_binary(DataDir)],
        Ticks = fun(Ms) -> (Ms + TickMs - 1) div TickMs end,
        {MinT, MaxT, HbT} = {Ticks(Min), Ticks(Max), Ticks(Hb)},
        [throw({timing, #{election_timeout_min => Min, election_timeout_max => Max,
                          heartbeat_interval => Hb, tick_ms => TickMs}})
         || not (HbT < MinT andalso MinT < MaxT)],
        Boot = bootstrap_nodes(Name, Get(bootstrap, [])),
        SelfId = plexus_election:node_id(node()),
        Cid = plexus_election:cluster_key(Cluster),
        File = hard_state_file(DataDir, Name, Cluster),
        {Hard, Config} = restore(Name, File, Boot),
        {CfgVer, CfgTerm, Members} = Config,
        Peers = lists:foldl(fun(N, Acc) -> add_peer_entry(N, SelfId, Acc) end, #{},
                            [N || N <- Members, N =/= node()]),
        MachineCfg = #{id => SelfId, cluster_id => Cid, election_min_ticks => MinT,
                       election_max_ticks => MaxT, heartbeat_ticks => HbT,
                       pre_vote => PreVote, check_quorum => CheckQuorum},
        E = case plexus_election:new(MachineCfg#{peers => maps:keys(Peers),
                                                 hard_state => Hard}) of
                {ok, Machine} -> Machine;
                {error, Why} -> throw({bootstrap, Why})     % more than 63 peers
            end,
        {Term, Voted} = case Hard of
                            none -> {0, 0};
                            _ -> Hard
                        end,
        case Hard =/= none andalso write_durable(File, Hard, Config) of
            {error, WErr} -> throw({hard_state, File, WErr});
            _ -> ok                             % written (format 2 from now on) or sitting out
        end,
        {ok, #st{cfg_ver = CfgVer, cfg_term = CfgTerm, machine_cfg = MachineCfg, name = Name, module = Module, e = E, self_id = SelfId, cluster = Cluster,
                 cid = Cid, bootstrap = Boot, peers = Peers, tick_ms = TickMs,
                 hb_ticks = HbT, next_tick = now_ms(), peer_timeout = PeerTimeout,
                 timing = #{election_timeout_min => Min, election_timeout_max => Max,
                            heartbeat_interval => Hb, tick_ms => TickMs,
                            peer_timeout => PeerTimeout, pre_vote => PreVote,
                            check_quorum => CheckQuorum, priority => Priority},
                 file = File, term = Term, voted_for = Voted}}
    catch
        throw:{hard_state, _, _} = HS -> {error, HS};
        throw:What -> {error, {invalid_configuration, What}}
    end.

%% The saved hard state and membership. The saved membership wins over `bootstrap',
%% which only seeds a node that has none (issue 8: a restart with the bootstrap list
%% after joins counted votes against a smaller quorum than its peers and led a term
%% that a majority of the real voters also led). A marker file next to the hard state
%% records that the node ran: if the hard state is gone but the marker is there,
%% someone deleted it. The node then says so loudly and sits out one election timeout
%% (hard state `none') rather than start at term 0 with no vote, the way a node votes
%% twice in a term.
restore(Name, File, Boot) ->
    case filelib:ensure_dir(File) of
        ok -> ok;
        {error, DirErr} -> throw({hard_state, File, DirErr})
    end,
    Marker = marker_file(File),
    Seed = {0, 0, lists:usort([node() | Boot])},
    case read_durable(File) of
        {ok, Hard, none} ->
            {Hard, Seed};
        {ok, Hard, {_, _, Members} = Config} ->
            [logger:notice("~p ~p: saved membership ~p replaces bootstrap ~p",
                           [?MODULE, Name, Members, Boot])
             || Boot =/= [], lists:usort([node() | Boot]) =/= Members],
            {Hard, Config};
        {error, enoent} ->
            case filelib:is_regular(Marker) of
                true ->
                    logger:error("~p ~p: hard state ~ts is missing although this node ran "
                                 "before (~ts exists). Without it the node could vote twice "
                                 "in a term and two leaders could share it; it sits out one "
                                 "election timeout and rejoins with the bootstrap voters. "
                                 "Never delete this file.", [?MODULE, Name, File, Marker]),
                    {none, Seed};
                false ->
                    case file:write_file(Marker, <<>>) of
                        ok -> {{0, 0}, Seed};
                        {error, MErr} -> throw({hard_state, Marker, MErr})
                    end
            end;
        {error, R} ->
            throw({hard_state, File, R})
    end.

marker_file(File) ->
    case File of
        B when is_binary(B) -> <<B/binary, ".ran">>;
        L -> L ++ ".ran"
    end.

default_data_dir() ->
    case application:get_env(plexus, data_dir) of
        {ok, D} -> D;
        undefined -> filename:basedir(user_data, "plexus")
    end.

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

%% A new voter entry, refusing two nodes with one id.
add_peer_entry(Node, SelfId, Peers) ->
    Id = plexus_election:node_id(Node),
    case Peers of
        #{Id := #peer{node = Node}} -> Peers;
        #{Id := #peer{node = Other}} -> throw({id_collision, Node, Other});
        _ when Id =:= SelfId -> throw({id_collision, Node, node()});
        _ -> Peers#{Id => #peer{node = Node}}
    end.

%% ------------------------------------------------------------------ API plumbing

query(Server, Q) ->
    case get(?TAG) of
        #{name := Name} = Snap when Server =:= Name; Server =:= self();
                                    Server =:= {Name, node()} ->
            local_query(Q, Snap);
        _ ->
            gen_server:call(Server, {?TAG, Q})
    end.

mutate(Server, Op) ->
    case get(?TAG) of
        #{name := Name} when Server =:= Name; Server =:= self(); Server =:= {Name, node()} ->
            self() ! {?TAG, deferred, Op},
            ok;
        _ ->
            gen_server:call(Server, {?TAG, Op})
    end.

peer_node(N) when is_atom(N) -> N;
peer_node({Name, N}) when is_atom(Name), is_atom(N) -> N;
peer_node(P) when is_pid(P) -> node(P);
peer_node(_) -> erlang:error(badarg).

%% What a callback sees when it calls the API on its own process.
snapshot(S) ->
    put(?TAG, #{name => S#st.name, cluster => S#st.cluster, cid => S#st.cid,
                role => S#st.role, term => S#st.term, leader => leader_pid(S),
                peers => lists:sort([N || #peer{node = N} <- maps:values(S#st.peers)]),
                bootstrap => S#st.bootstrap}).

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

call(info, _From, S) ->
    I = plexus_election:info(S#st.e),
    Voted = case S#st.voted_for of
                0 -> undefined;
                V when V =:= S#st.self_id -> node();
                V -> node_of(V, S)
            end,
    {reply, #{name => S#st.name, node => node(), cluster_id => S#st.cluster,
              cluster_key => S#st.cid, id => S#st.self_id, role => S#st.role,
              term => S#st.term, voted_for => Voted, leader => leader_pid(S),
              leader_node => leader_node(S), peers => sorted_peers(S),
              present => lists:sort([{S#st.name, N}
                                     || #peer{node = N, present = true} <- maps:values(S#st.peers)]),
              quorum => maps:get(quorum, I), hard_state_file => S#st.file,
              timing => S#st.timing,
              config_version => S#st.cfg_ver, config_key => key(S),
              members => member_nodes(S),
              stats => (maps:get(stats, I))#{foreign => S#st.foreign,
                                             fast_campaigns => S#st.fast,
                                             stale_config_votes => S#st.refused_stale}}, S};
call({Op, Node}, _From, S) when Op =:= join; Op =:= leave ->
    case membership_change({Op, Node}, S) of
        {ok, Members} ->
            try {reply, ok, change_config(Members, S)}
            catch throw:{id_collision, _, _} = C -> {reply, {error, C}, S}  % nothing saved
            end;
        {error, _} = E -> {reply, E, S}
    end;
call(Q, _From, S) ->
    snapshot(S),
    {reply, local_query(Q, get(?TAG)), S}.

%% Runs one event; a callback's {stop, ...} unwinds to here.
run(F, _S) ->
    try F()
    catch throw:{?TAG, stop, Reason, S1} -> {stop, Reason, S1}
    end.

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

%% Calls an optional election callback; {stop, ...} unwinds to run/2.
callback(F, Args, S = #st{module = M, mod_state = MS}) ->
    case erlang:function_exported(M, F, length(Args) + 1) of
        false ->
            S;
        true ->
            snapshot(S),
            case apply(M, F, Args ++ [MS]) of
                {ok, MS1} -> S#st{mod_state = MS1};
                {stop, R, MS1} -> throw({?TAG, stop, R, S#st{mod_state = MS1}});
                Other -> throw({?TAG, stop, {bad_return_value, Other}, S})
            end
    end.

%% ------------------------------------------------------------------ the driver loop

tick(S0 = #st{ticks = T}) ->
    S1 = apply_ready(plexus_election:tick(S0#st.e), S0#st{ticks = T + 1}),
    S2 = case (T + 1) rem S1#st.hb_ticks of
             0 -> tell_peers(alive(S1), undefined, S1);
             _ -> S1
         end,
    check_presence(restamp(S2)).

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

%% After every input: (1) persist the hard state, before anything is sent; (2) send;
%% (3) act on term and role changes.
apply_ready({error, _}, S) ->
    S;
apply_ready({Msgs, Hard, Soft}, S0) ->
    S1 = persist(Hard, S0),
    S2 = lists:foldl(fun({To, Bin}, Acc) ->
                             case Acc#st.peers of
                                 #{To := #peer{node = N}} ->
                                     send_to(N, {msg, key(Acc), Bin}, Acc);
                                 _ -> Acc
                             end
                     end, S1, Msgs),
    S3 = term_changed(Hard, S0#st.term, S2),
    report_leader(soft(Soft, S3)).

persist(unchanged, S) ->
    S;
persist({Term, Voted} = H, S) ->
    save(H, {S#st.cfg_ver, S#st.cfg_term, member_nodes(S)}, S),
    S#st{term = Term, voted_for = Voted}.

%% Writes the hard state with a membership; a failure stops the process (nothing that
%% depends on it has left yet).
save(Hard, {Ver, CTerm, Members}, S) ->
    case write_durable(S#st.file, Hard, {Ver, CTerm, lists:usort(Members)}) of
        ok -> ok;
        {error, R} ->
            logger:error("~p ~p: cannot write ~ts: ~p", [?MODULE, S#st.name, S#st.file, R]),
            throw({?TAG, stop, {hard_state_write_failed, S#st.file, R}, S})
    end.

term_changed({New, _}, Old, S) when New =/= Old ->
    callback(handle_term_changed, [Old, New], S);
term_changed(_, _, S) ->
    S.

soft(unchanged, S) -> S;
soft({Role, LeaderId}, S) -> S#st{role = Role, leader_id = LeaderId}.

%% Callbacks when the leader as this node sees it changed: itself, another process
%% (a pid: also a leader that restarted on the same node) or nobody.
report_leader(S) ->
    View = case S#st.role of
               leader -> self;
               _ -> leader_pid(S)
           end,
    case {S#st.reported, View} of
        {Same, Same} -> S;
        {_, self} -> callback(handle_become_leader, [], S#st{reported = self});
        {_, Pid} -> callback(handle_become_follower, [Pid], S#st{reported = Pid})
    end.

leader_pid(#st{role = leader}) -> self();
leader_pid(#st{leader_id = 0}) -> undefined;
leader_pid(#st{leader_id = Id, peers = Peers}) ->
    case Peers of
        #{Id := #peer{pid = Pid}} -> Pid;
        _ -> undefined
    end.

leader_node(#st{role = leader}) -> node();
leader_node(#st{leader_id = 0}) -> undefined;
leader_node(S = #st{leader_id = Id}) -> node_of(Id, S).

node_of(Id, #st{peers = Peers}) ->
    case Peers of
        #{Id := #peer{node = N}} -> N;
        _ -> undefined
    end.

%% ------------------------------------------------------------------ transport

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

tell_peers(Payload, Except, S) ->
    lists:foldl(fun(#peer{node = N}, Acc) when N =/= Except -> send_to(N, Payload, Acc);
                   (_, Acc) -> Acc
                end, S, maps:values(S#st.peers)).

from_peer(Node, Pid, Payload, S) ->
    case peer_by_node(Node, S) of
        {ok, Id, P} ->
            S1 = heard(Id, P#peer{pid = Pid, heard = now_ms()}, S),
            on_payload(Payload, Id, Node, S1);
        error ->
            on_stranger(Payload, Node, S)
    end.

%% Every election message and every `alive' carries the sender's membership key
%% (see below). A peer behind us is sent our membership; a stranger ahead of us is
%% answered with `alive', so that it sends us its membership; a (pre-)vote request
%% from a candidate behind us is refused unanswered (rule 3).
on_payload({msg, Key, Bin}, _Id, Node, S) when is_binary(Bin) ->
    case is_key(Key) of
        false -> S;
        true ->
            S1 = peer_key(Key, Node, S),
            case Key < key(S1) andalso is_vote_request(Bin) of
                true -> S1#st{refused_stale = S1#st.refused_stale + 1};
                false -> apply_ready(plexus_election:step(S1#st.e, Bin), S1)
            end
    end;
on_payload({alive, Key}, Id, Node, S = #st{peers = Peers}) ->
    case is_key(Key) of
        false -> S;
        true ->
            #{Id := P} = Peers,
            peer_key(Key, Node, S#st{peers = Peers#{Id => P#peer{key = Key}}})
    end;
on_payload(down, Id, _Node, S) ->
    lost_peer(Id, left(Id, S));
on_payload({config, Key, Members}, _Id, Node, S) ->
    adopt_config(Key, Members, Node, S);
on_payload(_, _, _, S) ->
    S.

%% From a node that is not a voter here, only a membership naming this node counts
%% (a node started with an empty or old `bootstrap' learns the voters that way).
on_stranger({config, Key, Members}, Node, S) ->
    adopt_config(Key, Members, Node, S);
on_stranger({msg, Key, Bin}, Node, S) when is_binary(Bin) ->
    %% counted by the machine as unknown_peer
    S1 = stranger_key(Key, Node, S),
    apply_ready(plexus_election:step(S1#st.e, Bin), S1);
on_stranger({alive, Key}, Node, S) ->
    stranger_key(Key, Node, S);
on_stranger(_, _, S) ->
    S.

is_vote_request(Bin) ->
    case plexus_election:decode_msg(Bin) of
        {ok, #{type := T}} -> T =:= vote orelse T =:= pre_vote;
        {error, _} -> false
    end.

is_key({T, V}) when is_integer(T), T >= 0, is_integer(V), V >= 0 -> true;
is_key(_) -> false.

key(#st{cfg_term = T, cfg_ver = V}) -> {T, V}.

peer_key(Key, Node, S) ->
    case Key < key(S) of
        true -> send_to(Node, {config, key(S), member_nodes(S)}, S);
        false -> S
    end.

stranger_key(Key, Node, S) ->
    case is_key(Key) andalso key(S) < Key of
        true -> send_to(Node, alive(S), S);
        false -> S
    end.

alive(S) -> {alive, key(S)}.

%% ------------------------------------------------------------------ membership

%% Membership is part of the durable state: the voters and a key {Term, Version}
%% (the term it was made in and a counter), saved with the term and vote (save/3) and
%% replacing `bootstrap' after a restart. Keys compare term first. The rules are Raft's
%% for a log whose only entries are memberships, one voter changed at a time (Ongaro's
%% thesis §4.1, with the 2015 fix "a leader commits an entry of its own term before a
%% change"); the key plays the part of the last entry's {term, index}:
%%
%% 1. Only the leader changes the membership, one voter at a time, and only once a
%%    majority of its voters (itself included) reported its current key and none a
%%    newer one (the entry is committed), and that key is of its own term. Otherwise
%%    join/leave answer `{error, not_leader}' or `{error, {change_in_progress, Key}}'.
%% 2. A new leader whose membership was made in an older term first re-issues it
%%    unchanged with a key of its term (restamp/1, the no-op entry of the fix).
%% 3. The new membership is saved before it is used or sent. A node adopts (saves,
%%    then uses) any membership with a newer key that names it, moving up to the term
%%    of the key first if it is behind; it sends its own to a peer reporting an older
%%    key. (AppendEntries: the newer leader's entry wins.)
%% 4. A node refuses (pre-)votes to a candidate whose key is older than its own (the
%%    election restriction, §5.4.1, on this log); a candidate counts votes against its
%%    own membership.
%%
%% With these, Raft's Leader Completeness holds for memberships: every leader knows
%% every committed membership, so the memberships that leaders of any two terms count
%% against are one committed change apart at most, and any majority of the one meets
%% any majority of the other; two leaders of one term would need disjoint majorities,
%% while each voter votes once per term. test/sim checks this with joins, leaves,
%% restarts, partitions and message loss, and catches the bug of issue 8 when it is
%% planted back (`--plant-bug forget-membership').
membership_change({join, Node}, _S) when Node =:= node() ->
    {error, self};
membership_change(_Op, #st{role = Role}) when Role =/= leader ->
    {error, not_leader};
membership_change(Op, S) ->
    Members = member_nodes(S),
    case {Op, lists:member(element(2, Op), Members), committed(S)} of
        {_, _, false} -> {error, {change_in_progress, key(S)}};
        {{join, _}, true, _} -> {error, already_member};
        {{leave, _}, false, _} -> {error, not_found};
        {{join, _}, false, _} when length(Members) >= ?MAX_VOTERS -> {error, full};
        {{join, N}, false, _} -> {ok, lists:usort([N | Members])};
        {{leave, N}, true, _} -> {ok, Members -- [N]}
    end.

%% Rule 1, for a leader: its key is of its term, a majority of the voters (self
%% included) reported it, and nobody reported a newer one.
committed(S = #st{peers = Peers, cfg_term = CTerm, term = Term}) ->
    Key = key(S),
    Reports = [K || #peer{key = K} <- maps:values(Peers)],
    CTerm =:= Term andalso
        1 + length([x || K <- Reports, K =:= Key]) >= (maps:size(Peers) + 1) div 2 + 1
        andalso not lists:any(fun(K) -> K > Key end, Reports).

%% Rule 2: called after every tick.
restamp(S = #st{role = leader, cfg_term = CTerm, term = Term}) when CTerm < Term ->
    change_config(member_nodes(S), S);
restamp(S) ->
    S.

%% Makes the next membership here, in this leader's term, and sends it to the old and
%% the new voters.
change_config(Members, S = #st{cfg_ver = Ver, term = Term}) ->
    Old = member_nodes(S),
    Key = {Term, Ver + 1},
    S1 = install(Key, Members, S),
    lists:foldl(fun(N, Acc) -> send_to(N, {config, Key, Members}, Acc) end,
                S1, lists:usort(Old ++ Members) -- [node()]).

adopt_config(Key, Members, From, S) when is_list(Members) ->
    Valid = is_key(Key) andalso length(Members) =< ?MAX_VOTERS andalso
        lists:all(fun is_atom/1, Members),
    case Valid andalso key(S) < Key andalso lists:member(node(), Members) of
        true ->
            try adopt(Key, lists:usort(Members), S) of
                S1 -> tell_peers(alive(S1), undefined, S1)  % report it at once
            catch throw:{id_collision, _, _} = C ->
                    logger:error("~p ~p: membership ~p from ~p refused: ~p",
                                 [?MODULE, S#st.name, Key, From, C]),
                    S
            end;
        false ->
            S       % malformed, not newer, or not naming this node (it was removed)
    end;
adopt_config(_, _, _, S) ->
    S.

%% Rule 3: a membership is used only with a term at least its key's. Behind that
%% term, the node moves to it as a follower without a vote, by restarting its machine
%% from the saved {CTerm, 0} (the machine has no other input that raises a term, and a
%% restart from saved hard state is always safe).
adopt({CTerm, _} = Key, Members, S) when CTerm =< S#st.term ->
    install(Key, Members, S);
adopt({CTerm, Ver}, Members, S) ->
    Self = S#st.self_id,
    Gone = [Id || {Id, #peer{node = N}} <- maps:to_list(S#st.peers),
                  not lists:member(N, Members)],
    S0 = lists:foldl(fun left/2, S, Gone),
    Peers = lists:foldl(fun(N, Acc) ->
                                Id = plexus_election:node_id(N),
                                case S0#st.peers of
                                    #{Id := P = #peer{node = N}} -> Acc#{Id => P};
                                    _ -> add_peer_entry(N, Self, Acc)
                                end
                        end, #{}, Members -- [node()]),
    save({CTerm, 0}, {Ver, CTerm, Members}, S0),
    {ok, E} = plexus_election:new((S0#st.machine_cfg)#{peers => maps:keys(Peers),
                                                        hard_state => {CTerm, 0}}),
    S1 = S0#st{e = E, peers = Peers, cfg_ver = Ver, cfg_term = CTerm, term = CTerm,
               voted_for = 0, role = follower, leader_id = 0},
    S2 = callback(handle_term_changed, [S0#st.term, CTerm], S1),
    report_leader(S2).

%% Saves the membership with the hard state, then applies it to the machine.
install({CTerm, Ver}, Members, S) ->
    Self = S#st.self_id,
    _ = lists:foldl(fun(N, Acc) -> add_peer_entry(N, Self, Acc) end, #{},
                    Members -- [node()]),                 % throws on an id collision
    save({S#st.term, S#st.voted_for}, {Ver, CTerm, Members}, S),
    Current = member_nodes(S),
    S1 = S#st{cfg_ver = Ver, cfg_term = CTerm},
    S2 = lists:foldl(fun remove_member/2, S1, Current -- Members),
    lists:foldl(fun add_member/2, S2, Members -- Current).

%% add_peer/remove_peer never change the term or vote, so apply_ready below persists
%% nothing mid-change.
add_member(Node, S) ->
    Id = plexus_election:node_id(Node),
    case plexus_election:add_peer(S#st.e, Id) of
        {error, R} ->
            logger:error("~p ~p: cannot add ~p: ~p", [?MODULE, S#st.name, Node, R]),
            S;
        Ready ->
            S1 = S#st{peers = add_peer_entry(Node, S#st.self_id, S#st.peers)},
            send_to(Node, alive(S1), apply_ready(Ready, S1))
    end.

remove_member(Node, S) ->
    case peer_by_node(Node, S) of
        {ok, Id, _} ->
            S1 = left(Id, S),
            Ready = plexus_election:remove_peer(S1#st.e, Id),
            apply_ready(Ready, S1#st{peers = maps:remove(Id, S1#st.peers)});
        error ->
            S
    end.

%% Every voter, this node included, sorted.
member_nodes(S) ->
    lists:usort([node() | [N || #peer{node = N} <- maps:values(S#st.peers)]]).

sorted_peers(S) ->
    lists:sort([{S#st.name, N} || #peer{node = N} <- maps:values(S#st.peers)]).

peer_by_node(Node, #st{peers = Peers}) ->
    Id = plexus_election:node_id(Node),
    case Peers of
        #{Id := P = #peer{node = Node}} -> {ok, Id, P};
        _ -> error
    end.

%% ------------------------------------------------------------------ presence

heard(Id, P = #peer{present = true}, S) ->
    S#st{peers = (S#st.peers)#{Id => P}};
heard(Id, P, S) ->
    S1 = S#st{peers = (S#st.peers)#{Id => P#peer{present = true}}},
    callback(handle_peer_joined, [{S#st.name, P#peer.node}], S1).

left(Id, S) ->
    case S#st.peers of
        #{Id := P = #peer{present = true}} ->
            S1 = S#st{peers = (S#st.peers)#{Id => P#peer{present = false}}},
            callback(handle_peer_left, [{S#st.name, P#peer.node}], S1);
        _ ->
            S
    end.

check_presence(S = #st{peer_timeout = Timeout}) ->
    Now = now_ms(),
    Stale = [Id || {Id, #peer{present = true, heard = H}} <- maps:to_list(S#st.peers),
                   Now - H > Timeout],
    lists:foldl(fun left/2, S, Stale).

node_down(Node, S) ->
    case peer_by_node(Node, S) of
        {ok, Id, _} ->
            lost_peer(Id, left(Id, S));
        error ->
            S
    end.

%% The fast path (DESIGN.md §2), staggered. The BEAM tells every survivor within
%% milliseconds that the leader's node went (or its process said goodbye). Were they all
%% to campaign at once, they would all stand in the same term and split the vote, and
%% the cluster would wait out a randomized timeout after all. So every survivor forgets
%% the leader at once (it then grants the others' pre-votes), and campaigns after
%% rank x stagger ms, rank being its place among the live voters sorted by id: the
%% first campaigns at once and normally wins in one round; the next ones only act if
%% no leader (and no new term) appeared meanwhile. Votes are still needed: safety is
%% the core's, this only orders the attempts.
lost_peer(Id, S0) ->
    WasLeader = S0#st.role =:= follower andalso S0#st.leader_id =:= Id,
    S1 = apply_ready(plexus_election:forget_leader(S0#st.e, Id), S0),
    case WasLeader of
        false ->
            S1;
        true ->
            case rank(Id, S1) * stagger_ms(S1) of
                0 -> fast_campaign(S1#st.term, S1);
                Delay ->
                    _ = erlang:send_after(Delay, self(), {?TAG, fast_campaign, S1#st.term}),
                    S1
            end
    end.

fast_campaign(Term, S = #st{role = follower, leader_id = 0, term = Term}) ->
    apply_ready(plexus_election:campaign(S#st.e), S#st{fast = S#st.fast + 1});
fast_campaign(_Term, S) ->
    S.

rank(DeadId, S = #st{self_id = Self}) ->
    Connected = nodes(),
    Live = lists:sort([Self | [Id || {Id, #peer{node = N}} <- maps:to_list(S#st.peers),
                                     Id =/= DeadId, lists:member(N, Connected)]]),
    length(lists:takewhile(fun(Id) -> Id =/= Self end, Live)).

stagger_ms(#st{tick_ms = T, timing = #{heartbeat_interval := Hb}}) ->
    max(T, Hb div 2).

now_ms() -> erlang:monotonic_time(millisecond).
