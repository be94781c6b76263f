%% PropEr properties of the overlay's pure parts (plexus_overlay_core over the
%% simulated network of plexus_overlay_sim):
%%
%% - convergence under random delivery: three replicas run random entity and
%%   waypoint ops, flushes and anti-entropy rounds while the network delivers,
%%   duplicates, reorders and drops messages at random, a peer is slow at times and
%%   links are cut and healed (peer_down / peer_up);
%%   once the network quiesces (time past every session timeout, one anti-entropy
%%   round, everything delivered) every replica has the same bytes, and they are the
%%   bytes of a reference replica that merged every local change (so no change was
%%   lost on the way, e.g. by a slice whose context covered entries it did not carry);
%% - events match state: on every replica, the events it fired, folded in order from
%%   the empty overlay, give exactly what it shows (entities and waypoints).
%%
%% Run from EUnit (rebar3's proper plugin cannot be fetched offline): proper_test_/0.
-module(prop_plexus_overlay).

-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

-define(SIM, plexus_overlay_sim).
-define(NODES, [a, b, c]).
-define(OPTS, [{numtests, 200}, {max_size, 60}, {to_file, user}]).

proper_test_() ->
    {timeout, 300, ?_assert(proper:quickcheck(prop_converges(), ?OPTS))}.

replica() -> oneof(?NODES).
id() -> range(1, 6).

step() ->
    frequency([{6, {op, replica(), op()}},
               {3, {flush, replica()}},
               {1, {ae, replica()}},
               {8, {deliver, pos_integer()}},
               {2, {duplicate, pos_integer()}},
               {2, {drop, pos_integer()}},
               {1, {busy, replica(), boolean()}},
               {1, {cut, replica(), replica()}},
               {1, {heal, replica(), replica()}}]).

op() ->
    oneof([{update_entity, id(), range(1, 3)},
           {remove_entity, id()},
           {add_waypoint, id(), oneof([x, y, z])},
           {remove_waypoint, id()}]).

prop_converges() ->
    ?FORALL(Steps, list(step()),
            begin
                S = ?SIM:quiesce(lists:foldl(fun run/2, ?SIM:new(?NODES), Steps)),
                Events = [{N, ?SIM:visible(S, N) =:= ?SIM:folded_events(S, N)} || N <- ?NODES],
                Ref = ?SIM:reference_bytes(S) =:= ?SIM:bytes(S, a),
                ?WHENFAIL(io:format(user, "bytes equal: ~p~nequal to the reference: ~p~n"
                                    "events match: ~p~n", [?SIM:converged(S), Ref, Events]),
                          ?SIM:converged(S) andalso Ref
                          andalso lists:all(fun({_, Ok}) -> Ok end, Events))
            end).

run({op, N, Op}, S) -> ?SIM:op(S, N, Op);
run({flush, N}, S) -> ?SIM:flush(S, N);
run({ae, N}, S) -> ?SIM:ae(S, N);
run({deliver, I}, S) -> ?SIM:deliver(S, I);
run({duplicate, I}, S) -> ?SIM:duplicate(S, I);
run({drop, I}, S) -> ?SIM:drop(S, I);
run({busy, N, B}, S) -> ?SIM:set_busy(S, N, B);
run({cut, A, B}, S) when A =/= B -> ?SIM:peer_down(?SIM:peer_down(S, A, B), B, A);
run({heal, A, B}, S) when A =/= B -> ?SIM:peer_up(?SIM:peer_up(S, A, B), B, A);
run(_, S) -> S.
