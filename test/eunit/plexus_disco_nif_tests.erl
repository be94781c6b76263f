%% @doc EUnit for the discovery NIFs (nif_beacon.c, nif_registry.c): round trips,
%% counters, and every argument of the wrong type a badarg, never a crash; bad
%% configurations {error, invalid_argument}.
-module(plexus_disco_nif_tests).

-include_lib("eunit/include/eunit.hrl").

-define(S, <<"eunit secret of sixteen+ bytes">>).

beacon_round_trip_test() ->
    C = plexus_nif:beacon_new(?S, <<"c">>, 1, false, 8, 0),
    B = plexus_nif:beacon_seal(C, <<"n@h">>, 10, 1, #{<<"k">> => <<"v">>, <<"a">> => <<>>}),
    ?assert(byte_size(B) =< 1232),
    ?assertEqual({ok, {<<"n@h">>, 10, 1, 1, #{<<"k">> => <<"v">>, <<"a">> => <<>>}}},
                 plexus_nif:beacon_open(C, B, 0)),
    ?assertEqual({error, replayed}, plexus_nif:beacon_open(C, B, 0)),
    ?assertEqual({error, auth_failed},
                 plexus_nif:beacon_open(plexus_nif:beacon_new(?S, <<"d">>, 1, false, 8, 0), B, 0)),
    ?assertEqual(ok, plexus_nif:beacon_forget(C, <<"n@h">>)),
    ?assertEqual({error, not_found}, plexus_nif:beacon_forget(C, <<"n@h">>)),
    #{sealed := 1, accepted := 1, replayed := 1, senders := 0} = plexus_nif:beacon_stats(C).

beacon_errors_test() ->
    ?assertEqual({error, invalid_argument}, plexus_nif:beacon_new(<<"short">>, <<>>, 0, false, 0, 0)),
    ?assertEqual({error, invalid_argument}, plexus_nif:beacon_new(?S, <<>>, 0, true, 0, 0)),
    C = plexus_nif:beacon_new(?S, <<>>, 0, false, 0, 0),
    ?assertEqual({error, invalid_argument}, plexus_nif:beacon_seal(C, <<"noat">>, 1, 1, #{})),
    ?assertEqual({error, invalid_argument}, plexus_nif:beacon_seal(C, <<"a@b">>, 0, 1, #{})),
    Big = maps:from_list([{integer_to_binary(I), binary:copy(<<"x">>, 255)} || I <- lists:seq(1, 16)]),
    ?assertEqual({error, too_big}, plexus_nif:beacon_seal(C, <<"a@b">>, 1, 1, Big)),
    ?assertEqual({error, truncated}, plexus_nif:beacon_open(C, <<>>, 0)),
    ?assertEqual({error, bad_version}, plexus_nif:beacon_open(C, binary:copy(<<0>>, 60), 0)).

beacon_badarg_test_() ->
    C = plexus_nif:beacon_new(?S, <<>>, 0, false, 0, 0),
    [?_assertError(badarg, F()) || F <- [
        fun() -> plexus_nif:beacon_new(secret, <<>>, 0, false, 0, 0) end,
        fun() -> plexus_nif:beacon_new(?S, <<>>, -1, false, 0, 0) end,
        fun() -> plexus_nif:beacon_new(?S, <<>>, 0, maybe, 0, 0) end,
        fun() -> plexus_nif:beacon_new(?S, <<>>, 1 bsl 40, false, 0, 0) end,
        fun() -> plexus_nif:beacon_seal(make_ref(), <<"a@b">>, 1, 1, #{}) end,
        fun() -> plexus_nif:beacon_seal(C, 'a@b', 1, 1, #{}) end,
        fun() -> plexus_nif:beacon_seal(C, <<"a@b">>, -1, 1, #{}) end,
        fun() -> plexus_nif:beacon_seal(C, <<"a@b">>, 1, 1, #{k => <<"v">>}) end,
        fun() -> plexus_nif:beacon_seal(C, <<"a@b">>, 1, 1, [{<<"k">>, <<"v">>}]) end,
        fun() -> plexus_nif:beacon_seal(C, <<"a@b">>, 1, 1, #{<<>> => <<"v">>}) end,
        fun() -> plexus_nif:beacon_open(C, "bin", 0) end,
        fun() -> plexus_nif:beacon_open(C, <<>>, -5) end,
        fun() -> plexus_nif:beacon_stats(self()) end,
        fun() -> plexus_nif:beacon_forget(C, n) end]].

registry_round_trip_test() ->
    R = plexus_nif:registry_new(#{max_entries => 2, server_addrs => [<<"s:1">>]}),
    A = plexus_nif:registry_encode_announce(3, <<"a@h">>, [<<"x:1">>], #{<<"m">> => <<"1">>},
                                            0, 0, <<>>),
    {{announced, new, <<"a@h">>, 90000}, Hs} = plexus_nif:registry_handle(R, A, <<>>, 0),
    {ok, #{type := handshake, request_id := 3, heartbeat_ms := 30000,
           server_addrs := [<<"s:1">>]}} = plexus_nif:registry_decode(Hs),
    {{announced, refreshed, _, _}, _} = plexus_nif:registry_handle(R, A, <<>>, 1),
    [#{peer := <<"a@h">>, addrs := [<<"x:1">>], metadata := #{<<"m">> := <<"1">>}}] =
        plexus_nif:registry_view(R, 2),
    [_] = plexus_nif:registry_sample(R, 5, 2),
    {ok, #{ttl_ms := 89998}} = plexus_nif:registry_lookup(R, <<"a@h">>, 3),
    {error, not_found} = plexus_nif:registry_lookup(R, <<"b@h">>, 3),
    {{dropped, bad_version}, <<>>} = plexus_nif:registry_handle(R, <<"junk!!">>, <<>>, 0),
    Q = plexus_nif:registry_encode_query(4, 10, <<>>, 40),
    40 = byte_size(Q),
    {ok, #{type := query, cookie := <<>>}} = plexus_nif:registry_decode(Q),
    %% from an address: a COOKIE first (no longer than the query), then the VIEW
    {cookie, CB} = plexus_nif:registry_handle(R, Q, <<"peer:1">>, 5),
    true = byte_size(CB) =< byte_size(Q),
    {ok, #{type := cookie, request_id := 4, cookie := Cookie}} = plexus_nif:registry_decode(CB),
    Q2 = plexus_nif:registry_encode_query(5, 10, Cookie, 0),
    {queried, V} = plexus_nif:registry_handle(R, Q2, <<"peer:1">>, 5),
    {ok, #{type := view, live_entries := 1, entries := [_]}} = plexus_nif:registry_decode(V),
    {cookie, _} = plexus_nif:registry_handle(R, Q2, <<"peer:2">>, 5),
    {queried, _} = plexus_nif:registry_handle(R, Q, <<>>, 5),
    1 = plexus_nif:registry_evict(R, 100000),
    #{evicted := 1, entries := 0, malformed := 1, cookies := 2, queries := 2,
      refused_source := 0, unverified := 0} = plexus_nif:registry_stats(R),
    {Pk, Seed} = plexus_nif:registry_keypair(),
    ?assertEqual(Pk, plexus_nif:registry_public_key(Seed)),
    Signed = plexus_nif:registry_encode_announce(1, <<"s@h">>, [], #{}, 0, 0, Seed),
    {ok, #{signed := true, public_key := Pk}} = plexus_nif:registry_decode(Signed),
    B = plexus_nif:registry_encode_bye(9, <<"s@h">>, 1, <<>>),
    {ok, #{type := bye, peer := <<"s@h">>}} = plexus_nif:registry_decode(B).

registry_badarg_test_() ->
    R = plexus_nif:registry_new(#{}),
    [?_assertError(badarg, F()) || F <- [
        fun() -> plexus_nif:registry_new([]) end,
        fun() -> plexus_nif:registry_new(#{max_entries => -1}) end,
        fun() -> plexus_nif:registry_new(#{require_signed => yes}) end,
        fun() -> plexus_nif:registry_new(#{trusted_keys => [<<1>>]}) end,
        fun() -> plexus_nif:registry_new(#{server_addrs => [a]}) end,
        fun() -> plexus_nif:registry_handle(R, not_bin, <<>>, 0) end,
        fun() -> plexus_nif:registry_handle(make_ref(), <<>>, <<>>, 0) end,
        fun() -> plexus_nif:registry_handle(R, <<>>, binary:copy(<<1>>, 33), 0) end,
        fun() -> plexus_nif:registry_handle(R, <<>>, src, 0) end,
        fun() -> plexus_nif:registry_sample(R, -1, 0) end,
        fun() -> plexus_nif:registry_view(R, x) end,
        fun() -> plexus_nif:registry_lookup(R, "a@h", 0) end,
        fun() -> plexus_nif:registry_encode_announce(1, <<"a@h">>, [<<>>], #{}, 0, 0, <<>>) end,
        fun() -> plexus_nif:registry_encode_announce(1, <<"a@h">>, [], #{}, 0, 0, <<1, 2>>) end,
        fun() -> plexus_nif:registry_encode_announce(1, <<"a@h">>, x, #{}, 0, 0, <<>>) end,
        fun() -> plexus_nif:registry_encode_query(-1, 1, <<>>, 0) end,
        fun() -> plexus_nif:registry_encode_query(1, 1, <<1, 2>>, 0) end,
        fun() -> plexus_nif:registry_encode_query(1, 1, <<>>, 70000) end,
        fun() -> plexus_nif:registry_encode_bye(1, <<"a@h">>, 0, seed) end,
        fun() -> plexus_nif:registry_decode([]) end,
        fun() -> plexus_nif:registry_public_key(<<1, 2, 3>>) end]].

registry_errors_test() ->
    ?assertEqual({error, invalid_argument}, plexus_nif:registry_new(#{min_ttl_ms => 100000})),
    ?assertEqual({error, invalid_argument},
                 plexus_nif:registry_encode_announce(1, <<"bad">>, [], #{}, 0, 0, <<>>)),
    ?assertEqual({error, invalid_argument}, plexus_nif:registry_encode_query(1, 0, <<>>, 0)),
    ?assertEqual({error, truncated}, plexus_nif:registry_decode(<<>>)),
    ?assertEqual({error, wrong_type}, plexus_nif:registry_decode(<<"PXR", 1, 99, 0>>)).

%% Random bytes never crash the decoders and never make atoms.
fuzz_test() ->
    C = plexus_nif:beacon_new(?S, <<>>, 0, false, 4, 0),
    R = plexus_nif:registry_new(#{max_entries => 4}),
    rand:seed(exsss, {3, 4, 5}),
    _ = plexus_nif:registry_decode(<<"x">>),
    _ = plexus_nif:beacon_open(C, <<"x">>, 0),
    Atoms = erlang:system_info(atom_count),
    [begin
         B = case rand:uniform(3) of
                 1 -> <<"PXR", 1, (rand:uniform(8) - 1), (rand:bytes(rand:uniform(40)))/binary>>;
                 2 -> <<"PXB", 1, 0:32, (rand:bytes(rand:uniform(80)))/binary>>;
                 3 -> rand:bytes(rand:uniform(100))
             end,
         _ = plexus_nif:registry_decode(B),
         _ = plexus_nif:registry_handle(R, B, <<"src">>, 0),
         _ = plexus_nif:beacon_open(C, B, 0)
     end || _ <- lists:seq(1, 5000)],
    ?assertEqual(Atoms, erlang:system_info(atom_count)).
