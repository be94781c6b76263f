defmodule Plexus.CRDTError do
  @moduledoc """
  Raised by `Plexus.ORSet` and `Plexus.LWW` when the Erlang side answers
  `{:error, reason}` where the Elixir function returns a plain value (a struct whose
  state was built by hand, a result past the format's limits: `:too_big`,
  `:overflow`, `:no_memory`). `reason` is one of `t::plexus_orset.reason/0`.

  Bytes from outside never raise: `Plexus.ORSet.from_binary/1` and
  `Plexus.LWW.from_binary/1` return `{:error, reason}`.
  """
  defexception [:reason, :function]

  @impl true
  def message(%__MODULE__{reason: reason, function: function}) do
    "#{function}: #{inspect(reason)}"
  end

  # Unwraps an Erlang CRDT result: the value, or a raise naming the call.
  @doc false
  def unwrap!({:error, reason}, function),
    do: raise(__MODULE__, reason: reason, function: function)

  def unwrap!(value, _function), do: value
end
