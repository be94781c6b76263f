%% @private
%% @doc The durable state of a `plexus_leader' process: the Raft term and vote with the
%% membership (its version, the term it was made in, the voters), in one file per
%% process and cluster, and the `.ran' marker that tells a deleted file from a node
%% that never ran. Only file I/O lives here; what to save and when is decided by
%% `plexus_leader_policy' and done by `plexus_leader'.
%%
%% Format 1: magic, 1, term, voted_for, CRC-32 of what precedes it.
%% Format 2: magic, 2, term, voted_for, membership version and the term it was made
%% in, member count, then each member as a 16-bit length and its node name in UTF-8,
%% CRC-32 of what precedes it. The membership is written in the same file as the term
%% and vote, so one rename moves both atomically: a node never restarts with a vote
%% from one moment and voters from another. Format 1 is still read.
-module(plexus_leader_hard_state).

-export([file/3, read/1, write/3, restore/3, marker_file/1]).

-export_type([config/0]).

%% Membership: {Version, Term it was made in, every voter's node sorted}.
-type config() :: {Version :: non_neg_integer(), ConfigTerm :: non_neg_integer(), [node()]}.

-define(HS_MAGIC, "PXHS").
-define(HS_VERSION, 2).
%% A term and vote the machine takes back (plexus_election:new/1): a term of at most
%% PLEXUS_ELECTION_TERM_MAX, no vote in term 0. Anything else was reported as
%% {invalid_configuration, {bootstrap, invalid_argument}}, an option the operator gave.
-define(MACHINE_HOLDS(Term, Voted), (Term < 1 bsl 63 andalso (Term > 0 orelse Voted =:= 0))).
-define(U64(X), (is_integer(X) andalso X >= 0 andalso X < 1 bsl 64)).

%% @doc Where the hard state of `Name' in cluster `Cluster' lives under `DataDir' for
%% this node.
-spec file(file:filename_all(), atom(), term()) -> file:filename_all().
file(DataDir, Name, Cluster) ->
    Key = plexus_election:cluster_key(Cluster),
    filename:join([DataDir, "plexus_leader", safe(node()),
                   safe(Name) ++ "-" ++ hex64(Key) ++ ".hs"]).

%% 16 lower-case hex digits.
hex64(K) -> tl(string:lowercase(integer_to_list(K + (1 bsl 64), 16))).

%% Node and process names are atoms of the most permissive kind; keep file names tame:
%% every UTF-8 byte outside [A-Za-z0-9_.@-] becomes %XX (so distinct names stay distinct).
safe(Atom) ->
    lists:flatmap(fun(C) when C >= $a, C =< $z; C >= $A, C =< $Z; C >= $0, C =< $9;
                              C =:= $_; C =:= $-; C =:= $.; C =:= $@ -> [C];
                     (C) -> lists:flatten(io_lib:format("%~2.16.0B", [C]))
                  end, binary_to_list(atom_to_binary(Atom, utf8))).

%% @doc Reads a hard-state file: the term and vote, and the membership (`none' in a
%% format-1 file). `{error, corrupt}' for a damaged file, `{error, enoent}' for none.
-spec read(file:filename_all()) ->
    {ok, plexus_election:hard_state(), config() | none} | {error, term()}.
read(File) ->
    case file:read_file(File) of
        {ok, Bin} when byte_size(Bin) >= 4 ->
            Body = binary:part(Bin, 0, byte_size(Bin) - 4),
            <<Crc:32>> = binary:part(Bin, byte_size(Bin), -4),
            case erlang:crc32(Body) =:= Crc andalso parse(Body) of
                {ok, Hard, Config} -> {ok, Hard, Config};
                _ -> {error, corrupt}
            end;
        {ok, _} -> {error, corrupt};
        {error, _} = E -> E
    end.

parse(<<?HS_MAGIC, 1, Term:64, Voted:64>>) when ?MACHINE_HOLDS(Term, Voted) ->
    {ok, {Term, Voted}, none};
parse(<<?HS_MAGIC, 2, Term:64, Voted:64, Ver:64, CTerm:64, N:16, Rest/binary>>)
  when ?MACHINE_HOLDS(Term, Voted) ->
    case parse_members(N, Rest, []) of
        {ok, Members} -> {ok, {Term, Voted}, {Ver, CTerm, Members}};
        error -> error
    end;
parse(_) ->
    error.

%% Node names are atoms already (this file is our own, not input from the network).
%% A name that is no atom (not UTF-8, over 255 characters) is damage too: it raised
%% badarg or system_limit out of read/1 instead of `{error, corrupt}'.
parse_members(0, <<>>, Acc) -> {ok, lists:sort(Acc)};
parse_members(N, <<Len:16, Name:Len/binary, Rest/binary>>, Acc) when N > 0, Len > 0 ->
    try binary_to_atom(Name, utf8) of
        A -> parse_members(N - 1, Rest, [A | Acc])
    catch error:_ -> error
    end;
parse_members(_, _, _) -> error.

%% @doc Writes the hard state with a membership (format 2): temp file, fsync, rename,
%% fsync of the directory (without the last, a power cut after the rename may bring
%% the old file back: an older term or vote).
-spec write(file:filename_all(), plexus_election:hard_state(), config()) ->
    ok | {error, term()}.
write(File, {Term, Voted}, {Ver, CTerm, _}) when not (?U64(Term) andalso ?U64(Voted) andalso
                                                     ?U64(Ver) andalso ?U64(CTerm)) ->
    %% A binary field would silently keep the low 64 bits: a file that says something
    %% else than what was decided must never be written.
    {error, {out_of_range, File}};
write(File, {Term, Voted}, {Ver, CTerm, Members}) ->
    Names = [atom_to_binary(M, utf8) || M <- lists:usort(Members)],
    Body = iolist_to_binary([<<?HS_MAGIC, ?HS_VERSION, Term:64, Voted:64, Ver:64, CTerm:64,
                               (length(Names)):16>>,
                             [<<(byte_size(B)):16, B/binary>> || B <- Names]]),
    Tmp = suffixed(File, ".tmp"),
    maybe_chain([fun() -> write_synced(Tmp, <<Body/binary, (erlang:crc32(Body)):32>>) end,
                 fun() -> file:rename(Tmp, File) end,
                 fun() -> sync_dir(filename:dirname(File)) end]).

maybe_chain([]) -> ok;
maybe_chain([Step | Rest]) ->
    case Step() of
        ok -> maybe_chain(Rest);
        {error, _} = E -> E
    end.

write_synced(File, Bin) ->
    case file:open(File, [write, raw, binary]) of
        {ok, Fd} ->
            R = case file:write(Fd, Bin) of
                    ok -> file:sync(Fd);
                    E -> E
                end,
            _ = file:close(Fd),
            R;
        Err ->
            Err
    end.

sync_dir(Dir) ->
    Bin = case Dir of
              B when is_binary(B) -> B;
              L -> unicode:characters_to_binary(L, unicode, file:native_name_encoding())
          end,
    plexus_nif:fsync_dir(Bin).

%% @doc The saved hard state and membership of a starting process; where none is
%% saved, the membership of the `bootstrap' nodes `Boot' and this one, version 0. The saved membership wins over
%% `bootstrap', which only seeds a node that has none (issue 8: a restart with the
%% bootstrap list after joins counted votes against a smaller quorum than its peers
%% and led a term that a majority of the real voters also led). The marker file next
%% to the hard state records that the node ran: if the hard state is gone but the
%% marker is there, someone deleted it. The node then says so loudly and sits out one
%% election timeout (hard state `none') rather than start at term 0 with no vote, the
%% way a node votes twice in a term. Throws `{hard_state, File, Reason}' when the
%% state cannot be read or the marker written.
-spec restore(atom(), file:filename_all(), [node()]) ->
    {plexus_election:hard_state() | none, config()}.
restore(Name, File, Boot) ->
    case filelib:ensure_dir(File) of
        ok -> ok;
        {error, DirErr} -> throw({hard_state, File, DirErr})
    end,
    Marker = marker_file(File),
    Seed = {0, 0, lists:usort([node() | Boot])},
    case read(File) of
        {ok, Hard, none} ->
            {Hard, Seed};
        {ok, Hard, {_, _, Members} = Config} ->
            [logger:notice("~p ~p: saved membership ~p replaces bootstrap ~p",
                           [plexus_leader, Name, Members, Boot])
             || Boot =/= [], lists:usort([node() | Boot]) =/= Members],
            {Hard, Config};
        {error, enoent} ->
            case filelib:is_regular(Marker) of
                true ->
                    logger:error("~p ~p: hard state ~ts is missing although this node ran "
                                 "before (~ts exists). Without it the node could vote twice "
                                 "in a term and two leaders could share it; it sits out one "
                                 "election timeout and rejoins with the bootstrap voters. "
                                 "Never delete this file.", [plexus_leader, Name, File, Marker]),
                    {none, Seed};
                false ->
                    case file:write_file(Marker, <<>>) of
                        ok -> {{0, 0}, Seed};
                        {error, MErr} -> throw({hard_state, Marker, MErr})
                    end
            end;
        {error, R} ->
            throw({hard_state, File, R})
    end.

%% @doc The marker next to a hard-state file, written the first time the node runs.
-spec marker_file(file:filename_all()) -> file:filename_all().
marker_file(File) -> suffixed(File, ".ran").

suffixed(B, Suffix) when is_binary(B) -> <<B/binary, (list_to_binary(Suffix))/binary>>;
suffixed(L, Suffix) -> L ++ Suffix.
