%% @doc Test helper: catches plexus's telemetry events on both paths of
%% `plexus_telemetry'.
%%
%% `telemetry' is not installed here (nor in Debian), so `with_telemetry/1' compiles a
%% stand-in module named `telemetry' in memory (compile:forms) whose `execute/3'
%% forwards every event to the test process, loads it for the length of the fun, then
%% purges and deletes it, so no other test sees a `telemetry' module. `with_logger/1'
%% adds a logger handler for the `[plexus, telemetry]' domain and lets debug events of
%% `plexus_telemetry' through for the length of the fun. Either way events arrive as
%% `{plexus_telemetry_capture, Via, Event, Measurements, Metadata}' with Via
%% `telemetry' or `logger'; `wait/3' picks one out.
-module(plexus_telemetry_capture).

-export([with_telemetry/1, with_logger/1, each_path/1, wait/2, wait/3, none/2, log/2]).

-define(KEY, ?MODULE).
-define(HANDLER, plexus_telemetry_capture).
-define(WAIT_MS, 30000).

%% @doc Runs `F()' with the stand-in `telemetry' module loaded; events go to the caller.
-spec with_telemetry(fun(() -> R)) -> R.
with_telemetry(F) ->
    false = erlang:module_loaded(telemetry),         % a real one would be shadowed
    {ok, telemetry, Bin} = compile:forms(stand_in(), [binary, return_errors]),
    persistent_term:put(?KEY, self()),
    {module, telemetry} = code:load_binary(telemetry, "telemetry (test stand-in)", Bin),
    try F()
    after
        _ = code:purge(telemetry),
        true = code:delete(telemetry),
        _ = code:purge(telemetry),
        _ = persistent_term:erase(?KEY)
    end.

%% The stand-in: telemetry:execute/3 that forwards to the registered test process.
stand_in() ->
    Src = ["-module(telemetry).",
           "-export([execute/3]).",
           %% a handler that fails, as a broken telemetry setup would
           "execute(_, _, #{crash := true}) -> erlang:error(crash_requested);"
           "execute(Event, Measurements, Metadata) ->"
           "    case persistent_term:get(" ++ atom_to_list(?KEY) ++ ", undefined) of"
           "        undefined -> ok;"
           "        Pid -> Pid ! {" ++ atom_to_list(?MODULE) ++ ", telemetry, Event,"
           "                      Measurements, Metadata}, ok"
           "    end."],
    [begin
         {ok, Tokens, _} = erl_scan:string(S),
         {ok, Form} = erl_parse:parse_form(Tokens),
         Form
     end || S <- Src].

%% @doc Runs `F()' with plexus_telemetry's debug reports let through to a handler that
%% forwards them to the caller.
-spec with_logger(fun(() -> R)) -> R.
with_logger(F) ->
    false = erlang:module_loaded(telemetry),
    ok = logger:add_handler(?HANDLER, ?MODULE,
                            #{level => debug, config => #{sink => self()},
                              filter_default => stop,
                              filters => [{plexus, {fun logger_filters:domain/2,
                                                    {log, equal, [plexus, telemetry]}}}]}),
    ok = logger:set_module_level(plexus_telemetry, debug),
    try F()
    after
        ok = logger:unset_module_level(plexus_telemetry),
        ok = logger:remove_handler(?HANDLER)
    end.

%% @doc `F(Via)' once under `with_telemetry/1', once under `with_logger/1'.
-spec each_path(fun((telemetry | logger) -> term())) -> ok.
each_path(F) ->
    _ = with_telemetry(fun() -> F(telemetry) end),
    flush(),
    _ = with_logger(fun() -> F(logger) end),
    flush().

%% @private logger handler callback.
log(#{msg := {report, #{event := E, measurements := M, metadata := Meta}}},
    #{config := #{sink := Pid}}) ->
    Pid ! {?MODULE, logger, E, M, Meta};
log(_, _) ->
    ok.

%% @doc The next `Event' that came by `Via': `{Measurements, Metadata}'.
-spec wait(telemetry | logger, [atom()]) -> {map(), map()}.
wait(Via, Event) -> wait(Via, Event, fun(_, _) -> true end).

%% @doc The next `Event' by `Via' for which `Pred(Measurements, Metadata)' holds (the
%% ones before it are dropped); fails after a generous bound.
-spec wait(telemetry | logger, [atom()], fun((map(), map()) -> boolean())) -> {map(), map()}.
wait(Via, Event, Pred) ->
    receive
        {?MODULE, Via, Event, M, Meta} ->
            case Pred(M, Meta) of
                true -> {M, Meta};
                false -> wait(Via, Event, Pred)
            end
    after ?WAIT_MS ->
            erlang:error({no_event, Via, Event})
    end.

%% @doc Asserts that no `Event' is waiting now (for events the caller's own
%% synchronous call would have sent already).
-spec none(telemetry | logger, [atom()]) -> ok.
none(Via, Event) ->
    receive
        {?MODULE, Via, Event, M, Meta} -> erlang:error({unexpected, Event, M, Meta})
    after 0 ->
            ok
    end.

flush() ->
    receive {?MODULE, _, _, _, _} -> flush()
    after 0 -> ok
    end.
