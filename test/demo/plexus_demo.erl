%% @doc `make demo': plexus on a local three-node cluster on loopback.
%%
%% Starts three BEAM nodes with OTP `peer' (127.0.0.1 only), runs the sections that
%% exist so far, prints what each node sees side by side, and stops every node it
%% started, also when a section fails.
-module(plexus_demo).

-export([main/0]).

-define(NODES, [demo_a, demo_b, demo_c]).

-spec main() -> no_return().
main() ->
    Ebin = [filename:dirname(code:which(M)) || M <- [plexus_orset, ?MODULE]],
    Peers = start_nodes(Ebin),
    Nodes = [N || {_, N} <- Peers],
    Code = try
               crdt_section(Nodes),
               0
           catch Class:Reason:Stack ->
                   io:format("demo failed: ~p:~p~n~p~n", [Class, Reason, Stack]),
                   1
           after
               [peer:stop(P) || {P, _} <- Peers],
               io:format("~nstopped ~p nodes~n", [length(Peers)])
           end,
    erlang:halt(Code).

start_nodes(Ebin) ->
    %% prevent_overlapping_partitions off: the demo stops nodes on purpose.
    Args = lists:append([["-pa", D] || D <- Ebin]) ++
        ["-kernel", "inet_dist_use_interface", "{127,0,0,1}",
         "-kernel", "prevent_overlapping_partitions", "false"],
    [begin
         {ok, P, N} = peer:start_link(#{name => Name, host => "127.0.0.1", longnames => true,
                                        args => Args}),
         {P, N}
     end || Name <- ?NODES].

%% ------------------------------------------------------------------ CRDTs

crdt_section(Nodes) ->
    io:format("~n== CRDTs: an OR-Set and an LWW register replicated on ~p nodes~n", [length(Nodes)]),
    [ok = erpc:call(N, fun() -> plexus_demo_replica:start(Nodes), ok end) || N <- Nodes],
    %% Each node adds its own elements, removes one the others add concurrently, and
    %% writes the register; deltas go out at once, a few are dropped on purpose.
    Plan = lists:zip(Nodes, [{[apple, pear, {fig, 1}], [plum]},
                             {[plum, kiwi, <<"mango">>], [apple]},
                             {[pear, 42, #{lime => 3}], []}]),
    Round = fun(R) ->
                    [{plexus_demo_replica, N} ! {mutate, Adds ++ [{round, R, N}], Removes,
                                                 {written_by, N, round, R}, 3}
                     || {N, {Adds, Removes}} <- Plan]
            end,
    Round(1),
    Round(2),
    timer:sleep(200),
    show("after deltas (some dropped)", Nodes),
    [{plexus_demo_replica, N} ! anti_entropy || N <- Nodes],
    timer:sleep(300),
    Reports = show("after one anti-entropy round", Nodes),
    Digests = lists:usort([D || {_, _, _, D, _} <- Reports]),
    case Digests of
        [_] -> io:format("converged: all ~p replicas have the same digest~n", [length(Nodes)]);
        _ -> error({not_converged, Digests})
    end,
    [{plexus_demo_replica, N} ! stop || N <- Nodes],
    ok.

show(Title, Nodes) ->
    [{plexus_demo_replica, N} ! {report, self()} || N <- Nodes],
    Reports = [receive {report, N, Set, Reg, Digest, Dropped} -> {N, Set, Reg, Digest, Dropped}
               after 5000 -> error({no_report, N}) end || N <- Nodes],
    io:format("~n-- ~s~n", [Title]),
    [io:format("~-22s set(~2b) ~0p~n~22s lww      ~0p~n~22s digest   ~s  (deltas dropped: ~b)~n",
               [atom_to_list(N), length(Set), Set, "", Reg, "", short(Digest), Dropped])
     || {N, Set, Reg, Digest, Dropped} <- Reports],
    Reports.

short(<<D:4/binary, _/binary>>) -> binary:encode_hex(D).
