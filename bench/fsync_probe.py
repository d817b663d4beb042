#!/usr/bin/env python3
"""fsync_probe DIR [PAGES] [SECONDS]: the disk's floor for a durable change.

Writes PAGES (default 8) scattered 4 KiB pages and one "meta" page into a
preallocated file in DIR, then fdatasync()s it, every 2 ms for SECONDS
(default 4), as an LMDB commit and its sync do; prints the latency of each
write+fdatasync as `fsync_n= fsync_p50_us= fsync_p99_us= fsync_max_us=`.
bench/run.sh fanout runs it beside the null echo's 50 % phase: the same
CPU load, no broker, so broker p99 - null p99 can be read against it."""
import os
import random
import sys
import time

def main():
    d = sys.argv[1]
    pages = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    secs = float(sys.argv[3]) if len(sys.argv) > 3 else 4.0
    path = os.path.join(d, "fsync-probe.dat")
    npages = 4096
    buf = b"\x01" * 4096
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for i in range(npages):  # written, not sparse: no block allocation later
            os.pwrite(fd, buf, i * 4096)
        os.fsync(fd)
        lat = []
        end = time.monotonic() + secs
        while time.monotonic() < end:
            t0 = time.monotonic()
            for _ in range(pages):
                os.pwrite(fd, buf, random.randrange(1, npages) * 4096)
            os.pwrite(fd, buf, 0)
            os.fdatasync(fd)
            lat.append((time.monotonic() - t0) * 1e6)
            time.sleep(0.002)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    n = len(lat)
    print("fsync_n=%d fsync_p50_us=%.0f fsync_p99_us=%.0f fsync_max_us=%.0f"
          % (n, lat[n // 2], lat[min(n - 1, n * 99 // 100)], lat[-1]))

if __name__ == "__main__":
    main()
