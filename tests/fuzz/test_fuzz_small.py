"""The small run of the fuzzing (``bench/fuzz.py`` is the large one): every input kept in
``tests/data/fuzz-corpus`` (seeds, inputs that reached new code, and every past finding) replayed through its
target, then a short burst of seeded mutations per target. Any exception other than the target's typed error with
one sentence, any broken property, and any input slower than the bound fails the test, naming the input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "bench")]

import fuzz  # noqa: E402
import fuzz_targets  # noqa: E402

BURST = 2000
# The CI machine is shared; a real hang runs into this many times over, a slow input only into the report.
TIME_BOUND = 5.0


def test_every_parser_has_a_corpus():
    folders = {p.name for p in fuzz.CORPUS.iterdir() if p.is_dir()}
    assert set(fuzz_targets.TARGETS) <= folders
    size = sum(p.stat().st_size for p in fuzz.CORPUS.rglob("*") if p.is_file())
    assert size < 2 * 1024 * 1024, f"the fuzz corpus has grown to {size:,} bytes"


@pytest.mark.parametrize("name", list(fuzz_targets.TARGETS))
def test_corpus_and_burst(name, fixtures_dir):
    corpus = fuzz.load_corpus(name)
    assert corpus, f"no corpus for {name}"
    inputs = BURST // 10 if name == "import_vault" else BURST  # each one a real database transaction
    stats = fuzz.burst(name, inputs, seed=12, time_bound=TIME_BOUND, corpus=corpus)
    assert stats["inputs"] == len(corpus) + inputs
    assert not stats["findings"], "\n".join(f"{w}: {d[:200]!r}" for w, d in stats["findings"])
    assert not stats["hangs"], f"{len(stats['hangs'])} input(s) ran past {TIME_BOUND} s: {stats['hangs'][0][:200]!r}"
    # both outcomes happen: a target that refuses (or accepts) everything is not testing its parser (the gateway
    # and the failed-unlock note answer everything themselves, so they have nothing to refuse)
    assert stats["ok"] > 0, stats
    assert stats["refused"] > 0 or not fuzz_targets.TARGETS[name].allowed, stats


def test_regressions_are_refused_with_a_sentence():
    """The inputs of past findings, by name: each is now answered (an NDJSON file skips its bad lines) without
    an exception the target does not allow."""
    regressions = [(p.parent.name, p.read_bytes()) for p in fuzz.CORPUS.glob("*/regress-*")]
    assert regressions
    for name, data in regressions:
        assert fuzz_targets.run_one(fuzz_targets.TARGETS[name], data) in ("ok", "refused"), (name, data[:200])
