#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarises bench/run.sh's raw.tsv into results.md and gnuplot inputs.

    python3 bench/report.py OUT_DIR [--require-all]

Reads OUT_DIR/raw.tsv (round, bench, impl, case, value, unit, note),
machine.txt, skipped.txt and errors.txt; writes OUT_DIR/results.md (Markdown
tables: median of the rounds with min-max, and ratios taken within each
round), the .dat files and plots.gp for gnuplot. Standard library only.
Exits 1 if raw.tsv has no usable line or a line does not parse, or, with
--require-all, if a part of the suite has no measurement at all.
"""
import os
import statistics
import sys
from collections import defaultdict

RINGS = ["64K", "1M", "16M"]
WRITES = ["64", "1K", "16K", "64K", "1M"]
BULK_IMPLS = [("shmpipe", "shmpipe"), ("shmpipe_zc", "shmpipe zero-copy"),
              ("pipe", "pipe(2)"), ("socketpair", "socketpair"), ("memcpy", "memcpy")]
ITEM_IMPLS = [("shmpipe", "shmpipe (blocking)"),
              ("shmpipe_rbuf", "shmpipe, reader takes up to 1024 per call"),
              ("rigtorp", "cached-index SPSC ring (spins)"),
              ("ck", "ck_ring (spins)"),
              ("boost", "boost::lockfree::spsc_queue (spins)"),
              ("node_seed", "Node.js seed: SABWritable + worker"),
              ("node_addon", "Node.js addon over shmpipe")]
# Message transports: columns of the bulk table when they ran (64 KiB
# messages), rows of the records table.
MSG_IMPLS = [("zmq_ipc", "ZeroMQ ipc"), ("zmq_inproc", "ZeroMQ inproc"), ("nng_ipc", "nng ipc")]
REC_IMPLS = [("shmpipe", "shmpipe record mode"), ("mq", "POSIX mq"),
             ("seqpacket", "SOCK_SEQPACKET")] + MSG_IMPLS
LAT_IMPLS = [("shmpipe_sleep", "shmpipe, both asleep (spin 0)"),
             ("shmpipe_spin", "shmpipe, both spinning (default spin)"),
             ("futex", "raw futex ping-pong"), ("pipe", "pipe(2) ping-pong")]
POLL_IMPLS = [("shmpipe", "shmpipe"), ("shmpipe_fenced", "shmpipe fenced"),
              ("pipe", "pipe(2)"), ("socketpair", "socketpair")]
POLL_PIPES = ["1", "8", "64"]
POLL_SIDES = [("read", "epoll reads"), ("write", "epoll writes")]
POLL_LOOPS = [("first", "call first, wait on EAGAIN (EPOLLET)"),
              ("lt", "wait, then one call per event (level-triggered)")]
DEAD_CASES = [("reader poll", "reader's descriptor polls readable"),
              ("writer poll", "writer's descriptor polls readable"),
              ("reader blocked", "blocked read returns -ECONNRESET"),
              ("writer blocked", "blocked write returns -EPIPE")]


def bytes_of(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s)


def fmt(v):
    if v is None:
        return "–"
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    if v >= 1:
        return "%.2f" % v
    return "%.3g" % v


class Data:
    def __init__(self, path):
        # (bench, impl, case) -> {round: value}; notes -> set
        self.vals = defaultdict(dict)
        self.notes = defaultdict(set)
        self.units = {}
        bad = 0
        with open(path) as f:
            for n, line in enumerate(f, 1):
                parts = line.rstrip("\n").split("\t")
                try:
                    rnd, bench, impl, case, value, unit, note = parts
                    key = (bench, impl, case)
                    self.vals[key][int(rnd)] = float(value)
                except ValueError:
                    print("report.py: %s:%d does not parse: %r" % (path, n, line), file=sys.stderr)
                    bad += 1
                    continue
                self.units[key] = unit
                if note != "-":
                    self.notes[key].add(note)
        self.bad = bad

    def series(self, bench, impl, case):
        return self.vals.get((bench, impl, case), {})

    def stat(self, bench, impl, case):
        v = list(self.series(bench, impl, case).values())
        if not v:
            return None
        return statistics.median(v), min(v), max(v)

    def ratio(self, bench, a, b, case, case_b=None):
        """Median, min, max of a/b taken round by round."""
        sa, sb = self.series(bench, a, case), self.series(bench, b, case_b or case)
        r = [sa[k] / sb[k] for k in sa if k in sb and sb[k] > 0]
        if not r:
            return None
        return statistics.median(r), min(r), max(r)


def cell(s, unit=""):
    if s is None:
        return "–"
    med, lo, hi = s
    return "%s%s (%s–%s)" % (fmt(med), unit, fmt(lo), fmt(hi))


def rcell(s):
    if s is None:
        return "–"
    med, lo, hi = s
    return "**%.2f×** (%.2f–%.2f)" % (med, lo, hi)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build-bench/bench-results"
    d = Data(os.path.join(out, "raw.tsv"))
    if not d.vals or d.bad:
        print("report.py: no usable measurements in %s/raw.tsv" % out, file=sys.stderr)
        return 1
    missing = {"bulk", "items", "records", "latency", "backpressure", "memory",
               "poll", "pollrtt", "deadpeer", "fanout", "share"} - {k[0] for k in d.vals}
    if missing and "--require-all" in sys.argv[2:]:
        print("report.py: no %s measurement in %s/raw.tsv" % (", ".join(sorted(missing)), out),
              file=sys.stderr)
        return 1

    def read(name):
        p = os.path.join(out, name)
        return open(p).read().strip() if os.path.exists(p) else ""

    md = []
    w = md.append
    w("# shmpipe benchmark results\n")
    w("Median of the rounds, with the minimum–maximum in brackets. Ratios are taken "
      "within each round (both sides measured minutes apart at most), then summarised "
      "the same way.\n")
    w("## Machine\n")
    w("```\n%s\n```\n" % read("machine.txt"))
    skipped = read("skipped.txt")
    if skipped:
        w("Not measured in this run:\n")
        for line in skipped.splitlines():
            w("- %s" % line)
        w("")

    # Bulk.
    w("## Bulk bytes between two threads (GB/s)\n")
    w("Each write (and read) moves WRITE bytes; pipe(2) is grown with F_SETPIPE_SZ and "
      "the socket buffers are set to the ring size. memcpy is one thread copying the same "
      "volume once into a ring-sized buffer: the machine's limit for one copy per byte. "
      "shmpipe copies each byte twice (in and out), zero-copy once (the producer's copy "
      "into the reserved span; the consumer checks it in place).\n")
    msg_peers = [(i, n) for i, n in MSG_IMPLS
                 if any(d.series("bulk", i, "ring=%s write=%s" % (r, wr)) for r in RINGS for wr in WRITES)]
    if msg_peers:
        w("The message transports (%s: ZeroMQ's PUSH/PULL sockets and nng's push0/pull0 "
          "over ipc:// or inproc://) send one WRITE-byte message per call (zmq_send, "
          "nng_send) and receive it into the reader's buffer; their queues hold a ring's "
          "worth of messages, half on each side (ZeroMQ's ZMQ_SNDHWM and ZMQ_RCVHWM, nng's "
          "NNG_OPT_SENDBUF and NNG_OPT_RECVBUF), with ipc's kernel socket buffers on top. "
          "Every message's length, sequence number and last byte are checked.\n"
          % ", ".join(n for _, n in msg_peers))
    head = ["ring", "write"] + [n for _, n in BULK_IMPLS + msg_peers] + \
        ["shmpipe ÷ pipe", "shmpipe ÷ socketpair", "zero-copy ÷ pipe"] + \
        ["shmpipe ÷ %s" % n for _, n in msg_peers]
    w("| " + " | ".join(head) + " |")
    w("|" + "---|" * len(head))
    worst = {"pipe": None, "socketpair": None}
    misses = {"pipe": [], "socketpair": []}
    for ring in RINGS:
        for wr in WRITES:
            case = "ring=%s write=%s" % (ring, wr)
            if not any(d.series("bulk", i, case) for i, _ in BULK_IMPLS + msg_peers):
                continue
            row = [ring, wr] + [cell(d.stat("bulk", i, case)) for i, _ in BULK_IMPLS + msg_peers]
            for peer, target in (("pipe", 3.0), ("socketpair", 2.0)):
                r = d.ratio("bulk", "shmpipe", peer, case)
                if r:
                    if worst[peer] is None or r[0] < worst[peer][0]:
                        worst[peer] = (r[0], case)
                    if r[0] < target:
                        misses[peer].append("%s: %.2f×" % (case, r[0]))
            row += [rcell(d.ratio("bulk", "shmpipe", "pipe", case)),
                    rcell(d.ratio("bulk", "shmpipe", "socketpair", case)),
                    rcell(d.ratio("bulk", "shmpipe_zc", "pipe", case))]
            row += [rcell(d.ratio("bulk", "shmpipe", i, case)) for i, _ in msg_peers]
            w("| " + " | ".join(row) + " |")
    granted = []
    for ring in RINGS:
        for impl in ("pipe", "socketpair"):
            notes = set()
            for wr in WRITES:
                notes |= d.notes.get(("bulk", impl, "ring=%s write=%s" % (ring, wr)), set())
            if notes:
                granted.append("%s ring %s: %s" % (impl, ring, ", ".join(sorted(notes))))
    if granted:
        w("\nGranted by the kernel: " + "; ".join(granted) + ".\n")
    else:
        w("")

    # Items.
    w("## Small items: 4-byte ints between two threads (M items/s)\n")
    w("One call per item, and batches of 1024 ints per call (shmpipe: one 4096-byte write; "
      "the SPSC ring and boost: their bulk push/pop; ck_ring has no batch call, so its "
      "batch is a loop of single calls). All rings hold 16384 ints (shmpipe: 64 KiB). "
      "shmpipe keeps its blocking behaviour; the other rings busy-spin when full or empty. "
      "Every consumer checks the sequence 1, 2, 3 …\n")
    w("| implementation | one call per item | batches of 1024 | notes |")
    w("|---|---|---|---|")
    for impl, name in ITEM_IMPLS:
        s1, sb = d.stat("items", impl, "batch=1"), d.stat("items", impl, "batch=1024")
        if s1 is None and sb is None:
            continue
        notes = d.notes.get(("items", impl, "batch=1"), set()) | \
            d.notes.get(("items", impl, "batch=1024"), set())
        w("| %s | %s | %s | %s |" % (name, cell(s1), cell(sb), "; ".join(sorted(notes)) or ""))
    w("")
    w("| ratio | one call per item | batches of 1024 |")
    w("|---|---|---|")
    for peer, name in ITEM_IMPLS[2:]:
        r1 = d.ratio("items", "shmpipe", peer, "batch=1")
        rb = d.ratio("items", "shmpipe", peer, "batch=1024")
        if r1 or rb:
            w("| shmpipe ÷ %s | %s | %s |" % (name, rcell(r1), rcell(rb)))
    w("")

    # Records.
    w("## Records between two threads (M records/s)\n")
    w("One write and one read per record; every record's length and sequence number "
      "are checked.\n")
    if any(d.series("records", i, "size=%d" % sz) for i, _ in MSG_IMPLS for sz in (64, 4096)):
        w("ZeroMQ (PUSH/PULL sockets) and nng (push0/pull0) over ipc:// or inproc://: one "
          "zmq_send or nng_send of the writer's buffer, one zmq_recv or "
          "nng_recv into the reader's; their queues hold 1 MiB worth of records, as shmpipe's "
          "ring does, half on each side (high-water marks, nng's socket buffers, at most "
          "8192 messages each).\n")
    w("| implementation | 64 B | 4 KiB | granted |")
    w("|---|---|---|---|")
    for impl, name in REC_IMPLS:
        a, b = d.stat("records", impl, "size=64"), d.stat("records", impl, "size=4096")
        if a is None and b is None:
            continue
        notes = d.notes.get(("records", impl, "size=64"), set()) | \
            d.notes.get(("records", impl, "size=4096"), set())
        w("| %s | %s | %s | %s |" % (name, cell(a), cell(b), "; ".join(sorted(notes))))
    for peer, name in REC_IMPLS[1:]:
        a = d.ratio("records", "shmpipe", peer, "size=64")
        b = d.ratio("records", "shmpipe", peer, "size=4096")
        if a or b:
            w("| shmpipe ÷ %s | %s | %s | |" % (name, rcell(a), rcell(b)))
    w("")

    # Fan-out.
    fan = "ring=1M write=64K"
    if any(d.series("fanout", i, "readers=%d %s" % (n, fan)) for i in ("shmpipe",) for n in (1, 2, 4)):
        w("## One writer, N readers: every reader gets the whole stream (GB/s)\n")
        w("The stream's rate: the bytes written over the time until the last reader has "
          "them all, 64 KiB writes, reader threads. shmpipe: one broadcast pipe "
          "(`options.readers`; 1 is the plain pipe) of 1 MiB. pipe(2) × N: a pipe of 1 MiB "
          "per reader, the writer writing every chunk N times. tee(1): one pipe into tee, "
          "which copies into N pipes.\n")
        w("| implementation | 1 reader | 2 readers | 4 readers |")
        w("|---|---|---|---|")
        for impl, name in (("shmpipe", "shmpipe broadcast"), ("pipes", "pipe(2) × N"),
                           ("tee", "tee(1) over pipe(2)")):
            w("| %s | %s |" % (name, " | ".join(
                cell(d.stat("fanout", impl, "readers=%d %s" % (n, fan))) for n in (1, 2, 4))))
        for peer, name in (("pipes", "pipe(2) × N"), ("tee", "tee(1)")):
            w("| shmpipe ÷ %s | %s |" % (name, " | ".join(
                rcell(d.ratio("fanout", "shmpipe", peer, "readers=%d %s" % (n, fan)))
                for n in (1, 2, 4))))
        w("")
    if any(d.series("share", "shmpipe", "workers=%d work=%sus" % (n, us))
           for n in (1, 2, 4) for us in ("5", "0")):
        w("## Work-sharing: each record to one of N workers (M records/s)\n")
        w("64-byte records (`SHMPIPE_SHARE`), each taken by one of N worker threads, which "
          "works on it for the time given (hashing it until the clock says so); ratios "
          "against one worker in the same round. The machine has the processors listed "
          "above, shared by the writer and the workers.\n")
        w("| work per record | 1 worker | 2 workers | 4 workers | 2 ÷ 1 | 4 ÷ 1 |")
        w("|---|---|---|---|---|---|")
        for us in ("5", "0"):
            c = ["workers=%d work=%sus" % (n, us) for n in (1, 2, 4)]
            w("| %s µs | %s | %s | %s |" % (us, " | ".join(cell(d.stat("share", "shmpipe", x))
                                                          for x in c),
                                            rcell(d.ratio("share", "shmpipe", "shmpipe", c[1], c[0])),
                                            rcell(d.ratio("share", "shmpipe", "shmpipe", c[2], c[0]))))
        w("")

    # Latency.
    w("## Wake-up latency: ping-pong round trip (µs)\n")
    w("One byte each way between two threads, 1 byte per write.\n")
    w("| implementation | median | p99 |")
    w("|---|---|---|")
    for impl, name in LAT_IMPLS:
        a, b = d.stat("latency", impl, "p50"), d.stat("latency", impl, "p99")
        if a is None:
            continue
        w("| %s | %s | %s |" % (name, cell(a), cell(b)))
    for peer, name in LAT_IMPLS[2:]:
        r = d.ratio("latency", "shmpipe_sleep", peer, "p50")
        if r:
            w("| shmpipe asleep ÷ %s (median; lower is better) | %s | |" % (name, rcell(r)))
    w("")

    # Backpressure, system calls, memory.
    w("## Backpressure, system calls, memory\n")
    bp = d.stat("backpressure", "shmpipe", "producer CPU while blocked")
    futex = d.stat("futex", "shmpipe", "ring=1M write=64K")
    sleeps = d.stat("sleeps", "shmpipe", "ring=1M write=64K")
    mem_keys = [k for k in d.vals if k[0] == "memory" and k[1] == "shmpipe"]
    mem = d.stat(*mem_keys[0]) if mem_keys else None
    w("| measure | value |")
    w("|---|---|")
    if bp:
        w("| producer's CPU while blocked, seed scenario (8 Int32 slots, consumer sleeps "
          "20 ms per item) | %s |" % cell(bp, " %"))
    wake = d.stat("syscalls", "shmpipe", "wake-ups ring=1M write=64K")
    allsys = d.stat("syscalls", "shmpipe", "all ring=1M write=64K")
    if futex:
        w("| futex calls per GiB, 64 KiB writes through a 1 MiB ring (perf) | %s |" % cell(futex))
    if wake:
        w("| wait and wake-up system calls per MiB (futex, the doorbell's write, read and "
          "poll, membarrier), same | %s |" % cell(tuple(x / 1024 for x in wake)))
    if allsys:
        w("| all system calls per MiB, same | %s |" % cell(tuple(x / 1024 for x in allsys)))
    yields = d.stat("syscalls", "shmpipe", "sched_yield ring=1M write=64K")
    if yields:
        w("| of which sched_yield (a spinning side giving up its core), per MiB | %s |"
          % cell(tuple(x / 1024 for x in yields)))
    if futex and not wake:
        w("| futex calls per MiB, same | %s |" % cell(tuple(x / 1024 for x in futex)))
    if not futex and not wake:
        w("| system calls per GiB | n/a (no perf) |")
    if sleeps:
        w("| sleeps per GiB, either side (shmpipe_stats waits), same transfer | %s |" % cell(sleeps))
    if mem:
        w("| peak RSS of the whole process, %s through a 1 MiB ring | %s |"
          % (mem_keys[0][2].split()[0].split("=")[1], cell(mem, " MiB")))
    w("")

    poll_targets = poll_section(d, w)

    # Targets.
    w("## Targets\n")
    w("| target | this run | met |")
    w("|---|---|---|")

    def target(name, figure, ok):
        w("| %s | %s | %s |" % (name, figure, "–" if ok is None else ("yes" if ok else "**no**")))

    for peer, t in (("pipe", 3.0), ("socketpair", 2.0)):
        if worst[peer]:
            fig = "worst cell %.2f× (%s)" % worst[peer]
            if misses[peer]:
                fig += "; below target: " + ", ".join(misses[peer])
            target("bulk ≥ %.0f× %s of the same buffer size" % (t, peer), fig, not misses[peer])
    r = d.ratio("items", "shmpipe", "rigtorp", "batch=1")
    if r:
        target("one call per item ≥ 1.0× the cached-index ring", "%.2f× (%.2f–%.2f)" % r, r[0] >= 1.0)
    if wake:
        # The library waits on a doorbell now: count every wait and wake-up call.
        target("< 1 wait or wake-up system call per MiB in steady state",
               "%.3g per MiB" % (wake[0] / 1024), wake[0] / 1024 < 1)
    elif futex:
        target("< 1 futex call per MiB in steady state", "%.3g per MiB" % (futex[0] / 1024),
               futex[0] / 1024 < 1)
    elif "memory" in {k[0] for k in d.vals}:
        target("< 1 wait or wake-up system call per MiB in steady state", "n/a (no perf)", None)
    if bp:
        target("blocked producer < 2% CPU", "%.2f %%" % bp[0], bp[0] < 2)
    for name, figure, ok in poll_targets:
        target(name, figure, ok)
    w("")

    errors = read("errors.txt")
    if errors:
        w("## Failures\n")
        w("```\n%s\n```\n" % errors)

    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    # gnuplot inputs: medians with min and max for error bars.
    plots = []
    for ring in RINGS:
        with open(os.path.join(out, "bulk-%s.dat" % ring), "w") as f:
            f.write("# write " + " ".join("%s_med %s_min %s_max" % (i, i, i) for i, _ in BULK_IMPLS) + "\n")
            for wr in WRITES:
                cols = []
                for i, _ in BULK_IMPLS:
                    s = d.stat("bulk", i, "ring=%s write=%s" % (ring, wr))
                    cols += ["%g %g %g" % s if s else "NaN NaN NaN"]
                f.write("%d %s\n" % (bytes_of(wr), " ".join(cols)))
    with open(os.path.join(out, "items.dat"), "w") as f:
        f.write("# impl batch1_med batch1024_med\n")
        for impl, name in ITEM_IMPLS:
            a, b = d.stat("items", impl, "batch=1"), d.stat("items", impl, "batch=1024")
            if a or b:
                f.write('"%s" %s %s\n' % (impl, "%g" % a[0] if a else "NaN", "%g" % b[0] if b else "NaN"))
    with open(os.path.join(out, "latency.dat"), "w") as f:
        f.write("# impl p50 p99\n")
        for impl, name in LAT_IMPLS:
            a, b = d.stat("latency", impl, "p50"), d.stat("latency", impl, "p99")
            if a:
                f.write('"%s" %g %g\n' % (impl, a[0], b[0] if b else float("nan")))
    q = lambda p: os.path.join(out, p).replace('"', '\\"')
    has = {k[0] for k in d.vals}
    # gnuplot refuses a plot without a single point: plot only what ran.
    if "bulk" in has:
        plot_bulk(plots, q)
    if "items" in has:
        plot_bars(plots, q, "items", "4-byte items between two threads (median)", "M items/s",
                  '"one call per item", "" using 3 title "batches of 1024"')
    if "latency" in has:
        plot_bars(plots, q, "latency", "Ping-pong round trip (median and p99)", "µs",
                  '"median", "" using 3 title "p99"')
    if "poll" in has:
        plot_poll(plots, q, d, out)
    with open(os.path.join(out, "plots.gp"), "w") as f:
        f.write("\n".join(plots) + "\n")
    return 0


def poll_section(d, w):
    """The poll group's tables; returns its target rows (name, figure, met)."""
    targets = []
    if not any(k[0] in ("poll", "pollrtt", "deadpeer") for k in d.vals):
        return targets
    w("## Event loops: one thread with epoll over N pipes\n")
    w("One thread waits in epoll on one end of each of N pipes (shmpipe: the end's "
      "descriptor, shmpipe_*_pollfd, with timeout 0); one other thread holds the other "
      "ends and serves them round robin with blocking calls, so every transport gets the "
      "same two threads. Each pipe buffers 64 KiB (shmpipe's capacity, pipe(2)'s "
      "F_SETPIPE_SZ, the sockets' SO_SNDBUF/SO_RCVBUF); bulk moves 16 KiB writes and reads "
      "of up to 64 KiB, records are 64 bytes, one call each (a SHMPIPE_RECORDS pipe, "
      "64-byte read(2)/write(2) on a pipe, a SOCK_SEQPACKET socket pair). The epoll thread "
      "calls until -EAGAIN on every event (edge-triggered). Every byte's chunk stamp and "
      "every record's sequence number are checked. \"shmpipe fenced\" is the same library "
      "run with SHMPIPE_NO_BARRIER=1: the ends publish with a full fence, so that a call "
      "that returns -EAGAIN needs no membarrier(2); it shows what that system call "
      "costs an event loop.\n")
    for test, title, unit in (("bulk", "Bulk bytes", "GB/s"),
                              ("records", "64-byte records", "M records/s")):
        rows = []
        for side, sname in POLL_SIDES:
            for n in POLL_PIPES:
                case = "%s side=%s pipes=%s" % (test, side, n)
                if not any(d.series("poll", i, case) for i, _ in POLL_IMPLS):
                    continue
                row = [sname, n] + [cell(d.stat("poll", i, case)) for i, _ in POLL_IMPLS]
                row += [rcell(d.ratio("poll", "shmpipe", "pipe", case)),
                        rcell(d.ratio("poll", "shmpipe", "socketpair", case)),
                        rcell(d.ratio("poll", "shmpipe_fenced", "pipe", case))]
                rows.append(row)
                r = d.ratio("poll", "shmpipe", "pipe", case)
                if test == "bulk" and n == "64" and r:
                    targets.append(("bulk through epoll ≥ 3× pipe(2)+epoll at N = 64, %s" % sname,
                                    "%.2f× (%.2f–%.2f)" % r, r[0] >= 3.0))
        if not rows:
            continue
        w("### %s (%s)\n" % (title, unit))
        head = ["side", "pipes"] + [n for _, n in POLL_IMPLS] + \
            ["shmpipe ÷ pipe(2)", "shmpipe ÷ socketpair", "fenced ÷ pipe(2)"]
        w("| " + " | ".join(head) + " |")
        w("|" + "---|" * len(head))
        for row in rows:
            w("| " + " | ".join(row) + " |")
        w("")

    rtt_rows = []
    for loop, lname in POLL_LOOPS:
        for impl, iname in POLL_IMPLS[:3]:
            med = d.stat("pollrtt", impl, loop + " p50")
            if med is None:
                continue
            r = d.ratio("pollrtt", impl, "pipe", loop + " p50") if impl != "pipe" else None
            rtt_rows.append("| %s | %s | %s | %s | %s |" % (
                lname, iname, cell(med), cell(d.stat("pollrtt", impl, loop + " p99")),
                rcell(r)))
            if impl == "shmpipe" and r:
                targets.append(("round trip through epoll ≤ pipe(2)+epoll (%s)" % lname,
                                "%.2f× (%.2f–%.2f) at the median" % r, r[0] <= 1.0))
    if rtt_rows:
        w("### Round trip through epoll (µs)\n")
        w("One byte each way between two threads, each waiting in its own epoll on the "
          "pipe it reads.\n")
        w("| loop | implementation | median | p99 | ÷ pipe(2), median (lower is better) |")
        w("|---|---|---|---|---|")
        for row in rtt_rows:
            w(row)
        w("")

    dead_rows = []
    worst = None    # the slowest of the rounds' medians (the target)
    slowest = None  # the slowest single trial
    for case, cname in DEAD_CASES:
        cells = []
        for impl in ("shmpipe", "pipe"):
            med = d.stat("deadpeer", impl, case)
            mx = d.series("deadpeer", impl, case + " max")
            cells += [cell(med), fmt(max(mx.values())) if mx else "–"]
            if impl == "shmpipe" and med and (worst is None or med[2] > worst[0]):
                worst = (med[2], case)
            if impl == "shmpipe" and mx and (slowest is None or max(mx.values()) > slowest[0]):
                slowest = (max(mx.values()), case)
        if any(c != "–" for c in cells):
            dead_rows.append("| %s | %s |" % (cname, " | ".join(cells)))
    if dead_rows:
        w("### Notice of a killed peer (ms)\n")
        w("A forked child holds the other end; the parent's end waits (a call returned "
          "-EAGAIN, or a blocking call in a thread); time from kill -9 of the child to "
          "the descriptor polling readable, or to the blocked call's return. Median of each "
          "round's median, with the rounds' range, and the slowest single trial of the run. "
          "pipe(2): the same with a pipe's read end (POLLHUP) and write end (POLLERR), the "
          "kernel's own floor.\n")
        w("| scenario | shmpipe | shmpipe slowest | pipe(2) | pipe(2) slowest |")
        w("|---|---|---|---|---|")
        for row in dead_rows:
            w(row)
        w("")
        if worst:
            fig = "slowest round's median %.3f ms (%s)" % worst
            if slowest:
                fig += "; slowest single trial %.3f ms (%s)" % slowest
            targets.append(("dead-peer notice ≤ 10 ms (median of the trials)", fig,
                            worst[0] <= 10.0))
    return targets


def plot_poll(plots, q, d, out):
    panels = []
    for test, unit in (("bulk", "GB/s"), ("records", "M records/s")):
        for side, sname in POLL_SIDES:
            name = "poll-%s-%s.dat" % (test, side)
            with open(os.path.join(out, name), "w") as f:
                f.write("# pipes " + " ".join("%s_med %s_min %s_max" % (i, i, i)
                                             for i, _ in POLL_IMPLS) + "\n")
                for n in POLL_PIPES:
                    cols = []
                    for i, _ in POLL_IMPLS:
                        s = d.stat("poll", i, "%s side=%s pipes=%s" % (test, side, n))
                        cols += ["%g %g %g" % s if s else "NaN NaN NaN"]
                    f.write("%s %s\n" % (n, " ".join(cols)))
            panels.append((name, "%s, %s" % (test, sname), unit))
    plots.append('set terminal pngcairo size 1500,900 font ",10" noenhanced')
    plots.append('set output "%s"' % q("poll.png"))
    plots.append('set multiplot layout 2,2 title "One thread with epoll over N pipes '
                 '(median, min–max)"')
    plots.append("set logscale x 2; set logscale y; set grid; set key below horizontal")
    plots.append('set xlabel "pipes"; set xtics (1, 8, 64); set xrange [0.7:90]')
    for name, title, unit in panels:
        series = []
        for n, (impl, iname) in enumerate(POLL_IMPLS):
            c = 2 + 3 * n
            series.append('"%s" using 1:%d:%d:%d with yerrorlines title "%s"'
                          % (q(name), c, c + 1, c + 2, iname))
        plots.append('set title "%s"; set ylabel "%s"' % (title, unit))
        plots.append("plot " + ", \\\n     ".join(series))
    plots.append("unset multiplot")
    plots.append("reset")


def plot_bulk(plots, q):
    plots.append('set terminal pngcairo size 1500,480 font ",10" noenhanced')
    plots.append('set output "%s"' % q("bulk.png"))
    plots.append('set multiplot layout 1,3 title "Bulk bytes between two threads (median, min–max)"')
    plots.append("set logscale x 2; set logscale y; set grid")
    plots.append('set xlabel "write size (bytes)"; set ylabel "GB/s"; set key bottom right')
    plots.append("set xtics (%s)" % ", ".join('"%s" %d' % (wr, bytes_of(wr)) for wr in WRITES))
    plots.append("set xrange [48:1400000]")
    for ring in RINGS:
        series = []
        for n, (impl, name) in enumerate(BULK_IMPLS):
            c = 2 + 3 * n
            series.append('"%s" using 1:%d:%d:%d with yerrorlines title "%s"'
                          % (q("bulk-%s.dat" % ring), c, c + 1, c + 2, name))
        plots.append('set title "ring %s"' % ring)
        plots.append("plot " + ", \\\n     ".join(series))
    plots.append("unset multiplot")
    plots.append("reset")


def plot_bars(plots, q, name, title, ylabel, rest):
    plots.append('set terminal pngcairo size 900,480 font ",10" noenhanced')
    plots.append('set output "%s"' % q(name + ".png"))
    plots.append('set title "%s"' % title)
    plots.append("set style data histogram; set style histogram clustered gap 1; "
                 "set style fill solid 0.8 border -1; set logscale y; set grid y")
    plots.append('set ylabel "%s"; set xtics rotate by -20' % ylabel)
    plots.append('plot "%s" using 2:xtic(1) title %s' % (q(name + ".dat"), rest))
    plots.append("reset")


if __name__ == "__main__":
    sys.exit(main())
