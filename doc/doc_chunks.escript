#!/usr/bin/env escript
%% -*- erlang -*-
%% Puts EEP-48 documentation (a "Docs" chunk made by edoc's chunk doclet from the
%% @doc comments of erl/*.erl) into the compiled .beam files, so `h(plexus_orset)`
%% in erl, `h :plexus_orset.merge` in IEx and code:get_doc/1 work wherever the beams
%% go: a rebar3 or Mix dependency, a release. The chunk lives inside the beam rather
%% than in doc/chunks/ because neither rebar3 (top-level app) nor Mix nor a release
%% copies a doc/ directory next to ebin/.
%%
%% Usage: doc_chunks.escript SRC_DIR EBIN_DIR...
%% Only modules of SRC_DIR get docs (tests and benchmarks live elsewhere and stay out).
%% A beam that already carries docs newer than its source is left alone. Docs are a
%% convenience: when edoc is missing or fails, this prints one line and exits 0, so a
%% dependent's build never breaks on documentation.
-mode(compile).

main([SrcDir | EbinDirs]) ->
    Sources = filelib:wildcard(filename:join(SrcDir, "*.erl")),
    Todo = [{Src, Beam} || Ebin <- EbinDirs, filelib:is_dir(Ebin), Src <- Sources,
                           Beam <- [beam_of(Ebin, Src)], needs_docs(Src, Beam)],
    case Todo of
        [] -> ok;
        _ -> run(Todo)
    end;
main(_) ->
    io:format(standard_error, "usage: doc_chunks.escript SRC_DIR EBIN_DIR...~n", []),
    halt(2).

beam_of(Ebin, Src) ->
    filename:join(Ebin, filename:basename(Src, ".erl") ++ ".beam").

needs_docs(Src, Beam) ->
    filelib:is_regular(Beam) andalso
        not (has_docs(Beam) andalso filelib:last_modified(Beam) >= filelib:last_modified(Src)).

has_docs(Beam) ->
    case beam_lib:chunks(Beam, ["Docs"], [allow_missing_chunks]) of
        {ok, {_, [{"Docs", Bin}]}} when is_binary(Bin) -> true;
        _ -> false
    end.

run(Todo) ->
    Tmp = filename:join(tmp_dir(), "plexus_doc_chunks_" ++ os:getpid()),
    Sources = lists:usort([Src || {Src, _} <- Todo]),
    try
        case code:which(edoc) of
            non_existing -> skip("edoc is not installed (Debian: erlang-edoc)");
            _ -> generate(Sources, Tmp, Todo)
        end
    catch Class:Reason ->
            skip(io_lib:format("edoc failed: ~p:~0p", [Class, Reason]))
    after
        _ = file:del_dir_r(Tmp)
    end.

generate(Sources, Tmp, Todo) ->
    ok = edoc:files(Sources, [{doclet, edoc_doclet_chunks}, {layout, edoc_layout_chunks},
                              {dir, Tmp}, {preprocess, true}, {includes, ["include"]},
                              {report_missing_types, false}]),
    Added = [Beam || {Src, Beam} <- Todo, embed(chunk_file(Tmp, Src), Beam) =:= ok],
    io:format("  DOCS   ~b modules~n", [length(Added)]).

chunk_file(Tmp, Src) ->
    filename:join([Tmp, "chunks", filename:basename(Src, ".erl") ++ ".chunk"]).

embed(ChunkFile, Beam) ->
    {ok, Docs} = file:read_file(ChunkFile),
    {docs_v1, _, _, _, _, _, _} = binary_to_term(Docs), % the EEP-48 shape, checked
    {ok, _, Chunks} = beam_lib:all_chunks(Beam),
    {ok, NewBeam} = beam_lib:build_module([C || {Id, _} = C <- Chunks, Id =/= "Docs"]
                                          ++ [{"Docs", Docs}]),
    %% Written beside it and renamed over it: a VM loading the module meanwhile (a test
    %% run beside a build, as make test runs stages) reads the old file or the new one,
    %% never half of one.
    Tmp = Beam ++ ".doc-" ++ os:getpid(),
    case file:write_file(Tmp, NewBeam) == ok andalso file:rename(Tmp, Beam) of
        ok -> ok;
        Failed -> _ = file:delete(Tmp), Failed
    end.

skip(Why) ->
    io:format("plexus: docs not embedded (~s); the app works without them~n", [Why]).

tmp_dir() ->
    case os:getenv("TMPDIR") of
        false -> "/tmp";
        "" -> "/tmp";
        D -> D
    end.
