%% @private
%% @doc Merkle anti-entropy of the trie CRDTs (`plexus_orset2', `plexus_lwwmap'): the
%% steps of the exchange on a trie root, and the slice binary that carries the
%% entries below the paths where two replicas differ. Each CRDT gives the body codec
%% of its own canonical binary (context and sorted entries); the entry merge is the
%% context's (plexus_crdt_ctx), and the exchange itself (see
%% `plexus_orset2:digest_tree/1') is the same for both.
%%
%% A slice is `uvar(PathCount)', each path as `uvar(Length)' and its nibble bytes
%% (sorted, none below another), then the CRDT's body. Every path and entry of a slice
%% from outside is checked: a path must be valid, the paths sorted and not nested, and
%% every entry must lie below one of them.
-module(plexus_crdt_ae).

-export([summary/2, diff/2, slice/4, merge_missing/4]).

-import(plexus_crdt_trie, [at_path/2, summarise/1, valid_path/1, diff_one/5, no_nested/1,
                           collect/2, khash/1, nibbles/1, build/2, merge_at/7]).
-import(plexus_varint, [uvar/1]).

%% The body codec of a CRDT: its context and entries (sorted) to bytes, and back from
%% bytes of unknown origin, validated completely.
-type encode_body(Ctx) :: fun((Ctx, [plexus_crdt_trie:entry()]) -> iodata()).
-type decode_body(Ctx) :: fun((binary()) ->
                                     {ok, Ctx, [plexus_crdt_trie:entry()]} | {error, term()}).

-export_type([encode_body/1, decode_body/1]).

%% @doc Summaries of the nodes at `Paths' (invalid paths are skipped).
-spec summary(plexus_crdt_trie:tnode(), [binary()]) ->
          [{binary(), plexus_crdt_trie:node_summary()}].
summary(Root, Paths) ->
    [{P, summarise(at_path(Root, P))} || P <- Paths, valid_path(P)].

%% @doc `{Descend, Ship}': the child paths whose hashes differ under branches on both
%% sides, and the paths where a leaf or an empty node differs. Raises on an invalid
%% path (the CRDT's caller turns that into `{error, bad_state}').
-spec diff(plexus_crdt_trie:tnode(), [{binary(), plexus_crdt_trie:node_summary()}]) ->
          {[binary()], [binary()]}.
diff(Root, Remote) ->
    lists:foldr(fun({P, RS}, {D, S}) ->
                        true = valid_path(P),
                        diff_one(P, summarise(at_path(Root, P)), RS, D, S)
                end, {[], []}, Remote).

%% @doc The slice at `Paths': the whole context and the entries below those paths.
%% Raises on invalid or nested paths.
-spec slice(Ctx, plexus_crdt_trie:tnode(), [binary()], encode_body(Ctx)) -> binary().
slice(Ctx, Root, Paths, EncodeBody) ->
    true = lists:all(fun plexus_crdt_trie:valid_path/1, Paths),
    Ps = lists:usort(Paths),
    true = no_nested(Ps),
    Entries = lists:sort(lists:append([collect(at_path(Root, P), []) || P <- Ps])),
    iolist_to_binary([uvar(length(Ps)), [[uvar(byte_size(P)), P] || P <- Ps],
                      EncodeBody(Ctx, Entries)]).

%% A slice of unknown origin read: its paths, the context and its entries grouped by
%% path (#{Path => [{KeyHash, Entry}]}, reversed). `{error, bad_slice}' for a bad path
%% header or an entry below none of the paths; the body decoder's error for a bad body.
read_slice(Slice, DecodeBody) ->
    try
        {NP, R1} = plexus_varint:read(Slice),
        true = NP =< byte_size(R1),
        {Paths, Body} = read_paths(NP, R1, []),
        true = lists:all(fun plexus_crdt_trie:valid_path/1, Paths),
        true = Paths =:= lists:usort(Paths),
        true = no_nested(Paths),
        {Paths, Body}
    of
        {Ps, B} ->
            case DecodeBody(B) of
                {ok, Ctx, Entries} ->
                    case group_by_path(Ps, Entries) of
                        {ok, Groups} -> {ok, Ps, Ctx, Groups};
                        error -> {error, bad_slice}
                    end;
                {error, _} = Error ->
                    Error
            end
    catch
        error:_ -> {error, bad_slice};
        throw:_ -> {error, bad_slice}
    end.

%% @doc Merges a slice of unknown origin into the state `{CL, Root}': the contexts
%% join, and below each path the subtree built from the slice's entries merges with
%% the local one. The slice's errors as `read_slice/2' gives them; raises on a bad
%% local state (the CRDT's caller turns that into `{error, bad_state}').
-spec merge_missing(Ctx, plexus_crdt_trie:tnode(), binary(), decode_body(Ctx)) ->
          {Ctx, plexus_crdt_trie:tnode()} | {error, term()}.
merge_missing(CL, Root, Slice, DecodeBody) ->
    case read_slice(Slice, DecodeBody) of
        {ok, Paths, CR, Groups} ->
            Ops = plexus_crdt_ctx:entry_ops(),
            Root2 = lists:foldl(
                      fun(P, R) ->
                              Under = lists:reverse(maps:get(P, Groups, [])),
                              merge_at(R, 0, P, build(byte_size(P), Under), CL, CR, Ops)
                      end, Root, Paths),
            {plexus_crdt_ctx:merge(CL, CR), Root2};
        Error ->
            Error
    end.

%% #{Path => [{KeyHash, Entry}] (reversed)} for entries sorted by key; error if an
%% entry lies under none of the paths. O(entries x distinct path lengths).
group_by_path(Paths, Entries) ->
    Lens = lists:usort([byte_size(P) || P <- Paths]),
    Set = maps:from_list([{P, []} || P <- Paths]),
    try
        {ok, lists:foldl(
               fun({K, _} = En, Acc) ->
                       H = khash(K),
                       N = nibbles(H),
                       [P] = [binary:part(N, 0, L) || L <- Lens,
                                                      is_map_key(binary:part(N, 0, L), Set)],
                       Acc#{P => [{H, En} | maps:get(P, Acc, [])]}
               end, #{}, Entries)}
    catch
        error:{badmatch, _} -> error
    end.

read_paths(0, Rest, Acc) ->
    {lists:reverse(Acc), Rest};
read_paths(N, Bin, Acc) ->
    {L, R} = plexus_varint:read(Bin),
    <<P:L/binary, Rest/binary>> = R,
    read_paths(N - 1, Rest, [P | Acc]).
