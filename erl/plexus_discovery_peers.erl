%% @private
%% @doc The peer set of a `plexus_discovery' server, as a pure value: every change an
%% adapter reports (a push of `{up, Peer}' / `{down, Id, Reason}', or a complete list
%% from a sync) goes in, and the new set comes out with the events it causes, in the
%% order subscribers must see them. No process, clock or message here: the runner
%% (`plexus_discovery') sends the events.
%%
%% Each peer carries the generation of its last change. A complete list from a sync
%% that started at generation `Since' leaves alone every peer changed after `Since'
%% (by a push that overtook the sync), so a slow sync never undoes a newer push.
-module(plexus_discovery_peers).

-export([new/0, apply_changes/2, apply_change/2, diff/3, valid_peer/1]).
-export([gen/1, size/1, list/1, ids/1, lookup/2, is_member/2]).

-export_type([set/0, change/0]).

%% Bounds the memory an adapter (or whoever feeds it) can make the server hold.
-define(MAX_PEERS, 100000).

-record(set, {peers = #{} :: #{plexus_discovery:peer_id() =>
                                   {plexus_discovery:peer(), non_neg_integer()}},
              gen = 0 :: non_neg_integer()}).

-opaque set() :: #set{}.
%% What an adapter pushes; anything else is ignored.
-type change() :: {up, term()} | {down, plexus_discovery:peer_id(), term()} | term().
-type events() :: [plexus_discovery:event()].

%% @doc An empty set at generation 0.
-spec new() -> set().
new() -> #set{}.

%% @doc The generation: it grows with every change, so a sync remembers it at start.
-spec gen(set()) -> non_neg_integer().
gen(#set{gen = G}) -> G.

%% @doc The number of peers.
-spec size(set()) -> non_neg_integer().
size(#set{peers = P}) -> map_size(P).

%% @doc The peers, sorted by id.
-spec list(set()) -> [plexus_discovery:peer()].
list(#set{peers = P}) -> [Peer || {_, {Peer, _}} <- lists:sort(maps:to_list(P))].

%% @doc The peer ids, in no particular order.
-spec ids(set()) -> [plexus_discovery:peer_id()].
ids(#set{peers = P}) -> maps:keys(P).

%% @doc One peer by id.
-spec lookup(plexus_discovery:peer_id(), set()) -> {ok, plexus_discovery:peer()} | error.
lookup(Id, #set{peers = P}) ->
    case maps:find(Id, P) of
        {ok, {Peer, _}} -> {ok, Peer};
        error -> error
    end.

%% @doc Whether a peer with this id is in the set.
-spec is_member(plexus_discovery:peer_id(), set()) -> boolean().
is_member(Id, #set{peers = P}) -> maps:is_key(Id, P).

%% @doc Applies pushed changes in order; malformed ones are skipped.
-spec apply_changes([change()], set()) -> {set(), events()}.
apply_changes(Changes, Set) ->
    {Set1, Rev} = lists:foldl(fun(C, {S, Acc}) -> step(C, S, Acc) end, {Set, []}, Changes),
    {Set1, lists:reverse(Rev)}.

%% @doc Applies one change: `{up, Peer}' adds or updates a valid peer (no event when
%% nothing changed, nothing past 100000 peers), `{down, Id, Reason}' removes one.
-spec apply_change(change(), set()) -> {set(), events()}.
apply_change(Change, Set) ->
    apply_changes([Change], Set).

%% @doc A complete list (from a sync started at generation `Since', or pushed by the
%% adapter with `Since' = the current generation): reported peers come up or are
%% updated, peers not reported go down with reason `gone', except peers changed after
%% `Since'. Invalid entries are ignored.
-spec diff([term()], non_neg_integer(), set()) -> {set(), events()}.
diff(Reported, Since, Set0) ->
    New = maps:from_list([{Id, P} || {ok, #{id := Id} = P} <- lists:map(fun valid_peer/1, Reported)]),
    {Set1, _} = Up = maps:fold(fun(Id, P, {S, Acc}) ->
                                       case S#set.peers of
                                           #{Id := {_, G}} when G > Since -> {S, Acc};
                                           _ -> step({up, P}, S, Acc)
                                       end
                               end, {Set0, []}, New),
    {Set, Rev} = maps:fold(fun(Id, {_, G}, {S, Acc}) ->
                                   case is_map_key(Id, New) orelse G > Since of
                                       true -> {S, Acc};
                                       false -> step({down, Id, gone}, S, Acc)
                                   end
                           end, Up, Set1#set.peers),
    {Set, lists:reverse(Rev)}.

%% @doc A peer as the facade keeps it (`{ok, #{id, metadata}}'), or `error' when the
%% id is not a 1..255-byte binary or the metadata is not a map of binaries.
-spec valid_peer(term()) -> {ok, plexus_discovery:peer()} | error.
valid_peer(#{id := Id} = P) when is_binary(Id), byte_size(Id) > 0, byte_size(Id) =< 255 ->
    Meta = maps:get(metadata, P, #{}),
    case is_map(Meta) andalso
        lists:all(fun({K, V}) -> is_binary(K) andalso is_binary(V) end, maps:to_list(Meta)) of
        true -> {ok, #{id => Id, metadata => Meta}};
        false -> error
    end;
valid_peer(_) ->
    error.

%% ------------------------------------------------------------------ one change

%% Events accumulate newest first.
step({up, P0}, S, Acc) ->
    case valid_peer(P0) of
        error -> {S, Acc};
        {ok, P} -> up(P, S, Acc)
    end;
step({down, Id, Reason}, #set{peers = Peers} = S, Acc) when is_binary(Id) ->
    case maps:take(Id, Peers) of
        {{P, _}, Rest} -> {S#set{peers = Rest, gen = S#set.gen + 1}, [{peer_down, P, Reason} | Acc]};
        error -> {S, Acc}
    end;
step(_Malformed, S, Acc) ->
    {S, Acc}.

up(#{id := Id, metadata := Meta} = P, #set{peers = Peers} = S, Acc) ->
    case maps:find(Id, Peers) of
        {ok, {P, _}} -> {S, Acc};
        {ok, _} -> {bump(Id, P, S), [{peer_update, P, Meta} | Acc]};
        error when map_size(Peers) >= ?MAX_PEERS -> {S, Acc};
        error -> {bump(Id, P, S), [{peer_up, P, Meta} | Acc]}
    end.

bump(Id, P, #set{peers = Peers, gen = G0}) ->
    G = G0 + 1,
    #set{peers = Peers#{Id => {P, G}}, gen = G}.
