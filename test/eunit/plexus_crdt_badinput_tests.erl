%% Hostile and malformed input to the CRDTs (doc/DESIGN.md §1 "Bad input"): every
%% truncation and every single-bit flip of real states (the OR-Set in its v1 and v2
%% binary forms, passed where a set is expected), oversized counts, random binaries
%% and trailing bytes must give {error, Reason} from every reader and mutator, never a
%% crash or a wrong answer; a flip that happens to give another valid state must then
%% be accepted by from_binary and behave as a valid state everywhere. Forged OR-Set
%% terms (random mutations of a real set's term) give {error, Reason} or a value from
%% every function, never an exception, and validate/1 accepts exactly the canonical
%% ones. Wrong argument types raise badarg. No atom is created by any of it.
%%
%% Elements, actors and values are integers and binaries whose bytes stay below 70 (no
%% external-format tag that makes an atom), so even a flipped element that decodes
%% cannot legitimately create an atom; the atom count is compared across the run.
-module(plexus_crdt_badinput_tests).

-include_lib("eunit/include/eunit.hrl").

-define(S, plexus_orset).
-define(L, plexus_lww).

-define(REASONS, [truncated, bad_version, wrong_type, bad_varint, bad_count,
                  not_canonical, bad_actor, bad_dot, trailing_bytes, overflow, too_big,
                  no_memory, bad_state, bad_term, counter_exhausted]).

%% ---------------------------------------------------------------- fixtures

%% An OR-Set with several actors, multi-dot elements (concurrent adds of the same
%% element), removes, and a dot cloud (a delta merged out of order).
orset_state() ->
    A1 = <<1>>,
    A2 = <<2, 3>>,
    A3 = <<4, 5, 6>>,
    Base = ?S:add_all(?S:new(), [1, 2, 3, <<7, 8>>, 40], A1),
    X = ?S:apply(Base, [{add, 4}, {remove, 2}, {add, 1}], A2),
    Y = ?S:apply(Base, [{add, 5}, {add, 1}, {remove, 3}], A3),
    M = ?S:merge(X, Y),
    {_, D2} = ?S:add_delta(?S:add(M, 6, A1), 60, A1),
    %% D2 without the add of 6 before it: the result carries a dot cloud.
    ?S:merge(M, D2).

lww_state() ->
    {ok, R} = ?L:update({assign, <<1, 2, 3, 4, 5, 6, 7, 8, 9, 10>>, 16#0123456789abcdef},
                        <<33, 44>>, ?L:new(0, <<1>>)),
    ?L:to_binary(R).

%% ---------------------------------------------------------------- helpers

is_reason(R) -> lists:member(R, ?REASONS).

%% Checks one candidate OR-Set binary against every entry point (the binary is
%% passed where a set is expected: every function reads it first).
check_orset(B, Good) ->
    case ?S:from_binary(B) of
        {ok, S} -> check_valid_orset(B, S, Good);
        {error, R} -> check_invalid_orset(B, Good, R)
    end.

check_invalid_orset(B, Good, R) ->
    ?assert(is_reason(R)),
    Err = fun({error, X}) -> is_reason(X); (_) -> false end,
    Calls = [
        {to_list, ?S:to_list(B)},
        {value, ?S:value(B)},
        {size, ?S:size(B)},
        {member, ?S:member(B, 1)},
        {merge_l, ?S:merge(B, Good)},
        {merge_r, ?S:merge(Good, B)},
        {merge_n, ?S:merge([Good, B, Good])},
        {equal, ?S:equal(Good, B)},
        {digest, ?S:digest(B)},
        {to_binary, ?S:to_binary(B)},
        {add, ?S:add(B, 1, <<1>>)},
        {remove, ?S:remove(B, 1, <<1>>)},
        {add_delta, ?S:add_delta(B, 1, <<1>>)},
        {remove_by, ?S:remove_by(B, fun(_) -> true end)},
        {validate, ?S:validate(B)},
        {digest_tree, ?S:digest_tree(B)},
        {apply, ?S:apply(B, [{add, 9}, {remove, 1}], <<1>>)},
        {update, ?S:update({add, 1}, <<1>>, B)}
    ],
    [?assertEqual({Name, true, B}, {Name, Err(Res), B}) || {Name, Res} <- Calls],
    ok.

check_valid_orset(B, S, Good) ->
    L = ?S:to_list(B),
    ?assert(is_list(L) orelse L =:= {error, bad_term}),
    ?assertEqual(L, ?S:to_list(S)),
    N = ?S:size(B),
    ?assert(is_integer(N)),
    is_list(L) andalso ?assertEqual(N, length(L)),
    ?assert(is_boolean(?S:member(B, 1))),
    M = ?S:merge(B, Good),
    ?assertEqual({ok, M}, ?S:from_binary(?S:to_binary(M))),
    ?assertEqual(M, ?S:merge(Good, B)),
    ?assertEqual(M, ?S:merge(S, Good)),
    ?assertMatch(<<_:256>>, ?S:digest(B)),
    ?assert(?S:equal(B, B)),
    ?assert(?S:equal(B, S)),
    ?assertEqual(ok, ?S:validate(S)),
    A = ?S:add(B, 1, <<1>>),
    ?assertEqual({ok, A}, ?S:from_binary(?S:to_binary(A))),
    ok.

check_lww(B, Good) ->
    case ?L:from_binary(B) of
        {ok, T} ->
            ?assertEqual(B, ?L:to_binary(T)),
            V = ?L:value(B),
            ?assert(V =/= {error, truncated}),
            ?assertEqual(V, ?L:value(T)),
            ?assert(is_integer(?L:timestamp(B))),
            ?assertEqual(T, ?L:merge(B, B)),
            ?assertEqual(T, ?L:merge(T, T)),
            {ok, G} = ?L:from_binary(Good),
            M = ?L:merge(B, Good),
            ?assert(M =:= T orelse M =:= G),
            ?assertEqual(M, ?L:merge(T, G)),
            ?assertEqual(M, ?L:merge(B, G)),
            ?assertEqual(?L:digest(B), ?L:digest(T)),
            ?assertMatch(<<_:256>>, ?L:digest(B));
        {error, R} ->
            ?assert(is_reason(R)),
            Err = fun({error, X}) -> is_reason(X); (_) -> false end,
            Calls = [
                {value, ?L:value(B)},
                {timestamp, ?L:timestamp(B)},
                {actor, ?L:actor(B)},
                {merge_l, ?L:merge(B, Good)},
                {merge_r, ?L:merge(Good, B)},
                {equal, ?L:equal(Good, B)},
                {digest, ?L:digest(B)},
                {to_binary, ?L:to_binary(B)},
                {update, ?L:update(B, 1)},
                {update_ts, ?L:update(B, 1, 5)},
                {assign, ?L:update({assign, 1}, <<1>>, B)}
            ],
            [?assertEqual({Name, true, B}, {Name, Err(Res), B}) || {Name, Res} <- Calls]
    end,
    ok.

%% Forged set terms: N random mutations of a real set's term (a subterm replaced by
%% junk), each through every function. None may raise; errors are {error, Reason}
%% with a documented reason; validate/1 accepts a term only if it is exactly the set
%% its own bytes give.
check_terms(Set, Good, N) ->
    _ = rand:seed(exsss, {7, 8, N}),
    [ok = check_term(mutate(Set), Good) || _ <- lists:seq(1, N)],
    ok.

check_term(T, Good) ->
    Calls = [fun() -> ?S:add(T, 1, <<1>>) end, fun() -> ?S:add_all(T, [1, 2], <<1>>) end,
             fun() -> ?S:remove(T, 1) end, fun() -> ?S:remove_all(T, [1, 40]) end,
             fun() -> ?S:remove_by(T, fun(E) -> E =:= 4 end) end,
             fun() -> ?S:apply(T, [{add, 9}, {remove, 1}], <<1>>) end,
             fun() -> ?S:add_delta(T, 1, <<1>>) end, fun() -> ?S:remove_delta(T, 5) end,
             fun() -> ?S:apply_delta(T, [{add, 9}, {remove, 1}], <<1>>) end,
             fun() -> ?S:member(T, 1) end, fun() -> ?S:to_list(T) end,
             fun() -> ?S:size(T) end, fun() -> ?S:merge(T, Good) end,
             fun() -> ?S:merge(Good, T) end, fun() -> ?S:merge([Good, T, Good]) end,
             fun() -> ?S:equal(T, Good) end, fun() -> ?S:digest(T) end,
             fun() -> ?S:to_binary(T) end, fun() -> ?S:to_v1(T) end,
             fun() -> ?S:update({add, 1}, <<1>>, T) end,
             fun() -> ?S:update({remove, 1}, <<1>>, T) end,
             fun() -> ?S:digest_tree(T) end,
             fun() -> case ?S:digest_tree(T) of
                          Sum when is_list(Sum) -> ?S:diff(Good, Sum);
                          Error -> Error
                      end
             end,
             fun() -> ?S:missing(T, [<<>>]) end],
    [?assertEqual({T, ok}, {T, no_raise(F)}) || F <- Calls],
    case ?S:validate(T) of
        ok -> ?assertEqual({ok, T}, ?S:from_binary(?S:to_binary(T)));
        {error, Reason} -> ?assert(is_reason(Reason))
    end,
    ok.

no_raise(F) ->
    try F() of
        {error, {precondition, {not_present, _}}} -> ok;
        {error, R} -> case is_reason(R) of true -> ok; false -> {bad_reason, R} end;
        _ -> ok
    catch
        Class:Reason -> {Class, Reason}
    end.

%% The term with one random subterm replaced by junk (existing atoms only). The
%% outer {orset2, _, _} stays: anything else is not a set term, a caller's type
%% error (badarg, tested in badarg_test).
mutate(T) ->
    Paths = [P || P <- paths(T, []), P =/= [], P =/= [{t, 1}]],
    Path = lists:nth(rand:uniform(length(Paths)), Paths),
    Junk = [nil, l, b, orset2, true, -1, 0, 1 bsl 130, 1.5, <<>>, <<1, 2, 3>>, {}, [],
            #{}, [x | y], {l, 0, 0, []}, {b, 0, 40, {}}, #{<<1>> => 0}, {<<1>>, []}],
    replace(T, lists:reverse(Path), lists:nth(rand:uniform(length(Junk)), Junk)).

%% Every position in a term, as the reversed list of steps from the root.
paths(T, Rev) when is_tuple(T) ->
    [Rev | lists:append([paths(element(I, T), [{t, I} | Rev])
                         || I <- lists:seq(1, tuple_size(T))])];
paths([H | Tl], Rev) ->
    [Rev | paths(H, [hd | Rev]) ++ paths(Tl, [tl | Rev])];
paths(M, Rev) when is_map(M) ->
    [Rev | lists:append([paths(K, [{k, K} | Rev]) ++ paths(V, [{v, K} | Rev])
                         || {K, V} <- maps:to_list(M)])];
paths(_, Rev) ->
    [Rev].

replace(_, [], New) -> New;
replace(T, [{t, I} | P], New) -> setelement(I, T, replace(element(I, T), P, New));
replace([H | Tl], [hd | P], New) -> [replace(H, P, New) | Tl];
replace([H | Tl], [tl | P], New) -> [H | replace(Tl, P, New)];
replace(M, [{k, K} | P], New) -> V = maps:get(K, M), (maps:remove(K, M))#{replace(K, P, New) => V};
replace(M, [{v, K} | P], New) -> M#{K := replace(maps:get(K, M), P, New)}.

truncations(B) -> [binary:part(B, 0, N) || N <- lists:seq(0, byte_size(B) - 1)].

bit_flips(B) ->
    [flip(B, I) || I <- lists:seq(0, bit_size(B) - 1)].

flip(B, I) ->
    <<Pre:I/bits, Bit:1, Post/bits>> = B,
    <<Pre/bits, (1 - Bit):1, Post/bits>>.

varint(N) when N < 128 -> <<N>>;
varint(N) -> <<1:1, (N band 127):7, (varint(N bsr 7))/binary>>.

random_binaries(Seed, Count) ->
    _ = rand:seed(exsss, Seed),
    [random_binary(I) || I <- lists:seq(1, Count)].

random_binary(I) ->
    Len = rand:uniform(80) - 1,
    Tail = rand:bytes(Len),
    case I rem 5 of
        0 -> Tail;
        1 -> <<1, $S, Tail/binary>>;
        2 -> <<(rand:uniform(2)), $S, (rand:uniform(4) - 1), Tail/binary>>;
        3 -> <<1, $L, Tail/binary>>;
        4 -> <<2, $S, Tail/binary>>
    end.

%% ---------------------------------------------------------------- the run

%% One test function, so nothing else runs in this VM while the atom count is taken.
bad_input_test_() ->
    {timeout, 300, fun bad_input_run/0}.

bad_input_run() ->
    Set = orset_state(),
    %% The set's bytes in both versions: the v1 body and its v2 header.
    S = ?S:to_v1(Set),
    S2 = ?S:to_binary(Set),
    R = lww_state(),
    Good = ?S:add_all(?S:new(), [1, 50, <<3>>], <<9>>),
    GoodR = ?L:to_binary(?L:new(1, <<5>>)),
    %% Fixture sanity: the states are what the test says they are.
    ?assertEqual({ok, Set}, ?S:from_binary(S)),
    ?assertEqual({ok, Set}, ?S:from_binary(S2)),
    ?assertEqual([1, 4, 5, 40, 60, <<7, 8>>], lists:sort(?S:to_list(S))),
    ?assertEqual(R, ?L:to_binary(element(2, ?L:from_binary(R)))),
    %% Warm up every code path (loading modules makes atoms), then count.
    ok = check_orset(S, Good),
    ok = check_orset(S2, Good),
    ok = check_orset(<<>>, Good),
    ok = check_terms(Set, Good, 20),
    ok = check_lww(R, GoodR),
    ok = check_lww(<<>>, GoodR),
    %% (large inputs also go by plexus_telemetry, which loads then)
    [ok = check_orset(X, Good) || X <- oversized_orsets()],
    [ok = check_lww(X, GoodR) || X <- oversized_lwws()],
    Atoms0 = erlang:system_info(atom_count),

    [ok = check_orset(T, Good) || T <- truncations(S)],
    [ok = check_orset(F, Good) || F <- bit_flips(S)],
    [ok = check_orset(T, Good) || T <- truncations(S2)],
    [ok = check_orset(F, Good) || F <- bit_flips(S2)],
    ok = check_terms(Set, Good, 3000),
    [ok = check_lww(T, GoodR) || T <- truncations(R)],
    [ok = check_lww(F, GoodR) || F <- bit_flips(R)],
    [ok = check_orset(X, Good) || X <- random_binaries({1, 2, 3}, 20000)],
    [ok = check_lww(X, GoodR) || X <- random_binaries({4, 5, 6}, 5000)],
    [ok = check_orset(X, Good) || X <- oversized_orsets()],
    [ok = check_lww(X, GoodR) || X <- oversized_lwws()],
    ok = trailing_bytes(S, R),
    ok = trailing_bytes(S2, R),
    %% Same hostile inputs through the dirty path.
    Old = plexus_nif:set_dirty_threshold(0),
    try
        [ok = check_orset(T, Good) || T <- truncations(S)],
        [ok = check_lww(T, GoodR) || T <- truncations(R)],
        [ok = check_orset(X, Good) || X <- oversized_orsets()]
    after
        plexus_nif:set_dirty_threshold(Old)
    end,

    ?assertEqual(Atoms0, erlang:system_info(atom_count)).

trailing_bytes(S, R) ->
    [begin
         ?assertEqual({error, trailing_bytes}, ?S:from_binary(<<S/binary, Tail/binary>>)),
         ?assertEqual({error, trailing_bytes}, ?S:merge(S, <<S/binary, Tail/binary>>)),
         ?assertEqual({error, trailing_bytes}, ?S:to_list(<<S/binary, Tail/binary>>)),
         ?assertEqual({error, trailing_bytes}, ?L:from_binary(<<R/binary, Tail/binary>>)),
         ?assertEqual({error, trailing_bytes}, ?L:value(<<R/binary, Tail/binary>>))
     end || Tail <- [<<0>>, <<1, $S, 0, 0, 0>>, S]],
    ok.

%% Headers that claim far more entries than the bytes could hold, and counts over the
%% documented bounds.
oversized_orsets() ->
    Big = 1 bsl 40,
    Pad = binary:copy(<<0>>, 64),
    Actor = <<1, 7, 1>>,                       % bytes <<7>>, vv 1
    Elem = <<2, 97, 1>>,                       % element <<97, 1>> (small int 1)
    [
        %% n_elems = 2^40
        <<1, $S, 0, 0, (varint(Big))/binary, Pad/binary>>,
        %% n_actors = 2^40
        <<1, $S, (varint(Big))/binary, Pad/binary>>,
        %% n_actors = 65537, with enough bytes to pass the byte bound: too_big
        <<1, $S, (varint(65537))/binary, (binary:copy(<<1, 7, 1>>, 65537))/binary, 0, 0>>,
        %% n_cloud = 2^40
        <<1, $S, 1, Actor/binary, (varint(Big))/binary, Pad/binary>>,
        %% an element with n_dots = 2^40
        <<1, $S, 1, Actor/binary, 0, 1, Elem/binary, (varint(Big))/binary, Pad/binary>>,
        %% an element length of 2^40
        <<1, $S, 1, Actor/binary, 0, 1, (varint(Big))/binary, Pad/binary>>,
        %% an element length over the 64 MiB bound
        <<1, $S, 1, Actor/binary, 0, 1, (varint(64 * 1024 * 1024 + 1))/binary, Pad/binary>>,
        %% counts at 2^64 - 1 and an 11-byte varint
        <<1, $S, 0, 0, (varint((1 bsl 64) - 1))/binary, Pad/binary>>,
        <<1, $S, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1, Pad/binary>>,
        %% non-minimal varint for a count
        <<1, $S, 0, 0, 128, 0>>,
        %% an actor index far out of range
        <<1, $S, 1, Actor/binary, 0, 1, Elem/binary, 1, (varint(Big))/binary, 1>>
    ].

oversized_lwws() ->
    Big = 1 bsl 40,
    [
        <<1, $L, 0:64, (varint(Big))/binary, 1, 2, 3>>,
        <<1, $L, 0:64, 1, 7, (varint(Big))/binary, 1, 2, 3>>,
        <<1, $L, 0:64, 1, 7, (varint(64 * 1024 * 1024 + 1))/binary, 1, 2, 3>>,
        <<1, $L, 0:64, 0, 1, 7>>,
        <<1, $L, 0:64, 1, 7, 0>>
    ].

%% ---------------------------------------------------------------- exact reasons

exact_reasons_test() ->
    S = ?S:to_binary(?S:add(?S:new(), 1, <<1>>)),
    ?assertEqual({error, truncated}, ?S:from_binary(<<>>)),
    ?assertEqual({error, truncated}, ?S:from_binary(<<1>>)),
    ?assertEqual({error, bad_version}, ?S:from_binary(<<3, $S, 0, 0, 0>>)),
    ?assertEqual({error, bad_version}, ?S:from_binary(<<0, $S, 0, 0, 0>>)),
    %% Version 2 is read: the empty set.
    ?assertEqual({ok, ?S:new()}, ?S:from_binary(<<2, $S, 0, 0, 0>>)),
    ?assertEqual({error, trailing_bytes}, ?S:from_binary(<<2, $S, 0, 0, 0, 0>>)),
    ?assertEqual({error, wrong_type}, ?S:from_binary(?L:to_binary(?L:new(1, <<1>>)))),
    ?assertEqual({error, trailing_bytes}, ?S:from_binary(<<S/binary, 0>>)),
    ?assertEqual({error, bad_count}, ?S:from_binary(<<1, $S, 0, 0, (varint(1 bsl 40))/binary>>)),
    ?assertEqual({error, bad_varint}, ?S:from_binary(<<1, $S, 0, 0, 128, 0>>)).

%% ---------------------------------------------------------------- wrong types

badarg_test() ->
    S = orset_state(),
    R = lww_state(),
    NotBins = [atom, 1, 1.5, "list", [<<1>>], {S}, #{}, self(), make_ref(),
               <<1:3>>],
    [begin
         ?assertError(badarg, ?S:from_binary(X)),
         ?assertError(badarg, ?S:to_binary(X)),
         ?assertError(badarg, ?S:to_list(X)),
         ?assertError(badarg, ?S:value(X)),
         ?assertError(badarg, ?S:size(X)),
         ?assertError(badarg, ?S:member(X, 1)),
         ?assertError(badarg, ?S:merge(X, S)),
         ?assertError(badarg, ?S:merge(S, X)),
         ?assertError(badarg, ?S:merge([S, X])),
         ?assertError(badarg, ?S:equal(X, S)),
         ?assertError(badarg, ?S:digest(X)),
         ?assertError(badarg, ?S:add(X, 1)),
         ?assertError(badarg, ?S:update({add, 1}, a, X)),
         ?assertError(badarg, ?L:from_binary(X)),
         ?assertError(badarg, ?L:value(X)),
         ?assertError(badarg, ?L:merge(X, R)),
         ?assertError(badarg, ?L:merge([R, X])),
         ?assertError(badarg, ?L:update(X, v))
     end || X <- NotBins],
    [?assertError(badarg, ?L:update(R, v, X)) || X <- [-1, 1 bsl 64, 1.5, a, <<1>>]],
    ?assertError(badarg, ?S:add_all(S, [1 | 2])),
    ?assertError(badarg, ?S:remove_all(S, #{})),
    ?assertError(badarg, ?S:apply(S, [{add, 1}, bogus])),
    ?assertError(badarg, ?S:apply(S, [{add_all, [1 | 2]}])),
    ?assertError(badarg, ?S:merge(S)),
    ?assertError(badarg, ?L:update(1, v, R)).
