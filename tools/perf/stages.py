#!/usr/bin/env python3
"""stages.py - instructions per frame of the forwarding path, by stage.

Reads `callgrind_annotate` output (exclusive costs per function) of a
fwd-micro run on stdin and prints, per stage, the instructions it spent per
frame.  Usage (docs/performance.md):

    valgrind --tool=callgrind --callgrind-out-file=cg.out build/tools/fwd-micro -i 2000
    callgrind_annotate cg.out | tools/perf/stages.py --frames 64000

A function is put in the first stage whose pattern matches its name; what
matches none is "other" (set-up, the benchmark's own loop).
"""
import argparse
import re
import sys

STAGES = [
    ("ring reads (avail, descriptors, chains)",
     r"vq_pop|heads_read|read_desc|walk_chain|walk_indirect|pop_chain|read_chain|add_buffer|"
     r"vq_avail_count|head_next"),
    ("address translation", r"mem_gpa_to|gpa_region|mem_hint|range_offset"),
    ("TX header parse", r"parse_tx|net_tx_parse|offload_hdr_valid|iov_to_buf"),
    ("switching (learn, lookup, classify)",
     r"switch_learn|switch_lookup|switch_forward|switch_classify|switch_source_ok|mac_key|"
     r"learn_key|lookup_key|destination"),
    ("RX fill and copy", r"memmove|memcpy|iov_copy|iov_xfer|buf_to_iov|net_rx_deliver|rx_one|"
     r"rx_general|net_rx_run|put_plain_hdr|chain_next"),
    ("used ring writes", r"vq_push|vq_flush"),
    ("interrupt decision", r"vq_should_signal|dev_signal|switch_flush|fwd_flush|remember_touched"),
    ("loop, locks, counters", r"net_tx_pass|fwd_tx_pass|tx_burst|deliver_burst|count_burst|"
     r"publish_tx_counts|deliver_vhost|switch_deliver|hold_rx_queue|switch_release|"
     r"pick_rx_queue|dev_queue_ready|pthread|rx_trylock|vq_disable_notify|deliver\b"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, required=True, help="frames the run moved")
    args = ap.parse_args()
    totals = {name: 0 for name, _ in STAGES}
    other = 0
    line_re = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S+):(\S+)")
    for line in sys.stdin:
        m = line_re.match(line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        cost = int(m.group(1).replace(",", ""))
        fn = m.group(3)
        for name, pat in STAGES:
            if re.search(pat, fn):
                totals[name] += cost
                break
        else:
            other += cost
    total = 0
    for name, _ in STAGES:
        per = totals[name] / args.frames
        total += per
        print(f"{name:42s} {per:8.1f}")
    print(f"{'total (per frame)':42s} {total:8.1f}")
    print(f"{'(other: set-up and the benchmark loop)':42s} {other / args.frames:8.1f}")


if __name__ == "__main__":
    main()
