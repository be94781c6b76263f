%% @doc A small strict JSON decoder (RFC 8259) for the discovery adapters that read
%% JSON (`kubernetes', `tailscale'); OTP 25 has no `json' module.
%%
%% Objects become maps with binary keys, arrays lists, strings UTF-8 binaries, numbers
%% integers or floats, and `true', `false', `null' those three atoms. Nothing from the
%% input becomes an atom. Strict: exactly one value surrounded by optional whitespace,
%% no trailing commas, no comments, no leading zeros, no control characters in strings,
%% valid UTF-8 and escapes (surrogate pairs must pair), no duplicate keys; nesting
%% deeper than 128 levels is refused (so hostile input cannot exhaust the stack).
%% Errors are `{error, {Reason, ByteOffset}}'.
-module(plexus_json).

-export([decode/1, get/2, get/3]).

-export_type([value/0]).

-type value() :: #{binary() => value()} | [value()] | binary() | number() | true | false | null.

-define(MAX_DEPTH, 128).
-define(IS_WS(C), (C =:= $\s orelse C =:= $\t orelse C =:= $\n orelse C =:= $\r)).

%% @doc Decodes one JSON text.
-spec decode(binary()) -> {ok, value()} | {error, {atom(), non_neg_integer()}}.
decode(Bin) when is_binary(Bin) ->
    try
        {V, Rest} = value(skip_ws(Bin), 0, Bin),
        case skip_ws(Rest) of
            <<>> -> {ok, V};
            R -> throw({trailing_data, R})
        end
    catch
        throw:{Reason, RestAt} when is_binary(RestAt) ->
            {error, {Reason, byte_size(Bin) - byte_size(RestAt)}}
    end;
decode(_) ->
    erlang:error(badarg).

%% @doc Follows a path of keys (binaries) and indexes (integers, 0-based) into a
%% decoded value; `undefined' when any step is missing or of the wrong type.
-spec get([binary() | non_neg_integer()], value()) -> value() | undefined.
get(Path, V) -> get(Path, V, undefined).

%% @doc As `get/2' with a default.
-spec get([binary() | non_neg_integer()], value(), Default) -> value() | Default.
get([], V, _Default) -> V;
get([K | T], M, Default) when is_binary(K), is_map(M) ->
    case maps:find(K, M) of
        {ok, V} -> get(T, V, Default);
        error -> Default
    end;
get([I | T], L, Default) when is_integer(I), I >= 0, is_list(L), I < length(L) ->
    get(T, lists:nth(I + 1, L), Default);
get(_, _, Default) -> Default.

%% ------------------------------------------------------------------ decoder

skip_ws(<<C, R/binary>>) when ?IS_WS(C) -> skip_ws(R);
skip_ws(B) -> B.

value(_, Depth, _) when Depth > ?MAX_DEPTH -> throw({too_deep, <<>>});
value(<<${, R/binary>>, D, Orig) -> object(skip_ws(R), D + 1, #{}, Orig);
value(<<$[, R/binary>>, D, Orig) -> array(skip_ws(R), D + 1, [], Orig);
value(<<$", R/binary>>, _D, _Orig) -> string(R, []);
value(<<"true", R/binary>>, _D, _) -> {true, R};
value(<<"false", R/binary>>, _D, _) -> {false, R};
value(<<"null", R/binary>>, _D, _) -> {null, R};
value(<<C, _/binary>> = B, _D, _) when C =:= $-; C >= $0, C =< $9 -> number(B);
value(<<>>, _D, _) -> throw({unexpected_end, <<>>});
value(B, _D, _) -> throw({unexpected_byte, B}).

object(<<$}, R/binary>>, _D, Acc, _) when map_size(Acc) =:= 0 -> {Acc, R};
object(<<$", R/binary>> = At, D, Acc, Orig) ->
    {K, R1} = string(R, []),
    case maps:is_key(K, Acc) of
        true -> throw({duplicate_key, At});
        false -> ok
    end,
    case skip_ws(R1) of
        <<$:, R2/binary>> ->
            {V, R3} = value(skip_ws(R2), D, Orig),
            Acc1 = Acc#{K => V},
            case skip_ws(R3) of
                <<$,, R4/binary>> -> object(skip_ws(R4), D, Acc1, Orig);
                <<$}, R4/binary>> -> {Acc1, R4};
                Other -> throw({expected_comma_or_brace, Other})
            end;
        Other ->
            throw({expected_colon, Other})
    end;
object(B, _D, _Acc, _) ->
    throw({expected_key, B}).

array(<<$], R/binary>>, _D, [], _) -> {[], R};
array(B, D, Acc, Orig) ->
    {V, R} = value(B, D, Orig),
    case skip_ws(R) of
        <<$,, R1/binary>> -> array(skip_ws(R1), D, [V | Acc], Orig);
        <<$], R1/binary>> -> {lists:reverse([V | Acc]), R1};
        Other -> throw({expected_comma_or_bracket, Other})
    end.

%% Strings: collect chunks (iolist of binaries/codepoints), validate UTF-8 at the end.
string(B, Acc) ->
    case scan_plain(B, 0) of
        {N, <<$", R/binary>>} ->
            <<Chunk:N/binary, _/binary>> = B,
            finish_string([Acc, Chunk], R, B);
        {N, <<$\\, E, R/binary>>} ->
            <<Chunk:N/binary, _/binary>> = B,
            {Code, R1} = escape(E, R, B),
            string(R1, [Acc, Chunk, Code]);
        {_N, <<>>} ->
            throw({unterminated_string, <<>>});
        {_N, <<$\\>>} ->
            throw({unterminated_string, <<>>});
        {_N, Bad} ->
            throw({control_character_in_string, Bad})
    end.

finish_string(IoList, R, At) ->
    Bin = iolist_to_binary(IoList),
    case unicode:characters_to_binary(Bin, utf8, utf8) of
        Bin -> {Bin, R};
        _ -> throw({invalid_utf8, At})
    end.

scan_plain(B, N) ->
    case B of
        <<_:N/binary, C, _/binary>> when C =/= $", C =/= $\\, C >= 16#20 -> scan_plain(B, N + 1);
        <<_:N/binary, Rest/binary>> -> {N, Rest}
    end.

escape($", R, _) -> {<<$">>, R};
escape($\\, R, _) -> {<<$\\>>, R};
escape($/, R, _) -> {<<$/>>, R};
escape($b, R, _) -> {<<$\b>>, R};
escape($f, R, _) -> {<<$\f>>, R};
escape($n, R, _) -> {<<$\n>>, R};
escape($r, R, _) -> {<<$\r>>, R};
escape($t, R, _) -> {<<$\t>>, R};
escape($u, R, At) ->
    {Hi, R1} = hex4(R, At),
    if
        Hi >= 16#D800, Hi =< 16#DBFF ->
            case R1 of
                <<$\\, $u, R2/binary>> ->
                    {Lo, R3} = hex4(R2, At),
                    case Lo >= 16#DC00 andalso Lo =< 16#DFFF of
                        true -> {<<(16#10000 + ((Hi - 16#D800) bsl 10) + (Lo - 16#DC00))/utf8>>, R3};
                        false -> throw({unpaired_surrogate, At})
                    end;
                _ ->
                    throw({unpaired_surrogate, At})
            end;
        Hi >= 16#DC00, Hi =< 16#DFFF ->
            throw({unpaired_surrogate, At});
        true ->
            {<<Hi/utf8>>, R1}
    end;
escape(_, _R, At) ->
    throw({bad_escape, At}).

hex4(<<A, B, C, D, R/binary>>, At) ->
    case lists:all(fun is_hex/1, [A, B, C, D]) of
        true -> {list_to_integer([A, B, C, D], 16), R};
        false -> throw({bad_escape, At})
    end;
hex4(_, At) ->
    throw({bad_escape, At}).

is_hex(C) -> (C >= $0 andalso C =< $9) orelse (C >= $a andalso C =< $f) orelse
                 (C >= $A andalso C =< $F).

%% number = [ minus ] int [ frac ] [ exp ]
number(B) ->
    {Neg, R0} = case B of
                    <<$-, RN/binary>> -> {true, RN};
                    _ -> {false, B}
                end,
    {Int, R1} = case R0 of
                    <<$0, D, _/binary>> when D >= $0, D =< $9 -> throw({leading_zero, R0});
                    <<$0, RZ/binary>> -> {<<"0">>, RZ};
                    <<D, _/binary>> when D >= $1, D =< $9 ->
                        case digits(R0, 0) of
                            {Ds0, _} when byte_size(Ds0) > 64 -> throw({number_too_long, R0});
                            Ok -> Ok
                        end;
                    _ -> throw({bad_number, R0})
                end,
    {Frac, R2} = case R1 of
                     <<$., RF/binary>> ->
                         case digits(RF, 0) of
                             {<<>>, _} -> throw({bad_number, RF});
                             {Fs, _} when byte_size(Fs) > 64 -> throw({number_too_long, RF});
                             F -> F
                         end;
                     _ -> {none, R1}
                 end,
    {Exp, R3} = case R2 of
                    <<E, RX/binary>> when E =:= $e; E =:= $E ->
                        {Sign, RS} = case RX of
                                         <<$+, X/binary>> -> {<<"+">>, X};
                                         <<$-, X/binary>> -> {<<"-">>, X};
                                         _ -> {<<"+">>, RX}
                                     end,
                        case digits(RS, 0) of
                            {<<>>, _} -> throw({bad_number, RS});
                            {Ds, RE} when byte_size(Ds) > 5 -> throw({exponent_too_large, RE});
                            {Ds, RE} -> {<<Sign/binary, Ds/binary>>, RE}
                        end;
                    _ -> {none, R2}
                end,
    Sgn = case Neg of true -> <<"-">>; false -> <<>> end,
    V = case {Frac, Exp} of
            {none, none} ->
                binary_to_integer(<<Sgn/binary, Int/binary>>);
            _ ->
                F0 = case Frac of none -> <<"0">>; _ -> Frac end,
                E0 = case Exp of none -> <<>>; _ -> <<"e", Exp/binary>> end,
                try binary_to_float(<<Sgn/binary, Int/binary, ".", F0/binary, E0/binary>>)
                catch error:badarg -> throw({number_out_of_range, R3})
                end
        end,
    {V, R3}.

digits(B, N) ->
    case B of
        <<_:N/binary, D, _/binary>> when D >= $0, D =< $9 -> digits(B, N + 1);
        <<Ds:N/binary, R/binary>> -> {Ds, R}
    end.
