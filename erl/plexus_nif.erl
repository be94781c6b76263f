%% @private
%% @doc NIF stubs for priv/plexus_nif.so (c_src/nif/). Not a public API: call
%% `plexus_orset', `plexus_orset_v1' and `plexus_lww'. Term arguments named `*Bin' are
%% `encode/1' output (external term format, leading byte 131); the NIF strips that byte before the core
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
    trie_decode/1,
    trie_encode/3,
    trie_build/2,
    lww_new/3,
    lww_update_ts/4,
    lww_read/2,
    lww_merge/1,
    lww_validate/1,
    lww_digest/1,
    lww_write/3,
    lww_update/3,
    set_dirty_threshold/1,
    dirty_threshold/0
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

%% Election state machine and topology rule (c_src/nif/nif_election.c), used by
%% plexus_election.
-export([
    election_new/1,
    election_tick/1,
    election_step/2,
    election_peer_down/2,
    election_forget_leader/2,
    election_campaign/1,
    election_add_peer/2,
    election_remove_peer/2,
    election_info/1,
    election_msg_encode/1,
    election_msg_decode/1,
    topology_assign/2
]).

%% The node clock cell of plexus_hlc (c_src/nif/nif_hlc.c).
-export([hlc_next_after/1, hlc_observe/1, hlc_lease/2, hlc_cell/0, hlc_wall/0]).

%% Durable renames (c_src/nif/nif_fsync.c), used by plexus_leader's hard state.
-export([fsync_dir/1]).

%% CRDT v2 tries (c_src/nif/nif_trie.c), used by plexus_crdt_trie and plexus_orset2.
-export([trie_hash/1, trie_orset_merge/5, trie_lwwmap_merge/5]).

%% Discovery: sealed gossip beacons (c_src/nif/nif_beacon.c) and the TTL registry
%% (c_src/nif/nif_registry.c), used by plexus_discovery_gossip, plexus_registry and
%% plexus_discovery_registry.
-export([
    beacon_new/6,
    beacon_seal/5,
    beacon_open/3,
    beacon_stats/1,
    beacon_forget/2,
    registry_new/1,
    registry_handle/4,
    registry_sample/3,
    registry_view/2,
    registry_lookup/3,
    registry_evict/2,
    registry_stats/1,
    registry_encode_announce/7,
    registry_encode_query/4,
    registry_encode_bye/4,
    registry_decode/1,
    registry_keypair/0,
    registry_public_key/1
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
-type timestamp() :: 0..18446744073709551615.
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

%% @doc Validates and decodes the state bytes of a trie CRDT (an OR-Set's `0x01 'S'',
%% an LWW map's `0x02 'M'') into its context and its entries in key order, each with
%% its trie hash (`trie_hash/1'): what `plexus_orset2' and `plexus_lwwmap' build their
%% trie from. Every binary in the result is a copy.
-spec trie_decode(binary()) ->
          {ok, {#{binary() => pos_integer()}, #{{binary(), pos_integer()} => true}},
           [{tuple(), non_neg_integer()}]} | error().
trie_decode(_Bin) -> ?NOT_LOADED.

%% @doc The canonical bytes of a trie CRDT's state from its context and root: `Arity'
%% 2 writes an OR-Set's version 1 bytes, 4 an LWW map's `0x02 'M''. `{error,
%% bad_state}' for a term that is no such state.
-spec trie_encode(2 | 4, tuple(), term()) -> binary() | error().
trie_encode(_Arity, _Ctx, _Root) -> ?NOT_LOADED.

%% @doc The canonical trie node at `Depth' holding the entries `[{KeyHash, Entry,
%% EntryHash}]' (any order, keys unique), as `plexus_crdt_trie:build/2' makes it.
-spec trie_build(0..8, [{0..4294967295, {binary(), list()}, non_neg_integer()}]) ->
          term() | error().
trie_build(_Depth, _Entries) -> ?NOT_LOADED.

-spec lww_new(binary(), binary(), non_neg_integer()) -> state() | error().
lww_new(_ValueBin, _ActorBin, _Ts) -> ?NOT_LOADED.

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

%% plexus_lww's local write after `Floor': the value's register field (atoms, 32-bit
%% integers and binaries up to 4 KiB; `fallback' for anything else), a tick of the
%% node clock and the register term, in one call. `{lease, Need}' as hlc_next_after/1.
-spec lww_write(timestamp(), binary(), term()) ->
    {plexus_lww, timestamp(), binary(), binary()} | {error, overflow} | {lease, timestamp()}
    | fallback.
lww_write(_Floor, _ActorField, _Value) -> ?NOT_LOADED.

%% plexus_lww:update/2 of a register term as `Node' in one call: the register checked,
%% the actor field (the register's own when it is `Node''s), the value's field, a tick
%% after the register's timestamp, the new term. `fallback' for what it leaves to
%% Erlang (binary registers, non-registers, values lww_write/3 does not encode).
-spec lww_update(term(), node(), term()) ->
    {plexus_lww, timestamp(), binary(), binary()} | {error, overflow} | {lease, timestamp()}
    | fallback.
lww_update(_Reg, _Node, _Value) -> ?NOT_LOADED.

%% The node clock: the next timestamp after the clock and `Floor', or `{lease, Need}'
%% when that would pass the cell's lease (plexus_hlc grants one and calls again).
-spec hlc_next_after(timestamp()) -> timestamp() | {lease, timestamp()}.
hlc_next_after(_Floor) -> ?NOT_LOADED.

%% Records `Ts' (within the skew bound); the clock after the call, or `{lease, Ts}'.
-spec hlc_observe(timestamp()) -> timestamp() | {lease, timestamp()}.
hlc_observe(_Ts) -> ?NOT_LOADED.

%% Applies a lease grant plexus_hlc has recorded: `Prev' the ceiling before it, `Limit'
%% after (`Prev =< Limit').
-spec hlc_lease(timestamp(), timestamp()) -> ok.
hlc_lease(_Prev, _Limit) -> ?NOT_LOADED.

%% `{Clock, Limit}' of the cell, for tests and benchmarks.
-spec hlc_cell() -> {timestamp(), timestamp()}.
hlc_cell() -> ?NOT_LOADED.

%% @doc The wall-clock milliseconds the node clock's ticks read, and how: `tsc' when
%% the millisecond is kept on the CPU's time-stamp counter between real readings (the
%% kernel keeps time on it), `realtime' when every read is a clock_gettime/2. For tests
%% and the benchmark.
-spec hlc_wall() -> {non_neg_integer(), tsc | realtime}.
hlc_wall() -> ?NOT_LOADED.


%% @doc Sets the input weight (bytes) from which NIF calls run on a dirty CPU
%% scheduler; returns the previous value. 0 sends every call dirty; a huge value keeps
%% every call inline. For tests and benchmarks.
-spec set_dirty_threshold(non_neg_integer()) -> non_neg_integer().
set_dirty_threshold(_Bytes) -> ?NOT_LOADED.

%% @doc The current dirty threshold (bytes of input weight), as `set_dirty_threshold/1'
%% left it.
-spec dirty_threshold() -> non_neg_integer().
dirty_threshold() -> ?NOT_LOADED.

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

%% ------------------------------------------------------------------ election
%% Ready = {[{ToId, Bin}], {Term, VotedFor} | unchanged, {Role, LeaderId} | unchanged};
%% see plexus_election for the types.

-spec election_new(map()) -> {ok, reference()} | {error, atom()}.
election_new(_Config) -> ?NOT_LOADED.

-spec election_tick(reference()) -> tuple().
election_tick(_E) -> ?NOT_LOADED.

-spec election_step(reference(), binary()) -> tuple() | {error, atom()}.
election_step(_E, _Bin) -> ?NOT_LOADED.

-spec election_peer_down(reference(), pos_integer()) -> tuple() | {error, atom()}.
election_peer_down(_E, _Id) -> ?NOT_LOADED.

-spec election_forget_leader(reference(), pos_integer()) -> tuple() | {error, atom()}.
election_forget_leader(_E, _Id) -> ?NOT_LOADED.

-spec election_campaign(reference()) -> tuple() | {error, atom()}.
election_campaign(_E) -> ?NOT_LOADED.

-spec election_add_peer(reference(), pos_integer()) -> tuple() | {error, atom()}.
election_add_peer(_E, _Id) -> ?NOT_LOADED.

-spec election_remove_peer(reference(), pos_integer()) -> tuple() | {error, atom()}.
election_remove_peer(_E, _Id) -> ?NOT_LOADED.

-spec election_info(reference()) -> map().
election_info(_E) -> ?NOT_LOADED.

-spec election_msg_encode(map()) -> binary() | {error, atom()}.
election_msg_encode(_Msg) -> ?NOT_LOADED.

-spec election_msg_decode(binary()) -> {ok, map()} | {error, atom()}.
election_msg_decode(_Bin) -> ?NOT_LOADED.

-spec topology_assign([{binary(), non_neg_integer(), boolean()}], non_neg_integer()) ->
    {ok, [atom()], binary() | none} | {error, atom()}.
topology_assign(_Members, _Quorum) -> ?NOT_LOADED.

%% ------------------------------------------------------------------ discovery
%% Beacons: see c_src/nif/nif_beacon.h. Registry: see c_src/nif/nif_registry.h.
%% Names, addresses and metadata are binaries; nothing from the network is an atom.

-type disco_meta() :: #{binary() => binary()}.
-type registry_entry() :: #{peer := binary(), addrs := [binary()], metadata := disco_meta(),
                            ttl_ms := non_neg_integer()}.

-spec beacon_new(binary(), binary(), non_neg_integer(), boolean(), non_neg_integer(),
                 non_neg_integer()) ->
    reference() | {error, atom()}.
beacon_new(_Secret, _ClusterId, _Epoch, _AcceptPrevious, _MaxSenders, _MaxSkewMs) -> ?NOT_LOADED.

-spec beacon_seal(reference(), binary(), pos_integer(), pos_integer(), disco_meta()) ->
    binary() | {error, atom()}.
beacon_seal(_Ref, _Name, _Incarnation, _Sequence, _Meta) -> ?NOT_LOADED.

-spec beacon_open(reference(), binary(), non_neg_integer()) ->
    {ok, {binary(), pos_integer(), pos_integer(), non_neg_integer(), disco_meta()}}
    | {error, atom()}.
beacon_open(_Ref, _Bin, _NowMs) -> ?NOT_LOADED.

-spec beacon_stats(reference()) -> #{atom() => non_neg_integer()}.
beacon_stats(_Ref) -> ?NOT_LOADED.

-spec beacon_forget(reference(), binary()) -> ok | {error, not_found}.
beacon_forget(_Ref, _Name) -> ?NOT_LOADED.

-spec registry_new(map()) -> reference() | {error, atom()}.
registry_new(_Opts) -> ?NOT_LOADED.

%% Source: the sender's address as bytes (at most 32; <<>> = this node itself).
-spec registry_handle(reference(), binary(), binary(), non_neg_integer()) ->
    {tuple() | queried | cookie, binary()} | {error, atom()}.
registry_handle(_Ref, _Datagram, _Source, _NowMs) -> ?NOT_LOADED.

-spec registry_sample(reference(), non_neg_integer(), non_neg_integer()) ->
    [registry_entry()] | {error, atom()}.
registry_sample(_Ref, _N, _NowMs) -> ?NOT_LOADED.

-spec registry_view(reference(), non_neg_integer()) -> [registry_entry()] | {error, atom()}.
registry_view(_Ref, _NowMs) -> ?NOT_LOADED.

-spec registry_lookup(reference(), binary(), non_neg_integer()) ->
    {ok, registry_entry()} | {error, atom()}.
registry_lookup(_Ref, _Peer, _NowMs) -> ?NOT_LOADED.

-spec registry_evict(reference(), non_neg_integer()) -> non_neg_integer().
registry_evict(_Ref, _NowMs) -> ?NOT_LOADED.

-spec registry_stats(reference()) -> #{atom() => non_neg_integer()}.
registry_stats(_Ref) -> ?NOT_LOADED.

-spec registry_encode_announce(non_neg_integer(), binary(), [binary()], disco_meta(),
                               non_neg_integer(), non_neg_integer(), binary()) ->
    binary() | {error, atom()}.
registry_encode_announce(_ReqId, _Peer, _Addrs, _Meta, _TtlMs, _IssuedMs, _Seed) -> ?NOT_LOADED.

%% Cookie: <<>> or the 16 bytes a COOKIE reply carried; zero padding up to PadTo bytes.
-spec registry_encode_query(non_neg_integer(), pos_integer(), binary(), non_neg_integer()) ->
    binary() | {error, atom()}.
registry_encode_query(_ReqId, _Max, _Cookie, _PadTo) -> ?NOT_LOADED.

-spec registry_encode_bye(non_neg_integer(), binary(), non_neg_integer(), binary()) ->
    binary() | {error, atom()}.
registry_encode_bye(_ReqId, _Peer, _IssuedMs, _Seed) -> ?NOT_LOADED.

-spec registry_decode(binary()) -> {ok, map()} | {error, atom()}.
registry_decode(_Bin) -> ?NOT_LOADED.

-spec registry_keypair() -> {<<_:256>>, <<_:256>>}.
registry_keypair() -> ?NOT_LOADED.

-spec registry_public_key(<<_:256>>) -> <<_:256>>.
registry_public_key(_Seed) -> ?NOT_LOADED.

%% @doc fsync(2) on a directory, so that a rename into it survives a power cut (the
%% file module cannot open a directory). `Dir' is the directory's name as a binary
%% (`filename:flatten/1' output encoded with `file:native_name_encoding/0'); any other
%% term, an empty binary or one with a NUL byte raises `badarg'. Runs on a dirty IO
%% scheduler.
-spec fsync_dir(binary()) -> ok | {error, file:posix() | eunknown}.
fsync_dir(_Dir) -> ?NOT_LOADED.

%% @doc The 56-bit hash of a trie entry (`plexus_crdt_trie:ehash/1'): binaries,
%% integers in 0..2^64-1, tuples and proper lists only, else `badarg'.
-spec trie_hash(term()) -> non_neg_integer().
trie_hash(_Entry) -> ?NOT_LOADED.

%% @doc The merge of two OR-Set v2 trie nodes at a depth (`plexus_orset2:merge/2');
%% `fallback' when the Erlang walk must do it (see c_src/nif/nif_trie.c).
-spec trie_orset_merge(term(), term(), term(), term(), 0..8) -> term() | fallback | error().
trie_orset_merge(_NodeA, _NodeB, _CtxA, _CtxB, _Depth) -> ?NOT_LOADED.

%% @doc `trie_orset_merge/5' for LWW map tries (`plexus_lwwmap:merge/2').
-spec trie_lwwmap_merge(term(), term(), term(), term(), 0..8) -> term() | fallback | error().
trie_lwwmap_merge(_NodeA, _NodeB, _CtxA, _CtxB, _Depth) -> ?NOT_LOADED.
