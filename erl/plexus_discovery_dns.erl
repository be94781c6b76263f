%% @doc Discovery adapter `dns': peers from DNS records, like libcluster's DNSPoll and
%% Kubernetes.DNSSRV strategies. Options (`custom'):
%% <ul>
%% <li>`query' (required): the name to resolve, e.g. `"app.internal"' or
%%   `"_erlang._tcp.app.internal"';</li>
%% <li>`type': `a' (default), `aaaa', `srv', or a list of them;</li>
%% <li>`basename' (required for A/AAAA, optional for SRV): the node basename; a record
%%   for address IP gives the peer `<<"basename@IP">>', an SRV record for target T gives
%%   `<<"basename@T">>' (the first label of T when no basename is given);</li>
%% <li>`nameservers': `[{IP, Port}]' to ask instead of the system resolver;</li>
%% <li>`timeout_ms': per query (default 2000).</li>
%% </ul>
%% Answers are validated record by record: records of another type, malformed data,
%% bad host names are dropped; a failed query (timeout, SERVFAIL, REFUSED, a reply
%% that does not parse) fails the sync and no peer is lost; NXDOMAIN means no peers. Nothing from DNS becomes an atom.
%% Metadata: `<<"source">> => <<"dns">>', `<<"address">>' (A/AAAA) or `<<"port">>',
%% `<<"priority">>', `<<"weight">>' (SRV).
-module(plexus_discovery_dns).
-behaviour(plexus_discovery_adapter).

-export([init/1, authenticated/1, sync/1, info/1]).
-export([peers_from_answers/3, valid_hostname/1]).

-record(s, {query :: string(),
            types :: [a | aaaa | srv],
            basename :: binary() | undefined,
            nameservers :: [{inet:ip_address(), inet:port_number()}] | undefined,
            timeout :: pos_integer()}).

%% @private
-spec init(plexus_discovery_adapter:config()) -> {ok, #s{}} | {error, term()}.
%% A required option that is missing is named; any other bad option gives the options.
init(#{custom := C}) when not is_map_key(query, C) ->
    {error, {invalid_configuration, {dns, {missing, query}}}};
init(#{custom := C}) ->
    try
        Query = to_list(maps:get(query, C)),
        true = valid_hostname(list_to_binary(string:trim(Query, trailing, "."))),
        Types = case maps:get(type, C, a) of
                    L when is_list(L) -> L;
                    T -> [T]
                end,
        true = Types =/= [] andalso lists:all(fun(T) -> lists:member(T, [a, aaaa, srv]) end, Types),
        Base = case maps:get(basename, C, undefined) of
                   undefined -> undefined;
                   B -> to_bin(B)
               end,
        true = Base =:= undefined orelse valid_basename(Base),
        true = Base =/= undefined orelse Types =:= [srv],
        NS = maps:get(nameservers, C, undefined),
        true = NS =:= undefined orelse
            lists:all(fun({IP, P}) -> is_tuple(IP) andalso is_integer(P) end, NS),
        Timeout = maps:get(timeout_ms, C, 2000),
        true = is_integer(Timeout) andalso Timeout > 0,
        {ok, #s{query = Query, types = Types, basename = Base, nameservers = NS,
                timeout = Timeout}}
    catch _:_ ->
            {error, {invalid_configuration, {dns, C}}}
    end.

%% @private
-spec sync(#s{}) -> {ok, [plexus_discovery_adapter:peer()]} | {error, term()}.
sync(#s{query = Q, types = Types, timeout = T} = S) ->
    Opts = [{timeout, T}, {retry, 1}, {recurse, true}]
        ++ case S#s.nameservers of
               undefined -> [];
               NS -> [{nameservers, NS}]
           end,
    Results = [{Type, query(Q, Type, Opts, T)} || Type <- Types],
    case [{Type, R} || {Type, {error, R}} <- Results] of
        [] ->
            Peers = lists:append([peers_from_answers(Type, Ans, S#s.basename)
                                  || {Type, {ok, Ans}} <- Results]),
            {ok, dedupe(Peers)};
        Errors ->
            {error, {dns, Errors}}
    end.

query(Name, Type, Opts, Timeout) ->
    try inet_res:resolve(Name, in, Type, Opts, Timeout * 2) of
        {ok, Msg} ->
            {ok, [{inet_dns:rr(RR, type), inet_dns:rr(RR, data)} || RR <- inet_dns:msg(Msg, anlist)]};
        {error, nxdomain} ->
            {ok, []}; %% the name is gone: no peers (a failure would keep stale ones)
        {error, {nxdomain, _}} ->
            {ok, []};
        {error, R} ->
            {error, R}
    catch C:R ->
            {error, {C, R}}
    end.

%% @doc Peers from `[{Type, Data}]' answers of a query of type Type: records of other
%% types and malformed data are dropped.
-spec peers_from_answers(a | aaaa | srv, [{atom(), term()}], binary() | undefined) ->
    [plexus_discovery_adapter:peer()].
peers_from_answers(Type, Answers, Base) ->
    lists:filtermap(fun({T, Data}) when T =:= Type -> peer(Type, Data, Base);
                       (_) -> false
                    end, Answers).

peer(a, {A, B, C, D} = IP, Base) when is_binary(Base) ->
    case lists:all(fun(X) -> is_integer(X) andalso X >= 0 andalso X =< 255 end, [A, B, C, D]) of
        true -> addr_peer(IP, Base);
        false -> false
    end;
peer(aaaa, IP, Base) when is_binary(Base), is_tuple(IP), tuple_size(IP) =:= 8 ->
    case lists:all(fun(X) -> is_integer(X) andalso X >= 0 andalso X =< 65535 end,
                   tuple_to_list(IP)) of
        true -> addr_peer(IP, Base);
        false -> false
    end;
peer(srv, {Prio, Weight, Port, Target}, Base)
  when is_integer(Prio), is_integer(Weight), is_integer(Port), Port >= 0, Port =< 65535,
       is_list(Target) ->
    T = try list_to_binary(string:trim(Target, trailing, ".")) catch _:_ -> <<>> end,
    Name = case Base of
               undefined -> hd(binary:split(T, <<".">>));
               _ -> Base
           end,
    case valid_hostname(T) andalso valid_basename(Name) of
        true ->
            {true, #{id => <<Name/binary, "@", T/binary>>,
                     metadata => #{<<"source">> => <<"dns">>,
                                   <<"port">> => integer_to_binary(Port),
                                   <<"priority">> => integer_to_binary(Prio),
                                   <<"weight">> => integer_to_binary(Weight)}}};
        false ->
            false
    end;
peer(_, _, _) ->
    false.

addr_peer(IP, Base) ->
    Addr = list_to_binary(inet:ntoa(IP)),
    {true, #{id => <<Base/binary, "@", Addr/binary>>,
             metadata => #{<<"source">> => <<"dns">>, <<"address">> => Addr}}}.

dedupe(Peers) ->
    maps:values(maps:from_list([{Id, P} || #{id := Id} = P <- Peers])).

%% @doc A DNS host name: labels of 1..63 letters, digits, hyphens (and underscores,
%% as SRV names use), at most 253 bytes.
-spec valid_hostname(binary()) -> boolean().
valid_hostname(H) when is_binary(H), byte_size(H) > 0, byte_size(H) =< 253 ->
    lists:all(fun(L) -> byte_size(L) > 0 andalso byte_size(L) =< 63 andalso
                            lists:all(fun(C) -> (C >= $a andalso C =< $z) orelse
                                                    (C >= $A andalso C =< $Z) orelse
                                                    (C >= $0 andalso C =< $9) orelse
                                                    C =:= $- orelse C =:= $_
                                      end, binary_to_list(L))
              end, binary:split(H, <<".">>, [global]));
valid_hostname(_) ->
    false.

valid_basename(B) when is_binary(B), byte_size(B) > 0, byte_size(B) =< 64 ->
    lists:all(fun(C) -> (C >= $a andalso C =< $z) orelse (C >= $A andalso C =< $Z) orelse
                            (C >= $0 andalso C =< $9) orelse C =:= $- orelse C =:= $_
              end, binary_to_list(B));
valid_basename(_) ->
    false.

%% @private
-spec info(#s{}) -> map().
info(#s{query = Q, types = T}) -> #{query => list_to_binary(Q), types => T}.

to_list(B) when is_binary(B) -> binary_to_list(B);
to_list(L) when is_list(L) -> L;
to_list(A) when is_atom(A) -> atom_to_list(A).

to_bin(B) when is_binary(B) -> B;
to_bin(L) when is_list(L) -> list_to_binary(L);
to_bin(A) when is_atom(A) -> atom_to_binary(A, utf8).

%% @private
%% Peers come from the operator's DNS (use a resolver you trust: DNS is not signed).
-spec authenticated(term()) -> boolean().
authenticated(_State) -> true.
