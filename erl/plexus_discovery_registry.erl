%% @doc Discovery adapter `registry': the client of the TTL membership registry
%% (`plexus_registry' in a BEAM node, or the C node with `--registry'), over UDP in the
%% wire format of include/plexus/registry.h.
%%
%% At start it Announces {peer, addresses, metadata} to every server and re-announces
%% every heartbeat interval the server's Handshake assigned (TTL/3; retrying every
%% second until a Handshake comes). Every `sync_interval_ms' it Queries each server;
%% a complete View replaces what that server said before, a partial one (a sample:
%% the table holds more than one datagram carries) is merged, each entry kept until
%% its remaining TTL runs out. The peers are the union over the servers, without this
%% node. A server that refuses the announce or does not answer a query within
%% `sync_timeout_ms' shows in health; no peer is lost for it. At stop it says BYE.
%% Replies are accepted only from the configured servers. A server answers a query
%% from an address it has not verified with a COOKIE; the adapter keeps it and asks
%% again at once with it (queries are padded so that the COOKIE fits: a server never
%% answers with more bytes than it got).
%%
%% Trust: a VIEW travels unauthenticated, and unsigned announcements may carry any
%% name, so this adapter does not vouch for its peers (`authenticated/1' is false):
%% they are reported as binaries, and `connect => true' never makes atoms of them or
%% connects to them.
%%
%% Options (`custom'): `servers' (required, `[{IP, Port}]'), `peer' (default this
%% node's name), `addrs' (addresses to announce, binaries; default none), `metadata',
%% `ttl_ms' (requested TTL; default the server's), `sign_seed' (a 32-byte Ed25519 seed
%% to sign announcements, see `plexus_registry:keypair/0'), `query_max' (4096),
%% `bind_ip' ({0,0,0,0}). Metadata of a peer: its announced metadata plus
%% `<<"source">> => <<"registry">>' and `<<"addrs">>' (comma-separated).
-module(plexus_discovery_registry).
-behaviour(plexus_discovery_adapter).

-export([init/1, authenticated/1, handle_info/2, terminate/2, info/1]).

-record(srv, {handshake :: map() | undefined,
              cookie = <<>> :: binary(),
              %% queries re-sent for a COOKIE since the last periodic query: at most one,
              %% so a server (or a spoofer) answering COOKIE forever cannot make us loop
              cookie_resends = 0 :: non_neg_integer(),
              refused :: term(),
              entries = #{} :: #{binary() => {integer(), plexus_discovery_adapter:peer()}},
              answered :: integer() | undefined}).
%% PLEXUS_REGISTRY_QUERY_PAD of include/plexus/registry.h: room for a COOKIE answer.
-define(QUERY_PAD, 40).

-record(s, {socket :: gen_udp:socket(),
            servers :: #{{inet:ip_address(), inet:port_number()} => #srv{}},
            peer :: binary(),
            addrs :: [binary()],
            metadata :: #{binary() => binary()},
            ttl :: non_neg_integer(),
            seed :: binary(),
            query_max :: pos_integer(),
            interval :: pos_integer(),
            timeout :: pos_integer(),
            req = 0 :: non_neg_integer(),
            pending = #{} :: #{non_neg_integer() => {inet:ip_address(), inet:port_number()}},
            announce_timer :: reference() | undefined,
            counters = #{} :: #{atom() => non_neg_integer()}}).

%% @private
-spec init(plexus_discovery_adapter:config()) -> {ok, #s{}} | {error, term()}.
init(#{custom := C, sync_interval_ms := Interval, sync_timeout_ms := Timeout}) ->
    try
        Servers = maps:get(servers, C),
        true = Servers =/= [] andalso
            lists:all(fun({IP, P}) -> is_tuple(IP) andalso is_integer(P) end, Servers),
        Peer = maps:get(peer, C, atom_to_binary(node(), utf8)),
        true = is_binary(Peer),
        Seed = maps:get(sign_seed, C, <<>>),
        true = byte_size(Seed) =:= 0 orelse byte_size(Seed) =:= 32,
        Addrs = maps:get(addrs, C, []),
        Meta = maps:get(metadata, C, #{}),
        %% encode once now, so bad options fail the start rather than every announce
        <<_/binary>> = plexus_nif:registry_encode_announce(0, Peer, Addrs, Meta, 0, 0, <<>>),
        {ok, Sock} = gen_udp:open(0, [binary, {active, true}, {recbuf, 1 bsl 20},
                                      {ip, maps:get(bind_ip, C, {0, 0, 0, 0})}]),
        S = #s{socket = Sock, servers = maps:from_list([{Sv, #srv{}} || Sv <- Servers]),
               peer = Peer, addrs = Addrs, metadata = Meta, ttl = maps:get(ttl_ms, C, 0),
               seed = Seed, query_max = maps:get(query_max, C, 4096), interval = Interval,
               timeout = Timeout},
        self() ! {?MODULE, announce},
        self() ! {?MODULE, query},
        {ok, S}
    catch _:R ->
            {error, {invalid_configuration, {registry, R}}}
    end.

%% @private
-spec handle_info(term(), #s{}) -> plexus_discovery_adapter:handle_result(#s{}).
handle_info({?MODULE, announce}, S) ->
    S1 = send_all(fun(Req, _Server) ->
                          plexus_nif:registry_encode_announce(Req, S#s.peer, S#s.addrs,
                                                              S#s.metadata, S#s.ttl,
                                                              erlang:system_time(millisecond),
                                                              S#s.seed)
                  end, announces, S),
    %% the next announce: the shortest heartbeat any server assigned, 1 s until then
    Beats = [maps:get(heartbeat_ms, H) || #srv{handshake = H} <- maps:values(S1#s.servers),
                                           H =/= undefined],
    Next = case Beats of [] -> 1000; _ -> lists:min(Beats) end,
    {ok, S1#s{announce_timer = erlang:send_after(Next, self(), {?MODULE, announce})}};
handle_info({?MODULE, query}, S) ->
    erlang:send_after(S#s.interval, self(), {?MODULE, query}),
    Servers = maps:map(fun(_, Srv) -> Srv#srv{cookie_resends = 0} end, S#s.servers),
    {ok, lists:foldl(fun send_query/2, S#s{servers = Servers}, lists:sort(maps:keys(Servers)))};
handle_info({?MODULE, query_timeout, Req}, S) ->
    case maps:take(Req, S#s.pending) of
        {Server, Rest} -> {error, {query_timeout, Server}, S#s{pending = Rest}};
        error -> {ok, S}
    end;
handle_info({udp, Sock, IP, Port, Data}, #s{socket = Sock} = S) ->
    case maps:find({IP, Port}, S#s.servers) of
        {ok, Srv} -> reply({IP, Port}, Srv, plexus_nif:registry_decode(Data), S);
        error -> {ok, count(unexpected_source, S)}
    end;
handle_info(_Msg, S) ->
    {ok, S}.

%% One QUERY to one server, with the cookie it gave us (if any), padded so that a
%% COOKIE answer fits; its answer is expected within the sync timeout.
send_query({IP, Port} = Server, S) ->
    Req = S#s.req + 1,
    #srv{cookie = Cookie} = maps:get(Server, S#s.servers),
    case plexus_nif:registry_encode_query(Req, S#s.query_max, Cookie, ?QUERY_PAD) of
        Bin when is_binary(Bin) ->
            _ = gen_udp:send(S#s.socket, IP, Port, Bin),
            erlang:send_after(S#s.timeout, self(), {?MODULE, query_timeout, Req}),
            count(queries, S#s{req = Req, pending = (S#s.pending)#{Req => Server}});
        {error, _} ->
            count(encode_errors, S#s{req = Req})
    end.

send_all(Encode, Counter, S) ->
    lists:foldl(fun({IP, Port} = Server, Acc) ->
                        Req = Acc#s.req + 1,
                        case Encode(Req, Server) of
                            Bin when is_binary(Bin) ->
                                _ = gen_udp:send(Acc#s.socket, IP, Port, Bin),
                                count(Counter, Acc#s{req = Req});
                            {error, _} ->
                                count(encode_errors, Acc#s{req = Req})
                        end
                end, S, lists:sort(maps:keys(S#s.servers))).

reply(Server, Srv, {ok, #{type := handshake} = H}, S) ->
    Srv1 = Srv#srv{handshake = maps:with([ttl_ms, heartbeat_ms, server_addrs], H),
                   refused = undefined},
    {ok, count(handshakes, put_srv(Server, Srv1, S))};
reply(Server, Srv, {ok, #{type := cookie, request_id := Req, cookie := Cookie}}, S) ->
    %% the server wants proof that we receive at our address: ask again with it
    case maps:take(Req, S#s.pending) of
        {Server, Pending} when Srv#srv.cookie_resends < 1 ->
            S1 = put_srv(Server, Srv#srv{cookie = Cookie, cookie_resends = 1},
                         count(cookies, S#s{pending = Pending})),
            {ok, send_query(Server, S1)};
        {Server, Pending} ->
            %% refused again at once: keep it for the next periodic query
            {ok, put_srv(Server, Srv#srv{cookie = Cookie},
                         count(cookies_again, S#s{pending = Pending}))};
        _ ->
            {ok, count(stale_replies, S)}
    end;
reply(Server, Srv, {ok, #{type := refused, reason := R}}, S) ->
    {error, {refused, R}, count(refusals, put_srv(Server, Srv#srv{refused = R}, S))};
reply(Server, Srv, {ok, #{type := view, request_id := Req, live_entries := Live,
                          entries := Entries}}, S) ->
    case maps:take(Req, S#s.pending) of
        {Server, Pending} ->
            Now = erlang:monotonic_time(millisecond),
            New = maps:from_list([{P, {Now + Ttl, to_peer(E)}}
                                  || #{peer := P, ttl_ms := Ttl} = E <- Entries,
                                     P =/= S#s.peer]),
            Kept = case length(Entries) >= Live of
                       true -> New; %% complete
                       false -> maps:merge(maps:filter(fun(_, {Exp, _}) -> Exp > Now end,
                                                       Srv#srv.entries), New)
                   end,
            S1 = put_srv(Server, Srv#srv{entries = Kept, answered = Now},
                         count(views, S#s{pending = Pending})),
            {peers, peers(S1, Now), S1};
        _ ->
            {ok, count(stale_replies, S)}
    end;
reply(_Server, _Srv, _Other, S) ->
    {ok, count(bad_replies, S)}.

to_peer(#{peer := P, addrs := Addrs, metadata := M}) ->
    #{id => P, metadata => M#{<<"source">> => <<"registry">>,
                              <<"addrs">> => iolist_to_binary(lists:join(<<",">>, Addrs))}}.

peers(S, Now) ->
    All = lists:append([[P || {Exp, P} <- maps:values(E), Exp > Now]
                        || #srv{entries = E} <- maps:values(S#s.servers)]),
    maps:values(maps:from_list([{Id, P} || #{id := Id} = P <- All])).

put_srv(Server, Srv, S) -> S#s{servers = (S#s.servers)#{Server => Srv}}.

count(K, S) ->
    C = S#s.counters,
    S#s{counters = C#{K => maps:get(K, C, 0) + 1}}.

%% @private
-spec terminate(term(), #s{}) -> ok.
terminate(_Reason, S) ->
    _ = send_all(fun(Req, _Server) ->
                         plexus_nif:registry_encode_bye(Req, S#s.peer,
                                                        erlang:system_time(millisecond), S#s.seed)
                 end, byes, S),
    catch gen_udp:close(S#s.socket),
    ok.

%% @private
-spec info(#s{}) -> map().
info(S) ->
    (S#s.counters)#{servers => [#{server => Sv, handshake => H, refused => R,
                                   entries => map_size(E)}
                                 || {Sv, #srv{handshake = H, refused = R, entries = E}}
                                        <- maps:to_list(S#s.servers)]}.

%% @private
%% Never: a VIEW travels unauthenticated over UDP and unsigned announcements carry any
%% name, so registry peers stay binaries and are never connected.
-spec authenticated(term()) -> boolean().
authenticated(_State) -> false.
