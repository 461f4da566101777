/*
 * test_trace_fmt.c - the trace views (lwvhostctl trace): a recorded event
 * sequence prints as the function graph and the summary the docs show,
 * with durations measured between the right events.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "trace_fmt.h"

static const char *port_name(unsigned port)
{
    return port == 0 ? "vm0" : port == 1 ? "vm1" : "tap0";
}

static struct trace_rec rec(uint64_t ts_us, enum trace_event ev, unsigned port, unsigned q,
                            uint32_t arg)
{
    struct trace_rec r = { .ts_ns = ts_us * 1000, .event = (uint8_t)ev, .port = (uint8_t)port,
                           .queue = (uint16_t)q, .arg = arg };
    return r;
}

/* Runs the graph view over r[0..n) into a string the caller frees. */
static char *graph(const struct trace_rec *r, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    trace_format_graph(f, 0, r, n, port_name);
    fclose(f);
    return buf;
}

/* The line of out that contains what, or NULL. */
static const char *line_with(const char *out, const char *what, char *line, size_t len)
{
    const char *p = out ? strstr(out, what) : NULL;
    if (!p)
        return NULL;
    const char *b = p;
    while (b > out && b[-1] != '\n')
        b--;
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - b) : strlen(b);
    if (n >= len)
        n = len - 1;
    memcpy(line, b, n);
    line[n] = 0;
    return line;
}

static void test_graph(void)
{
    struct trace_rec r[] = {
        rec(100, TR_WAKE_KICK, 1, 1, 0),
        rec(101, TR_WAKE_TIMER, 0, 0, 2500),
        rec(102, TR_NOTIFY_OFF, 1, 1, 0),
        rec(103, TR_TX_BEGIN, 1, 1, 1),
        rec(110, TR_SIGNAL, 0, 0, 0),
        rec(112, TR_TX_END, 1, 1, 32),
        rec(113, TR_POLICY, 1, 1, (2u << 24) | 0),
        rec(114, TR_NOTIFY_ON, 1, 1, 0),
        rec(120, TR_SLEEP, 0, 0, 50),
        rec(200, TR_WAKE_OTHER, 0, 0, 0),
        rec(205, TR_SLEEP, 0, 0, UINT32_MAX),
        rec(206, 200, 0, 0, 0),   /* an event this view does not know */
    };
    char *out = graph(r, sizeof(r) / sizeof(r[0]));
    char l[256];
    CHECK(out != NULL, "graph produced");
    CHECK(out && strstr(out, "# worker 0: 12 events\n"), "header counts the events");
    CHECK(line_with(out, "wake(kick vm1.q1) {", l, sizeof l) &&
              strstr(l, "0.000 |") && !strstr(l, " us |"),
          "first wake-up opens the graph at time 0, no duration: %s", out ? l : "");
    CHECK(line_with(out, "/* and timer */", l, sizeof l), "a second wake reason nests");
    CHECK(line_with(out, "  kicks_off(vm1.q1);", l, sizeof l), "kicks off at depth 1");
    CHECK(line_with(out, "tx_pass(vm1.q1, interval) {", l, sizeof l), "TX pass names the policy");
    CHECK(line_with(out, "    signal(vm0.q0);", l, sizeof l), "signal at depth 2");
    CHECK(line_with(out, "} /* 32 descriptors */", l, sizeof l) && strstr(l, "9.000 us"),
          "TX pass lasts from begin to end (9 us): %s", l);
    CHECK(line_with(out, "adaptive -> poll 0 us;", l, sizeof l), "policy decision decoded");
    CHECK(line_with(out, "kicks_on(vm1.q1);", l, sizeof l), "kicks on");
    CHECK(line_with(out, "} /* sleep 50 us */", l, sizeof l) && strstr(l, "20.000 us"),
          "wake-up lasts from the wake to the sleep (20 us): %s", l);
    CHECK(line_with(out, "wake(poke) {", l, sizeof l) && strstr(l, "100.000 |"),
          "second wake-up 100 us after the first: %s", l);
    CHECK(line_with(out, "} /* sleep until a kick */", l, sizeof l) && strstr(l, "5.000 us"),
          "sleep until a kick, 5 us after its wake: %s", l);
    unsigned lines = 0;
    for (const char *p = out; p && *p; p++)
        lines += *p == '\n';
    CHECK(lines == 2 + 11, "one line per known event plus the header (%u lines)", lines);
    free(out);
}

static void test_graph_edges(void)
{
    char *out = graph(NULL, 0);
    unsigned lines = 0;
    for (const char *p = out; p && *p; p++)
        lines += *p == '\n';
    CHECK(out && strstr(out, "# worker 0: 0 events") && lines == 2, "no events: header only");
    free(out);
    /* An end without a begin, a sleep without a wake: no duration made up. */
    struct trace_rec r[] = {
        rec(10, TR_TX_END, 0, 1, 3),
        rec(20, TR_SLEEP, 0, 0, 7),
    };
    out = graph(r, 2);
    char l[256];
    CHECK(line_with(out, "} /* 3 descriptors */", l, sizeof l) && !strstr(l, " us |"),
          "TX end without its begin has no duration");
    CHECK(line_with(out, "} /* sleep 7 us */", l, sizeof l) && !strstr(l, " us |"),
          "sleep without a wake-up has no duration");
    free(out);
}

static void test_summary(void)
{
    struct trace_rec r[] = {
        rec(0, TR_WAKE_KICK, 0, 1, 0),
        rec(2, TR_TX_BEGIN, 0, 1, 0),
        rec(4, TR_TX_END, 0, 1, 10),
        rec(5, TR_SIGNAL, 1, 0, 0),
        rec(6, TR_SLEEP, 0, 0, UINT32_MAX),
        rec(100, TR_WAKE_TIMER, 0, 0, 3000),
        rec(101, TR_TX_BEGIN, 0, 1, 1),
        rec(103, TR_TX_END, 0, 1, 20),
        rec(104, TR_SLEEP, 0, 0, 50),
    };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!CHECK(f != NULL, "memstream"))
        return;
    trace_format_summary(f, 3, r, sizeof(r) / sizeof(r[0]));
    fclose(f);
    CHECK(buf && strstr(buf, "# worker 3 summary: 9 events"), "summary header: %s", buf);
    CHECK(buf && strstr(buf, "wake-ups 2 (kick 1, timer 1), descriptors 30, interrupts 1"),
          "counts wake-ups by reason, descriptors and interrupts");
    free(buf);
}

int main(void)
{
    test_graph();
    test_graph_edges();
    test_summary();
    return check_done("test_trace_fmt");
}
