%% @doc Discovery adapter `beam': the peers are the nodes this node is connected to
%% (`net_kernel:monitor_nodes/2' for changes, `nodes/0' on every sync). Works on a
%% node that is not distributed too (no peers). Options (`custom'): `node_type'
%% (`visible', the default, or `all' to include hidden nodes such as C nodes).
%%
%% Metadata: `<<"source">> => <<"beam">>'. A peer goes down with the nodedown reason.
-module(plexus_discovery_beam).
-behaviour(plexus_discovery_adapter).

-export([init/1, authenticated/1, sync/1, handle_info/2, terminate/2, info/1]).

-record(s, {type :: visible | all}).

%% @private
-spec init(plexus_discovery_adapter:config()) -> {ok, #s{}} | {error, term()}.
init(#{custom := C}) ->
    case maps:get(node_type, C, visible) of
        T when T =:= visible; T =:= all ->
            ok = net_kernel:monitor_nodes(true, [nodedown_reason, {node_type, T}]),
            {ok, #s{type = T}};
        Other ->
            {error, {invalid_configuration, {node_type, Other}}}
    end.

%% @private
-spec sync(#s{}) -> {ok, [plexus_discovery_adapter:peer()]}.
sync(#s{type = T}) ->
    Nodes = case T of
                visible -> nodes();
                all -> nodes(connected)
            end,
    {ok, [peer(N) || N <- Nodes]}.

%% @private
-spec handle_info(term(), #s{}) -> plexus_discovery_adapter:handle_result(#s{}).
handle_info({nodeup, N, _Info}, S) ->
    {changes, [{up, peer(N)}], S};
handle_info({nodedown, N, Info}, S) ->
    Reason = proplists:get_value(nodedown_reason, Info, disconnected),
    {changes, [{down, atom_to_binary(N, utf8), Reason}], S};
handle_info(_Msg, S) ->
    {ok, S}.

%% @private
-spec terminate(term(), #s{}) -> ok.
terminate(_Reason, #s{type = T}) ->
    _ = net_kernel:monitor_nodes(false, [nodedown_reason, {node_type, T}]),
    ok.

%% @private
-spec info(#s{}) -> map().
info(#s{type = T}) -> #{node_type => T}.

peer(N) ->
    #{id => atom_to_binary(N, utf8), metadata => #{<<"source">> => <<"beam">>}}.

%% @private
%% Peers are nodes already connected (atoms that exist): distribution authenticated them.
-spec authenticated(term()) -> boolean().
authenticated(_State) -> true.
