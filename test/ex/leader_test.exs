defmodule Plexus.LeaderTest do
  use ExUnit.Case, async: false

  # A leader written in Elixir: reports its callbacks to the pid given as init_arg.
  defmodule Reporter do
    use Plexus.Leader, restart: :transient

    @impl true
    def init(test_pid), do: {:ok, %{test: test_pid}}

    @impl true
    def handle_become_leader(state) do
      send(state.test, {:became_leader, self()})
      {:ok, state}
    end

    @impl true
    def handle_become_follower(leader, state) do
      send(state.test, {:became_follower, leader})
      {:ok, state}
    end

    @impl true
    def handle_call(:ping, _from, state), do: {:reply, :pong, state}
  end

  # Only init/1: every other callback is a default.
  defmodule Minimal do
    use Plexus.Leader

    @impl true
    def init(arg), do: {:ok, arg}
  end

  setup do
    dir = Path.join(System.tmp_dir!(), "plexus_ex_leader.#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    {:ok, data_dir: dir}
  end

  test "a `use Plexus.Leader` module started alone becomes leader", %{data_dir: dir} do
    pid =
      start_supervised!(
        {Reporter, name: :ex_leader_single, bootstrap: [node()], data_dir: dir, init_arg: self()}
      )

    # Waits on the callback, not on a clock: the generous bound only stops a hang.
    assert_receive {:became_leader, ^pid}, 60_000
    assert Plexus.Leader.leader?(:ex_leader_single)
    assert Plexus.Leader.leader(:ex_leader_single) == pid
    assert Plexus.Leader.term(:ex_leader_single) >= 1
    assert Plexus.Leader.peers(:ex_leader_single) == []
    assert Plexus.Leader.peer_count(:ex_leader_single) == 0
    assert %{role: :leader} = Plexus.Leader.info(:ex_leader_single)
    assert Plexus.Leader.call(:ex_leader_single, :ping) == :pong
    # the hard state went to the data_dir given, nowhere else
    assert [_ | _] = Path.wildcard(Path.join(dir, "**/*.hs"))
  end

  test "the defaults: callbacks, child_spec and an unknown call", %{data_dir: dir} do
    spec = Minimal.child_spec(name: :ex_leader_min, data_dir: dir)
    assert spec.id == {:plexus_leader, :ex_leader_min}
    assert spec.start == {Minimal, :start_link, [[name: :ex_leader_min, data_dir: dir]]}
    assert spec.modules == [:plexus_leader, Minimal]
    assert Reporter.child_spec([]).restart == :transient
    assert Reporter.child_spec([]).id == {:plexus_leader, Reporter}

    assert Minimal.handle_become_leader(:s) == {:ok, :s}
    assert Minimal.handle_peer_joined({:n, node()}, :s) == {:ok, :s}
    assert Minimal.handle_term_changed(1, 2, :s) == {:ok, :s}

    pid = start_supervised!({Minimal, name: :ex_leader_min, bootstrap: [node()], data_dir: dir})
    assert wait_until(fn -> Plexus.Leader.leader(:ex_leader_min) == pid end)
    assert Plexus.Leader.call(:ex_leader_min, :what) == {:error, {:unknown_call, :what}}
  end

  test "an Erlang-style {:plexus_leader, keyword} child spec starts a leader", %{data_dir: dir} do
    pid =
      start_supervised!(
        {:plexus_leader,
         name: :ex_leader_kw, module: Minimal, args: :s, bootstrap: [node()], data_dir: dir}
      )

    assert wait_until(fn -> Plexus.Leader.leader(:ex_leader_kw) == pid end)
    assert [_ | _] = Path.wildcard(Path.join(dir, "**/ex_leader_kw-*.hs"))
  end

  test "a `use Plexus.Leader` module takes its options as a map too", %{data_dir: dir} do
    opts = %{name: :ex_leader_map, bootstrap: [node()], data_dir: dir}
    assert Minimal.child_spec(opts).id == {:plexus_leader, :ex_leader_map}
    pid = start_supervised!({Minimal, opts})
    assert wait_until(fn -> Plexus.Leader.leader(:ex_leader_map) == pid end)
  end

  test "a misspelt option is refused, not replaced by its default", %{data_dir: dir} do
    assert {:error, {:invalid_configuration, {:unknown_option, :datadir}}} =
             Plexus.Leader.start_link(:ex_leader_typo, Minimal, [], datadir: dir)
  end

  test "handle_become_follower sees nil where the Erlang behaviour says undefined" do
    assert Reporter.handle_become_follower(:undefined, %{test: self()}) == {:ok, %{test: self()}}
    assert_received {:became_follower, nil}
    leader = self()
    Reporter.handle_become_follower(leader, %{test: self()})
    assert_received {:became_follower, ^leader}
    assert Minimal.handle_become_follower(:undefined, :s) == {:ok, :s}
  end

  test "leader/1 is nil, not :undefined, before any leader is known", %{data_dir: dir} do
    # A voter whose only peer does not exist never learns a leader.
    start_supervised!(
      {Minimal, name: :ex_leader_alone, bootstrap: [node(), :"ghost@127.0.0.1"], data_dir: dir}
    )

    assert Plexus.Leader.leader(:ex_leader_alone) == nil
    refute Plexus.Leader.leader?(:ex_leader_alone)
  end

  # Bounded wait on a condition (600 x 50 ms): no assertion on how long it took.
  defp wait_until(fun, tries \\ 600) do
    cond do
      fun.() ->
        true

      tries == 0 ->
        false

      true ->
        Process.sleep(50)
        wait_until(fun, tries - 1)
    end
  end
end
