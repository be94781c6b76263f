%% @doc EUnit tests of `plexus_nif:fsync_dir/1' (c_src/nif/nif_fsync.c), the directory
%% fsync that makes plexus_leader's hard-state rename durable.
-module(plexus_nif_fsync_tests).

-include_lib("eunit/include/eunit.hrl").

tmp_dir() ->
    D = filename:join(["/tmp", "plexus_fsync_tests." ++ os:getpid(),
                       integer_to_list(erlang:unique_integer([positive]))]),
    ok = filelib:ensure_path(D),
    D.

syncs_a_directory_test() ->
    D = tmp_dir(),
    ?assertEqual(ok, plexus_nif:fsync_dir(list_to_binary(D))),
    ?assertEqual(ok, plexus_nif:fsync_dir(<<"/">>)).

errors_are_posix_test() ->
    D = tmp_dir(),
    ?assertEqual({error, enoent}, plexus_nif:fsync_dir(list_to_binary(D ++ "/nope"))),
    File = filename:join(D, "f"),
    ok = file:write_file(File, <<"x">>),
    ?assertEqual({error, enotdir}, plexus_nif:fsync_dir(list_to_binary(File))),
    TooLong = binary:copy(<<"a">>, 300),                  % one name over NAME_MAX
    ?assertEqual({error, enametoolong},
                 plexus_nif:fsync_dir(<<"/tmp/", TooLong/binary>>)).

bad_arguments_test() ->
    [?assertError(badarg, plexus_nif:fsync_dir(A))
     || A <- [<<>>, <<"/tmp", 0, "x">>, "/tmp", '/tmp', 42, [<<"/tmp">>],
              binary:copy(<<"a">>, 5000)]].
