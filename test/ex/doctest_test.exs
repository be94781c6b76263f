defmodule Plexus.DoctestTest do
  # The examples in the module docs run as written.
  use ExUnit.Case, async: true
  doctest Plexus.ORSet
  doctest Plexus.LWW
  doctest Plexus.LWWMap
end
