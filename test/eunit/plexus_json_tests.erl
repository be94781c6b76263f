%% @doc EUnit for plexus_json: RFC 8259 values, strictness (every malformed input an
%% {error, {Reason, Offset}}), no atoms from input, bounded nesting.
-module(plexus_json_tests).

-include_lib("eunit/include/eunit.hrl").

ok(B) -> {ok, V} = plexus_json:decode(B), V.
err(B) -> {error, {R, Off}} = plexus_json:decode(B), ?assert(is_integer(Off)), R.

values_test() ->
    ?assertEqual(#{}, ok(<<"{}">>)),
    ?assertEqual([], ok(<<" [ ] ">>)),
    ?assertEqual(#{<<"a">> => [1, -2, 3.5, -0.25, 1.0e10, true, false, null, <<"x">>]},
                 ok(<<"{\"a\":[1,-2,3.5,-0.25,1e10,true,false,null,\"x\"]}">>)),
    ?assertEqual(0, ok(<<"0">>)),
    ?assertEqual(-0, ok(<<"-0">>)),
    ?assertEqual(120.0, ok(<<"1.2E+2">>)),
    ?assertEqual(0.012, ok(<<"1.2e-2">>)),
    ?assertEqual(<<"\"\\/\b\f\n\r\t">>, ok(<<"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"">>)),
    ?assertEqual(<<"é😀"/utf8>>, ok(<<"\"\\u00e9\\ud83d\\ude00\"">>)),
    ?assertEqual(<<"é"/utf8>>, ok(<<"\"é\""/utf8>>)),
    ?assertEqual(#{<<"k">> => #{<<"n">> => [[]]}}, ok(<<"{\"k\":{\"n\":[[]]}}">>)).

strict_test_() ->
    [?_assertEqual(R, err(B)) || {B, R} <-
        [{<<>>, unexpected_end}, {<<"[1,]">>, unexpected_byte}, {<<"{\"a\":1,}">>, expected_key},
         {<<"01">>, leading_zero}, {<<"1.">>, bad_number}, {<<"1e">>, bad_number},
         {<<"-">>, bad_number}, {<<".5">>, unexpected_byte}, {<<"+1">>, unexpected_byte},
         {<<"[1 2]">>, expected_comma_or_bracket}, {<<"{\"a\" 1}">>, expected_colon},
         {<<"{\"a\":1 \"b\":2}">>, expected_comma_or_brace}, {<<"{1:2}">>, expected_key},
         {<<"\"abc">>, unterminated_string}, {<<"\"a\nb\"">>, control_character_in_string},
         {<<"\"\\x\"">>, bad_escape}, {<<"\"\\u12\"">>, bad_escape},
         {<<"\"\\u+123\"">>, bad_escape}, {<<"\"\\ud800\"">>, unpaired_surrogate},
         {<<"\"\\udc00\"">>, unpaired_surrogate}, {<<"\"\\ud800\\u0041\"">>, unpaired_surrogate},
         {<<"\"", 255, "\"">>, invalid_utf8}, {<<"\"", 16#c3, "\"">>, invalid_utf8},
         {<<"{\"a\":1,\"a\":2}">>, duplicate_key}, {<<"[] []">>, trailing_data},
         {<<"tru">>, unexpected_byte}, {<<"nul">>, unexpected_byte}, {<<"// c\n1">>, unexpected_byte},
         {<<"1e999">>, number_out_of_range}, {<<"1e123456">>, exponent_too_large},
         {binary:copy(<<"9">>, 100), number_too_long}]].

depth_test() ->
    Ok = iolist_to_binary([lists:duplicate(100, $[), lists:duplicate(100, $])]),
    ?assertMatch({ok, _}, plexus_json:decode(Ok)),
    Deep = iolist_to_binary([lists:duplicate(100000, $[), lists:duplicate(100000, $])]),
    ?assertEqual(too_deep, err(Deep)).

no_atoms_test() ->
    Key = <<"json_key_", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
    {ok, M} = plexus_json:decode(<<"{\"", Key/binary, "\":\"", Key/binary, "\"}">>),
    ?assertEqual(Key, maps:get(Key, M)),
    ?assertError(badarg, binary_to_existing_atom(Key, utf8)).

get_test() ->
    V = ok(<<"{\"a\":[{\"b\":1},{\"b\":2}]}">>),
    ?assertEqual(2, plexus_json:get([<<"a">>, 1, <<"b">>], V)),
    ?assertEqual(undefined, plexus_json:get([<<"a">>, 5], V)),
    ?assertEqual(x, plexus_json:get([<<"z">>], V, x)),
    ?assertEqual(undefined, plexus_json:get([0], V)).

badarg_test() ->
    ?assertError(badarg, plexus_json:decode("[]")).

random_garbage_test() ->
    rand:seed(exsss, {1, 2, 3}),
    Alphabet = <<"{}[],:\"\\ 0123456789.eE+-truefalsn\x00\xff">>,
    [begin
         B = list_to_binary([binary:at(Alphabet, rand:uniform(byte_size(Alphabet)) - 1)
                             || _ <- lists:seq(1, rand:uniform(30))]),
         case plexus_json:decode(B) of
             {ok, _} -> ok;
             {error, {R, Off}} when is_atom(R), is_integer(Off), Off >= 0 -> ok
         end
     end || _ <- lists:seq(1, 3000)],
    ok.
