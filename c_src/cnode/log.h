/*
 * Diagnostics of the C node: a leaf module. Every line goes to stderr with one prefix;
 * stdout carries only JSON lines (out.c). The verbosity is set once at start-up
 * (--verbose), so callers need no handle to the node.
 */
#ifndef PLEXUS_CNODE_LOG_H
#define PLEXUS_CNODE_LOG_H

#include <stdbool.h>

void cn_log_set_verbose(bool verbose);
void cn_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only with --verbose: every connection attempt and similar detail. */
void cn_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
