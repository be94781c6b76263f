%% @doc The decisions of `plexus_comms' (README, "Messaging by priority and link
%% quality"), as pure functions over a state value: no processes, no clock, no sends.
%% `plexus_comms' (the process) feeds it link observations and messages, performs the
%% sends it asks for, and reports back how each send went.
%%
%% <ul>
%% <li>Link quality (`classify/3'): a node the monitor calls `healthy' is graded by its
%%   RTT against the thresholds (below `excellent_ms': excellent, below `good_ms':
%%   good, below `degraded_ms': degraded, else poor; healthy with no RTT sample yet:
%%   good); `suspect' (silent for the monitor's `suspect_after_ms') is poor; `down' or
%%   never seen is disconnected. The local node is always excellent.</li>
%% <li>Drop policy (`policy/2', the seed's CommsManager): critical and high are always
%%   sent, and queued while disconnected; normal is dropped on poor or disconnected
%%   links; low is dropped on degraded or worse.</li>
%% <li>Queues: one per destination, four classes inside it, drained critical first and
%%   in arrival order within a class. A destination holds at most `queue_limit'
%%   messages and `queue_bytes_limit' bytes (external size of the data). At the bound
%%   a message evicts the oldest messages of strictly lower classes, lowest class
%%   first, if that makes room; otherwise it is refused (`queue_full') and nothing is
%%   evicted. A queued message is judged again when it reaches the head: one whose
%%   link got worse is dropped then, with the link's reason.</li>
%% </ul>
%%
%% Every drop is counted here, by reason and priority, and returned as a `drop()' so
%% the process can report it.
-module(plexus_comms_core).

-export([new/1, set_link/4, set_status/3, quality/2, classify/3, policy/2]).
-export([submit/4, enqueue/4, sent/3, next/2, pop_sent/3, pop_dropped/4]).
-export([queue_len/2, queue_bytes/2, destinations/1, counters/1, received/1,
         received_count/1, links/1]).
-export([priorities/0, reasons/0]).

-type priority() :: critical | high | normal | low.
-type quality() :: excellent | good | degraded | poor | disconnected.
-type status() :: healthy | suspect | down | unknown.
-type reason() :: degraded | poor | disconnected | queue_full | evicted.
-type drop() :: #{node := node(), priority := priority(), reason := reason(),
                  bytes := non_neg_integer()}.
-type config() :: #{excellent_ms := pos_integer(), good_ms := pos_integer(),
                    degraded_ms := pos_integer(), queue_limit := pos_integer(),
                    queue_bytes_limit := pos_integer()}.
-export_type([priority/0, quality/0, status/0, reason/0, drop/0, config/0]).

%% One destination's queue: a queue per class (critical, high, normal, low), with
%% each class's message count and byte total so that eviction can be decided before
%% anything is evicted.
-record(dq, {qs = {queue:new(), queue:new(), queue:new(), queue:new()} :: tuple(),
             lens = {0, 0, 0, 0} :: {non_neg_integer(), non_neg_integer(),
                                     non_neg_integer(), non_neg_integer()},
             bytes = {0, 0, 0, 0} :: {non_neg_integer(), non_neg_integer(),
                                      non_neg_integer(), non_neg_integer()}}).

-record(core, {self :: node(),
               cfg :: config(),
               links = #{} :: #{node() => {status(), non_neg_integer() | undefined}},
               queues = #{} :: #{node() => #dq{}},
               sent :: #{priority() => non_neg_integer()},
               queued :: #{priority() => non_neg_integer()},
               dropped :: #{reason() => #{priority() => non_neg_integer()}},
               received = 0 :: non_neg_integer()}).
-opaque state() :: #core{}.
-export_type([state/0]).

-define(PRIOS, [critical, high, normal, low]).
-define(REASONS, [degraded, poor, disconnected, queue_full, evicted]).

-spec priorities() -> [priority()].
priorities() -> ?PRIOS.

-spec reasons() -> [reason()].
reasons() -> ?REASONS.

%% @doc A state for the node `Self' (sends to it are always excellent). The
%% configuration is checked by `plexus_comms'; thresholds must increase.
-spec new(#{self := node(), config := config()}) -> state().
new(#{self := Self, config := Cfg}) ->
    Zero = maps:from_list([{P, 0} || P <- ?PRIOS]),
    #core{self = Self, cfg = Cfg, sent = Zero, queued = Zero,
          dropped = maps:from_list([{R, Zero} || R <- ?REASONS])}.

%% ------------------------------------------------------------------ links

%% @doc What the monitor says of `Node': its status and an RTT in microseconds
%% (`undefined' when it has no sample).
-spec set_link(node(), status(), non_neg_integer() | undefined, state()) -> state().
set_link(Node, Status, Rtt, #core{links = L} = St) ->
    St#core{links = L#{Node => {Status, Rtt}}}.

%% @doc A status change alone (a monitor event): the last RTT is kept.
-spec set_status(node(), status(), state()) -> state().
set_status(Node, Status, #core{links = L} = St) ->
    Rtt = case L of
              #{Node := {_, R}} -> R;
              _ -> undefined
          end,
    St#core{links = L#{Node => {Status, Rtt}}}.

-spec quality(node(), state()) -> quality().
quality(Node, #core{self = Node}) ->
    excellent;
quality(Node, #core{links = L, cfg = Cfg}) ->
    case L of
        #{Node := {Status, Rtt}} -> classify(Status, Rtt, Cfg);
        _ -> disconnected
    end.

%% @doc The grade of a link (see the module doc).
-spec classify(status(), non_neg_integer() | undefined, config()) -> quality().
classify(healthy, undefined, _) -> good;
classify(healthy, RttUs, #{excellent_ms := E, good_ms := G, degraded_ms := D}) ->
    if RttUs < E * 1000 -> excellent;
       RttUs < G * 1000 -> good;
       RttUs < D * 1000 -> degraded;
       true -> poor
    end;
classify(suspect, _, _) -> poor;
classify(_, _, _) -> disconnected.

%% @doc The drop policy: send now, hold in the queue, or drop with a reason.
-spec policy(priority(), quality()) -> send | hold | {drop, reason()}.
policy(P, disconnected) when P =:= critical; P =:= high -> hold;
policy(P, _) when P =:= critical; P =:= high -> send;
policy(_, disconnected) -> {drop, disconnected};
policy(_, poor) -> {drop, poor};
policy(low, degraded) -> {drop, degraded};
policy(_, _) -> send.

%% ------------------------------------------------------------------ messages

%% @doc A message offered for `Node': `send_now' (the caller sends it and reports
%% with `sent/3' or, if the connection was busy, `enqueue/4'), `queued' (behind
%% others of the destination, or held while disconnected), or dropped. The drops
%% list holds this message's drop or the evictions it caused.
-spec submit(node(), priority(), term(), state()) ->
          {send_now | queued | {dropped, reason()}, [drop()], state()}.
submit(Node, P, Data, St0) ->
    St = known(Node, St0),
    case policy(P, quality(Node, St)) of
        {drop, R} ->
            {Drop, St1} = count_drop(Node, P, R, erlang:external_size(Data), St),
            {{dropped, R}, [Drop], St1};
        hold ->
            enqueue(Node, P, Data, St);
        send ->
            case St#core.queues of
                #{Node := _} -> enqueue(Node, P, Data, St);
                _ -> {send_now, [], St}
            end
    end.

%% @doc Puts a message at the tail of its class, evicting lower classes if that makes
%% room, else refusing it (`queue_full').
-spec enqueue(node(), priority(), term(), state()) ->
          {queued | {dropped, queue_full}, [drop()], state()}.
enqueue(Node, P, Data, #core{cfg = #{queue_limit := MaxLen, queue_bytes_limit := MaxBytes},
                              queues = Qs} = St) ->
    Size = erlang:external_size(Data),
    Dq = maps:get(Node, Qs, #dq{}),
    I = index(P),
    {Len, Bytes} = totals(Dq),
    {LowerLen, LowerBytes} = lower_totals(Dq, I),
    case Len - LowerLen + 1 =< MaxLen andalso Bytes - LowerBytes + Size =< MaxBytes of
        false ->
            {Drop, St1} = count_drop(Node, P, queue_full, Size, St),
            {{dropped, queue_full}, [Drop], St1};
        true ->
            {Dq1, Drops, St1} = make_room(Node, Dq, Size, MaxLen, MaxBytes, [], St),
            Dq2 = push(Dq1, I, Size, Data),
            Queued = St1#core.queued,
            {queued, lists:reverse(Drops),
             St1#core{queues = Qs#{Node => Dq2}, queued = bump(P, Queued)}}
    end.

%% @doc A message of priority `P' went out directly (after `send_now').
-spec sent(node(), priority(), state()) -> state().
sent(_Node, P, #core{sent = S} = St) ->
    St#core{sent = bump(P, S)}.

%% @doc What to do next with the queue of `Node', judged by its link now: drop a
%% message that the link no longer allows (any class first: a held critical message
%% must not keep a normal one waiting for a link it will be dropped on), else send
%% the head, else nothing (empty, or held while disconnected).
-spec next(node(), state()) -> none | {send, priority(), term()} | {drop, priority(), reason()}.
next(Node, #core{queues = Qs} = St) ->
    case Qs of
        #{Node := Dq} ->
            Q = quality(Node, St),
            NonEmpty = [P || P <- ?PRIOS, element(index(P), Dq#dq.lens) > 0],
            case [{P, R} || P <- NonEmpty, {drop, R} <- [policy(P, Q)]] of
                [{P, R} | _] ->
                    {drop, P, R};
                [] ->
                    [Head | _] = NonEmpty,
                    case policy(Head, Q) of
                        send ->
                            {value, {_, Data}} = queue:peek(element(index(Head), Dq#dq.qs)),
                            {send, Head, Data};
                        hold ->
                            none
                    end
            end;
        _ ->
            none
    end.

%% @doc The head of class `P' of `Node' was sent.
-spec pop_sent(node(), priority(), state()) -> state().
pop_sent(Node, P, St) ->
    {_Size, St1} = pop(Node, P, St),
    St1#core{sent = bump(P, St1#core.sent)}.

%% @doc The head of class `P' of `Node' is dropped for `Reason' (as `next/2' said).
-spec pop_dropped(node(), priority(), reason(), state()) -> {drop(), state()}.
pop_dropped(Node, P, Reason, St) ->
    {Size, St1} = pop(Node, P, St),
    count_drop(Node, P, Reason, Size, St1).

%% ------------------------------------------------------------------ reading

-spec queue_len(node(), state()) -> non_neg_integer().
queue_len(Node, #core{queues = Qs}) ->
    case Qs of
        #{Node := Dq} -> element(1, totals(Dq));
        _ -> 0
    end.

-spec queue_bytes(node(), state()) -> non_neg_integer().
queue_bytes(Node, #core{queues = Qs}) ->
    case Qs of
        #{Node := Dq} -> element(2, totals(Dq));
        _ -> 0
    end.

%% @doc Destinations with something queued.
-spec destinations(state()) -> [node()].
destinations(#core{queues = Qs}) -> maps:keys(Qs).

-spec counters(state()) -> #{sent := #{priority() => non_neg_integer()},
                             queued := #{priority() => non_neg_integer()},
                             dropped := #{reason() => #{priority() => non_neg_integer()}}}.
counters(#core{sent = S, queued = Q, dropped = D}) ->
    #{sent => S, queued => Q, dropped => D}.

-spec received_count(state()) -> non_neg_integer().
received_count(#core{received = N}) -> N.

-spec received(state()) -> state().
received(#core{received = N} = St) -> St#core{received = N + 1}.

%% @doc Every destination the state has heard of, with its status and RTT.
-spec links(state()) -> #{node() => {status(), non_neg_integer() | undefined}}.
links(#core{links = L}) -> L.

%% ------------------------------------------------------------------ internals

%% A destination is a link from its first message on (unknown until the monitor
%% says), so that the process asks the monitor to watch it.
known(Node, #core{links = L} = St) ->
    case L of
        #{Node := _} -> St;
        _ -> St#core{links = L#{Node => {unknown, undefined}}}
    end.

index(critical) -> 1;
index(high) -> 2;
index(normal) -> 3;
index(low) -> 4.

bump(P, M) -> maps:update_with(P, fun(N) -> N + 1 end, M).

count_drop(Node, P, R, Size, #core{dropped = D} = St) ->
    {#{node => Node, priority => P, reason => R, bytes => Size},
     St#core{dropped = D#{R := bump(P, maps:get(R, D))}}}.

totals(#dq{lens = L, bytes = B}) ->
    {lists:sum(tuple_to_list(L)), lists:sum(tuple_to_list(B))}.

%% Messages and bytes of the classes below class I (which a message of class I may
%% evict).
lower_totals(#dq{lens = L, bytes = B}, I) ->
    {lists:sum(lists:nthtail(I, tuple_to_list(L))),
     lists:sum(lists:nthtail(I, tuple_to_list(B)))}.

push(#dq{qs = Qs, lens = L, bytes = B} = Dq, I, Size, Data) ->
    Dq#dq{qs = setelement(I, Qs, queue:in({Size, Data}, element(I, Qs))),
          lens = setelement(I, L, element(I, L) + 1),
          bytes = setelement(I, B, element(I, B) + Size)}.

%% Evicts the oldest message of the lowest non-empty class until a message of Size
%% fits. enqueue/4 has checked that the lower classes alone make enough room, so
%% this never reaches the new message's own class.
make_room(Node, Dq, Size, MaxLen, MaxBytes, Drops, St) ->
    {Len, Bytes} = totals(Dq),
    case Len + 1 =< MaxLen andalso Bytes + Size =< MaxBytes of
        true ->
            {Dq, Drops, St};
        false ->
            I = lowest_nonempty(Dq),
            {Dq1, Evicted} = out(Dq, I),
            {Drop, St1} = count_drop(Node, priority(I), evicted, Evicted, St),
            make_room(Node, Dq1, Size, MaxLen, MaxBytes, [Drop | Drops], St1)
    end.

lowest_nonempty(#dq{lens = L}) ->
    hd([I || I <- [4, 3, 2, 1], element(I, L) > 0]).

priority(1) -> critical;
priority(2) -> high;
priority(3) -> normal;
priority(4) -> low.

out(#dq{qs = Qs, lens = L, bytes = B} = Dq, I) ->
    {{value, {Size, _}}, Q1} = queue:out(element(I, Qs)),
    {Dq#dq{qs = setelement(I, Qs, Q1), lens = setelement(I, L, element(I, L) - 1),
           bytes = setelement(I, B, element(I, B) - Size)}, Size}.

%% Removes the head of class P of Node's queue; an emptied queue is forgotten.
pop(Node, P, #core{queues = Qs} = St) ->
    #{Node := Dq} = Qs,
    {Dq1, Size} = out(Dq, index(P)),
    Qs1 = case totals(Dq1) of
              {0, _} -> maps:remove(Node, Qs);
              _ -> Qs#{Node := Dq1}
          end,
    {Size, St#core{queues = Qs1}}.
