%% EUnit tests of plexus_hlc: the pure rules (next/2, too_far_ahead/2, the same as the
%% C core's plexus_hlc_next and test/c/test_crdt_lww.c) and the node clock (ticks
%% increase, observe only moves it forward and within the skew bound).
-module(plexus_hlc_tests).

-include_lib("eunit/include/eunit.hrl").

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

%% The common tick is one atomics add; at the end of time it must not wrap the
%% unsigned cell to 0 (which would send every later timestamp back to the wall
%% clock). The test puts the clock there and back, so it restores what it changed.
saturated_clock_does_not_wrap_test() ->
    Ref = persistent_term:get(plexus_hlc),
    Saved = atomics:get(Ref, 1),
    atomics:put(Ref, 1, ?MAX_TS),
    try
        ?assertEqual(?MAX_TS, plexus_hlc:next_after(0)),
        ?assertEqual(?MAX_TS, plexus_hlc:now()),
        ?assertEqual(?MAX_TS, atomics:get(Ref, 1))
    after
        atomics:put(Ref, 1, Saved)
    end.
