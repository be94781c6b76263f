%% @doc The TTL membership registry server hosted in a BEAM node (doc/DESIGN.md §5,
%% global_registry parity), on the C core table (c_src/core/registry.c) through the
%% NIF. The C node serves the same protocol with `--registry' (same core code).
%%
%% Clients (the `registry' discovery adapter, `plexus_discovery_registry', or anything
%% speaking the wire format of include/plexus/registry.h) send UDP datagrams:
%% ANNOUNCE {peer, addresses, metadata} is answered with HANDSHAKE {assigned TTL
%% (default 90 s, clamped to [30 s, 300 s]), heartbeat interval = TTL/3, server
%% addresses} or REFUSED {reason}; QUERY with a VIEW of the live entries (a random
%% sample when they do not fit one datagram); BYE removes an entry. Malformed
%% datagrams get no answer and are counted.
%%
%% What a stranger on the network can do (see also SECURITY.md): the server binds to
%% loopback unless told otherwise (`ip'). An entry announced without a key belongs to
%% the address (IP and port) that created it: an ANNOUNCE or BYE for it from any other
%% address is refused (`auth_failed', counted in `refused_source'), so nobody else can
%% remove or redirect it; an entry announced with a key belongs to the key. No answer
%% is longer than the datagram it answers, except a VIEW to an address that proved it
%% receives there: a QUERY without a valid cookie gets a COOKIE (the client asks
%% again with it; the `registry' adapter does this by itself), so the server cannot be
%% used to amplify a spoofed flood. A HANDSHAKE lists the server addresses only when
%% it still fits in the size of the ANNOUNCE. The table is bounded (`max_entries'); a
%% flood of new names is refused (`full') without touching the entries already there.
%% Expired entries are evicted lazily by `sample/2', `current_view/1' and queries.
%% Every datagram is counted as `[plexus, registry, datagram]' (`plexus_telemetry'),
%% with what became of it.
%%
%% Options: `name' (registered name, default `plexus_registry'; `undefined' for none),
%% `ip' (bind address, default {127,0,0,1}: serving other hosts is a choice to make
%% explicitly), `port' (default 45893; 0 picks one),
%% `max_entries' (100000), `max_bytes' (33554432: what the entries may hold; an entry
%% may carry 7 KB, so the count alone allowed ~730 MB), `default_ttl_ms' (90000), `min_ttl_ms' (30000),
%% `max_ttl_ms' (300000), `require_signed' (false), `trusted_keys' (Ed25519 public
%% keys; default any valid key), `max_skew_ms' (300000), `server_addrs' (what the
%% Handshake lists; default `["IP:Port"]' of the socket), `clock' (a fun returning
%% milliseconds, default `erlang:system_time(millisecond)'; tests inject one).
-module(plexus_registry).
-behaviour(gen_server).

-export([start_link/0, start_link/1, child_spec/1, stop/1]).
-export([announce/4, announce/5, bye/2, sample/2, current_view/1, lookup/2, stats/1,
         port/1, keypair/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([entry/0, options/0]).

-type entry() :: #{peer := binary(), addrs := [binary()], metadata := #{binary() => binary()},
                   ttl_ms := non_neg_integer()}.
-type options() :: #{name => atom(), ip => inet:ip_address(), port => inet:port_number(),
                     max_entries => pos_integer(), max_bytes => pos_integer(),
                     default_ttl_ms => pos_integer(),
                     min_ttl_ms => pos_integer(), max_ttl_ms => pos_integer(),
                     require_signed => boolean(), trusted_keys => [<<_:256>>],
                     max_skew_ms => pos_integer(), server_addrs => [binary()],
                     clock => fun(() -> non_neg_integer())}.
-type server() :: atom() | pid().
%% The keys of options().
-define(OPTIONS, [name, ip, port, max_entries, max_bytes, default_ttl_ms, min_ttl_ms, max_ttl_ms,
                  require_signed, trusted_keys, max_skew_ms, server_addrs, clock]).
-export_type([server/0]). % used in the specs of exported functions

-define(ACTIVE_N, 128).

-record(s, {table :: reference(),
            socket :: gen_udp:socket(),
            port :: inet:port_number(),
            clock :: fun(() -> non_neg_integer()),
            req = 0 :: non_neg_integer(),
            datagrams = 0 :: non_neg_integer(),
            replies = 0 :: non_neg_integer(),
            send_errors = 0 :: non_neg_integer()}).

%% ------------------------------------------------------------------ API

%% @doc Starts a server with the defaults, registered as `plexus_registry'.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() -> start_link(#{}).

%% @doc Starts a server; options are a map or a keyword list (`[]' for the defaults);
%% `{error, {invalid_configuration, R}}' for bad options (`{bad_options, Opts}' when
%% they are neither).
-spec start_link(options() | proplists:proplist()) -> {ok, pid()} | {error, term()}.
start_link(Opts0) ->
    case plexus_opts:to_map(Opts0) of
        {ok, Opts} ->
            case {plexus_opts:unknown(Opts, ?OPTIONS), maps:get(name, Opts, ?MODULE)} of
                {{unknown_option, _} = U, _} -> {error, {invalid_configuration, U}};
                {none, undefined} -> gen_server:start_link(?MODULE, Opts, []);
                {none, Name} -> gen_server:start_link({local, Name}, ?MODULE, Opts, [])
            end;
        {error, R} ->
            {error, {invalid_configuration, R}}
    end.

%% @doc A supervisor child spec; the id is the name. Options as for `start_link/1';
%% raises `error({bad_options, Opts})' for anything else.
-spec child_spec(options() | proplists:proplist()) -> supervisor:child_spec().
child_spec(Opts0) ->
    Opts = plexus_opts:to_map_or_error(Opts0),
    #{id => maps:get(name, Opts, ?MODULE), start => {?MODULE, start_link, [Opts]},
      restart => permanent, shutdown => 5000, type => worker, modules => [?MODULE]}.

-spec stop(server()) -> ok.
stop(Server) -> gen_server:stop(Server).

%% @doc Announces a peer from inside this node (as an ANNOUNCE datagram would):
%% `{ok, #{ttl_ms, heartbeat_ms, server_addrs}}' or `{error, Reason}'.
-spec announce(server(), binary(), [binary()], #{binary() => binary()}) ->
    {ok, map()} | {error, term()}.
announce(Server, Peer, Addrs, Meta) -> announce(Server, Peer, Addrs, Meta, #{}).

%% @doc As `announce/4' with `#{ttl_ms => Requested, seed => Ed25519Seed}'.
-spec announce(server(), binary(), [binary()], #{binary() => binary()}, map()) ->
    {ok, map()} | {error, term()}.
announce(Server, Peer, Addrs, Meta, Opts) ->
    gen_server:call(Server, {announce, Peer, Addrs, Meta, Opts}).

%% @doc Removes a peer (an unsigned BYE): `ok' or `{error, not_found | auth_failed}'.
-spec bye(server(), binary()) -> ok | {error, term()}.
bye(Server, Peer) -> gen_server:call(Server, {bye, Peer}).

%% @doc Up to N live entries chosen at random (expired ones are evicted first).
-spec sample(server(), non_neg_integer()) -> [entry()].
sample(Server, N) when is_integer(N), N >= 0 -> gen_server:call(Server, {sample, N}, 60000).

%% @doc Every live entry (expired ones are evicted first).
-spec current_view(server()) -> [entry()].
current_view(Server) -> gen_server:call(Server, current_view, 60000).

-spec lookup(server(), binary()) -> {ok, entry()} | {error, not_found}.
lookup(Server, Peer) -> gen_server:call(Server, {lookup, Peer}).

%% @doc Table counters (entries, announces, created, refreshed, byes, evicted, queries,
%% refused_full, refused_auth, refused_replay, malformed, bytes, refused_source,
%% cookies, unverified) plus datagram counters.
-spec stats(server()) -> map().
stats(Server) -> gen_server:call(Server, stats).

%% @doc The UDP port the server listens on.
-spec port(server()) -> inet:port_number().
port(Server) -> gen_server:call(Server, port).

%% @doc A new Ed25519 key pair for signed announcements: `{PublicKey, Seed}'.
-spec keypair() -> {<<_:256>>, <<_:256>>}.
keypair() -> plexus_nif:registry_keypair().

%% ------------------------------------------------------------------ gen_server

%% @private
init(Opts) ->
    IP = maps:get(ip, Opts, {127, 0, 0, 1}),
    Port = maps:get(port, Opts, 45893),
    Clock = maps:get(clock, Opts, fun() -> erlang:system_time(millisecond) end),
    case gen_udp:open(Port, [binary, {active, ?ACTIVE_N}, {ip, IP}, {reuseaddr, true},
                             {recbuf, 1 bsl 20}]) of
        {ok, Sock} ->
            {ok, LPort} = inet:port(Sock),
            Addrs = maps:get(server_addrs, Opts,
                             [iolist_to_binary([inet:ntoa(IP), ":", integer_to_list(LPort)])]),
            TableOpts = maps:with([max_entries, max_bytes, default_ttl_ms, min_ttl_ms, max_ttl_ms,
                                   require_signed, trusted_keys, max_skew_ms], Opts),
            case catch plexus_nif:registry_new(TableOpts#{server_addrs => Addrs}) of
                T when is_reference(T) ->
                    {ok, #s{table = T, socket = Sock, port = LPort, clock = Clock}};
                Other ->
                    gen_udp:close(Sock),
                    {stop, {invalid_configuration, {registry, Other}}}
            end;
        {error, R} ->
            {stop, {udp_open, R}}
    end.

%% @private
handle_call({announce, Peer, Addrs, Meta, Opts}, _From, S) ->
    Now = (S#s.clock)(),
    Seed = maps:get(seed, Opts, <<>>),
    Req = S#s.req + 1,
    Reply = case catch plexus_nif:registry_encode_announce(Req, Peer, Addrs, Meta,
                                                           maps:get(ttl_ms, Opts, 0), Now, Seed) of
                Bin when is_binary(Bin) ->
                    {Result, ReplyBin} = plexus_nif:registry_handle(S#s.table, Bin, <<>>, Now),
                    case Result of
                        {announced, _, _, _} ->
                            {ok, M} = plexus_nif:registry_decode(ReplyBin),
                            {ok, maps:with([ttl_ms, heartbeat_ms, server_addrs], M)};
                        {refused, Reason, _} ->
                            {error, Reason}
                    end;
                {error, R} -> {error, R};
                {'EXIT', _} -> {error, badarg}
            end,
    {reply, Reply, S#s{req = Req}};
handle_call({bye, Peer}, _From, S) ->
    Now = (S#s.clock)(),
    Reply = case catch plexus_nif:registry_encode_bye(0, Peer, Now, <<>>) of
                Bin when is_binary(Bin) ->
                    case plexus_nif:registry_handle(S#s.table, Bin, <<>>, Now) of
                        {{left, _}, _} -> ok;
                        {{ignored, R}, _} -> {error, R}
                    end;
                _ -> {error, badarg}
            end,
    {reply, Reply, S};
handle_call({sample, N}, _From, S) ->
    {reply, plexus_nif:registry_sample(S#s.table, N, (S#s.clock)()), S};
handle_call(current_view, _From, S) ->
    {reply, plexus_nif:registry_view(S#s.table, (S#s.clock)()), S};
handle_call({lookup, Peer}, _From, S) when is_binary(Peer) ->
    {reply, plexus_nif:registry_lookup(S#s.table, Peer, (S#s.clock)()), S};
handle_call(stats, _From, S) ->
    {reply, (plexus_nif:registry_stats(S#s.table))#{datagrams => S#s.datagrams,
                                                     replies => S#s.replies,
                                                     send_errors => S#s.send_errors,
                                                     port => S#s.port}, S};
handle_call(port, _From, S) ->
    {reply, S#s.port, S};
handle_call(_Req, _From, S) ->
    {reply, {error, unknown_call}, S}.

%% @private
handle_cast(_Msg, S) ->
    {noreply, S}.

%% @private
handle_info({udp, Sock, IP, Port, Data}, #s{socket = Sock} = S) ->
    S1 = S#s{datagrams = S#s.datagrams + 1},
    case plexus_nif:registry_handle(S#s.table, Data, source(IP, Port), (S#s.clock)()) of
        {Result, <<>>} ->
            ok = datagram_event(Result, Data, <<>>),
            {noreply, S1};
        {Result, Reply} when is_binary(Reply) ->
            ok = datagram_event(Result, Data, Reply),
            case gen_udp:send(Sock, IP, Port, Reply) of
                ok -> {noreply, S1#s{replies = S1#s.replies + 1}};
                {error, _} -> {noreply, S1#s{send_errors = S1#s.send_errors + 1}}
            end;
        NoMemory ->
            ok = datagram_event(NoMemory, Data, <<>>),
            {noreply, S1}
    end;
handle_info({udp_passive, Sock}, #s{socket = Sock} = S) ->
    ok = inet:setopts(Sock, [{active, ?ACTIVE_N}]),
    {noreply, S};
handle_info(_Msg, S) ->
    {noreply, S}.

%% `[plexus, registry, datagram]' (README, "Telemetry"): one per datagram received,
%% with what the table made of it (`outcome': announced, refused, queried, cookie,
%% left, ignored, dropped or error; `reason' for the last four and refused).
datagram_event(Result, Data, Reply) ->
    {Outcome, Reason} = case Result of
                            {announced, _, _, _} -> {announced, undefined};
                            {refused, R, _} -> {refused, R};
                            {left, _} -> {left, undefined};
                            {Kind, R} when is_atom(Kind) -> {Kind, R};  % ignored, dropped, error
                            Kind when is_atom(Kind) -> {Kind, undefined} % queried, cookie
                        end,
    plexus_telemetry:execute([plexus, registry, datagram],
                             #{count => 1, bytes => byte_size(Data), reply_bytes => byte_size(Reply)},
                             #{outcome => Outcome, reason => Reason, server => self()}).

%% The sender's address as the table binds entries to it (never empty: empty is us).
source({A, B, C, D}, Port) -> <<4, A, B, C, D, Port:16>>;
source({A, B, C, D, E, F, G, H}, Port) -> <<6, A:16, B:16, C:16, D:16, E:16, F:16, G:16, H:16, Port:16>>.

%% @private
terminate(_Reason, S) ->
    catch gen_udp:close(S#s.socket),
    ok.
