"""One error hierarchy, and exit statuses that tell the user's mistakes from medvault's bugs.

Every error medvault explains derives from ``vault.errors.MedvaultError`` (exit 1, its sentence); anything else is a
bug: exit 70 (EX_SOFTWARE), one sentence naming the crash report, no traceback and nothing of the exception's
message, which is where record content ends up.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vault.errors import MedvaultError, SignatureInvalid, VaultError

PHI_IN_MESSAGE = "Hypertension of Ms Alvarez"

# Low-level exceptions that carry no sentence for the user; each caller turns them into a MedvaultError.
INTERNAL = {"vault.crypto.CryptoError", "vault.jsonsafe.JsonRefused", "vault.fsutil.NotARegularFile",
            "app.cli.UsageError"}


def _modules(package: str):
    root = importlib.import_module(package)
    yield root
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        yield importlib.import_module(info.name)


def _exception_classes():
    for package in ("vault", "sync"):
        for module in _modules(package):
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                    yield cls


def test_every_error_of_vault_and_sync_has_one_user_facing_root():
    classes = list(_exception_classes())
    assert len(classes) > 40
    loose = [f"{c.__module__}.{c.__qualname__}" for c in classes
             if not issubclass(c, MedvaultError) and not any(
                 f"{b.__module__}.{b.__qualname__}" in INTERNAL for b in c.__mro__)]
    assert loose == []
    from sync.errors import SyncError
    assert issubclass(SyncError, MedvaultError) and issubclass(VaultError, MedvaultError)


def test_the_app_s_errors_with_a_sentence_share_the_root_and_the_gui_explains_them():
    from app import errors, link_intake, single_instance
    for cls in (link_intake.NotALinkOrFile, single_instance.AlreadyRunningNotAnswering):
        assert issubclass(cls, MedvaultError) and cls().user_message
    assert errors.user_message(SignatureInvalid()) == SignatureInvalid.default_message
    assert errors.user_message(KeyError(PHI_IN_MESSAGE)) == errors.UNEXPECTED


def test_one_signature_invalid_that_every_signature_refusal_shares():
    from sync.errors import ConsentRejected, ConsentSignatureInvalid, LinkInvalid, LinkSignatureInvalid
    from vault.records.errors import CardSignatureInvalid, ImportRejected
    named = [c for c in _exception_classes() if c.__name__ == "SignatureInvalid"]
    assert named == [SignatureInvalid]
    for cls, family in ((CardSignatureInvalid, ImportRejected), (ConsentSignatureInvalid, ConsentRejected),
                        (LinkSignatureInvalid, LinkInvalid)):
        assert issubclass(cls, SignatureInvalid) and issubclass(cls, family)
        assert cls().user_message != SignatureInvalid.default_message
    # Each keeps what its family's handlers read.
    assert CardSignatureInvalid("x").reason == "x"
    assert ConsentSignatureInvalid("x", reason="NotPatient").reason == "NotPatient"


def _boom(exc: BaseException):
    def open_vault(self):
        raise exc
    return open_vault


def test_an_error_medvault_explains_exits_1_with_its_sentence(cli, monkeypatch, tmp_path):
    # SignatureInvalid is neither a VaultError nor a SyncError: only the one root catches it.
    monkeypatch.setattr("app.cli.Context.open_vault", _boom(SignatureInvalid()))
    res = cli(["--vault", str(tmp_path / "v"), "audit"])
    assert res.code == 1
    assert res.err == f"medvault: {SignatureInvalid.default_message}\n"


def _reports() -> list[Path]:
    return sorted((Path(os.environ["XDG_STATE_HOME"]) / "medvault" / "crashes").glob("crash-*.txt"))


def test_a_bug_exits_70_naming_its_report_without_the_message(cli, monkeypatch, tmp_path):
    monkeypatch.delenv("MEDVAULT_DEBUG", raising=False)
    monkeypatch.setattr("app.cli.Context.open_vault", _boom(KeyError(PHI_IN_MESSAGE)))
    res = cli(["--vault", str(tmp_path / "v"), "audit"])
    assert res.code == 70
    assert res.code not in (1, 2, 141)
    assert len(res.err.strip().splitlines()) == 1
    assert "a bug in medvault" in res.err
    assert PHI_IN_MESSAGE not in res.err and "Traceback" not in res.err and "KeyError" not in res.err
    [report] = _reports()
    assert str(report) in res.err
    text = report.read_text()
    assert "builtins.KeyError" in text and PHI_IN_MESSAGE not in text


def test_debug_shows_the_traceback(cli, monkeypatch, tmp_path):
    monkeypatch.setattr("app.cli.Context.open_vault", _boom(KeyError("x")))
    with pytest.raises(KeyError):
        cli(["--vault", str(tmp_path / "v"), "audit"], env={"MEDVAULT_DEBUG": "1"})


def test_a_bug_in_a_real_process_exits_70_and_a_closed_pipe_still_141(tmp_path):
    """The exit status a shell sees; the closed pipe keeps its own status (tests/share_cli proves 141 end to end)."""
    program = ("import sys\n"
               "from app import cli\n"
               "def open_vault(self):\n"
               f"    raise KeyError({PHI_IN_MESSAGE!r})\n"
               "cli.Context.open_vault = open_vault\n"
               "sys.exit(cli.main())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDVAULT_")}
    env["MEDVAULT_PASSPHRASE"] = "unused"
    proc = subprocess.run([sys.executable, "-c", program, "--vault", str(tmp_path / "v"), "audit"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 70, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith("medvault: an unexpected error stopped this command: a bug in medvault")
    assert "Traceback" not in proc.stderr and PHI_IN_MESSAGE not in proc.stderr
    [report] = _reports()
    assert str(report) in proc.stderr
    from app.cli import EXIT_BUG, EXIT_CLOSED_PIPE, EXIT_USAGE, EXIT_USER
    assert len({EXIT_BUG, EXIT_CLOSED_PIPE, EXIT_USAGE, EXIT_USER}) == 4
