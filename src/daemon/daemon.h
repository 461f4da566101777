/*
 * daemon.h - lwvhostd's life cycle: the configuration it runs with, ports
 * from the configuration at start, run-time changes asked through the
 * control socket, reloads on SIGHUP, readiness and stopping reported to
 * systemd, a clean shutdown.
 *
 * Owns: the running configuration (struct config), signals, the order of
 * start-up and shutdown.
 * Must not: manage a port's sockets or connections itself (port.c), parse
 * vhost-user messages (vu_ctrl.c) or serve queues (worker.c).
 */
#ifndef LWV_DAEMON_H
#define LWV_DAEMON_H

#include <stddef.h>
#include <stdio.h>

struct config;

int daemon_main(int argc, char **argv);

/* All below: control thread. */
const struct config *daemon_config(void);
/* key "port": spec is a --port value; key "tap": an interface name.  On
 * failure err says why and nothing changed. */
int daemon_port_add(const char *key, const char *spec, char *err, size_t errlen);
int daemon_port_del(const char *key, const char *name, char *err, size_t errlen);
/* The running configuration in the --config format, every port included. */
int daemon_write_config(FILE *f);
/* Rewrites the --config file lwvhostd started with (atomically), leaving
 * out ports given on the command line. */
int daemon_save(char *err, size_t errlen);

#endif
