%% @doc A nemesis for `plexus_leader' on five real BEAM nodes (OTP `peer', 127.0.0.1):
%% it kills nodes with SIGKILL and restarts them on the same data_dir, restarts the
%% election process alone (as a supervisor would, gracefully or with `kill'), changes
%% the membership with `join/2' / `leave/2' by the README's procedure, cuts the
%% distribution between two groups of nodes (reconnects blocked), flaps single links,
%% drops every packet for a while (loopback down in a namespace of its own) and freezes
%% nodes (a forward jump of the clock the election reads), while a checker collects
%% every (term, leader) any node saw and fails on two leaders in one term.
%%
%% What the checker sees: each election process runs `plexus_nemesis_witness', which
%% appends `{leader, Term, Node}' / `{follows, Term, Leader, Node}' to a file on every
%% change (files survive SIGKILL); between operations the suite also polls
%% `plexus_leader:info/1' on every node. `plexus_nemesis_checker' folds all claims of the
%% whole run and reports every term with two leaders. Two more invariants fail a run:
%% a node counting a `conflicts' stat (a heartbeat from a second leader of its term),
%% and members that, once the cluster is whole again, disagree on who the voters are.
%% Liveness is checked loosely: after the last operation everything is healed and
%% restarted, and the members must agree on one leader within a generous bound.
%%
%% Cases:
%% <ul>
%% <li>`checker_flags_two_leaders': the checker itself fails on a planted history;</li>
%% <li>`join_restart_partition_scenario': the replay of a known bug class: bootstrap
%%     three nodes, join two more, restart one bootstrap member's process, split 2|3 so
%%     that the restarted member and the leader sit on the small side, and nudge both
%%     sides' terms until they meet. A member that forgets the joins on restart counts a quorum of 2
%%     of 3 and leads the small side in a term the big side also leads;</li>
%% <li>`random_nemesis': operations drawn from a seeded PRNG for
%%     `PLEXUS_NEMESIS_SECONDS' (default 25; `make soak' runs 600). The seed is printed;
%%     `PLEXUS_NEMESIS_SEED=N' replays the same sequence of operations (their timing
%%     against the cluster still varies).</li>
%% </ul>
%%
%% Clock jumps. The election reads only `erlang:monotonic_time/1' (ticks, the peer
%% silence timeout, the reconnect pacing), never the system clock, so stepping the wall
%% clock changes nothing it decides; and stepping the host's clock would disturb every
%% other process on the machine. What a process can see is its monotonic clock leaping
%% ahead, as after a VM suspend, a stop signal or a long stall: the `pause' operation
%% sends SIGSTOP to a node's VM and SIGCONT 0.2-2.5 s later, so on resume every timer
%% of that node is overdue at once and its peers' silence looks long.
%%
%% Packet loss. When the suite may create a network namespace (root and `ip'), the
%% random case runs its five VMs (and the epmd they start) inside a namespace of its
%% own, and `packet_loss' takes that namespace's loopback down for 0.1-1.5 s: every
%% packet in that window is dropped for real, the TCP connections stay up (no nodedown),
%% and what was sent arrives late through TCP's retransmissions. This is loss on every
%% link at once; per-packet random loss (`tc netem', iptables `statistic') needs kernel
%% modules the development machine lacks. Without a namespace the operation is skipped
%% and logged, and `flap' (one link cut and reconnected a few times in a row, which
%% loses whatever was in flight) still runs.
%%
%% Nodes run with `-kernel dist_auto_connect never': a cut holds until the suite
%% connects the pair again, and the test node, which drives the nodes over stdio, is
%% not part of their mesh. Every VM is stopped by its pid in `end_per_testcase'.
-module(plexus_leader_nemesis_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([checker_flags_two_leaders/1, join_restart_partition_scenario/1,
         random_nemesis/1]).

-define(C, plexus_test_cluster).
-define(NAME, nm_leader).
-define(PIDS, plexus_nemesis_os_pids).
-define(SLOTS, 5).
%% Bounds of the waits that are about the cluster making progress (never asserts on
%% how fast): generous for a loaded two-core machine.
-define(LIVENESS_MS, 60000).
-define(CHANGE_MS, 15000).
-define(DEFAULT_SECONDS, 25).

all() ->
    [checker_flags_two_leaders, join_restart_partition_scenario, random_nemesis].

suite() ->
    [{timetrap, {seconds, 300}}].

init_per_suite(Config) ->
    os:putenv("ERL_EPMD_ADDRESS", "127.0.0.1"),
    Loss = netns_support(),
    ct:pal("packet loss operation (a namespace of the suite's own): ~p", [Loss]),
    [{packet_loss, Loss} | Config].

end_per_suite(_Config) ->
    ok.

init_per_testcase(random_nemesis, Config) ->
    ct:timetrap({seconds, nemesis_seconds() + 300}),
    Config1 = common_init(random_nemesis, Config),
    case ?config(packet_loss, Config1) of
        {available, _} ->
            Ns = "plexus_nm_" ++ os:getpid(),
            "" = os:cmd("ip netns add " ++ Ns ++ " 2>&1 && ip netns exec " ++ Ns ++
                            " ip link set lo up 2>&1"),
            [{netns, Ns} | Config1];
        {unavailable, _} ->
            [{netns, none} | Config1]
    end;
init_per_testcase(TC, Config) ->
    common_init(TC, Config).

common_init(TC, Config) ->
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(TC)),
    ok = filelib:ensure_path(Dir),
    %% Not linked to the case's process: it outlives a failed case for the cleanup.
    Holder = spawn(fun() -> pid_holder(#{}) end),
    register(?PIDS, Holder),
    [{dir, Dir} | Config].

end_per_testcase(_TC, Config) ->
    Pids = case whereis(?PIDS) of
               undefined -> #{};
               H ->
                   H ! {take, self()},
                   receive {pids, H, M} -> M after 5000 -> #{} end
           end,
    %% a frozen VM cannot halt: wake each one first
    [plexus_test_nodes:os_kill(P, "CONT") || {P, N} <- maps:to_list(Pids), runs_node(P, N)],
    ?C:stop_all(),
    [plexus_test_nodes:os_kill(P, "KILL") || {P, N} <- maps:to_list(Pids), runs_node(P, N)],
    case proplists:get_value(netns, Config, none) of
        none -> ok;
        Ns ->
            %% what is left in it was started by this case (the epmd the VMs spawned)
            _ = os:cmd("ip netns exec " ++ Ns ++ " ip link set lo up"),
            [plexus_test_nodes:os_kill(list_to_integer(P), "KILL")
             || P <- string:lexemes(os:cmd("ip netns pids " ++ Ns), "\n")],
            _ = os:cmd("ip netns del " ++ Ns),
            ok
    end.

pid_holder(M) ->
    receive
        {add, P, N} -> pid_holder(M#{P => N});
        {del, P} -> pid_holder(maps:remove(P, M));
        {take, From} -> From ! {pids, self(), M}
    end.

%% Whether OS process P still is the VM of node N (so a reused pid is never signalled).
runs_node(P, N) ->
    case file:read_file("/proc/" ++ integer_to_list(P) ++ "/cmdline") of
        {ok, Cmd} -> binary:match(Cmd, atom_to_binary(N, utf8)) =/= nomatch;
        {error, _} -> false
    end.

%% ------------------------------------------------------------------ cases

%% The checker must be able to fail: two leaders of term 7 (one seen first-hand, one
%% through a follower) are reported; a history with one leader per term is clean.
checker_flags_two_leaders(_Config) ->
    K = plexus_nemesis_checker,
    Clean = K:claims_of_events([{leader, 6, a}, {follows, 6, a, b}, {leader, 7, b}])
        ++ K:claims_of_info(#{term => 7, leader_node => b, node => c})
        ++ K:claims_of_info(#{term => 8, leader_node => undefined, node => c}),
    [] = K:violations(Clean),
    Bad = Clean ++ K:claims_of_events([{follows, 7, c, d}]),
    [{two_leaders, 7, [{b, _}, {c, [{followed_by, d}]}]}] = K:violations(Bad),
    ok.

%% Three bootstrap members, two joined (the leader, elected among the three, stays), the
%% process of a bootstrap member R restarted with its options, then a 2|3 split: R and
%% the leader | the other three. The leader loses its quorum and steps down; the three
%% elect a leader in the next term. With five voters R's side can never elect; R
%% counting only the three bootstrap voters would need just the old leader's vote and
%% lead that same next term. Should the two sides' terms differ, nudge_terms/5 walks
%% the lower one up.
join_restart_partition_scenario(Config) ->
    S0 = new_cluster("sc", 3, 0, Config),
    S1 = await_agreement(S0),
    S2 = await_agreement(op_join(op_join(S1))),
    [] = spares(S2),
    {Leader, Term} = agreed(S2),
    [LeaderSlot] = [Sl || Sl <- all_slots(S2), node_of(Sl, S2) =:= Leader],
    %% the leader is one of the three unless a stall forced an election during the
    %% joins; then R's partner is another bootstrap member and the big side keeps its
    %% leader (nudge_terms/5 moves it on)
    [R, Partner | _] = [Sl || Sl <- [1, 2, 3], Sl =/= LeaderSlot] ++ [LeaderSlot],
    ct:pal("5 members, leader ~p in term ~p; restarting the process of ~p",
           [Leader, Term, node_of(R, S2)]),
    S3 = restart_proc(R, graceful, S2),
    Small = [R, case LeaderSlot =< 3 of true -> LeaderSlot; false -> Partner end],
    Big = all_slots(S3) -- Small,
    S4 = cut(Small, Big, S3),
    S5 = nudge_terms(Small, Big, Term, 12, S4),
    finish(S5).

%% Random operations until the time is up, then heal and check.
random_nemesis(Config) ->
    Seed = case os:getenv("PLEXUS_NEMESIS_SEED") of
               false -> erlang:phash2({os:timestamp(), os:getpid()}, 1 bsl 30);
               V -> list_to_integer(V)
           end,
    Secs = nemesis_seconds(),
    ct:pal("nemesis seed ~p for ~p s (replay: PLEXUS_NEMESIS_SEED=~p)", [Seed, Secs, Seed]),
    S1 = await_agreement(new_cluster("rn", 3, Seed, Config)),
    Deadline = ?C:now_ms() + Secs * 1000,
    S2 = nemesis_loop(Deadline, 1, S1),
    ct:pal("nemesis: ~p operations: ~p", [maps:get(ops, S2), maps:get(op_counts, S2)]),
    finish(S2).

nemesis_seconds() ->
    case os:getenv("PLEXUS_NEMESIS_SECONDS") of
        false -> ?DEFAULT_SECONDS;
        V -> list_to_integer(V)
    end.

%% ------------------------------------------------------------------ the nemesis

nemesis_loop(Deadline, N, S) ->
    case ?C:now_ms() >= Deadline of
        true ->
            S;
        false ->
            {Op, S1} = pick_op(S),
            ct:log("op ~p: ~p", [N, Op]),
            S2 = run_op(Op, S1),
            S3 = settle(S2),
            S4 = check(S3),
            Counts = maps:update_with(element(1, Op), fun(C) -> C + 1 end, 1,
                                      maps:get(op_counts, S4)),
            nemesis_loop(Deadline, N + 1, S4#{ops => N, op_counts => Counts})
    end.

%% The operation and its target, from the state and the PRNG (rand's process state,
%% seeded in new_cluster/4).
pick_op(S) ->
    Up = [Sl || Sl <- all_slots(S), vm_up(Sl, S)],
    Down = all_slots(S) -- Up,
    Members = member_slots(S),
    Running = [Sl || Sl <- Members, proc_running(Sl, S)],
    Choices = [{3, kill} || length(Down) < 2]
        ++ [{3, revive} || Down =/= []]
        ++ [{3, restart_proc} || Running =/= []]
        ++ [{2, join} || spares(S) =/= []]
        ++ [{2, leave} || length(Members) > 3]
        ++ [{3, partition}, {2, heal}, {2, flap}, {2, pause}, {2, packet_loss}],
    case pick_weighted(Choices) of
        kill -> {{kill, pick(Up)}, S};
        revive -> {{revive, pick(Down)}, S};
        restart_proc ->
            %% the leader most of the time: that is where a restart hurts
            Target = case leaders_now(S) of
                         [L | _] -> case rand:uniform(4) of 1 -> pick(Running); _ -> L end;
                         [] -> pick(Running)
                     end,
            {{restart_proc, Target, pick([graceful, brutal])}, S};
        join -> {{join}, S};
        leave -> {{leave, pick(Members)}, S};
        partition ->
            All = all_slots(S),
            Side = lists:sublist(shuffle(All), rand:uniform(?SLOTS div 2)),
            {{partition, lists:sort(Side)}, S};
        heal -> {{heal}, S};
        flap -> {{flap, pick(all_slots(S)), 1 + rand:uniform(4)}, S};
        pause -> {{pause, pick(Up), 200 + rand:uniform(2300)}, S};
        packet_loss -> {{packet_loss, 100 + rand:uniform(1400)}, S}
    end.

run_op({kill, Sl}, S) -> kill_vm(Sl, S);
run_op({revive, Sl}, S) -> revive(Sl, S);
run_op({restart_proc, Sl, How}, S) ->
    case vm_up(Sl, S) andalso proc_running(Sl, S) of
        true -> restart_proc(Sl, How, S);
        false -> S
    end;
run_op({join}, S) -> op_join(S);
run_op({leave, Sl}, S) -> op_leave(Sl, S);
run_op({partition, Side}, S) -> cut(Side, all_slots(S) -- Side, heal(S));
run_op({heal}, S) -> heal(S);
run_op({flap, Sl, Times}, S) ->
    Others = [O || O <- all_slots(S), O =/= Sl, not is_cut(Sl, O, S)],
    case Others of
        [] -> S;
        _ -> flap(Sl, pick(Others), Times, S)
    end;
run_op({pause, Sl, Ms}, S) ->
    #{Sl := #{os_pid := P}} = maps:get(slots, S),
    plexus_test_nodes:os_kill(P, "STOP"),
    timer:sleep(Ms),
    plexus_test_nodes:os_kill(P, "CONT"),
    S;
run_op({packet_loss, _Ms}, S = #{netns := none}) ->
    ct:log("packet_loss skipped: ~p", [maps:get(packet_loss, S)]),
    S;
run_op({packet_loss, Ms}, S = #{netns := Ns}) ->
    "" = os:cmd("ip netns exec " ++ Ns ++ " ip link set lo down 2>&1"),
    timer:sleep(Ms),
    "" = os:cmd("ip netns exec " ++ Ns ++ " ip link set lo up 2>&1"),
    S.

%% Lets the cluster react for a random while (0-400 ms), watching it.
settle(S) ->
    timer:sleep(rand:uniform(400)),
    observe(S).

%% ------------------------------------------------------------------ scenario helpers

%% Until both sides have had a leader in one term (check/1 then fails the case), the
%% small side has no leader within the bound (it cannot elect: correct), or the rounds
%% run out: the side whose leader has the lower term has that process killed and
%% restarted (no goodbye, so its side's next election is one term up). A big-side leader
%% that was a bootstrap member is left alone: restarted, it would forget the joined
%% nodes and leave the big side leaderless too.
nudge_terms(_Small, _Big, _Term0, 0, S) ->
    S;
nudge_terms(Small, Big, Term0, Rounds, S) ->
    case wait_side_leaders(Small, Big, Term0, check(observe(S))) of
        {{SmallL, TS}, {BigL, TB}, S1} when TS =/= TB ->
            Lagging = case TS < TB of true -> SmallL; false -> BigL end,
            ct:pal("small side led by ~p in term ~p, big side by ~p in term ~p",
                   [node_of(SmallL, S1), TS, node_of(BigL, S1), TB]),
            case TS < TB orelse BigL > 3 of
                true ->
                    nudge_terms(Small, Big, Term0, Rounds - 1,
                                restart_proc(Lagging, brutal, S1));
                false -> S1
            end;
        {none, _, S1} ->
            ct:pal("small side ~p stays leaderless", [[node_of(Sl, S1) || Sl <- Small]]),
            S1;
        {_, _, S1} ->
            S1
    end.

%% Waits (bounded) until each side has a leader elected after the cut (a term above
%% Term0; the old leader may still believe it leads for a moment): {SmallLeader,
%% BigLeader, S}, each {Slot, Term} or none. The polls record every claim they see.
wait_side_leaders(Small, Big, Term0, S) ->
    wait_sides(Small, Big, Term0, ?C:now_ms() + 5000, S).

wait_sides(Small, Big, Term0, Deadline, S) ->
    S1 = observe(S),
    case {side_leader(Small, Term0, S1), side_leader(Big, Term0, S1)} of
        {{_, _} = A, {_, _} = B} -> {A, B, S1};
        {A, B} ->
            case ?C:now_ms() > Deadline of
                true -> {A, B, S1};
                false -> timer:sleep(50), wait_sides(Small, Big, Term0, Deadline, S1)
            end
    end.

%% {Slot, Term} of a node of Side whose last poll said it leads a term above Term0, or
%% none.
side_leader(Side, Term0, S) ->
    case [{Sl, T} || Sl <- Side, proc_running(Sl, S), {leader, T} <- [last_role(Sl, S)],
                     T > Term0] of
        [L | _] -> L;
        [] -> none
    end.

%% ------------------------------------------------------------------ cluster model

%% The state: five slots, each a VM that may be up or down, may run the election
%% process, and has the options its process was first started with (reused on every
%% restart, like a child spec). `members' is who the voters should be; `cuts' the
%% pairs of slots whose connection is blocked.
new_cluster(Tag, NMembers, Seed, Config) ->
    _ = rand:seed(exsss, {Seed, Seed bxor 16#5bd1e995, 7}),
    Dir = ?config(dir, Config),
    S0 = #{tag => Tag, seed => Seed, dir => Dir, slots => #{}, members => [], cuts => [], claims => [],
           seen => #{}, last_role => #{}, ops => 0, op_counts => #{},
           packet_loss => ?config(packet_loss, Config),
           netns => proplists:get_value(netns, Config, none)},
    Slots = lists:seq(1, ?SLOTS),
    Booted = case maps:get(netns, S0) of
                 none -> ?C:start([vm_name(Tag, Sl, 1) || Sl <- Slots], manual);
                 _ -> [start_vm(vm_name(Tag, Sl, 1), S0) || Sl <- Slots]
             end,
    S1 = lists:foldl(fun({Sl, {P, N}}, Acc) -> up(Sl, 1, P, N, Acc) end, S0,
                     lists:zip(Slots, Booted)),
    S2 = ensure_links(S1),
    Members = lists:sublist(Slots, NMembers),
    Boot = [node_of(Sl, S2) || Sl <- Members],
    S3 = S2#{members => Members},
    lists:foldl(fun(Sl, Acc) -> start_proc(Sl, Boot, Acc) end, S3, Members).

%% The test VM's OS pid in the name: two runs of the suite at once (make test and make
%% soak) never share a node name.
vm_name(Tag, Slot, Gen) ->
    list_to_atom(lists:flatten(io_lib:format("nm_~s~s_~p_g~p", [Tag, os:getpid(), Slot, Gen]))).

up(Sl, Gen, P, N, S = #{slots := Slots}) ->
    OsPid = list_to_integer(?C:call(P, os, getpid, [])),
    ?PIDS ! {add, OsPid, N},
    Old = maps:get(Sl, Slots, #{}),
    S#{slots := Slots#{Sl => Old#{peer => P, node => N, gen => Gen, os_pid => OsPid,
                                  up => true, running => false}}}.

slot(Sl, S) -> maps:get(Sl, maps:get(slots, S)).
set_slot(Sl, Kv, S = #{slots := Slots}) -> S#{slots := Slots#{Sl => maps:merge(slot(Sl, S), Kv)}}.
node_of(Sl, S) -> maps:get(node, slot(Sl, S)).
peer_of(Sl, S) -> maps:get(peer, slot(Sl, S)).
vm_up(Sl, S) -> maps:get(up, slot(Sl, S)).
proc_running(Sl, S) -> maps:get(running, slot(Sl, S)).
all_slots(S) -> lists:sort(maps:keys(maps:get(slots, S))).
member_slots(S) -> maps:get(members, S).
spares(S) -> all_slots(S) -- member_slots(S).
last_role(Sl, S) -> maps:get(Sl, maps:get(last_role, S), none).

witness_file(Sl, S) ->
    filename:join([maps:get(dir, S), "witness", atom_to_list(node_of(Sl, S)) ++ ".log"]).

%% A VM on 127.0.0.1: by plexus_test_cluster, or the same way inside the case's network
%% namespace (retrying while epmd still holds a name just released).
start_vm(Name, #{netns := none}) ->
    ?C:start_one(Name, manual);
start_vm(Name, #{netns := Ns}) ->
    start_in_netns(Name, Ns, 50).

start_in_netns(Name, Ns, Tries) ->
    Args = plexus_test_nodes:code_path_args() ++
        ["-kernel", "inet_dist_use_interface", "{127,0,0,1}",
         "-kernel", "prevent_overlapping_partitions", "false",
         "-connect_all", "false", "-kernel", "dist_auto_connect", "never"],
    Exec = {os:find_executable("ip"), ["netns", "exec", Ns, os:find_executable("erl")]},
    case peer:start(#{name => Name, host => "127.0.0.1", longnames => true,
                      connection => standard_io, args => Args, exec => Exec}) of
        {ok, P, N} ->
            %% the loss operation only means something if the VM really is in there
            OsPid = peer:call(P, os, getpid, []),
            {ok, Theirs} = file:read_link("/proc/" ++ OsPid ++ "/ns/net"),
            {ok, Ours} = file:read_link("/proc/self/ns/net"),
            true = Theirs =/= Ours,
            {P, N};
        {error, _} when Tries > 0 -> timer:sleep(100), start_in_netns(Name, Ns, Tries - 1);
        {error, R} -> error({peer_start_failed, Name, R})
    end.

%% Starts the election process of Sl; Boot is its bootstrap list on its first start.
start_proc(Sl, Boot, S) ->
    Opts = maps:get(opts, slot(Sl, S), #{bootstrap => Boot, data_dir => maps:get(dir, S)}),
    {ok, _} = ?C:call(peer_of(Sl, S), plexus_leader, start,
                      [?NAME, plexus_nemesis_witness, #{log => witness_file(Sl, S)}, Opts]),
    set_slot(Sl, #{opts => Opts, running => true}, S).

%% Restarts the process with the options it first had. graceful: stop/1 (the peers are
%% told); brutal: exit(kill) (nobody is told, as in a crash).
restart_proc(Sl, How, S) ->
    P = peer_of(Sl, S),
    _ = case How of
            graceful -> catch ?C:call(P, plexus_leader, stop, [?NAME]);
            brutal -> catch ?C:call(P, erlang, exit, [?C:call(P, erlang, whereis, [?NAME]), kill])
        end,
    {ok, _, _} = ?C:wait_until(fun() -> ?C:call(P, erlang, whereis, [?NAME]) =:= undefined end,
                               ?CHANGE_MS),
    start_proc(Sl, none, set_slot(Sl, #{running => false}, S)).

%% SIGKILL of the VM; the slot stays down until revive/2.
kill_vm(Sl, S) ->
    #{os_pid := OsPid, peer := P} = slot(Sl, S),
    plexus_test_nodes:os_kill(OsPid, "CONT"),
    plexus_test_nodes:os_kill(OsPid, "KILL"),
    {ok, _, _} = ?C:wait_until(fun() -> not is_process_alive(P) end, ?CHANGE_MS),
    ?PIDS ! {del, OsPid},
    set_slot(Sl, #{up => false, running => false}, S).

%% A new VM of the same name (and so the same data_dir files), connected to the pairs
%% that are not cut; the election process is started again if the slot is a member.
revive(Sl, S) ->
    #{gen := Gen, node := Node} = slot(Sl, S),
    Short = list_to_atom(hd(string:split(atom_to_list(Node), "@"))),
    {P, Node} = start_vm(Short, S),
    S1 = ensure_links(up(Sl, Gen, P, Node, S)),
    case lists:member(Sl, member_slots(S1)) of
        true -> start_proc(Sl, none, S1);
        false -> S1
    end.

%% Every process and every link back, then the README's precondition for a membership
%% change: every member lists the same voters.
make_whole(S) ->
    S1 = heal(lists:foldl(fun revive/2, S, [Sl || Sl <- all_slots(S), not vm_up(Sl, S)])),
    S2 = lists:foldl(fun(Sl, Acc) -> start_proc(Sl, none, Acc) end, S1,
                     [Sl || Sl <- member_slots(S1), not proc_running(Sl, S1)]),
    await_membership(member_slots(S2), S2).

%% Join by the README: start the new node's process with bootstrap = the members plus
%% itself, call join/2 on the leader, wait until every member lists it.
op_join(S0) ->
    S = make_whole(S0),
    [New | _] = shuffle(spares(S)),
    Members = member_slots(S),
    Boot = [node_of(Sl, S) || Sl <- Members ++ [New]],
    S1 = start_proc(New, Boot, S),
    Via = change(join, node_of(New, S1), S1),
    ct:log("joined ~p via ~p", [node_of(New, S1), node_of(Via, S1)]),
    await_membership(Members ++ [New], S1#{members => Members ++ [New]}).

%% Leave by the README: leave/2 on the leader, wait until every member dropped it,
%% stop its process; when the node leaving is the leader (`{error, self}'), its process
%% is stopped first and leave/2 goes to the next leader. Its VM is replaced by a fresh node
%% name: a removed node does not come back with its old voter list and hard state (an
%% operator wipes or renames it).
op_leave(Sl, S0) ->
    S = make_whole(S0),
    Rest = member_slots(S) -- [Sl],
    Via = change(leave, node_of(Sl, S), S),
    ct:log("~p left via ~p", [node_of(Sl, S), node_of(Via, S)]),
    S1 = await_membership(Rest, S#{members => Rest}),
    _ = catch ?C:call(peer_of(Sl, S1), plexus_leader, stop, [?NAME]),
    S2 = kill_vm(Sl, S1),
    Gen = maps:get(gen, slot(Sl, S2)) + 1,
    {P, N} = start_vm(vm_name(maps:get(tag, S2), Sl, Gen), S2),
    %% a spare again: its next process starts from the bootstrap of its join
    Spare = S2#{slots := maps:update_with(Sl, fun(M) -> maps:remove(opts, M) end,
                                          maps:get(slots, S2))},
    ensure_links(up(Sl, Gen, P, N, Spare)).

%% join/2 or leave/2 on the leader, retried (bounded) while there is none, the call
%% reached a process that no longer leads, or the previous change is not yet reported
%% by a majority ({change_in_progress, _}: one change at a time). Returns the slot of
%% the leader that took it.
change(Op, Node, S) ->
    Try = fun() ->
                  S1 = observe(S),
                  case [{T, Sl} || Sl <- leaders_now(S1), {leader, T} <- [last_role(Sl, S1)]] of
                      [] -> false;
                      Ls ->
                          {_, L} = lists:max(Ls),
                          case catch ?C:call(peer_of(L, S1), plexus_leader, Op, [?NAME, Node],
                                             2000) of
                              ok -> {ok, L};
                              {error, not_leader} -> false;
                              {error, {change_in_progress, _}} -> false;
                              {error, self} when Op =:= leave ->
                                  ct:log("~p leads: its process stopped first", [Node]),
                                  _ = catch ?C:call(peer_of(L, S1), plexus_leader, stop,
                                                    [?NAME], 2000),
                                  false;
                              {'EXIT', _} -> false;
                              Other -> {refused, Other}
                          end
                  end
          end,
    case ?C:wait_until(Try, ?LIVENESS_MS) of
        {ok, {ok, L}, _} -> L;
        {ok, {refused, Why}, _} -> ct:fail({Op, Node, refused, Why, seed_note(S)});
        timeout -> ct:fail({Op, Node, never_accepted, seed_note(S)})
    end.

%% Waits (bounded) until each member's process lists exactly Members as the voters; a
%% member that does not, once the cluster is whole, has lost track of a change.
await_membership(Members, S) ->
    Want = lists:sort([node_of(Sl, S) || Sl <- Members]),
    Views = fun() ->
                    [{node_of(Sl, S), view(Sl, S)} || Sl <- Members]
            end,
    case ?C:wait_until(fun() -> lists:all(fun({_, V}) -> V =:= Want end, Views()) end,
                       ?LIVENESS_MS) of
        {ok, _, _} -> S;
        timeout ->
            S1 = check(observe(S)),
            ct:fail({membership_diverged, #{want => Want, views => Views(),
                                            seed_and_ops => seed_note(S1)}})
    end.

view(Sl, S) ->
    case catch ?C:call(peer_of(Sl, S), plexus_leader, peers, [?NAME], 2000) of
        L when is_list(L) -> lists:sort([node_of(Sl, S) | [N || {_, N} <- L]]);
        _ -> down
    end.

%% ------------------------------------------------------------------ links

pairs(S) -> [{A, B} || A <- all_slots(S), B <- all_slots(S), A < B].

is_cut(A, B, #{cuts := Cuts}) -> lists:member({min(A, B), max(A, B)}, Cuts).

%% Blocks every link between the two groups (nothing reconnects by itself).
cut(SideA, SideB, S) ->
    New = [{min(A, B), max(A, B)} || A <- SideA, B <- SideB],
    S1 = S#{cuts := lists:usort(New ++ maps:get(cuts, S))},
    ct:log("cut ~p | ~p", [[node_of(Sl, S) || Sl <- SideA], [node_of(Sl, S) || Sl <- SideB]]),
    [disconnect(A, B, S1) || {A, B} <- New],
    S1.

heal(S) -> ensure_links(S#{cuts := []}).

disconnect(A, B, S) ->
    case vm_up(A, S) andalso vm_up(B, S) of
        true -> _ = catch ?C:call(peer_of(A, S), erlang, disconnect_node, [node_of(B, S)]), ok;
        false -> ok
    end.

%% Connects every pair of live VMs that is not cut, until each such pair is connected
%% (bounded: connect_node can fail while a peer is still starting).
ensure_links(S) ->
    Want = [{A, B} || {A, B} <- pairs(S), vm_up(A, S), vm_up(B, S), not is_cut(A, B, S)],
    Missing = fun() ->
                      [Pr || {A, B} = Pr <- Want,
                             not lists:member(node_of(B, S),
                                              ?C:call(peer_of(A, S), erlang, nodes, []))]
              end,
    Connect = fun() ->
                      case Missing() of
                          [] -> true;
                          Ms ->
                              [catch ?C:call(peer_of(A, S), net_kernel, connect_node,
                                             [node_of(B, S)]) || {A, B} <- Ms],
                              false
                      end
              end,
    {ok, _, _} = ?C:wait_until(Connect, ?CHANGE_MS),
    S.

%% A few cut-and-reconnect rounds on one link: whatever is in flight is lost.
flap(A, B, Times, S) ->
    lists:foreach(fun(_) ->
                          disconnect(A, B, S),
                          timer:sleep(rand:uniform(100)),
                          _ = vm_up(A, S) andalso vm_up(B, S) andalso
                              (catch ?C:call(peer_of(A, S), net_kernel, connect_node,
                                             [node_of(B, S)]))
                  end, lists:seq(1, Times)),
    ensure_links(S).

%% ------------------------------------------------------------------ observing

%% Polls every running process (a frozen or dead one just does not answer) and
%% records the claims and roles it sees.
observe(S) ->
    Polled = [{Sl, catch ?C:call(peer_of(Sl, S), plexus_leader, info, [?NAME], 1000)}
              || Sl <- all_slots(S), vm_up(Sl, S), proc_running(Sl, S)],
    Infos = [{Sl, I} || {Sl, I} <- Polled, is_map(I)],
    Claims = lists:flatmap(fun({_, I}) -> plexus_nemesis_checker:claims_of_info(I) end, Infos),
    Conflicts = [{node_of(Sl, S), C} || {Sl, #{stats := #{conflicts := C}}} <- Infos, C > 0],
    Roles = maps:from_list([{Sl, case I of
                                     #{role := leader, term := T} -> {leader, T};
                                     #{role := R} -> R;
                                     _ -> no_answer
                                 end} || {Sl, I} <- Polled]),
    S#{claims := lists:usort(Claims ++ maps:get(claims, S)),
       last_role := maps:merge(maps:get(last_role, S), Roles),
       conflicts => lists:usort(Conflicts ++ maps:get(conflicts, S, []))}.

leaders_now(S) ->
    [Sl || {Sl, {leader, _}} <- maps:to_list(maps:get(last_role, S)),
           vm_up(Sl, S), proc_running(Sl, S)].

%% Every claim so far: the witness files and the polls. Fails the case on a violation.
check(S) ->
    Files = filelib:wildcard(filename:join([maps:get(dir, S), "witness", "*.log"])),
    Witnessed = lists:flatmap(fun(F) ->
                                      plexus_nemesis_checker:claims_of_events(
                                        plexus_nemesis_witness:read(F))
                              end, Files),
    case {plexus_nemesis_checker:violations(Witnessed ++ maps:get(claims, S)),
          maps:get(conflicts, S, [])} of
        {[], []} ->
            S;
        {Vs, Cs} ->
            ct:pal("VIOLATION: ~p~nconflict counters: ~p~n~s", [Vs, Cs, seed_note(S)]),
            ct:fail({two_leaders_in_one_term, Vs, {conflicts, Cs}, seed_note(S)})
    end.

seed_note(S) -> lists:flatten(seed_note_io(S)).

seed_note_io(S) ->
    io_lib:format("seed ~p (PLEXUS_NEMESIS_SEED=~p replays it), after ~p nemesis operations ~w",
                  [maps:get(seed, S), maps:get(seed, S), maps:get(ops, S), maps:get(op_counts, S)]).

%% The end of every case: everything back, one leader agreed on, and the last check.
finish(S) ->
    S1 = check(observe(S)),
    S2 = make_whole(S1),
    S3 = await_agreement(S2),
    _ = check(S3),
    {L, T} = agreed(S3),
    ct:pal("healed: ~p leads term ~p; ~p distinct (term, leader) claims checked",
           [L, T, length(lists:usort([{Tm, Ld} || {Tm, Ld, _} <- maps:get(claims, S3)]))]),
    ok.

%% Liveness, loosely: within a generous bound the members name one leader in one term.
await_agreement(S) ->
    Members = [{peer_of(Sl, S), node_of(Sl, S)} || Sl <- member_slots(S)],
    case ?C:wait_until(fun() -> ?C:agreed_leader(Members, ?NAME) end, ?LIVENESS_MS) of
        {ok, {ok, L, T}, _} -> (observe(S))#{agreed => {L, T}};
        timeout ->
            S1 = check(observe(S)),
            ct:fail({no_leader_after_healing, ?C:infos(Members, ?NAME), seed_note(S1)})
    end.

%% The leader and term await_agreement/1 saw.
agreed(#{agreed := LT}) -> LT.

%% ------------------------------------------------------------------ PRNG helpers

pick(L) -> lists:nth(rand:uniform(length(L)), L).

pick_weighted(Choices) ->
    Total = lists:sum([W || {W, _} <- Choices]),
    pick_weighted(rand:uniform(Total), Choices).

pick_weighted(N, [{W, C} | _]) when N =< W -> C;
pick_weighted(N, [{W, _} | Rest]) -> pick_weighted(N - W, Rest).

shuffle(L) -> [X || {_, X} <- lists:sort([{rand:uniform(), X} || X <- L])].

%% ------------------------------------------------------------------ packet loss probe

%% {available, How} when this process may create a network namespace (it is root and
%% has `ip'); otherwise {unavailable, Why}. Probed with a scratch namespace that is
%% deleted at once.
netns_support() ->
    Root = string:trim(os:cmd("id -u")) =:= "0",
    if
        not Root -> {unavailable, "not root"};
        true ->
            case os:find_executable("ip") of
                false -> {unavailable, "no ip(8)"};
                _ ->
                    Ns = "plexus_nm_probe_" ++ os:getpid(),
                    case string:trim(os:cmd("ip netns add " ++ Ns ++ " 2>&1 && ip netns exec " ++
                                                Ns ++ " ip link set lo down 2>&1")) of
                        "" -> _ = os:cmd("ip netns del " ++ Ns),
                              {available, "loopback blackouts in a network namespace"};
                        Err -> _ = os:cmd("ip netns del " ++ Ns ++ " 2>/dev/null"),
                               {unavailable, Err}
                    end
            end
    end.
