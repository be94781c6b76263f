defmodule Plexus.LWW do
  @moduledoc """
  A last-writer-wins register on a hybrid logical clock (`:plexus_lww`) as an Elixir
  struct.

  A register holds a value, the timestamp of its last write and the actor that wrote
  it (default `node()`). `merge/2` keeps the later write; ties break by actor, then
  value, the same way on every node. Timestamps come from the node's hybrid logical
  clock (`clock/0`: wall-clock milliseconds in the high 48 bits, a counter in the low
  16), and `update/3` always writes after the register it updates, so a local update
  wins over the state it saw even when the wall clock went back.

      iex> reg = Plexus.LWW.new(:draft) |> Plexus.LWW.update(:final)
      iex> Plexus.LWW.value(reg)
      :final

  The struct implements `Inspect` (`#Plexus.LWW<:final, actor: :nonode@nohost, ...>`).
  Its state is a plain term (`{:plexus_lww, ts, actor_bytes, value_bytes}`): send it,
  keep it in ETS, compare two registers with `==` or `equal?/2`. Store or send the
  canonical bytes with `to_binary/1` and read untrusted bytes with `from_binary/1`; a
  struct holding an old binary state (from before the term form) still works.
  """

  @enforce_keys [:state]
  defstruct [:state]

  @typedoc "A register. `state` is `:plexus_lww`'s state (a plain term, or an old binary)."
  @type t :: %__MODULE__{state: :plexus_lww.register_in()}
  @typedoc "An HLC timestamp: 0..2^64-1."
  @type timestamp :: :plexus_lww.timestamp()
  @typedoc """
  `actor:` who writes (default `node()`); `timestamp:` an explicit timestamp for
  `update/3`, which then merges `(timestamp, actor, value)` into the register (an
  older timestamp leaves it as it is).
  """
  @type opts :: [actor: term, timestamp: timestamp]

  alias Plexus.CRDTError

  @doc "A register holding `value`, written at the next clock tick."
  @spec new(term, actor: term) :: t
  def new(value, opts \\ []) do
    state =
      case Keyword.fetch(opts, :actor) do
        {:ok, actor} -> :plexus_lww.new(value, actor)
        :error -> :plexus_lww.new(value)
      end

    %__MODULE__{state: state}
  end

  @doc """
  Writes `value`. Without `timestamp:` the write is stamped after both the node clock
  and the register's timestamp, so it always wins over `register`.
  """
  @spec update(t, term, opts) :: t
  def update(%__MODULE__{state: s}, value, opts \\ []) do
    result =
      case {Keyword.fetch(opts, :actor), Keyword.fetch(opts, :timestamp)} do
        {:error, :error} -> :plexus_lww.update(s, value)
        {:error, {:ok, ts}} -> :plexus_lww.update(s, value, ts)
        {{:ok, actor}, :error} -> :plexus_lww.update({:assign, value}, actor, s)
        {{:ok, actor}, {:ok, ts}} -> :plexus_lww.update({:assign, value, ts}, actor, s)
      end

    case CRDTError.unwrap!(result, :update) do
      {:ok, s2} -> %__MODULE__{state: s2}
      s2 -> %__MODULE__{state: s2}
    end
  end

  @doc "The value of the last write."
  @spec value(t) :: term
  # The state of a struct made by this module is valid, so any term that comes back,
  # `{:error, _}` included, is the stored value.
  def value(%__MODULE__{state: s}), do: :plexus_lww.value(s)

  @doc "The timestamp of the last write."
  @spec timestamp(t) :: timestamp
  def timestamp(%__MODULE__{state: s}),
    do: CRDTError.unwrap!(:plexus_lww.timestamp(s), :timestamp)

  @doc """
  The actor of the last write, without creating atoms: an atom this node does not know
  comes back as a binary (`"b@host"`). Raises `Plexus.CRDTError` (`:bad_term`) for a
  compound actor holding an unknown atom.
  """
  @spec actor(t) :: term
  def actor(%__MODULE__{state: s}), do: CRDTError.unwrap!(:plexus_lww.actor(s), :actor)

  @doc "The later of two registers (by timestamp, actor, value)."
  @spec merge(t, t) :: t
  def merge(%__MODULE__{state: a}, %__MODULE__{state: b}) do
    %__MODULE__{state: CRDTError.unwrap!(:plexus_lww.merge(a, b), :merge)}
  end

  @doc "The latest of a non-empty list of registers."
  @spec merge([t, ...]) :: t
  def merge([_ | _] = regs) do
    states = for %__MODULE__{state: s} <- regs, do: s
    %__MODULE__{state: CRDTError.unwrap!(:plexus_lww.merge(states), :merge)}
  end

  @doc "Whether two registers hold the same write."
  @spec equal?(t, t) :: boolean
  def equal?(%__MODULE__{state: a}, %__MODULE__{state: b}) do
    CRDTError.unwrap!(:plexus_lww.equal(a, b), :equal?)
  end

  @doc "The canonical bytes of the register."
  @spec to_binary(t) :: binary
  def to_binary(%__MODULE__{state: s}),
    do: CRDTError.unwrap!(:plexus_lww.to_binary(s), :to_binary)

  @doc """
  Reads a register from bytes of unknown origin: validated, no atoms made.
  `{:error, reason}` for malformed bytes.
  """
  @spec from_binary(binary) :: {:ok, t} | {:error, :plexus_lww.reason()}
  def from_binary(bytes) when is_binary(bytes) do
    case :plexus_lww.from_binary(bytes) do
      {:ok, s} -> {:ok, %__MODULE__{state: s}}
      {:error, _} = error -> error
    end
  end

  @doc "The node's next HLC timestamp (greater than any it issued or observed)."
  @spec clock() :: timestamp
  def clock, do: :plexus_lww.clock()

  defimpl Inspect do
    import Inspect.Algebra

    def inspect(reg, opts) do
      concat([
        "#Plexus.LWW<",
        to_doc(Plexus.LWW.value(reg), opts),
        ", actor: ",
        to_doc(Plexus.LWW.actor(reg), opts),
        ", timestamp: ",
        to_doc(Plexus.LWW.timestamp(reg), opts),
        ">"
      ])
    end
  end
end
