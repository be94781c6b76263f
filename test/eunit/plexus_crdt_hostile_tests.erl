%% Attacks on the trie CRDTs' NIF walks with terms a hostile peer can send (each one
%% crashed the VM, emptied a set, ate gigabytes or held a scheduler before its fix):
%%
%% - a chain of branches thousands deep: the merge walk recursed once per level and
%%   overflowed the C stack (a segfault from one 320 KB message); now a branch below
%%   the last level of a canonical trie is refused;
%% - counts that add up past 2^64: the sum of a branch's children wrapped to 0 and the
%%   merge of a valid set with the lie returned an empty set that validate/1 accepted;
%% - a version vector counter of 10^9 against a side that lies about its size: the
%%   small-side merge listed every dot the counter names (gigabytes);
%% - contexts of 60,000 actors, an element of 65,000 dots, a 20 MB value: read,
%%   hashed or written on a normal scheduler (tens of ms) before any weighing.
%%
%% Scheduling is checked with plexus_nif_probe (each inline call's own CPU time), not
%% with wall-clock long_schedule events.
-module(plexus_crdt_hostile_tests).

-include_lib("eunit/include/eunit.hrl").

-define(S, plexus_orset2).
-define(M, plexus_lwwmap).

%% Through the external format, as from another node: no shared subterms.
from_wire(T) -> binary_to_term(term_to_binary(T)).

chain(0) -> nil;
chain(N) -> {b, N, 20000, list_to_tuple([chain(N - 1) | lists:duplicate(15, nil)])}.

deep_chain_root() ->
    {b, 1, 20000, list_to_tuple([chain(3000) | lists:duplicate(15, nil)])}.

deep_branch_chain_refused_test_() ->
    {timeout, 120,
     fun() ->
             Root = deep_chain_root(),
             S = from_wire({orset2, {#{}, #{}}, Root}),
             M = from_wire({lwwmap, {#{}, #{}}, Root}),
             %% both sides hostile, with hashes that differ at every level (equal
             %% subtrees are taken unread: hashes tell honest replicas apart)
             Root2 = {b, 2, 20000, list_to_tuple([chain(2999) | lists:duplicate(15, nil)])},
             S2 = from_wire({orset2, {#{}, #{}}, Root2}),
             M2 = from_wire({lwwmap, {#{}, #{}}, Root2}),
             GoodS = ?S:add_all(?S:new(), lists:seq(1, 20000), <<"a">>),
             GoodM = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, 2000)], <<"a">>),
             ok = ?S:validate(GoodS),
             [?assertEqual({error, bad_state}, R)
              || R <- [?S:merge(GoodS, S), ?S:merge(S, GoodS), ?S:merge(S, S2),
                       ?M:merge(GoodM, M), ?M:merge(M, GoodM), ?M:merge(M, M2)]],
             ?assertNotEqual(ok, ?S:validate(S)),
             ?assertNotEqual(ok, ?M:validate(M)),
             ?assertMatch({error, _}, ?S:to_binary(S))
     end}.

%% A valid set A whose last top child is empty, and B: A's other children beside a
%% child whose count makes the sum 2^64.
count_wrap_refused_test() ->
    Good = ?S:add_all(?S:new(), lists:seq(1, 200), <<"a">>),
    {orset2, _, {b, _, _, ChG}} = Good,
    Last = element(16, ChG),
    A = lists:foldl(fun({E, _}, Acc) -> ?S:remove(Acc, binary_to_term(<<131, E/binary>>)) end,
                    Good, plexus_crdt_trie:collect(Last, [])),
    ok = ?S:validate(A),
    {orset2, _, {b, _, _, ChA}} = A,
    nil = element(16, ChA),
    Others = lists:sum([plexus_crdt_trie:count(X) || X <- tuple_to_list(ChA)]),
    Lie = {b, 12345, (1 bsl 64) - Others, erlang:make_tuple(16, nil)},
    B = {orset2, {#{}, #{}}, {b, 99, 100, setelement(16, ChA, Lie)}},
    ?assertEqual({error, bad_state}, ?S:merge(A, B)),
    ?assertEqual({error, bad_state}, ?S:merge(B, A)).

%% The small-side merge decides from counts, not from a list of the dots a counter
%% names: in a process allowed 80 MB, a counter of 10^9 against a side that claims
%% 2^80 entries (which lifted the small-side limit) finishes. Listing the dots took
%% about 16 bytes each: the process would be killed.
huge_counter_not_listed_test_() ->
    {timeout, 60,
     fun() ->
             {orset2, {VV, Cloud}, Root} = ?S:add_all(?S:new(), lists:seq(200001, 200010), <<"m">>),
             Small = {orset2, {VV#{<<"a">> => 1000000000}, Cloud}, Root},
             Liar = {orset2, {#{}, #{}}, {l, 0, 1 bsl 80, <<>>, {}, {}}},
             Honest = ?S:add_all(?S:new(), lists:seq(1, 100000), <<"b">>),
             Self = self(),
             {Pid, Ref} = spawn_opt(fun() ->
                                            R1 = ?S:merge(Small, Liar),
                                            R2 = ?S:merge(Small, Honest),
                                            Self ! {self(), R1, ?S:size(R2)}
                                    end,
                                    [monitor, {max_heap_size, #{size => 10000000, kill => true,
                                                                error_logger => false}}]),
             receive
                 {Pid, _, Size} -> ?assertEqual(100010, Size);
                 {'DOWN', Ref, process, Pid, Why} -> error({merge_died, Why})
             end
     end}.

%% --------------------------------------------------------------- scheduling

%% Each piece of work holds no normal scheduler for 10 ms of its CPU (it moved to a
%% dirty scheduler), and the probe does see such a call when every call is kept
%% inline (so the check can fail).
big_inputs_go_dirty_test_() ->
    {timeout, 300,
     [{Name, fun() -> held_briefly(Work) end} || {Name, Work} <- big_work()]}.

inline_calls_are_seen_test_() ->
    {timeout, 300,
     fun() ->
             [{_, Work} | _] = big_work(),
             {_, Calls} = plexus_nif_probe:with_dirty_threshold(
                            1 bsl 62, fun() -> plexus_nif_probe:calls(Work) end),
             ?assert(plexus_nif_probe:max_inline_us(Calls) >= 10000)
     end}.

held_briefly(Work) ->
    {_, Calls} = plexus_nif_probe:calls(Work),
    ?assertMatch([_ | _], [C || {_, rescheduled} = C <- Calls]),
    ?assert(plexus_nif_probe:max_inline_us(Calls) < 10000).

big_work() ->
    Actors = maps:from_list([{<<I:32>>, 1} || I <- lists:seq(1, 60000)]),
    Wide = fun(Set) -> {orset2, {VV, Cloud}, Root} = Set,
                       {orset2, {maps:merge(VV, Actors), Cloud}, Root}
           end,
    A = Wide(?S:add_all(?S:new(), lists:seq(1, 100), <<"a">>)),
    B = Wide(?S:add_all(?S:new(), lists:seq(101, 200), <<"b">>)),
    Value = binary:copy(<<7>>, 20000000),
    Map = ?M:put_all(?M:new(), [{I, I} || I <- lists:seq(1, 40)], <<"a">>),
    [{"to_binary, 60,000 actors", fun() -> ?S:to_binary(A) end},
     {"merge, 60,000 actors each side", fun() -> ?S:merge(A, B) end},
     {"to_binary, one element of 65,000 dots", fun() -> ?S:to_binary(many_dots(65000)) end},
     {"put of a 20 MB value", fun() -> ?M:put(Map, k, Value, <<"x">>) end},
     {"merge of concurrent 20 MB values",
      fun() -> ?M:merge(?M:put(Map, k, Value, <<"x">>), ?M:put(Map, k, Value, <<"y">>)) end}].

%% A valid set of one element added concurrently by N actors (a dot each).
many_dots(N) ->
    K = plexus_term_bytes:field(1),
    Dots = lists:sort([{<<I:32>>, 1} || I <- lists:seq(1, N)]),
    VV = maps:from_list([{Actor, 1} || {Actor, _} <- Dots]),
    {orset2, {VV, #{}}, plexus_crdt_trie:build(0, [{plexus_crdt_trie:khash(K), {K, Dots}}])}.
