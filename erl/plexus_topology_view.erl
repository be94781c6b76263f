%% @doc The decisions of `plexus_topology', as pure functions: a membership view plus
%% the health reports of `plexus_monitor' in, roles out. No process, no clock, no
%% messages: `plexus_topology' feeds events in and carries announcements out.
%%
%% The rule (every node that holds the same view and health computes the same roles):
%% <ol>
%% <li>Members that the monitor calls `suspect' or `down' sit out: roles are computed
%%     over the healthy members only (this node always counts itself healthy). They
%%     come back as soon as the monitor calls them healthy (or up) again. A frozen
%%     commander therefore loses command after the monitor's `suspect_after_ms', not
%%     after the distribution's net_ticktime.</li>
%% <li>Below `quorum_size' healthy members nobody commands and nobody is wingmate.</li>
%% <li>Seniority (the C core, `seniority/2'): the most senior
%%     member (smallest start time, ties by node name) is the commander; a member
%%     promoted to `relay' is a relay; the most senior other member is the wingmate;
%%     everyone else observes.</li>
%% <li>Operator override, `promote(Node, wingmate)': the node becomes the designated
%%     successor of the commander of the moment. It takes that commander's seniority,
%%     ranked directly behind it (its rank key is the commander's, with its own name
%%     appended after a 0 byte, which no node name contains), and keeps its own if that
%%     is better. So while that commander is healthy it commands and the promoted node
%%     is the wingmate; when it is suspect, down or gone the promoted node commands;
%%     when it is healthy again it commands again (it is still more senior). While a
%%     promoted wingmate is present and not commander, it is the wingmate, whatever
%%     seniority says; of several, the best ranked. The promotion is carried in the
%%     node's announcements, so every node ranks it the same. `observer' takes any
%%     promotion back.</li>
%% </ol>
-module(plexus_topology_view).

-export([new/3, handle/2, promotion/2, announcement/1, roles/1, commander/1, members/1,
         quorum/1, is_member/2, healthy/1, seniority/2]).

-export_type([view/0, promotion/0, event/0, role/0, status/0]).

-type role() :: commander | wingmate | observer | relay.
%% A wingmate promotion carries the rank key of the commander it backs.
-type promotion() :: none | relay | {wingmate, non_neg_integer(), binary()}.
-type status() :: suspect | down.
-type event() :: {announce, node(), non_neg_integer(), promotion()}
               | {nodedown, node()}
               | {promote_self, promotion()}
               | {monitor, {node_up, node() | binary()}}
               | {monitor, {node_down, node() | binary()}}
               | {monitor, {status_change, node() | binary(), atom(), atom()}}
               | {monitor_snapshot, [{node() | binary(), healthy | status()}]}
               | monitor_lost.

-record(view, {
    self :: node(),
    quorum :: non_neg_integer(),
    %% node => {StartTime, Promotion}, this node included
    members :: #{node() => {non_neg_integer(), promotion()}},
    %% what the monitor says of nodes that are not healthy, keyed by name bytes (the
    %% monitor names nodes by binary when its source is the C node)
    health = #{} :: #{binary() => status()},
    roles = #{} :: #{node() => role()},
    commander = none :: node() | none
}).
-opaque view() :: #view{}.

%% A start time the seniority rule takes: the NIF reads 64 bits. A peer's announcement
%% of a later one crashed the process (badarg in assign/1), and its restart asked the
%% peer for its announcement again.
-define(IS_START(T), (is_integer(T) andalso T >= 0 andalso T < 1 bsl 64)).

%% ------------------------------------------------------------------ building

%% @doc A view holding only this node.
-spec new(node(), non_neg_integer(), non_neg_integer()) -> view().
new(Self, Start, Quorum) when is_atom(Self), ?IS_START(Start),
                              is_integer(Quorum), Quorum >= 0 ->
    assign(#view{self = Self, quorum = Quorum, members = #{Self => {Start, none}}}).

%% @doc The view after one event. Announcements are taken as given: the caller drops
%% those from nodes it is not connected to. One whose start time the seniority rule
%% cannot take (2^64 or more) is dropped.
-spec handle(event(), view()) -> view().
handle({announce, Node, Start, Promotion}, V = #view{self = Self})
  when Node =/= Self, ?IS_START(Start) ->
    assign(V#view{members = (V#view.members)#{Node => {Start, Promotion}}});
handle({announce, _Self, _, _}, V) ->
    V;
handle({nodedown, Node}, V = #view{self = Self}) when Node =/= Self ->
    assign(V#view{members = maps:remove(Node, V#view.members)});
handle({nodedown, _Self}, V) ->
    V;
handle({promote_self, Promotion}, V = #view{self = Self, members = M}) ->
    {Start, _} = maps:get(Self, M),
    assign(V#view{members = M#{Self => {Start, Promotion}}});
handle({monitor, {node_up, N}}, V) ->
    set_health(N, healthy, V);
handle({monitor, {node_down, N}}, V) ->
    set_health(N, down, V);
handle({monitor, {status_change, N, _From, To}}, V)
  when To =:= healthy; To =:= suspect; To =:= down ->
    set_health(N, To, V);
handle({monitor, _Other}, V) ->
    V;
handle({monitor_snapshot, Statuses}, V) ->
    Health = maps:from_list([{key(N), S} || {N, S} <- Statuses, S =:= suspect orelse S =:= down]),
    assign(V#view{health = Health});
handle(monitor_lost, V) ->
    %% no health reports any more: back to what the connections say
    assign(V#view{health = #{}}).

%% @doc What `promote(ThisNode, Role)' records for this node: `relay', no promotion
%% (`observer'), or the successor of the current commander (`wingmate').
-spec promotion(relay | observer | wingmate, view()) ->
    {ok, promotion()} | {error, no_commander | is_commander}.
promotion(relay, _V) -> {ok, relay};
promotion(observer, _V) -> {ok, none};
promotion(wingmate, #view{commander = none}) -> {error, no_commander};
promotion(wingmate, #view{commander = Self, self = Self}) -> {error, is_commander};
promotion(wingmate, V = #view{commander = C}) ->
    {Start, Name} = rank(C, V),
    {ok, {wingmate, Start, Name}}.

%% @doc This node's start time and promotion, as it announces them.
-spec announcement(view()) -> {non_neg_integer(), promotion()}.
announcement(#view{self = Self, members = M}) -> maps:get(Self, M).

%% ------------------------------------------------------------------ reading

%% @doc Roles of the healthy members.
-spec roles(view()) -> #{node() => role()}.
roles(#view{roles = R}) -> R.

-spec commander(view()) -> node() | none.
commander(#view{commander = C}) -> C.

%% @doc Every member announced over a live connection, healthy or not.
-spec members(view()) -> [node()].
members(#view{members = M}) -> lists:sort(maps:keys(M)).

%% @doc The members that count for roles.
-spec healthy(view()) -> [node()].
healthy(V) -> lists:sort(maps:keys(roles(V))).

-spec is_member(node(), view()) -> boolean().
is_member(Node, #view{members = M}) -> maps:is_key(Node, M).

-spec quorum(view()) -> non_neg_integer().
quorum(#view{quorum = Q}) -> Q.

%% ------------------------------------------------------------------ the rule

set_health(N, Status, V = #view{health = H}) when is_atom(N); is_binary(N) ->
    H1 = case Status of
             healthy -> maps:remove(key(N), H);
             _ -> H#{key(N) => Status}
         end,
    case H1 =:= H of
        true -> V;
        false -> assign(V#view{health = H1})
    end;
set_health(_, _, V) ->
    V.

key(N) when is_atom(N) -> atom_to_binary(N, utf8);
key(N) when is_binary(N) -> N.

counts(N, #view{self = Self, health = H}) ->
    N =:= Self orelse not maps:is_key(key(N), H).

%% A member's rank key: its own seniority, or (promoted wingmate) the one it backs with
%% its name behind a 0 byte, whichever is more senior.
rank(N, #view{members = M}) ->
    {Start, Promotion} = maps:get(N, M),
    Own = {Start, key(N)},
    case Promotion of
        {wingmate, BStart, BName} -> min(Own, {BStart, <<BName/binary, 0, (key(N))/binary>>});
        _ -> Own
    end.

%% @doc The seniority rule (c_src/core/topology.c, through the NIF): members are
%% `{Name, StartTime, Promoted}'; smaller start time is more senior, ties broken by
%% name bytes. Returns the roles in input order and the commander's name, or `none'
%% when the view is smaller than `QuorumSize'. `{error, invalid_argument}' for an
%% empty or duplicate name, `{error, too_big}' beyond 4096 members.
-spec seniority([{binary(), non_neg_integer(), boolean()}], non_neg_integer()) ->
    {ok, [role()], binary() | none} | {error, invalid_argument | too_big}.
seniority(Members, QuorumSize) -> plexus_nif:topology_assign(Members, QuorumSize).

%% Seniority by the C core over the healthy members' rank keys, then the wingmate
%% override. Erlang term order on {Start, Binary} is the C core's order (start first,
%% then bytes, a prefix first), which the wingmate pick below relies on.
assign(V = #view{members = M, quorum = Q}) ->
    Nodes = lists:sort([N || N <- maps:keys(M), counts(N, V)]),
    Ranked = [{N, rank(N, V), element(2, maps:get(N, M))} || N <- Nodes],
    Input = [{Name, Start, P =:= relay} || {_, {Start, Name}, P} <- Ranked],
    {ok, Roles0, Boss} = seniority(Input, Q),
    Commander = case Boss of
                    none -> none;
                    _ -> hd([N || {N, {_, Name}, _} <- Ranked, Name =:= Boss])
                end,
    Roles1 = maps:from_list(lists:zip(Nodes, Roles0)),
    Promoted = lists:sort([{Key, N} || {N, Key, {wingmate, _, _}} <- Ranked, N =/= Commander]),
    Roles = case {Commander, Promoted} of
                {none, _} -> Roles1;
                {_, []} -> Roles1;
                {_, [{_, W} | _]} ->
                    maps:map(fun(N, _) when N =:= W -> wingmate;
                                (_, wingmate) -> observer;
                                (_, R) -> R
                             end, Roles1)
            end,
    V#view{roles = Roles, commander = Commander}.
