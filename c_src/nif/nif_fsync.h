/*
 * plexus_nif:fsync_dir/1: fsync a directory, so that a rename() into it is durable.
 *
 * POSIX makes a rename durable only once the directory holding the new name is synced
 * (fsync(2) on the directory). Erlang's file module cannot open a directory, so the
 * hard state of plexus_leader (temp file, fsync, rename) needs this one call to finish
 * the job: without it a power cut right after the rename may bring back the old file,
 * i.e. an older term or vote, and the node may vote twice in a term.
 */
#ifndef PLEXUS_NIF_FSYNC_H
#define PLEXUS_NIF_FSYNC_H

#include <erl_nif.h>

/* fsync_dir(Path :: binary()) -> ok | {error, Posix}. Runs on a dirty IO scheduler
 * (the disk may take long). badarg unless Path is a non-empty binary without NUL
 * bytes, shorter than PATH_MAX. */
ERL_NIF_TERM nif_fsync_dir(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
