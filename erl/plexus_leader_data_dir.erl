%% @doc Where a `plexus_leader' keeps its hard state when the caller did not say.
%%
%% The hard state (term, vote, membership) must belong to one member of one cluster.
%% A directory shared by every program of the account (the old default,
%% `filename:basedir(user_data, "plexus")') lets two unrelated apps that happen to use
%% the same leader name and cluster id read and overwrite one another's vote. So the
%% default is per release, else per application:
%%
%% <ol>
%% <li>the `data_dir' option of `plexus_leader:start_link/4';</li>
%% <li>the `plexus' application's `data_dir' env (`{plexus, [{data_dir, Dir}]}'), used
%%     as it is: it is this release's configuration already;</li>
%% <li>`filename:basedir(user_data, "plexus")' joined with the release name, when the
%%     node runs a release (the boot script's name, `init:script_id/0', else the
%%     `RELEASE_NAME' (Mix) or `RELX_RELEASE_NAME' environment variable);</li>
%% <li>the same base joined with the name of the application that starts the leader
%%     (the application of the starting process, `application:get_application/0',
%%     else the application whose modules include the callback module);</li>
%% <li>none of these: the leader does not start (`{error, {data_dir_required, _}}'),
%%     rather than share a directory.</li>
%% </ol>
%%
%% `choose/1' is the rule, a pure function of the facts; `facts/2' gathers them.
-module(plexus_leader_data_dir).

-export([choose/1, facts/2, base/0, path_component/1, usable/1]).

-export_type([facts/0, source/0, dir/0]).

-type dir() :: file:filename_all().
-type facts() :: #{option := dir() | undefined,
                   app_env := dir() | undefined,
                   release := string() | binary() | undefined,
                   app := atom() | undefined,
                   base := dir()}.
-type source() :: option | app_env | {release, string()} | {application, atom()}.

%% The names the default boot scripts (`start', `start_clean', `start_sasl') carry:
%% such a node runs no release of its own. Older OTP releases used the second.
-define(NO_RELEASE_SCRIPTS, ["Erlang/OTP", "OTP  APN 181 01"]).

%% @doc The directory, by the rule in the module doc, and where it came from;
%% `{error, {data_dir_required, Why}}' when nothing names one.
-spec choose(facts()) -> {ok, dir(), source()} | {error, {data_dir_required, string()}}.
choose(#{option := D}) when D =/= undefined ->
    {ok, D, option};
choose(#{app_env := D}) when D =/= undefined ->
    {ok, D, app_env};
choose(#{release := R, app := App, base := Base}) ->
    case {path_component(R), path_component(App)} of
        {{ok, Rel}, _} -> {ok, filename:join(Base, Rel), {release, Rel}};
        {error, {ok, A}} -> {ok, filename:join(Base, A), {application, App}};
        {error, error} ->
            {error, {data_dir_required,
                     "no release and no application to name the default directory: "
                     "pass the data_dir option or set {plexus, [{data_dir, Dir}]}"}}
    end.

%% @doc Whether `Dir' can hold the hard state: an absolute path, as a flat string or a
%% binary. A relative one names another directory whenever the node starts in another
%% working directory (a service manager's, a shell's), where no hard state and no
%% marker are found: the node silently starts again at term 0 with no vote. An empty
%% one (an unset environment variable read as "") named the root's `plexus_leader'.
%% A deep list crashed `filename:join/1'.
-spec usable(term()) -> boolean().
usable(Dir) when is_binary(Dir); is_list(Dir) ->
    (is_binary(Dir) orelse io_lib:char_list(Dir)) andalso
        filename:pathtype(Dir) =:= absolute;
usable(_) ->
    false.

%% @doc The facts `choose/1' decides from, for a leader with callback module `Module'
%% and options `Opts' (already a map), read in the process that will run the leader
%% (its group leader is the one of the process that starts it).
-spec facts(module(), map()) -> facts().
facts(Module, Opts) ->
    #{option => maps:get(data_dir, Opts, undefined),
      app_env => case application:get_env(plexus, data_dir) of
                     {ok, D} -> D;
                     undefined -> undefined
                 end,
      release => release_name(),
      app => app_of(Module),
      base => base()}.

%% @doc The base of the defaults: `filename:basedir(user_data, "plexus")' (on Linux
%% `$XDG_DATA_HOME/plexus', else `~/.local/share/plexus'). The old default directory.
-spec base() -> dir().
base() ->
    filename:basedir(user_data, "plexus").

%% @doc A release or application name as one directory name: a non-empty atom, string
%% or binary of letters, digits, `_', `-' and `.' (not `.' or `..'), else `error' (an
%% environment variable is not trusted to be a path component).
-spec path_component(term()) -> {ok, string()} | error.
path_component(A) when is_atom(A), A =/= undefined ->
    path_component(atom_to_list(A));
path_component(B) when is_binary(B) ->
    try path_component(unicode:characters_to_list(B))
    catch _:_ -> error
    end;
path_component(S) when is_list(S), S =/= [], S =/= ".", S =/= ".." ->
    case io_lib:char_list(S) andalso lists:all(fun safe_char/1, S) of
        true -> {ok, S};
        false -> error
    end;
path_component(_) ->
    error.

safe_char(C) when C >= $a, C =< $z; C >= $A, C =< $Z; C >= $0, C =< $9 -> true;
safe_char(C) -> C =:= $_ orelse C =:= $- orelse C =:= $..

%% The boot script's name unless it is one of OTP's default scripts, else the
%% variables release tools set in the release's start script.
release_name() ->
    {Script, _Vsn} = init:script_id(),
    case io_lib:char_list(Script) andalso not lists:member(Script, ?NO_RELEASE_SCRIPTS) of
        true -> Script;
        false -> first_env(["RELEASE_NAME", "RELX_RELEASE_NAME"])
    end.

first_env([]) -> undefined;
first_env([Var | Rest]) ->
    case os:getenv(Var) of
        false -> first_env(Rest);
        "" -> first_env(Rest);
        Value -> Value
    end.

app_of(Module) ->
    case application:get_application() of
        {ok, App} -> App;
        undefined ->
            case application:get_application(Module) of
                {ok, App} -> App;
                undefined -> undefined
            end
    end.
