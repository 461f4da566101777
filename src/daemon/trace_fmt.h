/*
 * trace_fmt.h - renders worker trace records: a function-graph view in the
 * style of ftrace's function_graph tracer (nesting and durations), and a
 * summary (descriptors per wake-up, wake-up intervals, kick-to-service
 * delay, timer oversleep).
 *
 * Owns: text formats only.  Must not: touch live trace rings (it is given
 * snapshots).
 */
#ifndef LWV_TRACE_FMT_H
#define LWV_TRACE_FMT_H

#include <stddef.h>
#include <stdio.h>

#include "trace.h"

/* Names port indexes in the output. */
typedef const char *(*port_namer)(unsigned port_index);

void trace_format_graph(FILE *out, unsigned worker, const struct trace_rec *r, size_t n,
                        port_namer name);
void trace_format_summary(FILE *out, unsigned worker, const struct trace_rec *r, size_t n);

#endif
