%% @doc Discovery adapter `epmd': a static list of nodes and/or hosts, checked against
%% each host's epmd (`erl_epmd:names/1'), without connecting to anything. Options
%% (`custom'):
%% <ul>
%% <li>`nodes': node names (atoms, strings or binaries; `seed_peers' are added): a node
%%   is a peer while its name is registered in the epmd of its host;</li>
%% <li>`hosts': host names or addresses: every node registered there is a peer.</li>
%% </ul>
%% This node itself is never a peer. Metadata: `<<"source">> => <<"epmd">>',
%% `<<"port">>' (its distribution port). A host whose epmd cannot be reached makes the
%% sync fail (peers kept) unless another host answered.
-module(plexus_discovery_epmd).
-behaviour(plexus_discovery_adapter).

-export([init/1, authenticated/1, sync/1, info/1]).
-export([parse_node/1]).

-record(s, {nodes :: [{binary(), string()}], hosts :: [string()]}).

%% @private
-spec init(plexus_discovery_adapter:config()) -> {ok, #s{}} | {error, term()}.
init(#{custom := C, seed_peers := Seeds}) ->
    try
        Nodes = [parse_node(N) || N <- maps:get(nodes, C, []) ++ Seeds],
        Hosts = [to_string(H) || H <- maps:get(hosts, C, [])],
        case [N || {error, _} = N <- Nodes] of
            [] -> {ok, #s{nodes = lists:usort([N || {ok, N} <- Nodes]), hosts = lists:usort(Hosts)}};
            [{error, E} | _] -> {error, {invalid_configuration, E}}
        end
    catch _:R -> {error, {invalid_configuration, R}}
    end.

%% @doc `{ok, {NameBin, HostString}}' for a node name `name@host'.
-spec parse_node(atom() | string() | binary()) -> {ok, {binary(), string()}} | {error, term()}.
parse_node(N) when is_atom(N) -> parse_node(atom_to_binary(N, utf8));
parse_node(N) when is_list(N) -> parse_node(unicode:characters_to_binary(N));
parse_node(N) when is_binary(N) ->
    case binary:split(N, <<"@">>, [global]) of
        [Name, Host] when Name =/= <<>>, Host =/= <<>> -> {ok, {Name, binary_to_list(Host)}};
        _ -> {error, {bad_node, N}}
    end.

to_string(H) when is_atom(H) -> atom_to_list(H);
to_string(H) when is_binary(H) -> binary_to_list(H);
to_string(H) when is_list(H) -> H;
to_string(H) when is_tuple(H) -> inet:ntoa(H).

%% @private
-spec sync(#s{}) -> {ok, [plexus_discovery_adapter:peer()]} | {error, term()}.
sync(#s{nodes = Nodes, hosts = Hosts}) ->
    AllHosts = lists:usort(Hosts ++ [H || {_, H} <- Nodes]),
    Answers = [{H, names(H)} || H <- AllHosts],
    Ok = [{H, Ns} || {H, {ok, Ns}} <- Answers],
    Failed = [{H, R} || {H, {error, R}} <- Answers],
    case {Ok, Failed} of
        {[], [_ | _]} ->
            {error, {epmd_unreachable, Failed}};
        _ ->
            Self = atom_to_binary(node(), utf8),
            Registered = maps:from_list([{{list_to_binary(N), H}, P} || {H, Ns} <- Ok, {N, P} <- Ns]),
            FromHosts = [{N, H} || {{N, H}, _} <- maps:to_list(Registered), lists:member(H, Hosts)],
            Wanted = lists:usort(FromHosts ++ [NH || NH <- Nodes, maps:is_key(NH, Registered)]),
            {ok, [#{id => Id,
                    metadata => #{<<"source">> => <<"epmd">>,
                                  <<"port">> => integer_to_binary(maps:get({N, H}, Registered))}}
                  || {N, H} <- Wanted,
                     Id <- [<<N/binary, "@", (list_to_binary(H))/binary>>],
                     Id =/= Self]}
    end.

names(Host) ->
    try erl_epmd:names(Host) of
        {ok, Ns} -> {ok, Ns};
        {error, R} -> {error, R}
    catch _:R -> {error, R}
    end.

%% @private
-spec info(#s{}) -> map().
info(#s{nodes = N, hosts = H}) -> #{nodes => length(N), hosts => H}.

%% @private
%% Peers are names the operator configured, or names registered with the epmd of a
%% host the operator listed.
-spec authenticated(term()) -> boolean().
authenticated(_State) -> true.
