"""CID computation cost as a ratio to plain hashlib.sha256 over the same bytes, measured in the same run.

    .venv/bin/python bench/bench_cid.py [--mib 64] [--repeat 5]

A ratio near 1.0x means content addressing costs no more than hashing the file once, which is the floor: every
profile must hash every byte. The time is the best of ``--repeat`` runs, so a noisy machine inflates both sides
alike rather than the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync.cid import KUBO_V1, UNIXFS_V0_2015, UNIXFS_V1_2025, compute_cid  # noqa: E402


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="size of the large input in MiB")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    cases = {
        "share file 600 KiB": os.urandom(600 * 1024),
        f"large file {args.mib} MiB": os.urandom(args.mib * 1024 * 1024),
    }
    for label, data in cases.items():
        base = best_of(args.repeat, lambda: hashlib.sha256(data).digest())
        mib_s = len(data) / base / (1024 * 1024)
        print(f"{label}: sha256 baseline {mib_s:,.0f} MiB/s")
        rows = [
            ("cid_v1_raw (unixfs-v1-2025, share profile)", lambda: compute_cid(data, UNIXFS_V1_2025)),
            ("cid_v1_raw streamed from a file object", lambda: compute_cid(io.BytesIO(data), UNIXFS_V1_2025)),
            ("cid_v1_raw (kubo-v1, 256 KiB)", lambda: compute_cid(data, KUBO_V1)),
            ("cid_v0 (unixfs-v0-2015)", lambda: compute_cid(data, UNIXFS_V0_2015)),
        ]
        for name, fn in rows:
            print(f"  {name} / sha256 = {best_of(args.repeat, fn) / base:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
