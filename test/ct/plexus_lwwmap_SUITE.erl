%% @doc plexus_lwwmap across real BEAM nodes (OTP `peer', 127.0.0.1 only): the
%% README's anti-entropy exchange, the peer's map held by a process on the other
%% node, every message a plain term or binary over distribution; and deltas sent with
%% `!' and merged in a shuffled, duplicated order.
-module(plexus_lwwmap_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([anti_entropy_over_distribution/1, deltas_over_distribution/1]).
-export([overlay/2]).

-define(M, plexus_lwwmap).

all() ->
    [anti_entropy_over_distribution, deltas_over_distribution].

init_per_suite(Config) ->
    ok = ensure_distributed(),
    Name = list_to_atom("lm_peer_" ++ integer_to_list(erlang:unique_integer([positive]))
                        ++ "_" ++ os:getpid()),
    {ok, P, N} = peer:start(#{name => Name, host => "127.0.0.1", longnames => true,
                              args => plexus_test_nodes:code_path_args()
                                  ++ ["-kernel", "inet_dist_use_interface", "{127,0,0,1}"]}),
    [{peer, {P, N}} | Config].

end_per_suite(Config) ->
    {P, _} = ?config(peer, Config),
    peer:stop(P),
    ok.

anti_entropy_over_distribution(Config) ->
    {_, Node} = ?config(peer, Config),
    Base = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, 3000)], a),
    Mine = ?M:remove(?M:put_all(Base, [{I, mine} || I <- lists:seq(1, 3)], a), 2999),
    Theirs = ?M:put(Base, {unit, 1}, theirs, b),
    Overlay = spawn(Node, ?MODULE, overlay, [Theirs, undefined]),
    Mine2 = sync(Mine, Overlay),
    Theirs2 = call(Overlay, get),
    Overlay ! stop,
    ?assertEqual(?M:to_binary(?M:merge(Mine, Theirs)), ?M:to_binary(Mine2)),
    ?assertEqual(?M:to_binary(Mine2), ?M:to_binary(Theirs2)),
    ?assertEqual({ok, theirs}, ?M:get(Mine2, {unit, 1})),
    ?assertEqual({ok, mine}, erpc:call(Node, ?M, get, [Theirs2, 2])),
    ok.

%% Deltas made here travel with `!' to the other node, arrive shuffled and twice;
%% the other node's replica ends byte-identical to ours.
deltas_over_distribution(Config) ->
    {_, Node} = ?config(peer, Config),
    {Map, Deltas} = lists:foldl(
                      fun(I, {M, Ds}) ->
                              {M2, D} = case I rem 4 of
                                            0 -> ?M:remove_delta(M, I - 1);
                                            _ -> ?M:put_delta(M, I rem 50, {v, I}, here)
                                        end,
                              {M2, [D | Ds]}
                      end, {?M:new(), []}, lists:seq(1, 200)),
    Shuffled = [D || {_, D} <- lists:sort([{rand:uniform(), D} || D <- Deltas ++ Deltas])],
    Overlay = spawn(Node, ?MODULE, overlay, [?M:new(), undefined]),
    [Overlay ! {delta, D} || D <- Shuffled],
    There = call(Overlay, get),
    Overlay ! stop,
    ?assertEqual(?M:to_binary(Map), ?M:to_binary(There)),
    ok.

%% ------------------------------------------------------------------ the README's exchange

%% The peer's process: answers one exchange from the snapshot taken at its first diff.
-spec overlay(term(), term()) -> ok.
overlay(Map, Snap) ->
    receive
        {call, From, Ref, {diff, Summary}} ->
            S = case Snap of undefined -> Map; _ -> Snap end,
            From ! {Ref, ?M:diff(S, Summary)},
            overlay(Map, S);
        {call, From, Ref, {missing, Paths}} ->
            From ! {Ref, ?M:missing(Snap, Paths)},
            overlay(Map, Snap);
        {call, From, Ref, {merge_missing, Slice}} ->
            From ! {Ref, ok},
            overlay(?M:merge_missing(Map, Slice), undefined);
        {call, From, Ref, get} ->
            From ! {Ref, Map},
            overlay(Map, Snap);
        {delta, D} ->
            overlay(?M:merge(Map, D), Snap);
        stop ->
            ok
    end.

call(Pid, Msg) ->
    Ref = erlang:monitor(process, Pid),
    Pid ! {call, self(), Ref, Msg},
    receive
        {Ref, Reply} -> erlang:demonitor(Ref, [flush]), Reply;
        {'DOWN', Ref, _, _, Why} -> error({overlay_down, Why})
    end.

sync(Map, Peer) ->
    plexus_ae_sync:client(?M, Map, fun(Msg) -> call(Peer, Msg) end).

ensure_distributed() ->
    case node() of
        nonode@nohost ->
            os:putenv("ERL_EPMD_ADDRESS", "127.0.0.1"),
            {ok, _} = net_kernel:start([list_to_atom("lm_ct_" ++ os:getpid() ++ "@127.0.0.1"),
                                        longnames]),
            ok;
        _ -> ok
    end.
