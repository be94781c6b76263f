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
