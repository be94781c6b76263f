%% @doc Election benchmark for `make bench' (issue 3 figures).
%%
%% Five local BEAM nodes (OTP `peer', 127.0.0.1, controlled over stdio so the bench
%% node is not part of the cluster) run `plexus_leader' with the default timings
%% (election timeout 150-300 ms, heartbeat 50 ms, PreVote and CheckQuorum on).
%%
%% 1. Failover: the leader's node is halted (`peer:stop/1'); the time from just before
%%    the halt to the moment the last survivor learned the new leader (each node's
%%    callback timestamps the event with the shared host clock). The dead node is
%%    restarted (same name, same data directory) before the next trial. p50, p99 and
%%    max over the trials, and how many trials needed more than one election round.
%% 2. Steady state: with every core busy (two busy-looping processes in every node,
%%    competing with the election for the schedulers and for the host's cores), count
%%    elections started, term changes and leader changes over the given duration.
%%    Any of them is spurious: nothing failed.
%%
%% Figures only; nothing here asserts on time. Parameters: `main([Trials, SteadySeconds])'
%% or the environment variables ELECTION_TRIALS (default 50) and ELECTION_STEADY_S
%% (default 300).
-module(plexus_bench_election).

-export([main/0, main/1, burn/0]).

-define(NAME, plexus_bench_el).
-define(C, plexus_test_cluster).

-spec main() -> no_return().
main() ->
    main([env_int("ELECTION_TRIALS", 50), env_int("ELECTION_STEADY_S", 300)]).

-spec main([pos_integer()]) -> no_return().
main([Trials, SteadyS]) ->
    Code = try run(Trials, SteadyS), 0
           catch C:R:St -> io:format("election bench failed: ~p:~p~n~p~n", [C, R, St]), 1
           after ?C:stop_all()
           end,
    erlang:halt(Code).

env_int(Var, Default) ->
    case os:getenv(Var) of
        false -> Default;
        S -> list_to_integer(S)
    end.

run(Trials, SteadyS) ->
    Dir = filename:absname(filename:join(["build", "bench", "election-data-" ++ os:getpid()])),
    Names = [list_to_atom("bench_el" ++ integer_to_list(I)) || I <- lists:seq(1, 5)],
    io:format("~n== Election benchmark: 5 nodes on 127.0.0.1, default timings (150-300/50 ms), "
              "~b cores~n", [erlang:system_info(logical_processors_available)]),
    Peers = ?C:start(Names, manual),
    ok = ?C:mesh(Peers),
    Opts = case os:getenv("ELECTION_PRIORITY") of
               false -> #{data_dir => Dir};
               Pr -> #{data_dir => Dir, priority => list_to_atom(Pr)}
           end,
    [{ok, _} = ?C:start_leader(P, ?NAME, Opts#{bootstrap => ?C:nodes_of(Peers)}, #{})
     || P <- Peers],
    {ok, _, FirstMs} = ?C:wait_until(fun() -> ?C:agreed_leader(Peers, ?NAME) end, 10000),
    io:format("first election (cold start, all nodes at term 0): ~b ms~n", [FirstMs]),
    {Peers1, Results} = failover_trials(Trials, Peers, Opts, []),
    report_failover(Results),
    steady_state(Peers1, SteadyS),
    file:del_dir_r(Dir),
    ok.

%% ------------------------------------------------------------------ failover

failover_trials(0, Peers, _Opts, Acc) ->
    {Peers, lists:reverse(Acc)};
failover_trials(K, Peers, Opts, Acc) ->
    {ok, {ok, Old, OldTerm}, _} =
        ?C:wait_until(fun() -> ?C:agreed_leader(Peers, ?NAME) end, 10000),
    timer:sleep(300 + rand:uniform(200)),   % a leader in office, timers mid-flight
    {[Dead], Survivors} = lists:partition(fun({_, N}) -> N =:= Old end, Peers),
    [ok = ?C:call(P, gen_server, call, [?NAME, clear]) || P <- Survivors],
    T0 = erlang:system_time(microsecond),
    ?C:stop(Dead),
    {ok, {ok, New, NewTerm}, _} =
        ?C:wait_until(fun() -> ?C:agreed_leader(Survivors, ?NAME) end, 10000),
    Known = [learned_at(P, New) || P <- Survivors],
    FailoverUs = lists:max(Known) - T0,
    Result = #{us => FailoverUs, rounds => NewTerm - OldTerm, old => Old, new => New},
    %% bring the node back for the next trial: same name, same data directory
    Name = list_to_atom(hd(string:split(atom_to_list(Old), "@"))),
    {P2, N2} = ?C:start_one(Name, manual),
    [true = ?C:call(P2, net_kernel, connect_node, [N]) || N <- ?C:nodes_of(Survivors)],
    Peers2 = Survivors ++ [{P2, N2}],
    {ok, _} = ?C:start_leader(P2, ?NAME, Opts#{bootstrap => ?C:nodes_of(Peers2)}, #{}),
    failover_trials(K - 1, Peers2, Opts, [Result | Acc]).

%% When the node's callback first learned that `New' leads.
learned_at(P, New) ->
    Events = ?C:call(P, gen_server, call, [?NAME, events]),
    Ts = [T || {T, {leader, _}} <- Events] ++
        [T || {T, {follower, Pid}} <- Events, is_pid(Pid), node(Pid) =:= New],
    lists:min(Ts).

report_failover(Results) ->
    Ms = lists:sort([maps:get(us, R) / 1000 || R <- Results]),
    N = length(Ms),
    Extra = length([R || R = #{rounds := Rd} <- Results, Rd > 1]),
    P50 = pct(Ms, 50),
    P99 = pct(Ms, 99),
    io:format("~n-- failover: leader's node halted -> new leader known by all 4 survivors~n"),
    io:format("~8s ~8s ~8s ~8s ~8s ~14s~n", ["trials", "p50 ms", "p99 ms", "max ms", "min ms",
                                            "extra rounds"]),
    io:format("~8b ~8.1f ~8.1f ~8.1f ~8.1f ~14b~n",
              [N, P50, P99, lists:last(Ms), hd(Ms), Extra]),
    io:format("targets: p50 <= 250 ms (ratio ~.2f), p99 <= 450 ms (ratio ~.2f); "
              "extra rounds = trials whose term moved by more than one (split votes)~n",
              [P50 / 250, P99 / 450]).

%% Nearest-rank percentile of a sorted list.
pct(Sorted, P) ->
    K = max(1, min(length(Sorted), ceil(P * length(Sorted) / 100))),
    lists:nth(K, Sorted).

%% ------------------------------------------------------------------ steady state

steady_state(Peers, Seconds) ->
    io:format("~n-- steady state for ~b s, every core busy (2 busy processes per node)~n",
              [Seconds]),
    {ok, {ok, Leader, Term0}, _} =
        ?C:wait_until(fun() -> ?C:agreed_leader(Peers, ?NAME) end, 10000),
    Before = stats(Peers),
    Burners = [?C:call(P, ?MODULE, burn, []) || P <- Peers],
    Sw0 = [?C:call(P, erlang, statistics, [scheduler_wall_time]) || P <- Peers],
    Changes = watch(Peers, Leader, Term0, Seconds * 1000, 0),
    Sw1 = [?C:call(P, erlang, statistics, [scheduler_wall_time]) || P <- Peers],
    [?C:call(P, erlang, exit, [B, kill]) || {P, Bs} <- lists:zip(Peers, Burners), B <- Bs],
    After = stats(Peers),
    Scheds = [?C:call(P, erlang, system_info, [schedulers]) || P <- Peers],
    Util = lists:sum([util(A, B, S) || {A, B, S} <- lists:zip3(Sw0, Sw1, Scheds)])
        / length(Peers),
    Elections = sum(elections, After) - sum(elections, Before),
    PreVotes = sum(pre_votes, After) - sum(pre_votes, Before),
    {ok, {ok, LeaderEnd, TermEnd}, _} =
        ?C:wait_until(fun() -> ?C:agreed_leader(Peers, ?NAME) end, 10000),
    io:format("~12s ~12s ~12s ~14s ~16s~n",
              ["elections", "pre-votes", "term moves", "leader changes", "scheduler busy"]),
    io:format("~12b ~12b ~12b ~14b ~15.1f%~n",
              [Elections, PreVotes, TermEnd - Term0, Changes + bool(LeaderEnd =/= Leader),
               100 * Util]),
    io:format("target: 0 spurious elections (elections started: ~b); a pre-vote that the "
              "others refuse (they still hear the leader) moves no term and is harmless~n",
              [Elections]).

bool(true) -> 1;
bool(false) -> 0.

watch(_Peers, _Leader, _Term, Left, Changes) when Left =< 0 ->
    Changes;
watch(Peers, Leader, Term, Left, Changes) ->
    timer:sleep(1000),
    case ?C:agreed_leader(Peers, ?NAME) of
        {ok, Leader, Term} -> watch(Peers, Leader, Term, Left - 1000, Changes);
        {ok, L, T} -> watch(Peers, L, T, Left - 1000, Changes + 1);
        false -> watch(Peers, Leader, Term, Left - 1000, Changes)
    end.

stats(Peers) ->
    [maps:get(stats, I) || {_, I} <- ?C:infos(Peers, ?NAME), is_map(I)].

sum(K, L) -> lists:sum([maps:get(K, M) || M <- L]).

%% Busy share of the normal schedulers (ids 1..Scheds; the rest are dirty ones).
util(Sw0, Sw1, Scheds) ->
    Pairs = [{X, Y} || {X = {I, _, _}, Y} <- lists:zip(lists:sort(Sw0), lists:sort(Sw1)),
                       I =< Scheds],
    {A, T} = lists:foldl(fun({{I, A0, T0}, {I, A1, T1}}, {AA, TT}) -> {AA + A1 - A0, TT + T1 - T0} end,
                         {0, 0}, Pairs),
    case T of
        0 -> 0.0;
        _ -> A / T
    end.

%% @doc Runs on a bench node: one busy process per scheduler, at normal priority, and
%% a process that keeps scheduler wall-time accounting on while they run (the flag
%% belongs to the process that set it).
-spec burn() -> [pid()].
burn() ->
    Self = self(),
    Holder = spawn(fun() ->
                           erlang:system_flag(scheduler_wall_time, true),
                           Self ! on,
                           receive stop -> ok end
                   end),
    receive on -> ok end,
    [Holder | [spawn(fun loop/0) || _ <- lists:seq(1, erlang:system_info(schedulers_online))]].

loop() ->
    _ = erlang:phash2(lists:seq(1, 200)),
    loop().
