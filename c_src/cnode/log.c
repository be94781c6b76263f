/* Diagnostics of the C node (log.h). */
#include "cnode/log.h"

#include <stdarg.h>
#include <stdio.h>

/* Written once before any thread starts (main.c), read afterwards. */
static bool log_verbose;

void cn_log_set_verbose(bool verbose)
{
    log_verbose = verbose;
}

static void vlog(const char *fmt, va_list ap)
{
    fputs("plexus_cnode: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cn_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void cn_debug(const char *fmt, ...)
{
    if (!log_verbose) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}
