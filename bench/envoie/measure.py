#!/usr/bin/env python3
"""Times download commands alternately and reports, per side, the median
wall time (throughput), the client's CPU time and the server's CPU time.

Usage: measure.py RUNS BYTES NAME:SERVER_PID:COMMAND ...

On a shared machine the wall time depends on what else runs; the CPU time
each process spends per byte does much less, so both are reported. The
server's CPU time is read from /proc (utime + stime of the process, or of
its children for nginx's master, whose worker does the work)."""

import os
import resource
import shlex
import statistics
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def server_cpu(pid):
    return proc_cpu(pid) + sum(proc_cpu(c) for c in children(pid))


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    runs, size = int(sys.argv[1]), int(sys.argv[2])
    sides = []
    for spec in sys.argv[3:]:
        name, pid, cmd = spec.split(":", 2)
        sides.append((name, int(pid), shlex.split(cmd)))
    results = {name: {"wall": [], "client": [], "server": []} for name, _, _ in sides}
    for i in range(runs):
        for name, pid, cmd in sides:
            c0, s0, t0 = child_cpu(), server_cpu(pid), time.perf_counter()
            subprocess.run(cmd, check=True)
            t1, c1, s1 = time.perf_counter(), child_cpu(), server_cpu(pid)
            r = results[name]
            r["wall"].append(t1 - t0)
            r["client"].append(c1 - c0)
            r["server"].append(s1 - s0)
            print(f"  run {i + 1} {name:10s} {t1 - t0:6.3f} s wall, client cpu {c1 - c0:5.2f} s, server cpu {s1 - s0:5.2f} s",
                  file=sys.stderr)
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"file: {size} bytes; median of {runs} alternating runs per side; load average at the end: {load}")
    print(f"{'side':12s} {'wall s':>8s} {'MB/s':>8s} {'client cpu s':>13s} {'server cpu s':>13s}")
    med = {}
    for name, _, _ in sides:
        r = {k: statistics.median(v) for k, v in results[name].items()}
        med[name] = r
        print(f"{name:12s} {r['wall']:8.3f} {size / r['wall'] / 1e6:8.1f} {r['client']:13.2f} {r['server']:13.2f}")
    a = sides[0][0]
    for b, _, _ in sides[1:]:
        print(f"ratio {a}/{b}: throughput {med[b]['wall'] / med[a]['wall']:.2f}, "
              f"server cpu {med[a]['server'] / med[b]['server']:.2f}, client cpu {med[a]['client'] / med[b]['client']:.2f}")


if __name__ == "__main__":
    main()
