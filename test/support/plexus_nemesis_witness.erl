%% @doc The `plexus_leader' callback module of the nemesis suite: a witness that writes
%% down every leader it sees, so the checker can look for two leaders in one term.
%%
%% Each event is appended as one Erlang term per line to a file (`#{log := File}'):
%% <ul>
%% <li>`{leader, Term, Node}': this process became leader in `Term';</li>
%% <li>`{follows, Term, LeaderNode, Node}': this process follows `LeaderNode' in `Term'
%%     (a follower only learns a leader from that leader's heartbeat of the same term,
%%     so this is a second-hand claim that `LeaderNode' led `Term').</li>
%% </ul>
%% A file, not a message to the test node: the nodes are killed with SIGKILL and the
%% test node is not connected to them. Each line is one `write(2)' on a raw file, so it
%% is in the kernel's page cache before the callback returns and survives the kill
%% (a half-written last line is skipped by `read/1').
-module(plexus_nemesis_witness).
-behaviour(plexus_leader).

-export([init/1, terminate/2, handle_become_leader/1, handle_become_follower/2]).
-export([read/1]).

init(#{log := File}) ->
    ok = filelib:ensure_dir(File),
    {ok, Fd} = file:open(File, [append, raw, binary]),
    {ok, #{fd => Fd}}.

terminate(_Reason, #{fd := Fd}) ->
    _ = file:close(Fd),
    ok.

handle_become_leader(S) ->
    %% answered from the snapshot the callback runs in: the term it became leader in
    write({leader, plexus_leader:term(self()), node()}, S).

handle_become_follower(Leader, S) when is_pid(Leader) ->
    write({follows, plexus_leader:term(self()), node(Leader), node()}, S);
handle_become_follower(undefined, S) ->
    {ok, S}.

write(Event, S = #{fd := Fd}) ->
    ok = file:write(Fd, io_lib:format("~w.~n", [Event])),
    {ok, S}.

%% @doc The events of one witness file, oldest first; lines that do not parse (a write
%% cut short by SIGKILL) are left out.
-spec read(file:filename_all()) -> [tuple()].
read(File) ->
    case file:read_file(File) of
        {ok, Bin} ->
            [T || Line <- binary:split(Bin, <<"\n">>, [global]), Line =/= <<>>,
                  {ok, T} <- [parse(binary_to_list(Line))]];
        {error, _} ->
            []
    end.

parse(Line) ->
    case erl_scan:string(Line) of
        {ok, Toks, _} -> catch erl_parse:parse_term(Toks);
        _ -> error
    end.
