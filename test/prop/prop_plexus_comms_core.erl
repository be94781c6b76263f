%% PropEr properties of the queues of plexus_comms_core, against a model of the rules
%% (README, "Messaging by priority and link quality"): under any sequence of
%% enqueues (random priorities and sizes), sends, link changes and drops,
%% - a destination never holds more than queue_limit messages or queue_bytes_limit bytes;
%% - what leaves is the oldest message of the highest non-empty class;
%% - a message only evicts messages of strictly lower classes, oldest of the lowest
%%   first, and is refused (evicting nothing) when they do not make room;
%% - every message is accounted for: queued = sent + evicted + dropped on the way
%%   out + still queued, and the counters agree with the model.
-module(prop_plexus_comms_core).

-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

-include("plexus_prop.hrl").

-define(C, plexus_comms_core).
-define(PEER, 'peer@127.0.0.1').
-define(LIMIT, 6).
-define(BYTES, 300).
-define(OPTS, [{numtests, 500}, {max_size, 80}, {to_file, user}]).

proper_test_() ->
    [{"queue invariants", {timeout, 120, ?_assert(proper:quickcheck(prop_queue(), ?OPTS))}}].

%% ---------------------------------------------------------------- generators

prio() -> oneof([critical, high, normal, low]).

op() ->
    frequency([{6, {enqueue, prio(), range(0, 120)}},
               {4, step},
               {1, {link, oneof([healthy_fast, healthy_slow, suspect, down])}}]).

%% ---------------------------------------------------------------- property

prop_queue() ->
    ?FORALL(Ops, list(op()),
            ?SAFE(run(Ops))).

new() ->
    St = ?C:new(#{self => 'me@127.0.0.1',
                  config => #{excellent_ms => 10, good_ms => 50, degraded_ms => 200,
                              queue_limit => ?LIMIT, queue_bytes_limit => ?BYTES}}),
    ?C:set_link(?PEER, healthy, 1000, St).

%% Model: per class, the queued {Id, Size} oldest first; counts of what happened.
run(Ops) ->
    run(Ops, new(), #{critical => [], high => [], normal => [], low => []},
        #{queued => 0, sent => 0, evicted => 0, dropped_out => 0, refused => 0}, 0).

run([], St, Model, Count, _) ->
    check(St, Model, Count);
run([{enqueue, P, N} | Ops], St, Model, Count, Id) ->
    Data = {Id, binary:copy(<<0>>, N)},
    Size = erlang:external_size(Data),
    {Verdict, Drops, St1} = ?C:enqueue(?PEER, P, Data, St),
    {Expect, Model1} = model_enqueue(P, Id, Size, Model),
    ExpectDrops = case Expect of
                      {queued, Ev} -> [{evicted, EP, ES} || {EP, ES} <- Ev];
                      refused -> [{queue_full, P, Size}]
                  end,
    true = ExpectDrops =:= [{R, DP, B} || #{reason := R, priority := DP, bytes := B} <- Drops],
    Count1 = case Expect of
                 {queued, Ev2} ->
                     queued = Verdict,
                     Count#{queued := maps:get(queued, Count) + 1,
                            evicted := maps:get(evicted, Count) + length(Ev2)};
                 refused ->
                     {dropped, queue_full} = Verdict,
                     Count#{refused := maps:get(refused, Count) + 1}
             end,
    check(St1, Model1, Count1) andalso run(Ops, St1, Model1, Count1, Id + 1);
run([step | Ops], St, Model, Count, Id) ->
    case ?C:next(?PEER, St) of
        none ->
            %% nothing may leave: empty, or only held (critical/high) messages while
            %% disconnected
            Q = ?C:quality(?PEER, St),
            true = lists:all(fun(P) -> maps:get(P, Model) =:= [] orelse
                                           ?C:policy(P, Q) =:= hold end, maps:keys(Model)),
            run(Ops, St, Model, Count, Id);
        {send, P, {SentId, _}} ->
            %% the oldest of the highest non-empty class
            [{HeadP, [{HeadId, _} | Rest]} | _] = nonempty(Model),
            true = {P, SentId} =:= {HeadP, HeadId},
            St1 = ?C:pop_sent(?PEER, P, St),
            Model1 = Model#{P := Rest},
            Count1 = Count#{sent := maps:get(sent, Count) + 1},
            check(St1, Model1, Count1) andalso run(Ops, St1, Model1, Count1, Id);
        {drop, P, R} ->
            {drop, R} = ?C:policy(P, ?C:quality(?PEER, St)),
            {#{priority := P, reason := R}, St1} = ?C:pop_dropped(?PEER, P, R, St),
            [_ | Rest] = maps:get(P, Model),
            Model1 = Model#{P := Rest},
            Count1 = Count#{dropped_out := maps:get(dropped_out, Count) + 1},
            check(St1, Model1, Count1) andalso run(Ops, St1, Model1, Count1, Id)
    end;
run([{link, L} | Ops], St, Model, Count, Id) ->
    St1 = case L of
              healthy_fast -> ?C:set_link(?PEER, healthy, 1000, St);
              healthy_slow -> ?C:set_link(?PEER, healthy, 100000, St);
              S -> ?C:set_status(?PEER, S, St)
          end,
    run(Ops, St1, Model, Count, Id).

nonempty(Model) ->
    [{P, maps:get(P, Model)} || P <- [critical, high, normal, low], maps:get(P, Model) =/= []].

rank(critical) -> 1;
rank(high) -> 2;
rank(normal) -> 3;
rank(low) -> 4.

%% The rule: room is made from strictly lower classes only, lowest class and oldest
%% first; if they cannot make room, the message is refused and nothing evicted.
model_enqueue(P, Id, Size, Model) ->
    All = [E || {_, Q} <- nonempty(Model), E <- Q],
    Lower = [E || {LP, Q} <- nonempty(Model), rank(LP) > rank(P), E <- Q],
    Len = length(All), Bytes = lists:sum([S || {_, S} <- All]),
    LLen = length(Lower), LBytes = lists:sum([S || {_, S} <- Lower]),
    case Len - LLen + 1 =< ?LIMIT andalso Bytes - LBytes + Size =< ?BYTES of
        false ->
            {refused, Model};
        true ->
            {Model1, Ev} = evict(Size, Model, []),
            {{queued, Ev}, Model1#{P := maps:get(P, Model1) ++ [{Id, Size}]}}
    end.

evict(Size, Model, Ev) ->
    All = [E || {_, Q} <- nonempty(Model), E <- Q],
    case length(All) + 1 =< ?LIMIT andalso lists:sum([S || {_, S} <- All]) + Size =< ?BYTES of
        true ->
            {Model, lists:reverse(Ev)};
        false ->
            {LP, [{_, S} | Rest]} = lists:last(nonempty(Model)),
            evict(Size, Model#{LP := Rest}, [{LP, S} | Ev])
    end.

check(St, Model, Count) ->
    Len = ?C:queue_len(?PEER, St),
    Bytes = ?C:queue_bytes(?PEER, St),
    MLen = lists:sum([length(Q) || Q <- maps:values(Model)]),
    MBytes = lists:sum([S || Q <- maps:values(Model), {_, S} <- Q]),
    #{sent := S, queued := Q, dropped := D} = ?C:counters(St),
    Sum = fun(M) -> lists:sum(maps:values(M)) end,
    Len =< ?LIMIT andalso Bytes =< ?BYTES
        andalso Len =:= MLen andalso Bytes =:= MBytes
        andalso Sum(Q) =:= maps:get(queued, Count)
        andalso Sum(S) =:= maps:get(sent, Count)
        andalso Sum(maps:get(evicted, D)) =:= maps:get(evicted, Count)
        andalso Sum(maps:get(queue_full, D)) =:= maps:get(refused, Count)
        %% conservation: every queued message was sent, evicted, dropped or is here
        andalso Sum(Q) =:= Sum(S) + Sum(maps:get(evicted, D)) + maps:get(dropped_out, Count) + Len.
