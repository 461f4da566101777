/*
 * loop.h - the control thread's event loop (in the spirit of Redis's ae.c):
 * file watches on one epoll set plus a tick that runs once per iteration
 * and says how long the loop may sleep.
 *
 * Owns: the epoll set of the control thread and the lifetime of watches.
 * Must not: be used from worker threads.
 */
#ifndef LWV_LOOP_H
#define LWV_LOOP_H

#include <stdint.h>

struct loop_watch;
typedef void (*loop_fn)(void *arg, uint32_t events);

int loop_init(void);
void loop_fini(void);
struct loop_watch *loop_add(int fd, uint32_t events, loop_fn fn, void *arg);
void loop_mod(struct loop_watch *w, uint32_t events);
/* Stops watching; safe from inside a callback of the same iteration. */
void loop_del(struct loop_watch *w);
/* Runs until loop_stop(); tick() returns the next sleep in ms (-1: none). */
void loop_run(int (*tick)(void));
void loop_stop(void);
uint64_t now_ms(void);

#endif
