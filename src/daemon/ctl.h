/*
 * ctl.h - the control socket that lwvhostctl talks to.
 *
 * Owns: the listening unix socket (mode 0600), reading one command line
 * per client and writing the answer without blocking the control thread
 * (ctl.c); the command table (ctl_cmd.c), which answers with the views of
 * ctl_view.c.
 * Must not: change device state.  Its views read ports, the MAC table and
 * workers; the one thing it changes is a port's policy, an atomic word the
 * workers read, after which it pokes the port's queues.
 */
#ifndef LWV_CTL_H
#define LWV_CTL_H

#include <stddef.h>

#define CTL_LINE_MAX 8192   /* "vxlan add" and a CONFIG_VALUE_MAX spec fit */

int ctl_open(const char *path);
void ctl_close(void);
/* Renders the answer to one command line; returns a malloc'd string. */
char *ctl_execute(const char *line);

#endif
