%% @doc Where a leader keeps its hard state by default (plexus_leader_data_dir): the
%% rule as a pure function, then leaders started by real (test) applications.
-module(plexus_leader_data_dir_tests).

-include_lib("eunit/include/eunit.hrl").

-define(D, plexus_leader_data_dir).
-define(BASE, "/base/plexus").

facts(Overrides) ->
    maps:merge(#{option => undefined, app_env => undefined, release => undefined,
                 app => undefined, base => ?BASE}, Overrides).

%% ------------------------------------------------------------------ the rule

choose_test_() ->
    C = fun(F) -> ?D:choose(facts(F)) end,
    [?_assertEqual({ok, "/opt/d", option},
                   C(#{option => "/opt/d", app_env => "/env", release => "rel", app => app})),
     ?_assertEqual({ok, <<"/opt/b">>, option}, C(#{option => <<"/opt/b">>})),
     ?_assertEqual({ok, "/env", app_env}, C(#{app_env => "/env", release => "rel", app => app})),
     ?_assertEqual({ok, ?BASE ++ "/rel", {release, "rel"}}, C(#{release => "rel", app => app})),
     ?_assertEqual({ok, ?BASE ++ "/my_app", {application, my_app}}, C(#{app => my_app})),
     %% two apps, two directories; two releases, two directories
     ?_assertNotEqual(C(#{app => app_a}), C(#{app => app_b})),
     ?_assertNotEqual(C(#{release => "rel_a", app => app}), C(#{release => "rel_b", app => app})),
     %% a release name that is no safe directory name is not used
     ?_assertEqual({ok, ?BASE ++ "/app", {application, app}}, C(#{release => "../x", app => app})),
     ?_assertEqual({ok, ?BASE ++ "/r.1-b", {release, "r.1-b"}}, C(#{release => <<"r.1-b">>})),
     %% nothing names a directory: refused, never the shared base
     ?_assertMatch({error, {data_dir_required, _}}, C(#{})),
     ?_assertMatch({error, {data_dir_required, _}}, C(#{release => ".."}))].

path_component_test_() ->
    P = fun ?D:path_component/1,
    [?_assertEqual({ok, "my_app"}, P(my_app)),
     ?_assertEqual({ok, "rel-1.0"}, P("rel-1.0")),
     ?_assertEqual({ok, "rel"}, P(<<"rel">>)),
     [?_assertEqual(error, P(X))
      || X <- [undefined, "", ".", "..", "a/b", "a b", "/abs", <<"a/b">>, <<255>>, 42,
               [$a | b]]]].

%% ------------------------------------------------------------------ in applications

%% Every test below runs with the defaults' base in a directory of its own
%% ($XDG_DATA_HOME), no release variables and no plexus data_dir env, restored after.
started_test_() ->
    {setup, fun setup/0, fun cleanup/1,
     fun(Root) ->
             [{"two applications, one leader name: two directories", fun() -> two_apps(Root) end},
              {"an explicit data_dir wins", fun() -> explicit_option(Root) end},
              {"the plexus data_dir env wins over the default", fun() -> app_env(Root) end},
              {"a release names the directory", fun() -> release(Root) end},
              {"the callback module's application", fun() -> module_app(Root) end},
              {"nothing names a directory: refused", fun() -> required(Root) end},
              {"a file at the old shared default is reported", fun() -> old_default(Root) end}]
     end}.

-define(VARS, ["XDG_DATA_HOME", "RELEASE_NAME", "RELX_RELEASE_NAME"]).

setup() ->
    Root = filename:join("/tmp", "plexus_dd_tests." ++ os:getpid()),
    ok = filelib:ensure_path(Root),
    Saved = {[{V, os:getenv(V)} || V <- ?VARS], application:get_env(plexus, data_dir)},
    put(saved, Saved),
    true = os:putenv("XDG_DATA_HOME", Root),
    [os:unsetenv(V) || V <- ?VARS, V =/= "XDG_DATA_HOME"],
    application:unset_env(plexus, data_dir),
    %% the notices of each start stay out of the test output; a test that reads them
    %% registers as pxdd_log_sink
    logger:add_primary_filter(?MODULE, {fun log_to_sink/2, []}),
    {Root, Saved}.

cleanup({Root, {Vars, Env}}) ->
    logger:remove_primary_filter(?MODULE),
    [case Val of false -> os:unsetenv(V); _ -> os:putenv(V, Val) end || {V, Val} <- Vars],
    case Env of {ok, D} -> application:set_env(plexus, data_dir, D); undefined -> ok end,
    ok = file:del_dir_r(Root).

base({Root, _}) -> filename:join(Root, "plexus").

%% Starts application App whose one process is leader Name (Opts), returns the
%% leader's hard-state file, stops the application.
run_app(App, Name, Opts) ->
    ok = application:load({application, App,
                           [{description, "plexus_leader_data_dir_tests"}, {vsn, "1"},
                            {modules, []}, {registered, [Name]},
                            {applications, [kernel, stdlib]},
                            {mod, {plexus_leader_app_probe, {Name, Opts}}}]}),
    try
        ok = application:start(App),
        #{hard_state_file := File} = plexus_leader:info(Name),
        File
    after
        _ = application:stop(App),
        ok = application:unload(App)
    end.

under(Dir, File) ->
    lists:prefix(filename:split(Dir), filename:split(File)).

two_apps(Root) ->
    FileA = run_app(pxdd_app_a, pxdd_same, #{}),
    FileB = run_app(pxdd_app_b, pxdd_same, #{}),
    ?assertNotEqual(FileA, FileB),
    ?assert(under(filename:join(base(Root), "pxdd_app_a"), FileA)),
    ?assert(under(filename:join(base(Root), "pxdd_app_b"), FileB)),
    %% each vote is on disk where it says
    ?assert(filelib:is_regular(FileA)),
    ?assert(filelib:is_regular(FileB)).

explicit_option({Dir, _}) ->
    Mine = filename:join(Dir, "mine"),
    File = run_app(pxdd_app_a, pxdd_same, #{data_dir => Mine}),
    ?assert(under(Mine, File)).

app_env({Dir, _}) ->
    Env = filename:join(Dir, "from_env"),
    ok = application:set_env(plexus, data_dir, Env),
    try
        ?assert(under(Env, run_app(pxdd_app_a, pxdd_same, #{}))),
        %% and the option wins over the env
        Mine = filename:join(Dir, "mine2"),
        ?assert(under(Mine, run_app(pxdd_app_a, pxdd_same, [{data_dir, Mine}])))
    after
        application:unset_env(plexus, data_dir)
    end.

release(Root) ->
    true = os:putenv("RELEASE_NAME", "pxdd_rel"),
    try
        File = run_app(pxdd_app_a, pxdd_same, #{}),
        ?assert(under(filename:join(base(Root), "pxdd_rel"), File))
    after
        os:unsetenv("RELEASE_NAME")
    end.

%% A module made here, in no application's module list.
orphan_module() ->
    Mod = pxdd_orphan_leader,
    Forms = [{attribute, 1, module, Mod},
             {attribute, 2, export, [{init, 1}]},
             {function, 3, init, 1,
              [{clause, 3, [{var, 3, 'S'}], [], [{tuple, 3, [{atom, 3, ok}, {var, 3, 'S'}]}]}]}],
    {ok, Mod, Bin} = compile:forms(Forms),
    {module, Mod} = code:load_binary(Mod, "pxdd_orphan_leader.erl", Bin),
    Mod.

%% Started from a process of no application (this test's), the callback module's
%% application names the directory.
module_app(Root) ->
    Mod = orphan_module(),
    ok = application:load({application, pxdd_lib_app,
                           [{description, "x"}, {vsn, "1"}, {modules, [Mod]},
                            {registered, []}, {applications, [kernel, stdlib]}]}),
    try
        {ok, Pid} = plexus_leader:start(pxdd_mod, Mod, state, #{}),
        #{hard_state_file := File} = plexus_leader:info(Pid),
        ok = plexus_leader:stop(Pid),
        ?assert(under(filename:join(base(Root), "pxdd_lib_app"), File))
    after
        ok = application:unload(pxdd_lib_app)
    end.

required(Root) ->
    Mod = orphan_module(),
    ?assertEqual(undefined, application:get_application(Mod)),
    ?assertMatch({error, {data_dir_required, _}},
                 plexus_leader:start(pxdd_req, Mod, state, #{})),
    ?assertEqual(undefined, whereis(pxdd_req)),
    %% and nothing was written to the shared base
    ?assertEqual([], filelib:wildcard(filename:join([base(Root), "plexus_leader", "**"]))).

log_to_sink(#{level := Level, msg := Msg}, _) ->
    case whereis(pxdd_log_sink) of
        undefined -> ok;
        Sink -> Sink ! {pxdd_log, Level, Msg}
    end,
    stop.

log_text({report, R}) -> io_lib:format("~p", [R]);
log_text({string, S}) -> S;
log_text({Format, Args}) -> io_lib:format(Format, Args).

%% A leader whose hard state sits at the old shared default (the base itself) and who
%% now gets a directory of its own says so, naming the old file.
old_default(Root) ->
    Old = plexus_leader:hard_state_file(base(Root), pxdd_legacy, pxdd_legacy),
    ok = filelib:ensure_dir(Old),
    ok = file:write_file(Old, <<"an older version's vote">>),
    true = register(pxdd_log_sink, self()),
    try
        File = run_app(pxdd_app_a, pxdd_legacy, #{}),
        ?assertNotEqual(Old, File),
        Warnings = [lists:flatten(log_text(M)) || {pxdd_log, warning, M} <- drain()],
        ?assertMatch([_], [W || W <- Warnings, string:find(W, Old) =/= nomatch])
    after
        unregister(pxdd_log_sink),
        ok = file:del_dir_r(filename:join(base(Root), "plexus_leader"))
    end.

drain() ->
    receive M -> [M | drain()]
    after 0 -> []
    end.

%% What a directory must be to hold the hard state (plexus_leader refuses the rest).
usable_test() ->
    [?assert(plexus_leader_data_dir:usable(D)) || D <- ["/var/lib/x", <<"/var/lib/x">>, "/"]],
    [?assertNot(plexus_leader_data_dir:usable(D))
     || D <- ["", <<>>, "var/lib", <<"x">>, "./x", ["/var/", <<"x">>], ["/v", ["x"]], 42, x]].
