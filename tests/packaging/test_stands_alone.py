"""The repository stands on its own: no code, test or document cites a file outside it (a design note, a path on
one machine, the shared fixtures by their own route). The one sanctioned way to reach the third-party fixtures is
``tests.conftest.FIXTURES``; tests/conftest.py is the one file that names where they are."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT

OUTSIDE = re.compile(r"DESIGN(\.md|\s+section)|/work/|\.\./shared|[\"']shared[\"']\s*/\s*[\"']fixtures")
TEXT = (".py", ".md", ".sh", ".toml", ".cfg", ".ini", ".txt", ".json", ".yml", ".yaml", ".desktop", ".xml", ".sol", "")
SKIP_PREFIXES = ("tests/data/", "medvault_resources/fhir-schema/", "medvault_resources/demo/", "package-lock.json")


def _files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    return [name for name in listed if name and name.endswith(TEXT) and not name.startswith(SKIP_PREFIXES)
            and name != "tests/conftest.py" and name != "tests/packaging/test_stands_alone.py"]


def test_nothing_cites_a_file_outside_the_repository():
    offenders = []
    for name in _files():
        path = ROOT / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []


def test_the_pattern_sees_what_was_there():
    for line in ('is the user\'s explicit choice (DESIGN section 4).', "see DESIGN.md section 8)",
                 'FIXTURES = ROOT.parent / "shared" / "fixtures"', "in ../shared/fixtures/did-key/", "/work/main/x"):
        assert OUTSIDE.search(line), line
