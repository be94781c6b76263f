%% @doc Messaging by priority and link quality (Raxol's CommsManager; README,
%% "Messaging by priority and link quality"). The decisions (link quality, drop
%% policy, bounded per-destination priority queues, what leaves next) are made by
%% the pure `plexus_comms_core'; this process runs them: it sends, learns link
%% health from `plexus_monitor', retries busy connections and reports drops.
%%
%% A message for `Node' goes to the comms server of the same name on `Node' as
%% `{plexus_comms, FromNode, Priority, Data}', and that server hands the same tuple
%% to each of its subscribers (`subscribe/0,1'). A node without a server of that
%% name loses what it is sent, as with any registered-name send.
%%
%% Sends use `erlang:send/3' with `[nosuspend, noconnect]': a congested connection
%% never suspends this process (and so never its callers), and connecting is left to
%% the monitor's pings (`plexus_monitor:watch/1', asked for every destination the
%% monitor does not see up). A send that finds the connection busy or absent keeps
%% the message at the head of its queue and retries after `retry_ms'.
%%
%% Link health: this process subscribes to `plexus_monitor' events (status changes
%% at once) and reads the RTTs every `refresh_ms' in a short-lived helper process, so
%% a monitor that is slow to answer never blocks a send. Without a running monitor
%% every link is `disconnected' (critical and high are queued, the rest dropped),
%% and the subscription is retried every `refresh_ms'.
-module(plexus_comms).
-behaviour(gen_server).

-export([start_link/0, start_link/1, start/1, child_spec/1, stop/0, stop/1]).
-export([send_msg/3, send_msg/4, get_link_quality/1, get_link_quality/2, info/0, info/1,
         subscribe/0, subscribe/1, unsubscribe/0, unsubscribe/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
%% pure, exported for the tests
-export([config/1]).

-type priority() :: plexus_comms_core:priority().
-type quality() :: plexus_comms_core:quality().
-type reason() :: plexus_comms_core:reason().
-type server() :: atom() | pid().
-type opts() :: #{name => atom(), excellent_ms => pos_integer(), good_ms => pos_integer(),
                  degraded_ms => pos_integer(), rtt_stat => last | avg | p50 | p99,
                  queue_limit => pos_integer(), queue_bytes_limit => pos_integer(),
                  retry_ms => pos_integer(), refresh_ms => pos_integer()}.
-type info() :: #{name := atom(),
                  sent := #{priority() => non_neg_integer()},
                  queued := #{priority() => non_neg_integer()},
                  dropped := #{reason() => #{priority() => non_neg_integer()}},
                  dropped_total := non_neg_integer(),
                  received := non_neg_integer(),
                  queues := #{node() => #{length := non_neg_integer(),
                                          bytes := non_neg_integer()}},
                  links := #{node() => quality()}}.
-export_type([server/0, priority/0, quality/0, reason/0, opts/0, info/0]).

-define(DEFAULT_NAME, ?MODULE).
-define(IS_PRIORITY(P), (P =:= critical orelse P =:= high orelse P =:= normal orelse P =:= low)).
%% Messages sent per drain step before other calls get their turn.
-define(DRAIN_BATCH, 256).
%% How long a start waits for the monitor's first reading (see first_poll/1).
-define(FIRST_POLL_MS, 1000).
-define(DEFAULTS, #{name => ?DEFAULT_NAME, excellent_ms => 10, good_ms => 50,
                    degraded_ms => 200, rtt_stat => p50, queue_limit => 1000,
                    queue_bytes_limit => 8 * 1024 * 1024, retry_ms => 10,
                    refresh_ms => 1000}).

-record(st, {name :: atom(),
             core :: plexus_comms_core:state(),
             rtt_stat :: last | avg | p50 | p99,
             retry_ms :: pos_integer(),
             refresh_ms :: pos_integer(),
             subs = #{} :: #{pid() => reference()},
             monitor :: reference() | undefined,     % on plexus_monitor, once subscribed
             poll :: {pid(), reference()} | undefined, % the RTT reader running now
             retries = #{} :: #{node() => reference()}}).

%% ------------------------------------------------------------------ API

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() -> start_link(#{}).

%% @doc Starts a comms server, registered as its `name' (default `plexus_comms').
%% Options are a map or a keyword list (see the README for each and its default);
%% `{error, {invalid_configuration, {unknown_option, Key}}}' for an option it does not
%% know, `{error, {invalid_configuration, {Key, Value}}}' for a bad value.
-spec start_link(opts() | proplists:proplist()) -> {ok, pid()} | {error, term()}.
start_link(Opts) -> start(Opts, start_link).

%% @doc As `start_link/1', not linked (for a shell or a test driver).
-spec start(opts() | proplists:proplist()) -> {ok, pid()} | {error, term()}.
start(Opts) -> start(Opts, start).

start(Opts0, How) ->
    case config(Opts0) of
        {ok, #{name := Name} = Cfg} -> gen_server:How({local, Name}, ?MODULE, Cfg, []);
        {error, _} = E -> E
    end.

%% @doc A supervisor child spec, id = the server's name; raises `error({bad_options,
%% Opts})' for options that are neither a map nor a keyword list.
-spec child_spec(opts() | proplists:proplist()) -> supervisor:child_spec().
child_spec(Opts0) ->
    Opts = plexus_opts:to_map_or_error(Opts0),
    #{id => maps:get(name, Opts, ?DEFAULT_NAME), start => {?MODULE, start_link, [Opts]},
      restart => permanent, shutdown => 5000, type => worker, modules => [?MODULE]}.

-spec stop() -> ok.
stop() -> stop(?DEFAULT_NAME).

-spec stop(server()) -> ok.
stop(Server) -> gen_server:stop(Server).

%% @doc Sends `Data' to the comms server of the same name on `Node' with a priority:
%% `{ok, sent}' (handed to the connection), `{ok, queued}' (behind earlier messages
%% of the destination, held while it is disconnected, or waiting for a busy
%% connection; it leaves in priority order), or `{error, {dropped, Reason}}' with
%% `Reason' one of `degraded', `poor', `disconnected' (the drop policy) or
%% `queue_full' (the destination's queue bound). Never blocks on the network.
-spec send_msg(node(), term(), priority()) -> {ok, sent | queued} | {error, {dropped, reason()}}.
send_msg(Node, Data, Priority) -> send_msg(?DEFAULT_NAME, Node, Data, Priority).

-spec send_msg(server(), node(), term(), priority()) ->
          {ok, sent | queued} | {error, {dropped, reason()}}.
send_msg(Server, Node, Data, Priority) when is_atom(Node), ?IS_PRIORITY(Priority) ->
    gen_server:call(Server, {send, Node, Priority, Data});
send_msg(_, _, _, _) ->
    erlang:error(badarg).

%% @doc `excellent | good | degraded | poor | disconnected' (see the README for the
%% thresholds); a node never heard of is `disconnected'.
-spec get_link_quality(node()) -> quality().
get_link_quality(Node) -> get_link_quality(?DEFAULT_NAME, Node).

-spec get_link_quality(server(), node()) -> quality().
get_link_quality(Server, Node) when is_atom(Node) ->
    gen_server:call(Server, {quality, Node});
get_link_quality(_, _) ->
    erlang:error(badarg).

%% @doc Counters since start: sent, queued and dropped (by reason) per priority,
%% messages received, queue length and bytes per destination, each known link's
%% quality.
-spec info() -> info().
info() -> info(?DEFAULT_NAME).

-spec info(server()) -> info().
info(Server) -> gen_server:call(Server, info).

%% @doc The caller receives `{plexus_comms, FromNode, Priority, Data}' for every
%% message this server receives, until it exits or unsubscribes.
-spec subscribe() -> ok.
subscribe() -> subscribe(?DEFAULT_NAME).

-spec subscribe(server()) -> ok.
subscribe(Server) -> gen_server:call(Server, {subscribe, self()}).

-spec unsubscribe() -> ok.
unsubscribe() -> unsubscribe(?DEFAULT_NAME).

-spec unsubscribe(server()) -> ok.
unsubscribe(Server) -> gen_server:call(Server, {unsubscribe, self()}).

%% @private Options as a checked configuration (defaults filled in).
-spec config(term()) -> {ok, map()} | {error, {invalid_configuration, term()}}.
config(Opts0) ->
    case plexus_opts:to_map(Opts0) of
        {error, R} ->
            {error, {invalid_configuration, R}};
        {ok, Opts} ->
            Cfg = maps:merge(?DEFAULTS, Opts),
            Unknown = lists:sort(maps:keys(maps:without(maps:keys(?DEFAULTS), Opts))),
            Bad = [{K, V} || {K, V} <- lists:sort(maps:to_list(Cfg)), not valid(K, V)],
            case {Unknown, Bad} of
                {[U | _], _} -> {error, {invalid_configuration, {unknown_option, U}}};
                {[], [B | _]} -> {error, {invalid_configuration, B}};
                {[], []} -> check_thresholds(Cfg)
            end
    end.

valid(name, V) -> is_atom(V) andalso V =/= undefined;
valid(rtt_stat, V) -> lists:member(V, [last, avg, p50, p99]);
valid(K, V) when K =:= excellent_ms; K =:= good_ms; K =:= degraded_ms; K =:= queue_limit;
                 K =:= queue_bytes_limit; K =:= retry_ms; K =:= refresh_ms ->
    is_integer(V) andalso V > 0;
valid(_, _) -> false.

check_thresholds(#{excellent_ms := E, good_ms := G, degraded_ms := D} = Cfg) ->
    case E < G andalso G < D of
        true -> {ok, Cfg};
        false -> {error, {invalid_configuration, {thresholds_not_increasing, {E, G, D}}}}
    end.

%% ------------------------------------------------------------------ gen_server

%% @private
init(#{name := Name} = Cfg) ->
    Core = plexus_comms_core:new(#{self => node(),
                                   config => maps:with([excellent_ms, good_ms, degraded_ms,
                                                        queue_limit, queue_bytes_limit], Cfg)}),
    St = #st{name = Name, core = Core, rtt_stat = maps:get(rtt_stat, Cfg),
             retry_ms = maps:get(retry_ms, Cfg), refresh_ms = maps:get(refresh_ms, Cfg)},
    erlang:send_after(St#st.refresh_ms, self(), refresh),
    {ok, first_poll(poll(subscribe_monitor(St)))}.

%% The monitor's first reading, waited for here: a send made as soon as the server
%% has started must see the links the monitor already knows (a connected node is
%% `healthy' from the monitor's start, so `good'), not an empty table that grades
%% every node `disconnected' and drops `normal' and `low'. A monitor too slow to
%% answer within ?FIRST_POLL_MS does not hold the start up: its reading arrives
%% later as the poll's message.
first_poll(#st{poll = {Pid, _}} = St) ->
    receive
        {poll, Pid, _} = Msg ->
            {noreply, St1} = handle_info(Msg, St),
            St1
    after ?FIRST_POLL_MS ->
        St
    end;
first_poll(St) ->
    St.

%% @private
%% The API checks its arguments; these guards check the same for a raw call (from any
%% connected node): a bad priority crashed the core, a subscriber that is no pid
%% crashed the next delivery (`!' to a name not registered) or the monitor call.
handle_call({send, Node, P, Data}, _From, #st{core = C} = St)
  when is_atom(Node), ?IS_PRIORITY(P) ->
    {Verdict, Drops, C1} = plexus_comms_core:submit(Node, P, Data, C),
    St1 = report(Drops, St#st{core = C1}),
    case Verdict of
        send_now ->
            case transmit(Node, P, Data, St1) of
                ok ->
                    {reply, {ok, sent}, St1#st{core = plexus_comms_core:sent(Node, P, C1)}};
                busy ->
                    {V, Drops2, C2} = plexus_comms_core:enqueue(Node, P, Data, C1),
                    St2 = retry_later(Node, report(Drops2, St1#st{core = C2})),
                    {reply, reply(V), St2}
            end;
        queued ->
            {reply, {ok, queued}, drain(Node, St1)};
        {dropped, _} = V ->
            {reply, reply(V), St1}
    end;
handle_call({quality, Node}, _From, #st{core = C} = St) ->
    {reply, plexus_comms_core:quality(Node, C), St};
handle_call(info, _From, St) ->
    {reply, info_of(St), St};
handle_call({subscribe, Pid}, _From, #st{subs = Subs} = St) when is_pid(Pid) ->
    case Subs of
        #{Pid := _} -> {reply, ok, St};
        _ -> {reply, ok, St#st{subs = Subs#{Pid => erlang:monitor(process, Pid)}}}
    end;
handle_call({unsubscribe, Pid}, _From, #st{subs = Subs} = St) ->
    case maps:take(Pid, Subs) of
        {Ref, Subs1} -> erlang:demonitor(Ref, [flush]), {reply, ok, St#st{subs = Subs1}};
        error -> {reply, ok, St}
    end;
handle_call(_, _From, St) ->
    {reply, {error, unknown_call}, St}.

%% @private
handle_cast(_, St) -> {noreply, St}.

%% @private
handle_info({plexus_comms, From, P, _} = Msg, #st{subs = Subs, core = C} = St)
  when is_atom(From), ?IS_PRIORITY(P) ->
    _ = [Pid ! Msg || Pid <- maps:keys(Subs)],
    {noreply, St#st{core = plexus_comms_core:received(C)}};
handle_info({retry, Node}, #st{retries = R} = St) ->
    {noreply, drain(Node, St#st{retries = maps:remove(Node, R)})};
handle_info({drain, Node}, St) ->
    {noreply, drain(Node, St)};
handle_info(refresh, St) ->
    erlang:send_after(St#st.refresh_ms, self(), refresh),
    {noreply, poll(subscribe_monitor(St))};
handle_info({poll, Pid, Healths}, #st{poll = {Pid, Ref}, core = C} = St) ->
    erlang:demonitor(Ref, [flush]),
    C1 = lists:foldl(fun(#{node := N, status := S} = H, Acc) when is_atom(N) ->
                             plexus_comms_core:set_link(N, S, rtt(H, St), Acc);
                        (_, Acc) -> Acc
                     end, C, Healths),
    {noreply, drain_all(St#st{core = C1, poll = undefined})};
handle_info({plexus_event, Ev}, #st{core = C} = St) ->
    case status_of(Ev) of
        {N, S} when is_atom(N) ->
            {noreply, drain(N, St#st{core = plexus_comms_core:set_status(N, S, C)})};
        _ ->
            {noreply, St}
    end;
handle_info({'DOWN', Ref, process, _, _}, #st{monitor = Ref, core = C} = St) ->
    %% the monitor is gone: nothing is known of any link until it is back
    C1 = maps:fold(fun(N, _, Acc) -> plexus_comms_core:set_link(N, unknown, undefined, Acc) end,
                   C, plexus_comms_core:links(C)),
    {noreply, St#st{monitor = undefined, core = C1}};
handle_info({'DOWN', Ref, process, Pid, _}, #st{poll = {Pid, Ref}} = St) ->
    {noreply, St#st{poll = undefined}};
handle_info({'DOWN', Ref, process, Pid, _}, #st{subs = Subs} = St) ->
    case Subs of
        #{Pid := Ref} -> {noreply, St#st{subs = maps:remove(Pid, Subs)}};
        _ -> {noreply, St}
    end;
handle_info(_, St) ->
    {noreply, St}.

%% @private
terminate(_, _) -> ok.

%% ------------------------------------------------------------------ internals

reply(queued) -> {ok, queued};
reply({dropped, R}) -> {error, {dropped, R}}.

%% The one send to the network: never suspends (nosuspend), never connects (noconnect:
%% connection setup would block this process; the monitor's pings connect).
transmit(Node, P, Data, #st{name = Name}) ->
    case erlang:send({Name, Node}, {plexus_comms, node(), P, Data}, [nosuspend, noconnect]) of
        ok -> ok;
        _ -> busy                                % nosuspend | noconnect
    end.

%% Sends or drops what the core says may leave Node's queue now, at most DRAIN_BATCH
%% messages before giving other requests their turn.
drain(Node, St) -> drain(Node, ?DRAIN_BATCH, St).

drain(Node, 0, St) ->
    self() ! {drain, Node},
    St;
drain(Node, Budget, #st{core = C} = St) ->
    case plexus_comms_core:next(Node, C) of
        none ->
            St;
        {drop, P, R} ->
            {Drop, C1} = plexus_comms_core:pop_dropped(Node, P, R, C),
            drain(Node, Budget - 1, report([Drop], St#st{core = C1}));
        {send, P, Data} ->
            case transmit(Node, P, Data, St) of
                ok -> drain(Node, Budget - 1, St#st{core = plexus_comms_core:pop_sent(Node, P, C)});
                busy -> retry_later(Node, St)
            end
    end.

drain_all(#st{core = C} = St) ->
    lists:foldl(fun drain/2, St, plexus_comms_core:destinations(C)).

retry_later(Node, #st{retries = R} = St) ->
    case R of
        #{Node := _} -> St;
        _ -> St#st{retries = R#{Node => erlang:send_after(St#st.retry_ms, self(), {retry, Node})}}
    end.

%% Every drop is counted by the core; this reports each one outside the process.
report(Drops, #st{name = Name} = St) ->
    _ = [emit_drop_event(Name, D) || D <- Drops],
    St.

%% The telemetry event of one drop (README, "Telemetry"): [plexus, comms, dropped],
%% measurements #{count => 1, bytes => ExternalSize}, metadata #{server, node,
%% priority, reason}.
emit_drop_event(Name, #{node := Node, priority := P, reason := R, bytes := B}) ->
    plexus_telemetry:execute([plexus, comms, dropped], #{count => 1, bytes => B},
                             #{server => Name, node => Node, priority => P, reason => R}).

subscribe_monitor(#st{monitor = undefined} = St) ->
    case whereis(plexus_monitor) of
        undefined ->
            St;
        Pid ->
            Ref = erlang:monitor(process, Pid),
            try plexus_monitor:subscribe() of
                ok -> St#st{monitor = Ref}
            catch exit:_ -> erlang:demonitor(Ref, [flush]), St
            end
    end;
subscribe_monitor(St) ->
    St.

%% Reads every node's health in a helper process, and asks the monitor to watch the
%% destinations it does not see up (so they get connected); the answer comes back as
%% {poll, Pid, Healths}. One at a time; one that fails (the monitor stopped) is
%% simply forgotten.
poll(#st{monitor = undefined} = St) ->
    St;
poll(#st{poll = {_, _}} = St) ->
    St;
poll(#st{core = C} = St) ->
    Self = self(),
    Wanted = maps:keys(plexus_comms_core:links(C)) ++ plexus_comms_core:destinations(C),
    St#st{poll = spawn_monitor(fun() -> poll_monitor(Self, Wanted) end)}.

poll_monitor(Server, Wanted) ->
    try plexus_monitor:list_all() of
        All ->
            Up = [N || #{node := N, status := S} <- All, S =/= down],
            _ = [catch plexus_monitor:watch(N) || N <- lists:usort(Wanted) -- Up, N =/= node()],
            Server ! {poll, self(), All}
    catch
        %% stopped or too slow to answer (it can be suspended on a congested
        %% connection): no news this round
        exit:_ -> ok
    end.

rtt(#{samples := 0}, _) -> undefined;
rtt(H, #st{rtt_stat = last}) -> maps:get(rtt_last_us, H);
rtt(H, #st{rtt_stat = avg}) -> maps:get(rtt_avg_us, H);
rtt(H, #st{rtt_stat = p50}) -> maps:get(rtt_p50_us, H);
rtt(H, #st{rtt_stat = p99}) -> maps:get(rtt_p99_us, H).

status_of({node_up, N}) -> {N, healthy};
status_of({node_down, N}) -> {N, down};
status_of({status_change, N, _, To}) -> {N, To};
status_of(_) -> none.

info_of(#st{name = Name, core = C}) ->
    #{sent := S, queued := Q, dropped := D} = plexus_comms_core:counters(C),
    Links = plexus_comms_core:links(C),
    #{name => Name, sent => S, queued => Q, dropped => D,
      dropped_total => lists:sum([N || M <- maps:values(D), N <- maps:values(M)]),
      received => plexus_comms_core:received_count(C),
      queues => maps:from_list([{N, #{length => plexus_comms_core:queue_len(N, C),
                                      bytes => plexus_comms_core:queue_bytes(N, C)}}
                                || N <- plexus_comms_core:destinations(C)]),
      links => maps:map(fun(N, _) -> plexus_comms_core:quality(N, C) end, Links)}.
