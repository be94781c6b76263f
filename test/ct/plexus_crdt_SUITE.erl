%% @doc CRDT states across real BEAM nodes (OTP `peer', 127.0.0.1 only).
%%
%% OR-Set states are plain terms (v2) and LWW registers plain binaries, so they travel
%% over distribution, to disk and back, and every node merges them to the same state.
%% Deltas are delivered out of order, twice or not at all, then a digest-driven
%% anti-entropy round repairs the losses. Two replicas on two nodes converge through
%% the Merkle exchange shipping a small part of the state, and a v1 state stored by
%% the C path is read and changed on another node.
-module(plexus_crdt_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([states_cross_nodes/1, deltas_shuffled_then_anti_entropy/1, lww_across_nodes/1,
         state_survives_disk/1, v1_state_read_on_another_node/1,
         merkle_anti_entropy_across_nodes/1]).

all() ->
    [states_cross_nodes, deltas_shuffled_then_anti_entropy, lww_across_nodes,
     state_survives_disk, v1_state_read_on_another_node, merkle_anti_entropy_across_nodes].

init_per_suite(Config) ->
    ok = ensure_distributed(),
    Peers = [start_peer(Name) || Name <- [crdt_a, crdt_b, crdt_c]],
    [{peers, Peers} | Config].

end_per_suite(Config) ->
    [peer:stop(P) || {P, _} <- ?config(peers, Config)],
    ok.

nodes_of(Config) -> [N || {_, N} <- ?config(peers, Config)].

%% Each node builds a state from a shared one; every node merges all of them to
%% identical bytes. Node 1 removes {n, 7} while node 2 re-adds it concurrently: the
%% add wins. Node 3 removes {n, 8} and nobody re-adds it: it stays removed.
states_cross_nodes(Config) ->
    Nodes = [N1, N2, N3] = nodes_of(Config),
    Shared = erpc:call(N1, fun() ->
                                   plexus_orset:add_all(plexus_orset:new(),
                                                        [{n, I} || I <- lists:seq(1, 50)])
                           end),
    Edit = fun(N, F) -> erpc:call(N, fun() -> F(plexus_orset:add(Shared, node())) end) end,
    States = [Edit(N1, fun(S) -> plexus_orset:remove(S, {n, 7}) end),
              Edit(N2, fun(S) -> plexus_orset:add(S, {n, 7}) end),
              Edit(N3, fun(S) -> plexus_orset:remove(S, {n, 8}) end)],
    Merged = [erpc:call(N, plexus_orset, merge, [States]) || N <- Nodes],
    [M | _] = Merged,
    ?assert(lists:all(fun(X) -> X =:= M end, Merged)),
    Digests = lists:usort([erpc:call(N, plexus_orset, digest, [M]) || N <- Nodes]),
    ?assertEqual(1, length(Digests)),
    Value = plexus_orset:to_list(M),
    ?assert(lists:member({n, 7}, Value)),
    ?assertNot(lists:member({n, 8}, Value)),
    [?assert(lists:member(N, Value)) || N <- Nodes],
    ?assertEqual(49 + 3, length(Value)),
    ok.

%% Random delivery: every delta goes to every other node in a shuffled order, some
%% twice, some never; then one anti-entropy round (digest compare, full state on
%% mismatch) makes every replica equal to the merge of everything.
deltas_shuffled_then_anti_entropy(Config) ->
    Nodes = nodes_of(Config),
    rand:seed(exsss, {7, 11, 13}),
    Deltas = lists:append(
               [erpc:call(N, fun() -> make_deltas(40) end) || N <- Nodes]),
    %% What each node ends up receiving: a shuffled, lossy, duplicating stream.
    Deliveries = [{N, shuffle(lossy_dup(Deltas))} || N <- Nodes],
    Replicas = [{N, erpc:call(N, fun() -> lists:foldl(fun(D, S) -> plexus_orset:merge(S, D) end,
                                                       plexus_orset:new(), Ds) end)}
                || {N, Ds} <- Deliveries],
    Full = plexus_orset:merge(Deltas),
    %% anti-entropy: compare digests with the full state, repair where they differ
    Repaired = [case erpc:call(N, plexus_orset, digest, [S]) =:= plexus_orset:digest(Full) of
                    true -> S;
                    false -> erpc:call(N, plexus_orset, merge, [S, Full])
                end || {N, S} <- Replicas],
    [?assertEqual(Full, R) || R <- Repaired],
    ok.

make_deltas(K) ->
    {_, Deltas} =
        lists:foldl(fun(_, {S, Acc}) ->
                            Op = case rand:uniform(3) of
                                     3 -> {remove, {e, rand:uniform(20)}};
                                     _ -> {add, {e, rand:uniform(20)}}
                                 end,
                            {S1, D} = plexus_orset:apply_delta(S, [Op]),
                            {S1, [D | Acc]}
                    end, {plexus_orset:new(), []}, lists:seq(1, K)),
    Deltas.

lossy_dup(Ds) ->
    lists:append([case rand:uniform(10) of
                      1 -> [];       % lost
                      2 -> [D, D];   % duplicated
                      _ -> [D]
                  end || D <- Ds]).

shuffle(L) -> [X || {_, X} <- lists:sort([{rand:uniform(), X} || X <- L])].

%% LWW: concurrent writes on three nodes; every node picks the same winner.
lww_across_nodes(Config) ->
    Nodes = nodes_of(Config),
    Regs = [erpc:call(N, fun() -> plexus_lww:update(plexus_lww:new(start), {written_by, node()}) end)
            || N <- Nodes],
    Winners = lists:usort([erpc:call(N, plexus_lww, merge, [Regs]) || N <- Nodes]),
    ?assertEqual(1, length(Winners)),
    [W] = Winners,
    ?assertMatch({written_by, _}, plexus_lww:value(W)),
    %% a later local write wins over everything merged so far
    Later = erpc:call(hd(Nodes), fun() -> plexus_lww:update(plexus_lww:merge(Regs), last) end),
    ?assertEqual(last, plexus_lww:value(plexus_lww:merge([Later | Regs]))),
    ok.

%% A state written to disk on one node is read back and validated on another.
state_survives_disk(Config) ->
    [A, B | _] = nodes_of(Config),
    File = filename:join(?config(priv_dir, Config), "set.bin"),
    S = erpc:call(A, fun() -> plexus_orset:add_all(plexus_orset:new(), lists:seq(1, 1000)) end),
    ok = erpc:call(A, file, write_file, [File, plexus_orset:to_binary(S)]),
    {ok, Bin} = erpc:call(B, file, read_file, [File]),
    {ok, S2} = erpc:call(B, plexus_orset, from_binary, [Bin]),
    ?assertEqual(1000, erpc:call(B, plexus_orset, size, [S2])),
    ?assert(plexus_orset:equal(S, S2)),
    ok.

%% A v1 state written by the C path on one node is read on another, changed there
%% (passed as it is, or read first), and written back as version 2.
v1_state_read_on_another_node(Config) ->
    [A, B | _] = nodes_of(Config),
    File = filename:join(?config(priv_dir, Config), "set_v1.bin"),
    V1 = erpc:call(A, fun() ->
                              plexus_orset_v1:add_all(plexus_orset_v1:new(), lists:seq(1, 500))
                      end),
    ok = file:write_file(File, V1),
    {S, Added, V2Bin, Back} =
        erpc:call(B, fun() ->
                             {ok, Bin} = file:read_file(File),
                             {ok, Set} = plexus_orset:from_binary(Bin),
                             {Set, plexus_orset:add(Bin, extra), plexus_orset:to_binary(Bin),
                              plexus_orset:to_v1(Set)}
                     end),
    ?assertEqual(V1, Back),
    ?assertEqual(500, plexus_orset:size(S)),
    ?assertEqual(plexus_orset:add(S, extra, B), Added),
    ?assertMatch(<<2, $S, _/binary>>, V2Bin),
    ?assertEqual({ok, S}, plexus_orset:from_binary(V2Bin)),
    ok.

%% Two replicas of 20,000 elements, each held by a process on its own node, differ in
%% 7 elements. The Merkle exchange (README: "Anti-entropy") sends summaries and
%% slices between them; both end with the merge, and far fewer bytes cross than one
%% full state.
merkle_anti_entropy_across_nodes(Config) ->
    [A, B | _] = nodes_of(Config),
    MakeA = fun() -> plexus_orset:add_all(base(20000), [x, y, z], a) end,
    MakeB = fun() -> plexus_orset:remove_all(base(20000), [1, 2, 3, 4]) end,
    PA = holder(A, MakeA),
    PB = holder(B, MakeB),
    try
        Sum = ask(PA, fun(S) -> plexus_orset:digest_tree(S) end),
        {Ship, Bytes, Rounds} = descend({PA, PB}, b, Sum, [], wire(Sum), 1),
        SliceA = ask(PA, fun(S) -> plexus_orset:missing(S, Ship) end),
        SliceB = ask(PB, fun(S) -> plexus_orset:missing(S, Ship) end),
        ok = change(PA, fun(S) -> plexus_orset:merge_missing(S, SliceB) end),
        ok = change(PB, fun(S) -> plexus_orset:merge_missing(S, SliceA) end),
        Merged = plexus_orset:merge(MakeA(), MakeB()),
        ?assertEqual(Merged, ask(PA, fun(S) -> S end)),
        ?assertEqual(Merged, ask(PB, fun(S) -> S end)),
        Total = Bytes + byte_size(SliceA) + byte_size(SliceB),
        Full = byte_size(plexus_orset:to_binary(Merged)),
        ct:pal("Merkle exchange: ~b bytes in ~b rounds, full state ~b bytes",
               [Total, Rounds, Full]),
        ?assert(Total * 10 < Full)
    after
        [P ! stop || P <- [PA, PB]]
    end,
    ok.

base(N) ->
    plexus_orset:add_all(plexus_orset:new(), lists:seq(1, N), base).

%% One protocol step on side Turn: diff the other side's summaries; descend where
%% both have branches, collect the paths to ship. -> {Ship, BytesSent, Rounds}.
descend(Pids, Turn, Sums, Ship, Bytes, Rounds) ->
    Self = side(Turn, Pids),
    {Descend, Ship1} = ask(Self, fun(S) -> plexus_orset:diff(S, Sums) end),
    Ship2 = lists:usort(Ship ++ Ship1),
    case Descend of
        [] ->
            {Ship2, Bytes, Rounds};
        _ ->
            Reply = ask(Self, fun(S) -> plexus_orset:summary(S, Descend) end),
            descend(Pids, other(Turn), Reply, Ship2, Bytes + wire({Reply, Ship1}), Rounds + 1)
    end.

side(a, {PA, _}) -> PA;
side(b, {_, PB}) -> PB.

other(a) -> b;
other(b) -> a.

wire(Term) -> byte_size(term_to_binary(Term)).

%% A process on node N holding the replica Make() builds there.
holder(N, Make) ->
    erpc:call(N, erlang, spawn, [fun() -> hold(Make()) end]).

hold(S) ->
    receive
        {ask, From, F} -> From ! {self(), F(S)}, hold(S);
        {change, From, F} -> From ! {self(), ok}, hold(F(S));
        stop -> ok
    end.

ask(Pid, F) ->
    Pid ! {ask, self(), F},
    receive {Pid, Reply} -> Reply end.

change(Pid, F) ->
    Pid ! {change, self(), F},
    receive {Pid, Reply} -> Reply end.

%% ------------------------------------------------------------------ helpers

ensure_distributed() ->
    case node() of
        nonode@nohost ->
            os:putenv("ERL_EPMD_ADDRESS", "127.0.0.1"),
            {ok, _} = net_kernel:start(['plexus_ct@127.0.0.1', longnames]),
            ok;
        _ -> ok
    end.

start_peer(Name) ->
    %% Not start_link: init_per_suite runs in a process that exits; end_per_suite stops them.
    {ok, P, N} = peer:start(#{name => Name, host => "127.0.0.1", longnames => true,
                              args => plexus_test_nodes:code_path_args()
                                  ++ ["-kernel", "inet_dist_use_interface", "{127,0,0,1}"]}),
    {P, N}.
