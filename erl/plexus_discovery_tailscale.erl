%% @doc Discovery adapter `tailscale': peers from `tailscale status --json' (run as a
%% subprocess, no shell), filtered by ACL tag, named by their MagicDNS names. Options
%% (`custom'):
%% <ul>
%% <li>`basename' (required): the node basename;</li>
%% <li>`tag': only peers carrying this tag (e.g. `<<"tag:plexus">>'); default all;</li>
%% <li>`use': `dns' (default: `basename@host.tailnet.ts.net', the MagicDNS name) or
%%   `ip' (`basename@100.x.y.z', the first Tailscale IPv4 address);</li>
%% <li>`online_only' (default `true'): skip peers Tailscale reports offline;</li>
%% <li>`tailscale_bin': the executable (default `tailscale' on PATH);</li>
%% <li>`timeout_ms' (default 5000): the subprocess is killed (by its pid) after it, or
%%   earlier with its sync when the facade ends that at `sync_timeout_ms'.</li>
%% </ul>
%% A missing executable, a non-zero exit, output over 8 MB or malformed JSON fails the
%% sync; no peer is lost. Malformed peer entries are dropped one by one. Metadata:
%% `<<"source">> => <<"tailscale">>', `<<"address">>', `<<"hostname">>', `<<"tags">>'
%% (comma-separated).
-module(plexus_discovery_tailscale).
-behaviour(plexus_discovery_adapter).

-export([init/1, authenticated/1, sync/1, info/1]).
-export([peers_from_status/2]).

-define(MAX_OUTPUT, 8 * 1024 * 1024).

-record(s, {bin :: string() | false,
            basename :: binary(),
            tag :: binary() | undefined,
            use :: dns | ip,
            online_only :: boolean(),
            timeout :: pos_integer()}).

%% @private
-spec init(plexus_discovery_adapter:config()) -> {ok, #s{}} | {error, term()}.
%% A required option that is missing is named; any other bad option gives the options.
init(#{custom := C}) when not is_map_key(basename, C) ->
    {error, {invalid_configuration, {tailscale, {missing, basename}}}};
init(#{custom := C}) ->
    try
        Base = bin(maps:get(basename, C)),
        true = plexus_discovery_dns:valid_hostname(Base),
        Tag = case maps:get(tag, C, undefined) of
                  undefined -> undefined;
                  T -> bin(T)
              end,
        Use = maps:get(use, C, dns),
        true = lists:member(Use, [dns, ip]),
        Online = maps:get(online_only, C, true),
        true = is_boolean(Online),
        Timeout = maps:get(timeout_ms, C, 5000),
        true = is_integer(Timeout) andalso Timeout > 0,
        Bin = case maps:get(tailscale_bin, C, undefined) of
                  undefined -> os:find_executable("tailscale");
                  B -> str(B)
              end,
        {ok, #s{bin = Bin, basename = Base, tag = Tag, use = Use, online_only = Online,
                timeout = Timeout}}
    catch _:_ ->
            {error, {invalid_configuration, {tailscale, C}}}
    end.

%% @private
-spec sync(#s{}) -> {ok, [plexus_discovery_adapter:peer()]} | {error, term()}.
sync(#s{bin = false}) ->
    {error, tailscale_not_found};
sync(#s{bin = Bin, timeout = T} = S) ->
    case run(Bin, ["status", "--json"], T) of
        {ok, Out} ->
            case plexus_json:decode(Out) of
                {ok, Json} -> peers_from_status(Json, S);
                {error, R} -> {error, {bad_json, R}}
            end;
        {error, _} = E ->
            E
    end.

run(Bin, Args, Timeout) ->
    try open_port({spawn_executable, Bin},
                  [{args, Args}, exit_status, binary, stream, use_stdio, hide]) of
        Port ->
            OsPid = case erlang:port_info(Port, os_pid) of
                        {os_pid, P} -> P;
                        _ -> undefined
                    end,
            Deadline = erlang:monotonic_time(millisecond) + Timeout,
            Reaper = reaper(self(), OsPid),
            try collect(Port, OsPid, Deadline, Timeout, [], 0)
            after Reaper ! done
            end
    catch error:R ->
            {error, {spawn_failed, R}}
    end.

%% The facade kills this sync's process at sync_timeout_ms, which may come before
%% timeout_ms: closing the port does not end a subprocess that does not read its
%% input, so one hung `tailscale' was left behind per sync (every few seconds, until
%% the host ran out of processes). A watcher kills it when this process dies first.
reaper(Owner, OsPid) ->
    spawn(fun() ->
                  MRef = erlang:monitor(process, Owner),
                  receive
                      done -> ok;
                      {'DOWN', MRef, process, Owner, _} -> kill(undefined, OsPid)
                  end
          end).

collect(Port, OsPid, Deadline, Timeout, Acc, Size) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, D}} when Size + byte_size(D) > ?MAX_OUTPUT ->
            kill(Port, OsPid),
            {error, output_too_large};
        {Port, {data, D}} ->
            collect(Port, OsPid, Deadline, Timeout, [Acc, D], Size + byte_size(D));
        {Port, {exit_status, 0}} ->
            {ok, iolist_to_binary(Acc)};
        {Port, {exit_status, N}} ->
            {error, {exit_status, N}}
    after Left ->
            kill(Port, OsPid),
            {error, {subprocess_timeout, Timeout}}
    end.

kill(Port, OsPid) ->
    _ = is_port(Port) andalso (catch port_close(Port)),
    _ = case OsPid of
            P when is_integer(P) -> os:cmd("kill -9 " ++ integer_to_list(P) ++ " 2>/dev/null");
            _ -> ok
        end,
    ok.

%% @doc Peers from decoded `tailscale status --json' output.
-spec peers_from_status(plexus_json:value(), #s{}) ->
    {ok, [plexus_discovery_adapter:peer()]} | {error, term()}.
peers_from_status(#{<<"Peer">> := Peers}, S) when is_map(Peers) ->
    {ok, lists:filtermap(fun(P) -> peer(P, S) end, maps:values(Peers))};
peers_from_status(#{<<"Peer">> := null}, _S) ->
    {ok, []};
peers_from_status(#{<<"Self">> := _} = M, _S) when not is_map_key(<<"Peer">>, M) ->
    {ok, []};
peers_from_status(_, _) ->
    {error, bad_status}.

peer(P, #s{basename = Base} = S) when is_map(P) ->
    Tags = case maps:get(<<"Tags">>, P, []) of
               L when is_list(L) -> [T || T <- L, is_binary(T)];
               _ -> []
           end,
    Online = maps:get(<<"Online">>, P, false) =:= true,
    TagOk = S#s.tag =:= undefined orelse lists:member(S#s.tag, Tags),
    OnlineOk = Online orelse not S#s.online_only,
    IPv4 = case maps:get(<<"TailscaleIPs">>, P, []) of
               IPs when is_list(IPs) ->
                   [IP || IP <- IPs, is_binary(IP),
                          element(1, inet:parse_ipv4strict_address(binary_to_list(IP))) =:= ok];
               _ -> []
           end,
    DNS = case maps:get(<<"DNSName">>, P, <<>>) of
              D when is_binary(D) -> string:trim(D, trailing, ".");
              _ -> <<>>
          end,
    Host = case S#s.use of
               dns -> DNS;
               ip -> case IPv4 of [A | _] -> A; [] -> <<>> end
           end,
    case TagOk andalso OnlineOk andalso Host =/= <<>> andalso
        plexus_discovery_dns:valid_hostname(Host) of
        true ->
            HostName = case maps:get(<<"HostName">>, P, <<>>) of
                           HN when is_binary(HN), byte_size(HN) =< 255 -> HN;
                           _ -> <<>>
                       end,
            Meta = #{<<"source">> => <<"tailscale">>,
                     <<"address">> => case IPv4 of [A4 | _] -> A4; [] -> <<>> end,
                     <<"hostname">> => HostName,
                     <<"tags">> => iolist_to_binary(lists:join(<<",">>, Tags))},
            {true, #{id => <<Base/binary, "@", Host/binary>>, metadata => Meta}};
        false ->
            false
    end;
peer(_, _) ->
    false.

%% @private
-spec info(#s{}) -> map().
info(#s{tag = T, use = U, bin = B}) -> #{tag => T, use => U, executable => B}.

bin(B) when is_binary(B) -> B;
bin(L) when is_list(L) -> list_to_binary(L);
bin(A) when is_atom(A) -> atom_to_binary(A, utf8).

str(B) when is_binary(B) -> binary_to_list(B);
str(L) when is_list(L) -> L.

%% @private
%% Peers come from the local tailscale daemon's view of the authenticated tailnet.
-spec authenticated(term()) -> boolean().
authenticated(_State) -> true.
