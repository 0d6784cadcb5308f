"""Gas targets from the design (gas is deterministic on the in-process EVM, so this is not a timing test)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_gas.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_gas", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gas"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_grant_and_batched_receipt_meet_the_gas_targets():
    report = _bench().measure(batch_size=100)
    assert report.grant <= 100_000 and report.grant_directed <= 100_000
    assert report.batch_ratio <= 0.05
    # Sanity: the measurement saw real work, not a no-op.
    assert report.access_single > 21_000 and report.revoke > 21_000 and report.batch_total > 21_000


def test_bench_prints_ratio_lines(capsys):
    assert _bench().main() == 0
    out = capsys.readouterr().out
    assert "x of a single one" in out and "targets: grant met, batch met" in out
