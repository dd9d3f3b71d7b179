#!/usr/bin/env python3
# fsyncprobe.py SECONDS FILE: an 8 KiB write and fdatasync of FILE every 2 ms for SECONDS (FILE is
# removed after); prints the syncs' p50, p99, max and each one over 15 ms with the wall-clock time
# it ended (HH:MM:SS.mmm). Put FILE on the database's disk to see that disk's sync stalls.
import os, sys, time

def stamp():
    t = time.time()
    return time.strftime("%H:%M:%S", time.localtime(t)) + ".%03d" % (int(t * 1000) % 1000)

end = time.monotonic() + float(sys.argv[1]); path = sys.argv[2]
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600); buf = b"x" * 8192; lat = []; slow = []
while time.monotonic() < end:
    t = time.monotonic(); os.pwrite(fd, buf, 0); os.fdatasync(fd); d = time.monotonic() - t
    lat.append(d)
    if d > 0.015:
        slow.append((stamp(), round(d * 1000, 1)))
    time.sleep(0.002)
os.close(fd); os.unlink(path); lat.sort()
print("fsync probe: n=%d p50=%.2fms p99=%.2fms max=%.1fms over 15 ms: %s" % (
    len(lat), lat[len(lat) // 2] * 1e3, lat[int(len(lat) * .99)] * 1e3, lat[-1] * 1e3, slow))
