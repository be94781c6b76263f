# ExUnit tests of the Elixir face (lib/). Run by `mix test` (MIX_ENV=test) and by the
# exunit stage of test/run_tests.sh when Elixir is installed.
#
# capture_log: the leader's expected warnings show only for a failing test. It needs
# Elixir's :logger, which plexus itself does not depend on.
{:ok, _} = Application.ensure_all_started(:logger)
ExUnit.start(capture_log: true)
