%% PropEr properties of plexus_term_bytes: its Erlang encoding of the common shapes is
%% byte for byte plexus_nif:encode/1 (term_to_binary/2 with [deterministic,
%% {minor_version, 2}]) without the leading 131, for random terms of every kind and at
%% the edges of each shape (integer and atom length bounds, nested tuples, unicode
%% atoms, terms that fall back to the BIF inside a tuple).
-module(prop_plexus_term_bytes).

-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

-include("plexus_prop.hrl").

-define(OPTS, [{numtests, ?NUMTESTS(2000)}, {max_size, 40}, {to_file, user}]).

proper_test_() ->
    [{atom_to_list(P), {timeout, 120, ?_assert(proper:quickcheck(?MODULE:P(), ?OPTS))}}
     || P <- [prop_any_term, prop_fast_shapes]].

%% Any term PropEr makes (lists, maps, floats, bignums, improper lists...).
prop_any_term() ->
    ?FORALL(T, any(), ?SAFE(agrees(T))).

%% The shapes the fast path builds, nested, with the edges of each.
prop_fast_shapes() ->
    ?FORALL(T, shape(), ?SAFE(agrees(T))).

agrees(T) ->
    <<131, Bytes/binary>> = plexus_nif:encode(T),
    plexus_term_bytes:field(T) =:= Bytes.

shape() ->
    ?SIZED(S, shape(S)).

shape(0) -> leaf();
shape(S) ->
    frequency([{4, leaf()},
               {1, ?LET(L, list(shape(S div 3)), list_to_tuple(L))},
               {1, ?LET({X, Y}, {shape(S div 2), shape(S div 2)}, {X, Y})}]).

leaf() ->
    oneof([edge_int(), int(), range(-(1 bsl 40), 1 bsl 40), atom(), edge_atom(), binary(), bitstring(),
           real(), elements([[], "abc", #{}, #{a => 1}, self(), make_ref()])]).

edge_int() ->
    elements([0, 1, 255, 256, -1, -255, -256, 2147483647, 2147483648, -2147483648,
              -2147483649, 4294967295, 4294967296, 1 bsl 59, -(1 bsl 59), 1 bsl 64]).

%% Atoms around the 255-byte bound of SMALL_ATOM_UTF8_EXT: ASCII names up to 255
%% characters, and multi-byte names whose UTF-8 is over 255 bytes.
edge_atom() ->
    oneof([?LET(N, range(250, 255), list_to_atom(lists:duplicate(N, $a))),
           ?LET(N, range(60, 255), list_to_atom(lists:duplicate(N, 16#e9))),
           ?LET(N, range(60, 255), list_to_atom(lists:duplicate(N, 16#1F600))),
           elements(['', 'é', 'ü@host', node()])]).
