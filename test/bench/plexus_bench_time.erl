%% @doc Timing helpers shared by the CRDT v2 benchmarks: best of three runs or more
%% (the machine is shared and noisy), as rates or per-item times, and their formats.
-module(plexus_bench_time).

-export([rate/2, ns_each/2, merge_ns/1, best_ns/1, us/1, ms/1, settle/0]).
-export([start_long_schedule_monitor/0, stop_long_schedule_monitor/1, nif_cpu_row/2]).

%% Settles the heap after building a large state, before timing ops on it: a full
%% sweep leaves every live term in the young generation, and the minor collection
%% that follows copies them all to the old heap once (about 10 ms for a 100k-element
%% set). Run here, that one-time copy is not charged to whichever timed run it would
%% have landed in; the garbage the timed ops make is still collected inside them.
settle() ->
    true = erlang:garbage_collect(),
    true = erlang:garbage_collect(self(), [{type, minor}]),
    ok.

%% Ops per second of Fun, which does Ops operations.
rate(Fun, Ops) ->
    round(Ops * 1.0e9 / max(best_ns(Fun), 1)).

%% Nanoseconds per item of Fun, which handles Count items.
ns_each(Fun, Count) ->
    best_ns(Fun) / Count.

%% Nanoseconds of one merge (or of the union it is compared with), best of 10: it
%% costs the merge rows well under a second and steadies the ratios they print (best
%% of 3, a 100k full merge read 49 to 76 ns per element on a quiet machine; best of
%% 20 in a loop, 40 to 47). Every figure a merge ratio compares is taken here.
merge_ns(Fun) ->
    best_ns(Fun, 10).

best_ns(Fun) ->
    best_ns(Fun, 3).

best_ns(Fun, Runs) ->
    lists:min([begin
                   T0 = erlang:monotonic_time(nanosecond),
                   _ = Fun(),
                   erlang:monotonic_time(nanosecond) - T0
               end || _ <- lists:seq(1, Runs)]).

us(Ns) -> io_lib:format("~.2f us", [Ns / 1000]).
ms(Ns) -> io_lib:format("~.3f ms", [Ns / 1.0e6]).

%% ---- long_schedule events (a process kept on a normal scheduler over 10 ms)

%% Counts long_schedule events until stopped, printing each. The issue asks for none.
%% On this VM they cannot be pinned on plexus: plain Erlang code, which yields by
%% reductions and so cannot hold a scheduler for 10 ms by itself, shows them too
%% (lists:foldl/3 in a loop of nothing else saw one in 30 s: the host preempting the
%% VM's CPU; the rows of 1M-element states see more), and an event names only where
%% the process resumed and where it stopped. The NIF calls themselves are checked in
%% thread CPU time by nif_cpu_row/2.
start_long_schedule_monitor() ->
    Self = self(),
    Pid = spawn(fun() ->
                        erlang:system_monitor(self(), [{long_schedule, 10}]),
                        Self ! ready,
                        count_long_schedules(0)
                end),
    receive ready -> Pid end.

count_long_schedules(K) ->
    receive
        {monitor, _, long_schedule, Info} ->
            io:format("  long_schedule: ~p~n", [Info]),
            count_long_schedules(K + 1);
        {stop, From} -> From ! {long_schedules, K}
    end.

%% Stops the monitor, prints and returns its count.
stop_long_schedule_monitor(Pid) ->
    Pid ! {stop, self()},
    receive
        {long_schedules, K} ->
            io:format("~nlong_schedule events (> 10 ms of wall time on a normal scheduler) "
                      "during the run: ~b (this VM shows them in plain Erlang code too; the "
                      "NIF calls are checked in thread CPU time by the rows \"NIF calls of\")~n",
                      [K]),
            K
    end.

%% ---- NIF calls in scheduler-thread CPU time

%% The attribution long_schedule events cannot give: Work (the largest operations of a
%% bench) runs under plexus_nif_probe, which call-traces every plexus NIF with the
%% scheduler thread's own CPU clock. A call that ran inline reports the CPU it held
%% its thread for; one moved to a dirty scheduler or yielding reports `rescheduled'.
%% Prints, per NIF, the calls, the longest inline one and those over 10 ms (target 0).
nif_cpu_row(Label, Work) ->
    {_, Calls} = plexus_nif_probe:calls(Work),
    io:format("~nNIF calls of ~s, in scheduler-thread CPU time (plexus_nif_probe):~n", [Label]),
    Funs = lists:usort([element(1, C) || C <- Calls]),
    Over = lists:sum(
             [begin
                  Inline = [Us || {F1, inline, Us} <- Calls, F1 =:= F],
                  Moved = length([x || {F1, rescheduled} <- Calls, F1 =:= F]),
                  Long = length([Us || Us <- Inline, Us >= 10000]),
                  io:format("  ~-22s ~8b inline (longest ~7.3f ms), ~6b on a dirty scheduler "
                            "or yielding, ~b inline over 10 ms~n",
                            [F, length(Inline), lists:max([0 | Inline]) / 1000, Moved, Long]),
                  Long
              end || F <- Funs]),
    io:format("  inline NIF calls over 10 ms of thread CPU: ~b (target 0)~n", [Over]),
    Over.
