/*
 * check.h - the unit tests' tiny assertion kit: CHECK records a failure
 * with its line and goes on; check_done() prints the tally in the form
 * tests/run.sh reads and returns the exit status.
 */
#ifndef LWV_CHECK_H
#define LWV_CHECK_H

#include <stdio.h>

static int check_pass, check_fail;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            check_pass++;                                                    \
        } else {                                                             \
            check_fail++;                                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                      \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
        }                                                                    \
    } while (0)

static inline int check_done(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_pass, check_fail);
    return check_fail ? 1 : 0;
}

#endif
