defmodule Plexus.DiscoveryMonitorTest do
  use ExUnit.Case, async: false

  describe "Plexus.Discovery" do
    test "keyword options, nil for undefined, get/lookup" do
      # A keyword list, as Elixir children are written (the Erlang API takes a map).
      start_supervised!({Plexus.Discovery, name: :ex_disco, adapter: :none})
      assert {:ok, []} = Plexus.Discovery.snapshot(:ex_disco)
      assert Plexus.Discovery.get(:ex_disco, "nobody@nowhere") == nil
      assert {:error, {:peer_not_found, _}} = Plexus.Discovery.lookup(:ex_disco, "nobody@nowhere")

      info = Plexus.Discovery.health_info(:ex_disco)
      assert %{status: _, known_peers_count: 0} = info
      # nothing has failed yet: :plexus_discovery says undefined, Elixir says nil
      assert info.last_error == nil
      refute :undefined in Map.values(info)

      assert {:ok, sub} = Plexus.Discovery.subscribe(:ex_disco, self())
      assert {:ok, _sub2, []} = Plexus.Discovery.subscribe_snapshot(:ex_disco, fn _ -> :ok end)
      assert :ok = Plexus.Discovery.unsubscribe(:ex_disco, sub)
    end

    test "the application's default server answers out of the box" do
      # mix test started :plexus, and with it the default beam discovery server
      assert {:ok, peers} = Plexus.Discovery.snapshot()
      assert length(peers) == length(Node.list())
      assert %{adapter: :plexus_discovery_beam} = Plexus.Discovery.health_info()
    end

    test "child_spec takes a keyword list or a map" do
      assert %{id: :ex_disco_a} = Plexus.Discovery.child_spec(name: :ex_disco_a)
      assert %{id: :ex_disco_b} = Plexus.Discovery.child_spec(%{name: :ex_disco_b})
    end
  end

  describe "Plexus.Monitor" do
    test "keyword options; health/1 is nil for a node it does not know" do
      start_supervised!({Plexus.Monitor, ping_interval_ms: 100, suspect_after_ms: 500})
      assert Plexus.Monitor.health(:"ghost@127.0.0.1") == nil
      assert is_list(Plexus.Monitor.list_all())
      assert is_list(Plexus.Monitor.list_healthy())
      assert is_list(Plexus.Monitor.list_suspect())
      assert :ok = Plexus.Monitor.subscribe()
      assert :ok = Plexus.Monitor.unsubscribe()
    end
  end
end
