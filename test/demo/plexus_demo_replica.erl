%% @doc A demo replica: one process per node holding an OR-Set and an LWW register.
%%
%% It mutates its own replicas, ships each mutation's delta to the other replicas
%% over distribution, and answers anti-entropy: a peer sends its digest, and the full
%% state comes back only when the digests differ. Deltas may arrive in any order or
%% be dropped (the demo drops some on purpose); anti-entropy repairs that.
-module(plexus_demo_replica).

-export([start/1, init/1]).

-record(st, {peers = [] :: [node()], set :: binary(), reg :: binary(), drop = 0 :: non_neg_integer()}).

-spec start([node()]) -> pid().
start(Peers) ->
    Pid = spawn(?MODULE, init, [Peers]),
    true = register(?MODULE, Pid),
    Pid.

-spec init([node()]) -> no_return().
init(Peers) ->
    loop(#st{peers = Peers -- [node()], set = plexus_orset:new(),
             reg = plexus_lww:new(<<"unset">>)}).

loop(St = #st{set = Set, reg = Reg}) ->
    receive
        {mutate, Adds, Removes, Value, DropEvery} ->
            {Set1, Delta} = plexus_orset:apply_delta(Set, [{add_all, Adds}, {remove_all, Removes}]),
            Reg1 = plexus_lww:update(Reg, Value),
            St1 = send_delta(St#st{set = Set1, reg = Reg1}, Delta, Reg1, DropEvery),
            loop(St1);
        {delta, SetDelta, RegState} ->
            loop(St#st{set = plexus_orset:merge(Set, SetDelta), reg = plexus_lww:merge(Reg, RegState)});
        anti_entropy ->
            [{?MODULE, P} ! {digest, node(), plexus_orset:digest(Set), Reg} || P <- St#st.peers],
            loop(St);
        {digest, From, Digest, TheirReg} ->
            %% Only a differing digest costs a full-state transfer.
            case plexus_orset:digest(Set) of
                Digest -> ok;
                _ -> {?MODULE, From} ! {state, Set, Reg}
            end,
            loop(St#st{reg = plexus_lww:merge(Reg, TheirReg)});
        {state, TheirSet, TheirReg} ->
            loop(St#st{set = plexus_orset:merge(Set, TheirSet), reg = plexus_lww:merge(Reg, TheirReg)});
        {report, From} ->
            From ! {report, node(), plexus_orset:to_list(Set), plexus_lww:value(Reg),
                    plexus_orset:digest(Set), St#st.drop},
            loop(St);
        stop ->
            ok
    end.

%% Every DropEvery-th delta is "lost" on the way, to show anti-entropy repairing it.
send_delta(St = #st{peers = Peers, drop = Dropped}, Delta, Reg, DropEvery) ->
    lists:foldl(
      fun(P, Acc = #st{drop = D}) ->
              case DropEvery > 0 andalso erlang:phash2({P, Delta}, DropEvery) =:= 0 of
                  true -> Acc#st{drop = D + 1};
                  false -> {?MODULE, P} ! {delta, Delta, Reg}, Acc
              end
      end, St#st{drop = Dropped}, Peers).
