# Mix builds plexus itself from this file (rebar3 uses rebar.config; both drive the same
# Makefile). Nothing is downloaded: a compiler step runs `make nif` for the C parts,
# Mix's own Erlang compiler builds erl/, its Elixir compiler the thin Elixir modules
# of lib/, and a last step puts the edoc docs into the
# beams so `h :plexus_orset.merge` works in IEx.

defmodule Mix.Tasks.Compile.PlexusMake do
  @moduledoc false
  # Runs the Makefile (priv/plexus_nif.so, and priv/plexus_cnode when its headers
  # are there). A missing -dev package stops the build with the Makefile's one line.
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    make = System.get_env("MAKE", "make")

    case System.cmd(make, ["--no-print-directory", "nif"],
           stderr_to_stdout: true,
           into: IO.stream(:stdio, :line)
         ) do
      {_, 0} ->
        # priv/ may not have existed when Mix laid out _build: link it now.
        Mix.Project.build_structure()
        {:ok, []}

      {_, status} ->
        Mix.raise("plexus: `#{make} nif` failed with exit status #{status}")
    end
  end
end

defmodule Mix.Tasks.Compile.PlexusDocs do
  @moduledoc false
  # EEP-48 doc chunks from the @doc comments of erl/*.erl, embedded in the beams.
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    escript = Path.join([to_string(:code.root_dir()), "bin", "escript"])
    args = ["doc/doc_chunks.escript", "erl", Mix.Project.compile_path()]
    {_, _} = System.cmd(escript, args, stderr_to_stdout: true, into: IO.stream(:stdio, :line))
    {:ok, []}
  end
end

defmodule Plexus.MixProject do
  use Mix.Project

  # One source of truth for the version and description: the OTP app resource file.
  {:ok, [{:application, :plexus, app_src}]} = :file.consult(~c"erl/plexus.app.src")
  @version to_string(Keyword.fetch!(app_src, :vsn))
  @description to_string(Keyword.fetch!(app_src, :description))

  def project do
    [
      app: :plexus,
      version: @version,
      description: @description,
      language: :erlang,
      erlc_paths: ["erl"],
      # The Elixir face (Plexus.ORSet, Plexus.Leader, ...): Mix only, rebar3 builds erl/.
      elixirc_paths: ["lib"],
      test_paths: ["test/ex"],
      erlc_include_path: "include",
      # No warnings_as_errors here: a newer compiler's new warning must not break
      # the build of an application that depends on plexus.
      erlc_options: [:debug_info],
      compilers: [:plexus_make] ++ Mix.compilers() ++ [:plexus_docs],
      deps: [],
      package: package()
    ]
  end

  def application do
    [
      mod: {:plexus_app, []},
      registered: [:plexus_sup, :plexus_topology],
      # As in erl/plexus.app.src: only the kubernetes discovery adapter needs inets,
      # ssl and public_key, so they are optional (OTP's optional_applications).
      # telemetry: optional as well (plexus_telemetry falls back to logger).
      # elixir: the Plexus.* modules of lib/ (a Mix build only; rebar3 builds no lib/).
      applications: [:kernel, :stdlib, :elixir, :inets, :ssl, :public_key, :telemetry],
      optional_applications: [:inets, :ssl, :public_key, :telemetry]
    ]
  end

  defp package do
    [
      licenses: ["Apache-2.0"],
      links: %{"Changelog" => "CHANGELOG.md", "Design" => "doc/DESIGN.md"},
      files: ~w(mix.exs rebar.config Makefile LICENSE CHANGELOG.md README.md .clang-format
                erl lib c_src include doc)
    ]
  end
end
