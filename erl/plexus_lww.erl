%% @doc Last-writer-wins register on a hybrid logical clock, as an immutable binary
%% (format: `include/plexus/crdt_format.md'), merged in C (priv/plexus_nif.so).
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

-compile({inline, [enc/1]}).

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
    new(Value, node()).

%% @doc A register holding `Value', written by `Actor' at the next clock tick.
-spec new(term(), term()) -> lww().
new(Value, Actor) ->
    plexus_nif:lww_new(enc(Value), enc(Actor)).

%% @doc Writes `Value' as `node()' with a timestamp after both the node clock and
%% `Reg''s timestamp: the result always wins over `Reg'. `{error, overflow}' only if
%% `Reg''s timestamp is already the greatest (2^64-1).
-spec update(lww(), term()) -> lww() | error().
update(Reg, Value) ->
    plexus_nif:lww_update(Reg, enc(Value), enc(node())).

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
    plexus_nif:lww_update_ts(Reg, enc(Value), enc(node()), Ts);
update({assign, Value}, Actor, Reg) ->
    ok_tuple(plexus_nif:lww_update(Reg, enc(Value), enc(Actor)));
update({assign, Value, Ts}, Actor, Reg) ->
    ok_tuple(plexus_nif:lww_update_ts(Reg, enc(Value), enc(Actor), Ts));
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
merge(A, B) ->
    plexus_nif:lww_merge([A, B]).

%% @doc The greatest of a non-empty list of registers; `merge([])' raises `badarg'
%% (there is no empty register).
-spec merge([lww(), ...]) -> lww() | error().
merge(Regs) when is_list(Regs), Regs =/= [] ->
    plexus_nif:lww_merge(Regs);
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
    plexus_nif:hlc_now().

%% ---------------------------------------------------------------- internal

enc(Term) ->
    plexus_nif:encode(Term).

ok_tuple({error, _} = Error) -> Error;
ok_tuple(Reg) -> {ok, Reg}.
