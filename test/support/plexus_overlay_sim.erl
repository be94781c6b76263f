%% @doc Test helper: overlay cores (`plexus_overlay_core') in one process, joined by a
%% simulated network that the test controls message by message (deliver, duplicate,
%% reorder, drop, slow peer). Used by plexus_overlay_core_tests and
%% prop_plexus_overlay. Time is a number the test advances.
-module(plexus_overlay_sim).

-export([new/1, drain_all/1, op/3, flush/2, ae/2, deliver/2, duplicate/2, drop/2, net/1, quiesce/1,
         core/2, bytes/2, events/2, folded_events/2, visible/2, converged/1, peer_down/3,
         peer_up/3, set_busy/3, reference_bytes/1]).

%% nodes: Name => core; net: [{From, To, Msg}] in flight (any may be delivered next);
%% events: Name => [event] in order; busy: peers whose delta sends report busy.
-record(sim, {nodes :: #{atom() => term()}, net = [] :: list(), events = #{} :: map(),
              now = 0 :: integer(), busy = #{} :: map(),
              %% every local change ever flushed, merged: what every replica must end
              %% with once everything is delivered
              reference :: term()}).

new(Names) ->
    S0 = #sim{nodes = maps:from_list([{N, plexus_overlay_core:new(N, #{max_pending_ops => 50,
                                                                     ae_timeout_ms => 1000})}
                                      || N <- Names]),
              events = maps:from_list([{N, []} || N <- Names]),
              reference = plexus_overlay_state:new(reference)},
    lists:foldl(fun({A, B}, S) -> peer_up(S, A, B) end, S0,
                [{A, B} || A <- Names, B <- Names, A =/= B]).

peer_up(S, A, B) ->
    run(S, A, plexus_overlay_core:peer_up(core(S, A), B, S#sim.now)).

peer_down(S, A, B) ->
    S#sim{nodes = (S#sim.nodes)#{A => plexus_overlay_core:peer_down(core(S, A), B)}}.

set_busy(S, Peer, Busy) ->
    S#sim{busy = (S#sim.busy)#{Peer => Busy}}.

op(S, N, Op) ->
    run(S, N, plexus_overlay_core:local(core(S, N), Op, S#sim.now)).

flush(S, N) ->
    {Ref, _} = plexus_overlay_state:apply_delta(S#sim.reference,
                                                plexus_overlay_core:batch(core(S, N))),
    run(S#sim{reference = Ref}, N, plexus_overlay_core:flush(core(S, N), S#sim.now)).

%% The canonical bytes of the reference replica.
reference_bytes(#sim{reference = Ref}) ->
    plexus_overlay_state:to_binary(Ref).

ae(S, N) ->
    run(S, N, plexus_overlay_core:anti_entropy(core(S, N), S#sim.now)).

net(#sim{net = Net}) -> Net.

%% Delivers the I-th message in flight (1-based, modulo the count).
deliver(#sim{net = []} = S, _) ->
    S;
deliver(#sim{net = Net} = S, I) ->
    K = (I - 1) rem length(Net) + 1,
    {From, To, Msg} = lists:nth(K, Net),
    S2 = S#sim{net = delete_nth(K, Net)},
    run(S2, To, plexus_overlay_core:handle_msg(core(S2, To), From, Msg, S2#sim.now)).

duplicate(#sim{net = []} = S, _) ->
    S;
duplicate(#sim{net = Net} = S, I) ->
    S#sim{net = Net ++ [lists:nth((I - 1) rem length(Net) + 1, Net)]}.

drop(#sim{net = []} = S, _) ->
    S;
drop(#sim{net = Net} = S, I) ->
    S#sim{net = delete_nth((I - 1) rem length(Net) + 1, Net)}.

%% Lets time pass beyond every session timeout, then flushes, runs anti-entropy on
%% every node and delivers everything, twice (the second round finds nothing).
quiesce(S0) ->
    Names0 = lists:sort(maps:keys(S0#sim.nodes)),
    S = lists:foldl(fun({A, B}, Acc) -> peer_up(Acc, A, B) end, S0,
                    [{A, B} || A <- Names0, B <- Names0, A =/= B,
                               not lists:member(B, plexus_overlay_core:up_peers(core(S0, A)))]),
    lists:foldl(fun(_, Sa) ->
                        Sb = Sa#sim{now = Sa#sim.now + 100000},
                        Names = lists:sort(maps:keys(Sb#sim.nodes)),
                        Sc = lists:foldl(fun(N, X) -> ae(flush(X, N), N) end, Sb, Names),
                        drain(Sc, 100000)
                end, S#sim{busy = #{}}, [1, 2]).

drain_all(S) -> drain(S, 100000).

drain(#sim{net = []} = S, _) -> S;
drain(S, 0) -> error({no_quiescence, length(S#sim.net)});
drain(S, K) -> drain(deliver(S, 1), K - 1).

core(#sim{nodes = Ns}, N) -> maps:get(N, Ns).

bytes(S, N) -> plexus_overlay_state:to_binary(plexus_overlay_core:replica(core(S, N))).

events(#sim{events = E}, N) -> lists:reverse(maps:get(N, E)).

%% The events of N folded into {Entities, Waypoints}: what a subscriber would have.
folded_events(S, N) ->
    lists:foldl(fun({entity_updated, Id, V}, {E, W}) -> {E#{Id => V}, W};
                   ({entity_removed, Id}, {E, W}) -> {maps:remove(Id, E), W};
                   ({waypoint_added, Id, V}, {E, W}) -> {E, W#{Id => V}};
                   ({waypoint_removed, Id}, {E, W}) -> {E, maps:remove(Id, W)}
                end, {#{}, #{}}, events(S, N)).

visible(S, N) ->
    R = plexus_overlay_core:replica(core(S, N)),
    {plexus_overlay_state:entities(R), plexus_overlay_state:waypoints(R)}.

converged(#sim{nodes = Ns} = S) ->
    length(lists:usort([bytes(S, N) || N <- maps:keys(Ns)])) =:= 1.

%% ---------------------------------------------------------------- effects

run(S, N, {Core, Effects}) ->
    lists:foldl(fun(E, Acc) -> effect(Acc, N, E) end,
                S#sim{nodes = (S#sim.nodes)#{N => Core}}, Effects).

effect(S, N, {event, E}) ->
    S#sim{events = maps:update_with(N, fun(L) -> [E | L] end, S#sim.events)};
effect(S, N, {send, To, {delta, _} = Msg}) ->
    case maps:get(To, S#sim.busy, false) of
        true ->
            S#sim{nodes = (S#sim.nodes)#{N => plexus_overlay_core:sent(core(S, N), To, busy)}};
        false ->
            S2 = S#sim{nodes = (S#sim.nodes)#{N => plexus_overlay_core:sent(core(S, N), To, ok)}},
            S2#sim{net = S2#sim.net ++ [{N, To, Msg}]}
    end;
effect(S, N, {send, To, Msg}) ->
    S#sim{net = S#sim.net ++ [{N, To, Msg}]}.

delete_nth(K, L) ->
    {A, [_ | B]} = lists:split(K - 1, L),
    A ++ B.
