defmodule Plexus.ORSetTest do
  use ExUnit.Case, async: true
  alias Plexus.ORSet

  test "put, delete, member? and size" do
    set = ORSet.new() |> ORSet.put(:a) |> ORSet.put("b") |> ORSet.put(:a)
    assert ORSet.member?(set, :a)
    assert ORSet.member?(set, "b")
    refute ORSet.member?(set, :c)
    assert ORSet.size(set) == 2
    set = ORSet.delete(set, :a)
    refute ORSet.member?(set, :a)
    assert ORSet.to_list(set) == ["b"]
  end

  test "new/1 and put_all/delete_all take any enumerable" do
    set = ORSet.new(1..5)
    assert Enum.sort(ORSet.to_list(set)) == [1, 2, 3, 4, 5]
    set = ORSet.delete_all(set, MapSet.new([2, 4]))
    assert Enum.sort(ORSet.to_list(set)) == [1, 3, 5]
    assert Enum.sort(ORSet.to_list(ORSet.put_all(set, [7, 9]))) == [1, 3, 5, 7, 9]
  end

  test "merge: a concurrent add wins over a remove" do
    base = ORSet.new([:x])
    removed = ORSet.delete(base, :x, actor: :r1)
    re_added = ORSet.put(base, :x, actor: :r2)
    merged = ORSet.merge(removed, re_added)
    assert ORSet.member?(merged, :x)
    assert ORSet.equal?(merged, ORSet.merge(re_added, removed))
    assert ORSet.equal?(merged, ORSet.merge([removed, re_added, base]))
    assert ORSet.size(ORSet.merge([])) == 0
  end

  test "Enumerable: count, member?, map, slice-like calls" do
    set = ORSet.new([1, 2, 3])
    assert Enum.count(set) == 3
    assert Enum.member?(set, 2)
    assert 3 in set
    refute 4 in set
    assert Enum.sort(Enum.map(set, &(&1 * 10))) == [10, 20, 30]
    assert Enum.sum(set) == 6
    assert length(Enum.take(set, 2)) == 2
    assert Enum.at(set, 5) == nil
    assert Enum.empty?(ORSet.new())
  end

  test "Collectable: Enum.into and for ... into:" do
    set = Enum.into([:a, :b], ORSet.new([:c]))
    assert Enum.sort(ORSet.to_list(set)) == [:a, :b, :c]
    squares = for x <- 1..3, into: ORSet.new(), do: x * x
    assert Enum.sort(ORSet.to_list(squares)) == [1, 4, 9]
  end

  test "Inspect shows the elements" do
    assert inspect(ORSet.new([:only])) == "#Plexus.ORSet<[:only]>"
    assert inspect(ORSet.new()) == "#Plexus.ORSet<[]>"
  end

  test "to_binary/from_binary round trip; bad bytes are an error, not a raise" do
    set = ORSet.new([:a, {:tuple, 1}])
    bin = ORSet.to_binary(set)
    assert is_binary(bin)
    assert {:ok, back} = ORSet.from_binary(bin)
    assert ORSet.equal?(back, set)
    assert {:error, reason} = ORSet.from_binary(<<1, 2, 3>>)
    assert is_atom(reason)
    assert {:error, _} = ORSet.from_binary(binary_part(bin, 0, byte_size(bin) - 1))
  end

  test "delete_by removes what matches; a concurrent add of a match wins" do
    base = ORSet.new([{:w1, 1}, {:w1, 2}, {:w2, 3}, :plain])
    removed = ORSet.delete_by(base, fn {id, _} -> id == :w1 end)
    assert Enum.sort(ORSet.to_list(removed)) == [:plain, {:w2, 3}]
    re_added = ORSet.put(base, {:w1, 9}, actor: :other)
    merged = ORSet.merge(removed, re_added)
    assert Enum.sort(ORSet.to_list(merged)) == [:plain, {:w1, 9}, {:w2, 3}]
  end

  test "from_binary reads the version 1 bytes of earlier releases" do
    v1 = :plexus_orset_v1.add_all(:plexus_orset_v1.new(), [:a, {:b, 1}], :n1)
    assert {:ok, set} = ORSet.from_binary(v1)
    assert Enum.sort(ORSet.to_list(set)) == [:a, {:b, 1}]
    <<1, ?S, body::binary>> = v1
    assert ORSet.to_binary(set) == <<2, ?S, body::binary>>
    assert ORSet.member?(ORSet.put(set, :c), :c)
  end

  test "a state that is not a set raises Plexus.CRDTError" do
    assert_raise Plexus.CRDTError, fn -> ORSet.size(%ORSet{state: <<0, 1, 2>>}) end
  end
end
