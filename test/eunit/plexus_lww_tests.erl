%% EUnit tests of plexus_lww: construction, reads, updates (HLC and explicit
%% timestamps, riak_dt-style ops), merge order and tie breaks, HLC monotonicity when
%% the wall clock is behind observed timestamps, equal/digest, type errors.
-module(plexus_lww_tests).

-include_lib("eunit/include/eunit.hrl").

-define(L, plexus_lww).
-define(MAX_TS, 18446744073709551615).

%% Wall-clock milliseconds as an HLC timestamp (48 bits of ms, 16 logical).
hlc(Ms) -> Ms bsl 16.

now_hlc() -> hlc(os:system_time(millisecond)). % the wall clock plexus_hlc reads

%% "The future" for a test: ahead of both the wall clock and the node-wide HLC, which
%% earlier tests may have moved forward (the clock is node state, shared by all tests).
%% Offsets stay well inside the one-hour skew bound so that observing them still
%% advances the clock.
future(Ms) -> max(now_hlc(), ?L:clock()) + hlc(Ms).

new_test() ->
    R = ?L:new(hello),
    ?assertMatch({plexus_lww, _, _, _}, R),
    ?assertEqual(hello, ?L:value(R)),
    ?assertEqual(node(), ?L:actor(R)),
    ?assertEqual({ok, R}, ?L:from_binary(?L:to_binary(R))),
    R2 = ?L:new({complex, [1, 2.5, <<"x">>, #{a => 1}]}, {actor, 7}),
    ?assertEqual({complex, [1, 2.5, <<"x">>, #{a => 1}]}, ?L:value(R2)),
    ?assertEqual({actor, 7}, ?L:actor(R2)).

timestamp_is_hlc_of_wall_clock_test() ->
    Before = now_hlc(),
    Ts = ?L:timestamp(?L:new(v)),
    %% Never behind the wall clock; ahead of it by at most the skew bound (one hour,
    %% reached when earlier tests observed future timestamps) plus logical ticks.
    ?assert(Ts >= Before),
    ?assert(Ts =< now_hlc() + hlc(3600 * 1000 + 1000)).

new_is_monotonic_test() ->
    Ts = [?L:timestamp(?L:new(I)) || I <- lists:seq(1, 1000)],
    ?assertEqual(Ts, lists:usort(Ts)),
    Cs = [?L:clock() || _ <- lists:seq(1, 1000)],
    ?assertEqual(Cs, lists:usort(Cs)),
    ?assert(hd(Cs) > lists:last(Ts)).

update_test() ->
    R1 = ?L:new(a, other),
    R2 = ?L:update(R1, b),
    ?assertEqual(b, ?L:value(R2)),
    ?assertEqual(node(), ?L:actor(R2)),
    ?assert(?L:timestamp(R2) > ?L:timestamp(R1)),
    ?assertEqual(R2, ?L:merge(R1, R2)),
    ?assertEqual(R2, ?L:merge(R2, R1)).

local_update_wins_over_future_state_test() ->
    %% A register from a node whose clock runs 30 minutes ahead (as if our wall clock
    %% went back): updating it locally must still win (the HLC takes
    %% max(node clock, register ts) + 1).
    Future = future(5 * 60 * 1000),
    R1 = ?L:update(?L:new(x), far, Future),
    ?assertEqual(Future, ?L:timestamp(R1)),
    R2 = ?L:update(R1, near),
    ?assert(?L:timestamp(R2) > Future),
    ?assertEqual(R2, ?L:merge(R1, R2)),
    %% And the node clock observed it: fresh registers come after it too.
    ?assert(?L:timestamp(?L:new(later)) > Future),
    ?assert(?L:clock() > Future).

clock_observes_merge_test() ->
    Future = future(6 * 60 * 1000),
    Local = ?L:new(local),
    %% A remote register made by hand (no observation on this node).
    <<131, ActorBytes/binary>> = plexus_nif:encode(remote),
    <<131, ValueBytes/binary>> = plexus_nif:encode(v),
    Remote = <<1, $L, Future:64, (byte_size(ActorBytes)), ActorBytes/binary,
               (byte_size(ValueBytes)), ValueBytes/binary>>,
    {ok, RemoteReg} = ?L:from_binary(Remote),
    ?assert(?L:clock() < Future),
    ?assertEqual(RemoteReg, ?L:merge(Local, Remote)),
    ?assert(?L:clock() > Future).

update_explicit_ts_test() ->
    R0 = ?L:new(a),
    T0 = ?L:timestamp(R0),
    %% Older timestamp: no-op, the very same binary comes back.
    ?assertEqual(R0, ?L:update(R0, old, T0 - 1)),
    ?assertEqual(R0, ?L:update(R0, old, 0)),
    %% Newer timestamp wins.
    R1 = ?L:update(R0, newer, T0 + 1),
    ?assertEqual(newer, ?L:value(R1)),
    ?assertEqual(T0 + 1, ?L:timestamp(R1)),
    ?assertEqual(node(), ?L:actor(R1)),
    ?assertEqual(R1, ?L:update(R1, older, T0)),
    %% The whole range.
    RMax = ?L:update(R0, max, ?MAX_TS),
    ?assertEqual(?MAX_TS, ?L:timestamp(RMax)),
    ?assertEqual(max, ?L:value(RMax)).

far_future_not_observed_test() ->
    %% Beyond the skew bound (one hour ahead): merges fine, local update of it still
    %% wins, but the node clock does not jump there.
    Far = now_hlc() + hlc(3 * 3600 * 1000),
    {ok, R} = ?L:update({assign, far, Far}, remote, ?L:new(x)),
    ?assertEqual(Far, ?L:timestamp(R)),
    ?assertEqual(R, ?L:merge(?L:new(y), R)),
    ?assert(?L:clock() < Far),
    R2 = ?L:update(R, mine),
    ?assertEqual(Far + 1, ?L:timestamp(R2)),
    ?assertEqual(R2, ?L:merge(R, R2)),
    ?assert(?L:clock() < Far),
    ?assert(?L:timestamp(?L:new(z)) < Far).

update_at_max_ts_test() ->
    RMax = ?L:update({assign, top, ?MAX_TS}, zzz, ?L:new(x)),
    {ok, R} = RMax,
    %% Nothing can follow 2^64-1: a local update cannot win, so it says so.
    ?assertEqual({error, overflow}, ?L:update(R, next)),
    ?assertEqual({error, overflow}, ?L:update({assign, next}, me, R)),
    %% The node clock was not dragged to the end of time.
    ?assert(?L:clock() < ?MAX_TS),
    ?assert(?L:timestamp(?L:new(fresh)) < ?MAX_TS).

tie_break_test() ->
    Ts = now_hlc(),
    R0 = ?L:new(seed),
    A = ?L:update({assign, v, Ts}, a, R0),
    B = ?L:update({assign, v, Ts}, b, R0),
    {ok, RA} = A,
    {ok, RB} = B,
    %% Same timestamp: the greater actor (external format bytes) wins, both orders.
    Winner = case plexus_nif:encode(a) < plexus_nif:encode(b) of
                 true -> RB;
                 false -> RA
             end,
    ?assertEqual(Winner, ?L:merge(RA, RB)),
    ?assertEqual(Winner, ?L:merge(RB, RA)),
    %% Same timestamp and actor: the greater value wins.
    {ok, V1} = ?L:update({assign, 1, Ts}, a, R0),
    {ok, V2} = ?L:update({assign, 2, Ts}, a, R0),
    ?assertEqual(V2, ?L:merge(V1, V2)),
    ?assertEqual(V2, ?L:merge(V2, V1)),
    %% update/3 with an explicit ts merges: a tie on ts and actor keeps the greater
    %% value, whichever side it is on.
    ?assertEqual({ok, V2}, ?L:update({assign, 1, Ts}, a, V2)),
    ?assertEqual({ok, V2}, ?L:update({assign, 2, Ts}, a, V1)).

merge_returns_an_input_test() ->
    A = ?L:new(a),
    B = ?L:new(<<0:(100 * 8)>>),
    M = ?L:merge(A, B),
    ?assertEqual(B, M),
    %% No copy: the winner is the input term itself (one heap object, same identity).
    ?assert(erts_debug:same(B, ?L:merge(A, B))),
    ?assert(erts_debug:same(B, ?L:merge(B, A))),
    ?assert(erts_debug:same(B, ?L:merge([A, B, A]))).

merge_n_way_test() ->
    Regs = [?L:new(I) || I <- lists:seq(1, 20)],
    Last = lists:last(Regs),
    ?assertEqual(Last, ?L:merge(Regs)),
    ?assertEqual(Last, ?L:merge(lists:reverse(Regs))),
    ?assertEqual(hd(Regs), ?L:merge([hd(Regs)])),
    ?assertError(badarg, ?L:merge([])).

merge_laws_test() ->
    [A, B, C] = [?L:new(I, {n, I}) || I <- [1, 2, 3]],
    ?assertEqual(?L:merge(A, B), ?L:merge(B, A)),
    ?assertEqual(?L:merge(A, ?L:merge(B, C)), ?L:merge(?L:merge(A, B), C)),
    ?assertEqual(A, ?L:merge(A, A)).

riak_update_test() ->
    R0 = ?L:new(a),
    {ok, R1} = ?L:update({assign, b}, me, R0),
    ?assertEqual(b, ?L:value(R1)),
    ?assertEqual(me, ?L:actor(R1)),
    ?assert(?L:timestamp(R1) > ?L:timestamp(R0)),
    T = ?L:timestamp(R1),
    {ok, R2} = ?L:update({assign, c, T + 5}, you, R1),
    ?assertEqual({c, you, T + 5}, {?L:value(R2), ?L:actor(R2), ?L:timestamp(R2)}),
    ?assertEqual({ok, R2}, ?L:update({assign, d, T}, you, R2)),
    ?assertError(badarg, ?L:update({bogus, 1}, me, R0)),
    ?assertError(badarg, ?L:update({assign, 1, -1}, me, R0)),
    ?assertError(badarg, ?L:update({assign, 1, ?MAX_TS + 1}, me, R0)),
    ?assertError(badarg, ?L:update({assign, 1, 1.0}, me, R0)),
    ?assertError(badarg, ?L:update({assign, 1}, me, not_a_reg)).

equal_digest_test() ->
    A = ?L:new(a),
    B = ?L:new(b),
    ABin = ?L:to_binary(A),
    ?assert(?L:equal(A, ABin)),
    ?assert(?L:equal(ABin, A)),
    ?assertNot(?L:equal(A, B)),
    ?assertEqual(?L:digest(A), ?L:digest(ABin)),
    %% The digest is still the NIF's BLAKE2b-256 of the canonical bytes.
    ?assertEqual(plexus_nif:lww_digest(ABin), ?L:digest(A)),
    ?assertNotEqual(?L:digest(A), ?L:digest(B)),
    ?assertMatch(<<_:256>>, ?L:digest(A)),
    Bad = <<ABin/binary, 1>>,
    ?assertEqual({error, trailing_bytes}, ?L:equal(A, Bad)),
    ?assertEqual({error, trailing_bytes}, ?L:digest(Bad)),
    ?assertError(badarg, ?L:equal(A, 1)).

bad_input_test() ->
    R = ?L:to_binary(?L:new(value)),
    Set = plexus_orset_v1:new(),
    ?assertEqual({error, wrong_type}, ?L:from_binary(Set)),
    ?assertEqual({error, wrong_type}, ?L:value(Set)),
    ?assertEqual({error, wrong_type}, ?L:merge(R, Set)),
    ?assertEqual({error, wrong_type}, ?L:digest(Set)),
    ?assertMatch({error, _}, ?L:from_binary(<<>>)),
    ?assertMatch({error, _}, ?L:update(<<1, $L>>, v)),
    ?assertMatch({error, _}, ?L:update(<<1, $L>>, v, 5)),
    ?assertMatch({error, _}, ?L:timestamp(<<2, $L, 0:64>>)),
    ?assertMatch({error, _}, ?L:actor(binary:part(R, 0, byte_size(R) - 1))),
    ?assertEqual({error, trailing_bytes}, ?L:to_binary(<<R/binary, 0>>)),
    [?assertMatch({error, _}, ?L:from_binary(binary:part(R, 0, N)))
     || N <- lists:seq(0, byte_size(R) - 1)].

bad_term_bytes_test() ->
    %% A well-formed register whose value bytes are not one external term.
    Ts = 1,
    Actor = plexus_nif:encode(a),
    <<131, ActorBytes/binary>> = Actor,
    Reg = <<1, $L, Ts:64, (byte_size(ActorBytes)), ActorBytes/binary, 3, 255, 255, 255>>,
    {ok, Term} = ?L:from_binary(Reg),
    ?assertEqual(Reg, ?L:to_binary(Term)),
    ?assertEqual({error, bad_term}, ?L:value(Reg)),
    ?assertEqual({error, bad_term}, ?L:value(Term)),
    ?assertEqual(a, ?L:actor(Reg)),
    ?assertEqual(a, ?L:actor(Term)),
    %% Bytes of a term followed by junk: not exactly one term.
    <<131, One/binary>> = plexus_nif:encode(1),
    Reg2 = <<1, $L, Ts:64, (byte_size(ActorBytes)), ActorBytes/binary,
             (byte_size(One) + 1), One/binary, 0>>,
    ?assertEqual({error, bad_term}, ?L:value(Reg2)).

badarg_test() ->
    ?assertError(badarg, ?L:value(1)),
    ?assertError(badarg, ?L:timestamp([])),
    ?assertError(badarg, ?L:actor(self())),
    ?assertError(badarg, ?L:update(atom, v)),
    ?assertError(badarg, ?L:update(atom, v, 1)),
    ?assertError(badarg, ?L:update(?L:new(a), v, -5)),
    ?assertError(badarg, ?L:update(?L:new(a), v, not_int)),
    ?assertError(badarg, ?L:merge(?L:new(a), b)),
    ?assertError(badarg, ?L:merge(not_a_list)),
    ?assertError(badarg, ?L:merge([?L:new(a) | ?L:new(b)])),
    ?assertError(badarg, ?L:from_binary(x)),
    ?assertError(badarg, ?L:to_binary(x)),
    ?assertError(badarg, ?L:digest(x)),
    ?assertError(badarg, plexus_nif:lww_read(?L:new(a), other)),
    ?assertError(badarg, plexus_nif:lww_new(<<"not ext">>, plexus_nif:encode(a), 1)).

%% The point of the plain-term register (issue 12): merge of registers (any size)
%% makes no NIF call, since the call costs several times the work, and a write makes
%% exactly one, the one that ticks the clock (lww_update or lww_write: the value's
%% field, the tick and the term), never one that decodes or validates a register.
%% Counted with call_count tracing, not timed. Old binary registers over the small
%% layout are validated by the C path when they are converted.
small_registers_need_no_nif_call_test() ->
    ?assertEqual(1, count_write_nif_calls(fun() -> ?L:new(f) end)),
    ?assertEqual(1, count_write_nif_calls(fun() -> ?L:update(?L:new(a), b) end) - 1),
    ?assertEqual(1, count_write_nif_calls(
                      fun() -> ?L:update({assign, d}, other, ?L:new(a)) end) - 1),
    ?assertEqual(0, count_write_nif_calls(fun() -> ?L:merge(?L:new(a), ?L:new(b)) end) - 2),
    Small = ?L:new(a),
    Newer = ?L:update(Small, b),
    Big = ?L:new(<<0:(200 * 8)>>),
    Ts = ?L:timestamp(Newer),
    Small1 = count_lww_nif_calls(
               fun() ->
                       R1 = ?L:update(Small, c),
                       {ok, R2} = ?L:update({assign, d}, other, R1),
                       R3 = ?L:update(R2, e, Ts + 1),
                       {ok, R3} = ?L:update({assign, e, Ts - 1}, x, R3),
                       R3 = ?L:merge(Small, R3),
                       Newer = ?L:merge(Newer, Small),
                       _ = ?L:new(f),
                       ?L:new(g, actor)
               end),
    ?assertEqual(0, Small1),
    ?assertEqual(0, count_lww_nif_calls(fun() -> ?L:merge(Big, Small) end)),
    ?assertEqual(0, count_lww_nif_calls(fun() -> ?L:update(Big, x) end)),
    ?assertEqual(0, count_lww_nif_calls(fun() -> ?L:update(Small, <<0:(200 * 8)>>) end)),
    %% An old binary over the small layout is validated in C.
    BigBin = ?L:to_binary(Big),
    ?assert(count_lww_nif_calls(fun() -> ?L:merge(BigBin, Small) end) > 0),
    ?assert(count_lww_nif_calls(fun() -> ?L:update(BigBin, x) end) > 0).

%% The value encodings built in Erlang (atoms, 32-bit integers, binaries) are the
%% bytes of plexus_nif:encode/1, at the edges of each shape and of the one-byte length
%% field; new/1,2, update/2 and update/3 all agree with the C encoder.
value_encodings_match_the_bif_test() ->
    Atom = fun(N, C) -> list_to_atom(lists:duplicate(N, C)) end,
    Many = [list_to_atom("plexus_lww_tests_v" ++ integer_to_list(I)) || I <- lists:seq(1, 300)],
    Values = [a, '', true, Atom(123, $a), Atom(124, $a), Atom(125, $a), Atom(126, $a),
              Atom(255, $a), Atom(62, 16#e9), Atom(63, 16#e9), Atom(255, 16#1F600),
              0, 1, 255, 256, -1, -256, 2147483647, 2147483648, -2147483648, -2147483649,
              1 bsl 64, <<>>, <<1, 2>>, binary:copy(<<7>>, 122), binary:copy(<<7>>, 123),
              binary:copy(<<7>>, 300), binary:copy(<<7>>, 4096), binary:copy(<<7>>, 4097),
              Atom(127, 16#e9), Atom(128, 16#e9), Atom(255, 16#e9), Atom(254, 16#7f),
              {a, 1}, "ab", 1.5, #{k => v}]
             %% many atoms, twice over: the C write's caches of atom fields (64
             %% shared write-once slots, then 16 per thread for the atoms whose slot
             %% another holds) must never hand one atom another's bytes
             ++ Many ++ Many ++ [true, false, a, true],
    Node = plexus_nif:encode(node()),
    Base = ?L:new(start),
    [begin
         Enc = plexus_nif:encode(V),
         C = fun(Ts) -> plexus_nif:lww_new(Enc, Node, Ts) end,
         B = fun ?L:to_binary/1,
         R1 = ?L:new(V),
         ?assertEqual({V, C(?L:timestamp(R1))}, {V, B(R1)}),
         R2 = ?L:update(Base, V),
         ?assertEqual({V, C(?L:timestamp(R2))}, {V, B(R2)}),
         ?assertEqual(V, ?L:value(R2)),
         R3 = ?L:update(Base, V, ?L:timestamp(R2) + 1),
         ?assertEqual({V, C(?L:timestamp(R2) + 1)}, {V, B(R3)}),
         R4 = ?L:new(V, V),
         ?assertEqual({V, plexus_nif:lww_new(Enc, Enc, ?L:timestamp(R4))}, {V, B(R4)})
     end || V <- Values],
    ok.

%% Schedulers filling the shared atom slots at once: 4 processes write 400 new atoms
%% each, every process in its own order, so slots are claimed while others read them;
%% each value field must be the atom's own bytes.
atom_fields_under_concurrent_writers_test() ->
    Atoms = [list_to_atom("plexus_lww_tests_race" ++ integer_to_list(I)) || I <- lists:seq(1, 400)],
    Expected = maps:from_list([{A, element(2, split_binary(plexus_nif:encode(A), 1))} || A <- Atoms]),
    Self = self(),
    Writer = fun(Order) ->
                     fun() ->
                             Bad = [A || A <- Order,
                                         element(4, ?L:update(?L:new(x), A)) =/= maps:get(A, Expected)],
                             Self ! {done, self(), Bad}
                     end
             end,
    Orders = [Atoms, lists:reverse(Atoms), shuffle(Atoms, 1), shuffle(Atoms, 2)],
    Pids = [spawn_opt(Writer(O), [link]) || O <- Orders],
    [receive {done, P, Bad} -> ?assertEqual([], Bad) after 60000 -> error(timeout) end
     || P <- Pids],
    ok.

shuffle(L, Seed) ->
    _ = rand:seed(exsss, {Seed, Seed, Seed}),
    [X || {_, X} <- lists:sort([{rand:uniform(), X} || X <- L])].

%% lww_update's actor field for the node's name comes from a few write-once slots,
%% then from the per-thread atom cache: names switching back and forth, more of them
%% than there are slots, each get their own bytes, whether the register's own actor
%% field (reused when it is already the name's) matches or not.
node_actor_field_test() ->
    Names = [list_to_atom("plexus_lww_tests_node" ++ integer_to_list(I) ++ "@h")
             || I <- lists:seq(1, 8)],
    Update = fun Update(R, N) ->
                     case plexus_nif:lww_update(R, N, w) of
                         {lease, Need} -> plexus_hlc:lease(Need), Update(R, N);
                         New -> New
                     end
             end,
    lists:foldl(fun(N, R) ->
                        <<131, Field/binary>> = plexus_nif:encode(N),
                        R2 = {plexus_lww, _, Actor, _} = Update(R, N),
                        ?assertEqual(Field, Actor),
                        ?assertMatch({plexus_lww, _, Field, _}, Update(R2, N)),
                        R2
                end, ?L:new(v), Names ++ lists:reverse(Names) ++ [hd(Names), lists:last(Names)]),
    ?assertEqual(node(), ?L:actor(?L:update(?L:new(v), w))).

count_write_nif_calls(Fun) ->
    count_nif_calls(Fun, [{plexus_nif, lww_write, 3}, {plexus_nif, lww_update, 3}]).

%% The register NIFs (decoding, validating, merging), not the write NIFs.
count_lww_nif_calls(Fun) ->
    count_nif_calls(Fun, [{plexus_nif, F, A} || {F, A} <- plexus_nif:module_info(exports),
                                                lists:prefix("lww_", atom_to_list(F)),
                                                F =/= lww_write, F =/= lww_update]).

count_nif_calls(Fun, Nifs) ->
    [erlang:trace_pattern(MFA, true, [call_count]) || MFA <- Nifs],
    try
        _ = Fun(),
        lists:sum([N || MFA <- Nifs, {call_count, N} <- [erlang:trace_info(MFA, call_count)]])
    after
        [erlang:trace_pattern(MFA, false, [call_count]) || MFA <- Nifs]
    end.

dirty_and_inline_agree_test() ->
    Reg = ?L:new(<<0:(200 * 1024 * 8)>>, big),
    Run = fun() ->
        T = ?L:timestamp(Reg),
        [?L:value(Reg), ?L:actor(Reg), ?L:digest(Reg), ?L:from_binary(?L:to_binary(Reg)),
         ?L:merge(Reg, ?L:update(Reg, x, T - 1)), ?L:update(Reg, <<1>>, T + 1)]
    end,
    Old = plexus_nif:set_dirty_threshold(0),
    Dirty = try Run() after plexus_nif:set_dirty_threshold(Old) end,
    _ = plexus_nif:set_dirty_threshold(1 bsl 62),
    Inline = try Run() after plexus_nif:set_dirty_threshold(Old) end,
    ?assertEqual(Dirty, Inline),
    ?assertEqual(Dirty, Run()).

%% Registers come from other nodes: reading the actor of 10^4 registers written by
%% 10^4 distinct unknown actors makes no atom (it made one each before), a single
%% unknown atom reads back as its name, known atoms and other terms as they are.
actor_makes_no_atoms_test() ->
    <<131, V/binary>> = plexus_nif:encode(v),
    Reg = fun(ActorBytes) ->
                  <<1, $L, 1:64, (byte_size(ActorBytes)), ActorBytes/binary,
                    (byte_size(V)), V/binary>>
          end,
    Name = fun(I) -> <<"plexus_lww_tests_actor_", (integer_to_binary(I))/binary, "@h">> end,
    Small = fun(N) -> <<119, (byte_size(N)), N/binary>> end,
    Regs = [Reg(Small(Name(I))) || I <- lists:seq(1, 10000)],
    Before = erlang:system_info(atom_count),
    Actors = [?L:actor(R) || R <- Regs],
    ?assertEqual(Before, erlang:system_info(atom_count)),
    ?assertEqual([Name(I) || I <- lists:seq(1, 10000)], Actors),
    %% ATOM_UTF8_EXT (2-byte length) too
    N = Name(0),
    ?assertEqual(N, ?L:actor(Reg(<<118, (byte_size(N)):16, N/binary>>))),
    %% an unknown atom inside another term: refused, still no atom
    ?assertEqual({error, bad_term}, ?L:actor(Reg(<<104, 2, 97, 1, (Small(N))/binary>>))),
    ?assertEqual(Before, erlang:system_info(atom_count)),
    %% existing atoms and ordinary terms are unchanged
    ?assertEqual(node(), ?L:actor(?L:new(x))),
    ?assertEqual({actor, 7}, ?L:actor(?L:new(x, {actor, 7}))).

%% ---------------------------------------------------------------- term and binary forms

%% An old binary register, the term made of it and the canonical bytes of that term
%% are one register: same bytes, same digest, merges that mix the forms agree.
old_binary_round_trip_test() ->
    Regs = [?L:new(a), ?L:new(<<0:(300 * 8)>>, {big, actor}), ?L:new({x, [1]}, b)],
    [begin
         Bin = ?L:to_binary(R),
         ?assert(is_binary(Bin)),
         {ok, T} = ?L:from_binary(Bin),
         ?assertEqual(R, T),
         ?assertEqual(Bin, ?L:to_binary(T)),
         ?assertEqual(Bin, ?L:to_binary(Bin)),
         ?assertEqual(plexus_nif:lww_digest(Bin), ?L:digest(T)),
         ?assertEqual(?L:digest(Bin), ?L:digest(T)),
         ?assert(?L:equal(Bin, T)),
         ?assertEqual({?L:value(Bin), ?L:actor(Bin), ?L:timestamp(Bin)},
                      {?L:value(T), ?L:actor(T), ?L:timestamp(T)})
     end || R <- Regs],
    ok.

mixed_form_merge_test() ->
    Old = ?L:new(old),
    New = ?L:update(Old, new),
    OldBin = ?L:to_binary(Old),
    NewBin = ?L:to_binary(New),
    [?assertEqual(New, M) || M <- [?L:merge(OldBin, New), ?L:merge(New, OldBin),
                                   ?L:merge(Old, NewBin), ?L:merge(NewBin, Old),
                                   ?L:merge(OldBin, NewBin), ?L:merge([OldBin, New, Old]),
                                   ?L:merge([OldBin, NewBin])]],
    %% update/2,3 of an old binary return the term
    ?assertMatch({plexus_lww, _, _, _}, ?L:update(OldBin, x)),
    ?assertEqual(?L:timestamp(New) + 1,
                 ?L:timestamp(?L:update(NewBin, x, ?L:timestamp(New) + 1))),
    ?assertEqual({ok, New}, ?L:update({assign, y, 0}, z, NewBin)),
    %% a malformed binary beside a term is still its reason
    ?assertEqual({error, trailing_bytes}, ?L:merge(New, <<NewBin/binary, 0>>)),
    ?assertEqual({error, trailing_bytes}, ?L:merge([New, <<NewBin/binary, 0>>])).

%% The term is plain data: it goes through ETS, messages and term_to_binary unchanged.
term_is_plain_data_test() ->
    R = ?L:new(<<"v">>),
    Tab = ets:new(?MODULE, [set, private]),
    try
        true = ets:insert(Tab, {k, R}),
        ?assertEqual([{k, R}], ets:lookup(Tab, k))
    after
        ets:delete(Tab)
    end,
    self() ! {reg, R},
    ?assertEqual(R, receive {reg, X} -> X after 0 -> none end),
    ?assertEqual(R, binary_to_term(term_to_binary(R))).

%% A `plexus_lww' tuple whose fields are not a register's is refused by every
%% function with {error, bad_register}; never a crash, never a merge winner.
hostile_tuple_test() ->
    Good = ?L:new(g),
    Hostile = [{plexus_lww, -1, <<1>>, <<1>>},
               {plexus_lww, 1 bsl 64, <<1>>, <<1>>},
               {plexus_lww, 1.0, <<1>>, <<1>>},
               {plexus_lww, 1, <<1:3>>, <<1>>},
               {plexus_lww, 1, a, <<1>>},
               {plexus_lww, 1, <<1>>, [1]},
               {plexus_lww, undefined, undefined, undefined}],
    [begin
         E = {error, bad_register},
         ?assertEqual({H, E}, {H, ?L:value(H)}),
         ?assertEqual({H, E}, {H, ?L:timestamp(H)}),
         ?assertEqual({H, E}, {H, ?L:actor(H)}),
         ?assertEqual({H, E}, {H, ?L:merge(H, Good)}),
         ?assertEqual({H, E}, {H, ?L:merge(Good, H)}),
         ?assertEqual({H, E}, {H, ?L:merge([Good, H])}),
         ?assertEqual({H, E}, {H, ?L:merge([H, Good])}),
         ?assertEqual({H, E}, {H, ?L:equal(Good, H)}),
         ?assertEqual({H, E}, {H, ?L:digest(H)}),
         ?assertEqual({H, E}, {H, ?L:to_binary(H)}),
         ?assertEqual({H, E}, {H, ?L:update(H, v)}),
         ?assertEqual({H, E}, {H, ?L:update(H, v, 5)}),
         ?assertEqual({H, E}, {H, ?L:update({assign, v}, a, H)}),
         ?assertEqual({H, E}, {H, ?L:update({assign, v, 5}, a, H)})
     end || H <- Hostile],
    %% Field lengths are not merge/2's check (the module doc says why): such a tuple
    %% can win a merge of two tuples, and every other function refuses it.
    [begin
         ?assertEqual(Good, ?L:merge(H, Good)),
         ?assertEqual(Good, ?L:merge(Good, H)),
         ?assertEqual({error, bad_register}, ?L:to_binary(H)),
         ?assertEqual({error, bad_register}, ?L:value(H)),
         ?assertEqual({error, bad_register}, ?L:update(H, v)),
         ?assertEqual({error, bad_register}, ?L:merge(H, ?L:to_binary(Good))),
         ?assertEqual({error, bad_register}, ?L:merge([Good, H]))
     end || H <- [{plexus_lww, 1, <<>>, <<1>>}, {plexus_lww, 1, <<1>>, <<>>}]],
    %% Not a register at all (another shape): a caller's type error, as before.
    ?assertError(badarg, ?L:merge(Good, {plexus_lww, 1, <<1>>})),
    ?assertError(badarg, ?L:value({plexus_lww, 1, <<1>>, <<1>>, extra})),
    %% Any bytes are a valid field (the format never interprets them): such a register
    %% merges and round-trips; only reading the value says bad_term.
    Odd = {plexus_lww, 1, <<255>>, <<255, 0>>},
    ?assertEqual(Good, ?L:merge(Odd, Good)),
    ?assertEqual({ok, Odd}, ?L:from_binary(?L:to_binary(Odd))),
    ?assertEqual({error, bad_term}, ?L:value(Odd)).
