%% @private
%% @doc The unsigned LEB128 varints of the canonical CRDT binaries
%% (`include/plexus/crdt_format.md'), as the Erlang codecs write and read them:
%% `uvar/1' and `bytes/1' write (iodata), `read/1' reads bytes of unknown origin
%% strictly. One copy for the OR-Set, the LWW map and the anti-entropy slices.
-module(plexus_varint).

-export([uvar/1, bytes/1, read/1]).

-define(MAX, 18446744073709551615). % 2^64 - 1

%% @doc The minimal varint of a non-negative integer.
-spec uvar(non_neg_integer()) -> iodata().
uvar(X) when X < 128 -> <<X>>;
uvar(X) -> [<<1:1, (X band 127):7>>, uvar(X bsr 7)].

%% @doc A length-prefixed byte string: its size as a varint, then the bytes.
-spec bytes(binary()) -> iodata().
bytes(B) ->
    [uvar(byte_size(B)), B].

%% @doc A minimal varint below 2^64 and the bytes after it. Throws `bad_varint' (a
%% second spelling, more than 10 bytes, 2^64 or more) or `truncated'. The common
%% lengths (counts, lengths and counters of one to three bytes, HLC timestamps of nine)
%% are read in one match; a last byte of 0 after others (a second spelling) goes to
%% the loop, which refuses it.
-spec read(binary()) -> {non_neg_integer(), binary()}.
read(<<0:1, X:7, Rest/binary>>) ->
    {X, Rest};
read(<<1:1, X0:7, 0:1, X1:7, Rest/binary>>) when X1 > 0 ->
    {X0 bor (X1 bsl 7), Rest};
read(<<1:1, X0:7, 1:1, X1:7, 0:1, X2:7, Rest/binary>>) when X2 > 0 ->
    {X0 bor (X1 bsl 7) bor (X2 bsl 14), Rest};
read(<<1:1, X0:7, 1:1, X1:7, 1:1, X2:7, 1:1, X3:7, 1:1, X4:7, 1:1, X5:7, 1:1, X6:7,
       1:1, X7:7, 0:1, X8:7, Rest/binary>>) when X8 > 0 ->
    V = X0 bor (X1 bsl 7) bor (X2 bsl 14) bor (X3 bsl 21) bor (X4 bsl 28) bor (X5 bsl 35)
        bor (X6 bsl 42) bor (X7 bsl 49) bor (X8 bsl 56),
    V =< ?MAX orelse throw(bad_varint),
    {V, Rest};
read(Bin) ->
    read(Bin, 0, 0).

read(_, _, 10) ->
    throw(bad_varint);
read(<<0:1, 0:7, _/binary>>, _, N) when N > 0 ->
    throw(bad_varint);
read(<<0:1, X:7, Rest/binary>>, Acc, N) ->
    V = Acc bor (X bsl (7 * N)),
    V =< ?MAX orelse throw(bad_varint),
    {V, Rest};
read(<<1:1, X:7, Rest/binary>>, Acc, N) ->
    read(Rest, Acc bor (X bsl (7 * N)), N + 1);
read(_, _, _) ->
    throw(truncated).
