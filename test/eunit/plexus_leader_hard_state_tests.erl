%% @doc EUnit tests of `plexus_leader_hard_state': the hard-state file of
%% `plexus_leader' (both formats, damage, the `.ran' marker). Each test gets its own
%% directory from a fixture, removed after it.
-module(plexus_leader_hard_state_tests).

-include_lib("eunit/include/eunit.hrl").

-define(H, plexus_leader_hard_state).

hard_state_test_() ->
    {foreach, fun make_dir/0, fun remove_dir/1,
     [fun round_trip/1, fun binary_name_round_trip/1, fun old_format/1, fun damaged/1,
      fun missing/1, fun write_failure/1, fun restore_fresh/1, fun restore_saved/1,
      fun restore_missing_with_marker/1, fun restore_damaged/1, fun restore_bad_dir/1]}.

make_dir() ->
    D = filename:join("/tmp", "plexus_leader_hard_state_tests." ++ os:getpid() ++ "." ++
                          integer_to_list(erlang:unique_integer([positive]))),
    ok = filelib:ensure_path(D),
    D.

remove_dir(D) -> ok = file:del_dir_r(D).

file_in(Dir) -> ?H:file(Dir, el, el).

with_crc(Body) -> <<Body/binary, (erlang:crc32(Body)):32>>.

%% ------------------------------------------------------------------ read / write

round_trip(Dir) ->
    ?_test(begin
               F = filename:join(Dir, "x.hs"),
               ?assertEqual(ok, ?H:write(F, {5, 7}, {3, 2, ['b@h', 'a@h', 'été@h']})),
               ?assertEqual({ok, {5, 7}, {3, 2, ['a@h', 'b@h', 'été@h']}}, ?H:read(F)),
               ?assertEqual(ok, ?H:write(F, {6, 0}, {3, 2, ['a@h']})),  % replaces it
               ?assertEqual({ok, {6, 0}, {3, 2, ['a@h']}}, ?H:read(F)),
               ?assertEqual(["x.hs"], element(2, file:list_dir(Dir)))   % no .tmp left
           end).

binary_name_round_trip(Dir) ->
    ?_test(begin
               F = list_to_binary(filename:join(Dir, "b.hs")),
               ?assertEqual(ok, ?H:write(F, {1, 2}, {0, 0, ['a@h']})),
               ?assertEqual({ok, {1, 2}, {0, 0, ['a@h']}}, ?H:read(F)),
               ?assertEqual(<<F/binary, ".ran">>, ?H:marker_file(F))
           end).

%% Format 1 (term and vote only, before membership was saved) is still read.
old_format(Dir) ->
    ?_test(begin
               F = filename:join(Dir, "v1.hs"),
               ok = file:write_file(F, with_crc(<<"PXHS", 1, 7:64, 9:64>>)),
               ?assertEqual({ok, {7, 9}, none}, ?H:read(F))
           end).

damaged(Dir) ->
    F = filename:join(Dir, "bad.hs"),
    Good = <<"PXHS", 2, 1:64, 2:64, 3:64, 4:64, 1:16, 3:16, "a@h">>,
    Bad = [<<"PXHS", 1, 0:64, 0:64, 0:32>>,                          % bad CRC
           <<"abc">>,                                                  % shorter than a CRC
           <<>>,
           with_crc(<<"PXHT", 1, 7:64, 9:64>>),                        % wrong magic
           with_crc(<<"PXHS", 3, 7:64, 9:64>>),                        % unknown version
           with_crc(binary:part(Good, 0, byte_size(Good) - 1)),       % member cut short
           with_crc(<<Good/binary, 0>>),                               % trailing byte
           with_crc(<<"PXHS", 2, 1:64, 2:64, 3:64, 4:64, 2:16, 3:16, "a@h">>),  % count
           with_crc(<<"PXHS", 2, 1:64, 2:64, 3:64, 4:64, 1:16, 0:16>>),         % empty name
           %% a CRC that fits, but nothing the process can hold: these raised badarg
           %% and system_limit, or stopped it as a bad `bootstrap' option
           with_crc(<<"PXHS", 2, 1:64, 2:64, 3:64, 4:64, 1:16, 2:16, 255, 254>>),  % not UTF-8
           with_crc(<<"PXHS", 2, 1:64, 2:64, 3:64, 4:64, 1:16, 300:16,
                      (binary:copy(<<"a">>, 300))/binary>>),                   % 300 chars
           with_crc(<<"PXHS", 2, (1 bsl 63):64, 0:64, 3:64, 4:64, 1:16, 3:16, "a@h">>),
           with_crc(<<"PXHS", 2, 0:64, 2:64, 3:64, 4:64, 1:16, 3:16, "a@h">>),   % vote, term 0
           with_crc(<<"PXHS", 1, (1 bsl 64 - 1):64, 9:64>>),
           with_crc(<<"PXHS", 1, 0:64, 9:64>>)],
    [?_assertEqual({error, corrupt}, begin ok = file:write_file(F, B), ?H:read(F) end)
     || B <- Bad] ++
        [?_assertEqual({ok, {1, 2}, {3, 4, ['a@h']}},
                       begin ok = file:write_file(F, with_crc(Good)), ?H:read(F) end)].

missing(Dir) ->
    ?_assertEqual({error, enoent}, ?H:read(filename:join(Dir, "none.hs"))).

write_failure(Dir) ->
    F = filename:join(Dir, "big.hs"),
    [?_assertMatch({error, enoent},
                   ?H:write(filename:join([Dir, "no", "such", "dir.hs"]), {1, 1}, {0, 0, []}))] ++
    %% a value of 64 bits or more is refused, never written cut to its low 64 bits
        [?_assertEqual({{error, {out_of_range, F}}, {error, enoent}},
                       {?H:write(F, Hard, Config), ?H:read(F)})
         || {Hard, Config} <- [{{1 bsl 64, 0}, {0, 0, ['a@h']}},
                               {{1, 1 bsl 64}, {0, 0, ['a@h']}},
                               {{1, 0}, {1 bsl 64, 0, ['a@h']}},
                               {{1, 0}, {0, 1 bsl 70, ['a@h']}}]].

%% ------------------------------------------------------------------ restore

restore_fresh(Dir) ->
    ?_test(begin
               F = file_in(Dir),
               ?assertEqual({{0, 0}, {0, 0, lists:usort([node(), 'p2@h'])}},
                            ?H:restore(el, F, ['p2@h'])),
               ?assert(filelib:is_regular(?H:marker_file(F)))
           end).

%% The saved membership wins over the bootstrap list.
restore_saved(Dir) ->
    ?_test(begin
               F = file_in(Dir),
               ok = filelib:ensure_dir(F),
               Saved = {4, 3, lists:usort([node(), 'p2@h', 'p3@h', 'p4@h'])},
               ok = ?H:write(F, {9, 0}, Saved),
               L = silence(),
               try ?assertEqual({{9, 0}, Saved}, ?H:restore(el, F, ['p2@h']))
               after restore_level(L)
               end,
               %% format 1: the bootstrap list seeds the membership
               ok = file:write_file(F, with_crc(<<"PXHS", 1, 7:64, 9:64>>)),
               ?assertEqual({{7, 9}, {0, 0, [node()]}}, ?H:restore(el, F, []))
           end).

%% Issue 8: the file is gone but the node ran (the marker says so): the node sits out
%% (hard state `none') and says so.
restore_missing_with_marker(Dir) ->
    ?_test(begin
               F = file_in(Dir),
               {{0, 0}, _} = ?H:restore(el, F, []),
               L = silence(),
               try ?assertEqual({none, {0, 0, [node()]}}, ?H:restore(el, F, []))
               after restore_level(L)
               end
           end).

restore_damaged(Dir) ->
    ?_test(begin
               F = file_in(Dir),
               ok = filelib:ensure_dir(F),
               ok = file:write_file(F, <<"short">>),
               ?assertThrow({hard_state, F, corrupt}, ?H:restore(el, F, []))
           end).

restore_bad_dir(Dir) ->
    ?_test(begin
               Blocker = filename:join(Dir, "file"),
               ok = file:write_file(Blocker, <<>>),
               ?assertThrow({hard_state, _, enotdir},
                            ?H:restore(el, file_in(filename:join(Blocker, "sub")), []))
           end).

silence() ->
    #{level := L} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, none),
    L.

restore_level(L) -> logger:set_primary_config(level, L).
