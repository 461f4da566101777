/*
 * procfd.h - what tests and fuzzers measure of a process in /proc (its open
 * fds, mappings, memory, CPU), and the one way they send a message with
 * file descriptors attached (SCM_RIGHTS), as a vhost-user frontend does.
 */
#ifndef LWV_TEST_PROCFD_H
#define LWV_TEST_PROCFD_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Open fds of pid (0: this process, the counting one not counted), or -1. */
long proc_fd_count(pid_t pid);
/* Mappings of pid (0: this process) whose line contains match (NULL: all),
 * or -1. */
long proc_maps_count(pid_t pid, const char *match);
/* A "Key: N kB" field of /proc/PID/status (e.g. VmRSS), or -1. */
long proc_status_kb(pid_t pid, const char *key);
/* CPU seconds (user + system) pid has used, or -1. */
double proc_cpu_s(pid_t pid);

/* sendmsg of iov with nfds fds attached (none when nfds is 0); flags as
 * for sendmsg.  Returns what sendmsg returns. */
ssize_t send_fds(int sock, const struct iovec *iov, int niov, const int *fds, unsigned nfds,
                 int flags);

#endif
