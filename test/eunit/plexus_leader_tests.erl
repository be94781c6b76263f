%% @doc EUnit tests of `plexus_leader' on one node (the multi-node behaviour is in
%% plexus_leader_SUITE). Peers on other nodes are played by injecting the messages
%% their processes would send, with pids that name those (absent) nodes; what this
%% process sends back to them is dropped by distribution.
-module(plexus_leader_tests).

-include_lib("eunit/include/eunit.hrl").

-export([log/2]).

-define(L, plexus_leader).
-define(P2, 'p2@h').
-define(P3, 'p3@h').
%% Slow timers: the node never campaigns on its own during a test.
-define(SLOW, #{election_timeout_min => 5000, election_timeout_max => 10000,
                heartbeat_interval => 1000}).

%% ------------------------------------------------------------------ the fixture

%% Every test runs inside one fixture that owns this run's data directories and
%% removes them after the last test, whatever the outcome (no test depends on running
%% last). The tests run in this order, one after the other: they register names.
leader_test_() ->
    {setup, fun make_root/0, fun remove_root/1,
     fun(_) -> [with_timeout(T) || T <- leader_tests()] end}.

%% A start or a call may wait on an fsync of the hard state, which a loaded machine
%% stretches to seconds: each test gets a minute instead of eunit's default 5 s.
with_timeout({Desc, {timeout, _, _} = T}) -> {Desc, T};
with_timeout({Desc, {setup, _, _, _} = T}) -> {Desc, T};
with_timeout({Desc, F}) when is_function(F, 0) -> {Desc, {timeout, 60, F}}.

leader_tests() ->
             [
      {"single_node_leads", fun single_node_leads/0},
      {"restart_resumes_term", fun restart_resumes_term/0},
      {"hard_state_file", fun hard_state_file/0},
      {"binary_data_dir", fun binary_data_dir/0},
      {"corrupt_hard_state_refuses_to_start", fun() -> quiet(fun corrupt_hard_state_refuses_to_start/0) end},
      {"vote_survives_restart", fun vote_survives_restart/0},
      {"follower_callbacks", fun follower_callbacks/0},
      {"silent_peer_is_reported_left", fun silent_peer_is_reported_left/0},
      {"other_cluster_is_ignored", fun other_cluster_is_ignored/0},
      {"write_failure_stops", fun() -> quiet(fun write_failure_stops/0) end},
      {"node_name_change_stops", fun() -> quiet(fun node_name_change_stops/0) end},
      {"join_leave", fun join_leave/0},
      {"restart_keeps_membership", fun restart_keeps_membership/0},
      {"stale_membership_gets_no_vote", fun stale_membership_gets_no_vote/0},
      {"old_format_hard_state", fun old_format_hard_state/0},
      {"missing_hard_state_is_reported", fun missing_hard_state_is_reported/0},
      {"api_inside_callbacks", fun api_inside_callbacks/0},
      {"user_messages", fun() -> quiet(fun user_messages/0) end},
      {"minimal_module", fun() -> quiet(fun minimal_module/0) end},
      {"callback_stop", fun() -> quiet(fun callback_stop/0) end},
      {"init_results", fun() -> quiet(fun init_results/0) end},
      {"child_spec", fun child_spec/0},
      %% each start reads the data dir: on a loaded machine one took over eunit's default 5 s
      {"bad_options", {setup, fun silence/0, fun restore/1,
                       fun(_) -> [{timeout, 60, T} || T <- bad_options()] end}}].

root() -> filename:join("/tmp", "plexus_leader_tests." ++ os:getpid()).

make_root() -> ok = filelib:ensure_path(root()).

remove_root(ok) -> ok = file:del_dir_r(root()).

%% ------------------------------------------------------------------ helpers

tmp_dir() ->
    D = filename:join(root(), integer_to_list(erlang:unique_integer([positive]))),
    ok = filelib:ensure_path(D),
    D.

start(Name, Opts) -> start(Name, Opts, #{}).
start(Name, Opts, Args) ->
    {ok, Pid} = ?L:start(Name, plexus_leader_probe, Args, maps:merge(#{data_dir => tmp_dir()}, Opts)),
    Pid.

stop(Name) ->
    case whereis(Name) of
        undefined -> ok;
        _ -> ?L:stop(Name)
    end.

events(Name) -> [E || {_, E} <- gen_server:call(Name, events)].

%% A pid of a process on `Node' (NEW_PID_EXT), for a peer that is not really there.
fake_pid(Node) ->
    N = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 88, 119, (byte_size(N)), N/binary, 7:32, 0:32, 1:32>>).

%% Delivers what the process `Name' on `From' would have sent.
inject(Name, From, Payload) ->
    inject(Name, Name, From, Payload).
inject(Name, Cluster, From, Payload) ->
    Name ! {'$plexus_leader', plexus_election:cluster_key(Cluster), fake_pid(From),
            on_wire(Payload)},
    _ = sys:get_state(Name),                      % processed
    ok.

%% Election messages and `alive' travel with the sender's membership key ({0, 0}:
%% the bootstrap membership).
on_wire(Bin) when is_binary(Bin) -> {msg, {0, 0}, Bin};
on_wire(alive) -> {alive, {0, 0}};
on_wire(Other) -> Other.

wire(Name, Type, From, Term) ->
    plexus_election:encode_msg(#{type => Type, reject => false,
                                 cluster_id => plexus_election:cluster_key(Name),
                                 from => plexus_election:node_id(From),
                                 to => plexus_election:node_id(node()), term => Term}).

%% The error paths below make gen_server log crash reports; keep the output readable.
silence() ->
    #{level := L} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, none),
    L.

restore(L) -> logger:set_primary_config(level, L).

quiet(F) ->
    L = silence(),
    try F() after restore(L) end.

wait_for(F) -> wait_for(F, 200).
wait_for(F, 0) -> F();
wait_for(F, N) ->
    %% a call that times out while the leader waits on an fsync is a "not yet"
    case try F() catch exit:{timeout, _} -> false end of
        true -> true;
        _ -> timer:sleep(10), wait_for(F, N - 1)
    end.

%% ------------------------------------------------------------------ one node alone

single_node_leads() ->
    Pid = start(el_single, #{}),
    ?assert(wait_for(fun() -> ?L:is_leader(el_single) end)),
    ?assertEqual(Pid, ?L:leader(el_single)),
    ?assertEqual(1, ?L:term(el_single)),
    ?assertEqual([], ?L:peers(el_single)),
    ?assertEqual(0, ?L:peer_count(el_single)),
    ?assertEqual([], ?L:bootstrap(el_single)),
    ?assertEqual(el_single, ?L:cluster_id(el_single)),
    ?assertEqual([{term, 0, 1}, {leader, Pid}], events(el_single)),
    #{role := leader, term := 1, voted_for := Self, leader := Pid, quorum := 1,
      hard_state_file := File, timing := #{election_timeout_min := 150, priority := high}} =
        ?L:info(el_single),
    ?assertEqual(node(), Self),
    ?assertEqual({ok, {1, plexus_election:node_id(node())}}, ?L:read_hard_state(File)),
    %% the API takes the pid or {Name, node()} too
    ?assert(?L:is_leader(Pid)),
    ?assert(?L:is_leader({el_single, node()})),
    stop(el_single).

restart_resumes_term() ->
    Dir = tmp_dir(),
    _ = start(el_restart, #{data_dir => Dir}),
    ?assert(wait_for(fun() -> ?L:is_leader(el_restart) end)),
    stop(el_restart),
    _ = start(el_restart, #{data_dir => Dir}),
    ?assert(wait_for(fun() -> ?L:is_leader(el_restart) end)),
    ?assertEqual(2, ?L:term(el_restart)),
    ?assertEqual({term, 1, 2}, hd(events(el_restart))),
    stop(el_restart).

hard_state_file() ->
    F = ?L:hard_state_file("/d", my_name, 5),
    ?assertEqual(filename:join(["/d", "plexus_leader", atom_to_list(node()),
                                "my_name-0000000000000005.hs"]), F),
    %% odd names stay inside their directory
    ?assertEqual("a%2Fb-0000000000000005.hs",
                 filename:basename(?L:hard_state_file("/d", 'a/b', 5))),
    ?assertEqual("%C3%A9t%C3%A9-0000000000000005.hs",
                 filename:basename(?L:hard_state_file("/d", 'été', 5))),
    ?assertEqual({ok, {0, 0}}, ?L:read_hard_state("/nonexistent/plexus/x.hs")).

binary_data_dir() ->
    Dir = list_to_binary(tmp_dir()),
    {ok, _} = ?L:start(el_bindir, plexus_leader_probe, #{}, #{data_dir => Dir}),
    ?assert(wait_for(fun() -> ?L:is_leader(el_bindir) end)),
    #{hard_state_file := File} = ?L:info(el_bindir),
    ?assert(is_binary(File)),
    ?assertMatch({ok, {1, _}}, ?L:read_hard_state(File)),
    stop(el_bindir).

corrupt_hard_state_refuses_to_start() ->
    process_flag(trap_exit, true),
    Dir = tmp_dir(),
    File = ?L:hard_state_file(Dir, el_corrupt, el_corrupt),
    ok = filelib:ensure_dir(File),
    ok = file:write_file(File, <<"PXHS", 1, 0:64, 0:64, 0:32>>),      % bad CRC
    ?assertEqual({error, {hard_state, File, corrupt}},
                 ?L:start(el_corrupt, plexus_leader_probe, #{}, #{data_dir => Dir})),
    ok = file:write_file(File, <<"short">>),
    ?assertEqual({error, {hard_state, File, corrupt}},
                 ?L:start(el_corrupt, plexus_leader_probe, #{}, #{data_dir => Dir})),
    %% a data_dir under a regular file
    ?assertMatch({error, {hard_state, _, enotdir}},
                 ?L:start(el_corrupt, plexus_leader_probe, #{},
                          #{data_dir => filename:join(File, "sub")})).

%% ------------------------------------------------------------------ with peers

%% Raft's promise across a restart: a node that voted for p2 in term 5, restarted from
%% its file, still refuses p3 in term 5 (the file is read at start).
vote_survives_restart() ->
    Dir = tmp_dir(),
    Opts = ?SLOW#{data_dir => Dir, bootstrap => [?P2, ?P3, node()]},
    _ = start(el_vote, Opts),
    ok = inject(el_vote, ?P2, wire(el_vote, vote, ?P2, 5)),
    ?assertMatch(#{term := 5, voted_for := ?P2}, ?L:info(el_vote)),
    stop(el_vote),
    _ = start(el_vote, Opts),
    ?assertMatch(#{term := 5, voted_for := ?P2}, ?L:info(el_vote)),
    ok = inject(el_vote, ?P3, wire(el_vote, vote, ?P3, 5)),
    ?assertMatch(#{term := 5, voted_for := ?P2}, ?L:info(el_vote)),
    %% a later term frees the vote
    ok = inject(el_vote, ?P3, wire(el_vote, vote, ?P3, 6)),
    ?assertMatch(#{term := 6, voted_for := ?P3}, ?L:info(el_vote)),
    stop(el_vote).

follower_callbacks() ->
    _ = start(el_follow, ?SLOW#{bootstrap => [?P2, ?P3]}),
    Leader = fake_pid(?P2),
    ok = inject(el_follow, ?P2, wire(el_follow, heartbeat, ?P2, 7)),
    ?assertEqual([{peer_joined, {el_follow, ?P2}}, {term, 0, 7}, {follower, Leader}],
                 events(el_follow)),
    ?assertEqual(Leader, ?L:leader(el_follow)),
    ?assertNot(?L:is_leader(el_follow)),
    ?assertMatch(#{leader_node := ?P2, role := follower, present := [{el_follow, ?P2}]},
                 ?L:info(el_follow)),
    %% the leader's process says goodbye: left, leaderless (the fast path campaigns)
    ok = inject(el_follow, ?P2, down),
    ?assertEqual([{peer_left, {el_follow, ?P2}}, {follower, undefined}],
                 lists:nthtail(3, events(el_follow))),
    ?assertEqual(undefined, ?L:leader(el_follow)),
    ?assertMatch(#{stats := #{pre_votes := 1, fast_campaigns := 1}}, ?L:info(el_follow)),
    stop(el_follow).

silent_peer_is_reported_left() ->
    _ = start(el_silent, ?SLOW#{bootstrap => [?P2, ?P3], peer_timeout => 100}),
    ok = inject(el_silent, ?P3, alive),
    ?assertEqual([{peer_joined, {el_silent, ?P3}}], events(el_silent)),
    ?assert(wait_for(fun() -> lists:member({peer_left, {el_silent, ?P3}}, events(el_silent)) end)),
    %% still a voter: 3 voters, quorum 2
    ?assertEqual(2, ?L:peer_count(el_silent)),
    ?assertEqual(2, maps:get(quorum, ?L:info(el_silent))),
    stop(el_silent).

other_cluster_is_ignored() ->
    _ = start(el_foreign, ?SLOW#{bootstrap => [?P2]}),
    ok = inject(el_foreign, other_cluster, ?P2, wire(el_foreign, heartbeat, ?P2, 3)),
    ?assertMatch(#{term := 0, stats := #{foreign := 1}}, ?L:info(el_foreign)),
    ?assertEqual([], events(el_foreign)),
    %% unknown sender, right cluster: counted by the machine, no callback
    ok = inject(el_foreign, 'stranger@h', wire(el_foreign, heartbeat, 'stranger@h', 3)),
    ?assertMatch(#{term := 0, stats := #{unknown_peer := 1}}, ?L:info(el_foreign)),
    ?assertEqual([], events(el_foreign)),
    stop(el_foreign).

%% The hard state cannot be written: the process stops before it sends anything.
write_failure_stops() ->
    process_flag(trap_exit, true),
    Dir = tmp_dir(),
    Pid = start(el_wfail, ?SLOW#{data_dir => Dir, bootstrap => [?P2]}),
    Ref = monitor(process, Pid),
    #{hard_state_file := File} = ?L:info(el_wfail),
    NodeDir = filename:dirname(File),
    ok = file:del_dir_r(NodeDir),
    ok = file:write_file(NodeDir, <<"not a directory">>),
    el_wfail ! {'$plexus_leader', plexus_election:cluster_key(el_wfail), fake_pid(?P2),
                on_wire(wire(el_wfail, heartbeat, ?P2, 3))},
    receive {'DOWN', Ref, process, Pid, Reason} ->
            ?assertMatch({hard_state_write_failed, _, enotdir}, Reason)
    after 5000 -> error(still_running)
    end.

%% Distribution started after the process: it went on as nonode@nohost (its own new
%% name one of its voters, its file under nonode@nohost) and never took part. It stops
%% instead, and a restart takes the new name. Only where this VM is not distributed
%% and can become so (epmd running).
node_name_change_stops() ->
    Name = list_to_atom("plexus_leader_tests_" ++ os:getpid() ++ "@127.0.0.1"),
    case is_alive() of
        true ->
            ok;
        false ->
            process_flag(trap_exit, true),
            Pid = start(el_rename, ?SLOW#{bootstrap => [Name, ?P2]}),
            Ref = monitor(process, Pid),
            case net_kernel:start([Name, longnames]) of
                {ok, _} ->
                    try
                        receive {'DOWN', Ref, process, Pid, Reason} ->
                                ?assertEqual({node_changed, nonode@nohost, Name}, Reason)
                        after 5000 -> error(still_running)
                        end,
                        _ = start(el_rename, ?SLOW#{bootstrap => [Name, ?P2]}),
                        #{node := Name, members := Members} = ?L:info(el_rename),
                        ?assertEqual(lists:sort([Name, ?P2]), Members),
                        stop(el_rename)
                    after
                        net_kernel:stop()
                    end;
                {error, _} ->
                    stop(el_rename)                  % no epmd here: nothing to check
            end
    end.

%% ------------------------------------------------------------------ membership API

%% Timers for a process that campaigns soon and, once it leads, stays leader without
%% real peers (no CheckQuorum); votes are injected.
-define(CAMPAIGNS, #{election_timeout_min => 100, election_timeout_max => 200,
                     heartbeat_interval => 20, pre_vote => false, check_quorum => false}).

%% Waits until `Name' campaigns, grants it p2's vote, and returns its term.
make_leader(Name) ->
    ?assert(wait_for(fun() -> maps:get(role, ?L:info(Name)) =:= candidate end)),
    #{term := T} = ?L:info(Name),
    ok = inject(Name, ?P2, wire(Name, vote_resp, ?P2, T)),
    ?assertMatch(#{role := leader, term := T}, ?L:info(Name)),
    T.

join_leave() ->
    _ = start(el_join, ?CAMPAIGNS#{bootstrap => [?P2, ?P3]}),
    ?assertEqual({error, not_leader}, ?L:join(el_join, 'p4@h')),
    T = make_leader(el_join),
    %% the new leader first re-issues the membership in its own term (rule 2)
    ?assert(wait_for(fun() -> maps:get(config_key, ?L:info(el_join)) =:= {T, 1} end)),
    %% one change at a time: {T, 1} is not yet reported by a majority of 3
    ?assertEqual({error, {change_in_progress, {T, 1}}}, ?L:join(el_join, 'p4@h')),
    ok = inject(el_join, ?P2, {alive, {T, 1}}),
    ?assertEqual(ok, ?L:join(el_join, {el_join, 'p4@h'})),
    ?assert(?L:has_peer(el_join, 'p4@h')),
    ?assert(?L:has_peer(el_join, {el_join, 'p4@h'})),
    ?assert(?L:has_peer(el_join, fake_pid('p4@h'))),
    ?assertEqual([{el_join, ?P2}, {el_join, ?P3}, {el_join, 'p4@h'}], ?L:peers(el_join)),
    ?assertMatch(#{quorum := 3, config_key := {T, 2}}, ?L:info(el_join)),   % 4 voters
    ?assertEqual({error, {change_in_progress, {T, 2}}}, ?L:leave(el_join, 'p4@h')),
    [ok = inject(el_join, P, {alive, {T, 2}}) || P <- [?P2, ?P3]],
    ?assertEqual({error, already_member}, ?L:join(el_join, 'p4@h')),
    ?assertEqual({error, self}, ?L:join(el_join, node())),
    ?assertEqual(ok, ?L:leave(el_join, 'p4@h')),
    ?assertNot(?L:has_peer(el_join, 'p4@h')),
    [ok = inject(el_join, P, {alive, {T, 3}}) || P <- [?P2, ?P3]],
    ?assertEqual({error, not_found}, ?L:leave(el_join, 'p4@h')),
    %% a peer reports a newer key: this node is behind and makes no change
    ok = inject(el_join, ?P2, {alive, {T, 4}}),
    ?assertEqual({error, {change_in_progress, {T, 3}}}, ?L:join(el_join, 'p4@h')),
    ?assertError(badarg, ?L:has_peer(el_join, 123)),
    ?assertError(badarg, ?L:join(el_join, "p4@h")),
    %% a newer membership naming this node is adopted, from a voter or a stranger
    ok = inject(el_join, ?P2, {config, {T, 5}, ['p5@h', 'p6@h', node(), ?P2]}),
    ?assertEqual([{el_join, ?P2}, {el_join, 'p5@h'}, {el_join, 'p6@h'}], ?L:peers(el_join)),
    ok = inject(el_join, 'p7@h', {config, {T, 6}, ['p5@h', 'p7@h', node(), ?P2]}),
    ?assertMatch(#{config_key := {T, 6}, quorum := 3}, ?L:info(el_join)),
    %% an older one, a malformed one, or one not naming this node, is not
    ok = inject(el_join, ?P2, {config, {T, 4}, [node(), ?P2]}),
    ok = inject(el_join, ?P2, {config, {T, 7}, ['p5@h', ?P2]}),
    ok = inject(el_join, ?P2, {config, {T, -1}, [node(), ?P2]}),
    ok = inject(el_join, ?P2, {config, {T, 7}, [node(), "p2@h"]}),
    ok = inject(el_join, ?P2, {config, 7, [node(), ?P2]}),
    ?assertMatch(#{config_key := {T, 6}, quorum := 3}, ?L:info(el_join)),
    %% one made in a later term moves this node to that term first, without a vote
    ok = inject(el_join, ?P2, {config, {T + 5, 1}, [node(), ?P2]}),
    ?assertMatch(#{config_key := {_, 1}, term := _, voted_for := undefined, quorum := 2,
                   role := follower}, ?L:info(el_join)),
    ?assertEqual(T + 5, ?L:term(el_join)),
    ?assertEqual({term, T, T + 5}, lists:last([E || E = {term, _, _} <- events(el_join)])),
    %% anything else from a member is ignored
    ok = inject(el_join, ?P2, {garbage, 1}),
    ?assertEqual(1, ?L:peer_count(el_join)),
    stop(el_join).

%% Issue 8, as QA found it: a 3-node bootstrap grows to 5 by join/2; one member's
%% process restarts with its bootstrap option (3 voters) while the others count 5.
%% Before the fix it counted a quorum of 2 and led a term with 2 votes while the
%% other 3 could elect their own leader in that term. Now the saved membership wins:
%% 2 votes of 5 are not enough, 3 are.
restart_keeps_membership() ->
    Dir = tmp_dir(),
    Opts = ?CAMPAIGNS#{data_dir => Dir, bootstrap => [?P2, ?P3, node()]},
    _ = start(el_qa, Opts),
    T = make_leader(el_qa),
    ?assert(wait_for(fun() -> maps:get(config_key, ?L:info(el_qa)) =:= {T, 1} end)),
    ok = inject(el_qa, ?P2, {alive, {T, 1}}),
    ok = ?L:join(el_qa, 'p4@h'),
    [ok = inject(el_qa, P, {alive, {T, 2}}) || P <- [?P2, ?P3]],
    ok = ?L:join(el_qa, 'p5@h'),
    ?assertMatch(#{quorum := 3, config_key := {T, 3}}, ?L:info(el_qa)),
    stop(el_qa),
    _ = start(el_qa, Opts),
    ?assertMatch(#{quorum := 3, config_key := {T, 3}, members := [_, _, _, _, _]},
                 ?L:info(el_qa)),
    ?assertEqual({ok, {3, lists:sort([node(), ?P2, ?P3, 'p4@h', 'p5@h'])}},
                 ?L:read_membership(maps:get(hard_state_file, ?L:info(el_qa)))),
    %% it campaigns; p2 grants: 2 of 5, still a candidate; p4 grants too: leader
    ?assert(wait_for(fun() -> maps:get(role, ?L:info(el_qa)) =:= candidate end)),
    #{term := T2} = ?L:info(el_qa),
    ok = inject(el_qa, ?P2, wire(el_qa, vote_resp, ?P2, T2)),
    ?assertMatch(#{role := candidate, term := T2}, ?L:info(el_qa)),
    ok = inject(el_qa, 'p4@h', wire(el_qa, vote_resp, 'p4@h', T2)),
    ?assertMatch(#{role := leader, term := T2}, ?L:info(el_qa)),
    stop(el_qa).

%% A candidate behind on membership gets no vote: it would count votes against voters
%% that were replaced.
stale_membership_gets_no_vote() ->
    _ = start(el_stale, ?SLOW#{bootstrap => [?P2, ?P3]}),
    ok = inject(el_stale, ?P2, {config, {0, 1}, [node(), ?P2, ?P3, 'p4@h']}),
    ok = inject(el_stale, ?P2, {msg, {0, 0}, wire(el_stale, vote, ?P2, 4)}),
    ?assertMatch(#{term := 0, voted_for := undefined,
                   stats := #{stale_config_votes := 1}}, ?L:info(el_stale)),
    ok = inject(el_stale, ?P2, {msg, {0, 1}, wire(el_stale, vote, ?P2, 4)}),
    ?assertMatch(#{term := 4, voted_for := ?P2}, ?L:info(el_stale)),
    %% more voters than a cluster can have: refused (it could not be restarted from)
    Many = [list_to_atom("m" ++ integer_to_list(I) ++ "@h") || I <- lists:seq(1, 64)],
    ok = inject(el_stale, ?P2, {config, {0, 2}, [node() | Many]}),
    ?assertMatch(#{config_key := {0, 1}, quorum := 3}, ?L:info(el_stale)),
    stop(el_stale).

%% A hard state written before membership was saved (format 1) is still read; the
%% bootstrap list seeds the membership then.
old_format_hard_state() ->
    Dir = tmp_dir(),
    File = ?L:hard_state_file(Dir, el_v1, el_v1),
    ok = filelib:ensure_dir(File),
    V2 = plexus_election:node_id(?P2),
    Body = <<"PXHS", 1, 7:64, V2:64>>,
    ok = file:write_file(File, <<Body/binary, (erlang:crc32(Body)):32>>),
    ?assertEqual({ok, none}, ?L:read_membership(File)),
    _ = start(el_v1, ?SLOW#{data_dir => Dir, bootstrap => [?P2, ?P3]}),
    ?assertMatch(#{term := 7, voted_for := ?P2, config_key := {0, 0}, quorum := 2},
                 ?L:info(el_v1)),
    ?assertEqual({ok, {0, lists:sort([node(), ?P2, ?P3])}}, ?L:read_membership(File)),
    stop(el_v1).

%% Issue 8: a deleted hard state of a node that ran before is reported loudly (the
%% way a node votes twice in a term), and the node sits out instead of voting at once;
%% a node that never ran starts quietly.
missing_hard_state_is_reported() ->
    Dir = tmp_dir(),
    Opts = ?SLOW#{data_dir => Dir, bootstrap => [?P2, ?P3]},
    ok = logger:add_handler(el_capture, ?MODULE, #{config => #{pid => self()}}),
    try
        _ = start(el_gone, Opts),
        #{hard_state_file := File} = ?L:info(el_gone),
        ?assertEqual([], captured(error)),
        ok = inject(el_gone, ?P2, wire(el_gone, vote, ?P2, 3)),
        stop(el_gone),
        ok = file:delete(File),
        _ = start(el_gone, Opts),
        [Msg] = captured(error),
        ?assertNotEqual(nomatch, string:find(Msg, File)),
        ?assertNotEqual(nomatch, string:find(Msg, "vote twice")),
        %% sitting out: no vote in term 3 again, for anyone, also once a peer sent
        %% its membership of term 3 (adopting it ended the sit-out at once)
        Members = lists:sort([node(), ?P2, ?P3]),
        ok = inject(el_gone, ?P2, {config, {3, 1}, Members}),
        ?assertMatch(#{config_key := {0, 0}}, ?L:info(el_gone)),
        ok = inject(el_gone, ?P3, {msg, {3, 1}, wire(el_gone, vote, ?P3, 3)}),
        ?assertMatch(#{voted_for := undefined}, ?L:info(el_gone)),
        stop(el_gone)
    after
        logger:remove_handler(el_capture)
    end.

%% logger handler for the test above: forwards the text of each event.
log(#{level := Level, msg := Msg}, #{config := #{pid := Pid}}) ->
    Text = case Msg of
               {report, R} -> io_lib:format("~tp", [R]);
               {string, S} -> S;
               {F, A} -> io_lib:format(F, A)
           end,
    Pid ! {el_captured, Level, lists:flatten(io_lib:format("~ts", [Text]))}.

captured(Level) ->
    receive {el_captured, Level, T} -> [T | captured(Level)];
            {el_captured, _, _} -> captured(Level)
    after 100 -> []
    end.

api_inside_callbacks() ->
    _ = start(el_inside, ?SLOW#{bootstrap => [?P2]}),
    %% handle_call of the callback module calls the API on its own process: no deadlock
    ?assertEqual(false, gen_server:call(el_inside, {api, is_leader, [el_inside]})),
    ?assertEqual([{el_inside, ?P2}], gen_server:call(el_inside, {api, peers, [el_inside]})),
    ?assertEqual(0, gen_server:call(el_inside, {api, term, [el_inside]})),
    ?assertEqual(undefined, gen_server:call(el_inside, {api, leader, [el_inside]})),
    ?assertEqual(ok, gen_server:call(el_inside, {api, broadcast, [el_inside, hello]})),
    ?assertEqual(ok, gen_server:call(el_inside, {api, broadcast_bootstrap, [el_inside, hi]})),
    ?assertEqual([{el_inside, ?P2}], gen_server:call(el_inside, {api, bootstrap, [el_inside]})),
    ?assertEqual(el_inside, gen_server:call(el_inside, {api, cluster_id, [el_inside]})),
    %% and from outside
    ?assertEqual(ok, ?L:broadcast(el_inside, hello)),
    ?assertEqual(ok, ?L:broadcast_bootstrap(el_inside, hello)),
    stop(el_inside),
    %% join/leave from inside are queued (they need the leader's process)
    _ = start(el_inside, ?CAMPAIGNS#{bootstrap => [?P2]}),
    T = make_leader(el_inside),
    ?assert(wait_for(fun() -> maps:get(config_key, ?L:info(el_inside)) =:= {T, 1} end)),
    ok = inject(el_inside, ?P2, {alive, {T, 1}}),
    ?assertEqual(ok, gen_server:call(el_inside, {api, join, [el_inside, ?P3]})),   % queued
    ?assert(wait_for(fun() -> ?L:peer_count(el_inside) =:= 2 end)),
    stop(el_inside).

user_messages() ->
    process_flag(trap_exit, true),
    Pid = start(el_user, ?SLOW),
    ?assertEqual({echo, ping}, gen_server:call(el_user, ping)),
    ?assertEqual({error, {unknown_call, nonsense}},
                 gen_server:call(el_user, {'$plexus_leader', nonsense})),
    el_user ! something,
    _ = sys:get_state(el_user),
    ?assertEqual([{info, something}], events(el_user)),
    gen_server:cast(el_user, ignored_without_handle_cast),
    Ref = monitor(process, Pid),
    catch gen_server:call(el_user, crash_return),
    receive {'DOWN', Ref, process, Pid, R} -> ?assertEqual({bad_return_value, nonsense}, R)
    after 5000 -> error(still_running)
    end.

minimal_module() ->
    {ok, Pid} = ?L:start(el_min, plexus_leader_minimal, state, #{data_dir => tmp_dir()}),
    ?assert(wait_for(fun() -> ?L:is_leader(el_min) end)),
    ?assertEqual({error, {unknown_call, hello}}, gen_server:call(el_min, hello)),
    el_min ! whatever,
    ?assertEqual(Pid, ?L:leader(el_min)),
    stop(el_min).

callback_stop() ->
    process_flag(trap_exit, true),
    {ok, Pid} = ?L:start(el_cbstop, plexus_leader_probe, #{stop_on => handle_become_leader},
                         #{data_dir => tmp_dir()}),
    Ref = monitor(process, Pid),
    receive {'DOWN', Ref, process, Pid, R} -> ?assertEqual(probe_stop, R)
    after 5000 -> error(still_running)
    end.

init_results() ->
    process_flag(trap_exit, true),
    D = #{data_dir => tmp_dir()},
    ?assertEqual({error, refused}, ?L:start(el_init, plexus_leader_probe, refuse, D)),
    ?assertEqual({error, {bad_return_value, {nonsense}}},
                 ?L:start(el_init, plexus_leader_probe, bad_return, D)).

bad_options() ->
    S = fun(Opts) -> ?L:start(el_opts, plexus_leader_probe, #{}, Opts) end,
    D = tmp_dir(),
    Bad = fun(What) -> {error, {invalid_configuration, What}} end,
    [?_assertMatch({error, {invalid_configuration, {timing, _}}},
                   S(#{data_dir => D, election_timeout_min => 300})),
     ?_assertMatch({error, {invalid_configuration, {timing, _}}},
                   S(#{data_dir => D, heartbeat_interval => 150})),
     ?_assertEqual(Bad({election_timeout_min, 0}), S(#{data_dir => D, election_timeout_min => 0})),
     ?_assertEqual(Bad({tick_ms, x}), S(#{data_dir => D, tick_ms => x})),
     ?_assertEqual(Bad({pre_vote, 1}), S(#{data_dir => D, pre_vote => 1})),
     ?_assertEqual(Bad({check_quorum, yes}), S([{data_dir, D}, {check_quorum, yes}])),
     ?_assertEqual(Bad({priority, max}), S(#{data_dir => D, priority => max})),
     ?_assertEqual(Bad({bootstrap, {other, 'a@h'}}),
                   S(#{data_dir => D, bootstrap => [{other, 'a@h'}]})),
     ?_assertEqual(Bad({bootstrap, nodes}), S(#{data_dir => D, bootstrap => nodes})),
     ?_assertEqual(Bad({data_dir, 42}), S(#{data_dir => 42})),
     %% a relative directory depends on the working directory at each start (another
     %% one holds no hard state: term 0 again, silently); "" was the root's; a deep
     %% list crashed filename:join/1
     [?_assertEqual(Bad({data_dir, X}), S(#{data_dir => X}))
      || X <- ["", <<>>, "rel/dir", <<"rel">>, ["/tmp/", <<"x">>], [$/, 1.5]]],
     ?_assertEqual(Bad({bad_options, 42}), S(42)),
     %% plexus_opts: a list that is not a proplist is refused as a whole
     ?_assertEqual(Bad({bad_options, [{data_dir, D}, 42]}), S([{data_dir, D}, 42])),
     ?_assertEqual(Bad({bootstrap, full}),
                   S(#{data_dir => D, bootstrap => [list_to_atom("n" ++ integer_to_list(I) ++ "@h")
                                                    || I <- lists:seq(1, 64)]})),
     ?_assertEqual({error, {bad_module, no_such_module_here, nofile}},
                   ?L:start(el_opts, no_such_module_here, [], #{data_dir => D})),
     ?_assertError(function_clause, ?L:start("name", plexus_leader_probe, #{}, #{}))].

child_spec() ->
    Spec = ?L:child_spec({el_cs, plexus_leader_probe, #{}, #{}}),
    ?assertMatch(#{id := {plexus_leader, el_cs},
                   start := {plexus_leader, start_link, [el_cs, plexus_leader_probe, #{}, #{}]}},
                 Spec),
    ?assertEqual(Spec, ?L:child_spec(#{name => el_cs, module => plexus_leader_probe,
                                       args => #{}, opts => #{}})),
    %% Elixir's {:plexus_leader, name: ..., module: ..., data_dir: ...}: a keyword
    %% list, the keys other than name/module/args/opts being leader options (over opts)
    D = tmp_dir(),
    KwSpec = ?L:child_spec([{name, el_cs}, {module, plexus_leader_probe}, {args, #{}},
                            {opts, [{data_dir, "/nowhere"}, {tick_ms, 5}]}, {data_dir, D}]),
    ?assertMatch(#{id := {plexus_leader, el_cs},
                   start := {plexus_leader, start_link,
                             [el_cs, plexus_leader_probe, #{}, #{data_dir := D, tick_ms := 5}]}},
                 KwSpec),
    %% the spec starts a leader (as a supervisor would, from the start MFA)
    #{start := {M, F, A}} = KwSpec,
    {ok, Pid} = apply(M, F, A),
    unlink(Pid),
    ?assertMatch(#{hard_state_file := File} when is_list(File), ?L:info(el_cs)),
    ?assertEqual(D, lists:sublist(maps:get(hard_state_file, ?L:info(el_cs)), length(D))),
    ok = ?L:stop(Pid),
    %% a bare module: its own name, no args, default options
    ?assertMatch(#{id := {plexus_leader, plexus_leader_probe},
                   start := {plexus_leader, start_link,
                             [plexus_leader_probe, plexus_leader_probe, [], #{}]}},
                 ?L:child_spec(plexus_leader_probe)),
    %% a bare :plexus_leader in an Elixir child list asks child_spec([]): no name
    ?assertError({bad_options, []}, ?L:child_spec([])),
    ?assertError({bad_options, [{name, x}]}, ?L:child_spec([{name, x}])),
    ?assertError({bad_options, 42}, ?L:child_spec(42)).
