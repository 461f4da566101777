/*
 * check.c - see check.h.
 */
#include "check.h"

#include <stdarg.h>
#include <stdio.h>

static unsigned passed, failed;

int check_at(const char *file, int line, int ok, const char *fmt, ...)
{
    va_list ap;
    if (ok)
        printf("ok - ");
    else
        printf("FAIL %s:%d - ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (ok)
        passed++;
    else
        failed++;
    return ok;
}

void note(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

unsigned check_passed(void)
{
    return passed;
}

unsigned check_failed(void)
{
    return failed;
}

int check_done(const char *name)
{
    printf("# %s: %u passed, %u failed\n", name, passed, failed);
    fflush(stdout);
    return failed ? 1 : 0;
}
