%% @doc `make demo', overlay section: a `plexus_overlay' on three nodes. Every node
%% moves its own unit and sets a waypoint; one node is cut off (its distribution
%% connections closed; the overlay never reconnects by itself) and keeps writing
%% while the others do too; when it is connected again, anti-entropy brings all three
%% to the same overlay, which each prints.
-module(plexus_demo_overlay).

-export([run/1]).

-define(OVL, demo_overlay).

-spec run([node()]) -> ok.
run([A, B, C] = Nodes) ->
    io:format("~n== Overlay: entities and waypoints replicated on ~p nodes~n", [length(Nodes)]),
    [{ok, _} = erpc:call(N, plexus_overlay, start,
                         [#{name => ?OVL, peers => Nodes, sync_interval_ms => 100,
                            anti_entropy_interval_ms => 1000}]) || N <- Nodes],
    try
        [ok = erpc:call(N, plexus_overlay, update_entity, [?OVL, {unit, I}, #{x => I, y => 0}])
         || {I, N} <- lists:zip([1, 2, 3], Nodes)],
        ok = erpc:call(A, plexus_overlay, add_waypoint, [?OVL, rally, {10, 10}]),
        wait_same(Nodes),
        show("all connected", Nodes),
        io:format("~n-- ~s is cut off~n", [C]),
        [erpc:call(C, erlang, disconnect_node, [N]) || N <- [A, B]],
        ok = erpc:call(A, plexus_overlay, update_entity, [?OVL, {unit, 1}, #{x => 1, y => 5}]),
        ok = erpc:call(B, plexus_overlay, remove_waypoint, [?OVL, rally]),
        ok = erpc:call(C, plexus_overlay, update_entity, [?OVL, {unit, 3}, #{x => 9, y => 9}]),
        ok = erpc:call(C, plexus_overlay, add_waypoint, [?OVL, hide, {0, 0}]),
        wait_same([A, B]),
        show("while cut off", Nodes),
        io:format("~n-- ~s is back~n", [C]),
        [true = erpc:call(C, net_kernel, connect_node, [N]) || N <- [A, B]],
        Ms = wait_same(Nodes),
        show(io_lib:format("after anti-entropy (~b ms)", [Ms]), Nodes),
        io:format("converged: all ~p overlays have the same bytes~n", [length(Nodes)])
    after
        [catch erpc:call(N, plexus_overlay, stop, [?OVL]) || N <- Nodes]
    end,
    ok.

show(Title, Nodes) ->
    io:format("~n-- ~s~n", [Title]),
    [begin
         Ents = erpc:call(N, plexus_overlay, get_all_entities, [?OVL]),
         Wps = erpc:call(N, plexus_overlay, get_all_waypoints, [?OVL]),
         Digest = erlang:md5(erpc:call(N, plexus_overlay, to_binary, [?OVL])),
         io:format("~-22s entities  ~0p~n~22s waypoints ~0p~n~22s bytes     ~s~n",
                   [atom_to_list(N), lists:sort(maps:to_list(Ents)), "",
                    lists:sort(maps:to_list(Wps)), "", binary:encode_hex(binary:part(Digest, 0, 4))])
     end || N <- Nodes],
    ok.

%% Waits (bounded) until the nodes' overlays have the same bytes; -> ms waited.
wait_same(Nodes) ->
    T0 = erlang:monotonic_time(millisecond),
    wait_same(Nodes, T0, 300).

wait_same(Nodes, T0, 0) ->
    error({overlays_differ, Nodes, erlang:monotonic_time(millisecond) - T0});
wait_same(Nodes, T0, Tries) ->
    case length(lists:usort([erpc:call(N, plexus_overlay, to_binary, [?OVL]) || N <- Nodes])) of
        1 -> erlang:monotonic_time(millisecond) - T0;
        _ -> timer:sleep(50), wait_same(Nodes, T0, Tries - 1)
    end.
