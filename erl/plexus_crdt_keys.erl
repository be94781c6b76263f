%% @private
%% @doc The removed keys of a keyed delta (`include/plexus/crdt_format.md', "Deltas"),
%% shared by `plexus_orset2' (`0x02 'D'') and `plexus_lwwmap' (`0x02 'K''): a delta that
%% removed keys carries their bytes, strictly ascending, so that a merge can go
%% straight to them. On the wire, after the two header bytes:
%% ```
%% varint n                  1 <= n <= bytes left / 2
%%   n x { bytes key }       1 byte to 64 MiB each, strictly ascending bytewise
%% (the body of the delta's state)
%% '''
-module(plexus_crdt_keys).

-export([valid/1, encode/1, read/1, to_binary/3, from_binary/3]).

-define(MAX_BYTES, 67108864).

%% @doc Whether `Keys' is a list of at least one binary, strictly ascending (so sorted
%% and without duplicates).
-spec valid(term()) -> boolean().
valid([X, Y | T]) when is_binary(X), X < Y -> valid([Y | T]);
valid([X]) -> is_binary(X);
valid(_) -> false.

%% @doc A keyed delta's bytes: `<<2, Type>>', the header of `Keys', then the body of
%% `StateBytes' (its state's bytes after their two header bytes). `{error, bad_state}'
%% when `Keys' is not `valid/1'; an error for the state passes through.
-spec to_binary(byte(), term(), binary() | {error, term()}) -> binary() | {error, term()}.
to_binary(Type, Keys, <<_, _, Body/binary>>) ->
    case valid(Keys) of
        true -> iolist_to_binary([<<2, Type>>, encode(Keys), Body]);
        false -> {error, bad_state}
    end;
to_binary(_, _, {error, _} = Error) ->
    Error.

%% @doc Reads a keyed delta from the bytes after its header: `{ok, {Tag, State, Keys}}'
%% with the state `FromBody(Body)' reads (`{ok, State}' or an error, passed through).
-spec from_binary(binary(), atom(), fun((binary()) -> {ok, term()} | {error, term()})) ->
          {ok, {atom(), term(), [binary(), ...]}} | {error, term()}.
from_binary(Rest, Tag, FromBody) ->
    case read(Rest) of
        {ok, Keys, Body} ->
            case FromBody(Body) of
                {ok, State} -> {ok, {Tag, State, Keys}};
                Error -> Error
            end;
        Error ->
            Error
    end.

%% @doc The header of `Keys' (which must be `valid/1').
-spec encode([binary(), ...]) -> iodata().
encode(Keys) ->
    [plexus_varint:uvar(length(Keys)) | [plexus_varint:bytes(K) || K <- Keys]].

%% @doc The keys at the head of `Bin' and the body after them, read strictly: the count
%% is a minimal varint of at least 1 and at most half the bytes left (each key takes
%% two bytes at least), each key 1 byte to 64 MiB, and the keys strictly ascending.
-spec read(binary()) ->
          {ok, [binary(), ...], binary()}
          | {error, truncated | bad_varint | bad_count | too_big | not_canonical}.
read(Bin) ->
    try
        {N, R} = plexus_varint:read(Bin),
        N >= 1 orelse throw(not_canonical),
        N =< byte_size(R) div 2 orelse throw(bad_count),
        {Keys, Body} = read(N, R, []),
        valid(Keys) orelse throw(not_canonical),
        {ok, Keys, Body}
    catch
        throw:Reason -> {error, Reason}
    end.

read(0, Rest, Acc) ->
    {lists:reverse(Acc), Rest};
read(N, Bin, Acc) ->
    {L, R} = plexus_varint:read(Bin),
    L >= 1 orelse throw(not_canonical),
    L =< ?MAX_BYTES orelse throw(too_big),
    case R of
        <<K:L/binary, Rest/binary>> -> read(N - 1, Rest, [K | Acc]);
        _ -> throw(truncated)
    end.
