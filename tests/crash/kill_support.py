"""``bench/kill.py`` loaded as a module, for the tests that run its campaign in small (bench/ is not a package)."""

from __future__ import annotations

import importlib.util
import sys

from tests.conftest import ROOT


def bench_kill():
    spec = importlib.util.spec_from_file_location("bench_kill", ROOT / "bench" / "kill.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_kill"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
