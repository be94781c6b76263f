# `mix format` for the Elixir face and its tests.
[inputs: ["lib/**/*.ex", "test/ex/**/*.exs"], line_length: 98]
