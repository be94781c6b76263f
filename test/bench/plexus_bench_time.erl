%% @doc Timing helpers shared by the CRDT v2 benchmarks: best of three runs (the
%% machine is shared and noisy), as rates or per-item times, and their formats.
-module(plexus_bench_time).

-export([rate/2, ns_each/2, best_ns/1, us/1, ms/1, settle/0]).

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

best_ns(Fun) ->
    lists:min([begin
                   T0 = erlang:monotonic_time(nanosecond),
                   _ = Fun(),
                   erlang:monotonic_time(nanosecond) - T0
               end || _ <- [1, 2, 3]]).

us(Ns) -> io_lib:format("~.2f us", [Ns / 1000]).
ms(Ns) -> io_lib:format("~.3f ms", [Ns / 1.0e6]).
