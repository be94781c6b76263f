%% PropEr properties of plexus_lww: merge is commutative, associative and idempotent
%% and picks the greatest (timestamp, actor bytes, value bytes); from_binary/to_binary
%% round-trip; a local update wins over the register it updates; replicas converge
%% under random delivery order, duplication and loss followed by anti-entropy, to the
%% greatest write.
%%
%% Registers are built by hand from small timestamps (0..20, so ties are frequent and
%% the node clock is not moved ahead of the wall clock by observing them).
-module(prop_plexus_lww).

-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

-include("plexus_prop.hrl").

-define(L, plexus_lww).
-define(OPTS, [{numtests, ?NUMTESTS(300)}, {max_size, 60}, {to_file, user}]).

proper_test_() ->
    Props = [prop_merge_commutative, prop_merge_associative, prop_merge_idempotent,
             prop_merge_is_max, prop_roundtrip, prop_update_wins, prop_converge,
             prop_fast_merge_agrees_with_c, prop_fast_merge_ties_agree_with_c,
             prop_fast_update_ts_agrees_with_c,
             prop_fast_update_agrees_with_c, prop_fast_new_agrees_with_c,
             prop_fast_update2_agrees_with_c],
    [{atom_to_list(P),
      {timeout, 120,
       ?_assert(proper:quickcheck(?MODULE:P(), ?OPTS))}}
     || P <- Props].

%% ---------------------------------------------------------------- generators

value() -> oneof([range(0, 5), elements([a, b, <<"v">>, {x, 1}, 2.5])]).
actor() -> elements([n1, n2, n3, {n, 4}, {long, binary:copy(<<"a">>, 150)}]).
ts() -> range(0, 20).

write() -> {ts(), actor(), value()}.

%% Either form: the register term or its canonical (old in-memory) binary, so every
%% law also holds for merges that mix the two.
reg() -> ?LET({W, Form}, {write(), elements([term, binary])}, form(Form, make(W))).

form(binary, Bin) -> Bin;
form(term, Bin) -> {ok, R} = ?L:from_binary(Bin), R.

%% The canonical bytes of a result that is a register; errors as they are.
b({plexus_lww, _, _, _} = R) -> ?L:to_binary(R);
b({ok, R}) -> {ok, b(R)};
b(Other) -> Other.

%% A register in the format of crdt_format.md, made without the node clock.
make({Ts, Actor, Value}) ->
    <<131, A/binary>> = plexus_nif:encode(Actor),
    <<131, V/binary>> = plexus_nif:encode(Value),
    <<1, $L, Ts:64, (varint(byte_size(A)))/binary, A/binary,
      (varint(byte_size(V)))/binary, V/binary>>.

varint(N) when N < 128 -> <<N>>;
varint(N) -> <<1:1, (N band 127):7, (varint(N bsr 7))/binary>>.

%% The merge order of the format: timestamp, then actor bytes, then value bytes.
key({Ts, Actor, Value}) -> {Ts, plexus_nif:encode(Actor), plexus_nif:encode(Value)}.

%% ---------------------------------------------------------------- hostile

%% Fields of 1..200 bytes (across the fast path's 127-byte bound), timestamps small
%% or extreme, and then damage: byte flips, truncation, extra bytes, a length written
%% as 0, as a non-minimal varint or out of range, another header, or random bytes.
wide_value() ->
    oneof([value(), ?LET(N, range(0, 200), binary(N))]).

wide_ts() -> oneof([ts(), elements([0, 16#FFFFFFFFFFFFFFFF, 16#FFFFFFFFFFFFFFFE])]).

raw_fields() ->
    ?LET({Ts, A, V}, {wide_ts(), actor(), wide_value()},
         begin
             <<131, AB/binary>> = plexus_nif:encode(A),
             <<131, VB/binary>> = plexus_nif:encode(V),
             {Ts, AB, VB}
         end).

hostile() ->
    ?LET({{Ts, A, V}, Damage}, {raw_fields(), damage()}, damage(Damage, Ts, A, V)).

damage() ->
    oneof([none, none, {flip, nat(), range(1, 255)}, {truncate, nat()}, {append, binary()},
           zero_actor, zero_value, nonminimal_actor, nonminimal_value, long_actor,
           {header, range(0, 3), range(0, 255)}, {random, binary()}]).

damage(none, Ts, A, V) -> fields(Ts, varint(byte_size(A)), A, varint(byte_size(V)), V);
damage({flip, I, X}, Ts, A, V) ->
    Bin = damage(none, Ts, A, V),
    P = I rem byte_size(Bin),
    <<H:P/binary, B, T/binary>> = Bin,
    <<H/binary, (B bxor X), T/binary>>;
damage({truncate, I}, Ts, A, V) ->
    Bin = damage(none, Ts, A, V),
    binary:part(Bin, 0, I rem byte_size(Bin));
damage({append, X}, Ts, A, V) -> <<(damage(none, Ts, A, V))/binary, X/binary>>;
damage(zero_actor, Ts, _A, V) -> fields(Ts, <<0>>, <<>>, varint(byte_size(V)), V);
damage(zero_value, Ts, A, _V) -> fields(Ts, varint(byte_size(A)), A, <<0>>, <<>>);
damage(nonminimal_actor, Ts, A, V) ->
    fields(Ts, nonminimal(byte_size(A)), A, varint(byte_size(V)), V);
damage(nonminimal_value, Ts, A, V) ->
    fields(Ts, varint(byte_size(A)), A, nonminimal(byte_size(V)), V);
damage(long_actor, Ts, A, V) ->
    fields(Ts, varint(byte_size(A) + 1), A, varint(byte_size(V)), V);
damage({header, I, X}, Ts, A, V) ->
    <<H:I/binary, _, T/binary>> = damage(none, Ts, A, V),
    <<H/binary, X, T/binary>>;
damage({random, X}, _Ts, _A, _V) -> X.

fields(Ts, AL, A, VL, V) -> <<1, $L, Ts:64, AL/binary, A/binary, VL/binary, V/binary>>.

%% N with a redundant continuation byte: the same number, not canonical.
nonminimal(N) ->
    Bin = varint(N),
    S = byte_size(Bin) - 1,
    <<H:S/binary, Last>> = Bin,
    <<H/binary, (Last bor 128), 0>>.

%% plexus_lww decides small registers in Erlang; the C path (plexus_nif) is the
%% reference: same winner, same error, on valid and hostile input alike.
prop_fast_merge_agrees_with_c() ->
    ?FORALL({X, Y}, {hostile(), hostile()},
            ?SAFE(begin
                      C = plexus_nif:lww_merge([X, Y]),
                      b(?L:merge(X, Y)) =:= C
                          andalso b(?L:merge(Y, X)) =:= plexus_nif:lww_merge([Y, X])
                          andalso mixed_merge_agrees(X, Y, C)
                  end)).

%% Equal timestamps (and often equal actors): the tie break on actor, then value bytes.
prop_fast_merge_ties_agree_with_c() ->
    ?FORALL({Ts, A1, A2, V1, V2}, {ts(), actor(), actor(), wide_value(), wide_value()},
            ?SAFE(begin
                      X = make({Ts, A1, V1}),
                      Y = make({Ts, A2, V2}),
                      C = plexus_nif:lww_merge([X, Y]),
                      b(?L:merge(X, Y)) =:= C
                          andalso b(?L:merge(Y, X)) =:= plexus_nif:lww_merge([Y, X])
                          andalso mixed_merge_agrees(X, Y, C)
                  end)).

%% With either side converted to the term first (when it is valid), the merge still
%% picks the same register.
mixed_merge_agrees(X, Y, C) ->
    case {?L:from_binary(X), ?L:from_binary(Y)} of
        {{ok, TX}, {ok, TY}} ->
            lists:all(fun(M) -> b(M) =:= C end,
                      [?L:merge(TX, Y), ?L:merge(X, TY), ?L:merge(TX, TY), ?L:merge([TX, Y])]);
        {{ok, TX}, Error} ->
            ?L:merge(TX, Y) =:= Error andalso ?L:merge(Y, TX) =:= Error;
        {Error, {ok, TY}} ->
            ?L:merge(X, TY) =:= Error andalso ?L:merge(TY, X) =:= Error;
        _ ->
            true
    end.

prop_fast_update_ts_agrees_with_c() ->
    ?FORALL({X, A, V, Ts}, {hostile(), actor(), wide_value(), wide_ts()},
            ?SAFE(begin
                      C = plexus_nif:lww_update_ts(X, plexus_nif:encode(V),
                                                   plexus_nif:encode(A), Ts),
                      CNode = plexus_nif:lww_update_ts(X, plexus_nif:encode(V),
                                                       plexus_nif:encode(node()), Ts),
                      ok_c(C) =:= b(?L:update({assign, V, Ts}, A, X))
                          andalso CNode =:= b(?L:update(X, V, Ts))
                  end)).

%% update/2 takes a fresh timestamp, so the result is compared field by field: valid
%% (by the C validator), after X, and byte-equal to what the C encoder makes of it.
prop_fast_update_agrees_with_c() ->
    ?FORALL({X, A, V}, {hostile(), actor(), wide_value()},
            ?SAFE(begin
                      Valid = plexus_nif:lww_validate(X),
                      R = ?L:update({assign, V}, A, X),
                      case {Valid, R} of
                          {ok, {ok, Reg}} -> written_after(X, b(Reg), A, V);
                          {ok, {error, overflow}} -> ?L:timestamp(X) =:= 16#FFFFFFFFFFFFFFFF;
                          {Error, Error} -> true;
                          _ -> false
                      end
                  end)).

%% update/2 builds the value's external format itself for atoms, 32-bit integers and
%% binaries (value_field/1 and enc/1): byte-equal to what plexus_nif:encode/1 and the
%% C encoder make, at every size around the bounds of each shape.
prop_fast_update2_agrees_with_c() ->
    ?FORALL({X, V}, {hostile(), encodable_value()},
            ?SAFE(begin
                      Valid = plexus_nif:lww_validate(X),
                      case {Valid, ?L:update(X, V)} of
                          {ok, {error, overflow}} -> ?L:timestamp(X) =:= 16#FFFFFFFFFFFFFFFF;
                          {ok, Reg} -> written_after(X, b(Reg), node(), V)
                                           andalso ?L:value(Reg) =:= V;
                          {Error, Error} -> true;
                          _ -> false
                      end
                  end)).

encodable_value() ->
    oneof([wide_value(),
           ?LET(N, range(0, 130), binary(N)),
           ?LET(N, range(0, 255), list_to_atom(lists:duplicate(N, $a))),
           ?LET(N, range(0, 60), list_to_atom(lists:duplicate(N, 16#e9))),
           integer(-300, 300),
           elements([255, 256, -1, 2147483647, 2147483648, -2147483648, -2147483649,
                     1 bsl 64, -(1 bsl 64), '', 'é', true]),
           {integer(), atom()}]).

prop_fast_new_agrees_with_c() ->
    ?FORALL({A, V}, {actor(), wide_value()},
            ?SAFE(begin
                      R = ?L:new(V, A),
                      b(R) =:= plexus_nif:lww_new(plexus_nif:encode(V), plexus_nif:encode(A),
                                               ?L:timestamp(R))
                  end)).

written_after(X, Reg, A, V) ->
    Ts = ?L:timestamp(Reg),
    plexus_nif:lww_validate(Reg) =:= ok andalso Ts > ?L:timestamp(X)
        andalso Reg =:= plexus_nif:lww_new(plexus_nif:encode(V), plexus_nif:encode(A), Ts)
        andalso plexus_nif:lww_merge([X, Reg]) =:= Reg.

ok_c({error, _} = Error) -> Error;
ok_c(Reg) -> {ok, Reg}.

%% ---------------------------------------------------------------- laws

prop_merge_commutative() ->
    ?FORALL({A, B}, {reg(), reg()}, ?SAFE(b(?L:merge(A, B)) =:= b(?L:merge(B, A)))).

prop_merge_associative() ->
    ?FORALL({A, B, C}, {reg(), reg(), reg()},
            ?SAFE(begin
                L = b(?L:merge(?L:merge(A, B), C)),
                L =:= b(?L:merge(A, ?L:merge(B, C))) andalso L =:= b(?L:merge([C, B, A]))
            end)).

prop_merge_idempotent() ->
    ?FORALL({A, B}, {reg(), reg()},
            ?SAFE(begin
                AB = ?L:merge(A, B),
                b(?L:merge(A, A)) =:= b(A) andalso ?L:merge(AB, B) =:= AB
                    andalso b(?L:merge([A])) =:= b(A)
            end)).

prop_merge_is_max() ->
    ?FORALL(Writes, non_empty(list(write())),
            ?SAFE(begin
                {Ts, Actor, Value} = Max = lists:last(lists:sort(fun(X, Y) -> key(X) =< key(Y) end,
                                                                 Writes)),
                M = ?L:merge([make(W) || W <- Writes]),
                b(M) =:= make(Max) andalso ?L:value(M) =:= Value andalso ?L:actor(M) =:= Actor
                    andalso ?L:timestamp(M) =:= Ts
            end)).

prop_roundtrip() ->
    ?FORALL(W, write(),
            ?SAFE(begin
                R = make(W),
                {ok, R2} = ?L:from_binary(R),
                %% old binary -> term -> the same canonical bytes, digest unchanged
                ?L:to_binary(R2) =:= R andalso ?L:to_binary(R) =:= R
                    andalso ?L:from_binary(?L:to_binary(R2)) =:= {ok, R2}
                    andalso ?L:equal(R, R2) andalso ?L:digest(R) =:= ?L:digest(R2)
                    andalso ?L:digest(R2) =:= plexus_nif:lww_digest(R)
            end)).

prop_update_wins() ->
    ?FORALL({W, V, A}, {write(), value(), actor()},
            ?SAFE(begin
                R = make(W),
                U = ?L:update(R, V),
                {ok, U2} = ?L:update({assign, V}, A, R),
                ?L:merge(R, U) =:= U andalso ?L:merge(U, R) =:= U
                    andalso ?L:value(U) =:= V andalso ?L:timestamp(U) > ?L:timestamp(R)
                    andalso ?L:merge(R, U2) =:= U2 andalso ?L:actor(U2) =:= A
            end)).

%% ---------------------------------------------------------------- convergence

cmd() ->
    frequency([{3, {write, range(1, 3), write()}},
               {2, {local, range(1, 3), value()}},
               {4, {deliver, nat()}},
               {1, {duplicate, nat()}},
               {1, {drop, nat()}}]).

prop_converge() ->
    ?FORALL(Cmds, list(cmd()),
            ?SAFE(begin
                Init = {{make({0, n0, 0}), make({0, n0, 0}), make({0, n0, 0})}, [], []},
                {Reps, Net, Written} = lists:foldl(fun step/2, Init, Cmds),
                Reps1 = lists:foldl(fun deliver/2, Reps, Net),
                Reps2 = lists:foldl(fun({F, T}, Acc) -> deliver({T, element(F, Acc)}, Acc) end,
                                    Reps1, [{1, 2}, {2, 3}, {3, 1}, {1, 2}]),
                [R1, R2, R3] = tuple_to_list(Reps2),
                %% The winner is the greatest write of all (or the initial register).
                Expected = ?L:merge([make({0, n0, 0}) | Written]),
                b(R1) =:= b(R2) andalso b(R2) =:= b(R3) andalso b(R1) =:= b(Expected)
            end)).

step({write, R, W}, {Reps, Net, Written}) ->
    Reg = make(W),
    S = ?L:merge(element(R, Reps), Reg),
    {setelement(R, Reps, S), Net ++ [{To, S} || To <- [1, 2, 3], To =/= R], [Reg | Written]};
step({local, R, V}, {Reps, Net, Written}) ->
    S = ?L:update(element(R, Reps), V),
    {setelement(R, Reps, S), Net ++ [{To, S} || To <- [1, 2, 3], To =/= R], [S | Written]};
step({_, _}, {_, [], _} = Acc) ->
    Acc;
step({deliver, N}, {Reps, Net, Written}) ->
    {Msg, Rest} = take(N, Net),
    {deliver(Msg, Reps), Rest, Written};
step({duplicate, N}, {Reps, Net, Written}) ->
    {Msg, _} = take(N, Net),
    {deliver(Msg, Reps), Net, Written};
step({drop, N}, {Reps, Net, Written}) ->
    {_, Rest} = take(N, Net),
    {Reps, Rest, Written}.

take(N, List) ->
    {Before, [Msg | After]} = lists:split(N rem length(List), List),
    {Msg, Before ++ After}.

deliver({To, Reg}, Reps) ->
    setelement(To, Reps, ?L:merge(element(To, Reps), Reg)).
