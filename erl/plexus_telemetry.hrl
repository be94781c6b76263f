%% The CRDT call event of plexus_telemetry (README, "Telemetry"), for the modules that
%% call the CRDT NIFs.
%%
%% NIF calls whose input weighs at least this many bytes are timed and reported; this
%% is the one place the figure lives. 16 KiB is about 40-100 us of NIF work
%% (c_src/nif/nif_util.h has the ns per byte), so the event (about 1 us when telemetry
%% listens) costs a few percent of the calls it reports at most.
-define(PLEXUS_TELEMETRY_CRDT_BYTES, 16384).

%% The NIF call `Expr' of `Function' on a `Crdt'. `Lower' is a cheap lower bound of
%% its input weight (state bytes plus 16 per list cell), compared first, so a small
%% call costs one comparison; above it `plexus_telemetry:crdt_call/5' asks whether
%% anyone listens, then computes `Weight' (the weight exactly as the NIF counts it,
%% c_src/nif/nif_util.h) and `Elements' (a fun of the result) and times the call.
-define(PLEXUS_CRDT_CALL(Crdt, Function, Lower, Weight, Elements, Expr),
        case (Lower) < ?PLEXUS_TELEMETRY_CRDT_BYTES of
            true -> Expr;
            false -> plexus_telemetry:crdt_call(Crdt, Function, fun() -> Weight end, Elements,
                                                fun() -> Expr end)
        end).

%% What the NIFs add to a call's weight for every list cell they walk (NIF_CELL_WEIGHT).
-define(PLEXUS_NIF_CELL_WEIGHT, 16).
