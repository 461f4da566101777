/*
 * ctl_view.h - what lwvhostctl shows: ports, statistics, rings, the MAC
 * table, policies and traces, as text tables, JSON (json.c) or Prometheus
 * text.
 *
 * Owns: reading the daemon's state for display and laying it out.
 * Must not: change anything (ctl_cmd.c does what commands change), or know
 * about sockets (ctl.c).  Runs on the control thread; it takes a device's
 * lock only to copy ring state (vu_dev_lock), and reads what workers write
 * through their atomic counters.
 */
#ifndef LWV_CTL_VIEW_H
#define LWV_CTL_VIEW_H

#include <stdbool.h>

#include "sbuf.h"

void view_ports(struct sbuf *b, bool json);
/* delta: rates since the previous delta view (lwvhostctl stats --watch). */
void view_stats(struct sbuf *b, bool json, bool delta);
void view_prometheus(struct sbuf *b);
void view_rings(struct sbuf *b, bool json);
void view_fdb(struct sbuf *b, bool json);
void view_policy(struct sbuf *b);
/* The recorded trace of one worker (or all, worker < 0): a function graph
 * and a summary, or the summary only. */
void view_trace(struct sbuf *b, bool graph, int worker);

#endif
