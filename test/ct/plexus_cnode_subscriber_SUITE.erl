%% @doc The C node's subscribers (issue 8): attacks on the table of `plexus_cnode'
%% subscribers and on its request handling, against priv/plexus_cnode on loopback.
%%
%% - subscribers that exit leave the table (10 exit -> 0 remain);
%% - a pid on a node that is not connected is refused; the subscribers of a node whose
%%   connection drops are dropped;
%% - the table is bounded (--max-subscribers): past it, a clear `not_subscribed' reply;
%% - 10,000 subscribers come and go (in batches) while an unrelated node is killed: the
%%   kill is reported about as fast as when quiet, no live node is suspected, the table
%%   drains to 0 and the C node's RSS stays bounded;
%% - a 10 MB message is skipped: no node_down for its sender, whose subscribers stay;
%% - every call with a reply-to is answered, `{error, badarg}' for a bad argument.
-module(plexus_cnode_subscriber_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([exited_subscribers_dropped/1, unconnected_and_disconnected_nodes/1, table_bounded/1,
         churn_10000/1, oversize_message/1, big_message_buffer_given_back/1, bad_requests_answered/1]).

-define(PING, 200).
-define(SUSPECT, 1000).
-define(DOWN, 3000).
-define(MAX_SUBS, 10000).
-define(CN, 'cs_watch@127.0.0.1').

suite() -> [{timetrap, {seconds, 300}}].

all() ->
    [exited_subscribers_dropped, unconnected_and_disconnected_nodes, table_bounded,
     bad_requests_answered, oversize_message, big_message_buffer_given_back,
     churn_10000].

init_per_suite(Config) ->
    _ = plexus_test_nodes:ensure_distributed("plexus_cs_ct"),
    {Cookie, Old} = plexus_test_nodes:private_cookie(),
    case filelib:is_regular(plexus_test_nodes:cnode_exe()) of
        true ->
            File = plexus_test_nodes:cookie_file(?config(priv_dir, Config),
                                                 {atom_to_list(Cookie), 8#400}),
            C = plexus_test_nodes:start_cnode(
                  ["--name", atom_to_list(?CN), "--cookie-file", File, "--json",
                   "--seed", atom_to_list(node()), "--no-epmd-scan", "--wait-for-seeds",
                   "--ping-interval-ms", integer_to_list(?PING),
                   "--suspect-after-ms", integer_to_list(?SUSPECT),
                   "--down-after-ms", integer_to_list(?DOWN),
                   "--discovery-interval-ms", "500", "--max-backoff-ms", "1000",
                   "--max-subscribers", integer_to_list(?MAX_SUBS)], []),
            %% it dials us: calling it before that connection is up would race it
            {ok, _, _} = plexus_test_nodes:await_event(C, node_up, node(), 15000),
            [{cookie, Cookie}, {old_cookie, Old}, {cnode, C} | Config];
        false ->
            plexus_test_nodes:restore_cookie(Old),
            {skip, "priv/plexus_cnode not built (make nif)"}
    end.

end_per_suite(Config) ->
    _ = plexus_test_nodes:stop_cnode(?config(cnode, Config)),
    plexus_test_nodes:restore_cookie(?config(old_cookie, Config)).

%% ------------------------------------------------------------------ helpers

stats() ->
    {ok, S} = gen_server:call({plexus_cnode, ?CN}, stats, 5000),
    S.

subscribers() -> maps:get(subscribers, stats()).

table() -> maps:get(subscriber_table, stats()).

%% Waits (bounded) until the table holds N subscribers; returns the last count.
await_subscribers(N, TimeoutMs) ->
    _ = plexus_test_nodes:wait_until(fun() -> subscribers() =:= N end, TimeoutMs),
    subscribers().

%% A process that subscribes, reports, and then does what it is told.
subscriber(Parent) ->
    {plexus_cnode, ?CN} ! {subscribe, self()},
    Reply = receive {plexus_cnode, {subscribed, _} = R} -> R;
                    {plexus_cnode, {not_subscribed, _, _} = R} -> R
            after 10000 -> timeout
            end,
    Parent ! {sub, self(), Reply},
    receive
        unsubscribe_and_exit ->
            {plexus_cnode, ?CN} ! {unsubscribe, self()},
            receive {plexus_cnode, {unsubscribed, _}} -> ok after 10000 -> ok end;
        exit -> ok
    end.

spawn_subscribers(N) ->
    Self = self(),
    Ps = [spawn(fun() -> subscriber(Self) end) || _ <- lists:seq(1, N)],
    [{P, receive {sub, P, R} -> R after 15000 -> timeout end} || P <- Ps].

%% Stops processes and waits (bounded) until each is gone.
finish(Ps, How) ->
    Refs = [{P, erlang:monitor(process, P)} || P <- Ps],
    [P ! How || P <- Ps],
    [receive {'DOWN', R, process, P, _} -> ok after 15000 -> error({still_alive, P}) end
     || {P, R} <- Refs],
    ok.

%% A pid of a node that is not connected to anyone (NEW_PID_EXT with that node name).
ghost_pid(Node) ->
    Name = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 88, 118, (byte_size(Name)):16, Name/binary, 7:32, 0:32, 1:32>>).

rss_kb(OsPid) ->
    {ok, B} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
    {match, [Kb]} = re:run(B, "VmRSS:\\s+(\\d+)", [{capture, all_but_first, binary}]),
    binary_to_integer(Kb).

cpu_ticks(OsPid) ->
    {ok, B} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat"),
    [_, After] = binary:split(B, <<") ">>),
    Fields = binary:split(After, <<" ">>, [global]),
    %% utime and stime are fields 14 and 15 of stat, 12 and 13 after "pid (comm) "
    binary_to_integer(lists:nth(12, Fields)) + binary_to_integer(lists:nth(13, Fields)).

kill_latency(C, Node, OsPid) ->
    T0 = erlang:monotonic_time(millisecond),
    plexus_test_nodes:os_kill(OsPid, "KILL"),
    {ok, T1, Line} = plexus_test_nodes:await_event(C, node_down, Node, 20000, T0),
    %% compared whole, so that a failure shows the reason given instead
    ?assertEqual({match, [<<"connection_closed">>]},
                 re:run(Line, "\"reason\":\"([a-z_]+)\"", [{capture, all_but_first, binary}])),
    T1 - T0.

%% Where a window of C node events starts: how many there are so far. Windows are cut
%% by position, not by time: the collector stamps lines to the millisecond, and an event
%% seen just before a window (the node_down a test has awaited) can carry the window's
%% first millisecond, which once made that node_down count as a flap inside it.
event_mark(C) ->
    {Evs, _, _} = plexus_test_nodes:cnode_events(C),
    length(Evs).

%% The events after Mark, in order, with the collector's time of each.
events_since(C, Mark) ->
    {Evs, _, _} = plexus_test_nodes:cnode_events(C),
    lists:nthtail(Mark, Evs).

start_watched(Name, Config) ->
    {N, _, _} = Node = plexus_test_nodes:start_node(Name, ?config(cookie, Config)),
    {ok, _, _} = plexus_test_nodes:await_event(?config(cnode, Config), node_up, N, 15000),
    Node.

%% ------------------------------------------------------------------ cases

%% Before: 10 subscribers exit, 10 stay in the table for ever.
exited_subscribers_dropped(_Config) ->
    Base = subscribers(),
    Subs = spawn_subscribers(10),
    ?assertEqual(lists:duplicate(10, {subscribed, atom_to_binary(?CN, utf8)}),
                 [R || {_, R} <- Subs]),
    ?assertEqual(Base + 10, subscribers()),
    finish([P || {P, _} <- Subs], exit),
    ?assertEqual(Base, await_subscribers(Base, 20000)),
    ?assert(maps:get(dropped_exited, table()) >= 10),
    %% and unsubscribing drops at once
    [{P1, {subscribed, _}}] = spawn_subscribers(1),
    ?assertEqual(Base + 1, subscribers()),
    finish([P1], unsubscribe_and_exit),
    ?assertEqual(Base, subscribers()).

%% Before: a pid on a node that never connects is kept. Now a subscriber must be a pid
%% of the node that asks (a peer could fill another node's share of the table), so a
%% pid of a ghost node, sent from here, is not even looked at: counted in `ignored'.
unconnected_and_disconnected_nodes(Config) ->
    C = ?config(cnode, Config),
    Base = subscribers(),
    I0 = maps:get(ignored, stats()),
    {plexus_cnode, ?CN} ! {subscribe, ghost_pid('cs_ghost@127.0.0.1')},
    %% the stats call travels the same connection, after the subscribe
    ?assertEqual(Base, subscribers()),
    ?assert(maps:get(ignored, stats()) >= I0 + 1),
    %% subscribers on a node whose connection drops go with it
    {H, _, HPid} = start_watched("cs_h1", Config),
    Self = self(),
    HSubs = [spawn(H, fun() -> subscriber(Self) end) || _ <- lists:seq(1, 5)],
    [receive {sub, P, {subscribed, _}} -> ok after 15000 -> error(no_subscribed) end
     || P <- HSubs],
    ?assertEqual(Base + 5, subscribers()),
    #{dropped_nodedown := D0} = table(),
    plexus_test_nodes:os_kill(HPid, "KILL"),
    {ok, _, _} = plexus_test_nodes:await_event(C, node_down, H, 15000),
    ?assertEqual(Base, await_subscribers(Base, 10000)),
    ?assertEqual(D0 + 5, maps:get(dropped_nodedown, table())).

%% Past --max-subscribers a subscriber is told, not silently kept or dropped.
table_bounded(_Config) ->
    Base = subscribers(),
    Room = ?MAX_SUBS - Base,
    Subs = spawn_subscribers(Room),
    ?assertEqual(Room, length([ok || {_, {subscribed, _}} <- Subs])),
    [{P, Refused}] = spawn_subscribers(1),
    ?assertEqual({not_subscribed, atom_to_binary(?CN, utf8), too_many_subscribers}, Refused),
    ?assertEqual(?MAX_SUBS, subscribers()),
    ?assert(maps:get(refused_full, table()) >= 1),
    %% the Erlang API says so too, instead of waiting for a reply that never comes
    {Caller, Mref} = spawn_monitor(
                       fun() ->
                               process_flag(trap_exit, true),
                               exit({result, plexus_cnode:start_link(
                                               #{mode => attach, node => ?CN,
                                                 call_timeout_ms => 10000})})
                       end),
    receive {'DOWN', Mref, process, Caller, {result, Attach}} ->
            ?assertEqual({error, {not_subscribed, too_many_subscribers}}, Attach)
    after 20000 -> error(attach_timeout)
    end,
    finish([P], exit),
    finish([Q || {Q, _} <- Subs], exit),
    ?assertEqual(Base, await_subscribers(Base, 30000)).

%% Before: {health, Fun} never answered; {health, 42} said unknown_call.
bad_requests_answered(_Config) ->
    Call = fun(Req) -> gen_server:call({plexus_cnode, ?CN}, Req, 5000) end,
    ?assertEqual({error, badarg}, Call({health, fun() -> ok end})),
    ?assertEqual({error, badarg}, Call({health, {a, b}})),
    ?assertEqual({error, badarg}, Call({health, 42})),
    ?assertEqual({error, badarg}, Call({health, <<>>})),
    ?assertEqual({error, badarg}, Call({registry_view, foo})),
    ?assertEqual({error, badarg}, Call({registry_view, 0})),
    ?assertEqual({error, badarg}, Call(fun() -> ok end)),
    ?assertEqual({error, unknown_call}, Call(what)),
    ?assertEqual({error, not_found}, Call({health, <<"nobody@127.0.0.1">>})),
    {plexus_cnode, ?CN} ! {subscribe, self(), not_a_list},
    receive {plexus_cnode, Reply} ->
            ?assertEqual({not_subscribed, atom_to_binary(?CN, utf8), badarg}, Reply)
    after 5000 -> error(no_reply)
    end,
    ?assert(is_map(stats())).

%% Before: a 10 MB message closed the connection: node_down for its sender, whose
%% subscribers were silently dropped.
oversize_message(Config) ->
    C = ?config(cnode, Config),
    {H, _, _} = Node = start_watched("cs_h2", Config),
    try
        Base = subscribers(),
        Self = self(),
        HSubs = [spawn(H, fun() -> subscriber(Self) end) || _ <- lists:seq(1, 3)],
        [receive {sub, P, {subscribed, _}} -> ok after 15000 -> error(no_subscribed) end
         || P <- HSubs],
        ?assertEqual(Base + 3, subscribers()),
        #{oversize := O0} = stats(),
        Mark = event_mark(C),
        ?assertMatch({ok, #{status := healthy}}, big_message_then_call(H, 10 * 1024 * 1024)),
        timer:sleep(2 * ?PING), %% a ping round: a false node_down would show by now
        {_, Lines, _} = plexus_test_nodes:cnode_events(C),
        ?assertEqual([], [E || {_, E, N, _} <- events_since(C, Mark),
                               N =:= atom_to_binary(H, utf8), E =/= <<"healthy">>]),
        ?assertMatch([_ | _], [L || L <- Lines, binary:match(L, <<"bytes (limit">>) =/= nomatch]),
        ?assertEqual(Base + 3, subscribers()),
        ?assertEqual(O0 + 1, maps:get(oversize, stats()))
    after
        plexus_test_nodes:stop_node(Node)
    end.

%% Before: one legal 7 MB message left the 16 MiB read buffer it was read into for as
%% long as the connection lived (about 8 MB of RSS per connection that ever sent one;
%% buffer_bytes stayed at 16 MiB and more).
big_message_buffer_given_back(Config) ->
    {H, _, _} = Node = start_watched("cs_h3", Config),
    try
        ?assertMatch({ok, #{status := healthy}}, big_message_then_call(H, 7 * 1024 * 1024)),
        %% every peer's buffers together: each back to at most 64 KiB for each way
        ?assert(maps:get(buffer_bytes, stats()) < 1024 * 1024)
    after
        plexus_test_nodes:stop_node(Node)
    end.

%% From node H: a message of Bytes to the daemon, then a call on the same connection,
%% which is answered after it; the call's result.
big_message_then_call(H, Bytes) ->
    rpc:call(H, erlang, apply,
             [fun() ->
                      {plexus_cnode, ?CN} ! {health, binary:copy(<<"x">>, Bytes)},
                      catch gen_server:call({plexus_cnode, ?CN}, {health, H}, 10000)
              end, []]).

%% Before (100,000 subscribers): 118 s of C node CPU, RSS 14 -> 209 MB, every node
%% flapped suspect/healthy and a kill took 873 ms to report instead of 6-11 ms; the
%% table never shrank. Here 10,000 subscribers come and go in batches of 500 (half
%% unsubscribe, half just exit) while an unrelated node is killed.
churn_10000(Config) ->
    C = ?config(cnode, Config),
    {_, OsPid} = C,
    {U1, _, U1Pid} = U1Node = start_watched("cs_u1", Config),
    {U2, _, U2Pid} = U2Node = start_watched("cs_u2", Config),
    try
        Base = subscribers(),
        timer:sleep(3 * ?PING),
        Quiet = kill_latency(C, U1, U1Pid),
        Mark = event_mark(C),
        Rss0 = rss_kb(OsPid),
        Cpu0 = cpu_ticks(OsPid),
        Tc0 = erlang:monotonic_time(millisecond),
        Self = self(),
        Churner = spawn_link(fun() -> churn(Self, 20, 500) end),
        receive {churn_half, Churner} -> ok after 120000 -> error(churn_stuck) end,
        Busy = kill_latency(C, U2, U2Pid),
        receive {churn_done, Churner, Refused} -> ?assertEqual(0, Refused)
        after 240000 -> error(churn_stuck)
        end,
        Tc1 = erlang:monotonic_time(millisecond),
        RssPeak = rss_kb(OsPid),
        Drained = await_subscribers(Base, 60000),
        CpuMs = (cpu_ticks(OsPid) - Cpu0) * 10,
        Rss1 = rss_kb(OsPid),
        %% a flap: a live node suspected or reported down, or the killed U1 reported
        %% at all (up again, or down a second time)
        Flaps = [{E, N} || {T, E, N, _} <- events_since(C, Mark), T =< Tc1,
                           N =:= atom_to_binary(U1, utf8) orelse
                               ((E =:= <<"suspect">> orelse E =:= <<"node_down">>) andalso
                                N =/= atom_to_binary(U2, utf8))],
        ct:pal("churn of 10,000 subscribers: kill -> node_down ~b ms quiet, ~b ms during "
               "churn; C node CPU ~b ms over ~b ms; RSS ~b -> ~b (after churn) -> ~b kB "
               "(drained); table ~p; flaps ~p",
               [Quiet, Busy, CpuMs, Tc1 - Tc0, Rss0, RssPeak, Rss1, table(), Flaps]),
        ?assertEqual(Base, Drained),
        ?assertEqual([], Flaps),
        %% The report comes from the socket closing, not from a timeout (kill_latency
        %% checks the reason); the latency bound is generous, as in the hostile suite,
        %% because a loaded machine stretches both figures. Starvation of the event
        %% loop by the churn shows as the flaps above.
        ?assert(Busy =< 2 * Quiet + 4000),
        %% bounded: the old table held 2 KB per subscriber it never dropped (+10.8 MB
        %% here); what may grow now is a peer's output buffer (at most 4 MB)
        ?assert(Rss1 - Rss0 < 8 * 1024),
        ?assert(maps:get(bytes, table()) < 64 * 1024)
    after
        plexus_test_nodes:stop_node(U1Node),
        plexus_test_nodes:stop_node(U2Node)
    end.

churn(Parent, Batches, Size) ->
    Refused = lists:sum([churn_batch(Parent, B, Batches, Size) || B <- lists:seq(1, Batches)]),
    Parent ! {churn_done, self(), Refused}.

churn_batch(Parent, B, Batches, Size) ->
    B =:= Batches div 2 andalso (Parent ! {churn_half, self()}),
    Subs = spawn_subscribers(Size),
    {Unsub, Exit} = lists:split(Size div 2, [P || {P, _} <- Subs]),
    ok = finish(Unsub, unsubscribe_and_exit),
    ok = finish(Exit, exit),
    length([R || {_, R} <- Subs, R =/= {subscribed, atom_to_binary(?CN, utf8)}]).
