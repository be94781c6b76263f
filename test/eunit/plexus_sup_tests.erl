%% @doc The plexus application's supervisor: a default discovery facade starts with the
%% app (beam adapter, works on a node that is not distributed) unless configured off.
-module(plexus_sup_tests).

-include_lib("eunit/include/eunit.hrl").

discovery_config_test_() ->
    C = fun plexus_sup:discovery_config/1,
    [?_assertEqual([#{}], C(undefined)),
     ?_assertEqual([#{}], C({ok, true})),
     ?_assertEqual([], C({ok, false})),
     ?_assertEqual([#{adapter => none}], C({ok, #{adapter => none}})),
     ?_assertEqual([[{adapter, none}]], C({ok, [{adapter, none}]})),
     ?_assertEqual([#{name => a}, #{name => b}], C({ok, [#{name => a}, #{name => b}]})),
     ?_assertError({bad_options, {discovery, 42}}, C({ok, 42}))].

%% Runs F with the plexus application started with `discovery' set to Env (`unset'
%% for none), stopping everything it started after.
with_app(Env, F) ->
    Old = application:get_env(plexus, discovery),
    _ = application:load(plexus),
    case Env of
        unset -> application:unset_env(plexus, discovery);
        _ -> application:set_env(plexus, discovery, Env)
    end,
    {ok, Started} = application:ensure_all_started(plexus),
    try F()
    after
        [ok = application:stop(A) || A <- lists:reverse(Started)],
        case Old of
            {ok, V} -> application:set_env(plexus, discovery, V);
            undefined -> application:unset_env(plexus, discovery)
        end
    end.

default_discovery_test_() ->
    {timeout, 60,
     fun() ->
             %% before the app: no server, the error users met
             ?assertEqual(undefined, whereis(plexus_discovery)),
             ?assertEqual({error, {sync_failed, not_running}}, plexus_discovery:snapshot()),
             with_app(unset, fun() ->
                 ?assert(is_pid(whereis(plexus_discovery))),
                 {ok, Peers} = plexus_discovery:snapshot(),
                 ?assertEqual(length(nodes()), length(Peers)),
                 ?assertEqual(up, plexus_discovery:health()),
                 ?assertMatch(#{adapter := plexus_discovery_beam}, plexus_discovery:health_info())
             end),
             ?assertEqual(undefined, whereis(plexus_discovery))
     end}.

discovery_off_test_() ->
    {timeout, 60,
     fun() ->
             with_app(false, fun() ->
                 ?assertEqual(undefined, whereis(plexus_discovery)),
                 ?assertEqual({error, {sync_failed, not_running}}, plexus_discovery:snapshot())
             end)
     end}.

configured_discovery_test_() ->
    {timeout, 60,
     fun() ->
             with_app([{name, pxsup_disco}, {adapter, none}], fun() ->
                 ?assertEqual({ok, []}, plexus_discovery:snapshot(pxsup_disco)),
                 %% configured servers replace the default one
                 ?assertEqual(undefined, whereis(plexus_discovery))
             end)
     end}.
