%% @doc EUnit tests of the `plexus_comms' process against raw requests, as another
%% node's process can make them without the API's checks (the rules themselves are in
%% plexus_comms_core_tests, the links in plexus_comms_SUITE).
-module(plexus_comms_tests).

-include_lib("eunit/include/eunit.hrl").

%% Each of these crashed the server: a priority the core does not know, a subscriber
%% that is a name (the next delivery sent to it with `!' raised badarg) or a number
%% (erlang:monitor/2 raised badarg). They are unknown calls now.
raw_requests_test() ->
    {ok, Pid} = plexus_comms:start(#{name => comms_raw}),
    try
        [?assertEqual({error, unknown_call}, gen_server:call(Pid, Req))
         || Req <- [{send, 'x@h', urgent, d}, {send, 123, normal, d},
                    {subscribe, nobody_registered}, {subscribe, 123},
                    {subscribe, {comms_raw, 'x@h'}}]],
        Pid ! {plexus_comms, 'x@h', normal, hello},      % delivered to no subscriber
        ?assertMatch(#{received := 1}, plexus_comms:info(Pid)),
        %% the API still works
        ok = plexus_comms:subscribe(comms_raw),
        Pid ! {plexus_comms, 'x@h', low, hello},
        receive {plexus_comms, 'x@h', low, hello} -> ok after 5000 -> error(timeout) end,
        ?assertEqual({ok, queued}, plexus_comms:send_msg(comms_raw, 'x@h', d, critical))
    after
        plexus_comms:stop(Pid)
    end.
