%% @doc The behaviour of a discovery adapter (doc/DESIGN.md §5; the Gleam `distribute'
%% discovery behaviour). `plexus_discovery' runs one adapter and turns what it reports
%% into the peer set, events, health and (with `connect => true') connections.
%%
%% An adapter reports peers in two ways, and may use both:
%% <ul>
%% <li><b>Pull</b>: `sync/1' returns the complete current peer list. The facade calls it
%%   every `sync_interval_ms' <em>in a separate, short-lived process</em> killed after
%%   `sync_timeout_ms', so it may block (DNS, HTTP, a subprocess) but must not rely on
%%   being run by the facade process or change the adapter state. The facade diffs the
%%   list against what it knows: new peers come up, missing ones go down, changed
%%   metadata is an update. A failed sync (`{error, Reason}') changes no peer.</li>
%% <li><b>Push</b>: `handle_info/2' gets every message the facade process receives that
%%   is not the facade's own (UDP packets of a socket opened in `init/1', timers the
%%   adapter set with `erlang:send_after(T, self(), Msg)', monitor messages, ...) and
%%   may return incremental changes or a complete peer list.</li>
%% </ul>
%% `init/1' and `handle_info/2' run in the facade process: keep them quick and never
%% block there.
%%
%% Peers are maps `#{id := binary(), metadata := #{binary() => binary()}}'; a peer id is
%% a binary, normally a node name `<<"name@host">>'. Nothing from the network should be
%% made an atom by an adapter; the facade makes one only to connect, and only for an
%% adapter whose `authenticated/1' says it vouches for its peers: every peer it reports
%% comes from a source the operator trusts (its own configuration, DNS, an API reached
%% over verified TLS) or from a message authenticated with a key the operator gave it.
%% An adapter that may report names an unauthenticated party chose must return false
%% (or not export the callback); its peers are then reported but never connected.
%%
%% A minimal adapter:
%% ```
%% -module(my_adapter).
%% -behaviour(plexus_discovery_adapter).
%% -export([init/1, sync/1]).
%% init(#{custom := #{peers := Ids}}) -> {ok, Ids}.
%% sync(Ids) -> {ok, [#{id => Id, metadata => #{}} || Id <- Ids]}.
%% '''
%% and `plexus_discovery:start_link(#{adapter => my_adapter, custom => #{peers => [...]}})'.
-module(plexus_discovery_adapter).

-export_type([config/0, peer/0, peer_id/0, change/0, handle_result/1]).

-type peer_id() :: binary().
-type peer() :: #{id := peer_id(), metadata := #{binary() => binary()}}.
-type change() :: {up, peer()} | {down, peer_id(), Reason :: term()}.

%% What the facade hands to `init/1'.
-type config() :: #{name := atom(),                %% the facade's registered name
                    seed_peers := [peer_id()],
                    custom := map(),               %% adapter-specific options
                    sync_interval_ms := pos_integer(),
                    sync_timeout_ms := pos_integer()}.

-type handle_result(State) ::
    {ok, State}                          %% nothing changed
    | {changes, [change()], State}       %% incremental, applied in order
    | {peers, [peer()], State}           %% the complete set, diffed like a sync
    | {error, Reason :: term(), State}.  %% recorded in health as a sync failure

%% Called in the facade process at start. `{error, Reason}' makes start_link return
%% `{error, {start_failed, Reason}}'.
-callback init(Config :: config()) -> {ok, State :: term()} | {error, Reason :: term()}.

%% The complete current peer list; runs in a separate process (see above).
-callback sync(State :: term()) -> {ok, [peer()]} | {error, Reason :: term()}.

%% A message for the adapter, in the facade process.
-callback handle_info(Msg :: term(), State :: term()) -> handle_result(term()).

%% The facade is stopping (close sockets, say goodbye).
-callback terminate(Reason :: term(), State :: term()) -> term().

%% Adapter counters and state for `plexus_discovery:health_info/0,1' (`adapter_info').
-callback info(State :: term()) -> map().

%% True when the adapter vouches for every peer it reports (see above), so that
%% `connect => true' may make node atoms of them and connect. Absent = false.
-callback authenticated(State :: term()) -> boolean().

-optional_callbacks([sync/1, handle_info/2, terminate/2, info/1, authenticated/1]).
