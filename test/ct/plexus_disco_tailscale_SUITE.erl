%% @doc Tailscale discovery with a fake `tailscale' executable on PATH (written by the
%% fixture) printing a status file the test controls: tag filter, offline peers,
%% MagicDNS names or IPs, and failures (malformed JSON, a non-zero exit, a hung
%% subprocess killed at its timeout or with the sync the facade kills, a missing
%% executable) that degrade health without losing peers or making atoms.
-module(plexus_disco_tailscale_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([tags_and_names/1, options/1, failures/1, killed_sync_kills_subprocess/1]).

all() -> [tags_and_names, options, failures, killed_sync_kills_subprocess].

init_per_suite(Config) ->
    Fx0 = plexus_disco_fixture:setup(tailscale, Config),
    {Fx1, _} = plexus_disco_fixture:add_peer(Fx0, 1),
    {Fx2, _} = plexus_disco_fixture:add_peer(Fx1, 2),
    [{fx, Fx2} | Config].

end_per_suite(Config) ->
    plexus_disco_fixture:teardown(?config(fx, Config)).

start(Name, Custom) ->
    start(Name, Custom, 100).

start(Name, Custom, IntervalMs) ->
    {ok, P} = plexus_discovery:start_link(#{name => Name, adapter => tailscale,
                                           sync_interval_ms => IntervalMs,
                                           sync_timeout_ms => 3000,
                                           custom => Custom}),
    unlink(P),
    Name.

ids(Name) ->
    {ok, Ps} = plexus_discovery:snapshot(Name),
    lists:sort([Id || #{id := Id} <- Ps]).

tags_and_names(_Config) ->
    %% tailscale found on PATH (the fake): tag:plexus peers that are online
    start(ts_a, #{basename => "app", tag => <<"tag:plexus">>}),
    ok = plexus_disco_fixture:wait(
           fun() -> ids(ts_a) =:= [<<"app@peer1.tailnet.ts.net">>, <<"app@peer2.tailnet.ts.net">>] end,
           5000),
    {ok, #{metadata := #{<<"address">> := <<"100.64.0.", _/binary>>,
                         <<"hostname">> := <<"peer1">>, <<"tags">> := <<"tag:plexus">>}}} =
        plexus_discovery:lookup(ts_a, <<"app@peer1.tailnet.ts.net">>),
    ok = plexus_discovery:stop(ts_a).

options(_Config) ->
    start(ts_all, #{basename => "app", online_only => false}),
    ok = plexus_disco_fixture:wait(fun() -> length(ids(ts_all)) =:= 4 end, 5000),
    ok = plexus_discovery:stop(ts_all),
    start(ts_ip, #{basename => "app", tag => "tag:plexus", use => ip}),
    ok = plexus_disco_fixture:wait(
           fun() -> ids(ts_ip) =:= [<<"app@100.64.0.1">>, <<"app@100.64.0.2">>] end, 5000),
    ok = plexus_discovery:stop(ts_ip).

failures(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "ts-bad"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Out = filename:join(Dir, "out"),
    Script = filename:join(Dir, "tailscale"),
    ok = file:write_file(Script, ["#!/bin/sh\n",
                                  "case \"$(cat '", Out, ".mode')\" in\n",
                                  "  exit) echo nope; exit 3;;\n",
                                  "  hang) exec sleep 30;;\n",
                                  "  *) exec cat '", Out, "';;\n",
                                  "esac\n"]),
    ok = file:change_mode(Script, 8#755),
    Good = file:read_file(maps:get(status, ?config(fx, Config))),
    {ok, GoodBin} = Good,
    ok = file:write_file(Out, GoodBin),
    ok = file:write_file(Out ++ ".mode", "cat"),
    %% Only the syncs asked for below run (the first is at start): a periodic sync
    %% after the hang would fail again and, on a loaded machine, could make the third
    %% failure in a row (down) before the health check below.
    start(ts_bad, #{basename => "app", tag => "tag:plexus", tailscale_bin => Script,
                    timeout_ms => 500}, 3600000),
    ok = plexus_disco_fixture:wait(fun() -> length(ids(ts_bad)) =:= 2 end, 5000),
    Before = ids(ts_bad),
    _ = plexus_discovery:health_info(ts_bad),
    Atoms0 = erlang:system_info(atom_count),
    Cases = [{"cat", <<"{\"Peer\": {\"x\": ">>}, {"cat", <<"[]">>},
             {"cat", <<"{\"Peer\": 5}">>}, {"cat", <<"{\"Self\":{},\"Peer\":{\"k\":{\"DNSName\":\"bad name!.\",\"Tags\":[\"tag:plexus\"],\"Online\":true}}}">>},
             {"exit", <<>>}, {"hang", <<>>}],
    [begin
         ok = file:write_file(Out, Body),
         ok = file:write_file(Out ++ ".mode", Mode),
         R = plexus_discovery:sync_now(ts_bad),
         case Body of
             <<"{\"Self", _/binary>> -> ok = R; %% valid JSON, every peer dropped
             _ -> {error, _} = R
         end
     end || {Mode, Body} <- Cases],
    ?assertEqual(Atoms0, erlang:system_info(atom_count)),
    %% the entry with a bad name made a successful but empty sync; the hang was killed
    [] = ids(ts_bad),
    ?assertNotEqual([], Before),
    {degraded, _} = plexus_discovery:health(ts_bad),
    ok = plexus_discovery:stop(ts_bad),
    start(ts_missing, #{basename => "app", tailscale_bin => filename:join(Dir, "missing")}),
    {error, {sync_failed, {spawn_failed, _}}} = plexus_discovery:sync_now(ts_missing),
    ok = plexus_discovery:stop(ts_missing).

%% The facade kills a sync at sync_timeout_ms (here 300 ms), before the adapter's own
%% timeout_ms (60 s) could kill the subprocess: the hung `tailscale' used to live on,
%% one more every sync (6 in 30 s with the defaults). Now it goes with the sync.
killed_sync_kills_subprocess(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "ts-hung"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Pids = filename:join(Dir, "pids"),
    Script = filename:join(Dir, "tailscale"),
    %% exec keeps the pid: the one written is the one that hangs
    ok = file:write_file(Script, ["#!/bin/sh\necho $$ >> '", Pids, "'\nexec sleep 300\n"]),
    ok = file:change_mode(Script, 8#755),
    {ok, P} = plexus_discovery:start_link(#{name => ts_hung, adapter => tailscale,
                                           sync_interval_ms => 3600000,
                                           sync_timeout_ms => 300,
                                           custom => #{basename => "app",
                                                       tailscale_bin => Script,
                                                       timeout_ms => 60000}}),
    unlink(P),
    [{error, {timeout, 300}} = plexus_discovery:sync_now(ts_hung) || _ <- [1, 2, 3]],
    ok = plexus_discovery:stop(ts_hung),
    {ok, Bin} = file:read_file(Pids),
    OsPids = [binary_to_list(L) || L <- binary:split(Bin, <<"\n">>, [global, trim_all])],
    ?assert(length(OsPids) >= 3),
    Alive = fun() -> [O || O <- OsPids, os:cmd("kill -0 " ++ O ++ " 2>/dev/null && echo y") =:= "y\n"] end,
    case plexus_disco_fixture:wait(fun() -> Alive() =:= [] end, 5000) of
        ok -> ok;
        _ ->
            Left = Alive(),
            [os:cmd("kill -9 " ++ O) || O <- Left],
            ct:fail({hung_subprocesses_left, Left})
    end.
