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

#endif
