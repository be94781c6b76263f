%% @doc Node health monitor with the Raxol NodeMonitor API (doc/DESIGN.md §3).
%%
%% Every `ping_interval_ms' (1000) each known node is pinged the way net_adm:ping does
%% (`{is_auth, node()}' to its net_kernel, answered `yes'); a node is `suspect' after
%% `suspect_after_ms' (5000) without an answer and `down' after `down_after_ms' (30000)
%% or at once when its connection closes. The last 60 RTTs are kept with avg, p50, p99.
%% The judging is done by the C failure detector (c_src/core/health.c) through a NIF
%% resource: the same code the C node runs.
%%
%% Sources (`source' option):
%% <ul>
%% <li>`beam' (default): this VM's own view. Nodes come from `nodes()' and
%%   `net_kernel:monitor_nodes/2' (plus the `nodes' option); pings are sent from here.
%%   Node names are atoms.</li>
%% <li>`cnode': the observations of the C node (`plexus_cnode', which must be running):
%%   its connection events and every ping answer feed this detector. Node names are
%%   binaries (`<<"name@host">>'): they come from the network and are never made into
%%   atoms here.</li>
%% </ul>
%%
%% Test hook: `test_delay_answers(Node, Ms)' holds every ping answer from `Node' for
%% `Ms' before the monitor reads it, so its RTT grows by `Ms' as on a slow link (the
%% plexus_comms suite induces latency with it). Unset (the default) nothing changes.
%%
%% Subscribers receive `{plexus_event, {node_up, N}}', `{plexus_event, {node_down, N}}'
%% and `{plexus_event, {status_change, N, From, To}}' for healthy &lt;-&gt; suspect.
%%
%% Telemetry (`plexus_telemetry'): `[plexus, monitor, node_up | node_down | suspect |
%% healthy]' with the node's RTT figures, `[plexus, monitor, rtt]' per ping answer.
-module(plexus_monitor).
-behaviour(gen_server).

-export([start_link/0, start_link/1, child_spec/1, stop/0]).
-export([get_health/1, list_healthy/0, list_suspect/0, list_all/0, subscribe/0,
         unsubscribe/0, watch/1]).
-export([test_delay_answers/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
%% pure helpers, exported for the tests
-export([translate/2, node_key/1]).

-type status() :: healthy | suspect | down.
-type node_name() :: node() | binary().
-export_type([node_name/0]). % used in the specs of exported functions
-type health() :: #{node := node_name(), status := status(), since_ms := non_neg_integer(),
                    last_answer_ms := non_neg_integer(), answers := non_neg_integer(),
                    samples := non_neg_integer(), rtt_last_us := non_neg_integer(),
                    rtt_avg_us := non_neg_integer(), rtt_p50_us := non_neg_integer(),
                    rtt_p99_us := non_neg_integer(), rtt_min_us := non_neg_integer(),
                    rtt_max_us := non_neg_integer()}.
-type opts() :: #{source => beam | cnode,
                  ping_interval_ms => pos_integer(),
                  suspect_after_ms => pos_integer(),
                  down_after_ms => pos_integer(),
                  nodes => [node()]}.
-export_type([status/0, health/0, opts/0]).

-define(SERVER, ?MODULE).

-record(st, {h :: reference(),
             source :: beam | cnode,
             cfg :: {pos_integer(), pos_integer(), pos_integer()},
             t0 :: integer(),
             names = #{} :: #{binary() => node_name()},
             pending = #{} :: #{reference() => {binary(), integer()}},
             subs = #{} :: #{pid() => reference()},
             timer :: reference() | undefined,
             answer_delays = #{} :: #{binary() => pos_integer()},
             next_ping = 0 :: non_neg_integer()}).

%% ------------------------------------------------------------------ API

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() -> start_link(#{}).

%% @doc Starts the monitor. Options are a map or a keyword list
%% (`[{ping_interval_ms, 1000}]'); `{error, {invalid_configuration, R}}' when they are
%% neither (`{bad_options, Opts}'), name an option the monitor does not know
%% (`{unknown_option, Key}') or give one a bad value (`{Key, Value}').
-spec start_link(opts() | proplists:proplist()) -> {ok, pid()} | {error, term()}.
start_link(Opts0) ->
    case check_opts(Opts0) of
        {ok, Opts} -> gen_server:start_link({local, ?SERVER}, ?MODULE, Opts, []);
        {error, R} -> {error, {invalid_configuration, R}}
    end.

%% Checked before the server starts, so a bad option is an answer, not a crash report.
check_opts(Opts0) ->
    case plexus_opts:to_map(Opts0) of
        {ok, Opts} ->
            Known = [source, ping_interval_ms, suspect_after_ms, down_after_ms, nodes],
            case {plexus_opts:unknown(Opts, Known),
                  [KV || {K, V} = KV <- lists:sort(maps:to_list(Opts)), not valid_opt(K, V)]} of
                {none, []} -> {ok, Opts};
                {none, [Bad | _]} -> {error, Bad};
                {Unknown, _} -> {error, Unknown}
            end;
        {error, _} = E ->
            E
    end.

valid_opt(source, S) -> S =:= beam orelse S =:= cnode;
valid_opt(nodes, L) -> is_list(L) andalso lists:all(fun is_atom/1, L);
valid_opt(_, Ms) -> is_integer(Ms) andalso Ms > 0 andalso Ms < 1 bsl 32.

%% @doc A supervisor child spec (options as for `start_link/1'; `[]' for the defaults);
%% raises `error({bad_options, Opts})' for anything else.
-spec child_spec(opts() | proplists:proplist()) -> supervisor:child_spec().
child_spec(Opts0) ->
    Opts = plexus_opts:to_map_or_error(Opts0),
    #{id => ?MODULE, start => {?MODULE, start_link, [Opts]}, restart => permanent,
      shutdown => 5000, type => worker, modules => [?MODULE]}.

-spec stop() -> ok.
stop() -> gen_server:stop(?SERVER).

%% @doc Health of one node (an atom or a `<<"name@host">>' binary).
-spec get_health(node_name()) -> {ok, health()} | {error, not_found}.
get_health(Node) when is_atom(Node); is_binary(Node) ->
    gen_server:call(?SERVER, {get_health, node_key(Node)});
get_health(_) ->
    erlang:error(badarg).

-spec list_healthy() -> [node_name()].
list_healthy() -> gen_server:call(?SERVER, {list, healthy}).

-spec list_suspect() -> [node_name()].
list_suspect() -> gen_server:call(?SERVER, {list, suspect}).

%% @doc Every node the monitor knows (down ones too), with its health.
-spec list_all() -> [health()].
list_all() -> gen_server:call(?SERVER, list_all).

%% @doc `{plexus_event, Event}' messages to the caller until it exits or unsubscribes.
-spec subscribe() -> ok.
subscribe() -> gen_server:call(?SERVER, {subscribe, self()}).

-spec unsubscribe() -> ok.
unsubscribe() -> gen_server:call(?SERVER, {unsubscribe, self()}).

%% @doc Watch a node that is not (yet) connected (beam source). The monitor connects
%% to it through its pings (auto-connect); it counts as up once it answers.
-spec watch(node()) -> ok.
watch(Node) when is_atom(Node) -> gen_server:call(?SERVER, {watch, Node});
watch(_) -> erlang:error(badarg).

%% @doc Test hook (see the module doc): answers from `Node' are read `DelayMs' late;
%% `0' reads them at once again.
-spec test_delay_answers(node(), non_neg_integer()) -> ok.
test_delay_answers(Node, DelayMs) when is_atom(Node), is_integer(DelayMs), DelayMs >= 0 ->
    gen_server:call(?SERVER, {test_delay_answers, node_key(Node), DelayMs});
test_delay_answers(_, _) ->
    erlang:error(badarg).

%% @private The detector's key of a node.
-spec node_key(node_name()) -> binary().
node_key(Node) when is_atom(Node) -> atom_to_binary(Node, utf8);
node_key(Node) when is_binary(Node) -> Node.

%% @private A detector event as the NodeMonitor events it stands for.
-spec translate(tuple(), node_name()) -> [tuple()].
translate({node_up, _, _, _, _}, N) -> [{node_up, N}];
translate({node_down, _, _, _, _}, N) -> [{node_down, N}];
translate({Kind, _, From, To, _}, N) when Kind =:= suspect; Kind =:= healthy ->
    [{status_change, N, From, To}].

%% ------------------------------------------------------------------ gen_server

%% @private
init(Opts) ->
    Ping = maps:get(ping_interval_ms, Opts, 1000),
    Suspect = maps:get(suspect_after_ms, Opts, 5000),
    Down = maps:get(down_after_ms, Opts, 30000),
    Source = maps:get(source, Opts, beam),
    case plexus_nif:health_new(Ping, Suspect, Down) of
        {error, R} ->
            {stop, {invalid_configuration, R}};
        H when Source =:= beam; Source =:= cnode ->
            St0 = #st{h = H, source = Source, cfg = {Ping, Suspect, Down},
                      t0 = erlang:monotonic_time(millisecond) - 1},
            case start_source(Source, St0, maps:get(nodes, Opts, [])) of
                {ok, St} -> {ok, schedule(St)};
                {error, R} -> {stop, R}
            end;
        _ ->
            {stop, {invalid_configuration, {source, Source}}}
    end.

start_source(beam, St, Extra) ->
    ok = net_kernel:monitor_nodes(true, [nodedown_reason, {node_type, all}]),
    Now = now_ms(St),
    St1 = lists:foldl(fun(N, S) -> up(N, Now, S) end, St, nodes(connected)),
    St2 = lists:foldl(fun(N, S) -> ping(N, S) end, St1, Extra),
    {ok, St2};
start_source(cnode, St, _) ->
    try plexus_cnode:subscribe([answers]) of
        ok ->
            Now = now_ms(St),
            St1 = case plexus_cnode:snapshot() of
                      {ok, Hs} ->
                          lists:foldl(fun(#{node := N, connected := true}, S) -> up(N, Now, S);
                                         (_, S) -> S
                                      end, St, Hs);
                      _ -> St
                  end,
            {ok, St1}
    catch exit:{noproc, _} -> {error, {cnode_not_running, plexus_cnode}}
    end.

%% @private
handle_call({get_health, Key}, _From, #st{h = H} = St) ->
    case plexus_nif:health_get(H, Key) of
        {ok, M} -> {reply, {ok, external(M, St)}, St};
        {error, not_found} = E -> {reply, E, St}
    end;
handle_call({list, Status}, _From, #st{h = H} = St) ->
    {reply, lists:sort([name(K, St) || #{node := K, status := S} <- plexus_nif:health_list(H),
                                       S =:= Status]), St};
handle_call(list_all, _From, #st{h = H} = St) ->
    {reply, lists:sort([external(M, St) || M <- plexus_nif:health_list(H)]), St};
%% Subscribers are pids of this node (subscribe/0 sends self()): events are plain
%% sends, and a send to a node whose connection is full suspends the sender, so one
%% subscriber on a node that hung would stall the detector that has to report it. A
%% raw call with anything else is refused.
handle_call({subscribe, Pid}, _From, St) when not is_pid(Pid); node(Pid) =/= node() ->
    {reply, {error, badarg}, St};
handle_call({subscribe, Pid}, _From, #st{subs = Subs} = St) ->
    case Subs of
        #{Pid := _} -> {reply, ok, St};
        _ -> {reply, ok, St#st{subs = Subs#{Pid => erlang:monitor(process, Pid)}}}
    end;
handle_call({unsubscribe, Pid}, _From, #st{subs = Subs} = St) ->
    case maps:take(Pid, Subs) of
        {Ref, Subs1} -> erlang:demonitor(Ref, [flush]), {reply, ok, St#st{subs = Subs1}};
        error -> {reply, ok, St}
    end;
handle_call({watch, Node}, _From, St) ->
    {reply, ok, ping(Node, St)};
handle_call({test_delay_answers, Key, 0}, _From, #st{answer_delays = D} = St) ->
    {reply, ok, St#st{answer_delays = maps:remove(Key, D)}};
handle_call({test_delay_answers, Key, Ms}, _From, #st{answer_delays = D} = St)
  when is_integer(Ms), Ms > 0, Ms < 1 bsl 32 ->
    {reply, ok, St#st{answer_delays = D#{Key => Ms}}};
handle_call(_, _From, St) ->
    {reply, {error, unknown_call}, St}.

%% @private
handle_cast(_, St) -> {noreply, St}.

%% @private
handle_info(tick, St) ->
    {noreply, schedule(tick(St#st{timer = undefined}))};
%% beam source
handle_info({Tag, yes}, #st{pending = P, answer_delays = D} = St) when is_reference(Tag),
                                                                         map_size(D) > 0 ->
    case P of
        #{Tag := {Key, _}} when is_map_key(Key, D) ->
            _ = erlang:send_after(maps:get(Key, D), self(), {delayed_answer, Tag}),
            {noreply, St};
        _ ->
            {noreply, answer(Tag, St)}
    end;
handle_info({Tag, yes}, St) when is_reference(Tag) ->
    {noreply, answer(Tag, St)};
handle_info({delayed_answer, Tag}, St) ->
    {noreply, answer(Tag, St)};
handle_info({nodeup, N, _}, #st{source = beam} = St) ->
    {noreply, schedule(up(N, now_ms(St), St))};
handle_info({nodedown, N, _}, #st{source = beam} = St) ->
    {noreply, schedule(down(node_key(N), connection_closed, St))};
%% cnode source
handle_info({plexus_cnode, {node_up, N, _}}, #st{source = cnode} = St) when is_binary(N) ->
    {noreply, schedule(up(N, now_ms(St), St))};
handle_info({plexus_cnode, {node_down, N, Info}}, #st{source = cnode} = St) when is_binary(N) ->
    Reason = case Info of
                 #{reason := R} when R =:= timeout; R =:= connection_closed;
                                     R =:= tick_timeout; R =:= connection_error;
                                     R =:= shutdown -> R;
                 _ -> connection_closed
             end,
    {noreply, schedule(down(N, Reason, St))};
handle_info({plexus_cnode, {answer, N, #{rtt_us := Rtt}}}, #st{source = cnode, h = H} = St)
  when is_binary(N), is_integer(Rtt), Rtt >= 0 ->
    St1 = remember(N, N, St),
    ok = rtt_event(N, Rtt, St1),
    Evs = case plexus_nif:health_answer(H, N, now_ms(St), min(Rtt, 16#ffffffff)) of
              {error, not_found} -> plexus_nif:health_up(H, N, now_ms(St));
              E -> E
          end,
    {noreply, schedule(publish(Evs, St1))};
handle_info({plexus_cnode, _}, St) ->
    {noreply, St};
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

now_ms(#st{t0 = T0}) -> erlang:monotonic_time(millisecond) - T0.

remember(Key, Name, #st{names = Names} = St) ->
    case Names of
        #{Key := _} -> St;
        _ -> St#st{names = Names#{Key => Name}}
    end.

name(Key, #st{names = Names}) -> maps:get(Key, Names, Key).

external(#{node := K} = M, St) -> M#{node := name(K, St)}.

up(N, Now, #st{h = H} = St) ->
    Key = node_key(N),
    St1 = remember(Key, N, St),
    publish(plexus_nif:health_up(H, Key, Now), St1).

down(Key, Reason, #st{h = H} = St) ->
    case plexus_nif:health_down(H, Key, now_ms(St), Reason) of
        {error, not_found} -> St;
        Evs -> publish(Evs, St)
    end.

publish({error, _}, St) -> St;
publish(Evs, #st{subs = Subs} = St) ->
    _ = [begin
         N = name(element(2, Ev), St),
         _ = [P ! {plexus_event, E} || E <- translate(Ev, N), P <- maps:keys(Subs)],
         detector_event(Ev, N, St)
     end || Ev <- Evs],
    St.

%% beam source: a ping answer, with the RTT from the ping's send time.
answer(Tag, #st{pending = P} = St) ->
    case maps:take(Tag, P) of
        {{Key, T0}, P1} ->
            Rtt = max(0, erlang:monotonic_time(microsecond) - T0),
            St1 = St#st{pending = P1},
            ok = rtt_event(Key, Rtt, St1),
            Evs = case plexus_nif:health_answer(St#st.h, Key, now_ms(St), Rtt) of
                      {error, not_found} -> plexus_nif:health_up(St#st.h, Key, now_ms(St));
                      E -> E
                  end,
            schedule(publish(Evs, St1));
        error ->
            St
    end.

%% `[plexus, monitor, node_up | node_down | suspect | healthy]' (README, "Telemetry"),
%% with the node's RTT figures as measurements; the health record is read only when
%% someone listens.
detector_event({Kind, Key, From, To, Reason}, N, #st{h = H, source = Source}) ->
    case plexus_telemetry:enabled() of
        false ->
            ok;
        true ->
            M = case plexus_nif:health_get(H, Key) of
                    {ok, Health} ->
                        maps:with([rtt_last_us, rtt_avg_us, rtt_p99_us, samples], Health);
                    {error, not_found} ->
                        #{}
                end,
            plexus_telemetry:execute([plexus, monitor, Kind], M,
                                     #{node => N, source => Source, from => From, to => To,
                                       reason => Reason})
    end.

%% `[plexus, monitor, rtt]': one ping answer.
rtt_event(Key, Rtt, #st{source = Source} = St) ->
    plexus_telemetry:execute([plexus, monitor, rtt], #{rtt_us => Rtt},
                             #{node => name(Key, St), source => Source}).

%% beam source: a ping like net_adm:ping's, without blocking the monitor. `nosuspend':
%% a plain send to a node whose connection is congested (its distribution buffer over
%% the busy limit, e.g. a frozen node with data queued for it) suspends the sender
%% until the buffer drains, which would stop every ping, answer and call of the
%% monitor. A ping that cannot go out now is not sent: that node stays silent, which
%% is what the detector should judge.
ping(Node, #st{pending = P, t0 = _} = St) when is_atom(Node) ->
    Tag = make_ref(),
    case erlang:send({net_kernel, Node}, {'$gen_call', {self(), Tag}, {is_auth, node()}},
                     [nosuspend]) of
        nosuspend -> St;
        _ -> St#st{pending = P#{Tag => {node_key(Node), erlang:monotonic_time(microsecond)}}}
    end;
ping(_, St) ->
    St.

tick(#st{source = Source, h = H, cfg = {Ping, _, Down}} = St) ->
    Now = now_ms(St),
    St1 = case Source =:= beam andalso Now >= St#st.next_ping of
              true ->
                  %% forget pings older than down_after: that node is judged already
                  Old = erlang:monotonic_time(microsecond) - Down * 1000,
                  P = maps:filter(fun(_, {_, T}) -> T > Old end, St#st.pending),
                  Nodes = [name(K, St) || #{node := K, status := S} <- plexus_nif:health_list(H),
                                          S =/= down],
                  lists:foldl(fun ping/2, St#st{pending = P, next_ping = Now + Ping}, Nodes);
              false ->
                  St
          end,
    {Evs, _Next} = plexus_nif:health_tick(H, Now),
    publish(Evs, St1).

%% One timer: the next ping round or the detector's next deadline, whichever is first.
schedule(#st{timer = T} = St) when T =/= undefined ->
    _ = erlang:cancel_timer(T),
    schedule(St#st{timer = undefined});
schedule(#st{h = H, source = Source, cfg = {Ping, _, _}} = St) ->
    Now = now_ms(St),
    {_, Deadline} = plexus_nif:health_tick(H, 0), %% tick at 0 judges nothing: just the deadline
    NextPing = case Source of beam -> max(St#st.next_ping, Now); cnode -> Now + Ping end,
    Next = case Deadline of infinity -> NextPing; D -> min(D, NextPing) end,
    St#st{timer = erlang:send_after(max(0, Next - Now), self(), tick)}.
