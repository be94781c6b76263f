%% @doc Last-writer-wins register on a hybrid logical clock, as an immutable binary
%% (format: `include/plexus/crdt_format.md'). Small registers are decided in Erlang,
%% the rest in C (priv/plexus_nif.so); the clock is `plexus_hlc'.
%%
%% A register holds `(Timestamp, Actor, Value)'. Merge keeps the greatest by
%% timestamp, then actor, then value (actor and value compared as their external
%% format bytes), so ties break the same way on every node. Values and actors are
%% arbitrary terms stored as `term_to_binary(T, [deterministic, {minor_version, 2}])'
%% without the leading 131; the default actor is `node()'.
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
%% <li>`update(Reg, Value, Ts)' when `Reg' is a binary: the merge of `Reg' with
%%     `(Ts, node(), Value)' for an explicit integer `Ts' in 0..2^64-1; an older `Ts'
%%     leaves `Reg' as it is.</li>
%% <li>`update(Op, Actor, Reg)' when `Op' is a tuple (riak_dt_lwwreg style):
%%     `{assign, Value}' or `{assign, Value, Ts}' by `Actor', returning `{ok, Reg2}'.</li>
%% </ul>
%%
%% Errors. Every function that takes a register validates it first and returns
%% `{error, Reason}' for a malformed binary (Reason as in `plexus_nif:reason()':
%% `truncated', `bad_version', `wrong_type', `bad_varint', `trailing_bytes',
%% `not_canonical', `too_big', `overflow', `no_memory', ...; `value/1' and `actor/1'
%% may say `bad_term'). A caller's type error (a register that is not a binary, a
%% timestamp that is not an integer in range, an unknown op, `merge([])') raises
%% `badarg'. Reading `value/1' decodes a term with `binary_to_term/1' semantics (atoms
%% may be created: read values only of registers from nodes you trust); `actor/1'
%% never creates an atom (see there); validation and merges never create atoms.
-module(plexus_lww).

-compile({inline, [enc/1, observed/2, small_register/3]}).

-define(MAX_TS, 18446744073709551615).
-define(NODE_TERM_KEY, ?MODULE). % an atom key: the cheapest persistent_term lookup

%% Actor and value lengths that the Erlang fast path decides (one-byte varints).
-define(SMALL(AL, VL), AL > 0, AL < 128, VL > 0, VL < 128).

-export([new/1, new/2, update/2, update/3]).
-export([value/1, timestamp/1, actor/1]).
-export([merge/1, merge/2, equal/2, digest/1]).
-export([to_binary/1, from_binary/1, clock/0]).

-export_type([lww/0, timestamp/0, update_op/0, reason/0]).

-type lww() :: binary().
-type timestamp() :: 0..18446744073709551615.
-type update_op() :: {assign, term()} | {assign, term(), timestamp()}.
-type reason() :: plexus_nif:reason().
-type error() :: {error, reason()}.
-export_type([error/0]). % used in the specs of exported functions

%% @doc A register holding `Value', written by `node()' at the next clock tick.
-spec new(term()) -> lww().
new(Value) ->
    write_after(0, node_actor(), enc(Value)).

%% @doc A register holding `Value', written by `Actor' at the next clock tick.
-spec new(term(), term()) -> lww().
new(Value, Actor) ->
    write_after(0, enc(Actor), enc(Value)).

%% @doc Writes `Value' as `node()' with a timestamp after both the node clock and
%% `Reg''s timestamp: the result always wins over `Reg'. `{error, overflow}' only if
%% `Reg''s timestamp is already the greatest (2^64-1).
-spec update(lww(), term()) -> lww() | error().
update(Reg, Value) ->
    update_hlc(Reg, enc(Value), node_actor()).

%% @doc `update(Reg, Value, Ts)' (`Reg' a binary): merges `Reg' with
%% `(Ts, node(), Value)', so an older `Ts' is a no-op; `Ts' is observed by the node
%% clock.
%%
%% `update(Op, Actor, Reg)' (`Op' a tuple, riak_dt style): `{assign, Value}' writes as
%% `update/2' does but by `Actor'; `{assign, Value, Ts}' as `update(Reg, Value, Ts)'
%% but by `Actor'. Returns `{ok, Reg2}'.
-spec update(lww(), term(), timestamp()) -> lww() | error();
            (update_op(), term(), lww()) -> {ok, lww()} | error().
update(Reg, Value, Ts) when is_binary(Reg) ->
    update_ts(Reg, enc(Value), element(2, node_actor()), Ts);
update({assign, Value}, Actor, Reg) ->
    ok_tuple(update_hlc(Reg, enc(Value), enc(Actor)));
update({assign, Value, Ts}, Actor, Reg) ->
    ok_tuple(update_ts(Reg, enc(Value), enc(Actor), Ts));
update(_, _, _) ->
    erlang:error(badarg).

%% @doc The value.
-spec value(lww()) -> term() | error().
value(Reg) ->
    plexus_nif:lww_read(Reg, value).

%% @doc The HLC timestamp of the last write.
-spec timestamp(lww()) -> timestamp() | error().
timestamp(Reg) ->
    plexus_nif:lww_read(Reg, timestamp).

%% @doc The actor of the last write, without ever creating an atom (registers arrive
%% from other nodes; each new actor name would otherwise add an atom for good): the
%% term when every atom in it exists already (so `node()' and the nodes this node has
%% seen read back as atoms); an actor that is a single atom this node does not know as
%% its name, a binary (`<<"b@host">>'); `{error, bad_term}' for any other term holding
%% an unknown atom.
-spec actor(lww()) -> term() | binary() | error().
actor(Reg) ->
    plexus_nif:lww_read(Reg, actor).

%% @doc The greater of two registers (by timestamp, actor, value): one of the two
%% binaries itself, not a copy. Its timestamp is observed by the node clock.
-spec merge(lww(), lww()) -> lww() | error().
merge(<<1, $L, TsA:64, ALA, _:ALA/binary, VLA, _:VLA/binary>> = A,
      <<1, $L, TsB:64, ALB, _:ALB/binary, VLB, _:VLB/binary>> = B)
  when ?SMALL(ALA, VLA), ?SMALL(ALB, VLB) ->
    if
        TsA > TsB -> observed(TsA, A);
        TsA < TsB -> observed(TsB, B);
        true -> observed(TsA, tie_break(A, B))
    end;
merge(A, B) ->
    observed(plexus_nif:lww_merge([A, B])).

%% @doc The greatest of a non-empty list of registers; `merge([])' raises `badarg'
%% (there is no empty register).
-spec merge([lww(), ...]) -> lww() | error().
merge(Regs) when is_list(Regs), Regs =/= [] ->
    observed(plexus_nif:lww_merge(Regs));
merge(_) ->
    erlang:error(badarg).

%% @doc Whether two valid registers are equal (a byte comparison after validation:
%% the encoding is canonical).
-spec equal(lww(), lww()) -> boolean() | error().
equal(A, B) when is_binary(A), is_binary(B) ->
    case plexus_nif:lww_validate(A) of
        ok ->
            case plexus_nif:lww_validate(B) of
                ok -> A =:= B;
                Error -> Error
            end;
        Error ->
            Error
    end;
equal(_, _) ->
    erlang:error(badarg).

%% @doc BLAKE2b-256 of the (validated) register.
-spec digest(lww()) -> <<_:256>> | error().
digest(Reg) ->
    plexus_nif:lww_digest(Reg).

%% @doc The binary form of a register: the register itself, after validation.
-spec to_binary(lww()) -> binary() | error().
to_binary(Reg) ->
    case plexus_nif:lww_validate(Reg) of
        ok -> Reg;
        Error -> Error
    end.

%% @doc Reads a register from bytes of unknown origin: full validation, no atoms made.
-spec from_binary(binary()) -> {ok, lww()} | error().
from_binary(Bin) ->
    case plexus_nif:lww_validate(Bin) of
        ok -> {ok, Bin};
        Error -> Error
    end.

%% @doc Issues the node's next HLC timestamp (greater than any issued or observed).
-spec clock() -> timestamp().
clock() ->
    plexus_hlc:now().

%% ---------------------------------------------------------------- internal

enc(Term) ->
    plexus_nif:encode(Term).

ok_tuple({error, _} = Error) -> Error;
ok_tuple(Reg) -> {ok, Reg}.

%% Why two paths: a NIF call costs several times what deciding a small register in
%% Erlang does, so registers whose actor and value are 1..127 bytes (one-byte length
%% fields, the common case) are matched, compared and built here, byte for byte as
%% the C core does (crdt_lww.c); the match is exact, so anything else (longer fields,
%% multi-byte or non-minimal varints, empty fields, trailing bytes, another header,
%% not a binary) takes the C path, which validates and answers as before. The clock
%% is plexus_hlc either way. test/prop/prop_plexus_lww.erl checks that both paths agree.

%% update/2 and {assign, V}: a write after both the node clock and Reg's timestamp.
%% Actor is encode/1 output or node_actor().
update_hlc(<<1, $L, Ts:64, AL, _:AL/binary, VL, _:VL/binary>>, ValueBin, ActorBin)
  when ?SMALL(AL, VL) ->
    write_after(Ts, ActorBin, ValueBin);
update_hlc(Reg, ValueBin, ActorBin) when is_binary(Reg) ->
    case plexus_nif:lww_validate(Reg) of
        ok ->
            <<_:16, Ts:64, _/binary>> = Reg,
            write_after(Ts, ActorBin, ValueBin);
        Error ->
            Error
    end;
update_hlc(_, _, _) ->
    erlang:error(badarg).

%% update/3 and {assign, V, Ts}: the merge of Reg with (Ts, Actor, Value); Ts observed.
update_ts(<<1, $L, RegTs:64, AL, RegActor:AL/binary, VL, RegValue:VL/binary>> = Reg,
          <<131, Value/binary>>, <<131, Actor/binary>>, Ts)
  when ?SMALL(AL, VL), byte_size(Value) < 128, byte_size(Actor) < 128,
       is_integer(Ts), Ts >= 0, Ts =< ?MAX_TS ->
    plexus_hlc:observe(Ts),
    case {RegTs, RegActor, RegValue} >= {Ts, Actor, Value} of
        true -> Reg;
        false -> small_register(Ts, Actor, Value)
    end;
update_ts(Reg, ValueBin, ActorBin, Ts)
  when is_binary(Reg), is_integer(Ts), Ts >= 0, Ts =< ?MAX_TS ->
    case plexus_nif:lww_validate(Reg) of
        ok ->
            plexus_hlc:observe(Ts),
            plexus_nif:lww_update_ts(Reg, ValueBin, ActorBin, Ts);
        Error ->
            Error
    end;
update_ts(_, _, _, _) ->
    erlang:error(badarg).

%% A new register (Ts, Actor, Value) at the next tick after Floor, or overflow when
%% nothing can follow Floor.
write_after(Floor, ActorBin, ValueBin) ->
    Ts = plexus_hlc:next_after(Floor),
    if
        Ts =< Floor -> {error, overflow};
        true -> make_register(Ts, ActorBin, ValueBin)
    end.

make_register(Ts, {_Node, _ActorBin, Field}, <<131, Value/binary>>)
  when is_binary(Field), byte_size(Value) < 128 ->
    <<1, $L, Ts:64, Field/binary, (byte_size(Value)), Value/binary>>;
make_register(Ts, {_Node, ActorBin, _Field}, ValueBin) ->
    make_register(Ts, ActorBin, ValueBin);
make_register(Ts, <<131, Actor/binary>>, <<131, Value/binary>>)
  when byte_size(Actor) < 128, byte_size(Value) < 128 ->
    small_register(Ts, Actor, Value);
make_register(Ts, ActorBin, ValueBin) ->
    plexus_nif:lww_new(ValueBin, ActorBin, Ts).

small_register(Ts, Actor, Value) ->
    <<1, $L, Ts:64, (byte_size(Actor)), Actor/binary, (byte_size(Value)), Value/binary>>.

%% Equal timestamps (both registers valid and small): the greater (actor, value)
%% bytewise; A when equal, as the C merge keeps the first of equals.
tie_break(<<_:80, ALA, ActorA:ALA/binary, _VLA, ValueA/binary>> = A,
          <<_:80, ALB, ActorB:ALB/binary, _VLB, ValueB/binary>> = B) ->
    case {ActorB, ValueB} > {ActorA, ValueA} of
        true -> B;
        false -> A
    end.

observed(Ts, Reg) ->
    plexus_hlc:observe(Ts),
    Reg.

observed(<<_:16, Ts:64, _/binary>> = Reg) ->
    observed(Ts, Reg);
observed(Error) ->
    Error.

%% {node(), enc(node()), its actor field (length byte and bytes) or none}, cached:
%% the node name changes rarely (once, when distribution starts), so the cache is
%% rewritten rarely. The ready-made field saves the write path a sub-binary and a
%% segment (~30 ns of an update).
node_actor() ->
    Node = node(),
    case persistent_term:get(?NODE_TERM_KEY, undefined) of
        {Node, _, _} = Cached ->
            Cached;
        _ ->
            Cached = case enc(Node) of
                         <<131, A/binary>> = Bin when byte_size(A) < 128 ->
                             {Node, Bin, <<(byte_size(A)), A/binary>>};
                         Bin ->
                             {Node, Bin, none}
                     end,
            persistent_term:put(?NODE_TERM_KEY, Cached),
            Cached
    end.
