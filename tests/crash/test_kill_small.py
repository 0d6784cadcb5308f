"""The kill campaign of ``bench/kill.py`` in small: the real CLI SIGKILLed during import, NDJSON import, share
create, revoke, passwd and chain sync (against a real ganache node), and every vault it leaves opens, verifies, holds
no plaintext and is on one side of the operation or the other.

A second test kills share create and revoke at each of their fsyncs (``strace`` injects the SIGKILL), where a
random kill rarely lands: the share's file and its row must commit together.
"""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from tests.crash.kill_support import bench_kill
from tests.vault.test_crash_safety import _strace

KILLS = 12
SEED = 20261126



@pytest.mark.integration
def test_random_kills_leave_every_vault_whole(tmp_path, fixtures_dir):
    kill = bench_kill()
    outcome = kill.campaign(tmp_path, list(kill.OPS), KILLS, SEED, calibration_runs=1, say=lambda _: None,
                            late_first=True)
    tally, printed = outcome.tally, "\n".join(kill.report(outcome))
    assert sum(tally.kills.values()) == KILLS and set(tally.kills) == set(kill.OPS)
    assert sum(tally.mid.values()) >= KILLS // 2, f"most kills must land while the command runs\n{printed}"
    assert tally.failures == [] and tally.bad() == 0, printed
    # the checks saw both sides of some commit, so they are not vacuous (the first kill comes after its command
    # finished: random kills alone may all land before the commit)
    seen = Counter()
    for counts in tally.outcomes.values():
        seen.update(counts)
    assert seen["old"] and seen["new"], printed


def test_kills_at_every_fsync_of_share_create_and_revoke(tmp_path, fixtures_dir):
    kill = bench_kill()
    setup = kill.prepare(tmp_path, with_chain=False, with_ndjson=False)
    ops = kill.operations(setup)
    trial = tmp_path / "trial"
    for name in ("share", "revoke"):
        op = ops[name]
        kill.calibrate(setup, op, trial, runs=1)
        folder = kill.fresh_copy(setup, op, trial)
        trace = tmp_path / f"{name}.trace"
        args = op.args(setup, folder)
        assert _strace(args, kill._env(trial, op.extra_env), [], trace) == 0
        syncs = sum(1 for line in trace.read_text().splitlines() if " fsync(" in line or " fdatasync(" in line)
        assert syncs >= 2, f"{name} made {syncs} fsyncs"
        sides = Counter()
        for n in range(1, syncs + 1):
            folder = kill.fresh_copy(setup, op, trial)
            _strace(args, kill._env(trial, op.extra_env), ["-e", f"inject=fsync,fdatasync:signal=KILL:when={n}"])
            assert not kill.plaintext_files(trial)
            result = kill.check(setup, op, folder)
            assert result["open"] and result["verify"], f"{name}, kill at fsync {n}: {result}"
            assert result["partial"] is None, f"{name}, kill at fsync {n}: {result['partial']}"
            sides[result["outcome"]] += 1
        assert sides["old"] and sides["new"], sides
    shutil.rmtree(trial)
