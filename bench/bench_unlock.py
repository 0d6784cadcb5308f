"""Unlock time as a ratio to the bare Argon2id derivation at the vault's stored parameters, in the same run.

Target (docs/benchmarks.md): at most 1.15x. Run: .venv/bin/python bench/bench_unlock.py [--profile default]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vault import crypto  # noqa: E402
from vault.header import read_header  # noqa: E402
from vault.store import Vault  # noqa: E402

PASSPHRASE = "benchmark passphrase only"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="default")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "v"
        vault, _ = Vault.create(folder, PASSPHRASE, kdf_profile=args.profile)
        vault.close()
        params = read_header(folder).kdf
        bare, full = [], []
        for _ in range(args.rounds):  # interleaved, so drift on a noisy machine hits both alike
            start = time.perf_counter()
            crypto.argon2id(PASSPHRASE.encode(), params.salt, params.opslimit, params.memlimit)
            bare.append(time.perf_counter() - start)
            start = time.perf_counter()
            Vault.unlock(folder, PASSPHRASE).close()
            full.append(time.perf_counter() - start)
    # The best of several rounds is the run least disturbed by other load on a shared machine; the median is
    # printed too so a reader can see the noise.
    b, f = min(bare), min(full)
    ratio = f / b
    print(f"argon2id {params.profile} ({params.memlimit // (1024 * 1024)} MiB, {params.opslimit} passes): "
          f"best {b * 1000:.0f} ms, median {statistics.median(bare) * 1000:.0f} ms")
    print(f"unlock (KDF + unwrap + open database + audit entry): best {f * 1000:.0f} ms, "
          f"median {statistics.median(full) * 1000:.0f} ms")
    print(f"unlock / argon2id = {ratio:.3f}x best-of-{args.rounds} (target <= 1.15x) "
          f"{'OK' if ratio <= 1.15 else 'OVER'}; median ratio "
          f"{statistics.median(full) / statistics.median(bare):.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
