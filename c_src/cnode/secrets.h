/*
 * The cookie and the gossip secret of plexus_cnode (secrets.c): read from a file
 * (refused when group or world can read it) or the environment, never argv, into
 * sodium_malloc'd memory that the caller wipes and frees with sodium_free.
 */
#ifndef PLEXUS_CNODE_SECRETS_H
#define PLEXUS_CNODE_SECRETS_H

#include <stddef.h>
#include <stdint.h>

#include "cnode/config.h"

/* Reads the cookie into *out (NUL-terminated). 0 or CN_EXIT_COOKIE (message printed). */
int cn_cookie_load(const cn_config *cfg, char **out);
/* Reads the gossip secret (--gossip-secret-file, else $PLEXUS_GOSSIP_SECRET) into *out,
 * *len bytes. 0 or CN_EXIT_SECRET (message printed). */
int cn_gossip_secret_load(const cn_config *cfg, uint8_t **out, size_t *len);

#endif
