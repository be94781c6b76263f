defmodule Plexus.LWWMap do
  @moduledoc """
  A map of keys to last-writer-wins values (`:plexus_lwwmap`) as an Elixir struct:
  each key's value is decided by the hybrid logical clock, a key is removed
  observed-remove style (a put elsewhere that the remove did not see survives the
  merge), and replicas join with `merge/2` in any order, any number of times.

      iex> a = Plexus.LWWMap.new(%{unit1: {1, 2}}, actor: :a)
      iex> b = Plexus.LWWMap.put(Plexus.LWWMap.new(), :unit2, {5, 5}, actor: :b)
      iex> Plexus.LWWMap.to_map(Plexus.LWWMap.merge(a, b))
      %{unit1: {1, 2}, unit2: {5, 5}}

  Keys and values are any terms; keys are ordered by their external format bytes.
  A single `put/4`, `delete/2`, `fetch/2` costs O(log n); `new/2` and `put_all/3` take
  many pairs in one call. The struct implements `Enumerable` (of `{key, value}`),
  `Collectable` and `Inspect`. Compare with `equal?/2`, not `==`. Store or send it
  with `to_binary/1`; read untrusted bytes with `from_binary/1`.
  """

  @enforce_keys [:state]
  defstruct [:state]

  @typedoc "A map. `state` is `:plexus_lwwmap`'s opaque state."
  @type t :: %__MODULE__{state: :plexus_lwwmap.lwwmap()}
  @typedoc "`actor:` who makes the change (default `node()`)."
  @type opts :: [actor: term]

  alias Plexus.CRDTError

  @doc "The empty map."
  @spec new() :: t
  def new, do: %__MODULE__{state: :plexus_lwwmap.new()}

  @doc "A map holding the `{key, value}` pairs of `enumerable`, put in one call."
  @spec new(Enumerable.t(), opts) :: t
  def new(pairs, opts \\ []), do: put_all(new(), pairs, opts)

  @doc "Sets `key` to `value`, replacing every write of it this replica has seen."
  @spec put(t, term, term, opts) :: t
  def put(%__MODULE__{state: s}, key, value, opts \\ []) do
    wrap(:plexus_lwwmap.put(s, key, value, actor(opts)), :put)
  end

  @doc "Puts every `{key, value}` of `enumerable`, in order."
  @spec put_all(t, Enumerable.t(), opts) :: t
  def put_all(%__MODULE__{state: s}, pairs, opts \\ []) do
    wrap(:plexus_lwwmap.put_all(s, Enum.to_list(pairs), actor(opts)), :put_all)
  end

  @doc "Removes `key` (the writes this replica has seen; a concurrent put survives)."
  @spec delete(t, term) :: t
  def delete(%__MODULE__{state: s}, key), do: wrap(:plexus_lwwmap.remove(s, key), :delete)

  @doc "Removes every key of `keys`."
  @spec delete_all(t, Enumerable.t()) :: t
  def delete_all(%__MODULE__{state: s}, keys) do
    wrap(:plexus_lwwmap.remove_all(s, Enum.to_list(keys)), :delete_all)
  end

  @doc "`{:ok, value}`, or `:error` when `key` is absent."
  @spec fetch(t, term) :: {:ok, term} | :error
  def fetch(%__MODULE__{state: s}, key) do
    case :plexus_lwwmap.get(s, key) do
      {:ok, value} -> {:ok, value}
      {:error, :not_found} -> :error
      other -> CRDTError.unwrap!(other, :fetch)
    end
  end

  @doc "The value of `key`, or `default` when it is absent."
  @spec get(t, term, term) :: term
  def get(map, key, default \\ nil) do
    case fetch(map, key) do
      {:ok, value} -> value
      :error -> default
    end
  end

  @doc "Whether `key` is present."
  @spec has_key?(t, term) :: boolean
  def has_key?(%__MODULE__{state: s}, key),
    do: CRDTError.unwrap!(:plexus_lwwmap.is_key(s, key), :has_key?)

  @doc "The keys, in external format byte order."
  @spec keys(t) :: [term]
  def keys(%__MODULE__{state: s}), do: CRDTError.unwrap!(:plexus_lwwmap.keys(s), :keys)

  @doc "The `{key, value}` pairs, in key order."
  @spec to_list(t) :: [{term, term}]
  def to_list(%__MODULE__{state: s}) do
    fold = :plexus_lwwmap.fold(fn key, value, acc -> [{key, value} | acc] end, [], s)
    :lists.reverse(CRDTError.unwrap!(fold, :to_list))
  end

  @doc "An Elixir map of every key to its winning value."
  @spec to_map(t) :: map
  def to_map(%__MODULE__{state: s}), do: CRDTError.unwrap!(:plexus_lwwmap.to_map(s), :to_map)

  @doc "The number of keys, O(1)."
  @spec size(t) :: non_neg_integer
  def size(%__MODULE__{state: s}), do: CRDTError.unwrap!(:plexus_lwwmap.size(s), :size)

  @doc "The merge (least upper bound) of two replicas."
  @spec merge(t, t) :: t
  def merge(%__MODULE__{state: a}, %__MODULE__{state: b}),
    do: wrap(:plexus_lwwmap.merge(a, b), :merge)

  @doc "The merge of a list of replicas (the empty map for `[]`)."
  @spec merge([t]) :: t
  def merge(maps) when is_list(maps) do
    wrap(:plexus_lwwmap.merge(for %__MODULE__{state: s} <- maps, do: s), :merge)
  end

  @doc "Whether two replicas have the same state."
  @spec equal?(t, t) :: boolean
  def equal?(%__MODULE__{state: a}, %__MODULE__{state: b}), do: :plexus_lwwmap.equal(a, b)

  @doc "The canonical bytes of the map."
  @spec to_binary(t) :: binary
  def to_binary(%__MODULE__{state: s}),
    do: CRDTError.unwrap!(:plexus_lwwmap.to_binary(s), :to_binary)

  @doc "Reads a map from bytes of unknown origin: validated, no atoms made."
  @spec from_binary(binary) :: {:ok, t} | {:error, :plexus_lwwmap.reason()}
  def from_binary(bytes) when is_binary(bytes) do
    case :plexus_lwwmap.from_binary(bytes) do
      {:ok, s} -> {:ok, %__MODULE__{state: s}}
      {:error, _} = error -> error
    end
  end

  defp actor(opts), do: Keyword.get_lazy(opts, :actor, &node/0)

  defp wrap(result, function), do: %__MODULE__{state: CRDTError.unwrap!(result, function)}

  defimpl Enumerable do
    def count(map), do: {:ok, Plexus.LWWMap.size(map)}

    def member?(map, {key, value}) do
      {:ok, Plexus.LWWMap.fetch(map, key) == {:ok, value}}
    end

    def member?(_map, _other), do: {:ok, false}
    def slice(_map), do: {:error, __MODULE__}

    # One fold lists every pair; reducing over that list is as cheap as any slice.
    def reduce(map, acc, fun), do: Enumerable.reduce(Plexus.LWWMap.to_list(map), acc, fun)
  end

  defimpl Collectable do
    def into(map) do
      collector = fn
        acc, {:cont, {_key, _value} = pair} -> [pair | acc]
        acc, :done -> Plexus.LWWMap.put_all(map, :lists.reverse(acc))
        _acc, :halt -> :ok
      end

      {[], collector}
    end
  end

  defimpl Inspect do
    import Inspect.Algebra

    def inspect(map, opts) do
      concat(["#Plexus.LWWMap<", to_doc(Plexus.LWWMap.to_map(map), opts), ">"])
    end
  end
end
