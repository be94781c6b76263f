defmodule Plexus.ORSet do
  @moduledoc """
  An add-wins observed-remove set (`:plexus_orset`, on its version 2 representation)
  as an Elixir struct.

  The set is immutable and mergeable: replicas change it independently and
  `merge/2` joins them, whatever the order or repetition of the merges. When one
  replica adds an element while another removes it, the element stays (add wins).

      iex> set = Plexus.ORSet.new([:a, :b]) |> Plexus.ORSet.delete(:a)
      iex> Plexus.ORSet.member?(set, :b)
      true
      iex> other = Plexus.ORSet.new([:c], actor: :replica2)
      iex> Enum.to_list(Plexus.ORSet.merge(set, other))
      [:b, :c]

  Elements are any terms, compared as their external format, so `to_list/1` and
  enumeration give them in that byte order, not in Erlang term order. Every change is
  made by an *actor* (default `node()`). Replicas that change the set independently
  need different actors (the default is right for one replica per node; pass
  `actor: term` where several live on one node): two histories under one actor
  collide, and a merge takes the adds of one for adds the other saw and removed.
  A single change (`put/3`, `delete/3`, `member?/2`) costs O(log n); build large sets
  in one call (`new/2`, `put_all/3`, `Enum.into/2`), which is one batch.

  The struct implements `Enumerable` (`Enum.count/1` is O(1) and `Enum.member?/2`
  O(log n)), `Collectable` (`Enum.into/2` adds everything in one batch) and `Inspect`
  (`#Plexus.ORSet<[:b, :c]>`). Compare two sets with `equal?/2`, not `==`: the state
  is opaque. Store or send it with `to_binary/1` (version 2 bytes); read untrusted
  bytes with `from_binary/1`, which also reads the version 1 bytes of earlier
  releases.
  """

  @enforce_keys [:state]
  defstruct [:state]

  @typedoc "A set. `state` is `:plexus_orset`'s opaque state."
  @type t :: %__MODULE__{state: :plexus_orset.orset()}
  @type element :: term
  @typedoc "`actor:` who makes the change (default `node()`)."
  @type opts :: [actor: term]

  alias Plexus.CRDTError

  @doc "The empty set."
  @spec new() :: t
  def new, do: %__MODULE__{state: :plexus_orset.new()}

  @doc "A set holding the elements of `enumerable`, added in one batch."
  @spec new(Enumerable.t(), opts) :: t
  def new(enumerable, opts \\ []), do: put_all(new(), enumerable, opts)

  @doc "Adds `element`."
  @spec put(t, element, opts) :: t
  def put(%__MODULE__{state: s}, element, opts \\ []) do
    wrap(call(:add, [s, element], opts), :put)
  end

  @doc "Adds every element of `enumerable` in one pass."
  @spec put_all(t, Enumerable.t(), opts) :: t
  def put_all(%__MODULE__{state: s}, enumerable, opts \\ []) do
    wrap(call(:add_all, [s, Enum.to_list(enumerable)], opts), :put_all)
  end

  @doc "Removes `element` (the adds this replica has seen; a concurrent add wins)."
  @spec delete(t, element, opts) :: t
  def delete(%__MODULE__{state: s}, element, opts \\ []) do
    wrap(call(:remove, [s, element], opts), :delete)
  end

  @doc "Removes every element of `enumerable` in one pass."
  @spec delete_all(t, Enumerable.t(), opts) :: t
  def delete_all(%__MODULE__{state: s}, enumerable, opts \\ []) do
    wrap(call(:remove_all, [s, Enum.to_list(enumerable)], opts), :delete_all)
  end

  @doc """
  Removes every element for which `fun` returns a truthy value, in one batch, as
  `delete/3` removes one: what this replica has seen goes, and an element another
  replica adds concurrently survives the merge (add wins). An element on which `fun`
  raises is kept, so a pattern is enough: `delete_by(set, fn {:waypoint, _} -> true end)`.
  """
  @spec delete_by(t, (element -> as_boolean(term))) :: t
  def delete_by(%__MODULE__{state: s}, fun) when is_function(fun, 1) do
    wrap(:plexus_orset.remove_by(s, fn element -> !!fun.(element) end), :delete_by)
  end

  @doc "Whether `element` is in the set."
  @spec member?(t, element) :: boolean
  def member?(%__MODULE__{state: s}, element) do
    CRDTError.unwrap!(:plexus_orset.member(s, element), :member?)
  end

  @doc "The elements, in the set's (external format byte) order."
  @spec to_list(t) :: [element]
  def to_list(%__MODULE__{state: s}), do: CRDTError.unwrap!(:plexus_orset.to_list(s), :to_list)

  @doc "The number of elements."
  @spec size(t) :: non_neg_integer
  def size(%__MODULE__{state: s}), do: CRDTError.unwrap!(:plexus_orset.size(s), :size)

  @doc "The merge (least upper bound) of two replicas."
  @spec merge(t, t) :: t
  def merge(%__MODULE__{state: a}, %__MODULE__{state: b}) do
    wrap(:plexus_orset.merge(a, b), :merge)
  end

  @doc "The merge of a list of replicas (the empty set for `[]`)."
  @spec merge([t]) :: t
  def merge(sets) when is_list(sets) do
    wrap(:plexus_orset.merge(for %__MODULE__{state: s} <- sets, do: s), :merge)
  end

  @doc "Whether two replicas have the same state (same elements and history)."
  @spec equal?(t, t) :: boolean
  def equal?(%__MODULE__{state: a}, %__MODULE__{state: b}) do
    CRDTError.unwrap!(:plexus_orset.equal(a, b), :equal?)
  end

  @doc "The canonical bytes of the set: store them, send them, read them back with `from_binary/1`."
  @spec to_binary(t) :: binary
  def to_binary(%__MODULE__{state: s}),
    do: CRDTError.unwrap!(:plexus_orset.to_binary(s), :to_binary)

  @doc """
  Reads a set from bytes of unknown origin (version 1 or 2): validated completely, no
  atoms made. `{:error, reason}` for malformed bytes (`:truncated`, `:bad_version`,
  ...).
  """
  @spec from_binary(binary) :: {:ok, t} | {:error, :plexus_orset.reason()}
  def from_binary(bytes) when is_binary(bytes) do
    case :plexus_orset.from_binary(bytes) do
      {:ok, s} -> {:ok, %__MODULE__{state: s}}
      {:error, _} = error -> error
    end
  end

  defp call(fun, args, opts) do
    case Keyword.fetch(opts, :actor) do
      {:ok, actor} -> apply(:plexus_orset, fun, args ++ [actor])
      :error -> apply(:plexus_orset, fun, args)
    end
  end

  defp wrap(result, function), do: %__MODULE__{state: CRDTError.unwrap!(result, function)}

  defimpl Enumerable do
    def count(set), do: {:ok, Plexus.ORSet.size(set)}
    def member?(set, element), do: {:ok, Plexus.ORSet.member?(set, element)}
    # One call lists every element; reducing over that list is as cheap as any slice
    # would be, so slicing falls back to reduce/3.
    def slice(_set), do: {:error, __MODULE__}
    def reduce(set, acc, fun), do: Enumerable.reduce(Plexus.ORSet.to_list(set), acc, fun)
  end

  defimpl Collectable do
    # Collects the new elements first and adds them in one batch at :done.
    def into(set) do
      collector = fn
        acc, {:cont, element} -> [element | acc]
        acc, :done -> Plexus.ORSet.put_all(set, :lists.reverse(acc))
        _acc, :halt -> :ok
      end

      {[], collector}
    end
  end

  defimpl Inspect do
    import Inspect.Algebra

    def inspect(set, opts) do
      concat(["#Plexus.ORSet<", to_doc(Plexus.ORSet.to_list(set), opts), ">"])
    end
  end
end
