"""Design rule: web3 is imported by sync/chain.py alone; the vault side of the outbox has no network or Qt code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_web3_only_in_the_chain_client():
    users = {p.relative_to(ROOT).as_posix() for pkg in ("app", "sync", "vault")
             for p in (ROOT / pkg).rglob("*.py") if "web3" in _imports(p)}
    assert users == {"sync/chain.py"}


def test_outbox_store_is_plain_storage():
    assert _imports(ROOT / "vault" / "outbox_store.py") <= {"__future__", "contextlib", "json", "dataclasses", "typing"}


def test_outbox_logic_has_no_web3_or_qt():
    for name in ("outbox.py", "consent_sign.py", "merkle.py"):
        assert not _imports(ROOT / "sync" / name) & {"web3", "PySide6", "app"}, name
