defmodule Plexus.LWWMapTest do
  use ExUnit.Case, async: true
  alias Plexus.LWWMap

  test "put, fetch, get, delete, keys, size" do
    m = LWWMap.new() |> LWWMap.put(:a, 1) |> LWWMap.put(:b, 2) |> LWWMap.put(:a, 3)
    assert LWWMap.fetch(m, :a) == {:ok, 3}
    assert LWWMap.fetch(m, :zz) == :error
    assert LWWMap.get(m, :zz, :none) == :none
    assert LWWMap.has_key?(m, :b)
    assert LWWMap.size(m) == 2
    assert Enum.sort(LWWMap.keys(m)) == [:a, :b]
    m2 = LWWMap.delete(m, :a)
    assert LWWMap.to_map(m2) == %{b: 2}
    assert LWWMap.to_map(LWWMap.delete_all(m, [:a, :b])) == %{}
  end

  test "a concurrent put survives a remove; merge is order independent" do
    base = LWWMap.new(%{k: 1}, actor: :a)
    removed = LWWMap.delete(base, :k)
    updated = LWWMap.put(base, :k, 2, actor: :b)
    assert LWWMap.to_map(LWWMap.merge(removed, updated)) == %{k: 2}
    assert LWWMap.equal?(LWWMap.merge(removed, updated), LWWMap.merge([updated, removed]))
  end

  test "Enumerable, Collectable, Inspect" do
    m = Enum.into([x: 1, y: 2], LWWMap.new())
    assert Enum.count(m) == 2
    assert {:x, 1} in m
    refute {:x, 2} in m
    assert Enum.sort(Enum.to_list(m)) == [x: 1, y: 2]
    assert inspect(m) =~ "#Plexus.LWWMap<"
  end

  test "bytes round trip; bad bytes are an error, never a raise" do
    m = LWWMap.new(%{"a" => [1, 2]}, actor: :r1)
    assert {:ok, m2} = LWWMap.from_binary(LWWMap.to_binary(m))
    assert LWWMap.equal?(m, m2)
    assert {:error, _} = LWWMap.from_binary(<<1, 2, 3>>)
  end

  test "a hand-made struct is not a map: ArgumentError, as in Erlang (badarg)" do
    assert_raise ArgumentError, fn -> LWWMap.put(%LWWMap{state: :junk}, :a, 1) end
  end
end
