/*
 * Directory fsync for durable renames (see nif_fsync.h). Posix reasons come back as
 * the atoms Erlang's file module uses (enoent, enotdir, eacces, ...), made from a fixed
 * table, never from input.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "nif/nif_fsync.h"

static const struct {
    int err;
    const char *name;
} posix_names[] = {
    {ENOENT, "enoent"}, {ENOTDIR, "enotdir"}, {EACCES, "eacces"},
    {EPERM, "eperm"},   {ELOOP, "eloop"},     {ENAMETOOLONG, "enametoolong"},
    {EIO, "eio"},       {EROFS, "erofs"},     {ENOSPC, "enospc"},
    {EDQUOT, "edquot"}, {EMFILE, "emfile"},   {ENFILE, "enfile"},
    {ENOMEM, "enomem"}, {EINVAL, "einval"},
};

static ERL_NIF_TERM posix_error(ErlNifEnv *env, int err)
{
    const char *name = "eunknown";
    for (size_t i = 0; i < sizeof posix_names / sizeof posix_names[0]; i++)
        if (posix_names[i].err == err) name = posix_names[i].name;
    return enif_make_tuple2(env, enif_make_atom(env, "error"), enif_make_atom(env, name));
}

ERL_NIF_TERM nif_fsync_dir(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    ErlNifBinary bin;
    char path[PATH_MAX];
    int fd, rc, err;
    if (argc != 1 || !enif_inspect_binary(env, argv[0], &bin)) goto bad_arg;
    if (bin.size == 0 || bin.size >= sizeof path || memchr(bin.data, 0, bin.size)) goto bad_arg;
    memcpy(path, bin.data, bin.size);
    path[bin.size] = '\0';

    do
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) goto err;
    do
        rc = fsync(fd);
    while (rc < 0 && errno == EINTR);
    err = errno;
    close(fd);
    if (rc < 0) {
        errno = err;
        goto err;
    }
    return enif_make_atom(env, "ok");

bad_arg:
    return enif_make_badarg(env);
err:
    return posix_error(env, errno);
}
