%% @doc The demo's `plexus_leader' callback module: a job that must run on one node
%% only. While this node leads it does one unit of work every 200 ms, stamped with the
%% term (the fencing token a real side effect would carry); as soon as another node
%% leads, or nobody does, it stops. Every transition is reported to the demo process.
-module(plexus_demo_leader).
-behaviour(plexus_leader).

-export([init/1, handle_become_leader/1, handle_become_follower/2, handle_info/2,
         handle_call/3]).

init(#{report := Pid, name := Name}) ->
    {ok, #{report => Pid, name => Name, timer => undefined, done => 0}}.

handle_become_leader(S = #{name := Name}) ->
    report(S, {leader, plexus_leader:term(Name)}),
    {ok, schedule(S)}.

handle_become_follower(Leader, S) ->
    report(S, {follower, Leader}),
    {ok, cancel(S)}.

handle_info(work, S = #{timer := T, name := Name, done := N}) when T =/= undefined ->
    %% leader only: the timer exists only while leading
    report(S, {work, plexus_leader:term(Name), N + 1}),
    {noreply, schedule(S#{done := N + 1})};
handle_info(_Other, S) ->
    {noreply, S}.

handle_call(done, _From, S = #{done := N}) ->
    {reply, N, S}.

schedule(S) -> S#{timer := erlang:send_after(200, self(), work)}.

cancel(S = #{timer := undefined}) -> S;
cancel(S = #{timer := T}) ->
    _ = erlang:cancel_timer(T),
    S#{timer := undefined}.

report(#{report := Pid}, Event) ->
    Pid ! {demo_leader, node(), Event},
    ok.
