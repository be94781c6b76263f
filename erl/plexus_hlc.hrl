%% The process dictionary key under which plexus_hlc keeps the calling process's lower
%% bound of the node clock (the greatest clock value it has seen). Shared with
%% plexus_lww, whose merge tests it inline before calling plexus_hlc:observe/1: the
%% remote call costs as much as the rest of a merge of two register terms.
-define(PLEXUS_HLC_SEEN, '$plexus_hlc_seen').
