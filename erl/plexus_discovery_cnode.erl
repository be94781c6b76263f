%% @doc Discovery adapter `cnode': the peers the C node (`priv/plexus_cnode',
%% doc/DESIGN.md §4) watches, through `plexus_cnode' in this node.
%%
%% The coupling is kept to two calls and one message shape (the assumption this
%% adapter makes of `plexus_cnode'):
%% <ul>
%% <li>`Module:subscribe() -> ok' subscribes the caller, which then receives
%%   `{plexus_cnode, Event}' with Event `{node_up | healthy | suspect, NodeBin, Info}'
%%   or `{node_down, NodeBin, Info | Reason}' (Info a map, possibly with `reason');</li>
%% <li>`Module:snapshot() -> {ok, [#{node := NodeBin, status := Status}]}' lists what
%%   the C node knows; nodes whose status is `healthy' or `suspect' are peers.</li>
%% </ul>
%% Options (`custom'): `module' (default `plexus_cnode'), `resubscribe_ms' (1000: when
%% the `plexus_cnode' process goes away, subscribe again this often until it is back;
%% health shows it meanwhile). This node itself, which the C node watches too, is not
%% a peer. Metadata: `<<"source">> => <<"cnode">>',
%% `<<"status">>'. Node names stay binaries.
-module(plexus_discovery_cnode).
-behaviour(plexus_discovery_adapter).

-export([init/1, authenticated/1, sync/1, handle_info/2, info/1]).

-record(s, {mod :: module(), mref :: reference() | undefined, retry :: pos_integer(),
            self :: binary(), events = 0 :: non_neg_integer()}).

%% @private
-spec init(plexus_discovery_adapter:config()) -> {ok, #s{}} | {error, term()}.
init(#{custom := C}) ->
    Mod = maps:get(module, C, plexus_cnode),
    S = #s{mod = Mod, retry = maps:get(resubscribe_ms, C, 1000),
           self = atom_to_binary(node(), utf8)},
    case subscribe(S) of
        {ok, S1} -> {ok, S1};
        {error, R} -> {error, {cnode_unavailable, R}}
    end.

subscribe(#s{mod = Mod} = S) ->
    try Mod:subscribe() of
        ok ->
            MRef = case whereis(Mod) of
                       Pid when is_pid(Pid) -> erlang:monitor(process, Pid);
                       undefined -> undefined
                   end,
            {ok, S#s{mref = MRef}};
        Other ->
            {error, Other}
    catch C:R -> {error, {C, R}}
    end.

%% @private
-spec sync(#s{}) -> {ok, [plexus_discovery_adapter:peer()]} | {error, term()}.
sync(#s{mod = Mod}) ->
    try Mod:snapshot() of
        {ok, L} when is_list(L) ->
            Self = atom_to_binary(node(), utf8),
            {ok, [peer(N, St) || #{node := N, status := St} <- L, is_binary(N), N =/= Self,
                                 St =:= healthy orelse St =:= suspect]};
        {error, R} -> {error, R};
        Other -> {error, {bad_snapshot, Other}}
    catch C:R -> {error, {C, R}}
    end.

%% @private
-spec handle_info(term(), #s{}) -> plexus_discovery_adapter:handle_result(#s{}).
handle_info({plexus_cnode, {_Kind, N, _Info}}, S) when N =:= S#s.self ->
    {ok, S}; %% the C node watches this node too: not a peer of itself
handle_info({plexus_cnode, {Kind, N, _Info}}, S)
  when is_binary(N), (Kind =:= node_up orelse Kind =:= healthy) ->
    {changes, [{up, peer(N, healthy)}], bump(S)};
handle_info({plexus_cnode, {suspect, N, _Info}}, S) when is_binary(N) ->
    {changes, [{up, peer(N, suspect)}], bump(S)};
handle_info({plexus_cnode, {node_down, N, Info}}, S) when is_binary(N) ->
    Reason = case Info of
                 #{reason := R} -> R;
                 M when is_map(M) -> down;
                 R -> R
             end,
    {changes, [{down, N, Reason}], bump(S)};
handle_info({plexus_cnode, _Other}, S) ->
    {ok, S};
handle_info({'DOWN', MRef, process, _, Why}, #s{mref = MRef} = S) ->
    erlang:send_after(S#s.retry, self(), {?MODULE, resubscribe}),
    {error, {cnode_down, Why}, S#s{mref = undefined}};
handle_info({?MODULE, resubscribe}, S) ->
    case subscribe(S) of
        {ok, S1} ->
            {ok, S1};
        {error, R} ->
            erlang:send_after(S#s.retry, self(), {?MODULE, resubscribe}),
            {error, {cnode_unavailable, R}, S}
    end;
handle_info(_Msg, S) ->
    {ok, S}.

bump(S) -> S#s{events = S#s.events + 1}.

peer(N, Status) ->
    #{id => N, metadata => #{<<"source">> => <<"cnode">>,
                             <<"status">> => atom_to_binary(Status, utf8)}}.

%% @private
-spec info(#s{}) -> map().
info(S) -> #{module => S#s.mod, events => S#s.events, subscribed => S#s.mref =/= undefined}.

%% @private
%% Peers are nodes the C node (cookie-authenticated) reached over distribution.
-spec authenticated(term()) -> boolean().
authenticated(_State) -> true.
