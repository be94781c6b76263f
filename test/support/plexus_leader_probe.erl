%% @doc A `plexus_leader' callback module for the tests and the benchmark: it records
%% every callback with a wall-clock timestamp (microseconds; the nodes of a test share
%% one host clock) and, when given a sink pid, sends each record there as
%% `{probe, Node, TimeUs, Event}'.
%%
%% Args: `#{sink => pid() | none, stop_on => atom() | none}'. `stop_on' names a
%% callback (e.g. `handle_become_leader') that answers `{stop, probe_stop, State}',
%% for the tests of that path.
-module(plexus_leader_probe).
-behaviour(plexus_leader).

-export([init/1, handle_call/3, handle_info/2, terminate/2, handle_become_leader/1,
         handle_become_follower/2, handle_peer_joined/2, handle_peer_left/2,
         handle_term_changed/3]).

init(Args) when is_map(Args) ->
    {ok, #{sink => maps:get(sink, Args, none), stop_on => maps:get(stop_on, Args, none),
           events => []}};
init(bad_return) ->
    {nonsense};
init(refuse) ->
    {stop, refused}.

handle_call(events, _From, S = #{events := Es}) ->
    {reply, lists:reverse(Es), S};
handle_call(clear, _From, S) ->
    {reply, ok, S#{events := []}};
handle_call({api, F, Args}, _From, S) ->
    %% calls the plexus_leader API from inside a callback of the same process
    {reply, apply(plexus_leader, F, Args), S};
handle_call(crash_return, _From, _S) ->
    nonsense;
handle_call(Other, _From, S) ->
    {reply, {echo, Other}, S}.

handle_info(Msg, S) ->
    {ok, S1} = note({info, Msg}, S),
    {noreply, S1}.

terminate(_Reason, _S) ->
    ok.

handle_become_leader(S) ->
    maybe_stop(handle_become_leader, note({leader, self()}, S)).

handle_become_follower(Leader, S) ->
    maybe_stop(handle_become_follower, note({follower, Leader}, S)).

handle_peer_joined(Peer, S) ->
    maybe_stop(handle_peer_joined, note({peer_joined, Peer}, S)).

handle_peer_left(Peer, S) ->
    maybe_stop(handle_peer_left, note({peer_left, Peer}, S)).

handle_term_changed(Old, New, S) ->
    maybe_stop(handle_term_changed, note({term, Old, New}, S)).

note(Event, S = #{sink := Sink, events := Es}) ->
    T = erlang:system_time(microsecond),
    _ = is_pid(Sink) andalso erlang:send(Sink, {probe, node(), T, Event}, [noconnect]),
    {ok, S#{events := lists:sublist([{T, Event} | Es], 1000)}}.

maybe_stop(Cb, {ok, S = #{stop_on := Cb}}) -> {stop, probe_stop, S};
maybe_stop(_, Result) -> Result.
