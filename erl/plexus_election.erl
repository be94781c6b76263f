%% @doc The Raft election state machine as a value you drive yourself (doc/DESIGN.md §2).
%%
%% A thin layer over the pure C core (`c_src/core/election.c'): `new/1' makes one
%% node's machine; `tick/1', `step/2', `peer_down/2', `campaign/1', `add_peer/2' and
%% `remove_peer/2' feed it one input each and return what the input produced, the
%% {@type ready()} batch. `plexus_leader' is the process that drives it over Erlang
%% distribution; use this module directly only to host the machine some other way.
%%
%% The driver loop, after every input:
%% <ol>
%% <li>if the batch carries a hard state `{Term, VotedFor}', write it durably BEFORE
%%     sending anything (a vote sent before it is on disk lets a crash-restart vote
%%     twice in one term);</li>
%% <li>send each `{ToId, Bin}' to the node `ToId' stands for; that node passes `Bin' to
%%     `step/2';</li>
%% <li>act on a role or leader change.</li>
%% </ol>
%% The batch has already been taken off the machine when it is returned: a driver that
%% cannot persist must stop without sending, and restart from what is on disk.
%%
%% Time is ticks: call `tick/1' every tick (e.g. 10 ms, which makes the default
%% 150/300/50 ms timings 15/30/5 ticks). Peer ids are opaque nonzero 64-bit integers,
%% unique within a cluster; `node_id/1' derives one from a node name. At most 64
%% voters, self included.
%%
%% Errors: a wrong type raises `badarg'; an input the machine refuses returns
%% `{error, Reason}' and changes nothing but its counters (see `info/1').
-module(plexus_election).

-export([new/1, tick/1, step/2, peer_down/2, forget_leader/2, campaign/1, add_peer/2,
         remove_peer/2]).
-export([info/1, role/1, term/1, leader/1, hard_state/1, peers/1]).
-export([encode_msg/1, decode_msg/1, node_id/1, cluster_key/1]).

-export_type([election/0, id/0, role/0, hard_state/0, ready/0, config/0, msg/0,
              msg_type/0, reason/0]).

-opaque election() :: reference().
%% One node's machine. Mutable: every input changes it in place.
-type id() :: 1..18446744073709551615.
-type role() :: follower | pre_candidate | candidate | leader.
-type hard_state() :: {Term :: non_neg_integer(), VotedFor :: non_neg_integer()}.
%% What must survive a restart. `VotedFor' is 0 for "no vote in `Term'".
-type ready() :: {Msgs :: [{id(), binary()}],
                  Hard :: hard_state() | unchanged,
                  Soft :: {role(), Leader :: non_neg_integer()} | unchanged}.
%% The outputs of one input: messages to send, the hard state when it changed, and
%% the role and leader id (0 = unknown) when either changed.
-type config() :: #{id := id(),
                    hard_state := hard_state() | none,
                    cluster_id => non_neg_integer(),
                    peers => [id()],
                    election_min_ticks => pos_integer(),
                    election_max_ticks => pos_integer(),
                    heartbeat_ticks => pos_integer(),
                    pre_vote => boolean(),
                    check_quorum => boolean()}.
%% `hard_state' is what the node saved last; `{0, 0}' only for a node that provably
%% never ran (an empty data directory). `none' means "lost": the node then sits out
%% one full election timeout before it votes, which is weaker than persisting (it
%% relies on no vote request being delayed longer than that) and is not what
%% `plexus_leader' does. Defaults: cluster_id 0, peers [], 15/30/5 ticks, pre_vote and
%% check_quorum true. `peers' may list the node itself (it is skipped).
-type msg_type() :: pre_vote | pre_vote_resp | vote | vote_resp | heartbeat | heartbeat_resp.
-type msg() :: #{type := msg_type(), reject := boolean(), cluster_id := non_neg_integer(),
                 from := id(), to := id(), term := non_neg_integer()}.
-type reason() :: invalid_argument | full | not_found | bad_state | wrong_cluster
                | truncated | bad_version | wrong_type | bad_varint | trailing_bytes
                | too_big | no_memory.

-define(DEFAULTS, #{cluster_id => 0, peers => [], election_min_ticks => 15,
                    election_max_ticks => 30, heartbeat_ticks => 5, pre_vote => true,
                    check_quorum => true}).

%% ------------------------------------------------------------------ lifecycle

%% @doc A new machine, started as a follower. `{error, invalid_argument}' for a bad
%% config (zero id, timings not `1 =< heartbeat < min < max', a zero or duplicate peer,
%% a hard state voting in term 0), `{error, full}' for more than 63 peers.
-spec new(config()) -> {ok, election()} | {error, invalid_argument | full}.
new(#{id := _, hard_state := _} = Config) ->
    plexus_nif:election_new(maps:merge(?DEFAULTS, Config));
new(_) ->
    erlang:error(badarg).

%% ------------------------------------------------------------------ inputs

%% @doc One tick of logical time: heartbeats, election timeouts, CheckQuorum.
-spec tick(election()) -> ready().
tick(E) -> plexus_nif:election_tick(E).

%% @doc Feed a message another node sent to this one, as the binary it came in.
%% Errors (nothing changes): the decoder's `truncated | bad_version | wrong_type |
%% bad_varint | invalid_argument | trailing_bytes'; `wrong_cluster'; `not_found' (the
%% sender is not a peer); `invalid_argument' (not addressed to this node);
%% `bad_state' (a second leader claimed this term, counted in `conflicts').
-spec step(election(), binary()) -> ready() | {error, reason()}.
step(E, Bin) -> plexus_nif:election_step(E, Bin).

%% @doc The connection to `Peer' closed. If it was this follower's leader, a pre-vote
%% starts at once (doc/DESIGN.md §2 fast path). `{error, not_found}' if not a peer,
%% `{error, invalid_argument}' for the node's own id.
-spec peer_down(election(), id()) -> ready() | {error, not_found | invalid_argument}.
peer_down(E, Peer) -> plexus_nif:election_peer_down(E, Peer).

%% @doc `peer_down/2' without the campaign: if `Peer' was this follower's leader, forget
%% it (ending its lease, so this node grants other nodes' pre-votes) and nothing else.
%% A driver that hears of a dead leader on every survivor at once calls this on all of
%% them and `campaign/1' on one (the others only if no leader appeared after a delay),
%% so that they do not all stand in the same term and split the vote.
-spec forget_leader(election(), id()) -> ready() | {error, not_found | invalid_argument}.
forget_leader(E, Peer) -> plexus_nif:election_forget_leader(E, Peer).

%% @doc Start a (pre-)election now. `{error, bad_state}' when leader or sitting out.
-spec campaign(election()) -> ready() | {error, bad_state}.
campaign(E) -> plexus_nif:election_campaign(E).

%% @doc Add a voter (a no-op if present). Change membership one node at a time on
%% every member. `{error, invalid_argument}' for the node's own id, `{error, full}'
%% beyond 63 peers.
-spec add_peer(election(), id()) -> ready() | {error, invalid_argument | full}.
add_peer(E, Peer) -> plexus_nif:election_add_peer(E, Peer).

%% @doc Remove a voter; the quorum shrinks at once. `{error, not_found}' if absent.
-spec remove_peer(election(), id()) -> ready() | {error, not_found | invalid_argument}.
remove_peer(E, Peer) -> plexus_nif:election_remove_peer(E, Peer).

%% ------------------------------------------------------------------ queries

%% @doc Everything the machine shows: `id', `cluster_id', `role', `term', `voted_for',
%% `leader' (0 = unknown), `peers', `quorum', `sit_out_left' (ticks) and `stats', a map
%% of counters: `wrong_cluster', `unknown_peer', `stale_term', `lease_rejected',
%% `conflicts' (should stay 0), `outbox_dropped', `pre_votes', `elections', `fast_path'.
-spec info(election()) -> map().
info(E) -> plexus_nif:election_info(E).

-spec role(election()) -> role().
role(E) -> maps:get(role, info(E)).

-spec term(election()) -> non_neg_integer().
term(E) -> maps:get(term, info(E)).

%% @doc The leader's id, or 0 when unknown.
-spec leader(election()) -> non_neg_integer().
leader(E) -> maps:get(leader, info(E)).

-spec hard_state(election()) -> hard_state().
hard_state(E) ->
    #{term := T, voted_for := V} = info(E),
    {T, V}.

-spec peers(election()) -> [id()].
peers(E) -> maps:get(peers, info(E)).

%% ------------------------------------------------------------------ helpers

%% @doc Encodes a message in the wire format (include/plexus/election.h). For tests
%% and tools; `{error, invalid_argument}' for a message the format cannot carry.
-spec encode_msg(msg()) -> binary() | {error, invalid_argument}.
encode_msg(Msg) -> plexus_nif:election_msg_encode(Msg).

%% @doc Decodes a wire message strictly (one encoding per message).
-spec decode_msg(binary()) -> {ok, msg()} | {error, reason()}.
decode_msg(Bin) -> plexus_nif:election_msg_decode(Bin).

%% @doc The peer id of a node: the first 64 bits of the MD5 of its name (not a
%% security property; distinct names collide with probability ~n^2/2^65, and
%% `plexus_leader' refuses a collision). Never 0.
-spec node_id(node() | binary()) -> id().
node_id(Node) when is_atom(Node) -> node_id(atom_to_binary(Node, utf8));
node_id(Name) when is_binary(Name) ->
    <<Id:64, _/binary>> = erlang:md5(Name),
    case Id of
        0 -> 1;
        _ -> Id
    end;
node_id(_) ->
    erlang:error(badarg).

%% @doc The 64-bit cluster id carried by every message, from any term: a
%% non-negative integer below 2^64 stands for itself, anything else is hashed
%% (deterministic external format, so every node computes the same key).
-spec cluster_key(term()) -> non_neg_integer().
cluster_key(I) when is_integer(I), I >= 0, I < 1 bsl 64 -> I;
cluster_key(T) ->
    <<K:64, _/binary>> = erlang:md5(term_to_binary(T, [deterministic, {minor_version, 2}])),
    K.

