%% @doc Pure EUnit for the discovery peer set (`plexus_discovery_peers'): pushes,
%% complete lists, the events each produces and their order, malformed input, the
%% generation rule that keeps a slow sync from undoing a newer push, and the bound.
%% No process is started.
-module(plexus_discovery_peers_tests).

-include_lib("eunit/include/eunit.hrl").

-define(P(Id), #{id => Id, metadata => #{}}).
-define(P(Id, M), #{id => Id, metadata => M}).

kinds(Events) -> [{K, Id} || {K, #{id := Id}, _} <- Events].

push_up_update_down_test() ->
    S0 = plexus_discovery_peers:new(),
    {S1, E1} = plexus_discovery_peers:apply_changes([{up, ?P(<<"a@h">>)}, {up, ?P(<<"b@h">>)}], S0),
    ?assertEqual([{peer_up, <<"a@h">>}, {peer_up, <<"b@h">>}], kinds(E1)),
    ?assertEqual(2, plexus_discovery_peers:size(S1)),
    %% the same peer again: nothing
    {S1, []} = plexus_discovery_peers:apply_change({up, ?P(<<"a@h">>)}, S1),
    {S2, [{peer_update, #{id := <<"a@h">>}, #{<<"v">> := <<"2">>}}]} =
        plexus_discovery_peers:apply_change({up, ?P(<<"a@h">>, #{<<"v">> => <<"2">>})}, S1),
    {S3, [{peer_down, #{id := <<"b@h">>}, bye}]} =
        plexus_discovery_peers:apply_change({down, <<"b@h">>, bye}, S2),
    ?assertEqual([?P(<<"a@h">>, #{<<"v">> => <<"2">>})], plexus_discovery_peers:list(S3)),
    ?assert(plexus_discovery_peers:is_member(<<"a@h">>, S3)),
    ?assertNot(plexus_discovery_peers:is_member(<<"b@h">>, S3)),
    ?assertEqual(error, plexus_discovery_peers:lookup(<<"b@h">>, S3)),
    %% every change moved the generation on
    ?assertEqual(4, plexus_discovery_peers:gen(S3)).

malformed_changes_ignored_test() ->
    S0 = plexus_discovery_peers:new(),
    Bad = [{up, ?P(not_binary)}, {up, ?P(<<>>)}, {up, ?P(binary:copy(<<"x">>, 256))},
           {up, ?P(<<"q@h">>, #{atom => <<"x">>})}, {up, ?P(<<"q@h">>, not_a_map)},
           {up, not_a_map}, garbage, {down, not_binary, x}, {down, <<"nobody@h">>, why}],
    ?assertEqual({S0, []}, plexus_discovery_peers:apply_changes(Bad, S0)),
    ?assertEqual({S0, []}, plexus_discovery_peers:diff([garbage, ?P(1)], 0, S0)).

metadata_defaults_and_is_normalised_test() ->
    {S, [{peer_up, P, #{}}]} =
        plexus_discovery_peers:apply_change({up, #{id => <<"a@h">>, extra => dropped}},
                                            plexus_discovery_peers:new()),
    ?assertEqual(?P(<<"a@h">>), P),
    ?assertEqual({ok, P}, plexus_discovery_peers:lookup(<<"a@h">>, S)).

diff_test() ->
    {S1, _} = plexus_discovery_peers:apply_changes([{up, ?P(<<"a@h">>)}, {up, ?P(<<"b@h">>)}],
                                                   plexus_discovery_peers:new()),
    Gen = plexus_discovery_peers:gen(S1),
    {S2, E} = plexus_discovery_peers:diff([?P(<<"a@h">>, #{<<"k">> => <<"v">>}), ?P(<<"c@h">>)],
                                          Gen, S1),
    %% ups and updates first, then the downs (reason gone)
    ?assertEqual([{peer_update, <<"a@h">>}, {peer_up, <<"c@h">>}, {peer_down, <<"b@h">>}], kinds(E)),
    [{peer_down, _, gone}] = [X || {peer_down, _, _} = X <- E],
    ?assertEqual([<<"a@h">>, <<"c@h">>], [Id || #{id := Id} <- plexus_discovery_peers:list(S2)]),
    %% the same list again: no event
    ?assertMatch({_, []}, plexus_discovery_peers:diff([?P(<<"a@h">>, #{<<"k">> => <<"v">>}),
                                                        ?P(<<"c@h">>)],
                                                       plexus_discovery_peers:gen(S2), S2)).

%% A sync that started before a push returns a list that does not know of it: the
%% pushed peers stay as the push made them.
slow_sync_does_not_undo_newer_push_test() ->
    {S1, _} = plexus_discovery_peers:apply_change({up, ?P(<<"old@h">>)}, plexus_discovery_peers:new()),
    SyncStart = plexus_discovery_peers:gen(S1),
    {S2, _} = plexus_discovery_peers:apply_changes([{up, ?P(<<"new@h">>)},
                                                    {up, ?P(<<"old@h">>, #{<<"v">> => <<"2">>})}],
                                                   S1),
    %% the stale list has old@h without metadata and lacks new@h
    {S3, E} = plexus_discovery_peers:diff([?P(<<"old@h">>)], SyncStart, S2),
    ?assertEqual([], E),
    ?assertEqual(plexus_discovery_peers:list(S2), plexus_discovery_peers:list(S3)),
    %% a list from after the push does apply
    {_, E2} = plexus_discovery_peers:diff([?P(<<"old@h">>)], plexus_discovery_peers:gen(S3), S3),
    ?assertEqual([{peer_update, <<"old@h">>}, {peer_down, <<"new@h">>}], kinds(E2)).

peer_bound_test() ->
    Ups = [{up, ?P(<<"n", (integer_to_binary(I))/binary, "@h">>)} || I <- lists:seq(1, 100001)],
    {S, E} = plexus_discovery_peers:apply_changes(Ups, plexus_discovery_peers:new()),
    ?assertEqual(100000, plexus_discovery_peers:size(S)),
    ?assertEqual(100000, length(E)),
    %% known peers still update at the bound
    {_, [{peer_update, _, _}]} =
        plexus_discovery_peers:apply_change({up, ?P(<<"n1@h">>, #{<<"a">> => <<"b">>})}, S).

list_sorted_test() ->
    {S, _} = plexus_discovery_peers:apply_changes([{up, ?P(<<"c@h">>)}, {up, ?P(<<"a@h">>)},
                                                   {up, ?P(<<"b@h">>)}],
                                                  plexus_discovery_peers:new()),
    ?assertEqual([<<"a@h">>, <<"b@h">>, <<"c@h">>],
                 [Id || #{id := Id} <- plexus_discovery_peers:list(S)]),
    ?assertEqual([<<"a@h">>, <<"b@h">>, <<"c@h">>], lists:sort(plexus_discovery_peers:ids(S))).
