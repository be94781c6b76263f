%% EUnit tests of plexus_crdt_ae, the anti-entropy exchange both trie CRDTs share:
%% the slice header is read strictly, whichever CRDT's body follows it.
-module(plexus_crdt_ae_tests).

-include_lib("eunit/include/eunit.hrl").

crdts() ->
    [{plexus_orset2, plexus_orset2:add_all(plexus_orset2:new(), lists:seq(1, 300), a)},
     {plexus_lwwmap, plexus_lwwmap:put_all(plexus_lwwmap:new(),
                                           [{K, K} || K <- lists:seq(1, 300)], a)}].

%% A slice of two paths applies to an empty replica; the same bytes with a header
%% that is not minimal, or whose paths are unsorted, nested, invalid or more than the
%% bytes could hold, give bad_slice. (plexus_orset2 once read the header leniently.)
slice_header_test_() ->
    [{atom_to_list(M), fun() -> slice_header(M, S) end} || {M, S} <- crdts()].

slice_header(M, S) ->
    <<2, 1, 1, 1, 3, Body/binary>> = M:missing(S, [<<3>>, <<1>>]),
    Good = <<2, 1, 1, 1, 3, Body/binary>>,
    ?assertNotMatch({error, _}, M:merge_missing(M:new(), Good)),
    Bad = [<<130, 0, 1, 1, 1, 3, Body/binary>>,  % path count 2 as two bytes
           <<2, 129, 0, 1, 1, 3, Body/binary>>,  % path length 1 as two bytes
           <<2, 1, 3, 1, 1, Body/binary>>,       % unsorted
           <<2, 1, 1, 2, 1, 0, Body/binary>>,    % <<1>> and <<1, 0>>: nested
           <<2, 1, 16, 1, 3, Body/binary>>,      % nibble 16
           <<2, 9, 0:72, 1, 3, Body/binary>>,    % deeper than 8 levels
           <<200, 1, 1, 1, 3>>],                 % 200 paths in 4 bytes
    [?assertEqual({error, bad_slice}, M:merge_missing(S, B)) || B <- Bad].

%% Entries a slice carries below none of its paths are refused, for both CRDTs.
entries_outside_paths_test_() ->
    [{atom_to_list(M),
      fun() ->
              <<1, 1, 1, Body/binary>> = M:missing(S, [<<1>>]),
              ?assertEqual({error, bad_slice}, M:merge_missing(S, <<1, 1, 2, Body/binary>>))
      end} || {M, S} <- crdts()].
