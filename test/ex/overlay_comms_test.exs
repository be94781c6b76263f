defmodule Plexus.OverlayCommsTest do
  use ExUnit.Case, async: false

  describe "Plexus.Overlay" do
    test "keyword options, entities and waypoints, events, nil for a missing entity" do
      start_supervised!({Plexus.Overlay, name: :ex_overlay, peers: [], sync_interval_ms: 50})
      assert {:ok, ref} = Plexus.Overlay.subscribe(:ex_overlay)

      assert :ok = Plexus.Overlay.update_entity(:ex_overlay, :unit1, %{pos: {1, 2}})
      assert :ok = Plexus.Overlay.add_waypoint(:ex_overlay, :wp1, {3, 4})
      assert Plexus.Overlay.get_entity(:ex_overlay, :unit1) == %{pos: {1, 2}}
      assert {:ok, %{pos: {1, 2}}} = Plexus.Overlay.fetch_entity(:ex_overlay, :unit1)
      assert Plexus.Overlay.get_entity(:ex_overlay, :ghost) == nil
      assert Plexus.Overlay.fetch_entity(:ex_overlay, :ghost) == :error
      assert Plexus.Overlay.get_all_entities(:ex_overlay) == %{unit1: %{pos: {1, 2}}}
      assert Plexus.Overlay.get_all_waypoints(:ex_overlay) == %{wp1: {3, 4}}

      assert_receive {:overlay_event, {:entity_updated, :unit1, %{pos: {1, 2}}}}, 5000
      assert_receive {:overlay_event, {:waypoint_added, :wp1, {3, 4}}}, 5000

      assert :ok = Plexus.Overlay.remove_entity(:ex_overlay, :unit1)
      assert :ok = Plexus.Overlay.remove_waypoint(:ex_overlay, :wp1)
      assert_receive {:overlay_event, {:entity_removed, :unit1}}, 5000
      assert_receive {:overlay_event, {:waypoint_removed, :wp1}}, 5000
      assert Plexus.Overlay.get_all_entities(:ex_overlay) == %{}

      assert is_binary(Plexus.Overlay.to_binary(:ex_overlay))
      assert is_map(Plexus.Overlay.info(:ex_overlay))
      assert :ok = Plexus.Overlay.unsubscribe(:ex_overlay, ref)
    end

    test "child_spec takes a keyword list or a map; a bad option is an error" do
      assert %{id: {:plexus_overlay, :ex_a}} = Plexus.Overlay.child_spec(name: :ex_a)
      assert %{id: {:plexus_overlay, :ex_b}} = Plexus.Overlay.child_spec(%{name: :ex_b})

      assert {:error, {:bad_option, {:sync_interval_ms, 0}}} =
               Plexus.Overlay.start_link(name: :ex_bad, sync_interval_ms: 0)
    end
  end

  describe "Plexus.Comms" do
    test "without a monitor every link is disconnected: critical queued, low dropped" do
      start_supervised!({Plexus.Comms, name: :ex_comms, refresh_ms: 100})
      dest = :"ghost@127.0.0.1"
      assert Plexus.Comms.link_quality(:ex_comms, dest) == :disconnected
      assert {:ok, :queued} = Plexus.Comms.send_msg(:ex_comms, dest, :hello, :critical)

      assert {:error, {:dropped, :disconnected}} =
               Plexus.Comms.send_msg(:ex_comms, dest, :hello, :low)

      info = Plexus.Comms.info(:ex_comms)
      assert info.dropped_total == 1
      assert :ok = Plexus.Comms.subscribe(:ex_comms)
      assert :ok = Plexus.Comms.unsubscribe(:ex_comms)
    end

    test "a bad option is an error" do
      assert {:error, {:invalid_configuration, {:unknown_option, :bogus}}} =
               Plexus.Comms.start_link(name: :ex_comms_bad, bogus: 1)
    end
  end
end
