defmodule Plexus.Leader do
  @moduledoc """
  Leader election (`:plexus_leader`) for Elixir modules.

      defmodule MyApp.Scheduler do
        use Plexus.Leader

        @impl true
        def init(arg), do: {:ok, %{arg: arg, leading: false}}

        @impl true
        def handle_become_leader(state), do: {:ok, %{state | leading: true}}

        @impl true
        def handle_become_follower(_leader_pid_or_nil, state), do: {:ok, %{state | leading: false}}
      end

      children = [
        {MyApp.Scheduler, name: :scheduler, bootstrap: [:"a@h", :"b@h", :"c@h"],
                          data_dir: "/var/lib/my_app", init_arg: :some_arg}
      ]

  `use Plexus.Leader` declares the `:plexus_leader` behaviour, so `@impl true` is
  checked against its callbacks, and defines (all overridable):

    * `child_spec/1` and `start_link/1` taking a keyword list or a map: `:name` (the locally
      registered name, default the module), `:init_arg` (passed to `init/1`, default
      `[]`); every other key is a `:plexus_leader` option (`:bootstrap`, `:data_dir`,
      `:cluster_id`, `:election_timeout_min`, ...; see `h :plexus_leader`). Options
      given to `use Plexus.Leader` are merged into the child spec (`restart:`,
      `shutdown:`, `id:`).
    * no-op `handle_become_leader/1`, `handle_become_follower/2`,
      `handle_peer_joined/2`, `handle_peer_left/2` and `handle_term_changed/3`
      (`{:ok, state}`).

  Without `:data_dir` (and no `:plexus` app env `data_dir`), the hard state goes to a
  directory named after the release, else after the application that starts the
  leader (`Path.join(:filename.basedir(:user_data, "plexus"), name)`); with neither
  (a leader started from IEx with a module of no application), `start_link/1`
  returns `{:error, {:data_dir_required, why}}`. The directory chosen is logged.

  `init/1` is yours to write. `handle_call/3`, `handle_info/2` and `terminate/2` are
  optional as in `GenServer`; a call the module does not handle is answered
  `{:error, {:unknown_call, request}}`.

  `handle_become_follower/2` receives the leader's pid, or `nil` when no leader is
  known (the Erlang behaviour says `undefined`; `use Plexus.Leader` translates).

  The functions of this module take the registered name, the pid or `{name, node}`.
  Leadership is not a lease: fence side effects outside the cluster by `term/1`.
  """

  @typedoc "The registered name, the pid, or `{name, node}`."
  @type server :: :plexus_leader.server()
  @typedoc "A voter: the leader process's registered name and its node."
  @type peer :: :plexus_leader.peer()

  @doc false
  defmacro __using__(using_opts) do
    quote location: :keep, bind_quoted: [using_opts: using_opts] do
      @behaviour :plexus_leader
      @before_compile Plexus.Leader

      @doc """
      A child spec starting this leader (`Plexus.Leader.start_link/3`). Options:
      `:name`, `:init_arg`, and the `:plexus_leader` options.
      """
      @spec child_spec(keyword | map) :: Supervisor.child_spec()
      def child_spec(opts) when is_list(opts) or is_map(opts) do
        {name, _init_arg, _leader_opts} = Plexus.Leader.split_opts(__MODULE__, opts)

        default = %{
          id: {:plexus_leader, name},
          start: {__MODULE__, :start_link, [opts]},
          type: :worker,
          modules: [:plexus_leader, __MODULE__]
        }

        Supervisor.child_spec(default, unquote(Macro.escape(using_opts)))
      end

      @doc "Starts this leader linked to the caller; options as in `child_spec/1`."
      @spec start_link(keyword | map) :: {:ok, pid} | :ignore | {:error, term}
      def start_link(opts \\ []) when is_list(opts) or is_map(opts) do
        {name, init_arg, leader_opts} = Plexus.Leader.split_opts(__MODULE__, opts)
        :plexus_leader.start_link(name, __MODULE__, init_arg, leader_opts)
      end

      @doc false
      def handle_become_leader(state), do: {:ok, state}
      @doc false
      def handle_become_follower(_leader, state), do: {:ok, state}
      @doc false
      def handle_peer_joined(_peer, state), do: {:ok, state}
      @doc false
      def handle_peer_left(_peer, state), do: {:ok, state}
      @doc false
      def handle_term_changed(_old_term, _new_term, state), do: {:ok, state}

      defoverridable child_spec: 1,
                     start_link: 1,
                     handle_become_leader: 1,
                     handle_become_follower: 2,
                     handle_peer_joined: 2,
                     handle_peer_left: 2,
                     handle_term_changed: 3
    end
  end

  # The module's handle_become_follower/2 (its own or the default) is wrapped so that
  # it sees `nil` where :plexus_leader passes `undefined`.
  @doc false
  defmacro __before_compile__(_env) do
    quote do
      defoverridable handle_become_follower: 2

      def handle_become_follower(leader, state) do
        super(Plexus.Leader.nil_for_undefined(leader), state)
      end
    end
  end

  @doc false
  @spec split_opts(module, keyword | map) :: {atom, term, keyword}
  def split_opts(module, opts) when is_map(opts), do: split_opts(module, Map.to_list(opts))

  def split_opts(module, opts) do
    {name, opts} = Keyword.pop(opts, :name, module)
    {init_arg, opts} = Keyword.pop(opts, :init_arg, [])
    {name, init_arg, opts}
  end

  @doc false
  def nil_for_undefined(:undefined), do: nil
  def nil_for_undefined(other), do: other

  @doc """
  Starts `module` as a leader registered as `name`, linked to the caller.
  `opts` is a keyword list (or map) of `:plexus_leader` options.
  """
  @spec start_link(atom, module, term, keyword | map) :: {:ok, pid} | :ignore | {:error, term}
  def start_link(name, module, init_arg, opts \\ []) do
    :plexus_leader.start_link(name, module, init_arg, opts)
  end

  @doc "Stops the leader process (peers are told, so a leader is replaced at once)."
  @spec stop(server) :: :ok
  defdelegate stop(server), to: :plexus_leader

  @doc "Whether this node's process leads."
  @spec leader?(server) :: boolean
  def leader?(server), do: :plexus_leader.is_leader(server)

  @doc "The leader's pid as this node knows it, or `nil`."
  @spec leader(server) :: pid | nil
  def leader(server), do: nil_for_undefined(:plexus_leader.leader(server))

  @doc "The current term (fence side effects by it)."
  @spec term(server) :: non_neg_integer
  defdelegate term(server), to: :plexus_leader

  @doc "The other voters, as `{name, node}`, sorted."
  @spec peers(server) :: [peer]
  defdelegate peers(server), to: :plexus_leader

  @doc "The number of other voters."
  @spec peer_count(server) :: non_neg_integer
  defdelegate peer_count(server), to: :plexus_leader

  @doc "Whether a node, `{name, node}` or pid is one of the other voters."
  @spec peer?(server, node | peer | pid) :: boolean
  def peer?(server, peer), do: :plexus_leader.has_peer(server, peer)

  @doc "Adds a voter (a membership change the leader commits)."
  @spec join(server, node | peer) :: :ok | {:error, term}
  defdelegate join(server, peer), to: :plexus_leader

  @doc "Removes a voter."
  @spec leave(server, node | peer) :: :ok | {:error, term}
  defdelegate leave(server, peer), to: :plexus_leader

  @doc "Sends `message` (seen by `handle_info/2` there) to the process of every other voter."
  @spec broadcast(server, term) :: :ok
  defdelegate broadcast(server, message), to: :plexus_leader

  @doc "The process's view: role, term, leader, voters, timings."
  @spec info(server) :: map
  defdelegate info(server), to: :plexus_leader

  @doc "A call to the module's `handle_call/3`."
  @spec call(server, term, timeout) :: term
  def call(server, request, timeout \\ 5000), do: GenServer.call(server, request, timeout)
end
