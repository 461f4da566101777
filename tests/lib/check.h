/*
 * check.h - the one assertion and report format of every test program:
 * a line per check, "ok - what" or "FAIL file:line - what", notes as
 * "# ...", and a last line with the tally that tests/run.sh shows.  A
 * failed check is recorded and the test goes on.
 */
#ifndef LWV_TEST_CHECK_H
#define LWV_TEST_CHECK_H

#include <stdio.h>

#define CHECK(cond, ...) check_at(__FILE__, __LINE__, (cond) ? 1 : 0, __VA_ARGS__)

/* Records a check; returns ok, so a test may branch on it. */
int check_at(const char *file, int line, int ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A line of context in the output ("# ..."). */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned check_passed(void);
unsigned check_failed(void);
/* Prints "# NAME: N passed, M failed" and returns the exit status. */
int check_done(const char *name);

#endif
