defmodule Plexus.Overlay do
  @moduledoc """
  A replicated overlay of entities and waypoints (`:plexus_overlay`, Raxol's
  TacticalOverlay): entities are last-writer-wins values, waypoints an add-wins set
  keyed by id; local changes travel as one batched delta per `sync_interval_ms` and
  Merkle anti-entropy repairs what was lost.

      children = [{Plexus.Overlay, name: :tactical, sync_interval_ms: 200}]

  Options (keyword list or map): `:name` (default `:plexus_overlay`; every node of one
  overlay uses the same name), `:sync_interval_ms` (500), `:anti_entropy_interval_ms`
  (60000), `:peers` (`:connected`, a list of nodes, or a `Plexus.Discovery` server),
  `:max_batch_ops`, `:max_pending_ops`, `:ae_timeout_ms`. Every function takes the
  server first, or uses the default name when it is left out.

  A subscriber receives `{:overlay_event, event}` with `event` one of
  `{:entity_updated, id, attrs}`, `{:entity_removed, id}`,
  `{:waypoint_added, id, waypoint}`, `{:waypoint_removed, id}`, once per change that
  becomes visible on this node (learnt from peers too).
  """

  @default :plexus_overlay

  @type server :: :plexus_overlay.server()
  @type event :: :plexus_overlay.event()

  @doc "A child spec; its id carries the overlay's name, so several can share a supervisor."
  @spec child_spec(keyword | map) :: Supervisor.child_spec()
  def child_spec(opts \\ []), do: :plexus_overlay.child_spec(opts)

  @doc "Starts an overlay linked to the caller."
  @spec start_link(keyword | map) :: {:ok, pid} | {:error, term}
  def start_link(opts \\ []), do: :plexus_overlay.start_link(opts)

  @doc "Stops an overlay."
  @spec stop(server) :: :ok
  def stop(server \\ @default), do: :plexus_overlay.stop(server)

  @doc "Sets entity `id` to `attrs` (last writer wins)."
  @spec update_entity(server, term, term) :: :ok
  def update_entity(server \\ @default, id, attrs),
    do: :plexus_overlay.update_entity(server, id, attrs)

  @doc "Removes entity `id` (a concurrent update elsewhere wins over the remove)."
  @spec remove_entity(server, term) :: :ok
  def remove_entity(server \\ @default, id), do: :plexus_overlay.remove_entity(server, id)

  @doc "Adds (or replaces) the waypoint with id `id` (add wins over a concurrent remove)."
  @spec add_waypoint(server, term, term) :: :ok
  def add_waypoint(server \\ @default, id, waypoint),
    do: :plexus_overlay.add_waypoint(server, id, waypoint)

  @doc "Removes the waypoint with id `id`."
  @spec remove_waypoint(server, term) :: :ok
  def remove_waypoint(server \\ @default, id), do: :plexus_overlay.remove_waypoint(server, id)

  @doc "Entity `id`'s attributes: `{:ok, attrs}` or `:error` when there is none."
  @spec fetch_entity(server, term) :: {:ok, term} | :error
  def fetch_entity(server \\ @default, id) do
    case :plexus_overlay.get_entity(server, id) do
      {:ok, attrs} -> {:ok, attrs}
      {:error, :not_found} -> :error
    end
  end

  @doc "Entity `id`'s attributes, or `nil` when there is none (see `fetch_entity/2`)."
  @spec get_entity(server, term) :: term
  def get_entity(server \\ @default, id) do
    case fetch_entity(server, id) do
      {:ok, attrs} -> attrs
      :error -> nil
    end
  end

  @doc "Every entity, as a map of id to attributes."
  @spec get_all_entities(server) :: map
  def get_all_entities(server \\ @default), do: :plexus_overlay.get_all_entities(server)

  @doc "Every waypoint, as a map of id to waypoint."
  @spec get_all_waypoints(server) :: map
  def get_all_waypoints(server \\ @default), do: :plexus_overlay.get_all_waypoints(server)

  @doc "Sends the caller `{:overlay_event, event}` messages; the reference unsubscribes."
  @spec subscribe(server) :: {:ok, reference}
  def subscribe(server \\ @default), do: :plexus_overlay.subscribe(server)

  @doc "Ends a subscription."
  @spec unsubscribe(server, reference) :: :ok
  def unsubscribe(server \\ @default, ref), do: :plexus_overlay.unsubscribe(server, ref)

  @doc "Counters and sizes: peers, pending ops, deltas sent and dropped, anti-entropy."
  @spec info(server) :: map
  def info(server \\ @default), do: :plexus_overlay.info(server)

  @doc "The replica's canonical bytes (equal on every converged node)."
  @spec to_binary(server) :: binary
  def to_binary(server \\ @default), do: :plexus_overlay.to_binary(server)

  @doc "Sends the pending batch now instead of at the next sync tick."
  @spec sync_now(server) :: :ok
  def sync_now(server \\ @default), do: :plexus_overlay.sync_now(server)

  @doc "Starts an anti-entropy exchange with every peer now."
  @spec anti_entropy_now(server) :: :ok
  def anti_entropy_now(server \\ @default), do: :plexus_overlay.anti_entropy_now(server)
end
