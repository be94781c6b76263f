%% Shared by the PropEr properties of test/prop.
%%
%% The Debian build of PropEr 1.2 calls erlang:get_stacktrace/0 (gone in OTP 23+) when
%% a property raises, which hides the real error: properties run their body through
%% ?SAFE, which prints the exception and fails the property instead.
-define(SAFE(Body),
        try
            Body
        catch
            Class:Reason:Stack ->
                io:format(user, "~n~p:~p~n~p~n", [Class, Reason, Stack]),
                false
        end).

%% How many cases a property runs: N, scaled by PLEXUS_PROPER_PERCENT (default 100). The
%% sanitized NIF stage (test/nif_sanitized.sh) runs a third of them: there each case is
%% several times slower, and the full counts run unsanitized in the EUnit stage.
-define(NUMTESTS(N),
        max(1, (N) * list_to_integer(os:getenv("PLEXUS_PROPER_PERCENT", "100")) div 100)).
