/*
 * sysc.h - counts the system calls a thread makes, so that what one worker
 * wake-up costs can be shown (lwvhostctl stats: system calls, CPU and frames
 * per wake-up) and cross-checked with strace.
 *
 * Owns: one thread-local counter.  Every system call the datapath can make
 * (epoll, the timer, kick, wake and call eventfds, tap reads and writes,
 * the thread CPU clock) counts itself with sysc_note() right beside it;
 * the worker publishes its thread's count once per iteration.
 * Must not: count anything but system calls (vDSO clock reads are not).
 */
#ifndef LWV_SYSC_H
#define LWV_SYSC_H

#include <stdint.h>

extern __thread uint64_t sysc_count;

static inline void sysc_note(void)
{
    sysc_count++;
}

#endif
