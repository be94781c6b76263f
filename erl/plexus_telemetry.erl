%% @doc The one way plexus emits events (README, "Telemetry"): `execute/3' hands an
%% event to the `telemetry' library when its module is loaded, and otherwise to
%% `logger' as a debug report, so plexus builds and runs without `telemetry' (it is
%% not packaged by Debian) and an application that has it gets the usual events.
%%
%% Whether `telemetry' is there is asked of the export table
%% (`erlang:function_exported/3', a BIF: no code-server call, nothing to cache and
%% nothing to go stale when the module is loaded or purged later). A `telemetry' that
%% is installed but not loaded yet counts as absent; `setup/0' (run when the plexus
%% application starts) loads it once, and `telemetry:attach/4' loads it anyway, so by
%% the time anyone listens it is there.
%%
%% The logger fallback is a report `#{event, measurements, metadata}' at level `debug'
%% with the metadata `#{domain => [plexus, telemetry]}'; it is built only when logger
%% would pass a debug event of this module (the primary level is `debug', or
%% `logger:set_module_level(plexus_telemetry, debug)').
%%
%% `enabled/0' tells whether anyone can receive an event: emitters whose measurements
%% cost something to gather (timing a NIF call, reading a health record) ask it first.
-module(plexus_telemetry).

-include_lib("kernel/include/logger.hrl").
-include("plexus_telemetry.hrl").

-export([setup/0, execute/3, enabled/0, telemetry_loaded/0]).
-export([crdt_call/5, crdt_bytes/0]).

-export_type([event_name/0]).

-type event_name() :: [atom(), ...].

%% @doc Loads the `telemetry' module if it is installed, so that `execute/3' finds it
%% (in an interactive system modules load on first call). Called by `plexus_app'.
-spec setup() -> ok.
setup() ->
    _ = code:ensure_loaded(telemetry),
    ok.

%% @doc Emits one event: `telemetry:execute/3' when `telemetry' is loaded, else a
%% logger debug report. Never fails: a crashing telemetry handler is telemetry's to
%% detach, and a missing telemetry application (module loaded, app not started) loses
%% the event rather than the caller.
-spec execute(event_name(), #{atom() => number()}, map()) -> ok.
execute(Event, Measurements, Metadata) ->
    case telemetry_loaded() of
        true ->
            Mod = telemetry,               % optional: no compile-time reference
            try Mod:execute(Event, Measurements, Metadata) catch _:_ -> ok end,
            ok;
        false ->
            ?LOG_DEBUG(#{event => Event, measurements => Measurements, metadata => Metadata},
                       #{domain => [plexus, telemetry]})
    end.

%% @doc Whether an event emitted now would reach anyone: `telemetry' is loaded, or
%% logger passes debug events of this module.
-spec enabled() -> boolean().
enabled() ->
    telemetry_loaded() orelse logger:allow(debug, ?MODULE).

%% @doc Whether the `telemetry' module is loaded with `execute/3'.
-spec telemetry_loaded() -> boolean().
telemetry_loaded() ->
    erlang:function_exported(telemetry, execute, 3).

%% @doc The input weight (bytes) from which CRDT NIF calls are reported.
-spec crdt_bytes() -> pos_integer().
crdt_bytes() -> ?PLEXUS_TELEMETRY_CRDT_BYTES.

%% @doc Runs `Call' (one CRDT NIF call, through `?PLEXUS_CRDT_CALL' of
%% plexus_telemetry.hrl, which comes here only for a large input) and, when `enabled/0'
%% holds and its input weight (`Weight()', as the NIF counts it) reaches
%% `crdt_bytes/0', reports it as `[plexus, crdt, call]': measurements
%% `#{duration_us, bytes, elements}' (`elements' is `Elements(Result)'), metadata
%% `#{crdt, function, dirty}' (`dirty': the weight reached the NIF's dirty threshold,
%% so the call ran on a dirty CPU scheduler).
-spec crdt_call(atom(), atom(), fun(() -> non_neg_integer()),
                fun((R) -> non_neg_integer()), fun(() -> R)) -> R.
crdt_call(Crdt, Function, Weight, Elements, Call) ->
    case enabled() of
        false ->
            Call();
        true ->
            case Weight() of
                W when W >= ?PLEXUS_TELEMETRY_CRDT_BYTES ->
                    T0 = erlang:monotonic_time(),
                    Result = Call(),
                    T1 = erlang:monotonic_time(),
                    execute([plexus, crdt, call],
                            #{duration_us => erlang:convert_time_unit(T1 - T0, native,
                                                                      microsecond),
                              bytes => W, elements => Elements(Result)},
                            #{crdt => Crdt, function => Function,
                              dirty => W >= plexus_nif:dirty_threshold()}),
                    Result;
                _ ->
                    Call()
            end
    end.
