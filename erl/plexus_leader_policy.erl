%% @private
%% @doc What a `plexus_leader' process decides, as a pure state machine in the manner
%% of rabbitmq/ra's `ra_server': `handle(Event, Ctx, State) -> {State, Effects}'. It
%% owns the election machine (`plexus_election', itself a pure state machine driven
%% by ticks and messages), the voters and their presence, the membership and its key,
%% and the staggered fast path; it never touches the disk, the network, the clock or
%% the callback module. `plexus_leader' runs the effects it returns, in the order they
%% come: always the one `persist' first (the last durable state the event produced:
%% each carries the whole state, so it supersedes earlier ones), then every `send',
%% then the rest (`callback', `timer', `log', `reply') in the order they arose. So
%% nothing leaves before what it depends on is on disk, and a callback sees the state
%% after the whole event.
%%
%% What the event needs from outside comes in `Ctx': `now' (monotonic ms, for
%% presence) and `connected' (the nodes this node is connected to, for the rank of
%% the staggered fast path).
-module(plexus_leader_policy).

-export([new/1, handle/3, membership_change/2]).
-export([view/1, info/1, key/1, member_nodes/1, peer_nodes/1, present_nodes/1,
         voted_for_node/1, leader_node/1, leader/1, role_and_term/1]).

-export_type([policy/0, event/0, effect/0, ctx/0, payload/0, key/0]).

%% Voters per cluster, this node included (PLEXUS_ELECTION_MAX_NODES).
-define(MAX_VOTERS, 64).
%% The greatest term the machine takes (PLEXUS_ELECTION_TERM_MAX), also the bound of a
%% membership version: both are saved as 64-bit words and must never wrap.
-define(KEY_MAX, (1 bsl 63) - 1).

-record(peer, {
    node :: node(),
    pid :: pid() | undefined,
    present = false :: boolean(),
    heard = 0 :: integer(),         % monotonic ms of the last message from it
    key = {0, 0} :: key()           % membership key it reported
}).

-record(ps, {
    name :: atom(),
    self_node :: node(),
    self_id :: plexus_election:id(),
    e :: plexus_election:election(),
    machine_cfg :: map(),                    % plexus_election:new/1 settings
    cfg_ver = 0 :: non_neg_integer(),        % version of the membership in `peers'
    cfg_term = 0 :: non_neg_integer(),       % term in which that version was made
    peers = #{} :: #{plexus_election:id() => #peer{}},
    hb_ticks :: pos_integer(),
    ticks = 0 :: non_neg_integer(),
    peer_timeout :: pos_integer(),
    stagger_ms :: pos_integer(),
    term = 0 :: non_neg_integer(),
    voted_for = 0 :: non_neg_integer(),
    role = follower :: plexus_election:role(),
    leader_id = 0 :: non_neg_integer(),
    reported = undefined :: self | pid() | undefined,
    refused_stale = 0 :: non_neg_integer(),  % vote requests from older memberships
    fast = 0 :: non_neg_integer(),           % staggered fast-path campaigns started
    fx = [] :: [effect()]                    % effects of the current event, newest first
}).

-opaque policy() :: #ps{}.
%% Membership key: the term the membership was made in, and its version.
-type key() :: {non_neg_integer(), non_neg_integer()}.
-type ctx() :: #{now := integer(), connected := [node()]}.
%% What travels between the processes of one cluster (wrapped by the runner).
-type payload() :: {msg, key(), binary()} | {alive, key()}
                 | {config, key(), [node()]} | down.
-type event() :: announce                    % the process started
               | goodbye                     % the process stops
               | tick
               | {peer, node(), pid(), Payload :: term()}   % from that peer's process
               | {nodeup, node()}
               | {nodedown, node()}
               | {fast_campaign, Term :: non_neg_integer()}
               | {join | leave, node()}.
-type effect() :: {persist, plexus_election:hard_state(), plexus_leader_hard_state:config()}
                | {send, node(), payload()}
                | {callback, atom(), [term()]}
                | {timer, pos_integer(), {fast_campaign, non_neg_integer()}}
                | {log, error, io:format(), [term()]}
                | {reply, ok | {error, term()}}.

%% ------------------------------------------------------------------ create

%% @doc A policy from the saved (or seeded) hard state and membership. `hard' is
%% `none' for a node that must sit out one election timeout (its hard state was
%% lost). Throws `{id_collision, Node, Other}' for two voters with one id and
%% `{bootstrap, Why}' when the machine refuses the voters (more than 63 peers).
-spec new(#{name := atom(), self_node := node(), machine_cfg := map(),
            hard := plexus_election:hard_state() | none,
            config := plexus_leader_hard_state:config(), hb_ticks := pos_integer(),
            peer_timeout := pos_integer(), stagger_ms := pos_integer()}) -> policy().
new(#{name := Name, self_node := SelfNode, machine_cfg := MachineCfg, hard := Hard,
      config := {CfgVer, CfgTerm, Members}, hb_ticks := HbT, peer_timeout := PeerTimeout,
      stagger_ms := Stagger}) ->
    SelfId = maps:get(id, MachineCfg),
    Peers = lists:foldl(fun(N, Acc) -> add_peer_entry(N, SelfNode, SelfId, Acc) end, #{},
                        [N || N <- Members, N =/= SelfNode]),
    E = case plexus_election:new(MachineCfg#{peers => maps:keys(Peers),
                                             hard_state => Hard}) of
            {ok, Machine} -> Machine;
            {error, Why} -> throw({bootstrap, Why})
        end,
    {Term, Voted} = case Hard of
                        none -> {0, 0};
                        _ -> Hard
                    end,
    #ps{name = Name, self_node = SelfNode, self_id = SelfId, e = E,
        machine_cfg = MachineCfg, cfg_ver = CfgVer, cfg_term = CfgTerm, peers = Peers,
        hb_ticks = HbT, peer_timeout = PeerTimeout, stagger_ms = Stagger,
        term = Term, voted_for = Voted}.

%% ------------------------------------------------------------------ events

%% @doc One event in, the new state and the effects to run, in order (see the module
%% doc). `{join | leave, Node}' adds a `{reply, Result}' effect.
-spec handle(event(), ctx(), policy()) -> {policy(), [effect()]}.
handle(Event, Ctx, PS) ->
    flush(event(Event, Ctx, PS#ps{fx = []})).

event(announce, _Ctx, PS) ->
    tell_peers(alive(PS), undefined, PS);
event(goodbye, _Ctx, PS) ->
    %% So a follower of this leader campaigns now rather than after its timeout (a
    %% halted node is seen through nodedown instead).
    lists:foldl(fun(#peer{node = N}, Acc) -> send(N, down, Acc) end, PS,
                maps:values(PS#ps.peers));
event(tick, Ctx, PS) ->
    tick(Ctx, PS);
event({peer, Node, Pid, Payload}, Ctx, PS) ->
    from_peer(Node, Pid, Payload, Ctx, PS);
event({nodeup, Node}, _Ctx, PS) ->
    case peer_by_node(Node, PS) of
        {ok, _, _} -> send(Node, alive(PS), PS);
        error -> PS
    end;
event({nodedown, Node}, Ctx, PS) ->
    case peer_by_node(Node, PS) of
        {ok, Id, _} -> lost_peer(Id, Ctx, left(Id, PS));
        error -> PS
    end;
event({fast_campaign, Term}, _Ctx, PS) ->
    fast_campaign(Term, PS);
event({Op, Node}, _Ctx, PS) when Op =:= join; Op =:= leave ->
    case membership_change({Op, Node}, PS) of
        {ok, Members} ->
            try effect({reply, ok}, change_config(Members, PS))
            catch throw:{id_collision, _, _} = C -> effect({reply, {error, C}}, PS)  % nothing saved
            end;
        {error, _} = E ->
            effect({reply, E}, PS)
    end.

%% Persist first (only the last: each is the whole durable state), then sends, then
%% the rest in order.
flush(PS = #ps{fx = Fx}) ->
    InOrder = lists:reverse(Fx),
    Persist = lists:sublist([E || E = {persist, _, _} <- Fx], 1),
    Sends = [E || E = {send, _, _} <- InOrder],
    Rest = [E || E <- InOrder, element(1, E) =/= persist, element(1, E) =/= send],
    {PS#ps{fx = []}, Persist ++ Sends ++ Rest}.

effect(Effect, PS = #ps{fx = Fx}) -> PS#ps{fx = [Effect | Fx]}.

send(Node, Payload, PS) -> effect({send, Node, Payload}, PS).

callback(Name, Args, PS) -> effect({callback, Name, Args}, PS).

save(Hard, {Ver, CTerm, Members}, PS) ->
    effect({persist, Hard, {Ver, CTerm, lists:usort(Members)}}, PS).

%% ------------------------------------------------------------------ the machine

tick(Ctx, PS0 = #ps{ticks = T}) ->
    PS1 = apply_ready(plexus_election:tick(PS0#ps.e), PS0#ps{ticks = T + 1}),
    PS2 = case (T + 1) rem PS1#ps.hb_ticks of
              0 -> tell_peers(alive(PS1), undefined, PS1);
              _ -> PS1
          end,
    check_presence(Ctx, restamp(PS2)).

%% After every input of the machine: the hard state to persist, its messages to send,
%% then the callbacks for term and role changes.
apply_ready({error, _}, PS) ->
    PS;
apply_ready({Msgs, Hard, Soft}, PS0) ->
    PS1 = persist(Hard, PS0),
    PS2 = lists:foldl(fun({To, Bin}, Acc) ->
                              case Acc#ps.peers of
                                  #{To := #peer{node = N}} -> send(N, {msg, key(Acc), Bin}, Acc);
                                  _ -> Acc
                              end
                      end, PS1, Msgs),
    PS3 = term_changed(Hard, PS0#ps.term, PS2),
    report_leader(soft(Soft, PS3)).

persist(unchanged, PS) ->
    PS;
persist({Term, Voted} = H, PS) ->
    save(H, {PS#ps.cfg_ver, PS#ps.cfg_term, member_nodes(PS)},
         PS#ps{term = Term, voted_for = Voted}).

term_changed({New, _}, Old, PS) when New =/= Old ->
    callback(handle_term_changed, [Old, New], PS);
term_changed(_, _, PS) ->
    PS.

soft(unchanged, PS) -> PS;
soft({Role, LeaderId}, PS) -> PS#ps{role = Role, leader_id = LeaderId}.

%% Callbacks when the leader as this node sees it changed: itself, another process
%% (a pid: also a leader that restarted on the same node) or nobody.
report_leader(PS) ->
    View = leader(PS),
    case {PS#ps.reported, View} of
        {Same, Same} -> PS;
        {_, self} -> callback(handle_become_leader, [], PS#ps{reported = self});
        {_, Pid} -> callback(handle_become_follower, [Pid], PS#ps{reported = Pid})
    end.

%% ------------------------------------------------------------------ from peers

tell_peers(Payload, Except, PS) ->
    lists:foldl(fun(#peer{node = N}, Acc) when N =/= Except -> send(N, Payload, Acc);
                   (_, Acc) -> Acc
                end, PS, maps:values(PS#ps.peers)).

from_peer(Node, Pid, Payload, Ctx = #{now := Now}, PS) ->
    case peer_by_node(Node, PS) of
        {ok, Id, P} ->
            PS1 = heard(Id, P#peer{pid = Pid, heard = Now}, PS),
            on_payload(Payload, Id, Node, Ctx, PS1);
        error ->
            on_stranger(Payload, Node, PS)
    end.

%% Every election message and every `alive' carries the sender's membership key
%% (see membership_change/2). A peer behind us is sent our membership; a stranger
%% ahead of us is answered with `alive', so that it sends us its membership; a
%% (pre-)vote request from a candidate behind us is refused unanswered (rule 4).
on_payload({msg, Key, Bin}, _Id, Node, _Ctx, PS) when is_binary(Bin) ->
    case is_key(Key) of
        false -> PS;
        true ->
            PS1 = peer_key(Key, Node, PS),
            case Key < key(PS1) andalso is_vote_request(Bin) of
                true -> PS1#ps{refused_stale = PS1#ps.refused_stale + 1};
                false -> apply_ready(plexus_election:step(PS1#ps.e, Bin), PS1)
            end
    end;
on_payload({alive, Key}, Id, Node, _Ctx, PS = #ps{peers = Peers}) ->
    case is_key(Key) of
        false -> PS;
        true ->
            #{Id := P} = Peers,
            peer_key(Key, Node, PS#ps{peers = Peers#{Id => P#peer{key = Key}}})
    end;
on_payload(down, Id, _Node, Ctx, PS) ->
    lost_peer(Id, Ctx, left(Id, PS));
on_payload({config, Key, Members}, _Id, Node, _Ctx, PS) ->
    adopt_config(Key, Members, Node, PS);
on_payload(_, _, _, _, PS) ->
    PS.

%% From a node that is not a voter here, only a membership naming this node counts
%% (a node started with an empty or old `bootstrap' learns the voters that way).
on_stranger({config, Key, Members}, Node, PS) ->
    adopt_config(Key, Members, Node, PS);
on_stranger({msg, Key, Bin}, Node, PS) when is_binary(Bin) ->
    %% counted by the machine as unknown_peer
    PS1 = stranger_key(Key, Node, PS),
    apply_ready(plexus_election:step(PS1#ps.e, Bin), PS1);
on_stranger({alive, Key}, Node, PS) ->
    stranger_key(Key, Node, PS);
on_stranger(_, _, PS) ->
    PS.

is_vote_request(Bin) ->
    case plexus_election:decode_msg(Bin) of
        {ok, #{type := T}} -> T =:= vote orelse T =:= pre_vote;
        {error, _} -> false
    end.

%% A key from a peer is two integers the machine and the file can hold: a term above
%% the machine's maximum made adopt/3 crash the process (the machine refuses it), and a
%% version of 64 bits or more was kept here but written cut to 64 bits.
is_key({T, V}) when is_integer(T), T >= 0, T =< ?KEY_MAX,
                    is_integer(V), V >= 0, V =< ?KEY_MAX -> true;
is_key(_) -> false.

peer_key(Key, Node, PS) ->
    case Key < key(PS) of
        true -> send(Node, {config, key(PS), member_nodes(PS)}, PS);
        false -> PS
    end.

stranger_key(Key, Node, PS) ->
    case is_key(Key) andalso key(PS) < Key of
        true -> send(Node, alive(PS), PS);
        false -> PS
    end.

alive(PS) -> {alive, key(PS)}.

%% ------------------------------------------------------------------ membership

%% @doc Whether the membership may change by `Op' now, and to what (rule 1 below).
%%
%% Membership is part of the durable state: the voters and a key {Term, Version}
%% (the term it was made in and a counter), saved with the term and vote and
%% replacing `bootstrap' after a restart. Keys compare term first. The rules are Raft's
%% for a log whose only entries are memberships, one voter changed at a time (Ongaro's
%% thesis §4.1, with the 2015 fix "a leader commits an entry of its own term before a
%% change"); the key plays the part of the last entry's {term, index}:
%%
%% 1. Only the leader changes the membership, one voter at a time, and only once a
%%    majority of its voters (itself included) reported its current key and none a
%%    newer one (the entry is committed), and that key is of its own term. Otherwise
%%    join/leave answer `{error, not_leader}' or `{error, {change_in_progress, Key}}'.
%% 2. A new leader whose membership was made in an older term first re-issues it
%%    unchanged with a key of its term (restamp/1, the no-op entry of the fix).
%% 3. The new membership is saved before it is used or sent. A node adopts (saves,
%%    then uses) any membership with a newer key that names it, moving up to the term
%%    of the key first if it is behind; it sends its own to a peer reporting an older
%%    key. (AppendEntries: the newer leader's entry wins.)
%% 4. A node refuses (pre-)votes to a candidate whose key is older than its own (the
%%    election restriction, §5.4.1, on this log); a candidate counts votes against its
%%    own membership.
%%
%% With these, Raft's Leader Completeness holds for memberships: every leader knows
%% every committed membership, so the memberships that leaders of any two terms count
%% against are one committed change apart at most, and any majority of the one meets
%% any majority of the other; two leaders of one term would need disjoint majorities,
%% while each voter votes once per term. test/sim checks this with joins, leaves,
%% restarts, partitions and message loss, and catches the bug of issue 8 when it is
%% planted back (`--plant-bug forget-membership').
-spec membership_change({join | leave, node()}, policy()) ->
    {ok, [node()]} | {error, term()}.
membership_change({_, Node}, _PS) when not is_atom(Node) ->
    {error, badarg};            % a raw request (the API takes nodes only): it crashed
membership_change({_, Node}, #ps{self_node = Node}) ->
    %% Nor leave: a leader that removed itself went on leading (forever without
    %% CheckQuorum) and kept itself as a voter under the new key, which then named two
    %% memberships. Stop its process; the next leader removes its node.
    {error, self};
membership_change(_Op, #ps{role = Role}) when Role =/= leader ->
    {error, not_leader};
membership_change(Op, PS) ->
    Members = member_nodes(PS),
    case {Op, lists:member(element(2, Op), Members), committed(PS)} of
        {_, _, false} -> {error, {change_in_progress, key(PS)}};
        {{join, _}, true, _} -> {error, already_member};
        {{leave, _}, false, _} -> {error, not_found};
        {{join, _}, false, _} when length(Members) >= ?MAX_VOTERS -> {error, full};
        {{join, N}, false, _} -> {ok, lists:usort([N | Members])};
        {{leave, N}, true, _} -> {ok, Members -- [N]}
    end.

%% Rule 1, for a leader: its key is of its term, a majority of the voters (self
%% included) reported it, and nobody reported a newer one.
committed(PS = #ps{peers = Peers, cfg_term = CTerm, term = Term}) ->
    Key = key(PS),
    Reports = [K || #peer{key = K} <- maps:values(Peers)],
    CTerm =:= Term andalso
        1 + length([x || K <- Reports, K =:= Key]) >= (maps:size(Peers) + 1) div 2 + 1
        andalso not lists:any(fun(K) -> K > Key end, Reports).

%% Rule 2: called after every tick.
restamp(PS = #ps{role = leader, cfg_term = CTerm, term = Term}) when CTerm < Term ->
    change_config(member_nodes(PS), PS);
restamp(PS) ->
    PS.

%% Makes the next membership here, in this leader's term, and sends it to the old and
%% the new voters.
change_config(Members, PS = #ps{cfg_ver = Ver, term = Term}) ->
    Old = member_nodes(PS),
    Key = {Term, Ver + 1},
    PS1 = install(Key, Members, PS),
    lists:foldl(fun(N, Acc) -> send(N, {config, Key, Members}, Acc) end,
                PS1, lists:usort(Old ++ Members) -- [PS#ps.self_node]).

adopt_config(Key, Members, From, PS) when is_list(Members) ->
    Valid = is_key(Key) andalso is_voter_list(Members, ?MAX_VOTERS),
    case Valid andalso key(PS) < Key andalso lists:member(PS#ps.self_node, Members)
        andalso not sits_out_for(Key, PS) of
        true ->
            try adopt(Key, lists:usort(Members), PS) of
                PS1 -> tell_peers(alive(PS1), undefined, PS1)  % report it at once
            catch throw:{id_collision, _, _} = C ->
                    effect({log, error, "~p ~p: membership ~p from ~p refused: ~p",
                            [plexus_leader, PS#ps.name, Key, From, C]}, PS)
            end;
        false ->
            PS      % malformed, not newer, or not naming this node (it was removed)
    end;
adopt_config(_, _, _, PS) ->
    PS.

%% A peer's voter list: proper, of atoms, at most `Max' long; walked no further than
%% that (length/1 raised badarg on an improper list and crashed the process).
is_voter_list([], _) -> true;
is_voter_list([N | Rest], Max) when Max > 0, is_atom(N) -> is_voter_list(Rest, Max - 1);
is_voter_list(_, _) -> false.

%% A node sitting out (its hard state was lost, see new/1) takes no membership of a
%% later term until the sit-out is over: adopt/3 would restart its machine from that
%% term's saved state, which ends the sit-out at once, and the node could vote again in
%% the term in which it cast the vote it lost (a peer sends its membership to a node
%% that reports the seed key {0, 0}, so every such restart took this path within one
%% round trip). Nothing is lost: the peer sends it again on this node's next `alive'.
sits_out_for({CTerm, _}, PS = #ps{e = E}) ->
    CTerm > PS#ps.term andalso maps:get(sit_out_left, plexus_election:info(E)) > 0.

%% Rule 3: a membership is used only with a term at least its key's. Behind that
%% term, the node moves to it as a follower without a vote, by restarting its machine
%% from the saved {CTerm, 0} (the machine has no other input that raises a term, and a
%% restart from saved hard state is always safe).
adopt({CTerm, _} = Key, Members, PS) when CTerm =< PS#ps.term ->
    install(Key, Members, PS);
adopt({CTerm, Ver}, Members, PS) ->
    #ps{self_node = SelfNode, self_id = SelfId} = PS,
    Gone = [Id || {Id, #peer{node = N}} <- maps:to_list(PS#ps.peers),
                  not lists:member(N, Members)],
    PS0 = lists:foldl(fun left/2, PS, Gone),
    Peers = lists:foldl(fun(N, Acc) ->
                                Id = plexus_election:node_id(N),
                                case PS0#ps.peers of
                                    #{Id := P = #peer{node = N}} -> Acc#{Id => P};
                                    _ -> add_peer_entry(N, SelfNode, SelfId, Acc)
                                end
                        end, #{}, Members -- [SelfNode]),
    PS0a = save({CTerm, 0}, {Ver, CTerm, Members}, PS0),
    {ok, E} = plexus_election:new((PS0#ps.machine_cfg)#{peers => maps:keys(Peers),
                                                        hard_state => {CTerm, 0}}),
    PS1 = PS0a#ps{e = E, peers = Peers, cfg_ver = Ver, cfg_term = CTerm, term = CTerm,
                  voted_for = 0, role = follower, leader_id = 0},
    PS2 = callback(handle_term_changed, [PS0#ps.term, CTerm], PS1),
    report_leader(PS2).

%% Saves the membership with the hard state, then applies it to the machine.
install({CTerm, Ver}, Members, PS = #ps{self_node = SelfNode, self_id = SelfId}) ->
    _ = lists:foldl(fun(N, Acc) -> add_peer_entry(N, SelfNode, SelfId, Acc) end, #{},
                    Members -- [SelfNode]),               % throws on an id collision
    PS0 = save({PS#ps.term, PS#ps.voted_for}, {Ver, CTerm, Members}, PS),
    Current = member_nodes(PS),
    PS1 = PS0#ps{cfg_ver = Ver, cfg_term = CTerm},
    PS2 = lists:foldl(fun remove_member/2, PS1, Current -- Members),
    lists:foldl(fun add_member/2, PS2, Members -- Current).

%% add_peer/remove_peer never change the term or vote, so apply_ready below persists
%% nothing mid-change.
add_member(Node, PS) ->
    Id = plexus_election:node_id(Node),
    case plexus_election:add_peer(PS#ps.e, Id) of
        {error, R} ->
            effect({log, error, "~p ~p: cannot add ~p: ~p", [plexus_leader, PS#ps.name, Node, R]},
                   PS);
        Ready ->
            PS1 = PS#ps{peers = add_peer_entry(Node, PS#ps.self_node, PS#ps.self_id,
                                               PS#ps.peers)},
            send(Node, alive(PS1), apply_ready(Ready, PS1))
    end.

remove_member(Node, PS) ->
    case peer_by_node(Node, PS) of
        {ok, Id, _} ->
            PS1 = left(Id, PS),
            Ready = plexus_election:remove_peer(PS1#ps.e, Id),
            apply_ready(Ready, PS1#ps{peers = maps:remove(Id, PS1#ps.peers)});
        error ->
            PS
    end.

%% A new voter entry, refusing two nodes with one id.
add_peer_entry(Node, SelfNode, SelfId, Peers) ->
    Id = plexus_election:node_id(Node),
    case Peers of
        #{Id := #peer{node = Node}} -> Peers;
        #{Id := #peer{node = Other}} -> throw({id_collision, Node, Other});
        _ when Id =:= SelfId -> throw({id_collision, Node, SelfNode});
        _ -> Peers#{Id => #peer{node = Node}}
    end.

peer_by_node(Node, #ps{peers = Peers}) ->
    Id = plexus_election:node_id(Node),
    case Peers of
        #{Id := P = #peer{node = Node}} -> {ok, Id, P};
        _ -> error
    end.

%% ------------------------------------------------------------------ presence

heard(Id, P = #peer{present = true}, PS) ->
    PS#ps{peers = (PS#ps.peers)#{Id => P}};
heard(Id, P, PS) ->
    PS1 = PS#ps{peers = (PS#ps.peers)#{Id => P#peer{present = true}}},
    callback(handle_peer_joined, [{PS#ps.name, P#peer.node}], PS1).

left(Id, PS) ->
    case PS#ps.peers of
        #{Id := P = #peer{present = true}} ->
            PS1 = PS#ps{peers = (PS#ps.peers)#{Id => P#peer{present = false}}},
            callback(handle_peer_left, [{PS#ps.name, P#peer.node}], PS1);
        _ ->
            PS
    end.

check_presence(#{now := Now}, PS = #ps{peer_timeout = Timeout}) ->
    Stale = [Id || {Id, #peer{present = true, heard = H}} <- maps:to_list(PS#ps.peers),
                   Now - H > Timeout],
    lists:foldl(fun left/2, PS, Stale).

%% The fast path (doc/DESIGN.md §2), staggered. The BEAM tells every survivor within
%% milliseconds that the leader's node went (or its process said goodbye). Were they all
%% to campaign at once, they would all stand in the same term and split the vote, and
%% the cluster would wait out a randomized timeout after all. So every survivor forgets
%% the leader at once (it then grants the others' pre-votes), and campaigns after
%% rank x stagger ms, rank being its place among the live voters sorted by id: the
%% first campaigns at once and normally wins in one round; the next ones only act if
%% no leader (and no new term) appeared meanwhile. Votes are still needed: safety is
%% the core's, this only orders the attempts.
lost_peer(Id, #{connected := Connected}, PS0) ->
    WasLeader = PS0#ps.role =:= follower andalso PS0#ps.leader_id =:= Id,
    PS1 = apply_ready(plexus_election:forget_leader(PS0#ps.e, Id), PS0),
    case WasLeader of
        false ->
            PS1;
        true ->
            case rank(Id, Connected, PS1) * PS1#ps.stagger_ms of
                0 -> fast_campaign(PS1#ps.term, PS1);
                Delay -> effect({timer, Delay, {fast_campaign, PS1#ps.term}}, PS1)
            end
    end.

fast_campaign(Term, PS = #ps{role = follower, leader_id = 0, term = Term}) ->
    apply_ready(plexus_election:campaign(PS#ps.e), PS#ps{fast = PS#ps.fast + 1});
fast_campaign(_Term, PS) ->
    PS.

%% This node's place among the voters still connected, without the dead one.
rank(DeadId, Connected, PS = #ps{self_id = Self}) ->
    Up = maps:from_keys(Connected, true),
    Live = lists:sort([Self | [Id || {Id, #peer{node = N}} <- maps:to_list(PS#ps.peers),
                                     Id =/= DeadId, is_map_key(N, Up)]]),
    length(lists:takewhile(fun(Id) -> Id =/= Self end, Live)).

%% ------------------------------------------------------------------ views

%% @doc The membership key `{Term, Version}'.
-spec key(policy()) -> key().
key(#ps{cfg_term = T, cfg_ver = V}) -> {T, V}.

%% @doc Every voter, this node included, sorted.
-spec member_nodes(policy()) -> [node()].
member_nodes(PS) ->
    lists:usort([PS#ps.self_node | peer_nodes(PS)]).

%% @doc The other voters' nodes, sorted.
-spec peer_nodes(policy()) -> [node()].
peer_nodes(#ps{peers = Peers}) ->
    lists:sort([N || #peer{node = N} <- maps:values(Peers)]).

%% @doc The other voters heard from lately, sorted.
-spec present_nodes(policy()) -> [node()].
present_nodes(#ps{peers = Peers}) ->
    lists:sort([N || #peer{node = N, present = true} <- maps:values(Peers)]).

%% @doc The leader as this node sees it: `self', another process's pid, or `undefined'.
-spec leader(policy()) -> self | pid() | undefined.
leader(#ps{role = leader}) -> self;
leader(#ps{leader_id = 0}) -> undefined;
leader(#ps{leader_id = Id, peers = Peers}) ->
    case Peers of
        #{Id := #peer{pid = Pid}} -> Pid;
        _ -> undefined
    end.

%% @doc The leader's node, or `undefined'.
-spec leader_node(policy()) -> node() | undefined.
leader_node(#ps{role = leader, self_node = N}) -> N;
leader_node(#ps{leader_id = 0}) -> undefined;
leader_node(PS = #ps{leader_id = Id}) -> node_of(Id, PS).

%% @doc The node this one voted for in the current term, or `undefined'.
-spec voted_for_node(policy()) -> node() | undefined.
voted_for_node(#ps{voted_for = 0}) -> undefined;
voted_for_node(#ps{voted_for = V, self_id = V, self_node = N}) -> N;
voted_for_node(PS = #ps{voted_for = V}) -> node_of(V, PS).

node_of(Id, #ps{peers = Peers}) ->
    case Peers of
        #{Id := #peer{node = N}} -> N;
        _ -> undefined
    end.

%% @doc The role and term, cheaply (the runner's events read them after every event).
-spec role_and_term(policy()) -> {plexus_election:role(), non_neg_integer()}.
role_and_term(#ps{role = Role, term = Term}) -> {Role, Term}.

%% @doc What the API answers from: role, term, leader (as `leader/1'), peers.
-spec view(policy()) -> #{role := plexus_election:role(), term := non_neg_integer(),
                          leader := self | pid() | undefined, peers := [node()]}.
view(PS) ->
    #{role => PS#ps.role, term => PS#ps.term, leader => leader(PS), peers => peer_nodes(PS)}.

%% @doc The policy's part of `plexus_leader:info/1' (the leader as in `leader/1').
-spec info(policy()) -> map().
info(PS) ->
    I = plexus_election:info(PS#ps.e),
    #{id => PS#ps.self_id, role => PS#ps.role, term => PS#ps.term,
      voted_for => voted_for_node(PS), leader => leader(PS), leader_node => leader_node(PS),
      quorum => maps:get(quorum, I), config_version => PS#ps.cfg_ver, config_key => key(PS),
      members => member_nodes(PS), peer_nodes => peer_nodes(PS),
      present_nodes => present_nodes(PS),
      stats => (maps:get(stats, I))#{fast_campaigns => PS#ps.fast,
                                     stale_config_votes => PS#ps.refused_stale}}.
