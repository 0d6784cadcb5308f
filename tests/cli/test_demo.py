"""``medvault demo`` tells the whole story headless on the embedded defaults, as a real process."""

from __future__ import annotations

from tests.conftest import TEST_PROFILE, run_medvault


def test_demo_runs_the_whole_story(tmp_path):
    result = run_medvault(["demo", "--keep", str(tmp_path / "demo"), "--kdf-profile", TEST_PROFILE], env={},
                          timeout=300)
    assert result.code == 0, result.err
    out = result.out
    for step in range(1, 8):
        assert f"{step}. " in out
    assert "consent recorded on chain: True" in out
    assert "consent       passed" in out and "cid           passed" in out
    assert "The clinician sees 3 record(s)." in out
    assert "1 signed access receipt(s) on chain" in out
    assert "cannot be recalled" in out
    assert "The clinician's receiver now says: The patient has revoked this share." in out
    assert "Audit log intact" in out
    assert (tmp_path / "demo" / "share.png").exists()
    assert "Alex" not in out and "Example" not in out  # even fictional PHI is not printed
