%% @doc The discovery facade (doc/DESIGN.md §5; seeds: Gleam `distribute' discovery, Raxol
%% Discovery): one place to ask "who are my peers, and are they healthy?", whatever
%% finds them.
%%
%% A `plexus_discovery' server runs one adapter (`plexus_discovery_adapter'): `beam'
%% (the default: connected nodes), `epmd', `dns', `gossip', `kubernetes', `tailscale',
%% `registry', `cnode', a module of your own, or `none' (single-node mode: no peers,
%% always `up'). It keeps the peer set, tells subscribers about every change, and
%% tracks health.
%%
%% <b>Peers</b> are `#{id := PeerId, metadata := #{binary() => binary()}}' with PeerId a
%% binary `<<"name@host">>': nothing from the network becomes an atom here unless
%% `connect => true' needs one to connect to a peer its adapter vouches for (see
%% <b>Connecting</b>).
%%
%% <b>Events</b>: `{peer_up, Peer, Meta}', `{peer_update, Peer, Meta}' (metadata
%% changed) and `{peer_down, Peer, Reason}', where Meta is the peer's metadata. A fun
%% subscriber is called with the event (in a process of its own, so a slow or crashing
%% fun never blocks the server or other subscribers); a pid subscriber receives
%% `{plexus_discovery, Event}'.
%%
%% <b>Gap-free subscriptions</b>: `subscribe_snapshot/1,2' returns the current peers and
%% registers the subscriber in one step of the server, and every later change reaches
%% it in order, exactly once (`subscribe/1,2' is the same without the snapshot).
%%
%% <b>Connecting</b>: with `connect => true' every discovered peer whose id is a
%% well-formed node name is connected (`net_kernel:connect_node/1' in a helper
%% process, never in the server), and a peer that stays discovered but whose connection
%% drops is reconnected with exponential backoff (200 ms doubling to 5 s) until it is
%% back or no longer discovered. (libcluster leaves a dropped node alone until its list
%% changes.) Only an adapter that <em>vouches</em> for its peers
%% (`plexus_discovery_adapter:authenticated/1' returns true: the operator's own
%% configuration, DNS, Kubernetes API or tailnet, sealed gossip, the C node's
%% cookie-authenticated view) gets its peers connected; the peers of any other adapter
%% (the `registry' adapter, whose views travel unauthenticated, and a custom adapter
%% that does not declare the callback) stay binaries: reported, never made atoms,
%% never connected. Node atoms are made only there, one per vouched-for peer.
%%
%% <b>Health</b>: `up' while syncs succeed; `{degraded, Error}' after one or two
%% failures in a row; `{down, Error}' after three. Failed syncs never drop peers.
%%
%% <b>Options</b> (all optional): `name' (registered name, default `plexus_discovery'),
%% `adapter' (default `beam', see `default_adapter_name/0'), `sync_interval_ms' (5000),
%% `sync_timeout_ms' (5000), `sync_max_heap_mb' (256: the heap of a sync's process; past
%% it the sync fails with `{heap_limit, Mb}'), `telemetry_prefix' (`[plexus, discovery]'), `seed_peers'
%% (`[]': node names the adapter may use to bootstrap), `custom' (`#{}': adapter
%% options, see each adapter module), `connect' (`false').
%%
%% <b>Inside</b> (for maintainers): this module is the API and a thin runner over pure
%% parts. `plexus_discovery_peers' turns what the adapter reports into the new peer set
%% and the events it causes; `plexus_discovery_subs' is the subscriber registry;
%% `plexus_discovery_connect' decides which peers to connect and when. The runner
%% keeps their states, then sends the events (subscribers, telemetry) and performs
%% the connect effects (timers, helper processes, the one place a node atom is made).
%%
%% <b>Telemetry</b> (through `plexus_telemetry': `telemetry' when it is loaded, else
%% logger debug reports): events `Prefix ++ [sync]' (measurements
%% `#{duration_ms, peers}', metadata `#{adapter, result}'),
%% `Prefix ++ [peer_up | peer_update | peer_down]' (`#{count => 1}',
%% `#{peer => PeerId}').
-module(plexus_discovery).
-behaviour(gen_server).

-export([child_spec/1, start_link/0, start_link/1, stop/0, stop/1, default_adapter_name/0]).
-export([subscribe/1, subscribe/2, subscribe_snapshot/1, subscribe_snapshot/2,
         unsubscribe/1, unsubscribe/2, snapshot/0, snapshot/1, lookup/1, lookup/2,
         health/0, health/1, health_info/0, health_info/1, sync_now/0, sync_now/1]).
-export([is_transient_error/1, is_permanent_error/1, adapter_module/1, valid_node_name/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, format_status/2]).

-export_type([peer/0, peer_id/0, event/0, error/0, health/0, health_info/0, options/0,
              sub_id/0, server/0]).

-type peer_id() :: binary().
-type metadata() :: #{binary() => binary()}.
-export_type([metadata/0]). % used in the specs of exported functions
-type peer() :: #{id := peer_id(), metadata := metadata()}.
-type event() :: {peer_up, peer(), metadata()}
               | {peer_update, peer(), metadata()}
               | {peer_down, peer(), Reason :: term()}.
-type error() :: {start_failed, term()}
               | {stop_failed, term()}
               | {shutdown_timeout, non_neg_integer()}
               | {sync_failed, term()}
               | {peer_not_found, peer_id()}
               | {invalid_configuration, term()}
               | {timeout, non_neg_integer()}
               | {subscription_failed, term()}.
-type health() :: up | {degraded, error()} | {down, error()}.
-type health_info() :: #{status := up | degraded | down,
                         last_sync_time_ms := non_neg_integer() | undefined,
                         last_error := error() | undefined,
                         known_peers_count := non_neg_integer(),
                         adapter := module() | none,
                         adapter_info := map()}.
-type adapter() :: beam | epmd | dns | gossip | kubernetes | tailscale | registry | cnode
                 | none | module().
-export_type([adapter/0]). % used in the specs of exported functions
-type options() :: #{name => atom(),
                     adapter => adapter(),
                     sync_interval_ms => pos_integer(),
                     sync_timeout_ms => pos_integer(),
                     sync_max_heap_mb => pos_integer(),
                     telemetry_prefix => [atom()],
                     seed_peers => [peer_id() | node()],
                     custom => map(),
                     connect => boolean()}.
-type sub_id() :: reference().
-type server() :: atom() | pid().

-define(DEFAULT, plexus_discovery).
-define(CALL_TIMEOUT, 15000).
-define(DOWN_AFTER_FAILURES, 3).
%% What an adapter reports is walked by the server: an improper list ([P | x], which
%% is_list/1 takes) crashed it there, and a sync that returned one every time brought
%% down the plexus application (the supervisor's restart intensity) within a second.
-define(PROPER_LIST(L), (is_list(L) andalso length(L) >= 0)).

%% Sync workers report by their exit reason, on purpose.
-dialyzer({nowarn_function, [start_sync/1]}).

-record(sync, {pid :: pid(), mref :: reference(), timer :: reference(),
               gen :: non_neg_integer(), start :: integer()}).
%% The runner's state: the three pure parts (peer set, subscribers, connections) and
%% the adapter, sync and health bookkeeping around them.
-record(st, {name :: atom(),
             mod :: module() | none,
             astate :: term(),
             opts :: map(),
             peers = plexus_discovery_peers:new() :: plexus_discovery_peers:set(),
             subs = plexus_discovery_subs:new() :: plexus_discovery_subs:subs(),
             conn = plexus_discovery_connect:new(false) :: plexus_discovery_connect:state(),
             sync :: #sync{} | undefined,
             sync_timer :: reference() | undefined,
             failures = 0 :: non_neg_integer(),
             last_sync :: non_neg_integer() | undefined,
             last_error :: error() | undefined,
             %% sync_now callers, answered when the sync that runs for them ends
             waiters = [] :: [gen_server:from()],
             %% sync_now callers that came while a sync ran for earlier ones: the next
             %% sync is theirs (replacing that one starved them all, see start_sync_now)
             queued = [] :: [gen_server:from()],
             %% the adapter vouches for its peers (authenticated/1): only then connect
             vouched = false :: boolean()}).

%% ------------------------------------------------------------------ API

%% @doc A supervisor child spec; the child id is the server's name. Options as for
%% `start_link/1' (a map or a keyword list; `[]' is the default server, which is what
%% a bare `plexus_discovery' in an Elixir child list asks for); anything else raises
%% `error({bad_options, Opts})'.
-spec child_spec(options() | proplists:proplist()) -> supervisor:child_spec().
child_spec(Opts0) ->
    Opts = plexus_opts:to_map_or_error(Opts0),
    Name = maps:get(name, Opts, ?DEFAULT),
    #{id => Name, start => {?MODULE, start_link, [Opts]}, restart => permanent,
      shutdown => 5000, type => worker, modules => [?MODULE]}.

%% @doc Starts the default server (`beam' adapter, registered as `plexus_discovery').
-spec start_link() -> {ok, pid()} | {error, error() | term()}.
start_link() ->
    start_link(#{}).

%% @doc Starts a server. Options are a map or a keyword list (`[{adapter, gossip}]').
%% `{error, {invalid_configuration, R}}' for bad options (`{bad_options, Opts}' when
%% they are neither), `{error, {start_failed, R}}' when the adapter cannot start.
-spec start_link(options() | proplists:proplist()) -> {ok, pid()} | {error, error() | term()}.
start_link(Opts0) ->
    case plexus_opts:to_map(Opts0) of
        {ok, Opts} -> start_validated(Opts);
        {error, R} -> {error, {invalid_configuration, R}}
    end.

start_validated(Opts) ->
    case validate(Opts) of
        {ok, O} ->
            case gen_server:start_link({local, maps:get(name, O)}, ?MODULE, O, []) of
                {error, {already_started, _}} = E -> E;
                Other -> Other
            end;
        {error, _} = E ->
            E
    end.

%% @doc Stops the default server.
-spec stop() -> ok | {error, error()}.
stop() -> stop(?DEFAULT).

%% @doc Stops a server: `{error, {stop_failed, not_running}}' when there is none,
%% `{error, {shutdown_timeout, Ms}}' when it does not stop in time.
-spec stop(server()) -> ok | {error, error()}.
stop(Server) ->
    Ms = 10000,
    try gen_server:stop(Server, normal, Ms)
    catch
        exit:noproc -> {error, {stop_failed, not_running}};
        exit:timeout -> {error, {shutdown_timeout, Ms}};
        exit:Reason -> {error, {stop_failed, Reason}}
    end.

%% @doc The adapter used when none is given: `beam'.
-spec default_adapter_name() -> beam.
default_adapter_name() -> beam.

%% @doc Subscribes a fun (called with each event) or a pid (sent
%% `{plexus_discovery, Event}') to the default server.
-spec subscribe(fun((event()) -> term()) | pid()) -> {ok, sub_id()} | {error, error()}.
subscribe(Sub) -> subscribe(?DEFAULT, Sub).

%% @doc Subscribes to the given server.
-spec subscribe(server(), fun((event()) -> term()) | pid()) -> {ok, sub_id()} | {error, error()}.
subscribe(Server, Sub) when is_function(Sub, 1); is_pid(Sub) ->
    case call(Server, {subscribe, Sub, false}) of
        {ok, Id, _} -> {ok, Id};
        Other -> Other
    end;
subscribe(_Server, _Sub) ->
    erlang:error(badarg).

%% @doc Takes a snapshot and subscribes atomically: the snapshot plus the events that
%% follow describe every change exactly once, in order.
-spec subscribe_snapshot(fun((event()) -> term()) | pid()) ->
    {ok, sub_id(), [peer()]} | {error, error()}.
subscribe_snapshot(Sub) -> subscribe_snapshot(?DEFAULT, Sub).

-spec subscribe_snapshot(server(), fun((event()) -> term()) | pid()) ->
    {ok, sub_id(), [peer()]} | {error, error()}.
subscribe_snapshot(Server, Sub) when is_function(Sub, 1); is_pid(Sub) ->
    call(Server, {subscribe, Sub, true});
subscribe_snapshot(_Server, _Sub) ->
    erlang:error(badarg).

%% @doc Removes a subscription (`ok' also when it is already gone).
-spec unsubscribe(sub_id()) -> ok | {error, error()}.
unsubscribe(Id) -> unsubscribe(?DEFAULT, Id).

-spec unsubscribe(server(), sub_id()) -> ok | {error, error()}.
unsubscribe(Server, Id) when is_reference(Id) ->
    call(Server, {unsubscribe, Id});
unsubscribe(_Server, _Id) ->
    erlang:error(badarg).

%% @doc The peers known now, sorted by id.
-spec snapshot() -> {ok, [peer()]} | {error, error()}.
snapshot() -> snapshot(?DEFAULT).

-spec snapshot(server()) -> {ok, [peer()]} | {error, error()}.
snapshot(Server) -> call(Server, snapshot).

%% @doc One peer by id (a binary; an atom node name is accepted too).
-spec lookup(peer_id() | node()) -> {ok, peer()} | {error, {peer_not_found, peer_id()}}.
lookup(Id) -> lookup(?DEFAULT, Id).

-spec lookup(server(), peer_id() | node()) ->
    {ok, peer()} | {error, {peer_not_found, peer_id()} | error()}.
lookup(Server, Id) when is_atom(Id) -> lookup(Server, atom_to_binary(Id, utf8));
lookup(Server, Id) when is_binary(Id) -> call(Server, {lookup, Id});
lookup(_Server, _Id) -> erlang:error(badarg).

%% @doc `up | {degraded, Error} | {down, Error}'.
-spec health() -> health().
health() -> health(?DEFAULT).

-spec health(server()) -> health().
health(Server) ->
    case call(Server, health) of
        {error, E} -> {down, E};
        H -> H
    end.

%% @doc `#{status, last_sync_time_ms, last_error, known_peers_count, adapter,
%% adapter_info}'; `last_sync_time_ms' is the system time of the last successful sync.
-spec health_info() -> health_info() | {error, error()}.
health_info() -> health_info(?DEFAULT).

-spec health_info(server()) -> health_info() | {error, error()}.
health_info(Server) -> call(Server, health_info).

%% @doc Runs a sync now and waits for it (tests, operators): `ok' or the sync's error.
%% The server answers other calls meanwhile.
-spec sync_now() -> ok | {error, error()}.
sync_now() -> sync_now(?DEFAULT).

-spec sync_now(server()) -> ok | {error, error()}.
sync_now(Server) -> call(Server, sync_now).

%% @doc True for errors worth retrying: `sync_failed' (but not `{sync_failed,
%% not_running}': no server of that name runs, and retrying will not start one),
%% `timeout', `shutdown_timeout'.
-spec is_transient_error(term()) -> boolean().
is_transient_error({sync_failed, not_running}) -> false;
is_transient_error({sync_failed, _}) -> true;
is_transient_error({timeout, _}) -> true;
is_transient_error({shutdown_timeout, _}) -> true;
is_transient_error(_) -> false.

%% @doc True for errors that retrying will not fix: `start_failed', `stop_failed',
%% `invalid_configuration', `peer_not_found', `subscription_failed', and
%% `{sync_failed, not_running}'. Every error of `error()' is exactly one of transient or
%% permanent.
-spec is_permanent_error(term()) -> boolean().
is_permanent_error({sync_failed, not_running}) -> true;
is_permanent_error({start_failed, _}) -> true;
is_permanent_error({stop_failed, _}) -> true;
is_permanent_error({invalid_configuration, _}) -> true;
is_permanent_error({peer_not_found, _}) -> true;
is_permanent_error({subscription_failed, _}) -> true;
is_permanent_error(_) -> false.

%% @doc The module behind an adapter name (`none' for single-node mode).
-spec adapter_module(adapter()) -> {ok, module() | none} | {error, error()}.
adapter_module(none) -> {ok, none};
adapter_module(beam) -> {ok, plexus_discovery_beam};
adapter_module(epmd) -> {ok, plexus_discovery_epmd};
adapter_module(dns) -> {ok, plexus_discovery_dns};
adapter_module(gossip) -> {ok, plexus_discovery_gossip};
adapter_module(kubernetes) -> {ok, plexus_discovery_kubernetes};
adapter_module(tailscale) -> {ok, plexus_discovery_tailscale};
adapter_module(registry) -> {ok, plexus_discovery_registry};
adapter_module(cnode) -> {ok, plexus_discovery_cnode};
adapter_module(Mod) when is_atom(Mod) ->
    case code:ensure_loaded(Mod) of
        {module, Mod} ->
            case erlang:function_exported(Mod, init, 1) of
                true -> {ok, Mod};
                false -> {error, {invalid_configuration, {not_an_adapter, Mod}}}
            end;
        _ ->
            {error, {invalid_configuration, {unknown_adapter, Mod}}}
    end;
adapter_module(Other) ->
    {error, {invalid_configuration, {bad_adapter, Other}}}.

%% @doc True for a node name as the C core checks it (`plexus_disco_valid_name'):
%% 3..255 bytes of `[A-Za-z0-9_.:@\[\]-]' with exactly one `@', neither first nor last.
-spec valid_node_name(term()) -> boolean().
valid_node_name(Id) ->
    plexus_discovery_connect:valid_node_name(Id).

%% ------------------------------------------------------------------ options

validate(Opts) ->
    Defaults = #{name => ?DEFAULT, adapter => default_adapter_name(), sync_interval_ms => 5000,
                 sync_timeout_ms => 5000, sync_max_heap_mb => 256,
                 telemetry_prefix => [plexus, discovery],
                 seed_peers => [], custom => #{}, connect => false},
    %% the defaults name every option
    case [K || K <- maps:keys(Opts), not is_map_key(K, Defaults)] of
        [K | _] -> {error, {invalid_configuration, {unknown_option, K}}};
        [] -> check(maps:to_list(maps:merge(Defaults, Opts)), maps:merge(Defaults, Opts))
    end.

check([], O) ->
    {ok, O};
check([{name, N} | T], O) when is_atom(N), N =/= undefined -> check(T, O);
check([{adapter, A} | T], O) when is_atom(A) ->
    case adapter_module(A) of
        {ok, _} -> check(T, O);
        {error, _} = E -> E
    end;
check([{sync_interval_ms, I} | T], O) when is_integer(I), I > 0 -> check(T, O);
check([{sync_timeout_ms, I} | T], O) when is_integer(I), I > 0 -> check(T, O);
check([{sync_max_heap_mb, I} | T], O) when is_integer(I), I > 0, I < 1 bsl 20 -> check(T, O);
check([{telemetry_prefix, P} | T], O) when is_list(P) ->
    case lists:all(fun is_atom/1, P) of
        true -> check(T, O);
        false -> {error, {invalid_configuration, {telemetry_prefix, P}}}
    end;
check([{seed_peers, L} | T], O) when is_list(L) ->
    try [to_id(X) || X <- L] of
        Ids -> check(T, O#{seed_peers := Ids})
    catch _:_ -> {error, {invalid_configuration, {seed_peers, L}}}
    end;
check([{custom, C} | T], O) when is_map(C) -> check(T, O);
check([{connect, B} | T], O) when is_boolean(B) -> check(T, O);
check([{K, V} | _], _) ->
    {error, {invalid_configuration, {K, V}}}.

to_id(A) when is_atom(A) -> atom_to_binary(A, utf8);
to_id(B) when is_binary(B), byte_size(B) > 0 -> B;
to_id(L) when is_list(L) -> list_to_binary(L).

call(Server, Req) ->
    %% sync_now waits for the sync, which its own sync_timeout_ms bounds
    Timeout = case Req of sync_now -> infinity; _ -> ?CALL_TIMEOUT end,
    try gen_server:call(Server, Req, Timeout)
    catch
        exit:{noproc, _} -> {error, {sync_failed, not_running}};
        exit:{timeout, _} -> {error, {timeout, ?CALL_TIMEOUT}};
        exit:{Reason, _} -> {error, {sync_failed, Reason}}
    end.

%% ------------------------------------------------------------------ gen_server

%% @private
init(O) ->
    process_flag(trap_exit, true),
    {ok, Mod} = adapter_module(maps:get(adapter, O)),
    S0 = #st{name = maps:get(name, O), mod = Mod, opts = O},
    Config = #{name => S0#st.name, seed_peers => maps:get(seed_peers, O),
               custom => maps:get(custom, O), sync_interval_ms => maps:get(sync_interval_ms, O),
               sync_timeout_ms => maps:get(sync_timeout_ms, O)},
    Init = case Mod of
               none -> {ok, undefined};
               _ -> try Mod:init(Config)
                    catch C:R:St -> {error, {C, R, strip_args(St)}}
                    end
           end,
    case Init of
        {ok, AState} ->
            Vouched = vouches(Mod, AState),
            Connect = maps:get(connect, O),
            case {Connect, Vouched} of
                {true, true} ->
                    ok = net_kernel:monitor_nodes(true);
                {true, false} ->
                    logger:warning("plexus_discovery ~p: connect => true ignored: adapter ~p "
                                   "does not vouch for its peers (they stay binaries)",
                                   [S0#st.name, Mod]);
                {false, _} ->
                    ok
            end,
            S1 = S0#st{astate = AState, vouched = Vouched,
                       conn = plexus_discovery_connect:new(Connect andalso Vouched)},
            {ok, start_sync(S1)};
        {error, Reason} ->
            {stop, {start_failed, Reason}};
        Other ->
            {stop, {start_failed, {bad_init_return, Other}}}
    end.

%% @private
handle_call({subscribe, Sub, WithSnapshot}, _From, S) ->
    case plexus_discovery_subs:subscribe(Sub, S#st.name, S#st.subs) of
        {ok, Id, Subs} ->
            Snap = case WithSnapshot of
                       true -> plexus_discovery_peers:list(S#st.peers);
                       false -> []
                   end,
            {reply, {ok, Id, Snap}, S#st{subs = Subs}};
        {error, _} = E ->
            {reply, E, S}
    end;
handle_call({unsubscribe, Id}, From, S) ->
    case plexus_discovery_subs:unsubscribe_call(Id, From, S#st.subs) of
        {reply, Subs} -> {reply, ok, S#st{subs = Subs}};
        {noreply, Subs} -> {noreply, S#st{subs = Subs}}
    end;
handle_call(snapshot, _From, S) ->
    {reply, {ok, plexus_discovery_peers:list(S#st.peers)}, S};
handle_call({lookup, Id}, _From, S) ->
    case plexus_discovery_peers:lookup(Id, S#st.peers) of
        {ok, Peer} -> {reply, {ok, Peer}, S};
        error -> {reply, {error, {peer_not_found, Id}}, S}
    end;
handle_call(health, _From, S) ->
    {reply, health_of(S), S};
handle_call(health_info, _From, S) ->
    {reply, health_info_of(S), S};
handle_call(sync_now, From, S) ->
    case has_sync(S#st.mod) of
        false -> {reply, ok, S};
        true -> {noreply, start_sync_now(From, S)}
    end;
handle_call(_Req, _From, S) ->
    {reply, {error, {invalid_configuration, unknown_call}}, S}.

%% @private
handle_cast(_Msg, S) ->
    {noreply, S}.

%% @private
handle_info(sync_tick, S) ->
    {noreply, start_sync(S#st{sync_timer = undefined})};
handle_info({'DOWN', MRef, process, _Pid, Result}, #st{sync = #sync{mref = MRef}} = S) ->
    {noreply, sync_worker_done(Result, S)};
handle_info({sync_timeout, MRef}, #st{sync = #sync{mref = MRef}} = S) ->
    {noreply, sync_worker_timeout(S)};
handle_info({sync_timeout, _}, S) ->
    {noreply, S};
handle_info({'DOWN', MRef, process, _Pid, _} = Msg, S) ->
    case plexus_discovery_subs:by_monitor(MRef, S#st.subs) of
        {ok, Id} -> {noreply, S#st{subs = plexus_discovery_subs:unsubscribe(Id, S#st.subs)}};
        error -> to_adapter(Msg, S)  %% a monitor of the adapter's own
    end;
handle_info({'EXIT', Pid, _Reason} = Msg, S) ->
    exited(Pid, Msg, S);
handle_info({connected, Pid, Id, Ok}, S) ->
    unlink(Pid),
    receive {'EXIT', Pid, _} -> ok after 0 -> ok end,
    {C, Effects} = plexus_discovery_connect:connected(Pid, Id, Ok, S#st.conn),
    {noreply, run_connect(C, Effects, S)};
handle_info(reconnect_tick, S) ->
    {noreply, reconnect_tick(S)};
handle_info({nodedown, Node} = Msg, S) ->
    case plexus_discovery_connect:enabled(S#st.conn) of
        true -> {noreply, node_down(atom_to_binary(Node, utf8), S)};
        false -> to_adapter(Msg, S)
    end;
handle_info({nodeup, _Node} = Msg, S) ->
    %% our own monitor (connect => true): nothing to do, the peer is connected
    case plexus_discovery_connect:enabled(S#st.conn) of
        true -> {noreply, S};
        false -> to_adapter(Msg, S)
    end;
handle_info(Msg, S) ->
    to_adapter(Msg, S).

%% A linked process exited: a connect helper, a fun subscriber's dispatcher, or one
%% of the adapter's.
exited(Pid, Msg, S) ->
    case plexus_discovery_connect:helper_exited(Pid, S#st.conn) of
        {ok, C, Effects} ->
            {noreply, run_connect(C, Effects, S)};
        error ->
            case plexus_discovery_subs:by_dispatcher(Pid, S#st.subs) of
                {ok, Id} -> {noreply, S#st{subs = plexus_discovery_subs:unsubscribe(Id, S#st.subs)}};
                error -> to_adapter(Msg, S)
            end
    end.

%% @private
terminate(Reason, #st{mod = Mod, astate = A} = S) ->
    _ = cancel_sync(S),
    ok = plexus_discovery_subs:stop_all(S#st.subs),
    [exit(P, kill) || P <- plexus_discovery_connect:helpers(S#st.conn)],
    case Mod =/= none andalso erlang:function_exported(Mod, terminate, 2) of
        true -> catch Mod:terminate(Reason, A);
        false -> ok
    end,
    ok.

%% @private
%% Crash reports and sys:get_status/1 never show secrets: the adapter options are
%% redacted and the adapter state is replaced by what its info/1 reports.
format_status(_Opt, [_PDict, #st{} = S]) ->
    Custom = maps:map(fun(K, _) when K =:= secret; K =:= sign_seed; K =:= token -> redacted;
                         (_, V) -> V
                      end, maps:get(custom, S#st.opts, #{})),
    [{data, [{"State", S#st{opts = (S#st.opts)#{custom => Custom},
                            astate = {adapter_info, adapter_info(S)}}}]}];
format_status(_Opt, [_PDict, Other]) ->
    [{data, [{"State", Other}]}].

health_of(#st{failures = 0}) -> up;
health_of(#st{failures = N, last_error = E}) when N < ?DOWN_AFTER_FAILURES -> {degraded, E};
health_of(#st{last_error = E}) -> {down, E}.

health_info_of(S) ->
    Status = case health_of(S) of
                 up -> up;
                 {degraded, _} -> degraded;
                 {down, _} -> down
             end,
    #{status => Status, last_sync_time_ms => S#st.last_sync,
      last_error => S#st.last_error, known_peers_count => plexus_discovery_peers:size(S#st.peers),
      adapter => S#st.mod,
      adapter_info => (adapter_info(S))#{authenticated => S#st.vouched}}.

%% ------------------------------------------------------------------ adapter plumbing

to_adapter(_Msg, #st{mod = none} = S) ->
    {noreply, S};
to_adapter(Msg, #st{mod = Mod} = S) ->
    case erlang:function_exported(Mod, handle_info, 2) of
        true -> {noreply, adapter_result(safe_handle_info(Mod, Msg, S#st.astate), S)};
        false -> {noreply, S}
    end.

safe_handle_info(Mod, Msg, A) ->
    try Mod:handle_info(Msg, A)
    catch C:R:St ->
            %% arities only: the arguments hold the adapter state (maybe a key)
            logger:warning("plexus_discovery: ~p:handle_info crashed: ~p:~p ~p",
                           [Mod, C, R, strip_args(St)]),
            {error, {adapter_crashed, R}, A}
    end.

strip_args(Stack) ->
    [case F of
         {M, Fn, Args, Loc} when is_list(Args) -> {M, Fn, length(Args), Loc};
         Other -> Other
     end || F <- Stack].

adapter_result({ok, A}, S) ->
    S#st{astate = A};
adapter_result({changes, Changes, A}, S) when ?PROPER_LIST(Changes) ->
    S1 = changed(plexus_discovery_peers:apply_changes(Changes, S#st.peers), S#st{astate = A}),
    S1#st{last_sync = erlang:system_time(millisecond)};
adapter_result({peers, Peers, A}, S) when ?PROPER_LIST(Peers) ->
    %% a complete list pushed by the adapter counts as a successful sync
    Gen = plexus_discovery_peers:gen(S#st.peers),
    S1 = changed(plexus_discovery_peers:diff(Peers, Gen, S#st.peers), S#st{astate = A}),
    S1#st{failures = 0, last_sync = erlang:system_time(millisecond)};
adapter_result({error, Reason, A}, S) ->
    sync_failed({sync_failed, Reason}, S#st{astate = A});
adapter_result(Other, S) ->
    %% the shape only: the return may hold the adapter state (maybe a key)
    Shape = case Other of
                T when is_tuple(T), tuple_size(T) > 0 -> {element(1, T), tuple_size(T)};
                _ -> not_a_tuple
            end,
    logger:warning("plexus_discovery ~p: bad adapter return ~p", [S#st.name, Shape]),
    S.

adapter_info(#st{mod = none}) ->
    #{};
adapter_info(#st{mod = Mod, astate = A}) ->
    case erlang:function_exported(Mod, info, 1) of
        true -> try Mod:info(A) catch _:_ -> #{} end;
        false -> #{}
    end.

%% Whether the adapter vouches for its peers: its optional authenticated/1 callback,
%% false when it has none (a custom adapter may read anything off the network).
vouches(none, _A) ->
    false;
vouches(Mod, A) ->
    erlang:function_exported(Mod, authenticated, 1) andalso
        (try Mod:authenticated(A) =:= true catch _:_ -> false end).

%% ------------------------------------------------------------------ syncs

has_sync(none) -> false;
has_sync(Mod) -> erlang:function_exported(Mod, sync, 1).

%% The worker process: its exit reason carries the result back.
start_sync(#st{sync = #sync{}} = S) ->
    S;
start_sync(#st{mod = Mod, astate = A, opts = O} = S) ->
    case has_sync(Mod) of
        false ->
            S;
        true ->
            %% A source that sends without end filled the worker faster than the
            %% timeout came: a fake epmd on a listed host took the VM to 3.7 GB in the
            %% 5 s of one sync (erl_epmd:names/1 reads until the socket closes). The
            %% heap of the worker is bounded; past it the sync fails.
            Words = maps:get(sync_max_heap_mb, O) * (1 bsl 20) div erlang:system_info(wordsize),
            {Pid, MRef} = spawn_opt(fun() -> exit({sync_result, run_sync(Mod, A)}) end,
                                    [monitor, {max_heap_size, #{size => Words, kill => true,
                                                                error_logger => false}}]),
            Timer = erlang:send_after(maps:get(sync_timeout_ms, O), self(), {sync_timeout, MRef}),
            S#st{sync = #sync{pid = Pid, mref = MRef, timer = Timer,
                              gen = plexus_discovery_peers:gen(S#st.peers),
                              start = erlang:monotonic_time(millisecond)}}
    end.

run_sync(Mod, A) ->
    try Mod:sync(A) of
        {ok, L} when ?PROPER_LIST(L) -> {ok, L};
        {error, R} -> {error, R};
        Other -> {error, {bad_sync_return, Other}}
    catch C:R -> {error, {C, R}}
    end.

%% sync_now: a new sync (the caller asks for what the source says now, so a running
%% one that started before the call is replaced), answered when it ends. The server
%% does not wait for it: snapshot, lookup, health and subscribe answer meanwhile, and
%% the periodic syncs go on after it (the sync it replaced would have scheduled them).
%% A sync that runs for earlier sync_now callers is not replaced: callers that came
%% faster than a sync took killed each other's syncs and none was answered for as
%% long as they came (a sync_now every 200 ms against a 500 ms source: the first
%% waited 3.3 s, all 15 of them until the calls stopped). They wait for the next one,
%% which starts when it ends, so each is answered within two syncs.
start_sync_now(From, #st{sync = #sync{}, waiters = [_ | _], queued = Q} = S) ->
    S#st{queued = [From | Q]};
start_sync_now(From, S) ->
    S1 = cancel_sync(S),
    start_sync(S1#st{waiters = [From | S1#st.waiters]}).

%% A sync ended and its callers heard: the queued sync_now callers get theirs at once,
%% else the periodic syncs go on.
next_sync(#st{queued = []} = S) ->
    schedule_sync(S);
next_sync(#st{queued = Q} = S) ->
    start_sync(S#st{waiters = Q, queued = []}).

%% What a sync_now caller hears from the sync that ran for it.
sync_reply({ok, _}) -> ok;
sync_reply({error, {timeout, _} = E}) -> {error, E};
sync_reply({error, R}) -> {error, {sync_failed, R}}.

answer_waiters(Result, #st{waiters = Ws} = S) ->
    Reply = sync_reply(Result),
    [gen_server:reply(W, Reply) || W <- lists:reverse(Ws)],
    S#st{waiters = []}.

cancel_sync(#st{sync = undefined} = S) ->
    S;
cancel_sync(#st{sync = #sync{pid = Pid, mref = MRef, timer = T}} = S) ->
    _ = erlang:cancel_timer(T),
    exit(Pid, kill),
    erlang:demonitor(MRef, [flush]),
    S#st{sync = undefined}.

schedule_sync(#st{sync_timer = undefined, opts = O} = S) ->
    S#st{sync_timer = erlang:send_after(maps:get(sync_interval_ms, O), self(), sync_tick)};
schedule_sync(S) ->
    S.

sync_worker_done(Result, #st{sync = #sync{timer = Timer, gen = Gen0, start = Start}} = S) ->
    _ = erlang:cancel_timer(Timer),
    R = case Result of
            {sync_result, X} -> X;
            %% the facade kills a worker only after its monitor is gone: this is the heap
            killed -> {error, {heap_limit, maps:get(sync_max_heap_mb, S#st.opts)}};
            Other -> {error, {sync_crashed, Other}}
        end,
    %% the events of the sync go out before its callers hear it ended
    S1 = sync_done(R, Gen0, Start, S#st{sync = undefined}),
    next_sync(answer_waiters(R, S1)).

sync_worker_timeout(#st{sync = #sync{pid = Pid, mref = MRef}, opts = O} = S) ->
    exit(Pid, kill),
    erlang:demonitor(MRef, [flush]),
    E = {timeout, maps:get(sync_timeout_ms, O)},
    S1 = sync_failed(E, S#st{sync = undefined}),
    next_sync(answer_waiters({error, E}, S1)).

%% A sync started at generation Gen0 finished.
sync_done({ok, Peers}, Gen0, Start, S) ->
    S1 = changed(plexus_discovery_peers:diff(Peers, Gen0, S#st.peers), S),
    telemetry(S, [sync], #{duration_ms => erlang:monotonic_time(millisecond) - Start,
                           peers => plexus_discovery_peers:size(S1#st.peers)},
              #{adapter => S#st.mod, result => ok}),
    S1#st{failures = 0, last_sync = erlang:system_time(millisecond)};
sync_done({error, {timeout, _} = E}, _Gen0, _Start, S) ->
    sync_failed(E, S);
sync_done({error, Reason}, _Gen0, _Start, S) ->
    sync_failed({sync_failed, Reason}, S).

sync_failed(Error, S) ->
    telemetry(S, [sync], #{duration_ms => 0, peers => plexus_discovery_peers:size(S#st.peers)},
              #{adapter => S#st.mod, result => Error}),
    logger:debug("plexus_discovery ~p: ~p", [S#st.name, Error]),
    S#st{failures = S#st.failures + 1, last_error = Error}.

%% ------------------------------------------------------------------ events

%% The peer set changed: keep the new set, then run what its events call for, in
%% their order: delivery to subscribers, telemetry, and connecting (a peer that comes
%% up is tried at once, one that goes down is no longer tried).
changed({Peers, Events}, S0) ->
    S = S0#st{peers = Peers},
    ok = plexus_discovery_subs:dispatch(Events, S#st.subs),
    lists:foldl(fun event_effects/2, S, Events).

event_effects({Kind, #{id := Id}, _}, S) ->
    telemetry(S, [Kind], #{count => 1}, #{peer => Id}),
    case Kind of
        peer_up ->
            {C, Effects} = plexus_discovery_connect:discovered(Id, now_ms(), S#st.conn),
            run_connect(C, Effects, S);
        peer_update ->
            S;
        peer_down ->
            S#st{conn = plexus_discovery_connect:forgotten(Id, S#st.conn)}
    end.

%% ------------------------------------------------------------------ connect => true

now_ms() -> erlang:monotonic_time(millisecond).

%% A discovered peer's node dropped (our own monitor): retry it soon.
node_down(Id, S) ->
    case plexus_discovery_peers:is_member(Id, S#st.peers) of
        true ->
            {C, Effects} = plexus_discovery_connect:discovered(Id, now_ms(), S#st.conn),
            run_connect(C, Effects, S);
        false ->
            S
    end.

reconnect_tick(S) ->
    Connected = maps:from_keys([atom_to_binary(N, utf8) || N <- [node() | nodes(connected)]], true),
    {C, Effects} = plexus_discovery_connect:tick(plexus_discovery_peers:ids(S#st.peers), Connected,
                                                 now_ms(), S#st.conn),
    run_connect(C, Effects, S).

run_connect(C, Effects, S) ->
    lists:foldl(fun run_connect_effect/2, S#st{conn = C}, Effects).

run_connect_effect({tick_after, Ms}, S) ->
    _ = erlang:send_after(Ms, self(), reconnect_tick),
    S;
run_connect_effect({connect, Id}, S) ->
    Node = node_atom(Id),
    Self = self(),
    Pid = spawn_link(fun() ->
                             Ok = net_kernel:connect_node(Node) =:= true,
                             Self ! {connected, self(), Id, Ok}
                     end),
    S#st{conn = plexus_discovery_connect:started(Pid, Id, S#st.conn)}.

%% The only place a peer id becomes an atom: connect effects exist only for peers a
%% vouching adapter reported (the connect state is disabled otherwise) whose id is a
%% well-formed node name (plexus_discovery_connect checked it), one atom per peer.
node_atom(Id) ->
    try binary_to_existing_atom(Id, utf8)
    catch error:badarg -> binary_to_atom(Id, utf8)
    end.

%% ------------------------------------------------------------------ telemetry

telemetry(#st{opts = O}, Event, Measurements, Meta) ->
    plexus_telemetry:execute(maps:get(telemetry_prefix, O) ++ Event, Measurements, Meta).
