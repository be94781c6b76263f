%% @private
%% @doc NIF stubs for priv/plexus_nif.so (c_src/nif/). Not a public API: call
%% `plexus_orset' and `plexus_lww'. Term arguments named `*Bin' are `encode/1' output
%% (external term format, leading byte 131); the NIF strips that byte before the core
%% sees the bytes and puts it back when it decodes them.
-module(plexus_nif).

-on_load(init/0).

-export([encode/1]).
-export([
    orset_new/0,
    orset_apply/5,
    orset_merge/1,
    orset_member/2,
    orset_to_list/1,
    orset_size/1,
    orset_validate/1,
    orset_digest/1,
    lww_new/2,
    lww_update/3,
    lww_update_ts/4,
    lww_read/2,
    lww_merge/1,
    lww_validate/1,
    lww_digest/1,
    hlc_now/0,
    set_dirty_threshold/1
]).
%% Failure detector (c_src/nif/nif_health.c), used by plexus_monitor.
-export([
    health_new/3,
    health_up/3,
    health_answer/4,
    health_down/4,
    health_tick/2,
    health_remove/2,
    health_get/2,
    health_list/1
]).

-export_type([reason/0, state/0]).

%% Reasons for a malformed state: plexus_errname() of the core's PLEXUS_E* codes,
%% plus bad_term when stored term bytes are not exactly one external term.
-type reason() ::
    truncated
    | bad_version
    | wrong_type
    | bad_varint
    | bad_count
    | not_canonical
    | bad_actor
    | bad_dot
    | trailing_bytes
    | overflow
    | too_big
    | no_memory
    | invalid_argument
    | bad_term.
-type state() :: binary().
-type error() :: {error, reason()}.

-define(NOT_LOADED, erlang:nif_error({not_loaded, ?MODULE})).

%% Loads the library from the application's priv dir, or from ../priv next to this
%% beam when plexus is not (yet) a known application (e.g. erl -pa ebin).
-spec init() -> ok | {error, term()}.
init() ->
    erlang:load_nif(filename:join(priv_dir(), "plexus_nif"), 0).

-spec priv_dir() -> file:filename().
priv_dir() ->
    case code:priv_dir(plexus) of
        {error, bad_name} ->
            filename:join([filename:dirname(code:which(?MODULE)), "..", "priv"]);
        Dir ->
            Dir
    end.

%% @doc The bytes of a term as elements, actors and values are stored: its external
%% format, deterministic (maps in key order), pinned to minor version 2 (UTF-8 atoms,
%% new floats) so that nodes of different OTP releases encode equal terms equally.
-spec encode(term()) -> binary().
encode(Term) ->
    term_to_binary(Term, [deterministic, {minor_version, 2}]).

-spec orset_new() -> state().
orset_new() -> ?NOT_LOADED.

-spec orset_apply(state(), add | remove | ops, [binary()] | [{add | remove, binary()}],
                  binary(), state | delta | strict) ->
    state() | {state(), state()} | error() | {error, not_present, non_neg_integer()}.
orset_apply(_Set, _Kind, _List, _ActorBin, _Mode) -> ?NOT_LOADED.

-spec orset_merge([state(), ...]) -> state() | error().
orset_merge(_Sets) -> ?NOT_LOADED.

-spec orset_member(state(), binary()) -> boolean() | error().
orset_member(_Set, _ElemBin) -> ?NOT_LOADED.

-spec orset_to_list(state()) -> [term()] | error().
orset_to_list(_Set) -> ?NOT_LOADED.

-spec orset_size(state()) -> non_neg_integer() | error().
orset_size(_Set) -> ?NOT_LOADED.

-spec orset_validate(state()) -> ok | error().
orset_validate(_Set) -> ?NOT_LOADED.

-spec orset_digest(state()) -> <<_:256>> | error().
orset_digest(_Set) -> ?NOT_LOADED.

-spec lww_new(binary(), binary()) -> state().
lww_new(_ValueBin, _ActorBin) -> ?NOT_LOADED.

-spec lww_update(state(), binary(), binary()) -> state() | error().
lww_update(_Reg, _ValueBin, _ActorBin) -> ?NOT_LOADED.

-spec lww_update_ts(state(), binary(), binary(), non_neg_integer()) -> state() | error().
lww_update_ts(_Reg, _ValueBin, _ActorBin, _Ts) -> ?NOT_LOADED.

-spec lww_read(state(), value | actor | timestamp) -> term() | error().
lww_read(_Reg, _Field) -> ?NOT_LOADED.

-spec lww_merge([state(), ...]) -> state() | error().
lww_merge(_Regs) -> ?NOT_LOADED.

-spec lww_validate(state()) -> ok | error().
lww_validate(_Reg) -> ?NOT_LOADED.

-spec lww_digest(state()) -> <<_:256>> | error().
lww_digest(_Reg) -> ?NOT_LOADED.

-spec hlc_now() -> non_neg_integer().
hlc_now() -> ?NOT_LOADED.

%% @doc Sets the input weight (bytes) from which NIF calls run on a dirty CPU
%% scheduler; returns the previous value. 0 sends every call dirty; a huge value keeps
%% every call inline. For tests and benchmarks.
-spec set_dirty_threshold(non_neg_integer()) -> non_neg_integer().
set_dirty_threshold(_Bytes) -> ?NOT_LOADED.

%% ------------------------------------------------------------------ failure detector
%% Events: {node_up | suspect | healthy | node_down, NodeBin, From, To, Reason}.

-spec health_new(pos_integer(), pos_integer(), pos_integer()) ->
    reference() | {error, invalid_argument}.
health_new(_PingMs, _SuspectMs, _DownMs) -> ?NOT_LOADED.

-spec health_up(reference(), binary(), non_neg_integer()) -> [tuple()] | {error, atom()}.
health_up(_H, _Node, _NowMs) -> ?NOT_LOADED.

-spec health_answer(reference(), binary(), non_neg_integer(), non_neg_integer()) ->
    [tuple()] | {error, atom()}.
health_answer(_H, _Node, _NowMs, _RttUs) -> ?NOT_LOADED.

-spec health_down(reference(), binary(), non_neg_integer(), atom()) -> [tuple()] | {error, atom()}.
health_down(_H, _Node, _NowMs, _Reason) -> ?NOT_LOADED.

-spec health_tick(reference(), non_neg_integer()) -> {[tuple()], non_neg_integer() | infinity}.
health_tick(_H, _NowMs) -> ?NOT_LOADED.

-spec health_remove(reference(), binary()) -> ok | {error, not_found}.
health_remove(_H, _Node) -> ?NOT_LOADED.

-spec health_get(reference(), binary()) -> {ok, map()} | {error, not_found}.
health_get(_H, _Node) -> ?NOT_LOADED.

-spec health_list(reference()) -> [map()].
health_list(_H) -> ?NOT_LOADED.
