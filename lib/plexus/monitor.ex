defmodule Plexus.Monitor do
  @moduledoc """
  Node health (`:plexus_monitor`): pings every connected node (or asks the C node)
  and classifies it `:healthy`, `:suspect` or `:down` with round-trip statistics.

      children = [{Plexus.Monitor, ping_interval_ms: 1000}]

  Options (keyword list or map): `:source` (`:beam` or `:cnode`),
  `:ping_interval_ms`, `:suspect_after_ms`, `:down_after_ms`, `:nodes`. The server is
  registered as `:plexus_monitor`; one runs per node. A subscriber receives
  `{:plexus_event, {:node_up, node}}`, `{:plexus_event, {:node_down, node}}` and
  `{:plexus_event, {:status_change, node, from, to}}`.
  """

  @type node_name :: :plexus_monitor.node_name()
  @type health :: :plexus_monitor.health()
  @type status :: :plexus_monitor.status()

  @doc "A child spec for the monitor."
  @spec child_spec(keyword | map) :: Supervisor.child_spec()
  def child_spec(opts \\ []), do: :plexus_monitor.child_spec(to_map(opts))

  @doc "Starts the monitor linked to the caller."
  @spec start_link(keyword | map) :: {:ok, pid} | {:error, term}
  def start_link(opts \\ []), do: :plexus_monitor.start_link(to_map(opts))

  @doc "Stops the monitor."
  @spec stop() :: :ok
  defdelegate stop(), to: :plexus_monitor

  @doc "The health of one node (an atom or a `\"name@host\"` binary), or `nil` when unknown."
  @spec health(node_name) :: health | nil
  def health(node) do
    case :plexus_monitor.get_health(node) do
      {:ok, health} -> health
      {:error, :not_found} -> nil
    end
  end

  @doc "The nodes that answer in time."
  @spec list_healthy() :: [node_name]
  defdelegate list_healthy(), to: :plexus_monitor

  @doc "The nodes that answer late or not at all but are not down yet."
  @spec list_suspect() :: [node_name]
  defdelegate list_suspect(), to: :plexus_monitor

  @doc "Every node the monitor knows (down ones too), with its health."
  @spec list_all() :: [health]
  defdelegate list_all(), to: :plexus_monitor

  @doc "Sends the caller `{:plexus_event, event}` messages until it exits or unsubscribes."
  @spec subscribe() :: :ok
  defdelegate subscribe(), to: :plexus_monitor

  @doc "Ends the caller's subscription."
  @spec unsubscribe() :: :ok
  defdelegate unsubscribe(), to: :plexus_monitor

  @doc "Watches a node that is not connected yet (`:beam` source): pings connect to it."
  @spec watch(node) :: :ok
  defdelegate watch(node), to: :plexus_monitor

  # Keyword lists become the map :plexus_monitor takes (it may accept lists itself
  # too; a map passes either way).
  defp to_map(opts) when is_list(opts), do: Map.new(opts)
  defp to_map(%{} = opts), do: opts
end
