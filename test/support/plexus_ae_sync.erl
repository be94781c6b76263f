%% @doc Test helper: runs the anti-entropy exchange of a v2 CRDT module (`plexus_orset2',
%% `plexus_lwwmap': digest_tree/summary/diff/missing/merge_missing) between two replicas
%% in one process and counts what would cross the wire (external-format bytes of every
%% message). Returns {A2, B2, Bytes, RoundTrips}.
-module(plexus_ae_sync).

-export([sync/3, client/3]).

%% The exchange as README gives it, from the side holding `Map', against a replica that
%% `Call' reaches (another process or node answering {diff, S}, {missing, Paths} and
%% {merge_missing, Slice}): Map merged with what the other side had.
client(Mod, Map, Call) ->
    client(Mod, Map, Call, Mod:digest_tree(Map), []).

client(Mod, Map, Call, Summary, Ship) ->
    {Descend, Ship1} = Call({diff, Summary}),
    case Descend of
        [] ->
            Paths = lists:usort(Ship1 ++ Ship),
            Theirs = Call({missing, Paths}),
            _ = Call({merge_missing, Mod:missing(Map, Paths)}),
            Mod:merge_missing(Map, Theirs);
        _ ->
            client(Mod, Map, Call, Mod:summary(Map, Descend), Ship1 ++ Ship)
    end.

sync(Mod, A, B) ->
    Sum = Mod:digest_tree(A),
    loop(Mod, b, {A, B}, Sum, [], wire(Sum), 1).

loop(Mod, Turn, Reps, Sums, Ship, Bytes, Msgs) ->
    Self = side(Turn, Reps),
    {Descend, Ship1} = Mod:diff(Self, Sums),
    Ship2 = lists:usort(Ship ++ Ship1),
    case Descend of
        [] ->
            %% The slices are swapped even when Ship is empty: they carry the contexts,
            %% which can differ when the entries do not (as README's protocol says).
            %% Both slices come from the states the summaries were taken from.
            Mine = Mod:missing(Self, Ship2),
            Theirs = Mod:missing(side(other(Turn), Reps), Ship2),
            Self2 = Mod:merge_missing(Self, Theirs),
            Other2 = Mod:merge_missing(side(other(Turn), Reps), Mine),
            Reps2 = case Turn of a -> {Self2, Other2}; b -> {Other2, Self2} end,
            Total = Bytes + byte_size(Mine) + byte_size(Theirs),
            {element(1, Reps2), element(2, Reps2), Total, (Msgs + 2 + 1) div 2};
        _ ->
            Reply = {Mod:summary(Self, Descend), Ship1},
            loop(Mod, other(Turn), Reps, element(1, Reply), Ship2, Bytes + wire(Reply),
                 Msgs + 1)
    end.

side(a, {A, _}) -> A;
side(b, {_, B}) -> B.

other(a) -> b;
other(b) -> a.

wire(Term) -> byte_size(term_to_binary(Term)).
