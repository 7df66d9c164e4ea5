"""Which folder's page cache can be dropped per file, the way Ferry's benchmark drops it (PageCache.java)?

For each folder given: its file system type, then a 128 MiB file written and fsynced there, the fraction of its
pages cached (mincore, as PageCache.residentFraction), GNU `dd if=FILE iflag=nocache count=0`, the fraction
again, and a read of the file right after (GB/s; near memory speed means the pages were still cached somewhere).
Prints one line per folder and writes the first folder whose file dropped to under 5 % cached to --out.
Standard library only (no torch): runs on the GPU machine before anything else is there.
Usage: python3 pagecache_probe.py [--out FILE] [--mib 128] DIR...
"""
import argparse, ctypes, os, subprocess, sys, time

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
PAGE = os.sysconf("SC_PAGE_SIZE")


def cached_fraction(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        n = os.fstat(fd).st_size
        addr = libc.mmap(None, n, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
        pages = (n + PAGE - 1) // PAGE
        vec = ctypes.create_string_buffer(pages)
        rc = libc.mincore(addr, n, vec)
        libc.munmap(addr, n)
        if rc != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        return sum(b & 1 for b in vec.raw) / pages
    finally:
        os.close(fd)


def probe(d, mib):
    fstype = subprocess.run(["stat", "-f", "-c", "%T", d], capture_output=True, text=True).stdout.strip()
    path = os.path.join(d, f".ferry-pagecache-probe-{os.getpid()}")
    chunk = os.urandom(1 << 20)
    try:
        with open(path, "wb") as f:
            for _ in range(mib):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        before = cached_fraction(path)
        rc = subprocess.run(["dd", f"if={path}", "iflag=nocache", "count=0", "status=none"]).returncode
        after = cached_fraction(path)
        t0 = time.perf_counter()
        with open(path, "rb", buffering=0) as f:
            while f.read(16 << 20):
                pass
        gbs = mib * (1 << 20) / (time.perf_counter() - t0) / 1e9
        return fstype, before, rc, after, gbs
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--out")
    ap.add_argument("--mib", type=int, default=128)
    a = ap.parse_args()
    chosen = None
    for d in a.dirs:
        try:
            fstype, before, rc, after, gbs = probe(d, a.mib)
            print(f"probe {d}: fs {fstype}, cached {before:.0%} after write+fsync, dd nocache rc {rc},"
                  f" cached {after:.0%} after dropping, read right after {gbs:.2f} GB/s", flush=True)
            if chosen is None and rc == 0 and after < 0.05:
                chosen = d
        except Exception as e:
            print(f"probe {d}: failed: {e!r}", flush=True)
    print(f"probe: chosen {chosen}", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            f.write((chosen or a.dirs[0]) + "\n")
    return 0 if chosen else 1


if __name__ == "__main__":
    sys.exit(main())
