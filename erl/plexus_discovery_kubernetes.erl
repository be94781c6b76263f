%% @doc Discovery adapter `kubernetes': peers from the Endpoints of a Service, read
%% from the Kubernetes API with the pod's service-account token (libcluster's
%% Kubernetes strategy, endpoints mode). Options (`custom'):
%% <ul>
%% <li>`service' (required) and `basename' (required: the node basename);</li>
%% <li>`namespace': default the pod's own (the service-account `namespace' file), else
%%   `"default"';</li>
%% <li>`api_url': default `"https://kubernetes.default.svc"' (tests point it at a
%%   loopback server);</li>
%% <li>`token_file', `ca_file': default the service-account files under
%%   `/var/run/secrets/kubernetes.io/serviceaccount/'; the token is read on every sync
%%   (tokens rotate), sent only in the Authorization header, never logged;</li>
%% <li>`mode': `ip' (default: `basename@10.1.2.3') or `hostname'
%%   (`basename@Hostname.Service.Namespace.svc.ClusterDomain', for pods with a hostname,
%%   e.g. StatefulSets), `cluster_domain' (default `"cluster.local"');</li>
%% <li>`timeout_ms' (default 5000).</li>
%% </ul>
%% Only ready addresses (`subsets[].addresses') are peers. A failed request, an HTTP
%% error status, a body over 8 MB or malformed JSON fails the sync; no peer is lost.
%% A 200 body is dropped as soon as 8 MB of it came; the headers and the body of any
%% other status are read by httpc, which has no limit for them, within `timeout_ms'.
%% Metadata: `<<"source">> => <<"kubernetes">>', `<<"address">>', and `<<"pod">>' /
%% `<<"node">>' when the API gives them.
-module(plexus_discovery_kubernetes).
-behaviour(plexus_discovery_adapter).

-export([init/1, authenticated/1, sync/1, info/1]).
-export([peers_from_endpoints/2]).

-define(SA_DIR, "/var/run/secrets/kubernetes.io/serviceaccount/").
-define(MAX_BODY, 8 * 1024 * 1024).

-record(s, {url :: string(),
            token_file :: string(),
            ca_file :: string(),
            basename :: binary(),
            service :: binary(),
            namespace :: binary(),
            mode :: ip | hostname,
            domain :: binary(),
            timeout :: pos_integer()}).

%% @private
-spec init(plexus_discovery_adapter:config()) -> {ok, #s{}} | {error, term()}.
%% A required option that is missing is named; any other bad option gives the options.
init(#{custom := C}) when not is_map_key(service, C) ->
    {error, {invalid_configuration, {kubernetes, {missing, service}}}};
init(#{custom := C}) when not is_map_key(basename, C) ->
    {error, {invalid_configuration, {kubernetes, {missing, basename}}}};
init(#{custom := C}) ->
    try
        Service = bin(maps:get(service, C)),
        Base = bin(maps:get(basename, C)),
        true = plexus_discovery_dns:valid_hostname(Service) andalso
            plexus_discovery_dns:valid_hostname(Base),
        NS = case maps:get(namespace, C, undefined) of
                 undefined ->
                     case file:read_file(?SA_DIR "namespace") of
                         {ok, N} -> string:trim(N);
                         _ -> <<"default">>
                     end;
                 N -> bin(N)
             end,
        true = plexus_discovery_dns:valid_hostname(NS),
        Api = string:trim(str(maps:get(api_url, C, "https://kubernetes.default.svc")),
                          trailing, "/"),
        Url = Api ++ "/api/v1/namespaces/" ++ binary_to_list(NS) ++ "/endpoints/"
            ++ binary_to_list(Service),
        Mode = maps:get(mode, C, ip),
        true = lists:member(Mode, [ip, hostname]),
        Timeout = maps:get(timeout_ms, C, 5000),
        true = is_integer(Timeout) andalso Timeout > 0,
        S = #s{url = Url, token_file = str(maps:get(token_file, C, ?SA_DIR "token")),
               ca_file = str(maps:get(ca_file, C, ?SA_DIR "ca.crt")), basename = Base,
               service = Service, namespace = NS, mode = Mode,
               domain = bin(maps:get(cluster_domain, C, "cluster.local")),
               timeout = Timeout},
        %% inets, ssl and public_key are optional applications of plexus: a host
        %% without them hears which one is missing, not that its options are wrong.
        case ensure_started([inets] ++ case Url of "https:" ++ _ -> [ssl]; _ -> [] end) of
            ok -> {ok, S};
            {error, _} = NotStarted -> NotStarted
        end
    catch _:_ ->
            {error, {invalid_configuration, {kubernetes, maps:without([token], C)}}}
    end.

-spec ensure_started([atom()]) ->
          ok | {error, {missing_application, atom()} | {application_start_failed, atom(), term()}}.
ensure_started([]) ->
    ok;
ensure_started([App | Rest]) ->
    case application:ensure_all_started(App) of
        {ok, _} -> ensure_started(Rest);
        {error, {Missing, {"no such file or directory", _}}} -> {error, {missing_application, Missing}};
        {error, {Failed, Why}} -> {error, {application_start_failed, Failed, Why}}
    end.

%% @private
-spec sync(#s{}) -> {ok, [plexus_discovery_adapter:peer()]} | {error, term()}.
sync(#s{url = Url, timeout = T} = S) ->
    case file:read_file(S#s.token_file) of
        {ok, Token0} ->
            Token = binary_to_list(string:trim(Token0)),
            Headers = [{"authorization", "Bearer " ++ Token}, {"accept", "application/json"}],
            HttpOpts = [{timeout, T}, {connect_timeout, T}, {autoredirect, false}]
                ++ case Url of
                       "https:" ++ _ ->
                           [{ssl, [{verify, verify_peer}, {cacertfile, S#s.ca_file},
                                   {customize_hostname_check,
                                    [{match_fun, public_key:pkix_verify_hostname_match_fun(https)}]}]}];
                       _ -> []
                   end,
            %% A 200 body is streamed to us piece by piece and dropped past MAX_BODY:
            %% read whole by httpc, a 1 GB answer took 1.6 GB before it was refused.
            case catch httpc:request(get, {Url, Headers}, HttpOpts,
                                     [{body_format, binary}, {sync, false},
                                      {stream, {self, once}}]) of
                {ok, ReqId} ->
                    Deadline = erlang:monotonic_time(millisecond) + T,
                    case receive_body(ReqId, undefined, Deadline, [], 0) of
                        {ok, Body} ->
                            case plexus_json:decode(Body) of
                                {ok, Json} -> peers_from_endpoints(Json, S);
                                {error, R} -> {error, {bad_json, R}}
                            end;
                        {error, _} = E ->
                            E
                    end;
                {error, R} ->
                    {error, {http, R}};
                Other ->
                    {error, {http, Other}}
            end;
        {error, R} ->
            {error, {token_file, R}}
    end.

%% The answer to a streamed request: a 200 body of at most MAX_BODY bytes, else an
%% error (the request is cancelled as soon as the body is too large or too late; any
%% other status is not streamed by httpc and comes whole, its body unread).
receive_body(ReqId, Handler, Deadline, Acc, Size) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {http, {ReqId, stream_start, _Headers, Pid}} ->
            ok = httpc:stream_next(Pid),
            receive_body(ReqId, Pid, Deadline, Acc, Size);
        {http, {ReqId, stream, Part}} when Size + byte_size(Part) > ?MAX_BODY ->
            ok = httpc:cancel_request(ReqId),
            {error, body_too_large};
        {http, {ReqId, stream, Part}} ->
            ok = httpc:stream_next(Handler),
            receive_body(ReqId, Handler, Deadline, [Acc, Part], Size + byte_size(Part));
        {http, {ReqId, stream_end, _Headers}} ->
            {ok, iolist_to_binary(Acc)};
        {http, {ReqId, {{_, 200, _}, _Headers, Body}}} when byte_size(Body) =< ?MAX_BODY ->
            {ok, Body};
        {http, {ReqId, {{_, 200, _}, _, _}}} ->
            {error, body_too_large};
        {http, {ReqId, {{_, Code, _}, _, _}}} ->
            {error, {http_status, Code}};
        {http, {ReqId, {error, R}}} ->
            {error, {http, R}}
    after Left ->
            ok = httpc:cancel_request(ReqId),
            {error, {http, timeout}}
    end.

%% @doc Peers from a decoded Endpoints object; `{error, bad_endpoints}' when it is not
%% one. Malformed addresses are dropped one by one.
-spec peers_from_endpoints(plexus_json:value(), #s{}) ->
    {ok, [plexus_discovery_adapter:peer()]} | {error, term()}.
peers_from_endpoints(#{<<"kind">> := <<"Endpoints">>} = E, S) ->
    Subsets = case maps:get(<<"subsets">>, E, []) of
                  L when is_list(L) -> L;
                  null -> [];
                  _ -> bad
              end,
    case Subsets of
        bad ->
            {error, bad_endpoints};
        _ ->
            Addrs = lists:append([A || #{<<"addresses">> := A} <- Subsets, is_list(A)]),
            Peers = lists:filtermap(fun(A) -> peer(A, S) end, Addrs),
            {ok, maps:values(maps:from_list([{Id, P} || #{id := Id} = P <- Peers]))}
    end;
peers_from_endpoints(_, _) ->
    {error, bad_endpoints}.

peer(#{<<"ip">> := IP} = A, #s{basename = Base} = S) when is_binary(IP) ->
    case inet:parse_strict_address(binary_to_list(IP)) of
        {ok, _} ->
            Host = case S#s.mode of
                       ip -> {ok, IP};
                       hostname ->
                           case maps:get(<<"hostname">>, A, undefined) of
                               H when is_binary(H) ->
                                   {ok, <<H/binary, ".", (S#s.service)/binary, ".",
                                          (S#s.namespace)/binary, ".svc.", (S#s.domain)/binary>>};
                               _ -> error
                           end
                   end,
            case Host of
                {ok, HostBin} ->
                    case plexus_discovery_dns:valid_hostname(HostBin) orelse HostBin =:= IP of
                        true ->
                            Meta0 = #{<<"source">> => <<"kubernetes">>, <<"address">> => IP},
                            Meta1 = case plexus_json:get([<<"targetRef">>, <<"name">>], A) of
                                        Pod when is_binary(Pod), byte_size(Pod) =< 253 ->
                                            Meta0#{<<"pod">> => Pod};
                                        _ -> Meta0
                                    end,
                            Meta = case maps:get(<<"nodeName">>, A, undefined) of
                                       Nd when is_binary(Nd), byte_size(Nd) =< 253 ->
                                           Meta1#{<<"node">> => Nd};
                                       _ -> Meta1
                                   end,
                            {true, #{id => <<Base/binary, "@", HostBin/binary>>, metadata => Meta}};
                        false -> false
                    end;
                error -> false
            end;
        _ ->
            false
    end;
peer(_, _) ->
    false.

%% @private
-spec info(#s{}) -> map().
info(#s{service = Svc, namespace = NS, mode = M}) ->
    #{service => Svc, namespace => NS, mode => M}.

bin(B) when is_binary(B) -> B;
bin(L) when is_list(L) -> list_to_binary(L);
bin(A) when is_atom(A) -> atom_to_binary(A, utf8).

str(B) when is_binary(B) -> binary_to_list(B);
str(L) when is_list(L) -> L.

%% @private
%% Peers come from the Kubernetes API, over TLS verified against the service CA.
-spec authenticated(term()) -> boolean().
authenticated(_State) -> true.
