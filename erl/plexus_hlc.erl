%% @doc The node-wide hybrid logical clock of `plexus_lww' (Kulkarni et al., "Logical
%% Physical Clocks", 2014, §3): a 64-bit timestamp, wall-clock milliseconds in the high
%% 48 bits and a logical counter in the low 16, so integer order is HLC order and
%% timestamps compare across nodes.
%%
%% The clock is one unsigned `atomics' cell held in `persistent_term' (made once, by
%% this module's `on_load'): the greatest timestamp this node has issued or observed.
%% It lives in Erlang, not in the NIF library, so that a register update or merge can
%% tick or observe it without a NIF call (a call costs more than deciding a 20-byte
%% register); the same cell survives a code upgrade of this module and of the NIF
%% library. Concurrent callers on any scheduler get distinct, increasing timestamps
%% through a compare-and-swap loop.
%%
%% Skew is bounded: a timestamp more than one hour ahead of this node's wall clock
%% is never recorded, so one register stamped 2^64-1, hostile or buggy, cannot drag the
%% clock to the end of time. The rules (`next/2', `too_far_ahead/2') are pure
%% functions and match the C core's `plexus_hlc_next' and `plexus_hlc_ms'.
-module(plexus_hlc).

-on_load(init/0).

-export([now/0, next_after/1, observe/1]).
-export([next/2, too_far_ahead/2]).

-export_type([timestamp/0]).

-type timestamp() :: 0..18446744073709551615.

-include("plexus_hlc.hrl").

-define(SEEN, ?PLEXUS_HLC_SEEN).
-define(KEY, ?MODULE). % an atom key: the cheapest persistent_term lookup
-define(LOGICAL_BITS, 16).
-define(MAX_TS, 18446744073709551615).
-define(MAX_MS, 281474976710655). % 2^48 - 1
-define(SMALL_INT, 576460752303423487). % 2^59 - 1: below it, integers are immediates
-define(MAX_AHEAD_MS, 3600000).
%% The add's fast path runs below this wall clock (2^46 ms, the year 4199): there the
%% wall clock needs no clamp (next/2 clamps at 2^48 ms) and its shift is a small integer.
-define(ADD_WALL_MS, 70368744177664).

-compile({inline, [clock_ref/0, wall_ms/0]}).

%% Makes the clock cell unless an earlier load of this module made it: a reload must
%% keep the clock, or timestamps could go back.
-spec init() -> ok.
init() ->
    case persistent_term:get(?KEY, undefined) of
        undefined -> persistent_term:put(?KEY, atomics:new(1, [{signed, false}]));
        _ -> ok
    end.

%% @doc Issues the next timestamp: greater than any this node issued or observed.
-spec now() -> timestamp().
now() ->
    next_after(0).

%% @doc Issues the next timestamp after both the node clock and `Floor', and records
%% it. Strictly greater than both unless their maximum is already 2^64-1 (the clock
%% saturates there). A `Floor' beyond the skew bound gives a timestamp after it
%% without recording it.
%%
%% The common case is one `atomics:add_get/3': when the clock, plus one, is already
%% past both `Floor' and the wall clock (writes closer together than a millisecond, or
%% a clock the wall has not caught up with), that sum is the HLC rule's answer and the
%% add both reserves and records it. Otherwise (the wall clock moved on, the usual case
%% for a node that writes now and then) the add's result is the clock's value to swap
%% from, so the slow path costs what a read and a swap cost.
-spec next_after(timestamp()) -> timestamp().
next_after(Floor) ->
    Wall = wall_ms(),
    Ref = clock_ref(),
    case atomics:add_get(Ref, 1, 1) of
        Ts when Ts > Floor, Wall < ?ADD_WALL_MS, Ts >= Wall bsl ?LOGICAL_BITS ->
            Ts;
        0 ->
            %% The clock held 2^64-1 and the add wrapped: put the end of time back.
            %% Only a wall clock past the year 10889 gets the clock there; a caller
            %% racing this repair may then get a timestamp from the wall clock.
            raise(Ref, 0, ?MAX_TS),
            slow_next(Ref, ?MAX_TS, Floor, Wall);
        Ts ->
            slow_next(Ref, Ts, Floor, Wall)
    end.

slow_next(Ref, Old, Floor, Wall) ->
    case too_far_ahead(Floor, Wall) of
        true when Floor > Old -> next(Floor, Wall);
        _ -> tick(Ref, Old, Floor, Wall)
    end.

tick(Ref, Old, Floor, Wall) ->
    Next = if Floor > Old -> next(Floor, Wall); true -> next(Old, Wall) end,
    case atomics:compare_exchange(Ref, 1, Old, Next) of
        ok -> Next;
        Current -> tick(Ref, Current, Floor, Wall)
    end.

%% @doc Node clock := max(node clock, `Ts') for a timestamp within the skew bound.
%% The common case (`Ts' not ahead of the clock) reads no wall clock, and when `Ts' is
%% not ahead of what this process last saw of the clock, not even the shared cell:
%% the calling process keeps that lower bound of the node clock in its dictionary
%% under `'$plexus_hlc_seen'' (sound because the clock never goes back; erasing it
%% only costs the next observe one read of the cell). Why a library writes there (as
%% `rand' keeps its seed there): measured in `make bench', deciding from the shared
%% cell instead (`persistent_term' + `atomics' read) costs ~41 ns against ~10, and
%% takes a register merge from ~54 ns to ~93.
-spec observe(timestamp()) -> ok.
observe(Ts) ->
    case get(?SEEN) of
        Seen when is_integer(Seen), Ts =< Seen -> ok;
        _ -> observe_shared(Ts)
    end.

observe_shared(Ts) ->
    Ref = clock_ref(),
    Old = atomics:get(Ref, 1),
    case Ts =< Old orelse too_far_ahead(Ts, wall_ms()) of
        true ->
            _ = put(?SEEN, Old),
            ok;
        false ->
            raise(Ref, Old, Ts),
            _ = put(?SEEN, Ts),
            ok
    end.

raise(_Ref, Old, Ts) when Ts =< Old ->
    ok;
raise(Ref, Old, Ts) ->
    case atomics:compare_exchange(Ref, 1, Old, Ts) of
        ok -> ok;
        Current -> raise(Ref, Current, Ts)
    end.

%% @doc The timestamp after `Last' at wall time `WallMs': the wall clock's own
%% timestamp if that is later, else `Last + 1' (saturating at 2^64-1).
-spec next(timestamp(), integer()) -> timestamp().
next(Last, WallMs) when WallMs > ?MAX_MS ->
    next(Last, ?MAX_MS);
next(Last, WallMs) ->
    %% Comparisons, not min/max: this runs on every write and guards are cheaper.
    Wall = if WallMs > 0 -> WallMs bsl ?LOGICAL_BITS; true -> 0 end,
    if
        Wall > Last -> Wall;
        Last < ?SMALL_INT -> Last + 1; % a compare with a bignum costs ~20 ns
        Last < ?MAX_TS -> Last + 1;
        true -> Last
    end.

%% @doc Whether `Ts' is more than the skew bound (one hour) ahead of `WallMs'.
-spec too_far_ahead(timestamp(), integer()) -> boolean().
too_far_ahead(Ts, WallMs) ->
    Ts bsr ?LOGICAL_BITS > WallMs + ?MAX_AHEAD_MS.

%% ---------------------------------------------------------------- internal

clock_ref() ->
    persistent_term:get(?KEY).

%% The OS wall clock: what NTP keeps close to the other nodes' clocks, which an HLC
%% wants (ERTS system time in the default no_time_warp mode only slews towards it), and
%% half the cost of erlang:system_time/1 (two clock reads). It may step back; the HLC
%% rules absorb that (and next/2 reads a negative one as 0).
wall_ms() ->
    os:system_time(millisecond).
