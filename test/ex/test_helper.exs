# ExUnit tests of the Elixir face (lib/). Run by `mix test` (MIX_ENV=test) and by the
# exunit stage of test/run_tests.sh when Elixir is installed.
ExUnit.start()
