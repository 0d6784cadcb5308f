"""A clinician's write-back (a signed note sent back to the patient) killed at each of its fsyncs (``strace`` injects
the SIGKILL): the encrypted file and the row that lists and serves it commit together, so whatever moment the
process dies, the vault opens, verifies, and holds either both or neither (a file without its row is never served,
and its key, kept only in the row's link, is lost).
"""

from __future__ import annotations

import shutil
from collections import Counter

from tests.crash.kill_support import bench_kill
from tests.vault.test_crash_safety import _strace



def _state(kill, folder):
    vault, which = kill.open_vault(folder, (kill.PASSPHRASE,))
    assert vault is not None and which == [kill.PASSPHRASE]
    with vault:
        report = vault.verify()
        assert report.intact, report.sentence()
        return kill.read_state(vault)


def test_kills_at_every_fsync_of_a_writeback(tmp_path):
    kill = bench_kill()
    env = kill._env(tmp_path / "setup")
    doctor, patient = tmp_path / "doctor" / "v", tmp_path / "patient" / "v"
    kill.run(["--vault", str(patient), "init", "--kdf-profile", kill.PROFILE], env)
    kill.run(["--vault", str(doctor), "init", "--kdf-profile", kill.PROFILE, "--clinician", "--name", "Dr Ada Sample"],
             env)
    card = kill.run(["--vault", str(patient), "card"], env).strip()
    before = _state(kill, doctor)
    assert not before.shares and not before.blobs

    trial = tmp_path / "trial"

    def fresh():
        if trial.exists():
            shutil.rmtree(trial)
        shutil.copytree(doctor, trial / "v")
        return trial / "v", kill._env(trial)

    def args(folder):
        return ["--vault", str(folder), "writeback", card, "--note", "Reviewed; no change.", "--vital",
                "heart-rate=72"]

    folder, run_env = fresh()
    trace = tmp_path / "writeback.trace"
    assert _strace(args(folder), run_env, [], trace) == 0
    after = _state(kill, folder)
    assert len(after.shares) == 1 and after.blobs == {cid for _, cid in after.shares.values()}
    syncs = sum(1 for line in trace.read_text().splitlines() if " fsync(" in line or " fdatasync(" in line)
    assert syncs >= 2, f"the write-back made {syncs} fsyncs"

    sides = Counter()
    for n in range(1, syncs + 1):
        folder, run_env = fresh()
        _strace(args(folder), run_env, ["-e", f"inject=fsync,fdatasync:signal=KILL:when={n}"])
        assert not kill.plaintext_files(trial), f"kill at fsync {n}"
        state = _state(kill, folder)
        served = {cid for share_state, cid in state.shares.values() if share_state == "active"}
        assert state.blobs <= served, f"kill at fsync {n}: an encrypted file that no write-back lists or serves"
        assert served <= state.blobs, f"kill at fsync {n}: a listed write-back without its file"
        sides["new" if state.shares else "old"] += 1
    assert sides["old"] and sides["new"], sides
    shutil.rmtree(trial)
