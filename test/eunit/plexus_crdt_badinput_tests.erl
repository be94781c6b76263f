%% Hostile and malformed input to the CRDT NIFs (doc/DESIGN.md §1 "Bad input"): every
%% truncation and every single-bit flip of real states, oversized counts, random
%% binaries and trailing bytes must give {error, Reason} from every reader and
%% mutator, never a crash or a wrong answer; a flip that happens to give another valid
%% state must then be accepted by from_binary and behave as a valid state everywhere.
%% Wrong argument types raise badarg. No atom is created by any of it.
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
                  no_memory]).

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
    R.

%% ---------------------------------------------------------------- helpers

is_reason(R) -> lists:member(R, ?REASONS).

%% Checks one candidate OR-Set binary against every entry point.
check_orset(B, Good) ->
    case ?S:from_binary(B) of
        {ok, B} -> check_valid_orset(B, Good);
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
        {apply, ?S:apply(B, [{add, 9}, {remove, 1}], <<1>>)},
        {update, ?S:update({add, 1}, <<1>>, B)}
    ],
    [?assertEqual({Name, true, B}, {Name, Err(Res), B}) || {Name, Res} <- Calls],
    ok.

check_valid_orset(B, Good) ->
    L = ?S:to_list(B),
    ?assert(is_list(L) orelse L =:= {error, bad_term}),
    N = ?S:size(B),
    ?assert(is_integer(N)),
    is_list(L) andalso ?assertEqual(N, length(L)),
    ?assert(is_boolean(?S:member(B, 1))),
    M = ?S:merge(B, Good),
    ?assertEqual({ok, M}, ?S:from_binary(M)),
    ?assertEqual(M, ?S:merge(Good, B)),
    ?assertMatch(<<_:256>>, ?S:digest(B)),
    ?assert(?S:equal(B, B)),
    A = ?S:add(B, 1, <<1>>),
    ?assertEqual({ok, A}, ?S:from_binary(A)),
    ok.

check_lww(B, Good) ->
    case ?L:from_binary(B) of
        {ok, B} ->
            V = ?L:value(B),
            ?assert(V =/= {error, truncated}),
            ?assert(is_integer(?L:timestamp(B))),
            ?assertEqual(B, ?L:merge(B, B)),
            M = ?L:merge(B, Good),
            ?assert(M =:= B orelse M =:= Good),
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
    case I rem 4 of
        0 -> Tail;
        1 -> <<1, $S, Tail/binary>>;
        2 -> <<1, $S, (rand:uniform(4) - 1), Tail/binary>>;
        3 -> <<1, $L, Tail/binary>>
    end.

%% ---------------------------------------------------------------- the run

%% One test function, so nothing else runs in this VM while the atom count is taken.
bad_input_test_() ->
    {timeout, 300, fun bad_input_run/0}.

bad_input_run() ->
    S = orset_state(),
    R = lww_state(),
    Good = ?S:add_all(?S:new(), [1, 50, <<3>>], <<9>>),
    GoodR = ?L:new(1, <<5>>),
    %% Fixture sanity: the states are what the test says they are.
    ?assertEqual({ok, S}, ?S:from_binary(S)),
    ?assertEqual([1, 4, 5, 40, 60, <<7, 8>>], lists:sort(?S:to_list(S))),
    ?assertEqual({ok, R}, ?L:from_binary(R)),
    %% Warm up every code path (loading modules makes atoms), then count.
    ok = check_orset(S, Good),
    ok = check_orset(<<>>, Good),
    ok = check_lww(R, GoodR),
    ok = check_lww(<<>>, GoodR),
    Atoms0 = erlang:system_info(atom_count),

    [ok = check_orset(T, Good) || T <- truncations(S)],
    [ok = check_orset(F, Good) || F <- bit_flips(S)],
    [ok = check_lww(T, GoodR) || T <- truncations(R)],
    [ok = check_lww(F, GoodR) || F <- bit_flips(R)],
    [ok = check_orset(X, Good) || X <- random_binaries({1, 2, 3}, 20000)],
    [ok = check_lww(X, GoodR) || X <- random_binaries({4, 5, 6}, 5000)],
    [ok = check_orset(X, Good) || X <- oversized_orsets()],
    [ok = check_lww(X, GoodR) || X <- oversized_lwws()],
    ok = trailing_bytes(S, R),
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
    S = ?S:add(?S:new(), 1, <<1>>),
    ?assertEqual({error, truncated}, ?S:from_binary(<<>>)),
    ?assertEqual({error, truncated}, ?S:from_binary(<<1>>)),
    ?assertEqual({error, bad_version}, ?S:from_binary(<<2, $S, 0, 0, 0>>)),
    ?assertEqual({error, wrong_type}, ?S:from_binary(?L:new(1, <<1>>))),
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
