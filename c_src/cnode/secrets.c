/*
 * The cookie and the gossip secret (cnode.h: cn_cookie_load, cn_gossip_secret_load).
 *
 * The cookie never comes from argv (any user can read another's argv in ps). It comes
 * from --cookie-file, else $PLEXUS_COOKIE, else ~/.erlang.cookie; a file readable or
 * writable by group or others is refused, as erl itself refuses it. The cookie is read
 * into sodium_malloc'd memory (guarded, not swapped), the environment copy is wiped in
 * place (also when --cookie-file wins), a FIFO or device path is refused without
 * waiting for a writer, and the caller wipes the buffer once ei has taken it.
 *
 * The gossip secret follows the same rules: --gossip-secret-file (same mode check),
 * else $PLEXUS_GOSSIP_SECRET (wiped from the environment), never argv
 * (--gossip-secret is refused in config.c); sodium_malloc'd, freed (zeroed) once the
 * beacon codec has derived its keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cnode/secrets.h"
#include "cnode/config.h"
#include "cnode/exit.h"
#include "plexus/beacon.h"

/* Strips trailing white space (erl ignores it too). */
static size_t trim(char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    return n;
}

/*
 * Reads a private file (not readable or writable by group or others, a regular file,
 * no symlink as the last component) into buf, at most max bytes; *n is what was read.
 * what names it in messages ("cookie file", "gossip secret file"). 0, or -1 with the
 * reason printed.
 */
static int read_private(const char *path, const char *what, char *buf, size_t max, size_t *n)
{
    *n = 0;
    /* O_NONBLOCK: opening a FIFO (or a device) for reading would otherwise wait for a
     * writer, for ever, before the type check below could refuse it */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        fprintf(stderr, "plexus_cnode: cannot open %s %s: %s\n", what, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "plexus_cnode: %s %s is not a regular file\n", what, path);
        goto fail;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        fprintf(stderr,
                "plexus_cnode: %s %s has mode %04o: it must not be readable or "
                "writable by group or others (chmod 400 %s)\n",
                what, path, (unsigned)(st.st_mode & 07777), path);
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + *n, max + 1 - *n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            fprintf(stderr, "plexus_cnode: reading %s: %s\n", path, strerror(errno));
            goto fail;
        }
        if (r == 0) break;
        *n += (size_t)r;
        if (*n > max) {
            fprintf(stderr, "plexus_cnode: %s %s holds more than %zu bytes\n", what, path, max);
            goto fail;
        }
    }
    close(fd);
    return 0;
fail:
    close(fd);
    return -1;
}

int cn_cookie_load(const cn_config *cfg, char **out)
{
    *out = NULL;
    char *buf = sodium_malloc(EI_MAX_COOKIE_SIZE + 2);
    if (!buf) {
        fprintf(stderr, "plexus_cnode: out of memory for the cookie\n");
        return CN_EXIT_COOKIE;
    }
    memset(buf, 0, EI_MAX_COOKIE_SIZE + 2);
    const char *env = getenv("PLEXUS_COOKIE");
    if (cfg->cookie_file && env) {
        /* not used, but not left lying in /proc/PID/environ either: unsetenv only
         * unlinks the entry, the bytes stay, so they are overwritten first */
        sodium_memzero((char *)env, strlen(env));
        unsetenv("PLEXUS_COOKIE");
        env = NULL;
    }
    if (!cfg->cookie_file && env) {
        size_t n = strlen(env);
        int too_long = n > EI_MAX_COOKIE_SIZE;
        if (!too_long) memcpy(buf, env, n);
        /* wipe the copy in our environment block, in place (unsetenv alone leaves the
         * bytes): children and /proc/PID/environ readers see zeros from now on */
        sodium_memzero((char *)env, n);
        unsetenv("PLEXUS_COOKIE");
        if (too_long) {
            fprintf(stderr, "plexus_cnode: PLEXUS_COOKIE is longer than %d bytes\n",
                    EI_MAX_COOKIE_SIZE);
            sodium_free(buf);
            return CN_EXIT_COOKIE;
        }
        if (trim(buf, n) == 0) {
            fprintf(stderr, "plexus_cnode: PLEXUS_COOKIE is empty\n");
            sodium_free(buf);
            return CN_EXIT_COOKIE;
        }
        *out = buf;
        return 0;
    }
    char path[PATH_MAX];
    if (cfg->cookie_file) {
        if (strlen(cfg->cookie_file) >= sizeof path) {
            fprintf(stderr, "plexus_cnode: cookie file path too long\n");
            sodium_free(buf);
            return CN_EXIT_COOKIE;
        }
        strcpy(path, cfg->cookie_file);
    } else {
        const char *home = getenv("HOME");
        if (!home || snprintf(path, sizeof path, "%s/.erlang.cookie", home) >= (int)sizeof path) {
            fprintf(stderr, "plexus_cnode: no cookie: set HOME, PLEXUS_COOKIE or --cookie-file\n");
            sodium_free(buf);
            return CN_EXIT_COOKIE;
        }
    }
    size_t n;
    if (read_private(path, "cookie file", buf, EI_MAX_COOKIE_SIZE, &n) != 0) {
        sodium_free(buf); /* sodium_free zeroes before freeing */
        return CN_EXIT_COOKIE;
    }
    if (trim(buf, n) == 0) {
        fprintf(stderr, "plexus_cnode: cookie file %s is empty\n", path);
        sodium_free(buf);
        return CN_EXIT_COOKIE;
    }
    *out = buf;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int cn_gossip_secret_load(const cn_config *cfg, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    char *buf = sodium_malloc(PLEXUS_BEACON_SECRET_MAX + 1);
    if (!buf) {
        fprintf(stderr, "plexus_cnode: out of memory for the gossip secret\n");
        return CN_EXIT_SECRET;
    }
    size_t n = 0, from = 0;
    const char *env = getenv("PLEXUS_GOSSIP_SECRET");
    if (cfg->gossip_secret_file) {
        if (read_private(cfg->gossip_secret_file, "gossip secret file", buf,
                         PLEXUS_BEACON_SECRET_MAX, &n) != 0)
            goto fail;
        /* as the gossip adapter's secret_file: white space trimmed at both ends */
        while (n > 0 && is_space(buf[n - 1]))
            n--;
        while (from < n && is_space(buf[from]))
            from++;
        n -= from;
        memmove(buf, buf + from, n);
        if (env) { /* not used, but not left lying in the environment either */
            sodium_memzero((char *)env, strlen(env));
            unsetenv("PLEXUS_GOSSIP_SECRET");
        }
    } else if (env) {
        /* as the adapter's `secret' option: the bytes as they are */
        n = strlen(env);
        if (n > PLEXUS_BEACON_SECRET_MAX) {
            fprintf(stderr, "plexus_cnode: PLEXUS_GOSSIP_SECRET is longer than %d bytes\n",
                    PLEXUS_BEACON_SECRET_MAX);
            sodium_memzero((char *)env, n);
            unsetenv("PLEXUS_GOSSIP_SECRET");
            goto fail;
        }
        memcpy(buf, env, n);
        sodium_memzero((char *)env, n);
        unsetenv("PLEXUS_GOSSIP_SECRET");
    } else {
        fprintf(stderr, "plexus_cnode: --gossip needs a shared secret: --gossip-secret-file FILE "
                        "or PLEXUS_GOSSIP_SECRET (never on the command line)\n");
        goto fail;
    }
    if (n < PLEXUS_BEACON_SECRET_MIN) {
        fprintf(stderr, "plexus_cnode: the gossip secret must have at least %d bytes, it has %zu\n",
                PLEXUS_BEACON_SECRET_MIN, n);
        goto fail;
    }
    *out = (uint8_t *)buf;
    *len = n;
    return 0;
fail:
    sodium_free(buf); /* zeroes first */
    return CN_EXIT_SECRET;
}
