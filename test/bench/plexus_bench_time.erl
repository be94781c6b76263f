%% @doc Timing helpers shared by the CRDT v2 benchmarks: best of three runs (the
%% machine is shared and noisy), as rates or per-item times, and their formats.
-module(plexus_bench_time).

-export([rate/2, ns_each/2, best_ns/1, us/1, ms/1]).

%% Ops per second of Fun, which does Ops operations.
rate(Fun, Ops) ->
    round(Ops * 1.0e9 / max(best_ns(Fun), 1)).

%% Nanoseconds per item of Fun, which handles Count items.
ns_each(Fun, Count) ->
    best_ns(Fun) / Count.

best_ns(Fun) ->
    lists:min([begin
                   T0 = erlang:monotonic_time(nanosecond),
                   _ = Fun(),
                   erlang:monotonic_time(nanosecond) - T0
               end || _ <- [1, 2, 3]]).

us(Ns) -> io_lib:format("~.2f us", [Ns / 1000]).
ms(Ns) -> io_lib:format("~.3f ms", [Ns / 1.0e6]).
