%% @private
%% @doc The bytes under which the CRDTs store elements, keys, actors and values:
%% `plexus_nif:encode/1' (`term_to_binary(T, [deterministic, {minor_version, 2}])')
%% without its leading version byte 131.
%%
%% Why not just call the BIF: a single OR-Set or LWW-map op encodes two or three terms,
%% and each `term_to_binary/2' call (a BIF with an option list, then a match to drop
%% the 131) costs 50-100 ns, a tenth of the whole op. The shapes most keys, elements
%% and actors have are built here in a few ns, byte for byte what the BIF writes (the
%% external term format, erts/emulator/internal_doc and OTP's "External Term Format"
%% page); everything else goes to the BIF. test/prop/prop_plexus_term_bytes.erl checks
%% the two agree on random terms and at every edge below.
%% <ul>
%% <li>an atom whose UTF-8 name has fewer than 256 bytes: SMALL_ATOM_UTF8_EXT (119,
%%     length byte, name) (minor version 2 writes every atom as UTF-8);</li>
%% <li>an integer in 0..255: SMALL_INTEGER_EXT (97, byte); any other 32-bit signed
%%     integer: INTEGER_EXT (98, 4 bytes big-endian);</li>
%% <li>a binary (whole bytes): BINARY_EXT (109, 4-byte length, bytes);</li>
%% <li>a tuple of fewer than 256 such terms (tuples nest): SMALL_TUPLE_EXT (104,
%%     arity, the elements' encodings in order).</li>
%% </ul>
%% Maps, lists, floats, bignums, pids and the rest take the BIF (the `deterministic'
%% option only changes the order of map keys, and no map is built here).
-module(plexus_term_bytes).

-export([field/1]).

%% @doc The stored bytes of a term (see the module doc).
-spec field(term()) -> binary().
field(Term) ->
    case fast(Term) of
        false -> bif(Term);
        Bin -> Bin
    end.

fast(A) when is_atom(A) ->
    case atom_to_binary(A, utf8) of
        B when byte_size(B) < 256 -> <<119, (byte_size(B)), B/binary>>;
        _ -> false
    end;
fast(I) when is_integer(I), I >= 0, I < 256 ->
    <<97, I>>;
fast(I) when is_integer(I), I >= -2147483648, I < 2147483648 ->
    <<98, I:32/signed>>;
fast(B) when is_binary(B), byte_size(B) < 4294967296 ->
    <<109, (byte_size(B)):32, B/binary>>;
fast({X, Y}) ->
    pair(fast(X), fast(Y));
fast(T) when is_tuple(T), tuple_size(T) < 256 ->
    tuple(tuple_to_list(T), [<<104, (tuple_size(T))>>]);
fast(_) ->
    false.

%% The commonest tuple, a pair, without a list.
pair(false, _) -> false;
pair(_, false) -> false;
pair(X, Y) -> <<104, 2, X/binary, Y/binary>>.

tuple([E | T], Acc) ->
    case fast(E) of
        false -> false;
        B -> tuple(T, [B | Acc])
    end;
tuple([], Acc) ->
    iolist_to_binary(lists:reverse(Acc)).

bif(Term) ->
    <<131, Bytes/binary>> = plexus_nif:encode(Term),
    Bytes.
