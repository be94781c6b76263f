%% @doc Start options as Erlang and Elixir users write them: every `start_link/1' and
%% `child_spec/1' of plexus takes a map or a keyword list / proplist (`[{adapter, gossip}]',
%% Elixir's `[adapter: :gossip]'), and `[]' for the defaults, because Elixir's
%% `{Mod, Opts}' child spec calls `Mod:child_spec(Opts)' and a bare `Mod' calls
%% `Mod:child_spec([])'. This module only normalises the shape; each module still checks
%% the option names and values it knows.
-module(plexus_opts).

-export([to_map/1, to_map_or_error/1, unknown/2]).

%% @doc A map as it is; a list of `{Key, Value}' pairs or bare atoms (proplist shorthand
%% for `{Atom, true}') as a map, the first occurrence of a key winning (as in
%% `proplists:get_value/2' and Elixir's `Keyword.get/2'). Anything else, including an
%% improper list or a list element of another shape, is `{error, {bad_options, Term}}'.
-spec to_map(term()) -> {ok, map()} | {error, {bad_options, term()}}.
to_map(M) when is_map(M) ->
    {ok, M};
to_map(L) when is_list(L) ->
    case is_option_list(L) of
        true -> {ok, proplists:to_map(L)};
        false -> {error, {bad_options, L}}
    end;
to_map(Other) ->
    {error, {bad_options, Other}}.

%% @doc As `to_map/1' for `child_spec/1', which has no error return: raises
%% `error({bad_options, Term})'.
-spec to_map_or_error(term()) -> map().
to_map_or_error(Opts) ->
    case to_map(Opts) of
        {ok, M} -> M;
        {error, Reason} -> erlang:error(Reason, [Opts])
    end.

%% @doc The first option (in term order) that is not one of `Known', as
%% `{unknown_option, Key}', or `none'. A misspelt option (`data_dir' as `datadir')
%% must not start a server with the default in its place.
-spec unknown(map(), [term()]) -> none | {unknown_option, term()}.
unknown(Opts, Known) ->
    case lists:sort(maps:keys(maps:without(Known, Opts))) of
        [] -> none;
        [K | _] -> {unknown_option, K}
    end.

%% Keys are not restricted to atoms (a map may use any term), but a list element must
%% be a pair or an atom, or it is not an option list at all.
is_option_list([]) -> true;
is_option_list([{_, _} | T]) -> is_option_list(T);
is_option_list([A | T]) when is_atom(A) -> is_option_list(T);
is_option_list(_) -> false.
