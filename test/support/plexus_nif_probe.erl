%% @doc Test helper: where each NIF call of a piece of work ran, and how much CPU an
%% inline call held its scheduler thread for.
%%
%% Why not `erlang:system_monitor(_, [{long_schedule, Ms}])': it measures wall-clock
%% time, so on a loaded machine the OS descheduling a scheduler thread in the middle of
%% any slice looks exactly like a NIF that blocks. Here the NIF calls are call-traced
%% with `cpu_timestamp' (the scheduler thread's own CPU clock, which stands still while
%% the OS runs something else): a call whose `call' and `return_from' come with no
%% `out' between them ran inline on one scheduler thread, and the difference of the two
%% stamps is the CPU it used there. A call that was scheduled out in between
%% (`enif_schedule_nif' to a dirty scheduler, or a yield) reports `rescheduled'.
-module(plexus_nif_probe).

-export([calls/1, calls/2, max_inline_us/1, with_dirty_threshold/2]).

-type call() :: {atom(), inline, non_neg_integer()} | {atom(), rescheduled}.
-export_type([call/0]).

%% @doc `calls(Work, all_nifs)'.
-spec calls(fun(() -> term())) -> {term(), [call()]}.
calls(Work) -> calls(Work, all_nifs).

%% @doc Runs `Work' in a new process and returns its result with one entry per call
%% (in call order) of the traced `plexus_nif' functions: `all_nifs' (every export but
%% `encode/1', which is plain Erlang called once per element) or a list of `{F, A}'.
-spec calls(fun(() -> term()), all_nifs | [{atom(), arity()}]) -> {term(), [call()]}.
calls(Work, all_nifs) ->
    Skip = [encode, module_info, load_info, set_dirty_threshold, dirty_threshold],
    calls(Work, [{F, A} || {F, A} <- plexus_nif:module_info(exports),
                           not lists:member(F, Skip)]);
calls(Work, Funs) when is_list(Funs) ->
    Self = self(),
    Pid = spawn(fun() -> receive go -> ok end, Self ! {self(), done, Work()} end),
    _ = [erlang:trace_pattern({plexus_nif, F, A}, [{'_', [], [{return_trace}]}], [local])
         || {F, A} <- Funs],
    _ = erlang:trace(all, true, [cpu_timestamp]),
    try
        1 = erlang:trace(Pid, true, [call, running, timestamp, {tracer, Self}]),
        Ref = erlang:monitor(process, Pid),
        Pid ! go,
        Result = receive {Pid, done, R} -> R;
                          {'DOWN', Ref, process, Pid, Why} -> erlang:error({work_failed, Why})
                 end,
        receive {'DOWN', Ref, process, Pid, _} -> ok end,
        %% every trace message of the process is in the mailbox once this answers
        Delivered = erlang:trace_delivered(Pid),
        receive {trace_delivered, Pid, Delivered} -> ok end,
        {Result, pair(collect(Pid), none, [])}
    after
        _ = erlang:trace(all, false, [cpu_timestamp]),
        _ = [erlang:trace_pattern({plexus_nif, F, A}, false, [local]) || {F, A} <- Funs]
    end.

%% @doc The most CPU (us) any inline call used, 0 if none ran inline.
-spec max_inline_us([call()]) -> non_neg_integer().
max_inline_us(Calls) ->
    lists:max([0 | [Us || {_, inline, Us} <- Calls]]).

collect(Pid) ->
    receive
        Msg when element(1, Msg) =:= trace_ts, element(2, Msg) =:= Pid ->
            [Msg | collect(Pid)]
    after 0 -> []
    end.

%% Open is the call in flight: {Fun, CallStamp, StillOnItsThread}.
pair([{trace_ts, _, call, {plexus_nif, F, _}, Ts} | Rest], _, Acc) ->
    pair(Rest, {F, Ts, true}, Acc);
pair([{trace_ts, _, out, _, _} | Rest], {F, Ts, _}, Acc) ->
    pair(Rest, {F, Ts, false}, Acc);
pair([{trace_ts, _, return_from, {plexus_nif, F, _}, _, Ts} | Rest], {F, T0, true}, Acc) ->
    pair(Rest, none, [{F, inline, max(0, timer:now_diff(Ts, T0))} | Acc]);
pair([{trace_ts, _, return_from, {plexus_nif, F, _}, _, _} | Rest], {F, _, false}, Acc) ->
    pair(Rest, none, [{F, rescheduled} | Acc]);
pair([_ | Rest], Open, Acc) ->
    pair(Rest, Open, Acc);
pair([], _, Acc) ->
    lists:reverse(Acc).

%% @doc Runs F with the NIFs' dirty threshold set to T, restoring the old one.
-spec with_dirty_threshold(non_neg_integer(), fun(() -> R)) -> R.
with_dirty_threshold(T, F) ->
    Old = plexus_nif:set_dirty_threshold(T),
    try
        F()
    after
        plexus_nif:set_dirty_threshold(Old)
    end.
