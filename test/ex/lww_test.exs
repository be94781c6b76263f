defmodule Plexus.LWWTest do
  use ExUnit.Case, async: true
  alias Plexus.LWW

  test "new, value, actor, timestamp" do
    reg = LWW.new(:draft)
    assert LWW.value(reg) == :draft
    assert LWW.actor(reg) == node()
    assert is_integer(LWW.timestamp(reg))
    assert LWW.actor(LWW.new(1, actor: :someone)) == :someone
  end

  test "update always wins over the register it updates" do
    reg = LWW.new(:draft)
    reg2 = LWW.update(reg, :final)
    assert LWW.value(reg2) == :final
    assert LWW.timestamp(reg2) > LWW.timestamp(reg)
    assert LWW.value(LWW.merge(reg, reg2)) == :final
    assert LWW.value(LWW.merge([reg2, reg])) == :final
    assert LWW.equal?(LWW.merge(reg, reg2), reg2)
  end

  test "update with an explicit timestamp merges (an older one is a no-op)" do
    reg = LWW.new(:v1)
    ts = LWW.timestamp(reg)
    assert LWW.value(LWW.update(reg, :old, timestamp: ts - 1)) == :v1
    newer = LWW.update(reg, :new, timestamp: ts + 1000, actor: :w)
    assert LWW.value(newer) == :new
    assert LWW.actor(newer) == :w
    assert LWW.timestamp(newer) == ts + 1000
    assert LWW.actor(LWW.update(reg, :by_w, actor: :w)) == :w
  end

  test "a stored value that looks like an error tuple is still the value" do
    assert LWW.value(LWW.new({:error, :truncated})) == {:error, :truncated}
  end

  test "clock is monotonic" do
    a = LWW.clock()
    assert LWW.clock() > a
  end

  test "Inspect shows value, actor and timestamp" do
    reg = LWW.new("v", actor: :me)
    assert inspect(reg) == "#Plexus.LWW<\"v\", actor: :me, timestamp: #{LWW.timestamp(reg)}>"
  end

  test "to_binary/from_binary round trip; bad bytes are an error" do
    reg = LWW.new(%{a: 1})
    assert {:ok, back} = LWW.from_binary(LWW.to_binary(reg))
    assert LWW.equal?(back, reg)
    assert {:error, _} = LWW.from_binary(<<9, 9, 9>>)
    assert back == reg
  end

  test "a struct holding an old binary state still works and gives the same bytes" do
    reg = LWW.new(:v, actor: :me)
    bytes = LWW.to_binary(reg)
    old = %LWW{state: bytes}
    assert LWW.value(old) == :v
    assert LWW.to_binary(old) == bytes
    assert LWW.equal?(old, reg)
    newer = LWW.update(old, :w)
    assert LWW.merge(old, newer) == newer
    assert LWW.merge(reg, old) == reg
  end
end
