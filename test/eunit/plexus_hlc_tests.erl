%% EUnit tests of plexus_hlc: the pure rules (next/2, too_far_ahead/2, the same as the
%% C core's plexus_hlc_next and test/c/test_crdt_lww.c) and the node clock (ticks
%% increase, observe only moves it forward and within the skew bound).
-module(plexus_hlc_tests).

-include_lib("eunit/include/eunit.hrl").

-export([reload_the_nif/0, step_the_wall_back/0, lease_far_ahead/0]). % run in peers

-define(MAX_TS, 18446744073709551615).

next_test() ->
    %% the wall clock when it is ahead, else the last timestamp plus one
    ?assertEqual(1000 bsl 16, plexus_hlc:next(0, 1000)),
    ?assertEqual((5000 bsl 16) + 1, plexus_hlc:next(5000 bsl 16, 1000)),
    ?assertEqual(5000 bsl 16, plexus_hlc:next(5000 bsl 16, 5000) - 1),
    %% saturates at the end of time, clamps the wall clock to 48 bits, reads < 0 as 0
    ?assertEqual(?MAX_TS, plexus_hlc:next(?MAX_TS, 0)),
    ?assertEqual(((1 bsl 48) - 1) bsl 16, plexus_hlc:next(0, 1 bsl 60)),
    ?assertEqual(1, plexus_hlc:next(0, -5)).

too_far_ahead_test() ->
    Wall = 1000000,
    ?assertNot(plexus_hlc:too_far_ahead((Wall + 3600000) bsl 16, Wall)),
    ?assert(plexus_hlc:too_far_ahead((Wall + 3600001) bsl 16, Wall)),
    ?assertNot(plexus_hlc:too_far_ahead(0, Wall)).

ticks_increase_test() ->
    Ts = [plexus_hlc:now() || _ <- lists:seq(1, 1000)],
    ?assertEqual(Ts, lists:usort(Ts)),
    Floor = plexus_hlc:now() + 10,
    ?assert(plexus_hlc:next_after(Floor) > Floor).

%% The wall clock the ticks read is the system clock's millisecond, also when it comes
%% from the TSC between real readings (c_src/core/tsc_wall.c): never behind what
%% os:system_time/1 read just before, never ahead of what it reads just after. Two
%% processes at once, so that both schedulers open and read windows.
wall_is_the_system_clock_test_() ->
    {timeout, 120, fun wall_is_the_system_clock/0}.

wall_is_the_system_clock() ->
    {_, Mode} = plexus_nif:hlc_wall(),
    ?assert(lists:member(Mode, [tsc, realtime])),
    Self = self(),
    Pids = [spawn_link(fun() -> Self ! {self(), wall_outside_system_clock(200000, [])} end)
            || _ <- [1, 2]],
    [receive {P, Outside} -> ?assertEqual([], Outside) end || P <- Pids].

wall_outside_system_clock(0, Acc) ->
    lists:sublist(Acc, 5);
wall_outside_system_clock(K, Acc) ->
    Before = os:system_time(millisecond),
    {Wall, _} = plexus_nif:hlc_wall(),
    After = os:system_time(millisecond),
    case Before =< Wall andalso Wall =< After of
        true -> wall_outside_system_clock(K - 1, Acc);
        false -> wall_outside_system_clock(K - 1, [{Before, Wall, After} | Acc])
    end.

%% The kernel can move its clock off the TSC at run time (its watchdog found the TSC
%% unstable), and the TSC windows must stop then. A child node runs in a private mount
%% namespace where a plain file is bound over the sysfs clock-source file: it says
%% "tsc" when the library loads, then the child writes "hpet" into it and ticks; its
%% clock must report `realtime' within a bounded time (the recheck runs once every
%% 1024 real readings, about a second). Before that the file reads empty for a while,
%% which must change nothing. Needs root for the mount namespace (CI runs as
%% root); elsewhere it says so and checks nothing.
clock_source_switch_test_() ->
    {timeout, 180, fun clock_source_switch/0}.

clock_source_switch() ->
    Unshare = os:find_executable("unshare"),
    case Unshare =/= false andalso os:cmd("unshare -m true 2>&1 && echo yes") =:= "yes\n" of
        false ->
            ?debugMsg("clock_source_switch: skipped, no mount namespace (needs root)");
        true ->
            File = filename:join(string:trim(os:cmd("mktemp -d")), "current_clocksource"),
            ok = file:write_file(File, "tsc\n"),
            Ebin = filename:dirname(code:which(plexus_nif)),
            %% First the file reads empty for 3 s (over 2,048 real readings): a file
            %% that cannot be read must not turn the windows off. Then "hpet".
            Child = "case plexus_nif:hlc_wall() of"
                    "  {_, tsc} ->"
                    "    ok = file:write_file(os:getenv(\"PLEXUS_TEST_CS\"), \"\"),"
                    "    Hold = erlang:monotonic_time(millisecond) + 3000,"
                    "    Still = fun S() -> case erlang:monotonic_time(millisecond) < Hold of"
                    "                          false -> plexus_nif:hlc_wall();"
                    "                          true -> _ = plexus_nif:hlc_wall(), S() end end,"
                    "    {_, tsc} = Still(),"
                    "    ok = file:write_file(os:getenv(\"PLEXUS_TEST_CS\"), \"hpet\\n\"),"
                    "    Until = erlang:monotonic_time(millisecond) + 60000,"
                    "    Loop = fun L() -> case plexus_nif:hlc_wall() of"
                    "                          {_, realtime} -> io:format(\"switched~n\");"
                    "                          {_, tsc} -> case erlang:monotonic_time(millisecond) < Until of"
                    "                                          true -> L(); false -> io:format(\"stuck~n\") end"
                    "                      end end,"
                    "    Loop();"
                    "  {_, Mode} -> io:format(\"loaded as ~p~n\", [Mode])"
                    " end, halt().",
            Script = "mount --bind \"$PLEXUS_TEST_CS\" "
                     "/sys/devices/system/clocksource/clocksource0/current_clocksource && "
                     "exec erl -noshell -pa \"$PLEXUS_TEST_EBIN\" -eval \"$PLEXUS_TEST_EVAL\"",
            Port = open_port({spawn_executable, Unshare},
                             [{args, ["-m", "sh", "-c", Script]}, exit_status, stderr_to_stdout,
                              {env, [{"PLEXUS_TEST_CS", File}, {"PLEXUS_TEST_EBIN", Ebin},
                                     {"PLEXUS_TEST_EVAL", Child}]}]),
            Out = port_output(Port, []),
            _ = file:delete(File),
            _ = file:del_dir(filename:dirname(File)),
            case Out of
                {0, "loaded as realtime\n"} ->
                    ?debugMsg("clock_source_switch: skipped, no TSC on this machine");
                _ ->
                    ?assertEqual({0, "switched\n"}, Out)
            end
    end.

port_output(Port, Acc) ->
    receive
        {Port, {data, D}} -> port_output(Port, [Acc, D]);
        {Port, {exit_status, St}} -> {St, lists:flatten(Acc)}
    after 150000 ->
        catch port_close(Port),
        {timeout, lists:flatten(Acc)}
    end.

observe_test() ->
    Now = plexus_hlc:now(),
    ok = plexus_hlc:observe(0),
    ?assert(plexus_hlc:now() > Now),
    Ahead = plexus_hlc:now() + (60000 bsl 16),
    ok = plexus_hlc:observe(Ahead),
    ?assert(plexus_hlc:now() > Ahead),
    Far = (os:system_time(millisecond) + 3 * 3600000) bsl 16,
    ok = plexus_hlc:observe(Far),
    ?assert(plexus_hlc:now() < Far).

%% The per-process cache of the clock holds only what the clock really reached: a
%% timestamp beyond the skew bound (not recorded) must not hide a later, nearer one.
observe_cache_is_a_lower_bound_test() ->
    Far = (os:system_time(millisecond) + 3 * 3600000) bsl 16,
    ok = plexus_hlc:observe(Far),
    Near = plexus_hlc:now() + (1000 bsl 16),
    ok = plexus_hlc:observe(Near),
    ?assert(plexus_hlc:now() > Near),
    %% and what another process moved the clock to is seen here too
    Other = plexus_hlc:now() + (1000 bsl 16),
    Self = self(),
    _ = spawn_link(fun() -> Self ! {observed, plexus_hlc:observe(Other)} end),
    receive {observed, ok} -> ok end,
    ?assert(plexus_hlc:now() > Other).

concurrent_ticks_are_distinct_test() ->
    Self = self(),
    Pids = [spawn_link(fun() -> Self ! {self(), [plexus_hlc:now() || _ <- lists:seq(1, 2000)]} end)
            || _ <- lists:seq(1, 4)],
    All = lists:append([receive {P, L} -> L end || P <- Pids]),
    ?assertEqual(length(All), length(lists:usort(All))).

reload_keeps_the_clock_test() ->
    Before = plexus_hlc:now(),
    _ = code:purge(plexus_hlc),
    {module, plexus_hlc} = code:load_file(plexus_hlc),
    ?assert(plexus_hlc:now() > Before).

%% Processes that each tick after their own last result (as update/2 does, on the
%% register each wrote last) and others that observe: every timestamp issued is
%% distinct, each process's are increasing, and the clock ends after all of them.
monotonic_across_processes_test() ->
    Self = self(),
    Writer = fun() ->
                     Ts = lists:foldl(fun(_, [Last | _] = Acc) -> [plexus_hlc:next_after(Last) | Acc] end,
                                      [0], lists:seq(1, 3000)),
                     Self ! {self(), lists:reverse(tl(lists:reverse(Ts)))}
             end,
    Observer = fun() ->
                       [plexus_hlc:observe(plexus_hlc:now() + (I bsl 4)) || I <- lists:seq(1, 500)],
                       Self ! {self(), []}
               end,
    Pids = [spawn_link(Writer) || _ <- lists:seq(1, 4)] ++ [spawn_link(Observer)],
    Lists = [receive {P, L} -> L end || P <- Pids],
    [?assertEqual(lists:reverse(lists:usort(L)), L) || L <- Lists], % each strictly decreasing from the newest
    All = lists:append(Lists),
    ?assertEqual(length(All), length(lists:usort(All))),
    ?assert(plexus_hlc:now() > lists:max(All)).

%% A floor above the clock (within the skew bound) gives a timestamp after it and
%% moves the clock there: the next tick, with no floor, is after it too.
floor_above_the_clock_test() ->
    Floor = plexus_hlc:now() + (5000 bsl 16),
    T = plexus_hlc:next_after(Floor),
    ?assert(T > Floor),
    ?assert(plexus_hlc:now() > T).

%% The end of time. The cell's saturation is tested in C (test/c/test_hlc_cell.c,
%% test_saturates), where a cell can be put there; the node clock cannot be put there
%% and back (it never goes back), and a far-future floor is not recorded: the tick
%% after it is 2^64-1, not a wrapped 0, and the clock stays where it was.
saturated_floor_does_not_wrap_test() ->
    Before = plexus_hlc:now(),
    ?assertEqual(?MAX_TS, plexus_hlc:next_after(?MAX_TS)),
    ?assertEqual(?MAX_TS, plexus_hlc:next_after(?MAX_TS - 1)),
    After = plexus_hlc:now(),
    ?assert(After > Before),
    ?assert(After < Before + (3600000 bsl 16)).

%% The cell never passes its lease, and the lease never passes the ceiling recorded in
%% persistent_term: what keeps a reloaded library's clock after every timestamp issued.
cell_stays_under_the_recorded_ceiling_test() ->
    _ = [plexus_hlc:now() || _ <- lists:seq(1, 1000)],
    ok = plexus_hlc:observe(plexus_hlc:now() + (50 bsl 16)),
    {Clock, Limit} = plexus_nif:hlc_cell(),
    Ceiling = atomics:get(persistent_term:get(plexus_hlc), 1),
    ?assert(Clock > 0),
    ?assert(Clock =< Limit),
    ?assert(Limit =< Ceiling).

%% A reload of the NIF library with the old one purged first starts a fresh, zero
%% cell: its first tick must ask for a lease and jump past everything issued before,
%% also a clock ten minutes ahead of the wall clock (observed, within the skew bound),
%% which the wall clock alone would not reach. Also a reload that keeps the old
%% library (an upgrade) keeps the clock. Run in a peer node: purging the library here
%% would orphan the resources other tests of this VM hold.
nif_reload_keeps_the_clock_test() ->
    with_peer(fun(Call) ->
                      #{ahead := Ahead, wall := Wall, upgraded := Upgraded,
                        fresh_cell := FreshCell, after_reload := After,
                        written := Written} = Call(reload_the_nif),
                      ?assert(Ahead > (Wall + 500000) bsl 16),
                      ?assert(Upgraded > Ahead),
                      ?assertEqual({0, 0}, FreshCell), % really a fresh cell
                      ?assert(After > Upgraded),
                      ?assert(Written > After)
              end).

%% Check(Call) beside a fresh peer node, where Call(F) runs ?MODULE:F() in the peer;
%% the peer is stopped after.
with_peer(Check) ->
    {ok, Peer, _} = peer:start_link(#{connection => standard_io,
                                      args => plexus_test_nodes:code_path_args()}),
    try
        Check(fun(F) -> peer:call(Peer, ?MODULE, F, [], 60000) end)
    after
        peer:stop(Peer)
    end.

%% Called in the peer by nif_reload_keeps_the_clock_test/0.
-spec reload_the_nif() -> map().
reload_the_nif() ->
    ok = plexus_hlc:observe(plexus_hlc:now() + (600000 bsl 16)),
    Ahead = plexus_hlc:now(),
    Wall = os:system_time(millisecond),
    %% an upgrade: the old code keeps its library until purged
    {module, plexus_nif} = code:load_file(plexus_nif),
    Upgraded = plexus_hlc:now(),
    true = code:soft_purge(plexus_nif),
    %% a fresh load: no old library left
    true = code:delete(plexus_nif),
    true = code:soft_purge(plexus_nif),
    {module, plexus_nif} = code:load_file(plexus_nif),
    FreshCell = plexus_nif:hlc_cell(),
    After = plexus_hlc:now(),
    R = plexus_lww:update(plexus_lww:new(a), b),
    #{ahead => Ahead, wall => Wall, upgraded => Upgraded, fresh_cell => FreshCell,
      after_reload => After, written => plexus_lww:timestamp(R)}.

%% The wall clock stepped back by more than the lease check's two hours of slack (an
%% hour by itself, after a peer's register at the skew bound was observed): the clock,
%% ahead of the wall clock, goes on in logical ticks and every write still gets a
%% later timestamp. The wall clock cannot be stepped here, so the peer is put in the
%% state a step leaves: clock and ceiling 2 h 1 min ahead of the wall clock. A
%% lease for the tick after the clock used to raise badarg, so once the lease ran out
%% every write of the node crashed until the wall clock caught up.
wall_clock_stepped_back_keeps_writing_test() ->
    with_peer(fun(Call) ->
                      #{ahead := Ahead, ticks := Ticks, written := Written} =
                          Call(step_the_wall_back),
                      ?assert(hd(Ticks) > Ahead),
                      ?assertEqual(lists:usort(Ticks), Ticks),
                      ?assert(Written > lists:last(Ticks)),
                      %% still no lease for what the clock could not have asked for
                      ?assertMatch({badarg, _}, Call(lease_far_ahead))
              end).

%% Called in the peer by wall_clock_stepped_back_keeps_writing_test/0.
-spec step_the_wall_back() -> map().
step_the_wall_back() ->
    Wall = os:system_time(millisecond),
    ok = plexus_hlc:observe((Wall + 3600000) bsl 16), % a peer's register, at the bound
    Ahead = (Wall + 2 * 3600000 + 60000) bsl 16,     % ... then the wall clock went back
    Ceiling = persistent_term:get(plexus_hlc),
    ok = atomics:put(Ceiling, 1, Ahead),
    ok = plexus_nif:hlc_lease(Ahead, Ahead),
    %% the cell's lease ends at the clock: its first tick asks for the next one
    Ticks = [plexus_hlc:now() || _ <- lists:seq(1, 10)],
    R = plexus_lww:update(plexus_lww:new(a), b),
    #{ahead => Ahead, ticks => Ticks, written => plexus_lww:timestamp(R)}.

%% Called in the peer: a lease two hours and more past both the wall clock and the
%% ceiling.
-spec lease_far_ahead() -> {badarg, term()} | ok.
lease_far_ahead() ->
    Ceiling = atomics:get(persistent_term:get(plexus_hlc), 1),
    try plexus_hlc:lease(Ceiling + (3 * 3600000 bsl 16)) of
        ok -> ok
    catch
        error:badarg:St -> {badarg, hd(St)}
    end.

%% Writers through plexus_lww (one NIF call that ticks the clock) and through
%% plexus_hlc, on many processes at once: all timestamps distinct, each process's
%% increasing.
writers_and_ticks_share_one_clock_test() ->
    Self = self(),
    Writer = fun() ->
                     Regs = lists:foldl(
                              fun(I, [R | _] = Acc) -> [plexus_lww:update(R, I) | Acc] end,
                              [plexus_lww:new(start)], lists:seq(1, 2000)),
                     Self ! {self(), [plexus_lww:timestamp(R) || R <- Regs]}
             end,
    Ticker = fun() ->
                     Self ! {self(), lists:reverse([plexus_hlc:now() || _ <- lists:seq(1, 2000)])}
             end,
    Pids = [spawn_link(Writer) || _ <- lists:seq(1, 4)]
           ++ [spawn_link(Ticker) || _ <- lists:seq(1, 2)],
    Lists = [receive {P, L} -> L end || P <- Pids],
    [?assertEqual(lists:reverse(lists:usort(L)), L) || L <- Lists],
    All = lists:append(Lists),
    ?assertEqual(length(All), length(lists:usort(All))).

%% Observing a timestamp makes the next local write later, through every write path.
observe_then_write_is_later_test() ->
    Seen = plexus_hlc:now() + (2000 bsl 16),
    ok = plexus_hlc:observe(Seen),
    ?assert(plexus_lww:timestamp(plexus_lww:new(x)) > Seen),
    Seen2 = plexus_hlc:now() + (2000 bsl 16),
    ok = plexus_hlc:observe(Seen2),
    ?assert(plexus_lww:timestamp(plexus_lww:update(plexus_lww:new(x), y)) > Seen2),
    Seen3 = plexus_hlc:now() + (2000 bsl 16),
    ok = plexus_hlc:observe(Seen3),
    ?assert(plexus_hlc:now() > Seen3).

%% A hostile far-future timestamp, through observe and through a register that a local
%% update writes after: the write wins over it, the node clock does not follow it.
far_future_does_not_drag_the_clock_test() ->
    Far = (os:system_time(millisecond) + 2 * 3600000) bsl 16,
    ok = plexus_hlc:observe(Far),
    ok = plexus_hlc:observe(?MAX_TS),
    {ok, Hostile} = plexus_lww:from_binary(plexus_nif:lww_new(plexus_nif:encode(v),
                                                              plexus_nif:encode(n), Far)),
    R = plexus_lww:update(Hostile, w),
    ?assert(plexus_lww:timestamp(R) > Far),
    ?assert(plexus_hlc:now() < Far),
    {Clock, _} = plexus_nif:hlc_cell(),
    ?assert(Clock < Far).

nif_bad_arguments_test() ->
    [?assertError(badarg, plexus_nif:hlc_next_after(A)) || A <- [-1, 1 bsl 64, x, 1.0, <<>>]],
    [?assertError(badarg, plexus_nif:hlc_observe(A)) || A <- [-1, 1 bsl 64, x, []]],
    %% a lease the clock could not have asked for would poison the ceiling
    ?assertError(badarg, plexus_hlc:lease(?MAX_TS)),
    ?assertError(badarg, plexus_hlc:lease((os:system_time(millisecond) + 3 * 3600000) bsl 16)),
    ?assertError(badarg, plexus_hlc:lease(-1)),
    Ceiling = atomics:get(persistent_term:get(plexus_hlc), 1),
    ?assert(Ceiling < (os:system_time(millisecond) + 2 * 3600000) bsl 16),
    ?assertError(badarg, plexus_nif:hlc_lease(2, 1)),
    ?assertError(badarg, plexus_nif:hlc_lease(-1, 1)),
    ?assertError(badarg, plexus_nif:hlc_lease(1, 1 bsl 64)),
    Actor = <<119, 1, $a>>,
    [?assertError(badarg, plexus_nif:lww_write(F, A, v))
     || {F, A} <- [{-1, Actor}, {1 bsl 64, Actor}, {0, <<>>}, {0, <<1:9>>}, {0, actor}]],
    %% anything but a register term and an encodable node name and value: left to Erlang
    Reg = plexus_lww:new(a),
    [?assertEqual(fallback, plexus_nif:lww_update(R, N, V))
     || {R, N, V} <- [{plexus_lww:to_binary(Reg), node(), v}, {Reg, "node", v},
                      {Reg, node(), {tuple}}, {Reg, node(), 1.5}, {Reg, node(), 1 bsl 40},
                      {setelement(2, Reg, -1), node(), v}, {setelement(3, Reg, <<>>), node(), v},
                      {setelement(1, Reg, x), node(), v},
                      {{plexus_lww, 1, <<"a">>}, node(), v}, {x, node(), v},
                      {Reg, node(), binary:copy(<<1>>, 4097)},
                      {Reg, list_to_atom([16#1F600]), v}]],
    %% the old value field is never read by the NIF (plexus_lww:update/2 checks it in
    %% its guard): a bad one still gives a well-formed register, never a crash
    [?assertMatch({plexus_lww, _, _, <<119, 1, $v>>},
                  nif_update(setelement(4, Reg, Bad), v))
     || Bad <- [<<1:9>>, <<>>, x, [], 1.5]],
    [?assertEqual({error, bad_register}, plexus_lww:update(setelement(4, Reg, Bad), v))
     || Bad <- [<<1:9>>, <<>>, x, [], 1.5]],
    ok.

nif_update(R, V) ->
    case plexus_nif:lww_update(R, node(), V) of
        {lease, Need} -> plexus_hlc:lease(Need), nif_update(R, V);
        New -> New
    end.
