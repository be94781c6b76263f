defmodule Plexus.Comms do
  @moduledoc """
  Messaging by priority and link quality (`:plexus_comms`, Raxol's CommsManager).
  A message goes to the comms server of the same name on the destination node, whose
  subscribers receive `{:plexus_comms, from_node, priority, data}`.

      children = [{Plexus.Monitor, []}, {Plexus.Comms, degraded_ms: 150}]

  Priorities are `:critical | :high | :normal | :low`; link quality (from
  `Plexus.Monitor`, which must run on the node) is
  `:excellent | :good | :degraded | :poor | :disconnected`. Critical and high are
  always sent (queued while disconnected, bounded), normal is dropped on poor links,
  low on degraded or worse; a full queue drops too. Every drop is counted in `info/1`.

  Options (keyword list or map): `:name` (default `:plexus_comms`), `:excellent_ms`,
  `:good_ms`, `:degraded_ms` (RTT thresholds), `:rtt_stat`, `:queue_limit`,
  `:queue_bytes_limit`, `:retry_ms`, `:refresh_ms`.
  """

  @default :plexus_comms

  @type server :: :plexus_comms.server()
  @type priority :: :plexus_comms.priority()
  @type quality :: :plexus_comms.quality()
  @type reason :: :plexus_comms.reason()

  @doc "A child spec for a comms server."
  @spec child_spec(keyword | map) :: Supervisor.child_spec()
  def child_spec(opts \\ []), do: :plexus_comms.child_spec(opts)

  @doc "Starts a comms server linked to the caller."
  @spec start_link(keyword | map) :: {:ok, pid} | {:error, term}
  def start_link(opts \\ []), do: :plexus_comms.start_link(opts)

  @doc "Stops a comms server."
  @spec stop(server) :: :ok
  def stop(server \\ @default), do: :plexus_comms.stop(server)

  @doc """
  Sends `data` to `node` with a priority: `{:ok, :sent}`, `{:ok, :queued}` or
  `{:error, {:dropped, reason}}`. Never blocks on the network.
  """
  @spec send_msg(server, node, term, priority) ::
          {:ok, :sent | :queued} | {:error, {:dropped, reason}}
  def send_msg(server \\ @default, node, data, priority),
    do: :plexus_comms.send_msg(server, node, data, priority)

  @doc "The quality of the link to `node` (`:disconnected` for a node never heard of)."
  @spec link_quality(server, node) :: quality
  def link_quality(server \\ @default, node), do: :plexus_comms.get_link_quality(server, node)

  @doc "Counters since start: sent, queued, dropped (by reason), received, queues, links."
  @spec info(server) :: :plexus_comms.info()
  def info(server \\ @default), do: :plexus_comms.info(server)

  @doc "Sends the caller every message this server receives, until it exits or unsubscribes."
  @spec subscribe(server) :: :ok
  def subscribe(server \\ @default), do: :plexus_comms.subscribe(server)

  @doc "Ends the caller's subscription."
  @spec unsubscribe(server) :: :ok
  def unsubscribe(server \\ @default), do: :plexus_comms.unsubscribe(server)
end
