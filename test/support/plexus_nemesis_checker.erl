%% @doc The safety checker of the nemesis suite (pure): from every claim "node L led term
%% T" gathered during a run, the terms that had more than one leader (Raft §5.2: at most
%% one leader per term; `plexus_leader''s first guarantee in README.md).
%%
%% A claim is `{Term, LeaderNode, Source}': `Source' says who saw it (a witness line, a
%% poll of `plexus_leader:info/1'), only for the report. Claims are kept over the whole
%% run, so two leaders of one term are caught even when they never overlapped in time.
-module(plexus_nemesis_checker).

-export([claims_of_events/1, claims_of_info/1, violations/1]).

-type claim() :: {Term :: non_neg_integer(), Leader :: node(), Source :: term()}.
-type violation() :: {two_leaders, Term :: non_neg_integer(), [{node(), [term()]}]}.
-export_type([claim/0, violation/0]).

%% @doc Claims in the events a `plexus_nemesis_witness' wrote.
-spec claims_of_events([tuple()]) -> [claim()].
claims_of_events(Events) ->
    lists:flatmap(fun({leader, T, N}) when is_integer(T), is_atom(N) ->
                          [{T, N, {became_leader, N}}];
                     ({follows, T, L, N}) when is_integer(T), is_atom(L) ->
                          [{T, L, {followed_by, N}}];
                     (_) ->
                          []
                  end, Events).

%% @doc The claim in one `plexus_leader:info/1' answer: the leader it names in its term
%% (itself when it leads), if any.
-spec claims_of_info(map()) -> [claim()].
claims_of_info(#{term := T, leader_node := L, node := N}) when is_atom(L), L =/= undefined ->
    [{T, L, {info_of, N}}];
claims_of_info(_) ->
    [].

%% @doc Every term claimed for two or more distinct leaders, with who saw each (at most
%% three sources per leader, to keep reports short).
-spec violations([claim()]) -> [violation()].
violations(Claims) ->
    ByTerm = lists:foldl(fun({T, L, Src}, Acc) ->
                                 maps:update_with(T, fun(M) -> add_source(L, Src, M) end,
                                                  #{L => [Src]}, Acc)
                         end, #{}, Claims),
    [{two_leaders, T, lists:sort(maps:to_list(M))}
     || {T, M} <- lists:sort(maps:to_list(ByTerm)), map_size(M) > 1].

add_source(L, Src, M) ->
    maps:update_with(L, fun(Srcs) when length(Srcs) >= 3 -> Srcs;
                           (Srcs) -> lists:usort([Src | Srcs])
                        end, [Src], M).
