%% @private
%% @doc The election events of `plexus_leader' (README, "Telemetry"), emitted through
%% `plexus_telemetry'. The runner hands over what the policy decided: the role after
%% every event (`observe/3', which starts the election clock when the node begins to
%% campaign) and each election callback as it runs it (`callback/4', which turns
%% `handle_become_leader', `handle_become_follower' and `handle_term_changed' into
%% `[plexus, leader, elected | stepped_down | term_changed]'); `stopped/2' reports a
%% leader that stops. The policy stays pure: it never sees the clock this keeps.
-module(plexus_leader_events).

-export([new/0, observe/3, callback/4, stopped/2]).

-export_type([clocks/0]).

%% Monotonic ms: when this node began its current campaign (pre-candidate or
%% candidate since it last was a follower), and when it became leader.
-record(clocks, {campaign :: integer() | undefined,
                 leader :: integer() | undefined}).

-opaque clocks() :: #clocks{}.
%% What every event carries: the process's name, node, cluster id and current term.
-type meta() :: #{name := atom(), node := node(), cluster_id := term(),
                  term := non_neg_integer()}.

-spec new() -> clocks().
new() -> #clocks{}.

%% @doc The role after an event: a campaign's clock starts with its first
%% pre-candidate or candidate role and is dropped when the node falls back to follower
%% without winning.
-spec observe(plexus_election:role(), integer(), clocks()) -> clocks().
observe(Role, Now, C = #clocks{campaign = undefined})
  when Role =:= pre_candidate; Role =:= candidate ->
    C#clocks{campaign = Now};
observe(follower, _Now, C) ->
    C#clocks{campaign = undefined};
observe(_, _, C) ->
    C.

%% @doc An election callback the runner is about to run, as an event.
-spec callback(atom(), [term()], meta(), clocks()) -> clocks().
callback(handle_become_leader, [], Meta, C = #clocks{campaign = Start}) ->
    Now = now_ms(),
    Duration = case Start of undefined -> 0; _ -> Now - Start end,
    plexus_telemetry:execute([plexus, leader, elected], #{duration_ms => Duration}, Meta),
    C#clocks{campaign = undefined, leader = Now};
callback(handle_become_follower, [Leader], Meta, C = #clocks{leader = Since})
  when Since =/= undefined ->
    step_down(Meta#{leader => Leader, reason => became_follower}, Since),
    C#clocks{leader = undefined};
callback(handle_term_changed, [Old, New], Meta, C) ->
    plexus_telemetry:execute([plexus, leader, term_changed],
                             #{term => New, previous_term => Old}, Meta),
    C;
callback(_, _, _, C) ->
    C.

%% @doc The process stops: a leader steps down with it.
-spec stopped(meta(), clocks()) -> ok.
stopped(_Meta, #clocks{leader = undefined}) ->
    ok;
stopped(Meta, #clocks{leader = Since}) ->
    step_down(Meta#{leader => undefined, reason => stopped}, Since).

step_down(Meta, Since) ->
    plexus_telemetry:execute([plexus, leader, stepped_down],
                             #{duration_ms => now_ms() - Since}, Meta).

now_ms() -> erlang:monotonic_time(millisecond).
