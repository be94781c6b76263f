%% @doc The node-wide hybrid logical clock of `plexus_lww' (Kulkarni et al., "Logical
%% Physical Clocks", 2014, §3): a 64-bit timestamp, wall-clock milliseconds in the high
%% 48 bits and a logical counter in the low 16, so integer order is HLC order and
%% timestamps compare across nodes.
%%
%% The clock is a cell in the NIF library (`c_src/nif/nif_hlc.c'): one tick is one NIF
%% call that reads the wall clock and moves the cell with a compare-and-swap, so
%% concurrent callers on any scheduler get distinct, increasing timestamps. That costs
%% less than ticking from Erlang (`os:system_time/1', `persistent_term:get/1' and an
%% `atomics' operation are three calls).
%%
%% A library reload may lose that cell, so it runs under a lease. The ceiling, one
%% unsigned `atomics' cell held in `persistent_term' (made once, by this module's
%% `on_load', and kept across reloads of this module and of the library), is at or
%% above every timestamp the node has issued or observed: the cell never passes its
%% lease, and `lease/1' raises the ceiling before the cell's lease. A grant is
%% `{Prev, Limit}', the ceiling before and after it; a cell whose lease is below `Prev'
%% (a fresh one, after a reload: zero) first jumps to `Prev'. So after a reload the
%% clock goes on from at most one lease (`?LEASE_MS') past the last timestamp the
%% node needed, never back. A lease covers `?LEASE_MS' of wall clock, so a node that
%% writes all the time asks for one about ten times a second.
%%
%% Skew is bounded: a timestamp more than one hour ahead of this node's wall clock
%% is never recorded, so one register stamped 2^64-1, hostile or buggy, cannot drag the
%% clock to the end of time. The rules (`next/2', `too_far_ahead/2') are pure
%% functions and match the C core's `plexus_hlc_next' and `plexus_hlc_too_far_ahead'.
-module(plexus_hlc).

-on_load(init/0).

-export([now/0, next_after/1, observe/1, lease/1]).
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
%% How far past the timestamp that asked for it a lease reaches, in wall-clock ms: how
%% far ahead of the wall clock a reload can put the clock, and how often a node that
%% writes all the time comes back to Erlang for a lease.
-define(LEASE_MS, 100).

%% Makes the ceiling unless an earlier load of this module made it: a reload must keep
%% it, or timestamps could go back. (A ceiling made by an earlier version of this
%% module, which kept the clock itself there, is a valid ceiling.)
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
-spec next_after(timestamp()) -> timestamp().
next_after(Floor) ->
    case plexus_nif:hlc_next_after(Floor) of
        {lease, Need} ->
            lease(Need),
            next_after(Floor);
        Ts ->
            Ts
    end.

%% @doc Node clock := max(node clock, `Ts') for a timestamp within the skew bound.
%% When `Ts' is not ahead of what this process last saw of the clock, nothing at all
%% is called: the calling process keeps that lower bound of the node clock in its
%% dictionary under `'$plexus_hlc_seen'' (sound because the clock never goes back;
%% erasing it only costs the next observe one NIF call). Why a library writes there
%% (as `rand' keeps its seed there): measured in `make bench', deciding from the
%% shared cell instead costs ~40 ns against ~10, as much as the rest of a merge.
-spec observe(timestamp()) -> ok.
observe(Ts) ->
    case get(?SEEN) of
        Seen when is_integer(Seen), Ts =< Seen -> ok;
        _ -> observe_shared(Ts)
    end.

observe_shared(Ts) ->
    case plexus_nif:hlc_observe(Ts) of
        {lease, Need} ->
            lease(Need),
            observe_shared(Ts);
        Clock ->
            _ = put(?SEEN, Clock),
            ok
    end.

%% @doc Grants the node clock a lease through `Need' (the timestamp a NIF said needs
%% one) and `?LEASE_MS' beyond: records the new ceiling first, then hands the cell the
%% grant. Called by this module and by `plexus_lww' (whose write NIF ticks the clock).
%% A `Need' the clock could not have asked for raises `badarg': the ceiling is what a
%% reloaded library's clock jumps to, so it must never be dragged to the end of time.
%% The clock asks for the tick after its own (at most one past the ceiling, however
%% far the wall clock is behind it: after the wall clock stepped back, the clock goes
%% on in logical ticks) or for a timestamp within the skew bound of the wall clock
%% (a wall-clock tick, an observed or floor timestamp); anything else is refused, with
%% an hour of slack over the bound.
-spec lease(timestamp()) -> ok.
lease(Need) when is_integer(Need), Need >= 0 ->
    Ref = ceiling(),
    Prev = atomics:get(Ref, 1),
    case Need =< Prev + 1 orelse
         not too_far_ahead(Need, os:system_time(millisecond) + ?MAX_AHEAD_MS) of
        true ->
            {Granted, Limit} = grant(Ref, Prev, Need),
            plexus_nif:hlc_lease(Granted, Limit);
        false ->
            erlang:error(badarg)
    end;
lease(_) ->
    erlang:error(badarg).

grant(Ref, Prev, Need) ->
    Limit = min(max(Prev, Need) + (?LEASE_MS bsl ?LOGICAL_BITS), ?MAX_TS),
    case atomics:compare_exchange(Ref, 1, Prev, Limit) of
        ok -> {Prev, Limit};
        Current -> grant(Ref, Current, Need)
    end.

%% @doc The timestamp after `Last' at wall time `WallMs': the wall clock's own
%% timestamp if that is later, else `Last + 1' (saturating at 2^64-1).
-spec next(timestamp(), integer()) -> timestamp().
next(Last, WallMs) when WallMs > ?MAX_MS ->
    next(Last, ?MAX_MS);
next(Last, WallMs) ->
    %% Comparisons, not min/max: guards are cheaper.
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

ceiling() ->
    case persistent_term:get(?KEY, undefined) of
        undefined -> init(), persistent_term:get(?KEY);
        Ref -> Ref
    end.
