-module(plexus_opts_tests).
-include_lib("eunit/include/eunit.hrl").

map_as_is_test() ->
    ?assertEqual({ok, #{a => 1}}, plexus_opts:to_map(#{a => 1})).

empty_list_is_defaults_test() ->
    ?assertEqual({ok, #{}}, plexus_opts:to_map([])).

keyword_list_test() ->
    ?assertEqual({ok, #{adapter => gossip, sync_interval_ms => 100}},
                 plexus_opts:to_map([{adapter, gossip}, {sync_interval_ms, 100}])).

first_occurrence_wins_test() ->
    ?assertEqual({ok, #{a => 1}}, plexus_opts:to_map([{a, 1}, {a, 2}])).

bare_atom_is_true_test() ->
    ?assertEqual({ok, #{connect => true}}, plexus_opts:to_map([connect])).

garbage_test_() ->
    [?_assertEqual({error, {bad_options, G}}, plexus_opts:to_map(G))
     || G <- [42, <<"adapter">>, {adapter, gossip}, [{a, 1} | b], [{a, 1, 2}], ["x"], [1]]].

or_error_test() ->
    ?assertEqual(#{a => 1}, plexus_opts:to_map_or_error([{a, 1}])),
    ?assertError({bad_options, 42}, plexus_opts:to_map_or_error(42)).
