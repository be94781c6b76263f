/*
 * Clocks of the C node: a leaf module (no plexus includes), so every layer can read
 * the time without calling up into main.c.
 */
#ifndef PLEXUS_CNODE_CLOCK_H
#define PLEXUS_CNODE_CLOCK_H

#include <stdint.h>

uint64_t cn_now_ms(void);  /* monotonic */
uint64_t cn_now_us(void);  /* monotonic */
uint64_t cn_wall_ms(void); /* since the epoch, for "ts" */

#endif
