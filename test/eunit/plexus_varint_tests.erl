%% EUnit tests of plexus_varint, the varints of the Erlang CRDT codecs: every length
%% reads back what was written, and every second spelling, overlong or truncated
%% varint is refused (the fast one-match clauses and the loop alike).
-module(plexus_varint_tests).

-include_lib("eunit/include/eunit.hrl").

-define(V, plexus_varint).

roundtrip_test() ->
    Values = [0, 1, 127, 128, 300, 16383, 16384, 2097151, 2097152, 1 bsl 35,
              (1 bsl 56) - 1, 1 bsl 56, 1 bsl 62, (1 bsl 63) + 5, (1 bsl 64) - 1],
    [?assertEqual({V, <<"rest">>},
                  ?V:read(iolist_to_binary([?V:uvar(V), <<"rest">>]))) || V <- Values],
    ?assertEqual(<<3, "abc">>, iolist_to_binary(?V:bytes(<<"abc">>))).

refused_test() ->
    Bad = [{<<128, 0>>, bad_varint},                         % 0 in two bytes
           {<<129, 128, 0>>, bad_varint},                    % 1 in three bytes
           {<<255, 255, 255, 255, 255, 255, 255, 255, 128, 0>>, bad_varint},
           {<<255, 255, 255, 255, 255, 255, 255, 255, 255, 2>>, bad_varint}, % 2^64
           {<<128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 1>>, bad_varint},
           {<<>>, truncated}, {<<128>>, truncated}, {<<255, 255>>, truncated}],
    [?assertThrow(R, ?V:read(B)) || {B, R} <- Bad].
