defmodule Plexus.Discovery do
  @moduledoc """
  Peer discovery (`:plexus_discovery`) with Elixir conventions: keyword options,
  `nil` where the Erlang API says `undefined`.

  Every function without a `server` argument talks to the default server, registered
  as `:plexus_discovery`, which the `:plexus` application starts (`beam` adapter)
  unless configured with `config :plexus, discovery: false` or given servers of its
  own (see the README). Start more servers, under other names, in your own supervisor:

      children = [{Plexus.Discovery, name: :my_disco, adapter: :dns, custom: %{...}}]

  A subscriber pid receives `{:plexus_discovery, event}` with `event` one of
  `{:peer_up, peer, metadata}`, `{:peer_update, peer, metadata}` and
  `{:peer_down, peer, reason}`; a subscribed fun is called with the event.
  Options and adapters: `h :plexus_discovery`.
  """

  @type server :: :plexus_discovery.server()
  @type peer :: :plexus_discovery.peer()
  @type peer_id :: :plexus_discovery.peer_id()
  @type event :: :plexus_discovery.event()
  @type error :: :plexus_discovery.error()
  @type sub_id :: :plexus_discovery.sub_id()
  @typedoc "`:name`, `:adapter`, `:sync_interval_ms`, `:seed_peers`, `:custom`, ... as a keyword list or map."
  @type options :: keyword | map

  @doc "A child spec for a discovery server (the child id is its name)."
  @spec child_spec(options) :: Supervisor.child_spec()
  def child_spec(opts \\ []), do: :plexus_discovery.child_spec(to_map(opts))

  @doc "Starts a discovery server linked to the caller."
  @spec start_link(options) :: {:ok, pid} | {:error, term}
  def start_link(opts \\ []), do: :plexus_discovery.start_link(to_map(opts))

  @doc "Stops a server (default: the application's)."
  @spec stop(server) :: :ok | {:error, error}
  def stop(server \\ :plexus_discovery), do: :plexus_discovery.stop(server)

  @doc "Subscribes a pid or a one-argument fun to a server's events."
  @spec subscribe(server, pid | (event -> term)) :: {:ok, sub_id} | {:error, error}
  def subscribe(server \\ :plexus_discovery, subscriber),
    do: :plexus_discovery.subscribe(server, subscriber)

  @doc "A snapshot and a subscription taken atomically: every later change is an event."
  @spec subscribe_snapshot(server, pid | (event -> term)) ::
          {:ok, sub_id, [peer]} | {:error, error}
  def subscribe_snapshot(server \\ :plexus_discovery, subscriber),
    do: :plexus_discovery.subscribe_snapshot(server, subscriber)

  @doc "Removes a subscription (`:ok` also when it is gone)."
  @spec unsubscribe(server, sub_id) :: :ok | {:error, error}
  def unsubscribe(server \\ :plexus_discovery, sub_id),
    do: :plexus_discovery.unsubscribe(server, sub_id)

  @doc "The peers known now, sorted by id."
  @spec snapshot(server) :: {:ok, [peer]} | {:error, error}
  def snapshot(server \\ :plexus_discovery), do: :plexus_discovery.snapshot(server)

  @doc "One peer by id (a binary or a node name), or `nil`."
  @spec get(server, peer_id | node) :: peer | nil
  def get(server \\ :plexus_discovery, id) do
    case :plexus_discovery.lookup(server, id) do
      {:ok, peer} -> peer
      {:error, _} -> nil
    end
  end

  @doc "One peer by id: `{:ok, peer}` or `{:error, {:peer_not_found, id}}`."
  @spec lookup(server, peer_id | node) :: {:ok, peer} | {:error, error}
  def lookup(server \\ :plexus_discovery, id), do: :plexus_discovery.lookup(server, id)

  @doc "`:up`, `{:degraded, error}` or `{:down, error}`."
  @spec health(server) :: :plexus_discovery.health()
  def health(server \\ :plexus_discovery), do: :plexus_discovery.health(server)

  @doc """
  `%{status, last_sync_time_ms, last_error, known_peers_count, adapter, adapter_info}`,
  with `nil` for a sync or an error that has not happened.
  """
  @spec health_info(server) :: map | {:error, error}
  def health_info(server \\ :plexus_discovery) do
    case :plexus_discovery.health_info(server) do
      %{} = info -> Map.new(info, fn {k, v} -> {k, nil_for_undefined(v)} end)
      {:error, _} = error -> error
    end
  end

  @doc "Runs a sync now and waits for it."
  @spec sync_now(server) :: :ok | {:error, error}
  def sync_now(server \\ :plexus_discovery), do: :plexus_discovery.sync_now(server)

  defp to_map(opts) when is_list(opts), do: Map.new(opts)
  defp to_map(%{} = opts), do: opts

  defp nil_for_undefined(:undefined), do: nil
  defp nil_for_undefined(other), do: other
end
