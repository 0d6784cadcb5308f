"""Deep JSON from outside is refused by measuring depth first, even when a library has raised the process's
recursion limit so far that the C JSON scanner would overflow the stack (py_ecc sets 100,000 on import)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT
from vault import jsonsafe


def test_depth_is_bounded_outside_strings():
    assert not jsonsafe.nesting_exceeds(b'{"a": [1, {"b": "[[[[{{{{[[[[[[[["}]}', 6)
    assert jsonsafe.nesting_exceeds(b'{"a": [1, {"b": [[[[[[[[[[]]]]]]]]]]}]}', 6)
    assert not jsonsafe.nesting_exceeds(b'"\\"[[[[[[[[[["', 2)
    assert jsonsafe.nesting_exceeds(b"[" * 100, 50)  # unpaired brackets count too
    assert jsonsafe.loads('{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(jsonsafe.JsonTooDeep):
        jsonsafe.loads(b"[" * 600 + b"]" * 600)
    with pytest.raises(json.JSONDecodeError):
        jsonsafe.loads(b"{not json")


def test_every_outside_json_entry_point_survives_a_raised_recursion_limit(tmp_path):
    """Runs in a child process: a regression here would crash the interpreter, not just fail an assert."""
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    script = textwrap.dedent(f"""
        import sys
        import py_ecc  # raises the recursion limit to 100,000, as it does in the real app
        assert sys.getrecursionlimit() >= 100_000
        data = open({str(deep)!r}, "rb").read()
        from vault import jsonsafe
        from vault.records import jsonutil
        from vault.records.errors import NestingTooDeep
        from sync import fetch, receiver
        from sync.errors import ContentInvalid, FetchFailed
        for call, expected in ((lambda: jsonsafe.loads(data), jsonsafe.JsonTooDeep),
                               (lambda: jsonutil.loads(data), NestingTooDeep),
                               (lambda: jsonutil.loads(data, bound_depth=False), NestingTooDeep),
                               (lambda: receiver._loads_bounded(data), ContentInvalid),
                               (lambda: fetch.Response("u", 200, "application/json", data).json(), FetchFailed)):
            try:
                call()
            except expected:
                pass
            else:
                raise SystemExit("accepted")
        print("refused all")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "refused all"


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


from hypothesis import given, settings, strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n', max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\k', max_size=4), inner,
                                                                max_size=3),
    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(value=_json, limit=st.integers(0, 12))
def test_the_bound_never_lets_deeper_json_through(value, limit):
    """Sound (deeper than the limit is always caught, whatever brackets, quotes and escapes hide in strings) and
    not wildly pessimistic (within twice the true depth)."""
    raw = json.dumps(value).encode()
    depth = _depth(value)
    if depth > limit:
        assert jsonsafe.nesting_exceeds(raw, limit)
    if 2 * depth <= limit:
        assert not jsonsafe.nesting_exceeds(raw, limit)
