%% @doc Discovery adapter `gossip': sealed UDP beacons (doc/DESIGN.md §6), libcluster
%% Gossip-compatible defaults (UDP port 45892, multicast group 233.252.1.32, TTL 1).
%%
%% Every `broadcast_interval_ms' each node sends a beacon {node name, incarnation,
%% sequence, metadata} sealed with XChaCha20-Poly1305 under a key derived from the
%% shared `secret', with the cluster id and key epoch as associated data (the codec is
%% the C core's, c_src/core/beacon.c, through the NIF; the C node speaks the same
%% format). A received datagram is opened by the NIF: forged, altered, wrong-key,
%% other-cluster and replayed beacons are dropped and counted (see `info' in
%% `plexus_discovery:health_info/1') and change nothing. Nothing from a datagram is
%% made an atom; peers are binaries until the facade connects them (`connect => true').
%% A peer not heard from for `peer_timeout_ms' goes down (`timeout'); a node that stops
%% sends a last beacon marked leaving, and goes down at once (`leaving') where it is
%% heard. Telemetry (`plexus_telemetry'): `[plexus, gossip, beacon]' per datagram
%% received (accepted, own or dropped, with the reason) and `[plexus, gossip,
%% beacon_sent]' per beacon sent.
%%
%% Options (`custom'):
%% <ul>
%% <li>`secret' (binary of >= 16 bytes) or `secret_file' (its contents, trimmed):
%%   required; never logged;</li>
%% <li>`cluster_id' (binary, default `<<"plexus">>'), `key_epoch' (default 0),
%%   `accept_previous_epoch' (default `false', for key rotation);</li>
%% <li>`mode': `multicast' (default), `broadcast' or `unicast';</li>
%% <li>`port' (45892), `multicast_addr' ({233,252,1,32}), `multicast_if' (interface
%%   address, default {0,0,0,0}), `multicast_ttl' (1), `broadcast_addr'
%%   ({255,255,255,255});</li>
%% <li>`bind_ip': address to bind (multicast: the group; otherwise {0,0,0,0});</li>
%% <li>`targets': `[{IP, Port}]' to send to in `unicast' mode (also added in the other
%%   modes);</li>
%% <li>`broadcast_interval_ms' (1000), `peer_timeout_ms' (5 intervals),
%%   `max_senders' (replay table bound, 1024), `max_skew_ms' (60000: a beacon sent
%%   further than this from this node's clock is refused as `stale', so nodes' clocks
%%   must agree that well);</li>
%% <li>`node_name' (binary, default this node's name) and `metadata' (map of binaries)
%%   to announce.</li>
%% </ul>
-module(plexus_discovery_gossip).
-behaviour(plexus_discovery_adapter).

-export([init/1, authenticated/1, handle_info/2, terminate/2, info/1]).

-define(LEAVING, <<"plexus.leaving">>).
-define(ACTIVE_N, 64).

-record(s, {codec :: reference(),
            socket :: gen_udp:socket(),
            port :: inet:port_number(),
            targets :: [{inet:ip_address(), inet:port_number()}],
            name :: binary(),
            incarnation :: pos_integer(),
            seq = 0 :: non_neg_integer(),
            metadata :: #{binary() => binary()},
            interval :: pos_integer(),
            timeout :: pos_integer(),
            peers = #{} :: #{binary() => {integer(), #{binary() => binary()}}},
            sent = 0 :: non_neg_integer(),
            send_errors = 0 :: non_neg_integer(),
            dropped_self = 0 :: non_neg_integer(),
            received = 0 :: non_neg_integer()}).

%% @private
-spec init(plexus_discovery_adapter:config()) -> {ok, #s{}} | {error, term()}.
init(#{custom := C}) ->
    case config(C) of
        {ok, Cfg} -> open(Cfg);
        {error, _} = E -> E
    end.

config(C) ->
    try
        Secret = case {maps:get(secret, C, undefined), maps:get(secret_file, C, undefined)} of
                     {S, _} when is_binary(S) -> S;
                     {undefined, F} when F =/= undefined ->
                         {ok, Bin} = file:read_file(F),
                         string:trim(Bin);
                     _ -> throw(secret_required)
                 end,
        byte_size(Secret) >= 16 orelse throw(secret_too_short),
        Mode = maps:get(mode, C, multicast),
        lists:member(Mode, [multicast, broadcast, unicast]) orelse throw({mode, Mode}),
        Port = maps:get(port, C, 45892),
        Group = maps:get(multicast_addr, C, {233, 252, 1, 32}),
        If = maps:get(multicast_if, C, {0, 0, 0, 0}),
        Targets = maps:get(targets, C, []),
        lists:all(fun({IP, P}) -> is_tuple(IP) andalso is_integer(P) end, Targets)
            orelse throw(targets),
        Interval = maps:get(broadcast_interval_ms, C, 1000),
        Meta = maps:get(metadata, C, #{}),
        is_map(Meta) andalso lists:all(fun is_binary/1, maps:keys(Meta) ++ maps:values(Meta))
            orelse throw(metadata),
        {ok, #{secret => Secret,
               cluster_id => maps:get(cluster_id, C, <<"plexus">>),
               epoch => maps:get(key_epoch, C, 0),
               prev => maps:get(accept_previous_epoch, C, false),
               mode => Mode, port => Port, group => Group, iface => If,
               ttl => maps:get(multicast_ttl, C, 1),
               bcast => maps:get(broadcast_addr, C, {255, 255, 255, 255}),
               bind => maps:get(bind_ip, C, case Mode of multicast -> Group; _ -> {0, 0, 0, 0} end),
               targets => Targets, interval => Interval,
               timeout => maps:get(peer_timeout_ms, C, 5 * Interval),
               max_senders => maps:get(max_senders, C, 1024),
               max_skew_ms => maps:get(max_skew_ms, C, 60000),
               name => maps:get(node_name, C, atom_to_binary(node(), utf8)),
               metadata => Meta}}
    catch
        throw:Why -> {error, {invalid_configuration, {gossip, Why}}};
        _:_ -> {error, {invalid_configuration, gossip}}
    end.

open(#{secret := Secret, cluster_id := Cluster, epoch := Epoch, prev := Prev} = Cfg) ->
    case catch plexus_nif:beacon_new(Secret, Cluster, Epoch, Prev, maps:get(max_senders, Cfg),
                                     maps:get(max_skew_ms, Cfg)) of
        Codec when is_reference(Codec) ->
            Mode = maps:get(mode, Cfg),
            Port = maps:get(port, Cfg),
            %% a burst of beacons must not overflow the default 16 KB receive buffer
            Base = [binary, {active, ?ACTIVE_N}, {reuseaddr, true}, {ip, maps:get(bind, Cfg)},
                    {recbuf, 1 bsl 20}],
            Extra = case Mode of
                        multicast ->
                            [{add_membership, {maps:get(group, Cfg), maps:get(iface, Cfg)}},
                             {multicast_if, maps:get(iface, Cfg)},
                             {multicast_ttl, maps:get(ttl, Cfg)}, {multicast_loop, true}];
                        broadcast ->
                            [{broadcast, true}];
                        unicast ->
                            []
                    end,
            case gen_udp:open(Port, Base ++ Extra) of
                {ok, Sock} ->
                    {ok, LPort} = inet:port(Sock),
                    Targets = case Mode of
                                  multicast -> [{maps:get(group, Cfg), Port}];
                                  broadcast -> [{maps:get(bcast, Cfg), Port}];
                                  unicast -> []
                              end ++ maps:get(targets, Cfg),
                    S = #s{codec = Codec, socket = Sock, port = LPort,
                           targets = lists:usort(Targets), name = maps:get(name, Cfg),
                           incarnation = erlang:system_time(millisecond),
                           metadata = maps:get(metadata, Cfg),
                           interval = maps:get(interval, Cfg), timeout = maps:get(timeout, Cfg)},
                    self() ! {?MODULE, tick},
                    {ok, S};
                {error, R} ->
                    {error, {udp_open, R}}
            end;
        _ ->
            {error, {invalid_configuration, {gossip, bad_codec_parameters}}}
    end.

%% @private
-spec handle_info(term(), #s{}) -> plexus_discovery_adapter:handle_result(#s{}).
handle_info({?MODULE, tick}, S) ->
    S1 = send_beacon(S#s.metadata, S),
    erlang:send_after(S#s.interval, self(), {?MODULE, tick}),
    expire(S1);
handle_info({udp, Sock, IP, Port, Data}, #s{socket = Sock} = S) ->
    receive_beacon(Data, IP, Port, S#s{received = S#s.received + 1});
handle_info({udp_passive, Sock}, #s{socket = Sock} = S) ->
    ok = inet:setopts(Sock, [{active, ?ACTIVE_N}]),
    {ok, S};
handle_info(_Msg, S) ->
    {ok, S}.

send_beacon(Meta, #s{seq = Seq} = S) ->
    case plexus_nif:beacon_seal(S#s.codec, S#s.name, S#s.incarnation, Seq + 1, Meta) of
        Bin when is_binary(Bin) ->
            Errors = length([E || {IP, P} <- S#s.targets,
                                  E <- [gen_udp:send(S#s.socket, IP, P, Bin)], E =/= ok]),
            ok = plexus_telemetry:execute([plexus, gossip, beacon_sent],
                                          #{count => 1, bytes => byte_size(Bin),
                                            send_errors => Errors},
                                          #{port => S#s.port}),
            S#s{seq = Seq + 1, sent = S#s.sent + 1, send_errors = S#s.send_errors + Errors};
        {error, R} ->
            logger:warning("plexus_discovery_gossip: cannot seal a beacon: ~p", [R]),
            S#s{seq = Seq + 1, send_errors = S#s.send_errors + 1}
    end.

receive_beacon(Data, IP, Port, S) ->
    Now = now_ms(),
    Opened = plexus_nif:beacon_open(S#s.codec, Data, Now),
    ok = beacon_event(Opened, Data, S),
    case Opened of
        {ok, {Name, _Inc, _Seq, _Epoch, _Meta}} when Name =:= S#s.name ->
            {ok, S#s{dropped_self = S#s.dropped_self + 1}};
        {ok, {Name, _Inc, _Seq, _Epoch, #{?LEAVING := _}}} ->
            {changes, [{down, Name, leaving}], S#s{peers = maps:remove(Name, S#s.peers)}};
        {ok, {Name, _Inc, _Seq, _Epoch, Meta0}} ->
            Meta = Meta0#{<<"source">> => <<"gossip">>,
                          <<"address">> => iolist_to_binary([inet:ntoa(IP), ":",
                                                              integer_to_list(Port)])},
            Peers = (S#s.peers)#{Name => {Now, Meta}},
            case maps:find(Name, S#s.peers) of
                {ok, {_, Meta}} -> {ok, S#s{peers = Peers}};
                _ -> {changes, [{up, #{id => Name, metadata => Meta}}], S#s{peers = Peers}}
            end;
        {error, _Reason} ->
            %% forged, altered, wrong key, replayed, malformed: counted by the codec
            {ok, S}
    end.

%% `[plexus, gossip, beacon]' (README, "Telemetry"): one per datagram received,
%% `outcome' accepted, own (our own beacon looped back) or dropped (with the codec's
%% `reason': forged, altered, wrong key, replayed, malformed, ...).
beacon_event(Opened, Data, S) ->
    {Outcome, Reason} = case Opened of
                            {ok, {Name, _, _, _, _}} when Name =:= S#s.name -> {own, undefined};
                            {ok, _} -> {accepted, undefined};
                            {error, R} -> {dropped, R}
                        end,
    plexus_telemetry:execute([plexus, gossip, beacon], #{count => 1, bytes => byte_size(Data)},
                             #{outcome => Outcome, reason => Reason, port => S#s.port}).

expire(#s{peers = Peers, timeout = T} = S) ->
    Now = now_ms(),
    {Gone, Live} = maps:fold(fun(N, {Seen, _}, {G, L}) when Now - Seen > T -> {[N | G], L};
                                (N, V, {G, L}) -> {G, L#{N => V}}
                             end, {[], #{}}, Peers),
    case Gone of
        [] -> {ok, S};
        _ -> {changes, [{down, N, timeout} || N <- Gone], S#s{peers = Live}}
    end.

%% Milliseconds since this VM started: monotonic and never negative (the codec wants
%% an unsigned clock; erlang:monotonic_time/1 may be negative).
now_ms() ->
    erlang:convert_time_unit(erlang:monotonic_time() - erlang:system_info(start_time),
                             native, millisecond).

%% @private
-spec terminate(term(), #s{}) -> ok.
terminate(_Reason, S) ->
    _ = send_beacon((S#s.metadata)#{?LEAVING => <<"1">>}, S),
    catch gen_udp:close(S#s.socket),
    ok.

%% @private
-spec info(#s{}) -> map().
info(S) ->
    (plexus_nif:beacon_stats(S#s.codec))#{peers => map_size(S#s.peers), port => S#s.port,
                                          sent => S#s.sent, send_errors => S#s.send_errors,
                                          dropped_self => S#s.dropped_self,
                                          received => S#s.received}.

%% @private
%% Peers come only from beacons sealed with the shared key (forged ones are dropped).
-spec authenticated(term()) -> boolean().
authenticated(_State) -> true.
