%% @private
%% @doc Connection management of a `plexus_discovery' server started with
%% `connect => true' and an adapter that vouches for its peers, as pure state and
%% effects: which discovered peer to connect now, and the backoff of each (200 ms
%% doubling to 5 s) while it stays discovered but not connected.
%%
%% Everything is keyed by peer id in maps (the connected set comes in as a map too),
%% so a tick costs one lookup per peer. Time comes in (`Now', monotonic ms); nothing
%% here sends, spawns or makes an atom. The runner performs the effects:
%% `{tick_after, Ms}' (send itself `reconnect_tick' after Ms) and `{connect, Id}'
%% (connect to the node in a helper process, then report it with `started/3').
-module(plexus_discovery_connect).

-export([new/1, enabled/1, discovered/3, forgotten/2, tick/4, started/3, connected/4,
         helper_exited/2, helpers/1, valid_node_name/1]).

-export_type([state/0, effect/0]).

-define(BACKOFF_MIN, 200).
-define(BACKOFF_MAX, 5000).
-define(TICK, 200).
%% Attempts at once. Unbounded, 5,000 discovered peers that do not answer (a DNS name
%% or a Service with many addresses) kept 5,000 helpers in net_kernel's queue: any
%% other connect of the node took 1.1-1.7 s instead of 1-2 ms. The others wait for a
%% later tick (they stay due), so every peer is still tried.
-define(MAX_CONNECTING, 32).

-type peer_id() :: plexus_discovery:peer_id().
-type effect() :: {tick_after, non_neg_integer()} | {connect, peer_id()}.

-record(conn, {enabled = false :: boolean(),
               %% peer => {next attempt (monotonic ms), backoff after that attempt}
               backoff = #{} :: #{peer_id() => {integer(), pos_integer()}},
               %% helpers connecting now, both ways
               helpers = #{} :: #{pid() => peer_id()},
               busy = #{} :: #{peer_id() => pid()},
               tick_armed = false :: boolean()}).

-opaque state() :: #conn{}.

%% @doc The state; `Enabled' is `connect => true' and an adapter that vouches.
-spec new(boolean()) -> state().
new(Enabled) when is_boolean(Enabled) -> #conn{enabled = Enabled}.

%% @doc Whether peers are connected at all.
-spec enabled(state()) -> boolean().
enabled(#conn{enabled = E}) -> E.

%% @doc A peer came up, or a discovered peer's node went down: try it at once.
-spec discovered(peer_id(), integer(), state()) -> {state(), [effect()]}.
discovered(_Id, _Now, #conn{enabled = false} = C) ->
    {C, []};
discovered(Id, Now, #conn{backoff = B} = C) ->
    arm(0, C#conn{backoff = B#{Id => {Now, ?BACKOFF_MIN}}}).

%% @doc A peer is no longer discovered: no more attempts.
-spec forgotten(peer_id(), state()) -> state().
forgotten(Id, #conn{backoff = B} = C) ->
    C#conn{backoff = maps:remove(Id, B)}.

%% @doc The reconnect tick: every discovered peer that is not connected (`Connected'
%% holds our own node too), not being connected and due by its backoff gets one
%% attempt, at most 32 attempts running at once (the rest stay due for a later tick);
%% a peer whose id is not a node name is given up. Ticks go on while any peer waits
%% or any helper runs.
-spec tick([peer_id()], #{peer_id() => term()}, integer(), state()) -> {state(), [effect()]}.
tick(_Peers, _Connected, _Now, #conn{enabled = false} = C) ->
    {C#conn{tick_armed = false}, []};
tick(Peers, Connected, Now, C0) ->
    {C1, Due} = lists:foldl(fun(Id, Acc) -> tick_peer(Id, Connected, Now, Acc) end,
                            {C0#conn{tick_armed = false}, []}, Peers),
    %% The peer due the longest goes first: in list order, peers that do not answer
    %% (7 s an attempt) were due again whenever their attempt ended (the backoff runs
    %% from its start) and the first 32 took every slot for good: of 100 such peers the
    %% other 68 were never tried in 10 minutes.
    Room = max(0, ?MAX_CONNECTING - map_size(C0#conn.helpers)),
    {Go, _Wait} = lists:split(min(Room, length(Due)), lists:sort(Due)),
    C = lists:foldl(fun({_, Id, {_, Ms}}, #conn{backoff = B} = Ci) ->
                            Ci#conn{backoff = B#{Id => {Now + Ms, min(Ms * 2, ?BACKOFF_MAX)}}}
                    end, C1, Go),
    Rev = [{connect, Id} || {_, Id, _} <- lists:reverse(Go)],
    case map_size(C#conn.backoff) + map_size(C#conn.helpers) of
        0 -> {C, lists:reverse(Rev)};
        _ -> {C2, Tick} = arm(?TICK, C),
             {C2, lists:reverse(Rev, Tick)}
    end.

%% Keeps a peer's backoff entry and adds it to the due ones, or drops the entry (the
%% peer is connected, being connected, or has no node name).
tick_peer(Id, Connected, Now, {#conn{backoff = B} = C, Due}) ->
    case is_map_key(Id, Connected) orelse is_map_key(Id, C#conn.busy) of
        true ->
            {C#conn{backoff = maps:remove(Id, B)}, Due};
        false ->
            case maps:get(Id, B, {Now, ?BACKOFF_MIN}) of
                {At, _} = Entry when At =< Now ->
                    case valid_node_name(Id) of
                        true -> {C#conn{backoff = B#{Id => Entry}}, [{At, Id, Entry} | Due]};
                        false -> {C#conn{backoff = maps:remove(Id, B)}, Due}
                    end;
                Later ->
                    {C#conn{backoff = B#{Id => Later}}, Due}
            end
    end.

%% @doc The runner started helper `Pid' for the `{connect, Id}' effect.
-spec started(pid(), peer_id(), state()) -> state().
started(Pid, Id, #conn{helpers = H, busy = Busy} = C) ->
    C#conn{helpers = H#{Pid => Id}, busy = Busy#{Id => Pid}}.

%% @doc Helper `Pid' reports its attempt at `Id': connected, the peer needs no more
%% attempts; not connected, it is tried again when its backoff is due.
-spec connected(pid(), peer_id(), boolean(), state()) -> {state(), [effect()]}.
connected(Pid, Id, Ok, C0) ->
    C = drop_helper(Pid, C0),
    case Ok of
        true -> {C#conn{backoff = maps:remove(Id, C#conn.backoff)}, []};
        false -> arm(0, C)
    end.

%% @doc A process exited: when it is one of our helpers (it died without a report),
%% its attempt failed.
-spec helper_exited(pid(), state()) -> {ok, state(), [effect()]} | error.
helper_exited(Pid, #conn{helpers = H} = C) ->
    case maps:find(Pid, H) of
        {ok, Id} ->
            {C1, Effects} = connected(Pid, Id, false, C),
            {ok, C1, Effects};
        error ->
            error
    end.

%% @doc The helpers running now (to stop them with the server).
-spec helpers(state()) -> [pid()].
helpers(#conn{helpers = H}) -> maps:keys(H).

%% @doc True for a node name as the C core checks it (`plexus_disco_valid_name'):
%% 3..255 bytes of `[A-Za-z0-9_.:@\[\]-]' with exactly one `@', neither first nor last.
-spec valid_node_name(term()) -> boolean().
valid_node_name(Id) when is_binary(Id), byte_size(Id) >= 3, byte_size(Id) =< 255 ->
    case binary:split(Id, <<"@">>, [global]) of
        [Name, Host] when Name =/= <<>>, Host =/= <<>> ->
            lists:all(fun name_byte/1, binary_to_list(Name)) andalso
                lists:all(fun name_byte/1, binary_to_list(Host));
        _ ->
            false
    end;
valid_node_name(_) ->
    false.

name_byte(C) ->
    (C >= $a andalso C =< $z) orelse (C >= $A andalso C =< $Z) orelse (C >= $0 andalso C =< $9)
        orelse C =:= $_ orelse C =:= $- orelse C =:= $. orelse C =:= $: orelse C =:= $[
        orelse C =:= $].

%% ------------------------------------------------------------------ internal

drop_helper(Pid, #conn{helpers = H, busy = Busy} = C) ->
    case maps:take(Pid, H) of
        {Id, H1} -> C#conn{helpers = H1, busy = maps:remove(Id, Busy)};
        error -> C
    end.

%% One tick timer at a time: a tick already pending comes soon enough.
arm(_Ms, #conn{tick_armed = true} = C) -> {C, []};
arm(Ms, C) -> {C#conn{tick_armed = true}, [{tick_after, Ms}]}.
