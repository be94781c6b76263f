%% @doc Last-writer-wins register on a hybrid logical clock. In memory a register is
%% a plain term, `{plexus_lww, Ts, Actor, Value}' (sendable, storable in ETS, no
%% resources); on the wire it is the canonical binary of
%% `include/plexus/crdt_format.md' (`to_binary/1', `from_binary/1'). The clock is
%% `plexus_hlc'.
%%
%% A register holds `(Timestamp, Actor, Value)'. Merge keeps the greatest by
%% timestamp, then actor, then value (actor and value compared as their external
%% format bytes), so ties break the same way on every node. Values and actors are
%% arbitrary terms kept as `term_to_binary(T, [deterministic, {minor_version, 2}])'
%% without the leading 131 (the `Actor' and `Value' fields of the tuple hold these
%% bytes, exactly the fields of the canonical binary), so merge is one compare of two
%% tuples and `to_binary/1' only concatenates; the default actor is `node()'.
%%
%% Old binary registers (the canonical binary, the in-memory form of earlier
%% builds) are accepted by every function that takes a register: they are validated
%% as `from_binary/1' does and converted, and a function that returns a register
%% returns the tuple. `to_binary/1' of either form gives the same canonical bytes, and
%% `digest/1' is the BLAKE2b-256 of those bytes, as before.
%%
%% Timestamps (`clock/0') come from a node-wide hybrid logical clock (Kulkarni et al.
%% 2014): a 64-bit integer, wall-clock milliseconds in the high 48 bits and a logical
%% counter in the low 16, never `erlang:monotonic_time/0' (not comparable across
%% nodes). Every timestamp a node issues is greater than every timestamp it issued or
%% observed before: `merge/1,2' and `update/3' with an explicit timestamp observe the
%% timestamps they see, and `update/2' writes after the register it updates, so a local
%% update always wins over the state it updates, even when the wall clock went back.
%% Clock skew is bounded: a timestamp more than one hour ahead of this node's wall
%% clock still merges (and a local `update/2' of that register still wins over it) but
%% does not move the node clock, so one register stamped 2^64-1 cannot push every later
%% write of the node to the end of time.
%%
%% `update/3' has two meanings, told apart by the first argument:
%% <ul>
%% <li>`update(Reg, Value, Ts)' when `Reg' is a register: the merge of `Reg' with
%%     `(Ts, node(), Value)' for an explicit integer `Ts' in 0..2^64-1; an older `Ts'
%%     leaves `Reg' as it is.</li>
%% <li>`update(Op, Actor, Reg)' when `Op' is `{assign, ...}' (riak_dt_lwwreg style):
%%     `{assign, Value}' or `{assign, Value, Ts}' by `Actor', returning `{ok, Reg2}'.</li>
%% </ul>
%%
%% Errors. Every function that takes a register checks it first. A tuple
%% `{plexus_lww, Ts, Actor, Value}' is a register exactly when `Ts' is an integer in
%% 0..2^64-1 and `Actor' and `Value' are binaries of 1 byte to 64 MiB: that is all
%% the canonical format asks of the fields (the core never interprets the bytes), so
%% these guards, a few ns, are the whole validation; a `plexus_lww' tuple that fails
%% them gives `{error, bad_register}'. `merge/2' of two tuples checks less, for speed:
%% the timestamp range and that actor and value are binaries (all the order needs),
%% not their lengths, so a hand-made tuple with an empty or over-64-MiB field can win
%% a merge; every other function, `to_binary/1' first, refuses it.
%% An old binary is validated in full and gives `{error, Reason}' when malformed
%% (Reason as in `plexus_nif:reason()': `truncated', `bad_version', `wrong_type',
%% `bad_varint', `trailing_bytes', `not_canonical', `too_big', `overflow',
%% `no_memory', ...); `value/1' and `actor/1' may say `bad_term' (bytes that are not
%% a term). A caller's type error (a register that is neither a binary nor a
%% `plexus_lww' tuple, a timestamp that is not an integer in range, an unknown op,
%% `merge([])') raises `badarg'. Reading `value/1' decodes a term with
%% `binary_to_term/1' semantics (atoms may be created: read values only of registers
%% from nodes you trust); `actor/1' never creates an atom (see there); validation,
%% conversion and merges never create atoms.
-module(plexus_lww).

-compile({inline, [observed/2, read_nif/2, validate_nif/2, wsize/1]}).

-include("plexus_telemetry.hrl").
-include("plexus_hlc.hrl").

-define(MAX_TS, 18446744073709551615).
%% Below 2^59 integers are immediates; a compare with the bignum ?MAX_TS costs ~20 ns,
%% so the guards below test this first (every wall-clock timestamp until 2248 is small).
-define(SMALL_INT, 576460752303423487).
-define(MAX_LEN, 67108864). % 64 MiB, the format's limit on actor and value bytes
-define(NODE_TERM_KEY, ?MODULE). % an atom key: the cheapest persistent_term lookup

-define(TS(Ts), is_integer(Ts), Ts >= 0, (Ts =< ?SMALL_INT orelse Ts =< ?MAX_TS)).
-define(FIELD(F), is_binary(F), byte_size(F) > 0, byte_size(F) =< ?MAX_LEN).
%% A `plexus_lww' tuple that is a register (see the module doc).
-define(VALID(Ts, A, V), ?TS(Ts), ?FIELD(A), ?FIELD(V)).
%% What merge/2 checks of two tuples: the types and the timestamp range, all the order
%% needs. The field lengths (1 byte..64 MiB) are left to every other function: their
%% four byte_size/1 tests cost ~8 ns, as much as the rest of a merge.
-define(MERGEABLE(Ts, A, V), ?TS(Ts), is_binary(A), is_binary(V)).

-export([new/1, new/2, update/2, update/3]).
-export([value/1, timestamp/1, actor/1]).
-export([merge/1, merge/2, equal/2, digest/1]).
-export([to_binary/1, from_binary/1, clock/0]).

-export_type([lww/0, timestamp/0, update_op/0, reason/0]).

-type lww() :: {plexus_lww, timestamp(), Actor :: binary(), Value :: binary()}.
%% What functions accept as a register: the tuple or an old (canonical) binary.
-type register_in() :: lww() | binary().
-type timestamp() :: 0..18446744073709551615.
-type update_op() :: {assign, term()} | {assign, term(), timestamp()}.
-type reason() :: plexus_nif:reason() | bad_register.
-type error() :: {error, reason()}.
-export_type([error/0, register_in/0]). % used in the specs of exported functions

%% @doc A register holding `Value', written by `node()' at the next clock tick.
-spec new(term()) -> lww() | error().
new(Value) ->
    write(0, node_actor(), Value).

%% @doc A register holding `Value', written by `Actor' at the next clock tick.
-spec new(term(), term()) -> lww() | error().
new(Value, Actor) ->
    write(0, enc(Actor), Value).

%% @doc Writes `Value' as `node()' with a timestamp after both the node clock and
%% `Reg''s timestamp: the result always wins over `Reg'. `{error, overflow}' only if
%% `Reg''s timestamp is already the greatest (2^64-1).
-spec update(register_in(), term()) -> lww() | error().
update({plexus_lww, _, _, V} = Reg, Value) when ?FIELD(V) ->
    %% One NIF call for a register term and a common value (see write/3); the rest,
    %% and every error, in Erlang. The old value field is checked here, where it costs
    %% less than in C (the NIF reads every other field, but not that one).
    case plexus_nif:lww_update(Reg, node(), Value) of
        {plexus_lww, _, _, _} = New ->
            New;
        {lease, Need} ->
            plexus_hlc:lease(Need),
            update(Reg, Value);
        {error, overflow} = Error ->
            Error;
        fallback ->
            update_erl(Reg, Value)
    end;
update(Reg, Value) ->
    update_erl(Reg, Value).

update_erl({plexus_lww, Ts, A, V}, Value) when ?VALID(Ts, A, V) ->
    write(Ts, node_actor(), Value);
update_erl(Reg, Value) ->
    case reg(Reg) of
        {plexus_lww, Ts, _, _} -> write(Ts, node_actor(), Value);
        Error -> Error
    end.

%% @doc `update(Reg, Value, Ts)' (`Reg' a register): merges `Reg' with
%% `(Ts, node(), Value)', so an older `Ts' is a no-op; `Ts' is observed by the node
%% clock.
%%
%% `update(Op, Actor, Reg)' (`Op' an `assign' tuple, riak_dt style): `{assign, Value}'
%% writes as `update/2' does but by `Actor'; `{assign, Value, Ts}' as
%% `update(Reg, Value, Ts)' but by `Actor'. Returns `{ok, Reg2}'.
-spec update(register_in(), term(), timestamp()) -> lww() | error();
            (update_op(), term(), register_in()) -> {ok, lww()} | error().
update({assign, Value}, Actor, Reg) ->
    case reg(Reg) of
        {plexus_lww, Ts, _, _} -> ok_tuple(write(Ts, enc(Actor), Value));
        Error -> Error
    end;
update({assign, Value, Ts}, Actor, Reg) ->
    ok_tuple(update_ts(Reg, enc(Value), enc(Actor), Ts));
update(Reg, Value, Ts) when is_binary(Reg); element(1, Reg) =:= plexus_lww ->
    update_ts(Reg, enc(Value), node_actor(), Ts);
update(_, _, _) ->
    erlang:error(badarg).

%% @doc The value.
-spec value(register_in()) -> term() | error().
value(Reg) when is_binary(Reg) ->
    read_nif(value, Reg);
value(Reg) ->
    case reg(Reg) of
        {plexus_lww, _, _, _} = R -> read_nif(value, canonical(R));
        Error -> Error
    end.

%% @doc The HLC timestamp of the last write.
-spec timestamp(register_in()) -> timestamp() | error().
timestamp(Reg) ->
    case reg(Reg) of
        {plexus_lww, Ts, _, _} -> Ts;
        Error -> Error
    end.

%% @doc The actor of the last write, without ever creating an atom (registers arrive
%% from other nodes; each new actor name would otherwise add an atom for good): the
%% term when every atom in it exists already (so `node()' and the nodes this node has
%% seen read back as atoms); an actor that is a single atom this node does not know as
%% its name, a binary (`<<"b@host">>'); `{error, bad_term}' for any other term holding
%% an unknown atom.
-spec actor(register_in()) -> term() | binary() | error().
actor(Reg) when is_binary(Reg) ->
    read_nif(actor, Reg);
actor(Reg) ->
    case reg(Reg) of
        {plexus_lww, _, _, _} = R -> read_nif(actor, canonical(R));
        Error -> Error
    end.

%% @doc The greater of two registers (by timestamp, actor, value): one of the two
%% itself, not a copy (converted to the tuple if it was a binary). Its timestamp is
%% observed by the node clock.
-spec merge(register_in(), register_in()) -> lww() | error().
merge({plexus_lww, TsA, AA, VA} = A, {plexus_lww, TsB, AB, VB} = B)
  when ?MERGEABLE(TsA, AA, VA), ?MERGEABLE(TsB, AB, VB) ->
    %% The tuple order is the register order: same tag, then Ts, then the actor and
    %% value bytes (Erlang compares binaries bytewise, the shorter first on a tie).
    if
        TsA > TsB -> observed(TsA, A);
        TsA < TsB -> observed(TsB, B);
        B > A -> observed(TsB, B);
        true -> observed(TsA, A)
    end;
merge(<<1, $L, TsA:64, ALA, _:ALA/binary, VLA, _:VLA/binary>> = A,
      <<1, $L, TsB:64, ALB, _:ALB/binary, VLB, _:VLB/binary>> = B)
  when ALA > 0, ALA < 128, VLA > 0, VLA < 128, ALB > 0, ALB < 128, VLB > 0, VLB < 128 ->
    %% Two old binaries of the small layout: an exact match is a valid register, so
    %% they are decided here, with no NIF call, and only the winner is converted.
    if
        TsA > TsB -> observed(TsA, small_term(A));
        TsA < TsB -> observed(TsB, small_term(B));
        true -> merge(small_term(A), small_term(B))
    end;
merge(A, B) when is_binary(A), is_binary(B) ->
    %% Both old binaries, one over the small layout: the C merge validates both in one
    %% call.
    case merge_nif([A, B]) of
        W when is_binary(W) -> parse(W);
        Error -> Error
    end;
merge(A, B) ->
    case reg(A) of
        {plexus_lww, _, _, _} = RA ->
            case reg(B) of
                {plexus_lww, _, _, _} = RB -> merge(RA, RB);
                Error -> Error
            end;
        Error ->
            Error
    end.

%% @doc The greatest of a non-empty list of registers (the first of equals);
%% `merge([])' raises `badarg' (there is no empty register).
-spec merge([register_in(), ...]) -> lww() | error().
merge([First | Rest] = Regs) when is_list(Rest) ->
    case lists:all(fun is_binary/1, Regs) of
        true ->
            case merge_nif(Regs) of
                W when is_binary(W) -> parse(W);
                Error -> Error
            end;
        false ->
            merge_list(reg(First), Rest)
    end;
merge(_) ->
    erlang:error(badarg).

%% @doc Whether two valid registers are equal (the same write; a register and its
%% old binary form are equal).
-spec equal(register_in(), register_in()) -> boolean() | error().
equal(A, B) ->
    case reg(A) of
        {plexus_lww, _, _, _} = RA ->
            case reg(B) of
                {plexus_lww, _, _, _} = RB -> RA =:= RB;
                Error -> Error
            end;
        Error ->
            Error
    end.

%% @doc BLAKE2b-256 of the canonical bytes (`to_binary/1') of the register.
-spec digest(register_in()) -> <<_:256>> | error().
digest(Reg) ->
    case to_binary(Reg) of
        Bin when is_binary(Bin) ->
            ?PLEXUS_CRDT_CALL(lww, digest, wsize(Bin), wsize(Bin), fun one/1,
                              plexus_nif:lww_digest(Bin));
        Error ->
            Error
    end.

%% @doc The canonical bytes of a register (format: `include/plexus/crdt_format.md'),
%% the same for the tuple and its old binary form.
-spec to_binary(register_in()) -> binary() | error().
to_binary(Reg) when is_binary(Reg) ->
    case validate_nif(to_binary, Reg) of
        ok -> Reg;
        Error -> Error
    end;
to_binary(Reg) ->
    case reg(Reg) of
        {plexus_lww, _, _, _} = R -> canonical(R);
        Error -> Error
    end.

%% @doc Reads a register from bytes of unknown origin: full validation, no atoms made.
-spec from_binary(binary()) -> {ok, lww()} | error().
from_binary(<<1, $L, Ts:64, AL, A:AL/binary, VL, V:VL/binary>>)
  when AL > 0, AL < 128, VL > 0, VL < 128 ->
    %% An exact match of the small layout is a valid register (one-byte minimal
    %% varints, no trailing bytes): no NIF call needed.
    {ok, {plexus_lww, Ts, A, V}};
from_binary(Bin) ->
    case validate_nif(from_binary, Bin) of
        ok -> {ok, parse(Bin)};
        Error -> Error
    end.

%% @doc Issues the node's next HLC timestamp (greater than any issued or observed).
-spec clock() -> timestamp().
clock() ->
    plexus_hlc:now().

%% ---------------------------------------------------------------- internal

%% The register a function was given, as the tuple, or the error to return.
reg({plexus_lww, Ts, A, V} = R) when ?VALID(Ts, A, V) -> R;
reg({plexus_lww, _, _, _}) -> {error, bad_register};
reg(Bin) when is_binary(Bin) ->
    case from_binary(Bin) of
        {ok, R} -> R;
        Error -> Error
    end;
reg(_) -> erlang:error(badarg).

merge_list({plexus_lww, _, _, _} = Acc, [R | Rest]) ->
    case reg(R) of
        {plexus_lww, _, _, _} = Reg -> merge_list(merge(Acc, Reg), Rest);
        Error -> Error
    end;
merge_list(Acc, []) ->
    Acc;
merge_list({error, _} = Error, _) ->
    Error;
merge_list(_, _) ->
    erlang:error(badarg). % an improper list

small_term(<<1, $L, Ts:64, AL, A:AL/binary, VL, V:VL/binary>>) ->
    {plexus_lww, Ts, A, V}.

%% The tuple of a binary the NIF validated (any field lengths).
parse(<<1, $L, Ts:64, Rest/binary>>) ->
    {A, Rest2} = bytes_field(Rest),
    {V, <<>>} = bytes_field(Rest2),
    {plexus_lww, Ts, A, V}.

bytes_field(Bin) ->
    {Len, Rest} = varint(Bin, 0, 0),
    <<Field:Len/binary, Rest2/binary>> = Rest,
    {Field, Rest2}.

varint(<<0:1, B:7, Rest/binary>>, Shift, Acc) -> {Acc bor (B bsl Shift), Rest};
varint(<<1:1, B:7, Rest/binary>>, Shift, Acc) -> varint(Rest, Shift + 7, Acc bor (B bsl Shift)).

%% The canonical bytes of a valid tuple.
canonical({plexus_lww, Ts, A, V}) when byte_size(A) < 128, byte_size(V) < 128 ->
    <<1, $L, Ts:64, (byte_size(A)), A/binary, (byte_size(V)), V/binary>>;
canonical({plexus_lww, Ts, A, V}) ->
    <<1, $L, Ts:64, (leb128(byte_size(A)))/binary, A/binary,
      (leb128(byte_size(V)))/binary, V/binary>>.

leb128(N) when N < 128 -> <<N>>;
leb128(N) -> <<1:1, (N band 127):7, (leb128(N bsr 7))/binary>>.

%% The NIF calls of the C path, each reported as a CRDT call event when its input is
%% large (plexus_telemetry.hrl); the weights are the NIF's (c_src/nif/nif_lww.c).
read_nif(What, Reg) ->
    ?PLEXUS_CRDT_CALL(lww, What, wsize(Reg), wsize(Reg), fun one/1, plexus_nif:lww_read(Reg, What)).

merge_nif(Regs) ->
    ?PLEXUS_CRDT_CALL(lww, merge, regs_weight(Regs, 0), regs_weight(Regs, 0),
                      fun(_) -> length(Regs) end, plexus_nif:lww_merge(Regs)).

validate_nif(Function, Reg) ->
    ?PLEXUS_CRDT_CALL(lww, Function, wsize(Reg), wsize(Reg), fun one/1,
                      plexus_nif:lww_validate(Reg)).

wsize(Bin) when is_binary(Bin) -> byte_size(Bin);
wsize(_) -> 0.

%% A list cell and the register bytes, per register (an improper tail is the NIF's badarg).
regs_weight([R | T], W) -> regs_weight(T, W + ?PLEXUS_NIF_CELL_WEIGHT + wsize(R));
regs_weight(_, W) -> W.

one(_) -> 1.

%% The register field of a term: plexus_nif:encode/1 without the leading 131, the
%% common shapes built in Erlang (plexus_term_bytes, the encoder the trie CRDTs use;
%% test/eunit/plexus_lww_tests.erl checks the fields against the BIF).
enc(Term) ->
    plexus_term_bytes:field(Term).

ok_tuple({error, _} = Error) -> Error;
ok_tuple(Reg) -> {ok, Reg}.

%% update/3 and {assign, V, Ts}: the merge of Reg with (Ts, Actor, Value); Ts observed.
update_ts(Reg, Value, Actor, Ts) when ?TS(Ts) ->
    case reg(Reg) of
        {plexus_lww, _, _, _} = R when byte_size(Value) =< ?MAX_LEN,
                                       byte_size(Actor) =< ?MAX_LEN ->
            plexus_hlc:observe(Ts),
            New = {plexus_lww, Ts, Actor, Value},
            if
                R >= New -> R;
                true -> New
            end;
        {plexus_lww, _, _, _} ->
            {error, too_big};
        Error ->
            Error
    end;
update_ts(_, _, _, _) ->
    erlang:error(badarg).

%% A new register (Ts, Actor, Value) at the next tick after Floor, or overflow when
%% nothing can follow Floor, given the actor's field and the value's term: one NIF
%% call (plexus_nif:lww_write/3: the value's field, the tick and the tuple) for the
%% values it encodes, the value encoded here for the rest.
write(Floor, Actor, Value) when byte_size(Actor) =< ?MAX_LEN ->
    case plexus_nif:lww_write(Floor, Actor, Value) of
        {plexus_lww, _, _, _} = Reg ->
            Reg;
        {lease, Need} ->
            plexus_hlc:lease(Need),
            write(Floor, Actor, Value);
        fallback ->
            write_after(Floor, Actor, enc(Value));
        {error, overflow} = Error ->
            Error
    end;
write(_, _, _) ->
    {error, too_big}.

write_after(Floor, Actor, Value) when byte_size(Actor) =< ?MAX_LEN,
                                      byte_size(Value) =< ?MAX_LEN ->
    Ts = plexus_hlc:next_after(Floor),
    if
        Ts =< Floor -> {error, overflow};
        true -> {plexus_lww, Ts, Actor, Value}
    end;
write_after(_, _, _) ->
    {error, too_big}.

%% plexus_hlc:observe/1, with its first test (has this process seen the clock at or
%% past Ts?) made here: true for nearly every merge, and then no call at all.
observed(Ts, Reg) ->
    case get(?PLEXUS_HLC_SEEN) of
        Seen when is_integer(Seen), Ts =< Seen -> Reg;
        _ -> plexus_hlc:observe(Ts), Reg
    end.

%% The register field of node(), cached: the node name changes rarely (once, when
%% distribution starts), so the cache is rewritten rarely, and the update path saves
%% the encoding.
node_actor() ->
    Node = node(),
    case persistent_term:get(?NODE_TERM_KEY, undefined) of
        {Node, Field} ->
            Field;
        _ ->
            Field = enc(Node),
            persistent_term:put(?NODE_TERM_KEY, {Node, Field}),
            Field
    end.
