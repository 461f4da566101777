/*
 * daemon.h - lwvhostd's life cycle: build ports from the configuration,
 * run the control loop, shut down cleanly.
 *
 * Owns: the port table, vhost-user listening sockets and client-mode
 * reconnects, the frontend connections' place in the event loop, signals.
 * Must not: interpret vhost-user messages (vu_ctrl.c) or serve queues
 * (worker.c).
 */
#ifndef LWV_DAEMON_H
#define LWV_DAEMON_H

int daemon_main(int argc, char **argv);

/* Removes the socket file at path left by a process that died (nothing
 * accepts on it), so it can be bound again; refuses, logging under what,
 * when a live process serves it or the file is not a socket.  0 or -1. */
int daemon_clear_stale_socket(const char *what, const char *path);

#endif
